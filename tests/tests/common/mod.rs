//! Helpers shared by the engine-level tests.

#![allow(dead_code)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use airlock_runtime::engine::{Engine, EngineConfig, LoadedStep, RunLimits, RunOptions, RunReport};
use airlock_tests::{component_bytes, test_cache_dir};

/// One engine for every test of a binary, as in a real process.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(EngineConfig {
            max_concurrent_runs: 8,
            cache_dir: Some(test_cache_dir()),
            ..EngineConfig::default()
        })
        .expect("engine")
    })
}

pub async fn load(path: &str) -> Arc<LoadedStep> {
    engine()
        .load(component_bytes(path))
        .await
        .unwrap_or_else(|e| panic!("loading {path}: {e}"))
}

pub fn limits(wall_ms: u64, cpu_ms: u64, memory_mib: u64) -> RunLimits {
    RunLimits {
        wall_time: Duration::from_millis(wall_ms),
        cpu_time: Duration::from_millis(cpu_ms),
        memory_bytes: memory_mib * 1024 * 1024,
    }
}

pub async fn run_with(path: &str, input: &str, limits: RunLimits) -> RunReport {
    let step = load(path).await;
    let mut options = RunOptions::local("test-step");
    options.limits = Some(limits);
    engine().run(&step, input, options).await
}

/// Runs `hello` and checks it greets: proof the engine still serves.
pub async fn assert_hello_still_runs() {
    let report = run_with(
        airlock_tests::examples::HELLO,
        r#"{"name":"Ada"}"#,
        limits(10_000, 5_000, 64),
    )
    .await;
    let output = report.outcome.expect("hello should succeed");
    assert!(output.contains("Hello, Ada!"), "output: {output}");
}
