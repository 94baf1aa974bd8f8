//! `POST /v1/projects/{project}/connect/tokens` and `GET`/`DELETE
//! …/connect/tokens/{id}` (scope `accounts:write`): the operator's backend
//! asks for a link to send one end user to.
//!
//! Why the checks are strict: a connect token decides where a browser is
//! sent after the user signs in (`success_redirect_uri`,
//! `error_redirect_uri`) and who may frame the page (`allowed_origins`).
//! Each redirect must be https (plain http only to loopback, for local
//! development) and on one of the token's allowed origins, so a token
//! cannot become an open redirector; origins are bare origins. The token
//! itself is returned once and stored hashed; `GET` names it by id only.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use url::Url;
use utoipa::{IntoParams, ToSchema};

use super::super::AppState;
use super::super::apps::shown;
use super::super::auth::Principal;
use super::super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::super::params::ProjectPath;
use super::super::projects::visible_project;
use super::super::time::Timestamp;
use crate::connect::WEBHOOK_SECRET_NAME;
use crate::store::accounts::validate_external_user_id;
use crate::store::connect::{ConnectTokenRow, NewConnectToken, TokenStatus};

/// Shortest and longest token lifetime, and the default, in seconds.
pub const MIN_EXPIRES_IN: i64 = 60;
pub const MAX_EXPIRES_IN: i64 = 14_400;
pub const DEFAULT_EXPIRES_IN: i64 = 1800;
/// At most this many apps and origins per token.
const MAX_LIST: usize = 100;
/// Longest URI accepted.
const MAX_URI_LEN: usize = 2048;

/// `/v1/projects/{project}/connect/tokens/{id}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenPath {
    /// A project name.
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", example = "alpha")]
    pub project: String,
    /// A connect token id.
    #[param(pattern = "^ct_[0-9a-f]{16}$")]
    pub id: String,
}

/// Body of `POST …/connect/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnectToken {
    /// The end user the account will belong to.
    #[schema(
        min_length = 1,
        max_length = 250,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub external_user_id: String,
    /// Apps the page offers (slugs); all usable apps when absent.
    pub apps: Option<Vec<String>>,
    /// Where the browser goes after an account is stored
    /// (`?account_id=…&app=…` is added); on `allowed_origins`.
    pub success_redirect_uri: Option<String>,
    /// Where the browser goes after a failure (`?error=<code>` is added);
    /// on `allowed_origins`.
    pub error_redirect_uri: Option<String>,
    /// Where signed `account.*` events are posted (needs the project secret
    /// `oauth.connect.webhook_secret`).
    pub webhook_uri: Option<String>,
    /// Origins (`https://app.example.com`) that may frame the page and
    /// receive the redirects.
    pub allowed_origins: Option<Vec<String>>,
    /// Lifetime, 60 to 14400 seconds (default 1800).
    #[schema(minimum = 60, maximum = 14400)]
    pub expires_in_secs: Option<i64>,
    /// Reconnect this account: its credentials are replaced in place.
    #[schema(pattern = "^acc_[0-9a-f]{16}$")]
    pub account_id: Option<String>,
}

/// A new token: `token` is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedConnectToken {
    /// `ct_` and 16 hex digits.
    pub id: String,
    /// The secret of the link; shown once.
    pub token: String,
    pub expires_at: Timestamp,
    /// `{public_url}/connect/{token}`: send the end user here.
    pub connect_link_url: String,
}

/// Where a token stands.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectTokenStatus {
    Pending,
    Used,
    Expired,
}

/// A token, never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectTokenView {
    pub id: String,
    pub external_user_id: String,
    pub status: ConnectTokenStatus,
    /// The account it stored (`used`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The account it reconnects, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnect_account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<String>>,
    pub flows_started: i64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_at: Option<Timestamp>,
}

impl From<ConnectTokenRow> for ConnectTokenView {
    fn from(t: ConnectTokenRow) -> Self {
        let status = match t.status(crate::store::unix_now()) {
            TokenStatus::Pending => ConnectTokenStatus::Pending,
            TokenStatus::Used => ConnectTokenStatus::Used,
            TokenStatus::Expired => ConnectTokenStatus::Expired,
        };
        Self {
            status,
            account_id: t.used_account_id,
            reconnect_account_id: t.account_id,
            apps: t.apps,
            flows_started: t.flows_started,
            created_at: Timestamp::from_unix_secs(t.created_at),
            expires_at: Timestamp::from_unix_secs(t.expires_at),
            used_at: t.used_at.map(Timestamp::from_unix_secs),
            external_user_id: t.external_user_id,
            id: t.id,
        }
    }
}

/// Whether `url` may receive a browser or a webhook: https, or http to a
/// loopback host.
fn secure_or_loopback(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

fn check_uri(field: &str, text: &str) -> Result<Url, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("{field}: {why}"));
    if text.len() > MAX_URI_LEN {
        return Err(bad("must be at most 2048 characters"));
    }
    let url = Url::parse(text).map_err(|_| bad("must be an absolute URL"))?;
    if !secure_or_loopback(&url) {
        return Err(bad(
            "must be https:// (http:// only to localhost or a loopback address)",
        ));
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not have a fragment or credentials"));
    }
    Ok(url)
}

