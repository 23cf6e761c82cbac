//! The Helm chart in `deploy/chart/ferrum-issuer`: `helm lint --strict` is clean, and what
//! `helm template` renders is checked object by object.
//!
//! The chart is the source of truth for Ferrum's rights: [`CLUSTER_RIGHTS`] below is the
//! reviewed list, and the chart must render exactly it. Its CRDs are a copy of
//! `deploy/crds/ferrum.crds.yaml` (which `crdgen` writes) and must stay byte-identical.
//!
//! helm comes from the control plane cache that `tools/controlplane/build.sh` fills; without it
//! these tests fail (never skip) and say so.

use std::collections::BTreeSet;
use std::process::Command;

use ferrum_testenv::fixtures::{chart_dir, helm, helm_template, parse_documents, repo_root};

use serde_json::{Value, json};

const RELEASE: &str = "ferrum";
const NAMESPACE: &str = "ferrum-system";

/// The rights of Ferrum's ClusterRole: (API group, resources, verbs). Changing a line here is a
/// change to what Ferrum may do in every cluster that installs it; review it as such.
const CLUSTER_RIGHTS: &[(&str, &[&str], &[&str])] = &[
    ("cert-manager.io", &["certificaterequests"], &["get", "list", "watch"]),
    ("cert-manager.io", &["certificaterequests/status"], &["patch"]),
    ("ferrum.dev", &["ferrumissuers", "ferrumclusterissuers"], &["get", "list", "watch"]),
    ("ferrum.dev", &["ferrumissuers/status", "ferrumclusterissuers/status"], &["patch"]),
    ("", &["secrets"], &["get", "list", "watch"]),
    ("", &["namespaces"], &["get"]),
    ("events.k8s.io", &["events"], &["create", "patch"]),
    ("ferrum.dev", &["certificaterevocations"], &["get", "list", "watch"]),
    ("ferrum.dev", &["certificaterevocations/status"], &["patch"]),
    ("cert-manager.io", &["certificates"], &["get"]),
    ("", &["configmaps"], &["create", "patch"]),
    ("certificates.k8s.io", &["clustertrustbundles"], &["create", "patch"]),
];

