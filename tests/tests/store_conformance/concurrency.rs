//! Two handles on one database (two pools, as two nodes have), racing.
//! What SQLite's single writer gave for free must hold with concurrent
//! writers: one `Created` per secret, one winner per compare-and-swap, one
//! admin left, one claim per tick, exactly the burst admitted.
//!
//! Each test starts all its writers before awaiting any, alternating the
//! handles, so their statements meet in the database.

use std::sync::Arc;

use airlock_runtime::store::SetOutcome;
use airlock_runtime::store::repo::{Database, NewVersion, Revocation};
use futures::future::join_all;

use super::support::{account, admin, sealed};

/// Runs `f(handle, i)` for `i in 0..n` at once, on alternating handles.
async fn race<T, F, Fut>(a: &Arc<dyn Database>, b: &Arc<dyn Database>, n: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Database>, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let db = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(f(db, i))
        })
        .collect();
    join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.expect("a racing task panicked"))
        .collect()
}

pub async fn concurrent_put_secret_creates_once(a: Arc<dyn Database>, b: Arc<dyn Database>) {
    let values: Vec<_> = (0..50).map(|i| sealed("k1", &format!("v{i}"))).collect();
    let values = Arc::new(values);
    let outcomes = race(&a, &b, 50, |db, i| {
        let values = values.clone();
        async move {
            db.put_secret("alpha", "SHARED", &values[i], i as i64)
                .await
                .unwrap()
        }
    })
    .await;
    let created = outcomes
        .iter()
        .filter(|o| **o == SetOutcome::Created)
        .count();
    assert_eq!(created, 1, "{outcomes:?}");
    assert_eq!(a.list_secrets("alpha").await.unwrap().len(), 1);
    let stored = b.get_secret("alpha", "SHARED").await.unwrap().unwrap();
    assert!(values.contains(&stored), "the value of one of the writers");
}

pub async fn concurrent_pushes_store_a_version_once(a: Arc<dyn Database>, b: Arc<dyn Database>) {
    let new = race(&a, &b, 10, |db, i| async move {
        let version = NewVersion {
            project: "alpha",
            step: "hello",
            digest: "v1",
            component_digest: "c1",
            component: b"\0asm",
            manifest: "m1",
        };
        db.put_version(version, i as i64).await.unwrap()
    })
    .await;
    assert_eq!(new.iter().filter(|n| **n).count(), 1, "{new:?}");
    let (_, _, versions) = a.get_step("alpha", "hello").await.unwrap().unwrap();
    assert_eq!(versions.len(), 1);
    let component = b.component("alpha", "hello", "v1").await.unwrap();
    assert_eq!(component.as_deref(), Some(&b"\0asm"[..]));
}

pub async fn concurrent_swaps_have_one_winner(a: Arc<dyn Database>, b: Arc<dyn Database>) {
    let row = account("acc_0000000000000001", "alpha", "u", "github", 1);
    a.insert_account(&row).await.unwrap();
    let old = row.sealed.nonce;
    let news: Arc<Vec<_>> = Arc::new((0..20).map(|i| sealed("k1", &format!("{i}"))).collect());
    let won = race(&a, &b, 20, |db, i| {
        let news = news.clone();
        async move {
            let healthy = airlock_runtime::store::AccountStatus::Healthy;
            let id = "acc_0000000000000001";
            db.replace_account_credentials("alpha", id, &old, &news[i], None, healthy, 2)
                .await
                .unwrap()
        }
    })
    .await;
    let winners: Vec<usize> = (0..20).filter(|i| won[*i]).collect();
    assert_eq!(winners.len(), 1, "{won:?}");
    let stored = b.get_account("alpha", &row.meta.id).await.unwrap().unwrap();
    assert_eq!(stored.sealed, news[winners[0]]);

    // Re-sealing one value from many rotations at once: one of them writes.
    a.put_secret("alpha", "S", &sealed("old", "s"), 1)
        .await
        .unwrap();
    let record = Arc::new(a.sealed_not_under("new", 1).await.unwrap().remove(0));
    let resealed = race(&a, &b, 20, |db, i| {
        let record = record.clone();
        async move {
            let new = sealed("new", &format!("{i}"));
            db.reseal(&record, &new).await.unwrap()
        }
    })
    .await;
    assert_eq!(resealed.iter().filter(|w| **w).count(), 1, "{resealed:?}");
}

