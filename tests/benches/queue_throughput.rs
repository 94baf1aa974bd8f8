//! Queue throughput on PostgreSQL: how fast queued runs start on one node
//! and on two nodes sharing one database, and how long a run waits between
//! being queued (`created_at`, when the 202 was answered) and its attempt
//! starting (`started_at`, set by the claim), next to a synchronous run's
//! whole latency on the same node.
//!
//! Each configuration queues `RUNS` runs of the Rust `hello` step with
//! `CLIENTS` concurrent `POST …/runs` requests (`Prefer: respond-async`),
//! spread over the nodes, and waits until every run has finished; the
//! times are then read from the database: runs started per second over
//! the span from the first queueing to the last start, and the
//! enqueue→start latency percentiles. Every run must end `succeeded`
//! exactly once (the bench fails otherwise).
//!
//! Run: `cargo bench -p airlock-tests --bench queue_throughput -- --bench`
//! (PostgreSQL as the tests find it: `AIRLOCK_TEST_DATABASE_URL` or a
//! throwaway cluster).

use std::time::{Duration, Instant};

use airlock_tests::postgres::{Guard, fresh_database};
use airlock_tests::serve::{Server, ServerBuilder};
use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection as _;

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
const CLIENTS: usize = 32;

struct Cluster {
    nodes: Vec<Server>,
    key: String,
    url: String,
    _database: Guard,
}

async fn cluster(nodes: usize) -> Cluster {
    let (url, guard) = fresh_database().await;
    let nodes: Vec<Server> = (0..nodes)
        .map(|_| {
            ServerBuilder::new(BIN)
                .database_url(&url)
                .env("AIRLOCK_LOG", "error")
                .args(&["--trigger-rate-limit", "4000000000"])
                .start()
        })
        .collect();
    let key = nodes[0].create_key(&[]);
    let r = nodes[0]
        .call(
            reqwest::Method::POST,
            "/v1/projects",
            Some(&key),
            Some(json!({"name": "bench"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let hello = std::fs::read(airlock_tests::examples::HELLO).unwrap();
    let r = nodes[0]
        .upload("bench", "hello", &key, &hello, Some(r#"name = "hello""#))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    Cluster {
        nodes,
        key,
        url,
        _database: guard,
    }
}

async fn queue(node: &Server, key: &str, i: usize) -> String {
    let r = node
        .send(
            node.client
                .post(format!("{}/v1/projects/bench/steps/hello/runs", node.base))
                .bearer_auth(key)
                .header("content-type", "application/json")
                .header("prefer", "respond-async")
                .body(json!({"input": {"name": format!("r{i}")}}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    r.json()["id"].as_str().unwrap().to_owned()
}

/// `(created_at, started_at)` of every queued run, once all `n` succeeded.
async fn wait_all(url: &str, n: usize) -> Vec<(i64, i64)> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let bound = Instant::now();
    loop {
        let (done, failed): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'succeeded'),
                    count(*) FILTER (WHERE status IN ('failed', 'cancelled'))
             FROM runs WHERE project = 'bench' AND run_trigger = 'api'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(failed, 0, "every queued run succeeds");
        if done as usize >= n {
            break;
        }
        assert!(bound.elapsed() < Duration::from_secs(600), "{done} of {n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT created_at, started_at, attempts FROM runs
         WHERE project = 'bench' AND run_trigger = 'api'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), n, "no run lost or duplicated");
    assert!(rows.iter().all(|r| r.2 == 1), "each started once");
    rows.into_iter().map(|(c, s, _)| (c, s)).collect()
}

fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Synchronous run latency at c=1 on `node` (ms, sorted).
async fn sync_latency(node: &Server, key: &str, n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let r = node
            .run(key, "bench", "hello", json!({"name": "Ada"}))
            .await;
        out.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    out.sort_by(f64::total_cmp);
    out
}

/// Queues `n` runs one at a time, each once the one before has started,
/// alternating nodes; their enqueue→start times (ms, sorted), as recorded.
async fn idle_latency(c: &Cluster, n: usize) -> Vec<i64> {
    let mut conn = sqlx::PgConnection::connect(&c.url).await.unwrap();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let id = queue(&c.nodes[i % c.nodes.len()], &c.key, i).await;
        let bound = Instant::now();
        loop {
            let row: Option<(i64, Option<i64>)> =
                sqlx::query_as("SELECT created_at, started_at FROM runs WHERE id = $1")
                    .bind(&id)
                    .fetch_optional(&mut conn)
                    .await
                    .unwrap();
            if let Some((created, Some(started))) = row {
                out.push(started - created);
                break;
            }
            assert!(
                bound.elapsed() < Duration::from_secs(30),
                "run {id} never started"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    out.sort_unstable();
    out
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let (runs, sync_runs) = if quick { (50, 10) } else { (2_000, 300) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "| nodes | runs | started/s | enqueue→start p50 | p99 | idle enqueue→start p50 | p99 | sync run p50 | p99 |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for n in [1usize, 2] {
            let c = cluster(n).await;
            // Warm the plan cache of every node, then measure a sync run.
            for node in &c.nodes {
                sync_latency(node, &c.key, 3).await;
            }
            let sync = sync_latency(&c.nodes[0], &c.key, sync_runs).await;
            let started = Instant::now();
            let ids: Vec<String> = futures::stream::iter(0..runs)
                .map(|i| {
                    let node = &c.nodes[i % n];
                    let key = c.key.clone();
                    async move { queue(node, &key, i).await }
                })
                .buffer_unordered(CLIENTS)
                .collect()
                .await;
            let enqueue = started.elapsed();
            assert_eq!(ids.len(), runs);
            // Only queued runs record their trigger (`api`); the synchronous
            // ones above are not counted.
            let queued = wait_all(&c.url, runs).await;
            // Then one run at a time into the idle queue: the wake-up's
            // latency (NOTIFY, or the bus in process), not a backlog's.
            let idle = idle_latency(&c, sync_runs / 3).await;
            let first = queued.iter().map(|r| r.0).min().unwrap();
            let last = queued.iter().map(|r| r.1).max().unwrap();
            let mut waits: Vec<i64> = queued.iter().map(|(c, s)| s - c).collect();
            waits.sort_unstable();
            let span = ((last - first).max(1)) as f64 / 1e3;
            println!(
                "| {n} | {runs} (queued in {:.2} s) | {:.0} | {} ms | {} ms | {} ms | {} ms | {:.2} ms | {:.2} ms |",
                enqueue.as_secs_f64(),
                runs as f64 / span,
                percentile(&waits, 0.5),
                percentile(&waits, 0.99),
                percentile(&idle, 0.5),
                percentile(&idle, 0.99),
                percentile(&sync, 0.5),
                percentile(&sync, 0.99),
            );
        }
    });
}
