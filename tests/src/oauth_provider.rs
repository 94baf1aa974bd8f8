//! A fake OAuth 2.0 provider on loopback that behaves as RFC 6749 (the
//! authorization code grant, §4.1, and refresh, §6) and RFC 7636 (PKCE,
//! S256) say, for the Connect tests. It is strict where a real provider
//! must be, so a client that gets any of it wrong fails here:
//!
//! - `GET /authorize` checks `response_type=code`, the `client_id` and that
//!   `redirect_uri` is the one registered, exactly (§3.1.2.4: a bad one is
//!   *not* redirected to, the page shows an error); it requires a
//!   `code_challenge` with `code_challenge_method=S256` (this provider
//!   refuses `plain`, as §4.4.1 allows); it answers a sign-in page (a form a
//!   browser fills in), and `POST /authorize` with `decision=allow` sends the
//!   browser back with `code` and the same `state`, `decision=deny` with
//!   `error=access_denied`.
//! - `POST /token` authenticates the client (HTTP Basic or the body, §2.3.1);
//!   an authorization code is good once, for 60 s, only with the
//!   `redirect_uri` it was issued for and only with a `code_verifier` whose
//!   BASE64URL(SHA256) is the challenge (RFC 7636 §4.6); a code presented
//!   twice is refused and the tokens issued for it are revoked (§4.1.2).
//!   Refresh tokens rotate: each is good once.
//! - `GET /api/me` answers only a live access token (`Authorization:
//!   Bearer`), like the provider's own API.
//!
//! Everything the provider saw that a test may want to check (token
//! requests, the grants it refused and why) is kept in [`ProviderState`].

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// The client this provider knows.
pub const CLIENT_ID: &str = "connect-client-7f21";
pub const CLIENT_SECRET: &str = "connect-client-secret-Qx93vLm2Pz";
/// The one user who can sign in.
pub const USERNAME: &str = "ada";
pub const PASSWORD: &str = "correct horse battery staple";

/// How long an authorization code is good.
const CODE_TTL: Duration = Duration::from_secs(60);

/// A running provider; stops when dropped.
pub struct Provider {
    pub addr: SocketAddr,
    pub state: Arc<ProviderState>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Provider {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// An app file (`--apps-dir`) for this provider: OAuth with PKCE, the
    /// client sent as `client_auth`, its API at `/api`.
    pub fn app_toml(&self, slug: &str, name: &str, client_auth: &str) -> String {
        let a = self.addr;
        format!(
            "slug = \"{slug}\"\nname = \"{name}\"\nauth = \"oauth2\"\n\
             base_url = \"http://{a}/api\"\nallowed_domains = [\"127.0.0.1\"]\n\n\
             [credential]\nheader = \"Authorization\"\ntemplate = \"Bearer {{{{access_token}}}}\"\n\n\
             [oauth]\nauthorize_url = \"http://{a}/authorize\"\ntoken_url = \"http://{a}/token\"\n\
             scopes = [\"profile\", \"repo:read\"]\nclient_auth = \"{client_auth}\"\n"
        )
    }
}

impl Provider {
    /// A dynamic app file: every URL at the site of the account's `tenant`
    /// custom field (checked against `^[a-z][a-z0-9-]{1,30}$`).
    pub fn tenant_app_toml(&self, slug: &str, name: &str) -> String {
        let a = self.addr;
        let t = "{{custom_fields.tenant}}";
        format!(
            "slug = \"{slug}\"\nname = \"{name}\"\nauth = \"oauth2\"\n\
             base_url = \"http://{a}/{t}/api\"\nallowed_domains = [\"127.0.0.1\"]\n\n\
             [[custom_fields]]\nname = \"tenant\"\npattern = \"^[a-z][a-z0-9-]{{1,30}}$\"\n\
             description = \"Your workspace name, as in its address\"\n\n\
             [credential]\nheader = \"Authorization\"\ntemplate = \"Bearer {{{{access_token}}}}\"\n\n\
             [oauth]\nauthorize_url = \"http://{a}/{t}/authorize\"\ntoken_url = \"http://{a}/{t}/token\"\n\
             scopes = [\"profile\"]\nclient_auth = \"body\"\n"
        )
    }
}

/// What the provider holds and saw.
#[derive(Default)]
pub struct ProviderState {
    /// The redirect URI registered for [`CLIENT_ID`]; set once the server
    /// under test knows its address.
    redirect_uri: Mutex<String>,
    inner: Mutex<Inner>,
    counter: AtomicU64,
}

#[derive(Default)]
struct Inner {
    codes: HashMap<String, Code>,
    /// Live access tokens: the code they came from and their site.
    access: HashMap<String, Grant>,
    /// Live refresh tokens, likewise.
    refresh: HashMap<String, Grant>,
    /// Every `error` the token endpoint answered, in order.
    refusals: Vec<String>,
    token_requests: usize,
    /// Every code and token it ever issued.
    issued: Vec<String>,
    /// How many times the API answered 200.
    api_calls: usize,
}

#[derive(Clone)]
struct Grant {
    code: String,
    tenant: String,
}

struct Code {
    /// The site it was issued at: good only at that site's token endpoint.
    tenant: String,
    redirect_uri: String,
    challenge: String,
    scope: String,
    issued: Instant,
    used: bool,
}

impl ProviderState {
    pub fn register_redirect_uri(&self, uri: &str) {
        *self.redirect_uri.lock().unwrap() = uri.to_owned();
    }

