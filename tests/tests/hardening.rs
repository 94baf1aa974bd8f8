//! Hostile guests against the engine, `airlock run` and `airlock serve`:
//! every size a guest controls is bounded before it reaches a library, a
//! panic in a host call ends only its run, the log cap bounds what a run
//! costs however it writes, and masking works on what the text means.

mod common;

use std::process::Command;
use std::sync::Arc;

use airlock_host_api::apps::App;
use airlock_host_api::http::egress::parse_range;
use airlock_host_api::http::pipeline::{AccountError, AccountSource, HttpGrants, ResolvedAccount};
use airlock_host_api::log::{ENTRY_OVERHEAD, TRUNCATION_MARKER};
use airlock_host_api::secrets::{RunSecrets, SecretGrants};
use airlock_runtime::engine::{Engine, EngineConfig, LimitKind, RunFailure, RunOptions, RunReport};
use airlock_runtime::outbound::{self, OutboundConfig};
use airlock_tests::serve::Server;
use airlock_tests::{component_bytes, examples, guests, test_cache_dir};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// Chosen so escaping changes it: `/`, `+`, `"`, `\`, a space, non-ASCII.
const SECRET: &str = "sk_live/Zq+8\"mW\\q&7 Rt#xÜ9Lp";
const MULTI: &str = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END KEY-----";

fn leak_secrets() -> RunSecrets {
    let names = ["SECRET", "MULTI"].map(String::from);
    RunSecrets::new(
        SecretGrants {
            names: names.iter().cloned().collect(),
            reveal: names.iter().cloned().collect(),
        },
        vec![
            ("SECRET".into(), Zeroizing::new(SECRET.into())),
            ("MULTI".into(), Zeroizing::new(MULTI.into())),
        ],
    )
}

async fn leak(mode: &str) -> RunReport {
    let step = common::load(guests::LEAK_SECRET).await;
    let mut options = RunOptions::local("leak");
    options.secrets = leak_secrets();
    common::engine()
        .run(&step, &json!({ "mode": mode }).to_string(), options)
        .await
}

/// `text` and what a reader decodes from it: JSON string unescaping, one
/// to three times over.
fn readings(text: &str) -> Vec<String> {
    let mut out = vec![text.to_string()];
    let mut current = text.to_string();
    for _ in 0..3 {
        let quoted = format!("\"{}\"", current.replace('"', "\\\""));
        match serde_json::from_str::<String>(&quoted) {
            Ok(decoded) if decoded != current => {
                out.push(decoded.clone());
                current = decoded;
            }
            _ => break,
        }
    }
    out
}

/// Fails if any 8-byte window of the secret is in any reading of `text`.
fn assert_no_leak(text: &str, what: &str) {
    for reading in readings(text) {
        for w in SECRET.as_bytes().windows(8) {
            let w = String::from_utf8_lossy(w);
            assert!(
                !reading.contains(w.as_ref()),
                "{what} leaks {w:?}:\n{reading}"
            );
        }
    }
}

