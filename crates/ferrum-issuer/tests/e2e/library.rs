//! The library on its own: a signer that fails and recovers, one that keeps failing, and the
//! example issuer from `crates/ferrum/examples`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ferrum::x509::{CaBundle, PublishedUrls, SoftwareKey, sign_with_ca};
use ferrum::{CertificateRequest, Issuer, IssuerKinds, IssuerReference, IssuerScope};
use ferrum::{Config, run};
use ferrum::{Health, IssuerContext, IssuerError, SignError, SignRequest, Signed, Signer};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::support::*;

#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
pub(crate) struct FlakySpec {
    note: String,
}

/// Fails `failures` times with a retryable error (or forever), then signs.
pub(crate) struct FlakySigner {
    failures: AtomicU32,
    forever: bool,
    attempts: Arc<Mutex<Vec<Instant>>>,
    ca: CaBundle,
    key: SoftwareKey,
}

impl FlakySigner {
    /// A signer whose every attempt fails retryably.
    pub(crate) fn failing_forever() -> Self {
        let (ca, key) = signing_ca("Failing CA");
        Self { failures: AtomicU32::new(0), forever: true, attempts: Arc::default(), ca, key }
    }
}

impl Signer for FlakySigner {
    type Spec = FlakySpec;

    async fn check(&self, _: &IssuerContext<'_, FlakySpec>) -> Result<Health, IssuerError> {
        Ok(Health::ready("ok"))
    }

    async fn sign(&self, request: &SignRequest<'_>, _: &IssuerContext<'_, FlakySpec>) -> Result<Signed, SignError> {
        self.attempts.lock().unwrap().push(Instant::now());
        if self.forever {
            return Err(SignError::Retryable("backend unavailable".into()));
        }
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return Err(SignError::Retryable("HSM busy".into()));
        }
        Ok(sign_with_ca(&self.ca, &self.key, request.template, &PublishedUrls::default(), SystemTime::now())?.into())
    }
}

fn flaky_kinds() -> IssuerKinds {
    IssuerKinds::new("flaky.e2e.ferrum.dev", "v1", "Flaky")
}

/// A CA for a signer of this file: its bundle and key.
fn signing_ca(name: &str) -> (CaBundle, SoftwareKey) {
    let ca = make_ca(name, CaOptions::default());
    (CaBundle::parse(ca.cert_pem.as_bytes(), None).unwrap(), SoftwareKey::from_pem(ca.key_pem.as_bytes()).unwrap())
}

/// Runs the library's controllers in this process with `signer` for the flaky kinds, serving
/// the harness's namespace only, and waits until a FlakyIssuer `flaky` there is Ready.
async fn serve_flaky<S: Signer<Spec = FlakySpec>>(h: &Harness, signer: S, max_retry: Duration) {
    install_crds(&h.client, flaky_kinds().crds::<FlakySpec>()).await;
    let mut config = Config::new(flaky_kinds(), h.ns.clone());
    config.namespace = Some(h.ns.clone());
    config.max_retry_duration = max_retry;
    config.field_manager = "ferrum-e2e-flaky".into();
    tokio::spawn(run(h.client.clone(), config, signer, std::future::pending()));
    let ar = flaky_kinds().api_resource(IssuerScope::Namespaced);
    let issuers: Api<Issuer<FlakySpec>> = Api::namespaced_with(h.client.clone(), &h.ns, &ar);
    issuers.create(&PostParams::default(), &Issuer::new("flaky", &ar, FlakySpec::default())).await.unwrap();
    eventually("FlakyIssuer Ready", Duration::from_secs(20), || async {
        let c = issuers.get("flaky").await.ok()?.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
        c.is_true().then_some(())
    })
    .await;
}

/// Runs the library's controllers in this process with a [`FlakySigner`].
async fn flaky_world(
    prefix: &str,
    forever: bool,
    failures: u32,
    max_retry: Duration,
) -> (Harness, Arc<Mutex<Vec<Instant>>>) {
    let h = Harness::new(prefix).await;
    let (ca, key) = signing_ca("Flaky CA");
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let signer = FlakySigner { failures: AtomicU32::new(failures), forever, attempts: attempts.clone(), ca, key };
    serve_flaky(&h, signer, max_retry).await;
    (h, attempts)
}

