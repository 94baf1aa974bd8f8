//! Run records on SQLite.

use async_trait::async_trait;

use super::SqliteDatabase;
use crate::store::Result;
use crate::store::repo::RunRepo;
use crate::store::runs::{RunFilter, RunPoint, RunRecord};

const COLUMNS: &str = "id, project, step, digest, status, created_at, duration_ms, cpu_ticks, \
                       memory_peak_bytes, log_bytes, input, output, error, logs, http_calls, \
                       memory_kib_ms, http_response_bytes, attempts, \
                       external_user_id, rerun_of, started_at";

#[async_trait]
impl RunRepo for SqliteDatabase {
    async fn insert_run(&self, run: &RunRecord) -> Result<()> {
        let sql = format!(
            "INSERT INTO runs ({COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
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
        let mut insert = sqlx::QueryBuilder::new(format!("INSERT INTO runs ({COLUMNS}) "));
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
        let sql = format!("SELECT {COLUMNS} FROM runs WHERE project = ?1 AND id = ?2");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn list_runs(&self, project: &str, filter: &RunFilter) -> Result<Vec<RunRecord>> {
        let (before_at, before_id) = match &filter.before {
            Some((at, id)) => (Some(*at), Some(id.as_str())),
            None => (None, None),
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM runs WHERE project = ?1
                 AND (?2 IS NULL OR step = ?2)
                 AND (?3 IS NULL OR status = ?3)
                 AND (?4 IS NULL OR created_at < ?4 OR (created_at = ?4 AND id < ?5))
             ORDER BY created_at DESC, id DESC LIMIT ?6"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(filter.step.as_deref())
            .bind(filter.status.as_deref())
            .bind(before_at)
            .bind(before_id)
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await?)
    }

    async fn run_points(&self, project: &str, since_ms: i64, limit: u32) -> Result<Vec<RunPoint>> {
        Ok(sqlx::query_as(
            "SELECT created_at, status, duration_ms FROM runs
              WHERE project = ?1 AND created_at >= ?2
              ORDER BY created_at DESC, id DESC LIMIT ?3",
        )
        .bind(project)
        .bind(since_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delete_runs_before(&self, cutoff_ms: i64, batch: u32) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM runs WHERE rowid IN
                 (SELECT rowid FROM runs WHERE created_at < ?1
                      AND status NOT IN ('queued', 'running') LIMIT ?2)",
        )
        .bind(cutoff_ms)
        .bind(i64::from(batch))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