fn check_origins(raw: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let raw = raw.unwrap_or_default();
    if raw.len() > MAX_LIST {
        return Err(ApiError::bad_request(
            "allowed_origins: at most 100 origins",
        ));
    }
    let mut origins = Vec::new();
    for (i, text) in raw.iter().enumerate() {
        let field = format!("allowed_origins[{i}]");
        let url = check_uri(&field, text)?;
        if url.path() != "/" || url.query().is_some() {
            return Err(ApiError::bad_request(format!(
                "{field}: must be an origin (scheme, host and port only, like https://app.example.com)"
            )));
        }
        let origin = url.origin().ascii_serialization();
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

fn check_redirect(
    field: &str,
    text: Option<String>,
    origins: &[String],
) -> Result<Option<String>, ApiError> {
    let Some(text) = text else { return Ok(None) };
    let url = check_uri(field, &text)?;
    let origin = url.origin().ascii_serialization();
    if !origins.contains(&origin) {
        return Err(ApiError::bad_request(format!(
            "{field}: its origin {origin} is not in allowed_origins"
        )));
    }
    Ok(Some(url.into()))
}

/// Issue a connect token for one end user (scope `accounts:write`).
#[utoipa::path(post, path = "/v1/projects/{project}/connect/tokens", tag = "connect",
    security(("bearer" = [])),
    params(ProjectPath),
    request_body = CreateConnectToken,
    responses((status = 201, body = CreatedConnectToken), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(project): ApiPath<String>,
    ApiJson(body): ApiJson<CreateConnectToken>,
) -> Result<(StatusCode, Json<CreatedConnectToken>), ApiError> {
    principal.require("accounts:write")?;
    visible_project(&state, &principal, &project).await?;
    let connect = super::service(&state)?;
    validate_external_user_id(&body.external_user_id).map_err(|_| {
        ApiError::bad_request(
            "external_user_id: must be 1 to 250 characters without control characters",
        )
    })?;
    let catalog = state.pipeline.catalog();
    let mut apps = match body.apps {
        None => None,
        Some(list) => {
            if list.is_empty() || list.len() > MAX_LIST {
                return Err(ApiError::bad_request("apps: 1 to 100 app slugs"));
            }
            let mut seen = BTreeSet::new();
            for slug in &list {
                if catalog.get(slug).is_none() {
                    return Err(ApiError::bad_request(format!(
                        "apps: unknown app {}; GET /v1/apps lists the catalog",
                        shown(slug)
                    )));
                }
                seen.insert(slug.clone());
            }
            Some(seen.into_iter().collect::<Vec<_>>())
        }
    };
    let expires_in = body.expires_in_secs.unwrap_or(DEFAULT_EXPIRES_IN);
    if !(MIN_EXPIRES_IN..=MAX_EXPIRES_IN).contains(&expires_in) {
        return Err(ApiError::bad_request(
            "expires_in_secs: must be 60 to 14400 seconds",
        ));
    }
    let origins = check_origins(body.allowed_origins)?;
    let success = check_redirect("success_redirect_uri", body.success_redirect_uri, &origins)?;
    let error = check_redirect("error_redirect_uri", body.error_redirect_uri, &origins)?;
    let webhook = match body.webhook_uri {
        None => None,
        Some(text) => {
            let url = check_uri("webhook_uri", &text)?;
            if state
                .secrets
                .get(&state.master_key, &project, WEBHOOK_SECRET_NAME)
                .await?
                .is_none()
            {
                return Err(ApiError::bad_request(format!(
                    "webhook_uri: set the project secret {WEBHOOK_SECRET_NAME} first; \
                     it signs every webhook (PUT /v1/projects/{project}/secrets/{WEBHOOK_SECRET_NAME})"
                )));
            }
            Some(String::from(url))
        }
    };
    if let Some(id) = &body.account_id {
        let account = connect
            .accounts
            .get_meta(&project, id)
            .await?
            .filter(|a| a.external_user_id == body.external_user_id)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "account_id: no account {} of this external user",
                    shown(id)
                ))
            })?;
        if apps
            .as_ref()
            .is_some_and(|a| a.as_slice() != std::slice::from_ref(&account.app))
        {
            return Err(ApiError::bad_request(format!(
                "apps: a reconnect offers the account's own app only ({})",
                account.app
            )));
        }
        apps = Some(vec![account.app]);
    }
    let issued = connect
        .store
        .issue(NewConnectToken {
            project,
            external_user_id: body.external_user_id,
            apps,
            success_redirect_uri: success,
            error_redirect_uri: error,
            webhook_uri: webhook,
            allowed_origins: origins,
            account_id: body.account_id,
            expires_in_secs: expires_in,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedConnectToken {
            connect_link_url: connect.url(&format!("/connect/{}", issued.token.as_str())),
            id: issued.row.id,
            token: issued.token.to_string(),
            expires_at: Timestamp::from_unix_secs(issued.row.expires_at),
        }),
    ))
}

fn no_token(id: &str) -> ApiError {
    ApiError::not_found(format!("no connect token {}", shown(id)))
}

/// A connect token's status (scope `accounts:write`); never the token.
#[utoipa::path(get, path = "/v1/projects/{project}/connect/tokens/{id}", tag = "connect",
    security(("bearer" = [])),
    params(TokenPath),
    responses((status = 200, body = ConnectTokenView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, id)): ApiPath<(String, String)>,
) -> Result<Json<ConnectTokenView>, ApiError> {
    principal.require("accounts:write")?;
    visible_project(&state, &principal, &project).await?;
    let connect = super::service(&state)?;
    let token = connect
        .store
        .get(&project, &id)
        .await?
        .ok_or_else(|| no_token(&id))?;
    Ok(Json(token.into()))
}

/// Revoke a connect token (scope `accounts:write`): its link and any flow
/// it started stop working at once.
#[utoipa::path(delete, path = "/v1/projects/{project}/connect/tokens/{id}", tag = "connect",
    security(("bearer" = [])),
    params(TokenPath),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    principal.require("accounts:write")?;
    visible_project(&state, &principal, &project).await?;
    let connect = super::service(&state)?;
    if connect.store.delete(&project, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_token(&id))
    }
}
