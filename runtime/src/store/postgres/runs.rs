//! [`RunRepo`] on PostgreSQL.
//!
//! Paging is by the cursor `(created_at, id)`, newest first, compared as a
//! row value so `runs_by_project_newest` serves both the filter and the
//! order. The retention sweep deletes the oldest runs first, in batches it
//! claims with `FOR UPDATE SKIP LOCKED`: two nodes sweeping at once delete
//! different runs instead of queueing on the same rows, and each batch is
//! one short statement so runs being recorded meanwhile hardly wait.

use async_trait::async_trait;

use super::PgDatabase;
use crate::store::Result;
use crate::store::repo::RunRepo;
use crate::store::runs::{RunFilter, RunPoint, RunRecord};

#[derive(sqlx::FromRow)]
struct RunRow {
    id: String,
    project: String,
    step: String,
    digest: String,
    status: String,
    created_at: i64,
    duration_ms: i64,
    cpu_ticks: i64,
    memory_peak_bytes: i64,
    log_bytes: i64,
    input: Option<String>,
    output: Option<String>,
    error: Option<String>,
    logs: Option<String>,
    http_calls: Option<String>,
    memory_kib_ms: i64,
    http_response_bytes: i64,
    attempts: i64,
    external_user_id: Option<String>,
    rerun_of: Option<String>,
    started_at: Option<i64>,
}

impl From<RunRow> for RunRecord {
    fn from(r: RunRow) -> Self {
        RunRecord {
            id: r.id,
            project: r.project,
            step: r.step,
            digest: r.digest,
            status: r.status,
            created_at: r.created_at,
            duration_ms: r.duration_ms,
            cpu_ticks: r.cpu_ticks,
            memory_peak_bytes: r.memory_peak_bytes,
            log_bytes: r.log_bytes,
            input: r.input,
            output: r.output,
            error: r.error,
            logs: r.logs,
            http_calls: r.http_calls,
            memory_kib_ms: r.memory_kib_ms,
            http_response_bytes: r.http_response_bytes,
            attempts: r.attempts,
            external_user_id: r.external_user_id,
            rerun_of: r.rerun_of,
            started_at: r.started_at,
        }
    }
}

macro_rules! run_columns {
    () => {
        "id, project, step, digest, status, created_at, duration_ms, cpu_ticks, \
         memory_peak_bytes, log_bytes, input, output, error, logs, http_calls, \
         memory_kib_ms, http_response_bytes, attempts, external_user_id, rerun_of, \
         started_at"
    };
}

#[async_trait]
impl RunRepo for PgDatabase {
    async fn insert_run(&self, run: &RunRecord) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO runs (",
            run_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
              $16, $17, $18, $19, $20, $21)"
        ))
        .bind(&run.id)
        .bind(&run.project)
        .bind(&run.step)
        .bind(&run.digest)
        .bind(&run.status)
        .bind(run.created_at)
        .bind(run.duration_ms)
        .bind(run.cpu_ticks)
        .bind(run.memory_peak_bytes)
        .bind(run.log_bytes)
        .bind(&run.input)
        .bind(&run.output)
        .bind(&run.error)
        .bind(&run.logs)
        .bind(&run.http_calls)
        .bind(run.memory_kib_ms)
        .bind(run.http_response_bytes)
        .bind(run.attempts)
        .bind(&run.external_user_id)
        .bind(&run.rerun_of)
        .bind(run.started_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn insert_runs(&self, runs: &[RunRecord]) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        // One statement for the batch: one commit, one round trip.
        let mut insert =
            sqlx::QueryBuilder::new(concat!("INSERT INTO runs (", run_columns!(), ") "));
        insert.push_values(runs, |mut row, run| {
            row.push_bind(&run.id)
                .push_bind(&run.project)
                .push_bind(&run.step)
                .push_bind(&run.digest)
                .push_bind(&run.status)
                .push_bind(run.created_at)
                .push_bind(run.duration_ms)
                .push_bind(run.cpu_ticks)
                .push_bind(run.memory_peak_bytes)
                .push_bind(run.log_bytes)
                .push_bind(&run.input)
                .push_bind(&run.output)
                .push_bind(&run.error)
                .push_bind(&run.logs)
                .push_bind(&run.http_calls)
                .push_bind(run.memory_kib_ms)
                .push_bind(run.http_response_bytes)
                .push_bind(run.attempts)
                .push_bind(&run.external_user_id)
                .push_bind(&run.rerun_of)
                .push_bind(run.started_at);
        });
        insert.build().execute(&self.pool).await?;
        Ok(())
    }

    async fn get_run(&self, project: &str, id: &str) -> Result<Option<RunRecord>> {
        let row: Option<RunRow> = sqlx::query_as(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE project = $1 AND id = $2"
        ))
        .bind(project)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(RunRecord::from))
    }

    async fn list_runs(&self, project: &str, filter: &RunFilter) -> Result<Vec<RunRecord>> {
        let (before_at, before_id) = match &filter.before {
            Some((at, id)) => (Some(*at), Some(id.as_str())),
            None => (None, None),
        };
        let rows: Vec<RunRow> = sqlx::query_as(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE project = $1
                AND ($2::TEXT IS NULL OR step = $2)
                AND ($3::TEXT IS NULL OR status = $3)
                AND ($4::BIGINT IS NULL OR (created_at, id) < ($4, $5::TEXT))
              ORDER BY created_at DESC, id DESC LIMIT $6"
        ))
        .bind(project)
        .bind(filter.step.as_deref())
        .bind(filter.status.as_deref())
        .bind(before_at)
        .bind(before_id)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(RunRecord::from).collect())
    }

    async fn run_points(&self, project: &str, since_ms: i64, limit: u32) -> Result<Vec<RunPoint>> {
        Ok(sqlx::query_as(
            "SELECT created_at, status, duration_ms FROM runs
              WHERE project = $1 AND created_at >= $2
              ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(project)
        .bind(since_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delete_runs_before(&self, cutoff_ms: i64, batch: u32) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM runs WHERE id IN (
                 SELECT id FROM runs WHERE created_at < $1
                     AND status NOT IN ('queued', 'running')
                 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(cutoff_ms)
        .bind(i64::from(batch))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
