//! API keys: `GET /v1/keys`, `POST /v1/keys`, `POST /v1/keys/{id}/rotate`,
//! `DELETE /v1/keys/{id}` (scope `admin`).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::params::{KeyPath, UnusedSinceParams};
use super::projects::visible_project;
use super::time::Timestamp;
use crate::store::credential_use::{self, CredentialKind};
use crate::store::platform::{self, CredentialMeta, Revocation};

/// Body of `POST /v1/keys` and `POST /v1/oauth/clients`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredential {
    /// A label for people: 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    /// At least one scope; `admin` implies all others.
    #[schema(value_type = Vec<ScopeName>, min_items = 1)]
    pub scopes: Vec<String>,
    /// Restrict the credential to this project. A project-restricted admin can only
    /// create credentials for its own project (the default for it).
    #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")]
    pub project: Option<String>,
    /// When it stops working (RFC 3339, in the future); absent: never. An
    /// expiring credential never counts as the server's last admin.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

/// A scope (the names of [`platform::SCOPES`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub enum ScopeName {
    #[serde(rename = "steps:read")]
    StepsRead,
    #[serde(rename = "steps:write")]
    StepsWrite,
    #[serde(rename = "runs:read")]
    RunsRead,
    #[serde(rename = "runs:write")]
    RunsWrite,
    #[serde(rename = "secrets:write")]
    SecretsWrite,
    #[serde(rename = "accounts:read")]
    AccountsRead,
    #[serde(rename = "accounts:write")]
    AccountsWrite,
    #[serde(rename = "accounts:credentials")]
    AccountsCredentials,
    #[serde(rename = "proxy")]
    Proxy,
    #[serde(rename = "metrics")]
    Metrics,
    #[serde(rename = "admin")]
    Admin,
}

/// An API key's metadata; never the key.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub project: Option<String>,
    pub created_at: Timestamp,
    /// When it stops working; absent: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// When it was last used (recorded at most once a minute per node);
    /// absent: never, or not since this was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
}

impl From<CredentialMeta> for KeyView {
    fn from(m: CredentialMeta) -> Self {
        Self {
            id: m.id,
            name: m.name,
            scopes: m.scopes,
            project: m.project,
            created_at: Timestamp::from_unix_secs(m.created_at),
            expires_at: m.expires_at.map(Timestamp::from_unix_secs),
            last_used_at: None,
        }
    }
}

/// The visible credentials of `all` (keys or clients), with when each was
/// last used, less those used since `unused_since` (Unix seconds).
pub async fn with_last_use(
    state: &AppState,
    principal: &Principal,
    kind: CredentialKind,
    all: Vec<CredentialMeta>,
    unused_since: Option<i64>,
) -> Result<Vec<KeyView>, ApiError> {
    let visible: Vec<CredentialMeta> = all
        .into_iter()
        .filter(|m| visible_credential(principal, m))
        .collect();
    let ids: Vec<String> = visible.iter().map(|m| m.id.clone()).collect();
    let used = state.platform.last_used(kind, &ids).await?;
    Ok(visible
        .into_iter()
        .filter_map(|m| {
            let at = used.get(&m.id).copied();
            if unused_since.is_some_and(|since| !credential_use::unused_since(at, since)) {
                return None;
            }
            let mut view = KeyView::from(m);
            view.last_used_at = at.map(Timestamp::from_unix_secs);
            Some(view)
        })
        .collect())
}

/// A new API key: `key` is shown this once and cannot be recovered.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub meta: KeyView,
    /// `ak_<id>_<secret>`; store it now.
    pub key: String,
}

/// API keys the caller may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

/// Checks a new credential's scopes, project and expiry for `principal`
/// (an admin), returning the project it will be restricted to and its
/// expiry in Unix seconds.
pub async fn check_new_credential(
    state: &AppState,
    principal: &Principal,
    body: &CreateCredential,
) -> Result<(Option<String>, Option<i64>), ApiError> {
    principal.require("admin")?;
    if body.name.is_empty() || body.name.chars().count() > 128 {
        return Err(ApiError::bad_request(
            "invalid name: it must be 1 to 128 characters",
        ));
    }
    if body.scopes.is_empty() {
        return Err(ApiError::bad_request("invalid scopes: give at least one"));
    }
    if let Some(bad) = body
        .scopes
        .iter()
        .find(|s| !platform::SCOPES.contains(&s.as_str()))
    {
        let shown: String = bad.chars().take(40).collect();
        return Err(ApiError::bad_request(format!(
            "invalid scopes: unknown scope `{shown}`"
        )));
    }
    let expires_at = body.expires_at.map(|t| t.unix_millis().div_euclid(1000));
    if expires_at.is_some_and(|at| at <= chrono::Utc::now().timestamp()) {
        return Err(ApiError::bad_request(
            "invalid expires_at: it must be in the future",
        ));
    }
    let project = body.project.clone().or_else(|| principal.0.project.clone());
    if let Some(p) = &project {
        visible_project(state, principal, p).await?;
    }
    Ok((project, expires_at))
}