    /// Every `error` code the token endpoint answered.
    pub fn refusals(&self) -> Vec<String> {
        self.inner.lock().unwrap().refusals.clone()
    }

    pub fn token_requests(&self) -> usize {
        self.inner.lock().unwrap().token_requests
    }

    pub fn api_calls(&self) -> usize {
        self.inner.lock().unwrap().api_calls
    }

    /// Every access and refresh token it issued that is still live.
    pub fn live_tokens(&self) -> Vec<String> {
        let i = self.inner.lock().unwrap();
        i.access.keys().chain(i.refresh.keys()).cloned().collect()
    }

    /// Every code, access and refresh token it ever issued: none may show
    /// in a log.
    pub fn issued(&self) -> Vec<String> {
        self.inner.lock().unwrap().issued.clone()
    }

    /// A fresh value: `prefix`, a counter and 64 random bits.
    fn fresh(&self, prefix: &str) -> String {
        use std::hash::{BuildHasher as _, Hasher as _};
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        format!("{prefix}{n:04}{:016x}", h.finish())
    }
}

/// Starts the provider on 127.0.0.1.
pub async fn start() -> Provider {
    let state = Arc::new(ProviderState::default());
    // The same endpoints at the root and under `/{tenant}/` (a provider
    // with one site per customer, like Zendesk's subdomains; here in the
    // path, as loopback has no names to put a tenant in).
    let tenant = |Path(t): Path<String>| t;
    let router = Router::new()
        .route(
            "/authorize",
            get(|s, q| authorize_page(s, String::new(), q))
                .post(|s, b| authorize_decision(s, String::new(), b)),
        )
        .route("/token", post(|s, h, b| token(s, String::new(), h, b)))
        .route("/api/me", get(|s, h| me(s, String::new(), h)))
        .route(
            "/{tenant}/authorize",
            get(move |s, p, q| authorize_page(s, tenant(p), q))
                .post(move |s, p, b| authorize_decision(s, tenant(p), b)),
        )
        .route(
            "/{tenant}/token",
            post(move |s, p, h, b| token(s, tenant(p), h, b)),
        )
        .route("/{tenant}/api/me", get(move |s, p, h| me(s, tenant(p), h)))
        .with_state(state.clone());
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
    Provider {
        addr,
        state,
        _shutdown: tx,
    }
}

/// A page for an authorization request that cannot be redirected back.
fn error_page(status: StatusCode, text: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><title>Provider error</title><h1 id=\"provider-error\">{text}</h1>"
        )),
    )
        .into_response()
}

