//! [`ControlPlane`]: etcd + kube-apiserver + CRDs (+ cert-manager's controllers) owned by this
//! process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::apiserver::{self, ApiserverSettings};
use crate::binaries::{Binaries, Tool, repo_root};
use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::kubeconfig::{self, Credentials};
use crate::pki::Pki;
use crate::process::{LogTail, ProcessHandle, ProcessInfo, SpawnMode, Supervisor, TAIL_ON_PANIC, format_tails};

mod faults;
use crate::{certmanager, crds};

/// How to start a [`ControlPlane`]. Start from [`ControlPlaneOptions::default`].
#[derive(Clone, Debug)]
pub struct ControlPlaneOptions {
    /// A built `<key>` directory to take the binaries from; `None` looks them up with
    /// [`Binaries::locate`] (`$FERRUM_CONTROLPLANE_DIR`, else the versioned cache).
    pub binaries_dir: Option<PathBuf>,
    /// Whether to install cert-manager's CRDs (from the binaries directory). Default: yes.
    pub install_cert_manager_crds: bool,
    /// More CRD files (multi-document YAML) to install. Default: Ferrum's
    /// `deploy/crds/ferrum.crds.yaml` in the repository, if that file exists.
    pub crd_files: Vec<PathBuf>,
    /// The run directory (PKI, etcd data, logs, kubeconfig). `None`: a temporary directory,
    /// removed on drop (kept if `FERRUM_TESTENV_KEEP` is set). A given directory is never
    /// removed.
    pub dir: Option<PathBuf>,
    /// Attached (children die with us; tests) or detached (`controlplane up`).
    pub mode: SpawnMode,
    /// kube-apiserver's `--service-cluster-ip-range`.
    pub service_cluster_ip_range: String,
    /// Extra kube-apiserver flags, appended last (so they win).
    pub extra_apiserver_args: Vec<String>,
    /// Extra etcd flags, appended last (e.g. `--quota-backend-bytes` for a large store).
    pub extra_etcd_args: Vec<String>,
    /// How long each step (etcd, kube-apiserver, CRDs) may take.
    pub step_timeout: Duration,
    /// Also run a node (see [`crate::node`]): containerd, the kubelet, kube-proxy,
    /// kube-scheduler and kube-controller-manager, so that pods run. One per machine.
    pub node: bool,
}

impl Default for ControlPlaneOptions {
    fn default() -> Self {
        let ferrum_crds = repo_root().join("deploy/crds/ferrum.crds.yaml");
        ControlPlaneOptions {
            binaries_dir: None,
            install_cert_manager_crds: true,
            crd_files: if ferrum_crds.is_file() { vec![ferrum_crds] } else { Vec::new() },
            dir: None,
            mode: SpawnMode::Attached,
            service_cluster_ip_range: "10.0.0.0/24".into(),
            extra_apiserver_args: Vec::new(),
            extra_etcd_args: Vec::new(),
            step_timeout: Duration::from_secs(60),
            node: false,
        }
    }
}

/// How long each start-up step took.
#[derive(Clone, Copy, Debug, Default)]
pub struct StartupTimings {
    /// Generating keys and certificates.
    pub pki: Duration,
    /// etcd start to `/health`.
    pub etcd: Duration,
    /// kube-apiserver start to `/readyz` and namespace `default`.
    pub apiserver: Duration,
    /// Applying every CRD until all are Established.
    pub crds: Duration,
    /// The node, from containerd to Ready (zero without one).
    pub node: Duration,
    /// All of the above.
    pub total: Duration,
}

/// A control plane owned by this process: etcd and kube-apiserver on free loopback ports, with
/// RBAC, a client-certificate admin, ServiceAccount tokens and the CRDs installed.
///
/// Dropping it stops every process it started (also those of [`ControlPlane::spawn_process`]
/// and [`ControlPlane::start_cert_manager`]) by PID in reverse start order, printing the tail
/// of every log first if the thread is panicking.
pub struct ControlPlane {
    cluster: Cluster,
    binaries: Binaries,
    timings: StartupTimings,
    /// etcd and kube-apiserver. Stopped by `supervisor.stop_all()` in reverse order.
    core: Vec<ProcessHandle>,
    /// The node's processes, if one runs: torn down before the rest stops.
    node: Option<crate::node::NodeProcesses>,
    /// Dropped after `core`, before `dir`: it needs the log files.
    supervisor: Supervisor,
    dir: RunDir,
}

