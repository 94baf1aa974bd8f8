//! `kill -9` of `airlock serve` on SQLite under concurrent load: every run
//! that was answered 200 is in the records after a restart, whole — with
//! group commit (records of concurrent runs share one commit) and with
//! either durability mode (`--sqlite-synchronous full` and `normal`: the
//! process dying loses nothing either way; only a power loss can tell them
//! apart, which a test cannot cause).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use airlock_tests::serve::{Server, ServerBuilder};
use airlock_tests::{component_bytes, examples};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
/// Concurrent clients: enough for commits to carry several records.
const WORKERS: usize = 8;

/// Runs `hello` until its first transport error (the server died);
/// returns the ids of the runs answered 200.
async fn worker(
    client: reqwest::Client,
    url: String,
    key: String,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let mut answered = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let sent = client
            .post(&url)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(json!({"input": {"name": "Ada"}}).to_string())
            .send()
            .await;
        let Ok(response) = sent else { break };
        let status = response.status();
        let Ok(text) = response.text().await else {
            break;
        };
        if status == StatusCode::OK {
            let v: Value = serde_json::from_str(&text).unwrap();
            answered.push(v["id"].as_str().unwrap().to_owned());
        }
    }
    answered
}

async fn all_runs(s: &Server, key: &str) -> Vec<Value> {
    let mut runs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/projects/alpha/runs?limit=100&cursor={c}"),
            None => "/v1/projects/alpha/runs?limit=100".to_owned(),
        };
        let r = s.call(Method::GET, &path, Some(key), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let page = r.json();
        runs.extend(page["runs"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return runs,
        }
    }
}

async fn killed_under_load_loses_no_answered_run(mode: &str) {
    let s = ServerBuilder::new(BIN)
        .args(&["--sqlite-synchronous", mode])
        .start();
    let admin = s.admin_setup().await;
    let r = s
        .upload(
            "alpha",
            "hello",
            &admin,
            &component_bytes(examples::HELLO),
            Some("name = \"hello\"\n"),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("{}/v1/projects/alpha/steps/hello/runs", s.base);
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            tokio::spawn(worker(
                s.client.clone(),
                url.clone(),
                admin.clone(),
                stop.clone(),
            ))
        })
        .collect();
    // Let answers pile up, then kill the process mid-load.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.sigkill();
    let mut answered = HashSet::new();
    for w in workers {
        answered.extend(w.await.unwrap());
    }
    stop.store(true, Ordering::SeqCst);
    assert!(
        answered.len() >= 20,
        "too little load to mean anything: {}",
        answered.len()
    );

    // Restarted on the same data: every answered run is there, whole.
    let stopped = s.wait();
    let s = ServerBuilder::new(BIN).dir(stopped.dir).start();
    let runs = all_runs(&s, &admin).await;
    let stored: HashSet<String> = runs
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let lost: Vec<_> = answered.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{mode}: {} answered runs lost: {lost:?}",
        lost.len()
    );
    for run in &runs {
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["output"]["greeting"], "Hello, Ada!", "{run}");
        assert_eq!(run["input"]["name"], "Ada", "{run}");
    }
    // Unanswered runs in the records: at most one in flight per worker.
    assert!(
        stored.len() <= answered.len() + WORKERS,
        "{} vs {}",
        stored.len(),
        answered.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_durability_loses_no_answered_run_to_kill_9() {
    killed_under_load_loses_no_answered_run("full").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_durability_loses_no_answered_run_to_kill_9() {
    killed_under_load_loses_no_answered_run("normal").await;
}
