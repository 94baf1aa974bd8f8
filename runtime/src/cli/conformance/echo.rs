//! The loopback echo server the `http` case calls: every request is
//! answered 200 with a JSON description of it (method, path, query, the
//! `authorization`, `x-conformance` and `content-type` headers, the JSON
//! body). Credentials the host inserted reach it in clear and come back to
//! the step masked, which the case's expectation shows.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Json;
use serde_json::{Value, json};

/// A request body larger than this is described as `"too large"`; the
/// cases send a few bytes.
const MAX_BODY: usize = 64 * 1024;

/// The bound address; the server runs until the process ends.
pub async fn start() -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let app = Router::new().fallback(echo);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Json<Value> {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .unwrap_or(Value::Null)
    };
    let body = if body.is_empty() {
        Value::Null
    } else if body.len() > MAX_BODY {
        Value::String("too large".into())
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "authorization": header("authorization"),
        "x_conformance": header("x-conformance"),
        "content_type": header("content-type"),
        "body": body,
    }))
}
