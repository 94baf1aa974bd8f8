//! `airlock conformance` against the three SDKs' builds of the conformance
//! steps (`tests/conformance/`): the Rust ones built by build.rs, the
//! Python and JavaScript ones by their SDKs' build scripts. Every case must
//! pass for each; and the runner must fail a build that does not conform,
//! a directory missing a case, and a file named after no case.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_tests::sdk_builds::{self, Lang};
use airlock_tests::{conformance, test_cache_dir};

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn airlock_conformance(args: &[&Path]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_airlock-under-test"))
        .arg("conformance")
        .args(args)
        .env("AIRLOCK_CACHE_DIR", test_cache_dir())
        .output()
        .unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn rust_dir() -> PathBuf {
    Path::new(conformance::HELLO)
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every case passes: one `ok` line per case and the closing count.
fn assert_all_pass(dir: &Path) {
    let out = airlock_conformance(&[dir]);
    let cases = sdk_builds::conformance_cases();
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    for case in &cases {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("ok    {case} ("))),
            "no ok line for {case}:\n{}",
            out.stdout
        );
    }
    assert!(
        out.stdout
            .lines()
            .any(|l| l == format!("{} passed, 0 failed", cases.len())),
        "{}",
        out.stdout
    );
}

#[test]
fn the_rust_sdk_conforms() {
    assert_all_pass(&rust_dir());
}

#[test]
fn the_python_sdk_conforms() {
    assert_all_pass(&sdk_builds::conformance(Lang::Python));
}

#[test]
fn the_js_sdk_conforms() {
    assert_all_pass(&sdk_builds::conformance(Lang::Js));
}

#[test]
fn a_build_that_does_not_conform_fails_with_the_difference() {
    // The `hello` step offered as the `errors` case: other output, no error.
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("errors.wasm");
    std::fs::copy(conformance::HELLO, &wrong).unwrap();
    let out = airlock_conformance(&[&wrong, Path::new(conformance::LOGS)]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("FAIL  errors"), "{}", out.stdout);
    // The difference, run by run: what the case expects and what came.
    assert!(
        out.stdout
            .contains("run 1 (input {\"kind\": \"plain\"}): error differs"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(r#"expected: {"message":"plain failure"}"#),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(r#"got:      {"code":"invalid_input""#),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("ok    logs (1 run)"), "{}", out.stdout);
    assert!(
        out.stdout.lines().any(|l| l == "1 passed, 1 failed"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_directory_missing_a_case_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(conformance::HELLO, dir.path().join("hello.wasm")).unwrap();
    let out = airlock_conformance(&[dir.path()]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("ok    hello (2 runs)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("missing: no secrets.wasm in the directory"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_file_named_after_no_case_is_bad_usage() {
    let dir = tempfile::tempdir().unwrap();
    let stray = dir.path().join("greeting.wasm");
    std::fs::copy(conformance::HELLO, &stray).unwrap();
    let out = airlock_conformance(&[&stray]);
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("no conformance case named \"greeting\""),
        "{}",
        out.stderr
    );
}
