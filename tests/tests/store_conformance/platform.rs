//! [`PlatformRepo`](airlock_runtime::store::repo::PlatformRepo).

use std::sync::Arc;

use airlock_runtime::store::platform::Project;
use airlock_runtime::store::repo::{Database, Revocation, TokenRow};

use super::support::{admin, credential, ids, scopes};

pub async fn platform_ping_and_projects(db: Arc<dyn Database>) {
    db.ping().await.unwrap();
    assert!(db.insert_project("beta", 100).await.unwrap());
    assert!(db.insert_project("alpha", 200).await.unwrap());
    assert!(db.insert_project("Zeta", 300).await.unwrap());
    // Existing: refused, and its creation time kept.
    assert!(!db.insert_project("beta", 400).await.unwrap());
    let project = |name: &str, created_at| Project {
        name: name.into(),
        created_at,
    };
    assert_eq!(
        db.list_projects().await.unwrap(),
        [
            project("Zeta", 300),
            project("alpha", 200),
            project("beta", 100)
        ]
    );
    assert_eq!(
        db.get_project("beta").await.unwrap(),
        Some(project("beta", 100))
    );
    assert_eq!(db.get_project("gamma").await.unwrap(), None);
}

/// `ping` answers until `close`, then fails instead of reconnecting.
pub async fn platform_ping_fails_after_close(db: Arc<dyn Database>) {
    db.ping().await.unwrap();
    db.close().await;
    assert!(db.ping().await.is_err());
}

pub async fn platform_api_keys(db: Arc<dyn Database>) {
    let k2 = credential("bbbbbbbbbbbbbbbb", &["runs:read"], None, 100);
    let k1 = credential("aaaaaaaaaaaaaaaa", &["steps:write", "runs:read"], None, 100);
    let k3 = credential("cccccccccccccccc", &["admin"], Some("alpha"), 50);
    for key in [&k2, &k1, &k3] {
        db.insert_api_key(key).await.unwrap();
    }
    assert!(db.insert_api_key(&k1).await.is_err(), "ids are unique");
    // The hash, scopes in their order, and the NULL or set project.
    assert_eq!(db.get_api_key(&k1.meta.id).await.unwrap(), Some(k1.clone()));
    assert_eq!(db.get_api_key(&k3.meta.id).await.unwrap(), Some(k3.clone()));
    assert_eq!(db.get_api_key("ffffffffffffffff").await.unwrap(), None);
    // Creation time, then id.
    let listed = db.list_api_keys().await.unwrap();
    assert_eq!(listed, [k3.meta.clone(), k1.meta.clone(), k2.meta.clone()]);
    assert_eq!(
        db.delete_api_key(&k3.meta.id).await.unwrap(),
        Revocation::Revoked
    );
    assert_eq!(db.get_api_key(&k3.meta.id).await.unwrap(), None);
    assert_eq!(
        db.delete_api_key(&k3.meta.id).await.unwrap(),
        Revocation::NotFound
    );
    assert_eq!(
        ids(&db.list_api_keys().await.unwrap(), |m| &m.id),
        [k1.meta.id.clone(), k2.meta.id.clone()]
    );
}

pub async fn platform_last_admin_is_kept(db: Arc<dyn Database>) {
    let key = admin("aaaaaaaaaaaaaaaa", 1);
    // Neither a project's admin nor a non-admin is a way in.
    let restricted = credential("bbbbbbbbbbbbbbbb", &["admin"], Some("alpha"), 1);
    let reader = credential("ac_000000000000000c", &["runs:read"], None, 1);
    db.insert_api_key(&key).await.unwrap();
    db.insert_api_key(&restricted).await.unwrap();
    db.insert_client(&reader).await.unwrap();
    assert_eq!(
        db.delete_api_key(&key.meta.id).await.unwrap(),
        Revocation::LastAdmin
    );
    assert!(db.get_api_key(&key.meta.id).await.unwrap().is_some());

    // A second admin, as a client: keys and clients count together.
    let client = admin("ac_000000000000000d", 2);
    db.insert_client(&client).await.unwrap();
    assert_eq!(
        db.delete_api_key(&key.meta.id).await.unwrap(),
        Revocation::Revoked
    );
    assert_eq!(
        db.delete_client(&client.meta.id).await.unwrap(),
        Revocation::LastAdmin
    );
    assert!(db.get_client(&client.meta.id).await.unwrap().is_some());

    assert_eq!(
        db.delete_api_key(&restricted.meta.id).await.unwrap(),
        Revocation::Revoked
    );
    assert_eq!(
        db.delete_client(&reader.meta.id).await.unwrap(),
        Revocation::Revoked
    );
    assert_eq!(
        db.delete_api_key(&key.meta.id).await.unwrap(),
        Revocation::NotFound
    );
    assert_eq!(
        db.delete_client("ac_0000000000000000").await.unwrap(),
        Revocation::NotFound
    );
}

