//! The `pkcs11` backend on SoftHSM2: keys generated on a token by the test, certificates issued
//! through cert-manager and accepted by `openssl verify`, every not-Ready reason produced and
//! repaired, a token that goes away and comes back, two hundred requests at once, and the same
//! certificate as cert-manager's CA issuer with the key in the token instead of in a Secret.

use std::time::Duration;

use ferrum::{CertificateRequest, IssuerScope};
use ferrum_testenv::softhsm::SoftHsm;
use kube::api::{ListParams, Patch, PatchParams};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::json;
use x509_parser::prelude::*;

use crate::flow::{
    assert_same_certificate, certificate_ready, create_certificate, parity_certificate_spec, secret_data,
};
use crate::support::*;

const TOKEN: &str = "ferrum-ca";
const SO_PIN: &str = "so-pin-1234";
const PIN: &str = "user-pin-5678";

/// A CA certificate for `public_key` (SubjectPublicKeyInfo DER, a key on the token) signed by
/// `root`, valid from `days.0` to `days.1` days from now.
fn certificate_for(root: &TestCa, public_key: &[u8], common_name: &str, days: (i64, i64)) -> String {
    let root_key = KeyPair::from_pem(&root.key_pem).expect("root key");
    let issuer = Issuer::from_ca_cert_pem(&root.cert_pem, root_key).expect("root issuer");
    let key = rcgen::SubjectPublicKeyInfo::from_der(public_key).expect("public key from the token");
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::OrganizationName, "Ferrum E2E");
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let now = ::time::OffsetDateTime::now_utc();
    params.not_before = now + ::time::Duration::days(days.0);
    params.not_after = now + ::time::Duration::days(days.1);
    params.signed_by(&key, &issuer).expect("sign the HSM CA's certificate").pem()
}

/// The `pkcs11` block of an issuer using key `key_label` and certificate Secret `certificate`.
fn hsm_spec(key_label: &str, certificate: &str) -> serde_json::Value {
    json!({"pkcs11": {
        "tokenLabel": TOKEN,
        "keyLabel": key_label,
        "pinSecretRef": {"name": "hsm-pin"},
        "certificateSecretName": certificate,
    }})
}

/// A token with a P-256 key `ca-p256` (ID 01) and an RSA-3072 key `ca-rsa` (ID 02), their CA
/// certificates under one software root in Secrets `ca-p256` and `ca-rsa`, the PIN in Secret
/// `hsm-pin`, and Ferrum started with SoftHSM2 as its default module (and `extra` flags).
struct HsmWorld {
    h: Harness,
    hsm: SoftHsm,
    root: TestCa,
    p256: Vec<u8>,
}

async fn hsm_world(prefix: &str, cert_manager: bool, extra: &[&str]) -> HsmWorld {
    let hsm = SoftHsm::new();
    hsm.init_token(TOKEN, SO_PIN, PIN);
    let p256 = hsm.generate_key(TOKEN, PIN, "EC:prime256v1", "ca-p256", "01");
    let rsa = hsm.generate_key(TOKEN, PIN, "rsa:3072", "ca-rsa", "02");
    let root = make_ca("HSM Root", CaOptions::default());
    let mut h = Harness::new(prefix).await;
    if cert_manager {
        h.start_cert_manager(true).await;
    }
    for (name, key, cn) in [("ca-p256", &p256, "HSM P-256 CA"), ("ca-rsa", &rsa, "HSM RSA-3072 CA")] {
        let crt = certificate_for(&root, key, cn, (-1, 365));
        h.create_opaque_secret(&h.ns, name, &[("tls.crt", crt.as_bytes()), ("ca.crt", root.cert_pem.as_bytes())]).await;
    }
    // A final newline, as `kubectl create secret --from-file` of an edited file would have.
    h.create_opaque_secret(&h.ns, "hsm-pin", &[("pin", format!("{PIN}\n").as_bytes())]).await;
    let module = hsm.module.display().to_string();
    let (conf_key, conf) = hsm.env();
    let mut flags = vec!["--pkcs11-module", module.as_str()];
    flags.extend(extra);
    h.start_ferrum_env(&flags, &[(conf_key, &conf)]).await;
    HsmWorld { h, hsm, root, p256 }
}

