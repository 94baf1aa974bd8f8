//! How a run's report becomes its stored record and its answer: one place
//! for the synchronous API, triggers and the queue workers, so a run reads
//! the same however it was started.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::{RunFailure, RunReport};
use crate::store::runs::RunRecord;

/// Why a run produced no output, as stored and answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorParts {
    /// `step_error`, `invalid_output`, `limit:<kind>`, `cancelled` or `internal`.
    pub kind: String,
    /// For `step_error`, the step's own message; otherwise the host's.
    pub message: String,
    /// The step's own error code (`step_error` only, when it gave one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The step's own error details (`step_error` only, when it gave any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// The stored and answered form of `failure`.
pub fn error_parts(failure: &RunFailure) -> ErrorParts {
    let (kind, message) = match failure {
        RunFailure::StepError(e) => {
            return ErrorParts {
                kind: "step_error".to_owned(),
                message: e.message.clone(),
                code: e.code.clone(),
                details: e.details.clone(),
            };
        }
        RunFailure::InvalidOutput(_) => ("invalid_output".to_owned(), failure.to_string()),
        RunFailure::Limit { kind, .. } => {
            let kind = serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown".into());
            (format!("limit:{kind}"), failure.to_string())
        }
        RunFailure::Internal(_) => ("internal".to_owned(), failure.to_string()),
        RunFailure::Cancelled => ("cancelled".to_owned(), failure.to_string()),
    };
    ErrorParts {
        kind,
        message,
        code: None,
        details: None,
    }
}

/// `succeeded`, `cancelled` or `failed`.
pub fn status_of(report: &RunReport) -> &'static str {
    match &report.outcome {
        Ok(_) => "succeeded",
        Err(RunFailure::Cancelled) => "cancelled",
        Err(_) => "failed",
    }
}

/// What identifies a record besides the report.
pub struct RecordOf<'a> {
    pub project: &'a str,
    pub step: &'a str,
    pub digest: &'a str,
    pub input: &'a str,
    pub nostore: bool,
    pub created_at: i64,
    pub attempts: i64,
}

/// The record of a run that happened (metadata only when `nostore`).
pub fn record(of: RecordOf<'_>, report: &RunReport) -> RunRecord {
    let stats = &report.stats;
    let kept = |text: Option<String>| if of.nostore { None } else { text };
    let error = report
        .outcome
        .as_ref()
        .err()
        .and_then(|f| serde_json::to_string(&error_parts(f)).ok());
    RunRecord {
        id: report.run_id.clone(),
        project: of.project.to_owned(),
        step: of.step.to_owned(),
        digest: of.digest.to_owned(),
        status: status_of(report).to_owned(),
        created_at: of.created_at,
        duration_ms: saturating_i64(stats.duration_ms),
        cpu_ticks: saturating_i64(stats.cpu_ticks),
        memory_peak_bytes: saturating_i64(stats.memory_peak_bytes),
        log_bytes: saturating_i64(stats.log_bytes),
        memory_kib_ms: saturating_i64(stats.memory_kib_ms),
        http_response_bytes: saturating_i64(stats.http_response_bytes),
        input: kept(Some(of.input.to_owned())),
        output: kept(report.outcome.as_ref().ok().cloned()),
        error: kept(error),
        logs: kept(serde_json::to_string(&report.logs).ok()),
        http_calls: kept(serde_json::to_string(&report.http_calls).ok()),
        attempts: of.attempts,
        external_user_id: None,
        rerun_of: None,
        started_at: Some(of.created_at),
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
