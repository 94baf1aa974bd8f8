//! Live logs end to end through `airlock serve` (SQLite, one node): a
//! queued run's log lines arrive over Server-Sent Events while the step
//! still waits at a loopback gate the test holds, masked as the stored
//! record (the granted secret's value never in the stream,
//! `[REDACTED:SECRET]` in its place), then `end` with the status;
//! `Last-Event-ID` resumes without duplicates, live and after the end;
//! scopes and unknown runs are refused; a `nostore` run streams no line;
//! and an open stream ends when the server shuts down.
//!
//! Every wait is on a condition with a generous bound, never on a timing.

use std::time::{Duration, Instant};

use airlock_tests::live::{Gate, Sse, SseEvent};
use airlock_tests::serve::{Server, ServerBuilder};
use airlock_tests::{component_bytes, guests};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
const SECRET: &str = "live-s3cret-value-7f3a9c";
const MANIFEST: &str = "name = \"wait\"\nsecrets = [\"SECRET\"]\nreveal = [\"SECRET\"]\n\
                        [http]\nallowed_hosts = [\"127.0.0.1\"]\n";

async fn setup() -> (Server, String) {
    let s = ServerBuilder::new(BIN)
        .args(&["--allow-range", "127.0.0.0/8"])
        .start();
    let admin = s.admin_setup().await;
    let r = s
        .call(
            Method::PUT,
            "/v1/projects/alpha/secrets/SECRET",
            Some(&admin),
            Some(json!({ "value": SECRET })),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = s
        .upload(
            "alpha",
            "wait",
            &admin,
            &component_bytes(guests::LOG_WAIT),
            Some(MANIFEST),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    (s, admin)
}

/// Queues the step with `body`; the run's id.
async fn queue(s: &Server, key: &str, body: Value) -> String {
    let r = s
        .send(
            s.client
                .post(format!("{}/v1/projects/alpha/steps/wait/runs", s.base))
                .bearer_auth(key)
                .header("content-type", "application/json")
                .header("prefer", "respond-async")
                .body(body.to_string()),
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

fn follow_path(id: &str) -> String {
    format!("/v1/projects/alpha/runs/{id}/logs?follow=1")
}

fn texts(events: &[SseEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.event == "log")
        .map(|e| e.json()["text"].as_str().unwrap().to_owned())
        .collect()
}

fn ids(events: &[SseEvent]) -> Vec<i64> {
    events
        .iter()
        .filter(|e| e.event == "log")
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect()
}

const ALL_LINES: [&str; 4] = [
    "first: the secret is [REDACTED:SECRET]",
    "stdout before the wait",
    "released with 200",
    "stderr after the wait, [REDACTED:SECRET]",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_runs_lines_stream_masked_before_it_ends_then_its_status() {
    let (s, admin) = setup().await;
    let gate = Gate::start().await;
    let id = queue(&s, &admin, json!({"input": {"url": gate.url()}})).await;
    let mut sse = Sse::open(&s.base, &follow_path(&id), &admin, None).await;
    let first = sse.next().await.unwrap();
    assert_eq!(first.event, "log", "{first:?}");
    assert_eq!(first.json()["text"], ALL_LINES[0]);
    assert_eq!(first.json()["source"], "log");
    assert_eq!(first.json()["level"], "info");
    // The step has not been released: the line came while it runs.
    assert_eq!(get_run(&s, &admin, &id).await["status"], "running");

    // A second stream resuming after the first line, while the run runs:
    // it starts after that line (read from the live rows).
    let mut resumed = Sse::open(&s.base, &follow_path(&id), &admin, first.id.as_deref()).await;

    gate.release();
    let mut events = vec![first];
    events.extend(sse.rest().await);
    let end = events.last().unwrap();
    assert_eq!(end.event, "end", "{events:?}");
    assert_eq!(end.json()["status"], "succeeded");
    assert_eq!(end.json()["id"], id.as_str());
    assert_eq!(texts(&events), ALL_LINES);
    let all_ids = ids(&events);
    assert!(all_ids.windows(2).all(|w| w[0] < w[1]), "{all_ids:?}");
    assert!(!sse.raw.contains(SECRET), "the secret in the stream");
    assert!(sse.raw.contains("[REDACTED:SECRET]"));

    let rest = resumed.rest().await;
    assert_eq!(texts(&rest), ALL_LINES[1..], "no line twice, none lost");
    assert_eq!(ids(&rest), all_ids[1..]);
    assert_eq!(rest.last().unwrap().event, "end");
    assert!(!resumed.raw.contains(SECRET));

    // The record shows the same lines; the JSON form has them with ids.
    let run = get_run(&s, &admin, &id).await;
    let stored: Vec<&str> = run["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(stored, ALL_LINES);
    let r = s
        .call(
            Method::GET,
            &format!("/v1/projects/alpha/runs/{id}/logs"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let snapshot = r.json();
    assert_eq!(snapshot["status"], "succeeded");
    let seqs: Vec<i64> = snapshot["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, all_ids);
    assert_eq!(snapshot["lines"][3]["line"]["text"], ALL_LINES[3]);

    // After the end: resuming from the second line reads the record.
    let last_seen = all_ids[1].to_string();
    let mut after = Sse::open(&s.base, &follow_path(&id), &admin, Some(&last_seen)).await;
    let rest = after.rest().await;
    assert_eq!(texts(&rest), ALL_LINES[2..]);
    assert_eq!(rest.last().unwrap().json()["status"], "succeeded");
    // From the last line: only the end.
    let last = all_ids[3].to_string();
    let mut done = Sse::open(&s.base, &follow_path(&id), &admin, Some(&last)).await;
    let rest = done.rest().await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0].event, "end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_ends_its_stream_with_its_status() {
    let (s, admin) = setup().await;
    let gate = Gate::start().await;
    gate.release();
    let id = queue(
        &s,
        &admin,
        json!({"input": {"url": gate.url(), "fail": true}}),
    )
    .await;
    let mut sse = Sse::open(&s.base, &follow_path(&id), &admin, None).await;
    let events = sse.rest().await;
    assert_eq!(texts(&events), ALL_LINES);
    assert_eq!(events.last().unwrap().json()["status"], "failed");
    assert!(!sse.raw.contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_need_runs_read_and_a_run_of_the_project() {
    let (s, admin) = setup().await;
    let gate = Gate::start().await;
    gate.release();
    let id = queue(&s, &admin, json!({"input": {"url": gate.url()}})).await;
    let writer = s.new_key(&admin, &["runs:write"], Some("alpha")).await;
    let reader = s.new_key(&admin, &["runs:read"], Some("alpha")).await;
    for path in [
        follow_path(&id),
        format!("/v1/projects/alpha/runs/{id}/logs"),
    ] {
        let r = s.call(Method::GET, &path, Some(&writer), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.text);
        r.assert_error_shape();
        let r = s
            .call(
                Method::GET,
                &path.replace(&id, "00000000-0000-7000-8000-000000000000"),
                Some(&reader),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        r.assert_error_shape();
    }
    let r = s
        .call(
            Method::GET,
            &format!("/v1/projects/alpha/runs/{id}/logs?follow=maybe"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = s
        .send(
            s.client
                .get(format!("{}{}", s.base, follow_path(&id)))
                .bearer_auth(&reader)
                .header("last-event-id", "not-a-number"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // The reader may follow it.
    let mut sse = Sse::open(&s.base, &follow_path(&id), &reader, None).await;
    let events = sse.rest().await;
    assert_eq!(events.last().unwrap().event, "end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nostore_run_streams_no_line_and_a_synchronous_runs_log_reads_after_it() {
    let (s, admin) = setup().await;
    let gate = Gate::start().await;
    let id = queue(
        &s,
        &admin,
        json!({"input": {"url": gate.url()}, "nostore": true}),
    )
    .await;
    let bound = Instant::now() + Duration::from_secs(120);
    while gate.arrived.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < bound, "the step never reached the gate");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Waiting at the gate, having logged: nothing of it is kept, live rows
    // included.
    let r = s
        .call(
            Method::GET,
            &format!("/v1/projects/alpha/runs/{id}/logs"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.json()["status"], "running", "{}", r.text);
    assert_eq!(r.json()["lines"], json!([]));
    gate.release();
    let mut sse = Sse::open(&s.base, &follow_path(&id), &admin, None).await;
    let events = sse.rest().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].json()["status"], "succeeded");

    // A synchronous run: its lines are there once it has answered.
    let r = s
        .run(&admin, "alpha", "wait", json!({"url": gate.url()}))
        .await;
    assert_eq!(r.json()["status"], "succeeded", "{}", r.text);
    let sync_id = r.json()["id"].as_str().unwrap().to_owned();
    let mut sse = Sse::open(&s.base, &follow_path(&sync_id), &admin, None).await;
    let events = sse.rest().await;
    assert_eq!(texts(&events), ALL_LINES);
    assert_eq!(events.last().unwrap().json()["status"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_stream_ends_when_the_server_shuts_down() {
    let (s, admin) = setup().await;
    let gate = Gate::start().await;
    let id = queue(&s, &admin, json!({"input": {"url": gate.url()}})).await;
    let mut sse = Sse::open(&s.base, &follow_path(&id), &admin, None).await;
    assert_eq!(sse.next().await.unwrap().event, "log");
    s.sigterm();
    // The stream closes without an `end` (the run has not ended), and the
    // server exits instead of waiting for the stream.
    let rest = sse.rest().await;
    assert!(rest.iter().all(|e| e.event != "end"), "{rest:?}");
    let stopped = tokio::task::spawn_blocking(move || s.wait()).await.unwrap();
    assert!(stopped.status.success(), "{:?}", stopped.status);
    gate.release();
}

/// `airlock logs RUN --follow`: lines as they come, then the run's status
/// as the exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_follows_a_run_and_exits_with_its_status() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;

    let (s, admin) = setup().await;
    let gate = Gate::start().await;
    let id = queue(&s, &admin, json!({"input": {"url": gate.url()}})).await;
    let mut cli = airlock_tests::cli::Cli::new(&s, &admin);
    cli.project = Some("alpha".into());
    cli.env.push(("NO_COLOR".into(), "1".into()));
    let mut child = cli
        .command(&["logs", &id, "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        (line, stdout)
    })
    .await
    .unwrap();
    let (line, mut stdout) = first;
    assert!(line.contains("INFO"), "{line}");
    assert!(line.ends_with(&format!("{}\n", ALL_LINES[0])), "{line}");
    // Printed while the step is still held at the gate.
    assert_eq!(get_run(&s, &admin, &id).await["status"], "running");
    gate.release();
    let (rest, status) = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        (rest, child.wait().unwrap())
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    let printed: Vec<&str> = rest.lines().collect();
    assert_eq!(printed.len(), 3, "{rest}");
    for (printed, expected) in printed.iter().zip(&ALL_LINES[1..]) {
        assert!(printed.ends_with(expected), "{printed} / {expected}");
    }
    assert!(!rest.contains(SECRET) && !line.contains(SECRET));

    // A failed run: its lines, then a non-zero exit; `--json` prints each
    // line as the API's object.
    let id = queue(
        &s,
        &admin,
        json!({"input": {"url": gate.url(), "fail": true}}),
    )
    .await;
    let out = cli.run(&["logs", &id, "--follow", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert_eq!(lines[3]["text"], ALL_LINES[3]);
    assert_eq!(lines[3]["source"], "stderr");
    assert!(out.stderr.contains("failed"), "{}", out.stderr);
    // An unknown run: the API's 404, the usage exit code.
    let out = cli.run(&["logs", "00000000-0000-7000-8000-000000000000", "--follow"]);
    assert_eq!(out.code, 2, "{out:?}");
}

/// The hostile guest's secret (JSON specials, non-ASCII: many encodings).
const HOSTILE: &str = "sk_live/Zq+8\"mW\\q&7 Rt#xÜ9Lp";
const HOSTILE_MULTI: &str = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END KEY-----";

/// `text` and its JSON-unescaped readings, one to three times over.
fn readings(text: &str) -> Vec<String> {
    let mut out = vec![text.to_string()];
    let mut current = text.to_string();
    for _ in 0..3 {
        let quoted = format!("\"{}\"", current.replace('"', "\\\""));
        match serde_json::from_str::<String>(&quoted) {
            Ok(decoded) if decoded != current => {
                out.push(decoded.clone());
                current = decoded;
            }
            _ => break,
        }
    }
    out
}

/// A step that tries every way to log its secret (every encoding, split
/// across writes, across `log` calls and across stdout then stderr,
/// partly escaped): the live stream is the stored log line for line, and
/// no 8-byte piece of the secret is in any reading of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_steps_live_log_is_masked_exactly_as_its_record() {
    let s = ServerBuilder::new(BIN).start();
    let admin = s.admin_setup().await;
    for (name, value) in [("SECRET", HOSTILE), ("MULTI", HOSTILE_MULTI)] {
        let r = s
            .call(
                Method::PUT,
                &format!("/v1/projects/alpha/secrets/{name}"),
                Some(&admin),
                Some(json!({ "value": value })),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.text);
    }
    let manifest = "name = \"leak\"\nsecrets = [\"SECRET\", \"MULTI\"]\n\
                    reveal = [\"SECRET\", \"MULTI\"]\n";
    let r = s
        .upload(
            "alpha",
            "leak",
            &admin,
            &component_bytes(guests::LEAK_SECRET),
            Some(manifest),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    for mode in ["log", "split-log", "escaped-log"] {
        let r = s
            .send(
                s.client
                    .post(format!("{}/v1/projects/alpha/steps/leak/runs", s.base))
                    .bearer_auth(&admin)
                    .header("content-type", "application/json")
                    .header("prefer", "respond-async")
                    .body(json!({"input": {"mode": mode}}).to_string()),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let mut sse = Sse::open(&s.base, &follow_path(&id), &admin, None).await;
        let events = sse.rest().await;
        assert_eq!(events.last().unwrap().event, "end", "{mode}");
        let streamed = texts(&events);
        let run = get_run(&s, &admin, &id).await;
        let stored: Vec<String> = run["logs"]
            .as_array()
            .unwrap_or_else(|| panic!("{run}"))
            .iter()
            .map(|l| l["text"].as_str().unwrap().to_owned())
            .collect();
        assert!(!stored.is_empty(), "{mode}");
        assert_eq!(streamed, stored, "{mode}: the stream is the stored log");
        for text in streamed.iter().chain(std::iter::once(&sse.raw)) {
            for reading in readings(text) {
                for w in HOSTILE.as_bytes().windows(8) {
                    let w = String::from_utf8_lossy(w);
                    assert!(!reading.contains(w.as_ref()), "{mode} leaks {w:?}");
                }
            }
        }
        assert!(sse.raw.contains("[REDACTED:SECRET]"), "{mode}");
    }
}

/// A node serves a bounded number of open streams per project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_per_project_are_bounded() {
    let (s, admin) = setup().await;
    let gate = Gate::start().await;
    let id = queue(&s, &admin, json!({"input": {"url": gate.url()}})).await;
    let mut open = Vec::new();
    for _ in 0..32 {
        open.push(Sse::open(&s.base, &follow_path(&id), &admin, None).await);
    }
    let r = s
        .call(Method::GET, &follow_path(&id), Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(r.headers.get("retry-after").is_some());
    // The JSON form is not a stream: not counted.
    let r = s
        .call(
            Method::GET,
            &format!("/v1/projects/alpha/runs/{id}/logs"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A closed stream frees its place (once the server notices: at the
    // latest with the next keep-alive).
    drop(open.pop());
    let bound = Instant::now() + Duration::from_secs(60);
    loop {
        // The status only: an accepted stream would not end.
        let r = s
            .client
            .get(format!("{}{}", s.base, follow_path(&id)))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            break;
        }
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(Instant::now() < bound, "a closed stream kept its place");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gate.release();
}
