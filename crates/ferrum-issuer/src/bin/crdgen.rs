//! Prints the CRDs of `FerrumIssuer` and `FerrumClusterIssuer` as YAML
//! (committed as `deploy/crds/ferrum.crds.yaml`).

fn main() -> anyhow::Result<()> {
    print!("{}", ferrum_issuer_crds()?);
    Ok(())
}

fn ferrum_issuer_crds() -> anyhow::Result<String> {
    let mut out = String::new();
    for crd in ferrum::ca::kinds().crds::<ferrum::ca::FerrumIssuerSpec>() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}
