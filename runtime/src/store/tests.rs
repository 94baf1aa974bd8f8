//! Tests of the secret store against real SQLite files in temporary directories.

use std::path::Path;

use zeroize::Zeroizing;

use super::crypto::KEY_LEN;
use super::*;

fn key(byte: u8) -> MasterKey {
    MasterKey::from_bytes(Zeroizing::new([byte; KEY_LEN]))
}

async fn open_store(dir: &Path) -> SecretStore {
    SecretStore::open(dir).await.expect("open store")
}

async fn get(store: &SecretStore, key: &MasterKey, project: &str, name: &str) -> Option<String> {
    store
        .get(key, project, name)
        .await
        .expect("get")
        .map(|v| v.to_string())
}

/// Rewrites one column of one row directly in SQLite, behind the store's back.
async fn raw_update(store: &SecretStore, sql: &'static str, binds: (&[u8], &str, &str)) {
    let n = sqlx::query(sql)
        .bind(binds.0)
        .bind(binds.1)
        .bind(binds.2)
        .execute(&store.pool_for_tests())
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(n, 1, "raw update hit one row");
}

#[tokio::test]
async fn set_get_list_delete_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("data");
    let store = open_store(&data).await;
    assert!(
        data.join(DB_FILE).is_file(),
        "database created in the data dir"
    );
    let k = key(1);

    assert_eq!(
        store
            .set(&k, "local", "API_TOKEN", "tok-123456")
            .await
            .unwrap(),
        SetOutcome::Created
    );
    store
        .set(&k, "local", "db.password", "hunter2-hunter2")
        .await
        .unwrap();
    store
        .set(&k, "other", "API_TOKEN", "other-project-value")
        .await
        .unwrap();

    assert_eq!(
        get(&store, &k, "local", "API_TOKEN").await.as_deref(),
        Some("tok-123456")
    );
    assert_eq!(
        get(&store, &k, "other", "API_TOKEN").await.as_deref(),
        Some("other-project-value")
    );
    assert_eq!(get(&store, &k, "local", "absent").await, None);

    let before = store.list("local").await.unwrap();
    let names: Vec<_> = before.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["API_TOKEN", "db.password"]);
    let listed = format!("{before:?}");
    assert!(
        !listed.contains("tok-123456") && !listed.contains("hunter2"),
        "list never carries values: {listed}"
    );

    // Update: value replaced, created_at kept, updated_at not earlier.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        store
            .set(&k, "local", "API_TOKEN", "tok-654321")
            .await
            .unwrap(),
        SetOutcome::Updated
    );
    assert_eq!(
        get(&store, &k, "local", "API_TOKEN").await.as_deref(),
        Some("tok-654321")
    );
    let after = store.list("local").await.unwrap();
    assert_eq!(after[0].created_at, before[0].created_at);
    assert!(after[0].updated_at > before[0].updated_at);

    assert!(store.delete("local", "API_TOKEN").await.unwrap());
    assert!(!store.delete("local", "API_TOKEN").await.unwrap());
    assert_eq!(get(&store, &k, "local", "API_TOKEN").await, None);
    assert_eq!(
        get(&store, &k, "other", "API_TOKEN").await.as_deref(),
        Some("other-project-value"),
        "delete is per project"
    );
    store.close().await;

    // Reopen: the data persisted and the migration is idempotent.
    let store = open_store(&data).await;
    assert_eq!(
        get(&store, &k, "local", "db.password").await.as_deref(),
        Some("hunter2-hunter2")
    );
}

#[tokio::test]
async fn database_files_hold_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let k = key(2);
    let values = [
        "PLAINTEXT-CANARY-0123456789",
        "second-canary-value-abcdef",
        "short1",
    ];
    for (i, v) in values.iter().enumerate() {
        store.set(&k, "local", &format!("S{i}"), v).await.unwrap();
    }
    // Update one too, so old pages and WAL frames exist.
    store
        .set(&k, "local", "S0", "PLAINTEXT-CANARY-updated-9876")
        .await
        .unwrap();

    let files = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let p = dir.join(format!("{DB_FILE}{suffix}"));
                std::fs::read(&p).ok().map(|b| (p.display().to_string(), b))
            })
            .collect()
    };
    let check = |files: Vec<(String, Vec<u8>)>, stage: &str| {
        assert!(!files.is_empty(), "{stage}: database files exist");
        let total: usize = files.iter().map(|(_, b)| b.len()).sum();
        assert!(total > 0, "{stage}: database files are not empty");
        for (path, bytes) in &files {
            for v in values
                .iter()
                .chain(["PLAINTEXT-CANARY-updated-9876"].iter())
            {
                let found = bytes.windows(v.len()).any(|w| w == v.as_bytes());
                assert!(!found, "{stage}: {path} contains a plaintext value");
            }
        }
        // Sanity: the names are stored in clear, so the scan does see rows.
        assert!(
            files
                .iter()
                .any(|(_, b)| b.windows(5).any(|w| w == b"local")),
            "{stage}: the scan sees row data"
        );
    };

    // While open (the WAL holds the recent writes) and after close (checkpointed).
    check(files(dir.path()), "open");
    store.close().await;
    check(files(dir.path()), "closed");
}

