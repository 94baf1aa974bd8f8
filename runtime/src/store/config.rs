//! Which database a process uses: `--database-url postgres://…` (env
//! `AIRLOCK_DATABASE_URL`, `database_url` in the server's config file) for
//! PostgreSQL, shared by many nodes; without it, SQLite in the data
//! directory. The same flags serve `airlock serve`, `secrets`, `accounts`
//! and `admin`, so every command can reach the store a server uses.
//!
//! Why the URL is never shown: it usually carries the database password.
//! `Debug` prints only whether one is set, and errors name the problem
//! (an unknown scheme, an unreachable server) without echoing it.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use zeroize::Zeroizing;

use super::sqlite::Durability;
use super::{Result, SecretStore, StoreError};

/// Connections one node keeps to PostgreSQL when none is configured.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// Statement timeout on PostgreSQL when none is configured.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The database flags every command that opens the store takes.
#[derive(Clone, Default, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL (`postgres://USER:PASSWORD@HOST:PORT/DB`) shared by
    /// every node; without it, SQLite in the data directory.
    #[arg(
        long,
        value_name = "URL",
        env = "AIRLOCK_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Connections this node keeps to PostgreSQL. [default: 10]
    #[arg(
        long,
        global = true,
        value_name = "N",
        env = "AIRLOCK_DATABASE_MAX_CONNECTIONS"
    )]
    pub database_max_connections: Option<u32>,
    /// How SQLite commits: `full` fsyncs every commit (survives power loss);
    /// `normal` only at checkpoints (survives a process crash, may lose the
    /// last commits to a power loss). [default: full]
    #[arg(
        long,
        global = true,
        value_name = "MODE",
        env = "AIRLOCK_SQLITE_SYNCHRONOUS"
    )]
    pub sqlite_synchronous: Option<Durability>,
    /// Longest any PostgreSQL statement may run, in milliseconds. [default: 30000]
    #[arg(
        long,
        global = true,
        value_name = "MS",
        env = "AIRLOCK_DATABASE_STATEMENT_TIMEOUT_MS"
    )]
    pub database_statement_timeout_ms: Option<u64>,
}

impl std::fmt::Debug for DatabaseArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseArgs")
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("database_max_connections", &self.database_max_connections)
            .field(
                "database_statement_timeout_ms",
                &self.database_statement_timeout_ms,
            )
            .finish()
    }
}

/// Resolved database settings.
#[derive(Clone, Default)]
pub struct DatabaseConfig {
    /// `None`: SQLite in the data directory.
    pub url: Option<Zeroizing<String>>,
    pub max_connections: u32,
    pub statement_timeout: Duration,
    /// SQLite only.
    pub durability: Durability,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_ref().map(|_| "<set>"))
            .field("max_connections", &self.max_connections)
            .field("statement_timeout", &self.statement_timeout)
            .field("durability", &self.durability)
            .finish()
    }
}

impl DatabaseArgs {
    /// These flags over `file` (the server's config file values), over the
    /// defaults. An empty URL counts as none.
    pub fn resolve(
        &self,
        file_url: Option<String>,
        file_max: Option<u32>,
        file_timeout_ms: Option<u64>,
        file_durability: Option<Durability>,
    ) -> Result<DatabaseConfig> {
        let url = self
            .database_url
            .clone()
            .or(file_url)
            .filter(|u| !u.trim().is_empty())
            .map(Zeroizing::new);
        if let Some(u) = &url
            && !(u.starts_with("postgres://") || u.starts_with("postgresql://"))
        {
            return Err(StoreError::DatabaseUrl(
                "it must start with postgres:// or postgresql:// (leave it unset for SQLite in \
                 the data directory)",
            ));
        }
        let max_connections = self
            .database_max_connections
            .or(file_max)
            .unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if max_connections == 0 {
            return Err(StoreError::DatabaseUrl(
                "database_max_connections must be at least 1",
            ));
        }
        let timeout_ms = self
            .database_statement_timeout_ms
            .or(file_timeout_ms)
            .unwrap_or(DEFAULT_STATEMENT_TIMEOUT.as_millis() as u64);
        if timeout_ms == 0 {
            return Err(StoreError::DatabaseUrl(
                "database_statement_timeout_ms must be at least 1",
            ));
        }
        Ok(DatabaseConfig {
            url,
            max_connections,
            statement_timeout: Duration::from_millis(timeout_ms),
            durability: self
                .sqlite_synchronous
                .or(file_durability)
                .unwrap_or_default(),
        })
    }

    /// [`resolve`](Self::resolve) without a config file.
    pub fn config(&self) -> Result<DatabaseConfig> {
        self.resolve(None, None, None, None)
    }
}

impl DatabaseConfig {
    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.url.is_some()
    }
}

/// Opens the store `config` names: PostgreSQL at its URL, or SQLite in
/// `data_dir`. The schema is brought up to date either way.
pub async fn open(data_dir: &Path, config: &DatabaseConfig) -> Result<SecretStore> {
    match &config.url {
        None => SecretStore::open_with(data_dir, config.durability).await,
        Some(url) => {
            let options = super::postgres::PgOptions {
                max_connections: config.max_connections,
                statement_timeout: Some(config.statement_timeout),
                ..super::postgres::PgOptions::default()
            };
            let db = super::postgres::PgDatabase::connect(url, options).await?;
            Ok(SecretStore::from_db(std::sync::Arc::new(db)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_bad_urls_are_refused_without_echo() {
        let args = DatabaseArgs {
            database_url: Some("postgres://u:hunter2@db/airlock".into()),
            ..DatabaseArgs::default()
        };
        let c = args
            .resolve(Some("postgres://file/db".into()), Some(3), None, None)
            .unwrap();
        assert_eq!(
            c.url.as_deref().map(String::as_str),
            Some("postgres://u:hunter2@db/airlock")
        );
        assert_eq!(c.max_connections, 3);
        assert!(!format!("{c:?}{args:?}").contains("hunter2"));
        let bad = DatabaseArgs {
            database_url: Some("mysql://u:hunter2@db/x".into()),
            ..DatabaseArgs::default()
        };
        let e = bad.config().unwrap_err().to_string();
        assert!(e.contains("postgres://") && !e.contains("hunter2"), "{e}");
        let none = DatabaseArgs {
            database_url: Some("  ".into()),
            ..DatabaseArgs::default()
        };
        assert!(!none.config().unwrap().is_postgres());
    }
}
