//! What the end-to-end tests share: a namespace per test on the shared control plane, Ferrum
//! run as the Helm chart's ServiceAccount bound to the chart's rendered RBAC only, cert-manager's controllers
//! scoped to the test's namespace, CA Secrets and CSRs, and polling.

use std::process::Command;
use std::time::Duration;

use ferrum::ca::{CaIssuerSpec, FerrumIssuerSpec, kinds};
use ferrum::{CertificateRequest, CertificateRequestSpec, Issuer, IssuerReference, IssuerScope};
use ferrum_testenv::{Binaries, CertManagerOptions, ProcessHandle, READY_LINE, TestEnv, Tool};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

pub use ferrum_testenv::fixtures::*;

/// The cluster resource namespace every Ferrum of this test binary uses.
pub const CLUSTER_RESOURCE_NAMESPACE: &str = "ferrum-e2e-crns";

/// One test's world.
pub struct Harness {
    pub env: TestEnv,
    pub client: Client,
    pub ns: String,
    /// Extra chart values (`key=value`) Ferrum's RBAC is rendered with.
    pub chart_values: Vec<String>,
    processes: Vec<ProcessHandle>,
}

impl Harness {
    /// A fresh namespace on the shared control plane.
    pub async fn new(prefix: &str) -> Self {
        let env = ferrum_testenv::shared().await.unwrap_or_else(|e| panic!("control plane: {e}"));
        Self::on(env, prefix).await
    }

    /// A fresh namespace on the control plane of `env` (one the test owns, see
    /// `TestEnv::on`).
    pub async fn on(env: TestEnv, prefix: &str) -> Self {
        let client = env.client().expect("admin client");
        let ns = env.fresh_namespace(prefix).await.expect("namespace");
        env.cluster().ensure_namespace(CLUSTER_RESOURCE_NAMESPACE).await.expect("cluster resource namespace");
        Self { env, client, ns, chart_values: Vec::new(), processes: Vec::new() }
    }

    /// Starts Ferrum for this namespace as ServiceAccount `ferrum`, bound only to Ferrum's
    /// RBAC, with extra flags. Probes and metrics listen on free ports, the Lease lives in
    /// this namespace.
    pub async fn start_ferrum(&mut self, extra: &[&str]) -> &ProcessHandle {
        let name = format!("ferrum-{}", self.ns);
        self.start_ferrum_replica(&name, extra).await
    }

    /// Starts one Ferrum replica whose identity (`POD_NAME`) is `name`, with the chart's RBAC.
    pub async fn start_ferrum_replica(&mut self, name: &str, extra: &[&str]) -> &ProcessHandle {
        self.start_ferrum_with_rbac(name, extra, |_| {}).await
    }

    /// The chart's fullname for this test's release (also the Lease's name).
    pub fn fullname(&self) -> String {
        format!("ferrum-{}", self.ns)
    }

    /// Starts one Ferrum replica as the chart's ServiceAccount, bound only to the chart's RBAC
    /// after `edit` changed it. Probes and metrics listen on free ports.
    pub async fn start_ferrum_with_rbac(
        &mut self,
        name: &str,
        extra: &[&str],
        edit: impl FnOnce(&mut Vec<serde_json::Value>),
    ) -> &ProcessHandle {
        let (ns, fullname) = (self.ns.clone(), self.fullname());
        let mut args = vec!["--namespace", &ns, "--cluster-resource-namespace", CLUSTER_RESOURCE_NAMESPACE];
        args.extend(["--leader-election-namespace", &ns, "--leader-election-lease-name", &fullname]);
        args.extend(extra);
        self.start_ferrum_bare(name, &args, &[], edit).await
    }

    /// [`Harness::start_ferrum`] with environment variables (e.g. `SOFTHSM2_CONF`).
    pub async fn start_ferrum_env(&mut self, extra: &[&str], env: &[(&str, &str)]) -> &ProcessHandle {
        let (ns, fullname) = (self.ns.clone(), self.fullname());
        let mut args = vec!["--namespace", &ns, "--cluster-resource-namespace", CLUSTER_RESOURCE_NAMESPACE];
        args.extend(["--leader-election-namespace", &ns, "--leader-election-lease-name", &fullname]);
        args.extend(extra);
        self.start_ferrum_bare(&fullname, &args, env, |_| {}).await
    }

