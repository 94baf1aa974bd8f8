//! Makes the request its input describes and reports what came back, so
//! tests can drive every shape of `http.send`:
//! `{"method","url","headers":[[n,v]],"body","timeout_ms","log_response",
//!   "auth":{"account":"github"} | {"bearer":"SECRET"} | {"basic":["user","SECRET"]}
//!         | {"header":["x-api-key","SECRET"]} | {"query":["api_key","SECRET"]}
//!         | {"sigv4":{"key_id","secret","token"?,"region","service"}}
//!         | {"digest":["user","SECRET"]}}`
//! Output: `{"status","headers","body"}`; a failed request is an error
//! `{"message": <display>, "code": <kind>}`.
use airlock_sdk::http::{self, HttpError};
use airlock_sdk::{Error, log, secrets};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Input {
    #[serde(default = "get")]
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    log_response: bool,
    /// Also return the body reversed (a transform output masking cannot undo).
    #[serde(default)]
    reverse_body: bool,
    #[serde(default)]
    auth: Option<Auth>,
}

fn get() -> String {
    "GET".into()
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Auth {
    Account(String),
    Bearer(String),
    Basic(String, String),
    Header(String, String),
    Query(String, String),
    Sigv4(SigV4),
    Digest(String, String),
}

#[derive(Deserialize)]
struct SigV4 {
    key_id: String,
    secret: String,
    #[serde(default)]
    token: Option<String>,
    region: String,
    service: String,
}

fn kind(e: &HttpError) -> &'static str {
    match e {
        HttpError::Denied(_) => "denied",
        HttpError::InvalidRequest(_) => "invalid_request",
        HttpError::Timeout(_) => "timeout",
        HttpError::TooLarge(_) => "too_large",
        HttpError::ConnectionFailed(_) => "connection_failed",
        HttpError::CredentialUnusable(_) => "credential_unusable",
        HttpError::RateLimited(_) => "rate_limited",
        HttpError::Body(_) => "body",
    }
}

fn run(input: Input) -> Result<Value, Error> {
    let mut req = match input.method.as_str() {
        "POST" => http::post(input.url),
        "PUT" => http::put(input.url),
        "PATCH" => http::patch(input.url),
        "DELETE" => http::delete(input.url),
        _ => http::get(input.url),
    };
    for (n, v) in input.headers {
        req = req.header(n, v);
    }
    if let Some(b) = input.body {
        req = req.body(b.into_bytes());
    }
    if let Some(ms) = input.timeout_ms {
        req = req.timeout(std::time::Duration::from_millis(ms));
    }
    let secret;
    let result = match input.auth {
        None => req.send(),
        Some(Auth::Account(a)) => req.account(a).send(),
        Some(Auth::Bearer(name)) => {
            secret = secrets::get(&name)?;
            req.bearer(&secret).send()
        }
        Some(Auth::Basic(user, name)) => {
            secret = secrets::get(&name)?;
            req.basic(user, &secret).send()
        }
        Some(Auth::Header(h, name)) => {
            secret = secrets::get(&name)?;
            req.secret_header(h, &secret).send()
        }
        Some(Auth::Query(q, name)) => {
            secret = secrets::get(&name)?;
            req.secret_query(q, &secret).send()
        }
        Some(Auth::Sigv4(aws)) => {
            secret = secrets::get(&aws.secret)?;
            let token = aws.token.as_deref().map(secrets::get).transpose()?;
            let mut sig = http::AwsSigV4::new(&aws.key_id, &secret, &aws.region, &aws.service);
            if let Some(t) = &token {
                sig = sig.session_token(t);
            }
            req.aws_sigv4(sig).send()
        }
        Some(Auth::Digest(user, name)) => {
            secret = secrets::get(&name)?;
            req.digest(user, &secret).send()
        }
    };
    match result {
        Ok(r) => {
            if input.log_response {
                log::info(format!("upstream said: {}", r.text()));
                println!("headers: {:?}", r.headers());
            }
            let headers: serde_json::Map<String, Value> = r
                .headers()
                .iter()
                .map(|(n, v)| (n.clone(), Value::from(v.clone())))
                .collect();
            let reversed: String = if input.reverse_body {
                r.text().chars().rev().collect()
            } else {
                String::new()
            };
            Ok(
                json!({ "status": r.status(), "headers": headers, "body": r.text(), "reversed": reversed }),
            )
        }
        Err(e) => Err(Error::new(e.to_string()).with_code(kind(&e))),
    }
}

airlock_sdk::step!(run);
