//! End-to-end tests of Ferrum on the real control plane: etcd, kube-apiserver with RBAC, and
//! cert-manager's own controllers, from `tools/controlplane/build.sh`. Each test has its own
//! namespace, its own Ferrum process (a ServiceAccount bound to Ferrum's ClusterRole only) and,
//! where it needs them, its own cert-manager controllers.

mod certificates;
mod faults;
mod flow;
mod hostile;
mod issuers;
mod library;
mod namespaces;
mod operations;
mod pkcs11;
mod policy;
mod requests;
mod revocation;
mod rotation;
mod shutdown;
mod support;
