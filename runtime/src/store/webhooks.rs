//! The webhook outbox: events written in the same database as the change
//! they announce, delivered later by a worker ([`crate::connect::webhooks`]).
//!
//! Why an outbox: an event sent straight from the request that connected
//! an account is lost if the receiver is down or the process dies before
//! it answers. A row written here survives both; the worker retries it with
//! backoff until the receiver accepts it or the attempts run out.
//!
//! Why leases: a worker claims due rows by setting `lease_owner` and
//! `lease_until` in one statement (on PostgreSQL under
//! `FOR UPDATE SKIP LOCKED`, so several nodes share the work without
//! waiting on each other) and only the owner may mark a row delivered or
//! due again. A node that dies mid-delivery leaves its rows leased until
//! the lease runs out; then any node takes them again. A delivered row is
//! never claimed again, so a restart re-sends nothing that was delivered.
//! Delivery is at least once in the one case where a process dies after the
//! receiver answered but before the row was marked: receivers deduplicate
//! by the event id (`Airlock-Event-Id`, also `id` in the body).

use super::{Db, KeyError, Result, SecretStore, StoreError};

/// One event in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    /// `evt_` and 16 hex digits.
    pub id: String,
    pub project: String,
    pub url: String,
    /// `account.connected`, `account.connection_failed`, ...
    pub event: String,
    /// The JSON body, exactly as it is signed and sent.
    pub body: String,
    /// Delivery attempts started (counted when claimed).
    pub attempts: i64,
    /// Unix milliseconds.
    pub next_attempt_at: i64,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// How a delivery attempt ended, for [`WebhookStore::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Try again at this Unix millisecond.
    Retry {
        at_ms: i64,
        error: String,
    },
    /// No more attempts.
    GiveUp {
        error: String,
    },
}

/// The outbox in the secret store's database.
#[derive(Debug, Clone)]
pub struct WebhookStore {
    db: Db,
}

impl WebhookStore {
    pub fn new(secrets: &SecretStore) -> Self {
        Self {
            db: secrets.db().clone(),
        }
    }

    /// Queues `body` for `url`, due now; returns the event id.
    pub async fn enqueue(
        &self,
        project: &str,
        url: &str,
        event: &str,
        body: &str,
        id: &str,
    ) -> Result<()> {
        let now = now_ms();
        self.db
            .enqueue_webhook(&WebhookRow {
                id: id.to_owned(),
                project: project.to_owned(),
                url: url.to_owned(),
                event: event.to_owned(),
                body: body.to_owned(),
                attempts: 0,
                next_attempt_at: now,
                created_at: now,
            })
            .await
    }

    /// Claims up to `limit` due rows for `owner` for `lease_ms`.
    pub async fn claim(&self, owner: &str, lease_ms: i64, limit: u32) -> Result<Vec<WebhookRow>> {
        self.db
            .claim_webhooks(owner, now_ms(), lease_ms, limit)
            .await
    }

    /// Records how an attempt ended; `false` if `owner` lost the lease.
    pub async fn finish(&self, id: &str, owner: &str, attempt: &Attempt) -> Result<bool> {
        self.db.finish_webhook(id, owner, attempt, now_ms()).await
    }
}

/// A fresh event id.
pub fn new_event_id() -> Result<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Key(KeyError::Rng(e.to_string())))?;
    Ok(format!("evt_{}", hex::encode(bytes)))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
