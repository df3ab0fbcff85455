//! Query parameters, read by name; one that no endpoint knows is an error
//! that names it (a typo must not silently widen a report).

use crate::error::ApiError;
use std::collections::HashMap;

/// A caller's value in an error message: quoted, escaped, at most 64
/// characters.
fn shown(v: &str) -> String {
    format!("'{}'", netwho_model::text::visible_cut(v, 64))
}

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
        self.parse(k, |v| {
            v.parse::<T>().map_err(|e| {
                let shown = shown(v);
                match std::any::type_name::<T>() {
                    "u8" | "u16" | "u32" | "u64" | "usize" => {
                        format!("{shown} is not a whole number of 0 or more")
                    }
                    "i8" | "i16" | "i32" | "i64" | "isize" => {
                        format!("{shown} is not a whole number")
                    }
                    "f32" | "f64" => format!("{shown} is not a number"),
                    _ => format!("{shown}: {e}"),
                }
            })
        })
    }

    /// `true`, `1` or `yes` (and the flag given with no value) is true.
    pub fn flag(&self, k: &str) -> Result<bool, ApiError> {
        match self.map.get(k).map(String::as_str) {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("" | "true" | "1" | "yes") => Ok(true),
            Some(v) => Err(ApiError::bad(format!(
                "{k}: {} is not true or false",
                shown(v)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_value_is_quoted_escaped_and_cut() {
        let p = Params::new(
            [(
                "limit".to_string(),
                format!("-1\u{1b}[2J{}", "9".repeat(500)),
            )]
            .into(),
        );
        let m = p.value::<u32>("limit").unwrap_err().message;
        assert!(m.starts_with("limit: '-1\\u{1b}[2J999"), "{m}");
        assert!(m.ends_with("…' is not a whole number of 0 or more"), "{m}");
        assert!(m.len() < 200, "{m}");
        assert_eq!(
            Params::new([("limit".to_string(), "-1".to_string())].into())
                .value::<u32>("limit")
                .unwrap_err()
                .message,
            "limit: '-1' is not a whole number of 0 or more"
        );
    }

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
        assert_eq!(
            e.unwrap_err().message,
            "limit: 'x' is not a whole number of 0 or more"
        );
        assert!(p.flag("exclude_local").unwrap());
        assert!(!p.flag("absent").unwrap());
    }
}
