//! Re-issuance after a CA switch (see [`crate::rotation`]): every cert-manager `Certificate`
//! of the issuer whose certificate was issued before the switch is asked to re-issue, with the
//! status change `cmctl renew` makes (condition `Issuing=True`, reason `ManuallyTriggered`),
//! at most at the rate the issuer's spec sets.
//!
//! "Issued before the switch" is read from the Certificate's `status.notBefore`: Ferrum backdates
//! `notBefore` by [`CLOCK_SKEW_BACKDATE`], so a certificate signed before the switch has a
//! `notBefore` earlier than the switch minus that backdate. Those signed within a few seconds of
//! the switch count as before it: one re-issuance too many rather than one leaf left behind.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::context::Context;
use super::revocation::certificates;
use crate::api::{IssuerScope, WatchedIssuer};
use crate::backoff::{parse_time, to_time};
use crate::metrics::IssuerLabels;
use crate::rotation::{ReissueSpec, ReissueStatus};
use crate::signer::Signer;
use crate::x509::issue::CLOCK_SKEW_BACKDATE;

/// How often a re-issuing issuer looks again.
pub(super) const PASS_INTERVAL: Duration = Duration::from_secs(10);
/// Certificates signed this soon after the switch still count as signed before it.
const SWITCH_SLACK: Duration = Duration::from_secs(5);
/// cert-manager's condition that starts an issuance.
const ISSUING: &str = "Issuing";

/// Token buckets per issuer UID: (last refill, tokens).
#[derive(Default)]
pub(crate) struct Budgets(Mutex<HashMap<String, (Instant, f64)>>);

