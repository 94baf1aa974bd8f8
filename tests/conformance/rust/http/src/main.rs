//! Conformance case `http`.

use airlock_sdk::http::{self, HttpError};
use airlock_sdk::{Error, secrets};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Input {
    url: String,
}

fn kind(r: Result<http::Response, HttpError>) -> &'static str {
    match r {
        Ok(_) => "sent",
        Err(HttpError::Denied(_)) => "denied",
        Err(HttpError::InvalidRequest(_)) => "invalid_request",
        Err(HttpError::Timeout(_)) => "timeout",
        Err(HttpError::TooLarge(_)) => "too_large",
        Err(HttpError::ConnectionFailed(_)) => "connection_failed",
        Err(HttpError::CredentialUnusable(_)) => "credential_unusable",
        Err(HttpError::RateLimited(_)) => "rate_limited",
        Err(HttpError::Body(_)) => "body",
    }
}

fn run(input: Input) -> Result<Value, Error> {
    let key = secrets::get("API_KEY")?;
    let bearer = http::post(format!("{}/items?x=1", input.url))
        .bearer(&key)
        .header("x-conformance", "yes")
        .json(&json!({"name": "widget", "n": 3}))
        .send()?;
    let account = http::get("/whoami").account("conformance-echo").send()?;
    Ok(json!({
        "bearer": {
            "status": bearer.status(),
            "content_type": bearer.header("content-type"),
            "echo": bearer.json::<Value>()?,
        },
        "account": account.json::<Value>()?,
        "denied": kind(http::get("https://denied.invalid/").send()),
        "restricted": kind(http::get(&input.url).header("authorization", "Bearer mine").send()),
    }))
}

airlock_sdk::step!(run);

// A binary only so Cargo names the component `<case>.wasm`; `main` never runs.
fn main() {}
