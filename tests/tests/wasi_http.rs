//! Standard `wasi:http` clients (the `wasi-http-probe` guest uses `wstd`'s
//! client, no Airlock HTTP API) through the one pipeline, against loopback
//! fakes: credentials named by `x-airlock-*` headers reach the upstream and
//! are masked in everything the step sees and emits; grants, address
//! checks, restricted headers, the body cap, redirects, the rate limit and
//! call records behave as for `http.send`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use airlock_host_api::apps::Catalog;
use airlock_host_api::http::egress::parse_range;
use airlock_host_api::http::pipeline::{AccountSource, HttpConfig, HttpGrants};
use airlock_host_api::http::ratelimit::Quota;
use airlock_host_api::secrets::{RunSecrets, SecretGrants};
use airlock_runtime::engine::{Engine, EngineConfig, RunFailure, RunOptions, RunReport};
use airlock_runtime::outbound::{self, OutboundConfig, StoredAccounts};
use airlock_runtime::store::accounts::{AccountStore, NewAccount};
use airlock_runtime::store::{MasterKey, SecretStore};
use airlock_tests::fakes;
use airlock_tests::{component_bytes, guests, test_cache_dir};
use serde_json::{Value, json};
use zeroize::Zeroizing;

const USER: &str = "user-1";

struct World {
    engine: Engine,
    accounts: AccountStore,
    key: Arc<MasterKey>,
    _secrets: SecretStore,
    _dir: tempfile::TempDir,
}

struct Setup {
    apps: Vec<String>,
    allow_loopback: bool,
    quota: Quota,
    http: HttpConfig,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            apps: Vec::new(),
            allow_loopback: true,
            quota: Quota::DEFAULT,
            http: HttpConfig::default(),
        }
    }
}

/// A bearer app whose base URL is the loopback fake at `addr`.
fn bearer_app(slug: &str, addr: std::net::SocketAddr) -> String {
    format!(
        "slug = \"{slug}\"\nname = \"{slug}\"\nauth = \"bearer\"\nbase_url = \"http://{addr}\"\n\
         allowed_domains = [\"127.0.0.1\"]\n\n[credential]\nheader = \"Authorization\"\n\
         template = \"Bearer {{{{token}}}}\"\n"
    )
}

async fn world(setup: Setup) -> World {
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
            max_concurrent_runs: 8,
            cache_dir: Some(test_cache_dir()),
            ..EngineConfig::default()
        },
        pipeline,
    )
    .unwrap();
    World {
        accounts: AccountStore::new(&secrets),
        engine,
        key,
        _secrets: secrets,
        _dir: dir,
    }
}

impl World {
    async fn add_account(&self, app: &str, token: &str) -> String {
        self.accounts
            .create(
                &self.key,
                NewAccount {
                    project: "local".into(),
                    external_user_id: USER.into(),
                    app: app.into(),
                    credentials: [("token".to_string(), Zeroizing::new(token.to_string()))].into(),
                    custom_fields: BTreeMap::new(),
                    expires_at: None,
                },
            )
            .await
            .unwrap()
            .id()
            .to_string()
    }

    async fn probe(&self, input: Value, grants: HttpGrants, secrets: RunSecrets) -> RunReport {
        probe_on(&self.engine, input, grants, secrets).await
    }
}

