//! The conformance cases: `tests/conformance/cases/*.toml`, embedded so the
//! installed binary checks against the contract it implements.
//!
//! A case names a step by its file stem (`hello.wasm` is case `hello`),
//! the manifest and secrets it runs with, and one or more runs: an input
//! and exactly one of the output or the error expected, with the log
//! lines when the case declares them. Inputs and expectations are JSON
//! text, so `null` can be said; `$ECHO_URL` (inputs) is the runner's
//! loopback echo server and `$RUN_ID` (expectations) the run's id.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::manifest::Manifest;

/// Every case, by name, as shipped.
const SOURCES: &[(&str, &str)] = &[
    (
        "hello",
        include_str!("../../../../tests/conformance/cases/hello.toml"),
    ),
    (
        "logs",
        include_str!("../../../../tests/conformance/cases/logs.toml"),
    ),
    (
        "context",
        include_str!("../../../../tests/conformance/cases/context.toml"),
    ),
    (
        "errors",
        include_str!("../../../../tests/conformance/cases/errors.toml"),
    ),
    (
        "secrets",
        include_str!("../../../../tests/conformance/cases/secrets.toml"),
    ),
    (
        "hmac",
        include_str!("../../../../tests/conformance/cases/hmac.toml"),
    ),
    (
        "http",
        include_str!("../../../../tests/conformance/cases/http.toml"),
    ),
    (
        "signing",
        include_str!("../../../../tests/conformance/cases/signing.toml"),
    ),
];

/// The names of every shipped case, in order.
pub fn names() -> impl Iterator<Item = &'static str> {
    SOURCES.iter().map(|(name, _)| *name)
}

/// Why a shipped case file was refused (only a broken build of `airlock`;
/// a unit test parses every one).
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("conformance case {case}: {message}")]
    Invalid { case: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    description: String,
    manifest: String,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    run: Vec<RunFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile {
    input: String,
    #[serde(default)]
    external_user: Option<String>,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    logs: Option<Vec<String>>,
}

/// One case, checked: its manifest parses and every JSON text is JSON.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub description: String,
    pub manifest: Manifest,
    pub secrets: BTreeMap<String, String>,
    pub runs: Vec<Run>,
}

/// One run of a case and what it must give.
#[derive(Debug, Clone)]
pub struct Run {
    /// JSON text, with `$ECHO_URL` still in it.
    pub input: String,
    pub external_user: Option<String>,
    pub expect: Expect,
    /// `[SOURCE] text` lines, in order, when the case checks them.
    pub logs: Option<Vec<String>>,
}

/// The outcome a run must have: JSON text with `$RUN_ID` still in it.
#[derive(Debug, Clone)]
pub enum Expect {
    Output(String),
    Error(String),
}

impl Case {
    pub fn parse(name: &str, text: &str) -> Result<Case, CaseError> {
        let invalid = |message: String| CaseError::Invalid {
            case: name.to_string(),
            message,
        };
        let file: CaseFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let manifest = Manifest::parse(&file.manifest).map_err(|e| invalid(e.to_string()))?;
        if manifest.name != name {
            return Err(invalid(format!(
                "the manifest names the step {:?}; a case's step is named after the case",
                manifest.name
            )));
        }
        if file.run.is_empty() {
            return Err(invalid("no [[run]]".into()));
        }
        let json = |what: &str, i: usize, text: &str| {
            // Placeholders are strings inside the JSON, so it parses as is.
            serde_json::from_str::<Value>(text)
                .map(|_| ())
                .map_err(|e| invalid(format!("run {}: `{what}` is not JSON: {e}", i + 1)))
        };
        let mut runs = Vec::with_capacity(file.run.len());
        for (i, r) in file.run.into_iter().enumerate() {
            json("input", i, &r.input)?;
            let expect = match (r.output, r.error) {
                (Some(o), None) => {
                    json("output", i, &o)?;
                    Expect::Output(o)
                }
                (None, Some(e)) => {
                    json("error", i, &e)?;
                    Expect::Error(e)
                }
                _ => {
                    return Err(invalid(format!(
                        "run {}: give exactly one of `output` and `error`",
                        i + 1
                    )));
                }
            };
            runs.push(Run {
                input: r.input,
                external_user: r.external_user,
                expect,
                logs: r.logs,
            });
        }
        Ok(Case {
            name: name.to_string(),
            description: file.description,
            manifest,
            secrets: file.secrets,
            runs,
        })
    }
}

/// Every shipped case, parsed.
pub fn shipped() -> Result<Vec<Case>, CaseError> {
    SOURCES
        .iter()
        .map(|(name, text)| Case::parse(name, text))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_case_parses() {
        let cases = shipped().unwrap();
        assert_eq!(cases.len(), SOURCES.len());
    }

    #[test]
    fn every_case_file_is_embedded() {
        // A case file added to the directory but not to SOURCES would never run.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/conformance/cases");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = names().map(String::from).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn a_run_with_both_output_and_error_is_refused() {
        let text = "description = \"x\"\nmanifest = 'name = \"x\"'\n[[run]]\ninput = '{}'\n\
                    output = '1'\nerror = '{\"message\": \"m\"}'\n";
        let e = Case::parse("x", text).unwrap_err().to_string();
        assert!(e.contains("exactly one of `output` and `error`"), "{e}");
    }

    #[test]
    fn a_manifest_named_after_another_case_is_refused() {
        let text =
            "description = \"x\"\nmanifest = 'name = \"y\"'\n[[run]]\ninput = '{}'\noutput = '1'\n";
        let e = Case::parse("x", text).unwrap_err().to_string();
        assert!(e.contains("named after the case"), "{e}");
    }
}
