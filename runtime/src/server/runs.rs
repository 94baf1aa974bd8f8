//! Runs: `POST /v1/projects/{project}/steps/{step}/runs` runs the step's
//! current version once (scope `runs:write`), or queues it with `Prefer:
//! respond-async` ([`super::queued`]); `GET /v1/projects/{project}/runs`
//! and `GET /v1/projects/{project}/runs/{id}` read the records (scope
//! `runs:read`). Output, error and logs come masked from the engine; a
//! `nostore` run keeps metadata only.

use airlock_host_api::context::Trigger;
use std::collections::BTreeMap;
use std::sync::Arc;

use airlock_host_api::http::run_accounts::RunAccounts;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use zeroize::Zeroizing;

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::params::{ProjectPath, RunPath, StepPath};
use super::steps::check;
use super::time::Timestamp;
use crate::engine::RunFailure;
use crate::store::accounts::validate_external_user_id;
use crate::store::runs::{RunFilter, RunRecord};

/// Header that asks for a metadata-only run record (`1` or `true`).
pub const NOSTORE_HEADER: &str = "x-airlock-nostore";
/// Most runs one list call returns.
pub const MAX_LIST_LIMIT: u32 = 100;

/// Body of `POST .../runs`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Any JSON value; the step's input.
    pub input: Value,
    /// The end user this run acts for (`context.external-user-id`): 1 to
    /// 250 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 250,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub external_user_id: Option<String>,
    /// Keep metadata only: no input, output, error or logs.
    #[serde(default)]
    pub nostore: bool,
    /// Credentials for this run only, by app slug: e.g.
    /// `{"slack": {"oauth_access_token": "…"}}`, or the fields the app's auth
    /// kind needs (and its custom fields). They act as the run's accounts
    /// for those apps, are masked from everything the run produces, and are
    /// never stored.
    #[schema(value_type = Option<std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>>)]
    pub credentials: Option<BTreeMap<String, BTreeMap<String, Zeroizing<String>>>>,
    /// Where `run.completed` is POSTed, signed, when the run has its final
    /// outcome: https (http only to a loopback host), at most 2048
    /// characters; needs the project secret `oauth.connect.webhook_secret`.
    #[schema(max_length = 2048)]
    pub callback_url: Option<String>,
}

impl std::fmt::Debug for RunRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunRequest { input: <redacted>, credentials: <redacted>, .. }")
    }
}

/// Why a run produced no output.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunErrorView {
    /// `step_error`, `invalid_output`, `limit:<kind>` or `internal`.
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

/// What one run produced.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunResult {
    pub id: String,
    /// `succeeded` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunErrorView>,
    pub duration_ms: u64,
}

/// What a run used.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunStatsView {
    pub duration_ms: i64,
    pub cpu_ticks: i64,
    pub memory_peak_bytes: i64,
    pub log_bytes: i64,
    /// KiB x milliseconds of memory and tables held over the run.
    pub memory_kib_ms: i64,
    /// Bytes of the response bodies its outbound HTTP calls received.
    pub http_response_bytes: i64,
}

/// A stored run. Input, output, error and logs are absent for a `nostore`
/// run (and output or error for the other outcome).
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    pub id: String,
    pub step: String,
    /// The digest of the step version that ran (empty while queued).
    pub digest: String,
    /// `succeeded`, `failed` or `cancelled`; `queued` or `running` for a
    /// queued run that has not finished.
    pub status: String,
    /// Attempts started: 1 for a synchronous run; for a queued run 0 until
    /// it starts, more than 1 when its node stopped and it ran again.
    pub attempts: i64,
    pub created_at: Timestamp,
    /// The end user the run acted for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
    /// The run this one re-ran (`POST …/runs/{id}/rerun`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<String>,
    /// When its (latest) attempt started: `created_at` for a synchronous
    /// run; absent while a queued run waits (and for runs recorded before
    /// start times were kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    pub stats: RunStatsView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunErrorView>,
    /// Log lines (masked): `source`, `level`, `elapsed_ms`, `text`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<Value>,
    /// Outbound calls: `method`, `url` (no query, masked), `status`,
    /// `duration_ms`, `response_bytes`, `account_id`. Never a header or
    /// credential.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_calls: Option<Value>,
    /// A queued run's failed attempts that were retried, oldest first:
    /// `attempt`, `retry_on` (`error`, `wall_time` or `upstream`),
    /// `error_kind`, `message` (masked, at most 200 characters; absent for
    /// `nostore`), `duration_ms`, `digest` and `retry_at`. Only in `GET
    /// .../runs/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_history: Option<Value>,
}

