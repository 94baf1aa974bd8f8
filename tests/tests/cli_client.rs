//! The operator's client commands for steps and runs (`airlock projects`,
//! `push`, `steps`, `runs`, `logs`, `triggers`) against a real `airlock
//! serve`: each command's human output as one snapshot, its `--json`
//! parsed; log colours and escapes.
//!
//! Snapshots live in `tests/tests/snapshots/`; after a deliberate change of
//! output, `INSTA_UPDATE=always cargo test -p airlock-tests --test NAME`
//! rewrites them (review the diff). The harness is `airlock_tests::cli`.

use airlock_tests::cli::{Cli, server, sorted_rows, write};
use airlock_tests::serve::assert_timestamps;
use airlock_tests::{examples, guests};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

#[tokio::test]
async fn projects_steps_runs_logs_and_triggers() {
    let (s, admin) = server(BIN).await;
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
    let other = json["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] != id)
        .and_then(|t| t["id"].as_str())
        .unwrap();
    let json = cli
        .run(&["triggers", "rm", "hello", other, "--json"])
        .ok()
        .json();
    assert_eq!(json, serde_json::json!({ "deleted": other }));
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
async fn logs_are_coloured_only_for_a_terminal_and_never_carry_escapes() {
    let (s, admin) = server(BIN).await;
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

/// `runs start --async` prints the queued run's id at once; `runs show`
/// follows it; `runs cancel` of a finished run is refused naming why.
#[tokio::test]
async fn runs_start_async_and_cancel() {
    let (s, admin) = server(BIN).await;
    let cli = Cli::new(&s, &admin);
    let manifest = write(cli.cwd.path(), "hello.toml", "name = \"hello\"\n");
    cli.run(&["push", examples::HELLO, "--manifest", &manifest])
        .ok();
    let out = cli
        .run(&[
            "runs",
            "start",
            "hello",
            "--input",
            r#"{"name":"Ada"}"#,
            "--async",
            "--idempotency-key",
            "k-1",
        ])
        .ok();
    let id = out.stdout.trim().to_owned();
    assert!(out.stderr.contains("queued"), "{}", out.stderr);
    // The same key: the same run.
    let again = cli
        .run(&[
            "runs",
            "start",
            "hello",
            "--input",
            r#"{"name":"Ada"}"#,
            "--async",
            "--idempotency-key",
            "k-1",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(again["id"], id.as_str(), "{again}");
    let start = std::time::Instant::now();
    loop {
        let run = cli.run(&["runs", "show", &id, "--json"]).ok().json();
        if run["status"] == "succeeded" {
            assert_eq!(run["attempts"], 1, "{run}");
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "{run}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = cli.run(&["runs", "cancel", &id]);
    assert_eq!(out.code, 2, "a 4xx: {}", out.stderr);
    assert!(out.stderr.contains("finished"), "{}", out.stderr);
}
