//! Faults a test injects into a control plane it owns: kube-apiserver restarted on the same
//! address, etcd's history compacted (so that watches resuming from an old resourceVersion get
//! 410 Gone). Never on the shared control plane: other tests run against it.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ControlPlane;
use crate::error::{Error, Result};

/// Index of kube-apiserver in `ControlPlane::core` (etcd is 0).
const APISERVER: usize = 1;
/// Index of etcd.
const ETCD: usize = 0;

impl ControlPlane {
    /// Stops kube-apiserver (SIGTERM, then SIGKILL), leaves it down for `downtime`, starts it
    /// again with the same flags (same port: every kubeconfig stays valid) and waits until it
    /// serves. Returns when it serves again.
    pub async fn restart_apiserver(&mut self, downtime: Duration) -> Result<Instant> {
        let old = &self.core[APISERVER];
        let args = command_line(old.pid())?;
        old.stop();
        tokio::time::sleep(downtime).await;
        let (program, flags) =
            args.split_first().ok_or_else(|| Error::Invalid("kube-apiserver has no command line".into()))?;
        let mut cmd = Command::new(program);
        cmd.args(flags);
        let restarts = self.core.len() - 1;
        let process = self.supervisor.spawn(&format!("kube-apiserver-restart-{restarts}"), cmd)?;
        self.core[APISERVER] = process;
        let client = self.cluster.client()?;
        let started = Instant::now();
        loop {
            if Api::<Namespace>::all(client.clone()).get("default").await.is_ok() {
                return Ok(Instant::now());
            }
            if let Some(status) = self.core[APISERVER].exit_status() {
                let tail = self.core[APISERVER].log_tail(30);
                return Err(Error::Exited { name: "kube-apiserver".into(), status, tail });
            }
            if started.elapsed() > Duration::from_secs(90) {
                return Err(Error::Invalid("kube-apiserver did not serve within 90 s of its restart".into()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Compacts etcd's history up to its current revision, physically. Returns that revision.
    pub async fn compact_etcd(&self) -> Result<i64> {
        let args = command_line(self.core[ETCD].pid())?;
        let port = args
            .iter()
            .find_map(|a| a.strip_prefix("--listen-client-urls=http://127.0.0.1:"))
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| Error::Invalid(format!("no client port in etcd's flags: {args:?}")))?;
        let range = post(port, "/v3/kv/range", r#"{"key":"AA==","limit":1}"#).await?;
        let revision = range["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse::<i64>().ok())
            .ok_or_else(|| Error::Invalid(format!("no revision in etcd's answer: {range}")))?;
        let body = format!(r#"{{"revision":"{revision}","physical":true}}"#);
        post(port, "/v3/kv/compaction", &body).await?;
        Ok(revision)
    }
}

/// A running process's command line.
fn command_line(pid: u32) -> Result<Vec<String>> {
    let path = format!("/proc/{pid}/cmdline");
    let raw = std::fs::read(&path).map_err(Error::io(format!("reading {path}")))?;
    Ok(raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect())
}

/// POSTs JSON to etcd's HTTP gateway and returns the JSON answer.
async fn post(port: u16, path: &str, body: &str) -> Result<serde_json::Value> {
    let io = |e: std::io::Error| Error::Io { context: format!("etcd {path}"), source: e };
    let mut stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.map_err(io)?;
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response))
        .await
        .map_err(|_| Error::Invalid(format!("etcd {path}: no answer in 10 s")))?
        .map_err(io)?;
    let (head, json) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(Error::Invalid(format!("etcd {path}: {head} {json}")));
    }
    serde_json::from_str(json).map_err(|e| Error::Invalid(format!("etcd {path}: {e}: {json}")))
}
