//! Ferrum: a library for writing cert-manager external issuers in Rust, and the Ferrum CA
//! issuer built on it.
//!
//! Implement [`Signer`] (check an issuer, sign a request), name your kinds with
//! [`IssuerKinds`], and hand both to [`runtime::run`] (or [`run`] inside a process of your
//! own). The library does the rest of cert-manager's issuer contract: approval and denial,
//! issuer readiness, request validation, status writes by server-side apply, events, retries
//! with backoff; and the runtime adds logs, leader election, probes and metrics.
//!
//! - [`x509`]: checking requests and signing certificates in memory, without Kubernetes.
//! - [`issuer`]: Ferrum's own issuer ([`issuer::FerrumSigner`]) over its backends: [`ca`], a CA
//!   whose key pair lives in a Secret, and [`pkcs11`], a CA whose key stays on a PKCS#11 token.
//! - [`runtime`]: the process around the controllers.

#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]

mod api;
mod backoff;
pub mod ca;
mod controller;
mod decision;
mod encoding;
mod error;
pub mod issuer;
mod leader;
mod metrics;
pub mod pkcs11;
pub mod policy;
mod reasons;
pub mod revocation;
pub mod rotation;
pub mod runtime;
mod signer;
pub mod trust;
pub mod x509;

pub use api::{
    CertificateRequest, CertificateRequestSpec, CertificateRequestStatus, Condition, Issuer, IssuerKinds,
    IssuerReference, IssuerScope, IssuerStatus, Parsed,
};
pub use controller::{Config, run};
pub use decision::{CheckedRequest, Refusal, validate as validate_request};
pub use error::Error;
pub use signer::{Health, IssuerContext, IssuerError, NextCa, SignError, SignRequest, Signed, Signer, Warning};
