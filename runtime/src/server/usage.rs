//! Usage: `GET /v1/projects/{project}/usage?from=…&to=…` sums, per step,
//! the runs created in `[from, to)` by outcome and what they used — wall
//! time, CPU ticks, memory-time, log bytes, outbound response bytes — the
//! numbers a billing system needs (scope `runs:read`, as reading runs).
//!
//! The sums are the database's (one `GROUP BY` per request, see
//! [`crate::store::usage`]), so a request costs the same whether the range
//! holds ten runs or ten million. `nostore` runs count like any other: the
//! stats are metadata and are always recorded.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiPath, ErrorBody};
use super::params::ProjectPath;
use super::steps::check;
use super::time::{Timestamp, instant};
use crate::store::UsageStore;
use crate::store::usage::{StepUsage, Totals};

/// The range of `GET .../usage`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// Start of the range, included: an RFC 3339 timestamp
    /// (`2026-12-01T00:00:00Z`) or Unix milliseconds.
    #[param(example = "2026-12-01T00:00:00Z")]
    pub from: String,
    /// End of the range, excluded; the same forms as `from`, and after it.
    #[param(example = "2027-01-01T00:00:00Z")]
    pub to: String,
}

/// Sums over the runs of a range.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageTotals {
    /// Runs created in the range.
    pub runs: i64,
    /// Runs by status (`succeeded`, `failed`); statuses with no run are
    /// absent.
    pub outcomes: BTreeMap<String, i64>,
    /// Wall time of the runs, milliseconds.
    pub duration_ms: i64,
    /// CPU time: epoch ticks (1 ms each) during which guest code ran.
    pub cpu_ticks: i64,
    /// Memory-time: KiB x milliseconds of memory and tables held.
    pub memory_kib_ms: i64,
    /// Log text accepted (log lines, stdout, stderr), bytes.
    pub log_bytes: i64,
    /// Response bodies received by the runs' outbound HTTP calls, bytes.
    pub http_response_bytes: i64,
}

/// The usage of one step.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepUsageView {
    pub step: String,
    #[serde(flatten)]
    pub usage: UsageTotals,
}

/// A project's usage over `[from, to)`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReport {
    pub from: Timestamp,
    pub to: Timestamp,
    /// Steps with runs in the range, by name (a deleted step's runs too).
    pub steps: Vec<StepUsageView>,
    /// Every step together.
    pub total: UsageTotals,
}

fn totals(outcomes: BTreeMap<String, i64>, t: &Totals) -> UsageTotals {
    UsageTotals {
        runs: t.runs,
        outcomes,
        duration_ms: t.duration_ms,
        cpu_ticks: t.cpu_ticks,
        memory_kib_ms: t.memory_kib_ms,
        log_bytes: t.log_bytes,
        http_response_bytes: t.http_response_bytes,
    }
}

/// `text` as Unix milliseconds: digits are milliseconds, anything else must
/// be RFC 3339 (any offset).
/// A project's usage per step over a time range (scope `runs:read`).
#[utoipa::path(get, path = "/v1/projects/{project}/usage", tag = "runs",
    security(("bearer" = [])),
    params(ProjectPath, UsageParams),
    responses((status = 200, body = UsageReport), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(project): ApiPath<String>,
    query: Result<Query<UsageParams>, QueryRejection>,
) -> Result<Json<UsageReport>, ApiError> {
    check(&state, &principal, "runs:read", &project, None).await?;
    let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let from = instant("from", &params.from)?;
    let to = instant("to", &params.to)?;
    if from >= to {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_range",
            "the range is empty: `to` must be after `from` (`from` is included, `to` is not)",
        ));
    }
    let steps: Vec<StepUsage> = UsageStore::new(&state.secrets)
        .per_step(&project, from, to)
        .await?;
    let mut all = Totals::default();
    let mut all_outcomes: BTreeMap<String, i64> = BTreeMap::new();
    for s in &steps {
        all.add(&s.totals);
        for (status, n) in &s.outcomes {
            let count = all_outcomes.entry(status.clone()).or_default();
            *count = count.saturating_add(*n);
        }
    }
    Ok(Json(UsageReport {
        from: Timestamp::from_unix_millis(from),
        to: Timestamp::from_unix_millis(to),
        steps: steps
            .into_iter()
            .map(|s| StepUsageView {
                usage: totals(s.outcomes, &s.totals),
                step: s.step,
            })
            .collect(),
        total: totals(all_outcomes, &all),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_rfc_3339_or_unix_millis() {
        assert_eq!(instant("from", "1796083200000").unwrap(), 1_796_083_200_000);
        assert_eq!(
            instant("from", "2026-12-01T00:00:00Z").unwrap(),
            1_796_083_200_000
        );
        assert_eq!(
            instant("from", "2026-12-01T01:00:00+01:00").unwrap(),
            1_796_083_200_000
        );
        for bad in [
            "",
            "yesterday",
            "-5",
            "2026-12-01",
            "1e9",
            "99999999999999999999",
        ] {
            let e = instant("to", bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
