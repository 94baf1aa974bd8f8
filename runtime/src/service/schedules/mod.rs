//! The scheduler: every node runs one task that queues the runs of due
//! cron schedules ([`crate::store::schedules`]), so schedules keep firing
//! while any node is up, and each tick fires once across all of them.
//!
//! A pass reads the enabled schedules due now; for each, it queues a run
//! through the queue ([`QueueStore::enqueue`], trigger `schedule`) under
//! the idempotency key `schedule:{id}:{tick}`, then advances the
//! schedule's next fire time by compare-and-set on the value it read. Two
//! nodes on one tick queue one run (the key is unique per project and
//! step) and one of them advances the row. Queue first, then advance: a
//! node that stops between the two leaves the tick due for the next pass,
//! which finds the run already queued instead of losing the tick.
//!
//! Missed ticks coalesce: a schedule found due several ticks late (every
//! node was down, or paused for a while) fires once, for the latest tick
//! not after now, and continues with the first tick after now. Catching up
//! on every missed tick would flood the queue after an outage with runs of
//! a moment that has passed. A paused schedule fires nothing while paused;
//! resuming it continues from the next tick after the resume.
//!
//! Wake-up: after a pass the task sleeps until the earliest next fire
//! time, but at most [`POLL`], so a schedule created or changed on another
//! node is seen within that.

pub mod spec;

use std::time::Duration;

use crate::store::queue::{Enqueued, NewQueuedRun, QueueStore};
use crate::store::schedules::{Advance, ScheduleRecord, ScheduleStore, TRIGGER_SCHEDULE};
use crate::store::{Db, Result};
use spec::Spec;

/// The longest the scheduler sleeps between passes.
pub const POLL: Duration = Duration::from_secs(1);
/// Schedules fired per pass at most (a pass that fires this many runs
/// another at once).
const BATCH: u32 = 100;
/// The shortest sleep, so a clock that steps back cannot make the loop spin.
const MIN_SLEEP: Duration = Duration::from_millis(10);

/// The scheduler task of this node; stops when the handle is aborted.
pub fn spawn(db: Db) -> tokio::task::JoinHandle<()> {
    let schedules = ScheduleStore::new(db.clone());
    let queue = QueueStore::new(db);
    tokio::spawn(async move {
        loop {
            let fired = match fire_due(&schedules, &queue, super::unix_millis()).await {
                Ok(fired) => fired,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fire due schedules; trying again");
                    0
                }
            };
            if fired >= BATCH as usize {
                continue;
            }
            let wait = match schedules.earliest().await {
                Ok(Some(at)) => {
                    let ms = u64::try_from(at.saturating_sub(super::unix_millis())).unwrap_or(0);
                    Duration::from_millis(ms).clamp(MIN_SLEEP, POLL)
                }
                Ok(None) => POLL,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the next schedule fire time");
                    POLL
                }
            };
            tokio::time::sleep(wait).await;
        }
    })
}

/// One pass at `now_ms`: fires every schedule due then (up to a batch);
/// how many were due.
pub async fn fire_due(schedules: &ScheduleStore, queue: &QueueStore, now_ms: i64) -> Result<usize> {
    let due = schedules.due(now_ms, BATCH).await?;
    for schedule in &due {
        fire(schedules, queue, schedule, now_ms).await?;
    }
    Ok(due.len())
}

/// Fires one due schedule: queues the run of its latest tick not after
/// `now_ms` and advances it past `now_ms`.
async fn fire(
    schedules: &ScheduleStore,
    queue: &QueueStore,
    schedule: &ScheduleRecord,
    now_ms: i64,
) -> Result<()> {
    let Some(expected) = schedule.next_fire_at else {
        return Ok(());
    };
    let spec = match Spec::parse(&schedule.cron, &schedule.timezone) {
        Ok(spec) => Some(spec),
        Err(e) => {
            // Stored while valid (a time zone the database no longer has?):
            // fire this tick and stop, rather than fail every pass.
            tracing::error!(project = %schedule.project, schedule_id = %schedule.id, error = %e,
                "a stored schedule does not parse; it fires no further");
            None
        }
    };
    // The latest tick not after now: older missed ones coalesce into it.
    let tick = spec
        .as_ref()
        .and_then(|s| s.latest_at_or_before(now_ms))
        .filter(|t| *t >= expected)
        .unwrap_or(expected);
    let next = spec.as_ref().and_then(|s| s.next_after(now_ms));
    let run = queued_run(schedule, tick, now_ms);
    let run_id = match queue.enqueue(&run).await? {
        Enqueued::New => run.id.clone(),
        // Another node fired this tick first (or this one stopped after
        // queueing): the tick's run exists.
        Enqueued::Existing { id, .. } => id,
    };
    let advanced = schedules
        .advance(&Advance {
            id: &schedule.id,
            expected,
            next,
            tick,
            run_id: &run_id,
        })
        .await?;
    if advanced {
        tracing::info!(project = %schedule.project, step = %schedule.step,
            schedule_id = %schedule.id, run_id = %run_id, tick, missed = tick > expected,
            "schedule fired");
    }
    Ok(())
}

/// The queued run of `schedule`'s `tick`: the one place it is built.
fn queued_run(schedule: &ScheduleRecord, tick: i64, now_ms: i64) -> NewQueuedRun {
    NewQueuedRun {
        id: uuid::Uuid::now_v7().to_string(),
        project: schedule.project.clone(),
        step: schedule.step.clone(),
        input: schedule.input.clone(),
        external_user_id: schedule.external_user_id.clone(),
        nostore: false,
        trigger: TRIGGER_SCHEDULE.to_owned(),
        // Also the step's `context.idempotency-key`: the same for every
        // attempt of this tick's run.
        idempotency_key: Some(tick_key(&schedule.id, tick)),
        request_hash: None,
        created_at: now_ms,
        not_before: now_ms,
        // A pinned schedule runs its version; `None`: the current one.
        digest: schedule.digest.clone(),
        rerun_of: None,
        callback_url: None,
    }
}

/// What every tick's idempotency key starts with; the API refuses it in
/// a caller's `Idempotency-Key`, so no caller can take a tick's key.
pub const KEY_PREFIX: &str = "schedule:";

/// The idempotency key of a schedule's tick.
pub fn tick_key(id: &str, tick_ms: i64) -> String {
    format!("{KEY_PREFIX}{id}:{tick_ms}")
}
