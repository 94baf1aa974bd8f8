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
//!
//! [`publish`](ChangeRepo::publish) returns only once this node's own
//! listener has heard the message back (or after [`ECHO_WAIT`]): by then the
//! database has dispatched it to every listening node, so when `airlock keys
//! revoke` returns, the other nodes already hold the news.

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
/// Longest a publisher waits to hear its own message back.
const ECHO_WAIT: Duration = Duration::from_secs(2);
/// Separates a change from the publisher's echo token in the payload.
const TOKEN_SEPARATOR: char = '\u{1f}';

type Echoes =
    Arc<std::sync::Mutex<std::collections::HashMap<u64, tokio::sync::oneshot::Sender<()>>>>;

/// The local bus and the task feeding it; the task stops with the last
/// handle on the database.
pub(super) struct Bus {
    pub sender: broadcast::Sender<Change>,
    /// Publishers waiting to hear their message back, by token.
    echoes: Echoes,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").finish_non_exhaustive()
    }
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
        let echoes = Echoes::default();
        let task = tokio::spawn(listen(pool.clone(), sender.clone(), echoes.clone()));
        Arc::new(Bus {
            sender,
            echoes,
            task,
        })
    }
}

async fn listen(pool: PgPool, sender: broadcast::Sender<Change>, echoes: Echoes) {
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
                    let (change, token) = match n.payload().split_once(TOKEN_SEPARATOR) {
                        Some((change, token)) => (change, u64::from_str_radix(token, 16).ok()),
                        None => (n.payload(), None),
                    };
                    let _ = sender.send(Change::decode(change));
                    if let Some(token) = token {
                        let waiter = echoes
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&token);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(());
                        }
                    }
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
        let mut token = [0u8; 8];
        getrandom::fill(&mut token).map_err(|e| {
            crate::store::StoreError::Key(crate::store::KeyError::Rng(e.to_string()))
        })?;
        let token = u64::from_be_bytes(token);
        let (heard, echo) = tokio::sync::oneshot::channel();
        self.bus
            .echoes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token, heard);
        let payload = format!("{}{TOKEN_SEPARATOR}{token:x}", change.encode());
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await;
        if sent.is_ok() {
            // Heard back, or the listener is away (then caches expire).
            let _ = tokio::time::timeout(ECHO_WAIT, echo).await;
        }
        self.bus
            .echoes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&token);
        sent?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.bus.sender.subscribe()
    }
}
