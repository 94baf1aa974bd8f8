//! The run queue: queued runs are rows of the `runs` table, in the same
//! database as every other store (SQLite on one node, PostgreSQL across
//! nodes; no broker).
//!
//! A row's life: `queued` (written durably before the API answers 202) →
//! `running` (claimed by one worker, which holds a lease until
//! `lease_until` and renews it) → `succeeded`, `failed` or `cancelled`
//! (finished in place, only by the worker holding the lease of that
//! attempt). A worker that dies leaves its lease to expire; the reaper then
//! puts the row back to `queued`, and the next claim counts attempt + 1.
//! Each claim is one atomic statement (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL), so an attempt starts exactly once; a run whose node died
//! mid-run runs again, so execution is at least once.

use std::time::Duration;

use super::repo::Change;
use super::runs::RunRecord;
use super::{Db, Result, cache};

/// What started a queued run, as stored.
pub const TRIGGER_API: &str = "api";
pub const TRIGGER_HTTP: &str = "http";

/// Attempts after which a run whose node keeps dying is failed instead of
/// queued again (a run that crashes its host must not loop forever).
pub const MAX_LEASE_ATTEMPTS: i64 = 5;

/// A run to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQueuedRun {
    pub id: String,
    pub project: String,
    pub step: String,
    /// JSON text; kept until the run finishes even for a `nostore` run (it
    /// must be run), then dropped for `nostore`.
    pub input: String,
    pub external_user_id: Option<String>,
    pub nostore: bool,
    /// [`TRIGGER_API`] or [`TRIGGER_HTTP`].
    pub trigger: String,
    pub idempotency_key: Option<String>,
    /// SHA-256 (hex) of what was asked, to tell a retry from a different
    /// request under the same key.
    pub request_hash: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Not claimed before this (Unix milliseconds).
    pub not_before: i64,
    /// Run this stored version (a pinned trigger, a re-run); `None`: the
    /// step's current version when each attempt starts.
    pub digest: Option<String>,
    /// The recorded run this one re-runs.
    pub rerun_of: Option<String>,
    /// Where the run's outcome is posted when it finishes (checked by the
    /// API; see `service::callbacks`).
    pub callback_url: Option<String>,
}

/// What queueing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// The row was written.
    New,
    /// A run with the same idempotency key exists: nothing was written.
    Existing {
        id: String,
        status: String,
        request_hash: Option<String>,
    },
}

/// A run a worker claimed: what running it needs.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimedRun {
    pub id: String,
    pub project: String,
    pub step: String,
    pub input: String,
    pub external_user_id: Option<String>,
    pub nostore: bool,
    pub trigger: String,
    pub idempotency_key: Option<String>,
    /// This attempt's number (1 for the first).
    pub attempt: i64,
    /// The pinned version, if the run was queued with one.
    pub digest: Option<String>,
}

/// Caps on queued runs starting, for one step or one project; `None`
/// caps nothing. A start cap is `max_starts` per `per_secs` seconds
/// (both or neither).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct QueueCaps {
    /// Runs running at once.
    pub max_running: Option<i64>,
    /// Runs started per window.
    pub max_starts: Option<i64>,
    /// The window of `max_starts`, in seconds.
    pub per_secs: Option<i64>,
}

impl QueueCaps {
    /// Whether anything is capped.
    pub fn any(&self) -> bool {
        self.max_running.is_some() || self.start_cap().is_some()
    }

    /// `(max_starts, window in ms)` when a start cap applies.
    pub fn start_cap(&self) -> Option<(i64, i64)> {
        match (self.max_starts, self.per_secs) {
            (Some(n), Some(secs)) => Some((n, secs.saturating_mul(1000))),
            _ => None,
        }
    }
}

/// Longest start-rate window (a day): starts older than this are pruned.
pub const MAX_WINDOW_SECS: i64 = 86_400;

/// What claiming in one group found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupClaim {
    /// A run was claimed.
    Claimed(Box<ClaimedRun>),
    /// A cap of the step or its project is reached: try other steps.
    Capped,
    /// No due run of the step was free (another worker took it).
    Empty,
}

/// An attempt that failed and will be tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryAt<'a> {
    pub id: &'a str,
    pub owner: &'a str,
    pub attempt: i64,
    /// Due again at (Unix milliseconds).
    pub not_before: i64,
    /// JSON object appended to the run's `attempt_history`.
    pub summary: &'a str,
}

/// What renewing a lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Still ours, renewed.
    Held,
    /// Still ours, renewed, and someone asked to cancel the run.
    CancelRequested,
    /// No longer ours (it expired and was re-queued): stop the attempt.
    Lost,
}

/// What a cancel request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancel {
    /// It was queued: it is `cancelled` now and will never run.
    Cancelled,
    /// It is running: its worker stops it (status `cancelled` once it has).
    Requested,
    /// It had finished already, with this status.
    Finished(String),
    NotFound,
}

/// The queue over the run table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct QueueStore {
    db: Db,
}

