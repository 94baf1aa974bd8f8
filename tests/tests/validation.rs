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

/// Collects what the engine logs, to see whether it compiled anything.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_refused_component_is_never_cached_and_bad_imports_cost_no_compile() {
    let cache = tempfile::tempdir().unwrap();
    let engine = airlock_runtime::engine::Engine::new(airlock_runtime::engine::EngineConfig {
        max_concurrent_runs: 1,
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    for (name, bytes, _) in cases() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        let result = tracing::subscriber::with_default(subscriber, || engine.load_blocking(&bytes));
        assert!(result.is_err(), "case {name}: accepted");
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        if name == "disallowed-imports" {
            assert!(
                !log.contains("compiled component"),
                "case {name}: compiled before its names were checked:\n{log}"
            );
        }
    }
    let mut files = Vec::new();
    let mut dirs = vec![cache.path().to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p)
            } else {
                files.push(p)
            }
        }
    }
    assert!(
        files.is_empty(),
        "refused components were cached: {files:?}"
    );
}
