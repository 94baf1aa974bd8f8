//! `airlock run` as a user runs it: output on stdout, log lines on stderr,
//! and the documented exit status for every outcome.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use airlock_tests::{examples, guests, test_cache_dir};

fn airlock(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_airlock-under-test"))
        .args(args)
        .env("AIRLOCK_CACHE_DIR", test_cache_dir())
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
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn hello_prints_its_output_and_log() {
    let out = airlock(
        &["run", examples::HELLO, "--input", r#"{"name":"Ada"}"#],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let output: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(output["greeting"], "Hello, Ada!");
    assert_eq!(text(&out.stderr), "[INFO] greeting Ada\n");
}

#[test]
fn input_comes_from_a_file_or_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.json");
    std::fs::write(&file, r#"{"name":"File"}"#).unwrap();
    let out = airlock(
        &[
            "run",
            examples::HELLO,
            "--input-file",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(text(&out.stdout).contains("Hello, File!"));
    let out = airlock(&["run", examples::HELLO], Some(r#"{"name":"Stdin"}"#));
    assert!(text(&out.stdout).contains("Hello, Stdin!"));
}

#[test]
fn a_step_error_exits_1() {
    let out = airlock(&["run", examples::HELLO, "--input", r#"{"name":""}"#], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("empty_name"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_usage_and_bad_input_exit_2() {
    let out = airlock(&["run", examples::HELLO, "--input", "{not json"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("the input is not valid JSON"));

    let out = airlock(&["run", "/no/such/step.wasm", "--input", "{}"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read component /no/such/step.wasm"));

    let out = airlock(&["run", examples::HELLO, "--memory-mib", "0"], None);
    assert_eq!(out.status.code(), Some(2));

    let out = airlock(&["frobnicate"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn each_limit_exits_3_and_names_itself() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            guests::LOOP_FOREVER,
            &["--cpu-ms", "200"],
            "CPU limit exceeded",
        ),
        (
            guests::LOOP_FOREVER,
            &["--timeout-ms", "300", "--cpu-ms", "60000"],
            "wall time limit exceeded",
        ),
        (
            guests::GROW_MEMORY,
            &["--memory-mib", "32"],
            "memory limit exceeded",
        ),
        (guests::FLOOD_OUTPUT, &[], "output limit exceeded"),
        (
            guests::RECURSE_FOREVER,
            &[],
            "trap: the step exhausted its call stack",
        ),
        (guests::PANIC, &[], "trap: the step trapped"),
        (guests::HUGE_LOG, &[], "host call limit exceeded"),
    ];
    for (guest, flags, expected) in cases {
        let mut args = vec!["run", guest, "--input", "{}"];
        args.extend_from_slice(flags);
        let out = airlock(&args, None);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{guest} {flags:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{guest}: {stderr:?} lacks {expected:?}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn capability_probes_are_denied_and_exit_1() {
    for guest in [guests::OPEN_FILES, guests::READ_ENV] {
        let out = airlock(&["run", guest, "--input", "{}"], None);
        assert_eq!(out.status.code(), Some(1), "{guest}");
        assert!(
            text(&out.stderr).contains("denied:"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn help_describes_every_command() {
    let out = airlock(&["--help"], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("run"));
    assert!(text(&out.stdout).contains("Exit status"));
    let out = airlock(&["run", "--help"], None);
    assert_eq!(out.status.code(), Some(0));
    for flag in [
        "--input",
        "--input-file",
        "--timeout-ms",
        "--cpu-ms",
        "--memory-mib",
    ] {
        assert!(text(&out.stdout).contains(flag), "run --help lacks {flag}");
    }
}