impl Budgets {
    /// Takes one token of `uid`'s bucket (capacity a tenth of a minute's worth, at least one;
    /// refilled at `per_minute`), if there is one.
    fn take(&self, uid: &str, per_minute: u32) -> bool {
        let capacity = (f64::from(per_minute) / 6.0).max(1.0);
        let mut buckets = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (at, tokens) = buckets.entry(uid.to_owned()).or_insert((Instant::now(), capacity));
        *tokens = (*tokens + at.elapsed().as_secs_f64() * f64::from(per_minute) / 60.0).min(capacity);
        *at = Instant::now();
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Drops a deleted issuer's bucket.
    pub(crate) fn forget(&self, uid: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }
}

/// Whether a Certificate's current certificate was issued before `switched_at` (see the module
/// documentation). One never issued is not.
fn issued_before(certificate: &Value, switched_at: SystemTime) -> bool {
    let not_before = certificate.pointer("/status/notBefore").and_then(Value::as_str).and_then(parse_time);
    not_before.is_some_and(|at| at + CLOCK_SKEW_BACKDATE <= switched_at + SWITCH_SLACK)
}

/// Whether to leave it to cert-manager for now: issuing already, or failed since the switch
/// (cert-manager retries a failed issuance with its own backoff; asking again would bypass it).
fn leave_alone(certificate: &Value, switched_at: SystemTime) -> bool {
    let conditions = certificate.pointer("/status/conditions").and_then(Value::as_array);
    let issuing = conditions.is_some_and(|list| list.iter().any(|c| c["type"] == ISSUING && c["status"] == "True"));
    let failed = certificate.pointer("/status/lastFailureTime").and_then(Value::as_str).and_then(parse_time);
    issuing || failed.is_some_and(|at| at >= switched_at)
}

/// One pass: counts what remains, asks for as many re-issuances as the budget allows.
pub(super) async fn pass<S: Signer>(
    ctx: &Context<S>,
    scope: IssuerScope,
    issuer: &WatchedIssuer<S::Spec>,
    switched_at: SystemTime,
    spec: &ReissueSpec,
    previous: Option<&ReissueStatus>,
) -> ReissueStatus {
    let mut status = previous.cloned().unwrap_or_default();
    let name = issuer.name_any();
    let api: Api<DynamicObject> = match scope {
        IssuerScope::Namespaced => {
            Api::namespaced_with(ctx.client.clone(), &issuer.namespace().unwrap_or_default(), &certificates())
        }
        IssuerScope::Cluster => Api::all_with(ctx.client.clone(), &certificates()),
    };
    let kinds = &ctx.config.kinds;
    let mut candidates = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = match api.list(&params).await {
            Ok(page) => page,
            Err(error) => {
                status.blocked = Some(blocked("listing Certificates", &error));
                return status;
            }
        };
        for certificate in page.items {
            let issuer_ref = &certificate.data["spec"]["issuerRef"];
            let ours = kinds.scope_of(issuer_ref["group"].as_str(), issuer_ref["kind"].as_str()) == Some(scope)
                && issuer_ref["name"].as_str() == Some(name.as_str());
            if ours && issued_before(&certificate.data, switched_at) {
                candidates.push(certificate);
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    status.remaining = u32::try_from(candidates.len()).unwrap_or(u32::MAX);
    status.blocked = None;
    let uid = issuer.metadata.uid.clone().unwrap_or_default();
    for certificate in candidates.into_iter().filter(|c| !leave_alone(&c.data, switched_at)) {
        if !ctx.reissue_budgets.take(&uid, spec.per_minute) {
            break;
        }
        match request_reissue(ctx, &api, certificate, &name).await {
            Ok(()) => status.requested = status.requested.saturating_add(1),
            Err(Some(why)) => {
                status.blocked = Some(why);
                break;
            }
            Err(None) => {} // changed meanwhile: the next pass sees it
        }
    }
    let labels = IssuerLabels {
        kind: kinds.kind(scope).to_owned(),
        namespace: issuer.namespace().unwrap_or_default(),
        name: name.clone(),
    };
    ctx.metrics.reissue_remaining.get_or_create(&labels).set(i64::from(status.remaining));
    status
}

/// Sets `Issuing=True` on one Certificate, as `cmctl renew` does (an update of its status,
/// fenced by the resourceVersion listed). `Err(None)`: it changed meanwhile; `Err(Some)`: why
/// re-issuance cannot go on.
async fn request_reissue<S: Signer>(
    ctx: &Context<S>,
    api: &Api<DynamicObject>,
    mut certificate: DynamicObject,
    issuer: &str,
) -> Result<(), Option<String>> {
    let what = format!("Certificate {}/{}", certificate.namespace().unwrap_or_default(), certificate.name_any());
    let condition = json!({
        "type": ISSUING,
        "status": "True",
        "reason": "ManuallyTriggered",
        "message": format!("Certificate re-issuance triggered by Ferrum: issuer {issuer} switched to a new CA"),
        "lastTransitionTime": to_time(SystemTime::now()).0.to_string(),
        "observedGeneration": certificate.metadata.generation,
    });
    let status = certificate.data.as_object_mut().map(|o| o.entry("status").or_insert_with(|| json!({})));
    let Some(Value::Object(status)) = status else { return Err(None) };
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    match conditions.as_array_mut() {
        Some(list) => {
            list.retain(|c| c["type"] != ISSUING);
            list.push(condition);
        }
        None => *conditions = json!([condition]),
    }
    if ctx.may_write().is_err() {
        return Err(None);
    }
    match api.replace_status(&certificate.name_any(), &PostParams::default(), &certificate).await {
        Ok(_) => {
            info!(certificate = %what, issuer, "asked cert-manager to re-issue: issued before the CA switch");
            let object = certificate.object_ref(&certificates());
            ctx.event(
                &object,
                false,
                "ReissueRequested",
                format!("issued before issuer {issuer} switched to a new CA: re-issuance requested"),
                "Reissue",
            );
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => Err(None),
        Err(error) => {
            warn!(certificate = %what, %error, "could not ask for re-issuance");
            Err(Some(blocked(&format!("updating the status of {what}"), &error)))
        }
    }
}

/// Why re-issuance stopped, for the issuer's status.
fn blocked(doing: &str, error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if status.code == 403 => format!(
            "{doing} is not allowed: re-issuance needs list on certificates and update on certificates/status \
             (the chart grants them with rotation.reissue=true)"
        ),
        error => format!("{doing}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::from_unix;

    fn certificate(not_before: Option<&str>, issuing: bool) -> Value {
        let mut status = json!({});
        if let Some(at) = not_before {
            status["notBefore"] = json!(at);
        }
        if issuing {
            status["conditions"] = json!([{"type": "Issuing", "status": "True"}]);
        }
        json!({"status": status})
    }

    #[test]
    fn certificates_issuing_or_failed_since_the_switch_are_left_to_cert_manager() {
        let switched = from_unix(1_000);
        let at = |secs: u64| to_time(from_unix(secs)).0.to_string();
        assert!(leave_alone(&certificate(None, true), switched), "issuing already");
        assert!(!leave_alone(&certificate(None, false), switched));
        let mut failed = certificate(None, false);
        failed["status"]["lastFailureTime"] = json!(at(1_010));
        assert!(leave_alone(&failed, switched), "failed after the switch: cert-manager's backoff");
        failed["status"]["lastFailureTime"] = json!(at(900));
        assert!(!leave_alone(&failed, switched), "a failure before the switch is no reason to wait");
    }

    #[test]
    fn certificates_issued_before_the_switch_are_the_ones_to_renew() {
        // Switched at 1970-01-01T00:16:40Z (1000 s); Ferrum backdates notBefore by 60 s.
        let switched = from_unix(1_000);
        let at = |secs: u64| to_time(from_unix(secs)).0.to_string();
        assert!(issued_before(&certificate(Some(&at(500)), false), switched), "long before");
        assert!(issued_before(&certificate(Some(&at(940)), false), switched), "signed at the switch");
        assert!(issued_before(&certificate(Some(&at(944)), false), switched), "within the slack");
        assert!(!issued_before(&certificate(Some(&at(950)), false), switched), "signed 10 s after");
        assert!(!issued_before(&certificate(None, false), switched), "never issued");
        assert!(!issued_before(&certificate(Some("not a time"), false), switched), "unreadable: left alone");
    }

    #[test]
    fn the_budget_allows_a_tenth_of_a_minute_at_once_then_the_rate() {
        let budgets = Budgets::default();
        let taken = (0..100).filter(|_| budgets.take("a", 60)).count();
        assert_eq!(taken, 10, "a burst of per_minute/6");
        assert_eq!((0..5).filter(|_| budgets.take("slow", 1)).count(), 1, "at least one");
        assert!(budgets.take("b", 60), "buckets are per issuer");
        budgets.forget("a");
        assert!(budgets.take("a", 60), "a forgotten issuer starts full");
    }
}
