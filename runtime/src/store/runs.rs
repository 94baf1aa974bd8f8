//! Run records of `airlock serve`. Same database and pool as the
//! [`SecretStore`]. Everything stored here was masked by the engine before it
//! arrived, except the input, which is the caller's own data; a `nostore` run
//! keeps metadata only.

use sqlx::Row as _;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::{Result, SecretStore};

/// One run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: String,
    pub project: String,
    pub step: String,
    pub digest: String,
    /// `succeeded` or `failed`.
    pub status: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub duration_ms: i64,
    pub cpu_ticks: i64,
    pub memory_peak_bytes: i64,
    pub log_bytes: i64,
    /// JSON text; `None` for a `nostore` run.
    pub input: Option<String>,
    /// JSON text; `None` for a failed or `nostore` run.
    pub output: Option<String>,
    /// JSON text `{kind, message}`; `None` for a succeeded or `nostore` run.
    pub error: Option<String>,
    /// JSON array of log lines; `None` for a `nostore` run.
    pub logs: Option<String>,
    /// JSON array of outbound call summaries; `None` for a `nostore` run.
    pub http_calls: Option<String>,
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub step: Option<String>,
    pub status: Option<String>,
    /// Only runs older than this `(created_at, id)`.
    pub before: Option<(i64, String)>,
    pub limit: u32,
}

/// Rows one retention batch deletes: each batch is its own short write
/// transaction, so runs being recorded meanwhile wait little.
pub const DELETE_BATCH: u32 = 500;

/// The run table.
#[derive(Debug, Clone)]
pub struct RunStore {
    pool: SqlitePool,
}

fn record_from_row(r: &SqliteRow) -> Result<RunRecord> {
    Ok(RunRecord {
        id: r.try_get("id")?,
        project: r.try_get("project")?,
        step: r.try_get("step")?,
        digest: r.try_get("digest")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
        duration_ms: r.try_get("duration_ms")?,
        cpu_ticks: r.try_get("cpu_ticks")?,
        memory_peak_bytes: r.try_get("memory_peak_bytes")?,
        log_bytes: r.try_get("log_bytes")?,
        input: r.try_get("input")?,
        output: r.try_get("output")?,
        error: r.try_get("error")?,
        logs: r.try_get("logs")?,
        http_calls: r.try_get("http_calls")?,
    })
}

impl RunStore {
    /// The run table of `secrets`' database (same pool).
    pub fn new(secrets: &SecretStore) -> Self {
        Self {
            pool: secrets.pool().clone(),
        }
    }

    pub async fn insert(&self, run: &RunRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO runs (id, project, step, digest, status, created_at, duration_ms,
                 cpu_ticks, memory_peak_bytes, log_bytes, input, output, error, logs,
                 http_calls)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn get(&self, project: &str, id: &str) -> Result<Option<RunRecord>> {
        sqlx::query("SELECT * FROM runs WHERE project = ?1 AND id = ?2")
            .bind(project)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(record_from_row)
            .transpose()
    }

    /// Runs of `project`, newest first (`created_at`, then `id`, descending).
    pub async fn list(&self, project: &str, filter: &RunFilter) -> Result<Vec<RunRecord>> {
        let (before_at, before_id) = match &filter.before {
            Some((at, id)) => (Some(*at), Some(id.as_str())),
            None => (None, None),
        };
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE project = ?1
                 AND (?2 IS NULL OR step = ?2)
                 AND (?3 IS NULL OR status = ?3)
                 AND (?4 IS NULL OR created_at < ?4 OR (created_at = ?4 AND id < ?5))
             ORDER BY created_at DESC, id DESC LIMIT ?6",
        )
        .bind(project)
        .bind(filter.step.as_deref())
        .bind(filter.status.as_deref())
        .bind(before_at)
        .bind(before_id)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Deletes every run created before `cutoff_ms` (Unix milliseconds), in
    /// batches of [`DELETE_BATCH`]; returns how many were deleted.
    pub async fn delete_created_before(&self, cutoff_ms: i64) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM runs WHERE rowid IN
                     (SELECT rowid FROM runs WHERE created_at < ?1 LIMIT ?2)",
            )
            .bind(cutoff_ms)
            .bind(i64::from(DELETE_BATCH))
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += n;
            if n < u64::from(DELETE_BATCH) {
                return Ok(total);
            }
            // Let other writers in between batches.
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, created_at: i64) -> RunRecord {
        RunRecord {
            id: id.to_owned(),
            project: "p".into(),
            step: "s".into(),
            digest: "sha256:00".into(),
            status: "succeeded".into(),
            created_at,
            duration_ms: 1,
            cpu_ticks: 0,
            memory_peak_bytes: 0,
            log_bytes: 0,
            input: None,
            output: None,
            error: None,
            logs: None,
            http_calls: None,
        }
    }

    #[tokio::test]
    async fn delete_created_before_deletes_old_runs_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = SecretStore::open(dir.path()).await.unwrap();
        let runs = RunStore::new(&secrets);
        let old = DELETE_BATCH as i64 * 2 + 7;
        for i in 0..old {
            runs.insert(&record(&format!("old-{i:05}"), 1_000 + i))
                .await
                .unwrap();
        }
        runs.insert(&record("at-cutoff", 1_000_000)).await.unwrap();
        runs.insert(&record("new", 2_000_000)).await.unwrap();
        assert_eq!(
            runs.delete_created_before(1_000_000).await.unwrap(),
            old as u64
        );
        let left = runs
            .list(
                "p",
                &RunFilter {
                    limit: 100,
                    ..RunFilter::default()
                },
            )
            .await
            .unwrap();
        let ids: Vec<&str> = left.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["new", "at-cutoff"]);
        assert_eq!(runs.delete_created_before(1_000_000).await.unwrap(), 0);
    }
}
