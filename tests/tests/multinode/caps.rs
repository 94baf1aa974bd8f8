//! Caps on queued runs across two nodes on one PostgreSQL: a step's
//! `max_running = 2` holds though both nodes claim at once (observed by
//! the upstream the step calls, which counts the requests it holds open),
//! and a step's start cap (`max_starts` per `per_secs`) is never exceeded
//! in any window of the claims both nodes made. Every run finishes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use airlock_tests::serve::Server;
use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::{Cluster, eventually, upload};

/// A loopback upstream holding each request `hold`, counting how many it
/// holds at once and the most it ever held.
#[derive(Clone, Default)]
struct Counting {
    in_flight: Arc<AtomicI64>,
    most: Arc<AtomicI64>,
    served: Arc<AtomicI64>,
}

impl Counting {
    async fn start(hold: Duration) -> (Self, String) {
        let state = Self::default();
        let s = state.clone();
        let app = axum::Router::new().fallback(move || {
            let s = s.clone();
            async move {
                let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                s.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(hold).await;
                s.in_flight.fetch_sub(1, Ordering::SeqCst);
                s.served.fetch_add(1, Ordering::SeqCst);
                "{}"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (state, url)
    }
}

async fn queue(node: &Server, key: &str, step: &str, input: Value) -> String {
    let r = node
        .send(
            node.client
                .post(format!("{}/v1/projects/alpha/steps/{step}/runs", node.base))
                .bearer_auth(key)
                .header("content-type", "application/json")
                .header("prefer", "respond-async")
                .body(json!({ "input": input }).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    r.json()["id"].as_str().unwrap().to_owned()
}

/// Queues `n` runs of `step` through alternating nodes; waits until all
/// have finished and asserts they succeeded.
async fn run_all(cluster: &Cluster, step: &str, n: usize, url: &str) {
    let ids: Vec<String> = futures::stream::iter(0..n)
        .map(|i| {
            let node = cluster.node(i);
            let admin = cluster.admin.clone();
            let input = json!({ "url": url });
            async move { queue(node, &admin, step, input).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let step_name = step.to_owned();
    eventually(
        "every queued run finished",
        Duration::from_secs(300),
        || {
            let url = cluster.url.clone();
            let step = step_name.clone();
            async move {
                use sqlx::Connection as _;
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                let open: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM runs WHERE project = 'alpha' AND step = $1
                         AND status IN ('queued', 'running')",
                )
                .bind(&step)
                .fetch_one(&mut conn)
                .await
                .unwrap();
                open == 0
            }
        },
    )
    .await;
    let mut conn = cluster.pg().await;
    let succeeded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM runs WHERE project = 'alpha' AND step = $1 AND status = 'succeeded'",
    )
    .bind(step)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        succeeded as usize,
        n,
        "every run succeeded ({} queued)",
        ids.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_cap_of_two_holds_across_two_nodes() {
    let cluster = Cluster::start(&["--allow-range", "127.0.0.0/8"]).await;
    let (upstream, url) = Counting::start(Duration::from_millis(400)).await;
    let manifest = "name = \"capped\"\n[http]\nallowed_hosts = [\"127.0.0.1\"]\n\
                    [concurrency]\nmax_running = 2\n";
    upload(
        &cluster.a,
        &cluster.admin,
        "capped",
        airlock_tests::guests::RETRY_PROBE,
        manifest,
    )
    .await;
    run_all(&cluster, "capped", 16, &url).await;
    assert_eq!(upstream.served.load(Ordering::SeqCst), 16);
    let most = upstream.most.load(Ordering::SeqCst);
    assert!(
        most <= 2,
        "{most} runs were running at once under a cap of 2"
    );
    let mut conn = cluster.pg().await;
    let owners: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT lease_owner) FROM runs WHERE project = 'alpha'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    eprintln!("at most {most} at once; runs executed by {owners} node(s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_cap_holds_in_every_window_across_two_nodes() {
    let cluster = Cluster::start(&["--allow-range", "127.0.0.0/8"]).await;
    let (_upstream, url) = Counting::start(Duration::ZERO).await;
    let manifest = "name = \"throttled\"\n[http]\nallowed_hosts = [\"127.0.0.1\"]\n\
                    [concurrency]\nmax_starts = 3\nper_secs = 2\n";
    upload(
        &cluster.a,
        &cluster.admin,
        "throttled",
        airlock_tests::guests::RETRY_PROBE,
        manifest,
    )
    .await;
    run_all(&cluster, "throttled", 9, &url).await;
    // The claims' own start times, as both nodes recorded them.
    let mut conn = cluster.pg().await;
    let starts: Vec<i64> = sqlx::query_scalar(
        "SELECT started_at FROM run_starts WHERE project = 'alpha' AND step = 'throttled'
         ORDER BY started_at",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(starts.len(), 9, "one start per run: {starts:?}");
    for (i, &at) in starts.iter().enumerate() {
        let in_window = starts[..=i].iter().filter(|&&s| s > at - 2000).count();
        assert!(
            in_window <= 3,
            "{in_window} starts in the 2 s up to {at}: {starts:?}"
        );
    }
}
