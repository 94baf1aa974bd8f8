//! Periodic jobs that must run once per tick across every node sharing the
//! database: each node wakes at every tick, and only the node that claims
//! the tick ([`CoordinationRepo::claim_tick`](crate::store::repo::CoordinationRepo::claim_tick))
//! does the work.
//!
//! Why claim a tick rather than hold a lock for the job: a lock held while
//! the job runs only stops two nodes running it *at once*; a node whose
//! clock wakes a moment later would run it again in the same tick. A tick
//! claimed by a conditional upsert is done once, by exactly one node, and a
//! node that dies mid-job loses only that tick (the next one runs). Ticks
//! are aligned to multiples of the interval since the Unix epoch, so every
//! node names the same tick. A job runs inside a span `tick` naming the job
//! and its tick (`tick_ms`), so the logs of all nodes show which node did
//! which tick, and a tick done twice is visible.

use std::future::Future;
use std::time::Duration;

use tracing::Instrument as _;

use crate::store::Db;

fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The start of the tick of `interval` that `now_ms` falls in.
pub fn tick_of(now_ms: i64, interval: Duration) -> i64 {
    let every = i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    now_ms - now_ms.rem_euclid(every)
}

/// Runs `job` at every tick of `interval` that this node claims. A failed
/// claim or job is logged; the next tick tries again.
pub fn spawn<F, Fut>(
    db: Db,
    name: &'static str,
    interval: Duration,
    job: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let tick = tick_of(unix_millis(), interval);
            match db.claim_tick(name, tick).await {
                Ok(true) => {
                    job()
                        .instrument(tracing::info_span!("tick", job = name, tick_ms = tick))
                        .await
                }
                Ok(false) => tracing::debug!(job = name, "tick claimed by another node"),
                Err(e) => tracing::error!(job = name, error = %e, "cannot claim the tick"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_align_to_the_interval() {
        let hour = Duration::from_secs(3600);
        assert_eq!(tick_of(3_600_000 * 5 + 17, hour), 3_600_000 * 5);
        assert_eq!(tick_of(3_600_000 * 5, hour), 3_600_000 * 5);
        assert_eq!(tick_of(3_599_999, hour), 0);
    }
}