/// Create an API key (scope `admin`); the key is returned once.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", security(("bearer" = [])),
    request_body = CreateCredential,
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateCredential>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let (project, expires_at) = check_new_credential(&state, &principal, &body).await?;
    let (meta, key) = state
        .platform
        .create_api_key(&body.name, &body.scopes, project.as_deref(), expires_at)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            meta: meta.into(),
            key: key.as_str().to_owned(),
        }),
    ))
}

/// List API keys (scope `admin`): metadata only, with when each was last
/// used; `?unused_since=` keeps those not used since then.
#[utoipa::path(get, path = "/v1/keys", tag = "keys", security(("bearer" = [])),
    params(UnusedSinceParams),
    responses((status = 200, body = KeyList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<Query<UnusedSinceParams>, QueryRejection>,
) -> Result<Json<KeyList>, ApiError> {
    let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    list_keys(&state, &principal, params.since_secs()?).await
}

/// The keys `principal` (an admin) may see; the console's list too.
pub async fn list_keys(
    state: &AppState,
    principal: &Principal,
    unused_since: Option<i64>,
) -> Result<Json<KeyList>, ApiError> {
    principal.require("admin")?;
    let all = state.platform.list_api_keys().await?;
    let keys = with_last_use(state, principal, CredentialKind::ApiKey, all, unused_since).await?;
    Ok(Json(KeyList { keys }))
}

/// Whether a restricted admin may see a key or client: only its own project's.
pub fn visible_credential(principal: &Principal, meta: &CredentialMeta) -> bool {
    match &principal.0.project {
        None => true,
        Some(p) => meta.project.as_deref() == Some(p),
    }
}

/// Revoke an API key (scope `admin`); it stops working at once. A key may
/// revoke itself, but not the last unrestricted admin credential.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", security(("bearer" = [])),
    params(KeyPath),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`last_admin`: the last \
            unrestricted admin credential (API key or OAuth client) cannot be revoked")))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    principal.require("admin")?;
    let meta = state.platform.get_api_key(&id).await?;
    match meta {
        Some(m) if visible_credential(&principal, &m) => {
            revoked(state.platform.revoke_api_key(&id).await?, "no such key")
        }
        _ => Err(ApiError::not_found("no such key")),
    }
}

/// Give an API key a new secret (scope `admin`): the same id, name, scopes
/// and project, a new key shown this once. The old key stops working at
/// once, and so do the console sessions signed in with it.
#[utoipa::path(post, path = "/v1/keys/{id}/rotate", tag = "keys", security(("bearer" = [])),
    params(KeyPath),
    responses((status = 200, body = CreatedKey), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn rotate(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CreatedKey>, ApiError> {
    principal.require("admin")?;
    let meta = match state.platform.get_api_key(&id).await? {
        Some(m) if visible_credential(&principal, &m) => m,
        _ => return Err(ApiError::not_found("no such key")),
    };
    let key = state
        .platform
        .rotate_api_key(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such key"))?;
    Ok(Json(CreatedKey {
        meta: meta.into(),
        key: key.as_str().to_owned(),
    }))
}

/// The answer to a revocation: 204, 404, or 409 naming how to make another
/// admin credential.
pub fn revoked(outcome: Revocation, not_found: &'static str) -> Result<StatusCode, ApiError> {
    match outcome {
        Revocation::Revoked => Ok(StatusCode::NO_CONTENT),
        Revocation::NotFound => Err(ApiError::not_found(not_found)),
        Revocation::LastAdmin => Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_admin",
            "this is the last unrestricted admin credential; create another first \
             (POST /v1/keys with scopes [\"admin\"] and no project, or \
             `airlock admin create-key` on the server's data directory)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::ScopeName;

    /// The document's scope names are the store's.
    #[test]
    fn scope_names_are_the_stores_scopes() {
        let schema = serde_json::to_value(<ScopeName as utoipa::PartialSchema>::schema()).unwrap();
        let names: Vec<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(names, crate::store::platform::SCOPES);
    }
}
