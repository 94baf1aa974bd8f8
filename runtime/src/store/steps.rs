//! Steps of `airlock serve`: immutable versions named by a digest of their
//! component and manifest ([`version_digest`]), and each step's current
//! version. Same database and pool as the
//! [`SecretStore`].

use sha2::{Digest as _, Sha256};

use super::cache::{self, StoreCaches};
use super::repo::{Change, NewVersion};
use super::{Db, Result, SecretStore, unix_now};

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
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StepMeta {
    pub step: String,
    pub current_digest: String,
    pub updated_at: i64,
}

/// One stored version of a step.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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
#[derive(Clone, PartialEq, Eq, Debug, sqlx::FromRow)]
pub struct CurrentVersion {
    pub digest: String,
    /// `sha256:<hex>` of the component bytes.
    pub component_digest: String,
    pub manifest: String,
}

/// What [`StepStore::set_current`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetCurrent {
    /// The version is current now (it was not before).
    Changed,
    /// It was current already; nothing changed.
    Unchanged,
    /// There is no such step.
    NoStep,
    /// The step has no version with this digest.
    NoVersion,
}

/// Whether `digest` has the form every version digest has:
/// `sha256:` and 64 lowercase hex digits.
pub fn is_version_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// The step tables.
#[derive(Debug, Clone)]
pub struct StepStore {
    db: Db,
    caches: std::sync::Arc<StoreCaches>,
}

impl StepStore {
    /// The step tables of `secrets`' database.
    pub fn new(secrets: &SecretStore) -> Self {
        Self {
            db: secrets.db().clone(),
            caches: secrets.caches().clone(),
        }
    }

    /// Stores a version (if new) and makes it the step's current one, in
    /// one transaction; `true` when the version was new.
    pub async fn put_version(
        &self,
        project: &str,
        step: &str,
        digest: &str,
        component_digest: &str,
        component: &[u8],
        manifest: &str,
    ) -> Result<bool> {
        let version = NewVersion {
            project,
            step,
            digest,
            component_digest,
            component,
            manifest,
        };
        let created = self.db.put_version(version, unix_now()).await?;
        self.changed(project, step).await;
        Ok(created)
    }

    /// Makes the stored version `digest` the step's current one (a
    /// rollback, or forward again). Publishes the change, so the next run on
    /// any node resolves the new current version.
    pub async fn set_current(&self, project: &str, step: &str, digest: &str) -> Result<SetCurrent> {
        let outcome = self
            .db
            .set_current_version(project, step, digest, unix_now())
            .await?;
        if outcome == SetCurrent::Changed {
            self.changed(project, step).await;
        }
        Ok(outcome)
    }

    async fn changed(&self, project: &str, step: &str) {
        let change = Change::Step {
            project: project.to_owned(),
            step: step.to_owned(),
        };
        cache::publish(&self.db, change).await;
    }

    /// The steps of `project`, by name.
    pub async fn list(&self, project: &str) -> Result<Vec<StepMeta>> {
        self.db.list_steps(project).await
    }

    /// A step with its versions (newest first), or `None`.
    pub async fn get(&self, project: &str, step: &str) -> Result<Option<StepDetail>> {
        Ok(self
            .db
            .get_step(project, step)
            .await?
            .map(|(meta, manifest, versions)| StepDetail {
                meta,
                manifest,
                versions,
            }))
    }

    /// The current version's digests and manifest (never its component
    /// bytes), or `None`.
    /// Cached until the step changes (see [`super::cache`]).
    pub async fn current(&self, project: &str, step: &str) -> Result<Option<CurrentVersion>> {
        let key = (project.to_owned(), step.to_owned());
        let read_at = self.caches.sync();
        if let Some(hit) = self.caches.current.get(&key) {
            return Ok(hit);
        }
        let current = self.db.current_version(project, step).await?;
        self.caches
            .fill(read_at, &self.caches.current, key, current.clone());
        Ok(current)
    }

    /// One stored version (current or not) without its component bytes, or
    /// `None`: what a trigger pinned to a digest runs. Cached like
    /// [`current`](Self::current): versions are immutable, and the entry
    /// goes when the step changes (a deleted step takes its versions).
    pub async fn version(
        &self,
        project: &str,
        step: &str,
        digest: &str,
    ) -> Result<Option<CurrentVersion>> {
        let key = (project.to_owned(), step.to_owned(), digest.to_owned());
        let read_at = self.caches.sync();
        if let Some(hit) = self.caches.versions.get(&key) {
            return Ok(hit);
        }
        let found = self.db.version(project, step, digest).await?;
        self.caches
            .fill(read_at, &self.caches.versions, key, found.clone());
        Ok(found)
    }

    /// The component bytes of one version: read only when the engine does
    /// not already hold it compiled.
    pub async fn component(
        &self,
        project: &str,
        step: &str,
        digest: &str,
    ) -> Result<Option<Vec<u8>>> {
        self.db.component(project, step, digest).await
    }

    /// Deletes a step and all its versions (its runs stay); `false` when
    /// there was no such step.
    pub async fn delete(&self, project: &str, step: &str) -> Result<bool> {
        let deleted = self.db.delete_step(project, step).await?;
        self.changed(project, step).await;
        Ok(deleted)
    }
}
