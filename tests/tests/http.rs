//! Outbound HTTP through the pipeline, against fake third parties on
//! loopback: credential placement per auth kind, SSRF defences, redirects,
//! OAuth refresh, echo leaks, timeouts, caps and the rate limit.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use airlock_host_api::apps::Catalog;
use airlock_host_api::http::egress::parse_range;
use airlock_host_api::http::pipeline::{AccountSource, HttpConfig, HttpGrants};
use airlock_host_api::http::ratelimit::Quota;
use airlock_host_api::secrets::{RunSecrets, SecretGrants};
use airlock_runtime::engine::{Engine, EngineConfig, RunFailure, RunOptions, RunReport};
use airlock_runtime::outbound::{self, OutboundConfig, StoredAccounts};
use airlock_runtime::store::accounts::{AccountStatus, AccountStore, NewAccount};
use airlock_runtime::store::{MasterKey, SecretStore};
use airlock_tests::fakes::{self, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET};
use airlock_tests::{component_bytes, guests, test_cache_dir};
use serde_json::{Value, json};
use zeroize::Zeroizing;

const USER: &str = "user-1";

/// A test world: a real encrypted store with accounts, a catalog of test
/// apps pointing at loopback fakes, and an engine whose pipeline uses them.
struct World {
    engine: Engine,
    accounts: AccountStore,
    secrets: SecretStore,
    key: Arc<MasterKey>,
    _dir: tempfile::TempDir,
}

struct Setup<'a> {
    apps: Vec<String>,
    allow_loopback: bool,
    quota: Quota,
    http: HttpConfig,
    _p: std::marker::PhantomData<&'a ()>,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Self {
            apps: Vec::new(),
            allow_loopback: true,
            quota: Quota::DEFAULT,
            http: HttpConfig::default(),
            _p: Default::default(),
        }
    }
}

/// An app definition for a loopback fake at `addr`.
fn app_toml(
    slug: &str,
    auth: &str,
    addr: std::net::SocketAddr,
    credential: &str,
    extra: &str,
) -> String {
    format!(
        "slug = \"{slug}\"\nname = \"{slug}\"\nauth = \"{auth}\"\nbase_url = \"http://{addr}\"\n\
         allowed_domains = [\"127.0.0.1\"]\n{extra}\n[credential]\n{credential}\n"
    )
}

async fn world(setup: Setup<'_>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let secrets = SecretStore::open(dir.path()).await.unwrap();
    let key = Arc::new(MasterKey::generate().unwrap());
    let sources: Vec<(String, String)> = setup
        .apps
        .iter()
        .map(|toml| {
            let slug = toml.split('"').nth(1).unwrap().to_string();
            (format!("{slug}.toml"), toml.clone())
        })
        .collect();
    let catalog = Arc::new(Catalog::from_sources(&sources).unwrap());
    let config = OutboundConfig {
        allow_ranges: if setup.allow_loopback {
            vec![parse_range("127.0.0.0/8").unwrap()]
        } else {
            vec![]
        },
        apps_dir: None,
        http: setup.http,
        quota: setup.quota,
    };
    let (policy, client) = outbound::policy_and_client(&config).unwrap();
    let source: Arc<dyn AccountSource> = Arc::new(StoredAccounts::new(
        secrets.clone(),
        key.clone(),
        client.clone(),
        policy.clone(),
    ));
    let pipeline = outbound::pipeline(&config, policy, client, catalog, source);
    let engine = Engine::with_http(
        EngineConfig {
            max_concurrent_runs: 16,
            cache_dir: Some(test_cache_dir()),
            ..EngineConfig::default()
        },
        pipeline,
    )
    .unwrap();
    World {
        accounts: AccountStore::new(&secrets),
        engine,
        secrets,
        key,
        _dir: dir,
    }
}

