//! Re-runs through a real `airlock serve` (SQLite): `POST …/runs/{id}/rerun`
//! runs a recorded run's input again for the same end user, on the current
//! version by default or on the version it ran (`same`), synchronously or
//! queued; the new record names the original (`rerun_of`); a `nostore` run
//! (no input kept), an unfinished run, an unknown run, a deleted version
//! and a key without `runs:write` are refused with their own errors; and
//! `airlock runs rerun` does the same from the CLI.

use std::time::{Duration, Instant};

use airlock_tests::serve::{Reply, Server, ServerBuilder};
use airlock_tests::{component_bytes, examples, guests};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
const MANIFEST: &str = "name = \"greet\"\n";

async fn push(s: &Server, admin: &str, component: &str) -> String {
    let r = s
        .upload(
            "alpha",
            "greet",
            admin,
            &component_bytes(component),
            Some(MANIFEST),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    r.json()["digest"].as_str().unwrap().to_owned()
}

async fn rerun(s: &Server, key: &str, id: &str, body: Option<Value>, queued: bool) -> Reply {
    let mut req = s
        .client
        .post(format!("{}/v1/projects/alpha/runs/{id}/rerun", s.base))
        .bearer_auth(key);
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    if queued {
        req = req.header("prefer", "respond-async");
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

async fn wait_finished(s: &Server, key: &str, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let run = get_run(s, key, id).await;
        if !matches!(run["status"].as_str(), Some("queued" | "running")) {
            return run;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A run of greet for end user ada with `input`; its id.
async fn first_run(s: &Server, admin: &str, input: Value, nostore: bool) -> String {
    let r = s
        .call(
            Method::POST,
            "/v1/projects/alpha/steps/greet/runs",
            Some(admin),
            Some(json!({"input": input, "external_user_id": "ada", "nostore": nostore})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_runs_the_same_input_for_the_same_user_on_the_chosen_version() {
    let s = ServerBuilder::new(BIN).start();
    let admin = s.admin_setup().await;
    let echo = push(&s, &admin, guests::CONTEXT_ECHO).await;
    let original = first_run(&s, &admin, json!({"name": "Ada", "n": 7}), false).await;
    let recorded = get_run(&s, &admin, &original).await;
    assert_eq!(recorded["external_user_id"], "ada", "{recorded}");
    assert!(recorded.get("rerun_of").is_none(), "{recorded}");

    // On the current version (the default; no body at all): the same input,
    // the same end user, a new run that names the original.
    let r = rerun(&s, &admin, &original, None, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let again = r.json();
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_ne!(again["id"], original.as_str());
    assert_eq!(again["output"]["input"], json!({"name": "Ada", "n": 7}));
    assert_eq!(again["output"]["external_user_id"], "ada");
    assert_eq!(again["output"]["trigger"], "Api");
    let record = get_run(&s, &admin, again["id"].as_str().unwrap()).await;
    assert_eq!(record["rerun_of"], original.as_str(), "{record}");
    assert_eq!(record["digest"], echo.as_str());
    assert_eq!(record["external_user_id"], "ada");
    assert_eq!(record["started_at"], record["created_at"], "synchronous");

    // A new version is pushed (the fix): a default re-run runs it, a `same`
    // re-run the version the original ran.
    let hello = push(&s, &admin, examples::HELLO).await;
    let r = rerun(&s, &admin, &original, Some(json!({})), false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["output"], json!({"greeting": "Hello, Ada!"}));
    let current = get_run(&s, &admin, r.json()["id"].as_str().unwrap()).await;
    assert_eq!(current["digest"], hello.as_str());
    let r = rerun(
        &s,
        &admin,
        &original,
        Some(json!({"version": "same"})),
        false,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["output"]["input"]["n"], 7, "{}", r.text);
    let same = get_run(&s, &admin, r.json()["id"].as_str().unwrap()).await;
    assert_eq!(same["digest"], echo.as_str());

    // Queued: 202 at once, then it runs with the same input and user.
    let r = rerun(&s, &admin, &original, None, true).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.headers["preference-applied"], "respond-async");
    let queued = r.json()["id"].as_str().unwrap().to_owned();
    let done = wait_finished(&s, &admin, &queued).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["rerun_of"], original.as_str());
    assert_eq!(done["external_user_id"], "ada");
    assert_eq!(done["output"], json!({"greeting": "Hello, Ada!"}));

    // Queued on the same version: the queue carries the pinned digest.
    let r = rerun(
        &s,
        &admin,
        &original,
        Some(json!({"version": "same"})),
        true,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let pinned = r.json()["id"].as_str().unwrap().to_owned();
    let done = wait_finished(&s, &admin, &pinned).await;
    assert_eq!(done["digest"], echo.as_str(), "{done}");
    assert_eq!(done["output"]["input"]["n"], 7, "{done}");

    // A re-run of a re-run names its own original.
    let r = rerun(&s, &admin, &queued, None, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let chained = get_run(&s, &admin, r.json()["id"].as_str().unwrap()).await;
    assert_eq!(chained["rerun_of"], queued.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_that_cannot_be_made_is_refused_with_its_reason() {
    let s = ServerBuilder::new(BIN).start();
    let admin = s.admin_setup().await;
    let old = push(&s, &admin, guests::CONTEXT_ECHO).await;
    let kept = first_run(&s, &admin, json!({"n": 1}), false).await;

    // nostore: the input was never stored.
    let secret_input = first_run(&s, &admin, json!({"card": "4111"}), true).await;
    let r = rerun(&s, &admin, &secret_input, None, false).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.error().0, "input_not_stored");

    // Unknown run; bad body; a key that may only read runs.
    let r = rerun(
        &s,
        &admin,
        "0190a000-0000-7000-8000-000000000000",
        None,
        false,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = rerun(&s, &admin, &kept, Some(json!({"version": "older"})), false).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("version"), "{}", r.text);
    let r = rerun(&s, &admin, &kept, Some(json!({"versoin": "same"})), false).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("versoin"), "{}", r.text);
    let reader = s.new_key(&admin, &["runs:read"], Some("alpha")).await;
    let r = rerun(&s, &reader, &kept, None, false).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    // An Idempotency-Key needs the queue.
    let r = s
        .send(
            s.client
                .post(format!("{}/v1/projects/alpha/runs/{kept}/rerun", s.base))
                .bearer_auth(&admin)
                .header("idempotency-key", "k1"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    // The version it ran is gone once the step is deleted and pushed anew.
    let r = s
        .call(
            Method::DELETE,
            "/v1/projects/alpha/steps/greet",
            Some(&admin),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let new = push(&s, &admin, examples::HELLO).await;
    assert_ne!(new, old);
    let r = rerun(&s, &admin, &kept, Some(json!({"version": "same"})), false).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(r.error().0, "no_version");
    // The current one still takes it.
    let r = rerun(&s, &admin, &kept, None, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.json()["status"],
        "failed",
        "hello needs a name: {}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_or_running_run_is_not_rerun_until_it_has_finished() {
    // One slot, held by a spinning run: a second queued run waits.
    let s = ServerBuilder::new(BIN)
        .args(&["--max-concurrent-runs", "1"])
        .start();
    let admin = s.admin_setup().await;
    let r = s
        .upload(
            "alpha",
            "spin",
            &admin,
            &component_bytes(guests::LOOP_FOREVER),
            Some("name = \"spin\"\n[limits]\ntimeout_ms = 60000\ncpu_ms = 60000\n"),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let queue = |step: &'static str| {
        let s = &s;
        let admin = admin.clone();
        async move {
            let r = s
                .send(
                    s.client
                        .post(format!("{}/v1/projects/alpha/steps/{step}/runs", s.base))
                        .bearer_auth(&admin)
                        .header("content-type", "application/json")
                        .header("prefer", "respond-async")
                        .body(json!({"input": {}}).to_string()),
                )
                .await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
            r.json()["id"].as_str().unwrap().to_owned()
        }
    };
    let spinning = queue("spin").await;
    let start = Instant::now();
    while get_run(&s, &admin, &spinning).await["status"] != "running" {
        assert!(start.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waiting = queue("spin").await;
    for (id, status) in [(&spinning, "running"), (&waiting, "queued")] {
        let r = rerun(&s, &admin, id, None, false).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
        assert_eq!(r.error().0, "run_not_finished");
        assert!(r.text.contains(status), "{}", r.text);
    }
    for id in [&waiting, &spinning] {
        let r = s
            .call(
                Method::POST,
                &format!("/v1/projects/alpha/runs/{id}/cancel"),
                Some(&admin),
                None,
            )
            .await;
        assert!(r.status.is_success(), "{}", r.text);
    }
    let cancelled = wait_finished(&s, &admin, &spinning).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    // Finished (cancelled) now: it may be re-run; queued, so the test's
    // slot is not held by a sync request.
    let r = rerun(&s, &admin, &spinning, None, true).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = s
        .call(
            Method::POST,
            &format!("/v1/projects/alpha/runs/{id}/cancel"),
            Some(&admin),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
}
