//! A minimal upstream on loopback for the load benchmarks
//! (`scripts/serve-load.sh`, `scripts/bench-peers.sh`): every request gets
//! `200 {"ok":true}`, and `/sleep/{ms}` answers the same after `ms`
//! milliseconds (at most a minute) — the slow upstream that parks runs.
//! Prints `listening on http://ADDR` and serves until killed.

use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::routing::any;

const OK: ([(&str, &str); 1], &str) = ([("content-type", "application/json")], "{\"ok\":true}");

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route(
            "/sleep/{ms}",
            any(|Path(ms): Path<u64>| async move {
                tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
                OK
            }),
        )
        .fallback(any(|| async { OK }));
    axum::serve(listener, app).await.unwrap();
}