impl World {
    async fn add_account(
        &self,
        app: &str,
        creds: &[(&str, &str)],
        expires_at: Option<i64>,
    ) -> String {
        let credentials = creds
            .iter()
            .map(|(k, v)| (k.to_string(), Zeroizing::new(v.to_string())))
            .collect();
        self.accounts
            .create(
                &self.key,
                NewAccount {
                    project: "local".into(),
                    external_user_id: USER.into(),
                    app: app.into(),
                    credentials,
                    custom_fields: BTreeMap::new(),
                    expires_at,
                },
            )
            .await
            .unwrap()
            .id()
            .to_string()
    }

    async fn probe(&self, input: Value, grants: HttpGrants, secrets: RunSecrets) -> RunReport {
        let step = self
            .engine
            .load(component_bytes(guests::HTTP_PROBE))
            .await
            .unwrap();
        let mut options = RunOptions::local("http-probe");
        options.context.external_user_id = Some(USER.into());
        options.http_grants = grants;
        options.secrets = secrets;
        self.engine.run(&step, &input.to_string(), options).await
    }
}

fn apps(slugs: &[&str]) -> HttpGrants {
    HttpGrants {
        apps: slugs.iter().map(|s| s.to_string()).collect(),
        allowed_hosts: vec![],
    }
}

fn hosts(rules: &[&str]) -> HttpGrants {
    HttpGrants {
        apps: Default::default(),
        allowed_hosts: rules.iter().map(|s| s.to_string()).collect(),
    }
}

fn output(report: &RunReport) -> Value {
    match &report.outcome {
        Ok(o) => serde_json::from_str(o).unwrap(),
        Err(e) => panic!("the run failed: {e}; logs {:?}", report.logs),
    }
}

/// The error code and message of a failed request.
fn http_error(report: &RunReport) -> (String, String) {
    match &report.outcome {
        Err(RunFailure::StepError(e)) => (e.code.clone().unwrap(), e.message.clone()),
        other => panic!("expected a failed request, got {other:?}"),
    }
}

fn no_secrets() -> RunSecrets {
    RunSecrets::default()
}

fn secret(name: &str, value: &str) -> RunSecrets {
    RunSecrets::new(
        SecretGrants {
            names: [name.to_string()].into(),
            reveal: Default::default(),
        },
        [(name.to_string(), Zeroizing::new(value.to_string()))],
    )
}

fn header<'a>(request: &'a Value, name: &str) -> Option<&'a str> {
    request["headers"][name].as_str()
}

