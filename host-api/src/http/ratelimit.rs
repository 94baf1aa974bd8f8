//! Per-project limits on outbound requests (default 1,000 per 5 minutes).
//!
//! Why GCRA (the generic cell rate algorithm, as in the `governor` crate):
//! it needs one timestamp per key (the "theoretical arrival time"), gives an
//! exact `retry_after`, and its window slides continuously: a project may
//! send a burst of up to `max` requests, then one more every
//! `period / max` (300 ms by default) as capacity returns. Over any span `t`
//! it admits at most `max + t / (period / max)` requests, so a full burst
//! followed by steady use can reach nearly `2 * max` in one `period`; the
//! sustained rate is exactly `max / period`.
//!
//! Why a trait: one process keeps state in memory ([`MemoryStore`]); many
//! `airlock serve` nodes share a store in PostgreSQL (the runtime's
//! database-backed store), with the same GCRA arithmetic on a stored
//! timestamp updated in one statement, so a limit holds across nodes. The
//! trait is async for that store; the memory store answers at once.
//!
//! Why memory stays bounded: a key whose arrival time is in the past is
//! indistinguishable from a key never seen, so it is dropped. The map is
//! swept when it has seen as many calls as it holds keys (amortised O(1)),
//! so it holds only keys active within the last `period`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `max` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub max: u32,
    pub period: Duration,
}

impl Quota {
    pub const DEFAULT: Quota = Quota {
        max: 1_000,
        period: Duration::from_secs(300),
    };

    /// Time for one unit of capacity to return.
    fn interval(&self) -> Duration {
        self.period / self.max.max(1)
    }
}

impl Default for Quota {
    fn default() -> Self {
        Quota::DEFAULT
    }
}

/// The request would exceed the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("outbound request rate limit reached; retry after {} ms", .retry_after.as_millis())]
pub struct RateLimited {
    pub retry_after: Duration,
}

/// Where limiter state lives.
#[async_trait::async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Count one request for `key` under `quota`: `Ok` if it conforms (and
    /// is counted), `Err` with the wait until it would (and not counted).
    async fn acquire(&self, key: &str, quota: Quota) -> Result<(), RateLimited>;

    /// How long until one more request for `key` would conform to `quota`,
    /// without counting one: `None` when it would conform now. For limits
    /// that count only some requests (failed ones) but refuse all of them.
    async fn wait_time(&self, key: &str, quota: Quota) -> Option<Duration>;
}

type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// In-process GCRA state, one timestamp per active key.
pub struct MemoryStore {
    clock: Clock,
    inner: Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    /// Theoretical arrival time per key.
    tat: HashMap<String, Instant>,
    calls_since_sweep: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_clock(Arc::new(Instant::now))
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store reading time from `clock` (tests use a manual clock).
    pub fn with_clock(clock: Clock) -> Self {
        Self {
            clock,
            inner: Mutex::new(MemoryInner::default()),
        }
    }

    /// Keys currently held.
    pub fn len(&self) -> usize {
        self.lock().tat.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`RateLimitStore::wait_time`], at once.
    pub fn wait_now(&self, key: &str, quota: Quota) -> Option<Duration> {
        let now = (self.clock)();
        let inner = self.lock();
        let tat = inner.tat.get(key).copied().unwrap_or(now).max(now);
        let new_tat = tat + quota.interval();
        let limit = now + quota.period;
        (new_tat > limit).then(|| new_tat - limit)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        // The map is consistent after any panic-free step; recover from poison.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl RateLimitStore for MemoryStore {
    async fn acquire(&self, key: &str, quota: Quota) -> Result<(), RateLimited> {
        self.acquire_now(key, quota)
    }

    async fn wait_time(&self, key: &str, quota: Quota) -> Option<Duration> {
        self.wait_now(key, quota)
    }
}

impl MemoryStore {
    /// [`RateLimitStore::acquire`], at once.
    pub fn acquire_now(&self, key: &str, quota: Quota) -> Result<(), RateLimited> {
        let now = (self.clock)();
        let mut inner = self.lock();
        inner.calls_since_sweep += 1;
        if inner.calls_since_sweep >= inner.tat.len().max(1024) {
            inner.tat.retain(|_, tat| *tat > now);
            inner.calls_since_sweep = 0;
        }
        let tat = inner.tat.get(key).copied().unwrap_or(now).max(now);
        let new_tat = tat + quota.interval();
        let limit = now + quota.period;
        if new_tat > limit {
            return Err(RateLimited {
                retry_after: new_tat - limit,
            });
        }
        match inner.tat.get_mut(key) {
            Some(slot) => *slot = new_tat,
            None => {
                inner.tat.insert(key.to_owned(), new_tat);
            }
        }
        Ok(())
    }
}

/// Outbound-request limiter keyed by project name.
pub struct RateLimiter {
    quota: Quota,
    store: Arc<dyn RateLimitStore>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new(Quota::DEFAULT)
    }
}

impl RateLimiter {
    /// An in-memory limiter with `quota` for every project.
    pub fn new(quota: Quota) -> Self {
        Self::with_store(quota, Arc::new(MemoryStore::new()))
    }

