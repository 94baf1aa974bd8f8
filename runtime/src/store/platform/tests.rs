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
    let (meta, key) = store.create_api_key("k", &scopes, None).await.unwrap();
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
            .create_api_key("k", &["root".to_owned()], None)
            .await
            .is_err()
    );
    // An already-expired token is refused.
    let (client, secret) = store.create_client("c", &scopes, None).await.unwrap();
    let client = store
        .verify_client(&client.id, &secret)
        .await
        .unwrap()
        .unwrap();
    let token = store.issue_token(&client, &scopes, 1).await.unwrap();
    sqlx::query("UPDATE oauth_tokens SET expires_at = 0")
        .execute(&store.pool)
        .await
        .unwrap();
    let refusal = store.verify_bearer(&token).await.unwrap().unwrap_err();
    assert_eq!(refusal.reason, "expired access token");
}
