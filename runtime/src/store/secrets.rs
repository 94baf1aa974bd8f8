//! [`SecretStore`]: secrets sealed with the master key, on any backend.
//!
//! Sealing happens here, above the storage seam: a backend only ever sees
//! the key id, the nonce and the ciphertext. The keyring check (every key a
//! stored value is sealed under must be in the ring) also lives here, so a
//! node started with the wrong key, or without a retired key some value
//! still needs, refuses before it writes anything.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use super::cache::{self, StoreCaches};
use super::credential_use::{CredentialKind, secret_id};
use super::crypto::{self, CryptoError, MasterKey, Sealed};
use super::repo::{Change, SealedOwner, SealedRecord};
use super::sqlite::SqliteDatabase;
use super::{
    Db, Result, SecretMeta, SetOutcome, StoreError, unix_now, validate_project_name,
    validate_secret_name,
};

/// How many values one rotation batch re-seals.
const ROTATION_BATCH: u32 = 200;

/// Secrets encrypted at rest. Cheap to clone; every store of the server is
/// built from one (they share its database).
///
/// Every method that touches a value takes the [`MasterKey`] ring; listing
/// and deleting do not need it, since they never see a value.
#[derive(Debug, Clone)]
pub struct SecretStore {
    db: Db,
    /// The SQLite file, when that is the backend.
    path: Option<PathBuf>,
    /// Rings (by current key id) already checked against the key ids in use.
    checked: Arc<Mutex<HashSet<String>>>,
    /// The hot path's caches, shared by every store built from this one.
    caches: Arc<StoreCaches>,
}

