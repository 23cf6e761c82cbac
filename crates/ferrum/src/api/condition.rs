//! The condition type shared by CertificateRequests and issuers, and the rules for changing one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::lenient::{Fields, any_value};

/// One status condition, as cert-manager and Ferrum's issuers spell it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason, CamelCase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// The `metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The status of a condition, typed.
/// Read field by field: a field that does not fit (a `lastTransitionTime` in a format the
/// apiserver accepts but `Time` does not, a number where a string belongs) reads as absent, so
/// one odd condition never fails a watch.
impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::read(any_value(d)?))
    }
}

impl Condition {
    /// Reads a condition from any JSON value, never failing.
    pub(crate) fn read(value: Option<serde_json::Value>) -> Self {
        let mut f = Fields::new("condition", value);
        Condition {
            type_: f.take("type").unwrap_or_default(),
            status: f.take("status").unwrap_or_default(),
            reason: f.take("reason"),
            message: f.take("message"),
            last_transition_time: f.take("lastTransitionTime"),
            observed_generation: f.take("observedGeneration"),
        }
    }

    /// Reads a list of conditions from any JSON value: elements that are not objects are
    /// skipped; a value that is not a list reads as empty.
    pub(crate) fn read_list(value: Option<serde_json::Value>) -> Vec<Self> {
        match value {
            Some(serde_json::Value::Array(items)) => {
                items.into_iter().filter(serde_json::Value::is_object).map(|v| Self::read(Some(v))).collect()
            }
            _ => Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    /// `True`.
    True,
    /// `False`.
    False,
    /// `Unknown`.
    Unknown,
}

impl ConditionStatus {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

impl Condition {
    /// Builds the condition `desired` would be once written over `previous`:
    /// `lastTransitionTime` moves only when the status flips.
    pub fn transition(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
        observed_generation: Option<i64>,
        previous: Option<&Condition>,
        now: Time,
    ) -> Condition {
        let last_transition_time = match previous {
            Some(p) if p.status == status.as_str() && p.last_transition_time.is_some() => {
                p.last_transition_time.clone()
            }
            _ => Some(now),
        };
        Condition {
            type_: type_.to_owned(),
            status: status.as_str().to_owned(),
            reason: Some(reason.to_owned()),
            message: Some(message.into()),
            last_transition_time,
            observed_generation,
        }
    }

    /// Whether two conditions say the same thing (ignoring `lastTransitionTime`).
    pub fn same_meaning(&self, other: &Condition) -> bool {
        self.type_ == other.type_
            && self.status == other.status
            && self.reason == other.reason
            && self.message == other.message
            && self.observed_generation == other.observed_generation
    }

    /// Whether the status is `True`.
    pub fn is_true(&self) -> bool {
        self.status == ConditionStatus::True.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn odd_fields_read_as_absent() {
        let c: Condition = serde_json::from_value(serde_json::json!({
            "type": "Approved", "status": "True", "reason": 7,
            "lastTransitionTime": "2026-11-30T10:00:00x5+99:00", "observedGeneration": "x"
        }))
        .unwrap();
        assert_eq!((c.type_.as_str(), c.status.as_str()), ("Approved", "True"));
        assert_eq!((c.reason, c.last_transition_time, c.observed_generation), (None, None, None));
        let list = Condition::read_list(Some(serde_json::json!([1, {"type": "Ready", "status": "False"}])));
        assert_eq!(list.len(), 1);
        assert!(Condition::read_list(Some(serde_json::json!("x"))).is_empty());
    }

    #[test]
    fn transition_time_kept_when_status_unchanged() {
        let first = Condition::transition("Ready", ConditionStatus::False, "Pending", "a", None, None, at(10));
        let second = Condition::transition("Ready", ConditionStatus::False, "Pending", "b", None, Some(&first), at(20));
        assert_eq!(second.last_transition_time, Some(at(10)));
        assert_eq!(second.message.as_deref(), Some("b"));
    }

    #[test]
    fn transition_time_moves_when_status_flips() {
        let first = Condition::transition("Ready", ConditionStatus::False, "Pending", "a", None, None, at(10));
        let second = Condition::transition("Ready", ConditionStatus::True, "Issued", "ok", None, Some(&first), at(20));
        assert_eq!(second.last_transition_time, Some(at(20)));
    }

    #[test]
    fn same_meaning_ignores_time_only() {
        let a = Condition::transition("Ready", ConditionStatus::True, "Checked", "ok", Some(1), None, at(1));
        let mut b = a.clone();
        b.last_transition_time = Some(at(2));
        assert!(a.same_meaning(&b));
        b.observed_generation = Some(2);
        assert!(!a.same_meaning(&b));
    }
}
