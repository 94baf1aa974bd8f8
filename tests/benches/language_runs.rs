//! Warm per-run cost of the same `hello` step in each language — Rust
//! (`examples/hello`), Python (componentize-py, `examples/python/hello`) and
//! JavaScript (componentize-js, `examples/js/hello`) — measured two ways in
//! one process, in interleaved batches so drift hits every column alike:
//!
//! - **in-process**: `Engine::run` with every guard on (the engine's own
//!   cost: instantiate from the pool, run, drop);
//! - **through the server**: `POST /v1/projects/bench/steps/hello/runs` to a
//!   release `airlock serve` on loopback, one request at a time on a
//!   keep-alive connection, records on, SQLite with `synchronous = full`
//!   (each answer waits for its fsync'd record) and a second server with
//!   `--sqlite-synchronous normal` (the same work without the fsync), so
//!   the table separates the disk's share from the server's own.
//!
//! Issue 13's goal for Python and JavaScript: through the server within
//! 1.3× of `Engine::run`. Needs the SDK toolchains (componentize-py,
//! `npm ci --prefix guest-sdk/js`), as the tests do.
//!
//! Run: `cargo bench -p airlock-tests --bench language_runs -- --bench`

use std::time::{Duration, Instant};

use airlock_runtime::engine::{Engine, EngineConfig, RunOptions};
use airlock_tests::sdk_builds::{self, Lang};
use airlock_tests::serve::{Server, ServerBuilder};
use reqwest::StatusCode;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
const INPUT: &str = r#"{"name":"Ada"}"#;

struct Language {
    name: &'static str,
    bytes: Vec<u8>,
}

fn languages() -> Vec<Language> {
    let repo = sdk_builds::repo();
    let built = |lang: Lang, file: &str| {
        let source = repo
            .join("examples")
            .join(lang.name())
            .join("hello")
            .join(file);
        let wasm = sdk_builds::build(lang, &source, &format!("bench-{}", lang.name()), "hello");
        std::fs::read(wasm).unwrap()
    };
    vec![
        Language {
            name: "Rust",
            bytes: std::fs::read(airlock_tests::examples::HELLO).unwrap(),
        },
        Language {
            name: "Python",
            bytes: built(Lang::Python, "app.py"),
        },
        Language {
            name: "JavaScript",
            bytes: built(Lang::Js, "step.js"),
        },
    ]
}

/// A server with project `bench` and a key for it.
struct Node {
    label: &'static str,
    server: Server,
    key: String,
}

async fn node(label: &'static str, extra: &[&str]) -> Node {
    let server = ServerBuilder::new(BIN)
        .env("AIRLOCK_LOG", "error")
        .args(&["--http-rate-limit", "4000000000"])
        .args(&["--trigger-rate-limit", "4000000000"])
        .args(extra)
        .start();
    let key = server.create_key(&[]);
    let r = server
        .call(
            reqwest::Method::POST,
            "/v1/projects",
            Some(&key),
            Some(json!({"name": "bench"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    Node { label, server, key }
}

async fn push(node: &Node, step: &str, bytes: &[u8]) {
    let r = node
        .server
        .upload("bench", step, &node.key, bytes, Some(r#"name = "hello""#))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
}

async fn served_run(node: &Node, step: &str) -> Duration {
    let started = Instant::now();
    let r = node
        .server
        .run(&node.key, "bench", step, json!({"name": "Ada"}))
        .await;
    let elapsed = started.elapsed();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("Ada"), "{}", r.text);
    elapsed
}

async fn engine_run(engine: &Engine, step: &airlock_runtime::LoadedStep) -> Duration {
    let started = Instant::now();
    let report = engine.run(step, INPUT, RunOptions::local("hello")).await;
    let elapsed = started.elapsed();
    assert!(report.outcome.unwrap().contains("Ada"));
    elapsed
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    // `cargo bench` passes `--bench`; as a test (`cargo test --benches`) the
    // run is kept short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (batches, per_batch) = if quick { (1, 5) } else { (10, 100) };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let languages = languages();
    let engine = Engine::new(EngineConfig {
        cache_dir: Some(airlock_tests::test_cache_dir()),
        ..EngineConfig::default()
    })
    .unwrap();

    rt.block_on(async {
        let durable = node("server, synchronous=full", &[]).await;
        let normal = node(
            "server, synchronous=normal",
            &["--sqlite-synchronous", "normal"],
        )
        .await;
        let nodes = [&durable, &normal];

        println!(
            "| language | component | `Engine::run` p50 / p99 | {} p50 / p99 | ratio p50 | {} p50 / p99 | ratio p50 |",
            nodes[0].label, nodes[1].label
        );
        println!("| --- | --- | --- | --- | --- | --- | --- |");
        for (i, lang) in languages.iter().enumerate() {
            let step_name = format!("hello{i}");
            let loaded = engine.load(lang.bytes.clone()).await.unwrap();
            for n in nodes {
                push(n, &step_name, &lang.bytes).await;
            }
            // Warm-up: the servers compile (or load from their caches) and
            // keep the step resident; the engine's pool slots get touched.
            for _ in 0..per_batch.min(20) {
                engine_run(&engine, &loaded).await;
                for n in nodes {
                    served_run(n, &step_name).await;
                }
            }
            let mut samples: [Vec<Duration>; 3] = Default::default();
            for _ in 0..batches {
                for _ in 0..per_batch {
                    samples[0].push(engine_run(&engine, &loaded).await);
                }
                for (k, n) in nodes.iter().enumerate() {
                    for _ in 0..per_batch {
                        samples[k + 1].push(served_run(n, &step_name).await);
                    }
                }
            }
            for s in &mut samples {
                s.sort();
            }
            let p50: Vec<Duration> = samples.iter().map(|s| percentile(s, 0.5)).collect();
            let p99: Vec<Duration> = samples.iter().map(|s| percentile(s, 0.99)).collect();
            let ratio = |k: usize| p50[k].as_secs_f64() / p50[0].as_secs_f64();
            println!(
                "| {} | {:.1} MiB | {} / {} | {} / {} | {:.2} | {} / {} | {:.2} |",
                lang.name,
                lang.bytes.len() as f64 / (1024.0 * 1024.0),
                micros(p50[0]),
                micros(p99[0]),
                micros(p50[1]),
                micros(p99[1]),
                ratio(1),
                micros(p50[2]),
                micros(p99[2]),
                ratio(2),
            );
        }
        println!(
            "\nruns per column and language: {}",
            batches * per_batch
        );
    });
}
