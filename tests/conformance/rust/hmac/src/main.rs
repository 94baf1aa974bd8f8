//! Conformance case `hmac`.

use airlock_sdk::crypto::{hmac_sha1, hmac_sha256, hmac_sha512, to_hex};
use airlock_sdk::{Error, secrets};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Input {
    payload: String,
}

fn run(input: Input) -> Result<Value, Error> {
    let key = secrets::get("SIGNING_KEY")?;
    let data = input.payload.as_bytes();
    Ok(json!({
        "sha256": to_hex(&hmac_sha256(&key, data)),
        "sha512": to_hex(&hmac_sha512(&key, data)),
        "sha1": to_hex(&hmac_sha1(&key, data)),
    }))
}

airlock_sdk::step!(run);

// A binary only so Cargo names the component `<case>.wasm`; `main` never runs.
fn main() {}
