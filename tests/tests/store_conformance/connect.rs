//! [`ConnectRepo`](airlock_runtime::store::repo::ConnectRepo) and
//! [`WebhookRepo`](airlock_runtime::store::repo::WebhookRepo): connect
//! tokens, sessions, OAuth states and the webhook outbox.

use std::sync::Arc;

use airlock_runtime::store::connect::{ConnectTokenRow, OAuthStateRow};
use airlock_runtime::store::repo::Database;
use airlock_runtime::store::webhooks::{Attempt, WebhookRow};
use futures::future::join_all;

use super::support::sealed;

pub fn token(id: &str, project: &str, expires_at: i64) -> ConnectTokenRow {
    ConnectTokenRow {
        id: id.to_owned(),
        project: project.to_owned(),
        token_hash: format!("hash of {id}").into_bytes(),
        external_user_id: "ada".to_owned(),
        apps: Some(vec!["github".to_owned(), "zendesk".to_owned()]),
        success_redirect_uri: Some("https://app.example/ok?x=1".to_owned()),
        error_redirect_uri: None,
        webhook_uri: Some("https://hooks.example/airlock".to_owned()),
        allowed_origins: vec!["https://app.example".to_owned()],
        account_id: None,
        expires_at,
        created_at: 100,
        flows_started: 0,
        used_at: None,
        used_account_id: None,
    }
}

pub fn state(hash: &str, token_id: &str, expires_at: i64, with_verifier: bool) -> OAuthStateRow {
    OAuthStateRow {
        state_hash: hash.as_bytes().to_vec(),
        token_id: token_id.to_owned(),
        project: "alpha".to_owned(),
        app: "github".to_owned(),
        external_user_id: "ada".to_owned(),
        binding_hash: b"binding\0\xff".to_vec(),
        custom_fields: r#"{"subdomain":"acme"}"#.to_owned(),
        verifier: with_verifier.then(|| sealed("k1", "verifier")),
        expires_at,
        created_at: 100,
    }
}

