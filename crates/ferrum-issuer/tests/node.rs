//! The Helm chart installed and running as pods on a real node (issue 14): containerd and runc,
//! the kubelet, kube-proxy, kube-scheduler and kube-controller-manager next to the test control
//! plane; Ferrum's image built here with buildah from the release binary; cert-manager's
//! controllers as their own ServiceAccount, bound only to the RBAC cert-manager's own chart
//! renders.
//!
//! Needs root, the node's packages (`scripts/node-prereqs.sh`), `tools/controlplane/build.sh
//! --node` and `cargo build --release -p ferrum-issuer`; `scripts/test-node.sh` does all of it
//! and runs this file, one test at a time (one node runs per machine: the chart's whole walk is
//! one test, the teardown check another). Both are `#[ignore]`d in plain `cargo test`
//! (reported as ignored, never as passed).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ferrum_testenv::fixtures::{CaOptions, apply_objects, csr_pem, eventually, make_ca, openssl, parse_documents};
use ferrum_testenv::{ControlPlane, ControlPlaneOptions, Tool, node};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

const RELEASE_NAMESPACE: &str = "ferrum-system";
const IMAGE: &str = "ghcr.io/ferrum-dev/ferrum-issuer";
const DEMO: &str = "node-demo";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The release binary the image is built from.
fn release_binary() -> PathBuf {
    let binary = repo_root().join("target/release/ferrum-issuer");
    assert!(
        binary.is_file(),
        "{} is missing: build it with `cargo build --release -p ferrum-issuer` (scripts/test-node.sh does)",
        binary.display()
    );
    binary
}

/// Runs `helm` (from the control plane's binaries) against the node's cluster.
fn helm(cp: &ControlPlane, args: &[&str]) -> (bool, String) {
    let program = cp.binaries().path(Tool::Helm).expect("helm");
    let out = Command::new(program).env("KUBECONFIG", cp.kubeconfig_path()).args(args).output().expect("run helm");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn dynamic(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// cert-manager's own chart, from the module the runner is built from.
fn cert_manager_chart() -> PathBuf {
    let module = repo_root().join("tools/controlplane/modules/cm-runner");
    let out = Command::new("go")
        .args(["mod", "download", "-json", "github.com/cert-manager/cert-manager"])
        .current_dir(&module)
        .env("GOFLAGS", "-mod=readonly")
        .output()
        .expect("go mod download (Go is needed to find cert-manager's chart)");
    let info: Value = serde_json::from_slice(&out.stdout).expect("go mod download -json");
    PathBuf::from(info["Dir"].as_str().expect("module dir")).join("deploy/charts/cert-manager")
}

/// The ServiceAccounts and RBAC of cert-manager's chart (namespace cert-manager), rendered with
/// helm: what cert-manager's controller runs as in a real cluster.
fn cert_manager_rbac(cp: &ControlPlane) -> Vec<Value> {
    let chart = cert_manager_chart();
    let (ok, text) = helm(cp, &["template", "cert-manager", &chart.display().to_string(), "-n", "cert-manager"]);
    assert!(ok, "helm template cert-manager: {text}");
    let rendered = text.find("---").map_or(text.as_str(), |start| &text[start..]);
    parse_documents(rendered)
        .into_iter()
        .filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some("ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding")
            )
        })
        .collect()
}

/// A Certificate `name` in the demo namespace from FerrumIssuer `ca`.
async fn certificate(client: &kube::Client, name: &str) {
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": name},
        "spec": {
            "secretName": format!("{name}-tls"), "dnsNames": [format!("{name}.{DEMO}.example")],
            "privateKey": {"algorithm": "ECDSA"},
            "issuerRef": {"group": "ferrum.dev", "kind": "FerrumIssuer", "name": "ca"},
        },
    }))
    .expect("certificate");
    dynamic(client, "cert-manager.io", "v1", "Certificate", Some(DEMO))
        .create(&PostParams::default(), &object)
        .await
        .expect("create Certificate");
}

fn condition(object: &DynamicObject, type_: &str) -> Option<(String, String)> {
    let conditions = object.data.pointer("/status/conditions")?.as_array()?;
    let c = conditions.iter().find(|c| c["type"] == type_)?;
    Some((c["status"].as_str()?.to_owned(), c["reason"].as_str().unwrap_or_default().to_owned()))
}