impl SecretStore {
    /// Opens (creating if missing) the SQLite store in `data_dir`.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        Self::open_with(data_dir, super::sqlite::Durability::Full).await
    }

    /// [`open`](Self::open) with the commit `durability`.
    pub async fn open_with(data_dir: &Path, durability: super::sqlite::Durability) -> Result<Self> {
        let db = SqliteDatabase::open_with(data_dir, durability).await?;
        let path = db.path().to_owned();
        let mut store = Self::from_db(Arc::new(db));
        store.path = Some(path);
        Ok(store)
    }

    /// The store over an opened database.
    pub fn from_db(db: Db) -> Self {
        Self {
            caches: Arc::new(StoreCaches::new(&db)),
            db,
            path: None,
            checked: Arc::default(),
        }
    }

    /// The caches every store built from this one shares.
    pub fn caches(&self) -> &Arc<StoreCaches> {
        &self.caches
    }

    /// The database every store built from this one uses.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The SQLite database file, if that is the backend.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Closes every connection.
    pub async fn close(self) {
        self.db.close().await;
    }

    /// The SQLite pool, for tests that poke rows.
    #[cfg(test)]
    pub(crate) fn pool_for_tests(&self) -> sqlx::SqlitePool {
        self.db
            .as_any()
            .downcast_ref::<SqliteDatabase>()
            .expect("a SQLite store")
            .pool()
            .clone()
    }

    /// Fails with [`StoreError::StoreKeyMismatch`] when a value in the store
    /// is sealed under a key that `ring` lacks: writing under this ring
    /// would leave a store no one key set can read. Checked once per ring
    /// and store handle.
    pub async fn check_keyring(&self, ring: &MasterKey) -> Result<()> {
        if self.lock_checked().contains(ring.id()) {
            return Ok(());
        }
        let known: HashSet<&str> = ring.ids().collect();
        let in_use = self.db.key_ids_in_use().await?;
        if let Some(stored) = in_use.into_iter().find(|id| !known.contains(id.as_str())) {
            return Err(StoreError::StoreKeyMismatch {
                current: ring.id().to_owned(),
                stored,
            });
        }
        self.lock_checked().insert(ring.id().to_owned());
        Ok(())
    }

    fn lock_checked(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.checked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores `value` as secret `name` of `project`, sealed under the ring's
    /// current key: inserts it, or replaces the value of an existing one
    /// (its `created_at` is kept, `updated_at` changes).
    pub async fn set(
        &self,
        key: &MasterKey,
        project: &str,
        name: &str,
        value: &str,
    ) -> Result<SetOutcome> {
        validate_project_name(project)?;
        validate_secret_name(name)?;
        self.check_keyring(key).await?;
        let sealed = crypto::seal(key, &crypto::secret_aad(project, name), value.as_bytes())
            .map_err(|source| StoreError::Encrypt {
                project: project.to_owned(),
                name: name.to_owned(),
                source,
            })?;
        let outcome = self
            .db
            .put_secret(project, name, &sealed, unix_now())
            .await?;
        self.changed(project, name).await;
        tracing::info!(project, name, key_id = key.id(), ?outcome, "secret stored");
        Ok(outcome)
    }

    /// The value of secret `name` of `project`, or `None` when there is none.
    ///
    /// A value sealed under a key the ring lacks fails with
    /// [`StoreError::KeyMismatch`] (naming both key ids); a tampered row fails
    /// with [`StoreError::Decrypt`].
    pub async fn get(
        &self,
        key: &MasterKey,
        project: &str,
        name: &str,
    ) -> Result<Option<Zeroizing<String>>> {
        let names = [name.to_owned()];
        Ok(self
            .get_many(key, project, &names)
            .await?
            .pop()
            .map(|(_, value)| value))
    }

    async fn changed(&self, project: &str, name: &str) {
        let change = Change::Secret {
            project: project.to_owned(),
            name: name.to_owned(),
        };
        cache::publish(&self.db, change).await;
    }

    /// The values of those of `names` that exist, in the order of `names`,
    /// read in one query.
    pub async fn get_many(
        &self,
        key: &MasterKey,
        project: &str,
        names: &[String],
    ) -> Result<Vec<(String, Zeroizing<String>)>> {
        validate_project_name(project)?;
        for name in names {
            validate_secret_name(name)?;
        }
        // Sealed values come from the cache where it has them (only
        // ciphertext is cached); the rest in one query.
        let read_at = self.caches.sync();
        let mut sealed: Vec<Option<Sealed>> = Vec::with_capacity(names.len());
        let mut missing = Vec::new();
        for name in names {
            let hit = self.caches.secrets.get(&(project.to_owned(), name.clone()));
            if hit.is_none() {
                missing.push(name.clone());
            }
            sealed.push(hit.flatten());
        }
        if !missing.is_empty() {
            let mut rows = self.db.get_secrets(project, &missing).await?;
            for name in &missing {
                let row = rows
                    .iter()
                    .position(|(n, _)| n == name)
                    .map(|i| rows.swap_remove(i).1);
                let at = names
                    .iter()
                    .position(|n| n == name)
                    .expect("a requested name");
                sealed[at] = row.clone();
                self.caches.fill(
                    read_at,
                    &self.caches.secrets,
                    (project.to_owned(), name.clone()),
                    row,
                );
            }
        }
        let mut out = Vec::with_capacity(names.len());
        for (name, sealed) in names.iter().zip(sealed) {
            if let Some(sealed) = sealed {
                out.push((name.clone(), open_value(key, project, name, &sealed)?));
                self.caches
                    .uses
                    .mark(CredentialKind::Secret, &secret_id(project, name));
            }
        }
        Ok(out)
    }

    /// The secrets of `project`, by name: names and dates, never values.
    /// When each of `names` of `project` was last read by a run, Unix
    /// seconds.
    pub async fn last_used(
        &self,
        project: &str,
        names: &[String],
    ) -> Result<std::collections::HashMap<String, i64>> {
        let ids: Vec<String> = names.iter().map(|n| secret_id(project, n)).collect();
        let found = self
            .caches
            .uses
            .last_used(&self.db, CredentialKind::Secret, &ids)
            .await?;
        let prefix = format!("{project}/");
        Ok(found
            .into_iter()
            .filter_map(|(id, at)| Some((id.strip_prefix(&prefix)?.to_owned(), at)))
            .collect())
    }

    pub async fn list(&self, project: &str) -> Result<Vec<SecretMeta>> {
        validate_project_name(project)?;
        self.db.list_secrets(project).await
    }

    /// Deletes secret `name` of `project`; `false` when there was none.
    pub async fn delete(&self, project: &str, name: &str) -> Result<bool> {
        validate_project_name(project)?;
        validate_secret_name(name)?;
        let deleted = self.db.delete_secret(project, name).await?;
        self.changed(project, name).await;
        if deleted {
            tracing::info!(project, name, "secret deleted");
        }
        Ok(deleted)
    }

    /// Re-seals every secret and every connected account's credentials from
    /// `old` to `new`; see [`rotate_to_current`](Self::rotate_to_current).
    pub async fn rotate_key(&self, old: &MasterKey, new: &MasterKey) -> Result<usize> {
        if old.id() == new.id() {
            return Err(StoreError::SameKey(old.id().to_owned()));
        }
        let ring = new.clone().with_retired(vec![old.clone()]);
        self.rotate_to_current(&ring).await
    }

    /// Re-seals every value not sealed under the ring's current key, in
    /// batches, while the store stays in use: each value is replaced by a
    /// compare-and-swap on the nonce it was read with, so a concurrent write
    /// (which uses the current key anyway) is never overwritten. Values are
    /// readable throughout with the ring; an interrupted rotation is resumed
    /// by running it again. Returns how many values were re-sealed.
    ///
    /// A value sealed under a key the ring lacks, or one that does not
    /// decrypt, stops the rotation with its error (naming it).
    pub async fn rotate_to_current(&self, ring: &MasterKey) -> Result<usize> {
        self.rotate_inner(ring, None).await
    }

    /// [`rotate_to_current`](Self::rotate_to_current) with a test hook: fails
    /// with [`StoreError::Injected`] after re-sealing `fail_after` values.
    pub(crate) async fn rotate_inner(
        &self,
        ring: &MasterKey,
        fail_after: Option<usize>,
    ) -> Result<usize> {
        // The key ids in use change as values move to the current key: every
        // ring is checked again at its next write.
        self.lock_checked().clear();
        let mut count = 0;
        let result = self.reseal_batches(ring, fail_after, &mut count).await;
        // Cached ciphertext moved, finished or not: caches read it again.
        if count > 0 {
            cache::publish(&self.db, Change::All).await;
        }
        result?;
        tracing::info!(
            count,
            key_id = ring.id(),
            "values re-sealed under the current key"
        );
        Ok(count)
    }

    async fn reseal_batches(
        &self,
        ring: &MasterKey,
        fail_after: Option<usize>,
        count: &mut usize,
    ) -> Result<()> {
        loop {
            let batch = self.db.sealed_not_under(ring.id(), ROTATION_BATCH).await?;
            if batch.is_empty() {
                return Ok(());
            }
            let mut progressed = false;
            for record in &batch {
                if fail_after == Some(*count) {
                    return Err(StoreError::Injected(*count));
                }
                let resealed = reseal(ring, record)?;
                // Losing the race means a concurrent write replaced the
                // value (with its writer's current key): nothing to do.
                if self.db.reseal(record, &resealed).await? {
                    *count += 1;
                    progressed = true;
                }
            }
            // A batch of nothing but lost races (a node still writing under
            // an old key): stop rather than spin; running again resumes.
            if !progressed {
                return Ok(());
            }
        }
    }
}