fn ferrum_issuer(name: &str) -> serde_json::Value {
    json!({ "group": "ferrum.dev", "kind": "FerrumIssuer", "name": name })
}

/// Verifies `tls.crt` (leaf + intermediate) against `root` with `openssl verify`; returns the
/// leaf's signature algorithm as OpenSSL names it.
fn verify_with_openssl(root_pem: &str, tls_crt: &[u8]) -> String {
    let chain = pem_certs(tls_crt);
    assert_eq!(chain.len(), 2, "tls.crt is the leaf and the HSM CA");
    let leaf = pem_encode("CERTIFICATE", &chain[0]);
    let intermediate = pem_encode("CERTIFICATE", &chain[1]);
    let (ok, out) = openssl_verify(root_pem.as_bytes(), intermediate.as_bytes(), leaf.as_bytes());
    assert!(ok, "openssl verify: {out}");
    let (_, cert) = X509Certificate::from_der(&chain[0]).expect("leaf parses");
    cert.signature_algorithm.algorithm.to_id_string()
}

/// A P-256, an RSA-3072 and an Ed25519 key generated on the token by the test, a Certificate
/// through cert-manager from each (and an RSA-PSS one), all accepted by `openssl verify`; the
/// keys are sensitive and never extractable, so Ferrum raises no KeyExtractable warning.
#[tokio::test(flavor = "multi_thread")]
async fn certificates_from_keys_that_stay_on_the_token() {
    let w = hsm_world("hsm-issue", true, &[]).await;
    let h = &w.h;
    let ed25519 = w.hsm.generate_key(TOKEN, PIN, "EC:edwards25519", "ca-ed25519", "0e");
    let crt = certificate_for(&w.root, &ed25519, "HSM Ed25519 CA", (-1, 365));
    h.create_opaque_secret(&h.ns, "ca-ed25519", &[("tls.crt", crt.as_bytes()), ("ca.crt", w.root.cert_pem.as_bytes())])
        .await;
    h.create_issuer_spec(IssuerScope::Namespaced, "ed25519", hsm_spec("ca-ed25519", "ca-ed25519")).await;
    h.create_issuer_spec(IssuerScope::Namespaced, "p256", hsm_spec("ca-p256", "ca-p256")).await;
    h.create_issuer_spec(IssuerScope::Namespaced, "rsa", hsm_spec("ca-rsa", "ca-rsa")).await;
    let mut pss = hsm_spec("ca-rsa", "ca-rsa");
    pss["pkcs11"]["rsaSignatureScheme"] = json!("PSS");
    h.create_issuer_spec(IssuerScope::Namespaced, "rsa-pss", pss).await;
    let issuers = ["p256", "rsa", "rsa-pss", "ed25519"];
    for issuer in issuers {
        let (reason, message) = h.issuer_ready(IssuerScope::Namespaced, issuer, "True").await;
        assert_eq!(reason, "Checked", "{issuer}: {message}");
        assert!(message.contains(&format!("its key is on token \"{TOKEN}\"")), "{issuer}: {message}");
    }
    let leaf = json!({ "dnsNames": ["hsm.example"], "privateKey": { "algorithm": "ECDSA", "size": 256 } });
    for issuer in issuers {
        create_certificate(h, issuer, ferrum_issuer(issuer), leaf.clone()).await;
    }
    let mut algorithms = Vec::new();
    for issuer in issuers {
        certificate_ready(h, issuer).await;
        let tls_crt = secret_data(h, &format!("{issuer}-tls"), "tls.crt").await;
        let ca_crt = secret_data(h, &format!("{issuer}-tls"), "ca.crt").await;
        assert_eq!(pem_certs(&ca_crt), pem_certs(w.root.cert_pem.as_bytes()), "{issuer}: ca.crt is the root");
        algorithms.push(verify_with_openssl(&w.root.cert_pem, &tls_crt));
    }
    assert_eq!(
        algorithms,
        [
            "1.2.840.10045.4.3.2",   // ecdsa-with-SHA256 for P-256
            "1.2.840.113549.1.1.12", // sha384WithRSAEncryption for RSA-3072
            "1.2.840.113549.1.1.10", // RSASSA-PSS
            "1.3.101.112",           // Ed25519 (CKM_EDDSA)
        ]
    );
    let objects = w.hsm.list_objects(TOKEN, PIN);
    let private_keys: Vec<&str> = objects.split("Private Key Object").skip(1).collect();
    assert_eq!(private_keys.len(), 3, "{objects}");
    for key in private_keys {
        assert!(key.contains("never extractable") && key.contains("sensitive"), "{key}");
    }
    let events = h.events_about("p256").await;
    assert!(!events.iter().any(|e| e.reason.as_deref() == Some("KeyExtractable")), "{events:?}");
}