fn flaky_ref() -> IssuerReference {
    IssuerReference {
        name: "flaky".into(),
        kind: Some("FlakyIssuer".into()),
        group: Some("flaky.e2e.ferrum.dev".into()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_back_off_then_issue() {
    let (h, attempts) = flaky_world("flaky", false, 3, Duration::from_secs(600)).await;
    h.create_request("r1", &csr_pem("flaky.example"), flaky_ref()).await;
    h.decide("r1", true).await;
    let pending = h.request_reason("r1", "Pending", Duration::from_secs(20)).await;
    let message = pending.condition("Ready").unwrap().message.clone().unwrap();
    assert!(message.contains("HSM busy"), "{message}");
    h.request_reason("r1", "Issued", Duration::from_secs(30)).await;
    let attempts = attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), 4, "three failures, then the signing attempt that worked");
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    // 1 s, 2 s, 4 s, each jittered by at most ±20 %; above, 0.75 s for the status write and
    // the scheduling between attempts (a delay that started at 2 s, did not double, or more
    // than doubled would fall outside).
    for (gap, base) in gaps.iter().zip([1.0, 2.0, 4.0]) {
        let gap = gap.as_secs_f64();
        assert!(gap >= base * 0.8 - 0.05, "gaps {gaps:?}: {gap} s is under {base} s - 20 %");
        assert!(gap <= base * 1.2 + 0.75, "gaps {gaps:?}: {gap} s is over {base} s + 20 % (+0.75 s)");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_past_max_retry_duration_fail_the_request() {
    let (h, attempts) = flaky_world("flakyfail", true, 0, Duration::from_secs(5)).await;
    h.create_request("r1", &csr_pem("never.example"), flaky_ref()).await;
    h.decide("r1", true).await;
    let started = Instant::now();
    let cr = h.request_reason("r1", "Failed", Duration::from_secs(30)).await;
    let status = cr.status.unwrap();
    let message = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap().message.clone().unwrap();
    assert!(message.contains("kept failing") && message.contains("backend unavailable"), "{message}");
    assert!(status.failure_time.is_some());
    let attempts = attempts.lock().unwrap().clone();
    let span = *attempts.last().unwrap() - attempts[0];
    assert!(span >= Duration::from_secs(5), "gave up only after the limit ({span:?})");
    // Attempts at about 0, 1 (0.8-1.2) and 3 (2.4-3.6) s; the wait after the third is cut to
    // the deadline, so the attempt that gives up comes at 5 s (uncut, at 5.6 s or later).
    assert!(span <= Duration::from_millis(5_500), "gave up at the limit, not a backoff step later ({span:?})");
    assert_eq!(attempts.len(), 4, "attempts at 0, 1, 3 and 5 s: {attempts:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "Failed written at once ({:?})", started.elapsed());
}

/// Answers each attempt with the next error of its script; once the script is done, signs.
/// Records when it was asked.
struct ScriptedSigner {
    script: Mutex<VecDeque<SignError>>,
    attempts: Arc<Mutex<Vec<Instant>>>,
    ca: CaBundle,
    key: SoftwareKey,
}

impl ScriptedSigner {
    fn new(script: Vec<SignError>) -> (Self, Arc<Mutex<Vec<Instant>>>) {
        let (ca, key) = signing_ca("Scripted CA");
        let attempts = Arc::new(Mutex::new(Vec::new()));
        (Self { script: Mutex::new(script.into()), attempts: attempts.clone(), ca, key }, attempts)
    }
}

impl Signer for ScriptedSigner {
    type Spec = FlakySpec;

    async fn check(&self, _: &IssuerContext<'_, FlakySpec>) -> Result<Health, IssuerError> {
        Ok(Health::ready("ok"))
    }

    async fn sign(&self, request: &SignRequest<'_>, _: &IssuerContext<'_, FlakySpec>) -> Result<Signed, SignError> {
        self.attempts.lock().unwrap().push(Instant::now());
        if let Some(error) = self.script.lock().unwrap().pop_front() {
            return Err(error);
        }
        Ok(sign_with_ca(&self.ca, &self.key, request.template, &PublishedUrls::default(), SystemTime::now())?.into())
    }
}

/// Contract row 11: the signer refuses the request (`SignError::Permanent`). The request is
/// Failed for good with failureTime, one Warning event `Failed` says why, and the signer is not
/// asked again (it would sign now).
#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_signing_error_fails_the_request_for_good() {
    let h = Harness::new("permanent").await;
    let refusal = "this CA does not sign for refused.example";
    let (signer, attempts) = ScriptedSigner::new(vec![SignError::Permanent(refusal.into())]);
    serve_flaky(&h, signer, Duration::from_secs(600)).await;
    h.create_request("r1", &csr_pem("refused.example"), flaky_ref()).await;
    h.decide("r1", true).await;
    let failed = h.request_reason("r1", "Failed", Duration::from_secs(20)).await;
    let ready = failed.condition("Ready").unwrap();
    assert_eq!(ready.status, "False");
    let message = ready_message(&failed);
    assert!(message.contains(refusal), "the signer's reason is in the message: {message}");
    let status = failed.status.clone().unwrap();
    assert!(status.failure_time.is_some(), "failureTime with Ready=False/Failed");
    assert!(status.certificate.is_empty() && status.ca.is_empty(), "nothing issued");
    assert_one_event(&h.settled_events_about("r1").await, "Warning", "Failed", &message);

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(attempts.lock().unwrap().len(), 1, "terminal: the signer is asked once");
    let later = h.api::<CertificateRequest>().get("r1").await.unwrap();
    assert_eq!(later.status, failed.status, "and the request stays Failed");
}

/// A remote CA that answers later (`SignError::Pending { retry_after }`): the request is
/// Pending with the signer's message (no failureTime, no event), the signer is asked again
/// after `retry_after` (not before, not much later), and then the request is issued. Pending
/// is not a failure: the retry limit (1 s here) does not apply to it.
#[tokio::test(flavor = "multi_thread")]
async fn a_pending_signer_is_asked_again_after_retry_after_then_issues() {
    let h = Harness::new("pending").await;
    let retry_after = Duration::from_secs(2);
    let waiting = "order 42 is queued at the remote CA";
    let pending = || SignError::Pending { message: waiting.into(), retry_after };
    let (signer, attempts) = ScriptedSigner::new(vec![pending(), pending()]);
    serve_flaky(&h, signer, Duration::from_secs(1)).await;
    h.create_request("r1", &csr_pem("remote.example"), flaky_ref()).await;
    h.decide("r1", true).await;
    let cr = h.request_reason("r1", "Pending", Duration::from_secs(20)).await;
    assert_eq!(ready_message(&cr), waiting, "the signer's message");
    assert!(cr.status.unwrap().failure_time.is_none(), "waiting is not failing");

    let issued = h.request_reason("r1", "Issued", Duration::from_secs(20)).await;
    assert!(!issued.status.clone().unwrap().certificate.is_empty());
    let attempts = attempts.lock().unwrap().clone();
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(attempts.len(), 3, "asked twice while pending, then it signed; gaps {gaps:?}");
    for gap in &gaps {
        assert!(
            *gap >= retry_after - Duration::from_millis(50) && *gap <= retry_after + Duration::from_millis(750),
            "asked again after retry_after ({retry_after:?}): gaps {gaps:?}"
        );
    }
    assert_one_event(&h.settled_events_about("r1").await, "Normal", "Issued", &ready_message(&issued));
}

#[tokio::test(flavor = "multi_thread")]
async fn example_issuer_issues() {
    let h = Harness::new("example").await;
    let exe = std::env::current_exe().unwrap();
    let example = exe.parent().and_then(|deps| deps.parent()).unwrap().join("examples/minimal_issuer");
    assert!(example.exists(), "{} is missing: build it with `cargo build -p ferrum --examples`", example.display());
    let crds = std::process::Command::new(&example).arg("--crds").output().unwrap();
    assert!(crds.status.success());
    let docs = ferrum_testenv::crds::parse_crds(&String::from_utf8(crds.stdout).unwrap()).unwrap();
    install_crds(&h.client, docs.into_iter().map(|d| serde_json::from_value(d).unwrap())).await;
    let mut cmd = std::process::Command::new(&example);
    cmd.env("KUBECONFIG", h.env.kubeconfig_path())
        .env("POD_NAMESPACE", &h.ns)
        .env("POD_NAME", "minimal-0")
        .env("HEALTH_PROBE_BIND_ADDRESS", "127.0.0.1:0")
        .env("METRICS_BIND_ADDRESS", "127.0.0.1:0")
        .env("CRL_BIND_ADDRESS", "127.0.0.1:0")
        .env("LOG_LEVEL", "info,ferrum=debug");
    let process = h.env.spawn_process("minimal_issuer", cmd).unwrap();
    let log = process.log_path().to_owned();
    let _guard = PrintLogOnPanic(log.clone());
    // It elects itself leader on its Lease, and its probes answer.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(h.client.clone(), &h.ns);
    let holder = eventually("the example holds its Lease", Duration::from_secs(30), || async {
        leases.get("minimal-issuer").await.ok()?.spec?.holder_identity
    })
    .await;
    assert_eq!(holder, "minimal-0");
    let health = eventually("probe address in the log", Duration::from_secs(10), || async {
        addresses(&std::fs::read_to_string(&log).ok()?).map(|(health, _)| health)
    })
    .await;
    eventually("/readyz 200", Duration::from_secs(30), || async {
        (http_get(&health, "/readyz").await.0 == 200).then_some(())
    })
    .await;

    let kinds = IssuerKinds::new("demo.ferrum.dev", "v1", "Demo");
    let ar = kinds.api_resource(IssuerScope::Namespaced);
    let issuers: Api<Issuer<serde_json::Value>> = Api::namespaced_with(h.client.clone(), &h.ns, &ar);
    issuers.create(&PostParams::default(), &Issuer::new("demo", &ar, json!({ "enabled": false }))).await.unwrap();
    let reason = eventually("DemoIssuer Ready=False/Disabled", Duration::from_secs(30), || async {
        let c = issuers.get("demo").await.ok()?.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
        c.reason
    })
    .await;
    assert_eq!(reason, "Disabled");
    issuers
        .patch("demo", &PatchParams::apply("e2e"), &Patch::Merge(json!({ "spec": { "enabled": true } })))
        .await
        .unwrap();
    let demo_ref =
        IssuerReference { name: "demo".into(), kind: Some("DemoIssuer".into()), group: Some("demo.ferrum.dev".into()) };
    h.create_request("r1", &csr_pem("demo.example"), demo_ref).await;
    h.decide("r1", true).await;
    let cr: CertificateRequest = h.request_reason("r1", "Issued", Duration::from_secs(30)).await;
    assert!(!cr.status.unwrap().certificate.is_empty());
}

/// Prints a log file if the test fails.
struct PrintLogOnPanic(std::path::PathBuf);

impl Drop for PrintLogOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("===== {} =====\n{}", self.0.display(), std::fs::read_to_string(&self.0).unwrap_or_default());
        }
    }
}

