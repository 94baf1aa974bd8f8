//! Completion callbacks: a run request may name a `callback_url`; when the
//! run reaches its final outcome, `run.completed` with the outcome is
//! queued in the webhook outbox ([`crate::store::webhooks`]) and delivered,
//! signed and retried, by the same worker as Connect's webhooks
//! ([`crate::connect::webhooks`]).
//!
//! - **Signature**: the connect scheme, `Airlock-Signature: t=…,v1=…`
//!   (HMAC-SHA256 over `"{t}.{body}"`) keyed by the project's secret
//!   [`WEBHOOK_SECRET_NAME`]; a run may name a callback only once that
//!   secret exists, so nothing is ever posted unsigned.
//! - **What it carries**: `{id, event, created_at, project, run: {id, step,
//!   status, output | error, attempts, duration_ms}}` — the output and
//!   error as stored: masked, and absent for a `nostore` run (a receiver is
//!   one more place data rests; `nostore` means none of it is kept).
//! - **Where it may go**: https, or http to a loopback host (as Connect's
//!   `webhook_uri`), no credentials or fragment in the URL; at delivery
//!   through the host's policy-checked client, so the egress policy applies
//!   (no private or metadata address unless the operator allowed its range).
//! - **Once per run**: the event id is derived from the run id and queued
//!   with "insert unless present", so a run finished by two nodes (a lease
//!   lost at the very end) or a retry of this call queues one event; a run
//!   that is queued again for another attempt (`status` not final) queues
//!   none. A receiver deduplicates by `Airlock-Event-Id`, as the outbox is
//!   at least once.
//! - **Crash window**: the event is queued right after the outcome is
//!   stored (not in its transaction). A process that dies in between
//!   leaves a finished run whose callback is never sent; the run's record
//!   is there to read.

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

use super::RunService;
use crate::connect::WEBHOOK_SECRET_NAME;
use crate::store::live_logs::LiveLogStore;
use crate::store::runs::RunRecord;
use crate::store::webhooks::WebhookRow;
use crate::store::{Db, Result};

/// The event type.
pub const RUN_COMPLETED: &str = "run.completed";
/// Longest `callback_url`, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Why a `callback_url` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackUrlError {
    #[error("callback_url: must be at most {MAX_URL_LEN} characters")]
    TooLong,
    #[error("callback_url: must be an absolute URL")]
    NotAbsolute,
    #[error("callback_url: must be https:// (http:// only to localhost or a loopback address)")]
    Insecure,
    #[error("callback_url: must not have a fragment or credentials")]
    Credentials,
}

/// Checks a `callback_url` as Connect checks a `webhook_uri`.
pub fn check_url(text: &str) -> std::result::Result<Url, CallbackUrlError> {
    if text.len() > MAX_URL_LEN {
        return Err(CallbackUrlError::TooLong);
    }
    let url = Url::parse(text).map_err(|_| CallbackUrlError::NotAbsolute)?;
    let secure = match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    };
    if !secure {
        return Err(CallbackUrlError::Insecure);
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(CallbackUrlError::Credentials);
    }
    Ok(url)
}

/// The secret that must exist before a run may name a callback.
pub const SECRET_NAME: &str = WEBHOOK_SECRET_NAME;

/// A run's final outcome, as its callback carries it.
#[derive(Debug, Clone)]
pub struct Completed {
    pub id: String,
    pub step: String,
    pub status: String,
    /// Masked; `None` for a `nostore` run or a failed one.
    pub output: Option<Value>,
    /// Masked; `None` for a `nostore` run or a succeeded one.
    pub error: Option<Value>,
    pub attempts: i64,
    pub duration_ms: i64,
}

impl Completed {
    /// From a stored record (which holds no output or error when nostore).
    pub fn of_record(r: &RunRecord) -> Self {
        let parse = |t: &Option<String>| t.as_deref().and_then(|t| serde_json::from_str(t).ok());
        Self {
            id: r.id.clone(),
            step: r.step.clone(),
            status: r.status.clone(),
            output: parse(&r.output),
            error: parse(&r.error),
            attempts: r.attempts,
            duration_ms: r.duration_ms,
        }
    }
}

/// The event id of run `run_id`'s callback: the same however often it is
/// queued.
pub fn event_id(run_id: &str) -> String {
    let digest = Sha256::digest(format!("{RUN_COMPLETED}\0{run_id}").as_bytes());
    format!("evt_{}", hex::encode(&digest[..8]))
}

/// Queues `run.completed` for `url`; `true` if it was not queued before.
pub async fn enqueue(db: &Db, project: &str, url: &str, run: &Completed) -> Result<bool> {
    let id = event_id(&run.id);
    let now = crate::store::webhooks::now_ms();
    let mut data = json!({
        "id": run.id,
        "step": run.step,
        "status": run.status,
        "attempts": run.attempts,
        "duration_ms": run.duration_ms,
    });
    if let Some(output) = &run.output {
        data["output"] = output.clone();
    }
    if let Some(error) = &run.error {
        data["error"] = error.clone();
    }
    let body = json!({
        "id": id,
        "event": RUN_COMPLETED,
        "created_at": crate::server::time::Timestamp::from_unix_millis(now),
        "project": project,
        "run": data,
    })
    .to_string();
    let queued = db
        .enqueue_webhook_once(&WebhookRow {
            id: id.clone(),
            project: project.to_owned(),
            url: url.to_owned(),
            event: RUN_COMPLETED.to_owned(),
            body,
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
        })
        .await?;
    if queued {
        tracing::info!(project, run_id = %run.id, event_id = %id, "run callback queued");
    }
    Ok(queued)
}

