//! `spec.request` as the apiserver hands it over: a JSON string holding base64 (Go's `[]byte`).
//! Reading a CertificateRequest must never fail, whatever the string; what it reads must be
//! exactly Go's base64 decoding of it; validation must not panic.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferrum::CertificateRequest;
use ferrum::x509::{NamePolicy, go_base64_decode};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();

    // Go base64: whatever decodes survives a standard re-encoding unchanged.
    let decoded = go_base64_decode(&text);
    if let Ok(bytes) = &decoded {
        let again = STANDARD.encode(bytes);
        assert_eq!(&go_base64_decode(&again).expect("re-encoded base64 must decode"), bytes);
        assert_eq!(&STANDARD.decode(&again).expect("a strict decoder reads it too"), bytes);
    }

    let object = json!({
        "metadata": {"name": "x", "namespace": "n"},
        "spec": {"request": text, "issuerRef": {"name": "i", "group": "ferrum.dev"}},
    });
    let cr: CertificateRequest =
        serde_json::from_value(object.clone()).expect("reading a CertificateRequest never fails");
    // The same object read from its JSON text reads the same.
    let from_text: CertificateRequest =
        serde_json::from_str(&object.to_string()).expect("reading a CertificateRequest never fails");
    assert_eq!(cr.spec, from_text.spec);

    match &decoded {
        Ok(bytes) => {
            assert_eq!(&cr.spec.request, bytes, "spec.request must be Go's decoding of the string");
            assert!(cr.spec.problems.is_empty(), "{:?}", cr.spec.problems);
        }
        Err(_) => {
            assert!(cr.spec.request.is_empty());
            assert!(cr.spec.problems.iter().any(|p| p.starts_with("spec.request")), "{:?}", cr.spec.problems);
        }
    }

    let _ = ferrum::validate_request(&cr, &NamePolicy::default());
});
