//! [`TriggerRepo`] on PostgreSQL. `nostore` is a `BOOLEAN` (SQLite's 0/1
//! integer with a check); everything else as on SQLite. A deleted trigger
//! is gone for every node at once: nothing here is cached.

use async_trait::async_trait;

use super::PgDatabase;
use crate::store::Result;
use crate::store::repo::TriggerRepo;
use crate::store::triggers::TriggerRecord;

#[derive(sqlx::FromRow)]
struct TriggerRow {
    id: String,
    project: String,
    step: String,
    signature: Option<String>,
    nostore: bool,
    digest: Option<String>,
    queued: bool,
    created_at: i64,
}

impl From<TriggerRow> for TriggerRecord {
    fn from(r: TriggerRow) -> Self {
        TriggerRecord {
            id: r.id,
            project: r.project,
            step: r.step,
            signature: r.signature,
            nostore: r.nostore,
            digest: r.digest,
            queued: r.queued,
            created_at: r.created_at,
        }
    }
}

#[async_trait]
impl TriggerRepo for PgDatabase {
    async fn insert_trigger(&self, t: &TriggerRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO triggers (id, project, step, signature, nostore, digest, queued, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&t.id)
        .bind(&t.project)
        .bind(&t.step)
        .bind(&t.signature)
        .bind(t.nostore)
        .bind(&t.digest)
        .bind(t.queued)
        .bind(t.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_trigger(&self, id: &str) -> Result<Option<TriggerRecord>> {
        let row: Option<TriggerRow> = sqlx::query_as(
            "SELECT id, project, step, signature, nostore, digest, queued, created_at FROM triggers
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(TriggerRecord::from))
    }

    async fn list_triggers(&self, project: &str, step: &str) -> Result<Vec<TriggerRecord>> {
        let rows: Vec<TriggerRow> = sqlx::query_as(
            "SELECT id, project, step, signature, nostore, digest, queued, created_at FROM triggers
             WHERE project = $1 AND step = $2 ORDER BY created_at, id",
        )
        .bind(project)
        .bind(step)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(TriggerRecord::from).collect())
    }

    async fn delete_trigger(&self, project: &str, step: &str, id: &str) -> Result<bool> {
        let deleted =
            sqlx::query("DELETE FROM triggers WHERE project = $1 AND step = $2 AND id = $3")
                .bind(project)
                .bind(step)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(deleted > 0)
    }

    async fn delete_triggers_of_step(&self, project: &str, step: &str) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM triggers WHERE project = $1 AND step = $2")
                .bind(project)
                .bind(step)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}
