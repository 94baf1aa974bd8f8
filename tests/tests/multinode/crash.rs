//! `kill -9` of one node under load: what it answered 200 is stored whole,
//! and the other node serves on as if nothing happened.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use airlock_tests::examples;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{Cluster, eventually, upload};

/// Concurrent clients per node.
const WORKERS: usize = 3;
/// Runs A answers before it is killed, and B answers after.
const BEFORE_KILL: usize = 12;
const AFTER_KILL: usize = 12;

/// What one request to a node came to.
#[derive(Debug)]
struct Answer {
    /// Whether it was sent after the kill began.
    after_kill: bool,
    /// Whether it ended after the kill began: only such a request to A may
    /// fail.
    ended_after_kill: bool,
    /// The status and body, or the transport error (a dead node).
    result: Result<(StatusCode, String), String>,
}

/// Runs `hello` through `url` until `stop`, counting 200s in `answered`.
/// Stops at its first transport error (its node is gone).
async fn worker(
    client: reqwest::Client,
    url: String,
    key: String,
    killed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
) -> Vec<Answer> {
    let mut answers = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let after_kill = killed.load(Ordering::SeqCst);
        let sent = client
            .post(&url)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(json!({"input": {"name": "Ada"}}).to_string())
            .send()
            .await;
        let result = match sent {
            Ok(r) => {
                let status = r.status();
                match r.text().await {
                    Ok(text) => Ok((status, text)),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        let ended_after_kill = killed.load(Ordering::SeqCst);
        let failed = result.is_err();
        if matches!(result, Ok((StatusCode::OK, _))) {
            answered.fetch_add(1, Ordering::SeqCst);
        }
        answers.push(Answer {
            after_kill,
            ended_after_kill,
            result,
        });
        if failed {
            break;
        }
    }
    answers
}

/// Every run record of project alpha, read through `node`'s API, page by page.
async fn all_runs(node: &airlock_tests::serve::Server, key: &str) -> Vec<Value> {
    let mut runs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/projects/alpha/runs?limit=100&cursor={c}"),
            None => "/v1/projects/alpha/runs?limit=100".to_owned(),
        };
        let r = node.call(Method::GET, &path, Some(key), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let page = r.json();
        runs.extend(page["runs"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return runs,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_no_answered_run_and_the_other_serves_on() {
    let c = Cluster::start(&[]).await;
    upload(
        &c.a,
        &c.admin,
        "hello",
        examples::HELLO,
        "name = \"hello\"\n",
    )
    .await;
    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let counts = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
    let mut workers = Vec::new();
    for (n, node) in [&c.a, &c.b].into_iter().enumerate() {
        for _ in 0..WORKERS {
            workers.push((
                n,
                tokio::spawn(worker(
                    node.client.clone(),
                    format!("{}/v1/projects/alpha/steps/hello/runs", node.base),
                    c.admin.clone(),
                    killed.clone(),
                    stop.clone(),
                    counts[n].clone(),
                )),
            ));
        }
    }
    // Both nodes busy, then A dies with runs in flight.
    eventually(
        "both nodes answer runs",
        Duration::from_secs(60),
        || async {
            counts[0].load(Ordering::SeqCst) >= BEFORE_KILL && counts[1].load(Ordering::SeqCst) >= 1
        },
    )
    .await;
    killed.store(true, Ordering::SeqCst);
    c.a.sigkill();
    let b_at_kill = counts[1].load(Ordering::SeqCst);
    eventually(
        "B serves on after the kill",
        Duration::from_secs(60),
        || async { counts[1].load(Ordering::SeqCst) >= b_at_kill + AFTER_KILL },
    )
    .await;
    stop.store(true, Ordering::SeqCst);

    let mut answered = Vec::new();
    let mut b_after_kill = 0;
    for (n, task) in workers {
        for answer in task.await.unwrap() {
            match (&answer.result, n) {
                (Ok((StatusCode::OK, text)), _) => {
                    let run: Value = serde_json::from_str(text).unwrap();
                    assert_eq!(run["status"], "succeeded", "{run}");
                    answered.push(run["id"].as_str().unwrap().to_owned());
                    if n == 1 && answer.after_kill {
                        b_after_kill += 1;
                    }
                }
                // A request to A that ended before the kill was answered
                // in full; one in flight at the kill, or sent after it, may
                // fail (the flag is set before the signal is sent).
                (Err(_), 0) if answer.ended_after_kill => {}
                // B answers every request, before the kill and after it.
                _ => panic!("node {} answered {answer:?}", ["A", "B"][n]),
            }
        }
    }
    assert!(
        b_after_kill >= AFTER_KILL,
        "{b_after_kill} runs on B after the kill"
    );

    // Every run answered 200, by either node, is on record, read from B;
    // no record is half-written: each has its status, input and output.
    let records = all_runs(&c.b, &c.admin).await;
    let ids: std::collections::HashSet<&str> =
        records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for id in &answered {
        assert!(
            ids.contains(id.as_str()),
            "run {id} answered 200 but not on record"
        );
    }
    for record in &records {
        assert_eq!(record["status"], "succeeded", "{record}");
        assert_eq!(record["input"]["name"], "Ada", "{record}");
        assert_eq!(record["output"]["greeting"], "Hello, Ada!", "{record}");
        assert!(record["logs"].is_array(), "{record}");
    }
    // At most the requests cut off by the kill ran without an answer.
    assert!(records.len() >= answered.len());
    assert!(
        records.len() <= answered.len() + WORKERS,
        "{} records, {} answers",
        records.len(),
        answered.len()
    );
}
