//! The operator's client commands (`airlock projects`, `steps`, `runs`,
//! `logs`, `triggers`, `keys`, `clients`, `push`, `secrets`/`accounts
//! --server`, `completions`) against a real `airlock serve`: each command's
//! human output as one snapshot (ids, digests and times normalised), its
//! `--json` parsed, and the errors with their exit status and the fix they
//! name.
//!
//! Snapshots live in `tests/tests/snapshots/`; after a deliberate change of
//! output, `INSTA_UPDATE=always cargo test -p airlock-tests --test
//! cli_client` rewrites them (review the diff).

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use airlock_tests::serve::{Server, assert_timestamps, command};
use airlock_tests::{examples, guests};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

/// What one command printed and how it exited.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// Panics unless the command succeeded.
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// The CLI, pointed at one server with one key and project, run from an
/// empty directory (so no `./airlock.toml` is picked up by accident).
struct Cli<'a> {
    server: &'a Server,
    key: String,
    project: Option<String>,
    cwd: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl<'a> Cli<'a> {
    fn new(server: &'a Server, key: &str) -> Self {
        Self {
            server,
            key: key.to_owned(),
            project: Some("demo".to_owned()),
            cwd: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = command(BIN, &self.server.data_dir());
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

    fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, None)
    }

    fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Out {
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
    fn both(&self, args: &[&str]) -> (String, Value) {
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
    fn normalise(&self, text: &str) -> String {
        normalise(text, &self.server.base)
    }
}

/// A table with its rows sorted: for lists whose order among rows created
/// in the same second is the ids' (random).
fn sorted_rows(table: &str) -> String {
    let mut lines: Vec<&str> = table.lines().collect();
    lines[1..].sort_unstable();
    lines.join("\n") + "\n"
}

fn normalise(text: &str, base: &str) -> String {
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
async fn server() -> (Server, String) {
    let s = Server::start(BIN, &[]);
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

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn projects_steps_runs_logs_and_triggers() {
    let (s, admin) = server().await;
    let cli = Cli::new(&s, &admin);

    // projects
    let (human, json) = cli.both(&["projects", "list"]);
    insta::assert_snapshot!("projects_list", human);
    let names: Vec<&str> = json["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta", "demo"], "{json}");
    // The bare noun lists.
    assert_eq!(
        cli.run(&["projects"]).ok().stdout,
        cli.run(&["projects", "list"]).stdout
    );
    let out = cli.run(&["projects", "create", "gamma"]).ok();
    insta::assert_snapshot!("projects_create", cli.normalise(&out.stdout));
    let json = cli
        .run(&["projects", "create", "delta", "--json"])
        .ok()
        .json();
    assert_eq!(json["name"], "delta");
    assert_timestamps(&json, "$");
    let (human, json) = cli.both(&["projects", "show", "demo"]);
    insta::assert_snapshot!("projects_show", human);
    assert_eq!(json["name"], "demo");

    // push: with a manifest, and without one (the server's `name = "<step>"`).
    let manifest = write(cli.cwd.path(), "hello.toml", "name = \"hello\"\n");
    let out = cli
        .run(&["push", examples::HELLO, "--manifest", &manifest])
        .ok();
    insta::assert_snapshot!("push", cli.normalise(&out.stdout));
    let json = cli
        .run(&["push", examples::HELLO, "--manifest", &manifest, "--json"])
        .ok()
        .json();
    assert_eq!(json["step"], "hello");
    assert_eq!(json["created"], false, "the same version again: {json}");
    let out = cli
        .run(&["push", guests::LOOP_FOREVER, "--step", "spin"])
        .ok();
    assert!(
        out.stderr.contains("the server uses `name = \"spin\"`"),
        "{}",
        out.stderr
    );
    let detail = cli.run(&["steps", "show", "spin", "--json"]).ok().json();
    assert_eq!(detail["manifest"], "name = \"spin\"\n", "{detail}");
    // ./airlock.toml is picked up without --manifest.
    write(
        cli.cwd.path(),
        "airlock.toml",
        "name = \"spin\"\n[limits]\ncpu_ms = 100\n",
    );
    let json = cli
        .run(&["push", guests::LOOP_FOREVER, "--json"])
        .ok()
        .json();
    assert_eq!(json["step"], "spin", "{json}");
    std::fs::remove_file(cli.cwd.path().join("airlock.toml")).unwrap();

    // steps
    let (human, json) = cli.both(&["steps", "list"]);
    insta::assert_snapshot!("steps_list", human);
    assert_eq!(json["steps"].as_array().unwrap().len(), 2, "{json}");
    let (human, json) = cli.both(&["steps", "show", "hello"]);
    insta::assert_snapshot!("steps_show", human);
    assert_eq!(json["versions"].as_array().unwrap().len(), 1, "{json}");

    // runs start: the output on stdout, the run on stderr.
    let out = cli
        .run(&["runs", "start", "hello", "--input", r#"{"name":"Ada"}"#])
        .ok();
    insta::assert_snapshot!("runs_start", cli.normalise(&out.stdout));
    assert!(out.stderr.contains("succeeded"), "{}", out.stderr);
    let result = cli
        .run(&[
            "runs",
            "start",
            "hello",
            "--input",
            r#"{"name":"Grace"}"#,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(result["status"], "succeeded");
    assert_eq!(result["output"]["greeting"], "Hello, Grace!");
    let run_id = result["id"].as_str().unwrap().to_owned();
    // From a file and from stdin.
    let input = write(cli.cwd.path(), "input.json", r#"{"name":"File"}"#);
    let out = cli
        .run(&["runs", "start", "hello", "--input-file", &input])
        .ok();
    assert!(out.stdout.contains("Hello, File!"), "{}", out.stdout);
    let out = cli.run_with(&["runs", "start", "hello"], Some(r#"{"name":"Stdin"}"#));
    assert!(out.ok().stdout.contains("Hello, Stdin!"));

    // A failed run: its kind and the step's code, exit 1; its JSON still prints.
    let out = cli.run(&["runs", "start", "hello", "--input", r#"{"name":""}"#]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("failed: step_error"), "{}", out.stderr);
    assert!(out.stderr.contains("empty_name"), "{}", out.stderr);
    insta::assert_snapshot!("runs_start_failed", cli.normalise(&out.stderr));
    let out = cli.run(&[
        "runs",
        "start",
        "hello",
        "--input",
        r#"{"name":""}"#,
        "--json",
    ]);
    assert_eq!(out.code, 1);
    let failed = out.json();
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["kind"], "step_error");
    let failed_id = failed["id"].as_str().unwrap().to_owned();
    // A limit: exit 3.
    let out = cli.run(&["runs", "start", "spin", "--input", "{}"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("limit:cpu"), "{}", out.stderr);
    // Input that is not JSON never reaches the server.
    let out = cli.run(&["runs", "start", "hello", "--input", "{nope"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("the input is not valid JSON"),
        "{}",
        out.stderr
    );

    // runs list / show, logs
    let (human, json) = cli.both(&["runs", "list", "--step", "hello", "--limit", "2"]);
    insta::assert_snapshot!("runs_list", human);
    assert_eq!(json["runs"].as_array().unwrap().len(), 2, "{json}");
    assert!(json["next_cursor"].is_string(), "more than 2 runs: {json}");
    let failed_only = cli
        .run(&["runs", "list", "--status", "failed", "--json"])
        .ok()
        .json();
    assert!(
        failed_only["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "failed"),
        "{failed_only}"
    );
    let (human, json) = cli.both(&["runs", "show", &run_id]);
    insta::assert_snapshot!("runs_show", human);
    assert_eq!(json["output"]["greeting"], "Hello, Grace!");
    assert_eq!(json["logs"][0]["text"], "greeting Grace");
    let (human, json) = cli.both(&["runs", "show", &failed_id]);
    insta::assert_snapshot!("runs_show_failed", human);
    assert_eq!(json["error"]["kind"], "step_error");
    let (human, json) = cli.both(&["logs", &run_id]);
    insta::assert_snapshot!("logs", human);
    assert_eq!(json["logs"][0]["level"], "info", "{json}");

    // triggers: the full URL, and it answers.
    let out = cli.run(&["triggers", "create", "hello"]).ok();
    insta::assert_snapshot!("triggers_create", cli.normalise(&out.stdout));
    let url = out.stdout.trim().to_owned();
    assert!(url.starts_with(&format!("{}/t/", s.base)), "{url}");
    let answer = s
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"name":"Trigger"}"#)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(answer.contains("Hello, Trigger!"), "{answer}");
    let signed = cli
        .run(&[
            "triggers",
            "create",
            "hello",
            "--signature",
            "hmac-sha256",
            "--secret",
            "hook",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(signed["signature"]["kind"], "hmac-sha256", "{signed}");
    assert_eq!(signed["signature"]["header"], "X-Hub-Signature-256");
    assert_eq!(
        signed["full_url"].as_str().unwrap(),
        format!("{}{}", s.base, signed["url"].as_str().unwrap())
    );
    let (human, json) = cli.both(&["triggers", "list", "hello"]);
    insta::assert_snapshot!("triggers_list", sorted_rows(&human));
    assert_eq!(json["triggers"].as_array().unwrap().len(), 2, "{json}");
    // Without a step: every step's.
    let all = cli.run(&["triggers", "list", "--json"]).ok().json();
    assert_eq!(all["triggers"].as_array().unwrap().len(), 2, "{all}");
    let id = signed["id"].as_str().unwrap();
    let out = cli.run(&["triggers", "rm", "hello", id]).ok();
    insta::assert_snapshot!("triggers_rm", cli.normalise(&out.stdout));
    let out = cli.run(&["triggers", "rm", "hello", id]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("no such trigger (HTTP 404 not_found)"),
        "{}",
        out.stderr
    );

    // steps rm
    let out = cli.run(&["steps", "rm", "spin"]).ok();
    insta::assert_snapshot!("steps_rm", cli.normalise(&out.stdout));
    let json = cli.run(&["steps", "rm", "hello", "--json"]).ok().json();
    assert_eq!(json["deleted"], "hello");
    let out = cli.run(&["steps", "list"]).ok();
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains("no steps in project demo"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn keys_and_clients() {
    let (s, admin) = server().await;
    let cli = Cli::new(&s, &admin);

    let out = cli
        .run(&[
            "keys",
            "create",
            "deploy",
            "--scope",
            "steps:write",
            "--scope",
            "runs:read",
            "--project",
            "demo",
        ])
        .ok();
    let key = out.stdout.trim().to_owned();
    assert!(key.starts_with("ak_"), "{key}");
    insta::assert_snapshot!("keys_create", cli.normalise(&out.stdout));
    assert!(out.stderr.contains("shown once"), "{}", out.stderr);
    // The new key works, within its scopes and project.
    let deploy = Cli::new(&s, &key);
    deploy.run(&["runs", "list"]).ok();
    let out = deploy.run(&["keys", "list"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("lacks the `admin` scope (HTTP 403 forbidden)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("airlock keys create"), "{}", out.stderr);

    let created = cli
        .run(&["keys", "create", "ci", "--scope", "runs:write", "--json"])
        .ok()
        .json();
    assert!(
        created["key"].as_str().unwrap().starts_with("ak_"),
        "{created}"
    );
    assert_eq!(created["scopes"], serde_json::json!(["runs:write"]));
    assert_timestamps(&created, "$");
    let (human, json) = cli.both(&["keys", "list"]);
    insta::assert_snapshot!("keys_list", sorted_rows(&human));
    let keys = json["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3, "{json}");
    assert!(
        keys.iter().all(|k| k.get("key").is_none()),
        "never a key: {json}"
    );

    let deploy_id = keys
        .iter()
        .find(|k| k["name"] == "deploy")
        .and_then(|k| k["id"].as_str())
        .unwrap()
        .to_owned();
    assert!(key.contains(&deploy_id[3..]), "{deploy_id} names {key}");
    let out = cli.run(&["keys", "revoke", &deploy_id]).ok();
    insta::assert_snapshot!("keys_revoke", cli.normalise(&out.stdout));
    // Revoked: refused at once, with the fix named.
    let out = deploy.run(&["steps", "list"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("the server refused the API key"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(&key),
        "the key is never echoed: {}",
        out.stderr
    );

    // OAuth clients
    let out = cli
        .run(&["clients", "create", "backend", "--scope", "runs:write"])
        .ok();
    insta::assert_snapshot!("clients_create", cli.normalise(&out.stdout));
    let created = cli
        .run(&[
            "clients",
            "create",
            "worker",
            "--scope",
            "proxy",
            "--project",
            "demo",
            "--json",
        ])
        .ok()
        .json();
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let first_secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(created["project"], "demo");
    let (human, json) = cli.both(&["clients", "list"]);
    insta::assert_snapshot!("clients_list", human);
    assert_eq!(json["clients"].as_array().unwrap().len(), 2, "{json}");
    assert!(
        !json.to_string().contains(&first_secret),
        "never a secret: {json}"
    );
    let out = cli.run(&["clients", "rotate", &client_id]).ok();
    insta::assert_snapshot!("clients_rotate", cli.normalise(&out.stdout));
    assert!(!out.stdout.contains(&first_secret));
    let r = s.token_form(&client_id, &first_secret).await;
    assert_eq!(
        r.status,
        reqwest::StatusCode::UNAUTHORIZED,
        "old secret: {}",
        r.text
    );
    let rotated = cli
        .run(&["clients", "rotate", &client_id, "--json"])
        .ok()
        .json();
    let r = s
        .token_form(&client_id, rotated["client_secret"].as_str().unwrap())
        .await;
    assert_eq!(r.status, reqwest::StatusCode::OK, "{}", r.text);
    let out = cli.run(&["clients", "rm", &client_id]).ok();
    insta::assert_snapshot!("clients_rm", cli.normalise(&out.stdout));
    let out = cli.run(&["clients", "rm", &client_id]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("`airlock clients list`"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn secrets_and_accounts_with_server() {
    let (s, admin) = server().await;
    let cli = Cli::new(&s, &admin);
    const VALUE: &str = "tok_live_9f8e7d6c5b4a";

    let out = cli.run_with(&["secrets", "set", "TOKEN"], Some(VALUE)).ok();
    insta::assert_snapshot!("secrets_set", cli.normalise(&out.stdout));
    let json = cli
        .run(&["secrets", "set", "TOKEN", "--value", VALUE, "--json"])
        .ok()
        .json();
    assert_eq!(json["outcome"], "updated");
    let (human, json) = cli.both(&["secrets", "list"]);
    insta::assert_snapshot!("secrets_list", human);
    assert_eq!(json["secrets"][0]["name"], "TOKEN");
    assert!(!json.to_string().contains(VALUE));
    // The server's store, not the local one: a step run there reads it.
    let manifest = write(
        cli.cwd.path(),
        "echo.toml",
        "name = \"echo-secret\"\nsecrets = [\"TOKEN\"]\nreveal = [\"TOKEN\"]\n",
    );
    cli.run(&["push", examples::ECHO_SECRET, "--manifest", &manifest])
        .ok();
    let run = cli
        .run(&["runs", "start", "echo-secret", "--input", "{}", "--json"])
        .ok()
        .json();
    assert_eq!(run["output"]["token"], "[REDACTED:TOKEN]", "{run}");
    let out = cli.run(&["secrets", "rm", "TOKEN"]).ok();
    insta::assert_snapshot!("secrets_rm", cli.normalise(&out.stdout));
    let out = cli.run(&["secrets", "rm", "TOKEN"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("no secret `TOKEN` (HTTP 404 not_found)"),
        "{}",
        out.stderr
    );
    let out = cli.run(&["secrets", "rotate-key"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("without --server"), "{}", out.stderr);

    // Accounts
    let out = cli
        .run(&[
            "accounts",
            "add",
            "--app",
            "github",
            "--external-user",
            "ada",
            "--access-token",
            "gho_0123456789abcdef",
        ])
        .ok();
    let account_id = out.stdout.trim().to_owned();
    assert!(account_id.starts_with("acc_"), "{account_id}");
    insta::assert_snapshot!("accounts_add", cli.normalise(&out.stdout));
    let json = cli
        .run(&[
            "accounts",
            "add",
            "--app",
            "github",
            "--external-user",
            "bob",
            "--access-token",
            "gho_fedcba9876543210",
            "--expires-in",
            "3600",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(json["external_user_id"], "bob");
    assert!(json["expires_at"].is_string(), "{json}");
    assert_timestamps(&json, "$");
    let (human, json) = cli.both(&["accounts", "list", "--external-user", "ada"]);
    insta::assert_snapshot!("accounts_list", human);
    assert_eq!(json["accounts"].as_array().unwrap().len(), 1, "{json}");
    assert!(
        !json.to_string().contains("gho_"),
        "never a credential: {json}"
    );
    // A missing credential is the server's 400, naming the field.
    let out = cli.run(&[
        "accounts",
        "add",
        "--app",
        "github",
        "--external-user",
        "cy",
    ]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("access_token"), "{}", out.stderr);
    assert!(
        out.stderr.contains("HTTP 400 bad_request"),
        "{}",
        out.stderr
    );
    let out = cli.run(&["accounts", "rm", &account_id]).ok();
    insta::assert_snapshot!("accounts_rm", cli.normalise(&out.stdout));

    // Without --server and AIRLOCK_SERVER (empty is none), the local store
    // as before: no API key needed (the harness clears AIRLOCK_API_KEY).
    let out = command(BIN, &s.data_dir())
        .args(["secrets", "list", "--project", "demo"])
        .env("AIRLOCK_SERVER", "")
        .env("AIRLOCK_MASTER_KEY", airlock_tests::serve::MASTER_KEY)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// Multi-threaded: a fake non-Airlock server runs in this process while the
// CLI, a child process, is waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_fix_and_exit_with_the_documented_status() {
    let (s, admin) = server().await;
    let cli = Cli::new(&s, &admin);

    // No key: 2.
    let mut no_key = Cli::new(&s, "");
    no_key.key = String::new();
    let out = no_key.run(&["steps", "list"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("no API key: set AIRLOCK_API_KEY or pass --api-key"),
        "{}",
        out.stderr
    );
    let out = no_key.run(&["push", examples::HELLO]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("AIRLOCK_API_KEY"), "{}", out.stderr);

    // Wrong key: 2, the server's message with its status.
    let wrong = Cli::new(&s, "ak_0000000000000000_wrong");
    let out = wrong.run(&["projects", "list"]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!("error_wrong_key", cli.normalise(&out.stderr));
    assert!(!out.stderr.contains("_wrong"), "{}", out.stderr);

    // No project: 2, naming the variable.
    let mut no_project = Cli::new(&s, &admin);
    no_project.project = None;
    for args in [&["steps", "list"][..], &["push", examples::HELLO]] {
        let out = no_project.run(args);
        assert_eq!(out.code, 2);
        assert!(
            out.stderr
                .contains("no project: pass --project NAME or set AIRLOCK_PROJECT"),
            "{}",
            out.stderr
        );
    }
    // --project beats AIRLOCK_PROJECT.
    let json = cli
        .run(&["steps", "list", "--project", "alpha", "--json"])
        .ok()
        .json();
    assert_eq!(json["steps"], serde_json::json!([]));

    // Unknown ids: 2, with what to list.
    let out = cli.run(&["runs", "show", "0190aaaa-0000-7000-8000-000000000000"]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!("error_unknown_run", cli.normalise(&out.stderr));
    let out = cli.run(&["steps", "show", "nope"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no step `nope` (HTTP 404 not_found)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`airlock steps list`"),
        "{}",
        out.stderr
    );
    let out = cli.run(&["logs", "nope"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("`airlock runs list`"), "{}", out.stderr);
    let out = cli.run(&["projects", "show", "nope"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no project `nope`"), "{}", out.stderr);
    // An id that would change the route is refused before it is sent.
    let out = cli.run(&["runs", "show", ".."]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("not a valid name or id"),
        "{}",
        out.stderr
    );
    // A name the server refuses: its 400.
    let out = cli.run(&["projects", "create", "no spaces"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("HTTP 400"), "{}", out.stderr);
    // A duplicate: 409 is a 4xx, exit 2.
    let out = cli.run(&["projects", "create", "demo"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("HTTP 409 conflict"), "{}", out.stderr);

    // Server down: 4, naming the server and the variable.
    let mut down = Cli::new(&s, &admin);
    down.env
        .push(("AIRLOCK_SERVER".into(), "http://127.0.0.1:9".into()));
    for args in [
        &["steps", "list"][..],
        &["push", examples::HELLO],
        &["runs", "start", "hello", "--input", "{}"],
    ] {
        let out = down.run(args);
        assert_eq!(out.code, 4, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("cannot reach http://127.0.0.1:9")
                && out
                    .stderr
                    .contains("is `airlock serve` running? set AIRLOCK_SERVER"),
            "{}",
            out.stderr
        );
    }
    // Not a URL: 2.
    let mut bad = Cli::new(&s, &admin);
    bad.env.push(("AIRLOCK_SERVER".into(), "ftp://x".into()));
    let out = bad.run(&["steps", "list"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("set AIRLOCK_SERVER or pass --server"),
        "{}",
        out.stderr
    );
    // Something that is not an Airlock server: 4.
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_url = format!("http://{}", other.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(|| async { "hello, I am not airlock" });
        axum::serve(other, app).await.unwrap();
    });
    let mut foreign = Cli::new(&s, &admin);
    foreign.env.push(("AIRLOCK_SERVER".into(), other_url));
    let out = foreign.run(&["projects", "list"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("is not the Airlock API"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn logs_are_coloured_only_for_a_terminal_and_never_carry_escapes() {
    let (s, admin) = server().await;
    let mut cli = Cli::new(&s, &admin);
    let manifest = write(cli.cwd.path(), "hello.toml", "name = \"hello\"\n");
    cli.run(&["push", examples::HELLO, "--manifest", &manifest])
        .ok();
    // The step logs its input: a name holding terminal escapes.
    let input = serde_json::json!({"name": "\u{1b}[2J\u{1b}]0;pwned\u{7}\u{9b}31m"}).to_string();
    let run = cli
        .run(&["runs", "start", "hello", "--input", &input, "--json"])
        .ok();
    assert!(
        !run.stdout.contains('\u{1b}') && !run.stdout.contains('\u{9b}'),
        "{:?}",
        run.stdout
    );
    let id = run.json()["id"].as_str().unwrap().to_owned();

    // A pipe: no colours, escapes shown as text.
    let plain = cli.run(&["logs", &id]).ok().stdout;
    assert!(!plain.contains('\u{1b}'), "{plain:?}");
    assert!(plain.contains("INFO"), "{plain}");
    assert!(
        plain.contains(r"greeting \u{1b}[2J\u{1b}]0;pwned\u{7}\u{9b}31m"),
        "{plain}"
    );

    // Colours where a terminal would get them (CLICOLOR_FORCE stands in).
    cli.env.push(("CLICOLOR_FORCE".into(), "1".into()));
    let coloured = cli.run(&["logs", &id]).ok().stdout;
    assert!(coloured.contains("\u{1b}[32mINFO"), "{coloured:?}");
    // Only ours: the step's own escapes stay text.
    assert!(
        !coloured.contains("\u{1b}[2J") && !coloured.contains('\u{9b}'),
        "{coloured:?}"
    );
    let show = cli.run(&["runs", "show", &id]).ok().stdout;
    assert!(show.contains("\u{1b}[32mINFO"), "{show:?}");
    assert!(
        !show.contains("\u{1b}[2J") && !show.contains("\u{1b}]0"),
        "{show:?}"
    );

    // NO_COLOR wins.
    cli.env.push(("NO_COLOR".into(), "1".into()));
    let out = cli.run(&["logs", &id]).ok().stdout;
    assert_eq!(out, plain);
}

#[test]
fn completions_generate_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _airlock"),
        ("zsh", "#compdef airlock"),
        ("fish", "complete -c airlock"),
    ] {
        let out = command(BIN, Path::new("/nonexistent"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains(marker),
            "{shell}: {}",
            &text[..200.min(text.len())]
        );
        for noun in [
            "projects", "steps", "runs", "logs", "triggers", "keys", "clients",
        ] {
            assert!(text.contains(noun), "{shell} completes {noun}");
        }
    }
    let out = command(BIN, Path::new("/nonexistent"))
        .args(["completions", "powershell"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn admin_create_key_says_where_it_created_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh-data");
    let run = || {
        command(BIN, &data)
            .args(["admin", "create-key"])
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = std::fs::canonicalize(&data).unwrap();
    assert!(
        stderr.contains(&format!(
            "created a new data directory at {}",
            shown.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("AIRLOCK_DATA"), "{stderr}");
    // Not again once it exists.
    let out = run();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("new data directory"));
}