/// A page of runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<RunView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A run's outcome, as `status` filters it.
#[derive(Debug, Clone, Copy, ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documents the filter; the handler checks the text
pub enum RunStatusName {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// Filters and paging of `GET .../runs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only runs of this step.
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")]
    pub step: Option<String>,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    #[param(inline, value_type = Option<RunStatusName>)]
    pub status: Option<String>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn failure_view(failure: &RunFailure) -> RunErrorView {
    let e = crate::service::outcome::error_parts(failure);
    RunErrorView {
        kind: e.kind,
        message: e.message,
        code: e.code,
        details: e.details,
    }
}

/// Whether a request asks for a metadata-only record ([`NOSTORE_HEADER`]).
pub(super) fn wants_nostore(headers: &HeaderMap) -> bool {
    headers
        .get(NOSTORE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v.trim(), "1" | "true"))
}

/// Run a step's current version once (scope `runs:write`). 200 whether the
/// step succeeded or failed: the run happened. With `Prefer:
/// respond-async` the run is queued instead: 202 `{id, status: "queued"}`
/// with `Preference-Applied: respond-async` and `Location`, once the queued
/// run is stored; `Idempotency-Key` then makes a retry return the same run
/// (422 `idempotency_key_reused` for a different request under the key).
#[utoipa::path(post, path = "/v1/projects/{project}/steps/{step}/runs", tag = "runs",
    security(("bearer" = [])),
    params(StepPath,
        ("x-airlock-nostore" = Option<String>, Header,
            description = "`1` or `true`: keep metadata only"),
        ("prefer" = Option<String>, Header,
            description = "`respond-async`: queue the run and answer 202 at once"),
        ("idempotency-key" = Option<String>, Header,
            description = "With `respond-async`: 1 to 255 visible ASCII characters, unique \
                per step; a retry with the same key returns the same run")),
    request_body = RunRequest,
    responses((status = 200, body = RunResult,
            description = "The run (or, for a replayed `Idempotency-Key`, `QueuedRun`)"),
        (status = 202, body = super::queued::QueuedRun, description = "Queued",
            headers(("preference-applied" = String), ("location" = String))),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`idempotency_key_reused`")))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, step)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RunRequest>,
) -> Result<Response, ApiError> {
    check(&state, &principal, "runs:write", &project, Some(&step)).await?;
    if let Some(user) = &body.external_user_id {
        validate_external_user_id(user)
            .map_err(|e| ApiError::bad_request(format!("external_user_id: {e}")))?;
    }
    let key = super::queued::idempotency_key(&headers)?;
    let callback_url = match &body.callback_url {
        Some(text) => Some(crate::service::callbacks::check(&state, &project, text).await?),
        None => None,
    };
    if super::queued::prefers_async(&headers) {
        if body.credentials.is_some() {
            return Err(ApiError::bad_request(
                "credentials: cannot be passed to a queued run (they are never stored); \
                 store an account instead",
            ));
        }
        return super::queued::enqueue(
            &state,
            super::queued::Enqueue {
                project: &project,
                step: &step,
                input: &body.input,
                external_user_id: body.external_user_id,
                nostore: body.nostore || wants_nostore(&headers),
                trigger: crate::store::queue::TRIGGER_API,
                idempotency_key: key,
                preferred: true,
                digest: None,
                rerun_of: None,
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
    let run_accounts = match body.credentials {
        Some(given) => Some(Arc::new(
            RunAccounts::new(state.pipeline.catalog(), given)
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        )),
        None => None,
    };
    let nostore = body.nostore || wants_nostore(&headers);
    let invocation = Invocation {
        input: &body.input,
        external_user_id: body.external_user_id,
        nostore,
        trigger: Trigger::Api,
        run_accounts,
        digest: None,
        rerun_of: None,
    };
    let result = execute(&state, &project, &step, invocation).await?;
    if let Some(url) = &callback_url {
        crate::service::callbacks::after_sync_run(&state, &project, &step, url, &result, nostore)
            .await;
    }
    Ok(Json(result).into_response())
}

/// One request to run a step, from the runs API or a trigger.
pub(super) struct Invocation<'a> {
    pub input: &'a Value,
    pub external_user_id: Option<String>,
    /// Keep metadata only.
    pub nostore: bool,
    pub trigger: Trigger,
    /// Credentials passed with the run (never stored).
    pub run_accounts: Option<Arc<RunAccounts>>,
    /// Run this stored version instead of the current one.
    pub digest: Option<String>,
    /// The recorded run this one re-runs.
    pub rerun_of: Option<String>,
}

/// Runs the current version of `project`/`step` once through the run
/// service and records the run: the one run path of the API and of HTTP
/// triggers. The answer waits for the record to be committed.
pub(super) async fn execute(
    state: &AppState,
    project: &str,
    step: &str,
    invocation: Invocation<'_>,
) -> Result<RunResult, ApiError> {
    let nostore = invocation.nostore;
    let input = invocation.input.to_string();
    let external_user_id = invocation.external_user_id.clone();
    let ran = state
        .service
        .run(crate::service::Invocation {
            project: project.to_owned(),
            step: step.to_owned(),
            input: input.clone(),
            external_user_id: invocation.external_user_id,
            nostore,
            trigger: invocation.trigger,
            run_accounts: invocation.run_accounts,
            digest: invocation.digest,
            queued: None,
        })
        .await
        .map_err(service_error)?;
    let report = &ran.report;
    // The engine checked and masked the output (parsed, so nesting is
    // bounded); its text is what is stored.
    let (status, output, error) = match &report.outcome {
        Ok(text) => {
            let value = serde_json::from_str::<Value>(text).map_err(|_| ApiError::internal())?;
            ("succeeded", Some(value), None)
        }
        Err(failure) => ("failed", None, Some(failure_view(failure))),
    };
    let stats = &report.stats;
    let mut record = crate::service::outcome::record(
        crate::service::outcome::RecordOf {
            project,
            step,
            digest: &ran.digest,
            input: &input,
            nostore,
            created_at: ran.created_at,
            attempts: 1,
        },
        report,
    );
    record.external_user_id = external_user_id;
    record.rerun_of = invocation.rerun_of;
    let id = record.id.clone();
    state.service.record(record).await?;
    tracing::info!(%project, %step, run_id = %id, status, nostore, "run finished");
    Ok(RunResult {
        id,
        status,
        output,
        error,
        duration_ms: stats.duration_ms,
    })
}

/// The API's answer to a run that did not happen.
fn service_error(e: crate::service::ServiceError) -> ApiError {
    use crate::service::ServiceError;
    match e {
        ServiceError::NoStep(step) => ApiError::not_found(format!("no step `{step}`")),
        ServiceError::Busy(busy) => ApiError::busy(busy.retry_after),
        ServiceError::Store(e) => e.into(),
        ServiceError::Internal => ApiError::internal(),
    }
}

fn parse_json(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn view(r: RunRecord) -> RunView {
    RunView {
        id: r.id,
        step: r.step,
        digest: r.digest,
        status: r.status,
        attempts: r.attempts,
        created_at: Timestamp::from_unix_millis(r.created_at),
        external_user_id: r.external_user_id,
        rerun_of: r.rerun_of,
        started_at: r.started_at.map(Timestamp::from_unix_millis),
        stats: RunStatsView {
            duration_ms: r.duration_ms,
            cpu_ticks: r.cpu_ticks,
            memory_peak_bytes: r.memory_peak_bytes,
            log_bytes: r.log_bytes,
            memory_kib_ms: r.memory_kib_ms,
            http_response_bytes: r.http_response_bytes,
        },
        input: parse_json(r.input),
        output: parse_json(r.output),
        error: r.error.and_then(|e| serde_json::from_str(&e).ok()),
        logs: parse_json(r.logs),
        http_calls: parse_json(r.http_calls),
        attempt_history: None,
    }
}

/// One run with its logs and stats (scope `runs:read`).
#[utoipa::path(get, path = "/v1/projects/{project}/runs/{id}", tag = "runs",
    security(("bearer" = [])),
    params(RunPath),
    responses((status = 200, body = RunView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, id)): ApiPath<(String, String)>,
) -> Result<Json<RunView>, ApiError> {
    check(&state, &principal, "runs:read", &project, None).await?;
    let record = state
        .runs
        .get(&project, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such run"))?;
    let history = state.queue.attempt_history(&project, &id).await?;
    Ok(Json(RunView {
        attempt_history: parse_json(history),
        ..view(record)
    }))
}

fn encode_cursor(created_at: i64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{created_at}:{id}"))
}

fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, id) = text.split_once(':')?;
    Some((at.parse().ok()?, id.to_owned()))
}

/// A project's runs, newest first, with cursor paging (scope `runs:read`).
#[utoipa::path(get, path = "/v1/projects/{project}/runs", tag = "runs",
    security(("bearer" = [])),
    params(ProjectPath, ListParams),
    responses((status = 200, body = RunList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(project): ApiPath<String>,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<RunList>, ApiError> {
    check(&state, &principal, "runs:read", &project, None).await?;
    let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = params.limit.unwrap_or(20);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: must be 1 to {MAX_LIST_LIMIT}"
        )));
    }
    if let Some(status) = &params.status
        && !matches!(
            status.as_str(),
            "queued" | "running" | "succeeded" | "failed" | "cancelled"
        )
    {
        return Err(ApiError::bad_request(
            "status: must be `queued`, `running`, `succeeded`, `failed` or `cancelled`",
        ));
    }
    let before = match &params.cursor {
        Some(c) => Some(decode_cursor(c).ok_or_else(|| ApiError::bad_request("invalid cursor"))?),
        None => None,
    };
    // One extra row tells whether there is a next page.
    let mut rows = state
        .runs
        .list(
            &project,
            &RunFilter {
                step: params.step,
                status: params.status,
                before,
                limit: limit + 1,
            },
        )
        .await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|r| encode_cursor(r.created_at, &r.id))
    } else {
        None
    };
    Ok(Json(RunList {
        runs: rows.into_iter().map(view).collect(),
        next_cursor,
    }))
}
