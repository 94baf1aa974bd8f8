//! A panic in any handler becomes the API's JSON 500 (`internal`), not a
//! dropped connection.
//!
//! Without this, hyper drops the connection of a request whose handler
//! panics: the client sees a reset, cannot tell it from a network fault, and
//! retries a request that may have had effects. With it, the answer is the
//! same `{"error": {"code": "internal", ...}}` as any other internal failure
//! (and passes through the other layers, so it is `no-store` too).
//!
//! The panic's payload is not logged here: it is free text from whatever
//! panicked and may hold a value. Rust's panic hook has already written the
//! location to stderr.

use std::any::Any;

use axum::response::{IntoResponse as _, Response};
use tower_http::catch_panic::CatchPanicLayer;

use super::error::ApiError;

/// The function [`layer`] answers a panic with.
pub type PanicResponder = fn(Box<dyn Any + Send + 'static>) -> Response;

/// The layer the router is wrapped in.
pub fn layer() -> CatchPanicLayer<PanicResponder> {
    CatchPanicLayer::custom(internal_error as PanicResponder)
}

fn internal_error(_payload: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked; answered 500");
    ApiError::internal().into_response()
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;

    async fn boom() -> &'static str {
        panic!("handler bug")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_the_json_500_on_a_live_connection() {
        let app = super::super::layered(
            Router::new()
                .route("/boom", get(boom))
                .route("/fine", get(|| async { "ok" })),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let _ = rustls::crypto::ring::default_provider().install_default();
        // One connection for both requests: the panic must not close it.
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let r = client
            .get(format!("http://{addr}/boom"))
            .send()
            .await
            .expect("an answer, not a dropped connection");
        assert_eq!(r.status(), 500);
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers()["content-type"], "application/json");
        let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "internal", "message": "internal server error"}})
        );
        let r = client
            .get(format!("http://{addr}/fine"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "ok");
    }
}
