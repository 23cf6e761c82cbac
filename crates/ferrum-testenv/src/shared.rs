//! One control plane per test process, shared by its tests; or one started outside the process.
//!
//! Each `#[tokio::test]` runs its own runtime, and a kube client only works while the runtime
//! that built it runs. So the shared control plane is started on a thread of its own (which
//! then parks for the life of the process, keeping the processes' death signal armed), and
//! tests get [`Cluster`] values that hold no client: each test builds its clients on its own
//! runtime. The processes are stopped when the test process exits (an `atexit` hook; if the
//! process is killed instead, the kernel's death signal stops them).
//!
//! The shared control plane runs no cert-manager controllers of its own: each test starts a
//! runner scoped to its namespace ([`TestEnv::start_cert_manager`]) with the controller set it
//! needs, so one test can drive approval by hand while another has the approver.
//!
//! With `FERRUM_TESTENV_KUBECONFIG` set, nothing is started: the tests use that cluster. That is
//! how cargo-nextest (one process per test) should run, with the cluster from
//! `cargo run -p ferrum-testenv --bin controlplane -- up --no-cert-manager` (without that flag a
//! cluster-wide runner would act in every test's namespace too).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::binaries::{Binaries, Tool};
use crate::certmanager::{self, CertManagerOptions};
use crate::cluster::Cluster;
use crate::control_plane::{ControlPlane, ControlPlaneOptions};
use crate::error::{Error, Result};
use crate::process::{LogTail, ProcessHandle, SpawnMode, Supervisor, TAIL_ON_PANIC, format_tails};

/// Environment variable naming the admin kubeconfig of a control plane started outside the
/// test process; [`shared`] then uses it instead of starting one.
pub const KUBECONFIG_ENV: &str = "FERRUM_TESTENV_KUBECONFIG";

/// The shared cluster, or why it could not start (every later caller gets the same answer).
static SHARED: OnceLock<Result<Shared, InitError>> = OnceLock::new();

/// What [`SHARED`] holds once started.
#[derive(Clone)]
struct Shared {
    cluster: Cluster,
    /// The binaries it was started from, if it was started here.
    binaries: Option<Binaries>,
}

/// Why the shared cluster could not start, kept as text (errors are not `Clone`).
#[derive(Clone)]
struct InitError {
    /// The cause was [`Error::MissingBinaries`].
    missing_binaries: bool,
    text: String,
}

/// The shared control plane, owned here so that the exit hook can stop it.
static OWNED: Mutex<Option<ControlPlane>> = Mutex::new(None);

/// The control plane shared by every test of this process, started on first use with
/// [`ControlPlaneOptions::default`]; or the one named by `FERRUM_TESTENV_KUBECONFIG`.
///
/// Returns a per-test [`TestEnv`]: processes the test starts through it (cert-manager's runner,
/// Ferrum) are stopped when it is dropped.
pub async fn shared() -> Result<TestEnv> {
    let shared = tokio::task::spawn_blocking(|| SHARED.get_or_init(init).clone())
        .await
        .map_err(|e| Error::Invalid(format!("starting the shared control plane panicked: {e}")))?
        .map_err(|e| match e.missing_binaries {
            true => Error::MissingBinaries(e.text),
            false => Error::Invalid(format!("shared control plane: {}", e.text)),
        })?;
    TestEnv::new(shared.cluster, shared.binaries)
}

/// What one test gets from [`shared`]: the cluster, plus its own supervisor for the processes
/// it starts (e.g. Ferrum itself).
///
/// Dropping it stops the test's processes; if the test is panicking it first prints the tail of
/// the control plane's logs and of its own processes' logs.
pub struct TestEnv {
    cluster: Cluster,
    binaries: Option<Binaries>,
    supervisor: Supervisor,
    /// Removed after `supervisor` is dropped (it holds the logs).
    _dir: tempfile::TempDir,
}

impl TestEnv {
    /// A per-test environment on a control plane the test owns (one it starts itself, to
    /// restart its apiserver, say), as [`shared`] gives one on the shared control plane.
    pub fn on(control_plane: &ControlPlane) -> Result<Self> {
        Self::new(control_plane.cluster().clone(), Some(control_plane.binaries().clone()))
    }