    /// Starts cert-manager's controllers for this namespace only, with or without its approver.
    pub async fn start_cert_manager(&mut self, approver: bool) {
        let options = if approver { CertManagerOptions::default() } else { CertManagerOptions::without_approver() };
        let controllers: Vec<String> =
            options.controllers.into_iter().filter(|c| c != "clusterissuers").collect::<Vec<_>>();
        let mut cmd =
            Command::new(Binaries::locate().and_then(|b| b.path(Tool::CmRunner)).unwrap_or_else(|e| panic!("{e}")));
        cmd.arg("--kubeconfig").arg(self.env.kubeconfig_path()).args(["--controllers", &controllers.join(",")]).args([
            "--namespace",
            &self.ns,
            "--cluster-resource-namespace",
            &self.ns,
        ]);
        let handle = self.env.spawn_process(&format!("cm-runner-{}", self.ns), cmd).expect("start cm-runner");
        handle.wait_for_log_line(READY_LINE, Duration::from_secs(60)).await.expect("cm-runner ready");
        self.processes.push(handle);
    }

    /// Typed API of this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// API of Ferrum's issuers of a scope (namespaced ones in this namespace).
    pub fn issuers(&self, scope: IssuerScope) -> Api<Issuer<FerrumIssuerSpec>> {
        let ar = kinds().api_resource(scope);
        match scope {
            IssuerScope::Namespaced => Api::namespaced_with(self.client.clone(), &self.ns, &ar),
            IssuerScope::Cluster => Api::all_with(self.client.clone(), &ar),
        }
    }

    /// Creates a Ferrum issuer of `scope` using the CA Secret `secret`.
    pub async fn create_issuer(&self, scope: IssuerScope, name: &str, secret: &str) {
        let spec = FerrumIssuerSpec {
            ca: Some(CaIssuerSpec { secret_name: secret.into(), ..Default::default() }),
            ..Default::default()
        };
        let issuer = Issuer::new(name, &kinds().api_resource(scope), spec);
        self.issuers(scope).create(&PostParams::default(), &issuer).await.expect("create issuer");
    }

    /// Creates a Ferrum issuer of `scope` whose spec is `spec` (JSON, as a user writes it).
    pub async fn create_issuer_spec(&self, scope: IssuerScope, name: &str, spec: serde_json::Value) {
        let spec: FerrumIssuerSpec = serde_json::from_value(spec).expect("issuer spec");
        let issuer = Issuer::new(name, &kinds().api_resource(scope), spec);
        self.issuers(scope).create(&PostParams::default(), &issuer).await.expect("create issuer");
    }

    /// Lets an issuer sign sub-CA requests (`spec.policy.allowCA`, off by default).
    pub async fn allow_ca(&self, scope: IssuerScope, name: &str) {
        let patch = json!({"spec": {"policy": {"allowCA": true}}});
        self.issuers(scope).patch(name, &PatchParams::default(), &Patch::Merge(patch)).await.expect("allow CA");
    }

