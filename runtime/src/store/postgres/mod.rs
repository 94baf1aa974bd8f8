//! The PostgreSQL backend of the storage seam ([`super::repo`]): many
//! `airlock serve` nodes share one database and nothing else.
//!
//! Why its own SQL rather than `sqlx::Any`: the two backends differ in
//! exactly the places that decide correctness under concurrent writers
//! (upserts, advisory locks, `RETURNING`), and `Any` has no typed values.
//! So each repository trait has one file here with typed queries and
//! `FromRow` row structs, and one conformance suite
//! (`tests/tests/store_conformance.rs`) holds this backend and SQLite to the
//! same observable behaviour.
//!
//! What SQLite's single writer gave for free is made explicit here:
//! - one-statement upserts (`ON CONFLICT … RETURNING`) where SQLite ran
//!   "update, else insert" inside `BEGIN IMMEDIATE`;
//! - compare-and-swap updates on the nonce of a sealed value
//!   (`UPDATE … WHERE nonce = $old`), so a writer that read a stale value
//!   loses instead of overwriting a newer one;
//! - transaction-scoped advisory locks (`pg_advisory_xact_lock`) where a
//!   check and a write must not interleave with another node's (schema
//!   migration, the last admin credential, [`lock`](super::repo::CoordinationRepo::lock)).
//!   They are held by a transaction, so a node that dies frees them with
//!   its session: nothing is ever left locked.
//!
//! Text columns that are ordered or compared are `COLLATE "C"`, so
//! ordering is by bytes as in SQLite, whatever locale the database was
//! created with.

mod accounts;
mod changes;
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

use std::str::FromStr as _;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::Result;
use super::repo::{Backend, Database};

pub use migrations::SCHEMA_VERSION;

/// How [`PgDatabase::connect`] sizes and bounds its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections this node keeps open at most. A held
    /// [`lock`](super::repo::CoordinationRepo::lock) occupies one.
    pub max_connections: u32,
    /// Server-side limit on every statement (`statement_timeout`), waiting
    /// for a lock included; `None` keeps the server's setting.
    pub statement_timeout: Option<Duration>,
    /// How long a request waits for a free connection before it fails.
    pub acquire_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            statement_timeout: None,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// Every repository, on one PostgreSQL connection pool.
#[derive(Debug, Clone)]
pub struct PgDatabase {
    pool: PgPool,
    /// Changes heard from every node (`LISTEN`), for this node's caches.
    bus: std::sync::Arc<changes::Bus>,
}

impl PgDatabase {
    /// Connects to `url` (`postgres://…`) and brings the schema up to date
    /// under a migration lock, so several nodes may start at once. Fails
    /// with [`StoreError::SchemaTooNew`](super::StoreError::SchemaTooNew)
    /// when the database was migrated by a newer airlock.
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self> {
        let mut connect = PgConnectOptions::from_str(url)?.application_name("airlock");
        if let Some(timeout) = options.statement_timeout {
            // Milliseconds with the unit: the server's own syntax, no rounding to 0 s.
            connect =
                connect.options([("statement_timeout", format!("{}ms", timeout.as_millis()))]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await?;
        migrations::migrate(&pool).await?;
        // Host and database only: the URL may carry a password.
        tracing::debug!(
            host = connect.get_host(),
            port = connect.get_port(),
            database = connect.get_database(),
            "postgres database opened"
        );
        let bus = changes::Bus::start(&pool);
        Ok(Self { pool, bus })
    }
}

impl Database for PgDatabase {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.pool.close())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Airlock's own locks. They live in PostgreSQL's two-integer advisory
/// key space, which never overlaps the 64-bit one that
/// [`lock`](super::repo::CoordinationRepo::lock) hashes its keys into, so
/// no caller's key can ever take one of them by accident.
#[derive(Debug, Clone, Copy)]
enum InternalLock {
    SchemaMigration = 1,
    /// Every revocation of an API key or OAuth client (see `platform.rs`).
    AdminCredentials = 2,
}

/// The first integer of every [`InternalLock`]: `AIRL`.
const INTERNAL_LOCK_CLASS: i32 = i32::from_be_bytes(*b"AIRL");

impl InternalLock {
    /// Waits for the lock and holds it until `tx` ends.
    async fn take(self, tx: &mut sqlx::PgConnection) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(INTERNAL_LOCK_CLASS)
            .bind(self as i32)
            .execute(tx)
            .await?;
        Ok(())
    }
}

/// `scopes` as stored: space-separated, as on SQLite.
fn join_scopes(scopes: &[String]) -> String {
    scopes.join(" ")
}

fn split_scopes(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// A row that does not decode into the model (corrupt JSON, an unknown
/// status): a storage failure, reported as sqlx reports bad columns.
fn decode_error(what: String) -> super::StoreError {
    super::StoreError::Database(sqlx::Error::Decode(what.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_as_space_separated_text() {
        let scopes = vec!["runs:read".to_owned(), "admin".to_owned()];
        assert_eq!(join_scopes(&scopes), "runs:read admin");
        assert_eq!(split_scopes("runs:read admin"), scopes);
        assert!(split_scopes("").is_empty());
    }
}
