//! Signing and publishing an issuer's CRL: read the ledger from the issuer's ledger ConfigMap
//! (in the cluster resource namespace, where tenants cannot write), apply the change, sign the
//! CRL with the issuer's CA key through the signer, and write both back in one update guarded by
//! the resourceVersion read (only the leader writes; a conflict is tried again). The CRL is
//! always the ledger's: a revocation is acknowledged only once a CRL listing it is published.
//! A copy of the CRL (`ca.crl` only) then goes to a ConfigMap of the issuer's secret namespace,
//! for consumers that read it from there.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};

use super::ledger::{Added, Entry, Ledger};
use super::reasons;
use super::{
    CrlSpec, config_map_name, crl_label, kind_annotation, ledger_config_map_name, name_annotation, namespace_annotation,
};
use crate::api::{IssuerKinds, IssuerScope};
use crate::encoding::pem_encode;
use crate::signer::{IssuerContext, SignError, Signer};
use crate::x509::{CrlContents, CrlFacts};
use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject;

/// The key of the CRL (PEM) in the ConfigMap, as ingress controllers read it.
pub const CRL_KEY: &str = "ca.crl";
/// The key of the ledger in the ConfigMap.
pub const LEDGER_KEY: &str = "ledger";
/// The most a CRL ConfigMap may hold: below the apiserver's object limit, with room for
/// metadata. A revocation that would grow it further is refused, never half-written.
pub const MAX_CONFIG_MAP_BYTES: usize = 900_000;
/// thisUpdate is set this far back, for clients whose clocks run a little behind.
const CLOCK_SKEW_BACKDATE: Duration = Duration::from_secs(60);

/// The issuer whose CRL is published.
pub(crate) struct CrlIssuer<'a, T> {
    /// The kinds served (for the ConfigMap's labels and annotations).
    pub kinds: &'a IssuerKinds,
    /// The issuer, as the signer sees it.
    pub issuer: IssuerContext<'a, T>,
    /// Its `crl` block.
    pub crl: &'a CrlSpec,
    /// Its CRL validity (checked).
    pub validity: Duration,
    /// Where ledgers are kept: the cluster resource namespace.
    pub store_namespace: &'a str,
}

/// What a publication did.
#[derive(Clone, Debug)]
pub(crate) struct Published {
    /// The new CRL's number, or the current one's if nothing was written.
    pub number: u64,
    /// thisUpdate of the CRL now published (`None` if nothing was written).
    pub this_update: Option<SystemTime>,
    /// How many certificates it lists.
    pub entries: usize,
    /// When an entry expires (the CRL should be signed again then, without it).
    pub earliest_expiry: Option<SystemTime>,
    /// What the change did, if one was asked for.
    pub added: Option<Added>,
    /// Why the copy for consumers could not be written, if it could not (the CRL is published
    /// and served regardless), and the CRL (PEM) to write again.
    pub copy_error: Option<(String, String)>,
}

/// Why a CRL was not published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PublishError {
    /// Try again in seconds (the apiserver, a conflict, a busy token).
    Retry(String),
    /// Nothing changes until someone acts: a reason and what to do.
    Broken {
        /// CamelCase reason.
        reason: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::Retry(message) => f.write_str(message),
            PublishError::Broken { reason, message } => write!(f, "{reason}: {message}"),
        }
    }
}