    pub fn with_store(quota: Quota, store: Arc<dyn RateLimitStore>) -> Self {
        Self { quota, store }
    }

    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Count one outbound request for `project`.
    pub async fn check(&self, project: &str) -> Result<(), RateLimited> {
        self.store
            .acquire(project, self.quota)
            .await
            .inspect_err(|limited| {
                tracing::debug!(
                    project,
                    retry_after_ms = limited.retry_after.as_millis() as u64,
                    "egress: project rate limited"
                );
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future as _;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A clock that only moves when told to.
    struct ManualClock {
        base: Instant,
        offset_ms: AtomicU64,
    }

    impl ManualClock {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                base: Instant::now(),
                offset_ms: AtomicU64::new(0),
            })
        }
        fn advance(&self, d: Duration) {
            self.offset_ms
                .fetch_add(d.as_millis() as u64, Ordering::SeqCst);
        }
        fn store(self: &Arc<Self>) -> Arc<MemoryStore> {
            let clock = self.clone();
            Arc::new(MemoryStore::with_clock(Arc::new(move || {
                clock.base + Duration::from_millis(clock.offset_ms.load(Ordering::SeqCst))
            })))
        }
    }

    /// The limiter's check, at once (its store is in memory).
    fn check(limiter: &RateLimiter, key: &str) -> Result<(), RateLimited> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut fut = std::pin::pin!(limiter.check(key));
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => unreachable!("the memory store answers at once"),
        }
    }

    fn limiter(max: u32, period: Duration) -> (RateLimiter, Arc<ManualClock>, Arc<MemoryStore>) {
        let clock = ManualClock::new();
        let store = clock.store();
        let limiter = RateLimiter::with_store(Quota { max, period }, store.clone());
        (limiter, clock, store)
    }

    #[test]
    fn egress_ratelimit_default_quota_then_limited() {
        let (limiter, _clock, _) = limiter(1_000, Duration::from_secs(300));
        assert_eq!(limiter.quota(), Quota::DEFAULT);
        for i in 0..1_000 {
            check(&limiter, "p").unwrap_or_else(|e| panic!("request {i}: {e}"));
        }
        let limited = check(&limiter, "p").unwrap_err();
        // One unit of capacity returns every 300 ms.
        assert_eq!(limited.retry_after, Duration::from_millis(300));
        // Refused requests are not counted: still exactly one interval.
        assert_eq!(
            check(&limiter, "p").unwrap_err().retry_after,
            Duration::from_millis(300)
        );
    }

    #[test]
    fn egress_ratelimit_projects_are_independent() {
        let (limiter, _clock, _) = limiter(3, Duration::from_secs(60));
        for _ in 0..3 {
            check(&limiter, "alpha").unwrap();
        }
        assert!(check(&limiter, "alpha").is_err());
        for _ in 0..3 {
            check(&limiter, "beta").unwrap();
        }
        assert!(check(&limiter, "beta").is_err());
        assert!(check(&limiter, "alpha").is_err());
    }

    #[test]
    fn egress_ratelimit_window_slides() {
        let (limiter, clock, _) = limiter(10, Duration::from_secs(10));
        for _ in 0..10 {
            check(&limiter, "p").unwrap();
        }
        let limited = check(&limiter, "p").unwrap_err();
        assert_eq!(limited.retry_after, Duration::from_secs(1));
        // Just before the wait is over: still limited, with the rest to wait.
        clock.advance(Duration::from_millis(600));
        assert_eq!(
            check(&limiter, "p").unwrap_err().retry_after,
            Duration::from_millis(400)
        );
        // After it: exactly one more, then limited again.
        clock.advance(Duration::from_millis(400));
        check(&limiter, "p").unwrap();
        assert!(check(&limiter, "p").is_err());
        // After half the period, half the capacity is back.
        clock.advance(Duration::from_secs(5));
        for _ in 0..5 {
            check(&limiter, "p").unwrap();
        }
        assert!(check(&limiter, "p").is_err());
        // After a full idle period, the whole burst is back.
        clock.advance(Duration::from_secs(10));
        for _ in 0..10 {
            check(&limiter, "p").unwrap();
        }
        assert!(check(&limiter, "p").is_err());
    }

    #[test]
    fn wait_time_peeks_without_counting() {
        let clock = ManualClock::new();
        let store = clock.store();
        let quota = Quota {
            max: 2,
            period: Duration::from_secs(10),
        };
        assert_eq!(store.wait_now("k", quota), None);
        store.acquire_now("k", quota).unwrap();
        // Peeking any number of times counts nothing.
        for _ in 0..5 {
            assert_eq!(store.wait_now("k", quota), None);
        }
        store.acquire_now("k", quota).unwrap();
        assert_eq!(store.wait_now("k", quota), Some(Duration::from_secs(5)));
        assert_eq!(
            store.acquire_now("k", quota).unwrap_err().retry_after,
            Duration::from_secs(5)
        );
        clock.advance(Duration::from_secs(5));
        assert_eq!(store.wait_now("k", quota), None);
        assert_eq!(store.wait_now("other", quota), None);
    }

    #[test]
    fn egress_ratelimit_idle_keys_are_evicted() {
        let (limiter, clock, store) = limiter(5, Duration::from_secs(1));
        for i in 0..2_000 {
            check(&limiter, &format!("project-{i}")).unwrap();
        }
        assert!(store.len() >= 1_000, "{}", store.len());
        // Once every key has been idle for a period, the next sweep drops them.
        clock.advance(Duration::from_secs(2));
        for _ in 0..2_000 {
            check(&limiter, "active").unwrap_or(());
        }
        assert_eq!(store.len(), 1, "only the active key is kept");
    }
}
