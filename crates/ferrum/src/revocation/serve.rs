//! Serving CRLs: every replica (the leader and its followers) watches the ledger ConfigMaps
//! Ferrum writes (by label, in the cluster resource namespace only: tenants cannot write there)
//! and serves each issuer's current CRL, DER, as `application/pkix-crl`, at
//! [`super::crl_path`]. Only the DER of each CRL is kept. A ConfigMap names the issuer it
//! belongs to in annotations; if two claim the same issuer, the CRL with the higher number (then
//! the later thisUpdate) is served.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tracing::{debug, info, warn};

use super::publish::{crl_of, issuer_of};
use super::{crl_label, crl_path};
use crate::api::IssuerKinds;
use crate::metrics::IssuerLabels;
use crate::x509::CrlFacts;

/// One CRL being served.
#[derive(Clone, Debug)]
struct Served {
    /// The path it is served at.
    path: String,
    /// Kind, namespace (empty for a cluster issuer) and name of its issuer, for metrics.
    issuer: IssuerLabels,
    /// DER.
    der: Bytes,
    /// What it says about itself.
    facts: CrlFacts,
}

/// The CRLs this replica serves, by the ConfigMap (namespace, name) they came from.
#[derive(Clone, Debug, Default)]
pub struct CrlCache {
    crls: Arc<RwLock<HashMap<(String, String), Served>>>,
}

impl CrlCache {
    /// The CRL served at `path` (DER), if any.
    pub fn get(&self, path: &str) -> Option<Bytes> {
        let crls = self.crls.read().unwrap_or_else(|e| e.into_inner());
        crls.values()
            .filter(|s| s.path == path)
            .max_by_key(|s| (s.facts.number, s.facts.this_update))
            .map(|s| s.der.clone())
    }

    /// Serves `der` (a CRL) at `path`, as if a ConfigMap held it: for the CRL benchmark only.
    #[cfg(feature = "bench-internals")]
    #[doc(hidden)]
    pub fn insert_for_bench(&self, path: &str, der: Vec<u8>) -> Result<(), String> {
        let facts = CrlFacts::parse(&der)?;
        let issuer = IssuerLabels { kind: "bench".into(), namespace: String::new(), name: path.into() };
        let served = Served { path: path.to_owned(), issuer, der: Bytes::from(der), facts };
        self.put((String::new(), path.to_owned()), Some(served));
        Ok(())
    }

    fn put(&self, key: (String, String), served: Option<Served>) {
        let mut crls = self.crls.write().unwrap_or_else(|e| e.into_inner());
        match served {
            Some(served) => crls.insert(key, served),
            None => crls.remove(&key),
        };
    }

    fn replace(&self, all: HashMap<(String, String), Served>) {
        *self.crls.write().unwrap_or_else(|e| e.into_inner()) = all;
    }
}

/// What the CRL server watches and where it listens.
#[derive(Clone, Debug)]
pub struct CrlServerConfig {
    /// The kinds served.
    pub kinds: IssuerKinds,
    /// Where the ledger ConfigMaps are kept.
    pub cluster_resource_namespace: String,
    /// Where to listen.
    pub address: SocketAddr,
}

/// Starts watching CRL ConfigMaps and serving their CRLs; returns the address it listens on.
pub async fn serve(
    client: Client,
    config: CrlServerConfig,
    registry: &mut prometheus_client::registry::Registry,
) -> std::io::Result<SocketAddr> {
    let cache = CrlCache::default();
    registry.register_collector(Box::new(CrlCollector { cache: cache.clone() }));
    let address = listen(config.address, cache.clone()).await?;
    info!(crl = %address, "serving CRLs");
    let api: Api<ConfigMap> = Api::namespaced(client, &config.cluster_resource_namespace);
    tokio::spawn(watch(api, config, cache));
    Ok(address)
}

