//! Rate limits kept in the database, shared by every node on it: the
//! [`RateLimitStore`] of the GCRA limiters over
//! [`CoordinationRepo::rate_acquire`](super::repo::CoordinationRepo::rate_acquire).
//!
//! Why fail open: a limit is a guard against floods, not an authorisation.
//! If the database cannot answer, refusing every request (every outbound
//! call, every trigger) would turn a database hiccup into an outage of all
//! steps; a warning is logged (without the key, which may be a trigger id
//! or an address) and the request goes on.
//!
//! Why leases: a limit high enough to matter on the hot path (the trigger
//! limit, the outbound limit) would otherwise cost every request a database
//! round trip, and every request of one key would queue on that key's row
//! lock — on PostgreSQL the limiter became the server's ceiling. A node
//! therefore takes a *lease* of up to [`MAX_LEASE`] units at once (one
//! statement, all-or-nothing, the same GCRA row) and spends it locally for
//! at most [`LEASE_TTL`]. Leasing takes capacity out of the shared count
//! before it is used, so the nodes together never admit more than the limit
//! says; what a lease leaves unspent when it lapses is lost, so they may
//! admit a little less — at most `lease − 1` units per node and key per
//! lapse, and a lease is at most 1/64 of the quota, so limits under 128 per
//! period stay exact (a lease of one, one round trip per request).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use airlock_host_api::http::ratelimit::{Quota, RateLimitStore, RateLimited};

use super::Db;

/// One family of limits (`outbound`, `trigger`, `token`) in the database;
/// its keys are namespaced by `family`.
pub struct DbRateLimits {
    db: Db,
    family: &'static str,
    /// Units leased from the database and not yet spent, per key.
    leases: Mutex<HashMap<String, Lease>>,
}

/// Units one lease carries at most.
pub const MAX_LEASE: u32 = 64;
/// How long a lease may be spent; what is left then is given up.
pub const LEASE_TTL: Duration = Duration::from_secs(1);
/// Leases kept at most before lapsed ones are swept.
const SWEEP_AT: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Lease {
    remaining: u32,
    until: Instant,
}

/// Units a node leases at once under `quota`: 1/64 of it, at most [`MAX_LEASE`].
pub fn lease_size(quota: Quota) -> u32 {
    (quota.max / 64).clamp(1, MAX_LEASE)
}

impl DbRateLimits {
    pub fn new(db: Db, family: &'static str) -> Self {
        Self {
            db,
            family,
            leases: Mutex::new(HashMap::new()),
        }
    }

    /// Spends one unit of a live lease of `key`, if there is one.
    fn spend_leased(&self, key: &str) -> bool {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        match leases.get_mut(key) {
            Some(lease) if lease.remaining > 0 && lease.until > Instant::now() => {
                lease.remaining -= 1;
                true
            }
            _ => false,
        }
    }

    fn has_leased(&self, key: &str) -> bool {
        let leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        leases
            .get(key)
            .is_some_and(|l| l.remaining > 0 && l.until > Instant::now())
    }

    /// Keeps `remaining` units of a lease just taken (one was spent).
    fn keep_lease(&self, key: &str, remaining: u32, taken: Instant) {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if leases.len() >= SWEEP_AT {
            let now = Instant::now();
            leases.retain(|_, l| l.remaining > 0 && l.until > now);
        }
        leases.insert(
            key.to_owned(),
            Lease {
                remaining,
                until: taken + LEASE_TTL,
            },
        );
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.family)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The GCRA parameters for taking `units` at once, in the database's
/// milliseconds: the cost (`units` intervals, rounded *up* to a whole
/// millisecond) and the tolerance that lets a fresh key take a whole
/// period's worth. Rounding up only ever counts more, never less: a quota
/// finer than a unit per millisecond (over 1,000 a second) is therefore
/// held in leases — 64 units cost at least a millisecond, so a key admits
/// up to 64,000 a second — rather than clamped to one unit per millisecond.
fn gcra(quota: Quota, units: u32) -> (i64, i64) {
    let period_ns = quota.period.as_nanos();
    let interval_ns = period_ns / u128::from(quota.max.max(1));
    let cost_ns = interval_ns * u128::from(units);
    let cost_ms = i64::try_from(cost_ns.div_ceil(1_000_000))
        .unwrap_or(i64::MAX)
        .max(1);
    let period_ms = i64::try_from(quota.period.as_millis()).unwrap_or(i64::MAX);
    (cost_ms, (period_ms - cost_ms).max(0))
}

fn wait(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[async_trait::async_trait]
impl RateLimitStore for DbRateLimits {
    async fn acquire(&self, key: &str, quota: Quota) -> Result<(), RateLimited> {
        let key = self.key(key);
        if self.spend_leased(&key) {
            return Ok(());
        }
        let lease = lease_size(quota);
        if lease > 1 {
            // All `lease` units or none: one GCRA step of their whole cost,
            // admitted when the last of them would be.
            let taken = Instant::now();
            let (cost, tolerance) = gcra(quota, lease);
            let leased = self.db.rate_acquire(&key, cost, tolerance, now_ms()).await;
            if let Ok(None) = leased {
                self.keep_lease(&key, lease - 1, taken);
                return Ok(());
            }
            // Too few units left for a lease (or the database failed):
            // ask for exactly one, which gives the precise answer.
        }
        let (interval, tolerance) = gcra(quota, 1);
        match self
            .db
            .rate_acquire(&key, interval, tolerance, now_ms())
            .await
        {
            Ok(None) => Ok(()),
            Ok(Some(ms)) => Err(RateLimited {
                retry_after: wait(ms),
            }),
            Err(e) => {
                tracing::warn!(family = self.family, error = %e, "rate limit not checked: the database failed");
                Ok(())
            }
        }
    }

    async fn wait_time(&self, key: &str, quota: Quota) -> Option<Duration> {
        let key = self.key(key);
        if self.has_leased(&key) {
            return None;
        }
        let (_, tolerance) = gcra(quota, 1);
        match self.db.rate_peek(&key, tolerance, now_ms()).await {
            Ok(ms) => ms.map(wait),
            Err(e) => {
                tracing::warn!(family = self.family, error = %e, "rate limit not checked: the database failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_minute(max: u32) -> Quota {
        Quota {
            max,
            period: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_coarse_quota_costs_its_interval_per_unit() {
        // 600 a minute: a unit every 100 ms, a burst of the whole minute.
        assert_eq!(gcra(per_minute(600), 1), (100, 59_900));
        assert_eq!(gcra(per_minute(600), 9), (900, 59_100));
    }

    #[test]
    fn a_fine_quota_rounds_the_cost_up_never_down() {
        // 4e9 a minute is 15 ns a unit: one unit still costs a millisecond,
        // a lease of 64 costs one too (64,000 a second at most).
        assert_eq!(gcra(per_minute(4_000_000_000), 1), (1, 59_999));
        assert_eq!(gcra(per_minute(4_000_000_000), 64), (1, 59_999));
        // 1,500 a second: 667 us a unit, a lease of 64 costs 43 ms.
        let q = Quota {
            max: 1_500,
            period: Duration::from_secs(1),
        };
        assert_eq!(gcra(q, 1), (1, 999));
        assert_eq!(gcra(q, 23), (16, 984));
    }
}
