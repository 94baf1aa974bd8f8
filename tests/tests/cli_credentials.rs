//! The client commands for credentials (`airlock keys`, `clients`, and
//! `secrets`/`accounts` with `--server`) against a real `airlock serve`:
//! each command's human output as one snapshot, its `--json` parsed.
//!
//! Snapshots live in `tests/tests/snapshots/`; after a deliberate change of
//! output, `INSTA_UPDATE=always cargo test -p airlock-tests --test NAME`
//! rewrites them (review the diff). The harness is `airlock_tests::cli`.

use airlock_tests::cli::{Cli, server, sorted_rows, write};
use airlock_tests::examples;
use airlock_tests::serve::{assert_timestamps, command};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

#[tokio::test]
async fn keys_and_clients() {
    let (s, admin) = server(BIN).await;
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
    let ci_id = created["id"].as_str().unwrap().to_owned();
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
    // Rotated: a new key on stdout, the old one refused at once.
    let out = cli.run(&["keys", "rotate", &deploy_id]).ok();
    let rotated = out.stdout.trim().to_owned();
    assert!(
        rotated.starts_with(&format!("ak_{deploy_id}_")),
        "{rotated}"
    );
    assert_ne!(rotated, key);
    assert!(
        out.stderr.contains("the old key no longer works"),
        "{}",
        out.stderr
    );
    assert_eq!(deploy.run(&["runs", "list"]).code, 2);
    Cli::new(&s, &rotated).run(&["runs", "list"]).ok();
    let out = cli.run(&["keys", "rotate", "0000000000000000"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("`airlock keys list`"), "{}", out.stderr);
    let out = cli.run(&["keys", "revoke", &deploy_id]).ok();
    let json = cli.run(&["keys", "revoke", &ci_id, "--json"]).ok().json();
    assert_eq!(json, serde_json::json!({ "revoked": ci_id }));
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
    let backend = cli.run(&["clients", "list", "--json"]).ok().json()["clients"][0]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let json = cli.run(&["clients", "rm", &backend, "--json"]).ok().json();
    assert_eq!(json, serde_json::json!({ "deleted": backend }));
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
    let (s, admin) = server(BIN).await;
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
    cli.run(&["secrets", "set", "OTHER", "--value", VALUE]).ok();
    let json = cli.run(&["secrets", "rm", "OTHER", "--json"]).ok().json();
    assert_eq!(json, serde_json::json!({ "deleted": "OTHER" }));
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
    let bob = json["id"].as_str().unwrap().to_owned();
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
    let json = cli.run(&["accounts", "rm", &bob, "--json"]).ok().json();
    assert_eq!(json, serde_json::json!({ "deleted": bob }));
    let json = cli.run(&["accounts", "list", "--json"]).ok().json();
    assert_eq!(json, serde_json::json!({ "accounts": [] }));

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
