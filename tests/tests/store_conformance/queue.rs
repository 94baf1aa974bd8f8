//! [`QueueRepo`](airlock_runtime::store::repo::QueueRepo): queued runs as
//! rows of the run table, claimed under leases.

use std::collections::HashSet;
use std::sync::Arc;

use airlock_runtime::store::queue::{Cancel, Enqueued, Lease, NewQueuedRun};
use airlock_runtime::store::repo::Database;

use super::support::run;

const LEASE: i64 = 30_000;

fn queued(id: &str, key: Option<&str>, hash: Option<&str>, at: i64) -> NewQueuedRun {
    NewQueuedRun {
        id: id.to_owned(),
        project: "alpha".into(),
        step: "hello".into(),
        input: format!(r#"{{"n":"{id}"}}"#),
        external_user_id: Some("ada".into()),
        nostore: false,
        trigger: "api".into(),
        idempotency_key: key.map(str::to_owned),
        request_hash: hash.map(str::to_owned),
        created_at: at,
        not_before: at,
        digest: None,
        rerun_of: None,
        callback_url: None,
    }
}

/// The finished record a worker writes for `id`.
fn outcome(id: &str, status: &str) -> airlock_runtime::store::runs::RunRecord {
    let mut r = run(id, "alpha", "hello", status, 0);
    r.digest = "sha256:ab".into();
    r.input = Some(format!(r#"{{"n":"{id}"}}"#));
    r.output = Some(r#"{"ok":true}"#.into());
    r
}

pub async fn queue_enqueue_claim_finish(db: Arc<dyn Database>) {
    assert_eq!(
        db.enqueue_run(&queued("q1", None, None, 1_000))
            .await
            .unwrap(),
        Enqueued::New
    );
    let row = db.get_run("alpha", "q1").await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("queued", 0));
    assert_eq!(row.created_at, 1_000);
    assert_eq!(row.started_at, None, "not started while queued");
    let claimed = db.claim_run("node-a", 2_000, LEASE).await.unwrap().unwrap();
    assert_eq!(claimed.id, "q1");
    assert_eq!(claimed.attempt, 1);
    assert_eq!(claimed.input, r#"{"n":"q1"}"#);
    assert_eq!(claimed.external_user_id.as_deref(), Some("ada"));
    assert_eq!(claimed.trigger, "api");
    assert!(!claimed.nostore);
    let running = db.get_run("alpha", "q1").await.unwrap().unwrap();
    assert_eq!(running.status, "running");
    assert_eq!(running.started_at, Some(2_000), "the claim's time");
    assert_eq!(db.claim_run("node-b", 2_000, LEASE).await.unwrap(), None);
    // Only the holder of this attempt may finish it.
    assert!(
        !db.finish_run(&outcome("q1", "succeeded"), "node-b", 1)
            .await
            .unwrap()
    );
    assert!(
        !db.finish_run(&outcome("q1", "succeeded"), "node-a", 2)
            .await
            .unwrap()
    );
    assert!(
        db.finish_run(&outcome("q1", "succeeded"), "node-a", 1)
            .await
            .unwrap()
    );
    assert!(
        !db.finish_run(&outcome("q1", "failed"), "node-a", 1)
            .await
            .unwrap(),
        "once"
    );
    let done = db.get_run("alpha", "q1").await.unwrap().unwrap();
    assert_eq!(done.status, "succeeded");
    assert_eq!(done.digest, "sha256:ab");
    assert_eq!(done.attempts, 1);
    assert_eq!(done.output.as_deref(), Some(r#"{"ok":true}"#));
    assert_eq!(
        done.created_at, 1_000,
        "the queue time stays the run's time"
    );
    assert_eq!(done.started_at, Some(2_000), "finishing keeps the start");
    // A metadata-only run's input is dropped when it finishes.
    let mut secretive = queued("q2", None, None, 3_000);
    secretive.nostore = true;
    db.enqueue_run(&secretive).await.unwrap();
    let c = db.claim_run("node-a", 3_000, LEASE).await.unwrap().unwrap();
    assert!(c.nostore);
    let mut record = outcome("q2", "failed");
    record.input = None;
    record.output = None;
    assert!(db.finish_run(&record, "node-a", 1).await.unwrap());
    assert_eq!(
        db.get_run("alpha", "q2").await.unwrap().unwrap().input,
        None
    );
}

pub async fn queue_idempotency_key_returns_the_existing_run(db: Arc<dyn Database>) {
    let first = queued("k1", Some("order-42"), Some("h1"), 1_000);
    assert_eq!(db.enqueue_run(&first).await.unwrap(), Enqueued::New);
    let again = queued("k2", Some("order-42"), Some("h2"), 1_001);
    assert_eq!(
        db.enqueue_run(&again).await.unwrap(),
        Enqueued::Existing {
            id: "k1".into(),
            status: "queued".into(),
            request_hash: Some("h1".into()),
        }
    );
    assert_eq!(
        db.get_run("alpha", "k2").await.unwrap(),
        None,
        "nothing written"
    );
    // Per project and step; runs without a key never collide.
    let mut other_step = queued("k3", Some("order-42"), Some("h1"), 1_002);
    other_step.step = "other".into();
    assert_eq!(db.enqueue_run(&other_step).await.unwrap(), Enqueued::New);
    for id in ["n1", "n2"] {
        assert_eq!(
            db.enqueue_run(&queued(id, None, None, 1_003))
                .await
                .unwrap(),
            Enqueued::New
        );
    }
}

pub async fn queue_claims_only_due_runs_oldest_first(db: Arc<dyn Database>) {
    let mut later = queued("later", None, None, 1_000);
    later.not_before = 10_000;
    db.enqueue_run(&later).await.unwrap();
    db.enqueue_run(&queued("second", None, None, 2_000))
        .await
        .unwrap();
    db.enqueue_run(&queued("first", None, None, 1_500))
        .await
        .unwrap();
    let take = |now| {
        let db = db.clone();
        async move { db.claim_run("n", now, LEASE).await.unwrap().map(|c| c.id) }
    };
    assert_eq!(take(5_000).await.as_deref(), Some("first"));
    assert_eq!(take(5_000).await.as_deref(), Some("second"));
    assert_eq!(take(5_000).await, None, "not due yet");
    assert_eq!(take(10_000).await.as_deref(), Some("later"));
}

pub async fn queue_lease_renewal_cancel_and_fencing(db: Arc<dyn Database>) {
    db.enqueue_run(&queued("r1", None, None, 1_000))
        .await
        .unwrap();
    let c = db.claim_run("node-a", 1_000, LEASE).await.unwrap().unwrap();
    assert_eq!(
        db.renew_run_lease("r1", "node-a", c.attempt, 50_000)
            .await
            .unwrap(),
        Lease::Held
    );
    assert_eq!(
        db.renew_run_lease("r1", "node-b", c.attempt, 50_000)
            .await
            .unwrap(),
        Lease::Lost
    );
    assert_eq!(
        db.renew_run_lease("r1", "node-a", c.attempt + 1, 50_000)
            .await
            .unwrap(),
        Lease::Lost
    );
    // Renewed to 50 s: not expired at 40 s.
    assert_eq!(db.requeue_expired_runs(40_000, 5).await.unwrap(), 0);
    assert_eq!(
        db.cancel_run("alpha", "r1").await.unwrap(),
        Cancel::Requested
    );
    assert_eq!(
        db.renew_run_lease("r1", "node-a", c.attempt, 60_000)
            .await
            .unwrap(),
        Lease::CancelRequested
    );
    assert!(
        db.finish_run(&outcome("r1", "cancelled"), "node-a", 1)
            .await
            .unwrap()
    );
    assert_eq!(
        db.get_run("alpha", "r1").await.unwrap().unwrap().status,
        "cancelled"
    );
    assert_eq!(
        db.renew_run_lease("r1", "node-a", c.attempt, 70_000)
            .await
            .unwrap(),
        Lease::Lost,
        "a finished run has no lease"
    );
}

pub async fn queue_reaper_requeues_expired_leases_then_gives_up(db: Arc<dyn Database>) {
    db.enqueue_run(&queued("dies", None, None, 1_000))
        .await
        .unwrap();
    let mut now = 1_000;
    for attempt in 1..=3 {
        let c = db.claim_run("node", now, LEASE).await.unwrap().unwrap();
        assert_eq!((c.id.as_str(), c.attempt), ("dies", attempt));
        assert_eq!(
            db.requeue_expired_runs(now + LEASE - 1, 3).await.unwrap(),
            0
        );
        now += LEASE + 1;
        assert_eq!(db.requeue_expired_runs(now, 3).await.unwrap(), 1);
        // The dead node's late outcome is refused.
        assert!(
            !db.finish_run(&outcome("dies", "succeeded"), "node", attempt)
                .await
                .unwrap()
        );
        if attempt < 3 {
            let row = db.get_run("alpha", "dies").await.unwrap().unwrap();
            assert_eq!((row.status.as_str(), row.attempts), ("queued", attempt));
        }
    }
    let row = db.get_run("alpha", "dies").await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("failed", 3));
    let error: serde_json::Value = serde_json::from_str(row.error.as_deref().unwrap()).unwrap();
    assert_eq!(error["kind"], "internal");
    assert_eq!(db.claim_run("node", now, LEASE).await.unwrap(), None);
    // An expired run that was asked to stop ends cancelled, not queued.
    db.enqueue_run(&queued("stop", None, None, now))
        .await
        .unwrap();
    db.claim_run("node", now, LEASE).await.unwrap().unwrap();
    assert_eq!(
        db.cancel_run("alpha", "stop").await.unwrap(),
        Cancel::Requested
    );
    assert_eq!(
        db.requeue_expired_runs(now + LEASE + 1, 3).await.unwrap(),
        1
    );
    assert_eq!(
        db.get_run("alpha", "stop").await.unwrap().unwrap().status,
        "cancelled"
    );
}

pub async fn queue_cancel_queued_running_finished(db: Arc<dyn Database>) {
    db.enqueue_run(&queued("c1", None, None, 1_000))
        .await
        .unwrap();
    assert_eq!(db.cancel_run("beta", "c1").await.unwrap(), Cancel::NotFound);
    assert_eq!(
        db.cancel_run("alpha", "c1").await.unwrap(),
        Cancel::Cancelled
    );
    assert_eq!(
        db.claim_run("n", 5_000, LEASE).await.unwrap(),
        None,
        "never runs"
    );
    assert_eq!(
        db.cancel_run("alpha", "c1").await.unwrap(),
        Cancel::Finished("cancelled".into())
    );
    db.insert_run(&run("sync", "alpha", "hello", "succeeded", 1))
        .await
        .unwrap();
    assert_eq!(
        db.cancel_run("alpha", "sync").await.unwrap(),
        Cancel::Finished("succeeded".into())
    );
    assert_eq!(
        db.cancel_run("alpha", "nope").await.unwrap(),
        Cancel::NotFound
    );
}

/// Two handles (two nodes) claiming 200 runs at once: each run is claimed
/// exactly once.
pub async fn concurrent_claims_never_share_a_run(a: Arc<dyn Database>, b: Arc<dyn Database>) {
    const RUNS: usize = 200;
    for i in 0..RUNS {
        a.enqueue_run(&queued(
            &format!("run-{i:04}"),
            None,
            None,
            1_000 + i as i64,
        ))
        .await
        .unwrap();
    }
    let claim_all = |db: Arc<dyn Database>, owner: &'static str| async move {
        let mut got = Vec::new();
        while let Some(c) = db.claim_run(owner, 10_000, LEASE).await.unwrap() {
            got.push(c.id);
        }
        got
    };
    let workers: Vec<_> = [(a.clone(), "a1"), (a, "a2"), (b.clone(), "b1"), (b, "b2")]
        .into_iter()
        .map(|(db, owner)| tokio::spawn(claim_all(db, owner)))
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), RUNS, "every run claimed once, none twice");
    assert_eq!(unique.len(), RUNS);
}
