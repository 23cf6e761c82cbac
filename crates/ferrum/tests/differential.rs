//! Differential test against cert-manager's own decoding of `spec.request`.
//!
//! `tools/csr-oracle` is a small Go program that decodes a request exactly as cert-manager does
//! (`encoding/json` `[]byte`, size cap, `pem.Decode`, `x509.ParseCertificateRequest`,
//! `CheckSignature`). A corpus of real requests and mutations of them (label variants, extra
//! blocks, whitespace, truncation, trailing data, alternative base64, DER changes, byte flips)
//! goes through both. For every input, Ferrum must either refuse it or sign exactly the CSR the
//! oracle saw: same DER, same subject bytes, same public key, same subjectAltName extension.
//! What an approver saw is what gets signed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferrum::CertificateRequest;
use ferrum::validate_request;
use ferrum::x509::CaBundle;
use ferrum::x509::PublishedUrls;
use ferrum::x509::SoftwareKey;
use ferrum::x509::sign_with_ca;
use ferrum_testenv::fixtures::{self, repo_root};
use serde_json::{Value, json};
use x509_parser::prelude::*;

/// Builds the oracle with the local Go toolchain.
fn build_oracle() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("csr-oracle");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(repo_root().join("tools/csr-oracle"))
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .status()
        .expect("the Go toolchain (go 1.26) is needed to build tools/csr-oracle: install Go and put `go` on PATH");
    assert!(status.success(), "building tools/csr-oracle failed");
    out
}

fn openssl(dir: &Path, args: &[&str]) {
    let (ok, output) = fixtures::openssl(dir, args);
    assert!(ok, "openssl {args:?}: {output}");
}

/// A CSR made by openssl: key generation arguments, subject, extra `req` arguments.
fn make_csr(dir: &Path, keygen: &[&str], subject: &str, extra: &[&str]) -> String {
    let mut args = vec!["genpkey"];
    args.extend(keygen);
    args.extend(["-out", "k.pem"]);
    openssl(dir, &args);
    let mut args = vec!["req", "-new", "-key", "k.pem", "-subj", subject, "-out", "r.pem"];
    args.extend(extra);
    openssl(dir, &args);
    std::fs::read_to_string(dir.join("r.pem")).unwrap()
}

/// A deterministic generator for the byte flips (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The PEM body of `pem`, as one base64 string.
fn body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