pub async fn concurrent_revocations_keep_one_admin(a: Arc<dyn Database>, b: Arc<dyn Database>) {
    a.insert_api_key(&admin("0000000000000000", 1))
        .await
        .unwrap();
    let mut survivor = ("0000000000000000".to_owned(), false);
    for round in 1..=20u32 {
        // Two unrestricted admins: the survivor and a new one (a key or,
        // every other round, a client). Both revoked at once: one goes.
        let new_is_client = round % 2 == 0;
        let new_id = if new_is_client {
            format!("ac_{round:016x}")
        } else {
            format!("{round:016x}")
        };
        let new = admin(&new_id, 1);
        if new_is_client {
            b.insert_client(&new).await.unwrap();
        } else {
            b.insert_api_key(&new).await.unwrap();
        }
        let pair = [survivor.clone(), (new_id, new_is_client)];
        let pair = Arc::new(pair);
        let outcomes = race(&a, &b, 2, |db, i| {
            let pair = pair.clone();
            async move {
                let (id, is_client) = &pair[i];
                if *is_client {
                    db.delete_client(id).await.unwrap()
                } else {
                    db.delete_api_key(id).await.unwrap()
                }
            }
        })
        .await;
        let mut sorted = outcomes.clone();
        sorted.sort_by_key(|o| *o == Revocation::LastAdmin);
        assert_eq!(
            sorted,
            [Revocation::Revoked, Revocation::LastAdmin],
            "round {round}"
        );
        let kept = outcomes.iter().position(|o| *o == Revocation::LastAdmin);
        survivor = pair[kept.unwrap()].clone();
    }
    let keys = a.list_api_keys().await.unwrap();
    let clients = a.list_clients().await.unwrap();
    let left: Vec<_> = keys.iter().chain(&clients).map(|m| m.id.clone()).collect();
    assert_eq!(left, [survivor.0], "exactly the last refused one is left");
}

pub async fn concurrent_tick_claims_one_per_tick(a: Arc<dyn Database>, b: Arc<dyn Database>) {
    const JOBS: usize = 10;
    for tick in [60_000, 120_000, 180_000] {
        // Every job's tick claimed by both handles at once.
        let claims = race(&a, &b, 2 * JOBS, |db, i| async move {
            let job = format!("job-{}", i / 2);
            (i / 2, db.claim_tick(&job, tick).await.unwrap())
        })
        .await;
        for job in 0..JOBS {
            let won = claims.iter().filter(|(j, c)| *j == job && *c).count();
            assert_eq!(won, 1, "job {job}, tick {tick}: {claims:?}");
        }
    }
}

pub async fn concurrent_rate_acquire_admits_the_burst(a: Arc<dyn Database>, b: Arc<dyn Database>) {
    const MAX: usize = 20;
    let (interval, tolerance) = (1_000, 1_000 * (MAX as i64 - 1));
    let now = 1_700_000_000_000;
    let answers = race(&a, &b, MAX + 1, |db, _| async move {
        db.rate_acquire("project:alpha", interval, tolerance, now)
            .await
            .unwrap()
    })
    .await;
    let admitted = answers.iter().filter(|w| w.is_none()).count();
    assert_eq!(admitted, MAX, "{answers:?}");
    // The one refused waits exactly one interval: all came at `now`.
    assert!(answers.contains(&Some(1_000)), "{answers:?}");
}

/// Two nodes' shared limiters (each leasing units from the database) race
/// through a quota: together they never admit more than it allows, and
/// leasing gives up at most a lease per node per lapse.
pub async fn leased_rate_limits_never_admit_more_than_the_quota(
    a: Arc<dyn Database>,
    b: Arc<dyn Database>,
) {
    use airlock_host_api::http::ratelimit::{Quota, RateLimitStore};
    use airlock_runtime::store::shared_limits::{DbRateLimits, lease_size};
    use std::time::{Duration, Instant};

    // An hour's quota: the refill during the test is a unit or two.
    let quota = Quota {
        max: 6_400,
        period: Duration::from_secs(3_600),
    };
    let lease = lease_size(quota) as usize;
    assert!(lease > 1, "this quota is leased ({lease} units)");
    let nodes = [
        Arc::new(DbRateLimits::new(a, "trigger")),
        Arc::new(DbRateLimits::new(b, "trigger")),
    ];
    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let node = nodes[t % 2].clone();
            tokio::spawn(async move {
                let mut admitted = 0usize;
                for _ in 0..1_000 {
                    if node.acquire("trg_1", quota).await.is_ok() {
                        admitted += 1;
                    }
                }
                admitted
            })
        })
        .collect();
    let admitted: usize = join_all(tasks).await.into_iter().map(|t| t.unwrap()).sum();
    let elapsed = started.elapsed();
    let interval = quota.period / quota.max;
    let refilled = (elapsed.as_millis() / interval.as_millis()) as usize + 1;
    assert!(
        admitted <= quota.max as usize + refilled,
        "{admitted} admitted of a {} quota (+{refilled} refilled)",
        quota.max
    );
    // Lapsed leases may waste at most `lease - 1` units per node per second.
    let lapses = elapsed.as_secs() as usize + 1;
    let floor = quota.max as usize - 2 * (lease - 1) * lapses;
    assert!(
        admitted >= floor,
        "{admitted} admitted, at least {floor} expected"
    );
}

/// A small quota is not leased: two nodes admit exactly its burst.
pub async fn small_rate_limits_stay_exact_across_nodes(a: Arc<dyn Database>, b: Arc<dyn Database>) {
    use airlock_host_api::http::ratelimit::{Quota, RateLimitStore};
    use airlock_runtime::store::shared_limits::{DbRateLimits, lease_size};
    use std::time::Duration;

    let quota = Quota {
        max: 100,
        period: Duration::from_secs(3_600),
    };
    assert_eq!(lease_size(quota), 1);
    let nodes = [DbRateLimits::new(a, "token"), DbRateLimits::new(b, "token")];
    let mut admitted = 0;
    for i in 0..130 {
        if nodes[i % 2].acquire("client-1", quota).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 100);
}
