//! Rate limits of `airlock serve`, on the GCRA limiter of
//! [`airlock_host_api::http::ratelimit`]: in memory on SQLite (one node), in
//! the database on PostgreSQL, so every node counts together (a guesser
//! cannot spread failed token requests over nodes):
//!
//! - the public trigger route `/t/{id}`: `--trigger-rate-limit` requests per
//!   minute per trigger (default 600), counted after the trigger is found
//!   (unknown ids stay 404) and before its signature is checked, its body
//!   read or its step run;
//! - failed attempts at `POST /v1/oauth/token`: [`TOKEN_FAILURES_PER_CLIENT`]
//!   per client id *from one source address*, and
//!   [`TOKEN_FAILURES_PER_ADDRESS`] per source address (an IPv6 address
//!   counts by its /64), in [`TOKEN_FAILURE_PERIOD`]. Only failures count,
//!   but once over, every attempt of that client from that address, or of
//!   anyone from that address, is refused (429) before its secret is
//!   checked, so a right guess cannot be told from a wrong one.
//!
//! Why the client limit counts per address: client ids are not secret (they
//! are listed, audited and sent in the clear), so a limit per client id
//! alone let anyone lock a client out by sending ten wrong secrets for it.
//! Counted per client and address, wrong secrets from one place never lock
//! out the right secret presented from another. The trade-off: a guesser
//! with many addresses gets [`TOKEN_FAILURES_PER_CLIENT`] tries per client
//! per address and period. Secrets are 256 random bits, so guessing is not
//! the risk these limits guard against; they slow one noisy source and bound
//! the audit log it can fill. Behind a reverse proxy every caller has the
//! proxy's address, so there a client can still be locked out by a caller
//! behind the same proxy.
//!
//! Keys (trigger ids, client ids, addresses) are never logged; a key idle
//! for a period is dropped (the memory store sweeps as it goes, the
//! database's is swept with the retention ticks).

use std::net::IpAddr;
use std::time::Duration;

use std::sync::Arc;

use airlock_host_api::http::ratelimit::{MemoryStore, Quota, RateLimitStore};

use crate::store::platform::is_client_id;

/// Requests per minute per trigger when none is configured.
pub const DEFAULT_TRIGGER_RATE_LIMIT: u32 = 600;
/// Failed token requests allowed per client id from one address in
/// [`TOKEN_FAILURE_PERIOD`].
pub const TOKEN_FAILURES_PER_CLIENT: u32 = 10;
/// Failed token requests allowed per source address in [`TOKEN_FAILURE_PERIOD`].
pub const TOKEN_FAILURES_PER_ADDRESS: u32 = 50;
/// The window of the token failure limits (capacity returns evenly over it).
pub const TOKEN_FAILURE_PERIOD: Duration = Duration::from_secs(600);

/// The limiters every handler shares.
pub struct RateLimits {
    trigger_quota: Quota,
    triggers: Arc<dyn RateLimitStore>,
    token_failures: Arc<dyn RateLimitStore>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("trigger_quota", &self.trigger_quota)
            .finish_non_exhaustive()
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(DEFAULT_TRIGGER_RATE_LIMIT)
    }
}

const CLIENT_QUOTA: Quota = Quota {
    max: TOKEN_FAILURES_PER_CLIENT,
    period: TOKEN_FAILURE_PERIOD,
};
const ADDRESS_QUOTA: Quota = Quota {
    max: TOKEN_FAILURES_PER_ADDRESS,
    period: TOKEN_FAILURE_PERIOD,
};

