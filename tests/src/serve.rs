//! A harness for `airlock serve` end-to-end tests: the real binary on
//! 127.0.0.1 port 0, a real SQLite database in a tempdir, real HTTP through
//! reqwest.
//!
//! A library cannot name the binary (`CARGO_BIN_EXE_*` exists only for
//! integration tests), so each test file passes
//! `env!("CARGO_BIN_EXE_airlock-under-test")` to [`ServerBuilder::new`].

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Base64 of 32 bytes: a valid master key for tests.
pub const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// The multipart boundary of [`multipart`].
pub const BOUNDARY: &str = "airlock-test-boundary-7f3a9c";

/// Settings of the environment that would leak into a server under test.
const CLEARED_ENV: &[&str] = &[
    "AIRLOCK_MASTER_KEY",
    "AIRLOCK_MASTER_KEY_FILE",
    "AIRLOCK_DATA",
    "AIRLOCK_LISTEN",
    "AIRLOCK_CONFIG",
    "AIRLOCK_TOKEN_TTL_SECS",
    "AIRLOCK_LOG",
    "AIRLOCK_LOG_FORMAT",
    "AIRLOCK_RETENTION_DAYS",
    "AIRLOCK_TRIGGER_RATE_LIMIT",
    "AIRLOCK_ALLOW_RANGES",
    "AIRLOCK_APPS_DIR",
    "AIRLOCK_HTTP_TIMEOUT_SECS",
    "AIRLOCK_HTTP_RATE_LIMIT",
    // A developer's PostgreSQL must not capture the SQLite suites.
    "AIRLOCK_DATABASE_URL",
    "AIRLOCK_DATABASE_MAX_CONNECTIONS",
    "AIRLOCK_DATABASE_STATEMENT_TIMEOUT_MS",
    // The client commands' settings: a test names its server and key itself.
    "AIRLOCK_SERVER",
    "AIRLOCK_API_KEY",
    "AIRLOCK_PROJECT",
    "NO_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
];

/// `bin` with a clean environment and `AIRLOCK_DATA=data_dir`.
pub fn command(bin: &str, data_dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("AIRLOCK_DATA", data_dir);
    cmd
}

/// A reqwest client that ignores proxies.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A `multipart/form-data` body with a `component` part and, optionally, a
/// `manifest` part, delimited by [`BOUNDARY`].
pub fn multipart(component: &[u8], manifest: Option<&str>) -> Vec<u8> {
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

/// The instant of an API timestamp; panics unless `value` is exactly the
/// API's one form, RFC 3339 UTC with milliseconds (`2026-12-01T08:53:00.123Z`).
pub fn timestamp(value: &Value) -> chrono::DateTime<chrono::Utc> {
    parse_timestamp(value).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_timestamp(value: &Value) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("a timestamp is a string: {value}"))?;
    let b = text.as_bytes();
    let shape = b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return Err(format!("not RFC 3339 UTC with milliseconds: {text}"));
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|e| format!("{text}: {e}"))
}

