//! A cron schedule on two nodes of one PostgreSQL: both run a scheduler,
//! and an every-second schedule queues exactly one run per tick over
//! several seconds — no tick twice, none skipped between the first and
//! the last. It would fail if both nodes fired a tick (a second run under
//! another key, or a tick out of step) or if a race lost one.

use std::time::Duration;

use airlock_tests::serve::timestamp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{Cluster, eventually, upload};

const HELLO: &str = "name = \"hello\"\n";
/// Ticks to watch.
const TICKS: i64 = 6;

async fn schedule(cluster: &Cluster, i: usize, id: &str) -> Value {
    let r = cluster
        .node(i)
        .call(
            Method::GET,
            &format!("/v1/projects/alpha/schedules/{id}"),
            Some(&cluster.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_every_second_schedule_fires_once_per_tick_across_two_nodes() {
    let cluster = Cluster::start(&[]).await;
    upload(
        &cluster.a,
        &cluster.admin,
        "hello",
        airlock_tests::examples::HELLO,
        HELLO,
    )
    .await;
    let r = cluster
        .b
        .call(
            Method::POST,
            "/v1/projects/alpha/steps/hello/schedules",
            Some(&cluster.admin),
            Some(json!({"cron": "* * * * * *", "input": {"name": "Tick"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_owned();
    let first = timestamp(&created["next_fire_times"][0]).timestamp_millis();

    // Both nodes see it; wait for TICKS ticks past the first, then pause.
    let mut i = 0;
    eventually(
        "the schedule fired for several seconds",
        Duration::from_secs(90),
        || {
            i += 1;
            let (cluster, id) = (&cluster, &id);
            async move {
                let s = schedule(cluster, i, id).await;
                s["last_fired_at"].is_string()
                    && timestamp(&s["last_fired_at"]).timestamp_millis() >= first + TICKS * 1000
            }
        },
    )
    .await;
    let r = cluster
        .a
        .call(
            Method::PATCH,
            &format!("/v1/projects/alpha/schedules/{id}"),
            Some(&cluster.admin),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let last = timestamp(&schedule(&cluster, 1, &id).await["last_fired_at"]).timestamp_millis();

    let mut conn = cluster.pg().await;
    let keys: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT run_trigger, idempotency_key FROM runs WHERE project = 'alpha'
         ORDER BY idempotency_key",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut ticks: Vec<i64> = keys
        .iter()
        .map(|(trigger, key)| {
            assert_eq!(trigger.as_deref(), Some("schedule"), "{keys:?}");
            let key = key.as_deref().unwrap();
            key.strip_prefix(&format!("schedule:{id}:"))
                .unwrap_or_else(|| panic!("{key}"))
                .parse()
                .unwrap()
        })
        .collect();
    ticks.sort_unstable();
    // Every second from the first tick to the last fired, each once (a
    // tick queued just before the pause may follow the last recorded one).
    let expected: Vec<i64> = (0..)
        .map(|n| first + n * 1000)
        .take_while(|t| *t <= last)
        .collect();
    assert!(expected.len() as i64 > TICKS, "{expected:?}");
    assert!(
        (expected.len()..=expected.len() + 1).contains(&ticks.len()),
        "one run per tick: {ticks:?}, expected {expected:?}"
    );
    let extra = ticks.len() - expected.len();
    assert_eq!(ticks[..expected.len()], expected[..], "{ticks:?}");
    if extra == 1 {
        assert_eq!(ticks[expected.len()], last + 1000, "{ticks:?}");
    }
    // And every run ran, on either node.
    eventually(
        "every scheduled run succeeded",
        Duration::from_secs(90),
        || {
            let url = cluster.url.clone();
            async move {
                use sqlx::Connection as _;
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                let open: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM runs WHERE project = 'alpha' AND status <> 'succeeded'",
                )
                .fetch_one(&mut conn)
                .await
                .unwrap();
                open == 0
            }
        },
    )
    .await;
}