/// Reports the issuer broken on its first signing, and fails checks until repaired.
struct BreakingSigner {
    broken: Arc<std::sync::atomic::AtomicBool>,
    signed_once: std::sync::atomic::AtomicBool,
    ca: CaBundle,
    key: SoftwareKey,
}

impl Signer for BreakingSigner {
    type Spec = FlakySpec;

    async fn check(&self, _: &IssuerContext<'_, FlakySpec>) -> Result<Health, IssuerError> {
        match self.broken.load(Ordering::SeqCst) {
            true => Err(IssuerError::new("KeyGone", "the signing key is gone")),
            false => Ok(Health::ready("ok")),
        }
    }

    async fn sign(&self, request: &SignRequest<'_>, _: &IssuerContext<'_, FlakySpec>) -> Result<Signed, SignError> {
        if !self.signed_once.swap(true, Ordering::SeqCst) {
            self.broken.store(true, Ordering::SeqCst);
            return Err(SignError::IssuerBroken(IssuerError::new("KeyGone", "the signing key is gone")));
        }
        Ok(sign_with_ca(&self.ca, &self.key, request.template, &PublishedUrls::default(), SystemTime::now())?.into())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signer_reporting_the_issuer_broken_marks_it_not_ready_until_repaired() {
    let h = Harness::new("broken").await;
    let kinds = IssuerKinds::new("broken.e2e.ferrum.dev", "v1", "Broken");
    install_crds(&h.client, kinds.crds::<FlakySpec>()).await;
    let ca = make_ca("Broken CA", CaOptions::default());
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let signer = BreakingSigner {
        broken: broken.clone(),
        signed_once: Default::default(),
        ca: CaBundle::parse(ca.cert_pem.as_bytes(), None).unwrap(),
        key: SoftwareKey::from_pem(ca.key_pem.as_bytes()).unwrap(),
    };
    let mut config = Config::new(kinds.clone(), h.ns.clone());
    config.namespace = Some(h.ns.clone());
    config.field_manager = "ferrum-e2e-broken".into();
    tokio::spawn(run(h.client.clone(), config, signer, std::future::pending()));
    let ar = kinds.api_resource(IssuerScope::Namespaced);
    let issuers: Api<Issuer<FlakySpec>> = Api::namespaced_with(h.client.clone(), &h.ns, &ar);
    issuers.create(&PostParams::default(), &Issuer::new("b", &ar, FlakySpec::default())).await.unwrap();
    let ready = |want: &'static str| {
        let issuers = issuers.clone();
        async move {
            eventually(&format!("issuer reason {want}"), Duration::from_secs(20), || async {
                let c = issuers.get("b").await.ok()?.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
                (c.reason.as_deref() == Some(want)).then_some(())
            })
            .await
        }
    };
    ready("Checked").await;

    let issuer_ref =
        IssuerReference { name: "b".into(), kind: Some("BrokenIssuer".into()), group: Some(kinds.group.clone()) };
    h.create_request("r1", &csr_pem("broken.example"), issuer_ref).await;
    h.decide("r1", true).await;
    ready("KeyGone").await;
    let api = h.api::<CertificateRequest>();
    eventually("request Pending on the broken issuer", Duration::from_secs(20), || async {
        let cr = api.get("r1").await.ok()?;
        let c = cr.condition("Ready")?;
        (c.reason.as_deref() == Some("Pending") && c.message.as_deref()?.contains("KeyGone")).then_some(())
    })
    .await;

    // Repair, and touch the issuer so it is re-checked now rather than at the timer.
    broken.store(false, Ordering::SeqCst);
    issuers
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { "repaired": "yes" } } })),
        )
        .await
        .unwrap();
    ready("Checked").await;
    h.request_reason("r1", "Issued", Duration::from_secs(20)).await;
}

