//! X.509 without Kubernetes: checking requests, the signing policy, assembling and signing
//! certificates, and CA bundles.

pub mod chain;
pub mod constraints;
pub mod csr;
pub mod duration;
pub mod issue;
pub mod key;
pub mod names;
pub mod oids;
pub mod pem;
pub mod sign;
pub mod template;

#[cfg(test)]
mod tests;
