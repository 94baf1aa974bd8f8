//! Tests of the account store against real SQLite files in temporary directories.

use std::collections::BTreeMap;
use std::path::Path;

use zeroize::Zeroizing;

use super::*;
use crate::store::DB_FILE;
use crate::store::crypto::KEY_LEN;

fn key(byte: u8) -> MasterKey {
    MasterKey::from_bytes(Zeroizing::new([byte; KEY_LEN]))
}

async fn stores(dir: &Path) -> (SecretStore, AccountStore) {
    let secrets = SecretStore::open(dir).await.expect("open store");
    let accounts = AccountStore::new(&secrets);
    (secrets, accounts)
}

fn creds(pairs: &[(&str, &str)]) -> BTreeMap<String, Zeroizing<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Zeroizing::new(v.to_string())))
        .collect()
}

fn new_account(user: &str, app: &str, pairs: &[(&str, &str)]) -> NewAccount {
    NewAccount {
        project: "proj".into(),
        external_user_id: user.into(),
        app: app.into(),
        credentials: creds(pairs),
        custom_fields: BTreeMap::from([("subdomain".to_string(), "acme".to_string())]),
        expires_at: Some(1_900_000_000),
    }
}

#[tokio::test]
async fn create_get_find_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let (_secrets, store) = stores(dir.path()).await;
    let k = key(1);

    let a = store
        .create(
            &k,
            new_account(
                "user@example.com",
                "slack",
                &[("access_token", "xoxb-AAA"), ("refresh_token", "r-AAA")],
            ),
        )
        .await
        .unwrap();
    assert!(
        a.id().starts_with("acc_") && a.id().len() == 20,
        "{}",
        a.id()
    );
    assert_eq!(a.meta.status, AccountStatus::Healthy);
    let b = store
        .create(
            &k,
            new_account("user@example.com", "slack", &[("access_token", "xoxb-BBB")]),
        )
        .await
        .unwrap();
    let c = store
        .create(
            &k,
            new_account("other user", "github", &[("token", "ghp-CCC")]),
        )
        .await
        .unwrap();
    assert_ne!(a.id(), b.id());

    let got = store.get(&k, "proj", a.id()).await.unwrap().unwrap();
    assert_eq!(got.credential("access_token"), Some("xoxb-AAA"));
    assert_eq!(got.credential("refresh_token"), Some("r-AAA"));
    assert_eq!(got.meta.custom_fields["subdomain"], "acme");
    assert_eq!(got.meta.expires_at, Some(1_900_000_000));
    assert!(
        store.get(&k, "other", a.id()).await.unwrap().is_none(),
        "project scopes get"
    );
    // Metadata alone, without the key: the same as `get` minus credentials.
    let meta = store.get_meta("proj", a.id()).await.unwrap().unwrap();
    assert_eq!(meta, got.meta);
    assert!(
        store.get_meta("other", a.id()).await.unwrap().is_none(),
        "project scopes get_meta"
    );
    assert!(
        store
            .get(&k, "proj", "acc_0000000000000000")
            .await
            .unwrap()
            .is_none()
    );

    // By app: the newest account of that app for that user.
    let found = store
        .find(&k, "proj", "user@example.com", "slack")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id(), b.id());
    // By id: only the user's own account.
    let found = store
        .find(&k, "proj", "user@example.com", a.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id(), a.id());
    assert!(
        store
            .find(&k, "proj", "user@example.com", c.id())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find(&k, "proj", "nobody", "slack")
            .await
            .unwrap()
            .is_none()
    );

    let all = store.list("proj", &AccountFilter::default()).await.unwrap();
    let ids: Vec<_> = all.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, [c.id(), b.id(), a.id()], "newest first");
    let slack = store
        .list(
            "proj",
            &AccountFilter {
                app: Some("slack".into()),
                external_user_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(slack.len(), 2);
    let user = store
        .list(
            "proj",
            &AccountFilter {
                app: None,
                external_user_id: Some("other user".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(user.len(), 1);
    assert_eq!(user[0].app, "github");
    let listed = format!("{all:?}");
    for v in ["xoxb-AAA", "r-AAA", "xoxb-BBB", "ghp-CCC"] {
        assert!(!listed.contains(v), "list shows a credential: {listed}");
    }

    assert!(store.delete("proj", b.id()).await.unwrap());
    assert!(!store.delete("proj", b.id()).await.unwrap());
    let found = store
        .find(&k, "proj", "user@example.com", "slack")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        found.id(),
        a.id(),
        "after deleting the newest, the older one is found"
    );
}

#[tokio::test]
async fn debug_and_errors_never_show_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let (_secrets, store) = stores(dir.path()).await;
    let k = key(1);
    let new = new_account(
        "u",
        "slack",
        &[
            ("access_token", "SECRET-ACCESS-1"),
            ("password", "SECRET-PW-2"),
        ],
    );
    let shown = format!("{new:?}");
    assert!(
        !shown.contains("SECRET-") && shown.contains("access_token"),
        "{shown}"
    );
    let acc = store.create(&k, new).await.unwrap();
    let shown = format!("{acc:?}");
    assert!(
        !shown.contains("SECRET-") && shown.contains("password"),
        "{shown}"
    );
    // Reading with another key: the error names key ids only.
    let err = store.get(&key(2), "proj", acc.id()).await.unwrap_err();
    assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err}");
    assert!(!err.to_string().contains("SECRET-"));
    // Writing with another key is refused, so one store never mixes keys.
    let err = store
        .create(&key(2), new_account("u", "slack", &[("token", "t")]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StoreKeyMismatch { .. }), "{err}");
}

#[tokio::test]
async fn ciphertext_is_bound_to_its_account() {
    let dir = tempfile::tempdir().unwrap();
    let (secrets, store) = stores(dir.path()).await;
    let k = key(1);
    let a = store
        .create(&k, new_account("u", "slack", &[("token", "tok-A")]))
        .await
        .unwrap();
    let b = store
        .create(&k, new_account("u", "slack", &[("token", "tok-B")]))
        .await
        .unwrap();
    // Copy A's sealed credentials onto B: B must not decrypt to A's token.
    sqlx::query(
        "UPDATE accounts SET nonce = (SELECT nonce FROM accounts WHERE id = ?1),
                             ciphertext = (SELECT ciphertext FROM accounts WHERE id = ?1)
         WHERE id = ?2",
    )
    .bind(a.id())
    .bind(b.id())
    .execute(&secrets.pool_for_tests())
    .await
    .unwrap();
    let err = store.get(&k, "proj", b.id()).await.unwrap_err();
    assert!(matches!(err, StoreError::AccountDecrypt { .. }), "{err}");
}

#[tokio::test]
async fn editing_where_or_for_whom_an_account_is_used_breaks_it() {
    // Someone who can write the database but has no key re-points an
    // account: to another host (custom field), app or end user. The
    // credentials must become undecryptable, never misdirected.
    let dir = tempfile::tempdir().unwrap();
    let (secrets, store) = stores(dir.path()).await;
    let k = key(1);
    for (column, value) in [
        ("custom_fields", r#"{"subdomain":"attacker"}"#),
        ("app", "github"),
        ("external_user_id", "mallory"),
    ] {
        let mut new = new_account("u", "zendesk", &[("password", "pw-bound")]);
        new.custom_fields.insert("subdomain".into(), "acme".into());
        let a = store.create(&k, new).await.unwrap();
        assert!(store.get(&k, "proj", a.id()).await.is_ok());
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE accounts SET {column} = ?1 WHERE id = ?2"
        )))
        .bind(value)
        .bind(a.id())
        .execute(&secrets.pool_for_tests())
        .await
        .unwrap();
        // Read from the database: the edit was made behind the cache's back.
        let err = store.get_fresh(&k, "proj", a.id()).await.unwrap_err();
        assert!(
            matches!(err, StoreError::AccountDecrypt { .. }),
            "{column}: {err}"
        );
    }
}

