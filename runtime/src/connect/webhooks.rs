//! Connect's webhooks: events queued in the outbox
//! ([`crate::store::webhooks`]) and delivered, signed, by [`spawn`].
//!
//! - **What an event carries**: ids and health (`account_id`, `app`,
//!   `external_user_id`, `health`, `connect_token_id`, granted `scopes`, an
//!   error `code`), never a credential: a webhook receiver is one more
//!   place data rests, and none of it needs a token.
//! - **Signature**: `Airlock-Signature: t=<unix seconds>,v1=<hex>` where
//!   the hex is HMAC-SHA256 keyed by the project's secret
//!   [`WEBHOOK_SECRET_NAME`](super::WEBHOOK_SECRET_NAME) over
//!   `"{t}.{body}"` — the Stripe scheme, so existing verifiers work. `t` is
//!   the time of sending, so a receiver can refuse replays older than its
//!   tolerance; the secret is read at each delivery, so a rotated secret
//!   signs from the next attempt on.
//! - **Where it may go**: through the host's policy-checked client, like
//!   a step's request: an API key that may create connect tokens cannot
//!   make the server post to its own metadata address or private network
//!   unless the operator allowed that range (`--allow-range`).
//! - **Retries**: a non-2xx answer, a timeout or a refused connection is
//!   tried again after 1 s, 2 s, 4 s … (at most an hour apart), for
//!   [`MAX_ATTEMPTS`] attempts in all; then the event is given up and
//!   logged.

use std::sync::Arc;
use std::time::Duration;

use airlock_host_api::http::client::check_literal_host;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Connect, WEBHOOK_SECRET_NAME};
use crate::oauth::NeedsReauthHook;
use crate::store::webhooks::{Attempt, WebhookRow, new_event_id, now_ms};

/// Attempts before an event is given up.
pub const MAX_ATTEMPTS: i64 = 12;
/// How long a claimed event is this node's before another may take it.
const LEASE_MS: i64 = 60_000;
/// Events claimed at once.
const BATCH: u32 = 10;
/// How long one delivery may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the outbox is looked at without a wake-up.
const POLL: Duration = Duration::from_millis(500);

/// The event types.
pub const CONNECTED: &str = "account.connected";
pub const CONNECTION_FAILED: &str = "account.connection_failed";
pub const RECONNECTED: &str = "account.reconnected";
pub const NEEDS_REAUTH: &str = "account.needs_reauth";

/// Queues `event` with `data` for `url` and wakes the worker. A failure is
/// logged, not returned: the account is stored either way.
pub async fn emit(connect: &Connect, project: &str, url: &str, event: &str, data: Value) {
    let id = match new_event_id() {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "cannot make a webhook event id");
            return;
        }
    };
    let body = json!({
        "id": id,
        "type": event,
        "created_at": crate::server::time::Timestamp::from_unix_millis(now_ms()),
        "project": project,
        "data": data,
    })
    .to_string();
    match connect
        .webhooks
        .enqueue(project, url, event, &body, &id)
        .await
    {
        Ok(()) => {
            tracing::info!(project, event_id = %id, event, "webhook queued");
            connect.wake.notify_one();
        }
        Err(e) => tracing::error!(project, event, error = %e, "cannot queue a webhook"),
    }
}

/// `t=<t>,v1=<hex(HMAC-SHA256(secret, "t.body"))>`.
pub fn signature(secret: &[u8], t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The delay before attempt `attempts + 1`: 1 s doubling, at most an hour.
fn backoff_ms(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 12)).unwrap_or(12);
    (1000i64 << exp).min(3_600_000)
}