    fn new(cluster: Cluster, binaries: Option<Binaries>) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("ferrum-test-")
            .tempdir()
            .map_err(Error::io("creating a temporary directory"))?;
        let supervisor = Supervisor::new(dir.path().join("logs"), SpawnMode::Attached)?;
        Ok(TestEnv { cluster, binaries, supervisor, _dir: dir })
    }

    /// The shared cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Starts a process for this test: logged in the test's temporary directory, stopped when
    /// the handle or this value is dropped.
    pub fn spawn_process(&self, name: &str, cmd: std::process::Command) -> Result<ProcessHandle> {
        self.supervisor.spawn(name, cmd)
    }

    /// Starts cert-manager's runner for this test and waits until it is ready; see
    /// [`CertManagerOptions`]. On the shared cluster, scope it to the test's namespace
    /// (`namespace: Some(..)`), or it acts in every other test's namespace too.
    pub async fn start_cert_manager(&self, options: CertManagerOptions) -> Result<ProcessHandle> {
        let program = match &self.binaries {
            Some(binaries) => binaries.path(Tool::CmRunner)?,
            None => Binaries::locate()?.path(Tool::CmRunner)?,
        };
        certmanager::start(&self.supervisor, &self.cluster, &program, &options).await
    }

    /// The tails of the control plane's logs, then of this test's processes.
    pub fn log_tails(&self, lines: usize) -> Vec<LogTail> {
        let mut tails = self.cluster.log_tails(lines);
        tails.extend(self.supervisor.log_tails(lines));
        tails
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // The supervisor prints its own processes' tails when it is dropped.
        if std::thread::panicking() {
            eprint!("{}", format_tails(&self.cluster.log_tails(TAIL_ON_PANIC)));
        }
    }
}

fn init() -> Result<Shared, InitError> {
    match std::env::var_os(KUBECONFIG_ENV).filter(|v| !v.is_empty()) {
        Some(path) => external(PathBuf::from(path))
            .map(|cluster| Shared { cluster, binaries: None })
            .map_err(|e| InitError::from(&e)),
        None => start_owned(),
    }
}

/// Uses a control plane started elsewhere, failing fast if it does not answer.
fn external(kubeconfig: PathBuf) -> Result<Cluster> {
    let runtime = runtime()?;
    runtime.block_on(async {
        // `controlplane up` keeps the logs and a scratch directory next to the kubeconfig;
        // for any other kubeconfig, derived files go to a per-process temporary directory
        // (statics are never dropped, so that one is left behind).
        let state_dir = kubeconfig.parent().map(Path::to_path_buf);
        let log_dir = state_dir.as_ref().map(|dir| dir.join("logs")).filter(|dir| dir.is_dir());
        let scratch = state_dir
            .map(|dir| dir.join("scratch"))
            .filter(|dir| dir.is_dir())
            .unwrap_or_else(|| std::env::temp_dir().join(format!("ferrum-testenv-{}", std::process::id())));
        let cluster = Cluster::from_kubeconfig(&kubeconfig, scratch, log_dir).await?;
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|e| Error::Invalid(format!("building /readyz request: {e}")))?;
        let ready = tokio::time::timeout(Duration::from_secs(10), cluster.client()?.request_text(request)).await;
        match ready {
            Ok(Ok(_)) => Ok(cluster),
            Ok(Err(e)) => Err(Error::kube(format!(
                "{KUBECONFIG_ENV}={} is not ready (is `controlplane up` running?)",
                kubeconfig.display()
            ))(e)),
            Err(_) => Err(Error::Invalid(format!(
                "{KUBECONFIG_ENV}={}: no answer from the API server in 10 s (is `controlplane \
                 up` running?)",
                kubeconfig.display()
            ))),
        }
    })
}

/// Starts the control plane on a dedicated thread that then parks forever.
fn start_owned() -> Result<Shared, InitError> {
    let (sender, receiver) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("ferrum-testenv".into()).spawn(move || {
        let started =
            runtime().and_then(|runtime| runtime.block_on(ControlPlane::start(ControlPlaneOptions::default())));
        match started {
            Ok(control_plane) => {
                let shared = Shared {
                    cluster: control_plane.cluster().clone(),
                    binaries: Some(control_plane.binaries().clone()),
                };
                *OWNED.lock().unwrap_or_else(|p| p.into_inner()) = Some(control_plane);
                // SAFETY: registering a plain `extern "C" fn` has no preconditions.
                unsafe { libc::atexit(stop_owned) };
                let _ = sender.send(Ok(shared));
                // Children are signalled when the thread that spawned them ends: never end.
                loop {
                    std::thread::park();
                }
            }
            Err(e) => {
                let _ = sender.send(Err(InitError::from(&e)));
            }
        }
    });
    if let Err(e) = spawned {
        return Err(InitError { missing_binaries: false, text: format!("spawning the control plane thread: {e}") });
    }
    receiver.recv().map_err(|_| InitError {
        missing_binaries: false,
        text: "the control plane thread ended without an answer".into(),
    })?
}

/// The exit hook: stops the shared control plane (reverse start order) and removes its files.
extern "C" fn stop_owned() {
    let owned = OWNED.lock().unwrap_or_else(|p| p.into_inner()).take();
    drop(owned);
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::io("building a Tokio runtime"))
}

impl From<&Error> for InitError {
    /// The error with its causes, on one line.
    fn from(error: &Error) -> Self {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        InitError { missing_binaries: matches!(error, Error::MissingBinaries(_)), text }
    }
}

/// Everything a [`Cluster`] offers (`client()`, `kubeconfig_path()`, `fresh_namespace()`,
/// `service_account_kubeconfig()`, ...) is available directly on a [`TestEnv`].
impl std::ops::Deref for TestEnv {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}