/// Sets the issuer `hsm`'s spec (merge patch) and waits for its Ready condition.
async fn patch_issuer(h: &Harness, patch: serde_json::Value) {
    let api = h.issuers(IssuerScope::Namespaced);
    api.patch("hsm", &PatchParams::default(), &Patch::Merge(json!({ "spec": patch }))).await.expect("patch issuer");
}

async fn expect_not_ready(h: &Harness, reason: &str, says: &str) {
    let api = h.issuers(IssuerScope::Namespaced);
    let (got, message) = eventually(&format!("issuer hsm not Ready, {reason}"), Duration::from_secs(30), || async {
        let issuer = api.get("hsm").await.ok()?;
        let c = issuer.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
        let message = c.message.unwrap_or_default();
        (c.status == "False" && c.reason.as_deref() == Some(reason) && message.contains(says))
            .then(|| (c.reason.unwrap_or_default(), message))
    })
    .await;
    assert_eq!(got, reason);
    assert!(message.contains(says), "{reason}: {message}");
    assert!(!message.contains(PIN) && !message.contains("PRIVATE KEY"), "no secrets in messages: {message}");
}

async fn expect_ready(h: &Harness, after: &str) {
    let (reason, message) = h.issuer_ready(IssuerScope::Namespaced, "hsm", "True").await;
    assert_eq!(reason, "Checked", "after repairing {after}: {message}");
}

