//! The PIN rules of the `pkcs11` backend on a real token (SoftHSM2): PKCS#11 logs in the whole
//! process, so a PIN is never taken on trust because another one logged the token in, and wrong
//! PINs are not tried often enough to lock the token (`docs/pkcs11.md`, "The PIN, and tenants").
//! Needs Debian's `softhsm2` and `opensc` (`scripts/prereqs.sh` installs them).

use ferrum::pkcs11::bench::Hsm;
use ferrum::x509::CaBundle;
use ferrum_testenv::softhsm::SoftHsm;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};

const TOKEN: &str = "pins";
const PIN: &str = "the-right-pin";

#[test]
fn wrong_pins_never_sign_and_are_not_guessed_into_a_locked_token() {
    let hsm = SoftHsm::new();
    hsm.init_token(TOKEN, "so-pin", PIN);
    let (key, conf) = hsm.env();
    // SAFETY: the only test of this binary; no other thread reads the environment, and the
    // module (which reads SOFTHSM2_CONF when it is initialised) is loaded after this.
    unsafe { std::env::set_var(key, conf) };
    let ca_key = KeyPair::generate().unwrap();
    hsm.import_key(TOKEN, PIN, &ca_key.serialize_pem(), "ca", "01", false);
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca = CaBundle::parse(params.self_signed(&ca_key).unwrap().pem().as_bytes(), None).unwrap();

    let module = Hsm::new(&hsm.module, 8);
    let right = module.signer(TOKEN, PIN, "ca", &ca).expect("the right PIN logs in");
    // The token is logged in now; a wrong PIN must still be refused, by the token.
    let refused = module.signer(TOKEN, "guess-1", "ca", &ca).err().expect("a wrong PIN on a logged-in token");
    assert!(refused.contains("was refused by the token"), "{refused}");
    // The right PIN logs the token in again (the probe logged it out).
    let again = module.signer(TOKEN, PIN, "ca", &ca).expect("the right PIN again");
    drop((right, again));
    // Another PIN right after a probe: not tried at all.
    let throttled = module.signer(TOKEN, "guess-2", "ca", &ca).err().expect("a second guess within 30 s");
    assert!(throttled.contains("is logged in with another PIN"), "{throttled}");
    // The same wrong PIN again: not tried again.
    let remembered = module.signer(TOKEN, "guess-1", "ca", &ca).err().expect("a refused PIN again");
    assert!(remembered.contains("not tried again"), "{remembered}");

    // A state that has not seen the right PIN work (a restarted Ferrum): a wrong guess is tried
    // and refused; the token then reports a failed attempt (SoftHSM2 sets
    // CKF_USER_PIN_COUNT_LOW), so no further unproven PIN is tried, not even the right one…
    let fresh = Hsm::new(&hsm.module, 8);
    let error = fresh.signer(TOKEN, "guess-2", "ca", &ca).err().expect("a wrong PIN");
    assert!(error.contains("was refused by the token"), "{error}");
    for pin in ["guess-3", PIN] {
        let spared = fresh.signer(TOKEN, pin, "ca", &ca).err().expect("an unproven PIN after a refusal");
        assert!(spared.contains("not tried: the token reports failed PIN attempts"), "{spared}");
    }
    // …until a PIN that has worked logs in (which resets the token's counter): then the right
    // PIN is tried, and works, in the restarted state too.
    let signer = module.signer(TOKEN, PIN, "ca", &ca).expect("a PIN that worked before");
    use ferrum::x509::SigningKey;
    assert!(!signer.sign(b"message").unwrap().is_empty());
    drop(signer);
    let restarted = fresh.signer(TOKEN, PIN, "ca", &ca).expect("the right PIN once the counter is reset");
    assert!(!restarted.sign(b"message").unwrap().is_empty());
}
