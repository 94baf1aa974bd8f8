//! Conformance case `secrets`.

use airlock_sdk::secrets::{self, SecretError};
use airlock_sdk::{Error, log};
use serde_json::{Value, json};

fn kind(e: SecretError) -> &'static str {
    match e {
        SecretError::NotGranted => "not_granted",
        SecretError::NotFound => "not_found",
        SecretError::RevealNotGranted => "reveal_not_granted",
    }
}

fn outcome<T>(r: Result<T, SecretError>) -> Value {
    match r {
        Ok(_) => Value::String("ok".into()),
        Err(e) => Value::String(kind(e).into()),
    }
}

fn run(_: Value) -> Result<Value, Error> {
    let token = secrets::get("TOKEN")?;
    let value = token.reveal()?;
    log::info(format!("revealed {value}"));
    let handle_only = secrets::get("HANDLE_ONLY")?;
    Ok(json!({
        "name": token.name(),
        "token": value,
        "handle_only": outcome(handle_only.reveal()),
        "missing": outcome(secrets::get("MISSING")),
        "ungranted": outcome(secrets::get("UNGRANTED")),
    }))
}

airlock_sdk::step!(run);

// A binary only so Cargo names the component `<case>.wasm`; `main` never runs.
fn main() {}
