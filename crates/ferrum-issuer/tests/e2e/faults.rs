//! The fault suite: leaders killed, stalled and deposed by hand, the apiserver restarted with
//! etcd compacted under it, and a failing request whose issuer keeps restarting. Each test
//! judges from the apiserver (a watch of every request, the audit log), not from Ferrum's logs:
//! every request issued, each certificate written exactly once, no serial twice.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ferrum::{CertificateRequest, Config, Issuer, IssuerKinds, IssuerReference, IssuerScope, run};
use ferrum_testenv::{ControlPlane, ControlPlaneOptions, TestEnv};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};

use crate::library::{FlakySigner, FlakySpec};
use crate::support::*;

/// Leader-election timings short enough for a test: a 4 s lease, 3 s renew deadline, 0.5 s
/// between attempts.
const FAST_ELECTION: [&str; 6] = [
    "--leader-election-lease-duration",
    "4s",
    "--leader-election-renew-deadline",
    "3s",
    "--leader-election-retry-period",
    "500ms",
];
const LEASE: Duration = Duration::from_secs(4);

/// Every certificate value each request of the namespace carried, in the order a watch saw
/// them (a relist after a watch error repeats the current value; only changes are kept).
#[derive(Clone, Default)]
struct Writes(Arc<Mutex<BTreeMap<String, Vec<Vec<u8>>>>>);

