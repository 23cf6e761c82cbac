//! The `controlplane` command, without binaries: it must fail and name the build command.
//! (With binaries, `up`/`status`/`down` are exercised by hand and by the e2e suite's users.)

use std::process::Command;

#[test]
fn up_without_binaries_names_the_build_command() {
    let empty = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_controlplane"))
        .arg("--state-dir")
        .arg(state.path().join("state"))
        .arg("up")
        .env("FERRUM_CONTROLPLANE_DIR", empty.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "up succeeded without binaries: {stderr}");
    assert!(stderr.contains(ferrum_testenv::BUILD_COMMAND), "{stderr}");
    assert!(out.stdout.is_empty(), "no export line on failure");
}

#[test]
fn status_and_down_when_not_running() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("state");
    for command in ["status", "down"] {
        let out = Command::new(env!("CARGO_BIN_EXE_controlplane"))
            .arg("--state-dir")
            .arg(&dir)
            .arg(command)
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}: {out:?}");
    }
}