/// A CertificateRequest `name` in the demo namespace, approved by whoever approves.
async fn request(client: &kube::Client, name: &str) {
    let csr = csr_pem(&format!("{name}.{DEMO}.example"));
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest", "metadata": {"name": name},
        "spec": {
            "request": base64(&csr),
            "issuerRef": {"group": "ferrum.dev", "kind": "FerrumIssuer", "name": "ca"},
        },
    }))
    .expect("request");
    dynamic(client, "cert-manager.io", "v1", "CertificateRequest", Some(DEMO))
        .create(&PostParams::default(), &object)
        .await
        .expect("create CertificateRequest");
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Waits until request `name` is Ready=True (Issued), and returns how long that took.
async fn issued(client: &kube::Client, name: &str, timeout: Duration) -> Duration {
    let started = Instant::now();
    let api = dynamic(client, "cert-manager.io", "v1", "CertificateRequest", Some(DEMO));
    eventually(&format!("request {name} issued"), timeout, || async {
        let object = api.get(name).await.ok()?;
        (condition(&object, "Ready")? == ("True".to_owned(), "Issued".to_owned())).then_some(())
    })
    .await;
    started.elapsed()
}

/// The Ferrum pods, with their readiness.
async fn ferrum_pods(client: &kube::Client) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    let list = pods.list(&ListParams::default().labels("app.kubernetes.io/name=ferrum-issuer")).await.expect("pods");
    list.items
}

