//! The client commands' errors (no key, wrong key, no project, unknown
//! ids, server down, not a server) with the exit status `airlock run`
//! documents and a message naming the fix; shell completions; where
//! `admin create-key` puts a new data directory.
//!
//! Snapshots live in `tests/tests/snapshots/`; after a deliberate change of
//! output, `INSTA_UPDATE=always cargo test -p airlock-tests --test NAME`
//! rewrites them (review the diff). The harness is `airlock_tests::cli`.

use airlock_tests::cli::{Cli, server};
use airlock_tests::serve::command;
use std::path::Path;

use airlock_tests::examples;

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

// Multi-threaded: a fake non-Airlock server runs in this process while the
// CLI, a child process, is waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_fix_and_exit_with_the_documented_status() {
    let (s, admin) = server(BIN).await;
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