/// A spec the CRD schema describes as a plain string, which the backend's type reads as an
/// enum: the apiserver accepts `mode: warp`, the type does not.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
struct PickySpec {
    #[schemars(with = "String")]
    mode: Mode,
}

#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Fast,
    Slow,
}

/// Signs at once in `fast` mode; in `slow` mode says it started and never finishes.
struct PickySigner {
    ca: CaBundle,
    key: SoftwareKey,
    started: Arc<tokio::sync::Notify>,
}

impl Signer for PickySigner {
    type Spec = PickySpec;

    async fn check(&self, _: &IssuerContext<'_, PickySpec>) -> Result<Health, IssuerError> {
        Ok(Health::ready("ok"))
    }

    async fn sign(
        &self,
        request: &SignRequest<'_>,
        issuer: &IssuerContext<'_, PickySpec>,
    ) -> Result<Signed, SignError> {
        if issuer.spec.mode == Mode::Slow {
            self.started.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(sign_with_ca(&self.ca, &self.key, request.template, &PublishedUrls::default(), SystemTime::now())?.into())
    }
}

/// An issuer whose spec the backend's type refuses is marked not Ready with the reason and
/// stops nothing else; a signer stuck mid-signing does not hold up shutdown.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_issuer_stops_nothing_and_shutdown_does_not_wait_for_a_stuck_signer() {
    let h = Harness::new("picky").await;
    let kinds = IssuerKinds::new("picky.e2e.ferrum.dev", "v1", "Picky");
    install_crds(&h.client, kinds.crds::<PickySpec>()).await;
    let ar = kinds.api_resource(IssuerScope::Namespaced);
    let issuers: Api<kube::api::DynamicObject> = Api::namespaced_with(h.client.clone(), &h.ns, &ar);
    for (name, mode) in [("bad", "warp"), ("good", "fast"), ("slow", "slow")] {
        let object = serde_json::from_value(json!({
            "apiVersion": "picky.e2e.ferrum.dev/v1", "kind": "PickyIssuer",
            "metadata": {"name": name}, "spec": {"mode": mode},
        }))
        .unwrap();
        issuers.create(&PostParams::default(), &object).await.expect("the apiserver accepts every mode string");
    }
    let ca = make_ca("Picky CA", CaOptions::default());
    let started = Arc::new(tokio::sync::Notify::new());
    let signer = PickySigner {
        ca: CaBundle::parse(ca.cert_pem.as_bytes(), None).unwrap(),
        key: SoftwareKey::from_pem(ca.key_pem.as_bytes()).unwrap(),
        started: started.clone(),
    };
    let mut config = Config::new(kinds.clone(), h.ns.clone());
    config.namespace = Some(h.ns.clone());
    config.field_manager = "ferrum-e2e-picky".into();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controllers = tokio::spawn(run(h.client.clone(), config, signer, async move {
        let _ = stopped.await;
    }));