/// Each way the `pkcs11` backend can be broken gets its own reason, and each repair brings the
/// issuer back; a request made while it is broken waits (Pending) and is issued after.
#[tokio::test(flavor = "multi_thread")]
async fn every_broken_part_has_its_reason_and_its_repair() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.so").display().to_string();
    let not_a_library = dir.path().join("not-a-library.so");
    std::fs::write(&not_a_library, b"not an ELF file").unwrap();
    let not_a_library = not_a_library.display().to_string();
    let allowed = format!("{missing},{not_a_library}");
    let w = hsm_world("hsm-broken", false, &["--pkcs11-allowed-modules", &allowed]).await;
    let h = &w.h;
    h.create_issuer_spec(IssuerScope::Namespaced, "hsm", hsm_spec("ca-p256", "ca-p256")).await;
    expect_ready(h, "nothing").await;

    // A module the controller was not started with is never loaded.
    patch_issuer(h, json!({"pkcs11": {"module": "/usr/lib/x86_64-linux-gnu/libc.so.6"}})).await;
    expect_not_ready(h, "Pkcs11ModuleNotAllowed", "is not one this controller may load").await;
    patch_issuer(h, json!({"pkcs11": {"module": missing}})).await;
    expect_not_ready(h, "Pkcs11ModuleNotLoadable", "not found").await;
    patch_issuer(h, json!({"pkcs11": {"module": not_a_library}})).await;
    expect_not_ready(h, "Pkcs11ModuleNotLoadable", "did not load").await;
    patch_issuer(h, json!({"pkcs11": {"module": null}})).await;
    expect_ready(h, "the module").await;

    patch_issuer(h, json!({"pkcs11": {"tokenLabel": "no-such-token"}})).await;
    expect_not_ready(h, "TokenNotFound", "no token labelled \"no-such-token\"").await;
    patch_issuer(h, json!({"pkcs11": {"tokenLabel": TOKEN}})).await;
    expect_ready(h, "the token").await;

    // A wrong PIN; a request made meanwhile waits instead of failing.
    h.replace_secret(&h.ns, "hsm-pin", &[("pin", b"wrong-pin")]).await;
    expect_not_ready(h, "WrongPIN", "refused by the token").await;
    h.create_request("while-broken", &csr_pem("broken.example"), ferrum_ref(IssuerScope::Namespaced, "hsm")).await;
    h.decide("while-broken", true).await;
    let waiting = h.request_reason("while-broken", "Pending", Duration::from_secs(30)).await;
    assert!(ready_message(&waiting).contains("WrongPIN"), "{}", ready_message(&waiting));
    h.replace_secret(&h.ns, "hsm-pin", &[("pin", PIN.as_bytes())]).await;
    expect_ready(h, "the PIN").await;
    h.request_reason("while-broken", "Issued", Duration::from_secs(30)).await;

    patch_issuer(h, json!({"pkcs11": {"keyLabel": "no-such-key"}})).await;
    expect_not_ready(h, "KeyNotFound", "no private key labelled \"no-such-key\"").await;
    // The P-256 certificate with the RSA key: of another type.
    patch_issuer(h, json!({"pkcs11": {"keyLabel": "ca-rsa"}})).await;
    expect_not_ready(h, "KeyTypeUnsupported", "is of type RSA, not EC").await;
    // Another P-256 key: the test signature does not verify with the certificate's key.
    w.hsm.generate_key(TOKEN, PIN, "EC:prime256v1", "other-p256", "03");
    patch_issuer(h, json!({"pkcs11": {"keyLabel": "other-p256"}})).await;
    expect_not_ready(h, "KeyMismatch", "a test signature did not verify").await;
    patch_issuer(h, json!({"pkcs11": {"keyLabel": "ca-p256"}})).await;
    expect_ready(h, "the key").await;

    let expired = certificate_for(&w.root, &w.p256, "HSM P-256 CA", (-30, -1));
    let current = secret_data(h, "ca-p256", "tls.crt").await;
    h.replace_secret(&h.ns, "ca-p256", &[("tls.crt", expired.as_bytes()), ("ca.crt", w.root.cert_pem.as_bytes())])
        .await;
    expect_not_ready(h, "CAExpired", "has expired").await;
    h.replace_secret(&h.ns, "ca-p256", &[("tls.crt", &current), ("ca.crt", w.root.cert_pem.as_bytes())]).await;
    expect_ready(h, "the certificate").await;
    // A label that never matched (`no-such-token`) did not make the module initialise again,
    // which would have cost every issuer on it its sessions.
    assert!(!h.ferrum_log().contains("PKCS#11 module initialised again"), "{}", h.ferrum_log());
}

