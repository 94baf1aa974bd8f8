//! [`ConsoleRepo`](airlock_runtime::store::repo::ConsoleRepo).

use std::sync::Arc;

use airlock_runtime::store::console_sessions::SessionRow;
use airlock_runtime::store::repo::Database;

fn row(id: &str, expires_at: i64) -> SessionRow {
    SessionRow {
        credential_kind: "api_key".into(),
        credential_id: id.into(),
        created_at: 100,
        expires_at,
    }
}

pub async fn console_sessions_by_hash_expire_and_end(db: Arc<dyn Database>) {
    let (a, b) = ([1u8; 32], [2u8; 32]);
    db.insert_console_session(&a, &row("k1", 1_000))
        .await
        .unwrap();
    db.insert_console_session(&b, &row("k2", 2_000))
        .await
        .unwrap();
    assert!(
        db.insert_console_session(&a, &row("k3", 3_000))
            .await
            .is_err(),
        "a session hash is unique"
    );
    assert_eq!(
        db.get_console_session(&a).await.unwrap(),
        Some(row("k1", 1_000))
    );
    assert_eq!(db.get_console_session(&[3u8; 32]).await.unwrap(), None);
    // Expiry sweeps only what has expired (at `now` included).
    assert_eq!(db.delete_console_sessions_expired(999).await.unwrap(), 0);
    assert_eq!(db.delete_console_sessions_expired(1_000).await.unwrap(), 1);
    assert_eq!(db.get_console_session(&a).await.unwrap(), None);
    // Ending one is idempotent.
    db.delete_console_session(&b).await.unwrap();
    db.delete_console_session(&b).await.unwrap();
    assert_eq!(db.get_console_session(&b).await.unwrap(), None);
}

/// Rotating a key replaces its hash and ends its console sessions (only
/// its own), in one transaction.
pub async fn console_sessions_end_when_their_key_rotates(db: Arc<dyn Database>) {
    let key = super::support::credential("aaaaaaaaaaaaaaaa", &["admin"], None, 100);
    db.insert_api_key(&key).await.unwrap();
    let (mine, other) = ([1u8; 32], [2u8; 32]);
    db.insert_console_session(&mine, &row("aaaaaaaaaaaaaaaa", i64::MAX))
        .await
        .unwrap();
    db.insert_console_session(&other, &row("bbbbbbbbbbbbbbbb", i64::MAX))
        .await
        .unwrap();
    assert!(db.rotate_api_key(&key.meta.id, &[9u8; 32]).await.unwrap());
    let stored = db.get_api_key(&key.meta.id).await.unwrap().unwrap();
    assert_eq!(stored.secret_hash, vec![9u8; 32]);
    assert_eq!(stored.meta, key.meta, "id, name, scopes and project stay");
    assert_eq!(db.get_console_session(&mine).await.unwrap(), None);
    assert!(db.get_console_session(&other).await.unwrap().is_some());
    assert!(
        !db.rotate_api_key("ffffffffffffffff", &[9u8; 32])
            .await
            .unwrap()
    );
}

/// Credential use marks: upserted in one call, only ever forward, per kind.
pub async fn credential_use_moves_forward_per_kind(db: Arc<dyn Database>) {
    db.mark_credentials_used(&[("api_key", "k1", 100), ("secret", "alpha/A", 50)])
        .await
        .unwrap();
    // Later wins; an older mark (another node's late flush) does not.
    db.mark_credentials_used(&[("api_key", "k1", 200), ("secret", "alpha/A", 10)])
        .await
        .unwrap();
    let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut got = db
        .credentials_last_used("api_key", &ids(&["k1", "k2"]))
        .await
        .unwrap();
    got.sort();
    assert_eq!(got, [("k1".to_owned(), 200)]);
    assert_eq!(
        db.credentials_last_used("secret", &ids(&["alpha/A"]))
            .await
            .unwrap(),
        [("alpha/A".to_owned(), 50)]
    );
    // Kinds do not mix.
    assert!(
        db.credentials_last_used("account", &ids(&["k1"]))
            .await
            .unwrap()
            .is_empty()
    );
}