    let ready = |name: &'static str| {
        let issuers = issuers.clone();
        async move {
            let issuer = issuers.get(name).await.ok()?;
            let ready = issuer.data["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Ready")?.clone();
            Some((
                ready["status"].as_str()?.to_owned(),
                ready["reason"].as_str()?.to_owned(),
                ready["message"].as_str()?.to_owned(),
            ))
        }
    };
    let bad = eventually("bad issuer checked", Duration::from_secs(20), || ready("bad")).await;
    assert_eq!((bad.0.as_str(), bad.1.as_str()), ("False", "InvalidSpec"));
    assert!(bad.2.contains("unknown variant `warp`"), "{}", bad.2);
    eventually("good issuer Ready", Duration::from_secs(20), || async {
        ready("good").await.filter(|r| r.0 == "True")
    })
    .await;
    let picky = |name: &str| IssuerReference {
        name: name.into(),
        kind: Some("PickyIssuer".into()),
        group: Some("picky.e2e.ferrum.dev".into()),
    };
    h.create_request("r1", &csr_pem("good.example"), picky("good")).await;
    h.decide("r1", true).await;
    h.request_reason("r1", "Issued", Duration::from_secs(20)).await;

    eventually("slow issuer Ready", Duration::from_secs(20), || async {
        ready("slow").await.filter(|r| r.0 == "True")
    })
    .await;
    h.create_request("stuck", &csr_pem("slow.example"), picky("slow")).await;
    h.decide("stuck", true).await;
    tokio::time::timeout(Duration::from_secs(20), started.notified()).await.expect("signing started");
    let asked = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), controllers)
        .await
        .expect("the controllers stop within 5 s although a signer is stuck")
        .unwrap()
        .expect("the controllers ran without error");
    eprintln!("shutdown while signing took {:?}", asked.elapsed());
    let stuck = h.api::<CertificateRequest>().get("stuck").await.unwrap();
    assert!(stuck.status.is_none_or(|s| s.certificate.is_empty()), "nothing was written for the abandoned signing");
}

