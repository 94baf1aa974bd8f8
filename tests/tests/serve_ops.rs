//! `airlock serve` operations end to end: Prometheus metrics, JSON logs,
//! retention of run records, rate limits (triggers, failed token requests),
//! OAuth client listing and Basic credentials, forced 500s and graceful
//! shutdown with a run in flight. The real binary, through the harness in
//! `airlock_tests::serve`.

use std::time::Duration;

use airlock_runtime::store::SecretStore;
use airlock_runtime::store::runs::{RunFilter, RunRecord, RunStore};
use airlock_tests::serve::{Server, ServerBuilder, timestamp};
use airlock_tests::{component_bytes, examples, guests};
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
/// The value of the secret `TOKEN` that `echo-secret` reveals and logs.
const SECRET_VALUE: &str = "tok_live_Mx4rT9qPz2LkW8sVn3YbC-serve-ops-marker";
/// A made-up API key presented to the server: it must never be echoed.
const BOGUS_KEY: &str = "ak_00112233445566ff_Bogus-Presented-Key-Marker-5e1c";
/// A made-up access token presented to the server.
const BOGUS_TOKEN: &str = "at_Bogus-Presented-Token-Marker-9a7d";

fn server() -> ServerBuilder {
    ServerBuilder::new(BIN)
}

fn echo_manifest() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/echo-secret/airlock.toml"
    ))
    .unwrap()
}

/// The value of the sample `series` (`name{labels}` exactly as exposed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(|v| v.trim().parse().unwrap())
    })
}

