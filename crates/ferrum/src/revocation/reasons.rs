//! The reasons revocation writes: of a `CertificateRevocation`'s `Revoked` condition, and of
//! the Warning events on an issuer whose CRL could not be published.

/// The condition Ferrum owns on a `CertificateRevocation`.
pub const REVOKED_CONDITION: &str = "Revoked";

/// The certificate is on the issuer's CRL.
pub const REVOKED: &str = "Revoked";
/// The spec does not name exactly one certificate.
pub const INVALID_SPEC: &str = "InvalidSpec";
/// What the spec names does not exist.
pub const NOT_FOUND: &str = "NotFound";
/// It exists but has no certificate yet.
pub const NOT_ISSUED: &str = "NotIssued";
/// Its certificate was not issued by one of this controller's issuers.
pub const NOT_ISSUED_BY_US: &str = "NotIssuedByFerrum";
/// `issuerRef` names an issuer of another controller.
pub const FOREIGN_ISSUER: &str = "ForeignIssuer";
/// A revocation by serial number outside the namespace allowed to make it.
pub const FORBIDDEN: &str = "Forbidden";
/// The serial number is on the CRL already, put there by something else.
pub const ALREADY_REVOKED: &str = "AlreadyRevoked";
/// The certificate has expired: it is not listed.
pub const EXPIRED: &str = "Expired";
/// The issuer does not exist (yet).
pub const ISSUER_NOT_FOUND: &str = "IssuerNotFound";
/// The issuer has no `crl` block.
pub const CRLS_NOT_ENABLED: &str = "CRLsNotEnabled";
/// The issuer is not Ready.
pub const ISSUER_NOT_READY: &str = "IssuerNotReady";
/// Waiting for something that may pass (the apiserver, the token).
pub const PENDING: &str = "Pending";

/// The ConfigMap exists and is not this issuer's CRL ConfigMap.
pub const CONFIG_MAP_CONFLICT: &str = "CRLConfigMapConflict";
/// The ledger in the ConfigMap does not read.
pub const LEDGER_UNREADABLE: &str = "LedgerUnreadable";
/// The namespace has as many revoked certificates on the cluster issuer's CRL as it may.
pub const LEDGER_QUOTA: &str = "LedgerQuotaExceeded";
/// The CRL would not fit in a ConfigMap.
pub const LEDGER_FULL: &str = "LedgerFull";
/// The signer cannot sign the CRL.
pub const CRL_SIGNING_FAILED: &str = "CRLSigningFailed";
