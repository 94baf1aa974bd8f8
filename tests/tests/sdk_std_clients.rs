//! The standard HTTP clients of the Python and JavaScript SDKs — Python's
//! `urllib.request` (over wasi:http through `airlock_sdk.wasi_http`) and
//! JavaScript's `fetch` (componentize-js over wasi:http) — through
//! `airlock serve`, against a loopback echo server standing in for a
//! third party: an account named by `x-airlock-account` reaches the
//! upstream as the host inserted it, and so does a granted secret named by
//! `x-airlock-auth`; the step only ever sees them masked (the echoed body in
//! its output, log and stdout, the stored run record); and a host outside
//! the grants is refused with a clear error.
//!
//! The probes are `tests/std-clients/` (one request each, reporting what
//! came back), built with the SDKs' own build scripts and cache.

use airlock_tests::fakes;
use airlock_tests::sdk_builds::{self, Lang};
use airlock_tests::serve::{Server, ServerBuilder};
use airlock_tests::test_cache_dir;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
const USER: &str = "ada";

fn probe(lang: Lang) -> Vec<u8> {
    let dir = sdk_builds::repo().join("tests").join("std-clients");
    let source = match lang {
        Lang::Python => dir.join("python").join("app.py"),
        Lang::Js => dir.join("fetch.js"),
    };
    let wasm = sdk_builds::build(
        lang,
        &source,
        "std-clients",
        &format!("probe-{}", lang.name()),
    );
    std::fs::read(wasm).unwrap()
}

struct World {
    server: Server,
    admin: String,
    echo: fakes::Fake,
    _apps: tempfile::TempDir,
}