/// Why the API refuses a run's `callback_url`.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error(transparent)]
    Url(#[from] CallbackUrlError),
    #[error(
        "callback_url: set the project secret {SECRET_NAME} first; it signs every callback \
         (PUT /v1/projects/{{project}}/secrets/{SECRET_NAME})"
    )]
    NoSecret,
    #[error("callback_url: {0}")]
    Egress(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl From<CallbackError> for crate::server::error::ApiError {
    fn from(e: CallbackError) -> Self {
        match e {
            CallbackError::Store(e) => e.into(),
            e => Self::bad_request(e.to_string()),
        }
    }
}

/// Checks a run request's `callback_url`: its shape, that the project can
/// sign it, and (for an IP literal) the egress policy; names are checked
/// again at each delivery by the policy-checked resolver.
pub async fn check(
    state: &crate::server::AppState,
    project: &str,
    text: &str,
) -> std::result::Result<String, CallbackError> {
    let url = check_url(text)?;
    if state
        .secrets
        .get(&state.master_key, project, SECRET_NAME)
        .await?
        .is_none()
    {
        return Err(CallbackError::NoSecret);
    }
    if let Some(connect) = &state.connect {
        airlock_host_api::http::client::check_literal_host(&connect.policy, &url)
            .map_err(|e| CallbackError::Egress(e.to_string()))?;
    }
    Ok(String::from(url))
}

/// After a synchronous run's record is stored: queues its callback (the
/// answer carries the same outcome; `nostore` drops output and error).
pub async fn after_sync_run(
    state: &crate::server::AppState,
    project: &str,
    step: &str,
    url: &str,
    result: &crate::server::runs::RunResult,
    nostore: bool,
) {
    let run = Completed {
        id: result.id.clone(),
        step: step.to_owned(),
        status: result.status.to_owned(),
        output: result.output.clone().filter(|_| !nostore),
        error: result
            .error
            .as_ref()
            .filter(|_| !nostore)
            .and_then(|e| serde_json::to_value(e).ok()),
        attempts: 1,
        duration_ms: i64::try_from(result.duration_ms).unwrap_or(i64::MAX),
    };
    match enqueue(state.service.db(), project, url, &run).await {
        Ok(_) => {
            if let Some(connect) = &state.connect {
                connect.wake.notify_one();
            }
        }
        Err(e) => tracing::error!(run_id = %run.id, error = %e, "cannot queue a run's callback"),
    }
}

fn is_final(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "cancelled")
}

/// After a queued run's attempt stored (or failed to store) its outcome:
/// if the run has its final outcome now, its live log rows go (the record
/// holds the log) and its callback, if it named one, is queued. A run
/// queued again, or still running elsewhere, is left alone. Failures are
/// logged: the outcome is stored either way.
pub async fn settled(service: &RunService, project: &str, run_id: &str) {
    let db = service.db();
    let record = match db.get_run(project, run_id).await {
        Ok(Some(r)) if is_final(&r.status) => r,
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(%run_id, error = %e, "cannot read a finished run for its callback");
            return;
        }
    };
    if let Err(e) = LiveLogStore::new(db.clone()).clear(run_id).await {
        tracing::warn!(%run_id, error = %e, "cannot delete a finished run's live log lines");
    }
    match db.run_callback_url(project, run_id).await {
        Ok(Some(url)) => {
            if let Err(e) = enqueue(db, project, &url, &Completed::of_record(&record)).await {
                tracing::error!(%run_id, error = %e, "cannot queue a run's callback");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::error!(%run_id, error = %e, "cannot read a run's callback URL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_urls_are_https_or_loopback_http() {
        assert!(check_url("https://hooks.example.com/airlock").is_ok());
        assert!(check_url("http://127.0.0.1:9/x").is_ok());
        assert!(check_url("http://localhost/x").is_ok());
        assert_eq!(
            check_url("http://hooks.example.com/"),
            Err(CallbackUrlError::Insecure)
        );
        assert_eq!(check_url("ftp://x/"), Err(CallbackUrlError::Insecure));
        assert_eq!(check_url("/relative"), Err(CallbackUrlError::NotAbsolute));
        assert_eq!(
            check_url("https://u:p@example.com/"),
            Err(CallbackUrlError::Credentials)
        );
        assert_eq!(
            check_url(&format!("https://example.com/{}", "a".repeat(MAX_URL_LEN))),
            Err(CallbackUrlError::TooLong)
        );
    }

    #[test]
    fn a_runs_event_id_is_stable_and_its_own() {
        assert_eq!(event_id("r1"), event_id("r1"));
        assert_ne!(event_id("r1"), event_id("r2"));
        assert!(event_id("r1").starts_with("evt_") && event_id("r1").len() == 20);
    }
}
