//! `controlplane up | down | status`: the test control plane for people (demo, benchmarks,
//! cargo-nextest). `up` starts etcd, kube-apiserver and cert-manager's controllers (and with
//! `--node` a node that runs pods) detached from the terminal and prints the
//! `export KUBECONFIG=...` line; `down` stops them by PID in reverse order and removes what a
//! node left on the host. The state (PIDs, kubeconfig, logs, etcd data) lives in
//! `${XDG_RUNTIME_DIR:-/tmp}/ferrum-controlplane/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use ferrum_testenv::process::{is_running, terminate_pid};
use ferrum_testenv::{
    Binaries, CertManagerOptions, Cluster, ControlPlane, ControlPlaneOptions, ProcessInfo, SpawnMode, node,
};

#[derive(Parser)]
#[command(about = "Start and stop Ferrum's local control plane (etcd, kube-apiserver, cert-manager)")]
struct Cli {
    /// Where the PIDs, kubeconfig, logs and etcd data live.
    #[arg(long, env = "FERRUM_CONTROLPLANE_STATE")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start everything and leave it running; prints `export KUBECONFIG=...`.
    Up {
        /// cert-manager controllers to run (comma-separated); default: all.
        #[arg(long, value_delimiter = ',', conflicts_with = "no_cert_manager")]
        controllers: Option<Vec<String>>,
        /// Start no cert-manager controllers (for test suites, whose tests start runners scoped
        /// to their own namespaces).
        #[arg(long)]
        no_cert_manager: bool,
        /// Also run a node (containerd, kubelet, kube-proxy, kube-scheduler,
        /// kube-controller-manager) so that pods run; needs root, `scripts/node-prereqs.sh` and
        /// `tools/controlplane/build.sh --node`.
        #[arg(long)]
        node: bool,
    },
    /// Stop everything `up` started, in reverse order (a node's pods and containers first),
    /// remove what a node left on the host, and remove the state directory.
    Down,
    /// Show the processes and whether the API server is ready.
    Status,
    /// Pack a binary (with the libraries it links and the CA certificates) as an image with
    /// buildah, from scratch, and import it into the node's containerd under `name`.
    LoadImage {
        /// The binary, e.g. target/release/ferrum-issuer.
        #[arg(long)]
        binary: PathBuf,
        /// The image name the pods use, e.g. ghcr.io/ferrum-dev/ferrum-issuer:0.1.0.
        #[arg(long)]
        name: String,
        /// The user the image runs as.
        #[arg(long, default_value_t = 65532)]
        user: u32,
    },
}

