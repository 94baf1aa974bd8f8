//! `airlock serve` steps (and runs) end to end: the real binary on 127.0.0.1
//! port 0, a real SQLite database in a tempdir, real HTTP through reqwest.
//! The server helpers are copied from `serve_api.rs`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use airlock_tests::{component_bytes, examples};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

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

    let r = s
        .call(Method::GET, "/v1/projects/alpha/steps", Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let steps = r.json()["steps"].as_array().unwrap().clone();
    assert_eq!(steps.len(), 1, "{}", r.text);
    assert_eq!(steps[0]["step"], "hello");
    assert_eq!(steps[0]["current_digest"], digest.as_str());
    assert!(steps[0]["updated_at"].as_i64().unwrap() > 0);

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
    assert_eq!(versions.len(), 1, "{v}");
    assert_eq!(versions[0]["digest"], digest.as_str());

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

    let r = s.upload("alpha", "hello", &reader, &hello, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = s.upload("alpha", "hello", &beta, &hello, None).await;
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
