//! Per-account mutual exclusion for token refreshes.
//!
//! [`RefreshLock`] is the seam: [`LocalRefreshLock`] serialises refreshes of
//! one account inside this process with a `tokio::sync::Mutex` per account.
//! When several `airlock serve` nodes share a PostgreSQL database,
//! [`SharedRefreshLock`] layers the database's lock on top
//! ([`CoordinationRepo::lock`](crate::store::repo::CoordinationRepo::lock):
//! `pg_advisory_xact_lock` inside a transaction held by the guard; dropping
//! the guard ends the transaction, which releases the lock even when the node
//! dies, since its session ends). The local mutex comes first, so a node
//! opens one database transaction per account being refreshed, not one per
//! waiting caller.
//!
//! How long the shared lock may be held and waited for is the refresh's
//! own bound ([`SHARED_LOCK_HOLD`]: the token request's timeout plus time
//! for the reads and the save), not the database's statement timeout: a
//! waiter cut loose while the holder is still refreshing would refresh
//! again with the same refresh token, which a rotating provider refuses —
//! and a refusal nobody has yet replaced marks the account `needs_reauth`.
//! A holder past its bound (a hung node) loses the lock, so waiters are
//! not held up for as long as a dead TCP connection takes to be noticed.
//!
//! The lock only orders refreshes; correctness comes from
//! [`TokenRefresher`](super::TokenRefresher) re-reading the account after
//! acquiring it, so a caller that waited behind a refresh sees its result
//! instead of refreshing again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

/// Held while one refresh of one account runs; dropping it releases the lock.
pub type RefreshGuard = Box<dyn Send + 'static>;

/// Serialises token refreshes of the same account.
#[async_trait]
pub trait RefreshLock: Send + Sync + 'static {
    /// Waits until no other holder has `key` (a project and account id) and
    /// returns a guard that releases it when dropped.
    async fn acquire(&self, key: &str) -> RefreshGuard;
}

type Slots = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

/// In-process [`RefreshLock`]: one `tokio::sync::Mutex` per account, kept in
/// a map only while someone holds or waits for it.
#[derive(Debug, Default, Clone)]
pub struct LocalRefreshLock {
    slots: Slots,
}

impl LocalRefreshLock {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many accounts have a mutex in the map (held, waited for, or left
    /// by a cancelled waiter until the next release sweeps it).
    pub fn len(&self) -> usize {
        lock_slots(&self.slots).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl RefreshLock for LocalRefreshLock {
    async fn acquire(&self, key: &str) -> RefreshGuard {
        let mutex = lock_slots(&self.slots)
            .entry(key.to_owned())
            .or_default()
            .clone();
        let guard = mutex.lock_owned().await;
        Box::new(LocalGuard {
            guard: Some(guard),
            slots: self.slots.clone(),
        })
    }
}

struct LocalGuard {
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    slots: Slots,
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        // Release first, then drop every mutex that only the map still holds:
        // nobody holds or waits for it. Clones are taken under the map's lock,
        // so a new waiter cannot appear between the count and the removal.
        // Sweeping the whole map (not just this key) also removes entries left
        // by waiters whose futures were cancelled.
        drop(self.guard.take());
        lock_slots(&self.slots).retain(|_, m| Arc::strong_count(m) > 1);
    }
}

/// The longest one refresh holds the shared lock: the default token
/// request timeout plus 30 s for re-reading the account and saving.
pub const SHARED_LOCK_HOLD: Duration =
    Duration::from_secs(super::refresh::DEFAULT_REQUEST_TIMEOUT.as_secs() + 30);

/// The local lock, then the database's: one refresh per account across
/// every node on the database.
pub struct SharedRefreshLock {
    local: LocalRefreshLock,
    db: crate::store::Db,
    hold: Duration,
}

impl SharedRefreshLock {
    /// Held for at most [`SHARED_LOCK_HOLD`].
    pub fn new(db: crate::store::Db) -> Self {
        Self {
            local: LocalRefreshLock::new(),
            db,
            hold: SHARED_LOCK_HOLD,
        }
    }

    /// Held for at most `hold` (for a refresher with a longer request
    /// timeout than the default, or tests).
    pub fn with_hold(mut self, hold: Duration) -> Self {
        self.hold = hold;
        self
    }
}

#[async_trait]
impl RefreshLock for SharedRefreshLock {
    async fn acquire(&self, key: &str) -> RefreshGuard {
        let local = self.local.acquire(key).await;
        match self
            .db
            .lock(&format!("oauth-refresh:{key}"), self.hold)
            .await
        {
            Ok(shared) => Box::new((shared, local)),
            // Without the database lock two nodes may both refresh; the
            // re-read after locking and the compare-and-swap save still
            // keep the stored tokens consistent.
            Err(e) => {
                tracing::warn!(error = %e, "refresh lock not shared: the database failed");
                local
            }
        }
    }
}

fn lock_slots(
    slots: &Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
    // The map is never left inconsistent by a panic (single inserts/retains).
    slots.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_holder_per_key_and_entries_are_removed() {
        let lock = LocalRefreshLock::new();
        let inside = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (lock, inside, max) = (lock.clone(), inside.clone(), max.clone());
            tasks.push(tokio::spawn(async move {
                let key = if i % 2 == 0 { "a" } else { "b" };
                let _g = lock.acquire(key).await;
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            max.load(Ordering::SeqCst),
            2,
            "one holder per key, two keys"
        );
        assert!(lock.is_empty(), "entries are cleaned up");
    }

    #[tokio::test]
    async fn cancelled_waiter_entry_is_swept() {
        let lock = LocalRefreshLock::new();
        let held = lock.acquire("a").await;
        let waiting = tokio::time::timeout(Duration::from_millis(20), lock.acquire("a")).await;
        assert!(waiting.is_err(), "the second acquire waits");
        drop(held);
        assert!(lock.is_empty());
    }
}
