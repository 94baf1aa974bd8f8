//! Retries, caps and pinned versions of queued runs on one node (SQLite),
//! end to end through `airlock serve`:
//!
//! - a step failing twice with `"retryable": true` succeeds at attempt 3,
//!   each attempt starting after the previous one's backoff;
//! - a `"retryable": false` error (or one without the field) is final;
//! - an upstream's 503 with `Retry-After: 1` delays the next attempt by at
//!   least a second; a run over `limit:wall_time` retries when asked;
//! - a bad `[retry]` or `[concurrency]` is refused at push, naming the field;
//! - cancelling a run that waits for its retry cancels it at once;
//! - a project's `max_running` cap holds (observed by the upstream);
//! - a pinned `async` trigger runs its pinned version through the queue.
//!
//! Times are compared as lower bounds and orderings (an attempt never
//! starts before its backoff ended), never as speed. The upstream is a
//! loopback server that records when each request arrived.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_tests::serve::{Reply, Server, ServerBuilder, timestamp};
use airlock_tests::{component_bytes, guests};
use axum::http::StatusCode as AxumStatus;
use axum::response::{IntoResponse, Response};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

/// Scripted answers: a status and perhaps a `Retry-After`.
type Script = Arc<Mutex<VecDeque<(u16, Option<&'static str>)>>>;

/// A loopback upstream: answers each request with the next scripted
/// `(status, Retry-After)` (200 once the script is empty), optionally
/// holding each request `hold` first; records when each request arrived
/// (Unix ms) and the most requests it ever held at once.
#[derive(Clone, Default)]
struct Upstream {
    script: Script,
    arrivals: Arc<Mutex<Vec<i64>>>,
    in_flight: Arc<AtomicI64>,
    most_in_flight: Arc<AtomicI64>,
    hold: Duration,
}

impl Upstream {
    async fn start(self) -> (Self, String) {
        let state = self.clone();
        let app = axum::Router::new().fallback(move || {
            let s = state.clone();
            async move { s.answer().await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (self, url)
    }

    async fn answer(&self) -> Response {
        self.arrivals.lock().unwrap().push(unix_millis());
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.hold).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let next = self.script.lock().unwrap().pop_front();
        let (status, retry_after) = next.unwrap_or((200, None));
        let mut response = (AxumStatus::from_u16(status).unwrap(), "{}").into_response();
        if let Some(v) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", v.parse().unwrap());
        }
        response
    }

    fn arrivals(&self) -> Vec<i64> {
        self.arrivals.lock().unwrap().clone()
    }
}

fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn start() -> Server {
    ServerBuilder::new(BIN)
        .args(&["--allow-range", "127.0.0.0/8"])
        .start()
}

async fn push(s: &Server, admin: &str, step: &str, component: &str, manifest: &str) -> Reply {
    s.upload(
        "alpha",
        step,
        admin,
        &component_bytes(component),
        Some(manifest),
    )
    .await
}

async fn push_ok(s: &Server, admin: &str, step: &str, component: &str, manifest: &str) -> String {
    let r = push(s, admin, step, component, manifest).await;
    assert!(r.status.is_success(), "{}", r.text);
    r.json()["digest"].as_str().unwrap().to_owned()
}

/// Queues a run of `step` with `input`; its id.
async fn queue(s: &Server, key: &str, step: &str, input: Value) -> String {
    let r = s
        .send(
            s.client
                .post(format!("{}/v1/projects/alpha/steps/{step}/runs", s.base))
                .bearer_auth(key)
                .header("content-type", "application/json")
                .header("prefer", "respond-async")
                .body(json!({ "input": input }).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    r.json()["id"].as_str().unwrap().to_owned()
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

/// Waits until run `id` satisfies `done`; returns the run.
async fn wait_for(
    s: &Server,
    key: &str,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let bound = Duration::from_secs(120);
    let start = Instant::now();
    loop {
        let run = get_run(s, key, id).await;
        if done(&run) {
            return run;
        }
        assert!(
            start.elapsed() < bound,
            "run {id}: not {what} within {bound:?}: {run}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_finished(s: &Server, key: &str, id: &str) -> Value {
    wait_for(s, key, id, "finished", |r| {
        matches!(
            r["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        )
    })
    .await
}

const PROBE_HTTP: &str = "[http]\nallowed_hosts = [\"127.0.0.1\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_failing_twice_succeeds_at_attempt_3_after_each_backoff() {
    let s = start();
    let admin = s.admin_setup().await;
    let (upstream, url) = Upstream::default().start().await;
    let manifest = format!(
        "name = \"flaky\"\n{PROBE_HTTP}[retry]\nmax_attempts = 3\nbackoff = \"exponential\"\n\
         initial_ms = 300\nmax_ms = 10000\njitter = false\n"
    );
    push_ok(&s, &admin, "flaky", guests::RETRY_PROBE, &manifest).await;
    let id = queue(
        &s,
        &admin,
        "flaky",
        json!({"fail_until": 3, "retryable": true, "url": url}),
    )
    .await;
    let run = wait_finished(&s, &admin, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["attempts"], 3, "{run}");
    assert_eq!(run["output"], json!({"attempt": 3}));

    let history = run["attempt_history"].as_array().expect("attempt_history");
    assert_eq!(history.len(), 2, "{run}");
    for (i, h) in history.iter().enumerate() {
        assert_eq!(h["attempt"], i as i64 + 1, "{h}");
        assert_eq!(h["retry_on"], "error", "{h}");
        assert_eq!(h["error_kind"], "step_error", "{h}");
        assert_eq!(h["message"], format!("attempt {} fails", i + 1), "{h}");
        assert!(h["duration_ms"].is_u64(), "{h}");
    }
    // Each attempt called the upstream first: its arrivals are the attempts'
    // starts. Attempt n+1 starts no earlier than attempt n's retry_at,
    // which is its end plus the backoff (300 ms, then 600 ms).
    let arrivals = upstream.arrivals();
    assert_eq!(arrivals.len(), 3, "{arrivals:?}");
    for (i, backoff) in [(0usize, 300i64), (1, 600)] {
        let retry_at = timestamp(&history[i]["retry_at"]).timestamp_millis();
        assert!(
            retry_at >= arrivals[i] + backoff,
            "attempt {} retry_at {retry_at} is before its start {} + {backoff} ms",
            i + 1,
            arrivals[i]
        );
        assert!(
            arrivals[i + 1] >= retry_at,
            "attempt {} started at {} before retry_at {retry_at}",
            i + 2,
            arrivals[i + 1]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_not_marked_retryable_is_final() {
    let s = start();
    let admin = s.admin_setup().await;
    let manifest = "name = \"flaky\"\n[retry]\nmax_attempts = 5\ninitial_ms = 1\n";
    push_ok(&s, &admin, "flaky", guests::RETRY_PROBE, manifest).await;
    for input in [
        json!({"fail_until": 5, "retryable": false}),
        json!({"fail_until": 5}),
    ] {
        let id = queue(&s, &admin, "flaky", input.clone()).await;
        let run = wait_finished(&s, &admin, &id).await;
        assert_eq!(run["status"], "failed", "{input}: {run}");
        assert_eq!(run["attempts"], 1, "{input}: {run}");
        assert!(run.get("attempt_history").is_none(), "{run}");
        assert_eq!(run["error"]["message"], "attempt 1 fails");
    }
    // The same step marked retryable does retry (the policy is live), and
    // the last attempt's failure is final even when retryable.
    let id = queue(
        &s,
        &admin,
        "flaky",
        json!({"fail_until": 9, "retryable": true}),
    )
    .await;
    let run = wait_finished(&s, &admin, &id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["attempts"], 5, "{run}");
    assert_eq!(run["attempt_history"].as_array().unwrap().len(), 4, "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_503_with_retry_after_delays_the_next_attempt() {
    let s = start();
    let admin = s.admin_setup().await;
    let (upstream, url) = Upstream::default().start().await;
    upstream.script.lock().unwrap().push_back((503, Some("1")));
    // The backoff alone would be 1 ms: the delay is the upstream's.
    let manifest = format!(
        "name = \"up\"\n{PROBE_HTTP}[retry]\nmax_attempts = 2\ninitial_ms = 1\njitter = false\n\
         on = [\"upstream\"]\n"
    );
    push_ok(&s, &admin, "up", guests::RETRY_PROBE, &manifest).await;
    let id = queue(&s, &admin, "up", json!({ "url": url })).await;
    let run = wait_finished(&s, &admin, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["attempts"], 2, "{run}");
    let history = &run["attempt_history"][0];
    assert_eq!(history["retry_on"], "upstream", "{run}");
    assert_eq!(history["message"], "upstream answered 503", "{run}");
    let arrivals = upstream.arrivals();
    assert_eq!(arrivals.len(), 2, "{arrivals:?}");
    assert!(
        arrivals[1] - arrivals[0] >= 1000,
        "Retry-After: 1 was not honoured: {arrivals:?}"
    );
    let retry_at = timestamp(&history["retry_at"]).timestamp_millis();
    assert!(
        retry_at >= arrivals[0] + 1000 && arrivals[1] >= retry_at,
        "{run}"
    );

    // Without `upstream` in `on`, the same 503 is final.
    upstream.script.lock().unwrap().push_back((503, Some("1")));
    let manifest = format!(
        "name = \"up\"\n{PROBE_HTTP}[retry]\nmax_attempts = 2\ninitial_ms = 1\non = [\"error\"]\n"
    );
    push_ok(&s, &admin, "up", guests::RETRY_PROBE, &manifest).await;
    let id = queue(&s, &admin, "up", json!({ "url": url })).await;
    let run = wait_finished(&s, &admin, &id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["attempts"], 1, "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_its_wall_time_retries_when_asked() {
    let s = start();
    let admin = s.admin_setup().await;
    let manifest = "name = \"spin\"\n[limits]\ntimeout_ms = 200\n\
                    [retry]\nmax_attempts = 2\ninitial_ms = 1\non = [\"wall_time\"]\n";
    push_ok(&s, &admin, "spin", guests::LOOP_FOREVER, manifest).await;
    let id = queue(&s, &admin, "spin", json!(null)).await;
    let run = wait_finished(&s, &admin, &id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["attempts"], 2, "{run}");
    assert_eq!(run["error"]["kind"], "limit:wall_time", "{run}");
    let history = run["attempt_history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{run}");
    assert_eq!(history[0]["retry_on"], "wall_time");
    assert_eq!(history[0]["error_kind"], "limit:wall_time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_retry_or_concurrency_section_is_refused_naming_the_field() {
    let s = start();
    let admin = s.admin_setup().await;
    for (section, named) in [
        ("[retry]\nmax_attempts = 0\n", "retry.max_attempts"),
        ("[retry]\nmax_attempts = 21\n", "retry.max_attempts"),
        ("[retry]\nbackoff = \"linear\"\n", "retry.backoff"),
        ("[retry]\nmax_ms = 86400001\n", "retry.max_ms"),
        ("[retry]\non = [\"sometimes\"]\n", "retry.on"),
        ("[retry]\ntries = 3\n", "tries"),
        (
            "[concurrency]\nmax_running = 0\n",
            "concurrency.max_running",
        ),
        ("[concurrency]\nmax_starts = 5\n", "concurrency.per_secs"),
    ] {
        let r = push(
            &s,
            &admin,
            "bad",
            guests::RETRY_PROBE,
            &format!("name = \"bad\"\n{section}"),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{section}: {}", r.text);
        assert!(r.text.contains(named), "{section}: {}", r.text);
    }
    // Nothing was stored.
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/steps/bad",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_run_waiting_for_its_retry_cancels_it_at_once() {
    let s = start();
    let admin = s.admin_setup().await;
    // A minute's backoff: the run waits `queued` after attempt 1.
    let manifest =
        "name = \"flaky\"\n[retry]\nmax_attempts = 3\ninitial_ms = 60000\njitter = false\n";
    push_ok(&s, &admin, "flaky", guests::RETRY_PROBE, manifest).await;
    let id = queue(
        &s,
        &admin,
        "flaky",
        json!({"fail_until": 9, "retryable": true}),
    )
    .await;
    let waiting = wait_for(&s, &admin, &id, "waiting for its retry", |r| {
        r["status"] == "queued"
            && r["attempt_history"]
                .as_array()
                .is_some_and(|h| h.len() == 1)
    })
    .await;
    assert_eq!(waiting["attempts"], 1, "{waiting}");
    let r = s
        .call(
            Method::POST,
            &format!("/v1/projects/alpha/runs/{id}/cancel"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["status"], "cancelled");
    let run = get_run(&s, &admin, &id).await;
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(run["attempts"], 1, "{run}");
    assert_eq!(run["attempt_history"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_running_cap_holds_and_every_run_finishes() {
    let s = start();
    let admin = s.admin_setup().await;
    // Bad limits are refused naming the field; a non-admin may not set them.
    for (body, named) in [
        (json!({"max_running": 0}), "max_running"),
        (json!({"max_starts": 3}), "per_secs"),
        (json!({"per_secs": 100000, "max_starts": 1}), "per_secs"),
        (json!({"max_runing": 1}), "max_runing"),
    ] {
        let r = s
            .call(
                Method::PUT,
                "/v1/projects/alpha/limits",
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert!(r.text.contains(named), "{body}: {}", r.text);
    }
    let runner = s
        .new_key(&admin, &["runs:write", "runs:read"], Some("alpha"))
        .await;
    let r = s
        .call(
            Method::PUT,
            "/v1/projects/alpha/limits",
            Some(&runner),
            Some(json!({"max_running": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    let r = s
        .call(
            Method::PUT,
            "/v1/projects/alpha/limits",
            Some(&admin),
            Some(json!({"max_running": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = s
        .call(Method::GET, "/v1/projects/alpha/limits", Some(&admin), None)
        .await;
    assert_eq!(
        r.json(),
        json!({"max_running": 1, "max_starts": null, "per_secs": null})
    );

    // Two steps of the project, each call held open: one at a time.
    let (upstream, url) = Upstream {
        hold: Duration::from_millis(300),
        ..Upstream::default()
    }
    .start()
    .await;
    for step in ["one", "two"] {
        let manifest = format!("name = \"{step}\"\n{PROBE_HTTP}");
        push_ok(&s, &admin, step, guests::RETRY_PROBE, &manifest).await;
    }
    let mut ids = Vec::new();
    for i in 0..6 {
        let step = if i % 2 == 0 { "one" } else { "two" };
        ids.push(queue(&s, &admin, step, json!({ "url": url })).await);
    }
    for id in &ids {
        let run = wait_finished(&s, &admin, id).await;
        assert_eq!(run["status"], "succeeded", "{run}");
    }
    assert_eq!(upstream.arrivals().len(), 6);
    assert_eq!(
        upstream.most_in_flight.load(Ordering::SeqCst),
        1,
        "the project cap of 1 was exceeded"
    );
    // `{}` removes the caps.
    let r = s
        .call(
            Method::PUT,
            "/v1/projects/alpha/limits",
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = s
        .call(Method::GET, "/v1/projects/alpha/limits", Some(&admin), None)
        .await;
    assert_eq!(r.json()["max_running"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_async_trigger_runs_its_pinned_version_through_the_queue() {
    let s = start();
    let admin = s.admin_setup().await;
    let v1 = push_ok(&s, &admin, "echo", guests::CONTEXT_ECHO, "name = \"one\"\n").await;
    let r = s
        .call(
            Method::POST,
            "/v1/projects/alpha/steps/echo/triggers",
            Some(&admin),
            Some(json!({"digest": v1, "async": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let trigger = r.json();
    let v2 = push_ok(&s, &admin, "echo", guests::CONTEXT_ECHO, "name = \"two\"\n").await;
    assert_ne!(v1, v2);
    let fire = s
        .send(
            s.client
                .post(format!("{}{}", s.base, trigger["url"].as_str().unwrap()))
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
    assert_eq!(fire.status, StatusCode::ACCEPTED, "{}", fire.text);
    let id = fire.json()["id"].as_str().unwrap().to_owned();
    let run = wait_finished(&s, &admin, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["digest"], v1.as_str(), "the pinned version ran: {run}");
    // An unpinned queued run takes the current version.
    let id = queue(&s, &admin, "echo", json!({})).await;
    let run = wait_finished(&s, &admin, &id).await;
    assert_eq!(run["digest"], v2.as_str(), "{run}");
}
