//! A real node for the local control plane: containerd and runc (Debian's packages), a bridge
//! CNI network of its own, the kubelet, kube-proxy, kube-scheduler and kube-controller-manager
//! built from the same `k8s.io/kubernetes` module as kube-apiserver, so that pods run — the
//! Helm chart installed as it is in a cluster.
//!
//! Everything the node makes lives under `<run dir>/node/` (containerd's root and state, the
//! network namespaces, the kubelet's root, pod logs, CNI state) except what only the host can
//! hold: the bridge [`BRIDGE`], kube-proxy's iptables chains and the kubelet's `kubepods`
//! cgroups. One node runs on a machine at a time (the bridge is the claim). [`teardown`] removes
//! all of it and [`leftovers`] says what, if anything, is left.
//!
//! Pod traffic stays between the pods, the bridge and the node: the apiserver is reached through
//! the `kubernetes` Service (kube-proxy to the bridge's address), nothing is masqueraded out, and
//! the pods' resolv.conf names no server.
//!
//! The traps found on this machine (see `shared/design/real-node.md`): containerd must not set
//! a negative oom_score_adj (`restrict_oom_score_adj`), containerd 1.6 has no CRI
//! `RuntimeConfig` so the kubelet uses `cgroupfs`, cgroup v1 needs `failCgroupV1: false`, and
//! kube-apiserver must not resolve the node's name (`--kubelet-preferred-address-types`).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::Api;

use crate::binaries::{Binaries, Tool};
use crate::error::{Error, Result};
use crate::kubeconfig::{self, Credentials};
use crate::pki::{Pki, write_file};
use crate::process::{ProcessHandle, Supervisor};
use crate::wait::{Probe, poll};

/// The node's name.
pub const NODE_NAME: &str = "ferrum-node";
/// The bridge the node's pods hang on; its existence is the claim that a node runs here.
pub const BRIDGE: &str = "ferrum0";
/// The bridge's address: the pods' gateway, the node's InternalIP, kube-apiserver's advertised
/// address (pods reach it there through the `kubernetes` Service).
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 1);
/// The pods' addresses.
pub const POD_SUBNET: &str = "10.244.0.0/24";
/// The Services' addresses (the control plane's default `--service-cluster-ip-range`).
pub const SERVICE_RANGE: &str = "10.0.0.0/24";
/// The `kubernetes` Service's address (the first of the default service range, 10.0.0.0/24).
pub const KUBERNETES_SERVICE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
/// The sandbox image, built here from `bin/pause` (no registry is reachable).
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:ferrum";
/// containerd's namespace for Kubernetes.
const K8S_NAMESPACE: &str = "k8s.io";
/// The Debian packages the node needs, installed by `scripts/node-prereqs.sh`.
pub const PACKAGES: [&str; 7] =
    ["containerd", "runc", "buildah", "containernetworking-plugins", "iptables", "gcc", "iproute2"];
/// Programs looked for, and the package of each.
const PROGRAMS: [(&str, &str); 7] = [
    ("containerd", "containerd"),
    ("ctr", "containerd"),
    ("runc", "runc"),
    ("buildah", "buildah"),
    ("iptables", "iptables"),
    ("ip", "iproute2"),
    ("containerd-shim-runc-v2", "containerd"),
];
/// Where Debian's CNI plugins live.
const CNI_BIN: &str = "/usr/lib/cni";

/// The running node's processes (the rest is in the run directory).
pub(crate) struct NodeProcesses {
    /// Stopped first at teardown, so that it does not restart what is being removed.
    pub(crate) kubelet: ProcessHandle,
    /// The other processes, in start order (held: dropping a handle stops its process).
    #[allow(dead_code, reason = "held for its Drop, never read")]
    pub(crate) others: Vec<ProcessHandle>,
}

/// The node's directory inside a run directory.
pub fn node_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("node")
}

