//! `airlock new <name> --lang rust|python|js`: each template, as written,
//! builds with its `build.sh` and passes its own `test.sh`, which runs it
//! with `airlock run` (output, log line, error). Also: the project's test
//! fails when the step breaks, and `new` refuses a bad name or an existing
//! directory without touching it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use airlock_tests::sdk_builds::{self, Lang};
use airlock_tests::test_cache_dir;

fn airlock() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_airlock-under-test"));
    c.env("AIRLOCK_CACHE_DIR", test_cache_dir());
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn new_project(parent: &Path, name: &str, lang: &str) -> PathBuf {
    let dir = parent.join(name);
    let out = airlock()
        .args(["new", name, "--lang", lang, "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("created {}", dir.display())),
        "{}",
        text(&out.stdout)
    );
    dir
}

/// The project's own `test.sh`, as a step author runs it.
fn project_test(dir: &Path) -> Output {
    let mut cmd = Command::new(dir.join("test.sh"));
    cmd.env("AIRLOCK", env!("CARGO_BIN_EXE_airlock-under-test"))
        .env("AIRLOCK_CACHE_DIR", test_cache_dir())
        // Python and JS builds share the tests' content-keyed cache.
        .env(
            "AIRLOCK_GUEST_CACHE",
            sdk_builds::repo().join("target/sdk-guests/cache"),
        );
    // The outer build's settings are for the host, as in build.rs.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().unwrap()
}

fn builds_and_passes_its_test(lang: Lang, name: &str) {
    let parent = tempfile::tempdir().unwrap();
    let dir = new_project(parent.path(), name, lang.name());
    let out = project_test(&dir);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains(&format!("ok: {name} builds and runs")));
    // The README's command, unchanged.
    let out = airlock()
        .current_dir(&dir)
        .args([
            "run",
            &format!("{name}.wasm"),
            "--manifest",
            "airlock.toml",
            "--input",
            r#"{"name": "Grace"}"#,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), r#"{"greeting":"Hello, Grace!"}"#);
}

#[test]
fn the_rust_template_builds_and_runs() {
    let parent = tempfile::tempdir().unwrap();
    let name = "template-rust-check";
    let dir = new_project(parent.path(), name, "rust");
    // Its dependencies are the examples' (same profile): build in their
    // target directory so CI compiles them once.
    let target = sdk_builds::repo().join("examples").join("target");
    let out = Command::new(dir.join("test.sh"))
        .env("AIRLOCK", env!("CARGO_BIN_EXE_airlock-under-test"))
        .env("AIRLOCK_CACHE_DIR", test_cache_dir())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("ok: template-rust-check builds and runs"));
    assert!(dir.join(format!("{name}.wasm")).is_file());
}

#[test]
fn the_python_template_builds_and_runs() {
    builds_and_passes_its_test(Lang::Python, "greet-py");
}

#[test]
fn the_js_template_builds_and_runs() {
    builds_and_passes_its_test(Lang::Js, "greet-js");
}

#[test]
fn the_project_test_fails_when_the_step_breaks() {
    let parent = tempfile::tempdir().unwrap();
    let dir = new_project(parent.path(), "broken-js", "js");
    let step = dir.join("step.js");
    let source = std::fs::read_to_string(&step).unwrap();
    std::fs::write(&step, source.replace("Hello, ", "Goodbye, ")).unwrap();
    let out = project_test(&dir);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("FAIL: output: {\"greeting\":\"Goodbye, Ada!\"}"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_bad_name_or_an_existing_directory_is_refused() {
    let parent = tempfile::tempdir().unwrap();
    let out = airlock()
        .current_dir(parent.path())
        .args(["new", "My_Step", "--lang", "python"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("\"My_Step\" is not a step name"),
        "{}",
        text(&out.stderr)
    );

    let existing = parent.path().join("taken");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("keep.txt"), "mine").unwrap();
    let out = airlock()
        .current_dir(parent.path())
        .args(["new", "taken", "--lang", "rust"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("taken already exists"),
        "{}",
        text(&out.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(&existing).unwrap().collect();
    assert_eq!(left.len(), 1, "the existing directory is untouched");
    // Nothing staged is left beside it either.
    let beside: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
    assert_eq!(beside.len(), 1);

    let out = airlock()
        .current_dir(parent.path())
        .args(["new", "fresh", "--lang", "js", "--sdk"])
        .arg(parent.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no Airlock SDK at"),
        "{}",
        text(&out.stderr)
    );
    assert!(!parent.path().join("fresh").exists());
}
