//! The SQLite backend: the embedded default, one node, one file
//! (`<data-dir>/airlock.db`) in WAL mode.
//!
//! Why SQLite's own transactions suffice here: it has one writer at a time,
//! and every multi-statement write below runs inside `BEGIN IMMEDIATE`, which
//! takes the write lock up front, so a read-check-write sequence cannot
//! interleave with another writer (another process on the same file
//! included). What many nodes would coordinate through the database —
//! locks, rate limits, periodic ticks — is kept in this process
//! ([`coordination`]): with one node there is no one to share it with.

mod accounts;
mod connect;
mod console;
mod coordination;
mod credential_use;
mod live_logs;
mod migrations;
mod platform;
mod queue;
mod runs;
mod schedules;
mod sealed;
mod secrets;
mod steps;
mod triggers;
mod usage;

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::repo::{Backend, Database};
use super::{DB_FILE, Result, StoreError};

/// The store in one SQLite file.
#[derive(Debug)]
pub struct SqliteDatabase {
    pool: SqlitePool,
    path: PathBuf,
    local: Arc<coordination::Local>,
}

/// How SQLite makes a commit durable.
///
/// - `Full` (the default): every commit is fsync'd to the WAL before it
///   returns, so an answered run survives a power loss or an OS crash.
/// - `Normal`: commits are written to the WAL but fsync'd only at
///   checkpoints. An answered run still survives the process dying (`kill
///   -9`, a panic): the OS has the data. A power loss or OS crash may lose
///   the last commits before the checkpoint (never corrupt the database).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    #[default]
    Full,
    Normal,
}

impl SqliteDatabase {
    /// Opens (creating if missing) `<data_dir>/airlock.db`, in WAL mode, and
    /// brings its schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        Self::open_with(data_dir, Durability::Full).await
    }

    /// [`open`](Self::open) with the commit `durability`.
    pub async fn open_with(data_dir: &Path, durability: Durability) -> Result<Self> {
        create_data_dir(data_dir)?;
        let path = data_dir.join(DB_FILE);
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        restrict_file_permissions(&path);
        let db = Self {
            local: coordination::Local::for_path(&path),
            pool,
            path,
        };
        db.migrate().await?;
        tracing::debug!(path = %db.path.display(), "SQLite store opened");
        Ok(db)
    }

    /// A store in `dir` as the conformance suite uses it.
    pub async fn open_for_tests(dir: &Path) -> Result<Arc<dyn Database>> {
        Ok(Arc::new(Self::open(dir).await?))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection pool (tests poke rows through it).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn migrate(&self) -> Result<()> {
        use sqlx::Row as _;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let version: i64 = sqlx::query("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let supported = migrations::MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported,
            });
        }
        for (i, sql) in migrations::MIGRATIONS
            .iter()
            .enumerate()
            .skip(version as usize)
        {
            sqlx::raw_sql(*sql).execute(&mut *tx).await?;
            // PRAGMA takes no bind parameters; the number is ours, not input.
            let set_version = format!("PRAGMA user_version = {}", i + 1);
            sqlx::raw_sql(sqlx::AssertSqlSafe(set_version))
                .execute(&mut *tx)
                .await?;
            tracing::info!(version = i + 1, "SQLite schema migrated");
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Database for SqliteDatabase {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn close(&self) -> futures_util::future::BoxFuture<'_, ()> {
        // SQLite checkpoints the WAL as the last connection closes.
        Box::pin(self.pool.close())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
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