/// Reads the ledger, applies `change` (a serial and its entry, unless the serial is listed
/// already), drops expired entries, signs a new CRL and writes both. A change that finds its
/// serial listed writes nothing. `fence` is asked just before the write.
pub(crate) async fn publish<S: Signer>(
    client: &Client,
    signer: &S,
    target: &CrlIssuer<'_, S::Spec>,
    change: Option<(Vec<u8>, Entry)>,
    now: SystemTime,
    fence: impl Fn() -> bool,
) -> Result<Published, PublishError> {
    let issuer = &target.issuer;
    let namespace = target.store_namespace;
    let name = ledger_config_map_name(target.kinds, issuer.scope, issuer.secret_namespace, issuer.name);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let current = api
        .get_opt(&name)
        .await
        .map_err(|e| PublishError::Retry(format!("reading ConfigMap {namespace}/{name}: {e}")))?;
    let mut ledger = match &current {
        Some(cm) => read_ledger(target, cm, &name)?,
        None => Ledger::default(),
    };
    // Expired entries go first: they count against no quota.
    ledger.expire(now, target.validity);
    let added = match change {
        Some((serial, entry)) => match ledger.add(serial, entry.clone()) {
            present @ Added::Present(_) => {
                return Ok(Published {
                    number: ledger.number,
                    this_update: None,
                    entries: ledger.entries.len(),
                    earliest_expiry: ledger.earliest_expiry(target.validity),
                    added: Some(present),
                    copy_error: None,
                });
            }
            Added::New => {
                if let Some(quota) = quota_of(target, &entry.namespace)
                    && ledger.count_of(&entry.namespace) > quota
                {
                    return Err(PublishError::Broken {
                        reason: reasons::LEDGER_QUOTA,
                        message: format!(
                            "namespace {} has {quota} unexpired revoked certificates on the CRL of {} {}, as many as it may (spec.crl.maxRevocationsPerNamespace on a cluster issuer; at most {} on a namespaced one); nothing was changed",
                            entry.namespace,
                            target.kinds.kind(issuer.scope),
                            issuer.name,
                            super::DEFAULT_MAX_REVOCATIONS_PER_NAMESPACE
                        ),
                    });
                }
                // The last fifth of the room is kept for revocations from the cluster resource
                // namespace (whoever runs the issuer), so that tenants cannot use it all.
                let estimate = estimated_size(&ledger);
                let room =
                    if entry.namespace == namespace { MAX_CONFIG_MAP_BYTES } else { MAX_CONFIG_MAP_BYTES / 5 * 4 };
                if estimate > room {
                    return Err(full(ledger.entries.len(), estimate));
                }
                Some(Added::New)
            }
        },
        None => None,
    };
    // Refused before the key is asked for anything.
    let estimate = estimated_size(&ledger);
    if estimate > MAX_CONFIG_MAP_BYTES {
        return Err(full(ledger.entries.len(), estimate));
    }
    ledger.number = ledger.next_number(now);
    let this_update = now.checked_sub(CLOCK_SKEW_BACKDATE).unwrap_or(now);
    let contents = CrlContents {
        number: ledger.number,
        this_update,
        next_update: now + target.validity,
        entries: ledger.crl_entries(),
    };
    let der = signer.sign_crl(issuer, contents).await.map_err(|e| match e {
        SignError::Retryable(m) | SignError::Pending { message: m, .. } => PublishError::Retry(m),
        SignError::Permanent(m) => PublishError::Broken { reason: reasons::CRL_SIGNING_FAILED, message: m },
        SignError::IssuerBroken(e) => PublishError::Broken { reason: reasons::CRL_SIGNING_FAILED, message: e.message },
    })?;
    let crl_pem = pem_encode("X509 CRL", &der);
    let data = BTreeMap::from([(CRL_KEY.to_owned(), crl_pem.clone()), (LEDGER_KEY.to_owned(), ledger.render())]);
    let size: usize = data.values().map(String::len).sum();
    if size > MAX_CONFIG_MAP_BYTES {
        return Err(full(ledger.entries.len(), size));
    }
    if !fence() {
        return Err(PublishError::Retry("not the leader now".into()));
    }
    let kinds = target.kinds;
    let mut annotations = BTreeMap::from([
        (kind_annotation(kinds), kinds.kind(issuer.scope).to_owned()),
        (name_annotation(kinds), issuer.name.to_owned()),
    ]);
    if issuer.scope == IssuerScope::Namespaced {
        annotations.insert(namespace_annotation(kinds), issuer.secret_namespace.to_owned());
    }
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(crl_label(kinds), "true".to_owned())])),
            annotations: Some(annotations),
            resource_version: current.as_ref().and_then(|cm| cm.metadata.resource_version.clone()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    };
    let params = PostParams { field_manager: Some(kinds.group.clone()), ..Default::default() };
    let written = match current {
        Some(_) => api.replace(&name, &params, &config_map).await,
        None => api.create(&params, &config_map).await,
    };
    match written {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {
            return Err(PublishError::Retry(format!("ConfigMap {namespace}/{name} changed meanwhile; trying again")));
        }
        Err(e) => return Err(PublishError::Retry(format!("writing ConfigMap {namespace}/{name}: {e}"))),
    }
    let copy_error = write_copy(client, target, &crl_pem).await.err().map(|e| (e, crl_pem));
    Ok(Published {
        number: ledger.number,
        this_update: Some(this_update),
        entries: ledger.entries.len(),
        earliest_expiry: ledger.earliest_expiry(target.validity),
        added,
        copy_error,
    })
}

