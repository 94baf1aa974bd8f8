//! HTTP triggers of `airlock serve`: an unguessable id that runs a step when
//! `/t/{id}` is requested. Same database as the [`SecretStore`].
//! The signature settings name a secret of the project, never hold its value.
//! A `nostore` trigger's runs keep metadata only. A trigger pinned to a
//! version `digest` runs that version whatever the step's current one is.

use super::cache::{self, StoreCaches};
use super::repo::Change;
use super::{Db, Result, SecretStore, unix_now};

/// One trigger.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TriggerRecord {
    pub id: String,
    pub project: String,
    pub step: String,
    /// JSON text of the signature settings; `None` when unsigned.
    pub signature: Option<String>,
    /// Every run it starts keeps metadata only.
    pub nostore: bool,
    /// The version it runs, pinned; `None`: the step's current version.
    pub digest: Option<String>,
    /// Its runs are queued: the sender gets 202 at once ([`super::queue`]).
    pub queued: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// The trigger table.
#[derive(Debug, Clone)]
pub struct TriggerStore {
    db: Db,
    caches: std::sync::Arc<StoreCaches>,
}

impl TriggerStore {
    /// The trigger table of `secrets`' database.
    pub fn new(secrets: &SecretStore) -> Self {
        Self {
            db: secrets.db().clone(),
            caches: secrets.caches().clone(),
        }
    }

    /// Stores a new trigger; returns its record.
    // Each argument is one column of the trigger; a struct for them is the
    // record itself, which this builds.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert(
        &self,
        id: &str,
        project: &str,
        step: &str,
        signature: Option<&str>,
        nostore: bool,
        digest: Option<&str>,
        queued: bool,
    ) -> Result<TriggerRecord> {
        let record = TriggerRecord {
            id: id.to_owned(),
            project: project.to_owned(),
            step: step.to_owned(),
            signature: signature.map(str::to_owned),
            nostore,
            digest: digest.map(str::to_owned),
            queued,
            created_at: unix_now(),
        };
        self.db.insert_trigger(&record).await?;
        cache::publish(&self.db, Change::Trigger(record.id.clone())).await;
        Ok(record)
    }

    /// The trigger with this id, in any project; cached (unknown ids too)
    /// until it changes (see [`super::cache`]).
    pub async fn get(&self, id: &str) -> Result<Option<TriggerRecord>> {
        let read_at = self.caches.sync();
        if let Some(hit) = self.caches.triggers.get(id) {
            return Ok(hit);
        }
        let found = self.db.get_trigger(id).await?;
        self.caches
            .fill(read_at, &self.caches.triggers, id.to_owned(), found.clone());
        Ok(found)
    }

    /// The triggers of a step, oldest first.
    pub async fn list(&self, project: &str, step: &str) -> Result<Vec<TriggerRecord>> {
        self.db.list_triggers(project, step).await
    }

    /// Deletes a trigger of a step; `false` when there was none.
    pub async fn delete(&self, project: &str, step: &str, id: &str) -> Result<bool> {
        let deleted = self.db.delete_trigger(project, step, id).await?;
        cache::publish(&self.db, Change::Trigger(id.to_owned())).await;
        Ok(deleted)
    }

    /// Deletes every trigger of a step (when the step is deleted).
    pub async fn delete_for_step(&self, project: &str, step: &str) -> Result<u64> {
        let deleted = self.db.delete_triggers_of_step(project, step).await?;
        let change = Change::Step {
            project: project.to_owned(),
            step: step.to_owned(),
        };
        cache::publish(&self.db, change).await;
        Ok(deleted)
    }
}