/// Checks every timestamp (a field named `at` or `*_at`) in a JSON answer
/// with [`timestamp`], naming its path when one is not; returns how many
/// there were.
pub fn assert_timestamps(value: &Value, path: &str) -> usize {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let here = format!("{path}.{k}");
                if k == "at" || k.ends_with("_at") {
                    if let Err(e) = parse_timestamp(v) {
                        panic!("{here}: {e}");
                    }
                    1
                } else {
                    assert_timestamps(v, &here)
                }
            })
            .sum(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| assert_timestamps(v, &format!("{path}[{i}]")))
            .sum(),
        _ => 0,
    }
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Panics unless the body is `{"error": {"code": "...", "message": "..."}}`
    /// sent as JSON; returns the code.
    pub fn assert_error_shape(&self) -> String {
        let v = self.json();
        let obj = v.as_object().expect("object");
        assert_eq!(obj.len(), 1, "only `error`: {v}");
        let e = v["error"].as_object().expect("error object");
        assert_eq!(e.len(), 2, "code and message: {v}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        let ct = self.headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap();
        assert!(ct.starts_with("application/json"), "{ct}");
        let code = e["code"].as_str().unwrap_or_default().to_owned();
        assert!(!code.is_empty(), "{v}");
        code
    }

    /// Panics unless the body is an RFC 6749 §5.2 error, exactly
    /// `{"error": "<code>", "error_description": "<text>"}` sent as JSON
    /// with `Pragma: no-cache` (the token endpoint's errors); returns the code.
    pub fn assert_oauth_error(&self) -> String {
        let v = self.json();
        let obj = v.as_object().expect("object");
        assert_eq!(obj.len(), 2, "error and error_description only: {v}");
        let code = v["error"].as_str().unwrap_or_else(|| panic!("{v}"));
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{v}"
        );
        assert!(
            v["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{v}"
        );
        let ct = self.headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap();
        assert!(ct.starts_with("application/json"), "{ct}");
        assert_eq!(
            self.headers
                .get(reqwest::header::PRAGMA)
                .map(|v| v.as_bytes()),
            Some(&b"no-cache"[..]),
            "{:?}",
            self.headers
        );
        code.to_owned()
    }

    /// The error's `code` and `message` (after checking the shape).
    pub fn error(&self) -> (String, String) {
        self.assert_error_shape();
        let v = self.json();
        (
            v["error"]["code"].as_str().unwrap().to_owned(),
            v["error"]["message"].as_str().unwrap().to_owned(),
        )
    }

    /// The `Retry-After` header in seconds; panics when absent.
    pub fn retry_after(&self) -> u64 {
        self.headers
            .get(reqwest::header::RETRY_AFTER)
            .unwrap_or_else(|| panic!("no Retry-After: {:?}", self.headers))
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

/// How to start a server.
pub struct ServerBuilder {
    bin: &'static str,
    dir: Option<tempfile::TempDir>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    capture_stderr: bool,
    database_url: Option<String>,
}

impl ServerBuilder {
    pub fn new(bin: &'static str) -> Self {
        Self {
            bin,
            dir: None,
            args: Vec::new(),
            env: Vec::new(),
            capture_stderr: false,
            database_url: None,
        }
    }

    /// Serve from this PostgreSQL database instead of SQLite in the data
    /// directory; the commands run against the server ([`Server::create_key`],
    /// [`Server::command`]) use it too. Passed as `AIRLOCK_DATABASE_URL`, so
    /// it never shows in a process listing.
    pub fn database_url(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_owned());
        self
    }

    /// Serve from this directory (its `data/` holds the database) instead of
    /// a fresh one: for restarts.
    pub fn dir(mut self, dir: tempfile::TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Keep the server's stderr for [`Server::stop`] (each line is still
    /// echoed to the test's stderr).
    pub fn capture_stderr(mut self) -> Self {
        self.capture_stderr = true;
        self
    }

    /// Starts the server and waits for its `listening on` line.
    pub fn start(self) -> Server {
        let dir = self.dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
        let mut cmd = command(self.bin, &dir.path().join("data"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(&self.args)
            .env("AIRLOCK_MASTER_KEY", MASTER_KEY)
            .stdout(Stdio::piped())
            .stderr(if self.capture_stderr {
                Stdio::piped()
            } else {
                Stdio::inherit()
            });
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(url) = &self.database_url {
            cmd.env(DATABASE_URL_ENV, url);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().map(|pipe| {
            let buffer = Arc::new(Mutex::new(String::new()));
            let sink = buffer.clone();
            let reader = std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    eprintln!("[server] {line}");
                    let mut b = sink.lock().unwrap();
                    b.push_str(&line);
                    b.push('\n');
                }
            });
            (buffer, reader)
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "`airlock serve` did not start (first line {line:?}; its stderr is above). \
                     If it says `unrecognized subcommand`, another build replaced the binary in \
                     a shared CARGO_TARGET_DIR between build and run: run the test again"
                )
            })
            .to_owned();
        // Keep reading stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink);
        });
        Server {
            child: Some(child),
            base,
            dir: Some(dir),
            bin: self.bin,
            client: client(),
            stderr,
            database_url: self.database_url,
        }
    }
}

/// A running `airlock serve`; killed when dropped.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    dir: Option<tempfile::TempDir>,
    bin: &'static str,
    pub client: reqwest::Client,
    stderr: Option<(Arc<Mutex<String>>, JoinHandle<()>)>,
    database_url: Option<String>,
}