async fn probe_on(
    engine: &Engine,
    input: Value,
    grants: HttpGrants,
    secrets: RunSecrets,
) -> RunReport {
    let step = engine
        .load(component_bytes(guests::WASI_HTTP_PROBE))
        .await
        .unwrap();
    let mut options = RunOptions::local("wasi-http-probe");
    options.context.external_user_id = Some(USER.into());
    options.http_grants = grants;
    options.secrets = secrets;
    engine.run(&step, &input.to_string(), options).await
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

fn secret(name: &str, value: &str) -> RunSecrets {
    RunSecrets::new(
        SecretGrants {
            names: [name.to_string()].into(),
            reveal: Default::default(),
        },
        [(name.to_string(), Zeroizing::new(value.to_string()))],
    )
}

fn output(report: &RunReport) -> Value {
    match &report.outcome {
        Ok(o) => serde_json::from_str(o).unwrap(),
        Err(e) => panic!("the run failed: {e}; logs {:?}", report.logs),
    }
}

/// The guest's error code and message for a failed request.
fn failure(report: &RunReport) -> (String, String) {
    match &report.outcome {
        Err(RunFailure::StepError(e)) => (e.code.clone().unwrap_or_default(), e.message.clone()),
        other => panic!("expected a failed request, got {other:?}"),
    }
}

fn logs(report: &RunReport) -> String {
    report
        .logs
        .iter()
        .map(|l| format!("{}\n", l.text))
        .collect()
}

/// Everything the step emitted: output or error, and its log.
fn emitted(report: &RunReport) -> String {
    let outcome = match &report.outcome {
        Ok(o) => o.clone(),
        Err(e) => format!("{e:?}"),
    };
    format!("{outcome}\n{}\n{:?}", logs(report), report.http_calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_credential_reaches_the_upstream_and_the_step_never_sees_it() {
    let echo = fakes::echo().await;
    let w = world(Setup {
        apps: vec![bearer_app("t-bearer", echo.addr)],
        ..Setup::default()
    })
    .await;
    let token = "tok_wasi_account_424242";
    let account = w.add_account("t-bearer", token).await;
    // Relative to the app's base URL through its `.airlock.internal` name.
    let report = w
        .probe(
            json!({
                "url": "https://t-bearer.airlock.internal/echo?page=2",
                "headers": [["x-airlock-account", "t-bearer"], ["accept", "application/json"]],
                "log_response": true,
            }),
            apps(&["t-bearer"]),
            RunSecrets::default(),
        )
        .await;
    let out = output(&report);
    assert_eq!(out["status"], 200, "{out}");
    let seen = &echo.requests()[0];
    assert_eq!(seen["path"], "/echo");
    assert_eq!(seen["query"], "page=2");
    assert_eq!(seen["headers"]["authorization"], format!("Bearer {token}"));
    assert_eq!(seen["headers"]["accept"], "application/json");
    let upstream_headers = seen["headers"].as_object().unwrap();
    assert!(
        upstream_headers
            .keys()
            .all(|k| !k.starts_with("x-airlock-")),
        "control headers never leave the host: {seen}"
    );
    // The echo sent the token back; the step got it masked, with a
    // Content-Length that is the masked body's.
    let all = emitted(&report);
    assert!(!all.contains(token), "the step saw the token: {all}");
    let body = out["body"].as_str().unwrap();
    assert!(body.contains("[REDACTED"), "{body}");
    assert_eq!(
        out["headers"]["content-length"],
        out["body_len"].to_string(),
        "{out}"
    );
    assert!(logs(&report).contains("upstream said"));
    // Recorded like an `http.send` call, with the account, without the query.
    let call = &report.http_calls[..];
    assert_eq!(call.len(), 1, "{call:?}");
    assert_eq!(call[0].method, "GET");
    assert_eq!(call[0].status, Some(200));
    assert_eq!(call[0].account_id.as_deref(), Some(account.as_str()));
    assert_eq!(call[0].url, format!("http://{}/echo", echo.addr));

    // A full URL on an allowed domain, the account named by id.
    let report = w
        .probe(
            json!({"url": echo.url("/by-id"), "headers": [["x-airlock-account", account]]}),
            apps(&["t-bearer"]),
            RunSecrets::default(),
        )
        .await;
    assert_eq!(output(&report)["status"], 200);
    assert_eq!(
        echo.requests()[1]["headers"]["authorization"],
        format!("Bearer {token}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_named_by_x_airlock_auth_lands_where_it_says_and_is_masked() {
    let echo = fakes::echo().await;
    let w = world(Setup::default()).await;
    let value = "sk_wasi_secret_777777";
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("svc:{value}"));
    for (auth, place, expect) in [
        ("bearer K", "authorization", format!("Bearer {value}")),
        ("basic svc K", "authorization", format!("Basic {basic}")),
        ("header x-api-key K", "x-api-key", value.to_string()),
        ("query api_key K", "query", format!("api_key={value}")),
    ] {
        let before = echo.requests().len();
        let report = w
            .probe(
                json!({"url": echo.url("/s"), "headers": [["x-airlock-auth", auth]], "log_response": true}),
                hosts(&["127.0.0.1"]),
                secret("K", value),
            )
            .await;
        let out = output(&report);
        assert_eq!(out["status"], 200, "{auth}: {out}");
        let seen = &echo.requests()[before];
        let got = if place == "query" {
            seen["query"].as_str().unwrap().to_string()
        } else {
            seen["headers"][place]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(got, expect, "{auth}: {seen}");
        let all = emitted(&report);
        for needle in [value, basic.as_str()] {
            assert!(
                !all.contains(needle),
                "{auth}: the step saw {needle}: {all}"
            );
        }
        assert!(
            out["body"].as_str().unwrap().contains("[REDACTED"),
            "{auth}"
        );
    }

    // A secret outside the grant: denied, nothing sent, the reason logged.
    let before = echo.requests().len();
    let report = w
        .probe(
            json!({"url": echo.url("/s"), "headers": [["x-airlock-auth", "bearer OTHER"]]}),
            hosts(&["127.0.0.1"]),
            secret("K", value),
        )
        .await;
    let (code, message) = failure(&report);
    assert_eq!(code, "wasi_http", "{message}");
    assert!(message.contains("HttpRequestDenied"), "{message}");
    assert!(
        logs(&report).contains("secret OTHER is not granted"),
        "{}",
        logs(&report)
    );
    assert_eq!(echo.requests().len(), before);

    // Granted but without a value: an unusable credential is a 401.
    let granted_empty = RunSecrets::new(
        SecretGrants {
            names: ["K".to_string()].into(),
            reveal: Default::default(),
        },
        [],
    );
    let report = w
        .probe(
            json!({"url": echo.url("/s"), "headers": [["x-airlock-auth", "bearer K"]]}),
            hosts(&["127.0.0.1"]),
            granted_empty,
        )
        .await;
    let out = output(&report);
    assert_eq!(out["status"], 401, "{out}");
    assert!(
        out["body"]
            .as_str()
            .unwrap()
            .contains("secret K has no value")
    );
    assert_eq!(echo.requests().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_outside_the_grants_and_forbidden_addresses_are_refused() {
    let echo = fakes::echo().await;
    let port = echo.addr.port();
    let w = world(Setup {
        apps: vec![bearer_app("t-bearer", echo.addr)],
        ..Setup::default()
    })
    .await;
    w.add_account("t-bearer", "tok_scope_111111").await;
    let denied = |report: &RunReport, why: &str| {
        let (code, message) = failure(report);
        assert_eq!(code, "wasi_http", "{message}");
        assert!(message.contains("HttpRequestDenied"), "{message}");
        assert!(
            logs(report).contains(why),
            "want {why:?} in {}",
            logs(report)
        );
    };
    // An account's credential goes only to its app's allowed domains.
    let report = w
        .probe(
            json!({"url": format!("http://localhost:{port}/"), "headers": [["x-airlock-account", "t-bearer"]]}),
            apps(&["t-bearer"]),
            RunSecrets::default(),
        )
        .await;
    denied(&report, "not among the allowed domains of app t-bearer");
    // An app the manifest does not grant.
    let report = w
        .probe(
            json!({"url": "https://t-bearer.airlock.internal/", "headers": [["x-airlock-account", "t-bearer"]]}),
            apps(&[]),
            RunSecrets::default(),
        )
        .await;
    denied(&report, "does not grant app t-bearer");
    // A secret goes only to the manifest's allowed hosts.
    let report = w
        .probe(
            json!({"url": echo.url("/"), "headers": [["x-airlock-auth", "bearer K"]]}),
            hosts(&["api.example.com"]),
            secret("K", "sk_scope_222222"),
        )
        .await;
    denied(&report, "not granted to this step");
    // Credentials over plain http to a name: refused (https only).
    let report = w
        .probe(
            json!({"url": format!("http://localhost:{port}/"), "headers": [["x-airlock-auth", "bearer K"]]}),
            hosts(&["localhost"]),
            secret("K", "sk_scope_333333"),
        )
        .await;
    denied(&report, "only sent over https");
    // Metadata and (without the operator's allow-range) loopback addresses.
    let report = w
        .probe(
            json!({"url": "http://169.254.169.254/latest/meta-data/"}),
            hosts(&["169.254.169.254"]),
            RunSecrets::default(),
        )
        .await;
    denied(&report, "denied");
    assert!(echo.requests().is_empty(), "{:?}", echo.requests());
    let strict = world(Setup {
        allow_loopback: false,
        ..Setup::default()
    })
    .await;
    let report = strict
        .probe(
            json!({"url": echo.url("/")}),
            hosts(&["127.0.0.1"]),
            RunSecrets::default(),
        )
        .await;
    denied(&report, "denied");
    let report = strict
        .probe(
            json!({"url": format!("http://localhost:{port}/")}),
            hosts(&["localhost"]),
            RunSecrets::default(),
        )
        .await;
    denied(&report, "denied");
    assert!(echo.requests().is_empty(), "{:?}", echo.requests());
    // Each refused request is still a call record.
    assert_eq!(report.http_calls.len(), 1);
    assert_eq!(report.http_calls[0].status, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_control_headers_and_restricted_headers_are_refused() {
    let echo = fakes::echo().await;
    let w = world(Setup::default()).await;
    // A typo in a control header must not send the request without the
    // credential the author meant.
    let report = w
        .probe(
            json!({"url": echo.url("/"), "headers": [["x-airlock-acount", "github"]]}),
            hosts(&["127.0.0.1"]),
            RunSecrets::default(),
        )
        .await;
    let (code, message) = failure(&report);
    assert_eq!(code, "wasi_http");
    assert!(
        message.contains("unknown host-only header"),
        "the reason travels with the error code: {message}"
    );
    // The guest may not set credentials, cookies, framing or forwarding
    // headers: the client is refused as it builds the request.
    for name in [
        "authorization",
        "Cookie",
        "host",
        "transfer-encoding",
        "x-forwarded-for",
        "proxy-authorization",
        "x-http-method-override",
        "sec-fetch-site",
    ] {
        let report = w
            .probe(
                json!({"url": echo.url("/"), "headers": [[name, "1"]]}),
                hosts(&["127.0.0.1"]),
                RunSecrets::default(),
            )
            .await;
        let (code, message) = failure(&report);
        assert_eq!(code, "header", "{name}: {message}");
        assert!(message.contains("Forbidden"), "{name}: {message}");
    }
    assert!(echo.requests().is_empty(), "{:?}", echo.requests());
    // An ordinary header goes through.
    let report = w
        .probe(
            json!({"url": echo.url("/"), "headers": [["x-request-id", "r-1"]]}),
            hosts(&["127.0.0.1"]),
            RunSecrets::default(),
        )
        .await;
    assert_eq!(output(&report)["status"], 200);
    assert_eq!(echo.requests()[0]["headers"]["x-request-id"], "r-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_body_is_capped_and_bodies_travel_whole() {
    let echo = fakes::echo().await;
    let w = world(Setup {
        http: HttpConfig {
            max_request_body: 64 * 1024,
            ..HttpConfig::default()
        },
        ..Setup::default()
    })
    .await;
    let report = w
        .probe(
            json!({"method": "POST", "url": echo.url("/upload"), "body_bytes": 64 * 1024 + 1}),
            hosts(&["127.0.0.1"]),
            RunSecrets::default(),
        )
        .await;
    let (code, message) = failure(&report);
    assert_eq!(code, "wasi_http");
    assert!(message.contains("HttpRequestBodySize"), "{message}");
    assert!(echo.requests().is_empty());
    let report = w
        .probe(
            json!({
                "method": "POST",
                "url": echo.url("/upload"),
                "body_bytes": 64 * 1024,
                // Allowed: wasmtime-wasi-http holds the body to it.
                "headers": [["content-length", (64 * 1024).to_string()]],
            }),
            hosts(&["127.0.0.1"]),
            RunSecrets::default(),
        )
        .await;
    assert_eq!(output(&report)["status"], 200);
    let seen = &echo.requests()[0];
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["body"].as_str().unwrap().len(), 64 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_come_back_unfollowed_with_location_masked() {
    let echo = fakes::echo().await;
    let w = world(Setup::default()).await;
    let value = "key_wasi_redirect_555555";
    // A careless upstream copies the query, credential included, into
    // `Location`.
    let to = echo.url("/landing");
    let report = w
        .probe(
            json!({
                "url": echo.url(&format!("/redirect-keep-query?to={to}")),
                "headers": [["x-airlock-auth", "query api_key K"]],
            }),
            hosts(&["127.0.0.1"]),
            secret("K", value),
        )
        .await;
    let out = output(&report);
    assert_eq!(out["status"], 302, "{out}");
    let location = out["headers"]["location"].as_str().unwrap();
    assert!(location.contains("/landing"), "{location}");
    assert!(!location.contains(value), "{location}");
    assert!(location.contains("[REDACTED"), "{location}");
    assert!(!emitted(&report).contains(value));
    let paths: Vec<Value> = echo.requests().iter().map(|r| r["path"].clone()).collect();
    assert_eq!(paths, vec![json!("/redirect-keep-query")], "not followed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_answers_429_with_retry_after() {
    let echo = fakes::echo().await;
    let w = world(Setup {
        quota: Quota {
            max: 1,
            period: Duration::from_secs(120),
        },
        ..Setup::default()
    })
    .await;
    let input = json!({"url": echo.url("/ok")});
    let report = w
        .probe(input.clone(), hosts(&["127.0.0.1"]), RunSecrets::default())
        .await;
    assert_eq!(output(&report)["status"], 200);
    let report = w
        .probe(input, hosts(&["127.0.0.1"]), RunSecrets::default())
        .await;
    let out = output(&report);
    assert_eq!(out["status"], 429, "{out}");
    let retry: u64 = out["headers"]["retry-after"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=120).contains(&retry), "{retry}");
    assert_eq!(echo.requests().len(), 1);
    assert_eq!(report.http_calls.len(), 1, "the refused call is recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_outbound_http_every_request_is_denied() {
    let echo = fakes::echo().await;
    let engine = Engine::new(EngineConfig {
        max_concurrent_runs: 2,
        cache_dir: Some(test_cache_dir()),
        ..EngineConfig::default()
    })
    .unwrap();
    let report = probe_on(
        &engine,
        json!({"url": echo.url("/")}),
        hosts(&["127.0.0.1"]),
        RunSecrets::default(),
    )
    .await;
    let (_, message) = failure(&report);
    assert!(message.contains("HttpRequestDenied"), "{message}");
    assert!(logs(&report).contains("not available to this run"));
    assert!(echo.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wstd_example_lists_repositories_with_the_account_token() {
    let token = "gho_wstd_example_246810";
    let github = fakes::github(token).await;
    // The real GitHub definition, pointed at the fake.
    let real = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../host-api/apps/github.toml"
    ))
    .unwrap();
    let local = real
        .replace("https://api.github.com", &format!("http://{}", github.addr))
        .replace("\"api.github.com\"", "\"127.0.0.1\"");
    let w = world(Setup {
        apps: vec![local],
        ..Setup::default()
    })
    .await;
    w.accounts
        .create(
            &w.key,
            NewAccount {
                project: "local".into(),
                external_user_id: USER.into(),
                app: "github".into(),
                credentials: [(
                    "access_token".to_string(),
                    Zeroizing::new(token.to_string()),
                )]
                .into(),
                custom_fields: BTreeMap::new(),
                expires_at: None,
            },
        )
        .await
        .unwrap();
    let step = w
        .engine
        .load(component_bytes(airlock_tests::examples::GITHUB_REPOS_WSTD))
        .await
        .unwrap();
    let mut options = RunOptions::local("github-repos-wstd");
    options.context.external_user_id = Some(USER.into());
    options.http_grants = apps(&["github"]);
    let report = w.engine.run(&step, r#"{"limit": 5}"#, options).await;
    let out = output(&report);
    assert_eq!(out["count"], 3, "{out}");
    assert_eq!(out["repositories"][0]["name"], "ada/analytical-engine");
    let seen = &github.requests()[0];
    assert_eq!(seen["query"], "per_page=5&sort=updated");
    assert!(!emitted(&report).contains(token));
    assert_eq!(report.http_calls[0].status, Some(200));
}