/// Checks that the packages and the node's binaries are there; the error says how to get them.
pub fn check_prerequisites(binaries: &Binaries) -> Result<()> {
    let mut missing: Vec<String> = PROGRAMS
        .iter()
        .filter(|(program, _)| which(program).is_none())
        .map(|(program, package)| format!("{program} (package {package})"))
        .collect();
    for plugin in ["bridge", "host-local", "loopback", "portmap"] {
        if !Path::new(CNI_BIN).join(plugin).is_file() {
            missing.push(format!("{CNI_BIN}/{plugin} (package containernetworking-plugins)"));
        }
    }
    if !missing.is_empty() {
        return Err(Error::MissingBinaries(format!(
            "a node needs {}: install them with `scripts/node-prereqs.sh` (as root: apt-get install {})",
            missing.join(", "),
            PACKAGES.join(" ")
        )));
    }
    binaries.check_node()?;
    if !binaries.dir().join("bin/pause").is_file() {
        return Err(Error::MissingBinaries(format!(
            "{}/bin/pause is missing: build it with `tools/controlplane/build.sh --node`",
            binaries.dir().display()
        )));
    }
    Ok(())
}

/// The path of `program` on `PATH` (and the sbin directories root has).
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Runs a host command; `Err` carries its output.
fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(which(program).unwrap_or_else(|| PathBuf::from(program)))
        .args(args)
        .output()
        .map_err(Error::io(format!("running {program}")))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(Error::Invalid(format!("{program} {}: {}", args.join(" "), text.trim())))
    }
}

/// Whether the node's bridge exists.
fn bridge_exists() -> bool {
    Path::new("/sys/class/net").join(BRIDGE).exists()
}

