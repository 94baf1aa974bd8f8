//! Live log lines: the masked lines of a run still running, written by the
//! node running it so that a log stream on any node can read them before
//! the run ends (`GET …/runs/{id}/logs?follow=1`).
//!
//! Why rows in the database: the run may run on another node of the same
//! PostgreSQL; the database is the one thing every node shares (no
//! broker). The node appends in small batches ([`crate::service::live`]),
//! and after each batch publishes [`Change::RunLog`], which wakes the
//! streams of that run on every node (`NOTIFY` on PostgreSQL, in process
//! on SQLite); a stream also polls, since a notification can be lost.
//!
//! What a row holds: one line exactly as the stored record will show it
//! (masked by the run's redactor, see `airlock_host_api::log::live`), as
//! JSON, keyed by `(run_id, seq)` where `seq = attempt << 32 | index`:
//! ids grow across attempts, and the final attempt's lines have the same
//! ids in the record, so a client resuming with `Last-Event-ID` after the
//! run ended reads the record from where it was. Rows are bounded per run
//! by the log cap (each line is an entry of the capped log), deleted when
//! the run finishes and, should that fail (a node died), by [`sweep`]
//! after [`MAX_AGE`].
//!
//! [`sweep`]: LiveLogStore::sweep

use std::time::Duration;

use super::repo::Change;
use super::{Db, Result, cache};

/// Live rows older than this are deleted whatever their run's state.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The id of line `index` of attempt `attempt` in a run's log stream.
pub fn seq(attempt: u32, index: u64) -> i64 {
    (i64::from(attempt) << 32) | i64::try_from(index & 0xffff_ffff).unwrap_or(0)
}

/// Live log lines over the run table's database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LiveLogStore {
    db: Db,
}

impl LiveLogStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Appends `(seq, line JSON)` rows of `run_id` and wakes its streams.
    pub async fn append(&self, run_id: &str, lines: &[(i64, String)]) -> Result<()> {
        self.db
            .append_run_log_lines(run_id, lines, super::unix_millis())
            .await?;
        cache::publish(&self.db, Change::RunLog(run_id.to_owned())).await;
        Ok(())
    }

    /// Up to `limit` rows after `after`, in order.
    pub async fn after(&self, run_id: &str, after: i64, limit: u32) -> Result<Vec<(i64, String)>> {
        self.db.run_log_lines_after(run_id, after, limit).await
    }

    /// Deletes the rows of a finished run and wakes its streams (they read
    /// the record now).
    pub async fn clear(&self, run_id: &str) -> Result<u64> {
        let n = self.db.delete_run_log_lines(run_id).await?;
        cache::publish(&self.db, Change::RunLog(run_id.to_owned())).await;
        Ok(n)
    }

    /// Deletes rows older than [`MAX_AGE`]; how many.
    pub async fn sweep(&self) -> Result<u64> {
        let max_age = i64::try_from(MAX_AGE.as_millis()).unwrap_or(i64::MAX);
        self.db
            .delete_run_log_lines_before(super::unix_millis().saturating_sub(max_age))
            .await
    }

    /// The change bus, to wait for [`Change::RunLog`].
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.db.subscribe()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_grow_across_attempts() {
        assert_eq!(seq(1, 0), 1 << 32);
        assert!(seq(1, 5) < seq(2, 0));
        assert!(seq(2, 0) < seq(2, 1));
    }
}
