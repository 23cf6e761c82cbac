//! The sessions of each token, read at scrape time.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::modules::Modules;

/// Labels of a token's series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    /// The module's path.
    module: String,
    /// The token's label.
    token: String,
}

/// `ferrum_pkcs11_sessions_open`, `ferrum_pkcs11_sessions_in_use` and
/// `ferrum_pkcs11_sessions_in_use_max` per token.
#[derive(Debug)]
pub(crate) struct SessionCollector {
    pub(crate) modules: Arc<Modules>,
}

impl Collector for SessionCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let families: [Family<TokenLabels, Gauge>; 3] = Default::default();
        for token in self.modules.tokens() {
            let labels = TokenLabels { module: token.module().display().to_string(), token: token.label().to_owned() };
            let (open, in_use, peak) = token.session_counts();
            for (family, value) in families.iter().zip([open, in_use, peak]) {
                family.get_or_create(&labels).set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
        let described = [
            ("ferrum_pkcs11_sessions_open", "PKCS#11 sessions open on the token"),
            ("ferrum_pkcs11_sessions_in_use", "PKCS#11 sessions signing (or checking) right now"),
            ("ferrum_pkcs11_sessions_in_use_max", "Most PKCS#11 sessions in use at once since the process started"),
        ];
        for ((name, help), family) in described.into_iter().zip(&families) {
            family.encode(encoder.encode_descriptor(name, help, None, family.metric_type())?)?;
        }
        Ok(())
    }
}