/// Checks an authorization request (§4.1.1); `Err` is what the page
/// says when it cannot go back to the client at all.
fn check_request(
    s: &ProviderState,
    q: &BTreeMap<String, String>,
) -> Result<Result<(), &'static str>, &'static str> {
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return Err("unknown client_id");
    }
    let registered = s.redirect_uri.lock().unwrap().clone();
    if registered.is_empty() || q.get("redirect_uri") != Some(&registered) {
        return Err("redirect_uri does not match the registered one");
    }
    if q.get("response_type").map(String::as_str) != Some("code") {
        return Ok(Err("unsupported_response_type"));
    }
    let challenge_ok = q
        .get("code_challenge")
        .is_some_and(|c| (43..=128).contains(&c.len()));
    if !challenge_ok || q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return Ok(Err("invalid_request"));
    }
    if q.get("state").is_none_or(String::is_empty) {
        return Ok(Err("invalid_request"));
    }
    Ok(Ok(()))
}

fn back_to_client(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let mut url = url::Url::parse(redirect_uri).unwrap();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, String::from(url))]).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `GET /authorize`: the sign-in page.
async fn authorize_page(
    State(s): State<Arc<ProviderState>>,
    tenant: String,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    match check_request(&s, &q) {
        Err(text) => return error_page(StatusCode::BAD_REQUEST, text),
        Ok(Err(error)) => {
            let state = q.get("state").cloned().unwrap_or_default();
            let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
            return back_to_client(&redirect, &[("error", error), ("state", &state)]);
        }
        Ok(Ok(())) => {}
    }
    let hidden: String = q
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let scope = q.get("scope").cloned().unwrap_or_default();
    Html(format!(
        "<!doctype html><html><head><title>Sign in to Fake Provider</title></head><body>\
         <h1>Sign in to Fake Provider</h1><p id=\"scopes\">Requested: {}</p>\
         <form method=\"post\" action=\"{action}\">{hidden}\
         <input id=\"username\" name=\"username\"><input id=\"password\" name=\"password\" type=\"password\">\
         <button id=\"allow\" name=\"decision\" value=\"allow\" type=\"submit\">Allow</button>\
         <button id=\"deny\" name=\"decision\" value=\"deny\" type=\"submit\">Deny</button>\
         </form></body></html>",
        escape(&scope),
        action = tenant_path(&tenant, "/authorize"),
    ))
    .into_response()
}

/// `POST /authorize`: the user's answer.
async fn authorize_decision(
    State(s): State<Arc<ProviderState>>,
    tenant: String,
    body: String,
) -> Response {
    let q: BTreeMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    match check_request(&s, &q) {
        Err(text) => return error_page(StatusCode::BAD_REQUEST, text),
        Ok(Err(error)) => {
            let state = q.get("state").cloned().unwrap_or_default();
            return back_to_client(&q["redirect_uri"], &[("error", error), ("state", &state)]);
        }
        Ok(Ok(())) => {}
    }
    let redirect = q["redirect_uri"].clone();
    let state = q["state"].clone();
    if q.get("decision").map(String::as_str) != Some("allow") {
        return back_to_client(&redirect, &[("error", "access_denied"), ("state", &state)]);
    }
    if q.get("username").map(String::as_str) != Some(USERNAME)
        || q.get("password").map(String::as_str) != Some(PASSWORD)
    {
        return error_page(StatusCode::UNAUTHORIZED, "wrong username or password");
    }
    let code = s.fresh("code-");
    let mut i = s.inner.lock().unwrap();
    i.issued.push(code.clone());
    i.codes.insert(
        code.clone(),
        Code {
            tenant,
            redirect_uri: redirect.clone(),
            challenge: q["code_challenge"].clone(),
            scope: q.get("scope").cloned().unwrap_or_default(),
            issued: Instant::now(),
            used: false,
        },
    );
    drop(i);
    back_to_client(&redirect, &[("code", &code), ("state", &state)])
}

