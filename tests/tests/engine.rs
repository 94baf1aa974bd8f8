//! The engine's normal path: hello, context, logs, queueing, the compile
//! cache.

mod common;

use std::sync::Arc;

use airlock_host_api::log::{LogLevel, Source};
use airlock_runtime::engine::{Engine, EngineConfig, LoadError, RunFailure, RunOptions};
use airlock_tests::{component_bytes, examples, guests};
use common::{engine, limits, load, run_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_greets_and_logs() {
    let report = run_with(
        examples::HELLO,
        r#"{"name":"Ada"}"#,
        limits(5_000, 5_000, 64),
    )
    .await;
    let output: serde_json::Value = serde_json::from_str(&report.outcome.unwrap()).unwrap();
    assert_eq!(output["greeting"], "Hello, Ada!");
    assert_eq!(report.logs.len(), 1);
    assert_eq!(report.logs[0].source, Source::Log(LogLevel::Info));
    assert_eq!(report.logs[0].text, "greeting Ada");
    assert!(report.stats.memory_peak_bytes > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_error_is_a_step_error() {
    let report = run_with(examples::HELLO, r#"{"name":" "}"#, limits(5_000, 5_000, 64)).await;
    match report.outcome {
        Err(RunFailure::StepError(e)) => assert_eq!(e.code.as_deref(), Some("empty_name")),
        other => panic!("{other:?}"),
    }
    let report = run_with(
        examples::HELLO,
        r#"{"nom":"Ada"}"#,
        limits(5_000, 5_000, 64),
    )
    .await;
    match report.outcome {
        Err(RunFailure::StepError(e)) => assert_eq!(e.code.as_deref(), Some("invalid_input")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_sees_its_context_and_every_stream_is_captured_in_order() {
    let step = load(guests::CONTEXT_ECHO).await;
    let mut options = RunOptions::local("context-echo");
    options.context.external_user_id = Some("user-42".into());
    let run_id = options.context.run_id.clone();
    let report = engine().run(&step, r#"{"k":[1,2]}"#, options).await;
    let out: serde_json::Value = serde_json::from_str(&report.outcome.unwrap()).unwrap();
    assert_eq!(out["run_id"], run_id.as_str());
    assert_eq!(out["step"], "context-echo");
    assert_eq!(out["project"], "local");
    assert_eq!(out["external_user_id"], "user-42");
    assert_eq!(out["trigger"], "Cli");
    assert_eq!(out["input"]["k"][1], 2);
    let seen: Vec<String> = report
        .logs
        .iter()
        .map(|l| format!("{}:{}", l.source, l.text))
        .collect();
    assert_eq!(
        seen,
        [
            "TRACE:t",
            "DEBUG:d",
            "INFO:i",
            "WARN:w",
            "ERROR:e",
            "stdout:to stdout",
            "stderr:to stderr"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_queues_instead_of_failing() {
    let engine = Engine::new(EngineConfig {
        max_concurrent_runs: 1,
        ..EngineConfig::default()
    })
    .unwrap();
    let step = engine.load(component_bytes(examples::HELLO)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (engine, step) = (engine.clone(), Arc::clone(&step));
        tasks.push(tokio::spawn(async move {
            let input = format!(r#"{{"name":"n{i}"}}"#);
            engine.run(&step, &input, RunOptions::local("hello")).await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let out = t.await.unwrap().outcome.unwrap();
        assert!(out.contains(&format!("Hello, n{i}!")), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_artifacts_are_cached_on_disk_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..EngineConfig::default()
    };
    let first = Engine::new(config.clone()).unwrap();
    let step = first.load(component_bytes(examples::HELLO)).await.unwrap();
    let artifacts: Vec<_> = walk(dir.path());
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let artifact = &artifacts[0];
    assert!(
        artifact
            .to_string_lossy()
            .contains(&step.digest()["sha256:".len()..]),
        "artifact named by digest: {artifact:?}"
    );
    let written = std::fs::metadata(artifact).unwrap().modified().unwrap();

    // A second engine (a restarted process) loads the artifact, not the compiler.
    let second = Engine::new(config.clone()).unwrap();
    let again = second.load(component_bytes(examples::HELLO)).await.unwrap();
    assert_eq!(again.digest(), step.digest());
    assert_eq!(
        std::fs::metadata(artifact).unwrap().modified().unwrap(),
        written
    );
    let out = second
        .run(&again, r#"{"name":"C"}"#, RunOptions::local("hello"))
        .await;
    assert!(out.outcome.unwrap().contains("Hello, C!"));

    // A corrupted artifact is dropped and recompiled, not trusted. (Drop the
    // engines first: their steps map the artifact, and the cache itself only
    // ever replaces files by rename, never in place.)
    drop((first, step, second, again));
    std::fs::write(artifact, b"garbage").unwrap();
    let third = Engine::new(config).unwrap();
    let step = third.load(component_bytes(examples::HELLO)).await.unwrap();
    let out = third
        .run(&step, r#"{"name":"D"}"#, RunOptions::local("hello"))
        .await;
    assert!(out.outcome.unwrap().contains("Hello, D!"));
    assert!(std::fs::read(artifact).unwrap().len() > 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_precompiled_artifact_sent_by_a_user_is_refused() {
    let wasmtime = wasmtime::Engine::default();
    let artifact = wasmtime
        .precompile_component(&component_bytes(examples::HELLO))
        .unwrap();
    let err = engine().load(artifact).await.unwrap_err();
    assert!(matches!(err, LoadError::NotWasm), "{err}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
