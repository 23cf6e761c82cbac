//! Flags that contradict each other stop the binary before it does anything.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrum-issuer"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run ferrum-issuer");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn contradicting_or_zero_settings_are_refused_at_start() {
    let cases = [
        (vec!["--issuer-recheck-interval", "0s"], "the issuer re-check interval must be positive"),
        (vec!["--max-retry-duration", "0s"], "the maximum retry duration must be positive"),
        (vec!["--concurrency", "0"], "the concurrency must be at least 1"),
        (
            vec!["--leader-election-lease-duration", "5s"],
            "the lease duration (5s) must be longer than the renew deadline (10s)",
        ),
        (
            vec!["--leader-election-renew-deadline", "2s", "--leader-election-retry-period", "2s"],
            "the renew deadline (2s) must be longer than 1.2 × the retry period (2s)",
        ),
    ];
    for (args, expected) in cases {
        let (code, stderr) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr:?} should say {expected:?}");
    }
    // Leader-election timings do not matter when it is off.
    let (code, stderr) =
        run(&["--leader-elect=false", "--leader-election-lease-duration", "5s", "--kubeconfig", "/nonexistent"]);
    assert_eq!(code, Some(1), "gets past validation and fails on the kubeconfig: {stderr}");
    assert!(stderr.contains("/nonexistent"), "{stderr}");
}