#[tokio::test]
async fn inputs_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let (_secrets, store) = stores(dir.path()).await;
    let k = key(1);
    let long = "x".repeat(251);
    for (user, app) in [
        ("", "slack"),
        (long.as_str(), "slack"),
        ("tab\there", "slack"),
        ("ok", ""),
        ("ok", "acc_lookalike"),
        ("ok", "Has Space"),
    ] {
        let err = store
            .create(&k, new_account(user, app, &[("token", "t")]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidAccount { .. }),
            "{user:?} {app:?}: {err}"
        );
    }
    // 250 characters of any printable text, including non-ASCII, is fine.
    let ok = "é".repeat(250);
    store
        .create(&k, new_account(&ok, "slack", &[("token", "t")]))
        .await
        .unwrap();
}

#[tokio::test]
async fn needs_reauth_and_save_refreshed() {
    let dir = tempfile::tempdir().unwrap();
    let (_secrets, store) = stores(dir.path()).await;
    let k = key(1);
    let a = store
        .create(
            &k,
            new_account(
                "u",
                "google",
                &[("access_token", "at-1"), ("refresh_token", "rt-1")],
            ),
        )
        .await
        .unwrap();
    assert!(store.mark_needs_reauth("proj", a.id()).await.unwrap());
    let meta = &store.list("proj", &AccountFilter::default()).await.unwrap()[0];
    assert_eq!(meta.status, AccountStatus::NeedsReauth);

    // Rotation: both tokens change together, status back to healthy.
    store
        .save_refreshed(&k, "proj", a.id(), "at-2", Some("rt-2"), Some(123))
        .await
        .unwrap();
    let got = store.get(&k, "proj", a.id()).await.unwrap().unwrap();
    assert_eq!(got.credential("access_token"), Some("at-2"));
    assert_eq!(got.credential("refresh_token"), Some("rt-2"));
    assert_eq!(got.meta.expires_at, Some(123));
    assert_eq!(got.meta.status, AccountStatus::Healthy);

    // No refresh token from the provider: the old one is kept.
    store
        .save_refreshed(&k, "proj", a.id(), "at-3", None, None)
        .await
        .unwrap();
    let got = store.get(&k, "proj", a.id()).await.unwrap().unwrap();
    assert_eq!(got.credential("access_token"), Some("at-3"));
    assert_eq!(got.credential("refresh_token"), Some("rt-2"));
    assert_eq!(got.meta.expires_at, None);

    let err = store
        .save_refreshed(&k, "proj", "acc_ffffffffffffffff", "x", None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AccountNotFound { .. }), "{err}");
}

