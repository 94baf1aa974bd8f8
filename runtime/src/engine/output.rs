//! What a step returns, checked and masked by what it *means*.
//!
//! Why parse before masking: the host interprets a step's output as JSON
//! (the server embeds it in answers and records, clients parse it), and in
//! JSON `"\u0073ecret"` *is* `"secret"`. Masking the text alone would pass
//! an escaped value that every reader then decodes. So the output is parsed
//! once, every string, key and number is masked as the value it decodes
//! to, and the result is serialised again — only when something was masked;
//! untouched output keeps its exact text (number formatting, key order).
//! The error a step returns is handled the same way: its `message`, `code`
//! and `details` (the SDKs' error shape) are taken apart, each masked.
//!
//! Nesting is bounded by serde_json's recursion limit (128 levels): deeper
//! output is refused as invalid, never handed to code that recurses over it.

use std::borrow::Cow;

use airlock_host_api::redact::Redactor;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::run::{LimitKind, RunFailure};

/// How deep a step's output or error details may nest (serde_json's limit).
pub const MAX_NESTING: usize = 128;

/// The error a step returned: its own message, and the `code` and `details`
/// it gave (the SDKs send `{"message", "code"?, "details"?}`; any other text
/// is the message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepError {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// `"retryable": true` asks a queued run's retry policy to try again.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub retryable: Option<bool>,
    /// `"retry_after_ms"`: the least delay before that retry.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient"
    )]
    pub retry_after_ms: Option<u64>,
}

/// A retry hint of the wrong type is ignored rather than turning the whole
/// error into its text.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = Value::deserialize(d)?;
    Ok(serde_json::from_value(value).ok())
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(code) = &self.code {
            write!(f, " (code {code})")?;
        }
        Ok(())
    }
}

/// The step's output, within `cap` bytes, valid JSON, masked.
pub(crate) fn output(text: String, cap: usize, redactor: &Redactor) -> Result<String, RunFailure> {
    if text.len() > cap {
        return Err(RunFailure::Limit {
            kind: LimitKind::Output,
            detail: format!(
                "the step returned {} bytes of output, over the cap of {cap} bytes",
                text.len()
            ),
        });
    }
    let mut value: Value = serde_json::from_str(&text).map_err(invalid_json)?;
    if !mask_value(&mut value, redactor) {
        return Ok(text);
    }
    // Serialising a `Value` cannot fail: its keys are strings.
    Ok(serde_json::to_string(&value).expect("a JSON value serializes"))
}

/// The step's error, within `cap` bytes, taken apart and masked.
pub(crate) fn step_error(text: String, cap: usize, redactor: &Redactor) -> RunFailure {
    if text.len() > cap {
        return RunFailure::Limit {
            kind: LimitKind::Output,
            detail: format!(
                "the step returned an error of {} bytes, over the cap of {cap} bytes",
                text.len()
            ),
        };
    }
    let mut error = match serde_json::from_str::<StepError>(&text) {
        Ok(e) => e,
        Err(_) => StepError {
            message: text,
            code: None,
            details: None,
            retryable: None,
            retry_after_ms: None,
        },
    };
    mask_string(&mut error.message, redactor);
    if let Some(code) = &mut error.code {
        mask_string(code, redactor);
    }
    if let Some(details) = &mut error.details {
        mask_value(details, redactor);
    }
    RunFailure::StepError(error)
}

fn invalid_json(e: serde_json::Error) -> RunFailure {
    // serde_json's message names the position, never the content.
    if e.to_string().starts_with("recursion limit exceeded") {
        return RunFailure::InvalidOutput(format!(
            "the output is nested more than {MAX_NESTING} levels deep"
        ));
    }
    RunFailure::InvalidOutput(e.to_string())
}

/// Masks `s` in place; true when anything was masked.
fn mask_string(s: &mut String, redactor: &Redactor) -> bool {
    match redactor.redact(s) {
        Cow::Borrowed(_) => false,
        Cow::Owned(masked) => {
            *s = masked;
            true
        }
    }
}