/// The token's files and SoftHSM2's configuration taken away while Ferrum runs (a token
/// unplugged, an HSM restarting), then put back: the requests made meanwhile wait and are then
/// issued; none fails.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_that_goes_away_and_comes_back() {
    let w = hsm_world("hsm-away", false, &[]).await;
    let h = &w.h;
    h.create_issuer_spec(IssuerScope::Namespaced, "hsm", hsm_spec("ca-p256", "ca-p256")).await;
    expect_ready(h, "nothing").await;
    let issuer = ferrum_ref(IssuerScope::Namespaced, "hsm");
    h.create_request("before", &csr_pem("before.example"), issuer.clone()).await;
    h.decide("before", true).await;
    h.request_reason("before", "Issued", Duration::from_secs(30)).await;

    let away = w.hsm.dir().join("away");
    std::fs::create_dir(&away).unwrap();
    std::fs::rename(&w.hsm.tokens, away.join("tokens")).unwrap();
    std::fs::rename(&w.hsm.conf, away.join("softhsm2.conf")).unwrap();
    let names: Vec<String> = (0..5).map(|i| format!("during-{i}")).collect();
    for name in &names {
        h.create_request(name, &csr_pem(&format!("{name}.example")), issuer.clone()).await;
        h.decide(name, true).await;
    }
    // For a while nothing is issued, and nothing fails.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let api = h.api::<CertificateRequest>();
    for name in &names {
        let cr = api.get(name).await.unwrap();
        let reason = cr.condition("Ready").and_then(|c| c.reason.clone()).unwrap_or_default();
        assert!(reason != "Failed" && reason != "Issued", "{name}: {reason}: {}", ready_message(&cr));
    }
    std::fs::rename(away.join("tokens"), &w.hsm.tokens).unwrap();
    std::fs::rename(away.join("softhsm2.conf"), &w.hsm.conf).unwrap();
    for name in &names {
        h.request_reason(name, "Issued", Duration::from_secs(60)).await;
    }
    assert!(
        h.ferrum_log().contains("PKCS#11 module initialised again"),
        "the token was found again by initialising the module again"
    );
    let failed: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|cr| {
            cr.condition_true("Failed") || cr.condition("Ready").and_then(|c| c.reason.as_deref()) == Some("Failed")
        })
        .map(|cr| cr.metadata.name.clone().unwrap_or_default())
        .collect();
    assert!(failed.is_empty(), "failed: {failed:?}");
}

/// Two hundred requests at once through one token: all issued, once each, and more than one
/// session signed at the same time.
#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_requests_sign_on_several_sessions() {
    let w = hsm_world("hsm-load", false, &["--concurrency", "16", "--pkcs11-max-sessions", "4"]).await;
    let h = &w.h;
    h.create_issuer_spec(IssuerScope::Namespaced, "hsm", hsm_spec("ca-p256", "ca-p256")).await;
    expect_ready(h, "nothing").await;
    let issuer = ferrum_ref(IssuerScope::Namespaced, "hsm");
    let csr = csr_pem("load.example");
    let names: Vec<String> = (0..200).map(|i| format!("load-{i}")).collect();
    futures::future::join_all(names.iter().map(|name| {
        let (issuer, csr) = (issuer.clone(), csr.clone());
        async move {
            h.create_request(name, &csr, issuer).await;
            h.decide(name, true).await;
        }
    }))
    .await;
    let api = h.api::<CertificateRequest>();
    let issued = eventually("200 requests issued", Duration::from_secs(180), || async {
        let list = api.list(&ListParams::default()).await.ok()?;
        let issued: Vec<CertificateRequest> = list
            .items
            .into_iter()
            .filter(|cr| cr.condition("Ready").and_then(|c| c.reason.as_deref()) == Some("Issued"))
            .collect();
        (issued.len() == 200).then_some(issued)
    })
    .await;
    let mut serials: Vec<Vec<u8>> = issued
        .iter()
        .map(|cr| {
            let chain = pem_certs(&cr.status.as_ref().map(|s| s.certificate.clone()).unwrap_or_default());
            let (_, cert) = X509Certificate::from_der(&chain[0]).expect("certificate parses");
            cert.raw_serial().to_vec()
        })
        .collect();
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 200, "200 distinct serials");
    let log = h.ferrum_log();
    let (_, metrics) = addresses(&log).expect("metrics address in the log");
    let (status, text) = http_get(&metrics, "/metrics").await;
    assert_eq!(status, 200);
    let series =
        format!("ferrum_pkcs11_sessions_in_use_max{{module=\"{}\",token=\"{TOKEN}\"}}", w.hsm.module.display());
    let peak = metric(&text, &series).unwrap_or_else(|| panic!("{series} in:\n{text}"));
    assert!(peak > 1.0 && peak <= 4.0, "sessions in use at once: {peak}");
    let open = format!("ferrum_pkcs11_sessions_open{{module=\"{}\",token=\"{TOKEN}\"}}", w.hsm.module.display());
    let open = metric(&text, &open).expect("open sessions");
    assert!(open <= 4.0, "the pool is bounded: {open}");
}

