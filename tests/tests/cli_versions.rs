//! `airlock steps current` and `airlock usage` against a real `airlock
//! serve`: a rollback by full digest or unique prefix, a pinned trigger,
//! usage as a table and as JSON, and the exit status of each mistake (2 for
//! bad usage or a 4xx answer, naming what to list).

use airlock_tests::cli::{Cli, server, write};
use airlock_tests::{examples, guests};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

#[tokio::test]
async fn steps_current_rolls_back_and_usage_sums_the_runs() {
    let (s, admin) = server(BIN).await;
    let cli = Cli::new(&s, &admin);
    let manifest = write(cli.cwd.path(), "greet.toml", "name = \"greet\"\n");
    let push = |component: &str| {
        let json = cli
            .run(&["push", component, "--manifest", &manifest, "--json"])
            .ok()
            .json();
        json["digest"].as_str().unwrap().to_owned()
    };
    let v1 = push(examples::HELLO);
    let v2 = push(guests::CONTEXT_ECHO);
    let input = ["runs", "start", "greet", "--input", r#"{"name":"Ada"}"#];
    assert!(cli.run(&input).ok().stdout.contains("\"step\":\"greet\""));

    // By a prefix of the hex only v1 has (digests differ early).
    let hex = v1.strip_prefix("sha256:").unwrap();
    let shared = hex
        .chars()
        .zip(v2.strip_prefix("sha256:").unwrap().chars())
        .take_while(|(a, b)| a == b)
        .count();
    let prefix = &hex[..shared + 1];
    let out = cli.run(&["steps", "current", "greet", prefix]).ok();
    assert_eq!(out.stdout.trim(), format!("step greet now runs {v1}"));
    assert!(cli.run(&input).ok().stdout.contains("Hello, Ada!"));
    // By the full digest, as JSON: the step as `steps show --json` has it.
    let json = cli
        .run(&["steps", "current", "greet", &v2, "--json"])
        .ok()
        .json();
    assert_eq!(json["current_digest"], v2.as_str(), "{json}");
    assert_eq!(json["versions"][0]["current"], true, "{json}");
    assert_eq!(json["versions"][1]["current"], false, "{json}");

    // Mistakes: 2, with what to list.
    let unknown = format!("sha256:{}", "0".repeat(64));
    for (args, says) in [
        (
            vec!["steps", "current", "greet", "zz"],
            "is not a version digest",
        ),
        (
            vec!["steps", "current", "greet", "ffff0000"],
            "has no version starting",
        ),
        (vec!["steps", "current", "greet", &unknown], "no_version"),
        (vec!["steps", "current", "nope", &v1], "HTTP 404"),
    ] {
        let out = cli.run(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("airlock steps"),
            "{args:?}: {}",
            out.stderr
        );
    }

    // A trigger pinned to v1.
    let json = cli
        .run(&["triggers", "create", "greet", "--digest", &v1, "--json"])
        .ok()
        .json();
    assert_eq!(json["digest"], v1.as_str(), "{json}");
    let out = cli.run(&["triggers", "create", "greet", "--digest", "sha256:x"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("invalid_digest"), "{}", out.stderr);

    // Usage: the two runs above, both of step greet.
    let json = cli.run(&["usage", "--from", "0", "--json"]).ok().json();
    assert_eq!(json["total"]["runs"], 2, "{json}");
    assert_eq!(json["steps"][0]["step"], "greet", "{json}");
    assert_eq!(json["steps"][0]["outcomes"]["succeeded"], 2, "{json}");
    let out = cli
        .run(&[
            "usage",
            "--from",
            "1970-01-01T00:00:00Z",
            "--to",
            "99999999999999",
        ])
        .ok();
    let row = out.stdout.lines().nth(1).unwrap_or_default().to_owned();
    assert!(
        row.starts_with("greet") && row.contains("succeeded 2"),
        "{}",
        out.stdout
    );
    let out = cli.run(&["usage", "--from", "0", "--to", "1"]).ok();
    assert!(
        out.stdout.is_empty() && out.stderr.contains("no runs"),
        "{}",
        out.stderr
    );
    for (args, says) in [
        (vec!["usage", "--from", "yesterday"], "--from yesterday"),
        (
            vec!["usage", "--from", "5", "--to", "5"],
            "the range is empty",
        ),
        (vec!["usage"], "--from"),
    ] {
        let out = cli.run(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
}

#[tokio::test]
async fn runs_rerun_reruns_on_the_current_or_the_same_version() {
    let (s, admin) = server(BIN).await;
    let cli = Cli::new(&s, &admin);
    let manifest = write(cli.cwd.path(), "greet.toml", "name = \"greet\"\n");
    let push = |component: &str| {
        cli.run(&["push", component, "--manifest", &manifest]).ok();
    };
    push(guests::CONTEXT_ECHO);
    let first = cli
        .run(&[
            "runs",
            "start",
            "greet",
            "--input",
            r#"{"name":"Ada"}"#,
            "--external-user",
            "ada",
            "--json",
        ])
        .ok()
        .json();
    let id = first["id"].as_str().unwrap().to_owned();
    push(examples::HELLO);

    // The current version: hello's greeting; the new run's id on stderr.
    let out = cli.run(&["runs", "rerun", &id]).ok();
    assert_eq!(out.stdout.trim(), r#"{"greeting":"Hello, Ada!"}"#);
    assert!(out.stderr.contains("new run "), "{}", out.stderr);
    // The same version: the echo again, for the same end user.
    let json = cli
        .run(&["runs", "rerun", &id, "--same-version", "--json"])
        .ok()
        .json();
    assert_eq!(json["output"]["external_user_id"], "ada", "{json}");
    let again = json["id"].as_str().unwrap().to_owned();
    let shown = cli.run(&["runs", "show", &again]).ok();
    assert!(shown.stdout.contains(&id), "re-run of: {}", shown.stdout);
    assert!(shown.stdout.contains("ada"), "{}", shown.stdout);
    // Queued: the id at once.
    let out = cli.run(&["runs", "rerun", &id, "--async"]).ok();
    assert_eq!(out.stdout.trim().len(), 36, "{}", out.stdout);

    // An unknown run: 2, naming what to list.
    let out = cli.run(&["runs", "rerun", "0190a000-0000-7000-8000-000000000000"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("airlock runs"), "{}", out.stderr);
}