pub async fn platform_clients_and_tokens(db: Arc<dyn Database>) {
    // Same second for c1 and c2: insertion order, not id order.
    let c1 = credential("ac_ffffffffffffffff", &["runs:read"], None, 100);
    let c2 = credential("ac_0000000000000000", &["admin"], Some("alpha"), 100);
    let c0 = credential("ac_8888888888888888", &["proxy"], None, 50);
    for c in [&c1, &c2, &c0] {
        db.insert_client(c).await.unwrap();
    }
    assert_eq!(
        ids(&db.list_clients().await.unwrap(), |m| &m.id),
        [c0.meta.id.clone(), c1.meta.id.clone(), c2.meta.id.clone()]
    );
    assert_eq!(db.get_client(&c2.meta.id).await.unwrap(), Some(c2.clone()));
    assert_eq!(db.get_client("ac_1111111111111111").await.unwrap(), None);

    let token = |client: &str, project: Option<&str>, expires_at| TokenRow {
        client_id: client.to_owned(),
        scopes: scopes(&["runs:read", "proxy"]),
        project: project.map(str::to_owned),
        expires_at,
    };
    let t1 = token(&c1.meta.id, None, 1_000);
    let t2 = token(&c1.meta.id, Some("alpha"), 2_000);
    let t3 = token(&c2.meta.id, Some("alpha"), 3_000);
    db.insert_token(b"hash-1", &t1).await.unwrap();
    db.insert_token(b"hash-2", &t2).await.unwrap();
    db.insert_token(b"hash-3", &t3).await.unwrap();
    assert_eq!(db.get_token(b"hash-1").await.unwrap(), Some(t1.clone()));
    assert_eq!(db.get_token(b"hash-2").await.unwrap(), Some(t2));
    assert_eq!(db.get_token(b"hash-4").await.unwrap(), None);
    let orphan = token("ac_1111111111111111", None, 1);
    assert!(
        db.insert_token(b"hash-5", &orphan).await.is_err(),
        "a token belongs to an existing client"
    );

    // Rotation: the new hash, and every token of that client gone.
    assert!(
        db.rotate_client_secret(&c1.meta.id, b"new hash")
            .await
            .unwrap()
    );
    let rotated = db.get_client(&c1.meta.id).await.unwrap().unwrap();
    assert_eq!(rotated.secret_hash, b"new hash");
    assert_eq!(rotated.meta, c1.meta);
    assert_eq!(db.get_token(b"hash-1").await.unwrap(), None);
    assert_eq!(db.get_token(b"hash-2").await.unwrap(), None);
    assert_eq!(db.get_token(b"hash-3").await.unwrap(), Some(t3));
    assert!(
        !db.rotate_client_secret("ac_1111111111111111", b"x")
            .await
            .unwrap()
    );

    // Deleting a client deletes its tokens.
    assert_eq!(
        db.delete_client(&c2.meta.id).await.unwrap(),
        Revocation::Revoked
    );
    assert_eq!(db.get_token(b"hash-3").await.unwrap(), None);
    assert_eq!(db.get_client(&c2.meta.id).await.unwrap(), None);
    assert_eq!(
        db.delete_client(&c2.meta.id).await.unwrap(),
        Revocation::NotFound
    );
}

pub async fn platform_token_expiry_cut(db: Arc<dyn Database>) {
    let client = credential("ac_0000000000000001", &["runs:read"], None, 1);
    db.insert_client(&client).await.unwrap();
    for expires_at in [99, 100, 101] {
        let token = TokenRow {
            client_id: client.meta.id.clone(),
            scopes: scopes(&["runs:read"]),
            project: None,
            expires_at,
        };
        db.insert_token(format!("t{expires_at}").as_bytes(), &token)
            .await
            .unwrap();
    }
    // A token expiring at the cutoff is expired: `expires_at <= cutoff` goes.
    assert_eq!(db.delete_tokens_expired_before(100).await.unwrap(), 2);
    assert_eq!(db.get_token(b"t99").await.unwrap(), None);
    assert_eq!(db.get_token(b"t100").await.unwrap(), None);
    assert!(db.get_token(b"t101").await.unwrap().is_some());
    assert_eq!(db.delete_tokens_expired_before(100).await.unwrap(), 0);
}

pub async fn platform_audit_is_newest_first(db: Arc<dyn Database>) {
    db.insert_audit(20, "GET", "/v1/projects", None, "malformed credential")
        .await
        .unwrap();
    db.insert_audit(
        10,
        "POST",
        "/v1/runs",
        Some("aaaaaaaaaaaaaaaa"),
        "wrong API key secret",
    )
    .await
    .unwrap();
    db.insert_audit(10, "DELETE", "/v1/keys/x", None, "expired access token")
        .await
        .unwrap();
    let two = db.list_audit(2).await.unwrap();
    // Newest recorded first (by record, not by `at`).
    assert_eq!(two.len(), 2);
    assert_eq!((two[0].at, two[0].method.as_str()), (10, "DELETE"));
    assert_eq!(two[0].key_id, None);
    assert_eq!(two[0].route, "/v1/keys/x");
    assert_eq!(two[0].reason, "expired access token");
    assert_eq!(
        (two[1].method.as_str(), two[1].key_id.as_deref()),
        ("POST", Some("aaaaaaaaaaaaaaaa"))
    );
    let all = db.list_audit(10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "ids descend");
    assert_eq!(all[..2], two[..]);
    assert!(db.list_audit(0).await.unwrap().is_empty());
}