#[tokio::test]
async fn wrong_master_key_is_reported_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let right = key(3);
    let wrong = key(4);
    store
        .set(&right, "local", "A", "value-a-123")
        .await
        .unwrap();
    store.set(&right, "p2", "B", "value-b-456").await.unwrap();

    let err = store.get(&wrong, "local", "A").await.unwrap_err();
    assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err:?}");
    assert!(err.is_usage());
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("master key (id {})", wrong.id()))
            && msg.contains(&format!("encrypted with (id {})", right.id())),
        "{msg}"
    );
    assert!(!msg.contains("value-a"), "{msg}");

    // Writing with the wrong key would split the store across keys: refused.
    let err = store
        .set(&wrong, "local", "A", "overwrite")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::StoreKeyMismatch { .. }),
        "{err:?}"
    );
    let err = store
        .set(&wrong, "local", "NEW", "new-value")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::StoreKeyMismatch { .. }),
        "{err:?}"
    );

    // Rotating from the wrong key fails and changes nothing.
    let err = store.rotate_key(&wrong, &key(5)).await.unwrap_err();
    assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err:?}");

    assert_eq!(
        get(&store, &right, "local", "A").await.as_deref(),
        Some("value-a-123")
    );
    assert_eq!(
        get(&store, &right, "p2", "B").await.as_deref(),
        Some("value-b-456")
    );
    assert_eq!(get(&store, &right, "local", "NEW").await, None);
}

async fn seed_many(store: &SecretStore, k: &MasterKey) -> Vec<(String, String, String)> {
    let mut all = Vec::new();
    for project in ["alpha", "beta"] {
        for i in 0..5 {
            let name = format!("SECRET_{i}");
            let value = format!("{project}-value-{i}-xyzzy");
            store.set(k, project, &name, &value).await.unwrap();
            all.push((project.to_owned(), name, value));
        }
    }
    all
}

#[tokio::test]
async fn rotation_reencrypts_everything_under_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let old = key(6);
    let new = key(7);
    let all = seed_many(&store, &old).await;
    let before = store.list("alpha").await.unwrap();

    assert_eq!(store.rotate_key(&old, &new).await.unwrap(), all.len());

    for (project, name, value) in &all {
        assert_eq!(
            get(&store, &new, project, name).await.as_deref(),
            Some(value.as_str())
        );
        let err = store.get(&old, project, name).await.unwrap_err();
        assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err:?}");
    }
    assert_eq!(store.list("alpha").await.unwrap(), before, "dates kept");
    // New writes now go under the new key only.
    store
        .set(&new, "alpha", "LATER", "later-value")
        .await
        .unwrap();
    assert!(store.set(&old, "alpha", "LATER2", "x").await.is_err());

    let err = store.rotate_key(&new, &key(7)).await.unwrap_err();
    assert!(matches!(err, StoreError::SameKey(_)), "{err:?}");
}

#[tokio::test]
async fn an_interrupted_rotation_leaves_everything_readable_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let old = key(8);
    let new = key(9);
    let all = seed_many(&store, &old).await;
    let ring = new.clone().with_retired(vec![old.clone()]);

    // Interrupted before anything, then after three values.
    for fail_after in [0, 3] {
        let err = store
            .rotate_inner(&ring, Some(fail_after))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Injected(n) if n == fail_after),
            "{err:?}"
        );
        // Every value opens with the ring throughout: nodes keep serving.
        for (project, name, value) in &all {
            assert_eq!(
                get(&store, &ring, project, name).await.as_deref(),
                Some(value.as_str()),
                "after failing at {fail_after}: {project}/{name}"
            );
        }
    }
    let under_new = |store: &SecretStore| {
        let store = store.clone();
        let new = new.clone();
        let all = all.clone();
        async move {
            let mut n = 0;
            for (project, name, _) in &all {
                n += usize::from(store.get(&new, project, name).await.is_ok());
            }
            n
        }
    };
    assert_eq!(under_new(&store).await, 3, "three values moved");
    // Reopened from disk, resumed: the rest move, and the new key alone opens all.
    store.close().await;
    let store = open_store(dir.path()).await;
    assert_eq!(store.rotate_to_current(&ring).await.unwrap(), all.len() - 3);
    assert_eq!(under_new(&store).await, all.len());
    assert_eq!(
        store.rotate_to_current(&ring).await.unwrap(),
        0,
        "nothing left"
    );
}