fn block(label: &str, body64: &str) -> String {
    let lines: Vec<&str> =
        body64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// Every input of the corpus, as the JSON value of `spec.request`, with a name.
fn corpus(dir: &Path) -> Vec<(String, Value)> {
    let rsa = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
    let p256 = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
    let sans = "subjectAltName=DNS:a.example,DNS:*.b.example,IP:10.0.0.1,IP:2001:db8::1,URI:spiffe://c/ns/x,email:o@example.com";
    let a = make_csr(dir, &p256, "/O=Team/CN=approved.example", &["-addext", sans]);
    let b = make_csr(dir, &p256, "/CN=attacker.example", &["-addext", "subjectAltName=DNS:attacker.example"]);
    let bases = vec![
        ("p256", a.clone()),
        ("rsa", make_csr(dir, &rsa, "/CN=rsa.example", &[])),
        (
            "rsa-pss",
            make_csr(
                dir,
                &rsa,
                "/CN=pss.example",
                &["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest", "-sha384"],
            ),
        ),
        ("ed25519", make_csr(dir, &["-algorithm", "ED25519"], "/CN=ed.example", &[])),
        ("other-name", make_csr(dir, &p256, "/CN=o.example", &["-addext", "subjectAltName=otherName:1.2.3.4;UTF8:x"])),
    ];
    let (body_a, body_b) = (body(&a), body(&b));
    let mut pems: Vec<(String, String)> = Vec::new();
    for (name, pem) in &bases {
        pems.push((format!("{name}/as-is"), pem.clone()));
    }
    // Labels.
    for label in [
        "NEW CERTIFICATE REQUEST",
        "CERTIFICATE",
        "certificate request",
        "CERTIFICATE  REQUEST",
        "X509 CRL",
        "CERTIFICATE REQUEST ",
        "",
    ] {
        pems.push((format!("label/{label:?}"), block(label, &body_a)));
    }
    // Extra blocks: the approval bypass and its relatives.
    pems.push((
        "blocks/foo-then-b".into(),
        format!("{}{}", block("FOO", &body_a), block("CERTIFICATE REQUEST", &body_b)),
    ));
    pems.push(("blocks/a-then-b".into(), format!("{a}{b}")));
    pems.push(("blocks/b-then-a".into(), format!("{b}{a}")));
    pems.push(("blocks/a-twice".into(), format!("{a}{a}")));
    pems.push(("blocks/garbage-then-a".into(), format!("{}{a}", block("CERTIFICATE REQUEST", "!!!!"))));
    pems.push(("blocks/cert-label-b-then-a".into(), format!("{}{a}", block("CERTIFICATE", &body_b))));
    pems.push((
        "blocks/headers-then-a".into(),
        format!("-----BEGIN FOO-----\nProc-Type: 4,ENCRYPTED\n\n{body_b}\n-----END FOO-----\n{a}"),
    ));
    // Whitespace.
    let ws: Vec<(&str, String)> = vec![
        ("leading-newlines", format!("\n\n{a}")),
        ("leading-spaces-same-line", format!("  {a}")),
        ("leading-tab-line", format!("\t\n{a}")),
        ("trailing-spaces", format!("{a}   \n\t")),
        ("crlf", a.replace('\n', "\r\n")),
        ("cr-only", a.replace('\n', "\r")),
        ("no-final-newline", a.trim_end().to_owned()),
        (
            "body-unwrapped",
            format!("-----BEGIN CERTIFICATE REQUEST-----\n{body_a}\n-----END CERTIFICATE REQUEST-----\n"),
        ),
        ("spaces-in-body", a.replacen('\n', "\n ", 2)),
        ("tab-in-body", a.replacen('\n', "\n\t", 2)),
        ("blank-line-in-body", a.replacen('\n', "\n\n", 2)),
        ("trailing-space-begin-line", a.replacen("-----\n", "----- \n", 1)),
        ("indented-end", a.replace("\n-----END", "\n -----END")),
        ("nul-before", format!("\0{a}")),
        ("bom-before", format!("\u{feff}{a}")),
    ];
    for (name, pem) in ws {
        pems.push((format!("whitespace/{name}"), pem));
    }
    // Headers inside the block.
    pems.push(("headers/proc-type".into(), a.replacen("-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1)));
    // Truncation.
    for cut in (10..a.len()).step_by(a.len() / 12).chain([a.len() - 1, a.len() - 2]) {
        pems.push((format!("truncated/{cut}"), a[..cut].to_owned()));
    }
    // Trailing data.
    for (name, tail) in [
        ("text", "x"),
        ("nul", "\0"),
        ("begin-only", "-----BEGIN CERTIFICATE REQUEST-----\n"),
        ("second-end", "-----END CERTIFICATE REQUEST-----\n"),
        ("comment", "# a comment\n"),
    ] {
        pems.push((format!("trailing/{name}"), format!("{a}{tail}")));
    }
    // Alternative base64 inside the PEM body: non-canonical trailing bits, missing padding,
    // the URL alphabet.
    let body_nc = non_canonical(&body_a);
    pems.push(("body64/non-canonical-bits".into(), block("CERTIFICATE REQUEST", &body_nc)));
    pems.push(("body64/no-padding".into(), block("CERTIFICATE REQUEST", body_a.trim_end_matches('='))));
    pems.push((
        "body64/url-alphabet".into(),
        block("CERTIFICATE REQUEST", &body_a.replace('+', "-").replace('/', "_")),
    ));
    pems.push(("body64/extra-padding".into(), block("CERTIFICATE REQUEST", &format!("{body_a}===="))));
    // DER changes: trailing bytes inside the block, a BER long-form length.
    let der_a = STANDARD.decode(&body_a).unwrap();
    let mut trailing = der_a.clone();
    trailing.extend([0, 0]);
    pems.push(("der/trailing-bytes".into(), block("CERTIFICATE REQUEST", &STANDARD.encode(&trailing))));
    let mut ber = der_a.clone();
    if ber[1] == 0x81 {
        // 30 81 LL → 30 82 00 LL: a non-minimal length, invalid DER.
        ber.splice(1..2, [0x82, 0x00]);
        pems.push(("der/ber-length".into(), block("CERTIFICATE REQUEST", &STANDARD.encode(&ber))));
    }
    // Byte flips in the PEM text and in the DER.
    let mut rng = Rng(0x5eed_f00d_cafe_d00d);
    for i in 0..500 {
        let mut text = a.clone().into_bytes();
        let at = rng.below(text.len());
        text[at] = (rng.next() & 0xff) as u8;
        pems.push((format!("flip-text/{i}"), String::from_utf8_lossy(&text).into_owned()));
    }
    for i in 0..500 {
        let mut der = der_a.clone();
        let at = rng.below(der.len());
        der[at] ^= 1 << rng.below(8);
        pems.push((format!("flip-der/{i}"), block("CERTIFICATE REQUEST", &STANDARD.encode(&der))));
    }

    let mut inputs: Vec<(String, Value)> =
        pems.into_iter().map(|(name, pem)| (name, Value::String(STANDARD.encode(pem.as_bytes())))).collect();
    // Alternative base64 of the field itself (what the apiserver stores).
    let field = STANDARD.encode(a.as_bytes());
    let wrapped =
        |sep: &str| field.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(sep);
    for (name, text) in [
        ("lf-every-76", wrapped("\n")),
        ("crlf-every-76", wrapped("\r\n")),
        ("newline-in-padding", format!("{}\n", field)),
        ("non-canonical-bits", non_canonical(&field)),
        ("no-padding", field.trim_end_matches('=').to_owned()),
        ("url-alphabet", field.replace('+', "-").replace('/', "_")),
        ("spaces", wrapped(" ")),
        ("tabs", wrapped("\t")),
        ("garbage-after-padding", format!("{field}QQ==")),
    ] {
        inputs.push((format!("field64/{name}"), Value::String(text)));
    }
    inputs.push(("field/null".into(), Value::Null));
    inputs.push(("field/empty".into(), Value::String(String::new())));
    inputs.push(("field/number".into(), json!(7)));
    // Over the cap, and exactly at it (whitespace padding).
    let mut at_cap = a.clone().into_bytes();
    at_cap.resize(36_500, b'\n');
    inputs.push(("cap/36500".into(), Value::String(STANDARD.encode(&at_cap))));
    at_cap.push(b'\n');
    inputs.push(("cap/36501".into(), Value::String(STANDARD.encode(&at_cap))));
    inputs
}

/// Changes the last base64 character before the padding so that the unused bits are set.
fn non_canonical(b64: &str) -> String {
    let trimmed = b64.trim_end_matches('=');
    let padding = b64.len() - trimmed.len();
    if padding == 0 {
        return b64.to_owned();
    }
    let mut chars: Vec<char> = trimmed.chars().collect();
    let last = chars.pop().unwrap();
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let value = ALPHABET.find(last).unwrap();
    let unused = if padding == 1 { 0b11 } else { 0b1111 };
    chars.push(ALPHABET.as_bytes()[value | unused] as char);
    format!("{}{}", chars.into_iter().collect::<String>(), "=".repeat(padding))
}

fn run_oracle(oracle: &Path, inputs: &[(String, Value)]) -> Vec<Value> {
    let mut child =
        Command::new(oracle).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("start csr-oracle");
    let mut stdin = child.stdin.take().unwrap();
    let lines: String = inputs
        .iter()
        .enumerate()
        .map(|(id, (_, request))| format!("{}\n", json!({"id": id, "request": request})))
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(lines.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "csr-oracle failed");
    let results: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(results.len(), inputs.len(), "one oracle answer per input");
    results
}

fn b64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().expect("base64 string")).unwrap()
}

#[test]
fn ferrum_signs_only_what_cert_manager_reads() {
    let dir = tempfile::tempdir().unwrap();
    let oracle = build_oracle();
    let inputs = corpus(dir.path());
    let answers = run_oracle(&oracle, &inputs);

    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-subj",
            "/CN=Differential CA",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
            "-out",
            "ca.crt",
        ],
    );
    let bundle = CaBundle::parse(&std::fs::read(dir.path().join("ca.crt")).unwrap(), None).unwrap();
    let key = SoftwareKey::from_pem(&std::fs::read(dir.path().join("ca.key")).unwrap()).unwrap();

    let default_policy = ferrum::policy::IssuerPolicy::default().compile(ferrum::IssuerScope::Namespaced).unwrap();
    let (mut signed, mut refused, mut oracle_ok) = (0, 0, 0);
    let mut refused_names = Vec::new();
    for ((name, request), answer) in inputs.iter().zip(&answers) {
        let ok = answer["ok"].as_bool().unwrap();
        oracle_ok += usize::from(ok);
        let cr: CertificateRequest = serde_json::from_value(json!({
            "apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest",
            "metadata": {"name": "x", "namespace": "ns"},
            "spec": {"request": request, "issuerRef": {"name": "ca", "group": "ferrum.dev"}},
        }))
        .unwrap_or_else(|e| panic!("{name}: reading a request must never fail: {e}"));
        let Ok(ferrum::CheckedRequest { csr, template, .. }) = validate_request(&cr, &default_policy, None) else {
            refused += 1;
            refused_names.push(name.as_str());
            continue;
        };
        signed += 1;
        assert!(ok, "{name}: Ferrum would sign what cert-manager cannot read: {answer}");
        assert_eq!(csr.der(), b64(&answer["der"]), "{name}: Ferrum read other DER than cert-manager");
        let issued = sign_with_ca(&bundle, &key, &template, &PublishedUrls::default(), SystemTime::now())
            .unwrap_or_else(|e| panic!("{name}: signing failed: {e}"));
        let leaf_pem = issued.chain_pem.split_inclusive("-----END CERTIFICATE-----").next().unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(leaf_pem.as_bytes()).unwrap();
        let (_, cert) = X509Certificate::from_der(&pem.contents).unwrap();
        assert_eq!(cert.subject().as_raw(), b64(&answer["rawSubject"]), "{name}: subject");
        assert_eq!(cert.public_key().raw, b64(&answer["rawSPKI"]), "{name}: public key");
        let requested_san = answer["extensions"].as_array().unwrap().iter().find(|e| e["id"] == "2.5.29.17");
        let issued_san = cert.extensions().iter().find(|e| e.oid.to_id_string() == "2.5.29.17");
        assert_eq!(
            issued_san.map(|e| e.value.to_vec()),
            requested_san.map(|e| b64(&e["value"])),
            "{name}: subjectAltName"
        );
        if let Some(san) = cert.subject_alternative_name().unwrap() {
            let dns: Vec<String> = san
                .value
                .general_names
                .iter()
                .filter_map(|n| if let GeneralName::DNSName(d) = n { Some(d.to_string()) } else { None })
                .collect();
            let theirs: Vec<String> =
                answer["dnsNames"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_owned()).collect();
            assert_eq!(dns, theirs, "{name}: DNS names");
        }
    }
    eprintln!(
        "differential: {} inputs; cert-manager reads {oracle_ok}; Ferrum signs {signed}, refuses {refused}",
        inputs.len()
    );
    // The corpus must exercise both sides, and the known bypasses must be among the refusals.
    assert!(signed >= 8, "too few accepted inputs ({signed}): the corpus is not testing signing");
    for must_refuse in [
        "blocks/foo-then-b",
        "blocks/a-then-b",
        "blocks/garbage-then-a",
        "blocks/headers-then-a",
        "label/\"CERTIFICATE\"",
        "trailing/text",
        "cap/36501",
        "other-name/as-is",
    ] {
        assert!(refused_names.contains(&must_refuse), "{must_refuse} must be refused");
    }
    for must_sign in ["p256/as-is", "rsa-pss/as-is", "field64/lf-every-76", "field64/non-canonical-bits", "cap/36500"] {
        assert!(!refused_names.contains(&must_sign), "{must_sign} must be signed");
    }
}