/// Claims the machine for this node: creates the bridge with the gateway address. Refused when
/// a node already runs (the bridge exists).
pub(crate) fn claim_bridge() -> Result<()> {
    if bridge_exists() {
        // A node whose processes are gone (a killed run, a machine whose session ended) left
        // its bridge, chains and cgroups: removed; a node that runs is not touched.
        let running = processes_mentioning(&format!("--hostname-override={NODE_NAME}"));
        if !running.is_empty() {
            return Err(Error::Invalid(format!(
                "a node already runs on this machine (bridge {BRIDGE}, kubelet pid {running:?}): stop it with \
                 `controlplane down`"
            )));
        }
        tracing::warn!(bridge = BRIDGE, "removing what a node that is gone left behind");
        // Shims of a node's containerd that outlived it keep their containers running.
        for pid in processes_mentioning("/node/containerd/containerd.sock") {
            let _ = crate::process::terminate_pid(pid, Duration::from_secs(2));
        }
        for failure in clean_host(Path::new("/nonexistent-ferrum-node"), None) {
            tracing::warn!(%failure, "stale node clean-up");
        }
    }
    run("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
    run("ip", &["addr", "add", &format!("{GATEWAY}/24"), "dev", BRIDGE])?;
    run("ip", &["link", "set", BRIDGE, "up"])?;
    Ok(())
}

/// kube-apiserver's flags for a node: reachable from pods on the bridge, the Node authorizer and
/// NodeRestriction, its client certificate towards kubelets, kubelets by address (no DNS).
pub(crate) fn apiserver_args(pki: &Pki) -> Vec<String> {
    let file = |name: &str| pki.dir.join(name).display().to_string();
    vec![
        "--bind-address=0.0.0.0".into(),
        format!("--advertise-address={GATEWAY}"),
        "--authorization-mode=Node,RBAC".into(),
        "--enable-admission-plugins=NodeRestriction".into(),
        format!("--kubelet-client-certificate={}", file("apiserver-kubelet-client.crt")),
        format!("--kubelet-client-key={}", file("apiserver-kubelet-client.key")),
        format!("--kubelet-certificate-authority={}", file("ca.crt")),
        "--kubelet-preferred-address-types=InternalIP".into(),
    ]
}

/// Starts containerd, the pause image, the CNI network, the kubelet, kube-proxy, kube-scheduler
/// and kube-controller-manager, and waits until the node is Ready.
pub(crate) async fn start(
    supervisor: &Supervisor,
    binaries: &Binaries,
    run_dir: &Path,
    pki: &Pki,
    cluster: &crate::Cluster,
    timeout: Duration,
) -> Result<NodeProcesses> {
    let server = &cluster.server_url();
    let admin_kubeconfig = cluster.kubeconfig_path();
    let client = &cluster.client()?;
    let dir = node_dir(run_dir);
    for sub in ["containerd/root", "containerd/state", "cni/net.d", "cni/ipam", "kubelet", "pod-logs"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(Error::io(format!("creating {}", dir.join(sub).display())))?;
    }
    let mut others = Vec::new();

    let socket = dir.join("containerd/containerd.sock");
    write_file(&dir.join("containerd/config.toml"), &containerd_config(&dir))?;
    let mut cmd = Command::new(which("containerd").unwrap_or_else(|| "containerd".into()));
    cmd.arg("--config").arg(dir.join("containerd/config.toml"));
    let containerd = supervisor.spawn("containerd", cmd)?;
    poll("containerd's socket", timeout, Duration::from_millis(100), || async {
        if let Some(status) = containerd.exit_status() {
            return Err(Probe::Fatal(Error::Exited {
                name: "containerd".into(),
                status,
                tail: containerd.log_tail(30),
            }));
        }
        if socket.exists() { Ok(Some(())) } else { Err(Probe::NotYet("no socket yet".into())) }
    })
    .await?;
    others.push(containerd);
    let pause = build_image(&dir.join("images"), &binaries.dir().join("bin/pause"), "/pause", PAUSE_IMAGE, &[], 65535)?;
    import_image(&dir, &pause)?;

    write_file(&dir.join("cni/net.d/10-ferrum.conflist"), &cni_config(&dir))?;
    // No name server: pods resolve nothing outside (the network rule).
    write_file(&dir.join("resolv.conf"), "search svc.cluster.local cluster.local\noptions ndots:5\n")?;

    let kubelet_kubeconfig = dir.join("kubelet.kubeconfig");
    let read = |name: &str| std::fs::read_to_string(pki.dir.join(name)).map_err(Error::io(format!("reading {name}")));
    let (cert_pem, key_pem) = (read("kubelet.crt")?, read("kubelet.key")?);
    kubeconfig::write(
        &kubelet_kubeconfig,
        server,
        &pki.ca_cert_pem,
        &format!("system:node:{NODE_NAME}"),
        Credentials::ClientCert { cert_pem: &cert_pem, key_pem: &key_pem },
        None,
    )?;
    write_file(&dir.join("kubelet.yaml"), &kubelet_config(&dir, pki))?;
    let mut cmd = Command::new(binaries.path(Tool::Kubelet)?);
    cmd.arg(format!("--config={}", dir.join("kubelet.yaml").display()))
        .arg(format!("--kubeconfig={}", kubelet_kubeconfig.display()))
        .arg(format!("--hostname-override={NODE_NAME}"))
        .arg(format!("--node-ip={GATEWAY}"))
        .arg(format!("--root-dir={}", dir.join("kubelet").display()))
        .arg(format!("--cert-dir={}", dir.join("kubelet/pki").display()));
    let kubelet = supervisor.spawn("kubelet", cmd)?;

    write_file(&dir.join("kube-proxy.yaml"), &kube_proxy_config(admin_kubeconfig))?;
    let mut cmd = Command::new(binaries.path(Tool::KubeProxy)?);
    cmd.arg(format!("--config={}", dir.join("kube-proxy.yaml").display()));
    others.push(supervisor.spawn("kube-proxy", cmd)?);

    // Both control loops: the admin kubeconfig, no leader election, no serving port.
    let kubeconfig = admin_kubeconfig.display().to_string();
    let control_loop = [
        format!("--kubeconfig={kubeconfig}"),
        format!("--authentication-kubeconfig={kubeconfig}"),
        format!("--authorization-kubeconfig={kubeconfig}"),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        "--secure-port=0".into(),
    ];
    let mut cmd = Command::new(binaries.path(Tool::KubeScheduler)?);
    cmd.args(&control_loop);
    others.push(supervisor.spawn("kube-scheduler", cmd)?);

    let mut cmd = Command::new(binaries.path(Tool::KubeControllerManager)?);
    cmd.args(&control_loop).args([
        "--use-service-account-credentials".to_owned(),
        format!("--service-account-private-key-file={}", pki.service_account_key.display()),
        format!("--root-ca-file={}", pki.ca_cert.display()),
    ]);
    others.push(supervisor.spawn("kube-controller-manager", cmd)?);

    let nodes: Api<Node> = Api::all(client.clone());
    poll("the node Ready", timeout, Duration::from_millis(250), || async {
        if let Some(status) = kubelet.exit_status() {
            return Err(Probe::Fatal(Error::Exited { name: "kubelet".into(), status, tail: kubelet.log_tail(30) }));
        }
        let node = nodes.get_opt(NODE_NAME).await.map_err(|e| Probe::NotYet(e.to_string()))?;
        let ready = node
            .and_then(|n| n.status?.conditions)
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready { Ok(Some(())) } else { Err(Probe::NotYet(format!("node {NODE_NAME} not Ready yet"))) }
    })
    .await?;
    Ok(NodeProcesses { kubelet, others })
}

fn containerd_config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/containerd/root"
state = "{d}/containerd/state"
[grpc]
  address = "{d}/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # The machine withholds CAP_SYS_RESOURCE: a negative oom_score_adj is refused.
  restrict_oom_score_adj = true
  # Network namespaces under the run directory, not /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{d}/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
"#
    )
}

