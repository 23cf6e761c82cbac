//! SIGTERM in every phase of Ferrum's life ends the process within 5 s, releasing the Lease
//! when it held it: before the caches sync, while the first list hangs, while waiting for the
//! Lease, while leading. (While signing is shown on the library in `library.rs`.)

use std::process::Command;
use std::time::{Duration, Instant};

use ferrum::IssuerScope;
use ferrum_testenv::ProcessHandle;

use crate::support::*;

const LIMIT: Duration = Duration::from_secs(5);

/// Sends SIGTERM and returns how long the process took to exit; it must exit cleanly.
async fn terminate(process: &ProcessHandle) -> Duration {
    assert!(process.exit_status().is_none(), "{} is still running before SIGTERM", process.name());
    let start = Instant::now();
    signal(process.pid(), libc::SIGTERM);
    loop {
        if let Some(status) = process.exit_status() {
            assert!(status.success(), "{} exited with {status}:\n{}", process.name(), process.log_tail(20));
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{} ignored SIGTERM:\n{}",
            process.name(),
            process.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn readyz(process: &ProcessHandle) -> u16 {
    let log = std::fs::read_to_string(process.log_path()).unwrap_or_default();
    let (health, _) = addresses(&log).expect("probe addresses in the log");
    http_get(&health, "/readyz").await.0
}

/// The requests watch can never list (its RBAC lacks list/watch): the caches never sync,
/// `/readyz` says so, and SIGTERM still ends the process at once and frees the Lease.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_before_the_caches_sync() {
    let mut h = Harness::new("term-unsynced").await;
    h.start_ferrum_with_rbac("ferrum-unsynced", &[], |objects| {
        for role in objects.iter_mut().filter(|o| o["kind"] == "ClusterRole") {
            for rule in role["rules"].as_array_mut().expect("rules") {
                if rule["resources"].as_array().is_some_and(|r| r.iter().any(|r| r == "certificaterequests")) {
                    rule["verbs"].as_array_mut().expect("verbs").retain(|v| v != "list" && v != "watch");
                }
            }
        }
    })
    .await;
    let process = h.process("ferrum-unsynced");
    process.wait_for_log_line("watch failed; retrying with backoff", Duration::from_secs(30)).await.unwrap();
    assert_eq!(readyz(process).await, 503, "not ready while a watch cannot list");
    eventually("the lease held", Duration::from_secs(10), || lease_holder(&h)).await;
    let took = terminate(process).await;
    eprintln!("SIGTERM before the caches synced: exited in {took:?}");
    assert!(took < LIMIT, "exited in {took:?}");
    assert_eq!(lease_holder(&h).await, None, "the lease was released");
}

/// The apiserver accepts the connection and never answers: the first list hangs. SIGTERM ends
/// the process within the limit anyway.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_while_the_first_list_hangs() {
    let h = Harness::new("term-syncing").await;
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = black_hole.local_addr().unwrap();
    // Accept and hold every connection, answering nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in black_hole.incoming().flatten() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: hole\n  cluster:\n    server: https://{address}\n    \
             insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  context:\n    \
             cluster: hole\n    user: u\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrum-issuer"));
    cmd.arg("--kubeconfig").arg(&kubeconfig).args(["--leader-elect=false", "--namespace", &h.ns]).args([
        "--metrics-bind-address",
        "127.0.0.1:0",
        "--health-probe-bind-address",
        "127.0.0.1:0",
        "--crl-bind-address",
        "127.0.0.1:0",
    ]);
    let process = h.env.spawn_process("ferrum-syncing", cmd).expect("start ferrum-issuer");
    process.wait_for_log_line("serving probes and metrics", Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(readyz(&process).await, 503, "not ready while the first list hangs");
    let took = terminate(&process).await;
    eprintln!("SIGTERM while the first list hangs: exited in {took:?}");
    assert!(took < LIMIT, "exited in {took:?}");
}

/// A follower waiting for the Lease, then the leader itself: each exits within the limit, and
/// the leader frees the Lease.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_while_waiting_for_the_lease_and_while_leading() {
    let mut h = Harness::new("term-lease").await;
    let ca = make_ca("Term CA", CaOptions::default());
    h.create_secret(&h.ns, "ca", &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    h.create_issuer(IssuerScope::Namespaced, "ca", "ca").await;
    h.start_ferrum_replica("ferrum-a", &[]).await;
    let leader = eventually("a leader", Duration::from_secs(30), || lease_holder(&h)).await;
    assert_eq!(leader, "ferrum-a");
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
    h.start_ferrum_replica("ferrum-b", &[]).await;
    h.process("ferrum-b").wait_for_log_line("serving probes and metrics", Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let took = terminate(h.process("ferrum-b")).await;
    eprintln!("SIGTERM while waiting for the lease: exited in {took:?}");
    assert!(took < LIMIT, "follower exited in {took:?}");
    assert_eq!(lease_holder(&h).await.as_deref(), Some("ferrum-a"), "the follower touched nothing");

    let took = terminate(h.process("ferrum-a")).await;
    eprintln!("SIGTERM while leading: exited in {took:?}");
    assert!(took < LIMIT, "leader exited in {took:?}");
    assert_eq!(lease_holder(&h).await, None, "the leader released the lease");
}
