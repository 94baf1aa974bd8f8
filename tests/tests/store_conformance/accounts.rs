//! [`AccountRepo`](airlock_runtime::store::repo::AccountRepo).

use std::sync::Arc;

use airlock_runtime::store::repo::{AccountRow, Database};
use airlock_runtime::store::{AccountFilter, AccountStatus};

use super::support::{account, ids, sealed};

/// Accounts of project `alpha`, inserted in this order: `old`, `new1` and
/// `new2` (same second), `gitlab` of `u`, and `v`'s newest of all.
async fn seed(db: &dyn Database) -> Vec<AccountRow> {
    let rows = vec![
        account("acc_00000000000000a1", "alpha", "u", "github", 100),
        // Same second: insertion order breaks the tie, whatever the ids say.
        account("acc_00000000000000f2", "alpha", "u", "github", 200),
        account("acc_00000000000000b3", "alpha", "u", "github", 200),
        account("acc_00000000000000c4", "alpha", "u", "gitlab", 300),
        account("acc_00000000000000d5", "alpha", "v", "github", 400),
        account("acc_00000000000000e6", "beta", "u", "github", 500),
    ];
    for row in &rows {
        db.insert_account(row).await.unwrap();
    }
    rows
}

pub async fn account_insert_get_and_not_found(db: Arc<dyn Database>) {
    let mut full = account("acc_0000000000000001", "alpha", "user-1", "zendesk", 100);
    full.meta
        .custom_fields
        .insert("subdomain".into(), "acme".into());
    full.meta.custom_fields.insert("region".into(), "eu".into());
    full.meta.expires_at = Some(5_000);
    let bare = account("acc_0000000000000002", "alpha", "user-2", "github", 100);
    db.insert_account(&full).await.unwrap();
    db.insert_account(&bare).await.unwrap();
    let id = full.meta.id.as_str();
    assert_eq!(
        db.get_account("alpha", id).await.unwrap(),
        Some(full.clone())
    );
    assert_eq!(
        db.get_account_meta("alpha", id).await.unwrap(),
        Some(full.meta.clone())
    );
    // NULL expiry and no custom fields come back as such.
    assert_eq!(
        db.get_account("alpha", &bare.meta.id).await.unwrap(),
        Some(bare.clone())
    );
    // Accounts are per project.
    assert_eq!(db.get_account("beta", id).await.unwrap(), None);
    assert_eq!(db.get_account_meta("beta", id).await.unwrap(), None);
    assert_eq!(
        db.get_account("alpha", "acc_ffffffffffffffff")
            .await
            .unwrap(),
        None
    );
    // An id is unique across projects.
    let mut again = full.clone();
    again.meta.project = "beta".into();
    assert!(db.insert_account(&again).await.is_err());
}

pub async fn account_find_by_id_or_newest_of_app(db: Arc<dyn Database>) {
    let rows = seed(&*db).await;
    let find = |user: &'static str, what: String| {
        let db = db.clone();
        async move {
            db.find_account("alpha", user, &what)
                .await
                .unwrap()
                .map(|r| r.meta.id)
        }
    };
    let id = |i: usize| rows[i].meta.id.clone();
    // An app slug: the user's newest account of it (then the last inserted).
    assert_eq!(find("u", "github".into()).await, Some(id(2)));
    assert_eq!(find("u", "gitlab".into()).await, Some(id(3)));
    assert_eq!(find("v", "github".into()).await, Some(id(4)));
    assert_eq!(find("u", "bitbucket".into()).await, None);
    // An id: that account, if it is the user's, newest or not.
    assert_eq!(find("u", id(0)).await, Some(id(0)));
    assert_eq!(find("v", id(0)).await, None);
    assert_eq!(find("u", "acc_ffffffffffffffff".into()).await, None);
    // Another project's account is not found by id or app.
    assert_eq!(find("u", id(5)).await, None);
    let found = db.find_account("alpha", "u", "github").await.unwrap();
    assert_eq!(
        found,
        Some(rows[2].clone()),
        "the whole row, sealed included"
    );
}

pub async fn account_list_is_newest_first_with_filters(db: Arc<dyn Database>) {
    let rows = seed(&*db).await;
    let list = |app: Option<&str>, user: Option<&str>| {
        let filter = AccountFilter {
            app: app.map(str::to_owned),
            external_user_id: user.map(str::to_owned),
        };
        let db = db.clone();
        async move {
            let metas = db.list_accounts("alpha", &filter).await.unwrap();
            ids(&metas, |m| &m.id)
        }
    };
    let id = |i: usize| rows[i].meta.id.clone();
    assert_eq!(list(None, None).await, [id(4), id(3), id(2), id(1), id(0)]);
    assert_eq!(
        list(Some("github"), None).await,
        [id(4), id(2), id(1), id(0)]
    );
    assert_eq!(list(None, Some("u")).await, [id(3), id(2), id(1), id(0)]);
    assert_eq!(list(Some("github"), Some("u")).await, [id(2), id(1), id(0)]);
    assert!(list(Some("nothing"), None).await.is_empty());
    let all = db
        .list_accounts("alpha", &AccountFilter::default())
        .await
        .unwrap();
    assert_eq!(all[0], rows[4].meta, "metadata in full");
    let none = db
        .list_accounts("gamma", &AccountFilter::default())
        .await
        .unwrap();
    assert!(none.is_empty());
}

