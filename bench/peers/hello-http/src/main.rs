//! examples/hello behind `wasmtime serve`: a JSON body `{"name":"Ada"}` in,
//! `{"greeting":"Hello, Ada!"}` out, one log line to stderr — the same work
//! the Airlock step does for its HTTP trigger (parse the body, trim and check
//! the name, log, serialise the output), so a benchmark of the two servers
//! compares what each does around the guest.

use serde::{Deserialize, Serialize};
use wstd::http::{Body, Error, Request, Response, StatusCode};

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Serialize)]
struct Output {
    greeting: String,
}

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    let mut body = request.into_body();
    let named: Named = match serde_json::from_slice(body.contents().await?) {
        Ok(n) => n,
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                format!("{{\"error\":{:?}}}", e.to_string()),
            );
        }
    };
    let name = named.name.trim();
    if name.is_empty() {
        return reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"error":"`name` must not be empty"}"#.to_owned(),
        );
    }
    eprintln!("[INFO] greeting {name}");
    let out = serde_json::to_string(&Output {
        greeting: format!("Hello, {name}!"),
    })?;
    reply(StatusCode::OK, out)
}

fn reply(status: StatusCode, json: String) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(json))?)
}