#[tokio::test]
async fn failed_save_refreshed_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_secrets, store) = stores(dir.path()).await;
    let k = key(1);
    let a = store
        .create(
            &k,
            new_account(
                "u",
                "google",
                &[("access_token", "at-1"), ("refresh_token", "rt-1")],
            ),
        )
        .await
        .unwrap();
    let err = store
        .save_refreshed_inner(&k, "proj", a.id(), "at-2", Some("rt-2"), Some(5), true)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Injected(_)), "{err}");
    let got = store.get(&k, "proj", a.id()).await.unwrap().unwrap();
    assert_eq!(got.credential("access_token"), Some("at-1"));
    assert_eq!(got.credential("refresh_token"), Some("rt-1"));
    assert_eq!(got.meta.expires_at, Some(1_900_000_000));
}

#[tokio::test]
async fn key_rotation_reseals_accounts_too() {
    let dir = tempfile::tempdir().unwrap();
    let (secrets, store) = stores(dir.path()).await;
    let (old, new) = (key(1), key(2));
    secrets
        .set(&old, "proj", "S", "secret-value")
        .await
        .unwrap();
    let a = store
        .create(&old, new_account("u", "slack", &[("token", "tok-A")]))
        .await
        .unwrap();

    // Interrupted after the secret, before the account: the account is
    // still under the old key, and the ring reads both.
    let ring = new.clone().with_retired(vec![old.clone()]);
    let err = secrets.rotate_inner(&ring, Some(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Injected(1)), "{err}");
    assert_eq!(
        store
            .get(&old, "proj", a.id())
            .await
            .unwrap()
            .unwrap()
            .credential("token"),
        Some("tok-A")
    );
    assert!(secrets.get(&ring, "proj", "S").await.unwrap().is_some());

    assert_eq!(secrets.rotate_key(&old, &new).await.unwrap(), 1);
    assert_eq!(
        store
            .get(&new, "proj", a.id())
            .await
            .unwrap()
            .unwrap()
            .credential("token"),
        Some("tok-A")
    );
    assert!(matches!(
        store.get(&old, "proj", a.id()).await.unwrap_err(),
        StoreError::KeyMismatch { .. }
    ));
}

#[tokio::test]
async fn database_files_hold_no_plaintext_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let (secrets, store) = stores(dir.path()).await;
    let k = key(3);
    let canaries = [
        "ACCESS-CANARY-0123456789",
        "REFRESH-CANARY-abcdef",
        "ROTATED-CANARY-9876",
        "PASSWORD-CANARY-42",
    ];
    let a = store
        .create(
            &k,
            new_account(
                "u",
                "google",
                &[
                    ("access_token", canaries[0]),
                    ("refresh_token", canaries[1]),
                ],
            ),
        )
        .await
        .unwrap();
    store
        .create(
            &k,
            new_account(
                "u",
                "jira",
                &[("username", "bob"), ("password", canaries[3])],
            ),
        )
        .await
        .unwrap();
    store
        .save_refreshed(
            &k,
            "proj",
            a.id(),
            canaries[2],
            Some("ROTATED-REFRESH-CANARY"),
            Some(1),
        )
        .await
        .unwrap();

    let scan = |stage: &str| {
        let mut seen = 0;
        for suffix in ["", "-wal", "-shm"] {
            let Ok(bytes) = std::fs::read(dir.path().join(format!("{DB_FILE}{suffix}"))) else {
                continue;
            };
            seen += bytes.len();
            for v in canaries.iter().chain(["ROTATED-REFRESH-CANARY"].iter()) {
                assert!(
                    !bytes.windows(v.len()).any(|w| w == v.as_bytes()),
                    "{stage}: {DB_FILE}{suffix} holds {v}"
                );
            }
        }
        assert!(seen > 0, "{stage}: database files exist");
    };
    scan("open");
    // The clear custom field shows the scan sees account rows at all.
    let all: Vec<u8> = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::read(dir.path().join(format!("{DB_FILE}{s}"))).ok())
        .flatten()
        .collect();
    assert!(
        all.windows(4).any(|w| w == b"acme"),
        "the scan sees account rows"
    );
    secrets.close().await;
    drop(store);
    scan("closed");
}