enum RunDir {
    Temporary(tempfile::TempDir),
    Given(PathBuf),
}

impl RunDir {
    fn path(&self) -> &Path {
        match self {
            RunDir::Temporary(dir) => dir.path(),
            RunDir::Given(path) => path,
        }
    }
}

impl ControlPlane {
    /// Finds the binaries, starts etcd and kube-apiserver, writes the admin kubeconfig and
    /// installs the CRDs. A missing binary is an [`Error::MissingBinaries`] naming the build
    /// command.
    pub async fn start(options: ControlPlaneOptions) -> Result<Self> {
        let started = Instant::now();
        let binaries = match &options.binaries_dir {
            Some(dir) => Binaries::at(dir)?,
            None => Binaries::locate()?,
        };
        let dir = match &options.dir {
            Some(path) => {
                std::fs::create_dir_all(path).map_err(Error::io(format!("creating {}", path.display())))?;
                RunDir::Given(path.clone())
            }
            None => RunDir::Temporary(
                tempfile::Builder::new()
                    .prefix("ferrum-testenv-")
                    .tempdir()
                    .map_err(Error::io("creating a temporary directory"))?,
            ),
        };
        let root = dir.path().to_path_buf();
        let supervisor = Supervisor::new(root.join("logs"), options.mode)?;
        if options.node {
            crate::node::check_prerequisites(&binaries)?;
            crate::node::claim_bridge()?;
        }
        match boot(&supervisor, &binaries, &root, &options).await {
            Ok((cluster, mut timings, core, node)) => {
                timings.total = started.elapsed();
                tracing::info!(url = %cluster.server_url(), dir = %root.display(), ?timings, "control plane ready");
                Ok(ControlPlane { cluster, binaries, timings, core, node, supervisor, dir })
            }
            Err(e) => {
                // The logs go with the run directory: show them now, the error alone rarely
                // says why a server did not come up.
                eprint!("ferrum-testenv: start failed: {e}\n{}", format_tails(&supervisor.log_tails(TAIL_ON_PANIC)));
                if options.node {
                    crate::node::remove_containers(&crate::node::node_dir(&root));
                    supervisor.stop_all();
                    crate::node::clean_host(&crate::node::node_dir(&root), Some(&binaries));
                }
                Err(e)
            }
        }
    }

    /// Starts cert-manager's controllers (our `cm-runner`) against this control plane with the
    /// admin kubeconfig, and waits until its caches are synced. Creates the cluster resource
    /// namespace. Dropping the handle stops it.
    pub async fn start_cert_manager(&self, options: certmanager::CertManagerOptions) -> Result<ProcessHandle> {
        let program = self.binaries.path(Tool::CmRunner)?;
        certmanager::start(&self.supervisor, &self.cluster, &program, &options).await
    }

    /// Starts any process under the same management: logged to `<run dir>/logs/<name>.log`,
    /// stopped when the handle or the control plane is dropped. Set its `KUBECONFIG` or flags
    /// from [`ControlPlane::kubeconfig_path`] or a [`ServiceAccountAccess`] yourself.
    pub fn spawn_process(&self, name: &str, cmd: Command) -> Result<ProcessHandle> {
        self.supervisor.spawn(name, cmd)
    }

    /// The cluster as a test sees it (cheap to clone, usable from any runtime).
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The last `lines` lines of the log of every process started so far, in start order.
    pub fn log_tails(&self, lines: usize) -> Vec<LogTail> {
        self.supervisor.log_tails(lines)
    }

