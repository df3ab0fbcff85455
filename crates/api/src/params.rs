//! Query parameters, read by name; one that no endpoint knows is an error
//! that names it (a typo must not silently widen a report).

use crate::error::ApiError;
use std::collections::HashMap;

#[derive(Debug)]
pub struct Params {
    map: HashMap<String, String>,
}

impl Params {
    pub fn new(map: HashMap<String, String>) -> Params {
        Params { map }
    }

    /// Every parameter is one of `known`.
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        let mut bad: Vec<&str> = self
            .map
            .keys()
            .map(String::as_str)
            .filter(|k| !known.contains(k))
            .collect();
        bad.sort_unstable();
        match bad.first() {
            None => Ok(()),
            Some(k) => Err(ApiError::bad(format!(
                "unknown parameter '{k}': this endpoint takes {}",
                known.join(", ")
            ))),
        }
    }

    /// A parameter's text; empty counts as absent.
    pub fn str(&self, k: &str) -> Option<&str> {
        self.map
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A parameter parsed by `f`, whose error is shown with the name.
    pub fn parse<T>(
        &self,
        k: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ApiError> {
        match self.str(k) {
            None => Ok(None),
            Some(v) => f(v)
                .map(Some)
                .map_err(|e| ApiError::bad(format!("{k}: {e}"))),
        }
    }

    /// A parameter read by its type's `FromStr` (numbers, addresses).
    pub fn value<T>(&self, k: &str) -> Result<Option<T>, ApiError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.parse(k, |v| v.parse::<T>().map_err(|e| e.to_string()))
    }

    /// `true`, `1` or `yes` (and the flag given with no value) is true.
    pub fn flag(&self, k: &str) -> Result<bool, ApiError> {
        match self.map.get(k).map(String::as_str) {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("" | "true" | "1" | "yes") => Ok(true),
            Some(v) => Err(ApiError::bad(format!("{k}: '{v}' is not true or false"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_malformed_parameters_are_named() {
        let p = Params::new(HashMap::from([
            ("limit".to_string(), "x".to_string()),
            ("exclude_local".to_string(), String::new()),
        ]));
        assert!(p.only(&["limit", "exclude_local"]).is_ok());
        let e = p.only(&["limit"]).unwrap_err();
        assert!(e.message.contains("'exclude_local'"), "{}", e.message);
        let e = p.value::<u32>("limit");
        assert!(e.unwrap_err().message.starts_with("limit: "));
        assert!(p.flag("exclude_local").unwrap());
        assert!(!p.flag("absent").unwrap());
    }
}
