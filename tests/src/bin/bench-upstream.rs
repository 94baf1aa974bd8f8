//! A minimal upstream on loopback for the load benchmarks
//! (`scripts/serve-load.sh`): every request gets `200 {"ok":true}`. Prints
//! `listening on http://ADDR` and serves until killed.

use axum::Router;
use axum::routing::any;

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(any(|| async {
        ([("content-type", "application/json")], "{\"ok\":true}")
    }));
    axum::serve(listener, app).await.unwrap();
}