/// cert-manager's CA issuer with the CA key in a Secret, Ferrum with the same key imported into
/// the token and the same certificate: the certificates agree but for serial, validity
/// instants, key ids and signature. (The imported key is extractable: Ferrum says so.)
#[tokio::test(flavor = "multi_thread")]
async fn same_certificate_as_cert_managers_ca_issuer_with_the_key_on_a_token() {
    let w = hsm_world("hsm-compare", true, &[]).await;
    let h = &w.h;
    let ca = make_ca("Compare CA", CaOptions::default());
    // Extractable: it could be wrapped off the token, which Ferrum warns about.
    w.hsm.import_key(TOKEN, PIN, &ca.key_pem, "imported", "09", true);
    h.create_secret(&h.ns, "ca", &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    h.create_opaque_secret(&h.ns, "ca-cert", &[("tls.crt", ca.cert_pem.as_bytes())]).await;
    let mut spec = hsm_spec("imported", "ca-cert");
    spec["policy"] = json!({"allowCA": true});
    h.create_issuer_spec(IssuerScope::Namespaced, "ferrum", spec).await;
    let builtin: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
        "metadata": { "name": "builtin" }, "spec": { "ca": { "secretName": "ca" } },
    }))
    .unwrap();
    h.cert_manager("Issuer").create(&Default::default(), &builtin).await.expect("create Issuer");
    h.issuer_ready(IssuerScope::Namespaced, "ferrum", "True").await;
    let spec = parity_certificate_spec();
    create_certificate(h, "by-ferrum", ferrum_issuer("ferrum"), spec.clone()).await;
    let builtin_ref = json!({ "group": "cert-manager.io", "kind": "Issuer", "name": "builtin" });
    create_certificate(h, "by-builtin", builtin_ref, spec).await;
    certificate_ready(h, "by-ferrum").await;
    certificate_ready(h, "by-builtin").await;
    let ours_pem = secret_data(h, "by-ferrum-tls", "tls.crt").await;
    let theirs_pem = secret_data(h, "by-builtin-tls", "tls.crt").await;
    let (ours_chain, theirs_chain) = (pem_certs(&ours_pem), pem_certs(&theirs_pem));
    assert_eq!(ours_chain.len(), theirs_chain.len(), "chain layout of tls.crt");
    assert_eq!(
        pem_certs(&secret_data(h, "by-ferrum-tls", "ca.crt").await),
        pem_certs(&secret_data(h, "by-builtin-tls", "ca.crt").await),
        "ca.crt"
    );
    let (_, ours) = X509Certificate::from_der(&ours_chain[0]).unwrap();
    let (_, theirs) = X509Certificate::from_der(&theirs_chain[0]).unwrap();
    assert_same_certificate(&ours, &theirs, "Certificate, key on a token");
    let events = eventually("a KeyExtractable warning", Duration::from_secs(30), || async {
        let events = h.events_about("ferrum").await;
        events.iter().any(|e| e.reason.as_deref() == Some("KeyExtractable")).then_some(events)
    })
    .await;
    assert!(!events.is_empty());
}

