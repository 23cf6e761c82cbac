//! A real control plane for Ferrum's tests, demo and benchmarks: etcd, kube-apiserver and
//! cert-manager's own controllers, run as local processes on free loopback ports (the envtest
//! pattern), from binaries that `tools/controlplane/build.sh` builds into a versioned cache.
//!
//! - [`ControlPlane::start`] starts etcd and kube-apiserver (RBAC, a client-certificate admin
//!   in `system:masters`, ServiceAccount tokens), writes an admin kubeconfig and installs
//!   cert-manager's and Ferrum's CRDs; [`ControlPlane::start_cert_manager`] adds cert-manager's
//!   controllers with a chosen set; [`ControlPlane::spawn_process`] runs anything else (Ferrum)
//!   under the same management.
//! - [`shared`] gives every test of one test binary the same control plane (or the one named by
//!   `FERRUM_TESTENV_KUBECONFIG`, e.g. from `controlplane up`), with a fresh namespace per test.
//! - Every process is stopped by PID in reverse start order on drop, also when a test panics;
//!   each keeps a log, and the tails are printed when a test fails.
//! - With [`ControlPlaneOptions::node`], a real node runs pods too ([`node`]): containerd, the
//!   kubelet, kube-proxy, kube-scheduler and kube-controller-manager, torn down without leftovers.
//!
//! ```no_run
//! # async fn example() -> Result<(), ferrum_testenv::Error> {
//! let env = ferrum_testenv::shared().await?;
//! let client = env.client()?;
//! let namespace = env.fresh_namespace("my-test").await?;
//! let ferrum = env.service_account_kubeconfig(&namespace, "ferrum").await?;
//! let mut cmd = std::process::Command::new("target/debug/ferrum-issuer");
//! cmd.env("KUBECONFIG", &ferrum.kubeconfig);
//! let _issuer = env.spawn_process("ferrum-issuer", cmd)?;
//! # let _ = client; Ok(()) }
//! ```

#![warn(missing_docs)]

mod apiserver;
pub mod binaries;
mod certmanager;
mod cluster;
mod control_plane;
pub mod crds;
mod error;
pub mod fixtures;
pub mod kubeconfig;
pub mod node;
mod pki;
pub mod process;
mod shared;
pub mod softhsm;
mod wait;

pub use binaries::{BUILD_COMMAND, Binaries, Tool};
pub use certmanager::{
    APPROVER, BUILTIN_SIGNERS, CERTIFICATE_CONTROLLERS, CertManagerOptions, ISSUER_CONTROLLERS, READY_LINE,
    approval_policy,
};
pub use cluster::{Cluster, ServiceAccountAccess};
pub use control_plane::{ControlPlane, ControlPlaneOptions, StartupTimings};
pub use error::{Error, Result};
pub use process::{LogTail, ProcessHandle, ProcessInfo, SpawnMode, Supervisor, TAIL_ON_PANIC};
pub use shared::{KUBECONFIG_ENV, TestEnv, shared};
