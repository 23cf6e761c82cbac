//! The committed CRD YAML must be what the Rust types generate.

#[test]
fn committed_crds_match_the_types() {
    let generated = std::process::Command::new(env!("CARGO_BIN_EXE_crdgen")).output().expect("run crdgen");
    assert!(generated.status.success(), "crdgen failed: {}", String::from_utf8_lossy(&generated.stderr));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/crds/ferrum.crds.yaml");
    let committed = std::fs::read_to_string(path).expect("read deploy/crds/ferrum.crds.yaml");
    assert!(
        committed == String::from_utf8_lossy(&generated.stdout),
        "deploy/crds/ferrum.crds.yaml is out of date: run `cargo run -p ferrum-issuer --bin crdgen > deploy/crds/ferrum.crds.yaml`"
    );
}