/// PKCS#11 logs in the whole process: once one issuer's PIN has logged the token in, another
/// issuer naming the same key with a wrong PIN must not sign on that login. It is `WrongPIN`,
/// its request waits, and the issuer with the right PIN still issues. A third wrong PIN right
/// after is not even tried (no PIN-guessing loop that could lock the token).
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_pin_never_rides_on_another_issuers_login() {
    let w = hsm_world("hsm-pins", false, &[]).await;
    let h = &w.h;
    h.create_issuer_spec(IssuerScope::Namespaced, "good", hsm_spec("ca-p256", "ca-p256")).await;
    h.issuer_ready(IssuerScope::Namespaced, "good", "True").await;
    let good = ferrum_ref(IssuerScope::Namespaced, "good");
    h.create_request("good-1", &csr_pem("good1.example"), good.clone()).await;
    h.decide("good-1", true).await;
    h.request_reason("good-1", "Issued", Duration::from_secs(30)).await;

    h.create_opaque_secret(&h.ns, "guessed-pin", &[("pin", b"123456")]).await;
    let mut guessing = hsm_spec("ca-p256", "ca-p256");
    guessing["pkcs11"]["pinSecretRef"]["name"] = json!("guessed-pin");
    h.create_issuer_spec(IssuerScope::Namespaced, "hsm", guessing).await;
    expect_not_ready(h, "WrongPIN", "refused by the token").await;
    h.create_request("guessed", &csr_pem("guessed.example"), ferrum_ref(IssuerScope::Namespaced, "hsm")).await;
    h.decide("guessed", true).await;
    let waiting = h.request_reason("guessed", "Pending", Duration::from_secs(30)).await;
    assert!(ready_message(&waiting).contains("WrongPIN"), "{}", ready_message(&waiting));

    // The right PIN logs the token in again and issues.
    h.create_request("good-2", &csr_pem("good2.example"), good.clone()).await;
    h.decide("good-2", true).await;
    h.request_reason("good-2", "Issued", Duration::from_secs(30)).await;

    // Another guess at once: not tried, the issuer not Ready either way.
    h.create_opaque_secret(&h.ns, "guessed-pin-2", &[("pin", b"000000")]).await;
    let mut again = hsm_spec("ca-p256", "ca-p256");
    again["pkcs11"]["pinSecretRef"]["name"] = json!("guessed-pin-2");
    h.create_issuer_spec(IssuerScope::Namespaced, "again", again).await;
    let (reason, message) = h.issuer_ready(IssuerScope::Namespaced, "again", "False").await;
    assert!(
        reason == "TokenUnavailable" && message.contains("is logged in with another PIN") || reason == "WrongPIN",
        "{reason}: {message}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cr = h.api::<CertificateRequest>().get("guessed").await.unwrap();
    assert!(cr.status.as_ref().is_none_or(|s| s.certificate.is_empty()), "no certificate for a wrong PIN");
    let log = h.ferrum_log();
    assert!(!log.contains("123456") && !log.contains("000000") && !log.contains(PIN), "no PIN in the log");
}

/// The CA key deleted from the token while Ferrum signs with it: the next request finds it gone,
/// the issuer turns not Ready (`KeyUnavailable`, then `KeyNotFound`) and the request waits; the
/// key put back (the same key, imported again), the issuer is Ready and the request issued.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_that_vanishes_breaks_the_issuer_until_it_is_back() {
    let w = hsm_world("hsm-vanish", false, &[]).await;
    let h = &w.h;
    let ca = make_ca("Vanishing CA", CaOptions::default());
    w.hsm.import_key(TOKEN, PIN, &ca.key_pem, "vanishing", "0a", false);
    h.create_opaque_secret(&h.ns, "vanishing", &[("tls.crt", ca.cert_pem.as_bytes())]).await;
    h.create_issuer_spec(IssuerScope::Namespaced, "hsm", hsm_spec("vanishing", "vanishing")).await;
    expect_ready(h, "nothing").await;
    let issuer = ferrum_ref(IssuerScope::Namespaced, "hsm");
    h.create_request("before", &csr_pem("before.example"), issuer.clone()).await;
    h.decide("before", true).await;
    h.request_reason("before", "Issued", Duration::from_secs(30)).await;

    w.hsm.delete_private_key(TOKEN, PIN, "vanishing");
    h.create_request("after", &csr_pem("after.example"), issuer.clone()).await;
    h.decide("after", true).await;
    expect_not_ready(h, "KeyNotFound", "no private key labelled \"vanishing\"").await;
    let waiting = h.request_reason("after", "Pending", Duration::from_secs(30)).await;
    assert!(ready_message(&waiting).contains("is not ready"), "{}", ready_message(&waiting));

    w.hsm.import_key(TOKEN, PIN, &ca.key_pem, "vanishing", "0a", false);
    expect_ready(h, "the key").await;
    h.request_reason("after", "Issued", Duration::from_secs(30)).await;
}

