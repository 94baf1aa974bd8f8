//! [`CoordinationRepo`](airlock_runtime::store::repo::CoordinationRepo):
//! locks, tick claims and GCRA rate limits (the arithmetic of
//! `host-api`'s in-memory limiter: a fresh key admits a burst of `max`,
//! then one request per interval; a refusal counts nothing).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use airlock_runtime::store::repo::Database;

pub async fn tick_is_claimed_once_and_only_forward(db: Arc<dyn Database>) {
    assert!(db.claim_tick("sweep", 60_000).await.unwrap());
    assert!(!db.claim_tick("sweep", 60_000).await.unwrap(), "claimed");
    assert!(!db.claim_tick("sweep", 0).await.unwrap(), "older");
    assert!(db.claim_tick("sweep", 120_000).await.unwrap());
    assert!(!db.claim_tick("sweep", 60_000).await.unwrap());
    assert!(!db.claim_tick("sweep", 120_000).await.unwrap());
    // Jobs are independent.
    assert!(db.claim_tick("cron:daily", 60_000).await.unwrap());
}

/// `max` per `max × interval`: the tolerance `rate_acquire` takes.
fn tolerance(interval: i64, max: i64) -> i64 {
    interval * (max - 1)
}

pub async fn rate_burst_then_refusal_with_wait(db: Arc<dyn Database>) {
    // 3 per 3 s.
    let (interval, tol) = (1_000, tolerance(1_000, 3));
    let acquire = |key: &'static str, now: i64| {
        let db = db.clone();
        async move { db.rate_acquire(key, interval, tol, now).await.unwrap() }
    };
    let t0 = 1_700_000_000_000;
    for _ in 0..3 {
        assert_eq!(acquire("p", t0).await, None);
    }
    assert_eq!(acquire("p", t0).await, Some(1_000));
    // Refused requests are not counted: still one interval.
    assert_eq!(acquire("p", t0).await, Some(1_000));
    assert_eq!(db.rate_peek("p", tol, t0).await.unwrap(), Some(1_000));
    // Part of the wait gone: the rest to wait; all of it: one more.
    assert_eq!(acquire("p", t0 + 600).await, Some(400));
    assert_eq!(acquire("p", t0 + 1_000).await, None);
    assert_eq!(acquire("p", t0 + 1_000).await, Some(1_000));
    // Keys are independent.
    assert_eq!(acquire("q", t0).await, None);
    // 1.5 intervals idle: one more, then half an interval to wait.
    let half = t0 + 1_000 + 1_500;
    assert_eq!(acquire("p", half).await, None);
    assert_eq!(acquire("p", half).await, Some(500));
    // A full idle period: the whole burst back.
    let later = t0 + 10_000;
    for _ in 0..3 {
        assert_eq!(acquire("p", later).await, None);
    }
    assert_eq!(acquire("p", later).await, Some(1_000));
}

pub async fn rate_peek_does_not_count(db: Arc<dyn Database>) {
    // 2 per 10 s.
    let (interval, tol) = (5_000, tolerance(5_000, 2));
    assert_eq!(db.rate_peek("k", tol, 0).await.unwrap(), None, "never seen");
    assert_eq!(db.rate_acquire("k", interval, tol, 0).await.unwrap(), None);
    for _ in 0..5 {
        assert_eq!(db.rate_peek("k", tol, 0).await.unwrap(), None);
    }
    assert_eq!(db.rate_acquire("k", interval, tol, 0).await.unwrap(), None);
    assert_eq!(db.rate_peek("k", tol, 0).await.unwrap(), Some(5_000));
    assert_eq!(
        db.rate_acquire("k", interval, tol, 0).await.unwrap(),
        Some(5_000)
    );
    assert_eq!(db.rate_peek("k", tol, 5_000).await.unwrap(), None);
    assert_eq!(db.rate_peek("other", tol, 0).await.unwrap(), None);
}

pub async fn rate_sweep_forgets_idle_keys(db: Arc<dyn Database>) {
    // One request each: arrival times 100 ("a") and 1000 ("b").
    assert_eq!(db.rate_acquire("a", 100, 0, 0).await.unwrap(), None);
    assert_eq!(db.rate_acquire("b", 1_000, 0, 0).await.unwrap(), None);
    assert_eq!(db.rate_sweep(100).await.unwrap(), 0, "not before 100");
    assert_eq!(db.rate_sweep(101).await.unwrap(), 1);
    // Swept: as if never seen. Kept: still counted.
    assert_eq!(db.rate_peek("a", 0, 50).await.unwrap(), None);
    assert_eq!(db.rate_peek("b", 0, 101).await.unwrap(), Some(899));
    assert_eq!(db.rate_acquire("a", 100, 0, 50).await.unwrap(), None);
    assert_eq!(db.rate_acquire("a", 100, 0, 50).await.unwrap(), Some(100));
    assert_eq!(db.rate_sweep(5_000).await.unwrap(), 2);
    assert_eq!(db.rate_sweep(5_000).await.unwrap(), 0);
}

/// The longest a test's lock is held for (the tests hold locks briefly).
const HOLD: Duration = Duration::from_secs(60);

/// Whoever takes the lock second, on either handle, waits until the first
/// guard is dropped; other keys are free meanwhile.
pub async fn lock_excludes_other_holders(a: Arc<dyn Database>, b: Arc<dyn Database>) {
    let key = "refresh:acc_0000000000000001";
    let held = a.lock(key, HOLD).await.unwrap();
    drop(b.lock("refresh:acc_0000000000000002", HOLD).await.unwrap());
    drop(a.lock("refresh:acc_0000000000000002", HOLD).await.unwrap());

    let released = Arc::new(AtomicBool::new(false));
    let waiters: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|db| {
            let released = released.clone();
            tokio::spawn(async move {
                let guard = db.lock(key, HOLD).await.unwrap();
                assert!(
                    released.load(Ordering::SeqCst),
                    "took the lock while the first guard held it"
                );
                drop(guard);
            })
        })
        .collect();
    // Long enough for a broken lock to be taken; a working one never is.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(waiters.iter().all(|w| !w.is_finished()));
    released.store(true, Ordering::SeqCst);
    drop(held);
    for waiter in waiters {
        waiter.await.unwrap();
    }
    drop(a.lock(key, HOLD).await.unwrap());
}
