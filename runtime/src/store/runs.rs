//! Run records of `airlock serve`. Same database as the [`SecretStore`]. Everything stored here was masked by the engine before it
//! arrived, except the input, which is the caller's own data; a `nostore` run
//! keeps metadata only.

use super::{Db, Result, SecretStore};

/// One run.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RunRecord {
    pub id: String,
    pub project: String,
    pub step: String,
    pub digest: String,
    /// `succeeded`, `failed` or `cancelled` once finished; `queued` or
    /// `running` while a queued run waits or runs ([`super::queue`]).
    pub status: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub duration_ms: i64,
    pub cpu_ticks: i64,
    pub memory_peak_bytes: i64,
    pub log_bytes: i64,
    /// Memory-time: KiB x milliseconds of memory and tables held, integrated
    /// over the run.
    pub memory_kib_ms: i64,
    /// Bytes of the response bodies its outbound HTTP calls received.
    pub http_response_bytes: i64,
    /// JSON text; `None` for a `nostore` run.
    pub input: Option<String>,
    /// JSON text; `None` for a failed or `nostore` run.
    pub output: Option<String>,
    /// JSON text `{kind, message, code?, details?}`; `None` for a succeeded or `nostore` run.
    pub error: Option<String>,
    /// JSON array of log lines; `None` for a `nostore` run.
    pub logs: Option<String>,
    /// JSON array of outbound call summaries; `None` for a `nostore` run.
    pub http_calls: Option<String>,
    /// Attempts started: 1 for a synchronous run; 0 for a queued run not
    /// started yet.
    pub attempts: i64,
    /// The end user the run acted for (kept for `nostore` runs too: it is
    /// the caller's identifier, not data).
    pub external_user_id: Option<String>,
    /// The run this one re-ran (`POST …/runs/{id}/rerun`).
    pub rerun_of: Option<String>,
    /// Unix milliseconds when its (latest) attempt started: `created_at`
    /// for a synchronous run; `None` while a queued run waits.
    pub started_at: Option<i64>,
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

/// What the console's chart needs of one run: when, how it ended, how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct RunPoint {
    /// Unix milliseconds.
    pub created_at: i64,
    /// Its outcome (`succeeded`, `failed`, `cancelled`) or `queued`/`running`.
    #[sqlx(try_from = "String")]
    pub status: RunOutcome,
    pub duration_ms: i64,
}

/// The status of a run as the chart groups it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    Failed,
    Cancelled,
    /// Queued or running: not finished yet.
    Unfinished,
}

impl From<String> for RunOutcome {
    fn from(status: String) -> Self {
        match status.as_str() {
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => Self::Unfinished,
        }
    }
}

/// Rows one retention batch deletes: each batch is its own short write
/// transaction, so runs being recorded meanwhile wait little.
pub const DELETE_BATCH: u32 = 500;

/// The run table.
#[derive(Debug, Clone)]
pub struct RunStore {
    db: Db,
}

impl RunStore {
    /// The run table of `secrets`' database.
    pub fn new(secrets: &SecretStore) -> Self {
        Self {
            db: secrets.db().clone(),
        }
    }

    /// Records one run.
    pub async fn insert(&self, run: &RunRecord) -> Result<()> {
        self.db.insert_run(run).await
    }

    /// Run `id` of `project`, or `None`.
    pub async fn get(&self, project: &str, id: &str) -> Result<Option<RunRecord>> {
        self.db.get_run(project, id).await
    }

    /// Runs of `project`, newest first (`created_at`, then `id`, descending).
    pub async fn list(&self, project: &str, filter: &RunFilter) -> Result<Vec<RunRecord>> {
        self.db.list_runs(project, filter).await
    }

    /// The newest `limit` runs of `project` created at or after `since_ms`,
    /// newest first: time, outcome and duration only.
    pub async fn points(&self, project: &str, since_ms: i64, limit: u32) -> Result<Vec<RunPoint>> {
        self.db.run_points(project, since_ms, limit).await
    }

    /// Deletes every finished run created before `cutoff_ms` (Unix
    /// milliseconds; queued and running runs stay until they finish), in
    /// batches of [`DELETE_BATCH`] (so runs being recorded meanwhile wait
    /// little); returns how many were deleted.
    pub async fn delete_created_before(&self, cutoff_ms: i64) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self.db.delete_runs_before(cutoff_ms, DELETE_BATCH).await?;
            total += n;
            if n < u64::from(DELETE_BATCH) {
                return Ok(total);
            }
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
            memory_kib_ms: 0,
            http_response_bytes: 0,
            input: None,
            output: None,
            error: None,
            logs: None,
            http_calls: None,
            attempts: 1,
            external_user_id: None,
            rerun_of: None,
            started_at: None,
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
