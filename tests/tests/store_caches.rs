//! The hot path's caches (`runtime/src/store/cache.rs`) are invalidated
//! precisely: a revoked key, a rotated client secret, a new step version or
//! a rollback, a deleted or created trigger and a changed secret take effect
//! at the next read — through the same handle, through another handle in the process
//! (SQLite), and through another node (PostgreSQL, `LISTEN/NOTIFY`); and a
//! lost listener connection flushes everything.
//!
//! Each test warms the reader's cache first, so a cache that ignored the
//! change would answer with the stale entry and fail the test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_runtime::store::postgres::{PgDatabase, PgOptions};
use airlock_runtime::store::steps::SetCurrent;
use airlock_runtime::store::{MasterKey, PlatformStore, SecretStore, StepStore, TriggerStore};
use airlock_tests::postgres::fresh_database;
use sqlx::Connection as _;
use zeroize::Zeroizing;

/// How long a change may take to cross nodes (NOTIFY); on one node it is
/// seen at once, and the tests assert that.
const ACROSS_NODES: Duration = Duration::from_secs(5);

fn key() -> MasterKey {
    MasterKey::from_bytes(Zeroizing::new([7u8; 32]))
}

/// Two store handles on one database: `a` writes, `b` reads.
struct Pair {
    a: SecretStore,
    b: SecretStore,
    /// Whether a change through `a` may take a moment to reach `b`.
    remote: bool,
    _keep: Box<dyn std::any::Any + Send>,
}

async fn sqlite() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let a = SecretStore::open(dir.path()).await.unwrap();
    let b = SecretStore::open(dir.path()).await.unwrap();
    Pair {
        a,
        b,
        remote: false,
        _keep: Box::new(dir),
    }
}

async fn node(url: &str) -> SecretStore {
    let db = PgDatabase::connect(url, PgOptions::default())
        .await
        .unwrap();
    SecretStore::from_db(Arc::new(db))
}

async fn postgres() -> (Pair, String) {
    let (url, guard) = fresh_database().await;
    let pair = Pair {
        a: node(&url).await,
        b: node(&url).await,
        remote: true,
        _keep: Box::new(guard),
    };
    (pair, url)
}

