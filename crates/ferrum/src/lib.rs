//! Ferrum: a library for writing cert-manager external issuers in Rust, and the Ferrum CA
//! issuer built on it.
//!
//! Implement [`signer::Signer`] (check an issuer, sign a request), name your kinds with
//! [`api::IssuerKinds`], and call [`controller::run`]. The library does the rest of
//! cert-manager's issuer contract: approval and denial, issuer readiness, request validation,
//! status writes by server-side apply, events, and retries with backoff.

pub mod api;
pub mod backoff;
pub mod ca;
pub mod controller;
pub mod decision;
pub mod encoding;
mod error;
pub mod leader;
pub mod metrics;
pub mod reasons;
pub mod signer;
pub mod x509;

pub use error::Error;
