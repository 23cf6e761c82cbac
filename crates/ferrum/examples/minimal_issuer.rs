//! A whole cert-manager external issuer on the Ferrum library, in one file: kinds
//! `DemoIssuer`/`DemoClusterIssuer` (group `demo.ferrum.dev`), signing with a CA made in memory
//! at start, with leader election, probes, metrics and logs from the library's runtime.
//!
//! Run: `minimal_issuer --crds | kubectl apply -f -`, then `minimal_issuer` (in a pod, or with
//! `KUBECONFIG` set). `LEADER_ELECT=false`, `LOG_LEVEL`, `HEALTH_PROBE_BIND_ADDRESS` and
//! `METRICS_BIND_ADDRESS` change the defaults (see `RuntimeConfig::from_env`).

use std::time::SystemTime;

use ferrum::runtime::{RuntimeConfig, run};
use ferrum::x509::{CaBundle, PublishedUrls, SoftwareKey, sign_with_ca};
use ferrum::{Config, Health, IssuerContext, IssuerError, IssuerKinds, SignError, SignRequest, Signed, Signer};
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
            true => Ok(Health::ready("in-memory CA ready")),
            false => Err(IssuerError::new("Disabled", "set spec.enabled to true")),
        }
    }

    async fn sign(&self, request: &SignRequest<'_>, _: &IssuerContext<'_, DemoSpec>) -> Result<Signed, SignError> {
        Ok(sign_with_ca(&self.ca, &self.key, request.template, &PublishedUrls::default(), SystemTime::now())?.into())
    }
}

/// A CA made at start; it lives as long as the process.
fn in_memory_ca() -> anyhow::Result<DemoSigner> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "Demo CA");
    let ca = params.self_signed(&key)?;
    Ok(DemoSigner {
        ca: CaBundle::parse(ca.pem().as_bytes(), None)?,
        key: SoftwareKey::from_pem(key.serialize_pem().as_bytes())?,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let kinds = IssuerKinds::new("demo.ferrum.dev", "v1", "Demo");
    if std::env::args().nth(1).as_deref() == Some("--crds") {
        for crd in kinds.crds::<DemoSpec>() {
            print!("---\n{}", serde_yaml::to_string(&crd)?);
        }
        return Ok(());
    }
    let signer = in_memory_ca()?;
    let runtime = RuntimeConfig::from_env("minimal-issuer");
    let config = Config::new(kinds, runtime.namespace.clone());
    run(runtime, config, |_client| signer).await?;
    std::process::exit(0) // do not wait for the runtime's blocking pool
}
