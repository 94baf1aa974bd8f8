//! [`QueueRepo`] on PostgreSQL: many nodes claim from one table. A claim
//! locks the oldest due row with `FOR UPDATE SKIP LOCKED` inside the
//! `UPDATE` that takes it, so concurrent workers each take a different row
//! without waiting on one another; every other method is one conditional
//! statement on the row, fenced by the lease owner and attempt number.

use async_trait::async_trait;

use super::PgDatabase;
use crate::store::queue::{
    Cancel, ClaimedRun, Enqueued, GroupClaim, Lease, NewQueuedRun, QueueCaps, RetryAt,
};
use crate::store::repo::QueueRepo;
use crate::store::runs::RunRecord;
use crate::store::{Result, StoreError};

const CLAIMED: &str = "id, project, step, COALESCE(input, 'null') AS input, external_user_id, \
                       nostore, COALESCE(run_trigger, 'api') AS \"trigger\", idempotency_key, \
                       attempts AS attempt, pinned_digest AS digest";

#[async_trait]
impl QueueRepo for PgDatabase {
    async fn enqueue_run(&self, run: &NewQueuedRun) -> Result<Enqueued> {
        let inserted = sqlx::query(
            "INSERT INTO runs (id, project, step, digest, status, created_at, duration_ms,
                 cpu_ticks, memory_peak_bytes, log_bytes, input, attempts, run_trigger,
                 external_user_id, nostore, idempotency_key, request_hash, not_before,
                 pinned_digest, rerun_of, callback_url)
             VALUES ($1, $2, $3, '', 'queued', $4, 0, 0, 0, 0, $5, 0, $6, $7, $8, $9, $10, $11,
                 $12, $13, $14)
             ON CONFLICT DO NOTHING",
        )
        .bind(&run.id)
        .bind(&run.project)
        .bind(&run.step)
        .bind(run.created_at)
        .bind(&run.input)
        .bind(&run.trigger)
        .bind(&run.external_user_id)
        .bind(run.nostore)
        .bind(&run.idempotency_key)
        .bind(&run.request_hash)
        .bind(run.not_before)
        .bind(&run.digest)
        .bind(&run.rerun_of)
        .bind(&run.callback_url)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Enqueued::New);
        }
        let existing: Option<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, status, request_hash FROM runs
             WHERE project = $1 AND step = $2 AND idempotency_key = $3",
        )
        .bind(&run.project)
        .bind(&run.step)
        .bind(&run.idempotency_key)
        .fetch_optional(&self.pool)
        .await?;
        match existing {
            Some((id, status, request_hash)) => Ok(Enqueued::Existing {
                id,
                status,
                request_hash,
            }),
            None => Err(StoreError::Contended {
                what: "a queued run's id (already taken)",
            }),
        }
    }

    async fn claim_run(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<ClaimedRun>> {
        let sql = format!(
            "UPDATE runs SET status = 'running', attempts = attempts + 1,
                 lease_owner = $1, lease_until = $2 + $3, started_at = $2
             WHERE id = (SELECT id FROM runs WHERE status = 'queued' AND not_before <= $2
                         ORDER BY not_before, id LIMIT 1
                         FOR UPDATE SKIP LOCKED)
               AND status = 'queued'
             RETURNING {CLAIMED}"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(now_ms)
            .bind(lease_ms)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn renew_run_lease(
        &self,
        id: &str,
        owner: &str,
        attempt: i64,
        until_ms: i64,
    ) -> Result<Lease> {
        let cancel: Option<bool> = sqlx::query_scalar(
            "UPDATE runs SET lease_until = $4
             WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running'
             RETURNING cancel_requested",
        )
        .bind(id)
        .bind(owner)
        .bind(attempt)
        .bind(until_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(super::super::queue::lease_of(cancel))
    }

    // `lease_owner` stays: the node that ran the run last.
    async fn finish_run(&self, r: &RunRecord, owner: &str, attempt: i64) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE runs SET status = $4, digest = $5, duration_ms = $6, cpu_ticks = $7,
                 memory_peak_bytes = $8, log_bytes = $9, input = $10, output = $11,
                 error = $12, logs = $13, http_calls = $14,
                 memory_kib_ms = $15, http_response_bytes = $16,
                 lease_until = NULL, not_before = NULL
             WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running'",
        )
        .bind(&r.id)
        .bind(owner)
        .bind(attempt)
        .bind(&r.status)
        .bind(&r.digest)
        .bind(r.duration_ms)
        .bind(r.cpu_ticks)
        .bind(r.memory_peak_bytes)
        .bind(r.log_bytes)
        .bind(&r.input)
        .bind(&r.output)
        .bind(&r.error)
        .bind(&r.logs)
        .bind(&r.http_calls)
        .bind(r.memory_kib_ms)
        .bind(r.http_response_bytes)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn requeue_expired_runs(&self, now_ms: i64, max_attempts: i64) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE runs SET
                 status = CASE WHEN cancel_requested THEN 'cancelled'
                               WHEN attempts >= $2 THEN 'failed' ELSE 'queued' END,
                 error = CASE WHEN NOT cancel_requested AND attempts >= $2 THEN $3
                              ELSE error END,
                 input = CASE WHEN nostore AND (cancel_requested OR attempts >= $2) THEN NULL
                              ELSE input END,
                 not_before = $1, lease_owner = NULL, lease_until = NULL
             WHERE status = 'running' AND lease_until < $1",
        )
        .bind(now_ms)
        .bind(max_attempts)
        .bind(super::super::queue::lost_error(max_attempts))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn cancel_run(&self, project: &str, id: &str) -> Result<Cancel> {
        let status: Option<String> = sqlx::query_scalar(
            "UPDATE runs SET
                 status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
                 input = CASE WHEN status = 'queued' AND nostore THEN NULL ELSE input END,
                 cancel_requested = TRUE
             WHERE project = $1 AND id = $2 AND status IN ('queued', 'running')
             RETURNING status",
        )
        .bind(project)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(status) = status {
            return Ok(super::super::queue::cancel_of(&status));
        }
        let finished: Option<String> =
            sqlx::query_scalar("SELECT status FROM runs WHERE project = $1 AND id = $2")
                .bind(project)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(finished.map_or(Cancel::NotFound, Cancel::Finished))
    }

    async fn next_due_step(
        &self,
        now_ms: i64,
        skip: &[(String, String)],
    ) -> Result<Option<(String, String)>> {
        let mut q = sqlx::QueryBuilder::new(
            "SELECT project, step FROM runs WHERE status = 'queued' AND not_before <= ",
        );
        q.push_bind(now_ms);
        for (project, step) in skip {
            q.push(" AND NOT (project = ")
                .push_bind(project)
                .push(" AND step = ")
                .push_bind(step)
                .push(")");
        }
        q.push(" ORDER BY not_before, id LIMIT 1");
        Ok(q.build_query_as().fetch_optional(&self.pool).await?)
    }

    // Uncapped: one `SKIP LOCKED` claim, as `claim_run`. Capped: one
    // transaction holding the advisory lock of each capped scope (the
    // project's first, then the step's, so two claimers never wait on each
    // other in a cycle). Under READ COMMITTED each statement sees every
    // claim committed before it, and every claim that could change the
    // counts waits for the lock, so the counts cannot go stale before this
    // claim commits.
    async fn claim_step_run(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        project: &str,
        step: &str,
        step_caps: &QueueCaps,
    ) -> Result<GroupClaim> {
        let mut tx = self.pool.begin().await?;
        let project_caps: QueueCaps = sqlx::query_as(
            "SELECT max_running, max_starts, per_secs FROM project_queue_limits
             WHERE project = $1",
        )
        .bind(project)
        .fetch_optional(&mut *tx)
        .await?
        .unwrap_or_default();
        if project_caps.any() {
            lock(&mut tx, &format!("queue-cap:{project}")).await?;
        }
        if step_caps.any() {
            lock(&mut tx, &format!("queue-cap:{project}/{step}")).await?;
        }
        if step_caps.any() || project_caps.any() {
            let step_full = capped(&mut tx, now_ms, project, Some(step), step_caps).await?;
            if step_full || capped(&mut tx, now_ms, project, None, &project_caps).await? {
                return Ok(GroupClaim::Capped);
            }
        }
        let sql = format!(
            "UPDATE runs SET status = 'running', attempts = attempts + 1,
                 lease_owner = $1, lease_until = $2 + $3, started_at = $2
             WHERE id = (SELECT id FROM runs WHERE status = 'queued' AND not_before <= $2
                             AND project = $4 AND step = $5
                         ORDER BY not_before, id LIMIT 1
                         FOR UPDATE SKIP LOCKED)
               AND status = 'queued'
             RETURNING {CLAIMED}"
        );
        let claimed: Option<ClaimedRun> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(now_ms)
            .bind(lease_ms)
            .bind(project)
            .bind(step)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(run) = claimed else {
            return Ok(GroupClaim::Empty);
        };
        if step_caps.start_cap().is_some() || project_caps.start_cap().is_some() {
            sqlx::query("INSERT INTO run_starts (project, step, started_at) VALUES ($1, $2, $3)")
                .bind(project)
                .bind(step)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(GroupClaim::Claimed(Box::new(run)))
    }

    async fn retry_run(&self, r: &RetryAt<'_>) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE runs SET status = 'queued', not_before = $4,
                 lease_owner = NULL, lease_until = NULL,
                 attempt_history = (COALESCE(attempt_history, '[]')::jsonb
                     || jsonb_build_array($5::jsonb))::text
             WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running'
                 AND NOT cancel_requested",
        )
        .bind(r.id)
        .bind(r.owner)
        .bind(r.attempt)
        .bind(r.not_before)
        .bind(r.summary)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn run_attempt_history(&self, project: &str, id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar::<_, Option<String>>(
            "SELECT attempt_history FROM runs WHERE project = $1 AND id = $2",
        )
        .bind(project)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    async fn set_project_queue_caps(&self, project: &str, caps: &QueueCaps) -> Result<()> {
        if *caps == QueueCaps::default() {
            sqlx::query("DELETE FROM project_queue_limits WHERE project = $1")
                .bind(project)
                .execute(&self.pool)
                .await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO project_queue_limits (project, max_running, max_starts, per_secs)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (project) DO UPDATE SET max_running = excluded.max_running,
                 max_starts = excluded.max_starts, per_secs = excluded.per_secs",
        )
        .bind(project)
        .bind(caps.max_running)
        .bind(caps.max_starts)
        .bind(caps.per_secs)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn project_queue_caps(&self, project: &str) -> Result<QueueCaps> {
        Ok(sqlx::query_as(
            "SELECT max_running, max_starts, per_secs FROM project_queue_limits
             WHERE project = $1",
        )
        .bind(project)
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or_default())
    }

    async fn prune_run_starts(&self, before_ms: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM run_starts WHERE started_at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

async fn lock(tx: &mut Tx, name: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(super::coordination::advisory_key(name))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Whether `caps` of `project` (of its `step`, if given) are reached at
/// `now_ms`: as many running, or as many started in the window.
async fn capped(
    tx: &mut Tx,
    now_ms: i64,
    project: &str,
    step: Option<&str>,
    caps: &QueueCaps,
) -> Result<bool> {
    if let Some(max) = caps.max_running {
        let running: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM runs WHERE status = 'running' AND project = $1
                 AND ($2::text IS NULL OR step = $2)",
        )
        .bind(project)
        .bind(step)
        .fetch_one(&mut **tx)
        .await?;
        if running >= max {
            return Ok(true);
        }
    }
    if let Some((max, window_ms)) = caps.start_cap() {
        let started: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM run_starts WHERE project = $1
                 AND ($2::text IS NULL OR step = $2) AND started_at > $3",
        )
        .bind(project)
        .bind(step)
        .bind(now_ms.saturating_sub(window_ms))
        .fetch_one(&mut **tx)
        .await?;
        if started >= max {
            return Ok(true);
        }
    }
    Ok(false)
}