fn cni_config(dir: &Path) -> String {
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "ferrum",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                // Nothing leaves for the outside world: no masquerading.
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": GATEWAY.to_string()}]],
                    // A route to the Services only (through the bridge): no default route, so
                    // pods reach nothing but the node's own addresses.
                    "routes": [{"dst": SERVICE_RANGE}],
                    "dataDir": dir.join("cni/ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    })
    .to_string()
}

fn kubelet_config(dir: &Path, pki: &Pki) -> String {
    let d = dir.display();
    let p = pki.dir.display();
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# containerd 1.6 has no CRI RuntimeConfig: the kubelet's own driver is used.
cgroupDriver: cgroupfs
failCgroupV1: false
containerRuntimeEndpoint: unix://{d}/containerd/containerd.sock
address: {GATEWAY}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: false}}
  x509: {{clientCAFile: {p}/ca.crt}}
authorization: {{mode: AlwaysAllow}}
tlsCertFile: {p}/kubelet-serving.crt
tlsPrivateKeyFile: {p}/kubelet-serving.key
clusterDomain: cluster.local
resolvConf: {d}/resolv.conf
podLogsDir: {d}/pod-logs
oomScoreAdj: 0
evictionHard: {{memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
"#
    )
}

fn kube_proxy_config(admin_kubeconfig: &Path) -> String {
    format!(
        r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {{kubeconfig: {}}}
mode: iptables
clusterCIDR: {POD_SUBNET}
hostnameOverride: {NODE_NAME}
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["{GATEWAY}/32"]
conntrack: {{maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}}
oomScoreAdj: 0
"#,
        admin_kubeconfig.display()
    )
}

