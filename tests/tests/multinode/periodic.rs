//! Periodic work runs once per tick across nodes: both nodes sweep old run
//! records every second, and each second's sweep is done by one of them.

use std::time::Duration;

use serde_json::Value;

use super::support::{Cluster, eventually};

/// The retention job's last claimed tick, from the `ticks` table.
async fn last_tick(c: &Cluster) -> Option<i64> {
    let mut conn = c.pg().await;
    sqlx::query_scalar("SELECT tick_ms FROM ticks WHERE job = 'retention'")
        .fetch_optional(&mut conn)
        .await
        .unwrap()
}

/// What one node's JSON log says about retention: the sweep at start, the
/// ticks it swept (`tick_ms` of the job's span), and how many ticks it
/// found claimed by the other node.
struct Sweeps {
    at_start: usize,
    ticks: Vec<i64>,
    lost: usize,
}

fn sweeps(stderr: &str) -> Sweeps {
    let mut s = Sweeps {
        at_start: 0,
        ticks: Vec::new(),
        lost: 0,
    };
    for line in stderr.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
        let message = v["fields"]["message"].as_str().unwrap_or_default();
        if message == "retention: deleted old run records" {
            match v["span"]["tick_ms"].as_i64() {
                Some(tick) => {
                    assert_eq!(v["span"]["name"], "tick", "{line}");
                    assert_eq!(v["span"]["job"], "retention", "{line}");
                    s.ticks.push(tick);
                }
                None => s.at_start += 1,
            }
        } else if message == "tick claimed by another node" && v["fields"]["job"] == "retention" {
            s.lost += 1;
        }
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_retention_tick_is_swept_by_one_node() {
    let mut c = Cluster::start_with(|b| {
        b.args(&["--retention-days", "1", "--retention-interval-secs", "1"])
            .env("AIRLOCK_LOG_FORMAT", "json")
            .env(
                "AIRLOCK_LOG",
                "warn,airlock_runtime=info,airlock_runtime::server::periodic=debug",
            )
            .capture_stderr()
    })
    .await;
    // Four ticks past the first one either node claimed.
    eventually("a node claims a tick", Duration::from_secs(30), || async {
        last_tick(&c).await.is_some()
    })
    .await;
    let first = last_tick(&c).await.unwrap();
    eventually(
        "the nodes sweep four more ticks",
        Duration::from_secs(30),
        || async { last_tick(&c).await.is_some_and(|t| t >= first + 4_000) },
    )
    .await;
    let (a, b) = (
        sweeps(&c.a.stop_and_stderr()),
        sweeps(&c.b.stop_and_stderr()),
    );
    // Read after both stopped: a tick claimed while they were stopping counts.
    let last = last_tick(&c).await.unwrap();

    // Each node sweeps once at start, before it listens, outside any tick
    // (as `server::retention` says); this also shows the logs were read.
    assert_eq!((a.at_start, b.at_start), (1, 1));
    // No tick was swept twice: fails if a node sweeps a tick it did not
    // claim, or if both can claim one (each would sweep every tick).
    let mut all: Vec<i64> = a.ticks.iter().chain(&b.ticks).copied().collect();
    all.sort_unstable();
    let swept = all.len();
    all.dedup();
    assert_eq!(
        all.len(),
        swept,
        "a tick swept twice: A {:?}, B {:?}",
        a.ticks,
        b.ticks
    );
    // Five ticks passed; one may be missed by both on a busy machine.
    assert!(swept >= 4, "ticks swept: A {:?}, B {:?}", a.ticks, b.ticks);
    assert!(
        all.iter().all(|t| t % 1_000 == 0 && *t <= last),
        "{all:?}, last {last}"
    );
    // Both nodes took part: the one that came second to a tick found it
    // claimed (without this the test could pass with one node ticking).
    assert!(a.lost + b.lost >= 2, "A lost {}, B lost {}", a.lost, b.lost);
}