pub fn webhook(id: &str, next_attempt_at: i64) -> WebhookRow {
    WebhookRow {
        id: id.to_owned(),
        project: "alpha".to_owned(),
        url: "https://hooks.example/airlock".to_owned(),
        event: "account.connected".to_owned(),
        body: format!(r#"{{"id":"{id}"}}"#),
        attempts: 0,
        next_attempt_at,
        created_at: next_attempt_at,
    }
}

pub async fn connect_token_insert_get_find_delete(db: Arc<dyn Database>) {
    let a = token("ct_000000000000000a", "alpha", 1_000);
    let mut b = token("ct_000000000000000b", "alpha", 2_000);
    b.apps = None;
    b.success_redirect_uri = None;
    b.webhook_uri = None;
    b.allowed_origins = vec![];
    b.account_id = Some("acc_0000000000000001".to_owned());
    db.insert_connect_token(&a).await.unwrap();
    db.insert_connect_token(&b).await.unwrap();
    assert_eq!(db.get_connect_token(&a.id).await.unwrap(), Some(a.clone()));
    // NULLs and empty lists come back as such.
    assert_eq!(db.get_connect_token(&b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(
        db.find_connect_token(&a.token_hash).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(db.find_connect_token(b"no such hash").await.unwrap(), None);
    assert_eq!(
        db.get_connect_token("ct_ffffffffffffffff").await.unwrap(),
        None
    );
    // A hash is unique.
    let mut dup = token("ct_000000000000000c", "alpha", 1_000);
    dup.token_hash = a.token_hash.clone();
    assert!(db.insert_connect_token(&dup).await.is_err());

    // Deleting takes its sessions and states with it; another project's is kept.
    db.insert_connect_session(b"session-a", &a.id, 1_000)
        .await
        .unwrap();
    db.insert_oauth_state(&state("state-a", &a.id, 1_000, true))
        .await
        .unwrap();
    assert!(!db.delete_connect_token("beta", &a.id).await.unwrap());
    assert!(db.delete_connect_token("alpha", &a.id).await.unwrap());
    assert!(!db.delete_connect_token("alpha", &a.id).await.unwrap());
    assert_eq!(db.get_connect_token(&a.id).await.unwrap(), None);
    assert_eq!(db.get_connect_session(b"session-a").await.unwrap(), None);
    assert_eq!(db.take_oauth_state(b"state-a").await.unwrap(), None);
    assert!(db.get_connect_token(&b.id).await.unwrap().is_some());
}

pub async fn connect_flows_are_counted_to_the_limit(db: Arc<dyn Database>) {
    let t = token("ct_0000000000000001", "alpha", 1_000);
    db.insert_connect_token(&t).await.unwrap();
    for _ in 0..3 {
        assert!(db.start_connect_flow(&t.id, 3, 500).await.unwrap());
    }
    assert!(!db.start_connect_flow(&t.id, 3, 500).await.unwrap());
    assert_eq!(
        db.get_connect_token(&t.id)
            .await
            .unwrap()
            .unwrap()
            .flows_started,
        3
    );
    // Expired (at `expires_at` itself too) or used: nothing counted.
    let e = token("ct_0000000000000002", "alpha", 1_000);
    db.insert_connect_token(&e).await.unwrap();
    assert!(!db.start_connect_flow(&e.id, 3, 1_000).await.unwrap());
    assert!(db.spend_connect_token(&e.id, "acc_1", 999).await.unwrap());
    assert!(!db.start_connect_flow(&e.id, 3, 500).await.unwrap());
    assert_eq!(
        db.get_connect_token(&e.id)
            .await
            .unwrap()
            .unwrap()
            .flows_started,
        0
    );
    assert!(
        !db.start_connect_flow("ct_ffffffffffffffff", 3, 1)
            .await
            .unwrap()
    );
}

pub async fn connect_token_is_spent_once(db: Arc<dyn Database>) {
    let t = token("ct_0000000000000001", "alpha", 1_000);
    db.insert_connect_token(&t).await.unwrap();
    assert_eq!(
        db.connect_webhook_for_account("alpha", "acc_0000000000000001")
            .await
            .unwrap(),
        None
    );
    assert!(
        db.spend_connect_token(&t.id, "acc_0000000000000001", 500)
            .await
            .unwrap()
    );
    assert!(
        !db.spend_connect_token(&t.id, "acc_0000000000000002", 501)
            .await
            .unwrap()
    );
    let row = db.get_connect_token(&t.id).await.unwrap().unwrap();
    assert_eq!(row.used_at, Some(500));
    assert_eq!(row.used_account_id.as_deref(), Some("acc_0000000000000001"));
    assert_eq!(
        db.connect_webhook_for_account("alpha", "acc_0000000000000001")
            .await
            .unwrap(),
        Some("https://hooks.example/airlock".to_owned())
    );
    assert_eq!(
        db.connect_webhook_for_account("beta", "acc_0000000000000001")
            .await
            .unwrap(),
        None
    );
    // An expired token cannot be spent.
    let e = token("ct_0000000000000002", "alpha", 1_000);
    db.insert_connect_token(&e).await.unwrap();
    assert!(!db.spend_connect_token(&e.id, "acc_3", 1_000).await.unwrap());
    assert_eq!(
        db.get_connect_token(&e.id).await.unwrap().unwrap().used_at,
        None
    );
}

pub async fn connect_sessions_and_states(db: Arc<dyn Database>) {
    let t = token("ct_0000000000000001", "alpha", 1_000);
    db.insert_connect_token(&t).await.unwrap();
    db.insert_connect_session(b"s\0\xff", &t.id, 900)
        .await
        .unwrap();
    assert_eq!(
        db.get_connect_session(b"s\0\xff").await.unwrap(),
        Some((t.id.clone(), 900))
    );
    assert_eq!(db.get_connect_session(b"other").await.unwrap(), None);
    let with = state("state-1", &t.id, 700, true);
    let without = state("state-2", &t.id, 700, false);
    let old = state("state-3", &t.id, 10, true);
    for s in [&with, &without, &old] {
        db.insert_oauth_state(s).await.unwrap();
    }
    // Taken once, whole; a second take finds nothing.
    assert_eq!(db.take_oauth_state(b"state-1").await.unwrap(), Some(with));
    assert_eq!(db.take_oauth_state(b"state-1").await.unwrap(), None);
    assert_eq!(
        db.take_oauth_state(b"state-2").await.unwrap(),
        Some(without)
    );
    // The sweep forgets what expired by `now` and keeps the rest.
    db.insert_oauth_state(&state("state-4", &t.id, 700, false))
        .await
        .unwrap();
    assert_eq!(db.delete_connect_expired(600).await.unwrap(), 1);
    assert_eq!(db.take_oauth_state(b"state-3").await.unwrap(), None);
    assert!(db.get_connect_session(b"s\0\xff").await.unwrap().is_some());
    assert_eq!(db.delete_connect_expired(900).await.unwrap(), 2);
    assert_eq!(db.get_connect_session(b"s\0\xff").await.unwrap(), None);
    assert_eq!(db.take_oauth_state(b"state-4").await.unwrap(), None);
}

fn ids(rows: &[WebhookRow]) -> Vec<&str> {
    rows.iter().map(|r| r.id.as_str()).collect()
}

pub async fn webhook_claims_lease_and_finish(db: Arc<dyn Database>) {
    for (id, due) in [
        ("evt_3", 300),
        ("evt_1", 100),
        ("evt_2", 200),
        ("evt_later", 5_000),
    ] {
        db.enqueue_webhook(&webhook(id, due)).await.unwrap();
    }
    // Oldest due first, up to the limit, each attempt counted.
    let first = db.claim_webhooks("node-a", 1_000, 60_000, 2).await.unwrap();
    assert_eq!(ids(&first), ["evt_1", "evt_2"]);
    assert!(first.iter().all(|r| r.attempts == 1), "{first:?}");
    assert_eq!(first[0].body, r#"{"id":"evt_1"}"#);
    // Leased rows are not claimed again; not yet due ones neither.
    let second = db
        .claim_webhooks("node-b", 1_000, 60_000, 10)
        .await
        .unwrap();
    assert_eq!(ids(&second), ["evt_3"]);
    assert!(
        db.claim_webhooks("node-b", 1_000, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Only the owner ends a lease.
    assert!(
        !db.finish_webhook("evt_1", "node-b", &Attempt::Delivered, 1_001)
            .await
            .unwrap()
    );
    assert!(
        db.finish_webhook("evt_1", "node-a", &Attempt::Delivered, 1_001)
            .await
            .unwrap()
    );
    assert!(
        !db.finish_webhook("evt_1", "node-a", &Attempt::Delivered, 1_002)
            .await
            .unwrap()
    );
    let retry = Attempt::Retry {
        at_ms: 3_000,
        error: "HTTP 503".to_owned(),
    };
    assert!(
        db.finish_webhook("evt_3", "node-b", &retry, 1_001)
            .await
            .unwrap()
    );
    let give_up = Attempt::GiveUp {
        error: "HTTP 500".to_owned(),
    };
    // evt_2's lease (node-a) runs out at 61_000: then anyone may take it.
    assert!(
        db.claim_webhooks("node-c", 2_000, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let after_retry = db
        .claim_webhooks("node-c", 3_000, 60_000, 10)
        .await
        .unwrap();
    assert_eq!(ids(&after_retry), ["evt_3"]);
    assert_eq!(after_retry[0].attempts, 2);
    assert!(
        db.finish_webhook("evt_3", "node-c", &give_up, 3_001)
            .await
            .unwrap()
    );
    let expired_lease = db
        .claim_webhooks("node-c", 61_000, 60_000, 10)
        .await
        .unwrap();
    assert_eq!(ids(&expired_lease), ["evt_2", "evt_later"]);
    assert_eq!(expired_lease[0].attempts, 2);
    // The lost lease cannot record an outcome.
    assert!(
        !db.finish_webhook("evt_2", "node-a", &Attempt::Delivered, 61_001)
            .await
            .unwrap()
    );
    for id in ["evt_2", "evt_later"] {
        assert!(
            db.finish_webhook(id, "node-c", &Attempt::Delivered, 61_001)
                .await
                .unwrap()
        );
    }
    // Delivered and given-up events are never claimed again.
    assert!(
        db.claim_webhooks("node-d", i64::MAX / 4, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Two nodes claiming one outbox at once never get the same event, and
/// between them get all of them.
pub async fn concurrent_webhook_claims_never_share_a_row(
    a: Arc<dyn Database>,
    b: Arc<dyn Database>,
) {
    for i in 0..40 {
        a.enqueue_webhook(&webhook(&format!("evt_{i:02}"), i))
            .await
            .unwrap();
    }
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let db = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let rows = db
                        .claim_webhooks(&format!("node-{i}"), 1_000, 60_000, 3)
                        .await
                        .unwrap();
                    if rows.is_empty() {
                        break got;
                    }
                    got.extend(rows.into_iter().map(|r| r.id));
                }
            })
        })
        .collect();
    let mut all: Vec<String> = join_all(tasks)
        .await
        .into_iter()
        .flat_map(|t| t.unwrap())
        .collect();
    all.sort();
    let expected: Vec<String> = (0..40).map(|i| format!("evt_{i:02}")).collect();
    assert_eq!(all, expected);
}

/// Of many callbacks with one state, one takes it; of many flows spending
/// one token, one spends it.
pub async fn concurrent_state_take_and_spend_have_one_winner(
    a: Arc<dyn Database>,
    b: Arc<dyn Database>,
) {
    let t = token("ct_0000000000000001", "alpha", 1_000);
    a.insert_connect_token(&t).await.unwrap();
    a.insert_oauth_state(&state("the-state", &t.id, 900, true))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let db = if i % 2 == 0 { a.clone() } else { b.clone() };
            let id = t.id.clone();
            tokio::spawn(async move {
                let took = db.take_oauth_state(b"the-state").await.unwrap().is_some();
                let spent = db
                    .spend_connect_token(&id, &format!("acc_{i}"), 500)
                    .await
                    .unwrap();
                (took, spent)
            })
        })
        .collect();
    let results: Vec<(bool, bool)> = join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.unwrap())
        .collect();
    assert_eq!(results.iter().filter(|r| r.0).count(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|r| r.1).count(), 1, "{results:?}");
}
