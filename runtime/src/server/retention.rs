//! Retention of run records: with `--retention-days N`, runs created more
//! than `N` days ago are deleted once at start (before the server listens)
//! and then every hour, in short batches ([`RunStore::delete_created_before`]),
//! by one node per tick when several share the database
//! ([`super::periodic`]). Without it, runs are kept forever.

use std::sync::Arc;
use std::time::Duration;

use super::metrics::Metrics;
use crate::store::{Db, RunStore, StoreError};

const MS_PER_DAY: i64 = 24 * 60 * 60 * 1000;

fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Deletes runs older than `days` days; returns how many, and logs the count.
pub async fn sweep(runs: &RunStore, metrics: &Metrics, days: u32) -> Result<u64, StoreError> {
    let cutoff = unix_millis().saturating_sub(i64::from(days).saturating_mul(MS_PER_DAY));
    let deleted = runs.delete_created_before(cutoff).await?;
    metrics.retention_deleted(deleted);
    tracing::info!(
        deleted,
        retention_days = days,
        "retention: deleted old run records"
    );
    Ok(deleted)
}

/// Sweeps every `interval` on the node that claims the tick (the first one
/// after `interval`: the start-up sweep is [`sweep`], awaited by the
/// caller). A failed sweep is logged and tried again at the next tick.
pub fn spawn(
    db: Db,
    runs: RunStore,
    metrics: Arc<Metrics>,
    days: u32,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    super::periodic::spawn(db, "retention", interval, move || {
        let (runs, metrics) = (runs.clone(), metrics.clone());
        async move {
            if let Err(e) = sweep(&runs, &metrics, days).await {
                tracing::error!(error = %e, "retention: cannot delete old run records");
            }
        }
    })
}
