//! Fake third parties on loopback, behaving as their documentation says,
//! for the outbound-HTTP tests and benchmarks. Nothing here is reachable
//! from outside 127.0.0.1.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

/// A running fake; stops when dropped. Every request it received is kept
/// (as the echo JSON) so tests can see what reached the upstream.
pub struct Fake {
    pub addr: SocketAddr,
    seen: Seen,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

type Seen = Arc<Mutex<Vec<Value>>>;

impl Fake {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request received so far: method, path, query, headers, body.
    pub fn requests(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }
}

async fn record(
    State(seen): State<Seen>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    seen.lock()
        .unwrap()
        .push(echo_json(&parts.method, &parts.uri, &parts.headers, &bytes));
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

async fn serve(router: Router) -> Fake {
    let seen: Seen = Arc::default();
    let router = router.layer(axum::middleware::from_fn_with_state(seen.clone(), record));
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
    Fake {
        addr,
        seen,
        _shutdown: tx,
    }
}

/// Echoes the request back as JSON: method, path, query, headers, body.
/// Also: `/slow?ms=N` answers after N ms, `/big?bytes=N` sends N bytes,
/// `/redirect?to=URL&status=S` redirects, `/status/N` answers N.
pub async fn echo() -> Fake {
    async fn echo_handler(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        axum::Json(echo_json(&method, &uri, &headers, &body)).into_response()
    }
    async fn slow(Query(q): Query<HashMap<String, String>>) -> &'static str {
        let ms = q.get("ms").and_then(|v| v.parse().ok()).unwrap_or(1000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        "late"
    }
    async fn big(Query(q): Query<HashMap<String, String>>) -> Vec<u8> {
        let n = q.get("bytes").and_then(|v| v.parse().ok()).unwrap_or(1024);
        vec![b'x'; n]
    }
    async fn redirect(Query(q): Query<HashMap<String, String>>) -> Response {
        let status = q.get("status").and_then(|v| v.parse().ok()).unwrap_or(302);
        let to = q.get("to").cloned().unwrap_or_default();
        (
            StatusCode::from_u16(status).unwrap(),
            [("location", to)],
            "",
        )
            .into_response()
    }
    async fn redirect_keep_query(uri: Uri) -> Response {
        let query = uri.query().unwrap_or("").to_string();
        let to = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "to")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        // Like a careless upstream: the whole incoming query goes along.
        (
            StatusCode::FOUND,
            [("location", format!("{to}?{query}"))],
            "",
        )
            .into_response()
    }
    async fn status(axum::extract::Path(code): axum::extract::Path<u16>) -> Response {
        (StatusCode::from_u16(code).unwrap(), "status").into_response()
    }
    serve(
        Router::new()
            .route("/slow", get(slow))
            .route("/big", get(big))
            .route("/redirect", any(redirect))
            .route("/redirect-keep-query", any(redirect_keep_query))
            .route("/status/{code}", any(status))
            .fallback(echo_handler),
    )
    .await
}

fn echo_json(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Value {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), Value::from(v.to_str().unwrap_or("<binary>"))))
        .collect();
    json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query().unwrap_or(""),
        "headers": headers,
        "body": String::from_utf8_lossy(body),
    })
}

/// A fake OAuth 2.0 token endpoint (RFC 6749 §6): refresh-token grants with
/// client credentials; each refresh rotates the refresh token and refuses a
/// used one with `invalid_grant`. Answers slowly so concurrent callers
/// overlap; [`OAuthState::hold_first_request`] makes the first answer very
/// slow, to kill its caller while it waits. Also a resource at `/api/me` that accepts only the current
/// access token (401 otherwise), like a provider that revoked the old one.
pub struct OAuthFake {
    pub fake: Fake,
    pub state: Arc<OAuthState>,
}

#[derive(Default)]
pub struct OAuthState {
    pub token_requests: AtomicUsize,
    /// How long the first token request waits before it is looked at, in ms.
    hold_first_ms: AtomicU64,
    inner: Mutex<OAuthInner>,
}

#[derive(Default)]
struct OAuthInner {
    refresh_token: String,
    access_token: String,
    generation: usize,
    revoked: Vec<String>,
}

impl OAuthState {
    pub fn current_access_token(&self) -> String {
        self.inner.lock().unwrap().access_token.clone()
    }
    pub fn current_refresh_token(&self) -> String {
        self.inner.lock().unwrap().refresh_token.clone()
    }
    /// Holds the first token request for `hold` before reading it (so it
    /// rotates nothing meanwhile): a provider that is slow exactly when its
    /// caller dies. Set before the first request.
    pub fn hold_first_request(&self, hold: Duration) {
        let ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
        self.hold_first_ms.store(ms, Ordering::SeqCst);
    }