/// A server that may reach loopback, an app `t-echo` (bearer) whose base URL
/// is the echo fake, ada's account of it holding `token`, a stored secret
/// `API_KEY` holding `secret`, and `step` pushed to project alpha with a
/// manifest granting that app, that secret and the host 127.0.0.1 only.
async fn world(token: &str, secret: &str, step: &str, component: &[u8]) -> World {
    let echo = fakes::echo().await;
    let apps = tempfile::tempdir().unwrap();
    std::fs::write(
        apps.path().join("t-echo.toml"),
        format!(
            "slug = \"t-echo\"\nname = \"Echo\"\nauth = \"bearer\"\nbase_url = \"http://{}\"\n\
             allowed_domains = [\"127.0.0.1\"]\n\n[credential]\nheader = \"Authorization\"\n\
             template = \"Bearer {{{{token}}}}\"\n",
            echo.addr
        ),
    )
    .unwrap();
    let cache = test_cache_dir();
    let server = ServerBuilder::new(BIN)
        .args(&[
            "--allow-range",
            "127.0.0.0/8",
            "--apps-dir",
            apps.path().to_str().unwrap(),
        ])
        .env("AIRLOCK_CACHE_DIR", cache.to_str().unwrap())
        .start();
    let admin = server.admin_setup().await;
    let manifest = format!(
        "name = \"{step}\"\nsecrets = [\"API_KEY\"]\n\n[http]\napps = [\"t-echo\"]\n\
         allowed_hosts = [\"127.0.0.1\"]\n"
    );
    let r = server
        .upload("alpha", step, &admin, component, Some(&manifest))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = server
        .call(
            Method::POST,
            "/v1/projects/alpha/accounts",
            Some(&admin),
            Some(
                json!({"app": "t-echo", "external_user_id": USER, "credentials": {"token": token}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = server
        .call(
            Method::PUT,
            "/v1/projects/alpha/secrets/API_KEY",
            Some(&admin),
            Some(json!({"value": secret})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    World {
        server,
        admin,
        echo,
        _apps: apps,
    }
}

impl World {
    /// Runs `step` as ada with `input`; the run's answer and its stored record.
    async fn run(&self, step: &str, input: Value) -> (Value, String) {
        let r = self
            .server
            .call(
                Method::POST,
                &format!("/v1/projects/alpha/steps/{step}/runs"),
                Some(&self.admin),
                Some(json!({"input": input, "external_user_id": USER})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let run = r.json();
        let record = self
            .server
            .call(
                Method::GET,
                &format!("/v1/projects/alpha/runs/{}", run["id"].as_str().unwrap()),
                Some(&self.admin),
                None,
            )
            .await;
        assert_eq!(record.status, StatusCode::OK, "{}", record.text);
        (run, record.text)
    }

    /// Every byte the server stored (database, WAL), as text.
    fn stored(&self) -> String {
        let mut all = Vec::new();
        for entry in walk(&self.server.data_dir()) {
            all.extend(std::fs::read(entry).unwrap_or_default());
        }
        String::from_utf8_lossy(&all).into_owned()
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

async fn std_client(lang: Lang) {
    let step = format!("probe-{}", lang.name());
    let token = format!("tok_std_client_{}_8f3kQ2xZ7vLp", lang.name());
    let secret = format!("sk_std_client_{}_R4nT9wYc2Hd", lang.name());
    let w = world(&token, &secret, &step, &probe(lang)).await;

    // Relative to the app's base URL, the account named by its slug.
    let (run, record) = w
        .run(
            &step,
            json!({
                "url": "https://t-echo.airlock.internal/echo?page=2",
                "headers": {"x-airlock-account": "t-echo", "accept": "application/json"},
            }),
        )
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let out = &run["output"];
    assert_eq!(out["status"], 200, "{out}");

    // The upstream got the host's credential and the step's own headers,
    // and none of the host-only control headers.
    let seen = w.echo.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["path"], "/echo");
    assert_eq!(seen[0]["query"], "page=2");
    assert_eq!(
        seen[0]["headers"]["authorization"],
        format!("Bearer {token}")
    );
    assert_eq!(seen[0]["headers"]["accept"], "application/json");
    assert!(
        seen[0]["headers"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("x-airlock-")),
        "control headers never leave the host: {}",
        seen[0]
    );

    // The echo sent the token back: the step saw it masked, and so does
    // everything it emitted — output, log and stdout lines, the record.
    let body = out["body"].as_str().unwrap();
    assert!(
        body.contains("\"authorization\":\"[REDACTED:account:t-echo]\""),
        "{body}"
    );
    assert!(!run.to_string().contains(&token), "{run}");
    assert!(!record.contains(&token), "{record}");
    let record: Value = serde_json::from_str(&record).unwrap();
    let logs = record["logs"].as_array().unwrap();
    let text = |prefix: &str| {
        logs.iter()
            .map(|l| l["text"].as_str().unwrap())
            .find(|t| t.starts_with(prefix))
            .unwrap_or_else(|| panic!("no log line {prefix:?}: {logs:?}"))
            .to_string()
    };
    assert!(text("upstream said: ").contains("[REDACTED"), "{logs:?}");
    assert!(text("stdout sees: ").contains("[REDACTED"), "{logs:?}");
    assert!(
        !w.stored().contains(&token),
        "the token is never stored in the clear"
    );

    // A request body goes up as written.
    let (run, _) = w
        .run(
            &step,
            json!({
                "url": "https://t-echo.airlock.internal/items",
                "method": "POST",
                "headers": {"x-airlock-account": "t-echo", "content-type": "application/json"},
                "body": "{\"name\":\"Ada\"}",
            }),
        )
        .await;
    assert_eq!(run["output"]["status"], 200, "{run}");
    let seen = &w.echo.requests()[1];
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/items");
    assert_eq!(seen["body"], "{\"name\":\"Ada\"}");
    assert_eq!(seen["headers"]["content-type"], "application/json");
    assert_eq!(seen["headers"]["content-length"], "14");
    assert_eq!(seen["headers"]["authorization"], format!("Bearer {token}"));

    // A granted secret named by `x-airlock-auth`, to a host the manifest
    // allows: it lands where the header says; the echo of it comes back masked.
    let (run, record) = w
        .run(
            &step,
            json!({"url": w.echo.url("/keyed"), "headers": {"x-airlock-auth": "header x-api-key API_KEY"}}),
        )
        .await;
    assert_eq!(run["output"]["status"], 200, "{run}");
    let seen = &w.echo.requests()[2];
    assert_eq!(seen["path"], "/keyed");
    assert_eq!(seen["headers"]["x-api-key"], secret.as_str());
    assert!(seen["headers"].get("x-airlock-auth").is_none(), "{seen}");
    let body = run["output"]["body"].as_str().unwrap();
    assert!(body.contains("\"x-api-key\":\"[REDACTED"), "{body}");
    assert!(!run.to_string().contains(&secret), "{run}");
    assert!(!record.contains(&secret), "{record}");
    assert!(
        !w.stored().contains(&secret),
        "the secret is never stored in the clear"
    );

    // A host outside the grants: refused before anything is sent, with the
    // reason in the run's log and the client's error in the step's.
    let (run, record) = w
        .run(
            &step,
            json!({"url": format!("http://localhost:{}/nope", w.echo.addr.port())}),
        )
        .await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["error"]["kind"], "step_error", "{run}");
    assert_eq!(run["error"]["code"], "request_failed", "{run}");
    // What each client makes of the host's `HTTP-request-denied`.
    let error = run["error"]["message"].as_str().unwrap();
    let expected = match lang {
        Lang::Python => "wasi:http error HttpRequestDenied",
        Lang::Js => "NetworkError",
    };
    assert!(error.contains(expected), "{run}");
    let record: Value = serde_json::from_str(&record).unwrap();
    let warned = record["logs"].as_array().unwrap().iter().any(|l| {
        l["level"] == "warn"
            && l["text"]
                == "airlock: wasi:http request failed: denied: localhost is not granted \
                    to this step (manifest `[http] allowed_hosts`)"
    });
    assert!(warned, "the log names the refused host: {record}");
    assert_eq!(
        w.echo.requests().len(),
        3,
        "nothing more reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_urllib_uses_the_account_and_never_sees_it() {
    std_client(Lang::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_fetch_uses_the_account_and_never_sees_it() {
    std_client(Lang::Js).await;
}
