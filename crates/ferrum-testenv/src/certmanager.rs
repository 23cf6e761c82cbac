//! Starting cert-manager's controllers through our `cm-runner`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::error::Result;
use crate::process::{ProcessHandle, Supervisor};

/// The line `cm-runner` prints on stderr once its informers' caches are synced.
pub const READY_LINE: &str = "cm-runner: ready";

/// The Certificate controllers: from a Certificate to a CertificateRequest and back to a
/// Secret, plus readiness and revision clean-up.
pub const CERTIFICATE_CONTROLLERS: [&str; 6] = [
    "certificates-trigger",
    "certificates-key-manager",
    "certificates-request-manager",
    "certificates-issuing",
    "certificates-readiness",
    "certificates-revision-manager",
];

/// cert-manager's approver, which approves every CertificateRequest (without the webhook
/// nobody checks who may approve). Leave it out to drive approval by hand.
pub const APPROVER: &str = "certificaterequests-approver";

/// The Issuer and ClusterIssuer readiness controllers.
pub const ISSUER_CONTROLLERS: [&str; 2] = ["issuers", "clusterissuers"];

/// cert-manager's built-in SelfSigned and CA request controllers.
pub const BUILTIN_SIGNERS: [&str; 2] = ["certificaterequests-issuer-selfsigned", "certificaterequests-issuer-ca"];

/// How to start `cm-runner`. The default runs every controller listed in this module, with
/// cluster resource namespace `cert-manager`.
#[derive(Clone, Debug)]
pub struct CertManagerOptions {
    /// The controllers to run (`--controllers`).
    pub controllers: Vec<String>,
    /// Where ClusterIssuers read their Secrets (`--cluster-resource-namespace`); created if
    /// needed.
    pub cluster_resource_namespace: String,
    /// Watch only this namespace (`--namespace`; the clusterissuers controller is then not
    /// run). `None`: all namespaces.
    pub namespace: Option<String>,
    /// Extra flags, appended last.
    pub extra_args: Vec<String>,
    /// How long to wait for [`READY_LINE`].
    pub ready_timeout: Duration,
}

impl CertManagerOptions {
    /// Every controller: Certificates, approver, issuers, SelfSigned and CA.
    pub fn all_controllers() -> Vec<String> {
        CERTIFICATE_CONTROLLERS
            .iter()
            .chain(&[APPROVER])
            .chain(&ISSUER_CONTROLLERS)
            .chain(&BUILTIN_SIGNERS)
            .map(|c| c.to_string())
            .collect()
    }

    /// Every controller except the approver: the test approves or denies by hand.
    pub fn without_approver() -> Self {
        let mut options = Self::default();
        options.controllers.retain(|c| c != APPROVER);
        options
    }

    /// Scopes the runner to one namespace (`--namespace`), as tests on a shared cluster should.
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }
}

impl Default for CertManagerOptions {
    fn default() -> Self {
        CertManagerOptions {
            controllers: Self::all_controllers(),
            cluster_resource_namespace: "cert-manager".into(),
            namespace: None,
            extra_args: Vec::new(),
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// Creates the cluster resource namespace, starts `program` (cm-runner) with the cluster's
/// admin kubeconfig and waits for [`READY_LINE`].
pub(crate) async fn start(
    supervisor: &Supervisor,
    cluster: &Cluster,
    program: &Path,
    options: &CertManagerOptions,
) -> Result<ProcessHandle> {
    cluster.ensure_namespace(&options.cluster_resource_namespace).await?;
    let mut cmd = Command::new(program);
    cmd.arg("--kubeconfig")
        .arg(cluster.kubeconfig_path())
        .arg("--controllers")
        .arg(options.controllers.join(","))
        .arg("--cluster-resource-namespace")
        .arg(&options.cluster_resource_namespace);
    if let Some(namespace) = &options.namespace {
        cmd.arg("--namespace").arg(namespace);
    }
    cmd.args(&options.extra_args);
    let process = supervisor.spawn("cm-runner", cmd)?;
    process.wait_for_log_line(READY_LINE, options.ready_timeout).await?;
    Ok(process)
}

/// What cert-manager's webhook enforces on approval, as a ValidatingAdmissionPolicy (the
/// webhook itself cannot be built here: its validation lives in internal packages of the
/// cert-manager module, and its own module `github.com/cert-manager/cert-manager/cmd/webhook`
/// is not served by the Go module proxy). Whoever sets `Approved` or `Denied` on a
/// CertificateRequest must be allowed to `approve` the signer of its issuer — resource
/// `signers` of `cert-manager.io`, name `<kind plural>.<group>/*` or
/// `<kind plural>.<group>/<namespace>.<name>` (`<kind plural>.<group>/<name>` for a kind whose
/// name contains `Cluster`), as cert-manager's webhook checks with a SubjectAccessReview.
/// Returns the policy and its binding, to apply.
pub fn approval_policy() -> Vec<serde_json::Value> {
    let plural = "object.spec.issuerRef.kind.lowerAscii() + 's'";
    let group = "(has(object.spec.issuerRef.group) && object.spec.issuerRef.group != '' ? object.spec.issuerRef.group : 'cert-manager.io')";
    let decided = "c.type in ['Approved', 'Denied'] && c.status == 'True'";
    vec![
        serde_json::json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "cert-manager-approval"},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": ["cert-manager.io"], "apiVersions": ["v1"],
                    "operations": ["UPDATE"], "resources": ["certificaterequests/status"],
                }]},
                "variables": [
                    {"name": "decidedNow", "expression": format!(
                        "has(object.status) && has(object.status.conditions) && object.status.conditions.exists(c, {decided}) \
                         && !(has(oldObject.status) && has(oldObject.status.conditions) && oldObject.status.conditions.exists(c, {decided}))"
                    )},
                    {"name": "signers", "expression": format!("{plural} + '.' + {group}")},
                    {"name": "named", "expression": "object.spec.issuerRef.kind.contains('Cluster') ? object.spec.issuerRef.name : object.metadata.namespace + '.' + object.spec.issuerRef.name"},
                ],
                "validations": [{
                    "expression": "!variables.decidedNow \
                        || authorizer.group('cert-manager.io').resource('signers').name(variables.signers + '/*').check('approve').allowed() \
                        || authorizer.group('cert-manager.io').resource('signers').name(variables.signers + '/' + variables.named).check('approve').allowed()",
                    "messageExpression": "'user ' + request.userInfo.username + ' may not approve or deny requests for signer ' + variables.signers + '/' + variables.named",
                    "reason": "Forbidden",
                }],
            },
        }),
        serde_json::json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": "cert-manager-approval"},
            "spec": {"policyName": "cert-manager-approval", "validationActions": ["Deny"]},
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_approver_keeps_the_rest() {
        let all = CertManagerOptions::default().controllers;
        let manual = CertManagerOptions::without_approver().controllers;
        assert_eq!(all.len(), 11);
        assert_eq!(manual.len(), 10);
        assert!(!manual.iter().any(|c| c == APPROVER));
        assert_eq!(CertManagerOptions::default().in_namespace("ns1").namespace.as_deref(), Some("ns1"));
    }
}
