//! Finding the control plane's binaries in the cache that `tools/controlplane/build.sh` fills.
//!
//! The cache directory is keyed by the pinned versions in `tools/controlplane/versions.env`:
//! `${FERRUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrum}/controlplane/<key>/`, where
//! `<key>` is every value of that file joined with `-` in file order. The directory holds
//! `bin/<tool>`, `crds/cert-manager.crds.yaml` and a `.complete` marker. The environment
//! variable `FERRUM_CONTROLPLANE_DIR` overrides the whole lookup with such a directory.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The command that builds the binaries, relative to the repository root. Every error about a
/// missing binary names it.
pub const BUILD_COMMAND: &str = "tools/controlplane/build.sh";

/// Environment variable that points at a built `<key>` directory, bypassing the cache lookup.
pub const DIR_ENV: &str = "FERRUM_CONTROLPLANE_DIR";

/// One of the programs the build step produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// etcd, the store behind kube-apiserver.
    Etcd,
    /// kube-apiserver.
    KubeApiserver,
    /// kubectl, for people and debugging.
    Kubectl,
    /// Our runner of cert-manager's controllers.
    CmRunner,
    /// helm, for linting and rendering the chart.
    Helm,
    /// cmctl, cert-manager's CLI (approve, deny, status).
    Cmctl,
    /// The kubelet (a node; `build.sh --node`).
    Kubelet,
    /// kube-proxy (a node).
    KubeProxy,
    /// kube-scheduler (a node).
    KubeScheduler,
    /// kube-controller-manager (a node).
    KubeControllerManager,
}

impl Tool {
    /// Every tool, in the order the build step lists them.
    pub const ALL: [Tool; 6] =
        [Tool::Etcd, Tool::KubeApiserver, Tool::Kubectl, Tool::CmRunner, Tool::Helm, Tool::Cmctl];

    /// The tools a node runs besides the control plane (`tools/controlplane/build.sh --node`).
    pub const NODE: [Tool; 4] = [Tool::Kubelet, Tool::KubeProxy, Tool::KubeScheduler, Tool::KubeControllerManager];

    /// The tools [`Binaries::locate`] insists on, because the control plane runs them.
    pub const REQUIRED: [Tool; 3] = [Tool::Etcd, Tool::KubeApiserver, Tool::CmRunner];

    /// The file name of the tool inside `bin/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Tool::Etcd => "etcd",
            Tool::KubeApiserver => "kube-apiserver",
            Tool::Kubectl => "kubectl",
            Tool::CmRunner => "cm-runner",
            Tool::Helm => "helm",
            Tool::Cmctl => "cmctl",
            Tool::Kubelet => "kubelet",
            Tool::KubeProxy => "kube-proxy",
            Tool::KubeScheduler => "kube-scheduler",
            Tool::KubeControllerManager => "kube-controller-manager",
        }
    }
}

/// A located, built control plane directory.
#[derive(Clone, Debug)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// Finds the binaries: `$FERRUM_CONTROLPLANE_DIR` if set, else the cache directory keyed by
    /// the repository's `tools/controlplane/versions.env`.
    ///
    /// Fails with [`Error::MissingBinaries`], whose message names [`BUILD_COMMAND`], when the
    /// directory is incomplete.
    pub fn locate() -> Result<Self> {
        match std::env::var_os(DIR_ENV) {
            Some(dir) if !dir.is_empty() => Self::at(PathBuf::from(dir)),
            _ => {
                let dir = default_key_dir()?;
                if !dir.join(".complete").is_file() {
                    return Err(missing(&dir, &[".complete (the build has not finished)".into()]));
                }
                Self::at(dir)
            }
        }
    }

    /// Uses `dir` (a `<key>` directory with `bin/` and `crds/`) and checks that the required
    /// tools and cert-manager's CRDs are in it.
    pub fn at(dir: impl Into<PathBuf>) -> Result<Self> {
        let binaries = Binaries { dir: dir.into() };
        let mut absent: Vec<String> = Tool::REQUIRED
            .iter()
            .filter(|tool| !is_executable(&binaries.bin_path(**tool)))
            .map(|tool| format!("bin/{}", tool.file_name()))
            .collect();
        if !binaries.cert_manager_crds().is_file() {
            absent.push(CERT_MANAGER_CRDS.to_string());
        }
        if absent.is_empty() { Ok(binaries) } else { Err(missing(&binaries.dir, &absent)) }
    }

    /// The `<key>` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of `tool`, checked to exist and be executable.
    pub fn path(&self, tool: Tool) -> Result<PathBuf> {
        let path = self.bin_path(tool);
        if is_executable(&path) { Ok(path) } else { Err(missing(&self.dir, &[format!("bin/{}", tool.file_name())])) }
    }

    /// Checks that the node's tools were built (`build.sh --node`); the error names the command.
    pub fn check_node(&self) -> Result<()> {
        let absent: Vec<String> = Tool::NODE
            .iter()
            .filter(|tool| !is_executable(&self.bin_path(**tool)))
            .map(|tool| format!("bin/{}", tool.file_name()))
            .collect();
        if absent.is_empty() {
            return Ok(());
        }
        Err(Error::MissingBinaries(format!(
            "the node's binaries are missing in {}: {}. Build them with `{BUILD_COMMAND} --node` from the repository \
             root (about 2 minutes with warm Go caches).",
            self.dir.display(),
            absent.join(", ")
        )))
    }

    /// cert-manager's CRDs as one multi-document YAML file.
    pub fn cert_manager_crds(&self) -> PathBuf {
        self.dir.join(CERT_MANAGER_CRDS)
    }

    fn bin_path(&self, tool: Tool) -> PathBuf {
        self.dir.join("bin").join(tool.file_name())
    }
}