#[tokio::test]
async fn rotation_stops_at_an_undecryptable_row_and_the_rest_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let old = key(10);
    let new = key(11);
    let all = seed_many(&store, &old).await;
    // Corrupt the last row in rotation order, so earlier rows were re-sealed first.
    raw_update(
        &store,
        "UPDATE secrets SET ciphertext = ?1 WHERE project = ?2 AND name = ?3",
        (&[0u8; 40], "beta", "SECRET_4"),
    )
    .await;
    let err = store.rotate_key(&old, &new).await.unwrap_err();
    assert!(matches!(err, StoreError::Decrypt { .. }), "{err:?}");
    assert!(err.to_string().contains("SECRET_4"), "names the row: {err}");
    let ring = new.clone().with_retired(vec![old.clone()]);
    for (project, name, value) in all.iter().filter(|(_, n, _)| n != "SECRET_4") {
        assert_eq!(
            get(&store, &ring, project, name).await.as_deref(),
            Some(value.as_str())
        );
    }
}

#[tokio::test]
async fn tampered_or_moved_ciphertext_fails_to_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let k = key(12);
    store.set(&k, "local", "A", "value-of-a-111").await.unwrap();
    store.set(&k, "local", "B", "value-of-b-222").await.unwrap();
    store.set(&k, "other", "A", "other-a-333").await.unwrap();
    let pool = store.pool_for_tests();

    // Flip one bit of A's ciphertext.
    let ct: Vec<u8> =
        sqlx::query_scalar("SELECT ciphertext FROM secrets WHERE project = 'local' AND name = 'A'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let mut flipped = ct.clone();
    flipped[3] ^= 0x01;
    raw_update(
        &store,
        "UPDATE secrets SET ciphertext = ?1 WHERE project = ?2 AND name = ?3",
        (&flipped, "local", "A"),
    )
    .await;
    let err = store.get(&k, "local", "A").await.unwrap_err();
    assert!(matches!(err, StoreError::Decrypt { .. }), "{err:?}");
    assert!(
        err.to_string().contains("cannot decrypt secret \"A\""),
        "{err}"
    );

    // Copy B's nonce and ciphertext into A's row (same key): AAD mismatch.
    sqlx::query(
        "UPDATE secrets SET (nonce, ciphertext) =
           (SELECT nonce, ciphertext FROM secrets WHERE project = 'local' AND name = 'B')
         WHERE project = 'local' AND name = 'A'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let err = store.get(&k, "local", "A").await.unwrap_err();
    assert!(matches!(err, StoreError::Decrypt { .. }), "{err:?}");

    // Copy across projects: other/A gets local/B's row.
    sqlx::query(
        "UPDATE secrets SET (nonce, ciphertext) =
           (SELECT nonce, ciphertext FROM secrets WHERE project = 'local' AND name = 'B')
         WHERE project = 'other' AND name = 'A'",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert!(matches!(
        store.get(&k, "other", "A").await,
        Err(StoreError::Decrypt { .. })
    ));
    // B itself is intact.
    assert_eq!(
        get(&store, &k, "local", "B").await.as_deref(),
        Some("value-of-b-222")
    );
}

#[tokio::test]
async fn names_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let k = key(13);
    for ok in ["A", "_x", "api.key-2", &"a".repeat(128)] {
        validate_secret_name(ok).unwrap();
    }
    for bad in [
        "",
        "1abc",
        "-x",
        ".x",
        "has space",
        "a/b",
        "nul\0",
        "é",
        &"a".repeat(129),
    ] {
        let err = store.set(&k, "local", bad, "value-123").await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidName { kind: "secret", .. }),
            "{bad:?}"
        );
        assert!(err.to_string().contains("starting with a letter or `_`"));
    }
    let err = store
        .set(&k, "bad project", "A", "value-123")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::InvalidName {
            kind: "project",
            ..
        }
    ));
    assert!(store.list("../etc").await.is_err());
    assert!(store.list("local").await.unwrap().is_empty());
}

#[tokio::test]
async fn no_key_error_mentions_keygen() {
    let err: StoreError = MasterKey::resolve(None, None).unwrap_err().into();
    assert!(err.is_usage());
    let msg = err.to_string();
    assert!(msg.contains("airlock keygen"), "{msg}");
    assert!(msg.contains("AIRLOCK_MASTER_KEY"), "{msg}");
}

#[tokio::test]
async fn load_granted_returns_existing_granted_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let k = key(14);
    store.set(&k, "local", "A", "value-a-1").await.unwrap();
    store.set(&k, "local", "B", "value-b-2").await.unwrap();
    store
        .set(&k, "local", "NOT_GRANTED", "value-c-3")
        .await
        .unwrap();
    let names = vec!["B".to_owned(), "MISSING".to_owned(), "A".to_owned()];
    let got = load_granted(&store, &k, "local", &names).await.unwrap();
    let got: Vec<(&str, &str)> = got.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(got, [("B", "value-b-2"), ("A", "value-a-1")]);
    assert!(
        load_granted(&store, &key(15), "local", &names)
            .await
            .is_err()
    );
}
