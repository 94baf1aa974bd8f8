//! HTTP triggers on SQLite.

use async_trait::async_trait;

use super::SqliteDatabase;
use crate::store::Result;
use crate::store::repo::TriggerRepo;
use crate::store::triggers::TriggerRecord;

const COLUMNS: &str = "id, project, step, signature, nostore, digest, queued, created_at";

#[async_trait]
impl TriggerRepo for SqliteDatabase {
    async fn insert_trigger(&self, t: &TriggerRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO triggers (id, project, step, signature, nostore, digest, queued, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
        let sql = format!("SELECT {COLUMNS} FROM triggers WHERE id = ?1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn list_triggers(&self, project: &str, step: &str) -> Result<Vec<TriggerRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM triggers WHERE project = ?1 AND step = ?2
             ORDER BY created_at, id"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(step)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn delete_trigger(&self, project: &str, step: &str, id: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM triggers WHERE project = ?1 AND step = ?2 AND id = ?3")
            .bind(project)
            .bind(step)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn delete_triggers_of_step(&self, project: &str, step: &str) -> Result<u64> {
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
