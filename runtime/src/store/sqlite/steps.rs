//! Step versions on SQLite. Component bytes live in `step_components`, so
//! the reads a run makes never touch them.

use async_trait::async_trait;

use super::SqliteDatabase;
use crate::store::Result;
use crate::store::repo::{NewVersion, StepRepo};
use crate::store::steps::{CurrentVersion, SetCurrent, StepMeta, VersionMeta};

#[derive(sqlx::FromRow)]
struct StepRow {
    current_digest: String,
    updated_at: i64,
    manifest: String,
}

#[async_trait]
impl StepRepo for SqliteDatabase {
    async fn put_version(&self, v: NewVersion<'_>, now: i64) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let created = sqlx::query(
            "INSERT INTO step_versions (project, step, digest, component_digest, manifest, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        )
        .bind(v.project)
        .bind(v.step)
        .bind(v.digest)
        .bind(v.component_digest)
        .bind(v.manifest)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if created {
            sqlx::query(
                "INSERT INTO step_components (project, step, digest, component)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            )
            .bind(v.project)
            .bind(v.step)
            .bind(v.digest)
            .bind(v.component)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO steps (project, step, current_digest, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (project, step) DO UPDATE SET
                 current_digest = excluded.current_digest,
                 updated_at = CASE WHEN steps.current_digest = excluded.current_digest
                     THEN steps.updated_at ELSE excluded.updated_at END",
        )
        .bind(v.project)
        .bind(v.step)
        .bind(v.digest)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn list_steps(&self, project: &str) -> Result<Vec<StepMeta>> {
        Ok(sqlx::query_as(
            "SELECT step, current_digest, updated_at FROM steps WHERE project = ?1 ORDER BY step",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn get_step(
        &self,
        project: &str,
        step: &str,
    ) -> Result<Option<(StepMeta, String, Vec<VersionMeta>)>> {
        let row: Option<StepRow> = sqlx::query_as(
            "SELECT s.current_digest, s.updated_at, v.manifest FROM steps s
             JOIN step_versions v ON v.project = s.project AND v.step = s.step
                 AND v.digest = s.current_digest
             WHERE s.project = ?1 AND s.step = ?2",
        )
        .bind(project)
        .bind(step)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let versions: Vec<VersionMeta> = sqlx::query_as(
            "SELECT digest, component_digest, created_at FROM step_versions
             WHERE project = ?1 AND step = ?2 ORDER BY created_at DESC, rowid DESC",
        )
        .bind(project)
        .bind(step)
        .fetch_all(&self.pool)
        .await?;
        let meta = StepMeta {
            step: step.to_owned(),
            current_digest: row.current_digest,
            updated_at: row.updated_at,
        };
        Ok(Some((meta, row.manifest, versions)))
    }

    async fn current_version(&self, project: &str, step: &str) -> Result<Option<CurrentVersion>> {
        Ok(sqlx::query_as(
            "SELECT v.digest, v.component_digest, v.manifest FROM steps s
             JOIN step_versions v ON v.project = s.project AND v.step = s.step
                 AND v.digest = s.current_digest
             WHERE s.project = ?1 AND s.step = ?2",
        )
        .bind(project)
        .bind(step)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn version(
        &self,
        project: &str,
        step: &str,
        digest: &str,
    ) -> Result<Option<CurrentVersion>> {
        Ok(sqlx::query_as(
            "SELECT digest, component_digest, manifest FROM step_versions
             WHERE project = ?1 AND step = ?2 AND digest = ?3",
        )
        .bind(project)
        .bind(step)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn set_current_version(
        &self,
        project: &str,
        step: &str,
        digest: &str,
        now: i64,
    ) -> Result<SetCurrent> {
        // `BEGIN IMMEDIATE` takes the write lock first: no upload or delete
        // can come between the check and the update.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let found: Option<(String, bool)> = sqlx::query_as(
            "SELECT current_digest, EXISTS (SELECT 1 FROM step_versions
                 WHERE project = ?1 AND step = ?2 AND digest = ?3)
             FROM steps WHERE project = ?1 AND step = ?2",
        )
        .bind(project)
        .bind(step)
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match found {
            None => SetCurrent::NoStep,
            Some((_, false)) => SetCurrent::NoVersion,
            Some((current, true)) if current == digest => SetCurrent::Unchanged,
            Some(_) => {
                sqlx::query(
                    "UPDATE steps SET current_digest = ?3, updated_at = ?4
                     WHERE project = ?1 AND step = ?2",
                )
                .bind(project)
                .bind(step)
                .bind(digest)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                SetCurrent::Changed
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn component(&self, project: &str, step: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(
            "SELECT component FROM step_components WHERE project = ?1 AND step = ?2 AND digest = ?3",
        )
        .bind(project)
        .bind(step)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn delete_step(&self, project: &str, step: &str) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query("DELETE FROM steps WHERE project = ?1 AND step = ?2")
            .bind(project)
            .bind(step)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for table in ["step_versions", "step_components"] {
            let sql = format!("DELETE FROM {table} WHERE project = ?1 AND step = ?2");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(project)
                .bind(step)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done > 0)
    }
}