/// Masks every string, key and number of `value` in place; true when
/// anything was masked. A number whose digits hold a value becomes the
/// marker string. Recursion is bounded: parsed values nest at most
/// [`MAX_NESTING`] levels.
fn mask_value(value: &mut Value, redactor: &Redactor) -> bool {
    match value {
        Value::String(s) => mask_string(s, redactor),
        Value::Number(n) => {
            let text = n.to_string();
            match redactor.redact(&text) {
                Cow::Borrowed(_) => false,
                Cow::Owned(masked) => {
                    *value = Value::String(masked);
                    true
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, v| mask_value(v, redactor) | changed),
        Value::Object(map) => {
            let mut changed = false;
            let masked_keys: Vec<(String, String)> = map
                .keys()
                .filter_map(|k| match redactor.redact(k) {
                    Cow::Borrowed(_) => None,
                    Cow::Owned(m) => Some((k.clone(), m)),
                })
                .collect();
            for (key, masked) in masked_keys {
                if let Some(v) = map.remove(&key) {
                    map.insert(unused_key(map, masked), v);
                    changed = true;
                }
            }
            for v in map.values_mut() {
                changed |= mask_value(v, redactor);
            }
            changed
        }
        Value::Null | Value::Bool(_) => false,
    }
}

/// `key`, or `key#2`, `key#3`… when two masked keys would collide, so no
/// member is lost.
fn unused_key(map: &serde_json::Map<String, Value>, key: String) -> String {
    if !map.contains_key(&key) {
        return key;
    }
    (2..)
        .map(|n| format!("{key}#{n}"))
        .find(|k| !map.contains_key(k))
        .expect("some suffix is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk_live_abcdef123";

    fn redactor() -> Redactor {
        let r = Redactor::new();
        assert!(r.register("TOKEN", SECRET));
        r.register("PIN", "98765432");
        r
    }

    fn masked(text: &str) -> Result<String, RunFailure> {
        output(text.to_string(), 1 << 20, &redactor())
    }

    #[test]
    fn a_value_escaped_in_json_is_masked_as_what_it_means() {
        let text = r#"{"v":"\u0073k_live_abcdef123","\u0073k_live_abcdef123":1,"n":98765432}"#;
        let out = masked(text).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["v"], "[REDACTED:TOKEN]");
        assert_eq!(v["[REDACTED:TOKEN]"], 1);
        assert_eq!(v["n"], "[REDACTED:PIN]");
        assert!(!out.contains("abcdef"), "{out}");
    }

    #[test]
    fn untouched_output_keeps_its_exact_text() {
        let text = r#"{"z": 1.50, "a": [1e3, "ok"]}"#;
        assert_eq!(masked(text).unwrap(), text);
    }

    #[test]
    fn deep_nesting_is_invalid_output_naming_the_limit() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = masked(&deep).unwrap_err();
        assert_eq!(
            e,
            RunFailure::InvalidOutput("the output is nested more than 128 levels deep".into())
        );
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        masked(&ok).unwrap();
    }

    #[test]
    fn colliding_masked_keys_keep_every_member() {
        let text = format!(r#"{{"{SECRET}":1,"\u0073k_live_abcdef123":2}}"#);
        // Duplicate keys: serde_json keeps the last one.
        let out = masked(&text).unwrap();
        assert!(!out.contains("abcdef"), "{out}");
        let text = format!(r#"{{"{SECRET}":1,"[REDACTED:TOKEN]":2}}"#);
        let v: Value = serde_json::from_str(&masked(&text).unwrap()).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    }

    #[test]
    fn a_step_error_is_taken_apart_and_masked() {
        let text = r#"{"message":"bad \u0073k_live_abcdef123","code":"auth","details":{"k":"\u0073k_live_abcdef123"}}"#;
        let RunFailure::StepError(e) = step_error(text.into(), 1 << 20, &redactor()) else {
            panic!()
        };
        assert_eq!(e.message, "bad [REDACTED:TOKEN]");
        assert_eq!(e.code.as_deref(), Some("auth"));
        assert_eq!(e.details.unwrap()["k"], "[REDACTED:TOKEN]");
        let RunFailure::StepError(e) = step_error(format!("plain {SECRET}"), 1 << 20, &redactor())
        else {
            panic!()
        };
        assert_eq!(e.message, "plain [REDACTED:TOKEN]");
        assert_eq!(e.code, None);
    }

    #[test]
    fn an_oversized_error_is_an_output_limit() {
        assert_eq!(
            step_error("x".repeat(11), 10, &redactor()),
            RunFailure::Limit {
                kind: LimitKind::Output,
                detail: "the step returned an error of 11 bytes, over the cap of 10 bytes".into()
            }
        );
    }
}