    /// Makes the provider refuse every refresh token from now on.
    pub fn revoke_refresh(&self) {
        let mut i = self.inner.lock().unwrap();
        let rt = i.refresh_token.clone();
        i.revoked.push(rt);
        i.refresh_token = String::new();
    }
}

pub const OAUTH_CLIENT_ID: &str = "client-abc";
pub const OAUTH_CLIENT_SECRET: &str = "client-secret-xyz-123";

pub async fn oauth(initial_refresh: &str, initial_access: &str) -> OAuthFake {
    let state = Arc::new(OAuthState::default());
    {
        let mut i = state.inner.lock().unwrap();
        i.refresh_token = initial_refresh.into();
        i.access_token = initial_access.into();
    }
    async fn token(State(s): State<Arc<OAuthState>>, headers: HeaderMap, body: String) -> Response {
        if s.token_requests.fetch_add(1, Ordering::SeqCst) == 0 {
            let hold = s.hold_first_ms.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(hold)).await;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        let basic = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.decode(b).ok()
            })
            .and_then(|b| String::from_utf8(b).ok());
        let client_ok = basic.as_deref()
            == Some(&format!("{OAUTH_CLIENT_ID}:{OAUTH_CLIENT_SECRET}"))
            || (form.get("client_id").map(String::as_str) == Some(OAUTH_CLIENT_ID)
                && form.get("client_secret").map(String::as_str) == Some(OAUTH_CLIENT_SECRET));
        if !client_ok {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "invalid_client"})),
            )
                .into_response();
        }
        if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "unsupported_grant_type"})),
            )
                .into_response();
        }
        let mut i = s.inner.lock().unwrap();
        let presented = form.get("refresh_token").cloned().unwrap_or_default();
        if presented.is_empty() || presented != i.refresh_token {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "invalid_grant"})),
            )
                .into_response();
        }
        i.generation += 1;
        let old = std::mem::take(&mut i.refresh_token);
        i.revoked.push(old);
        i.refresh_token = format!("refresh-gen{}-{:08x}", i.generation, rand_u32());
        i.access_token = format!("access-gen{}-{:08x}", i.generation, rand_u32());
        axum::Json(json!({
            "access_token": i.access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": i.refresh_token,
        }))
        .into_response()
    }
    async fn me(State(s): State<Arc<OAuthState>>, headers: HeaderMap) -> Response {
        let current = s.current_access_token();
        let presented = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if presented != current {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"message": "Bad credentials"})),
            )
                .into_response();
        }
        axum::Json(json!({"login": "ada", "token_generation": s.inner.lock().unwrap().generation}))
            .into_response()
    }
    let fake = serve(
        Router::new()
            .route("/oauth/token", post(token))
            .route("/api/me", get(me))
            .with_state(state.clone()),
    )
    .await;
    OAuthFake { fake, state }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .elapsed()
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7),
    );
    h.finish() as u32
}

/// A fake GitHub REST API: `GET /user/repos` as documented, requiring
/// `Authorization: Bearer <token>` (or `token <token>`) equal to `token`.
pub async fn github(token: &str) -> Fake {
    let token = Arc::new(token.to_string());
    async fn repos(State(token): State<Arc<String>>, headers: HeaderMap) -> Response {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let presented = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("token "))
            .unwrap_or("");
        if presented != token.as_str() {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({
                    "message": "Requires authentication",
                    "documentation_url": "https://docs.github.com/rest/repos/repos#list-repositories-for-the-authenticated-user"
                })),
            )
                .into_response();
        }
        axum::Json(json!([
            {"id": 1, "full_name": "ada/analytical-engine", "private": false, "stargazers_count": 1843},
            {"id": 2, "full_name": "ada/notes", "private": true, "stargazers_count": 0},
            {"id": 3, "full_name": "ada/bernoulli", "private": false, "stargazers_count": 42}
        ]))
        .into_response()
    }
    serve(
        Router::new()
            .route("/user/repos", get(repos))
            .with_state(token),
    )
    .await
}

