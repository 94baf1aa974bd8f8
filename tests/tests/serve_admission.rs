//! The run service's bounds, end to end: a request that cannot get a run
//! slot within the wait is a prompt 503 with `Retry-After` (never an
//! unbounded wait), one project cannot take another's slots, and compiled
//! steps kept loaded stay within their memory budget.

use std::time::{Duration, Instant};

use airlock_tests::serve::{Server, ServerBuilder};
use airlock_tests::{component_bytes, examples, guests};
use reqwest::{Method, StatusCode};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

/// A step that spins until its 2 s wall-time limit: it holds its slot.
const SPIN: &str = "name = \"spin\"\n[limits]\ntimeout_ms = 2000\ncpu_ms = 60000\n";

async fn push(s: &Server, admin: &str, project: &str, step: &str, component: &str, manifest: &str) {
    let r = s
        .upload(
            project,
            step,
            admin,
            &component_bytes(component),
            Some(manifest),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
}

fn start(args: &[&str]) -> Server {
    ServerBuilder::new(BIN).args(args).start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_cannot_start_in_time_gets_503_with_retry_after() {
    let s = start(&["--max-concurrent-runs", "1", "--max-queue-wait-ms", "200"]);
    let admin = s.admin_setup().await;
    push(&s, &admin, "alpha", "spin", guests::LOOP_FOREVER, SPIN).await;
    push(
        &s,
        &admin,
        "alpha",
        "hello",
        examples::HELLO,
        "name = \"hello\"\n",
    )
    .await;
    let holder = {
        let (client, base, admin) = (s.client.clone(), s.base.clone(), admin.clone());
        tokio::spawn(async move {
            client
                .post(format!("{base}/v1/projects/alpha/steps/spin/runs"))
                .bearer_auth(admin)
                .header("content-type", "application/json")
                .body(json!({"input": {}}).to_string())
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    // Wait until the spin run holds the only slot.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let started = Instant::now();
    let r = s
        .run(&admin, "alpha", "hello", json!({"name": "Ada"}))
        .await;
    let waited = started.elapsed();
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    let (code, message) = r.error();
    assert_eq!(code, "busy");
    assert!(message.contains("retry"), "{message}");
    assert_eq!(r.retry_after(), 1);
    // Prompt: the configured wait, not the holder's 2 s.
    assert!(waited < Duration::from_millis(1500), "waited {waited:?}");
    // The holder finishes (its own wall limit), and the slot is free again.
    assert_eq!(holder.await.unwrap(), StatusCode::OK);
    let r = s
        .run(&admin, "alpha", "hello", json!({"name": "Ada"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The refusal is counted.
    let metrics = s.new_key(&admin, &["metrics"], None).await;
    let text = s
        .call(Method::GET, "/metrics", Some(&metrics), None)
        .await
        .text;
    assert!(text.contains("airlock_runs_refused_busy_total 1"), "{text}");
    assert!(
        text.contains("airlock_run_queue_wait_seconds_count"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_project_cannot_take_the_slots_of_another() {
    let s = start(&[
        "--max-concurrent-runs",
        "2",
        "--max-project-runs",
        "1",
        "--max-queue-wait-ms",
        "200",
    ]);
    let admin = s.admin_setup().await;
    push(&s, &admin, "alpha", "spin", guests::LOOP_FOREVER, SPIN).await;
    push(
        &s,
        &admin,
        "beta",
        "hello",
        examples::HELLO,
        "name = \"hello\"\n",
    )
    .await;
    let holder = {
        let (client, base, admin) = (s.client.clone(), s.base.clone(), admin.clone());
        tokio::spawn(async move {
            client
                .post(format!("{base}/v1/projects/alpha/steps/spin/runs"))
                .bearer_auth(admin)
                .header("content-type", "application/json")
                .body(json!({"input": {}}).to_string())
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    // alpha has used its share: a second alpha run waits, then is refused…
    let r = s.run(&admin, "alpha", "spin", json!({})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    // …while beta runs at once on the slot alpha may not take.
    let r = s.run(&admin, "beta", "hello", json!({"name": "Bo"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["output"]["greeting"], "Hello, Bo!");
    holder.await.unwrap();
}

/// The count of loads of a step not held in memory, from `/metrics`.
async fn loads(s: &Server, metrics: &str) -> f64 {
    let text = s
        .call(Method::GET, "/metrics", Some(metrics), None)
        .await
        .text;
    text.lines()
        .find_map(|l| l.strip_prefix("airlock_compile_duration_seconds_count{source=\"run\"} "))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loaded_steps_stay_within_their_memory_budget() {
    // Five steps of some 400 KiB of compiled code each: a 1 MiB budget
    // cannot hold them all, so cycling through them loads steps again.
    let small = start(&["--loaded-steps-mib", "1"]);
    // The default budget keeps all five loaded after their upload.
    let large = start(&[]);
    let steps = [
        ("one", examples::HELLO),
        ("two", guests::CONTEXT_ECHO),
        ("three", guests::SECRET_PROBE),
        ("four", guests::LOG_FLOOD),
        ("five", guests::PANIC),
    ];
    for s in [&small, &large] {
        let admin = s.admin_setup().await;
        for (step, component) in steps {
            push(
                s,
                &admin,
                "alpha",
                step,
                component,
                &format!("name = \"{step}\"\n"),
            )
            .await;
        }
        let metrics = s.new_key(&admin, &["metrics"], None).await;
        let before = loads(s, &metrics).await;
        for _ in 0..2 {
            for (step, _) in steps {
                // Success or the step's own error: the run happened.
                let r = s
                    .run(&admin, "alpha", step, json!({"name": "Ada", "mode": "x"}))
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            }
        }
        let reloaded = loads(s, &metrics).await - before;
        if std::ptr::eq(s, &small) {
            assert!(
                reloaded >= 2.0,
                "a 1 MiB budget must evict: {reloaded} loads"
            );
        } else {
            assert_eq!(reloaded, 0.0, "the default budget keeps both loaded");
        }
    }
}
