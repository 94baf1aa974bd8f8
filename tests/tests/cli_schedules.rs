//! `airlock schedules` against a real `airlock serve`: create (paused or
//! not, with a time zone and input), list (a step's and the project's),
//! show, pause, resume, update and rm, each human and `--json`; bad input
//! is exit 2 naming the flag or field. The harness is `airlock_tests::cli`.

use airlock_tests::cli::{Cli, server, write};
use airlock_tests::examples;
use airlock_tests::serve::assert_timestamps;

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

#[tokio::test]
async fn schedules_create_list_show_pause_resume_update_rm() {
    let (s, admin) = server(BIN).await;
    let cli = Cli::new(&s, &admin);
    let manifest = write(cli.cwd.path(), "hello.toml", "name = \"hello\"\n");
    cli.run(&["push", examples::HELLO, "--manifest", &manifest])
        .ok();

    // A paused one in Paris, with input, as JSON.
    let paused = cli
        .run(&[
            "schedules",
            "create",
            "hello",
            "--cron",
            "0 9 * * MON-FRI",
            "--timezone",
            "Europe/Paris",
            "--input",
            r#"{"name":"Ada"}"#,
            "--paused",
            "--json",
        ])
        .ok()
        .json();
    assert_timestamps(&paused, "$");
    let paused_id = paused["id"].as_str().unwrap().to_owned();
    assert_eq!(paused["enabled"], false, "{paused}");
    assert_eq!(paused["timezone"], "Europe/Paris");
    assert_eq!(paused["input"]["name"], "Ada");
    assert_eq!(paused["next_fire_times"], serde_json::json!([]));
    // An active one, human: its fields and next fire times.
    let out = cli
        .run(&["schedules", "create", "hello", "--cron", "0 0 1 1 *"])
        .ok();
    assert!(out.stdout.contains("schedule"), "{}", out.stdout);
    assert!(out.stdout.contains("0 0 1 1 *"), "{}", out.stdout);
    assert!(out.stdout.contains("UTC"), "{}", out.stdout);
    assert!(out.stdout.contains("next"), "{}", out.stdout);
    let active_id = out
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("sch_"))
        .unwrap()
        .to_owned();

    // Listed, the paused one says so; of the step and of the project.
    let out = cli.run(&["schedules", "list"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines[0].starts_with("ID"), "{}", out.stdout);
    assert!(lines[1].contains(&paused_id) && lines[1].contains("paused"));
    assert!(
        lines[2].contains(&active_id) && lines[2].contains("in "),
        "{}",
        out.stdout
    );
    let json = cli
        .run(&["schedules", "list", "hello", "--json"])
        .ok()
        .json();
    assert_eq!(json["schedules"].as_array().unwrap().len(), 2, "{json}");
    assert_eq!(
        cli.run(&["schedules"]).ok().stdout,
        cli.run(&["schedules", "list"]).stdout,
        "the bare noun lists"
    );

    // Resume, show, pause, update.
    let resumed = cli
        .run(&["schedules", "resume", &paused_id, "--json"])
        .ok()
        .json();
    assert_eq!(resumed["enabled"], true);
    assert_eq!(resumed["next_fire_times"].as_array().unwrap().len(), 5);
    let shown = cli
        .run(&["schedules", "show", &paused_id, "--json"])
        .ok()
        .json();
    assert_eq!(shown, resumed);
    let out = cli.run(&["schedules", "pause", &paused_id]).ok();
    assert!(out.stdout.contains("false"), "{}", out.stdout);
    let updated = cli
        .run(&[
            "schedules",
            "update",
            &paused_id,
            "--cron",
            "30 8 * * *",
            "--input",
            "[1]",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(updated["cron"], "30 8 * * *");
    assert_eq!(updated["input"], serde_json::json!([1]));
    assert_eq!(updated["timezone"], "Europe/Paris");

    // Bad input: exit 2, naming what is wrong.
    let out = cli.run(&["schedules", "update", &paused_id]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("nothing to change"), "{}", out.stderr);
    let out = cli.run(&[
        "schedules",
        "create",
        "hello",
        "--cron",
        "* * * * *",
        "--input",
        "{no",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--input is not valid JSON"),
        "{}",
        out.stderr
    );
    let out = cli.run(&["schedules", "create", "hello", "--cron", "every minute"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("cron: "), "{}", out.stderr);
    let out = cli.run(&[
        "schedules",
        "create",
        "hello",
        "--cron",
        "* * * * *",
        "--timezone",
        "Paris",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("timezone: "), "{}", out.stderr);
    let out = cli.run(&["schedules", "create", "nope", "--cron", "* * * * *"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("airlock steps list"), "{}", out.stderr);

    // rm: once, then it is gone.
    let out = cli.run(&["schedules", "rm", &active_id]).ok();
    assert_eq!(out.stdout.trim(), format!("deleted schedule {active_id}"));
    let out = cli.run(&["schedules", "rm", &active_id]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = cli.run(&["schedules", "show", &active_id]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("airlock schedules list"),
        "{}",
        out.stderr
    );
    let json = cli
        .run(&["schedules", "rm", &paused_id, "--json"])
        .ok()
        .json();
    assert_eq!(json["deleted"], paused_id.as_str());
    let out = cli.run(&["schedules", "list"]).ok();
    assert!(out.stderr.contains("no schedules"), "{}", out.stderr);
}
