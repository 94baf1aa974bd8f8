//! Queued runs across two nodes on one PostgreSQL: each of 1,000 runs runs
//! exactly once (counted at a loopback upstream each run calls with its own
//! path), none lost, none stuck; and a node killed mid-run leaves its run
//! to the other node after the lease, as attempt 2.

use std::collections::HashMap;
use std::time::Duration;

use airlock_tests::fakes;
use airlock_tests::postgres::fresh_database;
use airlock_tests::serve::{Server, ServerBuilder};
use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::{BIN, Cluster, eventually, upload};

const RUNS: usize = 1_000;
const PROBE: &str = "name = \"probe\"\n[http]\nallowed_hosts = [\"127.0.0.1\"]\n\
                     [limits]\ntimeout_ms = 60000\n";

/// Queues `input` for the step `probe` of project alpha through `node`.
async fn queue(node: &Server, key: &str, input: Value) -> String {
    let r = node
        .send(
            node.client
                .post(format!("{}/v1/projects/alpha/steps/probe/runs", node.base))
                .bearer_auth(key)
                .header("content-type", "application/json")
                .header("prefer", "respond-async")
                .body(json!({ "input": input }).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    r.json()["id"].as_str().unwrap().to_owned()
}

/// `(status, count)` of project alpha's runs, straight from the database.
async fn statuses(cluster_url: &str) -> HashMap<String, i64> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(cluster_url).await.unwrap();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM runs WHERE project = 'alpha' GROUP BY status")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    rows.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_queued_runs_on_two_nodes_each_run_exactly_once() {
    let upstream = fakes::echo().await;
    // The outbound limit (1,000 per 5 minutes by default) is not under test.
    let cluster = Cluster::start(&[
        "--allow-range",
        "127.0.0.0/8",
        "--http-rate-limit",
        "1000000",
    ])
    .await;
    upload(
        &cluster.a,
        &cluster.admin,
        "probe",
        airlock_tests::guests::HTTP_PROBE,
        PROBE,
    )
    .await;
    let ids: Vec<String> = futures::stream::iter(0..RUNS)
        .map(|i| {
            let node = cluster.node(i);
            let url = upstream.url(&format!("/hit/{i}"));
            let admin = cluster.admin.clone();
            async move { queue(node, &admin, json!({ "url": url })).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(ids.len(), RUNS);
    let start = std::time::Instant::now();
    let last = loop {
        let now = statuses(&cluster.url).await;
        let waiting = ["queued", "running"]
            .iter()
            .map(|s| now.get(*s).copied().unwrap_or(0))
            .sum::<i64>();
        if waiting == 0 && now.values().sum::<i64>() as usize == RUNS {
            break now;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "not every queued run finished: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        last.get("succeeded").copied(),
        Some(RUNS as i64),
        "every run succeeded: {last:?}"
    );
    // Exactly once: each path reached the upstream one time.
    let mut hits: HashMap<String, usize> = HashMap::new();
    for r in upstream.requests() {
        *hits
            .entry(r["path"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(hits.len(), RUNS, "none lost");
    let twice: Vec<_> = hits.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "ran more than once: {twice:?}");
    // One attempt each; which node ran each is its last lease owner.
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&cluster.url).await.unwrap();
    let (max_attempts, owners): (i64, i64) = sqlx::query_as(
        "SELECT max(attempts), count(DISTINCT lease_owner) FROM runs WHERE project = 'alpha'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(max_attempts, 1);
    eprintln!("runs were executed by {owners} node(s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_leaves_its_run_to_the_other_after_the_lease() {
    let upstream = fakes::echo().await;
    let (url, _database) = fresh_database().await;
    let args = ["--allow-range", "127.0.0.0/8", "--run-lease-ms", "2000"];
    // Node A alone takes the run, so the one killed is the one running it.
    let a = ServerBuilder::new(BIN)
        .database_url(&url)
        .args(&args)
        .start();
    let admin = a.admin_setup().await;
    upload(
        &a,
        &admin,
        "probe",
        airlock_tests::guests::HTTP_PROBE,
        PROBE,
    )
    .await;
    let slow = upstream.url("/slow?ms=3000");
    let id = queue(&a, &admin, json!({ "url": slow })).await;
    eventually(
        "node A is waiting on the upstream",
        Duration::from_secs(120),
        || {
            let n = upstream.requests().len();
            async move { n == 1 }
        },
    )
    .await;
    let b = ServerBuilder::new(BIN)
        .database_url(&url)
        .args(&args)
        .start();
    a.sigkill();
    drop(a.wait());
    let start = std::time::Instant::now();
    let run = loop {
        let r = b
            .call(
                reqwest::Method::GET,
                &format!("/v1/projects/alpha/runs/{id}"),
                Some(&admin),
                None,
            )
            .await;
        let run = r.json();
        if matches!(run["status"].as_str(), Some("succeeded" | "failed")) {
            break run;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run did not finish on node B: {run}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["attempts"], 2, "{run}");
    assert_eq!(run["output"]["body"], "late", "{run}");
    assert_eq!(upstream.requests().len(), 2, "one request per attempt");
}
