//! HTTP triggers (`/t/{id}`) and `airlock push` end to end: the real binary
//! on 127.0.0.1 port 0, a real SQLite database in a tempdir, real HTTP
//! through reqwest. The server helpers are copied from `serve_steps.rs`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use airlock_tests::{component_bytes, examples, guests};
use hmac::{Hmac, Mac as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
/// Base64 of 32 bytes: a valid master key for tests.
const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "AIRLOCK_MASTER_KEY",
        "AIRLOCK_MASTER_KEY_FILE",
        "AIRLOCK_DATA",
        "AIRLOCK_LISTEN",
        "AIRLOCK_CONFIG",
        "AIRLOCK_TOKEN_TTL_SECS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AIRLOCK_DATA", data_dir);
    cmd
}

struct Server {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Reply {
    status: StatusCode,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

const BOUNDARY: &str = "airlock-test-boundary-7f3a9c";

/// A `multipart/form-data` body with a `component` part and, optionally, a
/// `manifest` part.
fn multipart(component: &[u8], manifest: Option<&str>) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"component\"; \
             filename=\"step.wasm\"\r\nContent-Type: application/wasm\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(component);
    body.extend_from_slice(b"\r\n");
    if let Some(m) = manifest {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\
                 Content-Type: text/plain\r\n\r\n{m}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut child = command(&dir.path().join("data"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("AIRLOCK_MASTER_KEY", MASTER_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("`airlock serve` did not start (first line {line:?})"))
            .to_owned();
        Server {
            child,
            base,
            dir,
            client: client(),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `airlock admin create-key` against this server's data directory.
    fn create_key(&self) -> String {
        let out = command(&self.data_dir())
            .args(["admin", "create-key"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.unwrap();
        Reply {
            status: resp.status(),
            text: resp.text().await.unwrap(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        self.send(req).await
    }

    async fn upload(
        &self,
        project: &str,
        step: &str,
        token: &str,
        component: &[u8],
        manifest: Option<&str>,
    ) -> Reply {
        self.send(
            self.client
                .put(format!("{}/v1/projects/{project}/steps/{step}", self.base))
                .bearer_auth(token)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(multipart(component, manifest)),
        )
        .await
    }

    /// An admin key and the projects `alpha` and `beta`.
    async fn admin_setup(&self) -> String {
        let admin = self.create_key();
        for p in ["alpha", "beta"] {
            let r = self
                .call(
                    Method::POST,
                    "/v1/projects",
                    Some(&admin),
                    Some(json!({"name": p})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        }
        admin
    }

    async fn new_key(&self, admin: &str, scopes: &[&str], project: Option<&str>) -> String {
        let r = self
            .call(
                Method::POST,
                "/v1/keys",
                Some(admin),
                Some(json!({"name": "k", "scopes": scopes, "project": project})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json()["key"].as_str().unwrap().to_owned()
    }
}

const SECRET: &str = "whsec-test-value-4f1c";

fn sign(key: &str, parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha256>>::new_from_slice(key.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A key with every step, run and secret scope on `alpha`, `step` uploaded
/// from `component` and the secret `hook` stored.
async fn setup(s: &Server, step: &str, component: &str) -> String {
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
    let r = s
        .upload("alpha", step, &key, &component_bytes(component), None)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = s
        .call(
            Method::PUT,
            "/v1/projects/alpha/secrets/hook",
            Some(&key),
            Some(json!({"value": SECRET})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    key
}

/// Creates a trigger on `step`; returns its URL path.
async fn trigger(s: &Server, key: &str, step: &str, body: Value) -> String {
    let r = s
        .call(
            Method::POST,
            &format!("/v1/projects/alpha/steps/{step}/triggers"),
            Some(key),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let v = r.json();
    let id = v["id"].as_str().unwrap();
    assert!(id.len() >= 22, "id too short: {id}");
    assert_eq!(v["url"], format!("/t/{id}"));
    v["url"].as_str().unwrap().to_owned()
}

async fn run_count(s: &Server, key: &str) -> usize {
    let r = s
        .call(Method::GET, "/v1/projects/alpha/runs", Some(key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["runs"].as_array().unwrap().len()
}

#[tokio::test]
async fn an_unsigned_trigger_passes_the_request_as_input() {
    let s = Server::start();
    let key = setup(&s, "echo", guests::CONTEXT_ECHO).await;
    let url = trigger(&s, &key, "echo", json!({})).await;

    let r = s
        .send(
            s.client
                .post(format!("{}{url}/hooks/x?a=1&b=two", s.base))
                .header("X-Custom", "Yes")
                .header("Authorization", "Bearer must-not-leak")
                .header("Cookie", "session=must-not-leak")
                .header("content-type", "application/json")
                .body(r#"{"name":"Ada"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.text.contains("must-not-leak"), "{}", r.text);
    let out = r.json();
    assert_eq!(out["trigger"], "Http");
    let input = &out["input"];
    assert_eq!(input["method"], "POST");
    assert_eq!(input["path"], "/hooks/x");
    assert_eq!(input["query"], json!({"a": "1", "b": "two"}));
    assert_eq!(input["headers"]["x-custom"], "Yes");
    assert!(input["headers"].get("authorization").is_none());
    assert!(input["headers"].get("cookie").is_none());
    assert_eq!(input["body"], r#"{"name":"Ada"}"#);
    assert_eq!(input["json"], json!({"name": "Ada"}));

    // The run is recorded as for the runs API.
    let r = s
        .call(Method::GET, "/v1/projects/alpha/runs", Some(&key), None)
        .await;
    let runs = r.json()["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 1, "{}", r.text);
    assert_eq!(runs[0]["step"], "echo");
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["input"]["method"], "POST");
    assert!(!r.text.contains("must-not-leak"));

    // A GET without a body has no `json`.
    let r = s.send(s.client.get(format!("{}{url}", s.base))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let input = &r.json()["input"];
    assert_eq!(input["method"], "GET");
    assert_eq!(input["path"], "/");
    assert_eq!(input["body"], "");
    assert!(input.get("json").is_none());

    // Bodies over 1 MiB are refused before anything runs.
    let runs_before = run_count(&s, &key).await;
    let r = s
        .send(
            s.client
                .post(format!("{}{url}", s.base))
                .body(vec![b'x'; 1024 * 1024 + 1]),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(run_count(&s, &key).await, runs_before);

    // The list names the trigger; unknown and deleted triggers 404.
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/steps/echo/triggers",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = url.strip_prefix("/t/").unwrap();
    assert_eq!(r.json()["triggers"][0]["id"], id);

    let r = s
        .send(
            s.client
                .post(format!("{}/t/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", s.base)),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/projects/alpha/steps/echo/triggers/{id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = s.send(s.client.post(format!("{}{url}", s.base))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

#[tokio::test]
async fn github_style_signatures_are_checked_before_running() {
    let s = Server::start();
    let key = setup(&s, "echo", guests::CONTEXT_ECHO).await;
    let url = trigger(
        &s,
        &key,
        "echo",
        json!({"signature": {"kind": "hmac-sha256", "secret": "hook",
            "header": "X-Hub-Signature-256", "prefix": "sha256="}}),
    )
    .await;
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/steps/echo/triggers",
            Some(&key),
            None,
        )
        .await;
    assert!(!r.text.contains(SECRET), "{}", r.text);
    assert_eq!(r.json()["triggers"][0]["signature"]["secret"], "hook");

    let body = r#"{"name":"Ada"}"#;
    let post = |sig: Option<String>| {
        let mut req = s
            .client
            .post(format!("{}{url}", s.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(sig) = sig {
            req = req.header("X-Hub-Signature-256", sig);
        }
        req
    };
    let good = format!("sha256={}", sign(SECRET, &[body.as_bytes()]));
    let r = s.send(post(Some(good))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let input = &r.json()["input"];
    assert_eq!(input["json"], json!({"name": "Ada"}));
    assert!(
        input["headers"].get("x-hub-signature-256").is_none(),
        "{input}"
    );
    assert_eq!(run_count(&s, &key).await, 1);

    let bad = format!("sha256={}", sign("wrong", &[body.as_bytes()]));
    for sig in [Some(bad), None, Some("sha256=zz".to_owned())] {
        let r = s.send(post(sig)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
        assert_eq!(r.json()["error"]["code"], "bad_signature");
    }
    assert_eq!(run_count(&s, &key).await, 1, "a refused request ran");
}

#[tokio::test]
async fn stripe_style_signatures_need_a_fresh_timestamp() {
    let s = Server::start();
    let key = setup(&s, "echo", guests::CONTEXT_ECHO).await;
    let url = trigger(
        &s,
        &key,
        "echo",
        json!({"signature": {"kind": "stripe", "secret": "hook", "tolerance_secs": 300}}),
    )
    .await;
    let body = r#"{"name":"Ada"}"#;
    let post = |header: String| {
        s.client
            .post(format!("{}{url}", s.base))
            .header("Stripe-Signature", header)
            .body(body)
    };
    let now = unix_now();
    let sig = |t: i64| sign(SECRET, &[t.to_string().as_bytes(), b".", body.as_bytes()]);

    let r = s
        .send(post(format!(
            "t={now},v1={},v1={}",
            "00".repeat(32),
            sig(now)
        )))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let input = &r.json()["input"];
    assert_eq!(input["json"], json!({"name": "Ada"}));
    assert!(
        input["headers"].get("stripe-signature").is_none(),
        "{input}"
    );

    let stale = now - 300 - 10;
    for header in [
        format!("t={now},v1={}", sign("wrong", &[body.as_bytes()])),
        format!("t={stale},v1={}", sig(stale)),
    ] {
        let r = s.send(post(header)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
        assert_eq!(r.json()["error"]["code"], "bad_signature");
    }
    assert_eq!(run_count(&s, &key).await, 1);
}

/// A `nostore` trigger, and any trigger request with `x-airlock-nostore: 1`
/// (as on the runs API), records metadata only; the caller still gets the
/// output, and the header never reaches the step.
#[tokio::test]
async fn nostore_triggers_and_the_nostore_header_keep_metadata_only() {
    let s = Server::start();
    let key = setup(&s, "echo", guests::CONTEXT_ECHO).await;
    let plain = trigger(&s, &key, "echo", json!({})).await;
    let bare = trigger(&s, &key, "echo", json!({"nostore": true})).await;
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/steps/echo/triggers",
            Some(&key),
            None,
        )
        .await;
    let listed: Vec<bool> = r.json()["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["nostore"].as_bool().unwrap())
        .collect();
    assert_eq!(listed.iter().filter(|n| **n).count(), 1, "{}", r.text);

    let markers = [
        "Trigger-Nostore-Marker-5e1f0c",
        "Header-Nostore-Marker-9a2c4d",
        "Stored-Marker-3b7d8e",
    ];
    for (url, header, marker) in [
        (&bare, false, markers[0]),
        (&plain, true, markers[1]),
        (&plain, false, markers[2]),
    ] {
        let mut req = s
            .client
            .post(format!("{}{url}", s.base))
            .header("content-type", "application/json")
            .body(json!({"name": marker}).to_string());
        if header {
            req = req.header("x-airlock-nostore", "1");
        }
        let r = s.send(req).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let out = r.json();
        assert_eq!(out["input"]["json"]["name"], marker, "{out}");
        assert!(
            out["input"]["headers"].get("x-airlock-nostore").is_none(),
            "{out}"
        );
    }
    let r = s
        .call(Method::GET, "/v1/projects/alpha/runs", Some(&key), None)
        .await;
    let runs = r.json()["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 3, "{}", r.text);
    // Newest first: the stored run, then the two bare ones.
    assert_eq!(runs[0]["input"]["json"]["name"], markers[2], "{}", r.text);
    for bare_run in &runs[1..] {
        for field in ["input", "output", "error", "logs"] {
            assert!(bare_run.get(field).is_none(), "no {field}: {bare_run}");
        }
        assert_eq!(bare_run["status"], "succeeded");
    }
    let mut db = Vec::new();
    for name in ["airlock.db", "airlock.db-wal"] {
        if let Ok(bytes) = std::fs::read(s.data_dir().join(name)) {
            db.extend(bytes);
        }
    }
    let stored = |m: &str| db.windows(m.len()).any(|w| w == m.as_bytes());
    assert!(stored(markers[2]), "the control run is stored");
    assert!(
        !stored(markers[0]) && !stored(markers[1]),
        "nostore inputs are not"
    );
}

#[tokio::test]
async fn a_failed_run_is_a_502() {
    let s = Server::start();
    let key = setup(&s, "hello", examples::HELLO).await;
    let url = trigger(&s, &key, "hello", json!({})).await;
    // hello needs `{"name"}` at the top level: the request shape is not it.
    let r = s
        .send(s.client.post(format!("{}{url}", s.base)).body("not json"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
    assert_eq!(r.json()["error"]["code"], "step_failed");
    assert_eq!(run_count(&s, &key).await, 1);

    // Deleting the step deletes its triggers, even if it is uploaded again.
    let r = s
        .call(
            Method::DELETE,
            "/v1/projects/alpha/steps/hello",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = s
        .upload(
            "alpha",
            "hello",
            &key,
            &component_bytes(examples::HELLO),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = s.send(s.client.post(format!("{}{url}", s.base))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

#[tokio::test]
async fn push_uploads_a_step_and_prints_its_digest() {
    let s = Server::start();
    let admin = s.admin_setup().await;
    let key = s.new_key(&admin, &["steps:write"], Some("alpha")).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("airlock.toml");
    std::fs::write(&manifest, "name = \"hello\"\n").unwrap();
    let push = |api_key: &str| {
        command(&s.data_dir())
            .env_remove("AIRLOCK_SERVER")
            .env_remove("AIRLOCK_API_KEY")
            .args(["push", examples::HELLO, "--manifest"])
            .arg(&manifest)
            .args(["--project", "alpha", "--server", &s.base])
            .env("AIRLOCK_API_KEY", api_key)
            .output()
            .unwrap()
    };
    let out = push(&key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/steps/hello",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.json()["current_digest"], digest.as_str(), "{}", r.text);

    let out = push("not-a-key");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("missing, invalid, expired or revoked credential"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-a-key"), "{stderr}");

    // No server: exit 4.
    let out = command(&s.data_dir())
        .args(["push", examples::HELLO, "--manifest"])
        .arg(&manifest)
        .args(["--project", "alpha", "--server", "http://127.0.0.1:9"])
        .args(["--api-key", &key])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
}
