//! Running Ferrum like production: leader election with two replicas, probes and metrics.

use std::time::{Duration, Instant};

use ferrum::IssuerScope;

use crate::support::*;

async fn issue(h: &Harness, name: &str, within: Duration) -> Duration {
    let start = Instant::now();
    h.create_request(name, &csr_pem(&format!("{name}.example")), ferrum_ref(IssuerScope::Namespaced, "ca")).await;
    h.decide(name, true).await;
    h.request_reason(name, "Issued", within).await;
    start.elapsed()
}

fn log_of(h: &Harness, name: &str) -> String {
    std::fs::read_to_string(h.process(name).log_path()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_one_leader_and_failover() {
    let mut h = Harness::new("leader").await;
    world_with_issuer(&h).await;
    h.start_ferrum_replica("ferrum-a", &[]).await;
    h.start_ferrum_replica("ferrum-b", &[]).await;
    let leader = eventually("a leader", Duration::from_secs(30), || lease_holder(&h)).await;
    let follower = if leader == "ferrum-a" { "ferrum-b" } else { "ferrum-a" };
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
    let created = h.create_request("first", &csr_pem("first.example"), ferrum_ref(IssuerScope::Namespaced, "ca")).await;
    let versions = h.record_versions("first", created.metadata.resource_version.as_deref().unwrap());
    h.decide("first", true).await;
    let issued = h.request_reason("first", "Issued", Duration::from_secs(20)).await;

    // Judged from the apiserver: the one event about the request was reported by the leader,
    // none in the namespace by the follower; and after the approval the request was written
    // once (the leader's Issued) and by no one else (a second signer's write would carry
    // another certificate).
    let events = h.settled_events_about("first").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].reporting_instance.as_deref(), Some(leader.as_str()), "{events:#?}");
    let everything = h.api::<Event>().list(&Default::default()).await.unwrap().items;
    let by_follower: Vec<_> = everything.iter().filter(|e| e.reporting_instance.as_deref() == Some(follower)).collect();
    assert!(by_follower.is_empty(), "events reported by the follower: {by_follower:#?}");
    let versions = versions.lock().unwrap().clone();
    assert_eq!(
        versions.len(),
        2,
        "approval, then one status write: {:#?}",
        versions.iter().map(|v| &v.status).collect::<Vec<_>>()
    );
    assert_eq!(versions[1].status, issued.status, "the Issued write is the last");
    // And from the replicas' metrics: the leader counted the write, the follower counted
    // nothing, signed nothing and checked no issuer.
    let ns = h.ns.clone();
    let issued_series = format!(
        r#"ferrum_certificaterequests_total{{kind="FerrumIssuer",namespace="{ns}",name="ca",reason="Issued"}}"#
    );
    let scrape = |name: &str| {
        let (_, metrics) = addresses(&log_of(&h, name)).expect("metrics address in the log");
        async move {
            let (status, text) = http_get(&metrics, "/metrics").await;
            assert_eq!(status, 200, "{text}");
            text
        }
    };
    let leader_metrics = eventually("the leader counted the issuance", Duration::from_secs(5), || async {
        let text = scrape(&leader).await;
        (metric(&text, &issued_series) == Some(1.0)).then_some(text)
    })
    .await;
    assert!(metric(&leader_metrics, "ferrum_ca_not_after_timestamp_seconds{").is_some(), "{leader_metrics}");
    let follower_metrics = scrape(follower).await;
    assert!(follower_metrics.contains("process_start_time_seconds"), "a real scrape: {follower_metrics}");
    for series in [
        "ferrum_certificaterequests_total{",
        "ferrum_ca_not_after_timestamp_seconds{",
        "ferrum_reconcile_errors_total{",
    ] {
        assert_eq!(metric(&follower_metrics, series), None, "the follower has {series}...:\n{follower_metrics}");
    }
    assert!(
        metric(&follower_metrics, r#"ferrum_signing_duration_seconds_count{kind="FerrumIssuer"}"#).unwrap_or(0.0)
            == 0.0,
        "the follower signed nothing:\n{follower_metrics}"
    );

    // SIGKILL the leader: the lease expires (15 s) and the follower takes over.
    let killed_at = Instant::now();
    signal(h.process(&leader).pid(), libc::SIGKILL);
    let took = issue(&h, "after-kill", Duration::from_secs(30)).await;
    eprintln!("after SIGKILL of the leader, a new request was issued in {took:?}");
    assert!(killed_at.elapsed() < Duration::from_secs(20), "issued within 20 s of SIGKILL ({:?})", killed_at.elapsed());
    assert_eq!(lease_holder(&h).await.as_deref(), Some(follower));

    // A third replica joins; SIGTERM the leader: it releases the lease and the new one takes
    // over at once.
    h.start_ferrum_replica("ferrum-c", &[]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let terminated_at = Instant::now();
    signal(h.process(follower).pid(), libc::SIGTERM);
    let took = issue(&h, "after-term", Duration::from_secs(20)).await;
    eprintln!("after SIGTERM of the leader, a new request was issued in {took:?}");
    assert!(
        terminated_at.elapsed() < Duration::from_secs(5),
        "issued within 5 s of SIGTERM ({:?})",
        terminated_at.elapsed()
    );
    assert_eq!(lease_holder(&h).await.as_deref(), Some("ferrum-c"));
    assert!(log_of(&h, follower).contains("released leadership"));
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_and_metrics_move_with_an_issuance() {
    let mut h = Harness::new("metrics").await;
    world_with_issuer(&h).await;
    h.start_ferrum(&[]).await;
    let ns = h.ns.clone();
    let (health, metrics) =
        eventually("listen addresses in the log", Duration::from_secs(20), || async { addresses(&h.ferrum_log()) })
            .await;
    assert_eq!(http_get(&health, "/healthz").await.0, 200);
    eventually("/readyz 200", Duration::from_secs(30), || async {
        (http_get(&health, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;

    let issued = format!(
        r#"ferrum_certificaterequests_total{{kind="FerrumIssuer",namespace="{ns}",name="ca",reason="Issued"}}"#
    );
    let before = metric(&http_get(&metrics, "/metrics").await.1, &issued).unwrap_or(0.0);
    issue(&h, "measured", Duration::from_secs(20)).await;
    // Counted right after the write returns, so the series may trail the status a little.
    let (status, text) = eventually("the issuance counted", Duration::from_secs(5), || async {
        let (status, text) = http_get(&metrics, "/metrics").await;
        (metric(&text, &issued) == Some(before + 1.0)).then_some((status, text))
    })
    .await;
    assert_eq!(status, 200);
    assert_eq!(metric(&text, &issued), Some(before + 1.0), "{text}");
    assert_eq!(metric(&text, r#"ferrum_signing_duration_seconds_count{kind="FerrumIssuer"}"#), Some(1.0), "{text}");
    let not_after = metric(
        &text,
        &format!(r#"ferrum_ca_not_after_timestamp_seconds{{kind="FerrumIssuer",namespace="{ns}",name="ca"}}"#),
    )
    .expect("CA notAfter gauge");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(not_after > now + 300.0 * 86400.0, "a 365-day CA: {not_after}");
    assert!(metric(&text, "process_resident_memory_bytes").unwrap_or(0.0) > 1e6, "{text}");
    assert!(metric(&text, "ferrum_retries_waiting").is_some(), "{text}");
}

/// Everything above runs Ferrum bound only to the chart's rendered RBAC. Take one verb away
/// and the behaviour that needs it breaks loudly: a condition and a log line, not a hang.
#[tokio::test(flavor = "multi_thread")]
async fn removing_secret_get_from_the_chart_rbac_breaks_issuer_checks_with_a_clear_condition() {
    let mut h = Harness::new("rbac").await;
    world_with_issuer(&h).await;
    h.start_ferrum_with_rbac("ferrum-rbac", &[], |objects| {
        for role in objects.iter_mut().filter(|o| o["kind"] == "ClusterRole") {
            for rule in role["rules"].as_array_mut().expect("rules") {
                if rule["resources"].as_array().is_some_and(|r| r.iter().any(|r| r == "secrets")) {
                    let verbs = rule["verbs"].as_array_mut().expect("verbs");
                    verbs.retain(|v| v != "get");
                }
            }
        }
    })
    .await;
    let (reason, message) = h.issuer_ready(IssuerScope::Namespaced, "ca", "False").await;
    assert_eq!(reason, "SecretUnreadable");
    assert!(
        message.contains("not allowed to read Secret") && message.contains("cannot get resource \"secrets\""),
        "{message}"
    );
    h.create_request("r1", &csr_pem("rbac.example"), ferrum_ref(IssuerScope::Namespaced, "ca")).await;
    h.decide("r1", true).await;
    let cr = h.request_reason("r1", "Pending", Duration::from_secs(20)).await;
    let pending = cr.condition("Ready").unwrap().message.clone().unwrap();
    assert!(pending.contains("SecretUnreadable"), "{pending}");
    let log = h.ferrum_log();
    assert!(log.contains("issuer not ready") && log.contains("SecretUnreadable"), "Ferrum's log says why:\n{log}");
}

/// Without the right to write request status, every attempt fails: the request reconcile
/// errors are counted in `ferrum_reconcile_errors_total` (they were only logged).
#[tokio::test(flavor = "multi_thread")]
async fn request_reconcile_errors_are_counted() {
    let mut h = Harness::new("reqerrors").await;
    world_with_issuer(&h).await;
    h.start_ferrum_with_rbac("ferrum-nostatus", &[], |objects| {
        for role in objects.iter_mut().filter(|o| o["kind"] == "ClusterRole") {
            let rules = role["rules"].as_array_mut().expect("rules");
            rules.retain(|rule| {
                !rule["resources"].as_array().is_some_and(|r| r.iter().any(|r| r == "certificaterequests/status"))
            });
        }
    })
    .await;
    let (_, metrics) =
        eventually("listen addresses in the log", Duration::from_secs(20), || async { addresses(&h.ferrum_log()) })
            .await;
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
    h.create_request("r1", &csr_pem("errors.example"), ferrum_ref(IssuerScope::Namespaced, "ca")).await;
    h.decide("r1", true).await;
    let series = r#"ferrum_reconcile_errors_total{controller="request",error="api"}"#;
    let counted = eventually("a counted request reconcile error", Duration::from_secs(20), || async {
        metric(&http_get(&metrics, "/metrics").await.1, series).filter(|v| *v >= 1.0)
    })
    .await;
    eprintln!("request reconcile errors counted: {counted}");
    let logged =
        h.process("ferrum-nostatus").wait_for_log_line("reconcile failed; retrying", Duration::from_secs(5)).await;
    assert!(logged.is_ok(), "and logged");
}

/// Metric series exist only for issuers that exist: a request naming an issuer that does not
/// exist adds no series with that name, and a deleted issuer's CA-expiry series goes with it.
#[tokio::test(flavor = "multi_thread")]
async fn metric_series_follow_the_issuers_that_exist() {
    let mut h = Harness::new("series").await;
    world_with_issuer(&h).await;
    h.start_ferrum(&[]).await;
    let ns = h.ns.clone();
    let (_, metrics) =
        eventually("listen addresses in the log", Duration::from_secs(20), || async { addresses(&h.ferrum_log()) })
            .await;
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
    let gauge = format!(r#"ferrum_ca_not_after_timestamp_seconds{{kind="FerrumIssuer",namespace="{ns}",name="ca"}}"#);
    eventually("the CA gauge", Duration::from_secs(10), || async {
        metric(&http_get(&metrics, "/metrics").await.1, &gauge)
    })
    .await;

    h.create_request("bogus", &csr_pem("bogus.example"), ferrum_ref(IssuerScope::Namespaced, "no-such-issuer-4711"))
        .await;
    h.decide("bogus", true).await;
    h.request_reason("bogus", "Pending", Duration::from_secs(20)).await;
    // Counted right after the write returns, so the series may trail the status a little.
    let unknown =
        format!(r#"ferrum_certificaterequests_total{{kind="FerrumIssuer",namespace="{ns}",name="",reason="Pending"}}"#);
    let text = eventually("the Pending result counted", Duration::from_secs(5), || async {
        let text = http_get(&metrics, "/metrics").await.1;
        metric(&text, &unknown).is_some().then_some(text)
    })
    .await;
    assert!(!text.contains("no-such-issuer-4711"), "no series named after a missing issuer:\n{text}");
    assert_eq!(metric(&text, &unknown), Some(1.0), "counted once, without the name:\n{text}");

    h.issuers(IssuerScope::Namespaced).delete("ca", &Default::default()).await.unwrap();
    eventually("the CA gauge gone with its issuer", Duration::from_secs(10), || async {
        metric(&http_get(&metrics, "/metrics").await.1, &gauge).is_none().then_some(())
    })
    .await;
}