/// Packs `binary` (and the libraries it links, and the system's CA certificates) as the image
/// `name` with buildah, from scratch, running as `user`: an OCI archive in `dir`.
pub fn build_image(dir: &Path, binary: &Path, target: &str, name: &str, args: &[&str], user: u32) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let archive = dir.join(format!("{}.tar", name.replace(['/', ':'], "_")));
    let container = run("buildah", &["from", "scratch"])?.trim().to_owned();
    let result = (|| {
        let binary_text = binary.display().to_string();
        run("buildah", &["copy", &container, &binary_text, target])?;
        for library in linked_libraries(binary)? {
            run("buildah", &["copy", &container, &library, &library])?;
        }
        let certs = "/etc/ssl/certs/ca-certificates.crt";
        if Path::new(certs).is_file() {
            run("buildah", &["copy", &container, certs, certs])?;
        }
        let mut entrypoint = vec![target.to_owned()];
        entrypoint.extend(args.iter().map(|a| (*a).to_owned()));
        let entrypoint = serde_json::to_string(&entrypoint).unwrap_or_default();
        let user = format!("{user}:{user}");
        run("buildah", &["config", "--entrypoint", &entrypoint, "--user", &user, &container])?;
        let _ = std::fs::remove_file(&archive);
        run("buildah", &["commit", "-q", &container, &format!("oci-archive:{}:{name}", archive.display())])?;
        Ok(archive.clone())
    })();
    let _ = run("buildah", &["rm", &container]);
    result
}