/// Kinds whose CRDs are not installed: the controllers refuse to start and say how to
/// install them, instead of waiting on watches that can never list.
#[tokio::test(flavor = "multi_thread")]
async fn missing_crds_are_reported_at_start() {
    let h = Harness::new("nocrds").await;
    let kinds = IssuerKinds::new("absent.e2e.ferrum.dev", "v1", "Absent");
    let ca = make_ca("Absent CA", CaOptions::default());
    let signer = FlakySigner {
        failures: AtomicU32::new(0),
        forever: false,
        attempts: Arc::default(),
        ca: CaBundle::parse(ca.cert_pem.as_bytes(), None).unwrap(),
        key: SoftwareKey::from_pem(ca.key_pem.as_bytes()).unwrap(),
    };
    let mut config = Config::new(kinds, h.ns.clone());
    config.namespace = Some(h.ns.clone());
    let result =
        tokio::time::timeout(Duration::from_secs(20), run(h.client.clone(), config, signer, std::future::pending()))
            .await
            .expect("the check answers at once");
    let message = result.expect_err("missing CRDs are an error").to_string();
    assert!(
        message.contains("the CRD absentissuers.absent.e2e.ferrum.dev is not installed")
            && message.contains("IssuerKinds::crds"),
        "{message}"
    );
}

