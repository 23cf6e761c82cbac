//! X.509 without Kubernetes: checking requests, the signing policy, assembling and signing
//! certificates, and CA bundles.

pub mod chain;
pub mod csr;
pub mod duration;
pub mod issue;
pub mod key;
pub mod oids;
pub mod sign;
pub mod template;

#[cfg(test)]
mod tests;
