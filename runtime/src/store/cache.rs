//! In-memory caches of what every request reads: who a bearer credential
//! is, a step's current version, a trigger, a granted secret's sealed value.
//! With them a warm run touches the database only to write its record.
//!
//! Projects and accounts (their credentials sealed: opened per use) are
//! cached too, for the proxy's path.
//!
//! Why they stay correct:
//! - every write that could make an entry stale publishes a
//!   [`Change`](super::repo::Change) (the stores do it, after the write), and
//!   every cache drains the change bus before each read, so in this process
//!   a revoked key is refused at the very next request; on PostgreSQL the
//!   bus is `LISTEN/NOTIFY`, so other nodes hear it as soon as the database
//!   delivers it, and a lost listener connection flushes everything;
//! - an entry read from the database while a change arrived is not kept
//!   (the cache's epoch moved during the read), so a fill racing a write
//!   cannot put back what the write removed;
//! - every entry expires after [`TTL`], the backstop for a message lost in
//!   between (and for writes by another process on the same SQLite file,
//!   which has no bus: the CLI's `secrets set` reaches a running server's
//!   cache within the TTL);
//! - only ciphertext is cached for secrets: values are opened per run;
//! - each cache holds at most [`CAPACITY`] entries.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;
use tokio::sync::broadcast::{self, error::TryRecvError};

use super::Db;
use super::crypto::Sealed;
use super::platform::{Grant, Project};
use super::repo::AccountRow;
use super::repo::Change;
use super::steps::CurrentVersion;
use super::triggers::TriggerRecord;

/// How long an entry lives at most.
pub const TTL: Duration = Duration::from_secs(10);
/// Entries per cache at most.
pub const CAPACITY: u64 = 10_000;

/// A verified bearer credential: its grant and, for an access token, when
/// it expires (Unix seconds).
#[derive(Debug, Clone)]
pub struct CachedGrant {
    pub grant: Grant,
    pub expires_at: Option<i64>,
}

/// The caches of one store (shared by every store built from it).
pub struct StoreCaches {
    changes: Mutex<broadcast::Receiver<Change>>,
    /// Bumped by every change applied; see the module docs.
    epoch: AtomicU64,
    /// By SHA-256 of the presented credential.
    pub(crate) principals: Cache<[u8; 32], CachedGrant>,
    pub(crate) current: Cache<(String, String), Option<CurrentVersion>>,
    /// Versions by `(project, step, digest)`: what pinned triggers run.
    pub(crate) versions: Cache<(String, String, String), Option<CurrentVersion>>,
    pub(crate) triggers: Cache<String, Option<TriggerRecord>>,
    pub(crate) secrets: Cache<(String, String), Option<Sealed>>,
    /// Projects are never deleted: only found ones are kept.
    pub(crate) projects: Cache<String, Project>,
    /// Accounts (their credentials sealed) by `(project, id)`, and the
    /// answers of `find` by `(project, external user, app or id)`.
    pub(crate) accounts: Cache<(String, String), Option<AccountRow>>,
    pub(crate) found_accounts: Cache<(String, String, String), Option<AccountRow>>,
    /// Not a cache: this node's marks of credential use, written once a
    /// minute ([`super::credential_use`]); kept here because every store
    /// shares this one per-node value.
    pub uses: super::credential_use::CredentialUse,
}

impl std::fmt::Debug for StoreCaches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCaches")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

fn cache<K, V>() -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(CAPACITY)
        .time_to_live(TTL)
        .support_invalidation_closures()
        .build()
}

/// The epoch a read started at; [`StoreCaches::fill`] keeps its result only
/// if no change was applied since.
#[derive(Debug, Clone, Copy)]
pub struct Epoch(u64);

impl StoreCaches {
    /// Caches listening to `db`'s change bus.
    pub fn new(db: &Db) -> Self {
        Self {
            changes: Mutex::new(db.subscribe()),
            epoch: AtomicU64::new(0),
            principals: cache(),
            current: cache(),
            versions: cache(),
            triggers: cache(),
            secrets: cache(),
            projects: cache(),
            accounts: cache(),
            found_accounts: cache(),
            uses: Default::default(),
        }
    }