/// The bytes a ledger and its CRL will take, before the CRL is signed: a CRL entry takes at
/// least 60 bytes of PEM.
fn estimated_size(ledger: &Ledger) -> usize {
    ledger.render().len() + ledger.entries.len() * 60
}

/// How many entries one namespace may have. On a cluster issuer: `maxRevocationsPerNamespace`
/// (default 1000), except from the cluster resource namespace (whoever may act for the
/// issuer). On a namespaced issuer, whose spec its tenant writes while its ledger lives in the
/// cluster resource namespace: at most the default, whatever the spec says.
fn quota_of<T>(target: &CrlIssuer<'_, T>, namespace: &str) -> Option<usize> {
    let default = super::DEFAULT_MAX_REVOCATIONS_PER_NAMESPACE;
    let asked = target.crl.max_revocations_per_namespace.unwrap_or(default);
    match target.issuer.scope {
        IssuerScope::Cluster if namespace == target.store_namespace => None,
        IssuerScope::Cluster => Some(asked as usize),
        IssuerScope::Namespaced => Some(asked.min(default) as usize),
    }
}

fn full(entries: usize, size: usize) -> PublishError {
    PublishError::Broken {
        reason: reasons::LEDGER_FULL,
        message: format!(
            "the CRL and ledger of {entries} entries would take about {size} bytes, more than a ConfigMap holds ({MAX_CONFIG_MAP_BYTES}); nothing was changed"
        ),
    }
}

/// Writes `ca.crl` into the consumers' ConfigMap of the issuer's secret namespace (server-side
/// apply, not forced: a `ca.crl` someone else manages is left alone and reported).
pub(crate) async fn write_copy<T>(client: &Client, target: &CrlIssuer<'_, T>, crl_pem: &str) -> Result<(), String> {
    let issuer = &target.issuer;
    let namespace = issuer.secret_namespace;
    let name = config_map_name(target.crl, issuer.name);
    let ledger_name = ledger_config_map_name(target.kinds, issuer.scope, namespace, issuer.name);
    if namespace == target.store_namespace && name == ledger_name {
        return Ok(());
    }
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {CRL_KEY: crl_pem},
    });
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    api.patch(&name, &PatchParams::apply(&target.kinds.group), &Patch::Apply(body))
        .await
        .map(|_| ())
        .map_err(|e| format!("the copy of the CRL in ConfigMap {namespace}/{name} was not written: {e}"))
}

/// The issuer a ledger ConfigMap belongs to, from its annotations: scope, namespace (of a
/// namespaced issuer) and name.
pub(crate) fn issuer_of(kinds: &IssuerKinds, cm: &ConfigMap) -> Option<(IssuerScope, Option<String>, String)> {
    let annotations = cm.metadata.annotations.as_ref()?;
    let scope = kinds.scope_of(Some(&kinds.group), Some(annotations.get(&kind_annotation(kinds))?))?;
    let name = annotations.get(&name_annotation(kinds))?.clone();
    let namespace = match scope {
        IssuerScope::Namespaced => Some(annotations.get(&namespace_annotation(kinds))?.clone()),
        IssuerScope::Cluster => None,
    };
    Some((scope, namespace, name))
}

