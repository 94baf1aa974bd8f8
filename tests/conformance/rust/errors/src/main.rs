//! Conformance case `errors`.

use airlock_sdk::Error;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Input {
    kind: String,
}

fn run(input: Input) -> Result<Value, Error> {
    match input.kind.as_str() {
        "plain" => Err(Error::new("plain failure")),
        "coded" => Err(Error::new("coded failure").with_code("conformance_coded")),
        "details" => Err(Error::new("failure with details")
            .with_code("conformance_details")
            .with_details(json!({"list": [1, "two", null], "flag": true}))),
        _ => Ok(json!({
            "text": "héllo ✓ 😀",
            "nested": {"list": [1, 2.5, true, null, {"deep": []}]},
            "empty": {},
        })),
    }
}

airlock_sdk::step!(run);

// A binary only so Cargo names the component `<case>.wasm`; `main` never runs.
fn main() {}
