//! One attempt of a queued run on this node: renew its lease while it
//! runs, run it through the run service, and store its outcome only if the
//! lease is still ours.

use std::sync::Arc;
use std::time::Instant;

use airlock_host_api::context::Trigger;
use tokio::sync::OwnedSemaphorePermit;

use super::Shared;
use super::retry;
use crate::engine::cancel::CancelFlag;
use crate::service::outcome::{self, ErrorParts, RecordOf};
use crate::service::{Invocation, QueuedAttempt, Ran, ServiceError};
use crate::store::queue::{ClaimedRun, Lease, RetryAt, TRIGGER_HTTP};
use crate::store::runs::RunRecord;

pub(super) async fn run(shared: Arc<Shared>, run: ClaimedRun, _slot: OwnedSemaphorePermit) {
    let cancel = Arc::new(CancelFlag::new());
    shared
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(run.id.clone(), cancel.clone());
    let renewal = tokio::spawn(renew(
        shared.clone(),
        run.id.clone(),
        run.attempt,
        cancel.clone(),
    ));
    let result = shared
        .service
        .run(Invocation {
            project: run.project.clone(),
            step: run.step.clone(),
            input: run.input.clone(),
            external_user_id: run.external_user_id.clone(),
            nostore: run.nostore,
            trigger: if run.trigger == TRIGGER_HTTP {
                Trigger::Http
            } else {
                Trigger::Api
            },
            run_accounts: None,
            // The pinned version, or the step's current one when the
            // attempt starts.
            digest: run.digest.clone(),
            queued: Some(QueuedAttempt {
                run_id: run.id.clone(),
                attempt: u32::try_from(run.attempt).unwrap_or(u32::MAX),
                idempotency_key: run.idempotency_key.clone(),
                cancel: cancel.clone(),
            }),
        })
        .await;
    renewal.abort();
    shared
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&run.id);
    let of = |digest: &'static str| RecordOf {
        project: &run.project,
        step: &run.step,
        digest,
        input: &run.input,
        nostore: run.nostore,
        created_at: 0,
        attempts: run.attempt,
    };
    if let Ok(ran) = &result
        && retried(&shared, &run, ran).await
    {
        return;
    }
    let record = match result {
        Ok(ran) => outcome::record(
            RecordOf {
                digest: &ran.digest,
                ..of("")
            },
            &ran.report,
        ),
        Err(ServiceError::NoStep(step)) => failed(
            &run,
            of(""),
            "no_step",
            format!("no step `{step}` (deleted after the run was queued?)"),
        ),
        Err(ServiceError::Internal) => failed(&run, of(""), "internal", "internal error".into()),
        // A store that does not answer now may later: the lease runs out
        // and the run is tried again.
        Err(e) => {
            tracing::warn!(run_id = %run.id, error = %e,
                "a queued run could not start; it is tried again after its lease");
            return;
        }
    };
    match shared
        .queue
        .finish(&record, &shared.owner, run.attempt)
        .await
    {
        Ok(true) => {
            tracing::info!(project = %run.project, step = %run.step, run_id = %run.id,
                attempt = run.attempt, status = %record.status, "queued run finished");
            freed(&shared, &run).await;
        }
        Ok(false) => tracing::warn!(run_id = %run.id, attempt = run.attempt,
            "a queued run's lease was lost before it finished; this attempt's outcome is dropped"),
        Err(e) => tracing::warn!(run_id = %run.id, error = %e,
            "a queued run's outcome could not be stored; it is tried again after its lease"),
    }
    crate::service::callbacks::settled(&shared.service, &run.project, &run.id).await;
}

/// Puts the attempt back in the queue if the step's retry policy retries
/// its failure; `true` when this attempt is done with (re-queued, or left
/// to its lease after a store error).
async fn retried(shared: &Arc<Shared>, run: &ClaimedRun, ran: &Ran) -> bool {
    if ran.report.outcome.is_ok() {
        return false;
    }
    let settings = match shared
        .settings
        .version(&run.project, &run.step, &ran.digest)
        .await
    {
        Ok(Some(settings)) => settings,
        Ok(None) => return false,
        Err(e) => {
            tracing::warn!(run_id = %run.id, error = %e,
                "cannot read a queued run's retry policy; it is tried again after its lease");
            return true;
        }
    };
    let attempt = u32::try_from(run.attempt).unwrap_or(u32::MAX);
    let Some(retry) = retry::decide(&settings.retry, attempt, &ran.report, retry::random()) else {
        return false;
    };
    let now = crate::service::unix_millis();
    let not_before = now.saturating_add(i64::try_from(retry.delay.as_millis()).unwrap_or(i64::MAX));
    let summary = attempt_summary(run, ran, retry.on, not_before).to_string();
    let at = RetryAt {
        id: &run.id,
        owner: &shared.owner,
        attempt: run.attempt,
        not_before,
        summary: &summary,
    };
    match shared.queue.retry(&at).await {
        Ok(true) => {
            tracing::info!(project = %run.project, step = %run.step, run_id = %run.id,
                attempt = run.attempt, on = retry.on.name(), delay_ms = %retry.delay.as_millis(),
                "queued run failed; it is retried");
            // Look for it when it is due (the poll would find it too).
            // Weak: a stopped node's workers are not kept alive by it.
            let waker = Arc::downgrade(shared);
            tokio::spawn(async move {
                tokio::time::sleep(retry.delay).await;
                if let Some(shared) = waker.upgrade() {
                    shared.wake.notify_one();
                }
            });
            freed(shared, run).await;
            true
        }
        // The lease was lost (nothing to do) or a cancel was asked: the
        // attempt's outcome is stored as it is.
        Ok(false) => false,
        Err(e) => {
            tracing::warn!(run_id = %run.id, error = %e,
                "a queued run's retry could not be stored; it is tried again after its lease");
            true
        }
    }
}