fn ready(pod: &Pod) -> bool {
    let deleting = pod.metadata.deletion_timestamp.is_some();
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    !deleting && conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Two Ready replicas, with none restarted; returns them.
async fn two_ready(client: &kube::Client, timeout: Duration) -> Vec<Pod> {
    eventually("two Ready Ferrum pods", timeout, || async {
        let pods: Vec<Pod> = ferrum_pods(client).await.into_iter().filter(ready).collect();
        (pods.len() == 2).then_some(pods)
    })
    .await
}

/// Evicts a Ferrum pod with a `policy/v1` Eviction, through kubectl (kube's client retries a
/// 429 until it passes, which would hide the refusal). `Err`: the refusal.
fn evict(cp: &ControlPlane, name: &str) -> Result<(), String> {
    use std::io::Write;
    let body = json!({
        "apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": name, "namespace": RELEASE_NAMESPACE},
    });
    let mut child = Command::new(cp.binaries().path(Tool::Kubectl).expect("kubectl"))
        .env("KUBECONFIG", cp.kubeconfig_path())
        .args(["create", "--raw", &format!("/api/v1/namespaces/{RELEASE_NAMESPACE}/pods/{name}/eviction"), "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl");
    child.stdin.take().expect("stdin").write_all(body.to_string().as_bytes()).expect("write");
    let out = child.wait_with_output().expect("kubectl");
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

/// `GET path` on `ip:port` over plain HTTP (the node reaches its pods on the bridge).
async fn http_status(ip: &str, port: u16, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect((ip, port)).await else { return 0 };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return 0;
    }
    let mut response = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_string(&mut response)).await;
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The whole walk on one node: install, issue, approval through the chart's RBAC (and refused
/// without it), leader failover, the PodDisruptionBudget, an upgrade under load, uninstall, and
/// a teardown that leaves nothing.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and a node: run scripts/test-node.sh"]
async fn the_chart_runs_as_pods_on_a_real_node() {
    let binary = release_binary();
    let started = Instant::now();
    let cp = ControlPlane::start(ControlPlaneOptions { node: true, crd_files: Vec::new(), ..Default::default() })
        .await
        .unwrap_or_else(|e| panic!("control plane with a node: {e}"));
    let node_dir = node::node_dir(cp.dir());
    println!("control plane and node up in {:.1} s ({:?})", started.elapsed().as_secs_f64(), cp.timings());
    let client = cp.client().expect("client");

    // The image, built here from the release binary, under the name and tag the chart uses.
    let archive =
        node::build_image(&node_dir.join("images"), &binary, "/ferrum-issuer", &format!("{IMAGE}:0.1.0"), &[], 65532)
            .expect("build the image");
    node::import_image(&node_dir, &archive).expect("import the image");

    // cert-manager as it runs in a cluster: its own ServiceAccount, its chart's RBAC only.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in ["cert-manager", RELEASE_NAMESPACE, DEMO] {
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.into());
        if name == RELEASE_NAMESPACE {
            // Ferrum's namespace enforces the restricted Pod Security profile.
            ns.metadata.labels = Some(
                [("pod-security.kubernetes.io/enforce".to_owned(), "restricted".to_owned())].into_iter().collect(),
            );
        }
        namespaces.create(&PostParams::default(), &ns).await.expect("namespace");
    }
    apply_objects(&client, "node-e2e", &cert_manager_rbac(&cp)).await;
    // The approval rule cert-manager's webhook enforces (see `approval_policy`).
    apply_objects(&client, "node-e2e", &ferrum_testenv::approval_policy()).await;
    let access = cp.service_account_kubeconfig("cert-manager", "cert-manager").await.expect("cert-manager's account");
    let mut runner = Command::new(cp.binaries().path(Tool::CmRunner).expect("cm-runner"));
    runner.arg("--kubeconfig").arg(&access.kubeconfig).args([
        "--controllers",
        &ferrum_testenv::CertManagerOptions::all_controllers().join(","),
        "--cluster-resource-namespace",
        "cert-manager",
    ]);
    let cm = cp.spawn_process("cm-runner", runner).expect("cm-runner");
    cm.wait_for_log_line(ferrum_testenv::READY_LINE, Duration::from_secs(60)).await.expect("cm-runner ready");

    // helm install: two replicas Ready under `restricted`, the probes answering.
    let chart = repo_root().join("deploy/chart/ferrum-issuer").display().to_string();
    let install = Instant::now();
    let (ok, text) = helm(&cp, &["install", "ferrum", &chart, "-n", RELEASE_NAMESPACE, "--wait", "--timeout", "120s"]);
    assert!(ok, "helm install: {text}");
    let pods = two_ready(&client, Duration::from_secs(60)).await;
    println!("helm install: two Ready replicas in {:.1} s", install.elapsed().as_secs_f64());
    for pod in &pods {
        let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).expect("pod IP");
        assert_eq!(http_status(&ip, 8081, "/healthz").await, 200, "liveness of {ip}");
        assert_eq!(http_status(&ip, 8081, "/readyz").await, 200, "readiness of {ip}");
        let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
        assert!(statuses.iter().all(|c| c.restart_count == 0), "no restarts: {statuses:?}");
        let security = pod.spec.as_ref().and_then(|s| s.security_context.clone()).expect("pod security context");
        assert_eq!(security.run_as_non_root, Some(true));
    }

    // A Certificate through a FerrumIssuer, approved by cert-manager's approver through the
    // chart's approver RBAC.
    let ca = make_ca("Node CA", CaOptions::default());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), DEMO);
    let mut secret = Secret { type_: Some("kubernetes.io/tls".into()), ..Default::default() };
    secret.metadata.name = Some("ca".into());
    secret.string_data =
        Some([("tls.crt".to_owned(), ca.cert_pem.clone()), ("tls.key".to_owned(), ca.key_pem.clone())].into());
    secrets.create(&PostParams::default(), &secret).await.expect("CA Secret");
    let issuer: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "ferrum.dev/v1alpha1", "kind": "FerrumIssuer", "metadata": {"name": "ca"},
        "spec": {"ca": {"secretName": "ca"}},
    }))
    .expect("issuer");
    dynamic(&client, "ferrum.dev", "v1alpha1", "FerrumIssuer", Some(DEMO))
        .create(&PostParams::default(), &issuer)
        .await
        .expect("create FerrumIssuer");
    certificate(&client, "web").await;
    let certificates = dynamic(&client, "cert-manager.io", "v1", "Certificate", Some(DEMO));
    eventually("Certificate web Ready", Duration::from_secs(60), || async {
        let c = certificates.get("web").await.ok()?;
        (condition(&c, "Ready")?.0 == "True").then_some(())
    })
    .await;
    let tls = secrets.get("web-tls").await.expect("web-tls").data.expect("data");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), &ca.cert_pem).expect("write");
    std::fs::write(dir.path().join("leaf.pem"), &tls["tls.crt"].0).expect("write");
    let (ok, out) = openssl(dir.path(), &["verify", "-CAfile", "ca.pem", "leaf.pem"]);
    assert!(ok && out.contains("OK"), "openssl verify: {out}");

    // Without the chart's approver RBAC, cert-manager's approver may not approve: the request
    // waits unapproved; with it back, it is approved and issued.
    let bindings = dynamic(&client, "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", None);
    let binding_name = "ferrum-cert-manager-approver";
    let saved = bindings.get(binding_name).await.expect("the chart's approver binding");
    bindings.delete(binding_name, &DeleteParams::default()).await.expect("remove the approver binding");
    request(&client, "unapproved").await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let requests = dynamic(&client, "cert-manager.io", "v1", "CertificateRequest", Some(DEMO));
    let waiting = requests.get("unapproved").await.expect("request");
    assert_eq!(condition(&waiting, "Approved"), None, "not approved without the approver RBAC: {:?}", waiting.data);
    assert!(waiting.data.pointer("/status/certificate").is_none());
    let mut restored = saved.clone();
    restored.metadata.resource_version = None;
    restored.metadata.uid = None;
    restored.metadata.managed_fields = None;
    bindings.create(&PostParams::default(), &restored).await.expect("restore the approver binding");
    // The approver looks again on a change of the request.
    let poke = json!({"metadata": {"annotations": {"e2e/poke": "1"}}});
    requests.patch("unapproved", &PatchParams::default(), &Patch::Merge(poke)).await.expect("poke");
    issued(&client, "unapproved", Duration::from_secs(60)).await;

    // The leader pod deleted: the other replica takes over and issues a new request in 20 s.
    let leases: Api<Lease> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    let holder = leases.get("ferrum").await.expect("lease").spec.and_then(|s| s.holder_identity).expect("holder");
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    let deleted = Instant::now();
    pods_api.delete(&holder, &DeleteParams::default()).await.expect("delete the leader pod");
    request(&client, "after-failover").await;
    let took = issued(&client, "after-failover", Duration::from_secs(20)).await;
    println!("leader pod {holder} deleted: a new request issued {:.1} s later", deleted.elapsed().as_secs_f64());
    assert!(took <= Duration::from_secs(20));
    let pods = two_ready(&client, Duration::from_secs(60)).await;

    // The PodDisruptionBudget: evicting one replica is allowed, the second at once is not. (Once
    // the budget has counted the two replicas there are now, not the one just replaced.)
    let budgets: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    eventually("the budget counting two healthy replicas", Duration::from_secs(30), || async {
        let status = budgets.get("ferrum").await.ok()?.status?;
        (status.current_healthy == 2 && status.disruptions_allowed == 1).then_some(())
    })
    .await;
    let first = pods[0].metadata.name.clone().expect("name");
    let second = pods[1].metadata.name.clone().expect("name");
    assert_eq!(evict(&cp, &first), Ok(()), "the first eviction is allowed");
    let refused = evict(&cp, &second).expect_err("evicting the second replica at once must be refused");
    assert!(refused.contains("disruption budget"), "{refused}");
    two_ready(&client, Duration::from_secs(60)).await;

    // helm upgrade to a new image tag with requests arriving: none fails, none written twice.
    let archive =
        node::build_image(&node_dir.join("images"), &binary, "/ferrum-issuer", &format!("{IMAGE}:0.1.1"), &[], 65532)
            .expect("build the new tag");
    node::import_image(&node_dir, &archive).expect("import the new tag");
    let load = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut names = Vec::new();
            for i in 0..30 {
                let name = format!("during-upgrade-{i}");
                request(&client, &name).await;
                names.push(name);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            names
        })
    };
    let (ok, text) = helm(
        &cp,
        &[
            "upgrade",
            "ferrum",
            &chart,
            "-n",
            RELEASE_NAMESPACE,
            "--set",
            "image.tag=0.1.1",
            "--wait",
            "--timeout",
            "120s",
        ],
    );
    assert!(ok, "helm upgrade: {text}");
    let names = load.await.expect("load");
    for name in &names {
        issued(&client, name, Duration::from_secs(60)).await;
    }
    // Events are published after the status write: wait for each request's, then count.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), DEMO);
    let issued_events = |all: &[k8s_openapi::api::events::v1::Event], name: &str| {
        all.iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .filter(|e| e.reason.as_deref() == Some("Issued"))
            .count()
    };
    let all = eventually("an Issued event for every request", Duration::from_secs(30), || async {
        let all = events.list(&ListParams::default()).await.ok()?.items;
        names.iter().all(|name| issued_events(&all, name) > 0).then_some(all)
    })
    .await;
    for name in &names {
        assert_eq!(issued_events(&all, name), 1, "{name} written once");
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    let deployment = deployments.get("ferrum").await.expect("deployment");
    let image = deployment.spec.and_then(|s| s.template.spec).and_then(|s| s.containers[0].image.clone());
    assert_eq!(image.as_deref(), Some(format!("{IMAGE}:0.1.1").as_str()));
    println!("helm upgrade under load: {} requests issued, each written once", names.len());

    // helm uninstall keeps the CRDs (the chart's `keep`) and the issuers, removes the rest.
    let (ok, text) = helm(&cp, &["uninstall", "ferrum", "-n", RELEASE_NAMESPACE, "--wait"]);
    assert!(ok, "helm uninstall: {text}");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ["ferrumissuers.ferrum.dev", "ferrumclusterissuers.ferrum.dev", "certificaterevocations.ferrum.dev"] {
        assert!(crds.get_opt(crd).await.expect("crd").is_some(), "{crd} kept");
    }
    let issuers = dynamic(&client, "ferrum.dev", "v1alpha1", "FerrumIssuer", Some(DEMO));
    assert!(issuers.get_opt("ca").await.expect("issuer").is_some(), "the issuer kept");
    assert!(deployments.get_opt("ferrum").await.expect("deployment").is_none(), "the Deployment removed");
    let roles = dynamic(&client, "rbac.authorization.k8s.io", "v1", "ClusterRole", None);
    assert!(roles.get_opt("ferrum").await.expect("role").is_none(), "the ClusterRole removed");
    eventually("the pods gone", Duration::from_secs(60), || async {
        ferrum_pods(&client).await.is_empty().then_some(())
    })
    .await;

    // Teardown leaves nothing behind.
    drop(cm);
    drop(cp);
    let left = node::leftovers(&node_dir);
    assert!(left.is_empty(), "the node left: {left:?}");
}