impl QueueStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Writes the run `queued` (committed before this returns) and wakes
    /// the workers of every node.
    pub async fn enqueue(&self, run: &NewQueuedRun) -> Result<Enqueued> {
        let outcome = self.db.enqueue_run(run).await?;
        if outcome == Enqueued::New {
            cache::publish(&self.db, Change::RunQueued).await;
        }
        Ok(outcome)
    }

    /// Tells the workers of every node to look for work (a capped step's
    /// run finished, so one of its queued runs may start now).
    pub async fn nudge(&self) {
        cache::publish(&self.db, Change::RunQueued).await;
    }

    /// Cancels run `id` of `project`: a queued one at once; a running one
    /// is flagged and its node told (by the change bus, with the lease
    /// renewal as the fallback).
    pub async fn cancel(&self, project: &str, id: &str) -> Result<Cancel> {
        let outcome = self.db.cancel_run(project, id).await?;
        if outcome == Cancel::Requested {
            cache::publish(&self.db, Change::RunCancel(id.to_owned())).await;
        }
        Ok(outcome)
    }

    /// Claims the oldest due run for `owner`, leased for `lease`.
    pub async fn claim(&self, owner: &str, lease: Duration) -> Result<Option<ClaimedRun>> {
        self.db
            .claim_run(owner, super::unix_millis(), millis(lease))
            .await
    }

    /// Extends `owner`'s lease of attempt `attempt` by `lease` from now.
    pub async fn renew(
        &self,
        id: &str,
        owner: &str,
        attempt: i64,
        lease: Duration,
    ) -> Result<Lease> {
        let until = super::unix_millis().saturating_add(millis(lease));
        self.db.renew_run_lease(id, owner, attempt, until).await
    }

    /// Stores the outcome of `owner`'s attempt `attempt`; `false` (nothing
    /// written) if the lease was lost meanwhile.
    pub async fn finish(&self, record: &RunRecord, owner: &str, attempt: i64) -> Result<bool> {
        self.db.finish_run(record, owner, attempt).await
    }

    /// The step of the oldest due run, skipping the steps in `skip`
    /// (`(project, step)` pairs found capped this round), so a capped step
    /// never holds up the runs of others behind it.
    pub async fn next_due_step(
        &self,
        skip: &[(String, String)],
    ) -> Result<Option<(String, String)>> {
        self.db.next_due_step(super::unix_millis(), skip).await
    }

    /// Claims the oldest due run of `project`/`step` for `owner` unless the
    /// step's caps (`step_caps`, from its manifest) or its project's
    /// ([`Self::project_caps`]) are reached. Under a cap the check and the
    /// claim are one transaction serialised per capped step and project
    /// (an advisory lock on PostgreSQL, the write lock on SQLite), so nodes
    /// claiming at once never exceed it.
    pub async fn claim_step(
        &self,
        owner: &str,
        lease: Duration,
        project: &str,
        step: &str,
        step_caps: &QueueCaps,
    ) -> Result<GroupClaim> {
        self.db
            .claim_step_run(
                owner,
                super::unix_millis(),
                millis(lease),
                project,
                step,
                step_caps,
            )
            .await
    }

    /// Puts `owner`'s failed attempt back in the queue, due at
    /// `retry.not_before`, its summary appended to the run's history;
    /// `false` (nothing written) when the lease was lost or a cancel was
    /// asked meanwhile.
    pub async fn retry(&self, retry: &RetryAt<'_>) -> Result<bool> {
        self.db.retry_run(retry).await
    }

    /// The summaries of run `id`'s failed attempts that were retried (a
    /// JSON array), if it has any.
    pub async fn attempt_history(&self, project: &str, id: &str) -> Result<Option<String>> {
        self.db.run_attempt_history(project, id).await
    }

    /// Sets `project`'s caps (all `None`: none).
    pub async fn set_project_caps(&self, project: &str, caps: &QueueCaps) -> Result<()> {
        self.db.set_project_queue_caps(project, caps).await
    }

    /// `project`'s caps (all `None` when it has none).
    pub async fn project_caps(&self, project: &str) -> Result<QueueCaps> {
        self.db.project_queue_caps(project).await
    }

    /// Forgets starts older than the longest window; how many.
    pub async fn prune_starts(&self) -> Result<u64> {
        let before = super::unix_millis().saturating_sub(MAX_WINDOW_SECS * 1000);
        self.db.prune_run_starts(before).await
    }

    /// Puts runs whose lease expired back in the queue; how many.
    pub async fn reap(&self) -> Result<u64> {
        self.db
            .requeue_expired_runs(super::unix_millis(), MAX_LEASE_ATTEMPTS)
            .await
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The lease a renewal found: `None` when the row is no longer ours.
pub(crate) fn lease_of(cancel_requested: Option<bool>) -> Lease {
    match cancel_requested {
        None => Lease::Lost,
        Some(true) => Lease::CancelRequested,
        Some(false) => Lease::Held,
    }
}

/// What a cancel found, by the status it left.
pub(crate) fn cancel_of(status: &str) -> Cancel {
    if status == "cancelled" {
        Cancel::Cancelled
    } else {
        Cancel::Requested
    }
}

/// The stored error of a run failed because its node stopped during each
/// of its `attempts` attempts.
pub(crate) fn lost_error(attempts: i64) -> String {
    serde_json::json!({
        "kind": "internal",
        "message": format!(
            "the run was started {attempts} times and its node stopped during each attempt"
        ),
    })
    .to_string()
}