impl Writes {
    /// Starts watching the harness's requests.
    fn watch(h: &Harness) -> Self {
        let writes = Self::default();
        let sink = writes.clone();
        let api = h.api::<CertificateRequest>();
        tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
            while let Some(event) = events.next().await {
                let (watcher::Event::Apply(cr) | watcher::Event::InitApply(cr)) = (match event {
                    Ok(event) => event,
                    Err(_) => continue, // the watcher retries; the relist repeats current values
                }) else {
                    continue;
                };
                let certificate = cr.status.map(|s| s.certificate).unwrap_or_default();
                if certificate.is_empty() {
                    continue;
                }
                let mut seen = sink.0.lock().unwrap();
                let values = seen.entry(cr.metadata.name.unwrap_or_default()).or_default();
                if values.last() != Some(&certificate) {
                    values.push(certificate);
                }
            }
        });
        writes
    }

    /// Waits until the watch has seen a certificate on each of `names` (after an apiserver
    /// restart the watch itself may still be backing off when the requests are all Issued),
    /// and two seconds more for any second write to show; then asserts that each got exactly
    /// one certificate and that no two share a serial.
    async fn assert_exactly_once(&self, names: &[String]) {
        eventually("the watch saw every certificate", Duration::from_secs(60), || async {
            let seen = self.0.lock().unwrap();
            names.iter().all(|n| seen.contains_key(n)).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let seen = self.0.lock().unwrap();
        let mut serials = HashSet::new();
        for name in names {
            let values = seen.get(name).unwrap_or_else(|| panic!("{name}: no certificate seen by the watch"));
            assert_eq!(values.len(), 1, "{name}: certificate written {} times", values.len());
            let pem = &values[0];
            let der = pem_certs(pem).into_iter().next().unwrap_or_else(|| panic!("{name}: no PEM certificate"));
            let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
            assert!(serials.insert(cert.raw_serial().to_vec()), "{name}: serial issued twice");
        }
        assert_eq!(serials.len(), names.len());
    }
}

/// Creates `count` requests `<prefix>-<i>`, `per_second` of them a second, retrying each
/// creation until the apiserver takes it (it may be restarting). Returns their names.
async fn create_requests(api: Api<CertificateRequest>, prefix: &str, count: usize, per_second: u32) -> Vec<String> {
    let mut names = Vec::new();
    let pause = Duration::from_secs(1) / per_second;
    for i in 0..count {
        let name = format!("{prefix}-{i}");
        let csr = csr_pem(&format!("{name}.example"));
        let spec = ferrum::CertificateRequestSpec {
            request: csr,
            issuer_ref: ferrum_ref(IssuerScope::Namespaced, "ca"),
            ..Default::default()
        };
        let cr = CertificateRequest::new(&name, spec);
        eventually(&format!("{name} created"), Duration::from_secs(90), || async {
            match api.create(&PostParams::default(), &cr).await {
                Ok(_) => Some(()),
                Err(kube::Error::Api(status)) if status.code == 409 => Some(()),
                Err(_) => None,
            }
        })
        .await;
        names.push(name);
        tokio::time::sleep(pause).await;
    }
    names
}

/// How many of `names` are Issued.
async fn issued(h: &Harness, names: &[String]) -> usize {
    let Ok(list) = h.api::<CertificateRequest>().list(&Default::default()).await else {
        return 0;
    };
    let wanted: HashSet<&String> = names.iter().collect();
    list.items
        .iter()
        .filter(|cr| cr.metadata.name.as_ref().is_some_and(|n| wanted.contains(n)))
        .filter(|cr| cr.condition("Ready").is_some_and(|c| c.reason.as_deref() == Some("Issued")))
        .count()
}

/// Waits until all of `names` are Issued.
async fn all_issued(h: &Harness, names: &[String], within: Duration) {
    eventually(&format!("all {} requests Issued", names.len()), within, || async {
        (issued(h, names).await == names.len()).then_some(())
    })
    .await;
}

/// Replicas kept running like a Deployment would: one that exits is started again under a new
/// name (a new pod).
struct Replicas {
    running: Vec<String>,
    started: usize,
}

impl Replicas {
    async fn start(h: &mut Harness, count: usize) -> Self {
        let mut replicas = Self { running: Vec::new(), started: 0 };
        for _ in 0..count {
            replicas.start_one(h).await;
        }
        replicas
    }

    async fn start_one(&mut self, h: &mut Harness) {
        let name = format!("ferrum-pod-{}", self.started);
        self.started += 1;
        h.start_ferrum_replica(&name, &FAST_ELECTION).await;
        self.running.push(name);
    }

    /// Waits until all of `names` are Issued, replacing replicas that exit meanwhile.
    async fn until_issued(&mut self, h: &mut Harness, names: &[String], within: Duration) {
        let started = Instant::now();
        loop {
            self.replace_exited(h).await;
            let done = issued(h, names).await;
            if done == names.len() {
                return;
            }
            assert!(started.elapsed() < within, "{done} of {} requests Issued after {within:?}", names.len());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Starts a replacement for every replica that has exited.
    async fn replace_exited(&mut self, h: &mut Harness) {
        let exited: Vec<String> =
            self.running.iter().filter(|n| h.process(n).exit_status().is_some()).cloned().collect();
        for name in exited {
            self.running.retain(|n| n != &name);
            self.start_one(h).await;
        }
    }
}

/// Three replicas; the leader SIGKILLed every few seconds (once a new one has led for 1.5 s)
/// while 240 requests arrive at 12 a second. All are issued, each certificate written once,
/// no serial twice.
///
/// `scripts/chaos.sh` runs the same test at scale: `FERRUM_CHAOS_REQUESTS` requests, and with
/// `FERRUM_CHAOS_KILL_EVERY_MS` the leader of the moment killed on a fixed clock instead.
#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_with_the_leader_killed_every_few_seconds() {
    let setting = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let count = setting("FERRUM_CHAOS_REQUESTS").unwrap_or(240) as usize;
    let kill_every = setting("FERRUM_CHAOS_KILL_EVERY_MS").map(Duration::from_millis);
    let rate = 12;
    let mut h = Harness::new("kill").await;
    world_with_issuer(&h).await;
    h.start_cert_manager(true).await;
    let mut replicas = Replicas::start(&mut h, 3).await;
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
    let writes = Writes::watch(&h);

    let creator = tokio::spawn(create_requests(h.api(), "k", count, rate));
    let started = Instant::now();
    let limit = Duration::from_secs(count as u64 / rate as u64 + 90);
    let mut kills = 0;
    let mut last_killed: Option<String> = None;
    while !creator.is_finished() || kills < 3 {
        assert!(started.elapsed() < limit, "the kill loop did not end within {limit:?}");
        replicas.replace_exited(&mut h).await;
        let leader = match kill_every {
            // On a fixed clock: whoever leads at the tick, if anyone alive does.
            Some(period) => {
                tokio::time::sleep(period).await;
                lease_holder(&h).await
            }
            // Once a new leader has led for 1.5 s.
            None => match lease_holder(&h).await.filter(|l| Some(l) != last_killed.as_ref()) {
                Some(leader) => {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    Some(leader)
                }
                None => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    None
                }
            },
        };
        let Some(leader) = leader else { continue };
        if !replicas.running.contains(&leader) || h.process(&leader).exit_status().is_some() {
            continue;
        }
        signal(h.process(&leader).pid(), libc::SIGKILL);
        kills += 1;
        last_killed = Some(leader);
    }
    let names = creator.await.unwrap();
    replicas.until_issued(&mut h, &names, Duration::from_secs(60 + count as u64 / 10)).await;
    let took = started.elapsed();
    writes.assert_exactly_once(&names).await;
    assert!(kills >= 3, "{kills} leaders killed");
    eprintln!(
        "fault: {kills} leaders killed ({} replicas started in all) during {} issuances in {took:?}; \
         each certificate written once, {} distinct serials",
        replicas.started,
        names.len(),
        names.len()
    );
}

/// The write requests (create, update, patch, delete) the apiserver's audit log shows from the
/// replica `identity` (by its user agent) received after `after`, with a 2xx answer.
fn audited_writes_by(audit_log: &std::path::Path, identity: &str, after: SystemTime) -> Vec<String> {
    let after = k8s_openapi::jiff::Timestamp::try_from(after).unwrap();
    let text = std::fs::read_to_string(audit_log).unwrap_or_default();
    let agent = format!("({identity})");
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| e["userAgent"].as_str().is_some_and(|a| a.ends_with(&agent)))
        .filter(|e| matches!(e["verb"].as_str(), Some("create" | "update" | "patch" | "delete")))
        .filter(|e| e["responseStatus"]["code"].as_i64().is_some_and(|c| (200..300).contains(&c)))
        .filter(|e| {
            e["requestReceivedTimestamp"]
                .as_str()
                .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
                .is_some_and(|t| t > after)
        })
        .map(|e| format!("{} {}", e["verb"], e["requestURI"]))
        .collect()
}

