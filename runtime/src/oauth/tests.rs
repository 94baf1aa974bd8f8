//! Refresh tests against a fake RFC 6749 token endpoint on loopback and a real
//! SQLite store in a temporary directory.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use zeroize::Zeroizing;

use super::*;
use crate::store::crypto::KEY_LEN;
use crate::store::{AccountStatus, AccountStore, MasterKey, NewAccount, SecretStore};

const CLIENT_ID: &str = "client-1";
const CLIENT_SECRET: &str = "CLIENT-SECRET-do-not-leak";

/// A token endpoint (RFC 6749 §5, §6): form-encoded `grant_type=refresh_token`,
/// client authentication by HTTP Basic or in the body, answers slowly, rotates
/// the refresh token on each use and refuses a used or unknown one with
/// `400 invalid_grant`.
struct FakeProvider {
    url: String,
    requests: AtomicUsize,
    state: Mutex<ProviderState>,
}

struct ProviderState {
    valid_refresh: HashSet<String>,
    issued: usize,
    rotate: bool,
    expires_in: u64,
    delay: Duration,
}

impl FakeProvider {
    async fn start(initial_refresh: &[&str]) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let provider = Arc::new(FakeProvider {
            url: format!("http://{}/oauth/token", listener.local_addr().unwrap()),
            requests: AtomicUsize::new(0),
            state: Mutex::new(ProviderState {
                valid_refresh: initial_refresh.iter().map(|s| s.to_string()).collect(),
                issued: 0,
                rotate: true,
                expires_in: 3600,
                delay: Duration::from_millis(200),
            }),
        });
        let p = provider.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let p = p.clone();
                tokio::spawn(async move { p.serve(stream).await });
            }
        });
        provider
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn accepts(&self, refresh: &str) -> bool {
        self.state.lock().unwrap().valid_refresh.contains(refresh)
    }

    fn config(&self) -> OAuthClientConfig {
        OAuthClientConfig {
            token_url: self.url.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: Zeroizing::new(CLIENT_SECRET.into()),
            scopes: vec![],
        }
    }

    async fn serve(&self, mut stream: TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head, body) = loop {
            let n = stream.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < end + 4 + len {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                break (head, buf[end + 4..end + 4 + len].to_vec());
            }
        };
        self.requests.fetch_add(1, Ordering::SeqCst);
        let delay = self.state.lock().unwrap().delay;
        tokio::time::sleep(delay).await;
        let (status, json) = self.answer(&head, &body);
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{json}",
            json.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    fn answer(&self, head: &str, body: &[u8]) -> (&'static str, String) {
        let form: BTreeMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let basic = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            if !k.eq_ignore_ascii_case("authorization") {
                return None;
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(v.trim().strip_prefix("Basic ")?)
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (id, secret) = text.split_once(':')?;
            let dec = |s: &str| {
                form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .unwrap()
                    .1
                    .into_owned()
            };
            Some((dec(id), dec(secret)))
        });
        let client = basic.or_else(|| {
            Some((
                form.get("client_id")?.clone(),
                form.get("client_secret")?.clone(),
            ))
        });
        if client != Some((CLIENT_ID.to_string(), CLIENT_SECRET.to_string())) {
            return ("401 Unauthorized", r#"{"error":"invalid_client"}"#.into());
        }
        if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
            return (
                "400 Bad Request",
                r#"{"error":"unsupported_grant_type"}"#.into(),
            );
        }
        let mut state = self.state.lock().unwrap();
        let presented = form.get("refresh_token").cloned().unwrap_or_default();
        if !state.valid_refresh.contains(&presented) {
            return (
                "400 Bad Request",
                r#"{"error":"invalid_grant","error_description":"refresh token is invalid"}"#
                    .into(),
            );
        }
        state.issued += 1;
        let n = state.issued;
        let mut json = format!(
            r#"{{"access_token":"at-{n}","token_type":"Bearer","expires_in":{}"#,
            state.expires_in
        );
        if state.rotate {
            state.valid_refresh.remove(&presented);
            state.valid_refresh.insert(format!("rt-{n}"));
            json.push_str(&format!(r#","refresh_token":"rt-{n}""#));
        }
        json.push('}');
        ("200 OK", json)
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: AccountStore,
    key: Arc<MasterKey>,
    refresher: TokenRefresher,
    lock: LocalRefreshLock,
    provider: Arc<FakeProvider>,
}

async fn fixture(initial_refresh: &[&str]) -> Fixture {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let secrets = SecretStore::open(dir.path()).await.unwrap();
    let store = AccountStore::new(&secrets);
    let key = Arc::new(MasterKey::from_bytes(Zeroizing::new([9u8; KEY_LEN])));
    let http = reqwest::Client::builder().build().unwrap();
    let lock = LocalRefreshLock::new();
    let refresher = TokenRefresher::new(
        store.clone(),
        key.clone(),
        http,
        TokenRefresher::DEFAULT_MARGIN,
    )
    .with_lock(Arc::new(lock.clone()));
    let provider = FakeProvider::start(initial_refresh).await;
    Fixture {
        _dir: dir,
        store,
        key,
        refresher,
        lock,
        provider,
    }
}

impl Fixture {
    async fn account(
        &self,
        access: &str,
        refresh: Option<&str>,
        expires_in: Option<i64>,
    ) -> String {
        let mut credentials = BTreeMap::from([(
            "access_token".to_string(),
            Zeroizing::new(access.to_string()),
        )]);
        if let Some(r) = refresh {
            credentials.insert("refresh_token".into(), Zeroizing::new(r.to_string()));
        }
        let acc = self
            .store
            .create(
                &self.key,
                NewAccount {
                    project: "proj".into(),
                    external_user_id: "user-1".into(),
                    app: "google".into(),
                    credentials,
                    custom_fields: BTreeMap::new(),
                    expires_at: expires_in.map(|s| unix_now() + s),
                },
            )
            .await
            .unwrap();
        acc.id().to_owned()
    }

    async fn stored(&self, id: &str, field: &str) -> Option<String> {
        let acc = self
            .store
            .get(&self.key, "proj", id)
            .await
            .unwrap()
            .unwrap();
        acc.credential(field).map(str::to_owned)
    }

    async fn token(&self, id: &str, force: bool) -> Result<Zeroizing<String>, RefreshError> {
        self.refresher
            .access_token("proj", id, &self.provider.config(), force)
            .await
    }
}

fn unix_now() -> i64 {
    crate::store::unix_now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_callers_share_one_refresh() {
    let f = fixture(&["rt-0"]).await;
    let id = f.account("at-0", Some("rt-0"), Some(-10)).await;
    let oauth = f.provider.config();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (r, id, oauth) = (f.refresher.clone(), id.clone(), oauth.clone());
        tasks.push(tokio::spawn(async move {
            r.access_token("proj", &id, &oauth, false).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().as_str(), "at-1");
    }
    assert_eq!(f.provider.requests(), 1, "exactly one token request");
    assert!(f.lock.is_empty(), "lock entries are cleaned up");
    // The rotated refresh token was saved with the new access token...
    assert_eq!(
        f.stored(&id, "refresh_token").await.as_deref(),
        Some("rt-1")
    );
    assert!(!f.provider.accepts("rt-0") && f.provider.accepts("rt-1"));
    // ...and the next refresh uses it, and the provider accepts it.
    assert_eq!(f.token(&id, true).await.unwrap().as_str(), "at-2");
    assert_eq!(f.provider.requests(), 2);
    assert_eq!(
        f.stored(&id, "refresh_token").await.as_deref(),
        Some("rt-2")
    );
    let acc = f.store.get(&f.key, "proj", &id).await.unwrap().unwrap();
    let left = acc.meta.expires_at.unwrap() - unix_now();
    assert!(
        (3590..=3600).contains(&left),
        "expires_at from expires_in: {left}"
    );
}

#[tokio::test]
async fn fresh_token_needs_no_request_and_one_within_margin_is_refreshed() {
    let f = fixture(&["rt-far", "rt-near"]).await;
    let far = f.account("at-far", Some("rt-far"), Some(3600)).await;
    assert_eq!(f.token(&far, false).await.unwrap().as_str(), "at-far");
    let never = f.account("at-never", Some("rt-far"), None).await;
    assert_eq!(f.token(&never, false).await.unwrap().as_str(), "at-never");
    assert_eq!(f.provider.requests(), 0, "valid tokens need no request");

    // Expires in 30 s, inside the 60 s margin: refreshed ahead of expiry.
    let near = f.account("at-near", Some("rt-near"), Some(30)).await;
    assert_eq!(f.token(&near, false).await.unwrap().as_str(), "at-1");
    assert_eq!(f.provider.requests(), 1);
    assert_eq!(f.token(&near, false).await.unwrap().as_str(), "at-1");
    assert_eq!(
        f.provider.requests(),
        1,
        "the refreshed token is used until near expiry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_refresh_after_401_happens_once_per_stale_token() {
    let f = fixture(&["rt-0"]).await;
    let id = f.account("at-0", Some("rt-0"), Some(3600)).await;
    let oauth = f.provider.config();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (r, id, oauth) = (f.refresher.clone(), id.clone(), oauth.clone());
        tasks.push(tokio::spawn(async move {
            r.refresh_after_unauthorized("proj", &id, &oauth, "at-0")
                .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().as_str(), "at-1");
    }
    assert_eq!(
        f.provider.requests(),
        1,
        "ten 401s with one stale token: one refresh"
    );
    // A late caller holding the same stale token gets the new one, no request.
    let late = f
        .refresher
        .refresh_after_unauthorized("proj", &id, &oauth, "at-0")
        .await
        .unwrap();
    assert_eq!(late.as_str(), "at-1");
    assert_eq!(f.provider.requests(), 1);
    // The new token rejected too: refreshed again.
    let again = f
        .refresher
        .refresh_after_unauthorized("proj", &id, &oauth, "at-1")
        .await
        .unwrap();
    assert_eq!(again.as_str(), "at-2");
    assert_eq!(f.provider.requests(), 2);
    // `force` without naming the token replaces the stored one.
    assert_eq!(f.token(&id, true).await.unwrap().as_str(), "at-3");
    assert_eq!(f.provider.requests(), 3);
}

#[tokio::test]
async fn invalid_grant_marks_needs_reauth_and_later_calls_fail_fast() {
    let f = fixture(&[]).await;
    let id = f
        .account("at-0", Some("revoked-refresh-token"), Some(-1))
        .await;
    let err = f.token(&id, false).await.unwrap_err();
    assert!(
        matches!(&err, RefreshError::NeedsReauth { account_id } if *account_id == id),
        "{err}"
    );
    assert_eq!(f.provider.requests(), 1);
    let acc = f.store.get(&f.key, "proj", &id).await.unwrap().unwrap();
    assert_eq!(acc.meta.status, AccountStatus::NeedsReauth);
    assert_eq!(
        acc.credential("refresh_token"),
        Some("revoked-refresh-token"),
        "nothing else changed"
    );

    for force in [false, true] {
        let err = f.token(&id, force).await.unwrap_err();
        assert!(matches!(err, RefreshError::NeedsReauth { .. }), "{err}");
    }
    let err = f
        .refresher
        .refresh_after_unauthorized("proj", &id, &f.provider.config(), "at-0")
        .await
        .unwrap_err();
    assert!(matches!(err, RefreshError::NeedsReauth { .. }), "{err}");
    assert_eq!(
        f.provider.requests(),
        1,
        "no request for an account needing re-auth"
    );
    assert!(!err.to_string().contains("revoked-refresh-token"));
}

#[tokio::test]
async fn provider_errors_keep_the_account_and_show_no_secrets() {
    let f = fixture(&["rt-0"]).await;
    let id = f.account("at-0", Some("rt-0"), Some(-1)).await;
    let mut wrong = f.provider.config();
    wrong.client_secret = Zeroizing::new("WRONG-SECRET-value".into());
    let err = f
        .refresher
        .access_token("proj", &id, &wrong, false)
        .await
        .unwrap_err();
    match &err {
        RefreshError::Provider { status, error_code } => {
            assert_eq!(*status, Some(401));
            assert_eq!(error_code, "invalid_client");
        }
        other => panic!("expected Provider, got {other}"),
    }
    let shown = format!("{err} {err:?} {wrong:?}");
    for secret in ["WRONG-SECRET-value", CLIENT_SECRET, "rt-0", "at-0"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let acc = f.store.get(&f.key, "proj", &id).await.unwrap().unwrap();
    assert_eq!(
        acc.meta.status,
        AccountStatus::Healthy,
        "a client error is not the user's grant"
    );
    assert!(f.provider.accepts("rt-0"));

    // Nothing listening: a transport error, nothing stored.
    let mut down = f.provider.config();
    down.token_url = "http://127.0.0.1:9/oauth/token".into();
    let err = f
        .refresher
        .access_token("proj", &id, &down, false)
        .await
        .unwrap_err();
    assert!(matches!(err, RefreshError::Transport(_)), "{err}");
    assert_eq!(f.stored(&id, "access_token").await.as_deref(), Some("at-0"));
}

#[tokio::test]
async fn no_refresh_token_and_unknown_account() {
    let f = fixture(&[]).await;
    let id = f.account("at-0", None, Some(-1)).await;
    let err = f.token(&id, false).await.unwrap_err();
    assert!(matches!(err, RefreshError::NoRefreshToken { .. }), "{err}");
    let err = f.token("acc_0000000000000000", false).await.unwrap_err();
    assert!(matches!(err, RefreshError::NotFound { .. }), "{err}");
    assert_eq!(f.provider.requests(), 0);
}

#[tokio::test]
async fn provider_without_rotation_keeps_the_old_refresh_token() {
    let f = fixture(&["rt-keep"]).await;
    f.provider.state.lock().unwrap().rotate = false;
    let id = f.account("at-0", Some("rt-keep"), Some(-1)).await;
    assert_eq!(f.token(&id, false).await.unwrap().as_str(), "at-1");
    assert_eq!(
        f.stored(&id, "refresh_token").await.as_deref(),
        Some("rt-keep")
    );
    assert_eq!(f.token(&id, true).await.unwrap().as_str(), "at-2");
    assert_eq!(f.provider.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_caller_does_not_lose_the_rotated_token() {
    let f = fixture(&["rt-0"]).await;
    let id = f.account("at-0", Some("rt-0"), Some(-1)).await;
    let (r, id2, oauth) = (f.refresher.clone(), id.clone(), f.provider.config());
    let caller = tokio::spawn(async move { r.access_token("proj", &id2, &oauth, false).await });
    // Cancel while the provider is answering (it takes 200 ms after it has
    // counted the request): wait for the request rather than for a time,
    // so a loaded machine cannot cancel before it was sent.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while f.provider.requests() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the refresh never reached the provider"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    // The refresh goes on without its caller and stores the rotated pair.
    while f.stored(&id, "access_token").await.as_deref() != Some("at-1") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotated token was lost"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(f.provider.requests(), 1);
    assert_eq!(
        f.stored(&id, "refresh_token").await.as_deref(),
        Some("rt-1")
    );
}
