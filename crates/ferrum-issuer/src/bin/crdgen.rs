//! Prints the CRDs of `FerrumIssuer`, `FerrumClusterIssuer` and `CertificateRevocation` as YAML
//! (committed as `deploy/crds/ferrum.crds.yaml`).

fn main() -> anyhow::Result<()> {
    print!("{}", ferrum_issuer_crds()?);
    Ok(())
}

fn ferrum_issuer_crds() -> anyhow::Result<String> {
    let mut out = String::new();
    let kinds = ferrum::ca::kinds();
    let revocation = ferrum::revocation::crd(&kinds);
    for crd in kinds.crds::<ferrum::ca::FerrumIssuerSpec>().into_iter().chain([revocation]) {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}