/// A control plane of this test's own, with the audit log on (every write, metadata only).
async fn audited_control_plane() -> (ControlPlane, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("audit-policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
         - level: Metadata\n  verbs: [create, update, patch, delete]\n- level: None\n",
    )
    .unwrap();
    let log = dir.path().join("audit.log");
    let options = ControlPlaneOptions {
        extra_apiserver_args: vec![
            format!("--audit-policy-file={}", policy.display()),
            format!("--audit-log-path={}", log.display()),
        ],
        ..Default::default()
    };
    let cp = ControlPlane::start(options).await.unwrap_or_else(|e| panic!("control plane: {e}"));
    (cp, dir)
}

/// The leader SIGSTOPped for longer than its lease while requests arrive, then resumed: the
/// other replica takes over and issues them; the resumed one writes nothing at all (the
/// apiserver's audit log, by user agent) and exits; every request is issued exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_leader_stopped_past_its_lease_writes_nothing_when_it_resumes() {
    let (cp, dir) = audited_control_plane().await;
    let audit_log = dir.path().join("audit.log");
    let mut h = Harness::on(TestEnv::on(&cp).unwrap(), "stop").await;
    world_with_issuer(&h).await;
    h.start_cert_manager(true).await;
    h.start_ferrum_replica("ferrum-a", &FAST_ELECTION).await;
    h.start_ferrum_replica("ferrum-b", &FAST_ELECTION).await;
    let writes = Writes::watch(&h);
    let leader = eventually("a leader", Duration::from_secs(30), || lease_holder(&h)).await;
    let other = if leader == "ferrum-a" { "ferrum-b" } else { "ferrum-a" };
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
    let mut names = create_requests(h.api(), "before", 10, 20).await;
    all_issued(&h, &names, Duration::from_secs(30)).await;

    let pid = h.process(&leader).pid();
    signal(pid, libc::SIGSTOP);
    let stopped = Instant::now();
    // Requests arrive while it is stopped; the other replica must take them.
    names.extend(create_requests(h.api(), "during", 20, 4).await);
    eventually("the other replica leads", Duration::from_secs(30), || async {
        (lease_holder(&h).await.as_deref() == Some(other)).then_some(())
    })
    .await;
    let wait = (LEASE * 2).saturating_sub(stopped.elapsed());
    tokio::time::sleep(wait).await;
    let resumed = SystemTime::now();
    signal(pid, libc::SIGCONT);
    names.extend(create_requests(h.api(), "after", 20, 10).await);
    all_issued(&h, &names, Duration::from_secs(60)).await;
    eventually("the resumed replica exits", Duration::from_secs(15), || async {
        h.process(&leader).exit_status().map(|_| ())
    })
    .await;
    writes.assert_exactly_once(&names).await;
    let after_resume = audited_writes_by(&audit_log, &leader, resumed);
    assert!(after_resume.is_empty(), "{leader} wrote after it resumed: {after_resume:#?}");
    // The audit log does name it (so an empty list above means something): it wrote before.
    let before = audited_writes_by(&audit_log, &leader, SystemTime::UNIX_EPOCH);
    assert!(!before.is_empty(), "no write by {leader} in the audit log at all: is the user agent set?");
}