/// A node torn down leaves nothing on the machine: a pod runs (its sandbox, network namespace,
/// veth, cgroups, iptables rules of a Service), then the control plane is dropped and
/// `node::leftovers` finds no process, mount, cgroup, bridge or `KUBE-` chain.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and a node: run scripts/test-node.sh"]
async fn a_torn_down_node_leaves_nothing() {
    let cp = ControlPlane::start(ControlPlaneOptions { node: true, crd_files: Vec::new(), ..Default::default() })
        .await
        .unwrap_or_else(|e| panic!("control plane with a node: {e}"));
    let node_dir = node::node_dir(cp.dir());
    let client = cp.client().expect("client");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper", "labels": {"app": "sleeper"}},
        "spec": {"containers": [{"name": "pause", "image": node::PAUSE_IMAGE, "imagePullPolicy": "Never"}]},
    }))
    .expect("pod");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // The namespace's `default` ServiceAccount comes from the controller-manager, a moment after
    // start; the ServiceAccount admission refuses pods until then.
    eventually("the pod admitted", Duration::from_secs(30), || async {
        pods.create(&PostParams::default(), &pod).await.ok().map(|_| ())
    })
    .await;
    let service: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "sleeper"},
        "spec": {"selector": {"app": "sleeper"}, "ports": [{"port": 80}]},
    }))
    .expect("service");
    Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &service)
        .await
        .expect("create service");
    eventually("the pod Running", Duration::from_secs(60), || async {
        let pod = pods.get("sleeper").await.ok()?;
        (pod.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    assert!(!node::leftovers(&node_dir).is_empty(), "a running node shows up in the leftovers check");
    drop(cp);
    let left = node::leftovers(&node_dir);
    assert!(left.is_empty(), "the node left: {left:?}");
}
