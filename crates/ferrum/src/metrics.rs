//! Prometheus metrics of the controllers, in an explicit registry (no globals).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels naming one issuer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct IssuerLabels {
    /// Issuer kind, e.g. `FerrumIssuer`.
    pub kind: String,
    /// Issuer namespace (empty for cluster issuers).
    pub namespace: String,
    /// Issuer name.
    pub name: String,
}

/// Labels of a request outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResultLabels {
    /// Issuer kind.
    pub kind: String,
    /// Issuer namespace (empty for cluster issuers).
    pub namespace: String,
    /// Issuer name.
    pub name: String,
    /// `Issued`, `Failed`, `Denied` or `Pending`.
    pub reason: String,
}

/// Labels of a reconcile error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ErrorLabels {
    /// `certificaterequest` or `issuer`.
    pub controller: String,
    /// Error class.
    pub error: String,
}

/// Labels of the signing-latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KindLabels {
    /// Issuer kind.
    pub kind: String,
}

/// Labels of a deviation: a certificate that differs from what its request asked.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DeviationLabels {
    /// Issuer kind.
    pub kind: String,
    /// What differs: the warning's reason, e.g. `DurationClamped`, `DurationClampedByPolicy`.
    pub deviation: String,
}

/// The controllers' metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Request outcomes written, by issuer and reason.
    pub results: Family<ResultLabels, Counter>,
    /// Time spent in the signer's `sign`, by issuer kind.
    pub signing_seconds: Family<KindLabels, Histogram>,
    /// Each issuer's CA `notAfter`, as a Unix time.
    pub ca_not_after: Family<IssuerLabels, Gauge<f64, AtomicU64>>,
    /// Requests waiting to retry a failed signing.
    pub retries_waiting: Gauge,
    /// Reconciles that failed (and were requeued).
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// Certificates issued that differ from what was asked, by kind of difference.
    pub deviations: Family<DeviationLabels, Counter>,
    /// CRLs that could not be signed or published, by issuer.
    pub crl_failures: Family<IssuerLabels, Counter>,
    /// Certificates revoked, by issuer and how (`revocation` or `deletion`).
    pub revocations: Family<ResultLabels, Counter>,
    /// Certificates still to re-issue after a CA switch, by issuer.
    pub reissue_remaining: Family<IssuerLabels, Gauge>,
}

impl Metrics {
    /// Creates the metrics and registers them (prefix `ferrum_`) in `registry`.
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let metrics = Self {
            results: Family::default(),
            signing_seconds: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))),
            ca_not_after: Family::default(),
            retries_waiting: Gauge::default(),
            reconcile_errors: Family::default(),
            deviations: Family::default(),
            crl_failures: Family::default(),
            revocations: Family::default(),
            reissue_remaining: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("ferrum");
        r.register(
            "certificaterequests",
            "CertificateRequest outcomes written, by issuer and reason",
            metrics.results.clone(),
        );
        r.register("signing_duration_seconds", "Time spent signing one request", metrics.signing_seconds.clone());
        r.register("ca_not_after_timestamp_seconds", "The notAfter of each issuer's CA", metrics.ca_not_after.clone());
        r.register("retries_waiting", "Requests waiting to retry a failed signing", metrics.retries_waiting.clone());
        r.register("reconcile_errors", "Reconciles that failed and were requeued", metrics.reconcile_errors.clone());
        r.register(
            "certificate_deviations",
            "Certificates issued that differ from what their request asked (each also said in the request's event), by kind of difference",
            metrics.deviations.clone(),
        );
        r.register(
            "crl_signing_failures",
            "CRLs that could not be signed or published, by issuer",
            metrics.crl_failures.clone(),
        );
        r.register(
            "revocations",
            "Certificates revoked, by issuer and by what (reason `revocation`: a CertificateRevocation; `deletion`: its Certificate was deleted)",
            metrics.revocations.clone(),
        );
        r.register(
            "reissue_remaining",
            "Certificates of an issuer issued before its switch to a new CA and not re-issued yet (issuers re-issuing only)",
            metrics.reissue_remaining.clone(),
        );
        metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_in_text_format() {
        let mut registry = Registry::default();
        let m = Metrics::new(&mut registry);
        let labels = ResultLabels {
            kind: "FerrumIssuer".into(),
            namespace: "ns".into(),
            name: "ca".into(),
            reason: "Issued".into(),
        };
        m.results.get_or_create(&labels).inc();
        m.signing_seconds.get_or_create(&KindLabels { kind: "FerrumIssuer".into() }).observe(0.002);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                r#"ferrum_certificaterequests_total{kind="FerrumIssuer",namespace="ns",name="ca",reason="Issued"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("ferrum_signing_duration_seconds_count{kind=\"FerrumIssuer\"} 1"), "{text}");
    }
}
