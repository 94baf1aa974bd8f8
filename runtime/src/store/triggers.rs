//! HTTP triggers of `airlock serve`: an unguessable id that runs a step when
//! `/t/{id}` is requested. Same database as the [`SecretStore`].
//! The signature settings name a secret of the project, never hold its value.
//! A `nostore` trigger's runs keep metadata only.

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
    /// Unix seconds.
    pub created_at: i64,
}

/// The trigger table.
#[derive(Debug, Clone)]
pub struct TriggerStore {
    db: Db,
}

impl TriggerStore {
    /// The trigger table of `secrets`' database.
    pub fn new(secrets: &SecretStore) -> Self {
        Self {
            db: secrets.db().clone(),
        }
    }

    /// Stores a new trigger; returns its record.
    pub async fn insert(
        &self,
        id: &str,
        project: &str,
        step: &str,
        signature: Option<&str>,
        nostore: bool,
    ) -> Result<TriggerRecord> {
        let record = TriggerRecord {
            id: id.to_owned(),
            project: project.to_owned(),
            step: step.to_owned(),
            signature: signature.map(str::to_owned),
            nostore,
            created_at: unix_now(),
        };
        self.db.insert_trigger(&record).await?;
        Ok(record)
    }

    /// The trigger with this id, in any project.
    pub async fn get(&self, id: &str) -> Result<Option<TriggerRecord>> {
        self.db.get_trigger(id).await
    }

    /// The triggers of a step, oldest first.
    pub async fn list(&self, project: &str, step: &str) -> Result<Vec<TriggerRecord>> {
        self.db.list_triggers(project, step).await
    }

    /// Deletes a trigger of a step; `false` when there was none.
    pub async fn delete(&self, project: &str, step: &str, id: &str) -> Result<bool> {
        self.db.delete_trigger(project, step, id).await
    }

    /// Deletes every trigger of a step (when the step is deleted).
    pub async fn delete_for_step(&self, project: &str, step: &str) -> Result<u64> {
        self.db.delete_triggers_of_step(project, step).await
    }
}
