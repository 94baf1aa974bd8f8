//! Projects: `POST /v1/projects`, `GET /v1/projects`, `GET /v1/projects/{name}`,
//! and a project's caps on queued runs, `GET`/`PUT /v1/projects/{project}/limits`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::params::{ProjectNamePath, ProjectPath};
use super::time::Timestamp;
use crate::manifest::ConcurrencySection;
use crate::store::queue::QueueCaps;
use crate::store::{self, platform::Project};

/// Body of `POST /v1/projects`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// Letters, digits, `_`, `-`, `.`, starting with a letter or `_`; at most 128.
    #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", example = "alpha")]
    pub name: String,
}

/// A project.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectView {
    pub name: String,
    pub created_at: Timestamp,
}

impl From<Project> for ProjectView {
    fn from(p: Project) -> Self {
        Self {
            name: p.name,
            created_at: Timestamp::from_unix_secs(p.created_at),
        }
    }
}

/// Projects the caller may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectList {
    pub projects: Vec<ProjectView>,
}

/// Create a project (scope `admin`, not restricted to a project).
#[utoipa::path(post, path = "/v1/projects", tag = "projects", security(("bearer" = [])),
    request_body = CreateProject,
    responses((status = 201, body = ProjectView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateProject>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    principal.require_global_admin()?;
    store::validate_project_name(&body.name)?;
    if !state.platform.create_project(&body.name).await? {
        return Err(ApiError::conflict(format!(
            "project `{}` already exists",
            body.name
        )));
    }
    let project = state
        .platform
        .get_project(&body.name)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(project.into())))
}

/// List the projects the caller may see.
#[utoipa::path(get, path = "/v1/projects", tag = "projects", security(("bearer" = [])),
    responses((status = 200, body = ProjectList), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<ProjectList>, ApiError> {
    let projects = state
        .platform
        .list_projects()
        .await?
        .into_iter()
        .filter(|p| principal.may_see(&p.name))
        .map(ProjectView::from)
        .collect();
    Ok(Json(ProjectList { projects }))
}

/// One project; 404 when it does not exist or the caller may not see it.
#[utoipa::path(get, path = "/v1/projects/{name}", tag = "projects", security(("bearer" = [])),
    params(ProjectNamePath),
    responses((status = 200, body = ProjectView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<ProjectView>, ApiError> {
    visible_project(&state, &principal, &name).await?;
    let project = state
        .platform
        .get_project(&name)
        .await?
        .ok_or_else(|| no_project(&name))?;
    Ok(Json(project.into()))
}

fn no_project(name: &str) -> ApiError {
    let shown: String = name.chars().take(40).collect();
    ApiError::not_found(format!("no project `{shown}`"))
}

/// 404 unless `name` exists and the caller may see it (the same answer either
/// way, so a restricted credential never learns other projects exist).
pub async fn visible_project(
    state: &AppState,
    principal: &Principal,
    name: &str,
) -> Result<(), ApiError> {
    if !principal.may_see(name) || state.platform.get_project(name).await?.is_none() {
        return Err(no_project(name));
    }
    Ok(())
}

/// A project's caps on its queued runs, across every step and node (each
/// step's own `[concurrency]` caps apply too). `null` or absent: no cap.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueLimits {
    /// Queued runs of the project running at once (1..=1000000).
    #[serde(default)]
    pub max_running: Option<i64>,
    /// Queued runs of the project started per `per_secs` seconds
    /// (1..=1000000; needs `per_secs`).
    #[serde(default)]
    pub max_starts: Option<i64>,
    /// The window of `max_starts`, in seconds (1..=86400; needs `max_starts`).
    #[serde(default)]
    pub per_secs: Option<i64>,
}

impl From<QueueCaps> for QueueLimits {
    fn from(c: QueueCaps) -> Self {
        Self {
            max_running: c.max_running,
            max_starts: c.max_starts,
            per_secs: c.per_secs,
        }
    }
}

/// A project's caps on queued runs (scope `admin`).
#[utoipa::path(get, path = "/v1/projects/{project}/limits", tag = "projects",
    security(("bearer" = [])),
    params(ProjectPath),
    responses((status = 200, body = QueueLimits), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_limits(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(project): ApiPath<String>,
) -> Result<Json<QueueLimits>, ApiError> {
    principal.require("admin")?;
    visible_project(&state, &principal, &project).await?;
    Ok(Json(state.queue.project_caps(&project).await?.into()))
}

/// Set a project's caps on queued runs (scope `admin`): runs over a cap
/// stay `queued` and start when it allows. Replaces every cap (an absent
/// one is removed); `{}` removes them all. Synchronous runs are not capped
/// here (admission bounds them).
#[utoipa::path(put, path = "/v1/projects/{project}/limits", tag = "projects",
    security(("bearer" = [])),
    params(ProjectPath),
    request_body = QueueLimits,
    responses((status = 200, body = QueueLimits), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody)))]
pub async fn put_limits(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(project): ApiPath<String>,
    ApiJson(body): ApiJson<QueueLimits>,
) -> Result<Json<QueueLimits>, ApiError> {
    principal.require("admin")?;
    visible_project(&state, &principal, &project).await?;
    let section = ConcurrencySection {
        max_running: body.max_running,
        max_starts: body.max_starts,
        per_secs: body.per_secs,
    };
    section.validate_named("").map_err(ApiError::bad_request)?;
    let caps = section.caps();
    state.queue.set_project_caps(&project, &caps).await?;
    // Raised caps may let queued runs start now.
    state.queue.nudge().await;
    tracing::info!(%project, ?caps, "project queue limits set");
    Ok(Json(caps.into()))
}