/// The Lease deleted three times while requests arrive, then edited by hand to a holder that
/// does not exist with a one-day duration: a replica leads again within twice the lease
/// duration each time, all requests are issued, none twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_or_hijacked_lease_is_recovered_within_twice_its_duration() {
    let mut h = Harness::new("lease").await;
    world_with_issuer(&h).await;
    h.start_cert_manager(true).await;
    let mut replicas = Replicas::start(&mut h, 2).await;
    let writes = Writes::watch(&h);
    eventually("a leader", Duration::from_secs(30), || lease_holder(&h)).await;
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
    let leases = h.api::<Lease>();
    let mut names = Vec::new();
    for round in 0..3 {
        leases.delete(&h.fullname(), &DeleteParams::default()).await.unwrap();
        let deleted = Instant::now();
        names.extend(create_requests(h.api(), &format!("del{round}"), 10, 20).await);
        let led = eventually("a replica leads again", LEASE * 2 + Duration::from_secs(2), || async {
            replicas.running.contains(&lease_holder(&h).await?).then_some(Instant::now())
        })
        .await;
        assert!(led - deleted <= LEASE * 2, "round {round}: led again after {:?}", led - deleted);
        replicas.until_issued(&mut h, &names, Duration::from_secs(30)).await;
    }

    let mut lease = leases.get(&h.fullname()).await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("ghost-replica".into());
    spec.lease_duration_seconds = Some(86_400);
    leases.replace(&h.fullname(), &PostParams::default(), &lease).await.unwrap();
    let hijacked = Instant::now();
    names.extend(create_requests(h.api(), "ghost", 10, 20).await);
    let led = eventually("a replica takes the hijacked lease", Duration::from_secs(30), || async {
        let holder = lease_holder(&h).await?;
        (holder != "ghost-replica").then_some(Instant::now())
    })
    .await;
    assert!(led - hijacked <= LEASE * 2, "led again after {:?} (lease {LEASE:?})", led - hijacked);
    replicas.until_issued(&mut h, &names, Duration::from_secs(30)).await;
    writes.assert_exactly_once(&names).await;
}

/// kube-apiserver restarted mid-run, and etcd compacted so that watches resuming from before
/// get 410 Gone: every request is issued within a minute of the apiserver's return, none twice.
#[tokio::test(flavor = "multi_thread")]
async fn an_apiserver_restart_and_a_compacted_etcd_lose_nothing() {
    let mut cp = ControlPlane::start(ControlPlaneOptions::default()).await.unwrap_or_else(|e| panic!("{e}"));
    let mut h = Harness::on(TestEnv::on(&cp).unwrap(), "restart").await;
    world_with_issuer(&h).await;
    h.start_cert_manager(true).await;
    // Two replicas kept running like a Deployment: a leader that cannot renew while the
    // apiserver is away exits, as client-go's do, and its replacement takes over.
    let mut replicas = Replicas::start(&mut h, 2).await;
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
    let writes = Writes::watch(&h);
    let mut names = create_requests(h.api(), "before", 20, 20).await;
    replicas.until_issued(&mut h, &names, Duration::from_secs(30)).await;

    // Some requests in flight when the apiserver goes away.
    let in_flight = tokio::spawn(create_requests(h.api(), "across", 30, 10));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let back = cp.restart_apiserver(Duration::from_secs(3)).await.unwrap();
    let revision = cp.compact_etcd().await.unwrap();
    eprintln!("fault: apiserver back, etcd compacted at revision {revision}");
    names.extend(in_flight.await.unwrap());
    names.extend(create_requests(h.api(), "after", 20, 20).await);
    replicas.until_issued(&mut h, &names, Duration::from_secs(60)).await;
    let took = back.elapsed();
    assert!(took < Duration::from_secs(60), "issued {took:?} after the apiserver returned");
    writes.assert_exactly_once(&names).await;
    eprintln!("fault: all {} issued {took:?} after the apiserver's return", names.len());
}

