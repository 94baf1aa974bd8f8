//! [`QueueRepo`](airlock_runtime::store::repo::QueueRepo)'s retries, caps
//! and pinned versions: a failed attempt goes back to the queue with its
//! summary, fenced like `finish`; claims under a step's or a project's cap
//! never exceed it, also when two handles claim at once.

use std::sync::Arc;

use airlock_runtime::store::queue::{Cancel, GroupClaim, NewQueuedRun, QueueCaps, RetryAt};
use airlock_runtime::store::repo::Database;

use super::support::run;

const LEASE: i64 = 30_000;

fn queued(id: &str, step: &str, at: i64, digest: Option<&str>) -> NewQueuedRun {
    NewQueuedRun {
        id: id.to_owned(),
        project: "alpha".into(),
        step: step.to_owned(),
        input: "{}".into(),
        external_user_id: None,
        nostore: false,
        trigger: "api".into(),
        idempotency_key: None,
        request_hash: None,
        created_at: at,
        not_before: at,
        digest: digest.map(str::to_owned),
        rerun_of: None,
        callback_url: None,
    }
}

fn retry_at<'a>(
    id: &'a str,
    owner: &'a str,
    attempt: i64,
    at: i64,
    summary: &'a str,
) -> RetryAt<'a> {
    RetryAt {
        id,
        owner,
        attempt,
        not_before: at,
        summary,
    }
}

async fn claim(
    db: &Arc<dyn Database>,
    owner: &str,
    now: i64,
    step: &str,
    caps: &QueueCaps,
) -> GroupClaim {
    db.claim_step_run(owner, now, LEASE, "alpha", step, caps)
        .await
        .unwrap()
}

fn claimed_id(c: GroupClaim) -> String {
    match c {
        GroupClaim::Claimed(run) => run.id,
        other => panic!("expected a claim, got {other:?}"),
    }
}

