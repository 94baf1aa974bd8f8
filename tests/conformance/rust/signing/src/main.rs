//! Conformance case `signing`.

use airlock_sdk::http::{self, HttpError};
use airlock_sdk::{Error, secrets};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Input {
    url: String,
}

/// The fixed parts of a SigV4 `authorization` value.
fn sigv4_parts(auth: &str) -> Value {
    let algorithm = auth.split(' ').next().unwrap_or_default();
    let between = |start: &str| {
        auth.split_once(start)
            .map(|(_, rest)| rest.split(',').next().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    let credential = between("Credential=");
    let parts: Vec<&str> = credential.split('/').collect();
    json!({
        "algorithm": algorithm,
        "key_id": parts.first().copied().unwrap_or_default(),
        "scope": parts.get(2..).map(|p| p.join("/")).unwrap_or_default(),
        "signed_headers": between("SignedHeaders="),
        "signature_length": between("Signature=").len(),
    })
}

fn run(input: Input) -> Result<Value, Error> {
    let key = secrets::get("AWS_KEY")?;
    let aws = || http::AwsSigV4::new("AKIDEXAMPLE", &key, "us-east-1", "s3");
    let signed = http::post(format!("{}/upload?b=2&a=1", input.url))
        .header("x-conformance", "yes")
        .json(&json!({"name": "widget"}))
        .aws_sigv4(aws())
        .send()?;
    let echo: Value = signed.json()?;
    let mut sigv4 = sigv4_parts(echo["authorization"].as_str().unwrap_or_default());
    sigv4["status"] = json!(signed.status());
    for field in ["method", "path", "query"] {
        sigv4[field] = echo[field].clone();
    }
    let pw = secrets::get("DIGEST_PW")?;
    let digest = http::get(format!("{}/legacy", input.url))
        .digest("user", &pw)
        .send()?;
    let reserved = match http::get(&input.url)
        .header("x-amz-date", "20150830T123600Z")
        .aws_sigv4(aws())
        .send()
    {
        Err(HttpError::InvalidRequest(_)) => "invalid_request",
        Err(_) => "other_error",
        Ok(_) => "sent",
    };
    Ok(json!({
        "sigv4": sigv4,
        "digest": {"status": digest.status(), "authorization": digest.json::<Value>()?["authorization"]},
        "reserved": reserved,
    }))
}

airlock_sdk::step!(run);

// A binary only so Cargo names the component `<case>.wasm`; `main` never runs.
fn main() {}