/// Every string and key of a JSON value, decoded.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Value::Object(m) => {
            for (k, v) in m {
                out.push(k.clone());
                strings(v, out);
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_with_unicode_escapes_is_masked_as_what_it_means() {
    let report = leak("escaped-output").await;
    let output = report.outcome.expect("valid JSON output");
    let value: Value = serde_json::from_str(&output).unwrap();
    let mut all = Vec::new();
    strings(&value, &mut all);
    for s in &all {
        assert_no_leak(s, "a decoded output string");
    }
    assert_eq!(value["value"], "[REDACTED:SECRET]", "{value}");
    assert_eq!(value["[REDACTED:SECRET]"], "as a key", "{value}");
    assert_eq!(value["list"][0], "x[REDACTED:SECRET]y", "{value}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_is_taken_apart_and_each_part_masked_by_meaning() {
    let report = leak("escaped-error").await;
    let Err(RunFailure::StepError(error)) = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    assert_eq!(error.message, "failed with [REDACTED:SECRET]");
    assert_eq!(error.code.as_deref(), Some("leak"));
    let details = error.details.as_ref().unwrap();
    assert_eq!(details["k"], "[REDACTED:SECRET]");
    assert_no_leak(&serde_json::to_string(details).unwrap(), "the details");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escaped_and_split_values_are_masked_in_the_log() {
    for mode in ["escaped-log", "split-log"] {
        let report = leak(mode).await;
        assert!(report.outcome.is_ok(), "{mode}: {:?}", report.outcome);
        let joined: String = report.logs.iter().map(|l| l.text.as_str()).collect();
        assert_no_leak(&joined, mode);
        for line in &report.logs {
            assert_no_leak(&line.text, mode);
        }
        let markers = joined.matches("[REDACTED:SECRET]").count();
        assert!(markers >= 3, "{mode}: {:?}", report.logs);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_nested_100000_deep_is_invalid_output_naming_the_limit() {
    let report = leak("deep").await;
    assert_eq!(
        report.outcome,
        Err(RunFailure::InvalidOutput(
            "the output is nested more than 128 levels deep".into()
        ))
    );
    common::assert_hello_still_runs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cheap_log_entries_cannot_escape_the_cap() {
    let cap = common::engine().config().host_limits.max_log_bytes;
    for mode in ["empty-log", "tiny-log", "empty-lines", "control", "mixed"] {
        let report = common::run_with(
            guests::LOG_FLOOD,
            &json!({ "mode": mode }).to_string(),
            common::limits(30_000, 20_000, 64),
        )
        .await;
        let Err(RunFailure::Limit { kind, .. }) = &report.outcome else {
            panic!("{mode}: {:?}", report.outcome);
        };
        assert_eq!(*kind, LimitKind::Output, "{mode}");
        assert!(
            report.logs.len() <= cap / ENTRY_OVERHEAD + 1,
            "{mode}: {} entries",
            report.logs.len()
        );
        assert_eq!(
            report.logs.last().unwrap().text,
            TRUNCATION_MARKER,
            "{mode}"
        );
        assert!(
            report.stats.log_bytes as usize <= cap,
            "{mode}: {:?}",
            report.stats
        );
        // What a record stores is bounded by the cap too.
        let stored = serde_json::to_string(&report.logs).unwrap();
        assert!(
            stored.len() <= cap + 1024,
            "{mode}: {} bytes stored",
            stored.len()
        );
    }
    common::assert_hello_still_runs().await;
}

/// An account source that panics, as a library refusing what a guest
/// passed it would.
struct Panics;

#[async_trait::async_trait]
impl AccountSource for Panics {
    async fn find(&self, _: &str, _: &str, _: &str) -> Result<ResolvedAccount, AccountError> {
        panic!("a library panicked inside a host call");
    }

    async fn oauth_access_token(
        &self,
        _: &str,
        _: &ResolvedAccount,
        _: &App,
        _: Option<&str>,
    ) -> Result<Zeroizing<String>, AccountError> {
        panic!("a library panicked inside a host call");
    }
}

fn http_engine(accounts: Arc<dyn AccountSource>) -> Engine {
    let config = OutboundConfig {
        allow_ranges: vec![parse_range("127.0.0.0/8").unwrap()],
        ..OutboundConfig::default()
    };
    let catalog = Arc::new(outbound::load_catalog(None).unwrap());
    let (policy, client) = outbound::policy_and_client(&config).unwrap();
    let pipeline = outbound::pipeline(&config, policy, client, catalog, accounts);
    Engine::with_http(
        EngineConfig {
            max_concurrent_runs: 4,
            cache_dir: Some(test_cache_dir()),
            ..EngineConfig::default()
        },
        pipeline,
    )
    .unwrap()
}

async fn probe(engine: &Engine, input: Value, grants: HttpGrants) -> RunReport {
    let step = engine
        .load(component_bytes(guests::HTTP_PROBE))
        .await
        .unwrap();
    let mut options = RunOptions::local("probe");
    options.http_grants = grants;
    options.context.external_user_id = Some("user-1".into());
    engine.run(&step, &input.to_string(), options).await
}

async fn assert_engine_serves(engine: &Engine) {
    let hello = engine.load(component_bytes(examples::HELLO)).await.unwrap();
    let report = engine
        .run(&hello, r#"{"name":"Ada"}"#, RunOptions::local("hello"))
        .await;
    assert!(report.outcome.unwrap().contains("Hello, Ada!"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_25000_headers_is_too_large_not_a_panic() {
    let engine = http_engine(Arc::new(airlock_host_api::http::pipeline::NoAccounts));
    let headers: Vec<(String, String)> = (0..25_000)
        .map(|i| (format!("x-h{i}"), "v".to_string()))
        .collect();
    let grants = HttpGrants {
        allowed_hosts: vec!["127.0.0.1".into()],
        ..HttpGrants::default()
    };
    let cases = [
        json!({"url": "http://127.0.0.1:9/", "headers": headers}),
        json!({"url": "http://127.0.0.1:9/", "headers": [["x-big", "v".repeat(9000)]]}),
        json!({"url": format!("http://127.0.0.1:9/{}", "p".repeat(9000))}),
    ];
    for input in cases {
        let report = probe(&engine, input, grants.clone()).await;
        let Err(RunFailure::StepError(e)) = &report.outcome else {
            panic!("{:?}", report.outcome);
        };
        assert_eq!(e.code.as_deref(), Some("too_large"), "{e}");
    }
    assert_engine_serves(&engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_call_that_panics_ends_its_run_and_the_engine_keeps_serving() {
    let engine = http_engine(Arc::new(Panics));
    let grants = HttpGrants {
        apps: ["github".to_string()].into(),
        ..HttpGrants::default()
    };
    let input = json!({"url": "https://api.github.com/user", "auth": {"account": "github"}});
    let report = probe(&engine, input, grants).await;
    assert_eq!(
        report.outcome,
        Err(RunFailure::Limit {
            kind: LimitKind::Trap,
            detail: "a host call failed unexpectedly; the run was stopped".into()
        })
    );
    assert_engine_serves(&engine).await;
}

#[test]
fn airlock_run_reports_too_many_headers_as_the_steps_error() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("airlock.toml");
    std::fs::write(
        &manifest,
        "name = \"probe\"\n[http]\nallowed_hosts = [\"127.0.0.1\"]\n",
    )
    .unwrap();
    let headers: Vec<(String, String)> = (0..25_000)
        .map(|i| (format!("x-h{i}"), "v".to_string()))
        .collect();
    let input = json!({"url": "http://127.0.0.1:9/", "headers": headers});
    let input_file = dir.path().join("input.json");
    std::fs::write(&input_file, input.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_airlock-under-test"))
        .args(["run", guests::HTTP_PROBE, "--manifest"])
        .arg(&manifest)
        .arg("--input-file")
        .arg(&input_file)
        .args(["--allow-range", "127.0.0.0/8"])
        .env("AIRLOCK_CACHE_DIR", test_cache_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("too_large") && stderr.contains("100 headers"),
        "{stderr}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_memory_limit_below_the_initial_memory_names_both_and_keeps_the_artifact() {
    let cache = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_airlock-under-test"))
            .args(["run", examples::HELLO, "--input", r#"{"name":"M"}"#])
            .arg("--cache-dir")
            .arg(cache.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0));
    let artifacts = walk(cache.path());
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let written = std::fs::metadata(&artifacts[0])
        .unwrap()
        .modified()
        .unwrap();

    let out = run(&["--memory-mib", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("memory limit exceeded"), "{stderr}");
    assert!(stderr.contains("of memory to start"), "{stderr}");
    assert!(
        stderr.contains("over its limit of 1 MiB (1048576 bytes)"),
        "{stderr}"
    );
    assert!(!stderr.contains("WARN"), "the artifact is fine: {stderr}");

    assert_eq!(walk(cache.path()), artifacts, "the artifact stays");
    assert_eq!(
        std::fs::metadata(&artifacts[0])
            .unwrap()
            .modified()
            .unwrap(),
        written
    );
    assert_eq!(run(&[]).status.code(), Some(0));
}

/// Through `airlock serve`: the answer, the stored record and the database
/// file hold no decodable form of the secret, and a too-deep output is the
/// step's `invalid_output`, not a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stores_and_returns_only_masked_output() {
    let server = Server::start(env!("CARGO_BIN_EXE_airlock-under-test"), &[]);
    let admin = server.admin_setup().await;
    for (name, value) in [("SECRET", SECRET), ("MULTI", MULTI)] {
        let r = server
            .call(
                Method::PUT,
                &format!("/v1/projects/alpha/secrets/{name}"),
                Some(&admin),
                Some(json!({ "value": value })),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.text);
    }
    let manifest =
        "name = \"leak\"\nsecrets = [\"SECRET\", \"MULTI\"]\nreveal = [\"SECRET\", \"MULTI\"]\n";
    let r = server
        .upload(
            "alpha",
            "leak",
            &admin,
            &component_bytes(guests::LEAK_SECRET),
            Some(manifest),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);

    let mut ids = Vec::new();
    for mode in [
        "escaped-output",
        "escaped-error",
        "escaped-log",
        "split-log",
    ] {
        let r = server
            .run(&admin, "alpha", "leak", json!({ "mode": mode }))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{mode}: {}", r.text);
        assert_no_leak(&r.text, mode);
        let v = r.json();
        let mut all = Vec::new();
        strings(&v, &mut all);
        all.iter().for_each(|s| assert_no_leak(s, mode));
        if mode == "escaped-error" {
            assert_eq!(v["error"]["kind"], "step_error", "{v}");
            assert_eq!(v["error"]["code"], "leak", "{v}");
            assert_eq!(
                v["error"]["message"], "failed with [REDACTED:SECRET]",
                "{v}"
            );
            assert_eq!(v["error"]["details"]["k"], "[REDACTED:SECRET]", "{v}");
        }
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let r = server
            .call(
                Method::GET,
                &format!("/v1/projects/alpha/runs/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let mut all = Vec::new();
        strings(&r.json(), &mut all);
        all.iter()
            .for_each(|s| assert_no_leak(s, "a stored record"));
    }

    let r = server
        .run(&admin, "alpha", "leak", json!({"mode": "deep"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["error"]["kind"], "invalid_output", "{}", r.text);

    let mut server = server;
    server.terminate();
    let mut db = Vec::new();
    for f in walk(&server.data_dir()) {
        db.extend(std::fs::read(f).unwrap());
    }
    let db = String::from_utf8_lossy(&db);
    for escaped_piece in ["\\u0073\\u006b", "Zq+8", "Rt#x"] {
        assert!(
            !db.contains(escaped_piece),
            "the database holds {escaped_piece:?}"
        );
    }
}