/// Delivers the outbox until aborted: claims due events, posts them,
/// records each outcome. `owner` names this process's leases.
pub fn spawn(connect: Arc<Connect>) -> tokio::task::JoinHandle<()> {
    let owner = new_event_id()
        .map(|id| id.replace("evt_", "node_"))
        .unwrap_or_else(|_| format!("node_{}", std::process::id()));
    tokio::spawn(async move {
        loop {
            match connect.webhooks.claim(&owner, LEASE_MS, BATCH).await {
                Ok(rows) if !rows.is_empty() => {
                    for row in rows {
                        let outcome = deliver(&connect, &row).await;
                        if let Err(e) = connect.webhooks.finish(&row.id, &owner, &outcome).await {
                            tracing::warn!(event_id = %row.id, error = %e, "cannot record a webhook attempt");
                        }
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot claim webhooks"),
            }
            let _ = tokio::time::timeout(POLL, connect.wake.notified()).await;
        }
    })
}

/// One attempt at `row`. Logs ids, statuses and reasons only.
async fn deliver(connect: &Connect, row: &WebhookRow) -> Attempt {
    let failed = |error: String| {
        if row.attempts >= MAX_ATTEMPTS {
            tracing::error!(event_id = %row.id, attempts = row.attempts, %error, "webhook given up");
            Attempt::GiveUp { error }
        } else {
            tracing::warn!(event_id = %row.id, attempts = row.attempts, %error, "webhook not delivered; will retry");
            Attempt::Retry {
                at_ms: now_ms().saturating_add(backoff_ms(row.attempts)),
                error,
            }
        }
    };
    let secret = match connect
        .secrets
        .get(&connect.key, &row.project, WEBHOOK_SECRET_NAME)
        .await
    {
        Ok(Some(s)) => s,
        Ok(None) => return failed(format!("the project has no secret {WEBHOOK_SECRET_NAME}")),
        Err(e) => return failed(format!("cannot read the webhook secret: {e}")),
    };
    let url = match url::Url::parse(&row.url) {
        Ok(u) => u,
        Err(_) => {
            return Attempt::GiveUp {
                error: "invalid URL".to_owned(),
            };
        }
    };
    if let Err(e) = check_literal_host(&connect.policy, &url) {
        return failed(e.to_string());
    }
    let t = now_ms() / 1000;
    let sent = connect
        .http
        .post(url)
        .timeout(DELIVERY_TIMEOUT)
        .header("content-type", "application/json")
        .header(
            "airlock-signature",
            signature(secret.as_bytes(), t, &row.body),
        )
        .header("airlock-event-id", &row.id)
        .header("airlock-event-type", &row.event)
        .body(row.body.clone())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {
            tracing::info!(event_id = %row.id, status = r.status().as_u16(), "webhook delivered");
            Attempt::Delivered
        }
        Ok(r) => failed(format!(
            "the receiver answered HTTP {}",
            r.status().as_u16()
        )),
        Err(e) => failed(format!("{}", e.without_url())),
    }
}

/// Sends `account.needs_reauth` when the refresher marks an account, to
/// the webhook of the token that connected it. The cell is filled once the
/// server knows its address (the refresher is built before).
pub struct ReauthWebhooks(pub Arc<std::sync::OnceLock<Arc<Connect>>>);

#[async_trait::async_trait]
impl NeedsReauthHook for ReauthWebhooks {
    async fn needs_reauth(&self, project: &str, account_id: &str) {
        let Some(connect) = self.0.get() else { return };
        let url = match connect.store.webhook_for_account(project, account_id).await {
            Ok(Some(url)) => url,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(project, account_id, error = %e, "cannot look up the account's webhook");
                return;
            }
        };
        let meta = connect
            .accounts
            .get_meta(project, account_id)
            .await
            .ok()
            .flatten();
        let data = json!({
            "account_id": account_id,
            "app": meta.as_ref().map(|m| m.app.clone()),
            "external_user_id": meta.as_ref().map(|m| m.external_user_id.clone()),
            "health": "needs_reauth",
        });
        emit(connect, project, &url, NEEDS_REAUTH, data).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_t_dot_body() {
        // Computed independently: printf '%s' '1700000000.{"a":1}' |
        // openssl dgst -sha256 -hmac whsec_test
        let sig = signature(b"whsec_test", 1_700_000_000, r#"{"a":1}"#);
        assert_eq!(
            sig,
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
        assert_ne!(sig, signature(b"whsec_other", 1_700_000_000, r#"{"a":1}"#));
        assert_ne!(sig, signature(b"whsec_test", 1_700_000_001, r#"{"a":1}"#));
    }

    #[test]
    fn backoff_doubles_to_an_hour() {
        assert_eq!(backoff_ms(1), 1000);
        assert_eq!(backoff_ms(2), 2000);
        assert_eq!(backoff_ms(4), 8000);
        assert_eq!(backoff_ms(40), 3_600_000);
    }
}
