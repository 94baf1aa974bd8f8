//! Cron schedules of steps: `POST`/`GET /v1/projects/{project}/steps/{step}/schedules`,
//! `GET /v1/projects/{project}/schedules` (every schedule of the project),
//! and `GET`/`PATCH`/`DELETE /v1/projects/{project}/schedules/{id}`.
//! Scopes as for triggers, the other way a step runs without its caller
//! (`steps:write` to change, `steps:read` to look). The scheduler that
//! fires them is [`crate::service::schedules`].
//!
//! Everything a caller sends is bounded before it reaches a parser: the
//! cron text and time zone name by length, the input by its JSON size. A
//! project holds at most [`MAX_SCHEDULES_PER_PROJECT`] schedules, so one
//! credential cannot fill the scheduler's passes. Inputs are never logged.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::params::{ProjectPath, StepPath};
use super::steps::check;
use super::time::Timestamp;
use crate::service::schedules::spec::{Spec, SpecError};
use crate::store::accounts::validate_external_user_id;
use crate::store::schedules::{
    MAX_SCHEDULES_PER_PROJECT, ScheduleRecord, ScheduleStore, is_schedule_id, new_id,
};

/// Largest `input`, as JSON text.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;
/// How many fire times a schedule shows.
pub const SHOWN_FIRE_TIMES: usize = 5;

fn default_timezone() -> String {
    "UTC".to_owned()
}

fn default_enabled() -> bool {
    true
}

/// Body of `POST …/schedules`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    /// Five fields (`minute hour day-of-month month day-of-week`), or six
    /// with seconds first (`*/10 * * * * *`); `@hourly`-style nicknames too.
    #[schema(max_length = 256, example = "0 9 * * MON-FRI")]
    pub cron: String,
    /// An IANA time zone name (default `UTC`); the expression is read in
    /// its wall-clock time, daylight saving time included.
    #[serde(default = "default_timezone")]
    #[schema(max_length = 64, example = "Europe/Paris")]
    pub timezone: String,
    /// Any JSON value (default `null`): every run's input, up to 64 KiB.
    #[serde(default)]
    pub input: Value,
    /// Pin the runs to a stored version of the step (`sha256:<64 hex>`).
    /// Refused for now (400): queued runs start on the step's current
    /// version.
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
    pub digest: Option<String>,
    /// The end user the runs act for (`context.external-user-id`).
    #[schema(
        min_length = 1,
        max_length = 250,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub external_user_id: Option<String>,
    /// Default `true`; `false` creates it paused.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
}

/// Body of `PATCH …/schedules/{id}`: the fields to change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSchedule {
    #[schema(max_length = 256)]
    pub cron: Option<String>,
    #[schema(max_length = 64)]
    pub timezone: Option<String>,
    /// The runs' new input (any JSON value but `null`, which means "no
    /// change").
    pub input: Option<Value>,
    /// `false` pauses the schedule; `true` resumes it from the next fire
    /// time after now (ticks missed while paused never fire).
    pub enabled: Option<bool>,
}

/// A schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleView {
    /// `sch_` and 16 hex digits.
    pub id: String,
    pub step: String,
    pub cron: String,
    pub timezone: String,
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
    /// The next fire times (up to 5), earliest first; empty while paused.
    /// The first may be past if no node has been up since: it fires as
    /// soon as one is, once for all the ticks it missed.
    pub next_fire_times: Vec<Timestamp>,
    /// The tick that fired last (after missed ticks, the latest of them);
    /// absent until one has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_fired_at: Option<Timestamp>,
    /// The run that tick queued (`GET …/runs/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run_id: Option<String>,
    pub enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Schedules, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleView>,
}

/// `/v1/projects/{project}/schedules/{id}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // documents the path; the handlers extract a tuple
pub struct SchedulePath {
    /// A project name.
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", example = "alpha")]
    pub project: String,
    /// A schedule id.
    #[param(pattern = "^sch_[0-9a-f]{16}$")]
    pub id: String,
}