const CERT_MANAGER_CRDS: &str = "crds/cert-manager.crds.yaml";

/// The repository root this crate was compiled in.
pub fn repo_root() -> PathBuf {
    // CARGO_MANIFEST_DIR is <root>/crates/ferrum-testenv.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The cache key of a `versions.env` text: every value joined with `-`, in file order.
///
/// Exactly what `tools/controlplane/bin-dir.sh` computes: only lines of the form
/// `NAME=value` (NAME an identifier at the start of the line) count, and the value is taken
/// verbatim.
pub fn cache_key(versions_env: &str) -> Result<String> {
    let values: Vec<&str> = versions_env
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once('=')?;
            let mut chars = name.chars();
            let first = chars.next()?;
            let is_identifier =
                (first.is_ascii_alphabetic() || first == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            is_identifier.then_some(value)
        })
        .collect();
    if values.is_empty() {
        return Err(Error::Invalid("versions.env holds no NAME=value line".into()));
    }
    Ok(values.join("-"))
}

/// The cache root: `${FERRUM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrum}`.
pub fn cache_root() -> Result<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("FERRUM_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let base = match (non_empty("XDG_CACHE_HOME"), non_empty("HOME")) {
        (Some(xdg), _) => PathBuf::from(xdg),
        (None, Some(home)) => PathBuf::from(home).join(".cache"),
        (None, None) => {
            return Err(Error::Invalid(
                "cannot find the cache: none of FERRUM_CACHE_DIR, XDG_CACHE_HOME, HOME is set".into(),
            ));
        }
    };
    Ok(base.join("ferrum"))
}

/// The `<key>` directory for the repository's pinned versions.
pub fn default_key_dir() -> Result<PathBuf> {
    let versions = repo_root().join("tools/controlplane/versions.env");
    let text = std::fs::read_to_string(&versions).map_err(|source| {
        Error::MissingBinaries(format!(
            "cannot read {}: {source}. It pins the control plane versions that `{BUILD_COMMAND}` \
             builds.",
            versions.display()
        ))
    })?;
    Ok(cache_root()?.join("controlplane").join(cache_key(&text)?))
}

fn missing(dir: &Path, absent: &[String]) -> Error {
    Error::MissingBinaries(format!(
        "control plane binaries are missing in {}: {}. Build them with `{BUILD_COMMAND}` from the \
         repository root (a cold build takes tens of minutes, a warm one under a minute), or point \
         {DIR_ENV} at a built directory.",
        dir.display(),
        absent.join(", ")
    ))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_joins_values_in_file_order() {
        let text = "# pins\nKUBERNETES=v1.36.3\n\nETCD_2=v3.6.5\n  INDENTED=x\nCM=v1.21.0\n";
        assert_eq!(cache_key(text).unwrap(), "v1.36.3-v3.6.5-v1.21.0");
    }

    #[test]
    fn cache_key_matches_the_build_script() {
        let versions = repo_root().join("tools/controlplane/versions.env");
        let text = std::fs::read_to_string(&versions).unwrap();
        let script = repo_root().join("tools/controlplane/bin-dir.sh");
        let out = std::process::Command::new("bash").arg(&script).output().unwrap();
        assert!(out.status.success(), "{script:?} failed");
        let dir = String::from_utf8(out.stdout).unwrap();
        let key = cache_key(&text).unwrap();
        assert!(dir.trim_end().ends_with(&format!("/{key}")), "{dir} vs {key}");
    }

    #[test]
    fn cache_key_rejects_garbage() {
        assert!(cache_key("no equals sign").is_err());
        assert!(cache_key("# only a comment\n").is_err());
    }

    #[test]
    fn empty_dir_names_the_build_command() {
        let dir = tempfile::tempdir().unwrap();
        let err = Binaries::at(dir.path()).unwrap_err().to_string();
        assert!(err.contains(BUILD_COMMAND), "{err}");
        assert!(err.contains("bin/etcd"), "{err}");
    }
}