    /// Waits until the issuer's Ready condition has `status` and returns its (reason, message).
    pub async fn issuer_ready(&self, scope: IssuerScope, name: &str, status: &str) -> (String, String) {
        let api = self.issuers(scope);
        eventually(&format!("issuer {name} Ready={status}"), Duration::from_secs(30), || async {
            let issuer = api.get(name).await.ok()?;
            let c = issuer.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
            (c.status == status).then(|| (c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
        })
        .await
    }

    /// Creates a CertificateRequest for `csr_pem` naming `issuer_ref`.
    pub async fn create_request(&self, name: &str, csr_pem: &[u8], issuer_ref: IssuerReference) -> CertificateRequest {
        let spec = CertificateRequestSpec { request: csr_pem.to_vec(), issuer_ref, ..Default::default() };
        self.create_request_spec(name, spec).await
    }

    /// Creates a CertificateRequest with a full spec.
    pub async fn create_request_spec(&self, name: &str, spec: CertificateRequestSpec) -> CertificateRequest {
        let cr = CertificateRequest::new(name, spec);
        self.api::<CertificateRequest>().create(&PostParams::default(), &cr).await.expect("create request")
    }

    /// Sets Approved=True (or Denied=True) on a request, as an approver would.
    pub async fn decide(&self, name: &str, approve: bool) {
        let type_ = if approve { "Approved" } else { "Denied" };
        let body = json!({
            "apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest",
            "status": { "conditions": [{
                "type": type_, "status": "True", "reason": "e2e", "message": "decided by the test",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }]}
        });
        self.api::<CertificateRequest>()
            .patch_status(name, &PatchParams::apply("e2e-approver").force(), &Patch::Apply(body))
            .await
            .expect("approve/deny");
    }

    /// Waits until the request's Ready condition has `reason`, and returns the request.
    pub async fn request_reason(&self, name: &str, reason: &str, timeout: Duration) -> CertificateRequest {
        let api = self.api::<CertificateRequest>();
        eventually(&format!("request {name} Ready reason {reason}"), timeout, || async {
            let cr = api.get(name).await.ok()?;
            (cr.condition("Ready")?.reason.as_deref() == Some(reason)).then_some(cr)
        })
        .await
    }

    /// Creates a `kubernetes.io/tls` Secret.
    pub async fn create_secret(&self, namespace: &str, name: &str, data: &[(&str, &[u8])]) {
        self.create_typed_secret(namespace, name, "kubernetes.io/tls", data).await;
    }

    /// Creates an `Opaque` Secret (a PIN, a certificate without its key).
    pub async fn create_opaque_secret(&self, namespace: &str, name: &str, data: &[(&str, &[u8])]) {
        self.create_typed_secret(namespace, name, "Opaque", data).await;
    }

    async fn create_typed_secret(&self, namespace: &str, name: &str, type_: &str, data: &[(&str, &[u8])]) {
        let mut secret = Secret { type_: Some(type_.into()), ..Default::default() };
        secret.metadata.name = Some(name.into());
        secret.data = Some(data.iter().map(|(k, v)| (k.to_string(), ByteString(v.to_vec()))).collect());
        Api::<Secret>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &secret)
            .await
            .expect("create secret");
    }

    /// Replaces a Secret's data.
    pub async fn replace_secret(&self, namespace: &str, name: &str, data: &[(&str, &[u8])]) {
        let data: serde_json::Map<String, serde_json::Value> =
            data.iter().map(|(k, v)| (k.to_string(), json!(base64(v)))).collect();
        let body = json!({ "apiVersion": "v1", "kind": "Secret", "data": data });
        Api::<Secret>::namespaced(self.client.clone(), namespace)
            .patch(name, &PatchParams::apply("e2e").force(), &Patch::Apply(body))
            .await
            .expect("replace secret");
    }

    /// A dynamic API for a cert-manager kind in this namespace.
    pub fn cert_manager(&self, kind: &str) -> Api<DynamicObject> {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("cert-manager.io", "v1", kind));
        Api::namespaced_with(self.client.clone(), &self.ns, &ar)
    }

    /// The replica named `name`.
    pub fn process(&self, name: &str) -> &ProcessHandle {
        self.processes.iter().find(|p| p.name() == name).expect("no such process")
    }

    /// Ferrum's log so far (all of this test's Ferrum processes).
    pub fn ferrum_log(&self) -> String {
        self.processes
            .iter()
            .filter(|p| p.name().starts_with("ferrum"))
            .map(|p| std::fs::read_to_string(p.log_path()).unwrap_or_default())
            .collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for p in &self.processes {
                eprintln!("===== {} (last 60 lines) =====\n{}", p.name(), p.log_tail(60));
            }
        }
        for p in self.processes.iter().rev() {
            p.stop();
        }
    }
}

/// Applies the chart's ServiceAccount and RBAC objects (nothing else: there is no kubelet to
/// run its Deployment), rendered with the chart values `values`, after letting `edit` change
/// them.
pub async fn install_rbac(
    client: &Client,
    namespace: &str,
    fullname: &str,
    values: &[&str],
    edit: impl FnOnce(&mut Vec<serde_json::Value>),
) {
    // Ledgers and CRLs live in the cluster resource namespace every Ferrum of this binary uses.
    let crns = format!("config.clusterResourceNamespace={CLUSTER_RESOURCE_NAMESPACE}");
    let mut sets = vec![crns.as_str()];
    sets.extend(values);
    let mut objects: Vec<serde_json::Value> = render_chart(namespace, fullname, &sets)
        .into_iter()
        .filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some("ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding")
            )
        })
        .collect();
    edit(&mut objects);
    apply_objects(client, "e2e", &objects).await;
}

