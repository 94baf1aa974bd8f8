//! Invalid components, as data (`tests/cases/invalid/*`): each is refused by
//! the engine and by `airlock run` (exit 2) with a message naming the
//! problem.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn cases() -> Vec<(String, Vec<u8>, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/invalid");
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = if dir.join("component.wat").exists() {
            wat::parse_file(dir.join("component.wat")).unwrap()
        } else {
            std::fs::read(dir.join("component.bin")).unwrap()
        };
        let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
        cases.push((name, bytes, expected.trim().to_string()));
    }
    assert!(cases.len() >= 7, "cases missing: {}", cases.len());
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_refuses_each_invalid_component_naming_the_problem() {
    for (name, bytes, expected) in cases() {
        let err = match common::engine().load(bytes).await {
            Ok(_) => panic!("case {name}: the component was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(&expected),
            "case {name}: error {err:?} should contain {expected:?}"
        );
    }
}

#[test]
fn airlock_run_exits_2_for_each_invalid_component() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, expected) in cases() {
        let path: PathBuf = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&path, bytes).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_airlock-under-test"))
            .args(["run", path.to_str().unwrap(), "--input", "{}", "--no-cache"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {name}: {stderr}");
        assert!(
            stderr.contains(&expected),
            "case {name}: stderr {stderr:?} should contain {expected:?}"
        );
        assert!(out.stdout.is_empty(), "case {name}: nothing on stdout");
    }
}