pub async fn queue_retry_requeues_with_history_fenced(db: Arc<dyn Database>) {
    db.enqueue_run(&queued("r1", "hello", 1_000, Some("sha256:pinned")))
        .await
        .unwrap();
    let first = db.claim_run("node-a", 1_000, LEASE).await.unwrap().unwrap();
    assert_eq!(
        first.digest.as_deref(),
        Some("sha256:pinned"),
        "the pin is kept"
    );
    // Only the holder of this attempt may put it back.
    let s1 = r#"{"attempt":1,"retry_on":"error"}"#;
    assert!(
        !db.retry_run(&retry_at("r1", "node-b", 1, 5_000, s1))
            .await
            .unwrap()
    );
    assert!(
        !db.retry_run(&retry_at("r1", "node-a", 2, 5_000, s1))
            .await
            .unwrap()
    );
    assert!(
        db.retry_run(&retry_at("r1", "node-a", 1, 5_000, s1))
            .await
            .unwrap()
    );
    let row = db.get_run("alpha", "r1").await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("queued", 1));
    // Not before its retry is due; then attempt 2, still pinned.
    assert_eq!(db.claim_run("node-b", 4_999, LEASE).await.unwrap(), None);
    let second = db.claim_run("node-b", 5_000, LEASE).await.unwrap().unwrap();
    assert_eq!((second.id.as_str(), second.attempt), ("r1", 2));
    assert_eq!(second.digest.as_deref(), Some("sha256:pinned"));
    // A cancel asked meanwhile wins over the retry.
    assert_eq!(
        db.cancel_run("alpha", "r1").await.unwrap(),
        Cancel::Requested
    );
    let s2 = r#"{"attempt":2}"#;
    assert!(
        !db.retry_run(&retry_at("r1", "node-b", 2, 9_000, s2))
            .await
            .unwrap()
    );
    let history = db
        .run_attempt_history("alpha", "r1")
        .await
        .unwrap()
        .unwrap();
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(
        history,
        serde_json::json!([{"attempt": 1, "retry_on": "error"}])
    );
    // A second retry appends, in order.
    db.enqueue_run(&queued("r2", "hello", 1_000, None))
        .await
        .unwrap();
    let c = db
        .claim_run("node-a", 10_000, LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.id.as_str(), c.digest), ("r2", None));
    assert!(
        db.retry_run(&retry_at("r2", "node-a", 1, 10_000, r#"{"a":1}"#))
            .await
            .unwrap()
    );
    db.claim_run("node-a", 10_000, LEASE)
        .await
        .unwrap()
        .unwrap();
    assert!(
        db.retry_run(&retry_at("r2", "node-a", 2, 10_000, r#"{"a":2}"#))
            .await
            .unwrap()
    );
    let history = db
        .run_attempt_history("alpha", "r2")
        .await
        .unwrap()
        .unwrap();
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history, serde_json::json!([{"a": 1}, {"a": 2}]));
    assert_eq!(db.run_attempt_history("alpha", "nope").await.unwrap(), None);
    assert_eq!(db.run_attempt_history("beta", "r2").await.unwrap(), None);
}

pub async fn queue_caps_hold_per_step_and_project(db: Arc<dyn Database>) {
    for i in 0..3 {
        db.enqueue_run(&queued(&format!("h{i}"), "hello", 1_000 + i, None))
            .await
            .unwrap();
    }
    db.enqueue_run(&queued("o1", "other", 2_000, None))
        .await
        .unwrap();
    let one = QueueCaps {
        max_running: Some(1),
        ..QueueCaps::default()
    };
    let none = QueueCaps::default();
    // The oldest due run's step first; a capped one is skipped past.
    let first = db.next_due_step(5_000, &[]).await.unwrap();
    assert_eq!(first, Some(("alpha".to_owned(), "hello".to_owned())));
    assert_eq!(
        claimed_id(claim(&db, "n", 5_000, "hello", &one).await),
        "h0"
    );
    assert_eq!(
        claim(&db, "n", 5_000, "hello", &one).await,
        GroupClaim::Capped
    );
    let skip = [("alpha".to_owned(), "hello".to_owned())];
    let next = db.next_due_step(5_000, &skip).await.unwrap();
    assert_eq!(next, Some(("alpha".to_owned(), "other".to_owned())));
    assert_eq!(
        claimed_id(claim(&db, "n", 5_000, "other", &none).await),
        "o1"
    );
    assert_eq!(
        claim(&db, "n", 5_000, "other", &none).await,
        GroupClaim::Empty
    );
    // A finished run frees its place.
    let mut done = run("h0", "alpha", "hello", "succeeded", 0);
    done.attempts = 1;
    assert!(db.finish_run(&done, "n", 1).await.unwrap());
    assert_eq!(
        claimed_id(claim(&db, "n", 5_000, "hello", &one).await),
        "h1"
    );

    // A project's caps: set, read, replaced, removed.
    assert_eq!(
        db.project_queue_caps("alpha").await.unwrap(),
        QueueCaps::default()
    );
    let starts = QueueCaps {
        max_running: None,
        max_starts: Some(1),
        per_secs: Some(10),
    };
    db.set_project_queue_caps("alpha", &starts).await.unwrap();
    assert_eq!(db.project_queue_caps("alpha").await.unwrap(), starts);
    assert_eq!(
        db.project_queue_caps("beta").await.unwrap(),
        QueueCaps::default()
    );
    // Starts before the cap was set are not recorded: one start is allowed,
    // then the window is full (for every step of the project) for 10 s.
    db.enqueue_run(&queued("o2", "other", 2_000, None))
        .await
        .unwrap();
    assert_eq!(
        claimed_id(claim(&db, "n", 6_000, "other", &none).await),
        "o2"
    );
    assert_eq!(
        claim(&db, "n", 6_000, "hello", &none).await,
        GroupClaim::Capped
    );
    assert_eq!(
        claim(&db, "n", 15_999, "hello", &none).await,
        GroupClaim::Capped
    );
    assert_eq!(
        claimed_id(claim(&db, "n", 16_000, "hello", &none).await),
        "h2"
    );
    // Pruning forgets the starts before a time.
    assert_eq!(db.prune_run_starts(16_000).await.unwrap(), 1);
    assert_eq!(db.prune_run_starts(16_001).await.unwrap(), 1);
    db.set_project_queue_caps("alpha", &QueueCaps::default())
        .await
        .unwrap();
    assert_eq!(
        db.project_queue_caps("alpha").await.unwrap(),
        QueueCaps::default()
    );
}

pub async fn concurrent_capped_claims_never_exceed_the_cap(
    a: Arc<dyn Database>,
    b: Arc<dyn Database>,
) {
    const RUNS: i64 = 40;
    for i in 0..RUNS {
        a.enqueue_run(&queued(&format!("c{i:03}"), "hello", 1_000 + i, None))
            .await
            .unwrap();
    }
    let caps = QueueCaps {
        max_running: Some(2),
        max_starts: Some(5),
        per_secs: Some(60),
    };
    // Four claimers on two handles, each claiming until capped: together
    // they hold exactly the cap.
    let claim_all = |db: Arc<dyn Database>, owner: &'static str| async move {
        let mut got = Vec::new();
        loop {
            match db
                .claim_step_run(owner, 10_000, LEASE, "alpha", "hello", &caps)
                .await
                .unwrap()
            {
                GroupClaim::Claimed(run) => got.push((owner, run)),
                GroupClaim::Capped => return got,
                GroupClaim::Empty => tokio::task::yield_now().await,
            }
        }
    };
    let round = |a: Arc<dyn Database>, b: Arc<dyn Database>| async move {
        let workers: Vec<_> = [(a.clone(), "a1"), (a, "a2"), (b.clone(), "b1"), (b, "b2")]
            .into_iter()
            .map(|(db, owner)| tokio::spawn(claim_all(db, owner)))
            .collect();
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.await.unwrap());
        }
        all
    };
    let mut held = round(a.clone(), b.clone()).await;
    assert_eq!(held.len(), 2, "the running cap of 2 held: {held:?}");
    // Finishing them frees both places; the start cap (5 a minute) then
    // stops the claims after 5 starts in all, however they interleave.
    let mut started = held.len();
    while !held.is_empty() {
        for (owner, r) in &held {
            let mut done = run(&r.id, "alpha", "hello", "succeeded", 0);
            done.attempts = r.attempt;
            assert!(a.finish_run(&done, owner, r.attempt).await.unwrap());
        }
        held = round(a.clone(), b.clone()).await;
        assert!(held.len() <= 2, "{held:?}");
        started += held.len();
    }
    assert_eq!(started, 5, "the start cap of 5 per minute held");
}