/// Signs, but holds its first answer until the test has changed the request, so that the
/// status write (which carries the resourceVersion read) conflicts.
struct ConflictSigner {
    calls: Arc<AtomicU32>,
    started: Arc<tokio::sync::Notify>,
    touched: Arc<tokio::sync::Notify>,
    ca: CaBundle,
    key: SoftwareKey,
}

impl Signer for ConflictSigner {
    type Spec = FlakySpec;

    async fn check(&self, _: &IssuerContext<'_, FlakySpec>) -> Result<Health, IssuerError> {
        Ok(Health::ready("ok"))
    }

    async fn sign(&self, request: &SignRequest<'_>, _: &IssuerContext<'_, FlakySpec>) -> Result<Signed, SignError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            self.started.notify_one();
            self.touched.notified().await;
        }
        Ok(sign_with_ca(&self.ca, &self.key, request.template, &PublishedUrls::default(), SystemTime::now())?.into())
    }
}

/// The request changes while it is being signed: the Issued write conflicts (409), and the
/// next attempt writes the certificate already signed instead of signing again.
#[tokio::test(flavor = "multi_thread")]
async fn a_conflicting_issued_write_does_not_sign_again() {
    let h = Harness::new("conflict").await;
    let kinds = IssuerKinds::new("conflict.e2e.ferrum.dev", "v1", "Conflict");
    install_crds(&h.client, kinds.crds::<FlakySpec>()).await;
    let ca = make_ca("Conflict CA", CaOptions::default());
    let (calls, started, touched) = (Arc::new(AtomicU32::new(0)), Arc::default(), Arc::default());
    let signer = ConflictSigner {
        calls: calls.clone(),
        started: Arc::clone(&started),
        touched: Arc::clone(&touched),
        ca: CaBundle::parse(ca.cert_pem.as_bytes(), None).unwrap(),
        key: SoftwareKey::from_pem(ca.key_pem.as_bytes()).unwrap(),
    };
    let mut config = Config::new(kinds.clone(), h.ns.clone());
    config.namespace = Some(h.ns.clone());
    config.field_manager = "ferrum-e2e-conflict".into();
    tokio::spawn(run(h.client.clone(), config, signer, std::future::pending()));
    let ar = kinds.api_resource(IssuerScope::Namespaced);
    let issuers: Api<Issuer<FlakySpec>> = Api::namespaced_with(h.client.clone(), &h.ns, &ar);
    issuers.create(&PostParams::default(), &Issuer::new("conflict", &ar, FlakySpec::default())).await.unwrap();
    eventually("ConflictIssuer Ready", Duration::from_secs(20), || async {
        let c = issuers.get("conflict").await.ok()?.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
        c.is_true().then_some(())
    })
    .await;
    let conflict_ref = IssuerReference {
        name: "conflict".into(),
        kind: Some("ConflictIssuer".into()),
        group: Some("conflict.e2e.ferrum.dev".into()),
    };
    h.create_request("r1", &csr_pem("conflict.example"), conflict_ref).await;
    h.decide("r1", true).await;
    tokio::time::timeout(Duration::from_secs(20), started.notified()).await.expect("signing started");
    // A new resourceVersion while the signer works: the write that follows must conflict.
    h.api::<CertificateRequest>()
        .patch("r1", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})))
        .await
        .unwrap();
    touched.notify_one();
    let cr = h.request_reason("r1", "Issued", Duration::from_secs(20)).await;
    assert!(!cr.status.unwrap().certificate.is_empty());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "signed once; the conflicting write was retried with the same certificate"
    );
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The value of a metric series from a `/metrics` scrape of `port`.
async fn scrape(port: u16, series: &str) -> Option<f64> {
    metric(&http_get(&format!("127.0.0.1:{port}"), "/metrics").await.1, series)
}

