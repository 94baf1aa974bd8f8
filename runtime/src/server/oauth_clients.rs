//! OAuth 2.0 clients: `POST`/`GET /v1/oauth/clients`,
//! `POST /v1/oauth/clients/{id}/rotate-secret`, `DELETE /v1/oauth/clients/{id}`
//! (scope `admin`). Their token endpoint is [`super::token`].

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::keys::{
    CreateCredential, check_new_credential, revoked, visible_credential, with_last_use,
};
use super::params::{ClientPath, UnusedSinceParams};
use super::time::Timestamp;
use crate::store::credential_use::CredentialKind;

/// A new OAuth client: `client_secret` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedClient {
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub project: Option<String>,
    pub created_at: Timestamp,
    /// When it stops working (no token outlives it); absent: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// A client's new secret, shown this once; the old one and its tokens are dead.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub client_id: String,
    pub client_secret: String,
}

/// An OAuth client's metadata; never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub project: Option<String>,
    pub created_at: Timestamp,
    /// When it stops working; absent: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// When it last got a token or one of its tokens was used (recorded at
    /// most once a minute per node); absent: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
}

/// OAuth clients the caller may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    pub clients: Vec<ClientView>,
}

/// Create an OAuth client (scope `admin`); the secret is returned once.
#[utoipa::path(post, path = "/v1/oauth/clients", tag = "oauth", security(("bearer" = [])),
    request_body = CreateCredential,
    responses((status = 201, body = CreatedClient), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateCredential>,
) -> Result<(StatusCode, Json<CreatedClient>), ApiError> {
    let (project, expires_at) = check_new_credential(&state, &principal, &body).await?;
    let (meta, secret) = state
        .platform
        .create_client(&body.name, &body.scopes, project.as_deref(), expires_at)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedClient {
            client_id: meta.id,
            client_secret: secret.as_str().to_owned(),
            name: meta.name,
            scopes: meta.scopes,
            project: meta.project,
            created_at: Timestamp::from_unix_secs(meta.created_at),
            expires_at: meta.expires_at.map(Timestamp::from_unix_secs),
        }),
    ))
}

/// List OAuth clients (scope `admin`): metadata only, never secrets, with
/// when each was last used; `?unused_since=` keeps those not used since. A
/// project-restricted admin sees its own project's clients.
#[utoipa::path(get, path = "/v1/oauth/clients", tag = "oauth", security(("bearer" = [])),
    params(UnusedSinceParams),
    responses((status = 200, body = ClientList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<Query<UnusedSinceParams>, QueryRejection>,
) -> Result<Json<ClientList>, ApiError> {
    let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    list_clients(&state, &principal, params.since_secs()?).await
}

/// The clients `principal` (an admin) may see; the console's list too.
pub async fn list_clients(
    state: &AppState,
    principal: &Principal,
    unused_since: Option<i64>,
) -> Result<Json<ClientList>, ApiError> {
    principal.require("admin")?;
    let all = state.platform.list_clients().await?;
    let clients = with_last_use(
        state,
        principal,
        CredentialKind::OAuthClient,
        all,
        unused_since,
    )
    .await?
    .into_iter()
    .map(|v| ClientView {
        client_id: v.id,
        name: v.name,
        scopes: v.scopes,
        project: v.project,
        created_at: v.created_at,
        expires_at: v.expires_at,
        last_used_at: v.last_used_at,
    })
    .collect();
    Ok(Json(ClientList { clients }))
}

async fn visible_client(state: &AppState, principal: &Principal, id: &str) -> Result<(), ApiError> {
    principal.require("admin")?;
    match state.platform.get_client(id).await? {
        Some(m) if visible_credential(principal, &m) => Ok(()),
        _ => Err(ApiError::not_found("no such OAuth client")),
    }
}

/// Replace a client's secret (scope `admin`): the old secret and every token
/// issued to the client stop working at once.
#[utoipa::path(post, path = "/v1/oauth/clients/{id}/rotate-secret", tag = "oauth",
    security(("bearer" = [])), params(ClientPath),
    responses((status = 200, body = RotatedSecret), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RotatedSecret>, ApiError> {
    visible_client(&state, &principal, &id).await?;
    let secret = state
        .platform
        .rotate_client_secret(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such OAuth client"))?;
    Ok(Json(RotatedSecret {
        client_id: id,
        client_secret: secret.as_str().to_owned(),
    }))
}

/// Delete a client (scope `admin`) and revoke its tokens; not the last
/// unrestricted admin credential.
#[utoipa::path(delete, path = "/v1/oauth/clients/{id}", tag = "oauth",
    security(("bearer" = [])), params(ClientPath),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`last_admin`: the last \
            unrestricted admin credential (API key or OAuth client) cannot be deleted")))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    visible_client(&state, &principal, &id).await?;
    revoked(
        state.platform.delete_client(&id).await?,
        "no such OAuth client",
    )
}