/// The message of a request's Ready condition.
pub fn ready_message(cr: &CertificateRequest) -> String {
    cr.condition("Ready").and_then(|c| c.message.clone()).unwrap_or_default()
}

/// `issuerRef` for one of Ferrum's kinds.
pub fn ferrum_ref(scope: IssuerScope, name: &str) -> IssuerReference {
    IssuerReference { name: name.into(), kind: Some(kinds().kind(scope).to_owned()), group: Some("ferrum.dev".into()) }
}

/// (health address, metrics address) from the last "serving probes and metrics" line of a log.
pub fn addresses(log: &str) -> Option<(String, String)> {
    let line = log.lines().rev().find(|l| l.contains("serving probes and metrics"))?;
    let value =
        |key: &str| line.split(&format!("{key}=")).nth(1).map(|v| v.split_whitespace().next().unwrap_or("").to_owned());
    Some((value("health")?, value("metrics")?))
}

/// The CRL server's address from the "serving CRLs" line of a log.
pub fn crl_address(log: &str) -> Option<String> {
    let line = log.lines().rev().find(|l| l.contains("serving CRLs"))?;
    line.split("crl=").nth(1).map(|v| v.split_whitespace().next().unwrap_or("").to_owned())
}

/// `GET path` on `addr`: (status, headers, body bytes); (0, "", []) if it does not answer.
pub async fn http_get_bytes(addr: &str, path: &str) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return (0, String::new(), Vec::new());
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new(), Vec::new());
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = response.get(split + 4..).unwrap_or_default().to_vec();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head, body)
}

/// `GET path` on `addr`: (status, whole response); (0, "") if it does not answer.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return (0, String::new());
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response)
}

/// The value of a series in a `/metrics` text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

/// A harness with Ferrum running (with `ferrum_flags`) and a Ready FerrumIssuer `ca` on a fresh
/// CA Secret `ca`.
pub async fn ready_world(prefix: &str, ferrum_flags: &[&str]) -> (Harness, TestCa) {
    let mut h = Harness::new(prefix).await;
    h.start_ferrum(ferrum_flags).await;
    let ca = make_ca("Requests CA", CaOptions::default());
    h.create_secret(&h.ns, "ca", &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    h.create_issuer(IssuerScope::Namespaced, "ca", "ca").await;
    h.issuer_ready(IssuerScope::Namespaced, "ca", "True").await;
    (h, ca)
}

impl Harness {
    /// Starts `ferrum-issuer` as the chart's ServiceAccount (its RBAC changed by `edit`) with
    /// `--kubeconfig`, free probe and metrics ports, debug logs, `args` and nothing else (no
    /// `--namespace`, `--cluster-resource-namespace` or Lease namespace: for the flags' defaults),
    /// `POD_NAME` = `name` and `env`.
    pub async fn start_ferrum_bare(
        &mut self,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        edit: impl FnOnce(&mut Vec<serde_json::Value>),
    ) -> &ProcessHandle {
        let fullname = self.fullname();
        let values: Vec<&str> = self.chart_values.iter().map(String::as_str).collect();
        install_rbac(&self.client, &self.ns, &fullname, &values, edit).await;
        let access = self.env.service_account_kubeconfig(&self.ns, &fullname).await.expect("service account");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrum-issuer"));
        cmd.arg("--kubeconfig")
            .arg(&access.kubeconfig)
            .args(["--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0"])
            .args(["--crl-bind-address", "127.0.0.1:0"])
            .args(["--log-level", "info,ferrum=debug"])
            .args(args)
            .env_remove("POD_NAMESPACE")
            .env("POD_NAME", name)
            .envs(env.iter().copied());
        let handle = self.env.spawn_process(name, cmd).expect("start ferrum-issuer");
        self.processes.push(handle);
        self.processes.last().expect("just pushed")
    }

    /// The events (events.k8s.io/v1) in this namespace about the object named `name`.
    pub async fn events_about(&self, name: &str) -> Vec<Event> {
        let list = self.api::<Event>().list(&Default::default()).await.expect("list events");
        list.items.into_iter().filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)).collect()
    }

    /// Waits for the first event about `name`, then one more second for any other (events are
    /// published after the status write), and returns them all.
    pub async fn settled_events_about(&self, name: &str) -> Vec<Event> {
        eventually(&format!("an event about {name}"), Duration::from_secs(20), || async {
            (!self.events_about(name).await.is_empty()).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.events_about(name).await
    }

    /// Records every version of one request from `resource_version` on (a watch).
    pub fn record_versions(&self, name: &str, resource_version: &str) -> Versions {
        use futures::StreamExt as _;
        use kube::api::{WatchEvent, WatchParams};
        let seen = Versions::default();
        let api = self.api::<CertificateRequest>();
        let (sink, name, rv) = (seen.clone(), name.to_owned(), resource_version.to_owned());
        tokio::spawn(async move {
            let params = WatchParams::default().fields(&format!("metadata.name={name}")).timeout(290);
            let mut stream = api.watch(&params, &rv).await.expect("watch").boxed();
            while let Some(Ok(event)) = stream.next().await {
                if let WatchEvent::Modified(cr) = event {
                    sink.lock().unwrap().push(cr);
                }
            }
        });
        seen
    }
}

/// Versions of a request seen by [`Harness::record_versions`].
pub type Versions = std::sync::Arc<std::sync::Mutex<Vec<CertificateRequest>>>;

/// An event (events.k8s.io/v1, which Ferrum publishes).
pub type Event = k8s_openapi::api::events::v1::Event;

/// Asserts that `events` is exactly one event of `type_` (`Normal`/`Warning`) and `reason`,
/// whose note is `note`, about a CertificateRequest.
pub fn assert_one_event(events: &[Event], type_: &str, reason: &str, note: &str) {
    assert_eq!(events.len(), 1, "exactly one event: {events:#?}");
    let event = &events[0];
    assert_eq!(
        (event.type_.as_deref(), event.reason.as_deref(), event.note.as_deref()),
        (Some(type_), Some(reason), Some(note)),
        "{event:#?}"
    );
    assert_eq!(event.regarding.as_ref().and_then(|r| r.kind.as_deref()), Some("CertificateRequest"), "{event:#?}");
}

/// The DER of every certificate in a PEM text, in order.
pub fn pem_certs(pem: &[u8]) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem).map(|p| p.expect("PEM").contents).collect()
}

