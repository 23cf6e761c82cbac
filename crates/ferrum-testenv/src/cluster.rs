//! [`Cluster`]: a running control plane as seen by a test, whoever started it.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::error::{Error, Result};
use crate::kubeconfig::{self, Credentials};
use crate::process::{LogTail, tail_of_file};

/// A running control plane: its admin kubeconfig and what can be derived from it.
///
/// It holds no client and no runtime, so it can be shared between tests that each run their own
/// Tokio runtime: every call to [`Cluster::client`] builds a new client on the caller's runtime.
#[derive(Clone, Debug)]
pub struct Cluster {
    kubeconfig: PathBuf,
    config: kube::Config,
    /// Where derived kubeconfigs are written.
    scratch: PathBuf,
    /// Where the control plane's process logs are, if we know.
    log_dir: Option<PathBuf>,
}

/// Credentials of one ServiceAccount, from [`Cluster::service_account_kubeconfig`].
#[derive(Clone)]
pub struct ServiceAccountAccess {
    /// A kubeconfig file that authenticates with the ServiceAccount's token; its context's
    /// namespace is the ServiceAccount's.
    pub kubeconfig: PathBuf,
    /// A client that uses that token, built on the caller's runtime.
    pub client: Client,
    /// The user name RBAC sees: `system:serviceaccount:<namespace>:<name>`.
    pub username: String,
}

impl std::fmt::Debug for ServiceAccountAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client and the file hold a bearer token: show neither.
        f.debug_struct("ServiceAccountAccess")
            .field("kubeconfig", &self.kubeconfig)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// How long the tokens of [`Cluster::service_account_kubeconfig`] live.
const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

impl Cluster {
    /// A cluster reached through an existing admin kubeconfig (its current context).
    ///
    /// Derived kubeconfigs are written to `scratch` (created if needed); `log_dir`, if given,
    /// is where the control plane's `*.log` files are, for [`Cluster::log_tails`].
    pub async fn from_kubeconfig(
        kubeconfig: impl Into<PathBuf>,
        scratch: impl Into<PathBuf>,
        log_dir: Option<PathBuf>,
    ) -> Result<Self> {
        let kubeconfig = kubeconfig.into();
        let scratch = scratch.into();
        std::fs::create_dir_all(&scratch).map_err(Error::io(format!("creating {}", scratch.display())))?;
        let config = kubeconfig::load(&kubeconfig).await?;
        Ok(Cluster { kubeconfig, config, scratch, log_dir })
    }

    /// The admin kubeconfig file.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The admin client configuration.
    pub fn config(&self) -> &kube::Config {
        &self.config
    }

    /// The API server's URL.
    pub fn server_url(&self) -> String {
        self.config.cluster_url.to_string()
    }

    /// A new admin client (user `ferrum-admin`, group `system:masters` when we started the
    /// control plane). Must be called inside a Tokio runtime; the client is tied to it.
    pub fn client(&self) -> Result<Client> {
        Client::try_from(self.config.clone()).map_err(Error::kube("building an admin client"))
    }

    /// Creates a namespace named `<prefix>-<random suffix>` and returns its name. Namespaces
    /// never finish deleting without kube-controller-manager, so every test takes a fresh one.
    pub async fn fresh_namespace(&self, prefix: &str) -> Result<String> {
        let name = unique_name(prefix);
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("ferrum-testenv".to_string(), "true".to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client()?)
            .create(&PostParams::default(), &namespace)
            .await
            .map_err(Error::kube(format!("creating namespace {name}")))?;
        Ok(name)
    }

    /// Creates namespace `name` unless it exists.
    pub async fn ensure_namespace(&self, name: &str) -> Result<()> {
        let namespace = Namespace {
            metadata: ObjectMeta { name: Some(name.to_string()), ..ObjectMeta::default() },
            ..Namespace::default()
        };
        match Api::<Namespace>::all(self.client()?).create(&PostParams::default(), &namespace).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(e) => Err(Error::kube(format!("creating namespace {name}"))(e)),
        }
    }

    /// Creates ServiceAccount `namespace/name` if needed (there is no controller that makes
    /// default ones), requests a token for it (TokenRequest, 24 h) and writes a kubeconfig that
    /// uses the token.
    pub async fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> Result<ServiceAccountAccess> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client()?, namespace);
        let account = ServiceAccount {
            metadata: ObjectMeta { name: Some(name.to_string()), ..ObjectMeta::default() },
            ..ServiceAccount::default()
        };
        match accounts.create(&PostParams::default(), &account).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => {
                return Err(Error::kube(format!("creating ServiceAccount {namespace}/{name}"))(e));
            }
        }
        let request = TokenRequest {
            spec: TokenRequestSpec {
                expiration_seconds: Some(TOKEN_LIFETIME.as_secs() as i64),
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        let token = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .map_err(Error::kube(format!("requesting a token for ServiceAccount {namespace}/{name}")))?
            .status
            .map(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Invalid(format!("TokenRequest for {namespace}/{name} returned no token")))?;

        let username = format!("system:serviceaccount:{namespace}:{name}");
        let path = self.scratch.join(format!("sa-{namespace}-{name}.kubeconfig"));
        kubeconfig::write(
            &path,
            &self.server_url(),
            &kubeconfig::ca_pem(&self.config)?,
            &username,
            Credentials::Token(&token),
            Some(namespace),
        )?;
        let config = kubeconfig::load(&path).await?;
        let client = Client::try_from(config).map_err(Error::kube(format!("building a client for {username}")))?;
        Ok(ServiceAccountAccess { kubeconfig: path, client, username })
    }

    /// The last `lines` lines of each control plane log, when the logs are known (a control
    /// plane started by this crate, here or by `controlplane up`).
    pub fn log_tails(&self, lines: usize) -> Vec<LogTail> {
        let Some(dir) = &self.log_dir else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        // Start order where the file system records creation times.
        paths.sort_by_key(|p| (std::fs::metadata(p).and_then(|m| m.created()).ok(), p.clone()));
        paths
            .into_iter()
            .map(|path| LogTail {
                name: path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
                pid: None,
                tail: tail_of_file(&path, lines),
                path,
            })
            .collect()
    }
}

/// `<prefix>-<8 hex digits>`, a valid namespace name (DNS label), unique with overwhelming
/// probability across processes.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut clean: String =
        prefix.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(50).collect();
    clean = clean.trim_matches('-').to_string();
    if clean.is_empty() {
        clean = "test".into();
    }
    // RandomState is seeded randomly per process; hashing a counter gives distinct values.
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = RandomState::new().hash_one((n, std::process::id()));
    format!("{clean}-{:08x}", random as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_dns_labels() {
        let a = unique_name("My_Test!");
        let b = unique_name("My_Test!");
        assert_ne!(a, b);
        assert!(a.starts_with("my-test-"), "{a}");
        assert!(a.len() <= 63);
        assert!(unique_name("--").starts_with("test-"));
        assert!(unique_name(&"x".repeat(100)).len() <= 63);
    }
}