/// The credential reached the upstream exactly where expected, and nowhere else.
fn assert_only_at(request: &Value, value: &str, place: &str) {
    let headers = request["headers"].as_object().unwrap();
    for (name, v) in headers {
        let holds = v.as_str().unwrap_or("").contains(value);
        assert_eq!(
            holds,
            format!("header:{name}") == place,
            "header {name}: {v} (want {place})"
        );
    }
    let in_query = request["query"].as_str().unwrap().contains(value);
    assert_eq!(
        in_query,
        place.starts_with("query:"),
        "query {:?} (want {place})",
        request["query"]
    );
    assert!(!request["body"].as_str().unwrap().contains(value), "body");
    assert!(!request["path"].as_str().unwrap().contains(value), "path");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_auth_kind_lands_where_its_app_says_and_nowhere_else() {
    let echo = fakes::echo().await;
    let a = echo.addr;
    let w = world(Setup {
        apps: vec![
            app_toml(
                "t-bearer",
                "bearer",
                a,
                "header = \"Authorization\"\ntemplate = \"Bearer {{token}}\"",
                "",
            ),
            app_toml(
                "t-key-header",
                "api-key",
                a,
                "header = \"x-api-key\"\ntemplate = \"{{api_key}}\"",
                "",
            ),
            app_toml(
                "t-key-query",
                "api-key",
                a,
                "query = \"api_key\"\ntemplate = \"{{api_key}}\"",
                "",
            ),
            app_toml(
                "t-basic",
                "basic",
                a,
                "header = \"Authorization\"\ntemplate = \"Basic {{basic}}\"",
                "",
            ),
            app_toml(
                "t-custom",
                "custom",
                a,
                "header = \"X-Shop-Token\"\ntemplate = \"{{access_token}}\"",
                "",
            ),
        ],
        ..Setup::default()
    })
    .await;
    let cases = [
        (
            "t-bearer",
            vec![("token", "tok_bearer_111111")],
            "tok_bearer_111111",
            "header:authorization",
        ),
        (
            "t-key-header",
            vec![("api_key", "key_header_222222")],
            "key_header_222222",
            "header:x-api-key",
        ),
        (
            "t-key-query",
            vec![("api_key", "key_query_333333")],
            "key_query_333333",
            "query:api_key",
        ),
        (
            "t-custom",
            vec![("access_token", "shpat_444444")],
            "shpat_444444",
            "header:x-shop-token",
        ),
    ];
    for (app, creds, value, place) in cases {
        w.add_account(app, &creds, None).await;
        let before = echo.requests().len();
        let report = w
            .probe(
                json!({"url": "/anything", "auth": {"account": app}}),
                apps(&[app]),
                no_secrets(),
            )
            .await;
        assert_eq!(output(&report)["status"], 200, "{app}");
        let request = &echo.requests()[before];
        assert_only_at(request, value, place);
        if place.starts_with("header:") {
            assert_eq!(request["query"], "", "{app}");
        }
        // The step saw the echo only masked.
        assert!(
            !report.outcome.as_ref().unwrap().contains(value),
            "{app} leaked to the step"
        );
    }
    w.add_account(
        "t-basic",
        &[
            ("username", "ada@example.com/token"),
            ("password", "zd_pw_555555"),
        ],
        None,
    )
    .await;
    let before = echo.requests().len();
    let report = w
        .probe(
            json!({"url": "/x", "auth": {"account": "t-basic"}}),
            apps(&["t-basic"]),
            no_secrets(),
        )
        .await;
    assert_eq!(output(&report)["status"], 200);
    let request = &echo.requests()[before];
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ada@example.com/token:zd_pw_555555")
    );
    assert_eq!(header(request, "authorization"), Some(expected.as_str()));

    // A relative URL stays under the app's base URL: dot segments, raw or
    // encoded, are refused before anything is sent (the proxy's rule too).
    let before = echo.requests().len();
    for url in ["/../x", "/a/%2e%2e/x", "/a/.%2E/x", "/a\\..\\x", "/.\t./x"] {
        let report = w
            .probe(
                json!({"url": url, "auth": {"account": "t-basic"}}),
                apps(&["t-basic"]),
                no_secrets(),
            )
            .await;
        let (code, message) = http_error(&report);
        assert_eq!(code, "invalid_request", "{url}: {message}");
        assert!(
            message.contains("relative URL must not contain"),
            "{url}: {message}"
        );
    }
    assert_eq!(echo.requests().len(), before, "a refused request was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_handles_become_credentials_host_side() {
    let echo = fakes::echo().await;
    let w = world(Setup::default()).await;
    let url = echo.url("/s");
    let grants = || hosts(&["127.0.0.1"]);
    let cases = [
        (json!({"bearer": "K"}), "header:authorization"),
        (json!({"header": ["x-api-key", "K"]}), "header:x-api-key"),
        (json!({"query": ["key", "K"]}), "query:key"),
    ];
    for (auth, place) in cases {
        let before = echo.requests().len();
        let report = w
            .probe(
                json!({"url": url, "auth": auth}),
                grants(),
                secret("K", "sk_handle_777777"),
            )
            .await;
        assert_eq!(output(&report)["status"], 200);
        assert_only_at(&echo.requests()[before], "sk_handle_777777", place);
    }
    let before = echo.requests().len();
    let report = w
        .probe(
            json!({"url": url, "auth": {"basic": ["api", "K"]}}),
            grants(),
            secret("K", "sk_handle_777777"),
        )
        .await;
    assert_eq!(output(&report)["status"], 200);
    let auth = header(&echo.requests()[before], "authorization")
        .unwrap()
        .to_string();
    assert!(auth.starts_with("Basic "), "{auth}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_may_not_set_authorization_or_other_restricted_headers() {
    let echo = fakes::echo().await;
    let w = world(Setup::default()).await;
    for name in [
        "Authorization",
        "cookie",
        "Host",
        "content-length",
        "transfer-encoding",
        "proxy-authorization",
        "sec-fetch-mode",
        "X-HTTP-Method",
        "x-method-override",
    ] {
        let report = w
            .probe(
                json!({"url": echo.url("/"), "headers": [[name, "x"]]}),
                hosts(&["127.0.0.1"]),
                no_secrets(),
            )
            .await;
        let (code, message) = http_error(&report);
        assert_eq!(code, "invalid_request", "{name}");
        assert!(
            message.to_lowercase().contains(&name.to_lowercase()),
            "{message}"
        );
    }
    let report = w
        .probe(
            json!({"url": echo.url("/"), "headers": [["x-evil", "a\r\nb"]]}),
            hosts(&["127.0.0.1"]),
            no_secrets(),
        )
        .await;
    assert_eq!(http_error(&report).0, "invalid_request");
    assert!(echo.requests().is_empty(), "nothing reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_targets_are_refused_before_anything_is_dialed() {
    let echo = fakes::echo().await;
    let port = echo.addr.port();
    // No operator ranges: loopback is off limits, by literal and by name.
    let strict = world(Setup {
        allow_loopback: false,
        ..Setup::default()
    })
    .await;
    let denied = |report: &RunReport| {
        let (code, message) = http_error(report);
        assert_eq!(code, "denied", "{message}");
        message
    };
    let all = hosts(&[
        "127.0.0.1",
        "localhost",
        "169.254.169.254",
        "10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:127.0.0.1",
    ]);
    let m = denied(
        &strict
            .probe(
                json!({"url": format!("http://127.0.0.1:{port}/")}),
                all.clone(),
                no_secrets(),
            )
            .await,
    );
    assert!(m.contains("loopback"), "{m}");
    let m = denied(
        &strict
            .probe(
                json!({"url": format!("http://localhost:{port}/")}),
                all.clone(),
                no_secrets(),
            )
            .await,
    );
    assert!(
        m.contains("127.0.0.1") || m.contains("::1") || m.contains("loopback"),
        "{m}"
    );
    let m = denied(
        &strict
            .probe(
                json!({"url": format!("http://[::ffff:127.0.0.1]:{port}/")}),
                all.clone(),
                no_secrets(),
            )
            .await,
    );
    assert!(m.contains("127.0.0.1") || m.contains("::ffff"), "{m}");
    assert!(echo.requests().is_empty(), "nothing reached loopback");

    // Even with loopback allowed, metadata, private and embedded forms stay refused.
    let w = world(Setup::default()).await;
    let m = denied(
        &w.probe(
            json!({"url": "http://169.254.169.254/latest/meta-data/"}),
            all.clone(),
            no_secrets(),
        )
        .await,
    );
    assert!(m.contains("169.254.169.254"), "{m}");
    denied(
        &w.probe(
            json!({"url": "http://[::ffff:169.254.169.254]/"}),
            all.clone(),
            no_secrets(),
        )
        .await,
    );
    denied(
        &w.probe(
            json!({"url": "http://10.0.0.1/"}),
            all.clone(),
            no_secrets(),
        )
        .await,
    );
    // A redirect to a private address is checked before it is followed.
    let to = urlencode("http://169.254.169.254/latest/meta-data/");
    let m = denied(
        &w.probe(
            json!({"url": echo.url(&format!("/redirect?to={to}"))}),
            all.clone(),
            no_secrets(),
        )
        .await,
    );
    assert!(m.contains("169.254.169.254"), "{m}");
    // A host outside the grants.
    let m = denied(
        &w.probe(
            json!({"url": echo.url("/")}),
            hosts(&["api.example.com"]),
            no_secrets(),
        )
        .await,
    );
    assert!(m.contains("not granted"), "{m}");
    // Allowed by name once the operator allows the range.
    let report = w
        .probe(
            json!({"url": format!("http://localhost:{port}/ok")}),
            all,
            no_secrets(),
        )
        .await;
    assert_eq!(output(&report)["status"], 200);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_and_credentials_stay_on_their_origin() {
    let a = fakes::echo().await;
    let b = fakes::echo().await;
    let w = world(Setup {
        apps: vec![app_toml(
            "t-bearer",
            "bearer",
            a.addr,
            "header = \"Authorization\"\ntemplate = \"Bearer {{token}}\"",
            "",
        )],
        ..Setup::default()
    })
    .await;
    w.add_account("t-bearer", &[("token", "tok_redirect_888888")], None)
        .await;
    // Same origin: the credential follows.
    let to = urlencode(&a.url("/landing"));
    let report = w
        .probe(
            json!({"url": format!("/redirect?to={to}"), "auth": {"account": "t-bearer"}}),
            apps(&["t-bearer"]),
            no_secrets(),
        )
        .await;
    assert_eq!(output(&report)["status"], 200);
    let landing = a
        .requests()
        .into_iter()
        .find(|r| r["path"] == "/landing")
        .unwrap();
    assert_eq!(
        header(&landing, "authorization"),
        Some("Bearer tok_redirect_888888")
    );
    // Another origin (another port): the credential is dropped.
    let to = urlencode(&b.url("/elsewhere"));
    let report = w
        .probe(json!({"url": format!("/redirect?to={to}&status=307"), "auth": {"account": "t-bearer"}}), apps(&["t-bearer"]), no_secrets())
        .await;
    assert_eq!(output(&report)["status"], 200);
    let elsewhere = &b.requests()[0];
    assert_eq!(header(elsewhere, "authorization"), None);
    assert!(!elsewhere.to_string().contains("tok_redirect_888888"));
    // More than 5 hops: refused.
    let mut url = a.url("/final");
    for _ in 0..6 {
        url = a.url(&format!("/redirect?to={}", urlencode(&url)));
    }
    let report = w
        .probe(json!({"url": url}), hosts(&["127.0.0.1"]), no_secrets())
        .await;
    assert!(http_error(&report).1.contains("more than 5 redirects"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_echoing_the_credential_leaks_nothing() {
    let echo = fakes::echo().await;
    let w = world(Setup {
        apps: vec![app_toml(
            "t-basic",
            "basic",
            echo.addr,
            "header = \"Authorization\"\ntemplate = \"Basic {{basic}}\"",
            "",
        )],
        ..Setup::default()
    })
    .await;
    w.add_account(
        "t-basic",
        &[("username", "svc-user"), ("password", "pw_echo_999999")],
        None,
    )
    .await;
    let report = w
        .probe(
            json!({"url": "/echo", "auth": {"account": "t-basic"}, "log_response": true}),
            apps(&["t-basic"]),
            no_secrets(),
        )
        .await;
    let out = report.outcome.as_ref().unwrap();
    let logs: String = report
        .logs
        .iter()
        .map(|l| format!("{}\n", l.text))
        .collect();
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode("svc-user:pw_echo_999999");
    for needle in ["pw_echo_999999", encoded.as_str(), "svc-user:pw_echo"] {
        assert!(!out.contains(needle), "output leaks {needle}: {out}");
        assert!(!logs.contains(needle), "logs leak {needle}: {logs}");
    }
    assert!(logs.contains("upstream said"), "{logs}");
    assert!(logs.contains("REDACTED"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_caps_and_the_rate_limit_give_their_own_errors() {
    let echo = fakes::echo().await;
    let w = world(Setup {
        quota: Quota {
            max: 3,
            period: Duration::from_secs(300),
        },
        http: HttpConfig {
            max_response_body: 1024 * 1024,
            ..HttpConfig::default()
        },
        ..Setup::default()
    })
    .await;
    let grants = || hosts(&["127.0.0.1"]);
    let started = Instant::now();
    let report = w
        .probe(
            json!({"url": echo.url("/slow?ms=5000"), "timeout_ms": 300}),
            grants(),
            no_secrets(),
        )
        .await;
    assert_eq!(http_error(&report).0, "timeout");
    assert!(
        started.elapsed() < Duration::from_millis(4000),
        "ended within its bound"
    );
    let report = w
        .probe(
            json!({"url": echo.url(&format!("/big?bytes={}", 2 * 1024 * 1024))}),
            grants(),
            no_secrets(),
        )
        .await;
    let (code, message) = http_error(&report);
    assert_eq!(code, "too_large", "{message}");
    // Two requests spent; the quota of 3 allows one more, then refuses.
    let report = w
        .probe(json!({"url": echo.url("/ok")}), grants(), no_secrets())
        .await;
    assert_eq!(output(&report)["status"], 200);
    let report = w
        .probe(json!({"url": echo.url("/ok")}), grants(), no_secrets())
        .await;
    let (code, message) = http_error(&report);
    assert_eq!(code, "rate_limited", "{message}");
    assert!(message.contains("retry after"), "{message}");
}

/// The OAuth world: an app whose token URL is the fake provider, client
/// credentials stored as the project's secrets, an expired account.
async fn oauth_world(oauth: &fakes::OAuthFake) -> (World, String) {
    let a = oauth.fake.addr;
    let toml = app_toml(
        "t-oauth",
        "oauth2",
        a,
        "header = \"Authorization\"\ntemplate = \"Bearer {{access_token}}\"",
        &format!(
            "[oauth]\nauthorize_url = \"http://{a}/oauth/authorize\"\ntoken_url = \"http://{a}/oauth/token\"\nscopes = [\"read\"]\n"
        ),
    );
    // `[oauth]` must come after the top-level keys and `[credential]` is a
    // table too; app_toml puts `extra` before `[credential]`, which works.
    let w = world(Setup {
        apps: vec![toml],
        ..Setup::default()
    })
    .await;
    w.secrets
        .set(&w.key, "local", "oauth.t-oauth.client_id", OAUTH_CLIENT_ID)
        .await
        .unwrap();
    w.secrets
        .set(
            &w.key,
            "local",
            "oauth.t-oauth.client_secret",
            OAUTH_CLIENT_SECRET,
        )
        .await
        .unwrap();
    let expired = now() - 10;
    let id = w
        .add_account(
            "t-oauth",
            &[
                ("access_token", "access-expired"),
                ("refresh_token", "refresh-0"),
            ],
            Some(expired),
        )
        .await;
    (w, id)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_runs_refresh_an_expired_token_once() {
    let oauth = fakes::oauth("refresh-0", "access-gen0").await;
    let (w, id) = oauth_world(&oauth).await;
    let w = Arc::new(w);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            w.probe(
                json!({"url": "/api/me", "auth": {"account": "t-oauth"}}),
                apps(&["t-oauth"]),
                no_secrets(),
            )
            .await
        }));
    }
    for t in tasks {
        let report = t.await.unwrap();
        assert_eq!(output(&report)["status"], 200, "{:?}", report.outcome);
    }
    assert_eq!(
        oauth.state.token_requests.load(Ordering::SeqCst),
        1,
        "exactly one refresh"
    );
    // The rotated refresh token was stored with the new access token.
    let account = w.accounts.get(&w.key, "local", &id).await.unwrap().unwrap();
    assert_eq!(
        account.credential("refresh_token"),
        Some(oauth.state.current_refresh_token().as_str())
    );
    assert_eq!(
        account.credential("access_token"),
        Some(oauth.state.current_access_token().as_str())
    );
    assert!(account.meta.expires_at.unwrap() > now() + 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_triggers_one_refresh_and_one_retry() {
    let oauth = fakes::oauth("refresh-0", "access-gen0").await;
    let (w, _id) = oauth_world(&oauth).await;
    // First call refreshes (expired) and succeeds.
    let report = w
        .probe(
            json!({"url": "/api/me", "auth": {"account": "t-oauth"}}),
            apps(&["t-oauth"]),
            no_secrets(),
        )
        .await;
    assert_eq!(output(&report)["status"], 200);
    assert_eq!(oauth.state.token_requests.load(Ordering::SeqCst), 1);
    // The provider now rotates the access token behind our back (revocation):
    // simulate by a refresh through the fake directly is not possible, so
    // call with a valid-looking but stale stored token instead.
    let account = w
        .accounts
        .find(&w.key, "local", USER, "t-oauth")
        .await
        .unwrap()
        .unwrap();
    w.accounts
        .save_refreshed(
            &w.key,
            "local",
            account.id(),
            "access-revoked",
            None,
            Some(now() + 3600),
        )
        .await
        .unwrap();
    let report = w
        .probe(
            json!({"url": "/api/me", "auth": {"account": "t-oauth"}}),
            apps(&["t-oauth"]),
            no_secrets(),
        )
        .await;
    assert_eq!(output(&report)["status"], 200, "retried after one refresh");
    assert_eq!(
        oauth.state.token_requests.load(Ordering::SeqCst),
        2,
        "one refresh for the 401"
    );
    let me = oauth
        .fake
        .requests()
        .into_iter()
        .filter(|r| r["path"] == "/api/me")
        .count();
    assert_eq!(me, 3, "first call, the refused call, one retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_marks_the_account_as_needing_reauthorisation() {
    let oauth = fakes::oauth("refresh-0", "access-gen0").await;
    let (w, id) = oauth_world(&oauth).await;
    oauth.state.revoke_refresh();
    let report = w
        .probe(
            json!({"url": "/api/me", "auth": {"account": "t-oauth"}}),
            apps(&["t-oauth"]),
            no_secrets(),
        )
        .await;
    let (code, message) = http_error(&report);
    assert_eq!(code, "credential_unusable", "{message}");
    assert!(message.contains("re-authorisation"), "{message}");
    let account = w.accounts.get(&w.key, "local", &id).await.unwrap().unwrap();
    assert_eq!(account.meta.status, AccountStatus::NeedsReauth);
    // Later runs fail fast, without asking the provider again.
    let before = oauth.state.token_requests.load(Ordering::SeqCst);
    let report = w
        .probe(
            json!({"url": "/api/me", "auth": {"account": "t-oauth"}}),
            apps(&["t-oauth"]),
            no_secrets(),
        )
        .await;
    assert_eq!(http_error(&report).0, "credential_unusable");
    assert_eq!(oauth.state.token_requests.load(Ordering::SeqCst), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_not_granted_by_the_manifest_is_denied() {
    let echo = fakes::echo().await;
    let w = world(Setup {
        apps: vec![app_toml(
            "t-bearer",
            "bearer",
            echo.addr,
            "header = \"Authorization\"\ntemplate = \"Bearer {{token}}\"",
            "",
        )],
        ..Setup::default()
    })
    .await;
    w.add_account("t-bearer", &[("token", "tok_ungranted_1")], None)
        .await;
    let report = w
        .probe(
            json!({"url": "/", "auth": {"account": "t-bearer"}}),
            apps(&[]),
            no_secrets(),
        )
        .await;
    let (code, message) = http_error(&report);
    assert_eq!(code, "denied");
    assert!(message.contains("does not grant app t-bearer"), "{message}");
    assert!(echo.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_credential_copied_into_a_redirect_never_reaches_another_origin() {
    let a = fakes::echo().await;
    let b = fakes::echo().await;
    let w = world(Setup {
        apps: vec![app_toml(
            "t-key-query",
            "api-key",
            a.addr,
            "query = \"api_key\"\ntemplate = \"{{api_key}}\"",
            "",
        )],
        ..Setup::default()
    })
    .await;
    w.add_account("t-key-query", &[("api_key", "key_leaky_redirect_42")], None)
        .await;
    let to = urlencode(&b.url("/landing"));
    let report = w
        .probe(
            json!({"url": format!("/redirect-keep-query?to={to}"), "auth": {"account": "t-key-query"}}),
            apps(&["t-key-query"]),
            no_secrets(),
        )
        .await;
    assert_eq!(output(&report)["status"], 200, "{:?}", report.outcome);
    // Origin A got the key; origin B never did, in any form.
    assert!(
        a.requests()[0]["query"]
            .as_str()
            .unwrap()
            .contains("key_leaky_redirect_42")
    );
    let landing = &b.requests()[0];
    assert!(
        !landing.to_string().contains("key_leaky_redirect_42"),
        "{landing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_summaries_are_masked() {
    let echo = fakes::echo().await;
    let w = world(Setup::default()).await;
    let token = "bot_token_in_path_123456";
    // The step knows the token (it came in its input) and also holds it as a
    // granted secret, so the run has registered it.
    let report = w
        .probe(
            json!({"url": echo.url(&format!("/bot{token}/send?x=1")), "auth": {"bearer": "K"}}),
            hosts(&["127.0.0.1"]),
            secret("K", token),
        )
        .await;
    assert_eq!(output(&report)["status"], 200);
    let call = &report.http_calls[0];
    assert_eq!(call.method, "GET");
    assert_eq!(call.status, Some(200));
    assert!(!call.url.contains(token), "{}", call.url);
    assert!(call.url.contains("[REDACTED:K]"), "{}", call.url);
    assert!(
        !call.url.contains("x=1"),
        "no query in summaries: {}",
        call.url
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_only_sent_over_https() {
    let echo = fakes::echo().await;
    let port = echo.addr.port();
    let w = world(Setup::default()).await;
    // Plain http to a name (even one the operator's ranges allow): refused.
    let report = w
        .probe(
            json!({"url": format!("http://localhost:{port}/"), "auth": {"bearer": "K"}}),
            hosts(&["localhost"]),
            secret("K", "sk_cleartext_000001"),
        )
        .await;
    let (code, message) = http_error(&report);
    assert_eq!(code, "denied");
    assert!(message.contains("only sent over https"), "{message}");
    assert!(echo.requests().is_empty());
    // Without a credential, plain http to an allowed host is fine.
    let report = w
        .probe(
            json!({"url": format!("http://localhost:{port}/")}),
            hosts(&["localhost"]),
            no_secrets(),
        )
        .await;
    assert_eq!(output(&report)["status"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_cannot_read_a_secret_by_having_an_upstream_echo_it() {
    let echo = fakes::echo().await;
    let w = world(Setup::default()).await;
    let value = "sk_no_reveal_grant_777";
    // K is granted for use but not for reveal; the step sends it to an echo
    // server and reverses what comes back (which output masking alone
    // would never recognise).
    let report = w
        .probe(
            json!({"url": echo.url("/"), "auth": {"header": ["x-key", "K"]}, "reverse_body": true}),
            hosts(&["127.0.0.1"]),
            secret("K", value),
        )
        .await;
    let out = output(&report);
    assert!(
        echo.requests()[0].to_string().contains(value),
        "the upstream got it"
    );
    let reversed: String = value.chars().rev().collect();
    let text = out.to_string();
    assert!(
        !text.contains(&reversed),
        "the step read the secret through the echo: {text}"
    );
    assert!(!text.contains(value));
    assert!(
        out["body"].as_str().unwrap().contains("[REDACTED:K]"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_basic_username_with_a_colon_is_refused() {
    let echo = fakes::echo().await;
    let w = world(Setup::default()).await;
    let report = w
        .probe(
            json!({"url": echo.url("/"), "auth": {"basic": ["ad:min", "K"]}}),
            hosts(&["127.0.0.1"]),
            secret("K", "sk_basic_colon_0001"),
        )
        .await;
    let (code, message) = http_error(&report);
    assert_eq!(code, "invalid_request");
    assert!(message.contains("RFC 7617"), "{message}");
    assert!(echo.requests().is_empty());
}