fn token_error(inner: &mut Inner, status: StatusCode, error: &str) -> Response {
    inner.refusals.push(error.to_owned());
    (status, axum::Json(json!({"error": error}))).into_response()
}

/// Whether the client authenticated (§2.3.1): Basic, or both in the body.
fn client_ok(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    // RFC 6749 §2.3.1: Basic credentials are form-urlencoded first.
    let decode = |v: &str| {
        url::form_urlencoded::parse(format!("v={v}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    if let Some((id, secret)) = basic.as_deref().and_then(|b| b.split_once(':')) {
        return decode(id) == CLIENT_ID && decode(secret) == CLIENT_SECRET;
    }
    form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn verifier_well_formed(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `POST /token`.
async fn token(
    State(s): State<Arc<ProviderState>>,
    tenant: String,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let fresh_access = s.fresh("fake-access-");
    let fresh_refresh = s.fresh("fake-refresh-");
    let mut i = s.inner.lock().unwrap();
    i.token_requests += 1;
    if !client_ok(&headers, &form) {
        return token_error(&mut i, StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let (grant, scope) = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let presented = form.get("code").cloned().unwrap_or_default();
            let Some(code) = i.codes.get_mut(&presented) else {
                return token_error(&mut i, StatusCode::BAD_REQUEST, "invalid_grant");
            };
            if code.used {
                // §4.1.2: a code used twice revokes what it granted.
                i.access.retain(|_, g| g.code != presented);
                i.refresh.retain(|_, g| g.code != presented);
                return token_error(&mut i, StatusCode::BAD_REQUEST, "invalid_grant");
            }
            code.used = true;
            let expired = code.issued.elapsed() > CODE_TTL;
            let redirect_ok =
                form.get("redirect_uri") == Some(&code.redirect_uri) && code.tenant == tenant;
            let challenge = code.challenge.clone();
            let scope = code.scope.clone();
            if expired || !redirect_ok {
                return token_error(&mut i, StatusCode::BAD_REQUEST, "invalid_grant");
            }
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            if !verifier_well_formed(&verifier)
                || URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != challenge
            {
                return token_error(&mut i, StatusCode::BAD_REQUEST, "invalid_grant");
            }
            (
                Grant {
                    code: presented,
                    tenant,
                },
                scope,
            )
        }
        Some("refresh_token") => {
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            // Rotation: the presented token is spent whatever happens next.
            let Some(grant) = i.refresh.remove(&presented).filter(|g| g.tenant == tenant) else {
                return token_error(&mut i, StatusCode::BAD_REQUEST, "invalid_grant");
            };
            (grant, "profile repo:read".to_owned())
        }
        _ => {
            return token_error(&mut i, StatusCode::BAD_REQUEST, "unsupported_grant_type");
        }
    };
    i.issued.push(fresh_access.clone());
    i.issued.push(fresh_refresh.clone());
    i.access.insert(fresh_access.clone(), grant.clone());
    i.refresh.insert(fresh_refresh.clone(), grant);
    axum::Json(json!({
        "access_token": fresh_access,
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": fresh_refresh,
        "scope": scope,
    }))
    .into_response()
}

/// `GET /api/me`: the signed-in user, for a live access token only.
async fn me(State(s): State<Arc<ProviderState>>, tenant: String, headers: HeaderMap) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let mut i = s.inner.lock().unwrap();
    if i.access.get(presented).is_none_or(|g| g.tenant != tenant) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_token"})),
        )
            .into_response();
    }
    i.api_calls += 1;
    // Which grant answered (the serial of its code, not the code): tests
    // tell a reconnected account's new grant from the old one by it.
    let grant = i.access[presented].code["code-".len()..][..4].to_owned();
    axum::Json(json!({"login": USERNAME, "tenant": tenant, "grant": grant})).into_response()
}

/// `path` at `tenant`'s site (`/acme/authorize`), or at the root.
fn tenant_path(tenant: &str, path: &str) -> String {
    if tenant.is_empty() {
        path.to_owned()
    } else {
        format!("/{tenant}{path}")
    }
}
