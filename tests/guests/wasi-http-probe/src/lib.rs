//! Makes the request its input describes with a standard client (`wstd`'s
//! `wasi:http` client, no Airlock HTTP API), and reports what came back,
//! so tests can drive `wasi:http/outgoing-handler`:
//! `{"method","url","headers":[[n,v]],"body","body_bytes": N,"log_response"}`
//! (`body_bytes` sends N bytes of `x`). Output: `{"status","headers","body"}`;
//! a failed request is an error `{"message": <display>, "code": "wasi_http"}`,
//! a header the client may not set `{"code": "header"}`.
//! With `"repeat": N` it sends N GETs to `url` one after another and returns
//! `{"nanos": [...]}`, each call timed inside the guest (the benchmark).
use airlock_sdk::{Error, log};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use wstd::http::{Body, Client, Request};

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
    body_bytes: Option<usize>,
    #[serde(default)]
    log_response: bool,
    #[serde(default)]
    repeat: Option<usize>,
}

fn get() -> String {
    "GET".into()
}

fn run(input: Input) -> Result<Value, Error> {
    match input.repeat {
        Some(n) => wstd::runtime::block_on(repeat(&input.url, n)),
        None => wstd::runtime::block_on(send(input)),
    }
}

async fn repeat(url: &str, n: usize) -> Result<Value, Error> {
    let client = Client::new();
    let mut nanos = Vec::with_capacity(n);
    for _ in 0..n {
        let started = std::time::Instant::now();
        let request = Request::get(url)
            .body(Body::empty())
            .map_err(|e| Error::new(e.to_string()))?;
        let response = client
            .send(request)
            .await
            .map_err(|e| Error::new(format!("{e:#}")))?;
        let status = response.status().as_u16();
        response
            .into_body()
            .contents()
            .await
            .map_err(|e| Error::new(format!("{e:#}")))?;
        nanos.push(started.elapsed().as_nanos() as u64);
        if status != 200 {
            return Err(Error::new(format!("status {status}")));
        }
    }
    Ok(json!({ "nanos": nanos }))
}

async fn send(input: Input) -> Result<Value, Error> {
    let mut builder = Request::builder()
        .method(input.method.as_str())
        .uri(input.url.as_str());
    for (name, value) in &input.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = match (input.body, input.body_bytes) {
        (_, Some(n)) => Body::from(vec![b'x'; n]),
        (Some(text), None) => Body::from(text),
        (None, None) => Body::empty(),
    };
    let request = builder
        .body(body)
        .map_err(|e| Error::new(format!("bad request: {e}")).with_code("build"))?;
    let response = match Client::new().send(request).await {
        Ok(r) => r,
        Err(e) => {
            // A header the host forbids is refused when the client builds
            // the request's fields, before anything is sent.
            let code = if e.downcast_ref::<wstd::http::error::HeaderError>().is_some() {
                "header"
            } else {
                "wasi_http"
            };
            return Err(Error::new(format!("{e:#}")).with_code(code));
        }
    };
    let status = response.status().as_u16();
    let mut headers = Map::new();
    for (name, value) in response.headers() {
        headers.insert(
            name.as_str().to_string(),
            Value::from(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        );
    }
    let mut body = response.into_body();
    let bytes = body
        .contents()
        .await
        .map_err(|e| Error::new(format!("reading the body: {e:#}")).with_code("body"))?;
    let text = String::from_utf8_lossy(bytes).into_owned();
    if input.log_response {
        log::info(format!("upstream said: {text}"));
    }
    Ok(json!({"status": status, "headers": headers, "body": text, "body_len": bytes.len()}))
}

airlock_sdk::step!(run);
