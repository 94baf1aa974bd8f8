//! HTTP triggers of `airlock serve`: an unguessable id that runs a step when
//! `/t/{id}` is requested. Same database and pool as the [`SecretStore`].
//! The signature settings name a secret of the project, never hold its value.
//! A `nostore` trigger's runs keep metadata only.

use sqlx::Row as _;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::sqlite::unix_now;
use super::{Result, SecretStore};

/// One trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pool: SqlitePool,
}

fn from_row(r: &SqliteRow) -> Result<TriggerRecord> {
    Ok(TriggerRecord {
        id: r.try_get("id")?,
        project: r.try_get("project")?,
        step: r.try_get("step")?,
        signature: r.try_get("signature")?,
        nostore: r.try_get("nostore")?,
        created_at: r.try_get("created_at")?,
    })
}

impl TriggerStore {
    /// The trigger table of `secrets`' database (same pool).
    pub fn new(secrets: &SecretStore) -> Self {
        Self {
            pool: secrets.pool().clone(),
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
        let created_at = unix_now();
        sqlx::query(
            "INSERT INTO triggers (id, project, step, signature, nostore, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(id)
        .bind(project)
        .bind(step)
        .bind(signature)
        .bind(nostore)
        .bind(created_at)
        .execute(&self.pool)
        .await?;
        Ok(TriggerRecord {
            id: id.to_owned(),
            project: project.to_owned(),
            step: step.to_owned(),
            signature: signature.map(str::to_owned),
            nostore,
            created_at,
        })
    }

    /// The trigger with this id, in any project.
    pub async fn get(&self, id: &str) -> Result<Option<TriggerRecord>> {
        sqlx::query("SELECT * FROM triggers WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// The triggers of a step, oldest first.
    pub async fn list(&self, project: &str, step: &str) -> Result<Vec<TriggerRecord>> {
        sqlx::query(
            "SELECT * FROM triggers WHERE project = ?1 AND step = ?2
             ORDER BY created_at, id",
        )
        .bind(project)
        .bind(step)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(from_row)
        .collect()
    }

    /// Deletes a trigger of a step; `false` when there was none.
    pub async fn delete(&self, project: &str, step: &str, id: &str) -> Result<bool> {
        Ok(
            sqlx::query("DELETE FROM triggers WHERE project = ?1 AND step = ?2 AND id = ?3")
                .bind(project)
                .bind(step)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }

    /// Deletes every trigger of a step (when the step is deleted).
    pub async fn delete_for_step(&self, project: &str, step: &str) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM triggers WHERE project = ?1 AND step = ?2")
                .bind(project)
                .bind(step)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}
