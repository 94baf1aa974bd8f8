//! [`SecretRepo`](airlock_runtime::store::repo::SecretRepo).

use std::sync::Arc;

use airlock_runtime::store::repo::Database;
use airlock_runtime::store::{SecretMeta, SetOutcome};

use super::support::sealed;

pub async fn secret_put_creates_then_updates_keeping_created_at(db: Arc<dyn Database>) {
    let first = sealed("k1", "one");
    let outcome = db
        .put_secret("alpha", "API_KEY", &first, 100)
        .await
        .unwrap();
    assert_eq!(outcome, SetOutcome::Created);
    assert_eq!(
        db.get_secret("alpha", "API_KEY").await.unwrap(),
        Some(first)
    );
    // A value under another key replaces it whole: key id, nonce and bytes.
    let second = sealed("k2", "two");
    let outcome = db
        .put_secret("alpha", "API_KEY", &second, 200)
        .await
        .unwrap();
    assert_eq!(outcome, SetOutcome::Updated);
    assert_eq!(
        db.get_secret("alpha", "API_KEY").await.unwrap(),
        Some(second)
    );
    let listed = db.list_secrets("alpha").await.unwrap();
    let want = SecretMeta {
        name: "API_KEY".into(),
        created_at: 100,
        updated_at: 200,
    };
    assert_eq!(listed, [want]);
}

pub async fn secret_not_found_and_delete(db: Arc<dyn Database>) {
    assert_eq!(db.get_secret("alpha", "NOPE").await.unwrap(), None);
    assert!(!db.delete_secret("alpha", "NOPE").await.unwrap());
    let (a, b) = (sealed("k1", "a"), sealed("k1", "b"));
    db.put_secret("alpha", "S", &a, 1).await.unwrap();
    // The same name in another project is another secret.
    assert_eq!(
        db.put_secret("beta", "S", &b, 1).await.unwrap(),
        SetOutcome::Created
    );
    assert!(db.delete_secret("alpha", "S").await.unwrap());
    assert_eq!(db.get_secret("alpha", "S").await.unwrap(), None);
    assert_eq!(db.get_secret("beta", "S").await.unwrap(), Some(b));
    assert!(!db.delete_secret("alpha", "S").await.unwrap());
    assert!(db.list_secrets("alpha").await.unwrap().is_empty());
}

pub async fn secret_list_is_by_name_in_byte_order(db: Arc<dyn Database>) {
    for (i, name) in ["b", "a.b", "B", "_x", "a", "a-b", "a_b"]
        .iter()
        .enumerate()
    {
        db.put_secret("alpha", name, &sealed("k1", name), i as i64)
            .await
            .unwrap();
    }
    db.put_secret("beta", "c", &sealed("k1", "c"), 9)
        .await
        .unwrap();
    let names: Vec<String> = db
        .list_secrets("alpha")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    // Bytes, as SQLite compares: upper case, `_`, then lower case.
    assert_eq!(names, ["B", "_x", "a", "a-b", "a.b", "a_b", "b"]);
    assert!(db.list_secrets("gamma").await.unwrap().is_empty());
}

pub async fn secret_get_many_returns_those_that_exist(db: Arc<dyn Database>) {
    let (a, c) = (sealed("k1", "a"), sealed("k2", "c"));
    db.put_secret("alpha", "A", &a, 1).await.unwrap();
    db.put_secret("alpha", "C", &c, 1).await.unwrap();
    db.put_secret("beta", "B", &sealed("k1", "b"), 1)
        .await
        .unwrap();
    let names = ["C", "B", "A", "MISSING"].map(String::from);
    let mut got = db.get_secrets("alpha", &names).await.unwrap();
    // The contract names no order; the service puts them in grant order.
    got.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(got, [("A".to_owned(), a), ("C".to_owned(), c)]);
    assert!(db.get_secrets("alpha", &[]).await.unwrap().is_empty());
    assert!(db.get_secrets("gamma", &names).await.unwrap().is_empty());
}
