//! Queued runs on one node (SQLite), end to end through `airlock serve`:
//! `Prefer: respond-async` answers 202 once the run is stored, the run
//! then runs in the queue; `Idempotency-Key` returns the same run;
//! cancellation stops a queued run at once and a spinning one within a
//! tick; an `async` trigger answers the sender at once; and a run queued
//! before `kill -9` runs after the restart.
//!
//! Every wait is on a condition with a generous bound, never on a timing.

use std::time::{Duration, Instant};

use airlock_tests::serve::{Reply, Server, ServerBuilder};
use airlock_tests::{component_bytes, examples, guests};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

/// Spins until cancelled (or, in the end, its generous limits).
const SPIN: &str = "name = \"spin\"\n[limits]\ntimeout_ms = 120000\ncpu_ms = 120000\n";
/// Long enough to still be spinning after a restart, then stopped by CPU.
const SPIN_SHORT: &str = "name = \"spin\"\n[limits]\ntimeout_ms = 60000\ncpu_ms = 1500\n";
const HELLO: &str = "name = \"hello\"\n";

async fn push(s: &Server, admin: &str, step: &str, component: &str, manifest: &str) {
    let r = s
        .upload(
            "alpha",
            step,
            admin,
            &component_bytes(component),
            Some(manifest),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
}

/// `POST …/steps/{step}/runs` with `Prefer: respond-async` and `headers`.
async fn queue(s: &Server, key: &str, step: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
    let mut req = s
        .client
        .post(format!("{}/v1/projects/alpha/steps/{step}/runs", s.base))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("prefer", "respond-async")
        .body(body.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    s.send(req).await
}

async fn get_run(s: &Server, key: &str, id: &str) -> Value {
    let r = s
        .call(
            Method::GET,
            &format!("/v1/projects/alpha/runs/{id}"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()
}

/// Waits until run `id` has `status`; returns the run.
async fn wait_status(s: &Server, key: &str, id: &str, status: &str) -> Value {
    let bound = Duration::from_secs(120);
    let start = Instant::now();
    loop {
        let run = get_run(s, key, id).await;
        if run["status"] == status {
            return run;
        }
        assert!(
            start.elapsed() < bound,
            "run {id} not {status} within {bound:?}: {run}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn respond_async_answers_202_then_the_run_runs_in_the_queue() {
    let s = ServerBuilder::new(BIN).start();
    let admin = s.admin_setup().await;
    push(&s, &admin, "hello", examples::HELLO, HELLO).await;
    let r = queue(&s, &admin, "hello", json!({"input": {"name": "Ada"}}), &[]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.headers["preference-applied"], "respond-async");
    let body = r.json();
    assert_eq!(body["status"], "queued");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        format!("/v1/projects/alpha/runs/{id}")
    );
    let run = wait_status(&s, &admin, &id, "succeeded").await;
    assert_eq!(run["output"], json!({"greeting": "Hello, Ada!"}));
    assert_eq!(run["attempts"], 1);
    // Started after it was queued (times are RFC 3339 UTC, same width).
    let started = run["started_at"].as_str().expect("a start time");
    assert!(started >= run["created_at"].as_str().unwrap(), "{run}");
    assert_eq!(run["input"], json!({"name": "Ada"}));
    assert!(run["digest"].as_str().unwrap().starts_with("sha256:"));
    // It lists with the others, and by its status.
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/runs?status=succeeded",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["runs"][0]["id"], id.as_str());

    // Without the preference, the synchronous path as before.
    let r = s.run(&admin, "alpha", "hello", json!({"name": "Bo"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.headers.get("preference-applied").is_none());
    assert_eq!(r.json()["output"], json!({"greeting": "Hello, Bo!"}));

    // Unknown step: 404 and nothing queued; credentials are never stored,
    // so they cannot be queued.
    let r = queue(&s, &admin, "nope", json!({"input": {}}), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = queue(
        &s,
        &admin,
        "hello",
        json!({"input": {}, "credentials": {"github": {"token": "t"}}}),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("credentials"), "{}", r.text);
    // A metadata-only queued run keeps no input once it ran.
    let r = queue(
        &s,
        &admin,
        "hello",
        json!({"input": {"name": "Cy"}, "nostore": true}),
        &[],
    )
    .await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let run = wait_status(&s, &admin, &id, "succeeded").await;
    assert!(
        run.get("input").is_none() && run.get("output").is_none(),
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_returns_the_same_run_and_refuses_another_request() {
    let s = ServerBuilder::new(BIN).start();
    let admin = s.admin_setup().await;
    push(&s, &admin, "hello", examples::HELLO, HELLO).await;
    let body = json!({"input": {"name": "Ada"}});
    let key = [("idempotency-key", "order-42")];
    let first = queue(&s, &admin, "hello", body.clone(), &key).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
    let id = first.json()["id"].as_str().unwrap().to_owned();
    let again = queue(&s, &admin, "hello", body.clone(), &key).await;
    assert!(
        matches!(again.status, StatusCode::OK | StatusCode::ACCEPTED),
        "{}",
        again.text
    );
    assert_eq!(again.json()["id"], id.as_str(), "the same run");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    wait_status(&s, &admin, &id, "succeeded").await;
    // Once finished, a replay is 200 with its status.
    let done = queue(&s, &admin, "hello", body.clone(), &key).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(done.json(), json!({"id": id, "status": "succeeded"}));
    // Another request under the key is refused, and names the problem.
    let other = queue(&s, &admin, "hello", json!({"input": {"name": "Bo"}}), &key).await;
    assert_eq!(
        other.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        other.text
    );
    assert_eq!(other.error().0, "idempotency_key_reused");
    // Only queued runs are kept by key; a bad key is a 400.
    let r = s
        .send(
            s.client
                .post(format!("{}/v1/projects/alpha/steps/hello/runs", s.base))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .header("idempotency-key", "sync-1")
                .body(body.to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = queue(
        &s,
        &admin,
        "hello",
        body,
        &[("idempotency-key", "has space")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // Exactly one run was queued under the key.
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/runs?limit=100",
            Some(&admin),
            None,
        )
        .await;
    let runs = r.json()["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 1, "{runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_queued_run_at_once_and_a_spinning_one_promptly() {
    // One slot: the spinning run holds it, so the second waits queued.
    let s = ServerBuilder::new(BIN)
        .args(&["--max-concurrent-runs", "1"])
        .start();
    let admin = s.admin_setup().await;
    push(&s, &admin, "spin", guests::LOOP_FOREVER, SPIN).await;
    push(&s, &admin, "hello", examples::HELLO, HELLO).await;
    let spin = queue(&s, &admin, "spin", json!({"input": {}}), &[]).await;
    let spin = spin.json()["id"].as_str().unwrap().to_owned();
    wait_status(&s, &admin, &spin, "running").await;
    let waiting = queue(&s, &admin, "hello", json!({"input": {"name": "W"}}), &[]).await;
    let waiting = waiting.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(get_run(&s, &admin, &waiting).await["status"], "queued");

    let cancel = |id: String| {
        let s = &s;
        let admin = admin.clone();
        async move {
            s.call(
                Method::POST,
                &format!("/v1/projects/alpha/runs/{id}/cancel"),
                Some(&admin),
                None,
            )
            .await
        }
    };
    let r = cancel(waiting.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["status"], "cancelled");
    assert_eq!(get_run(&s, &admin, &waiting).await["status"], "cancelled");

    let r = cancel(spin.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.json()["cancel_requested"], true);
    let run = wait_status(&s, &admin, &spin, "cancelled").await;
    assert_eq!(run["error"]["kind"], "cancelled", "{run}");
    // Finished runs are a conflict; unknown ones 404.
    let r = cancel(spin.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.error().0, "run_finished");
    assert_eq!(cancel("nope".into()).await.status, StatusCode::NOT_FOUND);
    // The slot is free again: the engine serves on.
    let r = s.run(&admin, "alpha", "hello", json!({"name": "A"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The cancelled queued run never ran.
    assert_eq!(get_run(&s, &admin, &waiting).await["attempts"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_trigger_answers_the_sender_at_once() {
    let s = ServerBuilder::new(BIN).start();
    let admin = s.admin_setup().await;
    push(
        &s,
        &admin,
        "echo",
        guests::CONTEXT_ECHO,
        "name = \"echo\"\n",
    )
    .await;
    let r = s
        .call(
            Method::POST,
            "/v1/projects/alpha/steps/echo/triggers",
            Some(&admin),
            Some(json!({"async": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["async"], true);
    let url = format!("{}{}", s.base, r.json()["url"].as_str().unwrap());
    let r = s
        .send(
            s.client
                .post(&url)
                .header("content-type", "application/json")
                .body("{\"a\":1}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert!(
        r.headers.get("location").is_none(),
        "no API path to the sender"
    );
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let run = wait_status(&s, &admin, &id, "succeeded").await;
    assert_eq!(run["output"]["trigger"], "Http");
    assert_eq!(run["output"]["input"]["json"], json!({"a": 1}));
    assert_eq!(
        run["output"]["run_id"],
        id.as_str(),
        "the queued id is the run's id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_queued_before_kill_9_runs_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let lease = ["--max-concurrent-runs", "1", "--run-lease-ms", "1500"];
    let s = ServerBuilder::new(BIN).dir(dir).args(&lease).start();
    let admin = s.admin_setup().await;
    push(&s, &admin, "spin", guests::LOOP_FOREVER, SPIN_SHORT).await;
    push(&s, &admin, "hello", examples::HELLO, HELLO).await;
    let spin = queue(&s, &admin, "spin", json!({"input": {}}), &[]).await;
    let spin = spin.json()["id"].as_str().unwrap().to_owned();
    wait_status(&s, &admin, &spin, "running").await;
    let waiting = queue(&s, &admin, "hello", json!({"input": {"name": "Ada"}}), &[]).await;
    assert_eq!(waiting.status, StatusCode::ACCEPTED, "{}", waiting.text);
    let waiting = waiting.json()["id"].as_str().unwrap().to_owned();
    s.sigkill();
    let stopped = s.wait();
    let s = ServerBuilder::new(BIN)
        .dir(stopped.dir)
        .args(&lease)
        .start();
    // The queued run was durable: it runs now.
    let run = wait_status(&s, &admin, &waiting, "succeeded").await;
    assert_eq!(run["output"], json!({"greeting": "Hello, Ada!"}));
    assert_eq!(run["attempts"], 1);
    // The one killed mid-run is run again after its lease: attempt 2 (it
    // ends on its CPU limit).
    let run = wait_status(&s, &admin, &spin, "failed").await;
    assert_eq!(run["attempts"], 2, "{run}");
    assert_eq!(run["error"]["kind"], "limit:cpu", "{run}");
}
