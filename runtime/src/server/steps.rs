//! Steps of a project: `PUT`/`GET`/`DELETE /v1/projects/{project}/steps/{step}`
//! and `GET /v1/projects/{project}/steps`. An upload is validated exactly as
//! `airlock run` validates a component (the engine compiles it) and stored as
//! an immutable version named by a digest of its component and manifest.
//!
//! `PUT .../steps/{step}/current {digest}` makes a stored version current
//! (a rollback, or forward again). Nothing is compiled or uploaded: the
//! version was validated when it was uploaded and is immutable. The store
//! publishes the change, so every node's cached "current version" of the
//! step is dropped before the answer; plans are cached by digest and never
//! go stale. Who switched is logged at `info` with the credential's public
//! id (the store's audit log holds failed authentications only).

use axum::Json;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::http::StatusCode;
use serde::Deserialize;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody, payload_too_large};
use super::metrics::CompileSource;
use super::params::{ProjectPath, StepPath};
use super::projects::visible_project;
use super::time::Timestamp;
use crate::manifest::Manifest;
use crate::store;
use crate::store::steps::SetCurrent;

/// Largest upload (component and manifest), in bytes.
pub const MAX_UPLOAD_BYTES: usize = 50 * 1024 * 1024;

/// The multipart form of `PUT /v1/projects/{project}/steps/{step}`.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the form; the handler reads the parts itself
pub struct UploadForm {
    /// The component (`.wasm` bytes).
    #[schema(value_type = String, format = Binary)]
    component: Vec<u8>,
    /// The `airlock.toml` text; without it the manifest is `name = "<step>"`.
    manifest: Option<String>,
}

/// What an upload stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadOutcome {
    pub step: String,
    /// Names the version: `sha256:<hex>` over the component and manifest.
    pub digest: String,
    /// `sha256:<hex>` of the component bytes.
    pub component_digest: String,
    /// Whether this version is new (201) or was already stored (200).
    pub created: bool,
}

/// A step and its current version.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    pub step: String,
    pub current_digest: String,
    pub updated_at: Timestamp,
}

/// The steps of a project.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepList {
    pub steps: Vec<StepView>,
}

/// One stored version.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    pub digest: String,
    /// `sha256:<hex>` of the component bytes.
    pub component_digest: String,
    /// When it was first uploaded.
    pub created_at: Timestamp,
    /// Whether it is the step's current version (the one runs use).
    pub current: bool,
}

/// A step: its current version's manifest and every stored version.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepDetailView {
    pub step: String,
    /// The version runs use (unless a trigger is pinned to another).
    pub current_digest: String,
    /// When the current version last changed (an upload of a new version,
    /// or `PUT .../current`).
    pub updated_at: Timestamp,
    /// The `airlock.toml` text of the current version.
    pub manifest: String,
    /// Newest first.
    pub versions: Vec<VersionView>,
}

/// Body of `PUT .../steps/{step}/current`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCurrentBody {
    /// A stored version of the step: `sha256:` and 64 lowercase hex digits,
    /// as its `versions` list it.
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
    pub digest: String,
}

/// 422 `invalid_digest` for a digest that cannot name a version; 404
/// `no_version` for one the step does not have (404 `not_found` if there
/// is no such step).
pub(super) async fn check_version(
    state: &AppState,
    project: &str,
    step: &str,
    digest: &str,
) -> Result<(), ApiError> {
    check_digest(digest)?;
    match state.steps.version(project, step, digest).await? {
        Some(_) => Ok(()),
        None => Err(no_version(step, digest)),
    }
}

fn check_digest(digest: &str) -> Result<(), ApiError> {
    if store::steps::is_version_digest(digest) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_digest",
        "digest: expected `sha256:` and 64 lowercase hex digits, as a step's `versions` list it",
    ))
}

fn no_version(step: &str, digest: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_version",
        format!("step `{step}` has no version {digest}: `GET .../steps/{step}` lists its versions"),
    )
}

pub(super) async fn check(
    state: &AppState,
    principal: &Principal,
    scope: &str,
    project: &str,
    step: Option<&str>,
) -> Result<(), ApiError> {
    principal.require(scope)?;
    visible_project(state, principal, project).await?;
    if let Some(step) = step {
        store::validate_step_name(step)?;
    }
    Ok(())
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        payload_too_large()
    } else {
        ApiError::bad_request(format!("invalid multipart body: {}", e.body_text()))
    }
}