/// The key on the token signs CRLs too: an issuer with a `pkcs11` block and a `crl` block, a
/// certificate revoked, the CRL Ferrum serves verified by OpenSSL with the HSM CA's certificate
/// and refusing the leaf.
#[tokio::test(flavor = "multi_thread")]
async fn the_key_on_the_token_signs_the_crl() {
    use crate::revocation::{create_revocation, crl_contents, fetch_crl_until, serial_of, settled};
    let w = hsm_world("hsm-crl", true, &[]).await;
    let h = &w.h;
    let mut spec = hsm_spec("ca-rsa", "ca-rsa");
    spec["crl"] = json!({"baseURL": "http://ferrum-crl.test", "validity": "10m"});
    h.create_issuer_spec(IssuerScope::Namespaced, "hsm", spec).await;
    h.issuer_ready(IssuerScope::Namespaced, "hsm", "True").await;
    create_certificate(h, "web", ferrum_issuer("hsm"), json!({"dnsNames": ["web.hsm.example"]})).await;
    certificate_ready(h, "web").await;
    let tls_crt = secret_data(h, "web-tls", "tls.crt").await;
    let serial = serial_of(&tls_crt);
    create_revocation(&h.client, &h.ns, "web", json!({"certificateRef": {"name": "web"}, "reason": "keyCompromise"}))
        .await
        .expect("create revocation");
    settled(h, &h.ns, "web", "Revoked").await;
    let addr = crl_address(&h.process(&h.fullname()).log_tail(2000)).expect("Ferrum serves CRLs");
    let path = format!("/namespaces/{}/ferrumissuers/hsm.crl", h.ns);
    let (crl, _) = fetch_crl_until(&addr, &path, |s| s.contains(&serial)).await;
    assert_eq!(crl_contents(&crl).0.len(), 1);

    let dir = tempfile::tempdir().expect("tempdir");
    let chain = pem_certs(&tls_crt);
    std::fs::write(dir.path().join("hsm-ca.pem"), pem_encode("CERTIFICATE", &chain[1])).expect("write");
    std::fs::write(dir.path().join("root.pem"), &w.root.cert_pem).expect("write");
    std::fs::write(dir.path().join("leaf.pem"), pem_encode("CERTIFICATE", &chain[0])).expect("write");
    std::fs::write(dir.path().join("crl.der"), &crl).expect("write");
    let (ok, out) = openssl(
        dir.path(),
        &["crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "hsm-ca.pem", "-verify", "-noout", "-text"],
    );
    assert!(ok && out.contains("verify OK"), "signed by the key on the token: {out}");
    assert!(out.contains("sha384WithRSAEncryption"), "RSA-3072, SHA-384 as for certificates: {out}");
    let (ok, pem) = openssl(dir.path(), &["crl", "-inform", "DER", "-in", "crl.der", "-outform", "PEM"]);
    assert!(ok, "{pem}");
    std::fs::write(dir.path().join("crl.pem"), &pem).expect("write");
    let args =
        ["verify", "-crl_check", "-CAfile", "root.pem", "-untrusted", "hsm-ca.pem", "-CRLfile", "crl.pem", "leaf.pem"];
    let (ok, out) = openssl(dir.path(), &args);
    assert!(!ok && out.contains("certificate revoked"), "{out}");
}
