//! One attempt of a queued run on this node: renew its lease while it
//! runs, run it through the run service, and store its outcome only if the
//! lease is still ours.

use std::sync::Arc;
use std::time::Instant;

use airlock_host_api::context::Trigger;
use tokio::sync::OwnedSemaphorePermit;

use super::Shared;
use crate::engine::cancel::CancelFlag;
use crate::service::outcome::{self, ErrorParts, RecordOf};
use crate::service::{Invocation, QueuedAttempt, ServiceError};
use crate::store::queue::{ClaimedRun, Lease, TRIGGER_HTTP};
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
            // The step's current version when the attempt starts.
            digest: None,
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
        Ok(true) => tracing::info!(project = %run.project, step = %run.step, run_id = %run.id,
            attempt = run.attempt, status = %record.status, "queued run finished"),
        Ok(false) => tracing::warn!(run_id = %run.id, attempt = run.attempt,
            "a queued run's lease was lost before it finished; this attempt's outcome is dropped"),
        Err(e) => tracing::warn!(run_id = %run.id, error = %e,
            "a queued run's outcome could not be stored; it is tried again after its lease"),
    }
    crate::service::callbacks::settled(&shared.service, &run.project, &run.id).await;
}

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
