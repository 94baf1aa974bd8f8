//! Signs `payload` with HMAC-SHA256 keyed by the secret SIGNING_KEY. The key
//! stays in the host: the step holds only a handle (its manifest grants no
//! reveal).

use airlock_sdk::{Error, crypto, secrets};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    payload: String,
}

#[derive(Serialize)]
struct Output {
    algorithm: &'static str,
    signature: String,
}

fn run(input: Input) -> Result<Output, Error> {
    let key = secrets::get("SIGNING_KEY")?;
    let mac = crypto::hmac_sha256(&key, input.payload.as_bytes());
    Ok(Output {
        algorithm: "hmac-sha256",
        signature: crypto::to_hex(&mac),
    })
}

airlock_sdk::step!(run);

// Built as a binary only so Cargo names the component `<crate>.wasm` (library
// outputs get underscores). Airlock calls the `run` export; `main` never runs.
fn main() {}