/// A signer that always fails retryably, its controllers killed and started again every 3 s
/// (each start is a new process as far as state goes: nothing in memory survives): the request
/// still turns `Failed` once `--max-retry-duration` (12 s) has passed since its FIRST failure,
/// which it reads back from the request.
#[tokio::test(flavor = "multi_thread")]
async fn retries_count_from_the_first_failure_across_restarts() {
    let h = Harness::new("restarts").await;
    let kinds = IssuerKinds::new("restarts.e2e.ferrum.dev", "v1", "Restarts");
    install_crds(&h.client, kinds.crds::<FlakySpec>()).await;
    let ar = kinds.api_resource(IssuerScope::Namespaced);
    let issuers: Api<Issuer<FlakySpec>> = Api::namespaced_with(h.client.clone(), &h.ns, &ar);
    issuers.create(&PostParams::default(), &Issuer::new("busy", &ar, FlakySpec::default())).await.unwrap();
    let max_retry = Duration::from_secs(12);
    let start = |client: kube::Client| {
        let mut config = Config::new(kinds.clone(), h.ns.clone());
        config.namespace = Some(h.ns.clone());
        config.max_retry_duration = max_retry;
        config.field_manager = "ferrum-e2e-restarts".into();
        tokio::spawn(run(client, config, FlakySigner::failing_forever(), std::future::pending()))
    };
    let mut running = start(h.client.clone());
    let busy_ref = IssuerReference {
        name: "busy".into(),
        kind: Some("RestartsIssuer".into()),
        group: Some("restarts.e2e.ferrum.dev".into()),
    };
    h.create_request("r1", &csr_pem("busy.example"), busy_ref).await;
    h.decide("r1", true).await;
    // Pending at first may be "issuer not ready yet"; the first signing failure adds the
    // retry condition, whose lastTransitionTime is that failure.
    let retry = eventually("the retry condition", Duration::from_secs(20), || async {
        h.api::<CertificateRequest>().get("r1").await.ok()?.condition("ferrum.dev/SigningRetry").cloned()
    })
    .await;
    let first_failure = retry.last_transition_time.clone().expect("first failure time").0;

    let mut restarts = 0;
    let failed = loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let cr = h.api::<CertificateRequest>().get("r1").await.unwrap();
        if cr.condition("Ready").is_some_and(|c| c.reason.as_deref() == Some("Failed")) {
            break cr;
        }
        assert!(restarts < 15, "not Failed after {restarts} restarts");
        running.abort();
        running = start(h.client.clone());
        restarts += 1;
    };
    running.abort();
    let ready = failed.condition("Ready").unwrap();
    let message = ready.message.clone().unwrap_or_default();
    assert!(message.contains("kept failing") && message.contains("backend unavailable"), "{message}");
    let failed_at = failed.status.as_ref().and_then(|s| s.failure_time.clone()).expect("failureTime").0;
    let after = failed_at.duration_since(first_failure);
    let after = Duration::try_from(after).unwrap();
    assert!(restarts >= 3, "only {restarts} restarts before it failed");
    // Counted from the first failure: not before the limit, and not much after it (the
    // backoff never sleeps past the deadline; the rest is a restart's re-list and a write).
    assert!(after >= max_retry - Duration::from_secs(1) && after <= max_retry + Duration::from_secs(6), "{after:?}");
    assert!(failed.condition("ferrum.dev/SigningRetry").is_none(), "the retry condition goes once it settles");
    eprintln!("fault: Failed {after:?} after the first failure, across {restarts} restarts");
}
