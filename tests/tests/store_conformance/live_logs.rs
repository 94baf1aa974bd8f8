//! [`LiveLogRepo`](airlock_runtime::store::repo::LiveLogRepo): live log
//! rows of running runs, a run's callback URL, and the once-only outbox
//! insert callbacks use.

use std::sync::Arc;

use airlock_runtime::store::queue::NewQueuedRun;
use airlock_runtime::store::repo::Database;
use airlock_runtime::store::webhooks::WebhookRow;

fn rows(seqs: &[i64]) -> Vec<(i64, String)> {
    seqs.iter()
        .map(|s| (*s, format!(r#"{{"n":{s}}}"#)))
        .collect()
}

pub async fn live_lines_append_read_after_and_delete(db: Arc<dyn Database>) {
    assert!(
        db.run_log_lines_after("r1", -1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    db.append_run_log_lines("r1", &rows(&[1 << 32, (1 << 32) + 1]), 1_000)
        .await
        .unwrap();
    db.append_run_log_lines("r2", &rows(&[1 << 32]), 1_000)
        .await
        .unwrap();
    // A batch sent twice, overlapping what is stored, keeps the first.
    let mut again = rows(&[(1 << 32) + 1, (1 << 32) + 2]);
    again[0].1 = "changed".into();
    db.append_run_log_lines("r1", &again, 2_000).await.unwrap();
    db.append_run_log_lines("r1", &[], 2_000).await.unwrap();
    let all = db.run_log_lines_after("r1", -1, 10).await.unwrap();
    assert_eq!(all, rows(&[1 << 32, (1 << 32) + 1, (1 << 32) + 2]));
    // After a cursor, in order, limited.
    let after = db.run_log_lines_after("r1", 1 << 32, 1).await.unwrap();
    assert_eq!(after, rows(&[(1 << 32) + 1]));
    // A later attempt's ids come after.
    db.append_run_log_lines("r1", &rows(&[2 << 32]), 3_000)
        .await
        .unwrap();
    let after = db
        .run_log_lines_after("r1", (1 << 32) + 2, 10)
        .await
        .unwrap();
    assert_eq!(after, rows(&[2 << 32]));
    assert_eq!(db.delete_run_log_lines("r1").await.unwrap(), 4);
    assert!(
        db.run_log_lines_after("r1", -1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(db.run_log_lines_after("r2", -1, 10).await.unwrap().len(), 1);
    assert_eq!(db.delete_run_log_lines("nope").await.unwrap(), 0);
}

pub async fn live_lines_older_than_the_cutoff_are_swept(db: Arc<dyn Database>) {
    db.append_run_log_lines("old", &rows(&[1]), 1_000)
        .await
        .unwrap();
    db.append_run_log_lines("new", &rows(&[1]), 5_000)
        .await
        .unwrap();
    assert_eq!(db.delete_run_log_lines_before(5_000).await.unwrap(), 1);
    assert!(
        db.run_log_lines_after("old", -1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.run_log_lines_after("new", -1, 10).await.unwrap().len(),
        1
    );
}

pub async fn callback_url_is_stored_with_the_queued_run(db: Arc<dyn Database>) {
    for (id, url) in [("q1", Some("https://hooks.example.com/a")), ("q2", None)] {
        db.enqueue_run(&NewQueuedRun {
            id: id.into(),
            project: "alpha".into(),
            step: "hello".into(),
            input: "{}".into(),
            external_user_id: None,
            nostore: false,
            trigger: "api".into(),
            idempotency_key: None,
            request_hash: None,
            created_at: 1,
            not_before: 1,
            callback_url: url.map(str::to_owned),
            digest: None,
            rerun_of: url.map(|_| "orig".to_owned()),
        })
        .await
        .unwrap();
    }
    // The re-run link is stored with it too.
    let q1 = db.get_run("alpha", "q1").await.unwrap().unwrap();
    assert_eq!(q1.rerun_of.as_deref(), Some("orig"));
    assert_eq!(q1.started_at, None);
    assert_eq!(
        db.run_callback_url("alpha", "q1").await.unwrap().as_deref(),
        Some("https://hooks.example.com/a")
    );
    assert_eq!(db.run_callback_url("alpha", "q2").await.unwrap(), None);
    // Another project's run, or none: nothing.
    assert_eq!(db.run_callback_url("beta", "q1").await.unwrap(), None);
    assert_eq!(db.run_callback_url("alpha", "nope").await.unwrap(), None);
}

pub async fn webhook_once_writes_an_event_id_once(db: Arc<dyn Database>) {
    let row = WebhookRow {
        id: "evt_00000000000000aa".into(),
        project: "alpha".into(),
        url: "https://hooks.example.com/a".into(),
        event: "run.completed".into(),
        body: r#"{"first":true}"#.into(),
        attempts: 0,
        next_attempt_at: 10,
        created_at: 10,
    };
    assert!(db.enqueue_webhook_once(&row).await.unwrap());
    let second = WebhookRow {
        body: r#"{"first":false}"#.into(),
        ..row.clone()
    };
    assert!(!db.enqueue_webhook_once(&second).await.unwrap());
    let claimed = db.claim_webhooks("node", 10, 1_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].body, row.body, "the first write stays");
}
