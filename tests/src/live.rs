//! What the live-log and callback tests share: a loopback gate a step's
//! HTTP call waits on until the test releases it, a receiver of run
//! callbacks that can fail its first deliveries, and a reader of the
//! server's Server-Sent Events.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use tokio::sync::watch;

/// Answers `GET /gate` only once released; `GET /ok` at once.
pub struct Gate {
    pub addr: SocketAddr,
    released: watch::Sender<bool>,
    /// Requests that reached the gate.
    pub arrived: Arc<AtomicUsize>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Gate {
    pub async fn start() -> Gate {
        async fn gate(
            State((mut rx, arrived)): State<(watch::Receiver<bool>, Arc<AtomicUsize>)>,
        ) -> &'static str {
            arrived.fetch_add(1, Ordering::SeqCst);
            let _ = rx.wait_for(|released| *released).await;
            "released"
        }
        let (released, rx) = watch::channel(false);
        let arrived = Arc::new(AtomicUsize::new(0));
        let router = Router::new()
            .route("/gate", get(gate).with_state((rx, arrived.clone())))
            .route("/ok", get(|| async { "ok" }));
        let (addr, shutdown) = serve(router).await;
        Gate {
            addr,
            released,
            arrived,
            _shutdown: shutdown,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/gate", self.addr)
    }

    pub fn release(&self) {
        self.released.send_replace(true);
    }
}

/// One callback as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub signature: String,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    /// What the receiver answered.
    pub status: u16,
}

/// Receives `POST /hook`; answers 500 to the first `fail_first` requests.
pub struct Hooks {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Delivery>>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Hooks {
    pub async fn start(fail_first: usize) -> Hooks {
        type HookState = (Arc<Mutex<Vec<Delivery>>>, Arc<AtomicUsize>);
        async fn hook(
            State((seen, failures)): State<HookState>,
            headers: HeaderMap,
            body: String,
        ) -> StatusCode {
            let h = |n: &str| {
                headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            let fail = failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let status = if fail {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::NO_CONTENT
            };
            seen.lock().unwrap().push(Delivery {
                signature: h("airlock-signature"),
                event_id: h("airlock-event-id"),
                event_type: h("airlock-event-type"),
                body,
                status: status.as_u16(),
            });
            status
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new().route(
            "/hook",
            post(hook).with_state((seen.clone(), Arc::new(AtomicUsize::new(fail_first)))),
        );
        let (addr, shutdown) = serve(router).await;
        Hooks {
            addr,
            seen,
            _shutdown: shutdown,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The deliveries the receiver accepted (2xx).
    pub fn accepted(&self) -> Vec<Delivery> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.status < 300)
            .cloned()
            .collect()
    }

    /// Waits (up to 60 s) until `n` deliveries were accepted.
    pub async fn wait_accepted(&self, n: usize) -> Vec<Delivery> {
        for _ in 0..600 {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "expected {n} accepted callbacks: {:?}",
            self.seen.lock().unwrap()
        );
    }
}

async fn serve(router: Router) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
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
    (addr, tx)
}

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {:?}", self.data))
    }
}

/// An open event stream.
pub struct Sse {
    response: reqwest::Response,
    buf: String,
    /// Everything received, comments included: to look for leaks in.
    pub raw: String,
}

impl Sse {
    /// `GET {url}` with `key`, `Accept: text/event-stream` and
    /// `Last-Event-ID`; the answer must be a 200 event stream.
    pub async fn open(base: &str, path: &str, key: &str, last_event_id: Option<&str>) -> Sse {
        let mut req = reqwest::Client::new()
            .get(format!("{base}{path}"))
            .bearer_auth(key)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let ct = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Sse {
            response,
            buf: String::new(),
            raw: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped); `None` once the
    /// server closed the stream. Waits at most 120 s.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut e = SseEvent::default();
                let mut data = Vec::new();
                for line in block.lines() {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => e.event = value.to_owned(),
                        "id" => e.id = Some(value.to_owned()),
                        "data" => data.push(value.to_owned()),
                        _ => {}
                    }
                }
                if data.is_empty() && e.event.is_empty() {
                    continue;
                }
                e.data = data.join("\n");
                return Some(e);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(120), self.response.chunk())
                .await
                .expect("no event within 120 s")
                .unwrap();
            let chunk = chunk?;
            let text = String::from_utf8(chunk.to_vec()).unwrap();
            self.raw.push_str(&text);
            self.buf.push_str(&text.replace("\r\n", "\n"));
        }
    }

    /// Every event until the stream closes.
    pub async fn rest(&mut self) -> Vec<SseEvent> {
        let mut all = Vec::new();
        while let Some(e) = self.next().await {
            all.push(e);
        }
        all
    }
}
