//! Reading objects that the apiserver accepted but that may not fit our types.
//!
//! A watch or a list deserializes every object of a kind in one go: one object whose field
//! does not fit its Rust type fails the whole list, and a controller that cannot list never
//! syncs. So every type read from a watch is read here field by field from a JSON value: a field
//! that does not fit is recorded as a problem (with its path and why) and the rest of the object
//! is still read. Deserialization of these types never fails.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The fields of one JSON object, taken one at a time, with the problems found on the way.
pub(crate) struct Fields {
    path: &'static str,
    map: Map<String, Value>,
    /// `path.field: why` for every field present that could not be read.
    pub(crate) problems: Vec<String>,
}

impl Fields {
    /// The object at `path`; a value that is not an object is a problem and reads as empty.
    pub(crate) fn new(path: &'static str, value: Option<Value>) -> Self {
        let mut problems = Vec::new();
        let map = match value {
            Some(Value::Object(map)) => map,
            None | Some(Value::Null) => Map::new(),
            Some(other) => {
                problems.push(format!("{path}: expected an object, found {}", kind(&other)));
                Map::new()
            }
        };
        Self { path, map, problems }
    }

    /// The raw value of `key`, unless absent or null.
    pub(crate) fn raw(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    /// `key` read as `T`; absent or null is `None`, a value that does not fit is a problem.
    pub(crate) fn take<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        let value = self.raw(key)?;
        let found = kind(&value);
        match serde_json::from_value(value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(key, format!("{e} (found {found})"));
                None
            }
        }
    }

    /// Records a problem with `key`.
    pub(crate) fn problem(&mut self, key: &str, why: impl std::fmt::Display) {
        self.problems.push(format!("{}.{key}: {why}", self.path));
    }
}

/// What a JSON value is, for messages (never its content).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Deserializes any JSON (or a missing field) as an optional value; never fails on valid JSON.
pub(crate) fn any_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Option::<Value>::deserialize(d)
}

/// An issuer's spec as read from the cluster: the backend's type, or why it does not fit it.
///
/// The library reads issuers of kinds whose spec type belongs to the backend author; a spec the
/// apiserver accepted but that type refuses (an integer out of range, a value a custom
/// deserializer rejects) must not stop the watch of every other issuer. It is kept as
/// [`Parsed::Invalid`] and the issuer is marked not Ready with the reason.
#[derive(Clone, Debug, PartialEq)]
pub enum Parsed<S> {
    /// The spec, read as the backend's type.
    Valid(S),
    /// Why the spec could not be read.
    Invalid(String),
}

impl<S> Parsed<S> {
    /// The spec, if it could be read.
    pub fn valid(&self) -> Option<&S> {
        match self {
            Parsed::Valid(spec) => Some(spec),
            Parsed::Invalid(_) => None,
        }
    }
}

impl<'de, S: DeserializeOwned> Deserialize<'de> for Parsed<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Some(value) = any_value(d)? else {
            return Ok(Parsed::Invalid("spec is missing".into()));
        };
        Ok(match serde_json::from_value(value) {
            Ok(spec) => Parsed::Valid(spec),
            Err(e) => Parsed::Invalid(format!("spec: {e}")),
        })
    }
}

impl<S: Serialize> Serialize for Parsed<S> {
    fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        match self {
            Parsed::Valid(spec) => spec.serialize(s),
            Parsed::Invalid(_) => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Spec {
        port: u16,
    }

    #[test]
    fn parsed_keeps_the_reason() {
        let ok: Parsed<Spec> = serde_json::from_value(json!({"port": 80})).unwrap();
        assert_eq!(ok, Parsed::Valid(Spec { port: 80 }));
        let bad: Parsed<Spec> = serde_json::from_value(json!({"port": 70000})).unwrap();
        let Parsed::Invalid(why) = bad else { panic!("out of range must be Invalid") };
        assert!(why.starts_with("spec: ") && why.contains("70000"), "{why}");
    }

    #[test]
    fn fields_record_problems_and_go_on() {
        let mut f = Fields::new("spec", Some(json!({"a": "x", "b": 3, "c": null})));
        assert_eq!(f.take::<String>("a").as_deref(), Some("x"));
        assert_eq!(f.take::<String>("b"), None);
        assert_eq!(f.take::<String>("c"), None);
        assert_eq!(f.take::<String>("missing"), None);
        assert_eq!(f.problems.len(), 1);
        assert!(f.problems[0].starts_with("spec.b: ") && f.problems[0].contains("found a number"), "{:?}", f.problems);
        let not_object = Fields::new("status", Some(json!([1])));
        assert_eq!(not_object.problems, ["status: expected an object, found an array"]);
    }
}
