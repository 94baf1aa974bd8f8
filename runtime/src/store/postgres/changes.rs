//! The change bus on PostgreSQL: `NOTIFY airlock_changes, '<change>'` after
//! each write a cache could hold, and one `LISTEN` connection per node that
//! turns what it hears into the local bus every cache drains.
//!
//! Why this is enough for caches: `NOTIFY` is delivered only after the
//! writing transaction commits, to every listening session, in commit
//! order. What it cannot promise is delivery across a lost connection, so
//! when the listener reconnects it publishes [`Change::All`] (every cache
//! flushes), and every cache entry also expires after a short time-to-live
//! should a message be lost some other way.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::broadcast;

use super::PgDatabase;
use crate::store::Result;
use crate::store::repo::{Change, ChangeRepo};

/// The channel every node listens on.
pub(super) const CHANNEL: &str = "airlock_changes";
/// Changes a slow subscriber may lag behind before it must flush.
const BACKLOG: usize = 1024;
/// Wait before listening again after the listener failed to connect.
const RETRY: Duration = Duration::from_secs(1);

/// The local bus and the task feeding it; the task stops with the last
/// handle on the database.
#[derive(Debug)]
pub(super) struct Bus {
    pub sender: broadcast::Sender<Change>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Bus {
    /// Starts listening on `pool`'s database.
    pub fn start(pool: &PgPool) -> Arc<Bus> {
        let (sender, _) = broadcast::channel(BACKLOG);
        let task = tokio::spawn(listen(pool.clone(), sender.clone()));
        Arc::new(Bus { sender, task })
    }
}

async fn listen(pool: PgPool, sender: broadcast::Sender<Change>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for changes; caches expire on their own");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "cannot listen for changes; caches expire on their own");
            tokio::time::sleep(RETRY).await;
            continue;
        }
        // Whatever was published while no one listened is unknown: flush.
        let _ = sender.send(Change::All);
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    let _ = sender.send(Change::decode(n.payload()));
                }
                // The connection was lost; the next call reconnects and
                // listens again, but notifications meanwhile are gone.
                Ok(None) => {
                    let _ = sender.send(Change::All);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the change listener failed; listening again");
                    let _ = sender.send(Change::All);
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            }
        }
    }
}

#[async_trait]
impl ChangeRepo for PgDatabase {
    async fn publish(&self, change: &Change) -> Result<()> {
        // This node's own caches at once; the others through NOTIFY (this
        // node hears it again, harmlessly).
        let _ = self.bus.sender.send(change.clone());
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(change.encode())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.bus.sender.subscribe()
    }
}
