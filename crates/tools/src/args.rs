//! Argument checking shared by the tools: unknown keys and wrong types are
//! errors that name the key and the expected type, so the model can fix its call.

use serde_json::{Map, Value};

/// A tool's arguments object, checked against its list of known keys.
pub struct Args<'a> {
    tool: &'a str,
    map: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    /// # Errors
    /// When `v` is not an object or has a key outside `known`.
    pub fn new(tool: &'a str, v: &'a Value, known: &[&str]) -> Result<Args<'a>, String> {
        let Some(map) = v.as_object() else {
            return Err(format!(
                "{tool}: arguments must be a JSON object with the keys {}, got {v}",
                known.join(", ")
            ));
        };
        for k in map.keys() {
            if !known.contains(&k.as_str()) {
                return Err(format!(
                    "{tool}: unknown argument '{k}'; the arguments are {}",
                    known.join(", ")
                ));
            }
        }
        Ok(Args { tool, map })
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The key is present and not null.
    pub fn is_set(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The key holds a value that means "nothing": false, "", 0, [] or {}.
    pub fn is_neutral(&self, key: &str) -> bool {
        match self.get(key) {
            None => true,
            Some(Value::Bool(b)) => !b,
            Some(Value::String(s)) => s.trim().is_empty(),
            Some(Value::Number(n)) => n.as_f64() == Some(0.0),
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            Some(Value::Null) => true,
        }
    }

    /// # Errors
    /// Missing, null or not a string.
    pub fn string(&self, key: &str) -> Result<String, String> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(format!(
                "{}: argument '{key}' must be a string, got {v}",
                self.tool
            )),
            None => Err(format!(
                "{}: argument '{key}' is required (a string)",
                self.tool
            )),
        }
    }

    /// # Errors
    /// Not a string (null and missing are `None`).
    pub fn opt_string(&self, key: &str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(format!(
                "{}: argument '{key}' must be a string or null, got {v}",
                self.tool
            )),
        }
    }

    /// # Errors
    /// Not an integer in `[min, max]` (null and missing are `None`).
    pub fn opt_uint(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(format!(
                    "{}: argument '{key}' must be an integer from {min} to {max} or null, got {v}",
                    self.tool
                )),
            },
        }
    }

    /// # Errors
    /// Not a boolean (null and missing are `None`).
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(format!(
                "{}: argument '{key}' must be true, false or null, got {v}",
                self.tool
            )),
        }
    }
}