    /// The binaries in use (kubectl, helm and cmctl are there too).
    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    /// How long start-up took, step by step.
    pub fn timings(&self) -> StartupTimings {
        self.timings
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Leaves every process running after this value is dropped and returns them in start
    /// order; the run directory is kept too. For `controlplane up` (with
    /// [`SpawnMode::Detached`]).
    pub fn detach(mut self) -> Vec<ProcessInfo> {
        if let RunDir::Temporary(dir) = &mut self.dir {
            dir.disable_cleanup(true);
        }
        let processes = self.supervisor.detach();
        // Detached: dropping the node's handles stops nothing now, and `drop` tears down no node.
        self.node = None;
        processes
    }
}

/// Everything of [`ControlPlane::start`] that runs processes: PKI, etcd, kube-apiserver, the
/// admin kubeconfig, the CRDs, and the node if asked. Returns the cluster, the step timings,
/// etcd and kube-apiserver, and the node's processes.
async fn boot(
    supervisor: &Supervisor,
    binaries: &Binaries,
    root: &Path,
    options: &ControlPlaneOptions,
) -> Result<(Cluster, StartupTimings, Vec<ProcessHandle>, Option<crate::node::NodeProcesses>)> {
    let mut timings = StartupTimings::default();

    let step = Instant::now();
    let pki = Pki::generate(&root.join("pki"))?;
    timings.pki = step.elapsed();

    let step = Instant::now();
    let etcd =
        apiserver::start_etcd(supervisor, binaries, &root.join("etcd"), &options.extra_etcd_args, options.step_timeout)
            .await?;
    timings.etcd = step.elapsed();

    let step = Instant::now();
    let kubeconfig_path = root.join("kubeconfig");
    let scratch = root.join("scratch");
    let write_admin_kubeconfig = async |url: &str| {
        kubeconfig::write(
            &kubeconfig_path,
            url,
            &pki.ca_cert_pem,
            "ferrum-admin",
            Credentials::ClientCert { cert_pem: &pki.admin_cert_pem, key_pem: &pki.admin_key_pem },
            None,
        )?;
        let cluster = Cluster::from_kubeconfig(&kubeconfig_path, &scratch, None).await?;
        cluster.client()
    };
    let settings = ApiserverSettings {
        service_cluster_ip_range: &options.service_cluster_ip_range,
        cert_dir: &root.join("pki"),
        extra_args: &options.extra_apiserver_args,
        timeout: options.step_timeout,
        node: options.node,
    };
    let (apiserver, client) =
        apiserver::start_apiserver(supervisor, binaries, &pki, &etcd, &settings, write_admin_kubeconfig).await?;
    timings.apiserver = step.elapsed();

    let step = Instant::now();
    let mut crd_files: Vec<&Path> = Vec::new();
    let cert_manager_crds = binaries.cert_manager_crds();
    if options.install_cert_manager_crds {
        crd_files.push(&cert_manager_crds);
    }
    crd_files.extend(options.crd_files.iter().map(PathBuf::as_path));
    crds::install(&client, &crd_files, options.step_timeout).await?;
    timings.crds = step.elapsed();

    let log_dir = Some(supervisor.log_dir().to_path_buf());
    let cluster = Cluster::from_kubeconfig(&kubeconfig_path, &scratch, log_dir).await?;
    let core = vec![etcd.process, apiserver.process];
    let node = if options.node {
        let step = Instant::now();
        let node = crate::node::start(supervisor, binaries, root, &pki, &cluster, options.step_timeout).await?;
        timings.node = step.elapsed();
        Some(node)
    } else {
        None
    };
    Ok((cluster, timings, core, node))
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // A node first: the kubelet stops (so it restarts nothing), containerd's containers
        // are killed and deleted while it still runs, then everything stops and the host is
        // cleaned. `None` after `detach`.
        let node = self.node.take();
        if let Some(node) = &node {
            node.kubelet.stop();
            crate::node::remove_containers(&crate::node::node_dir(self.dir.path()));
        }
        // Reverse start order, whatever the field order; a no-op after `detach`. The
        // supervisor prints the log tails when it is dropped during a panic.
        self.supervisor.stop_all();
        self.core.clear();
        if node.is_some() {
            for failure in crate::node::clean_host(&crate::node::node_dir(self.dir.path()), Some(&self.binaries)) {
                eprintln!("ferrum-testenv: node teardown: {failure}");
            }
        }
        if let RunDir::Temporary(dir) = &mut self.dir
            && std::env::var_os("FERRUM_TESTENV_KEEP").is_some()
        {
            dir.disable_cleanup(true);
            eprintln!("ferrum-testenv: kept {}", dir.path().display());
        }
    }
}

/// Everything a [`Cluster`] offers (`client()`, `kubeconfig_path()`, `fresh_namespace()`,
/// `service_account_kubeconfig()`, ...) is available directly on a [`ControlPlane`].
impl std::ops::Deref for ControlPlane {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}