/// A rule limited to named objects: (API group, resources, verbs, names).
type NamedRule = (&'static str, &'static [&'static str], &'static [&'static str], &'static [&'static str]);

/// Rights of Ferrum's ClusterRole limited to named objects.
const NAMED_CLUSTER_RIGHTS: &[NamedRule] = &[(
    "certificates.k8s.io",
    &["signers"],
    &["attest"],
    &["ferrumissuers.ferrum.dev/*", "ferrumclusterissuers.ferrum.dev/*"],
)];

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn helm_lint_strict_is_clean() {
    let out = helm(&["lint", "--strict", chart_dir().to_str().unwrap()]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "helm lint --strict failed:\n{text}");
    assert!(text.contains("0 chart(s) failed"), "helm lint:\n{text}");
    // INFO lines (e.g. "icon is recommended") are advice; warnings and errors are not allowed.
    for line in text.lines() {
        assert!(!line.contains("[WARNING]") && !line.contains("[ERROR]"), "helm lint --strict: {line}\n{text}");
    }
}

/// The names a release `ferrum` in `ferrum-system` creates. Documented in values.yaml and the
/// README; operators write RBAC reviews and NetworkPolicies against them.
#[test]
fn default_render_names_every_object_after_the_release() {
    let docs = render(&[]);
    let got: BTreeSet<(String, String, String)> = docs
        .iter()
        .map(|d| {
            (
                str_at(d, "/kind"),
                str_at(d, "/metadata/name"),
                d.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_owned(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String, String)> = [
        ("CustomResourceDefinition", "ferrumissuers.ferrum.dev", ""),
        ("CustomResourceDefinition", "ferrumclusterissuers.ferrum.dev", ""),
        ("CustomResourceDefinition", "certificaterevocations.ferrum.dev", ""),
        ("ServiceAccount", "ferrum", NAMESPACE),
        ("ClusterRole", "ferrum", ""),
        ("ClusterRoleBinding", "ferrum", ""),
        ("Role", "ferrum-leader-election", NAMESPACE),
        ("RoleBinding", "ferrum-leader-election", NAMESPACE),
        ("ClusterRole", "ferrum-cert-manager-approver", ""),
        ("ClusterRoleBinding", "ferrum-cert-manager-approver", ""),
        ("Deployment", "ferrum", NAMESPACE),
        ("PodDisruptionBudget", "ferrum", NAMESPACE),
        ("Service", "ferrum-metrics", NAMESPACE),
        ("Service", "ferrum-crl", NAMESPACE),
        ("ClusterRole", "ferrum-revocations-edit", ""),
        ("ClusterRole", "ferrum-revocations-view", ""),
        ("Role", "ferrum-crl", NAMESPACE),
        ("RoleBinding", "ferrum-crl", NAMESPACE),
    ]
    .iter()
    .map(|(k, n, ns)| (k.to_string(), n.to_string(), ns.to_string()))
    .collect();
    assert_eq!(got, want);

    // A release whose name does not say "ferrum" gets it appended.
    let other = render_release("certs", "pki", &[]);
    assert_eq!(str_at(find(&other, "Deployment", "certs-ferrum"), "/metadata/namespace"), "pki");
    find(&other, "ClusterRole", "certs-ferrum");
    find(&other, "ClusterRole", "certs-ferrum-cert-manager-approver");
    let renamed = render(&["--set", "fullnameOverride=ferrum-issuer"]);
    find(&renamed, "ClusterRole", "ferrum-issuer");
    find(&renamed, "Role", "ferrum-issuer-leader-election");
}

#[test]
fn deployment_meets_the_restricted_pod_security_profile() {
    let docs = render(&[]);
    let deployment = find(&docs, "Deployment", "ferrum");
    assert_eq!(deployment.pointer("/spec/replicas"), Some(&json!(2)));
    let pod = deployment.pointer("/spec/template/spec").expect("pod spec");
    let pod_sc = pod.get("securityContext").cloned().unwrap_or(json!({}));
    assert_eq!(pod_sc.get("runAsNonRoot"), Some(&json!(true)), "pod runAsNonRoot");
    assert_eq!(pod_sc.get("runAsUser"), Some(&json!(65532)), "pod runAsUser");
    assert_eq!(pod_sc.pointer("/seccompProfile/type"), Some(&json!("RuntimeDefault")), "pod seccompProfile");
    assert_eq!(
        pod.get("automountServiceAccountToken"),
        Some(&json!(true)),
        "the pod needs its token (in-cluster config)"
    );
    assert_eq!(pod.get("serviceAccountName"), Some(&json!("ferrum")));
    for forbidden in ["hostNetwork", "hostPID", "hostIPC"] {
        assert_ne!(pod.get(forbidden), Some(&json!(true)), "{forbidden}");
    }
    for volume in pod.get("volumes").and_then(Value::as_array).into_iter().flatten() {
        assert!(volume.get("hostPath").is_none(), "hostPath volume: {volume}");
    }

    let containers = pod.get("containers").and_then(Value::as_array).expect("containers");
    assert_eq!(containers.len(), 1);
    for container in containers.iter().chain(pod.get("initContainers").and_then(Value::as_array).into_iter().flatten())
    {
        let sc = container.get("securityContext").unwrap_or_else(|| panic!("no securityContext: {container}"));
        assert_eq!(sc.get("allowPrivilegeEscalation"), Some(&json!(false)), "allowPrivilegeEscalation");
        assert_eq!(sc.get("readOnlyRootFilesystem"), Some(&json!(true)), "readOnlyRootFilesystem");
        assert_eq!(sc.pointer("/capabilities/drop"), Some(&json!(["ALL"])), "capabilities.drop");
        assert!(sc.pointer("/capabilities/add").is_none(), "capabilities.add");
        assert_ne!(sc.get("privileged"), Some(&json!(true)), "privileged");
        // The container's own settings win over the pod's; both must be restricted.
        assert_ne!(sc.get("runAsNonRoot"), Some(&json!(false)), "container runAsNonRoot");
        assert_ne!(sc.get("runAsUser"), Some(&json!(0)), "container runAsUser");
        let seccomp = sc.pointer("/seccompProfile/type").or(pod_sc.pointer("/seccompProfile/type"));
        assert_eq!(seccomp, Some(&json!("RuntimeDefault")), "container seccompProfile");
    }

    let container = &containers[0];
    assert_eq!(str_at(container, "/image"), "ghcr.io/ferrum-dev/ferrum-issuer:0.1.0");
    let ports: BTreeSet<(String, i64)> = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| (str_at(p, "/name"), p["containerPort"].as_i64().expect("containerPort")))
        .collect();
    assert_eq!(
        ports,
        BTreeSet::from([("metrics".to_owned(), 8080), ("health".to_owned(), 8081), ("crl".to_owned(), 8082)])
    );
    assert_eq!(container.pointer("/livenessProbe/httpGet"), Some(&json!({"path": "/healthz", "port": "health"})));
    assert_eq!(container.pointer("/readinessProbe/httpGet"), Some(&json!({"path": "/readyz", "port": "health"})));
    for (name, field) in [("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")] {
        let var = container["env"]
            .as_array()
            .expect("env")
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("env {name} missing"));
        assert_eq!(var.pointer("/valueFrom/fieldRef/fieldPath"), Some(&json!(field)), "{name}");
    }
    assert!(container.pointer("/resources/requests/memory").is_some(), "memory request");
    assert!(container.pointer("/resources/limits/memory").is_some(), "memory limit");

    // Scheduling values reach the pod; a spread constraint without a selector gets ours.
    let docs = render(&[
        "--set",
        "nodeSelector.kubernetes\\.io/os=linux",
        "--set",
        "tolerations[0].key=dedicated,tolerations[0].operator=Exists",
        "--set",
        "topologySpreadConstraints[0].maxSkew=1,topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname,topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
        "--set",
        "image.digest=sha256:0000000000000000000000000000000000000000000000000000000000000000",
    ]);
    let pod = find(&docs, "Deployment", "ferrum").pointer("/spec/template/spec").unwrap();
    assert_eq!(pod.pointer("/nodeSelector/kubernetes.io~1os"), Some(&json!("linux")));
    assert_eq!(pod.pointer("/tolerations/0/key"), Some(&json!("dedicated")));
    assert_eq!(
        pod.pointer("/topologySpreadConstraints/0/labelSelector/matchLabels"),
        Some(&json!({"app.kubernetes.io/name": "ferrum-issuer", "app.kubernetes.io/instance": "ferrum"}))
    );
    assert!(
        str_at(pod, "/containers/0/image")
            .ends_with("@sha256:0000000000000000000000000000000000000000000000000000000000000000")
    );
}

#[test]
fn container_args_carry_every_flag_from_the_values() {
    let docs = render(&[]);
    assert_eq!(
        args(&docs),
        [
            "--cluster-resource-namespace=ferrum-system",
            "--max-retry-duration=10m",
            "--issuer-recheck-interval=5m",
            "--concurrency=8",
            "--log-format=text",
            "--log-level=info",
            "--leader-elect=true",
            "--leader-election-namespace=ferrum-system",
            "--leader-election-lease-name=ferrum",
            "--leader-election-lease-duration=15s",
            "--leader-election-renew-deadline=10s",
            "--leader-election-retry-period=2s",
            "--pkcs11-max-sessions=4",
            "--metrics-bind-address=0.0.0.0:8080",
            "--health-probe-bind-address=0.0.0.0:8081",
            "--crl-bind-address=0.0.0.0:8082",
        ]
    );

    let docs = render(&[
        "--set",
        "replicaCount=1,leaderElection.enabled=false",
        "--set",
        "config.clusterResourceNamespace=pki,config.namespace=apps,config.disableApprovalCheck=true",
        "--set",
        "config.maxRetryDuration=1h,config.issuerRecheckInterval=90s,config.concurrency=2",
        "--set",
        "config.logFormat=json,config.logLevel=info\\,ferrum=debug",
        "--set",
        "metrics.port=9090,health.port=9091,crl.port=9092,extraArgs[0]=--something-new",
        "--set",
        "pkcs11.module=/usr/lib/softhsm/libsofthsm2.so,pkcs11.maxSessions=16",
        "--set",
        "pkcs11.allowedModules[0]=/opt/hsm/a.so,pkcs11.allowedModules[1]=/opt/hsm/b.so",
        "--set",
        "extraVolumes[0].name=hsm,extraVolumes[0].hostPath.path=/opt/hsm",
        "--set",
        "extraVolumeMounts[0].name=hsm,extraVolumeMounts[0].mountPath=/opt/hsm,extraVolumeMounts[0].readOnly=true",
    ]);
    assert_eq!(
        args(&docs),
        [
            "--cluster-resource-namespace=pki",
            "--namespace=apps",
            "--disable-approval-check",
            "--max-retry-duration=1h",
            "--issuer-recheck-interval=90s",
            "--concurrency=2",
            "--log-format=json",
            "--log-level=info,ferrum=debug",
            "--leader-elect=false",
            "--pkcs11-module=/usr/lib/softhsm/libsofthsm2.so",
            "--pkcs11-allowed-modules=/opt/hsm/a.so,/opt/hsm/b.so",
            "--pkcs11-max-sessions=16",
            "--metrics-bind-address=0.0.0.0:9090",
            "--health-probe-bind-address=0.0.0.0:9091",
            "--crl-bind-address=0.0.0.0:9092",
            "--something-new",
        ]
    );
    let container = find(&docs, "Deployment", "ferrum").pointer("/spec/template/spec/containers/0").unwrap();
    assert_eq!(container.pointer("/livenessProbe/httpGet/port"), Some(&json!("health")));
    assert!(container["ports"].as_array().unwrap().iter().any(|p| p["containerPort"] == 9091 && p["name"] == "health"));
    // The HSM vendor's module, mounted where --pkcs11-allowed-modules says.
    assert_eq!(container["volumeMounts"], json!([{"name": "hsm", "mountPath": "/opt/hsm", "readOnly": true}]));
    let pod = find(&docs, "Deployment", "ferrum").pointer("/spec/template/spec").unwrap();
    assert_eq!(pod["volumes"], json!([{"name": "hsm", "hostPath": {"path": "/opt/hsm"}}]));
}

/// The binary accepts what the chart passes: clap checks every argument before `--version`
/// (appended last) ends the run, so an unknown flag or a malformed value fails here.
#[test]
fn the_binary_accepts_the_rendered_args() {
    for values in [
        &[][..],
        &[
            "--set",
            "replicaCount=1,leaderElection.enabled=false,config.namespace=apps,config.disableApprovalCheck=true",
            "--set",
            "config.logFormat=json,config.logLevel=info\\,ferrum=debug,config.maxRetryDuration=1h30m",
            "--set",
            "pkcs11.module=/usr/lib/softhsm/libsofthsm2.so,pkcs11.allowedModules[0]=/opt/a.so,pkcs11.maxSessions=2",
        ][..],
    ] {
        let mut args = args(&render(values));
        args.push("--version".into());
        let out = Command::new(env!("CARGO_BIN_EXE_ferrum-issuer"))
            .args(&args)
            .env_clear()
            .output()
            .expect("run ferrum-issuer");
        assert!(
            out.status.success(),
            "ferrum-issuer refuses the chart's args {args:?}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn cluster_role_grants_exactly_the_reviewed_rights() {
    let docs = render(&[]);
    let role = find(&docs, "ClusterRole", "ferrum");
    let mut want = expand(CLUSTER_RIGHTS.iter().map(|(g, r, v)| (*g, *r, *v, &[][..])));
    want.extend(expand(NAMED_CLUSTER_RIGHTS.iter().copied()));
    assert_eq!(rights(role), want, "the chart's ClusterRole differs from CLUSTER_RIGHTS");

    // deploy/rbac/clusterrole.yaml predates the chart; while it exists it must not drift.
    let legacy = repo_root().join("deploy/rbac/clusterrole.yaml");
    if legacy.exists() {
        let text = std::fs::read_to_string(&legacy).expect("read deploy/rbac/clusterrole.yaml");
        let legacy_role: Value = serde_yaml::from_str(&text).expect("parse deploy/rbac/clusterrole.yaml");
        assert_eq!(rights(&legacy_role), want, "deploy/rbac/clusterrole.yaml differs from the chart");
    }

    // Re-issuance after a CA switch is opt-in: only then list on certificates and update on
    // their status.
    let reissue = render(&["--set", "rotation.reissue=true"]);
    let mut with_reissue = want.clone();
    with_reissue.extend(expand([
        ("cert-manager.io", &["certificates"][..], &["list"][..], &[][..]),
        ("cert-manager.io", &["certificates/status"][..], &["update"][..], &[][..]),
    ]));
    assert_eq!(rights(find(&reissue, "ClusterRole", "ferrum")), with_reissue, "rotation.reissue=true");

    let binding = find(&docs, "ClusterRoleBinding", "ferrum");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ferrum"})
    );
    assert_eq!(binding["subjects"], json!([{"kind": "ServiceAccount", "name": "ferrum", "namespace": NAMESPACE}]));
    let account = find(&docs, "ServiceAccount", "ferrum");
    assert_eq!(account["automountServiceAccountToken"], json!(false), "only the Deployment opts in to a token");
}

#[test]
fn leader_election_role_covers_only_this_releases_lease() {
    let docs = render(&[]);
    let role = find(&docs, "Role", "ferrum-leader-election");
    assert_eq!(str_at(role, "/metadata/namespace"), NAMESPACE);
    let want = expand([
        ("coordination.k8s.io", &["leases"][..], &["create"][..], &[][..]),
        ("coordination.k8s.io", &["leases"][..], &["get", "update"][..], &["ferrum"][..]),
    ]);
    assert_eq!(rights(role), want);
    // The lease the Role names is the lease the flags name.
    assert!(args(&docs).contains(&"--leader-election-lease-name=ferrum".to_owned()));
    let binding = find(&docs, "RoleBinding", "ferrum-leader-election");
    assert_eq!(binding["roleRef"]["name"], "ferrum-leader-election");
    assert_eq!(binding["subjects"], json!([{"kind": "ServiceAccount", "name": "ferrum", "namespace": NAMESPACE}]));

    let elsewhere = render(&["--set", "leaderElection.namespace=kube-leases,leaderElection.leaseName=ferrum-lock"]);
    let role = find(&elsewhere, "Role", "ferrum-leader-election");
    assert_eq!(str_at(role, "/metadata/namespace"), "kube-leases");
    assert_eq!(role.pointer("/rules/1/resourceNames"), Some(&json!(["ferrum-lock"])));
    assert_eq!(str_at(find(&elsewhere, "RoleBinding", "ferrum-leader-election"), "/metadata/namespace"), "kube-leases");
    let a = args(&elsewhere);
    assert!(a.contains(&"--leader-election-namespace=kube-leases".to_owned()), "{a:?}");
    assert!(a.contains(&"--leader-election-lease-name=ferrum-lock".to_owned()), "{a:?}");

    let single = render(&["--set", "replicaCount=1,leaderElection.enabled=false"]);
    assert!(
        !single.iter().any(|d| (d["kind"] == "Role" || d["kind"] == "RoleBinding")
            && d["metadata"]["name"] == "ferrum-leader-election"),
        "no leader-election Role without leader election"
    );
}

#[test]
fn approver_rbac_lets_cert_manager_approve_our_signers_and_can_be_turned_off() {
    let docs = render(&[]);
    let role = find(&docs, "ClusterRole", "ferrum-cert-manager-approver");
    let want = expand([(
        "cert-manager.io",
        &["signers"][..],
        &["approve"][..],
        &["ferrumissuers.ferrum.dev/*", "ferrumclusterissuers.ferrum.dev/*"][..],
    )]);
    assert_eq!(rights(role), want);
    let binding = find(&docs, "ClusterRoleBinding", "ferrum-cert-manager-approver");
    assert_eq!(binding["roleRef"]["name"], "ferrum-cert-manager-approver");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "cert-manager", "namespace": "cert-manager"}])
    );

    let custom = render(&["--set", "approver.serviceAccountName=cm,approver.serviceAccountNamespace=security"]);
    let binding = find(&custom, "ClusterRoleBinding", "ferrum-cert-manager-approver");
    assert_eq!(binding["subjects"], json!([{"kind": "ServiceAccount", "name": "cm", "namespace": "security"}]));

    let off = render(&["--set", "approver.enabled=false"]);
    assert!(
        !off.iter().any(|d| str_at(d, "/metadata/name").ends_with("-cert-manager-approver")),
        "approver.enabled=false still renders the approver RBAC"
    );
    find(&off, "ClusterRole", "ferrum");
}

#[test]
fn chart_crds_are_the_generated_crds_and_can_be_left_out() {
    let generated_path = repo_root().join("deploy/crds/ferrum.crds.yaml");
    let generated = std::fs::read_to_string(&generated_path).expect("read deploy/crds/ferrum.crds.yaml");
    let copy = std::fs::read_to_string(chart_dir().join("files/ferrum.crds.yaml")).expect("read the chart's CRD copy");
    assert!(
        copy == generated,
        "deploy/chart/ferrum-issuer/files/ferrum.crds.yaml differs from deploy/crds/ferrum.crds.yaml: run \
         `cp deploy/crds/ferrum.crds.yaml deploy/chart/ferrum-issuer/files/ferrum.crds.yaml`"
    );
    let want: Vec<Value> = parse_documents(&generated);
    assert_eq!(want.len(), 3, "FerrumIssuer, FerrumClusterIssuer, CertificateRevocation");

    // Rendered: the same documents, plus our labels and the keep policy (on by default).
    let docs = render(&[]);
    let rendered: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "CustomResourceDefinition").collect();
    assert_eq!(rendered.len(), want.len());
    for expected in &want {
        let name = str_at(expected, "/metadata/name");
        let crd = find(&docs, "CustomResourceDefinition", &name);
        assert_eq!(crd.pointer("/metadata/annotations/helm.sh~1resource-policy"), Some(&json!("keep")), "{name}");
        assert_eq!(crd.pointer("/metadata/labels/app.kubernetes.io~1instance"), Some(&json!(RELEASE)), "{name}");
        let mut stripped = crd.clone();
        let metadata = stripped["metadata"].as_object_mut().unwrap();
        metadata.remove("labels");
        metadata.remove("annotations");
        // Helm's fromYaml/toYaml writes `8192.0` as `8192`: compare numbers as numbers.
        assert!(
            numbers_as_floats(&stripped) == numbers_as_floats(expected),
            "rendered CRD {name} differs from deploy/crds/ferrum.crds.yaml"
        );
    }

    let not_kept = render(&["--set", "crds.keep=false"]);
    for crd in not_kept.iter().filter(|d| d["kind"] == "CustomResourceDefinition") {
        assert!(crd.pointer("/metadata/annotations/helm.sh~1resource-policy").is_none(), "crds.keep=false: {crd}");
    }

    let without = render(&["--set", "crds.enabled=false"]);
    assert!(!without.iter().any(|d| d["kind"] == "CustomResourceDefinition"), "crds.enabled=false still renders CRDs");
    find(&without, "Deployment", "ferrum");
}

#[test]
fn disruption_budget_only_with_more_than_one_replica() {
    let docs = render(&[]);
    let pdb = find(&docs, "PodDisruptionBudget", "ferrum");
    assert_eq!(pdb.pointer("/spec/minAvailable"), Some(&json!(1)));
    assert_eq!(
        pdb.pointer("/spec/selector/matchLabels"),
        find(&docs, "Deployment", "ferrum").pointer("/spec/selector/matchLabels")
    );
    let percent = render(&["--set", "podDisruptionBudget.maxUnavailable=50%"]);
    let pdb = find(&percent, "PodDisruptionBudget", "ferrum");
    assert_eq!(pdb["spec"]["maxUnavailable"], "50%");
    assert!(pdb["spec"].get("minAvailable").is_none());
    let single = render(&["--set", "replicaCount=1"]);
    assert!(!single.iter().any(|d| d["kind"] == "PodDisruptionBudget"));
}

#[test]
fn metrics_service_and_optional_service_monitor() {
    let docs = render(&[]);
    let service = find(&docs, "Service", "ferrum-metrics");
    assert_eq!(
        service.pointer("/spec/ports/0"),
        Some(&json!({"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}))
    );
    assert_eq!(
        service.pointer("/spec/selector"),
        find(&docs, "Deployment", "ferrum").pointer("/spec/selector/matchLabels")
    );
    assert!(!docs.iter().any(|d| d["kind"] == "ServiceMonitor"), "ServiceMonitor is off by default");

    let docs =
        render(&["--set", "metrics.serviceMonitor.enabled=true,metrics.serviceMonitor.labels.release=prometheus"]);
    let monitor = find(&docs, "ServiceMonitor", "ferrum");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor.pointer("/metadata/labels/release"), Some(&json!("prometheus")));
    assert_eq!(monitor.pointer("/spec/endpoints/0/port"), Some(&json!("metrics")));
    assert_eq!(monitor.pointer("/spec/endpoints/0/path"), Some(&json!("/metrics")));
    let selector = monitor.pointer("/spec/selector/matchLabels").and_then(Value::as_object).unwrap();
    let service_labels = find(&docs, "Service", "ferrum-metrics").pointer("/metadata/labels").unwrap();
    for (key, value) in selector {
        assert_eq!(service_labels.get(key), Some(value), "ServiceMonitor selector {key} does not match the Service");
    }
}

/// Every replica serves CRLs: a Service on the pods' `crl` port; namespace admins and editors
/// may create revocations (aggregated into the built-in roles), viewers read them; both can be
/// turned off.
#[test]
fn crl_service_and_aggregated_revocation_roles() {
    let docs = render(&[]);
    let service = find(&docs, "Service", "ferrum-crl");
    assert_eq!(
        service.pointer("/spec/ports/0"),
        Some(&json!({"name": "http", "port": 80, "targetPort": "crl", "protocol": "TCP"}))
    );
    assert_eq!(
        service.pointer("/spec/selector"),
        find(&docs, "Deployment", "ferrum").pointer("/spec/selector/matchLabels")
    );
    let container = find(&docs, "Deployment", "ferrum").pointer("/spec/template/spec/containers/0").unwrap();
    assert!(container["ports"].as_array().unwrap().iter().any(|p| p["containerPort"] == 8082 && p["name"] == "crl"));
    let edit = find(&docs, "ClusterRole", "ferrum-revocations-edit");
    assert_eq!(edit.pointer("/metadata/labels/rbac.authorization.k8s.io~1aggregate-to-admin"), Some(&json!("true")));
    assert_eq!(edit.pointer("/metadata/labels/rbac.authorization.k8s.io~1aggregate-to-edit"), Some(&json!("true")));
    assert_eq!(
        rights(edit),
        expand([(
            "ferrum.dev",
            &["certificaterevocations"][..],
            &["create", "delete", "get", "list", "watch"][..],
            &[][..]
        )])
    );
    let view = find(&docs, "ClusterRole", "ferrum-revocations-view");
    assert_eq!(view.pointer("/metadata/labels/rbac.authorization.k8s.io~1aggregate-to-view"), Some(&json!("true")));
    assert_eq!(
        rights(view),
        expand([("ferrum.dev", &["certificaterevocations"][..], &["get", "list", "watch"][..], &[][..])])
    );

    // The ledgers: read and written in the cluster resource namespace only.
    let docs = render(&["--set", "config.clusterResourceNamespace=pki"]);
    let role = find(&docs, "Role", "ferrum-crl");
    assert_eq!(str_at(role, "/metadata/namespace"), "pki");
    assert_eq!(
        rights(role),
        expand([("", &["configmaps"][..], &["get", "list", "watch", "create", "update", "delete"][..], &[][..])])
    );
    let binding = find(&docs, "RoleBinding", "ferrum-crl");
    assert_eq!(str_at(binding, "/metadata/namespace"), "pki");
    assert_eq!(binding.pointer("/subjects/0/name"), Some(&json!("ferrum")));
    assert_eq!(binding.pointer("/subjects/0/namespace"), Some(&json!(NAMESPACE)));

    let docs = render(&["--set", "crl.service.enabled=false,revocation.aggregateToClusterRoles=false"]);
    assert!(!docs.iter().any(|d| d["kind"] == "Service" && d["metadata"]["name"] == "ferrum-crl"));
    assert!(
        !docs.iter().any(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"].as_str().unwrap_or("").contains("revocations"))
    );
}

#[test]
fn schema_and_guards_reject_bad_values() {
    for (set, expect) in [
        ("bogus=1", "bogus"),
        ("config.bogus=1", "bogus"),
        ("config.logFormat=xml", "logFormat"),
        ("config.maxRetryDuration=ten", "maxRetryDuration"),
        ("metrics.port=0", "port"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        // Two replicas that both sign would race each other: refused by the template.
        ("leaderElection.enabled=false", "leaderElection.enabled"),
        ("metrics.service.enabled=false,metrics.serviceMonitor.enabled=true", "metrics.service.enabled"),
    ] {
        let chart = chart_dir();
        let out = helm(&["template", RELEASE, chart.to_str().unwrap(), "--namespace", NAMESPACE, "--set", set]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "helm template --set {set} succeeded; it should have been refused");
        assert!(stderr.contains(expect), "helm template --set {set}: the error does not mention {expect}:\n{stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// `helm template ferrum <chart> -n ferrum-system <extra>`, parsed.
fn render(extra: &[&str]) -> Vec<Value> {
    render_release(RELEASE, NAMESPACE, extra)
}

fn render_release(release: &str, namespace: &str, extra: &[&str]) -> Vec<Value> {
    helm_template(release, namespace, extra)
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter().find(|d| d["kind"] == kind && d["metadata"]["name"] == name).unwrap_or_else(|| {
        let present: Vec<String> = docs.iter().map(|d| format!("{}/{}", d["kind"], d["metadata"]["name"])).collect();
        panic!("no {kind} {name} rendered; present: {present:?}")
    })
}

fn str_at(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
        .to_owned()
}

fn args(docs: &[Value]) -> Vec<String> {
    let container = find(docs, "Deployment", "ferrum").pointer("/spec/template/spec/containers/0").expect("container");
    container["args"].as_array().expect("args").iter().map(|a| a.as_str().expect("string arg").to_owned()).collect()
}

/// One right: (API group, resource, verb, resource name or "" for any).
type Right = (String, String, String, String);

/// The rights a list of (groups, resources, verbs, resourceNames) grants, one per combination.
fn expand<'a>(
    rules: impl IntoIterator<Item = (&'a str, &'a [&'a str], &'a [&'a str], &'a [&'a str])>,
) -> BTreeSet<Right> {
    let mut out = BTreeSet::new();
    for (group, resources, verbs, names) in rules {
        let names: Vec<&str> = if names.is_empty() { vec![""] } else { names.to_vec() };
        for resource in resources {
            for verb in verbs {
                for name in &names {
                    out.insert((group.to_owned(), resource.to_string(), verb.to_string(), name.to_string()));
                }
            }
        }
    }
    out
}

/// The rights a rendered Role or ClusterRole grants. Wildcards and non-resource URLs are
/// refused outright: least privilege means naming every right.
fn rights(role: &Value) -> BTreeSet<Right> {
    let strings = |rule: &Value, key: &str| -> Vec<String> {
        rule.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|s| s.as_str().expect("string").to_owned()).collect())
            .unwrap_or_default()
    };
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        assert!(rule.get("nonResourceURLs").is_none(), "nonResourceURLs in {rule}");
        let (groups, resources, verbs) =
            (strings(rule, "apiGroups"), strings(rule, "resources"), strings(rule, "verbs"));
        let mut names = strings(rule, "resourceNames");
        for list in [&groups, &resources, &verbs] {
            assert!(!list.is_empty() && !list.iter().any(|s| s == "*"), "empty or wildcard list in {rule}");
        }
        if names.is_empty() {
            names.push(String::new());
        }
        for group in &groups {
            for resource in &resources {
                for verb in &verbs {
                    for name in &names {
                        out.insert((group.clone(), resource.clone(), verb.clone(), name.clone()));
                    }
                }
            }
        }
    }
    out
}

/// `value` with every number as a float, so that `1` and `1.0` compare equal.
fn numbers_as_floats(value: &Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map_or(Value::Null, |f| json!(f)),
        Value::Array(items) => Value::Array(items.iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), numbers_as_floats(v))).collect()),
        other => other.clone(),
    }
}
