//! Steps of `airlock serve`: immutable versions named by a digest of their
//! component and manifest ([`version_digest`]), and each step's current
//! version. Same database and pool as the
//! [`SecretStore`].

use sha2::{Digest as _, Sha256};
use sqlx::Row as _;
use sqlx::sqlite::SqlitePool;

use super::sqlite::unix_now;
use super::{Result, SecretStore};

/// The digest naming a version: `sha256:<hex>` over the component's digest
/// and the manifest text, so a changed manifest is a new version (a grant
/// removed from the manifest must not be silently ignored).
pub fn version_digest(component_digest: &str, manifest: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"airlock-step-version-v1\0");
    h.update(component_digest.as_bytes());
    h.update(b"\0");
    h.update(manifest.as_bytes());
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// A step and its current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepMeta {
    pub step: String,
    pub current_digest: String,
    pub updated_at: i64,
}

/// One stored version of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionMeta {
    pub digest: String,
    /// `sha256:<hex>` of the component bytes.
    pub component_digest: String,
    pub created_at: i64,
}

/// A step with its versions and current manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepDetail {
    pub meta: StepMeta,
    /// The manifest text of the current version.
    pub manifest: String,
    /// Newest first.
    pub versions: Vec<VersionMeta>,
}

/// What a run needs of the current version.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CurrentVersion {
    pub digest: String,
    /// `sha256:<hex>` of the component bytes.
    pub component_digest: String,
    pub manifest: String,
}

/// The step tables.
#[derive(Debug, Clone)]
pub struct StepStore {
    pool: SqlitePool,
}

impl StepStore {
    /// The step tables of `secrets`' database (same pool).
    pub fn new(secrets: &SecretStore) -> Self {
        Self {
            pool: secrets.pool().clone(),
        }
    }

    /// Stores a version (unless that digest is already stored) and makes it
    /// current. `true` when the version is new.
    pub async fn put_version(
        &self,
        project: &str,
        step: &str,
        digest: &str,
        component_digest: &str,
        component: &[u8],
        manifest: &str,
    ) -> Result<bool> {
        let now = unix_now();
        let mut tx = self.pool.begin().await?;
        let created = sqlx::query(
            "INSERT INTO step_versions
                 (project, step, digest, component_digest, component, manifest, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        )
        .bind(project)
        .bind(step)
        .bind(digest)
        .bind(component_digest)
        .bind(component)
        .bind(manifest)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        sqlx::query(
            "INSERT INTO steps (project, step, current_digest, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (project, step) DO UPDATE SET
                 current_digest = excluded.current_digest,
                 updated_at = CASE WHEN steps.current_digest = excluded.current_digest
                     THEN steps.updated_at ELSE excluded.updated_at END",
        )
        .bind(project)
        .bind(step)
        .bind(digest)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(created)
    }

    /// The steps of `project`, by name.
    pub async fn list(&self, project: &str) -> Result<Vec<StepMeta>> {
        let rows = sqlx::query(
            "SELECT step, current_digest, updated_at FROM steps WHERE project = ?1 ORDER BY step",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StepMeta {
                    step: r.try_get("step")?,
                    current_digest: r.try_get("current_digest")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// A step with its versions, or `None`.
    pub async fn get(&self, project: &str, step: &str) -> Result<Option<StepDetail>> {
        let Some(row) = sqlx::query(
            "SELECT s.current_digest, s.updated_at, v.manifest FROM steps s
             JOIN step_versions v ON v.project = s.project AND v.step = s.step
                 AND v.digest = s.current_digest
             WHERE s.project = ?1 AND s.step = ?2",
        )
        .bind(project)
        .bind(step)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let versions = sqlx::query(
            "SELECT digest, component_digest, created_at FROM step_versions WHERE project = ?1 AND step = ?2
             ORDER BY created_at DESC, rowid DESC",
        )
        .bind(project)
        .bind(step)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(VersionMeta {
                digest: r.try_get("digest")?,
                component_digest: r.try_get("component_digest")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(Some(StepDetail {
            meta: StepMeta {
                step: step.to_owned(),
                current_digest: row.try_get("current_digest")?,
                updated_at: row.try_get("updated_at")?,
            },
            manifest: row.try_get("manifest")?,
            versions,
        }))
    }

    /// The current version's component and manifest, or `None`.
    pub async fn current(&self, project: &str, step: &str) -> Result<Option<CurrentVersion>> {
        let row = sqlx::query(
            "SELECT v.digest, v.component_digest, v.manifest FROM steps s
             JOIN step_versions v ON v.project = s.project AND v.step = s.step
                 AND v.digest = s.current_digest
             WHERE s.project = ?1 AND s.step = ?2",
        )
        .bind(project)
        .bind(step)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(CurrentVersion {
                digest: r.try_get("digest")?,
                component_digest: r.try_get("component_digest")?,
                manifest: r.try_get("manifest")?,
            })
        })
        .transpose()
    }

    /// The component bytes of one version: read only when the engine does
    /// not already hold it compiled.
    pub async fn component(
        &self,
        project: &str,
        step: &str,
        digest: &str,
    ) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query(
            "SELECT component FROM step_versions WHERE project = ?1 AND step = ?2 AND digest = ?3",
        )
        .bind(project)
        .bind(step)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok(r.try_get("component")?)).transpose()
    }

    /// Deletes a step and all its versions (its runs stay); `false` when
    /// there was no such step.
    pub async fn delete(&self, project: &str, step: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM steps WHERE project = ?1 AND step = ?2")
            .bind(project)
            .bind(step)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM step_versions WHERE project = ?1 AND step = ?2")
            .bind(project)
            .bind(step)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done > 0)
    }
}