/// The CRL a ledger ConfigMap holds: DER, and what it says about itself.
pub(crate) fn crl_of(cm: &ConfigMap) -> Option<(Vec<u8>, CrlFacts)> {
    let pem = cm.data.as_ref()?.get(CRL_KEY)?;
    let der = CertificateRevocationListDer::from_pem_slice(pem.as_bytes()).ok()?.as_ref().to_vec();
    let facts = CrlFacts::parse(&der).ok()?;
    Some((der, facts))
}

/// Whether a ledger has nothing left to list at `now`: every entry past its certificate's
/// expiry and one CRL validity (read from its CRL; the longest allowed if it has none). A ledger
/// that does not read is never spent.
pub(crate) fn spent(cm: &ConfigMap, now: SystemTime) -> bool {
    let Some(data) = cm.data.as_ref() else { return false };
    let Some(Ok(mut ledger)) = data.get(LEDGER_KEY).map(|text| Ledger::parse(text)) else { return false };
    let grace = crl_of(cm)
        .and_then(|(_, facts)| facts.next_update?.duration_since(facts.this_update).ok())
        .unwrap_or(super::MAX_CRL_VALIDITY);
    ledger.expire(now, grace);
    ledger.entries.is_empty()
}

/// The ledger of an existing ConfigMap, if it is this issuer's.
fn read_ledger<T>(target: &CrlIssuer<'_, T>, cm: &ConfigMap, name: &str) -> Result<Ledger, PublishError> {
    let namespace = target.store_namespace;
    let annotations = cm.metadata.annotations.clone().unwrap_or_default();
    let kind = target.kinds.kind(target.issuer.scope);
    let issuer_namespace = (target.issuer.scope == IssuerScope::Namespaced).then_some(target.issuer.secret_namespace);
    let ours = annotations.get(&kind_annotation(target.kinds)).map(String::as_str) == Some(kind)
        && annotations.get(&name_annotation(target.kinds)).map(String::as_str) == Some(target.issuer.name)
        && annotations.get(&namespace_annotation(target.kinds)).map(String::as_str) == issuer_namespace;
    if !ours {
        return Err(PublishError::Broken {
            reason: reasons::CONFIG_MAP_CONFLICT,
            message: format!(
                "ConfigMap {namespace}/{name} exists and is not the ledger of {kind} {}: it is left alone; move it away",
                target.issuer.name
            ),
        });
    }
    let text = cm.data.as_ref().and_then(|d| d.get(LEDGER_KEY)).ok_or_else(|| PublishError::Broken {
        reason: reasons::LEDGER_UNREADABLE,
        message: format!("ConfigMap {namespace}/{name} has no `{LEDGER_KEY}` key; it is not overwritten, as that could un-revoke certificates"),
    })?;
    Ledger::parse(text).map_err(|e| PublishError::Broken {
        reason: reasons::LEDGER_UNREADABLE,
        message: format!(
            "the ledger in ConfigMap {namespace}/{name} does not read ({e}); it is not overwritten, as that could un-revoke certificates: repair it"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger_map(ledger: &str) -> ConfigMap {
        ConfigMap { data: Some(BTreeMap::from([(LEDGER_KEY.to_owned(), ledger.to_owned())])), ..Default::default() }
    }

    /// A ledger is spent once every entry is past its certificate's expiry and the grace (the
    /// longest validity when there is no CRL to read it from); one that does not read never is.
    #[test]
    fn spent_ledgers() {
        let year = super::super::MAX_CRL_VALIDITY.as_secs();
        let now = super::super::from_unix(10 * year);
        let entry_expiring = |not_after: u64| format!("ferrum-ledger v1\nnumber 1\n01 1 1 {not_after} ns a\n");
        assert!(spent(&ledger_map("ferrum-ledger v1\nnumber 1\n"), now), "no entries");
        assert!(spent(&ledger_map(&entry_expiring(9 * year - 1)), now), "expired more than the grace ago");
        assert!(!spent(&ledger_map(&entry_expiring(9 * year + 1)), now), "still within the grace");
        assert!(!spent(&ledger_map("garbage"), now), "unreadable: kept");
        assert!(!spent(&ConfigMap::default(), now), "no ledger: kept");
    }
}
