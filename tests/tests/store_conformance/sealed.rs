//! [`SealedRepo`](airlock_runtime::store::repo::SealedRepo): what online
//! master-key rotation reads and rewrites.

use std::sync::Arc;

use airlock_runtime::store::repo::{Database, SealedOwner, SealedRecord};

use super::support::{account, sealed};

fn secret_owner(project: &str, name: &str) -> SealedOwner {
    SealedOwner::Secret {
        project: project.into(),
        name: name.into(),
    }
}

pub async fn sealed_key_ids_and_batches(db: Arc<dyn Database>) {
    let (beta_a, alpha_a) = (sealed("old", "1"), sealed("old", "2"));
    db.put_secret("beta", "A", &beta_a, 1).await.unwrap();
    db.put_secret("alpha", "B", &sealed("new", "3"), 1)
        .await
        .unwrap();
    db.put_secret("alpha", "A", &alpha_a, 1).await.unwrap();
    let mut acc3 = account("acc_0000000000000003", "alpha", "u", "github", 1);
    acc3.sealed = sealed("older", "acc3");
    let mut acc2 = account("acc_0000000000000002", "alpha", "u", "github", 1);
    acc2.sealed = sealed("new", "acc2");
    let mut acc1 = account("acc_0000000000000001", "beta", "u", "github", 1);
    acc1.sealed = sealed("old", "acc1");
    for row in [&acc3, &acc2, &acc1] {
        db.insert_account(row).await.unwrap();
    }
    let mut in_use = db.key_ids_in_use().await.unwrap();
    in_use.sort();
    assert_eq!(in_use, ["new", "old", "older"]);

    // Secrets by project and name, then accounts by project and id.
    let all = db.sealed_not_under("new", 10).await.unwrap();
    let want = vec![
        SealedRecord {
            owner: secret_owner("alpha", "A"),
            sealed: alpha_a,
        },
        SealedRecord {
            owner: secret_owner("beta", "A"),
            sealed: beta_a,
        },
        SealedRecord {
            owner: SealedOwner::Account(Box::new(acc3.meta.clone())),
            sealed: acc3.sealed.clone(),
        },
        SealedRecord {
            owner: SealedOwner::Account(Box::new(acc1.meta.clone())),
            sealed: acc1.sealed.clone(),
        },
    ];
    assert_eq!(all, want);
    for limit in [0, 1, 3] {
        let batch = db.sealed_not_under("new", limit).await.unwrap();
        assert_eq!(batch, want[..limit as usize], "limit {limit}");
    }
    assert_eq!(db.sealed_not_under("none", 10).await.unwrap().len(), 6);
}

pub async fn sealed_reseal_is_compare_and_swap(db: Arc<dyn Database>) {
    db.put_secret("alpha", "A", &sealed("old", "a"), 100)
        .await
        .unwrap();
    db.put_secret("beta", "B", &sealed("old", "b"), 300)
        .await
        .unwrap();
    let mut acc = account("acc_0000000000000001", "alpha", "u", "github", 100);
    acc.sealed = sealed("old", "acc");
    db.insert_account(&acc).await.unwrap();
    let records = db.sealed_not_under("new", 10).await.unwrap();
    let [alpha_a, beta_b, account_rec] = &records[..] else {
        panic!("three sealed values, got {records:?}");
    };

    // A write after rotation read the value wins over the re-seal.
    let fresh = sealed("new", "a2");
    db.put_secret("alpha", "A", &fresh, 200).await.unwrap();
    assert!(!db.reseal(alpha_a, &sealed("new", "stale")).await.unwrap());
    assert_eq!(db.get_secret("alpha", "A").await.unwrap(), Some(fresh));

    // Unchanged since the read: re-sealed, and `updated_at` kept.
    let b2 = sealed("new", "b");
    assert!(db.reseal(beta_b, &b2).await.unwrap());
    assert_eq!(db.get_secret("beta", "B").await.unwrap(), Some(b2));
    let listed = db.list_secrets("beta").await.unwrap();
    assert_eq!((listed[0].created_at, listed[0].updated_at), (300, 300));

    // An account: only its sealed credentials change.
    let acc2 = sealed("new", "acc");
    assert!(db.reseal(account_rec, &acc2).await.unwrap());
    let stored = db
        .get_account("alpha", &acc.meta.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.meta, stored.sealed), (acc.meta.clone(), acc2));
    // The same stale record twice: the second finds a new nonce.
    assert!(
        !db.reseal(account_rec, &sealed("new", "again"))
            .await
            .unwrap()
    );

    assert_eq!(db.key_ids_in_use().await.unwrap(), ["new"]);
    assert!(db.sealed_not_under("new", 10).await.unwrap().is_empty());
    // A value deleted meanwhile is not re-created.
    db.delete_secret("beta", "B").await.unwrap();
    assert!(!db.reseal(beta_b, &sealed("new", "gone")).await.unwrap());
    assert_eq!(db.get_secret("beta", "B").await.unwrap(), None);
}
