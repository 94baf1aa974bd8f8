//! A real `airlock serve` for end-to-end tests: the test binary on
//! 127.0.0.1 port 0, a real SQLite database in a tempdir, real HTTP through
//! reqwest.
//!
//! Each test file passes the binary's path
//! (`env!("CARGO_BIN_EXE_airlock-under-test")`): Cargo sets that variable
//! for integration tests, not for this library.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Base64 of 32 bytes: a valid master key for tests.
pub const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// `bin` with none of the caller's `AIRLOCK_*` settings, on `data_dir`.
pub fn command(bin: &str, data_dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for var in [
        "AIRLOCK_MASTER_KEY",
        "AIRLOCK_MASTER_KEY_FILE",
        "AIRLOCK_DATA",
        "AIRLOCK_LISTEN",
        "AIRLOCK_CONFIG",
        "AIRLOCK_TOKEN_TTL_SECS",
        "AIRLOCK_APPS_DIR",
        "AIRLOCK_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AIRLOCK_DATA", data_dir);
    cmd
}

/// A reqwest client for loopback (no proxy).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// An HTTP answer, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Panics unless the body is `{"error": {"code": "...", "message": "..."}}`.
    pub fn assert_error_shape(&self) {
        let v = self.json();
        let obj = v.as_object().expect("object");
        assert_eq!(obj.len(), 1, "only `error`: {v}");
        let e = v["error"].as_object().expect("error object");
        assert_eq!(e.len(), 2, "code and message: {v}");
        assert!(e["code"].as_str().is_some_and(|c| !c.is_empty()), "{v}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        let ct = self.headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap();
        assert!(ct.starts_with("application/json"), "{ct}");
    }

    /// The error's `code` and `message`.
    pub fn error(&self) -> (String, String) {
        self.assert_error_shape();
        let v = self.json();
        (
            v["error"]["code"].as_str().unwrap().to_owned(),
            v["error"]["message"].as_str().unwrap().to_owned(),
        )
    }
}

/// How to start a [`Server`].
#[derive(Default)]
pub struct Options<'a> {
    /// Extra arguments after `serve --listen 127.0.0.1:0`.
    pub args: &'a [&'a str],
    /// Extra environment variables.
    pub env: &'a [(&'a str, &'a str)],
    /// Keep the server's stderr for [`Server::stop_and_stderr`] instead of
    /// passing it through.
    pub capture_stderr: bool,
}

/// A running `airlock serve`, killed on drop.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    bin: String,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// A server on a fresh data directory.
    pub fn start(bin: &str, extra: &[&str]) -> Server {
        Self::start_in(bin, tempfile::tempdir().unwrap(), extra)
    }

    /// A server whose data directory is `<dir>/data`.
    pub fn start_in(bin: &str, dir: tempfile::TempDir, extra: &[&str]) -> Server {
        Self::start_with(
            bin,
            dir,
            Options {
                args: extra,
                ..Options::default()
            },
        )
    }

    pub fn start_with(bin: &str, dir: tempfile::TempDir, options: Options<'_>) -> Server {
        let mut child = command(bin, &dir.path().join("data"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(options.args)
            .envs(options.env.iter().copied())
            .env("AIRLOCK_MASTER_KEY", MASTER_KEY)
            .stdout(Stdio::piped())
            .stderr(if options.capture_stderr {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .unwrap();
        // Read stderr as it comes, so the server never blocks on a full pipe;
        // the thread returns it all once the process has closed it.
        let stderr = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut all = Vec::new();
                let _ = pipe.read_to_end(&mut all);
                all
            })
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = match line.trim().strip_prefix("listening on ") {
            Some(base) => base.to_owned(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let captured = stderr
                    .map(|reader| String::from_utf8_lossy(&reader.join().unwrap()).into_owned())
                    .unwrap_or_else(|| "(above)".to_owned());
                panic!(
                    "`airlock serve` did not start (first line {line:?}; its stderr: {captured}). \
                     If it says `unrecognized subcommand`, another build replaced {bin} in a \
                     shared CARGO_TARGET_DIR between build and run: run the test again"
                )
            }
        };
        Server {
            child,
            base,
            dir,
            client: client(),
            bin: bin.to_owned(),
            stderr,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The binary on this server's data directory (for `admin`, ...).
    pub fn command(&self) -> Command {
        command(&self.bin, &self.data_dir())
    }

    /// SIGTERM, then waits for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }

    /// Stops the server and returns all it wrote to stderr (needs
    /// [`Options::capture_stderr`]). Complete: read after the process exited.
    pub fn stop_and_stderr(&mut self) -> String {
        self.stop();
        let reader = self
            .stderr
            .take()
            .expect("start the server with `capture_stderr: true`");
        String::from_utf8_lossy(&reader.join().unwrap()).into_owned()
    }

    /// `airlock admin create-key` against this server's data directory.
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
        let stdout = String::from_utf8(out.stdout).unwrap();
        let key = stdout.trim().to_owned();
        assert_eq!(stdout.lines().count(), 1, "only the key on stdout");
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

    /// `method path` with an optional bearer and JSON body.
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

    /// A global admin key, and the projects `alpha` and `beta`.
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

    /// A new API key: `(id, key)`.
    pub async fn new_key(
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

    /// A new OAuth client: `(client_id, client_secret)`.
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
