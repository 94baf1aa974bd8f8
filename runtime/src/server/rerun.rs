//! Re-runs: `POST /v1/projects/{project}/runs/{id}/rerun` runs a recorded
//! run's input again (scope `runs:write`), on the step's current version
//! (the default, e.g. after a fix was pushed) or on the version the run
//! ran (`{"version": "same"}`, e.g. to retry an upstream outage). It acts
//! for the same end user and answers as `POST …/steps/{step}/runs` does:
//! the finished run, or with `Prefer: respond-async` a queued one.
//!
//! What a re-run cannot bring back, by design: the input of a `nostore`
//! run (never stored: 409 `input_not_stored`) and credentials passed with
//! the run (never stored either; the re-run uses the end user's connected
//! accounts). Only a finished run is re-run: one still queued or running
//! has not produced the outcome a re-run would be compared with.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::params::RunPath;
use super::runs::{Invocation, execute, wants_nostore};
use super::steps::check;
use airlock_host_api::context::Trigger;

/// Which version a re-run runs.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RerunVersion {
    /// The step's current version.
    #[default]
    Current,
    /// The version the recorded run ran (404 `no_version` if it was deleted).
    Same,
}

/// Body of `POST …/runs/{id}/rerun` (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerunRequest {
    #[serde(default)]
    pub version: RerunVersion,
    /// Keep metadata only in the new run's record.
    #[serde(default)]
    pub nostore: bool,
    /// Where the new run's `run.completed` is POSTed, as for `POST
    /// …/steps/{step}/runs` (the original's is not reused).
    #[schema(max_length = 2048)]
    pub callback_url: Option<String>,
}

/// Run a recorded run's input again (scope `runs:write`): 200 with the new
/// run as `POST …/steps/{step}/runs` answers it, or 202 with `Prefer:
/// respond-async` (and `Idempotency-Key`, as there). The new run's record
/// names the original in `rerun_of`.
#[utoipa::path(post, path = "/v1/projects/{project}/runs/{id}/rerun", tag = "runs",
    security(("bearer" = [])),
    params(RunPath,
        ("prefer" = Option<String>, Header,
            description = "`respond-async`: queue the re-run and answer 202 at once"),
        ("idempotency-key" = Option<String>, Header,
            description = "With `respond-async`: a retry with the same key returns the same run")),
    request_body(content = Option<RerunRequest>, content_type = "application/json"),
    responses((status = 200, body = super::runs::RunResult),
        (status = 202, body = super::queued::QueuedRun, description = "Queued",
            headers(("preference-applied" = String), ("location" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such run, or (`same`) its version is gone"),
        (status = 409, body = ErrorBody,
            description = "`run_not_finished`, or `input_not_stored` for a nostore run"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`idempotency_key_reused`")))]
pub async fn rerun(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Option<ApiJson<RerunRequest>>,
) -> Result<Response, ApiError> {
    let asked = body.map(|ApiJson(b)| b).unwrap_or_default();
    check(&state, &principal, "runs:read", &project, None).await?;
    let record = state
        .runs
        .get(&project, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such run"))?;
    // A key restricted to some steps may re-run only those.
    check(
        &state,
        &principal,
        "runs:write",
        &project,
        Some(&record.step),
    )
    .await?;
    if matches!(record.status.as_str(), "queued" | "running") {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "run_not_finished",
            format!(
                "the run is still `{}`; re-run it once it has finished",
                record.status
            ),
        ));
    }
    let input: Value = record
        .input
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "input_not_stored",
                "the run was `nostore`: its input was never stored, so it cannot be re-run",
            )
        })?;
    let digest = match asked.version {
        RerunVersion::Current => None,
        RerunVersion::Same if record.digest.is_empty() => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "no_version",
                "the run never started a version of its step; re-run it on the current one",
            ));
        }
        RerunVersion::Same => {
            super::steps::check_version(&state, &project, &record.step, &record.digest).await?;
            Some(record.digest.clone())
        }
    };
    let nostore = asked.nostore || wants_nostore(&headers);
    let callback_url = match &asked.callback_url {
        Some(text) => Some(crate::service::callbacks::check(&state, &project, text).await?),
        None => None,
    };
    let key = super::queued::idempotency_key(&headers)?;
    if super::queued::prefers_async(&headers) {
        return super::queued::enqueue(
            &state,
            super::queued::Enqueue {
                project: &project,
                step: &record.step,
                input: &input,
                external_user_id: record.external_user_id,
                nostore,
                trigger: crate::store::queue::TRIGGER_API,
                idempotency_key: key,
                preferred: true,
                rerun_of: Some(record.id),
                digest,
                callback_url,
            },
        )
        .await;
    }
    if key.is_some() {
        return Err(ApiError::bad_request(
            "Idempotency-Key: needs `Prefer: respond-async` (only queued runs are kept by key)",
        ));
    }
    tracing::info!(%project, step = %record.step, rerun_of = %record.id, "re-running a run");
    let invocation = Invocation {
        input: &input,
        external_user_id: record.external_user_id,
        nostore,
        trigger: Trigger::Api,
        run_accounts: None,
        digest,
        rerun_of: Some(record.id),
    };
    let result = execute(&state, &project, &record.step, invocation).await?;
    if let Some(url) = &callback_url {
        crate::service::callbacks::after_sync_run(
            &state,
            &project,
            &record.step,
            url,
            &result,
            nostore,
        )
        .await;
    }
    Ok(Json(result).into_response())
}