pub async fn account_status_and_delete(db: Arc<dyn Database>) {
    let row = account("acc_0000000000000001", "alpha", "u", "github", 100);
    db.insert_account(&row).await.unwrap();
    let id = row.meta.id.as_str();
    let reauth = AccountStatus::NeedsReauth;
    assert!(
        !db.set_account_status("alpha", "acc_ffff", reauth, 500)
            .await
            .unwrap()
    );
    assert!(
        !db.set_account_status("beta", id, reauth, 500)
            .await
            .unwrap()
    );
    assert!(
        db.set_account_status("alpha", id, reauth, 500)
            .await
            .unwrap()
    );
    let mut want = row.clone();
    want.meta.status = reauth;
    want.meta.updated_at = 500;
    assert_eq!(db.get_account("alpha", id).await.unwrap(), Some(want));
    let healthy = AccountStatus::Healthy;
    assert!(
        db.set_account_status("alpha", id, healthy, 600)
            .await
            .unwrap()
    );
    assert_eq!(
        db.get_account_meta("alpha", id)
            .await
            .unwrap()
            .unwrap()
            .status,
        healthy
    );
    assert!(!db.delete_account("beta", id).await.unwrap());
    assert!(db.delete_account("alpha", id).await.unwrap());
    assert_eq!(db.get_account("alpha", id).await.unwrap(), None);
    assert!(!db.delete_account("alpha", id).await.unwrap());
    assert!(
        !db.set_account_status("alpha", id, healthy, 700)
            .await
            .unwrap()
    );
}

pub async fn account_credentials_replace_is_compare_and_swap(db: Arc<dyn Database>) {
    let row = account("acc_0000000000000001", "alpha", "u", "github", 100);
    db.insert_account(&row).await.unwrap();
    let id = row.meta.id.as_str();
    let old = row.sealed.nonce;
    let reauth = AccountStatus::NeedsReauth;
    let healthy = AccountStatus::Healthy;
    db.set_account_status("alpha", id, reauth, 150)
        .await
        .unwrap();

    // A nonce that was never stored: nothing changes.
    let stray = sealed("k1", "stray");
    let s1 = sealed("k2", "rotated");
    let swapped = db
        .replace_account_credentials("alpha", id, &stray.nonce, &s1, Some(9), healthy, 200)
        .await
        .unwrap();
    assert!(!swapped);
    let stored = db.get_account("alpha", id).await.unwrap().unwrap();
    assert_eq!(
        (stored.sealed, stored.meta.status),
        (row.sealed.clone(), reauth)
    );

    // The nonce it was read with: credentials, expiry, status and date change.
    let swapped = db
        .replace_account_credentials("alpha", id, &old, &s1, Some(9_000), healthy, 300)
        .await
        .unwrap();
    assert!(swapped);
    let mut want = row.clone();
    want.sealed = s1.clone();
    want.meta.expires_at = Some(9_000);
    want.meta.updated_at = 300;
    assert_eq!(
        db.get_account("alpha", id).await.unwrap(),
        Some(want.clone())
    );

    // A writer still holding the old read loses.
    let s2 = sealed("k2", "late");
    let late = db
        .replace_account_credentials("alpha", id, &old, &s2, None, reauth, 400)
        .await
        .unwrap();
    assert!(!late);
    assert_eq!(
        db.get_account("alpha", id).await.unwrap(),
        Some(want.clone())
    );

    // Expiry can be cleared (NULL), and other projects' ids never match.
    let cleared = db
        .replace_account_credentials("alpha", id, &s1.nonce, &s2, None, healthy, 500)
        .await
        .unwrap();
    assert!(cleared);
    let meta = db.get_account_meta("alpha", id).await.unwrap().unwrap();
    assert_eq!((meta.expires_at, meta.updated_at), (None, 500));
    let other = db
        .replace_account_credentials("beta", id, &s2.nonce, &s1, None, healthy, 600)
        .await
        .unwrap();
    assert!(!other);
    let missing = db
        .replace_account_credentials("alpha", "acc_ffff", &s2.nonce, &s1, None, healthy, 600)
        .await
        .unwrap();
    assert!(!missing);
}
