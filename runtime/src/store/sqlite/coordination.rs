//! Coordination for one node: locks, periodic ticks and rate limits kept in
//! this process.
//!
//! Why not in the SQLite file: there is one node, so nothing to share, and
//! the rate limits are checked on hot paths (every trigger request) where an
//! fsync'd write per request would cost more than the request. The
//! semantics are the ones [`CoordinationRepo`] states, and the conformance
//! suite holds this implementation to them like PostgreSQL's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::SqliteDatabase;
use crate::store::Result;
use crate::store::repo::{Change, ChangeRepo, CoordinationRepo, LockGuard};

/// In-process state: one async mutex per lock key (kept while held or
/// awaited), the last claimed tick per job, and GCRA arrival times. One per
/// database file in a process ([`Local::for_path`]), so every handle on the
/// file shares it, as one node should.
#[derive(Debug)]
pub(super) struct Local {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    ticks: Mutex<HashMap<String, i64>>,
    rates: Mutex<HashMap<String, i64>>,
    /// The change bus of every handle on the file in this process. Another
    /// process on the same file (the CLI) is not heard: its writes reach
    /// this process's caches when their entries expire.
    changes: tokio::sync::broadcast::Sender<Change>,
}

impl Default for Local {
    fn default() -> Self {
        Self {
            locks: Mutex::default(),
            ticks: Mutex::default(),
            rates: Mutex::default(),
            changes: tokio::sync::broadcast::channel(CHANGE_BACKLOG).0,
        }
    }
}

/// Changes a slow subscriber may lag behind before it must flush.
pub(crate) const CHANGE_BACKLOG: usize = 1024;

#[async_trait]
impl ChangeRepo for SqliteDatabase {
    async fn publish(&self, change: &Change) -> Result<()> {
        // No subscriber is not an error: nothing is cached.
        let _ = self.local.changes.send(change.clone());
        Ok(())
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.local.changes.subscribe()
    }
}

impl Local {
    /// The state of the database file at `path`, shared by every handle on
    /// it in this process.
    pub(super) fn for_path(path: &std::path::Path) -> Arc<Local> {
        static ALL: Mutex<Vec<(std::path::PathBuf, std::sync::Weak<Local>)>> =
            Mutex::new(Vec::new());
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let mut all = lock(&ALL);
        all.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(local) = all
            .iter()
            .find(|(p, _)| *p == key)
            .and_then(|(_, w)| w.upgrade())
        {
            return local;
        }
        let local = Arc::new(Local::default());
        all.push((key, Arc::downgrade(&local)));
        local
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl CoordinationRepo for SqliteDatabase {
    /// `hold` is not needed here: holders are tasks of this one process,
    /// and the process ending ends them and their locks together.
    async fn lock(&self, key: &str, _hold: Duration) -> Result<LockGuard> {
        let slot = lock(&self.local.locks)
            .entry(key.to_owned())
            .or_default()
            .clone();
        let guard = slot.lock_owned().await;
        // Slots nobody holds or waits for are dropped as others are taken,
        // so the map holds only keys in use.
        lock(&self.local.locks).retain(|_, m| Arc::strong_count(m) > 1);
        Ok(Box::new(guard))
    }

    async fn claim_tick(&self, job: &str, tick: i64) -> Result<bool> {
        let mut ticks = lock(&self.local.ticks);
        let last = ticks.entry(job.to_owned()).or_insert(i64::MIN);
        if *last < tick {
            *last = tick;
            return Ok(true);
        }
        Ok(false)
    }

    async fn rate_acquire(
        &self,
        key: &str,
        interval_ms: i64,
        tolerance_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        let mut rates = lock(&self.local.rates);
        let tat = rates.get(key).copied().unwrap_or(now_ms).max(now_ms);
        if tat - now_ms > tolerance_ms {
            return Ok(Some(tat - now_ms - tolerance_ms));
        }
        rates.insert(key.to_owned(), tat + interval_ms);
        Ok(None)
    }

    async fn rate_peek(&self, key: &str, tolerance_ms: i64, now_ms: i64) -> Result<Option<i64>> {
        let rates = lock(&self.local.rates);
        let tat = rates.get(key).copied().unwrap_or(now_ms).max(now_ms);
        Ok((tat - now_ms > tolerance_ms).then(|| tat - now_ms - tolerance_ms))
    }

    async fn rate_sweep(&self, now_ms: i64) -> Result<u64> {
        let mut rates = lock(&self.local.rates);
        let before = rates.len();
        rates.retain(|_, tat| *tat >= now_ms);
        Ok((before - rates.len()) as u64)
    }
}