/// Upload a version of a step and make it current (scope `steps:write`).
#[utoipa::path(put, path = "/v1/projects/{project}/steps/{step}", tag = "steps",
    security(("bearer" = [])),
    params(StepPath),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = UploadOutcome), (status = 200, body = UploadOutcome),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, step)): ApiPath<(String, String)>,
    headers: axum::http::HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<UploadOutcome>), ApiError> {
    check(&state, &principal, "steps:write", &project, Some(&step)).await?;
    // Another media type is 415, as on the JSON routes; a malformed
    // multipart body (a missing boundary) is a 400 below.
    let media_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some("multipart/form-data") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected a request with `Content-Type: multipart/form-data`",
        ));
    }
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a multipart/form-data body: {}",
            e.body_text()
        ))
    })?;
    let mut component: Option<Vec<u8>> = None;
    let mut manifest: Option<String> = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("component") => {
                let bytes = field.bytes().await.map_err(multipart_error)?;
                component = Some(bytes.to_vec());
            }
            Some("manifest") => {
                let text = field.text().await.map_err(multipart_error)?;
                manifest = Some(text);
            }
            Some(other) => {
                let shown: String = other.chars().take(40).collect();
                return Err(ApiError::bad_request(format!(
                    "unknown part {shown:?}: expected `component` and optionally `manifest`"
                )));
            }
            None => return Err(ApiError::bad_request("a part has no name")),
        }
    }
    let component = component.ok_or_else(|| ApiError::bad_request("missing part `component`"))?;
    let manifest = manifest.unwrap_or_else(|| format!("name = {:?}\n", step));
    let parsed = Manifest::parse(&manifest).map_err(|e| ApiError::bad_request(e.to_string()))?;
    // A grant of an app the server does not know could never be used:
    // refuse it now rather than fail every run.
    if let Some(app) = parsed
        .http
        .apps
        .iter()
        .find(|app| state.pipeline.catalog().get(app).is_none())
    {
        return Err(ApiError::bad_request(format!(
            "manifest: `[http] apps` grants {app:?}, which is not in this server's app catalog"
        )));
    }

    let loaded = {
        let _permit = state
            .compile_permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal())?;
        let cold = !state
            .engine
            .is_loaded(&crate::engine::component_digest(&component));
        let started = std::time::Instant::now();
        let loaded = state.engine.load(component.clone()).await;
        if cold && loaded.is_ok() {
            state
                .metrics
                .compiled(CompileSource::Upload, started.elapsed());
        }
        loaded
    };
    let loaded = loaded.map_err(|e| match e {
        crate::engine::LoadError::Internal(detail) => {
            tracing::error!(error = %detail, "cannot load an uploaded component");
            ApiError::internal()
        }
        other => ApiError::bad_request(other.to_string()),
    })?;
    let component_digest = loaded.digest().to_owned();
    let digest = store::steps::version_digest(&component_digest, &manifest);
    let created = state
        .steps
        .put_version(
            &project,
            &step,
            &digest,
            &component_digest,
            &component,
            &manifest,
        )
        .await?;
    // The version is loaded now; keep it so its first run is warm.
    state.service.preload(digest.clone(), parsed, loaded);
    tracing::info!(%project, %step, %digest, created, "step version stored");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(UploadOutcome {
            step,
            digest,
            component_digest,
            created,
        }),
    ))
}

/// List a project's steps (scope `steps:read`).
#[utoipa::path(get, path = "/v1/projects/{project}/steps", tag = "steps",
    security(("bearer" = [])), params(ProjectPath),
    responses((status = 200, body = StepList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(project): ApiPath<String>,
) -> Result<Json<StepList>, ApiError> {
    check(&state, &principal, "steps:read", &project, None).await?;
    let steps = state
        .steps
        .list(&project)
        .await?
        .into_iter()
        .map(|m| StepView {
            step: m.step,
            current_digest: m.current_digest,
            updated_at: Timestamp::from_unix_secs(m.updated_at),
        })
        .collect();
    Ok(Json(StepList { steps }))
}

/// A step: its versions and current manifest (scope `steps:read`).
#[utoipa::path(get, path = "/v1/projects/{project}/steps/{step}", tag = "steps",
    security(("bearer" = [])),
    params(StepPath),
    responses((status = 200, body = StepDetailView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, step)): ApiPath<(String, String)>,
) -> Result<Json<StepDetailView>, ApiError> {
    check(&state, &principal, "steps:read", &project, Some(&step)).await?;
    let detail = state
        .steps
        .get(&project, &step)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no step `{step}`")))?;
    let current = detail.meta.current_digest;
    Ok(Json(StepDetailView {
        step: detail.meta.step,
        updated_at: Timestamp::from_unix_secs(detail.meta.updated_at),
        manifest: detail.manifest,
        versions: detail
            .versions
            .into_iter()
            .map(|v| VersionView {
                current: v.digest == current,
                digest: v.digest,
                component_digest: v.component_digest,
                created_at: Timestamp::from_unix_secs(v.created_at),
            })
            .collect(),
        current_digest: current,
    }))
}

/// Make a stored version the step's current one: a rollback, or forward
/// again (scope `steps:write`). Runs started after the answer use it, on
/// every node; triggers pinned to a digest keep theirs. Answers the step
/// as `GET` does.
#[utoipa::path(put, path = "/v1/projects/{project}/steps/{step}/current", tag = "steps",
    security(("bearer" = [])),
    params(StepPath),
    request_body = SetCurrentBody,
    responses((status = 200, body = StepDetailView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_current(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, step)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SetCurrentBody>,
) -> Result<Json<StepDetailView>, ApiError> {
    check(&state, &principal, "steps:write", &project, Some(&step)).await?;
    check_digest(&body.digest)?;
    match state
        .steps
        .set_current(&project, &step, &body.digest)
        .await?
    {
        SetCurrent::NoStep => return Err(ApiError::not_found(format!("no step `{step}`"))),
        SetCurrent::NoVersion => return Err(no_version(&step, &body.digest)),
        SetCurrent::Unchanged => {}
        SetCurrent::Changed => {
            // Who did it: the credential's public id (never the credential).
            tracing::info!(%project, %step, digest = %body.digest,
                by_kind = principal.0.kind, by = %principal.0.id,
                "step version made current");
        }
    }
    get(State(state), principal, ApiPath((project, step))).await
}

/// Delete a step, all its versions, its triggers and its schedules; its
/// runs stay (scope `steps:write`).
#[utoipa::path(delete, path = "/v1/projects/{project}/steps/{step}", tag = "steps",
    security(("bearer" = [])),
    params(StepPath),
    responses((status = 204), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, step)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    check(&state, &principal, "steps:write", &project, Some(&step)).await?;
    if state.steps.delete(&project, &step).await? {
        // A trigger must not come back to life with a later upload.
        state.triggers.delete_for_step(&project, &step).await?;
        crate::store::schedules::ScheduleStore::new(state.secrets.db().clone())
            .delete_for_step(&project, &step)
            .await?;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no step `{step}`")))
    }
}
