//! Kubernetes label selectors, checked once and matched against a namespace's labels.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A requirement's operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// One requirement: matchLabels entries become `In` with one value.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

/// A checked label selector; all its requirements must hold. Empty: selects everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Checks `selector`; errors name the field under `path` (e.g.
    /// `spec.policy.namespaceSelector`).
    pub(super) fn compile(selector: &LabelSelector, path: &str) -> Result<Self, String> {
        let mut requirements: Vec<Requirement> = selector
            .match_labels
            .iter()
            .flatten()
            .map(|(key, value)| Requirement { key: key.clone(), operator: Operator::In, values: vec![value.clone()] })
            .collect();
        for (i, expression) in selector.match_expressions.iter().flatten().enumerate() {
            let at = format!("{path}.matchExpressions[{i}]");
            let operator = match expression.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(format!(
                        "{at}.operator: unknown operator {other:?}; the operators are In, NotIn, Exists and DoesNotExist"
                    ));
                }
            };
            let values = expression.values.clone().unwrap_or_default();
            match operator {
                Operator::In | Operator::NotIn if values.is_empty() => {
                    return Err(format!("{at}.values: {} needs at least one value", expression.operator));
                }
                Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                    return Err(format!("{at}.values: {} takes no values", expression.operator));
                }
                _ => {}
            }
            requirements.push(Requirement { key: expression.key.clone(), operator, values });
        }
        Ok(Self { requirements })
    }

    /// Whether a namespace with these labels is selected.
    pub(super) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.get(&r.key);
            match r.operator {
                Operator::In => value.is_some_and(|v| r.values.contains(v)),
                Operator::NotIn => value.is_none_or(|v| !r.values.contains(v)),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
            }
        })
    }
}

/// Kubernetes' string form: `team=a,env in (prod,staging),!legacy`.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.requirements.is_empty() {
            return f.write_str("everything");
        }
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match r.operator {
                Operator::In if r.values.len() == 1 => write!(f, "{}={}", r.key, r.values[0])?,
                Operator::In => write!(f, "{} in ({})", r.key, r.values.join(","))?,
                Operator::NotIn => write!(f, "{} notin ({})", r.key, r.values.join(","))?,
                Operator::Exists => f.write_str(&r.key)?,
                Operator::DoesNotExist => write!(f, "!{}", r.key)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn selector(value: serde_json::Value) -> LabelSelector {
        serde_json::from_value(value).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn expression(operator: &str, values: &[&str]) -> serde_json::Value {
        serde_json::json!({"matchExpressions": [{"key": "env", "operator": operator, "values": values}]})
    }

    #[test]
    fn matching() {
        let team_a = labels(&[("team", "a"), ("env", "prod")]);
        let team_b = labels(&[("team", "b")]);
        let none = labels(&[]);
        // (selector, matches team_a, matches team_b, matches none)
        let table = [
            (serde_json::json!({}), true, true, true),
            (serde_json::json!({"matchLabels": {"team": "a"}}), true, false, false),
            (serde_json::json!({"matchLabels": {"team": "a", "env": "dev"}}), false, false, false),
            (expression("In", &["prod", "staging"]), true, false, false),
            (expression("NotIn", &["prod"]), false, true, true),
            (expression("Exists", &[]), true, false, false),
            (expression("DoesNotExist", &[]), false, true, true),
            (
                serde_json::json!({"matchLabels": {"team": "b"}, "matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}),
                false,
                true,
                false,
            ),
        ];
        for (value, a, b, n) in table {
            let compiled = Selector::compile(&selector(value.clone()), "s").unwrap();
            assert_eq!(
                (compiled.matches(&team_a), compiled.matches(&team_b), compiled.matches(&none)),
                (a, b, n),
                "{value}"
            );
        }
    }

    #[test]
    fn refused_selectors() {
        let table = [
            (
                expression("Equals", &["prod"]),
                "s.matchExpressions[0].operator: unknown operator \"Equals\"; the operators are In, NotIn, Exists and DoesNotExist",
            ),
            (expression("In", &[]), "s.matchExpressions[0].values: In needs at least one value"),
            (
                serde_json::json!({"matchExpressions": [{"key": "env", "operator": "NotIn"}]}),
                "s.matchExpressions[0].values: NotIn needs at least one value",
            ),
            (expression("Exists", &["x"]), "s.matchExpressions[0].values: Exists takes no values"),
            (expression("DoesNotExist", &["x"]), "s.matchExpressions[0].values: DoesNotExist takes no values"),
        ];
        for (value, message) in table {
            assert_eq!(Selector::compile(&selector(value.clone()), "s").unwrap_err(), message, "{value}");
        }
    }

    #[test]
    fn string_form() {
        let s = LabelSelector {
            match_labels: Some(labels(&[("team", "a")])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "env".into(),
                    operator: "In".into(),
                    values: Some(vec!["prod".into(), "staging".into()]),
                },
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "NotIn".into(),
                    values: Some(vec!["x".into()]),
                },
                LabelSelectorRequirement { key: "owned".into(), operator: "Exists".into(), values: None },
                LabelSelectorRequirement {
                    key: "legacy".into(),
                    operator: "DoesNotExist".into(),
                    values: Some(vec![]),
                },
            ]),
        };
        assert_eq!(
            Selector::compile(&s, "s").unwrap().to_string(),
            "team=a,env in (prod,staging),tier notin (x),owned,!legacy"
        );
        assert_eq!(Selector::compile(&LabelSelector::default(), "s").unwrap().to_string(), "everything");
    }
}