/// The shared libraries `binary` links (none for a static one).
fn linked_libraries(binary: &Path) -> Result<Vec<String>> {
    let out = Command::new("ldd").arg(binary).output().map_err(Error::io("running ldd"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .split_whitespace()
        .filter(|word| word.starts_with('/'))
        .map(str::to_owned)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect())
}

/// Imports an OCI archive into the node's containerd, under the name it was built with.
pub fn import_image(node_dir: &Path, archive: &Path) -> Result<()> {
    let socket = node_dir.join("containerd/containerd.sock").display().to_string();
    run("ctr", &["--address", &socket, "-n", K8S_NAMESPACE, "images", "import", &archive.display().to_string()])?;
    Ok(())
}

/// The containers containerd runs for Kubernetes (none when it is not running).
fn running_tasks(node_dir: &Path) -> Vec<String> {
    let socket = node_dir.join("containerd/containerd.sock");
    if !socket.exists() {
        return Vec::new();
    }
    let socket = socket.display().to_string();
    run("ctr", &["--address", &socket, "-n", K8S_NAMESPACE, "tasks", "ls", "-q"])
        .map(|out| out.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Kills and deletes every container containerd still holds (run with the kubelet stopped and
/// containerd still running), so that no shim outlives it.
pub fn remove_containers(node_dir: &Path) {
    let socket = node_dir.join("containerd/containerd.sock");
    if !socket.exists() {
        return;
    }
    let socket = socket.display().to_string();
    let ctr = |args: &[&str]| {
        let mut all = vec!["--address", &socket, "-n", K8S_NAMESPACE];
        all.extend(args);
        run("ctr", &all)
    };
    for task in running_tasks(node_dir) {
        let _ = ctr(&["tasks", "kill", "-s", "SIGKILL", &task]);
    }
    std::thread::sleep(Duration::from_millis(300));
    for task in running_tasks(node_dir) {
        let _ = ctr(&["tasks", "delete", "-f", &task]);
    }
    if let Ok(out) = ctr(&["containers", "ls", "-q"]) {
        for container in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let _ = ctr(&["containers", "delete", container]);
        }
    }
}

/// Removes what the node left on the host once its processes are stopped: kube-proxy's
/// iptables chains, shims, mounts under the node directory, the `kubepods` cgroups, the bridge.
/// Returns what could not be removed.
pub fn clean_host(node_dir: &Path, binaries: Option<&Binaries>) -> Vec<String> {
    let mut failures = Vec::new();
    // Shims of this node's containerd, if any outlived it.
    for pid in processes_mentioning(&node_dir.display().to_string()) {
        let _ = crate::process::terminate_pid(pid, Duration::from_secs(2));
    }
    if let Some(proxy) = binaries.and_then(|b| b.path(Tool::KubeProxy).ok()) {
        let _ = Command::new(proxy).arg("--cleanup").output();
    }
    // The kubelet's own chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) and
    // whatever kube-proxy's clean-up left, in IPv4 and IPv6.
    for family in ["iptables", "ip6tables"] {
        if let Err(e) = remove_kube_chains(family) {
            failures.push(format!("removing the KUBE- chains of {family}: {e}"));
        }
    }
    for mount in mounts_under(node_dir).into_iter().rev() {
        if let Err(e) = run("umount", &["-l", &mount]) {
            failures.push(format!("unmounting {mount}: {e}"));
        }
    }
    for dir in kubepods_cgroups() {
        remove_cgroup_tree(&dir, &mut failures);
    }
    if bridge_exists()
        && let Err(e) = run("ip", &["link", "delete", BRIDGE])
    {
        failures.push(format!("deleting bridge {BRIDGE}: {e}"));
    }
    failures
}

/// What a node left behind on this machine: processes, mounts, cgroups, the bridge, iptables
/// chains. Empty after a clean teardown.
pub fn leftovers(node_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for pid in processes_mentioning(&node_dir.display().to_string()) {
        found.push(format!("process {pid}"));
    }
    for mount in mounts_under(node_dir) {
        found.push(format!("mount {mount}"));
    }
    for dir in kubepods_cgroups() {
        found.push(format!("cgroup {}", dir.display()));
    }
    if bridge_exists() {
        found.push(format!("bridge {BRIDGE}"));
    }
    for family in ["iptables", "ip6tables"] {
        if let Ok(rules) = run(&format!("{family}-save"), &[]) {
            let chains = rules.lines().filter(|l| l.starts_with(":KUBE-")).count();
            if chains > 0 {
                found.push(format!("{chains} KUBE- chains in {family}"));
            }
        }
    }
    found
}

/// Removes every `KUBE-` chain and every rule that mentions one: the tables are saved, those
/// lines left out, and the rest restored as it was.
fn remove_kube_chains(family: &str) -> Result<()> {
    use std::io::Write;
    let saved = run(&format!("{family}-save"), &[])?;
    if !saved.contains("KUBE-") {
        return Ok(());
    }
    let kept: String = saved.lines().filter(|l| !l.contains("KUBE-")).map(|l| format!("{l}\n")).collect();
    let restore = format!("{family}-restore");
    let mut child = Command::new(which(&restore).unwrap_or_else(|| restore.clone().into()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(Error::io(format!("running {restore}")))?;
    child
        .stdin
        .take()
        .ok_or_else(|| Error::Invalid(format!("{restore} has no stdin")))?
        .write_all(kept.as_bytes())
        .map_err(Error::io(format!("writing to {restore}")))?;
    let out = child.wait_with_output().map_err(Error::io(format!("running {restore}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Invalid(format!("{restore}: {}", String::from_utf8_lossy(&out.stderr).trim())))
    }
}

/// PIDs (not ours) whose command line mentions `text`.
fn processes_mentioning(text: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmd| String::from_utf8_lossy(&cmd).replace('\0', " ").contains(text))
        })
        .collect()
}

/// Mount points under `dir`, outermost first.
fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<String> = text
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4).map(str::to_owned))
        .filter(|point| point.starts_with(&prefix))
        .collect();
    mounts.sort();
    mounts.dedup();
    mounts
}

/// The kubelet's `kubepods` cgroup directories, in every hierarchy.
fn kubepods_cgroups() -> Vec<PathBuf> {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else { return Vec::new() };
    hierarchies
        .filter_map(|h| h.ok())
        .map(|h| h.path().join("kubepods"))
        .chain(std::iter::once(PathBuf::from("/sys/fs/cgroup/kubepods")))
        .filter(|p| p.is_dir())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Removes a cgroup directory and those below it, deepest first (cgroup directories are
/// removed with rmdir, their files go with them).
fn remove_cgroup_tree(dir: &Path, failures: &mut Vec<String>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()) {
            remove_cgroup_tree(&entry.path(), failures);
        }
    }
    if let Err(e) = std::fs::remove_dir(dir) {
        failures.push(format!("removing cgroup {}: {e}", dir.display()));
    }
}