fn view(r: ScheduleRecord) -> ScheduleView {
    let next_fire_times = match (r.enabled, r.next_fire_at) {
        (true, Some(first)) => Spec::parse(&r.cron, &r.timezone)
            .map(|spec| spec.times_from(first, SHOWN_FIRE_TIMES))
            .unwrap_or_else(|_| vec![first])
            .into_iter()
            .map(Timestamp::from_unix_millis)
            .collect(),
        _ => Vec::new(),
    };
    ScheduleView {
        input: serde_json::from_str(&r.input).unwrap_or(Value::Null),
        id: r.id,
        step: r.step,
        cron: r.cron,
        timezone: r.timezone,
        digest: r.digest,
        external_user_id: r.external_user_id,
        next_fire_times,
        last_fired_at: r.last_fired_at.map(Timestamp::from_unix_millis),
        last_run_id: r.last_run_id,
        enabled: r.enabled,
        created_at: Timestamp::from_unix_millis(r.created_at),
        updated_at: Timestamp::from_unix_millis(r.updated_at),
    }
}

fn spec_error(e: SpecError) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// The input as stored: JSON text of at most [`MAX_INPUT_BYTES`].
fn input_text(input: &Value) -> Result<String, ApiError> {
    let text = input.to_string();
    if text.len() > MAX_INPUT_BYTES {
        return Err(ApiError::bad_request(format!(
            "input: {} bytes as JSON, more than the {MAX_INPUT_BYTES} a schedule may hold",
            text.len()
        )));
    }
    Ok(text)
}

fn store(state: &AppState) -> ScheduleStore {
    ScheduleStore::new(state.secrets.db().clone())
}

async fn find(state: &AppState, project: &str, id: &str) -> Result<ScheduleRecord, ApiError> {
    if !is_schedule_id(id) {
        return Err(ApiError::not_found("no such schedule"));
    }
    store(state)
        .get(project, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such schedule"))
}

/// Create a cron schedule for a step (scope `steps:write`): it queues a
/// run of the step (trigger `schedule`) at every fire time, once across
/// all nodes. 409 `schedule_limit` when the project has 1,000 schedules.
#[utoipa::path(post, path = "/v1/projects/{project}/steps/{step}/schedules", tag = "schedules",
    security(("bearer" = [])),
    params(StepPath),
    request_body = CreateSchedule,
    responses((status = 201, body = ScheduleView),
        (status = 400, body = ErrorBody,
            description = "A bad `cron`, `timezone`, `input`, `external_user_id` or `digest`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody,
            description = "`schedule_limit`"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, step)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<CreateSchedule>,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    check(&state, &principal, "steps:write", &project, Some(&step)).await?;
    let spec = Spec::parse(&body.cron, &body.timezone).map_err(spec_error)?;
    let input = input_text(&body.input)?;
    if let Some(user) = &body.external_user_id {
        validate_external_user_id(user)
            .map_err(|e| ApiError::bad_request(format!("external_user_id: {e}")))?;
    }
    if state.steps.current(&project, &step).await?.is_none() {
        return Err(ApiError::not_found(format!("no step `{step}`")));
    }
    if let Some(digest) = &body.digest {
        super::steps::check_version(&state, &project, &step, digest).await?;
    }
    let now = crate::service::unix_millis();
    let id = new_id().map_err(|e| {
        tracing::error!(error = %e, "no randomness for a schedule id");
        ApiError::internal()
    })?;
    let record = ScheduleRecord {
        id,
        project: project.clone(),
        step: step.clone(),
        cron: body.cron.trim().to_owned(),
        timezone: body.timezone,
        input,
        digest: body.digest,
        external_user_id: body.external_user_id,
        enabled: body.enabled,
        next_fire_at: spec.next_after(now),
        last_fired_at: None,
        last_run_id: None,
        created_at: now,
        updated_at: now,
    };
    if !store(&state).create(&record).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "schedule_limit",
            format!(
                "project `{project}` has {MAX_SCHEDULES_PER_PROJECT} schedules, the most it may \
                 have: delete one first"
            ),
        ));
    }
    tracing::info!(%project, %step, schedule_id = %record.id, cron = %record.cron,
        timezone = %record.timezone, enabled = record.enabled, "schedule created");
    Ok((StatusCode::CREATED, Json(view(record))))
}

