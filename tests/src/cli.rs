//! A harness for the client commands' end-to-end tests: the CLI pointed at
//! one [`Server`] with one key and project, its output normalised for
//! snapshots (ids, digests and times replaced by placeholders).

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::serve::{Server, assert_timestamps};

/// What one command printed and how it exited.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Panics unless the command succeeded.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// The CLI, pointed at one server with one key and project, run from an
/// empty directory (so no `./airlock.toml` is picked up by accident).
pub struct Cli<'a> {
    pub server: &'a Server,
    pub key: String,
    /// `AIRLOCK_PROJECT` (default `demo`).
    pub project: Option<String>,
    /// The working directory, empty but for what a test writes.
    pub cwd: tempfile::TempDir,
    /// More environment variables.
    pub env: Vec<(String, String)>,
}

impl<'a> Cli<'a> {
    pub fn new(server: &'a Server, key: &str) -> Self {
        Self {
            server,
            key: key.to_owned(),
            project: Some("demo".to_owned()),
            cwd: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.server.command();
        cmd.args(args)
            .current_dir(self.cwd.path())
            .env("AIRLOCK_SERVER", &self.server.base)
            .env("AIRLOCK_API_KEY", &self.key);
        if let Some(p) = &self.project {
            cmd.env("AIRLOCK_PROJECT", p);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, None)
    }

    pub fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            pipe.write_all(s.as_bytes()).unwrap();
        }
        drop(pipe);
        let out = child.wait_with_output().unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `args` and `args --json`: the human output normalised for a
    /// snapshot, and the JSON parsed (its timestamps checked).
    pub fn both(&self, args: &[&str]) -> (String, Value) {
        let human = self.run(args).ok();
        let mut json_args = args.to_vec();
        json_args.push("--json");
        let json = self.run(&json_args).ok().json();
        assert_timestamps(&json, "$");
        (self.normalise(&human.stdout), json)
    }

    /// `text` with what changes from run to run replaced by placeholders,
    /// and runs of spaces collapsed (column widths follow the values; the
    /// alignment itself is a unit test of the table).
    pub fn normalise(&self, text: &str) -> String {
        normalise(text, &self.server.base)
    }
}

/// A table with its rows sorted: for lists whose order among rows created
/// in the same second is the ids' (random).
pub fn sorted_rows(table: &str) -> String {
    let mut lines: Vec<&str> = table.lines().collect();
    lines[1..].sort_unstable();
    lines.join("\n") + "\n"
}

pub fn normalise(text: &str, base: &str) -> String {
    let rules: &[(&str, &str)] = &[
        (r"sha256:[0-9a-f]{64}", "sha256:<digest>"),
        (r"sha256:[0-9a-f]{12}", "sha256:<short>"),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "<run-id>",
        ),
        (r"ak_[0-9a-f]{16}_[A-Za-z0-9_-]+", "<api-key>"),
        (r"acc_[0-9a-f]{16}", "<account-id>"),
        (r"\b[0-9a-f]{16}\b", "<key-id>"),
        (r"client_secret:\s+\S+", "client_secret: <client-secret>"),
        (r"ac_[0-9a-f]+", "<client-id>"),
        (r"/t/[A-Za-z0-9_-]{32}", "/t/<trigger-id>"),
        (r"(?m)^[A-Za-z0-9_-]{32}(\s)", "<trigger-id>$1"),
        (
            r"(trigger:\s+|deleted trigger )[A-Za-z0-9_-]{32}",
            "$1<trigger-id>",
        ),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<time>"),
        (
            r"just now|\d+ s ago|\d+ min ago|\d+ h ago|\d+ days? ago",
            "<ago>",
        ),
        (r"\d+ ms\b", "<n> ms"),
        (r"\d+ms\b", "<n>ms"),
        (r"\d+ KiB", "<n> KiB"),
        (r"(cpu ticks:\s+|log bytes:\s+)\d+", "$1<n>"),
        (r" {2,}", "  "),
        (r"(?m)^ +", ""),
    ];
    let mut text = text.replace(base, "http://SERVER");
    for (pattern, replacement) in rules {
        text = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&text, *replacement)
            .into_owned();
    }
    text
}

/// A server with project `demo` and a global admin key.
pub async fn server(bin: &'static str) -> (Server, String) {
    let s = Server::start(bin, &[]);
    let admin = s.admin_setup().await;
    let r = s
        .call(
            reqwest::Method::POST,
            "/v1/projects",
            Some(&admin),
            Some(serde_json::json!({"name": "demo"})),
        )
        .await;
    assert_eq!(r.status, reqwest::StatusCode::CREATED, "{}", r.text);
    (s, admin)
}

pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The CLI on its own (no server): a throwaway data directory, master key
/// and operator apps directory, the shared compile cache.
pub struct LocalCli {
    bin: std::path::PathBuf,
    pub data: tempfile::TempDir,
    pub apps: tempfile::TempDir,
    pub key: String,
}

impl LocalCli {
    /// `bin`: `env!("CARGO_BIN_EXE_airlock-under-test")` of the test.
    pub fn new(bin: &str) -> Self {
        let out = Command::new(bin).arg("keygen").output().unwrap();
        Self {
            bin: bin.into(),
            data: tempfile::tempdir().unwrap(),
            apps: tempfile::tempdir().unwrap(),
            key: String::from_utf8(out.stdout).unwrap().trim().to_string(),
        }
    }

    pub fn airlock(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.bin)
            .args(args)
            .env("AIRLOCK_MASTER_KEY", &self.key)
            .env("AIRLOCK_DATA", self.data.path())
            .env("AIRLOCK_APPS_DIR", self.apps.path())
            .env("AIRLOCK_CACHE_DIR", crate::test_cache_dir())
            .output()
            .unwrap()
    }

    /// Writes an app file into the operator's apps directory.
    pub fn app(&self, slug: &str, toml: &str) {
        std::fs::write(self.apps.path().join(format!("{slug}.toml")), toml).unwrap();
    }
}
