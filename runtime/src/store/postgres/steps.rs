//! [`StepRepo`] on PostgreSQL.
//!
//! A version's metadata (`step_versions`) and its component bytes
//! (`step_components`, `BYTEA`) are two tables: a run reads the current
//! version's manifest and digests on every request, and must not drag
//! megabytes of component through the buffer cache to do so. The component
//! row references its version and goes with it (`ON DELETE CASCADE`).
//!
//! A new version is stored and made current in one transaction; two nodes
//! pushing the same new version at once both succeed, and exactly one of
//! them answers "new" (the second `INSERT … ON CONFLICT DO NOTHING` waits
//! for the first and then inserts nothing).

use async_trait::async_trait;

use super::PgDatabase;
use crate::store::Result;
use crate::store::repo::{NewVersion, StepRepo};
use crate::store::steps::{CurrentVersion, SetCurrent, StepMeta, VersionMeta};

#[derive(sqlx::FromRow)]
struct StepRow {
    step: String,
    current_digest: String,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct CurrentRow {
    #[sqlx(flatten)]
    step: StepRow,
    manifest: String,
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    digest: String,
    component_digest: String,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct CurrentVersionRow {
    digest: String,
    component_digest: String,
    manifest: String,
}

impl From<StepRow> for StepMeta {
    fn from(r: StepRow) -> Self {
        StepMeta {
            step: r.step,
            current_digest: r.current_digest,
            updated_at: r.updated_at,
        }
    }
}

#[async_trait]
impl StepRepo for PgDatabase {
    async fn put_version(&self, v: NewVersion<'_>, now: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let created = sqlx::query(
            "INSERT INTO step_versions
                 (project, step, digest, component_digest, manifest, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
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
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(v.project)
            .bind(v.step)
            .bind(v.digest)
            .bind(v.component)
            .execute(&mut *tx)
            .await?;
        }
        // Re-pushing the current version keeps `updated_at`; switching moves it.
        sqlx::query(
            "INSERT INTO steps (project, step, current_digest, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (project, step) DO UPDATE SET
                 current_digest = EXCLUDED.current_digest,
                 updated_at = CASE WHEN steps.current_digest = EXCLUDED.current_digest
                     THEN steps.updated_at ELSE EXCLUDED.updated_at END",
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
        let rows: Vec<StepRow> = sqlx::query_as(
            "SELECT step, current_digest, updated_at FROM steps WHERE project = $1 ORDER BY step",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(StepMeta::from).collect())
    }

    async fn get_step(
        &self,
        project: &str,
        step: &str,
    ) -> Result<Option<(StepMeta, String, Vec<VersionMeta>)>> {
        let Some(current) = sqlx::query_as::<_, CurrentRow>(
            "SELECT s.step, s.current_digest, s.updated_at, v.manifest FROM steps s
             JOIN step_versions v ON v.project = s.project AND v.step = s.step
                 AND v.digest = s.current_digest
             WHERE s.project = $1 AND s.step = $2",
        )
        .bind(project)
        .bind(step)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let versions: Vec<VersionRow> = sqlx::query_as(
            "SELECT digest, component_digest, created_at FROM step_versions
             WHERE project = $1 AND step = $2 ORDER BY created_at DESC, seq DESC",
        )
        .bind(project)
        .bind(step)
        .fetch_all(&self.pool)
        .await?;
        let versions = versions
            .into_iter()
            .map(|r| VersionMeta {
                digest: r.digest,
                component_digest: r.component_digest,
                created_at: r.created_at,
            })
            .collect();
        Ok(Some((current.step.into(), current.manifest, versions)))
    }

    async fn current_version(&self, project: &str, step: &str) -> Result<Option<CurrentVersion>> {
        let row: Option<CurrentVersionRow> = sqlx::query_as(
            "SELECT v.digest, v.component_digest, v.manifest FROM steps s
             JOIN step_versions v ON v.project = s.project AND v.step = s.step
                 AND v.digest = s.current_digest
             WHERE s.project = $1 AND s.step = $2",
        )
        .bind(project)
        .bind(step)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| CurrentVersion {
            digest: r.digest,
            component_digest: r.component_digest,
            manifest: r.manifest,
        }))
    }

    async fn version(
        &self,
        project: &str,
        step: &str,
        digest: &str,
    ) -> Result<Option<CurrentVersion>> {
        let row: Option<CurrentVersionRow> = sqlx::query_as(
            "SELECT digest, component_digest, manifest FROM step_versions
             WHERE project = $1 AND step = $2 AND digest = $3",
        )
        .bind(project)
        .bind(step)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| CurrentVersion {
            digest: r.digest,
            component_digest: r.component_digest,
            manifest: r.manifest,
        }))
    }

    async fn set_current_version(
        &self,
        project: &str,
        step: &str,
        digest: &str,
        now: i64,
    ) -> Result<SetCurrent> {
        // `FOR UPDATE` holds the step's row until commit: an upload (its
        // upsert) or a delete of the step on another node waits, so the
        // version checked here still exists when it is made current.
        let mut tx = self.pool.begin().await?;
        let found: Option<(String, bool)> = sqlx::query_as(
            "SELECT current_digest, EXISTS (SELECT 1 FROM step_versions v
                 WHERE v.project = $1 AND v.step = $2 AND v.digest = $3)
             FROM steps WHERE project = $1 AND step = $2 FOR UPDATE",
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
                    "UPDATE steps SET current_digest = $3, updated_at = $4
                     WHERE project = $1 AND step = $2",
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
            "SELECT component FROM step_components
             WHERE project = $1 AND step = $2 AND digest = $3",
        )
        .bind(project)
        .bind(step)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn delete_step(&self, project: &str, step: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM steps WHERE project = $1 AND step = $2")
            .bind(project)
            .bind(step)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Components go with their versions (`ON DELETE CASCADE`).
        sqlx::query("DELETE FROM step_versions WHERE project = $1 AND step = $2")
            .bind(project)
            .bind(step)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done > 0)
    }
}