/// Requests that keep failing, then deleted: nothing is kept about them and
/// `ferrum_retries_waiting` goes back to 0 (it stayed up before). Runs the library's whole
/// runtime in this process, leader election off, metrics on a known port.
#[tokio::test(flavor = "multi_thread")]
async fn deleted_requests_leave_no_retry_state() {
    let h = Harness::new("deleted").await;
    let kinds = IssuerKinds::new("deleted.e2e.ferrum.dev", "v1", "Deleted");
    install_crds(&h.client, kinds.crds::<FlakySpec>()).await;
    let signer = FlakySigner::failing_forever();
    let mut runtime = ferrum::runtime::RuntimeConfig::from_env("deleted");
    runtime.kubeconfig = Some(h.env.kubeconfig_path().to_owned());
    runtime.leader_election = None;
    runtime.log_level = "off".into(); // the runtime's subscriber is global to this test binary
    let metrics_port = free_port();
    runtime.metrics_address = std::net::SocketAddr::from(([127, 0, 0, 1], metrics_port));
    runtime.health_address = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut config = Config::new(kinds.clone(), h.ns.clone());
    config.namespace = Some(h.ns.clone());
    config.field_manager = "ferrum-e2e-deleted".into();
    let running = tokio::spawn(ferrum::runtime::run(runtime, config, move |_| signer));

    let ar = kinds.api_resource(IssuerScope::Namespaced);
    let issuers: Api<Issuer<FlakySpec>> = Api::namespaced_with(h.client.clone(), &h.ns, &ar);
    issuers.create(&PostParams::default(), &Issuer::new("deleted", &ar, FlakySpec::default())).await.unwrap();
    let deleted_ref = IssuerReference {
        name: "deleted".into(),
        kind: Some("DeletedIssuer".into()),
        group: Some("deleted.e2e.ferrum.dev".into()),
    };
    for name in ["d1", "d2", "d3"] {
        h.create_request(name, &csr_pem(&format!("{name}.example")), deleted_ref.clone()).await;
        h.decide(name, true).await;
    }
    eventually("three requests backing off", Duration::from_secs(30), || async {
        (scrape(metrics_port, "ferrum_retries_waiting").await? == 3.0).then_some(())
    })
    .await;
    let requests = h.api::<CertificateRequest>();
    for name in ["d1", "d2", "d3"] {
        requests.delete(name, &Default::default()).await.unwrap();
    }
    eventually("no retry state left", Duration::from_secs(10), || async {
        (scrape(metrics_port, "ferrum_retries_waiting").await? == 0.0).then_some(())
    })
    .await;
    running.abort();
}