/// Waits until `check` holds: at once on one node, within
/// [`ACROSS_NODES`] across nodes.
async fn eventually<F, Fut>(remote: bool, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + ACROSS_NODES;
    loop {
        if check().await {
            return;
        }
        assert!(remote, "{what}: not seen at the next read on one node");
        assert!(
            Instant::now() < deadline,
            "{what}: not seen across nodes within {ACROSS_NODES:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| (*s).to_owned()).collect()
}

async fn revocations(p: Pair) {
    let (pa, pb) = (PlatformStore::new(&p.a), PlatformStore::new(&p.b));
    let (admin, _) = pa
        .create_api_key("root", &scopes(&["admin"]), None, None)
        .await
        .unwrap();
    let (meta, key) = pa
        .create_api_key("k", &scopes(&["runs:read"]), None, None)
        .await
        .unwrap();
    // The same handle, then the other: both cached now.
    assert!(pa.verify_bearer(&key).await.unwrap().is_ok());
    assert!(pb.verify_bearer(&key).await.unwrap().is_ok());
    pa.revoke_api_key(&meta.id).await.unwrap();
    assert!(
        pa.verify_bearer(&key).await.unwrap().is_err(),
        "same handle"
    );
    eventually(p.remote, "a revoked key", || async {
        pb.verify_bearer(&key).await.unwrap().is_err()
    })
    .await;

    // A rotated client secret kills its tokens everywhere.
    let (client, secret) = pa
        .create_client("c", &scopes(&["runs:read"]), None, None)
        .await
        .unwrap();
    let client = pa
        .verify_client(&client.id, &secret)
        .await
        .unwrap()
        .unwrap();
    let token = pa
        .issue_token(&client, &scopes(&["runs:read"]), 3600)
        .await
        .unwrap();
    assert!(pb.verify_bearer(&token).await.unwrap().is_ok());
    pa.rotate_client_secret(&client.id).await.unwrap().unwrap();
    eventually(p.remote, "a token of a rotated client", || async {
        pb.verify_bearer(&token).await.unwrap().is_err()
    })
    .await;
    drop(admin);
}

async fn steps_and_triggers(p: Pair) {
    let (sa, sb) = (StepStore::new(&p.a), StepStore::new(&p.b));
    let (ta, tb) = (TriggerStore::new(&p.a), TriggerStore::new(&p.b));
    sa.put_version(
        "alpha",
        "s",
        "sha256:v1",
        "sha256:c1",
        b"one",
        "name = \"s\"",
    )
    .await
    .unwrap();
    assert_eq!(
        sb.current("alpha", "s").await.unwrap().unwrap().digest,
        "sha256:v1"
    );
    sa.put_version(
        "alpha",
        "s",
        "sha256:v2",
        "sha256:c2",
        b"two",
        "name = \"s\"",
    )
    .await
    .unwrap();
    assert_eq!(
        sa.current("alpha", "s").await.unwrap().unwrap().digest,
        "sha256:v2"
    );
    eventually(p.remote, "a new current version", || async {
        sb.current("alpha", "s").await.unwrap().unwrap().digest == "sha256:v2"
    })
    .await;

    // Rolled back to v1: the reader's cached current version (v2) goes.
    // A pinned version read is cached too and stays right.
    assert!(
        sb.version("alpha", "s", "sha256:v1")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        sa.set_current("alpha", "s", "sha256:v1").await.unwrap(),
        SetCurrent::Changed
    );
    assert_eq!(
        sa.current("alpha", "s").await.unwrap().unwrap().digest,
        "sha256:v1"
    );
    eventually(p.remote, "a rollback", || async {
        sb.current("alpha", "s").await.unwrap().unwrap().digest == "sha256:v1"
    })
    .await;
    sa.set_current("alpha", "s", "sha256:v2").await.unwrap();
    eventually(p.remote, "forward again", || async {
        sb.current("alpha", "s").await.unwrap().unwrap().digest == "sha256:v2"
    })
    .await;

    // An unknown trigger is cached as unknown, until it is created.
    assert!(tb.get("trg_1").await.unwrap().is_none());
    ta.insert("trg_1", "alpha", "s", None, false, None, false)
        .await
        .unwrap();
    eventually(p.remote, "a created trigger", || async {
        tb.get("trg_1").await.unwrap().is_some()
    })
    .await;
    ta.delete("alpha", "s", "trg_1").await.unwrap();
    eventually(p.remote, "a deleted trigger", || async {
        tb.get("trg_1").await.unwrap().is_none()
    })
    .await;
    // Deleting the step drops its triggers from every cache.
    ta.insert("trg_2", "alpha", "s", None, false, None, false)
        .await
        .unwrap();
    eventually(p.remote, "a second trigger", || async {
        tb.get("trg_2").await.unwrap().is_some()
    })
    .await;
    ta.delete_for_step("alpha", "s").await.unwrap();
    sa.delete("alpha", "s").await.unwrap();
    eventually(p.remote, "the triggers of a deleted step", || async {
        tb.get("trg_2").await.unwrap().is_none()
            && sb.current("alpha", "s").await.unwrap().is_none()
            && sb
                .version("alpha", "s", "sha256:v1")
                .await
                .unwrap()
                .is_none()
    })
    .await;
}

async fn secrets(p: Pair) {
    let k = key();
    let names = ["TOKEN".to_owned(), "MISSING".to_owned()];
    p.a.set(&k, "alpha", "TOKEN", "first-value-1")
        .await
        .unwrap();
    let got = p.b.get_many(&k, "alpha", &names).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.as_str(), "first-value-1");
    p.a.set(&k, "alpha", "TOKEN", "second-value-2")
        .await
        .unwrap();
    assert_eq!(
        p.a.get(&k, "alpha", "TOKEN")
            .await
            .unwrap()
            .unwrap()
            .as_str(),
        "second-value-2"
    );
    eventually(p.remote, "a changed secret", || async {
        p.b.get(&k, "alpha", "TOKEN")
            .await
            .unwrap()
            .unwrap()
            .as_str()
            == "second-value-2"
    })
    .await;
    // A missing name, cached as missing, appears once set.
    p.a.set(&k, "alpha", "MISSING", "now-here-3").await.unwrap();
    eventually(p.remote, "a new secret", || async {
        p.b.get_many(&k, "alpha", &names).await.unwrap().len() == 2
    })
    .await;
    p.a.delete("alpha", "TOKEN").await.unwrap();
    eventually(p.remote, "a deleted secret", || async {
        p.b.get(&k, "alpha", "TOKEN").await.unwrap().is_none()
    })
    .await;
}

async fn accounts(p: Pair) {
    use airlock_runtime::store::{AccountStatus, AccountStore, NewAccount};
    let k = key();
    let (aa, ab) = (AccountStore::new(&p.a), AccountStore::new(&p.b));
    let new = || NewAccount {
        project: "alpha".into(),
        external_user_id: "ada".into(),
        app: "github".into(),
        credentials: [(
            "access_token".to_owned(),
            Zeroizing::new("gho_first_token".to_owned()),
        )]
        .into(),
        custom_fields: Default::default(),
        expires_at: None,
    };
    // Unknown, cached as unknown, until it is created.
    assert!(
        ab.find(&k, "alpha", "ada", "github")
            .await
            .unwrap()
            .is_none()
    );
    let first = aa.create(&k, new()).await.unwrap();
    eventually(p.remote, "a created account", || async {
        ab.find(&k, "alpha", "ada", "github")
            .await
            .unwrap()
            .is_some()
    })
    .await;
    assert!(ab.get_meta("alpha", first.id()).await.unwrap().is_some());
    // Refreshed tokens and a refused refresh reach the other reader.
    aa.save_refreshed(&k, "alpha", first.id(), "gho_second_token", None, None)
        .await
        .unwrap();
    eventually(p.remote, "refreshed tokens", || async {
        let a = ab.get(&k, "alpha", first.id()).await.unwrap().unwrap();
        a.credential("access_token") == Some("gho_second_token")
    })
    .await;
    aa.mark_needs_reauth("alpha", first.id()).await.unwrap();
    eventually(p.remote, "needs_reauth", || async {
        ab.get_meta("alpha", first.id())
            .await
            .unwrap()
            .unwrap()
            .status
            == AccountStatus::NeedsReauth
    })
    .await;
    // A newer account of the app is what `find` names next.
    let second = aa.create(&k, new()).await.unwrap();
    eventually(p.remote, "the newest account", || async {
        ab.find(&k, "alpha", "ada", "github")
            .await
            .unwrap()
            .unwrap()
            .id()
            == second.id()
    })
    .await;
    aa.delete("alpha", second.id()).await.unwrap();
    eventually(p.remote, "a deleted account", || async {
        ab.get_meta("alpha", second.id()).await.unwrap().is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_accounts_take_effect_at_the_next_request() {
    accounts(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_accounts_reach_the_other_node() {
    accounts(postgres().await.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_revocations_take_effect_at_the_next_request() {
    revocations(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_steps_and_triggers_take_effect_at_the_next_request() {
    steps_and_triggers(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_secrets_take_effect_at_the_next_request() {
    secrets(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_revocations_reach_the_other_node() {
    revocations(postgres().await.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_steps_and_triggers_reach_the_other_node() {
    steps_and_triggers(postgres().await.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_secrets_reach_the_other_node() {
    secrets(postgres().await.0).await;
}

/// A change the bus never carried (written behind the store's back) is
/// still picked up when the listener's connection is lost: reconnecting
/// flushes every cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_connection_flushes_the_caches() {
    let (p, url) = postgres().await;
    let (sa, sb) = (StepStore::new(&p.a), StepStore::new(&p.b));
    sa.put_version("alpha", "s", "sha256:v1", "sha256:c1", b"one", "m")
        .await
        .unwrap();
    sa.put_version("alpha", "s", "sha256:v2", "sha256:c2", b"two", "m")
        .await
        .unwrap();
    sa.put_version("alpha", "s", "sha256:v1", "sha256:c1", b"one", "m")
        .await
        .unwrap();
    eventually(true, "v1 current", || async {
        sb.current("alpha", "s").await.unwrap().unwrap().digest == "sha256:v1"
    })
    .await;
    // Let the writes' own notifications arrive, then cache v1 for sure (a
    // read during which a change arrives is not cached).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sb.current("alpha", "s").await.unwrap().unwrap().digest,
        "sha256:v1"
    );
    let mut raw = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE steps SET current_digest = 'sha256:v2' WHERE project = 'alpha'")
        .execute(&mut raw)
        .await
        .unwrap();
    // No NOTIFY: the cache still answers v1 (within its TTL).
    assert_eq!(
        sb.current("alpha", "s").await.unwrap().unwrap().digest,
        "sha256:v1"
    );
    // Cut every listener: they reconnect and flush.
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    eventually(true, "a flush after the listener reconnects", || async {
        sb.current("alpha", "s").await.unwrap().unwrap().digest == "sha256:v2"
    })
    .await;
}
