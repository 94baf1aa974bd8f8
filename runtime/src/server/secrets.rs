//! Secrets of a project: `PUT`/`DELETE /v1/projects/{project}/secrets/{name}`
//! and `GET /v1/projects/{project}/secrets`, all with scope `secrets:write`.
//! Values go in, never out.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::params::{ProjectPath, SecretPath, UnusedSinceParams};
use super::projects::visible_project;
use super::time::Timestamp;
use crate::store::credential_use::unused_since;
use crate::store::{self, SetOutcome};

/// Body of `PUT /v1/projects/{project}/secrets/{name}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    /// The value (not empty); stored encrypted, never returned.
    #[schema(min_length = 1)]
    pub value: String,
}

impl std::fmt::Debug for PutSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PutSecret { value: <redacted> }")
    }
}

/// A secret's metadata; never its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When a run last read it (recorded at most once a minute per node);
    /// absent: never, or not since this was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
}

/// The secrets of a project.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretList {
    pub secrets: Vec<SecretView>,
}

/// What `PUT` did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PutOutcome {
    pub name: String,
    /// `created` or `updated`.
    pub outcome: &'static str,
}

async fn check(state: &AppState, principal: &Principal, project: &str) -> Result<(), ApiError> {
    principal.require("secrets:write")?;
    visible_project(state, principal, project).await
}

/// Store a secret (insert or replace; scope `secrets:write`).
#[utoipa::path(put, path = "/v1/projects/{project}/secrets/{name}", tag = "secrets",
    security(("bearer" = [])),
    params(SecretPath),
    request_body = PutSecret,
    responses((status = 201, body = PutOutcome), (status = 200, body = PutOutcome),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PutSecret>,
) -> Result<(StatusCode, Json<PutOutcome>), ApiError> {
    let value = Zeroizing::new(body.value);
    check(&state, &principal, &project).await?;
    store::validate_secret_name(&name)?;
    if value.is_empty() {
        return Err(ApiError::bad_request("value: must not be empty"));
    }
    let outcome = state
        .secrets
        .set(&state.master_key, &project, &name, &value)
        .await?;
    let (status, word) = match outcome {
        SetOutcome::Created => (StatusCode::CREATED, "created"),
        SetOutcome::Updated => (StatusCode::OK, "updated"),
    };
    Ok((
        status,
        Json(PutOutcome {
            name,
            outcome: word,
        }),
    ))
}

/// Delete a secret (scope `secrets:write`).
#[utoipa::path(delete, path = "/v1/projects/{project}/secrets/{name}", tag = "secrets",
    security(("bearer" = [])),
    params(SecretPath),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, name)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    check(&state, &principal, &project).await?;
    store::validate_secret_name(&name)?;
    if state.secrets.delete(&project, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no secret `{name}`")))
    }
}

/// List a project's secrets: names, dates and when a run last read each
/// (scope `secrets:write`); `?unused_since=` keeps those not read since.
#[utoipa::path(get, path = "/v1/projects/{project}/secrets", tag = "secrets",
    security(("bearer" = [])), params(ProjectPath, UnusedSinceParams),
    responses((status = 200, body = SecretList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(project): ApiPath<String>,
    query: Result<Query<UnusedSinceParams>, QueryRejection>,
) -> Result<Json<SecretList>, ApiError> {
    check(&state, &principal, &project).await?;
    let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let since = params.since_secs()?;
    let all = state.secrets.list(&project).await?;
    let names: Vec<String> = all.iter().map(|m| m.name.clone()).collect();
    let used = state.secrets.last_used(&project, &names).await?;
    let secrets = all
        .into_iter()
        .filter_map(|m| {
            let at = used.get(&m.name).copied();
            if since.is_some_and(|since| !unused_since(at, since)) {
                return None;
            }
            Some(SecretView {
                name: m.name,
                created_at: Timestamp::from_unix_secs(m.created_at),
                updated_at: Timestamp::from_unix_secs(m.updated_at),
                last_used_at: at.map(Timestamp::from_unix_secs),
            })
        })
        .collect();
    Ok(Json(SecretList { secrets }))
}
