//! Cron schedules of `airlock serve`: each one queues a run of a step at
//! every fire time of its cron expression, in its time zone. Same database
//! as every other store; the scheduler ([`crate::service::schedules`])
//! fires them from every node.
//!
//! What makes a tick fire once across nodes: a schedule's row holds its
//! next fire time; a node that finds it due queues the run with the
//! idempotency key `schedule:{id}:{tick}` (unique per project and step in
//! the run table, so two nodes racing on one tick get one run) and then
//! advances the fire time by compare-and-set on the value it read (only one
//! node moves it). Queue first, then advance: a node that dies between the
//! two leaves the tick due, and whichever node sees it next finds the run
//! already queued under the key.

use super::{Db, Result};

/// The run table's `run_trigger` of a scheduled run (the step's
/// `context.trigger` says `api`: the WIT enum has no `schedule` case, and
/// adding one would break components built against it).
pub const TRIGGER_SCHEDULE: &str = "schedule";

/// Most schedules one project may have.
pub const MAX_SCHEDULES_PER_PROJECT: i64 = 1000;

/// One schedule. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ScheduleRecord {
    /// `sch_` and 16 hex digits.
    pub id: String,
    pub project: String,
    pub step: String,
    /// 5 or 6 fields ([`crate::service::schedules::spec`]).
    pub cron: String,
    /// An IANA time zone name.
    pub timezone: String,
    /// JSON text: every run's input.
    pub input: String,
    /// The version its runs are pinned to; `None`: the step's current one.
    pub digest: Option<String>,
    pub external_user_id: Option<String>,
    pub enabled: bool,
    /// The next tick; `None` when the expression has no further fire time.
    pub next_fire_at: Option<i64>,
    /// The tick that fired last (a coalesced tick: the latest one missed).
    pub last_fired_at: Option<i64>,
    /// The run queued by that tick.
    pub last_run_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A tick a node fired: advance `id` from `expected` (the next fire time it
/// read) to `next`, recording `tick` and `run_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advance<'a> {
    pub id: &'a str,
    pub expected: i64,
    pub next: Option<i64>,
    pub tick: i64,
    pub run_id: &'a str,
}

/// The schedule table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ScheduleStore {
    db: Db,
}

impl ScheduleStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Stores `record` unless its project has [`MAX_SCHEDULES_PER_PROJECT`]
    /// (counted and inserted atomically); `false`, storing nothing, then.
    pub async fn create(&self, record: &ScheduleRecord) -> Result<bool> {
        self.db
            .insert_schedule(record, MAX_SCHEDULES_PER_PROJECT)
            .await
    }

    pub async fn get(&self, project: &str, id: &str) -> Result<Option<ScheduleRecord>> {
        self.db.get_schedule(project, id).await
    }

    /// The project's schedules (of one step if `step`), oldest first.
    pub async fn list(&self, project: &str, step: Option<&str>) -> Result<Vec<ScheduleRecord>> {
        self.db.list_schedules(project, step).await
    }

    /// Writes `record`'s cron, time zone, input, `enabled` and
    /// `updated_at`, and its `next_fire_at` when `reschedule`; `false` when
    /// it is gone.
    pub async fn update(&self, record: &ScheduleRecord, reschedule: bool) -> Result<bool> {
        self.db.update_schedule(record, reschedule).await
    }

    pub async fn delete(&self, project: &str, id: &str) -> Result<bool> {
        self.db.delete_schedule(project, id).await
    }

    /// Deletes every schedule of a step (when the step is deleted).
    pub async fn delete_for_step(&self, project: &str, step: &str) -> Result<u64> {
        self.db.delete_schedules_of_step(project, step).await
    }

    /// Enabled schedules due at `now_ms`, most overdue first, at most `limit`.
    pub async fn due(&self, now_ms: i64, limit: u32) -> Result<Vec<ScheduleRecord>> {
        self.db.due_schedules(now_ms, limit).await
    }

    /// The earliest next fire time of any enabled schedule.
    pub async fn earliest(&self) -> Result<Option<i64>> {
        self.db.earliest_schedule_fire().await
    }

    /// Advances a fired schedule if nobody did meanwhile; `true` if this
    /// call did.
    pub async fn advance(&self, advance: &Advance<'_>) -> Result<bool> {
        self.db.advance_schedule(advance).await
    }
}

/// A new schedule id: `sch_` and 16 hex digits (64 random bits).
pub fn new_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)?;
    Ok(format!("sch_{}", hex::encode(bytes)))
}

/// Whether `id` has the form of a schedule id.
pub fn is_schedule_id(id: &str) -> bool {
    id.strip_prefix("sch_")
        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}
