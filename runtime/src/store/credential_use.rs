//! When each credential was last used: API keys, OAuth clients, connected
//! accounts and secrets — so operators can find and revoke the ones nobody
//! uses (`GET …?unused_since=`).
//!
//! Why marks in memory, flushed once a minute: a credential is used on the
//! hot path (every API call verifies a key; every run reads its secrets),
//! and a database write there would cost every request a round trip and
//! make every request to one key contend on one row. A use is instead one
//! insert into this node's map; [`CredentialUse::flush`] writes the map in
//! one statement per minute ([`FLUSH_EVERY`]), so each credential is written
//! at most once a minute per node, and `last_used_at` only moves forward
//! (`MAX` of what is stored and what is written), whichever node writes
//! last. A listing flushes this node's marks first, so it is exact for
//! uses on this node and at most a minute behind for the others. A node
//! that dies loses at most its last minute of marks: this is a hygiene
//! signal, not an audit log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{Db, Result, unix_now};

/// How often a node writes its marks.
pub const FLUSH_EVERY: Duration = Duration::from_secs(60);

/// The kinds of credential whose use is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CredentialKind {
    ApiKey,
    OAuthClient,
    /// By account id.
    Account,
    /// By `{project}/{name}`.
    Secret,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::OAuthClient => "oauth_client",
            Self::Account => "account",
            Self::Secret => "secret",
        }
    }
}

/// The id a secret's use is marked under.
pub fn secret_id(project: &str, name: &str) -> String {
    format!("{project}/{name}")
}

/// One node's marks not yet written.
#[derive(Debug, Default)]
pub struct CredentialUse {
    pending: Mutex<HashMap<(CredentialKind, String), i64>>,
}

impl CredentialUse {
    /// Marks `id` used now. Memory only: cheap enough for the hot path.
    pub fn mark(&self, kind: CredentialKind, id: &str) {
        let now = unix_now();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = pending.get_mut(&(kind, id.to_owned())) {
            *at = now;
        } else {
            pending.insert((kind, id.to_owned()), now);
        }
    }

    /// Writes every mark so far in one statement; a failed write keeps the
    /// marks for the next flush.
    pub async fn flush(&self, db: &Db) -> Result<()> {
        let taken: Vec<(CredentialKind, String, i64)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.drain().map(|((k, id), at)| (k, id, at)).collect()
        };
        if taken.is_empty() {
            return Ok(());
        }
        let rows: Vec<(&'static str, &str, i64)> = taken
            .iter()
            .map(|(k, id, at)| (k.as_str(), id.as_str(), *at))
            .collect();
        if let Err(e) = db.mark_credentials_used(&rows).await {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            for (k, id, at) in taken {
                let slot = pending.entry((k, id)).or_insert(at);
                *slot = (*slot).max(at);
            }
            return Err(e);
        }
        Ok(())
    }

    /// When each of `ids` was last used (Unix seconds), after writing this
    /// node's marks; absent ones were never used (or not since this was
    /// recorded).
    pub async fn last_used(
        &self,
        db: &Db,
        kind: CredentialKind,
        ids: &[String],
    ) -> Result<HashMap<String, i64>> {
        if let Err(e) = self.flush(db).await {
            tracing::warn!(error = %e, "cannot write credential use marks");
        }
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(db
            .credentials_last_used(kind.as_str(), ids)
            .await?
            .into_iter()
            .collect())
    }
}

/// Whether a credential last used at `last_used` (Unix seconds) counts as
/// unused since `since` (Unix seconds): never used, or not at or after it.
pub fn unused_since(last_used: Option<i64>, since: i64) -> bool {
    last_used.is_none_or(|at| at < since)
}

/// Writes this node's marks every [`FLUSH_EVERY`] until aborted.
pub fn spawn_flush(secrets: super::SecretStore) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(FLUSH_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = secrets.caches().uses.flush(secrets.db()).await {
                tracing::warn!(error = %e, "cannot write credential use marks");
            }
        }
    })
}
