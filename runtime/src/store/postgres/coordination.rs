//! [`CoordinationRepo`] on PostgreSQL: what several nodes coordinate
//! through, with no broker beside the database.
//!
//! - [`lock`](CoordinationRepo::lock): a transaction holding
//!   `pg_advisory_xact_lock` on the first 8 bytes of SHA-256 of the key.
//!   Why transaction-scoped rather than a session lock: the guard owns the
//!   transaction, so dropping it ends the transaction and the lock with it
//!   (the queued `ROLLBACK` runs as the connection goes back to the pool),
//!   and a node that dies loses its session and so the lock; a session
//!   lock would survive on a pooled connection that is handed to someone
//!   else. Both sides are bounded by the caller's `hold`, set for this
//!   transaction only: the wait by `statement_timeout` (twice `hold`),
//!   not the pool's, which is sized for queries and would cut a waiter
//!   loose while the holder is still within its bound (its caller would
//!   then do the work a second time); the holder by
//!   `idle_in_transaction_session_timeout` (`hold`), so that a node that
//!   hangs rather than dies (stopped, partitioned: its session stays open
//!   until TCP gives up, hours later) loses the lock too.
//! - [`claim_tick`](CoordinationRepo::claim_tick): one conditional upsert;
//!   the row of a job only moves forward, so for each tick exactly one
//!   node's statement returns a row, and no lock is held while the job runs.
//! - GCRA rate limits: one `INSERT … ON CONFLICT DO UPDATE … WHERE …
//!   RETURNING` per request. The upsert locks the key's row, so concurrent
//!   requests on any node are counted one after another against the
//!   latest arrival time; a refused request writes nothing. The arithmetic
//!   is `host-api`'s in-memory GCRA: admitted while
//!   `max(tat, now) − now ≤ tolerance`, then `tat = max(tat, now) + interval`;
//!   a refusal waits `max(tat, now) − now − tolerance`.

use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest as _, Sha256};
use sqlx::{Postgres, Transaction};

use super::PgDatabase;
use crate::store::Result;
use crate::store::repo::{CoordinationRepo, LockGuard};

/// The advisory-lock key of `name`: the first 8 bytes of its SHA-256, in
/// PostgreSQL's 64-bit key space. A hash, so any string (an account id)
/// names a lock; 64 bits, so distinct names collide with negligible
/// probability (and a collision would only serialise two lockers).
pub(super) fn advisory_key(name: &str) -> i64 {
    let digest = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// A held [`lock`](CoordinationRepo::lock): the transaction holding it.
/// Dropping it drops the transaction, which rolls back and frees the lock.
struct PgLock {
    _tx: Transaction<'static, Postgres>,
}

/// How often a refused request re-reads its key's arrival time when the row
/// vanished in between (swept by a node whose clock is ahead).
const RATE_READ_ATTEMPTS: usize = 3;

/// The wait of a key whose arrival time is `tat`: `None` when one more
/// request conforms now.
fn wait_ms(tat: i64, tolerance_ms: i64, now_ms: i64) -> Option<i64> {
    let wait = tat.max(now_ms) - now_ms - tolerance_ms;
    (wait > 0).then_some(wait)
}

impl PgDatabase {
    async fn stored_tat(&self, key: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT tat_ms FROM rate_limits WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

#[async_trait]
impl CoordinationRepo for PgDatabase {
    async fn lock(&self, key: &str, hold: Duration) -> Result<LockGuard> {
        let hold_ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut tx = self.pool.begin().await?;
        // `set_config(…, true)`: for this transaction only, like `SET LOCAL`.
        sqlx::query(
            "SELECT set_config('statement_timeout', $1, true),
                    set_config('idle_in_transaction_session_timeout', $2, true)",
        )
        .bind(format!("{}ms", hold_ms.saturating_mul(2)))
        .bind(format!("{hold_ms}ms"))
        .execute(&mut *tx)
        .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(advisory_key(key))
            .execute(&mut *tx)
            .await?;
        Ok(Box::new(PgLock { _tx: tx }))
    }

    async fn claim_tick(&self, job: &str, tick: i64) -> Result<bool> {
        let claimed: Option<i32> = sqlx::query_scalar(
            "INSERT INTO ticks (job, tick_ms) VALUES ($1, $2)
             ON CONFLICT (job) DO UPDATE SET tick_ms = EXCLUDED.tick_ms
                 WHERE ticks.tick_ms < EXCLUDED.tick_ms
             RETURNING 1",
        )
        .bind(job)
        .bind(tick)
        .fetch_optional(&self.pool)
        .await?;
        Ok(claimed.is_some())
    }

    async fn rate_acquire(
        &self,
        key: &str,
        interval_ms: i64,
        tolerance_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        for _ in 0..RATE_READ_ATTEMPTS {
            let admitted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO rate_limits AS r (key, tat_ms) VALUES ($1, $2 + $3)
                 ON CONFLICT (key) DO UPDATE SET tat_ms = GREATEST(r.tat_ms, $2) + $3
                     WHERE GREATEST(r.tat_ms, $2) - $2 <= $4
                 RETURNING tat_ms",
            )
            .bind(key)
            .bind(now_ms)
            .bind(interval_ms)
            .bind(tolerance_ms)
            .fetch_optional(&self.pool)
            .await?;
            if admitted.is_some() {
                return Ok(None);
            }
            // Refused: the arrival time only grows until swept, so a re-read
            // gives at least the wait the refusal saw.
            if let Some(tat) = self.stored_tat(key).await? {
                return Ok(Some(wait_ms(tat, tolerance_ms, now_ms).unwrap_or(1)));
            }
        }
        // Swept under us every time: ask the caller to come back in one interval.
        Ok(Some(interval_ms.max(1)))
    }

    async fn rate_peek(&self, key: &str, tolerance_ms: i64, now_ms: i64) -> Result<Option<i64>> {
        Ok(self
            .stored_tat(key)
            .await?
            .and_then(|tat| wait_ms(tat, tolerance_ms, now_ms)))
    }

    async fn rate_sweep(&self, now_ms: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM rate_limits WHERE tat_ms < $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisory_keys_are_the_first_eight_bytes_of_sha256() {
        // SHA-256("abc") = ba7816bf 8f01cfea …
        let want = i64::from_be_bytes([0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea]);
        assert_eq!(advisory_key("abc"), want);
        assert_ne!(advisory_key("a"), advisory_key("b"));
    }

    #[test]
    fn waits_follow_the_in_memory_gcra() {
        // max 3 per 3 s: interval 1000, tolerance 2000; after 3 requests at 0, tat = 3000.
        assert_eq!(wait_ms(3000, 2000, 0), Some(1000));
        assert_eq!(wait_ms(3000, 2000, 600), Some(400));
        assert_eq!(wait_ms(3000, 2000, 1000), None);
        // A tat in the past is a fresh key.
        assert_eq!(wait_ms(10, 0, 20), None);
    }
}
