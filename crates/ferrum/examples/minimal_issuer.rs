//! A whole cert-manager external issuer on the Ferrum library, in one file: kinds
//! `DemoIssuer`/`DemoClusterIssuer` (group `demo.ferrum.dev`), signing with a CA made in
//! memory at start. Run: `minimal_issuer --crds | kubectl apply -f -`, then
//! `minimal_issuer KUBECONFIG`.

use std::time::SystemTime;

use ferrum::api::IssuerKinds;
use ferrum::controller::{Config, run};
use ferrum::signer::{Health, IssuerContext, IssuerError, SignError, SignRequest, Signed, Signer};
use ferrum::x509::{chain::CaBundle, issue::PublishedUrls, key::SoftwareKey, sign::sign_with_ca};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The spec of both demo kinds.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
struct DemoSpec {
    /// The issuer is Ready only when this is true.
    enabled: bool,
}

/// Signs with an in-memory CA.
struct DemoSigner {
    ca: CaBundle,
    key: SoftwareKey,
}

impl Signer for DemoSigner {
    type Spec = DemoSpec;

    async fn check(&self, issuer: &IssuerContext<'_, DemoSpec>) -> Result<Health, IssuerError> {
        match issuer.spec.enabled {
            true => Ok(Health { message: "in-memory CA ready".into(), ..Default::default() }),
            false => Err(IssuerError::new("Disabled", "set spec.enabled to true")),
        }
    }

    async fn sign(&self, request: &SignRequest<'_>, _: &IssuerContext<'_, DemoSpec>) -> Result<Signed, SignError> {
        sign_with_ca(&self.ca, &self.key, request.template, &PublishedUrls::default(), SystemTime::now())
    }
}

fn kinds() -> IssuerKinds {
    IssuerKinds::new("demo.ferrum.dev", "v1", "Demo")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arg = std::env::args().nth(1).unwrap_or_default();
    if arg == "--crds" {
        for crd in kinds().crds::<DemoSpec>() {
            print!("---\n{}", serde_yaml::to_string(&crd)?);
        }
        return Ok(());
    }
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "Demo CA");
    let ca = params.self_signed(&key)?;
    let signer = DemoSigner {
        ca: CaBundle::parse(ca.pem().as_bytes(), None)?,
        key: SoftwareKey::from_pem(key.serialize_pem().as_bytes())?,
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(arg)?;
    let client = kube::Client::try_from(kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?)?;
    let shutdown = async { tokio::signal::ctrl_c().await.unwrap_or_default() };
    run(client, Config::new(kinds(), "default"), signer, shutdown).await;
    Ok(())
}
