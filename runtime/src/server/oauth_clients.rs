//! OAuth 2.0 client credentials: clients (`POST`/`GET /v1/oauth/clients`,
//! `POST /v1/oauth/clients/{id}/rotate-secret`, `DELETE /v1/oauth/clients/{id}`,
//! scope `admin`) and the token endpoint `POST /v1/oauth/token` (no bearer),
//! whose failed attempts are rate limited per client id and source address
//! ([`super::ratelimit`]).

use axum::Json;
use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::AppState;
use super::auth::{Principal, audit_failure};
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::keys::{CreateCredential, KeyView, check_new_credential, visible_credential};
use super::metrics::LimitedRoute;
use super::time::Timestamp;
use crate::store::platform::{Refusal, is_client_id};

/// A new OAuth client: `client_secret` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedClient {
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub project: Option<String>,
    pub created_at: Timestamp,
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
}

/// OAuth clients the caller may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    pub clients: Vec<ClientView>,
}

/// Body of `POST /v1/oauth/token`, as form or JSON (or id and secret by HTTP Basic).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// `client_credentials`.
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Space-separated scopes, a subset of the client's; all of them when absent.
    pub scope: Option<String>,
}

/// An access token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds.
    pub expires_in: u64,
    pub scope: String,
}

/// Create an OAuth client (scope `admin`); the secret is returned once.
#[utoipa::path(post, path = "/v1/oauth/clients", tag = "oauth", security(("bearer" = [])),
    request_body = CreateCredential,
    responses((status = 201, body = CreatedClient), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateCredential>,
) -> Result<(StatusCode, Json<CreatedClient>), ApiError> {
    let project = check_new_credential(&state, &principal, &body).await?;
    let (meta, secret) = state
        .platform
        .create_client(&body.name, &body.scopes, project.as_deref())
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
        }),
    ))
}

/// List OAuth clients (scope `admin`): metadata only, never secrets. A
/// project-restricted admin sees its own project's clients.
#[utoipa::path(get, path = "/v1/oauth/clients", tag = "oauth", security(("bearer" = [])),
    responses((status = 200, body = ClientList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<ClientList>, ApiError> {
    principal.require("admin")?;
    let clients = state
        .platform
        .list_clients()
        .await?
        .into_iter()
        .filter(|c| visible_credential(&principal, c))
        .map(|c| {
            let v = KeyView::from(c);
            ClientView {
                client_id: v.id,
                name: v.name,
                scopes: v.scopes,
                project: v.project,
                created_at: v.created_at,
            }
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
    security(("bearer" = [])), params(("id" = String, Path, description = "client id")),
    responses((status = 200, body = RotatedSecret), (status = 401, body = ErrorBody),
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

/// Delete a client (scope `admin`) and revoke its tokens.
#[utoipa::path(delete, path = "/v1/oauth/clients/{id}", tag = "oauth",
    security(("bearer" = [])), params(("id" = String, Path, description = "client id")),
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    visible_client(&state, &principal, &id).await?;
    state.platform.delete_client(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn parse_token_request(headers: &HeaderMap, body: &[u8]) -> Result<TokenRequest, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let mut req = if body.is_empty() {
        TokenRequest::default()
    } else if content_type == "application/json" {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    } else if content_type == "application/x-www-form-urlencoded" {
        let mut req = TokenRequest::default();
        for (k, v) in form_urlencoded::parse(body) {
            let v = Some(v.into_owned());
            match k.as_ref() {
                "grant_type" => req.grant_type = v,
                "client_id" => req.client_id = v,
                "client_secret" => req.client_secret = v,
                "scope" => req.scope = v,
                _ => {}
            }
        }
        req
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected application/x-www-form-urlencoded or application/json",
        ));
    };
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
    {
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(basic.trim())
                .map_err(|_| ApiError::bad_request("invalid Basic credentials"))?,
        );
        let text = std::str::from_utf8(&decoded)
            .map_err(|_| ApiError::bad_request("invalid Basic credentials"))?;
        let (id, secret) = text
            .split_once(':')
            .ok_or_else(|| ApiError::bad_request("invalid Basic credentials"))?;
        // RFC 6749 §2.3.1: both are form-urlencoded before they are joined.
        req.client_id = Some(form_decode(id)?);
        req.client_secret = Some(form_decode(secret)?);
    }
    Ok(req)
}

/// Decodes one `application/x-www-form-urlencoded` value (`+` is a space).
fn form_decode(text: &str) -> Result<String, ApiError> {
    let plus_as_space = text.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| ApiError::bad_request("invalid Basic credentials"))
}

fn too_many_failures(state: &AppState, wait: std::time::Duration) -> ApiError {
    state.metrics.rate_limited(LimitedRoute::Token);
    ApiError::too_many_requests("too many failed attempts; retry later", wait)
}

/// Exchange client credentials for an access token (no bearer needed).
#[utoipa::path(post, path = "/v1/oauth/token", tag = "oauth",
    request_body(content(
        (TokenRequest = "application/x-www-form-urlencoded"),
        (TokenRequest = "application/json"))),
    responses((status = 200, body = TokenResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody,
            description = "`rate_limited`: too many failed attempts for this client or \
                address; see `Retry-After`")))]
pub async fn token(
    State(state): State<AppState>,
    // Absent when the router is served without connect info (unit tests).
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TokenResponse>, ApiError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            super::error::payload_too_large()
        } else {
            ApiError::bad_request("cannot read the request body")
        }
    })?;
    let req = parse_token_request(&headers, &body)?;
    if req.grant_type.as_deref() != Some("client_credentials") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type: only `client_credentials` is supported",
        ));
    }
    let client_id = req
        .client_id
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("client_id is missing"))?;
    let secret = Zeroizing::new(
        req.client_secret
            .clone()
            .ok_or_else(|| ApiError::bad_request("client_secret is missing"))?,
    );
    // Over the failure limit, the secret is not even checked: a right guess
    // looks like a wrong one.
    let addr = peer.map(|axum::Extension(ConnectInfo(a))| a.ip());
    if let Some(wait) = state.rate_limits.token_blocked(Some(client_id), addr) {
        let refusal = Refusal {
            key_id: is_client_id(client_id).then(|| client_id.to_owned()),
            reason: "too many failed attempts",
        };
        audit_failure(&state, "POST", "/v1/oauth/token", &refusal).await;
        return Err(too_many_failures(&state, wait));
    }
    let client = match state.platform.verify_client(client_id, &secret).await? {
        Ok(c) => c,
        Err(refusal) => {
            state.rate_limits.token_failed(Some(client_id), addr);
            audit_failure(&state, "POST", "/v1/oauth/token", &refusal).await;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client or wrong client secret",
            ));
        }
    };
    let scopes: Vec<String> = match &req.scope {
        Some(s) => s.split_whitespace().map(str::to_owned).collect(),
        None => client.scopes.clone(),
    };
    if scopes.is_empty() || scopes.iter().any(|s| !client.scopes.contains(s)) {
        let refusal = Refusal {
            key_id: Some(client.id.clone()),
            reason: "scope not allowed for client",
        };
        audit_failure(&state, "POST", "/v1/oauth/token", &refusal).await;
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "scope: the requested scopes are not all allowed for this client",
        ));
    }
    let token = state
        .platform
        .issue_token(&client, &scopes, state.token_ttl_secs)
        .await?;
    Ok(Json(TokenResponse {
        access_token: token.as_str().to_owned(),
        token_type: "Bearer",
        expires_in: state.token_ttl_secs,
        scope: scopes.join(" "),
    }))
}