async fn scrape(s: &Server, token: &str) -> String {
    let r = s.call(Method::GET, "/metrics", Some(token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.text
}

/// An admin key, the projects `alpha` and `beta`, and a key with every step,
/// run and secret scope on `alpha`.
async fn setup(s: &Server) -> (String, String) {
    let admin = s.admin_setup().await;
    let key = s
        .new_key(
            &admin,
            &[
                "steps:write",
                "steps:read",
                "runs:write",
                "runs:read",
                "secrets:write",
            ],
            Some("alpha"),
        )
        .await;
    (admin, key)
}

async fn upload(s: &Server, key: &str, step: &str, component: &str, manifest: Option<&str>) {
    let r = s
        .upload("alpha", step, key, &component_bytes(component), manifest)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn put_secret(s: &Server, key: &str) {
    let r = s
        .call(
            Method::PUT,
            "/v1/projects/alpha/secrets/TOKEN",
            Some(key),
            Some(json!({"value": SECRET_VALUE})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// Creates an unsigned trigger on `step`; returns its URL path.
async fn trigger(s: &Server, key: &str, step: &str) -> String {
    let r = s
        .call(
            Method::POST,
            &format!("/v1/projects/alpha/steps/{step}/triggers"),
            Some(key),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json()["url"].as_str().unwrap().to_owned()
}

async fn fire(s: &Server, url: &str, body: Value) -> airlock_tests::serve::Reply {
    s.send(
        s.client
            .post(format!("{}{url}", s.base))
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

async fn list_runs(s: &Server, key: &str) -> Vec<Value> {
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/runs?limit=100",
            Some(key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["runs"].as_array().unwrap().clone()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn old_run(id: &str, created_at: i64) -> RunRecord {
    RunRecord {
        id: id.to_owned(),
        project: "alpha".into(),
        step: "hello".into(),
        digest: "sha256:00".into(),
        status: "succeeded".into(),
        created_at,
        duration_ms: 1,
        cpu_ticks: 0,
        memory_peak_bytes: 0,
        log_bytes: 0,
        memory_kib_ms: 0,
        http_response_bytes: 0,
        input: Some("{}".into()),
        output: Some("{}".into()),
        error: None,
        logs: Some("[]".into()),
        http_calls: None,
        attempts: 1,
        external_user_id: None,
        rerun_of: None,
        started_at: None,
    }
}

// --- metrics ---

#[tokio::test]
async fn metrics_count_runs_compiles_and_auth_failures_and_hold_no_secret() {
    let s = server().start();
    let (admin, key) = setup(&s).await;
    put_secret(&s, &key).await;
    upload(
        &s,
        &key,
        "echo",
        examples::ECHO_SECRET,
        Some(&echo_manifest()),
    )
    .await;
    upload(&s, &key, "hello", examples::HELLO, None).await;

    // Two API runs that succeed (and log the secret, masked), one that fails
    // with the step's own error, one trigger run.
    for _ in 0..2 {
        let r = s.run(&key, "alpha", "echo", json!({})).await;
        assert_eq!(r.json()["status"], "succeeded", "{}", r.text);
    }
    let r = s.run(&key, "alpha", "hello", json!(42)).await;
    assert_eq!(r.json()["error"]["kind"], "step_error", "{}", r.text);
    let url = trigger(&s, &key, "echo").await;
    let r = fire(&s, &url, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Refused credentials: two presented and invalid, one missing, one
    // lacking the scope, one restricted to a project.
    for bogus in [BOGUS_KEY, BOGUS_TOKEN] {
        let r = s.call(Method::GET, "/v1/projects", Some(bogus), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    }
    let r = s.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    r.assert_error_shape();
    let r = s.call(Method::GET, "/metrics", Some(&key), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    r.assert_error_shape();
    let restricted = s.new_key(&admin, &["metrics"], Some("alpha")).await;
    let r = s
        .call(Method::GET, "/metrics", Some(&restricted), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    let metrics_key = s.new_key(&admin, &["metrics"], None).await;
    let r = s
        .call(Method::GET, "/metrics", Some(&metrics_key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.headers["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = r.text;
    let expect = |series: &str, value: f64| {
        assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
    };
    expect(
        r#"airlock_runs_total{outcome="succeeded",trigger="api",failure="none"}"#,
        2.0,
    );
    expect(
        r#"airlock_runs_total{outcome="succeeded",trigger="http",failure="none"}"#,
        1.0,
    );
    expect(
        r#"airlock_runs_total{outcome="failed",trigger="api",failure="step_error"}"#,
        1.0,
    );
    expect("airlock_run_duration_seconds_count", 4.0);
    // Two distinct components compiled on upload; their runs found them loaded.
    expect(
        r#"airlock_compile_duration_seconds_count{source="upload"}"#,
        2.0,
    );
    assert_eq!(
        sample(
            &text,
            r#"airlock_compile_duration_seconds_count{source="run"}"#
        ),
        None,
        "{text}"
    );
    expect("airlock_active_runs", 0.0);
    expect(r#"airlock_auth_failures_total{reason="invalid"}"#, 2.0);
    expect(r#"airlock_auth_failures_total{reason="missing"}"#, 1.0);
    expect(r#"airlock_auth_failures_total{reason="forbidden"}"#, 2.0);
    assert!(text.trim_end().ends_with("# EOF"), "{text}");

    // Nothing secret and nothing the callers chose: no values, presented
    // credentials, keys, trigger ids, project or step names.
    let trigger_id = url.strip_prefix("/t/").unwrap();
    for needle in [
        SECRET_VALUE,
        BOGUS_KEY,
        BOGUS_TOKEN,
        &key,
        &admin,
        &metrics_key,
        trigger_id,
        "alpha",
        "echo",
        "hello",
        "TOKEN",
    ] {
        assert!(!text.contains(needle), "/metrics shows {needle}:\n{text}");
    }

    // `admin` implies `metrics`.
    scrape(&s, &admin).await;
}

// --- JSON logs ---

#[tokio::test]
async fn json_logs_are_one_object_per_line_and_hold_no_secret() {
    let s = server()
        .env("AIRLOCK_LOG_FORMAT", "json")
        .env("AIRLOCK_LOG", "info")
        .capture_stderr()
        .start();
    let (admin, key) = setup(&s).await;
    put_secret(&s, &key).await;
    upload(
        &s,
        &key,
        "echo",
        examples::ECHO_SECRET,
        Some(&echo_manifest()),
    )
    .await;
    let r = s.run(&key, "alpha", "echo", json!({})).await;
    assert_eq!(r.json()["status"], "succeeded", "{}", r.text);
    let url = trigger(&s, &key, "echo").await;
    assert_eq!(fire(&s, &url, json!({})).await.status, StatusCode::OK);
    let r = s
        .call(Method::GET, "/v1/projects", Some(BOGUS_KEY), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (client_id, client_secret) = s.new_client(&admin, &["runs:read"], None).await;
    let r = s.token_form(&client_id, &client_secret).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let access_token = r.json()["access_token"].as_str().unwrap().to_owned();
    let r = s.token_form(&client_id, "wrong-secret-marker-3b8e").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let stopped = s.stop();
    assert_eq!(stopped.status.code(), Some(0), "clean shutdown");
    let lines: Vec<&str> = stopped.stderr.lines().collect();
    let mut messages = Vec::new();
    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
        assert!(v["timestamp"].is_string(), "{line}");
        messages.push(v["fields"]["message"].as_str().unwrap_or("").to_owned());
    }
    for expected in [
        "airlock serve listening",
        "run finished",
        "authentication failed",
        "airlock serve stopped",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "no {expected:?} among {messages:?}"
        );
    }
    let trigger_id = url.strip_prefix("/t/").unwrap();
    for needle in [
        SECRET_VALUE,
        BOGUS_KEY,
        &key,
        &admin,
        &client_secret,
        &access_token,
        "wrong-secret-marker-3b8e",
        trigger_id,
    ] {
        assert!(
            !stopped.stderr.contains(needle),
            "the logs show {needle}:\n{}",
            stopped.stderr
        );
    }
}

// --- retention ---

#[tokio::test]
async fn retention_deletes_old_runs_at_start_and_keeps_fresh_ones() {
    let s = server().start();
    let (_, key) = setup(&s).await;
    upload(&s, &key, "hello", examples::HELLO, None).await;
    let mut fresh = Vec::new();
    for name in ["Ada", "Grace"] {
        let r = s.run(&key, "alpha", "hello", json!({"name": name})).await;
        assert_eq!(r.json()["status"], "succeeded", "{}", r.text);
        fresh.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    // Runs from three and from ten days ago, written straight to the store.
    {
        let store = SecretStore::open(&s.data_dir()).await.unwrap();
        let runs = RunStore::new(&store);
        let day = 24 * 60 * 60 * 1000;
        for (i, age) in [3, 10, 10].into_iter().enumerate() {
            runs.insert(&old_run(&format!("old-{i}"), now_ms() - age * day))
                .await
                .unwrap();
        }
        store.close().await;
    }
    assert_eq!(list_runs(&s, &key).await.len(), 5);
    let stopped = s.stop();
    assert_eq!(stopped.status.code(), Some(0));

    // Restarted with a retention of one day: the old runs are gone before
    // the server answers; the fresh ones stay.
    let s = server()
        .dir(stopped.dir)
        .args(&["--retention-days", "1"])
        .env("AIRLOCK_LOG", "info")
        .capture_stderr()
        .start();
    let runs = list_runs(&s, &key).await;
    let mut ids: Vec<String> = runs
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    fresh.sort();
    assert_eq!(ids, fresh);
    let stopped = s.stop();
    assert!(
        stopped
            .stderr
            .lines()
            .any(|l| l.contains("retention: deleted old run records") && l.contains("deleted=3")),
        "the count is logged:\n{}",
        stopped.stderr
    );
}

#[tokio::test]
async fn retention_sweeps_again_on_its_interval() {
    let s = server()
        .args(&["--retention-days", "2", "--retention-interval-secs", "1"])
        .start();
    let (admin, key) = setup(&s).await;
    let store = SecretStore::open(&s.data_dir()).await.unwrap();
    let runs = RunStore::new(&store);
    let day = 24 * 60 * 60 * 1000;
    runs.insert(&old_run("old-later", now_ms() - 3 * day))
        .await
        .unwrap();
    runs.insert(&old_run("young", now_ms() - day))
        .await
        .unwrap();
    // A later sweep deletes the old run: wait for it (bounded), then check
    // the young one stayed.
    let metrics_key = s.new_key(&admin, &["metrics"], None).await;
    let mut swept = false;
    for _ in 0..600 {
        if runs.get("alpha", "old-later").await.unwrap().is_none() {
            swept = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(swept, "no sweep deleted the old run");
    assert!(runs.get("alpha", "young").await.unwrap().is_some());
    let text = scrape(&s, &metrics_key).await;
    assert_eq!(
        sample(&text, "airlock_retention_deleted_runs_total"),
        Some(1.0),
        "{text}"
    );
    let left = runs
        .list(
            "alpha",
            &RunFilter {
                limit: 10,
                ..RunFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(list_runs(&s, &key).await.len(), 1);
    store.close().await;
}

#[test]
fn a_retention_of_zero_days_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, env) in [(Some("0"), None), (None, Some("0"))] {
        let mut cmd = airlock_tests::serve::command(BIN, dir.path());
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("AIRLOCK_MASTER_KEY", airlock_tests::serve::MASTER_KEY);
        if let Some(f) = flag {
            cmd.args(["--retention-days", f]);
        }
        if let Some(e) = env {
            cmd.env("AIRLOCK_RETENTION_DAYS", e);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("retention_days must be at least 1"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "it never listened");
    }
}

// --- rate limits ---

#[tokio::test]
async fn trigger_rate_limit_answers_429_and_runs_nothing() {
    let s = server().args(&["--trigger-rate-limit", "2"]).start();
    let (admin, key) = setup(&s).await;
    upload(&s, &key, "ctx", guests::CONTEXT_ECHO, None).await;
    let url = trigger(&s, &key, "ctx").await;
    let other = trigger(&s, &key, "ctx").await;
    for _ in 0..2 {
        let r = fire(&s, &url, json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = fire(&s, &url, json!({})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.assert_error_shape(), "rate_limited");
    // 2 per minute: one request's capacity returns within 30 s.
    let wait = r.retry_after();
    assert!((1..=30).contains(&wait), "Retry-After: {wait}");
    // Any method, any path under the trigger.
    let r = s
        .call(Method::GET, &format!("{url}/more/path"), None, None)
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    // Each trigger has its own limit; unknown ids stay 404.
    let r = fire(&s, &other, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = fire(&s, "/t/no-such-trigger", json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    // Exactly the three accepted requests ran.
    assert_eq!(list_runs(&s, &key).await.len(), 3);
    let metrics_key = s.new_key(&admin, &["metrics"], None).await;
    let text = scrape(&s, &metrics_key).await;
    assert_eq!(
        sample(&text, r#"airlock_rate_limited_total{route="trigger"}"#),
        Some(2.0),
        "{text}"
    );
}

#[tokio::test]
async fn failed_token_requests_are_rate_limited_per_client_and_address() {
    let s = server().start();
    let admin = s.admin_setup().await;
    let (a_id, a_secret) = s.new_client(&admin, &["runs:read"], None).await;
    let (b_id, b_secret) = s.new_client(&admin, &["runs:read"], None).await;
    // Ten failures for client A are answered 401...
    for _ in 0..10 {
        let r = s.token_form(&a_id, "not-the-secret").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    }
    // ...then A is refused before its secret is checked: even the right one.
    let r = s.token_form(&a_id, &a_secret).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.assert_oauth_error(), "temporarily_unavailable");
    assert!(r.retry_after() >= 1);
    assert!(!r.text.contains(&a_secret));
    // By HTTP Basic too.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{a_id}:{a_secret}"));
    let r = s
        .send(
            s.client
                .post(format!("{}/v1/oauth/token", s.base))
                .header("authorization", format!("Basic {basic}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials"),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    // A's right secret from another address still works: wrong secrets sent
    // from one place do not lock the client out everywhere.
    let _ = airlock_tests::serve::client();
    let elsewhere = reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let form = format!("grant_type=client_credentials&client_id={a_id}&client_secret={a_secret}");
    let r = s
        .send(
            elsewhere
                .post(format!("{}/v1/oauth/token", s.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "from 127.0.0.2: {}", r.text);
    // Client B, from the same address, is not affected.
    let r = s.token_form(&b_id, &b_secret).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Failures with made-up client ids from this address add up until the
    // address itself is refused, for every client.
    let mut limited = false;
    for i in 0..100 {
        let r = s.token_form(&format!("ac_{i:016x}"), "nope").await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    }
    assert!(limited, "the address was never limited");
    let r = s.token_form(&b_id, &b_secret).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);

    // Refusals are audited (without the secret).
    let r = s.call(Method::GET, "/v1/audit", Some(&admin), None).await;
    assert!(r.text.contains("too many failed attempts"), "{}", r.text);
    assert!(!r.text.contains(&a_secret) && !r.text.contains(&b_secret));
}

// --- OAuth clients ---

#[tokio::test]
async fn oauth_basic_credentials_are_form_urldecoded() {
    let s = server().start();
    let admin = s.admin_setup().await;
    let (id, secret) = s.new_client(&admin, &["runs:read"], None).await;
    // RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined by `:`
    // and base64-encoded. Encoding every byte is a valid encoding.
    let encode_all = |s: &str| -> String { s.bytes().map(|b| format!("%{b:02X}")).collect() };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encode_all(&id),
        encode_all(&secret)
    ));
    let r = s
        .send(
            s.client
                .post(format!("{}/v1/oauth/token", s.base))
                .header("authorization", format!("Basic {basic}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let r = s
        .call(Method::GET, "/v1/projects/alpha/runs", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // A `%` that starts no escape is taken as is, and still fails to match.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:%zz{secret}"));
    let r = s
        .send(
            s.client
                .post(format!("{}/v1/oauth/token", s.base))
                .header("authorization", format!("Basic {basic}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
}

#[tokio::test]
async fn oauth_clients_are_listed_without_secrets() {
    let s = server().start();
    let admin = s.admin_setup().await;
    let (global_id, global_secret) = s.new_client(&admin, &["runs:read"], None).await;
    let (alpha_id, alpha_secret) = s
        .new_client(&admin, &["steps:read", "runs:write"], Some("alpha"))
        .await;

    let r = s
        .call(Method::GET, "/v1/oauth/clients", Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let clients = r.json()["clients"].as_array().unwrap().clone();
    assert_eq!(clients.len(), 2, "{}", r.text);
    assert_eq!(clients[0]["client_id"], global_id);
    assert_eq!(clients[0]["scopes"], json!(["runs:read"]));
    assert_eq!(clients[0]["project"], Value::Null);
    assert_eq!(clients[1]["client_id"], alpha_id);
    assert_eq!(clients[1]["project"], "alpha");
    timestamp(&clients[1]["created_at"]);
    for c in &clients {
        let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys.len(),
            5,
            "client_id, name, scopes, project, created_at: {c}"
        );
        assert!(c.get("client_secret").is_none());
    }
    assert!(!r.text.contains(&global_secret) && !r.text.contains(&alpha_secret));

    // A project-restricted admin sees its own project's clients only.
    let alpha_admin = s.new_key(&admin, &["admin"], Some("alpha")).await;
    let r = s
        .call(Method::GET, "/v1/oauth/clients", Some(&alpha_admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let clients = r.json()["clients"].as_array().unwrap().clone();
    assert_eq!(clients.len(), 1, "{}", r.text);
    assert_eq!(clients[0]["client_id"], alpha_id);

    let reader = s.new_key(&admin, &["runs:read"], None).await;
    let r = s
        .call(Method::GET, "/v1/oauth/clients", Some(&reader), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    r.assert_error_shape();
    let r = s.call(Method::GET, "/v1/oauth/clients", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    r.assert_error_shape();
}

// --- errors and shutdown ---

#[tokio::test]
async fn a_forced_500_has_the_json_error_shape_and_no_internal_detail() {
    let s = server().start();
    let (_, key) = setup(&s).await;
    upload(&s, &key, "hello", examples::HELLO, None).await;
    // Corrupt the stored manifest behind the server's back, while it is
    // stopped (a running server holds the version's plan in memory).
    let stopped = s.stop();
    let s = server().dir(stopped.dir).start();
    let stopped = s.stop();
    let dir = stopped.dir;
    {
        let data = dir.path().join("data");
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(data.join("airlock.db"));
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let n = sqlx::query(
            "UPDATE step_versions SET manifest = 'name = [unclosed-marker-71c2'
             WHERE project = 'alpha' AND step = 'hello'",
        )
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(n, 1);
        pool.close().await;
    }
    let s = server().dir(dir).start();
    let r = s.run(&key, "alpha", "hello", json!({"name": "Ada"})).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    assert_eq!(r.assert_error_shape(), "internal");
    assert_eq!(r.json()["error"]["message"], "internal server error");
    for detail in ["unclosed-marker", "manifest", "toml", "sqlite", "hello"] {
        assert!(
            !r.text.to_lowercase().contains(detail),
            "the 500 shows {detail}: {}",
            r.text
        );
    }
    // The same through a trigger.
    let r = s
        .call(
            Method::POST,
            "/v1/projects/alpha/steps/hello/triggers",
            Some(&key),
            Some(json!({})),
        )
        .await;
    let url = r.json()["url"].as_str().unwrap().to_owned();
    let r = fire(&s, &url, json!({})).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    assert_eq!(r.assert_error_shape(), "internal");
    assert!(!r.text.contains("unclosed-marker"), "{}", r.text);
    // Nothing ran.
    assert!(list_runs(&s, &key).await.is_empty());
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_run_finish() {
    let s = server().env("AIRLOCK_LOG", "info").capture_stderr().start();
    let (admin, key) = setup(&s).await;
    // A busy loop stopped by its wall-time limit after 3 s.
    let manifest = "name = \"spin\"\n[limits]\ntimeout_ms = 3000\ncpu_ms = 60000\n";
    upload(&s, &key, "spin", guests::LOOP_FOREVER, Some(manifest)).await;
    let metrics_key = s.new_key(&admin, &["metrics"], None).await;

    let run = {
        let client = s.client.clone();
        let url = format!("{}/v1/projects/alpha/steps/spin/runs", s.base);
        let key = key.clone();
        tokio::spawn(async move {
            let resp = client
                .post(url)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(json!({"input": {}}).to_string())
                .send()
                .await
                .unwrap();
            (resp.status(), resp.text().await.unwrap())
        })
    };
    // Wait until the run executes (bounded), then ask the server to stop.
    let mut running = false;
    for _ in 0..600 {
        let text = scrape(&s, &metrics_key).await;
        if sample(&text, "airlock_active_runs") == Some(1.0) {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(running, "the run never started");
    s.sigterm();

    let (status, text) = run.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error"]["kind"], "limit:wall_time", "{v}");
    assert!(v["id"].is_string(), "{v}");

    let stopped = s.wait();
    assert_eq!(stopped.status.code(), Some(0), "a clean exit");
    // The run finished after shutdown began, and was recorded.
    let log = &stopped.stderr;
    let shutdown = log
        .find("shutting down; finishing in-flight requests")
        .unwrap_or_else(|| panic!("no shutdown line:\n{log}"));
    let finished = log
        .find("run finished")
        .unwrap_or_else(|| panic!("no run line:\n{log}"));
    assert!(shutdown < finished, "{log}");
    let store = SecretStore::open(&stopped.dir.path().join("data"))
        .await
        .unwrap();
    let record = RunStore::new(&store)
        .get("alpha", v["id"].as_str().unwrap())
        .await
        .unwrap()
        .expect("the run is recorded");
    assert_eq!(record.status, "failed");
    store.close().await;
}