/// List a step's schedules (scope `steps:read`).
#[utoipa::path(get, path = "/v1/projects/{project}/steps/{step}/schedules", tag = "schedules",
    security(("bearer" = [])),
    params(StepPath),
    responses((status = 200, body = ScheduleList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list_for_step(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, step)): ApiPath<(String, String)>,
) -> Result<Json<ScheduleList>, ApiError> {
    check(&state, &principal, "steps:read", &project, Some(&step)).await?;
    let schedules = store(&state).list(&project, Some(&step)).await?;
    Ok(Json(ScheduleList {
        schedules: schedules.into_iter().map(view).collect(),
    }))
}

/// List every schedule of a project (scope `steps:read`).
#[utoipa::path(get, path = "/v1/projects/{project}/schedules", tag = "schedules",
    security(("bearer" = [])),
    params(ProjectPath),
    responses((status = 200, body = ScheduleList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(project): ApiPath<String>,
) -> Result<Json<ScheduleList>, ApiError> {
    check(&state, &principal, "steps:read", &project, None).await?;
    let schedules = store(&state).list(&project, None).await?;
    Ok(Json(ScheduleList {
        schedules: schedules.into_iter().map(view).collect(),
    }))
}

/// A schedule (scope `steps:read`).
#[utoipa::path(get, path = "/v1/projects/{project}/schedules/{id}", tag = "schedules",
    security(("bearer" = [])),
    params(SchedulePath),
    responses((status = 200, body = ScheduleView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, id)): ApiPath<(String, String)>,
) -> Result<Json<ScheduleView>, ApiError> {
    check(&state, &principal, "steps:read", &project, None).await?;
    Ok(Json(view(find(&state, &project, &id).await?)))
}

/// Change a schedule (scope `steps:write`): pause or resume it (`enabled`),
/// or change its `cron`, `timezone` or `input`. A new expression or zone,
/// or a resume, fires next at its first fire time after now.
#[utoipa::path(patch, path = "/v1/projects/{project}/schedules/{id}", tag = "schedules",
    security(("bearer" = [])),
    params(SchedulePath),
    request_body = UpdateSchedule,
    responses((status = 200, body = ScheduleView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateSchedule>,
) -> Result<Json<ScheduleView>, ApiError> {
    check(&state, &principal, "steps:write", &project, None).await?;
    let mut record = find(&state, &project, &id).await?;
    let cron = body.cron.map(|c| c.trim().to_owned());
    let respec = cron.is_some() || body.timezone.is_some();
    if let Some(cron) = cron {
        record.cron = cron;
    }
    if let Some(timezone) = body.timezone {
        record.timezone = timezone;
    }
    let spec = Spec::parse(&record.cron, &record.timezone).map_err(spec_error)?;
    if let Some(input) = &body.input {
        record.input = input_text(input)?;
    }
    let resumed = body.enabled == Some(true) && !record.enabled;
    if let Some(enabled) = body.enabled {
        record.enabled = enabled;
    }
    let now = crate::service::unix_millis();
    record.updated_at = now;
    let reschedule = respec || resumed;
    if reschedule {
        record.next_fire_at = spec.next_after(now);
    }
    if !store(&state).update(&record, reschedule).await? {
        return Err(ApiError::not_found("no such schedule"));
    }
    tracing::info!(%project, schedule_id = %id, cron = %record.cron, timezone = %record.timezone,
        enabled = record.enabled, "schedule changed");
    // Read back: the scheduler may have fired it meanwhile.
    Ok(Json(view(find(&state, &project, &id).await?)))
}

/// Delete a schedule; it fires no more (scope `steps:write`). A tick that
/// was due before the delete may still have queued its run.
#[utoipa::path(delete, path = "/v1/projects/{project}/schedules/{id}", tag = "schedules",
    security(("bearer" = [])),
    params(SchedulePath),
    responses((status = 204), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    check(&state, &principal, "steps:write", &project, None).await?;
    if is_schedule_id(&id) && store(&state).delete(&project, &id).await? {
        tracing::info!(%project, schedule_id = %id, "schedule deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such schedule"))
    }
}