/// How the harness hands a server and its commands the PostgreSQL URL.
const DATABASE_URL_ENV: &str = "AIRLOCK_DATABASE_URL";

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What [`Server::stop`] leaves: how the process exited, its stderr (when
/// captured) and its directory, to start again on.
pub struct Stopped {
    pub status: ExitStatus,
    pub stderr: String,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM (without waiting).
    pub fn sigterm(&self) {
        let pid = self.pid().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM {pid}");
    }

    /// Sends SIGKILL (without waiting): the process gets no chance to
    /// finish anything. [`Drop`] reaps it.
    pub fn sigkill(&self) {
        let pid = self.pid().to_string();
        let ok = Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -KILL {pid}");
    }

    /// Waits for the process to exit (after [`Server::sigterm`]).
    pub fn wait(mut self) -> Stopped {
        let status = self.child.take().expect("running").wait().unwrap();
        let stderr = match self.stderr.take() {
            Some((buffer, reader)) => {
                reader.join().unwrap();
                buffer.lock().unwrap().clone()
            }
            None => String::new(),
        };
        Stopped {
            status,
            stderr,
            dir: self.dir.take().expect("a directory"),
        }
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn stop(self) -> Stopped {
        self.sigterm();
        self.wait()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.as_ref().unwrap().path().join("data")
    }

    /// `airlock admin create-key ARGS` against this server's data directory
    /// (and its PostgreSQL database, if it has one).
    pub fn create_key(&self, args: &[&str]) -> String {
        let out = self
            .command()
            .args(["admin", "create-key"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(key.starts_with("ak_"), "{key}");
        key
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.unwrap();
        Reply {
            status: resp.status(),
            headers: resp.headers().clone(),
            text: resp.text().await.unwrap(),
        }
    }

    /// `method path` with an optional bearer token and JSON body.
    pub async fn call(
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

    /// Uploads a step version to `project`.
    pub async fn upload(
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

    /// A global admin key and the projects `alpha` and `beta`.
    pub async fn admin_setup(&self) -> String {
        let admin = self.create_key(&[]);
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

    /// A new API key; returns the key.
    pub async fn new_key(&self, admin: &str, scopes: &[&str], project: Option<&str>) -> String {
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

    /// A new OAuth client; returns its id and secret.
    pub async fn new_client(
        &self,
        admin: &str,
        scopes: &[&str],
        project: Option<&str>,
    ) -> (String, String) {
        let r = self
            .call(
                Method::POST,
                "/v1/oauth/clients",
                Some(admin),
                Some(json!({"name": "c", "scopes": scopes, "project": project})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let v = r.json();
        (
            v["client_id"].as_str().unwrap().to_owned(),
            v["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// `POST /v1/oauth/token` with a form body.
    pub async fn token_form(&self, client_id: &str, client_secret: &str) -> Reply {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", client_id)
            .append_pair("client_secret", client_secret)
            .finish();
        self.send(
            self.client
                .post(format!("{}/v1/oauth/token", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    /// Runs `project`/`step` through the API with `input`.
    pub async fn run(&self, token: &str, project: &str, step: &str, input: Value) -> Reply {
        self.call(
            Method::POST,
            &format!("/v1/projects/{project}/steps/{step}/runs"),
            Some(token),
            Some(json!({ "input": input })),
        )
        .await
    }
}

/// Shorthands for a server started in one call.
#[derive(Default)]
pub struct Options<'a> {
    /// Extra arguments after `serve --listen 127.0.0.1:0`.
    pub args: &'a [&'a str],
    /// Extra environment variables.
    pub env: &'a [(&'a str, &'a str)],
    /// Keep the server's stderr for [`Server::stop_and_stderr`].
    pub capture_stderr: bool,
}

impl Server {
    /// A server on a fresh data directory with `extra` arguments.
    pub fn start(bin: &'static str, extra: &[&str]) -> Server {
        ServerBuilder::new(bin).args(extra).start()
    }

    /// A server whose data directory is `<dir>/data`.
    pub fn start_in(bin: &'static str, dir: tempfile::TempDir, extra: &[&str]) -> Server {
        ServerBuilder::new(bin).dir(dir).args(extra).start()
    }

    pub fn start_with(bin: &'static str, dir: tempfile::TempDir, options: Options<'_>) -> Server {
        let mut b = ServerBuilder::new(bin).dir(dir).args(options.args);
        for (k, v) in options.env {
            b = b.env(k, v);
        }
        if options.capture_stderr {
            b = b.capture_stderr();
        }
        b.start()
    }

    /// SIGTERM, then waits for the exit; the directory stays for a scan.
    pub fn terminate(&mut self) -> ExitStatus {
        self.sigterm();
        self.child.take().expect("running").wait().unwrap()
    }

    /// Stops the server and returns all it wrote to stderr (start it with
    /// `capture_stderr`). Complete: read after the process exited.
    pub fn stop_and_stderr(&mut self) -> String {
        self.terminate();
        let (buffer, reader) = self
            .stderr
            .take()
            .expect("start the server with `capture_stderr`");
        reader.join().unwrap();
        buffer.lock().unwrap().clone()
    }

    /// This server's binary with its environment, data directory and
    /// database.
    pub fn command(&self) -> Command {
        let mut cmd = command(self.bin, &self.data_dir());
        if let Some(url) = &self.database_url {
            cmd.env(DATABASE_URL_ENV, url);
        }
        cmd
    }

    /// A new API key: `(id, key)`.
    pub async fn new_key_with_id(
        &self,
        admin: &str,
        scopes: &[&str],
        project: Option<&str>,
    ) -> (String, String) {
        let r = self
            .call(
                Method::POST,
                "/v1/keys",
                Some(admin),
                Some(json!({"name": "k", "scopes": scopes, "project": project})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let v = r.json();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["key"].as_str().unwrap().to_owned(),
        )
    }

    /// `POST /v1/oauth/token` with a JSON body.
    pub async fn token_json(&self, body: Value) -> Reply {
        self.send(
            self.client
                .post(format!("{}/v1/oauth/token", self.base))
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }
}
