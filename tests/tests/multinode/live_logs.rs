//! Live logs across two nodes on one PostgreSQL: a stream opened on the
//! node that does not run a queued run shows its lines before the run
//! ends. Both nodes stream the run; the step waits at a gate the test
//! holds until both streams have its first line; afterwards the nodes'
//! logs say which one ran it, and the other one's stream had that line
//! live, through the database and `NOTIFY`.
//!
//! Fails if live lines stayed in the running node (or were only written
//! at the end), or if a stream missed the notification and its poll.

use airlock_tests::live::{Gate, Sse};
use reqwest::StatusCode;
use serde_json::json;

use super::support::{Cluster, put_secret, upload};

const SECRET: &str = "multinode-live-s3cret-9e1";
const MANIFEST: &str = "name = \"wait\"\nsecrets = [\"SECRET\"]\nreveal = [\"SECRET\"]\n\
                        [http]\nallowed_hosts = [\"127.0.0.1\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_the_other_node_shows_lines_before_the_run_ends() {
    let cluster = Cluster::start_with(|b| {
        b.args(&["--allow-range", "127.0.0.0/8"])
            .env("AIRLOCK_LOG", "info")
            .capture_stderr()
    })
    .await;
    let Cluster { a, b, admin, .. } = &cluster;
    put_secret(a, admin, "SECRET", SECRET).await;
    upload(a, admin, "wait", airlock_tests::guests::LOG_WAIT, MANIFEST).await;
    let gate = Gate::start().await;
    let r = a
        .send(
            a.client
                .post(format!("{}/v1/projects/alpha/steps/wait/runs", a.base))
                .bearer_auth(admin)
                .header("content-type", "application/json")
                .header("prefer", "respond-async")
                .body(json!({"input": {"url": gate.url()}}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/projects/alpha/runs/{id}/logs?follow=1");
    let mut on_a = Sse::open(&a.base, &path, admin, None).await;
    let mut on_b = Sse::open(&b.base, &path, admin, None).await;
    let expected = "first: the secret is [REDACTED:SECRET]";
    for sse in [&mut on_a, &mut on_b] {
        let first = sse.next().await.unwrap();
        assert_eq!(first.event, "log", "{first:?}");
        assert_eq!(first.json()["text"], expected);
    }
    // Both streams have the line and the step is still held at the gate.
    let r = b
        .call(
            reqwest::Method::GET,
            &format!("/v1/projects/alpha/runs/{id}"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(r.json()["status"], "running", "{}", r.text);
    gate.release();
    for sse in [&mut on_a, &mut on_b] {
        let rest = sse.rest().await;
        let end = rest.last().unwrap();
        assert_eq!(end.event, "end", "{rest:?}");
        assert_eq!(end.json()["status"], "succeeded");
        assert!(!sse.raw.contains(SECRET));
    }
    // Which node ran it: exactly one logged its finish.
    let mut cluster = cluster;
    let logs = [cluster.a.stop_and_stderr(), cluster.b.stop_and_stderr()];
    let ran: Vec<bool> = logs
        .iter()
        .map(|log| {
            log.lines()
                .any(|l| l.contains("queued run finished") && l.contains(&id))
        })
        .collect();
    assert_eq!(
        ran.iter().filter(|r| **r).count(),
        1,
        "one node ran the run: {ran:?}"
    );
    // The other node's stream had the first line while the run was held:
    // both did, so whichever did not run it streamed it from the database.
    for log in &logs {
        assert!(!log.contains(SECRET), "a node logged the secret");
    }
}