/// The state file: one `pid<TAB>name<TAB>program<TAB>log` line per process, in start order.
const PIDS: &str = "pids";

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let state_dir = cli.state_dir.unwrap_or_else(default_state_dir);
    let result = match cli.command {
        Command::Up { controllers, no_cert_manager, node } => {
            let controllers = match (no_cert_manager, controllers) {
                (true, _) => None,
                (false, Some(list)) => Some(list),
                (false, None) => Some(CertManagerOptions::all_controllers()),
            };
            up(&state_dir, controllers, node).await
        }
        Command::Down => down(&state_dir),
        Command::Status => status(&state_dir).await,
        Command::LoadImage { binary, name, user } => load_image(&state_dir, &binary, &name, user),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("controlplane: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn default_state_dir() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join("ferrum-controlplane")
}

async fn up(state_dir: &Path, controllers: Option<Vec<String>>, node: bool) -> anyhow::Result<()> {
    let kubeconfig = state_dir.join("kubeconfig");
    let recorded = read_pids(state_dir)?;
    if recorded.iter().any(alive) {
        eprintln!("already running (see `controlplane status`; `controlplane down` stops it)");
        println!("export KUBECONFIG={}", kubeconfig.display());
        return Ok(());
    }
    if state_dir.exists() {
        std::fs::remove_dir_all(state_dir)
            .with_context(|| format!("removing the stale state in {}", state_dir.display()))?;
    }

    let started = Instant::now();
    let control_plane = ControlPlane::start(ControlPlaneOptions {
        dir: Some(state_dir.to_path_buf()),
        mode: SpawnMode::Detached,
        node,
        // With a node, Ferrum's CRDs come with its Helm chart (which keeps them on uninstall).
        crd_files: if node { Vec::new() } else { ControlPlaneOptions::default().crd_files },
        ..ControlPlaneOptions::default()
    })
    .await?;
    // `None` when asked for no cert-manager; dropping the control plane on an error stops
    // whatever was started.
    let cert_manager = match controllers {
        Some(controllers) => {
            let cm_started = Instant::now();
            let options = CertManagerOptions { controllers, ..CertManagerOptions::default() };
            let handle = control_plane.start_cert_manager(options).await?;
            Some((handle, cm_started.elapsed()))
        }
        None => None,
    };
    let total = started.elapsed();
    let timings = control_plane.timings();
    let processes = control_plane.detach();
    write_pids(state_dir, &processes)?;

    let cm_time = match &cert_manager {
        Some((_, time)) => format!("cm-runner {:.1} s", time.as_secs_f64()),
        None => "no cm-runner".to_string(),
    };
    eprintln!(
        "control plane ready in {:.1} s (keys {:.1} s, etcd {:.1} s, kube-apiserver {:.1} s, \
         CRDs {:.1} s, {}{cm_time})",
        total.as_secs_f64(),
        timings.pki.as_secs_f64(),
        timings.etcd.as_secs_f64(),
        timings.apiserver.as_secs_f64(),
        timings.crds.as_secs_f64(),
        if node { format!("node {:.1} s, ", timings.node.as_secs_f64()) } else { String::new() },
    );
    // Detached: dropping the handle leaves the process running.
    drop(cert_manager);
    eprintln!("logs in {}; stop with `controlplane down`", state_dir.join("logs").display());
    println!("export KUBECONFIG={}", kubeconfig.display());
    Ok(())
}

fn down(state_dir: &Path) -> anyhow::Result<()> {
    let recorded = read_pids(state_dir)?;
    if recorded.is_empty() && !state_dir.exists() {
        eprintln!("not running ({} does not exist)", state_dir.display());
        return Ok(());
    }
    let node_dir = node::node_dir(state_dir);
    if node_dir.exists() {
        // The kubelet first (so that it restarts nothing), then every container containerd
        // holds, while containerd still runs, so that no container outlives the node.
        for p in recorded.iter().filter(|p| p.info.name == "kubelet" && alive(p)) {
            terminate_pid(p.info.pid, Duration::from_secs(10));
        }
        node::remove_containers(&node_dir);
    }
    for p in recorded.iter().rev() {
        if alive(p) {
            let killed = terminate_pid(p.info.pid, Duration::from_secs(10));
            eprintln!("stopped {} (pid {}){}", p.info.name, p.info.pid, if killed { " with SIGKILL" } else { "" });
        }
    }
    if node_dir.exists() {
        for failure in node::clean_host(&node_dir, Binaries::locate().ok().as_ref()) {
            eprintln!("node teardown: {failure}");
        }
        let left = node::leftovers(&node_dir);
        if !left.is_empty() {
            bail!("the node left: {}", left.join(", "));
        }
        eprintln!("node removed: no container, mount, cgroup, bridge or iptables chain left");
    }
    std::fs::remove_dir_all(state_dir).with_context(|| format!("removing {}", state_dir.display()))?;
    Ok(())
}

fn load_image(state_dir: &Path, binary: &Path, name: &str, user: u32) -> anyhow::Result<()> {
    let node_dir = node::node_dir(state_dir);
    if !node_dir.exists() {
        bail!("no node runs from {} (start one with `controlplane up --node`)", state_dir.display());
    }
    let target = format!("/{}", binary.file_name().and_then(|n| n.to_str()).unwrap_or("app"));
    let archive = node::build_image(&node_dir.join("images"), binary, &target, name, &[], user)?;
    node::import_image(&node_dir, &archive)?;
    eprintln!("imported {name} ({target} as user {user}) from {}", archive.display());
    Ok(())
}

async fn status(state_dir: &Path) -> anyhow::Result<()> {
    let recorded = read_pids(state_dir)?;
    if recorded.is_empty() {
        println!("not running (no {} in {})", PIDS, state_dir.display());
        return Ok(());
    }
    for p in &recorded {
        let state = if alive(p) { "running" } else { "gone" };
        println!("{:<16} pid {:<8} {state:<8} log {}", p.info.name, p.info.pid, p.info.log.display());
    }
    let kubeconfig = state_dir.join("kubeconfig");
    let cluster = Cluster::from_kubeconfig(&kubeconfig, state_dir.join("scratch"), None).await?;
    let request = http::Request::get("/readyz").body(Vec::new())?;
    match tokio::time::timeout(Duration::from_secs(5), cluster.client()?.request_text(request)).await {
        Ok(Ok(body)) => println!("kube-apiserver {}: /readyz {}", cluster.server_url(), body.trim()),
        Ok(Err(e)) => println!("kube-apiserver {}: not ready: {e}", cluster.server_url()),
        Err(_) => println!("kube-apiserver {}: no answer in 5 s", cluster.server_url()),
    }
    println!("export KUBECONFIG={}", kubeconfig.display());
    Ok(())
}

/// A process recorded by `up`.
struct Recorded {
    info: ProcessInfo,
    program: String,
}

fn write_pids(state_dir: &Path, processes: &[ProcessInfo]) -> anyhow::Result<()> {
    let mut text = String::new();
    for p in processes {
        let program = std::fs::read(format!("/proc/{}/cmdline", p.pid))
            .ok()
            .and_then(|cmdline| {
                cmdline.split(|b| *b == 0).next().map(|arg0| String::from_utf8_lossy(arg0).into_owned())
            })
            .unwrap_or_default();
        text.push_str(&format!("{}\t{}\t{}\t{}\n", p.pid, p.name, program, p.log.display()));
    }
    let path = state_dir.join(PIDS);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

fn read_pids(state_dir: &Path) -> anyhow::Result<Vec<Recorded>> {
    let path = state_dir.join(PIDS);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.splitn(4, '\t').collect();
            let [pid, name, program, log] = fields[..] else {
                bail!("{}: malformed line {line:?}", path.display());
            };
            Ok(Recorded {
                info: ProcessInfo {
                    pid: pid.parse().with_context(|| format!("{}: bad pid", path.display()))?,
                    name: name.to_string(),
                    log: PathBuf::from(log),
                },
                program: program.to_string(),
            })
        })
        .collect()
}

/// Running, and still the program we started (PIDs get reused).
fn alive(p: &Recorded) -> bool {
    if !is_running(p.info.pid) {
        return false;
    }
    let arg0 = std::fs::read(format!("/proc/{}/cmdline", p.info.pid))
        .ok()
        .and_then(|c| c.split(|b| *b == 0).next().map(|a| String::from_utf8_lossy(a).into_owned()));
    arg0.is_some_and(|a| a == p.program)
}