/// An intermediate CA signed by `parent`, valid for `options.days` from now.
pub fn make_intermediate(parent: &TestCa, common_name: &str, options: CaOptions) -> TestCa {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let parent_key = KeyPair::from_pem(&parent.key_pem).expect("parent key");
    let issuer = rcgen::Issuer::from_ca_cert_pem(&parent.cert_pem, parent_key).expect("parent CA");
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::OrganizationName, "Ferrum E2E");
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(options.days);
    let cert = params.signed_by(&key, &issuer).expect("sign the intermediate");
    TestCa { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
}

/// A CA Secret `ca` and a FerrumIssuer `ca` using it, in the harness's namespace.
pub async fn world_with_issuer(h: &Harness) {
    let ca = make_ca("Test CA", CaOptions::default());
    h.create_secret(&h.ns, "ca", &[("tls.crt", ca.cert_pem.as_bytes()), ("tls.key", ca.key_pem.as_bytes())]).await;
    h.create_issuer(IssuerScope::Namespaced, "ca", "ca").await;
}

/// The holder of this test's Lease, if any.
pub async fn lease_holder(h: &Harness) -> Option<String> {
    let lease = h.api::<k8s_openapi::api::coordination::v1::Lease>().get(&h.fullname()).await.ok()?;
    lease.spec?.holder_identity.filter(|s| !s.is_empty())
}

/// Sends `signal` to a process this test started.
pub fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on a pid this test started; no memory is shared.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

/// `openssl verify` of `leaf_pem` against the root `ca_pem`, with `untrusted_pem` as the
/// intermediates: (verified, output).
pub fn openssl_verify(ca_pem: &[u8], untrusted_pem: &[u8], leaf_pem: &[u8]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca_pem).unwrap();
    std::fs::write(dir.path().join("untrusted.pem"), untrusted_pem).unwrap();
    std::fs::write(dir.path().join("leaf.pem"), leaf_pem).unwrap();
    let mut args = vec!["verify", "-CAfile", "ca.pem"];
    if !untrusted_pem.is_empty() {
        args.extend(["-untrusted", "untrusted.pem"]);
    }
    args.push("leaf.pem");
    openssl(dir.path(), &args)
}
