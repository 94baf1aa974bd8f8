//! Unit tests of the platform store.

use super::*;

#[test]
fn key_and_client_ids_are_parsed_strictly() {
    assert_eq!(
        api_key_id("ak_0123456789abcdef_s3cr-et_x"),
        Some("0123456789abcdef")
    );
    for bad in [
        "ak_0123456789abcdef_",
        "ak_0123456789abcdef",
        "ak_0123456789abcdeX_secret",
        "ak_short_secret",
        "at_0123456789abcdef_secret",
        "",
    ] {
        assert_eq!(api_key_id(bad), None, "{bad}");
    }
    assert!(is_client_id("ac_0123456789abcdef"));
    assert!(!is_client_id("ac_0123456789abcdef0"));
    assert!(!is_client_id("some-secret-pasted-here"));
}

#[tokio::test]
async fn credentials_are_stored_hashed_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = SecretStore::open(dir.path()).await.unwrap();
    let store = PlatformStore::new(&secrets);
    let scopes = vec!["proxy".to_owned()];
    let (meta, key) = store
        .create_api_key("k", &scopes, None, None)
        .await
        .unwrap();
    let grant = store.verify_bearer(&key).await.unwrap().unwrap();
    assert_eq!(grant.id, meta.id);
    assert_eq!(grant.scopes, scopes);
    let mut wrong = key.to_string();
    wrong.pop();
    wrong.push('!');
    let refusal = store.verify_bearer(&wrong).await.unwrap().unwrap_err();
    assert_eq!(refusal.key_id.as_deref(), Some(meta.id.as_str()));
    assert!(
        store
            .create_api_key("k", &["root".to_owned()], None, None)
            .await
            .is_err()
    );
    // An already-expired token is refused.
    let (client, secret) = store.create_client("c", &scopes, None, None).await.unwrap();
    let client = store
        .verify_client(&client.id, &secret)
        .await
        .unwrap()
        .unwrap();
    let token = store.issue_token(&client, &scopes, 1).await.unwrap();
    sqlx::query("UPDATE oauth_tokens SET expires_at = 0")
        .execute(&secrets.pool_for_tests())
        .await
        .unwrap();
    let refusal = store.verify_bearer(&token).await.unwrap().unwrap_err();
    assert_eq!(refusal.reason, "expired access token");
}

fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn the_last_unrestricted_admin_key_or_client_stays() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = SecretStore::open(dir.path()).await.unwrap();
    let store = PlatformStore::new(&secrets);
    store.create_project("alpha").await.unwrap();
    let admin = scopes(&["runs:read", "admin"]);
    let (key, _) = store.create_api_key("k", &admin, None, None).await.unwrap();
    // Neither a restricted admin nor a non-admin counts as a way in.
    let (restricted, _) = store
        .create_api_key("r", &scopes(&["admin"]), Some("alpha"), None)
        .await
        .unwrap();
    let (reader, _) = store
        .create_client("c", &scopes(&["runs:read"]), None, None)
        .await
        .unwrap();
    assert_eq!(
        store.revoke_api_key(&key.id).await.unwrap(),
        Revocation::LastAdmin
    );
    // A second admin, as a client: now the key may go, then not the client.
    let (client, _) = store.create_client("a", &admin, None, None).await.unwrap();
    assert_eq!(
        store.revoke_api_key(&key.id).await.unwrap(),
        Revocation::Revoked
    );
    assert_eq!(
        store.delete_client(&client.id).await.unwrap(),
        Revocation::LastAdmin
    );
    assert!(store.get_client(&client.id).await.unwrap().is_some());
    for (what, outcome) in [
        ("restricted", store.revoke_api_key(&restricted.id).await),
        ("reader", store.delete_client(&reader.id).await),
        ("missing key", store.revoke_api_key(&key.id).await),
        (
            "missing client",
            store.delete_client("ac_0000000000000000").await,
        ),
    ] {
        let want = if what.starts_with("missing") {
            Revocation::NotFound
        } else {
            Revocation::Revoked
        };
        assert_eq!(outcome.unwrap(), want, "{what}");
    }
}
