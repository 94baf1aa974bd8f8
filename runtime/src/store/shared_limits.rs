//! Rate limits kept in the database, shared by every node on it: the
//! [`RateLimitStore`] of the GCRA limiters over
//! [`CoordinationRepo::rate_acquire`](super::repo::CoordinationRepo::rate_acquire).
//!
//! Why fail open: a limit is a guard against floods, not an authorisation.
//! If the database cannot answer, refusing every request (every outbound
//! call, every trigger) would turn a database hiccup into an outage of all
//! steps; a warning is logged (without the key, which may be a trigger id
//! or an address) and the request goes on.

use std::time::Duration;

use airlock_host_api::http::ratelimit::{Quota, RateLimitStore, RateLimited};

use super::Db;

/// One family of limits (`outbound`, `trigger`, `token`) in the database;
/// its keys are namespaced by `family`.
pub struct DbRateLimits {
    db: Db,
    family: &'static str,
}

impl DbRateLimits {
    pub fn new(db: Db, family: &'static str) -> Self {
        Self { db, family }
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

fn wait(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[async_trait::async_trait]
impl RateLimitStore for DbRateLimits {
    async fn acquire(&self, key: &str, quota: Quota) -> Result<(), RateLimited> {
        let (interval, tolerance) = quota.gcra_ms();
        match self
            .db
            .rate_acquire(&self.key(key), interval, tolerance, now_ms())
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
        let (_, tolerance) = quota.gcra_ms();
        match self.db.rate_peek(&self.key(key), tolerance, now_ms()).await {
            Ok(ms) => ms.map(wait),
            Err(e) => {
                tracing::warn!(family = self.family, error = %e, "rate limit not checked: the database failed");
                None
            }
        }
    }
}
