//! The operator's own site, as Connect sees it, on loopback: the pages a
//! browser lands on after connecting (`/done`, `/failed`) and the receiver
//! of Connect's webhooks (`/hooks`). It can start on a port chosen before
//! (for "the receiver is down, then comes back") and be stopped again.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

/// One webhook as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub signature: String,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
}

#[derive(Default)]
pub struct Seen {
    pub deliveries: Mutex<Vec<Delivery>>,
    /// The query of every landing (`/done`, `/failed`), in order.
    pub landings: Mutex<Vec<(String, String)>>,
}

/// A running site; stops when dropped.
pub struct Site {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Site {
    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        origin(self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.seen.deliveries.lock().unwrap().clone()
    }

    pub fn landings(&self) -> Vec<(String, String)> {
        self.seen.landings.lock().unwrap().clone()
    }
}

pub fn origin(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// A loopback address nothing listens on yet (bound, then released).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Starts the site on `addr` (port 0 for any), recording into `seen`.
pub async fn start_at(addr: SocketAddr, seen: Arc<Seen>) -> Site {
    async fn landing(
        State((seen, page)): State<(Arc<Seen>, &'static str)>,
        RawQuery(q): RawQuery,
    ) -> Response {
        seen.landings
            .lock()
            .unwrap()
            .push((page.to_owned(), q.unwrap_or_default()));
        Html(format!(
            "<!doctype html><title>{page}</title><h1 id=\"landed\">{page}</h1>"
        ))
        .into_response()
    }
    async fn hook(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: String) -> StatusCode {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        seen.deliveries.lock().unwrap().push(Delivery {
            signature: h("airlock-signature"),
            event_id: h("airlock-event-id"),
            event_type: h("airlock-event-type"),
            body,
        });
        StatusCode::NO_CONTENT
    }
    let router = Router::new()
        .route("/done", get(landing).with_state((seen.clone(), "done")))
        .route("/failed", get(landing).with_state((seen.clone(), "failed")))
        .route("/hooks", post(hook).with_state(seen.clone()));
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Site {
        addr,
        seen,
        _shutdown: tx,
    }
}

/// A site on a fresh port.
pub async fn start() -> Site {
    start_at("127.0.0.1:0".parse().unwrap(), Arc::default()).await
}