/// `record` opened with the ring and sealed again under its current key.
fn reseal(ring: &MasterKey, record: &SealedRecord) -> Result<Sealed> {
    match &record.owner {
        SealedOwner::Secret { project, name } => {
            let aad = crypto::secret_aad(project, name);
            let plain = open_raw(ring, project, name, &record.sealed)?;
            crypto::seal(ring, &aad, &plain).map_err(|source| StoreError::Encrypt {
                project: project.clone(),
                name: name.clone(),
                source,
            })
        }
        SealedOwner::Account(meta) => super::accounts::reseal(ring, meta, &record.sealed),
    }
}

fn open_raw(
    key: &MasterKey,
    project: &str,
    name: &str,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>> {
    crypto::open(key, &crypto::secret_aad(project, name), sealed).map_err(|e| match e {
        CryptoError::KeyMismatch { current, stored } => StoreError::KeyMismatch { current, stored },
        source => StoreError::Decrypt {
            project: project.to_owned(),
            name: name.to_owned(),
            source,
        },
    })
}

fn open_value(
    key: &MasterKey,
    project: &str,
    name: &str,
    sealed: &Sealed,
) -> Result<Zeroizing<String>> {
    into_string(open_raw(key, project, name, sealed)?, project, name)
}

/// Turns decrypted bytes into a string without leaving an unzeroed copy.
fn into_string(
    mut plaintext: Zeroizing<Vec<u8>>,
    project: &str,
    name: &str,
) -> Result<Zeroizing<String>> {
    let bytes = std::mem::take(&mut *plaintext);
    match String::from_utf8(bytes) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) => {
            // Zero the bytes before they are dropped.
            drop(Zeroizing::new(e.into_bytes()));
            Err(StoreError::Decrypt {
                project: project.to_owned(),
                name: name.to_owned(),
                source: CryptoError::Decrypt,
            })
        }
    }
}