    /// Applies every change heard so far; returns the epoch to read at.
    pub fn sync(&self) -> Epoch {
        let mut rx = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match rx.try_recv() {
                Ok(change) => self.apply(&change),
                Err(TryRecvError::Lagged(_)) => self.apply(&Change::All),
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        Epoch(self.epoch.load(Ordering::Acquire))
    }

    /// Stores `value` under `key` in `cache` if no change was applied since
    /// `read_at` (draining the bus first).
    pub fn fill<K, V>(&self, read_at: Epoch, cache: &Cache<K, V>, key: K, value: V)
    where
        K: std::hash::Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        if self.sync().0 == read_at.0 {
            cache.insert(key, value);
        }
    }

    fn apply(&self, change: &Change) {
        // Queue wake-ups name no cached data: they must not make racing
        // fills be dropped.
        if matches!(
            change,
            Change::RunQueued | Change::RunCancel(_) | Change::RunLog(_)
        ) {
            return;
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        // Predicates only fail when closures are not enabled, which they are.
        match change {
            Change::ApiKey(id) | Change::Client(id) => {
                let id = id.clone();
                let _ = self
                    .principals
                    .invalidate_entries_if(move |_, v| v.grant.id == id);
            }
            Change::Step { project, step } => {
                self.current.invalidate(&(project.clone(), step.clone()));
                let (p, s) = (project.clone(), step.clone());
                let _ = self
                    .versions
                    .invalidate_entries_if(move |k, _| k.0 == p && k.1 == s);
                let (project, step) = (project.clone(), step.clone());
                let _ = self.triggers.invalidate_entries_if(move |_, v| {
                    v.as_ref()
                        .is_some_and(|t| t.project == project && t.step == step)
                });
            }
            Change::Trigger(id) => self.triggers.invalidate(id),
            Change::Secret { project, name } => {
                self.secrets.invalidate(&(project.clone(), name.clone()));
            }
            Change::Account { project } => {
                let p = project.clone();
                let _ = self.accounts.invalidate_entries_if(move |k, _| k.0 == p);
                let p = project.clone();
                let _ = self
                    .found_accounts
                    .invalidate_entries_if(move |k, _| k.0 == p);
            }
            Change::RunQueued | Change::RunCancel(_) | Change::RunLog(_) => {}
            Change::All => {
                self.projects.invalidate_all();
                self.accounts.invalidate_all();
                self.found_accounts.invalidate_all();
                self.principals.invalidate_all();
                self.current.invalidate_all();
                self.versions.invalidate_all();
                self.triggers.invalidate_all();
                self.secrets.invalidate_all();
            }
        }
    }
}

/// Publishes `change`, logging (never failing) when the bus cannot: the
/// write itself succeeded, and the TTL bounds a lost message.
pub(crate) async fn publish(db: &Db, change: Change) {
    if let Err(e) = db.publish(&change).await {
        tracing::warn!(error = %e, "a change could not be published; caches expire it within their TTL");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fill_that_raced_a_change_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::SecretStore::open(dir.path()).await.unwrap();
        let caches = store.caches();
        let key = ("p".to_owned(), "S".to_owned());
        // A read starts; a write's change arrives before the read is stored.
        let read_at = caches.sync();
        publish(
            store.db(),
            Change::Secret {
                project: "p".into(),
                name: "S".into(),
            },
        )
        .await;
        caches.fill(read_at, &caches.secrets, key.clone(), None);
        assert!(caches.secrets.get(&key).is_none(), "a stale read was kept");
        // A read with no change meanwhile is kept.
        let read_at = caches.sync();
        caches.fill(read_at, &caches.secrets, key.clone(), None);
        assert_eq!(caches.secrets.get(&key), Some(None));
    }

    #[test]
    fn changes_round_trip_through_their_notify_text() {
        for change in [
            Change::ApiKey("0123456789abcdef".into()),
            Change::Client("ac_0123456789abcdef".into()),
            Change::Step {
                project: "alpha".into(),
                step: "hello".into(),
            },
            Change::Trigger("trg_x".into()),
            Change::RunQueued,
            Change::RunCancel("0190-run".into()),
            Change::RunLog("0190-run".into()),
            Change::Secret {
                project: "alpha".into(),
                name: "oauth.github.client_id".into(),
            },
            Change::All,
        ] {
            assert_eq!(Change::decode(&change.encode()), change);
        }
        assert_eq!(Change::decode("garbage"), Change::All);
    }
}