/// A fake Slack Web API: `POST /api/chat.postMessage` as documented —
/// HTTP 200 with `ok: false` and an `error` code for API errors.
pub async fn slack(token: &str) -> Fake {
    let token = Arc::new(token.to_string());
    async fn post_message(
        State(token): State<Arc<String>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if auth != format!("Bearer {token}") {
            return axum::Json(json!({"ok": false, "error": "not_authed"})).into_response();
        }
        let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if msg["channel"].as_str().unwrap_or("").is_empty() {
            return axum::Json(json!({"ok": false, "error": "channel_not_found"})).into_response();
        }
        axum::Json(json!({"ok": true, "channel": msg["channel"], "ts": "1700000000.000100"}))
            .into_response()
    }
    serve(
        Router::new()
            .route("/api/chat.postMessage", post(post_message))
            .with_state(token),
    )
    .await
}

/// A fake Zendesk: `GET /api/v2/tickets.json` with basic auth
/// `{email}/token:{api_token}`.
pub async fn zendesk(username: &str, api_token: &str) -> Fake {
    let expected = Arc::new({
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{api_token}"))
        )
    });
    async fn tickets(State(expected): State<Arc<String>>, headers: HeaderMap) -> Response {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if auth != expected.as_str() {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "Couldn't authenticate you"})),
            )
                .into_response();
        }
        axum::Json(json!({"tickets": [
            {"id": 35436, "subject": "Help, my printer is on fire!", "status": "open"},
            {"id": 20057, "subject": "Invoice question", "status": "solved"}
        ], "count": 2}))
        .into_response()
    }
    serve(
        Router::new()
            .route("/api/v2/tickets.json", get(tickets))
            .with_state(expected),
    )
    .await
}

/// A legacy API behind HTTP Digest (RFC 7616): `/md5/...` and
/// `/sha256/...` answer 401 with a fresh `qop="auth"` challenge of that
/// algorithm until a request carries an `Authorization: Digest` answer the
/// server checks itself (its nonce, the request's own target, the hash of
/// `username`/`password`); then 200 with `{"user", "algorithm"}`.
pub async fn digest(username: &str, password: &str) -> Fake {
    #[derive(Clone)]
    struct S {
        username: String,
        password: String,
        nonces: Arc<Mutex<Vec<String>>>,
    }
    const REALM: &str = "legacy@example.org";
    const OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
    fn h(alg: &str, data: &str) -> String {
        use md5::Digest as _;
        use sha2::Digest as _;
        if alg == "MD5" {
            hex::encode(md5::Md5::digest(data.as_bytes()))
        } else {
            hex::encode(sha2::Sha256::digest(data.as_bytes()))
        }
    }
    fn params(value: &str) -> HashMap<String, String> {
        let re = regex::Regex::new(r#"([A-Za-z]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))"#).unwrap();
        re.captures_iter(value)
            .map(|c| {
                let v = c.get(2).or(c.get(3)).map_or("", |m| m.as_str());
                (
                    c[1].to_ascii_lowercase(),
                    v.replace("\\\"", "\"").replace("\\\\", "\\"),
                )
            })
            .collect()
    }
    async fn handler(State(s): State<S>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
        let alg = if uri.path().starts_with("/sha256/") {
            "SHA-256"
        } else {
            "MD5"
        };
        let target = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let answer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Digest "))
            .map(params);
        if let Some(p) = answer {
            let get = |k: &str| p.get(k).cloned().unwrap_or_default();
            let known_nonce = s.nonces.lock().unwrap().contains(&get("nonce"));
            let ha1 = h(alg, &format!("{}:{REALM}:{}", s.username, s.password));
            let ha2 = h(alg, &format!("{method}:{target}"));
            let expected = h(
                alg,
                &format!(
                    "{ha1}:{}:{}:{}:auth:{ha2}",
                    get("nonce"),
                    get("nc"),
                    get("cnonce")
                ),
            );
            if known_nonce
                && get("username") == s.username
                && get("realm") == REALM
                && get("uri") == target
                && get("qop") == "auth"
                && get("opaque") == OPAQUE
                && get("algorithm") == alg
                && !get("cnonce").is_empty()
                && get("response") == expected
            {
                return axum::Json(json!({"user": s.username, "algorithm": alg})).into_response();
            }
        }
        let nonce = format!("n{}", s.nonces.lock().unwrap().len() + 1);
        s.nonces.lock().unwrap().push(nonce.clone());
        (
            StatusCode::UNAUTHORIZED,
            [(
                "www-authenticate",
                format!(
                    "Digest realm=\"{REALM}\", qop=\"auth, auth-int\", algorithm={alg}, \
                     nonce=\"{nonce}\", opaque=\"{OPAQUE}\""
                ),
            )],
            "unauthorized",
        )
            .into_response()
    }
    let state = S {
        username: username.into(),
        password: password.into(),
        nonces: Arc::default(),
    };
    serve(Router::new().fallback(any(handler)).with_state(state)).await
}
