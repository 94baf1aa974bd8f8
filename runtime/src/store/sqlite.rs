//! [`SecretStore`]: secrets sealed with the master key, kept in SQLite.
//!
//! The schema is created and upgraded at open by [`migrate`]: an ordered list
//! of migrations embedded in the binary, applied inside one `BEGIN IMMEDIATE`
//! transaction and recorded in SQLite's `PRAGMA user_version`. That keeps the
//! binary self-contained (no migrations directory at run time, no sqlx macros)
//! and is safe to run on every open, by several processes at once.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::Row as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use zeroize::Zeroizing;

use super::crypto::{self, CryptoError, MasterKey, Sealed};
use super::{
    DB_FILE, Result, SecretMeta, SetOutcome, StoreError, validate_project_name,
    validate_secret_name,
};

/// Schema migrations, in order; migration `i` brings `user_version` to `i + 1`.
/// Append only: never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: the secrets table.
    "CREATE TABLE secrets (
        project    TEXT    NOT NULL,
        name       TEXT    NOT NULL,
        key_id     TEXT    NOT NULL,
        nonce      BLOB    NOT NULL,
        ciphertext BLOB    NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (project, name)
    )",
    // 2: connected accounts (see `accounts.rs`). Credentials are one sealed
    // JSON object, so every change to them (a rotated refresh token with its
    // access token) is a single-column write. `rowid` orders accounts created
    // in the same second, so "newest" is well defined.
    "CREATE TABLE accounts (
        id               TEXT    NOT NULL PRIMARY KEY,
        project          TEXT    NOT NULL,
        external_user_id TEXT    NOT NULL,
        app              TEXT    NOT NULL,
        key_id           TEXT    NOT NULL,
        nonce            BLOB    NOT NULL,
        ciphertext       BLOB    NOT NULL,
        custom_fields    TEXT    NOT NULL,
        expires_at       INTEGER,
        status           TEXT    NOT NULL CHECK (status IN ('healthy', 'needs_reauth')),
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL
    );
    CREATE INDEX accounts_by_user_app ON accounts (project, external_user_id, app);",
    // 3: platform auth for `airlock serve` (see `platform.rs`): projects, API
    // keys, OAuth clients and their access tokens (all credentials stored as
    // SHA-256 hashes only), and the audit log of failed authentication.
    "CREATE TABLE projects (
        name       TEXT    NOT NULL PRIMARY KEY,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE api_keys (
        id          TEXT    NOT NULL PRIMARY KEY,
        name        TEXT    NOT NULL,
        secret_hash BLOB    NOT NULL,
        scopes      TEXT    NOT NULL,
        project     TEXT,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE oauth_clients (
        id          TEXT    NOT NULL PRIMARY KEY,
        name        TEXT    NOT NULL,
        secret_hash BLOB    NOT NULL,
        scopes      TEXT    NOT NULL,
        project     TEXT,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE oauth_tokens (
        token_hash BLOB    NOT NULL PRIMARY KEY,
        client_id  TEXT    NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
        scopes     TEXT    NOT NULL,
        project    TEXT,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX oauth_tokens_by_client ON oauth_tokens (client_id);
    CREATE TABLE auth_audit (
        id     INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        at     INTEGER NOT NULL,
        method TEXT    NOT NULL,
        route  TEXT    NOT NULL,
        key_id TEXT,
        reason TEXT    NOT NULL
    );",
    // 4: steps and runs of `airlock serve` (see `steps.rs` and `runs.rs`).
    // A step version is immutable and named by a digest of its component and
    // manifest (`component_digest` is the component's own); `steps` points at
    // the current one. Run records hold only what the
    // engine already masked; `nostore` runs leave input, output, error and
    // logs NULL.
    "CREATE TABLE step_versions (
        project    TEXT    NOT NULL,
        step       TEXT    NOT NULL,
        digest           TEXT    NOT NULL,
        component_digest TEXT    NOT NULL,
        component        BLOB    NOT NULL,
        manifest         TEXT    NOT NULL,
        created_at       INTEGER NOT NULL,
        PRIMARY KEY (project, step, digest)
    );
    CREATE TABLE steps (
        project        TEXT    NOT NULL,
        step           TEXT    NOT NULL,
        current_digest TEXT    NOT NULL,
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (project, step)
    );
    CREATE TABLE runs (
        id                TEXT    NOT NULL PRIMARY KEY,
        project           TEXT    NOT NULL,
        step              TEXT    NOT NULL,
        digest            TEXT    NOT NULL,
        status            TEXT    NOT NULL CHECK (status IN ('succeeded', 'failed')),
        created_at        INTEGER NOT NULL,
        duration_ms       INTEGER NOT NULL,
        cpu_ticks         INTEGER NOT NULL,
        memory_peak_bytes INTEGER NOT NULL,
        log_bytes         INTEGER NOT NULL,
        input             TEXT,
        output            TEXT,
        error             TEXT,
        logs              TEXT
    );
    CREATE INDEX runs_by_project_newest ON runs (project, created_at DESC, id DESC);",
    // 5: HTTP triggers of steps (see `triggers.rs`). `signature` is the JSON
    // of how requests are verified; it names a secret, never holds its value.
    "CREATE TABLE triggers (
        id         TEXT    NOT NULL PRIMARY KEY,
        project    TEXT    NOT NULL,
        step       TEXT    NOT NULL,
        signature  TEXT,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX triggers_by_step ON triggers (project, step);",
    // 6: the retention sweep of `airlock serve` deletes runs by age.
    "CREATE INDEX runs_by_created_at ON runs (created_at);",
    // 7: the outbound calls of a run (JSON array of call summaries: method,
    // URL without query (masked), status, timing, bytes, account id; never
    // a header or credential). NULL for `nostore` runs.
    "ALTER TABLE runs ADD COLUMN http_calls TEXT;",
    // 8: a trigger created with `nostore` records every run it starts as
    // metadata only (see `triggers.rs`).
    "ALTER TABLE triggers ADD COLUMN nostore INTEGER NOT NULL DEFAULT 0 CHECK (nostore IN (0, 1));",
];

/// Secrets encrypted at rest in `<data-dir>/airlock.db`.
///
/// Every method that touches a value takes the [`MasterKey`]; listing and
/// deleting do not need it, since they never see a value.
#[derive(Debug, Clone)]
pub struct SecretStore {
    pool: SqlitePool,
    path: PathBuf,
}

impl SecretStore {
    /// Opens (creating if missing) the store in `data_dir`, in WAL mode, and
    /// brings its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        create_data_dir(data_dir)?;
        let path = data_dir.join(DB_FILE);
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        restrict_file_permissions(&path);
        let store = Self { pool, path };
        store.migrate().await?;
        tracing::debug!(path = %store.path.display(), "secret store opened");
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection; SQLite checkpoints the WAL as the last one closes.
    pub async fn close(self) {
        self.pool.close().await;
    }

    #[cfg(test)]
    pub(crate) fn pool_for_tests(&self) -> SqlitePool {
        self.pool.clone()
    }

    /// The connection pool, shared with [`AccountStore`](super::AccountStore)
    /// so accounts live in the same database, schema and WAL.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn migrate(&self) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let version: i64 = sqlx::query("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            sqlx::raw_sql(*sql).execute(&mut *tx).await?;
            // PRAGMA takes no bind parameters; the number is ours, not input.
            let set_version = format!("PRAGMA user_version = {}", i + 1);
            sqlx::raw_sql(sqlx::AssertSqlSafe(set_version))
                .execute(&mut *tx)
                .await?;
            tracing::info!(version = i + 1, "secret store schema migrated");
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores `value` as secret `name` of `project`, sealed under `key`:
    /// inserts it, or replaces the value of an existing one (its `created_at`
    /// is kept, `updated_at` changes).
    ///
    /// Refuses with [`StoreError::StoreKeyMismatch`] when the store already holds
    /// values sealed under another key, so one store never mixes keys (which
    /// would make later reads and rotation fail half-way).
    pub async fn set(
        &self,
        key: &MasterKey,
        project: &str,
        name: &str,
        value: &str,
    ) -> Result<SetOutcome> {
        validate_project_name(project)?;
        validate_secret_name(name)?;
        let sealed = crypto::seal(key, &crypto::secret_aad(project, name), value.as_bytes())
            .map_err(|source| StoreError::Encrypt {
                project: project.to_owned(),
                name: name.to_owned(),
                source,
            })?;
        let now = unix_now();

        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        check_store_key(&mut tx, key).await?;
        let updated = sqlx::query(
            "UPDATE secrets SET key_id = ?1, nonce = ?2, ciphertext = ?3, updated_at = ?4
             WHERE project = ?5 AND name = ?6",
        )
        .bind(&sealed.key_id)
        .bind(sealed.nonce.as_slice())
        .bind(&sealed.ciphertext)
        .bind(now)
        .bind(project)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let outcome = if updated > 0 {
            SetOutcome::Updated
        } else {
            sqlx::query(
                "INSERT INTO secrets (project, name, key_id, nonce, ciphertext, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            )
            .bind(project)
            .bind(name)
            .bind(&sealed.key_id)
            .bind(sealed.nonce.as_slice())
            .bind(&sealed.ciphertext)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            SetOutcome::Created
        };
        tx.commit().await?;
        tracing::info!(project, name, key_id = key.id(), ?outcome, "secret stored");
        Ok(outcome)
    }

    /// The value of secret `name` of `project`, or `None` when there is none.
    ///
    /// A value sealed under another key fails with [`StoreError::KeyMismatch`]
    /// (naming both key ids); a tampered row fails with [`StoreError::Decrypt`].
    pub async fn get(
        &self,
        key: &MasterKey,
        project: &str,
        name: &str,
    ) -> Result<Option<Zeroizing<String>>> {
        validate_project_name(project)?;
        validate_secret_name(name)?;
        let row = sqlx::query(
            "SELECT key_id, nonce, ciphertext FROM secrets WHERE project = ?1 AND name = ?2",
        )
        .bind(project)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let sealed = sealed_from_row(&row, project, name)?;
        let plaintext = open_secret(key, project, name, &sealed)?;
        Ok(Some(into_string(plaintext, project, name)?))
    }

    /// The secrets of `project`, by name: names and dates, never values.
    pub async fn list(&self, project: &str) -> Result<Vec<SecretMeta>> {
        validate_project_name(project)?;
        let rows = sqlx::query(
            "SELECT name, created_at, updated_at FROM secrets WHERE project = ?1 ORDER BY name",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SecretMeta {
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Deletes secret `name` of `project`; `false` when there was none.
    pub async fn delete(&self, project: &str, name: &str) -> Result<bool> {
        validate_project_name(project)?;
        validate_secret_name(name)?;
        let deleted = sqlx::query("DELETE FROM secrets WHERE project = ?1 AND name = ?2")
            .bind(project)
            .bind(name)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if deleted > 0 {
            tracing::info!(project, name, "secret deleted");
        }
        Ok(deleted > 0)
    }

    /// Re-encrypts every secret and every connected account's credentials of
    /// every project from `old` to `new`, in one transaction: either all rows
    /// are re-sealed under `new` or none is changed. Returns how many values
    /// (secrets plus accounts) were re-encrypted. `updated_at` is kept, since
    /// no value changed.
    ///
    /// Fails without changing anything if any row is not sealed under `old`
    /// ([`StoreError::KeyMismatch`]) or does not decrypt.
    pub async fn rotate_key(&self, old: &MasterKey, new: &MasterKey) -> Result<usize> {
        self.rotate_key_inner(old, new, None).await
    }

    /// [`rotate_key`](Self::rotate_key) with a test hook: when `fail_after` is
    /// `Some(n)`, fails with [`StoreError::Injected`] after re-encrypting `n`
    /// rows, before committing.
    pub(crate) async fn rotate_key_inner(
        &self,
        old: &MasterKey,
        new: &MasterKey,
        fail_after: Option<usize>,
    ) -> Result<usize> {
        if old.id() == new.id() {
            return Err(StoreError::SameKey(old.id().to_owned()));
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        match reseal_all(&mut tx, old, new, fail_after).await {
            Ok(count) => {
                tx.commit().await?;
                tracing::info!(
                    count,
                    old_key_id = old.id(),
                    new_key_id = new.id(),
                    "master key rotated"
                );
                Ok(count)
            }
            Err(e) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::error!(error = %rollback, "rolling back the key rotation failed");
                }
                tracing::warn!(error = %e, "master key rotation aborted; nothing was changed");
                Err(e)
            }
        }
    }
}

/// Fails with [`StoreError::StoreKeyMismatch`] when any value in the store
/// (a secret or an account's credentials) is sealed under a key other than
/// `key`, so one store never mixes keys.
pub(crate) async fn check_store_key(conn: &mut SqliteConnection, key: &MasterKey) -> Result<()> {
    let other_key: Option<String> = sqlx::query(
        "SELECT key_id FROM secrets WHERE key_id <> ?1
         UNION ALL SELECT key_id FROM accounts WHERE key_id <> ?1 LIMIT 1",
    )
    .bind(key.id())
    .fetch_optional(&mut *conn)
    .await?
    .map(|row| row.try_get(0))
    .transpose()?;
    match other_key {
        Some(stored) => Err(StoreError::StoreKeyMismatch {
            current: key.id().to_owned(),
            stored,
        }),
        None => Ok(()),
    }
}

async fn reseal_all(
    conn: &mut SqliteConnection,
    old: &MasterKey,
    new: &MasterKey,
    fail_after: Option<usize>,
) -> Result<usize> {
    let rows = sqlx::query(
        "SELECT project, name, key_id, nonce, ciphertext FROM secrets ORDER BY project, name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut count = 0;
    for row in &rows {
        if fail_after == Some(count) {
            return Err(StoreError::Injected(count));
        }
        let project: String = row.try_get("project")?;
        let name: String = row.try_get("name")?;
        let sealed = sealed_from_row(row, &project, &name)?;
        let aad = crypto::secret_aad(&project, &name);
        let plaintext = open_secret(old, &project, &name, &sealed)?;
        let resealed =
            crypto::seal(new, &aad, &plaintext).map_err(|source| StoreError::Encrypt {
                project: project.clone(),
                name: name.clone(),
                source,
            })?;
        drop(plaintext);
        sqlx::query(
            "UPDATE secrets SET key_id = ?1, nonce = ?2, ciphertext = ?3
             WHERE project = ?4 AND name = ?5",
        )
        .bind(&resealed.key_id)
        .bind(resealed.nonce.as_slice())
        .bind(&resealed.ciphertext)
        .bind(&project)
        .bind(&name)
        .execute(&mut *conn)
        .await?;
        count += 1;
    }
    // Connected accounts' credentials are re-sealed in the same transaction.
    count += super::accounts::reseal_accounts(&mut *conn, old, new, fail_after, count).await?;
    if fail_after == Some(count) {
        return Err(StoreError::Injected(count));
    }
    Ok(count)
}

fn sealed_from_row(row: &sqlx::sqlite::SqliteRow, project: &str, name: &str) -> Result<Sealed> {
    let key_id: String = row.try_get("key_id")?;
    let nonce: Vec<u8> = row.try_get("nonce")?;
    let ciphertext: Vec<u8> = row.try_get("ciphertext")?;
    Sealed::from_parts(key_id, &nonce, ciphertext).map_err(|source| StoreError::Decrypt {
        project: project.to_owned(),
        name: name.to_owned(),
        source,
    })
}

fn open_secret(
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

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn create_data_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| StoreError::DataDir {
        path: dir.to_owned(),
        source,
    })
}

/// Makes the database readable by its owner only. Best effort: the values in
/// it are encrypted either way.
fn restrict_file_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot restrict the database file's permissions");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