/// Serves the CRLs of `cache` on `address`; returns the address it listens on.
pub async fn listen(address: SocketAddr, cache: CrlCache) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let address = listener.local_addr()?;
    let app = Router::new().route("/{*path}", axum::routing::get(crl)).with_state(cache);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(address)
}

/// Keeps `cache` in step with the ledger ConfigMaps `api` sees.
async fn watch(api: Api<ConfigMap>, config: CrlServerConfig, cache: CrlCache) {
    let selector = format!("{}=true", crl_label(&config.kinds));
    let mut events = watcher(api, watcher::Config::default().labels(&selector)).default_backoff().boxed();
    let mut listing: Option<HashMap<(String, String), Served>> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => listing = Some(HashMap::new()),
            Ok(watcher::Event::InitApply(cm)) => {
                if let (Some(all), Some(key)) = (listing.as_mut(), key_of(&cm))
                    && let Some(served) = served(&config, &cm)
                {
                    all.insert(key, served);
                }
            }
            Ok(watcher::Event::InitDone) => cache.replace(listing.take().unwrap_or_default()),
            Ok(watcher::Event::Apply(cm)) => {
                if let Some(key) = key_of(&cm) {
                    cache.put(key, served(&config, &cm));
                }
            }
            Ok(watcher::Event::Delete(cm)) => {
                if let Some(key) = key_of(&cm) {
                    cache.put(key, None);
                }
            }
            Err(error) => warn!(%error, "CRL ConfigMap watch failed; retrying with backoff"),
        }
    }
}

fn key_of(cm: &ConfigMap) -> Option<(String, String)> {
    Some((cm.metadata.namespace.clone()?, cm.metadata.name.clone()?))
}

/// The CRL a ledger ConfigMap holds, and for which issuer.
fn served(config: &CrlServerConfig, cm: &ConfigMap) -> Option<Served> {
    if cm.metadata.namespace.as_deref() != Some(config.cluster_resource_namespace.as_str()) {
        return None;
    }
    let (scope, namespace, name) = issuer_of(&config.kinds, cm)?;
    let namespace = namespace.unwrap_or_default();
    let (der, facts) = crl_of(cm)?;
    debug!(?scope, %namespace, %name, entries = facts.entries, "CRL taken in");
    Some(Served {
        path: crl_path(&config.kinds, scope, &namespace, &name),
        issuer: IssuerLabels { kind: config.kinds.kind(scope).to_owned(), namespace, name },
        der: Bytes::from(der),
        facts,
    })
}

async fn crl(State(cache): State<CrlCache>, Path(path): Path<String>) -> Response {
    match cache.get(&format!("/{path}")) {
        Some(der) => ([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response(),
        None => (StatusCode::NOT_FOUND, "no CRL is published at this path\n").into_response(),
    }
}

/// `ferrum_crl_entries` and `ferrum_crl_age_seconds` for every CRL this replica serves.
#[derive(Debug)]
struct CrlCollector {
    cache: CrlCache,
}

impl Collector for CrlCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let entries: Family<IssuerLabels, Gauge> = Family::default();
        let age: Family<IssuerLabels, Gauge<f64, std::sync::atomic::AtomicU64>> = Family::default();
        let now = SystemTime::now();
        for served in self.cache.crls.read().unwrap_or_else(|e| e.into_inner()).values() {
            entries.get_or_create(&served.issuer).set(i64::try_from(served.facts.entries).unwrap_or(i64::MAX));
            let seconds = now.duration_since(served.facts.this_update).map_or(0.0, |d| d.as_secs_f64());
            age.get_or_create(&served.issuer).set(seconds);
        }
        let help = "Certificates listed on the issuer's CRL served by this replica";
        entries.encode(encoder.encode_descriptor("ferrum_crl_entries", help, None, entries.metric_type())?)?;
        let help = "Seconds since thisUpdate of the issuer's CRL served by this replica";
        age.encode(encoder.encode_descriptor("ferrum_crl_age_seconds", help, None, age.metric_type())?)?;
        Ok(())
    }
}
