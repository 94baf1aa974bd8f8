//! What only the PostgreSQL backend has: the migration lock and schema
//! check at connect, locks held by sessions that can die, and the rate limits
//! shared through the database (SQLite's single node counts in process).

use std::sync::Arc;
use std::time::Duration;

use airlock_runtime::store::StoreError;
use airlock_runtime::store::postgres::{PgDatabase, PgOptions, SCHEMA_VERSION};
use airlock_runtime::store::repo::{CoordinationRepo as _, Database, PlatformRepo as _};
use airlock_tests::postgres::{DATABASE_URL_ENV, fresh_database};
use sqlx::Connection as _;

use super::pg_options;

/// The longest these tests' locks are held for, unless a test says.
const HOLD: Duration = Duration::from_secs(60);

async fn raw(url: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(url).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_once_migrate_once() {
    let (url, _guard) = fresh_database().await;
    let (a, b, c) = tokio::join!(
        PgDatabase::connect(&url, pg_options()),
        PgDatabase::connect(&url, pg_options()),
        PgDatabase::connect(&url, pg_options()),
    );
    let (a, _b, _c) = (a.unwrap(), b.unwrap(), c.unwrap());
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_version ORDER BY 1")
        .fetch_all(&mut raw(&url).await)
        .await
        .unwrap();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    // Starting again finds nothing to do.
    PgDatabase::connect(&url, pg_options()).await.unwrap();
    a.ping().await.unwrap();
    assert_eq!(a.backend().as_str(), "postgres");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_newer_than_the_binary_is_refused() {
    let (url, _guard) = fresh_database().await;
    PgDatabase::connect(&url, pg_options()).await.unwrap();
    sqlx::query("INSERT INTO schema_version (version, applied_at) VALUES ($1, 0)")
        .bind(SCHEMA_VERSION + 1)
        .execute(&mut raw(&url).await)
        .await
        .unwrap();
    let err = PgDatabase::connect(&url, pg_options()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, supported }
            if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade airlock"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_dies_with_its_session() {
    let (url, _guard) = fresh_database().await;
    let a = PgDatabase::connect(&url, pg_options()).await.unwrap();
    let b = PgDatabase::connect(&url, pg_options()).await.unwrap();
    let held = a.lock("refresh:acc_1", HOLD).await.unwrap();
    let waiter = tokio::spawn(async move { b.lock("refresh:acc_1", HOLD).await.map(drop) });
    // As if the node holding it were killed: its backend goes away.
    let mut admin = raw(&url).await;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND database =
             (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed, [true], "exactly one session held it");
    waiter.await.unwrap().unwrap();
    // Dropping a guard whose session is gone is harmless.
    drop(held);
    drop(a.lock("refresh:acc_1", HOLD).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_wait_outlasts_the_statement_timeout_within_the_hold() {
    let (url, _guard) = fresh_database().await;
    let a = PgDatabase::connect(&url, pg_options()).await.unwrap();
    let impatient = PgOptions {
        statement_timeout: Some(Duration::from_millis(200)),
        ..pg_options()
    };
    let b = PgDatabase::connect(&url, impatient).await.unwrap();
    let held = a.lock("k", HOLD).await.unwrap();
    let waiter = tokio::spawn(async move { b.lock("k", HOLD).await.map(drop) });
    // Well past b's statement timeout, the holder still within its hold:
    // the waiter waits on (fails if the pool's timeout cuts it loose).
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!waiter.is_finished(), "{:?}", waiter.await);
    drop(held);
    waiter.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_past_its_hold_loses_the_lock() {
    let (url, _guard) = fresh_database().await;
    let a = PgDatabase::connect(&url, pg_options()).await.unwrap();
    let b = PgDatabase::connect(&url, pg_options()).await.unwrap();
    let hold = Duration::from_millis(300);
    // Held and never released, as by a node that hung: the server ends
    // its session once it has been idle in the lock's transaction for
    // `hold`, and the waiter gets the lock.
    let hung = a.lock("k", hold).await.unwrap();
    let taken = tokio::time::timeout(Duration::from_secs(20), b.lock("k", hold)).await;
    drop(taken.expect("the hung holder lost the lock").unwrap());
    // Dropping the hung holder's guard afterwards is harmless.
    drop(hung);
    drop(a.lock("k", hold).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_failure_names_no_password() {
    let options = PgOptions {
        acquire_timeout: Duration::from_secs(1),
        ..pg_options()
    };
    // Port 1 on loopback: nothing listens there.
    let url = "postgres://airlock:hunter2-secret@127.0.0.1:1/airlock";
    let err = PgDatabase::connect(url, options).await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

/// The harness's own cluster sorts text by ICU `en-US`, so the suite's
/// byte-order checks prove the backend does not lean on the locale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_throwaway_cluster_does_not_sort_by_bytes() {
    let (url, _guard) = fresh_database().await;
    let by_bytes: bool = sqlx::query_scalar("SELECT 'B' < 'a'")
        .fetch_one(&mut raw(&url).await)
        .await
        .unwrap();
    if std::env::var_os(DATABASE_URL_ENV).is_none() {
        assert!(!by_bytes, "the throwaway cluster's collation is byte order");
    }
}

/// Two nodes' pools on one database, as `airlock serve` opens them.
async fn two_nodes(url: &str) -> (Arc<dyn Database>, Arc<dyn Database>) {
    let a = PgDatabase::connect(url, pg_options()).await.unwrap();
    let b = PgDatabase::connect(url, pg_options()).await.unwrap();
    (Arc::new(a), Arc::new(b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_rate_limits_never_admit_more_than_the_quota() {
    let (url, _guard) = fresh_database().await;
    let (a, b) = two_nodes(&url).await;
    crate::suite::concurrency::leased_rate_limits_never_admit_more_than_the_quota(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_rate_limits_stay_exact_across_nodes() {
    let (url, _guard) = fresh_database().await;
    let (a, b) = two_nodes(&url).await;
    crate::suite::concurrency::small_rate_limits_stay_exact_across_nodes(a, b).await;
}
