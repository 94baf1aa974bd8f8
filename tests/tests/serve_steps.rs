//! `airlock serve` steps (and runs) end to end: the real binary on 127.0.0.1
//! port 0, a real SQLite database in a tempdir, real HTTP through reqwest.
//! The server helpers are copied from `serve_api.rs`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use airlock_tests::{component_bytes, examples};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

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

    /// Every byte of the SQLite database and its WAL, if any.
    fn db_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for name in ["airlock.db", "airlock.db-wal", "airlock.db-journal"] {
            if let Ok(b) = std::fs::read(self.data_dir().join(name)) {
                all.extend(b);
            }
        }
        assert!(!all.is_empty(), "no database file");
        all
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn not_wasm() -> Vec<u8> {
    component_bytes(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/cases/invalid/not-wasm/component.bin"
    ))
}

#[tokio::test]
async fn upload_list_get_and_delete_a_step() {
    let s = Server::start();
    let admin = s.admin_setup().await;
    let key = s
        .new_key(&admin, &["steps:write", "steps:read"], Some("alpha"))
        .await;
    let hello = component_bytes(examples::HELLO);

    let r = s.upload("alpha", "hello", &key, &hello, None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let v = r.json();
    let digest = v["digest"].as_str().unwrap().to_owned();
    assert!(digest.starts_with("sha256:"), "{v}");
    assert_eq!(digest.len(), "sha256:".len() + 64, "{v}");
    assert_eq!(v["step"], "hello");
    assert_eq!(v["created"], true);

    let r = s.upload("alpha", "hello", &key, &hello, None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "re-upload is idempotent: {}",
        r.text
    );
    assert_eq!(r.json()["digest"], digest.as_str());
    assert_eq!(r.json()["created"], false);

    let component_digest = format!("sha256:{}", hex(&Sha256::digest(&hello)));
    assert_eq!(r.json()["component_digest"], component_digest.as_str());

    // The same component with another manifest is another version: a changed
    // manifest is never dropped silently.
    let manifest = "name = \"hello\"\n[limits]\ntimeout_ms = 2000\n";
    let r = s
        .upload("alpha", "hello", &key, &hello, Some(manifest))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let v2 = r.json()["digest"].as_str().unwrap().to_owned();
    assert_ne!(v2, digest);
    assert_eq!(r.json()["component_digest"], component_digest.as_str());
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/steps/hello",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.json()["manifest"], manifest, "{}", r.text);
    assert_eq!(
        r.json()["versions"].as_array().unwrap().len(),
        2,
        "{}",
        r.text
    );
    // Re-uploading the first version makes it current again.
    let r = s.upload("alpha", "hello", &key, &hello, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["digest"], digest.as_str());

    let r = s
        .call(Method::GET, "/v1/projects/alpha/steps", Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let steps = r.json()["steps"].as_array().unwrap().clone();
    assert_eq!(steps.len(), 1, "{}", r.text);
    assert_eq!(steps[0]["step"], "hello");
    assert_eq!(steps[0]["current_digest"], digest.as_str());
    airlock_tests::serve::timestamp(&steps[0]["updated_at"]);

    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/steps/hello",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(v["current_digest"], digest.as_str());
    assert_eq!(v["manifest"], "name = \"hello\"\n");
    let versions = v["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{v}");
    assert!(
        versions.iter().any(|x| x["digest"] == digest.as_str()),
        "{v}"
    );
    assert!(
        versions
            .iter()
            .all(|x| x["component_digest"] == component_digest.as_str()),
        "{v}"
    );

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
        .call(
            Method::GET,
            "/v1/projects/alpha/steps/hello",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = s
        .call(
            Method::DELETE,
            "/v1/projects/alpha/steps/hello",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

#[tokio::test]
async fn uploads_are_validated_and_authorized() {
    let s = Server::start();
    let admin = s.admin_setup().await;
    let writer = s.new_key(&admin, &["steps:write"], Some("alpha")).await;
    let reader = s.new_key(&admin, &["steps:read"], Some("alpha")).await;
    let beta = s.new_key(&admin, &["steps:write"], Some("beta")).await;
    let hello = component_bytes(examples::HELLO);

    let r = s.upload("alpha", "bad", &writer, &not_wasm(), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("not a WebAssembly binary"), "{msg}");

    let r = s
        .upload(
            "alpha",
            "hello",
            &writer,
            &hello,
            Some("name = \"hello\"\nsecret = [\"TOKEN\"]\n"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("`secret`"), "the message names the key: {msg}");

    // The upload route takes bodies over the 1 MiB of the other routes
    // (`serve_api` checks that limit): a 2 MiB non-component is read and
    // refused for what it is, not its size.
    let big = vec![b'x'; 2 * 1024 * 1024];
    let r = s.upload("alpha", "big", &writer, &big, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("not a WebAssembly binary"), "{}", r.text);

    // Refused before the body is read, so the body is kept small: a client
    // still writing a large one when the server answers may see a reset. A
    // non-component proves the credential is checked first (else 400).
    let r = s.upload("alpha", "hello", &reader, &not_wasm(), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = s.upload("alpha", "hello", &beta, &not_wasm(), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = s
        .call(Method::GET, "/v1/projects/alpha/steps", Some(&writer), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    // Nothing was stored by any of the refused uploads.
    let r = s
        .call(Method::GET, "/v1/projects/alpha/steps", Some(&reader), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["steps"], json!([]), "{}", r.text);
}

/// A key with every step and run scope on `alpha`, and `hello` uploaded.
async fn with_step(s: &Server, step: &str, component: &str, manifest: Option<&str>) -> String {
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
        .upload("alpha", step, &key, &component_bytes(component), manifest)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    key
}

async fn run(s: &Server, key: &str, step: &str, body: Value, nostore_header: bool) -> Reply {
    let mut req = s
        .client
        .post(format!("{}/v1/projects/alpha/steps/{step}/runs", s.base))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string());
    if nostore_header {
        req = req.header("x-airlock-nostore", "1");
    }
    s.send(req).await
}

async fn get_run(s: &Server, key: &str, id: &str) -> Reply {
    s.call(
        Method::GET,
        &format!("/v1/projects/alpha/runs/{id}"),
        Some(key),
        None,
    )
    .await
}

#[tokio::test]
async fn run_hello_and_read_the_record() {
    let s = Server::start();
    let key = with_step(&s, "hello", examples::HELLO, None).await;

    let r = run(&s, &key, "hello", json!({"input": {"name": "Ada"}}), false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["output"], json!({"greeting": "Hello, Ada!"}), "{v}");
    assert!(v.get("error").is_none(), "{v}");
    assert!(v["duration_ms"].is_u64(), "{v}");
    let id = v["id"].as_str().unwrap().to_owned();

    let r = get_run(&s, &key, &id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["step"], "hello");
    assert_eq!(v["status"], "succeeded");
    assert!(v["digest"].as_str().unwrap().starts_with("sha256:"), "{v}");
    assert_eq!(v["input"], json!({"name": "Ada"}), "{v}");
    assert_eq!(v["output"], json!({"greeting": "Hello, Ada!"}), "{v}");
    let logs = v["logs"].as_array().expect("logs");
    assert!(
        logs.iter()
            .any(|l| l["level"] == "info" && l["text"] == "greeting Ada"),
        "the INFO log line: {v}"
    );
    assert!(v["stats"]["log_bytes"].as_i64().unwrap() > 0, "{v}");
    assert!(v["stats"]["memory_peak_bytes"].as_i64().unwrap() > 0, "{v}");
    assert!(v["stats"]["duration_ms"].is_i64(), "{v}");

    // Unknown step, unknown run.
    let r = run(&s, &key, "nope", json!({"input": {}}), false).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = get_run(&s, &key, "no-such-run").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    // Missing scope: 403; another project's key: 404, for runs too.
    let admin = s.create_key();
    let reader = s.new_key(&admin, &["runs:read"], Some("alpha")).await;
    let r = run(
        &s,
        &reader,
        "hello",
        json!({"input": {"name": "Ada"}}),
        false,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let writer = s.new_key(&admin, &["runs:write"], Some("alpha")).await;
    let r = get_run(&s, &writer, &id).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let beta = s
        .new_key(&admin, &["runs:read", "runs:write"], Some("beta"))
        .await;
    let r = run(&s, &beta, "hello", json!({"input": {"name": "Ada"}}), false).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = get_run(&s, &beta, &id).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

#[tokio::test]
async fn run_failures_are_reported_with_a_kind() {
    let s = Server::start();
    let key = with_step(&s, "hello", examples::HELLO, None).await;
    // hello needs `name`: a missing one is the step's own error.
    let r = run(&s, &key, "hello", json!({"input": 42}), false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error"]["kind"], "step_error", "{v}");
    assert!(v.get("output").is_none(), "{v}");
    let r = get_run(&s, &key, v["id"].as_str().unwrap()).await;
    assert_eq!(r.json()["error"]["kind"], "step_error", "{}", r.text);
}

const TOKEN_VALUE: &str = "tok_live_Q7vX2mPz9LkR4sWn8YbC-serve-steps-marker";

#[tokio::test]
async fn secrets_are_masked_in_output_record_and_database() {
    let s = Server::start();
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/echo-secret/airlock.toml"
    ))
    .unwrap();
    let key = with_step(&s, "echo", examples::ECHO_SECRET, Some(&manifest)).await;
    let r = s
        .call(
            Method::PUT,
            "/v1/projects/alpha/secrets/TOKEN",
            Some(&key),
            Some(json!({"value": TOKEN_VALUE})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let r = run(&s, &key, "echo", json!({"input": {}}), false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.text.contains(TOKEN_VALUE), "{}", r.text);
    let v = r.json();
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["output"]["token"], "[REDACTED:TOKEN]", "{v}");

    let r = get_run(&s, &key, v["id"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.text.contains(TOKEN_VALUE), "{}", r.text);
    let logs = r.json()["logs"].as_array().unwrap().clone();
    assert!(logs.len() >= 2, "stdout and the log line: {logs:?}");
    assert!(
        logs.iter()
            .all(|l| l["text"].as_str().unwrap().contains("[REDACTED:TOKEN]")),
        "{logs:?}"
    );

    let db = s.db_bytes();
    let contains = |needle: &[u8]| db.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"[REDACTED:TOKEN]"), "the masked record is stored");
    assert!(
        !contains(TOKEN_VALUE.as_bytes()),
        "the value is never stored"
    );
}

#[tokio::test]
async fn nostore_keeps_metadata_only() {
    let s = Server::start();
    let key = with_step(&s, "hello", examples::HELLO, None).await;
    let markers = ["Nostore-Body-Marker-8c1e5a", "Nostore-Header-Marker-4d7b2f"];
    let body_run = run(
        &s,
        &key,
        "hello",
        json!({"input": {"name": markers[0]}, "nostore": true}),
        false,
    )
    .await;
    let header_run = run(
        &s,
        &key,
        "hello",
        json!({"input": {"name": markers[1]}}),
        true,
    )
    .await;
    for (r, marker) in [(body_run, markers[0]), (header_run, markers[1])] {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let v = r.json();
        assert_eq!(v["status"], "succeeded", "{v}");
        // The caller still gets the output; only the record is bare.
        assert_eq!(v["output"]["greeting"], format!("Hello, {marker}!"), "{v}");
        let g = get_run(&s, &key, v["id"].as_str().unwrap()).await;
        assert_eq!(g.status, StatusCode::OK, "{}", g.text);
        let g = g.json();
        for field in ["input", "output", "error", "logs"] {
            assert!(g.get(field).is_none(), "no {field}: {g}");
        }
        assert_eq!(g["status"], "succeeded", "{g}");
        assert!(g["stats"]["log_bytes"].as_i64().unwrap() > 0, "{g}");
    }
    let db = s.db_bytes();
    for marker in markers {
        assert!(
            !db.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{marker} is not in the database"
        );
    }
}

#[tokio::test]
async fn list_runs_walks_every_page_newest_first() {
    let s = Server::start();
    let key = with_step(&s, "hello", examples::HELLO, None).await;
    let mut ids = Vec::new();
    for name in ["A", "B", "C", "D"] {
        let r = run(&s, &key, "hello", json!({"input": {"name": name}}), false).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        ids.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    let failed = run(&s, &key, "hello", json!({"input": 1}), false).await;
    assert_eq!(failed.json()["status"], "failed", "{}", failed.text);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/projects/alpha/runs?limit=1&status=succeeded".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = s.call(Method::GET, &path, Some(&key), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let v = r.json();
        let runs = v["runs"].as_array().unwrap();
        assert!(runs.len() <= 1, "{v}");
        seen.extend(runs.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(seen.len() <= ids.len(), "the cursor loops: {seen:?}");
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/runs?limit=100",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.json()["runs"].as_array().unwrap().len(), 5, "{}", r.text);
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/runs?cursor=garbage!",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
}