impl RateLimits {
    /// Limits with `trigger_per_minute` requests per minute per trigger,
    /// kept in this process.
    pub fn new(trigger_per_minute: u32) -> Self {
        Self::with_stores(
            trigger_per_minute,
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryStore::new()),
        )
    }

    /// Limits kept in `triggers` and `token_failures` (the database's, for
    /// several nodes).
    pub fn with_stores(
        trigger_per_minute: u32,
        triggers: Arc<dyn RateLimitStore>,
        token_failures: Arc<dyn RateLimitStore>,
    ) -> Self {
        Self {
            trigger_quota: Quota {
                max: trigger_per_minute.max(1),
                period: Duration::from_secs(60),
            },
            triggers,
            token_failures,
        }
    }

    /// Counts one request for trigger `id`; `Err` with the wait when over.
    pub async fn trigger(&self, id: &str) -> Result<(), Duration> {
        self.triggers
            .acquire(id, self.trigger_quota)
            .await
            .map_err(|limited| limited.retry_after)
    }

    /// The wait before a token request of `client_id` from `addr` may be
    /// checked at all, if either is over its failure limit.
    pub async fn token_blocked(
        &self,
        client_id: Option<&str>,
        addr: Option<IpAddr>,
    ) -> Option<Duration> {
        let by_client = match client_key(client_id, addr) {
            Some(k) => self.token_failures.wait_time(&k, CLIENT_QUOTA).await,
            None => None,
        };
        let by_addr = match addr {
            Some(a) => {
                self.token_failures
                    .wait_time(&address_key(a), ADDRESS_QUOTA)
                    .await
            }
            None => None,
        };
        by_client.max(by_addr)
    }

    /// Counts a failed token request of `client_id` from `addr`.
    pub async fn token_failed(&self, client_id: Option<&str>, addr: Option<IpAddr>) {
        // Over the limit already: nothing more to count.
        if let Some(k) = client_key(client_id, addr) {
            let _ = self.token_failures.acquire(&k, CLIENT_QUOTA).await;
        }
        if let Some(a) = addr {
            let _ = self
                .token_failures
                .acquire(&address_key(a), ADDRESS_QUOTA)
                .await;
        }
    }
}

/// The bucket of one client id at one address (at any address when the
/// address is unknown). Only a well-formed client id gets a bucket of its
/// own: made-up ids count against their address alone, so they cannot grow
/// the map beyond what the address limit allows.
fn client_key(client_id: Option<&str>, addr: Option<IpAddr>) -> Option<String> {
    let id = client_id.filter(|id| is_client_id(id))?;
    Some(match addr {
        Some(a) => format!("client:{id}@{}", address_key(a)),
        None => format!("client:{id}"),
    })
}

/// IPv4 by address; IPv6 by its /64, which one host usually holds whole.
fn address_key(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            format!("ip:{}/64", std::net::Ipv6Addr::from(bits))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_block_the_client_and_the_address_without_peeks_counting() {
        let memory = Arc::new(MemoryStore::new());
        let limits = RateLimits::with_stores(
            DEFAULT_TRIGGER_RATE_LIMIT,
            Arc::new(MemoryStore::new()),
            memory.clone(),
        );
        let client = "ac_0123456789abcdef";
        let addr: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..TOKEN_FAILURES_PER_CLIENT {
            assert_eq!(limits.token_blocked(Some(client), Some(addr)).await, None);
            limits.token_failed(Some(client), Some(addr)).await;
        }
        let wait = limits
            .token_blocked(Some(client), Some(addr))
            .await
            .unwrap();
        assert!(wait > Duration::ZERO && wait <= TOKEN_FAILURE_PERIOD);
        // Another client from the same address is not blocked yet, nor this
        // client from another address.
        let other = limits
            .token_blocked(Some("ac_fedcba9876543210"), Some(addr))
            .await;
        assert_eq!(other, None);
        let elsewhere: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            limits.token_blocked(Some(client), Some(elsewhere)).await,
            None
        );
        // Made-up ids count against the address only.
        for _ in TOKEN_FAILURES_PER_CLIENT..TOKEN_FAILURES_PER_ADDRESS {
            limits
                .token_failed(Some("not-a-client-id"), Some(addr))
                .await;
        }
        assert!(memory.len() <= 2);
        assert!(limits.token_blocked(None, Some(addr)).await.is_some());
        let fresh: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(limits.token_blocked(None, Some(fresh)).await.is_none());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let a = address_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = address_key("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = address_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            address_key("::ffff:192.0.2.7".parse().unwrap()),
            "ip:192.0.2.7"
        );
    }

    #[tokio::test]
    async fn triggers_are_limited_each_on_their_own() {
        let limits = RateLimits::new(2);
        limits.trigger("a").await.unwrap();
        limits.trigger("a").await.unwrap();
        let wait = limits.trigger("a").await.unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(30));
        limits.trigger("b").await.unwrap();
    }
}