/// A run of this step stopped running: a run its caps held back may start
/// now. This node looks at once; other nodes are told when the step is
/// capped (a project's caps alone are left to their poll).
async fn freed(shared: &Arc<Shared>, run: &ClaimedRun) {
    shared.wake.notify_one();
    if let Ok(Some(settings)) = shared.settings.current(&run.project, &run.step).await
        && settings.caps.any()
    {
        shared.queue.nudge().await;
    }
}

/// What `attempt_history` keeps of a failed attempt: its number, why it is
/// retried, its error's kind and masked message (cut to
/// [`SUMMARY_MESSAGE_CHARS`]; none for a `nostore` run), its duration and
/// when it is due again.
fn attempt_summary(
    run: &ClaimedRun,
    ran: &Ran,
    on: crate::manifest::RetryOn,
    not_before: i64,
) -> serde_json::Value {
    let error = ran.report.outcome.as_ref().err().map(outcome::error_parts);
    let mut summary = serde_json::json!({
        "attempt": run.attempt,
        "retry_on": on.name(),
        "error_kind": error.as_ref().map(|e| e.kind.as_str()),
        "duration_ms": ran.report.stats.duration_ms,
        "digest": ran.digest,
        "retry_at": chrono::DateTime::from_timestamp_millis(not_before)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    });
    if !run.nostore
        && let Some(e) = &error
    {
        summary["message"] = e
            .message
            .chars()
            .take(SUMMARY_MESSAGE_CHARS)
            .collect::<String>()
            .into();
    }
    summary
}

/// Characters of an error message an attempt's summary keeps.
pub(super) const SUMMARY_MESSAGE_CHARS: usize = 200;

/// The record of an attempt that could not run the step.
fn failed(run: &ClaimedRun, of: RecordOf<'_>, kind: &str, message: String) -> RunRecord {
    let error = ErrorParts {
        kind: kind.to_owned(),
        message,
        code: None,
        details: None,
    };
    RunRecord {
        id: run.id.clone(),
        project: of.project.to_owned(),
        step: of.step.to_owned(),
        digest: String::new(),
        status: "failed".to_owned(),
        created_at: 0,
        duration_ms: 0,
        cpu_ticks: 0,
        memory_peak_bytes: 0,
        log_bytes: 0,
        memory_kib_ms: 0,
        http_response_bytes: 0,
        input: (!run.nostore).then(|| run.input.clone()),
        output: None,
        error: (!run.nostore)
            .then(|| serde_json::to_string(&error).ok())
            .flatten(),
        logs: None,
        http_calls: None,
        attempts: run.attempt,
        external_user_id: run.external_user_id.clone(),
        rerun_of: None,
        started_at: None,
    }
}

/// Renews the lease every third of it. A cancel request seen here sets the
/// flag (the fallback of the change bus); a lost lease, or one that may
/// have run out because renewals failed, stops the attempt, so that no two
/// attempts ever run at once.
async fn renew(shared: Arc<Shared>, id: String, attempt: i64, cancel: Arc<CancelFlag>) {
    let lease = shared.config.lease;
    let every = lease / 3;
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        match shared.queue.renew(&id, &shared.owner, attempt, lease).await {
            Ok(Lease::Held) => renewed = Instant::now(),
            Ok(Lease::CancelRequested) => {
                renewed = Instant::now();
                cancel.cancel();
            }
            Ok(Lease::Lost) => {
                tracing::warn!(run_id = %id, attempt, "a queued run's lease was lost; stopping it");
                cancel.cancel();
                return;
            }
            Err(e) => {
                tracing::warn!(run_id = %id, error = %e, "cannot renew a queued run's lease");
                if renewed.elapsed() + every >= lease {
                    tracing::warn!(run_id = %id, attempt,
                        "a queued run's lease may run out before it can be renewed; stopping it");
                    cancel.cancel();
                    return;
                }
            }
        }
    }
}
