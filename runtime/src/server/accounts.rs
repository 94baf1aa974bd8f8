//! End users' connected accounts of a project:
//! `POST`/`GET /v1/projects/{project}/accounts` and
//! `GET`/`DELETE /v1/projects/{project}/accounts/{id}`.
//!
//! Why it is shaped this way:
//!
//! - **Credentials go in; they come out only when asked for twice.** A
//!   response holds `credentials` only with `?include_credentials=true` *and*
//!   a caller holding `accounts:credentials` (or `admin`). Reading metadata
//!   (`accounts:read`) is what a dashboard needs; reading tokens is what only
//!   the operator's own backend should, so it is its own scope. Asking
//!   without the scope is a 403 naming it rather than a silent omission, so
//!   a client cannot mistake a refusal for an account without credentials.
//!   Without the flag nothing is even decrypted.
//! - **Credentials are checked against the app before they are stored**, with
//!   the same check as `airlock accounts add`
//!   ([`App::check_credential_names`]): a missing or unknown field is a 400
//!   naming it, so a typo cannot store an account that fails on first use.
//! - **No value ever appears in an error or a log.** Credential values are
//!   read as raw JSON and converted here, because serde's own type errors
//!   quote the offending value (`invalid type: integer `1234``); every
//!   message names the field only. The store seals the credentials
//!   (AES-256-GCM under the master key) and logs ids only.
//! - **Accounts belong to a project**: another project's account, or a
//!   project the caller may not see, is a 404 like a missing one.

use std::collections::BTreeMap;

use airlock_host_api::apps::{App, AuthKind};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use zeroize::Zeroizing;

use super::AppState;
use super::apps::shown;
use super::auth::Principal;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::params::{AccountPath, ProjectPath};
use super::projects::visible_project;
use super::time::{Timestamp, instant};
use crate::store::NewAccount;
use crate::store::accounts::{self, AccountFilter, AccountMeta, AccountStatus, AccountStore};
use crate::store::credential_use::unused_since;

/// The scope that lets a caller read credentials back.
pub const CREDENTIALS_SCOPE: &str = "accounts:credentials";

/// The OAuth credential field that is stored as the account's `expires_at`.
const EXPIRES_AT: &str = "expires_at";

/// Body of `POST /v1/projects/{project}/accounts`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// The app's slug (`GET /v1/apps`).
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", example = "github")]
    pub app: String,
    /// The end user the account belongs to: 1 to 250 characters, no
    /// control characters.
    #[schema(
        min_length = 1,
        max_length = 250,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub external_user_id: String,
    /// The app's credential fields (`credential_fields` of `GET /v1/apps/{slug}`),
    /// as strings; stored encrypted. For `oauth2` apps, `expires_at` (unix
    /// seconds, a string or a number) becomes the account's `expires_at`.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub credentials: Value,
    /// The app's custom fields (e.g. `subdomain`), each matching its pattern.
    #[serde(default)]
    pub custom_fields: BTreeMap<String, String>,
}

impl std::fmt::Debug for CreateAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateAccount")
            .field("app", &self.app)
            .field("external_user_id", &self.external_user_id)
            .field("credentials", &"<redacted>")
            .field("custom_fields", &self.custom_fields)
            .finish()
    }
}

/// Whether an account's credentials can be used.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountHealth {
    Healthy,
    /// The provider refused a token refresh: the user must connect again.
    NeedsReauth,
}

impl From<AccountStatus> for AccountHealth {
    fn from(s: AccountStatus) -> Self {
        match s {
            AccountStatus::Healthy => AccountHealth::Healthy,
            AccountStatus::NeedsReauth => AccountHealth::NeedsReauth,
        }
    }
}

/// Credential fields by name, zeroed on drop.
type CredentialMap = BTreeMap<String, Zeroizing<String>>;

/// Decrypted credential fields; `Debug` shows names only, values are zeroed
/// on drop.
pub struct Credentials(CredentialMap);

impl Serialize for Credentials {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v.as_str())))
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A connected account. `credentials` only with `include_credentials=true`
/// and the `accounts:credentials` scope.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// `acc_` and 16 hex digits.
    pub id: String,
    pub app: String,
    pub external_user_id: String,
    pub custom_fields: BTreeMap<String, String>,
    pub health: AccountHealth,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the OAuth access token expires, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub credentials: Option<Credentials>,
    /// When a run or the proxy last used its credentials (recorded at most
    /// once a minute per node); only in listings; absent: never, or not
    /// since this was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
}

impl AccountView {
    fn new(meta: AccountMeta, credentials: Option<Credentials>) -> Self {
        Self {
            id: meta.id,
            app: meta.app,
            external_user_id: meta.external_user_id,
            custom_fields: meta.custom_fields,
            health: meta.status.into(),
            created_at: Timestamp::from_unix_secs(meta.created_at),
            updated_at: Timestamp::from_unix_secs(meta.updated_at),
            expires_at: meta.expires_at.map(Timestamp::from_unix_secs),
            credentials,
            last_used_at: None,
        }
    }
}

/// A project's accounts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub accounts: Vec<AccountView>,
}

/// Filters of `GET .../accounts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only accounts of this app.
    #[param(pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
    pub app: Option<String>,
    /// Only accounts of this end user.
    #[param(
        min_length = 1,
        max_length = 250,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub external_user_id: Option<String>,
    /// Return each account's credentials (needs `accounts:credentials`).
    pub include_credentials: Option<bool>,
    /// Only accounts whose credentials were not used at or after this
    /// instant (never used ones count): an RFC 3339 timestamp or Unix
    /// milliseconds.
    #[param(example = "2026-11-01T00:00:00Z")]
    pub unused_since: Option<String>,
}

/// Options of `GET .../accounts/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    /// Return the account's credentials (needs `accounts:credentials`).
    pub include_credentials: Option<bool>,
}

fn store(state: &AppState) -> AccountStore {
    AccountStore::new(&state.secrets)
}

/// `scope`, then `accounts:credentials` when credentials are asked for, then
/// the project: a refused scope answers the same for every project.
async fn check(
    state: &AppState,
    principal: &Principal,
    scope: &str,
    include_credentials: bool,
    project: &str,
) -> Result<(), ApiError> {
    principal.require(scope)?;
    if include_credentials {
        principal.require(CREDENTIALS_SCOPE)?;
    }
    visible_project(state, principal, project).await
}

fn no_account(id: &str) -> ApiError {
    ApiError::not_found(format!("no account {}", shown(id)))
}

/// The credentials of a request body, checked against `app`; for `oauth2`
/// apps also the `expires_at` they carried. Messages name fields, never values.
fn checked_credentials(app: &App, raw: Value) -> Result<(CredentialMap, Option<i64>), ApiError> {
    let map = match raw {
        Value::Null => serde_json::Map::new(),
        Value::Object(map) => map,
        _ => {
            return Err(ApiError::bad_request(
                "credentials: must be an object of field names to strings",
            ));
        }
    };
    let mut credentials = BTreeMap::new();
    let mut expires_at = None;
    for (name, value) in map {
        if app.auth == AuthKind::OAuth2 && name == EXPIRES_AT {
            let parsed = match &value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            };
            expires_at = Some(parsed.ok_or_else(|| {
                ApiError::bad_request("credentials.expires_at: must be unix seconds (an integer)")
            })?);
            continue;
        }
        match value {
            Value::String(v) => {
                credentials.insert(name, Zeroizing::new(v));
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "credentials.{}: must be a string",
                    field_name(&name)
                )));
            }
        }
    }
    let names = credentials
        .keys()
        .map(String::as_str)
        .chain(expires_at.map(|_| EXPIRES_AT));
    app.check_credential_names(names)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    for (name, value) in &credentials {
        if value.is_empty() {
            return Err(ApiError::bad_request(format!(
                "credentials.{name}: must not be empty"
            )));
        }
        // The host would refuse to insert it (header injection); say so now.
        if value.chars().any(char::is_control) {
            return Err(ApiError::bad_request(format!(
                "credentials.{name}: must not contain control characters"
            )));
        }
    }
    Ok((credentials, expires_at))
}

/// A caller-supplied field name for a message: at most 64 characters, escaped.
fn field_name(name: &str) -> String {
    name.chars().take(64).flat_map(char::escape_debug).collect()
}

/// Connect an account of an app for an end user (scope `accounts:write`);
/// the response never holds the credentials.
#[utoipa::path(post, path = "/v1/projects/{project}/accounts", tag = "accounts",
    security(("bearer" = [])),
    params(ProjectPath),
    request_body = CreateAccount,
    responses((status = 201, body = AccountView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(project): ApiPath<String>,
    ApiJson(body): ApiJson<CreateAccount>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    check(&state, &principal, "accounts:write", false, &project).await?;
    accounts::validate_external_user_id(&body.external_user_id).map_err(|_| {
        ApiError::bad_request(
            "external_user_id: must be 1 to 250 characters without control characters",
        )
    })?;
    let app = state.pipeline.catalog().get(&body.app).ok_or_else(|| {
        ApiError::bad_request(format!(
            "app: unknown app {}; GET /v1/apps lists the catalog",
            shown(&body.app)
        ))
    })?;
    app.validate_custom_fields(&body.custom_fields)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (credentials, expires_at) = checked_credentials(app, body.credentials)?;
    let account = store(&state)
        .create(
            &state.master_key,
            NewAccount {
                project,
                external_user_id: body.external_user_id,
                app: app.slug.clone(),
                credentials,
                custom_fields: body.custom_fields,
                expires_at,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(AccountView::new(account.meta, None)),
    ))
}

/// A project's accounts, newest first (scope `accounts:read`; credentials
/// only with `include_credentials=true` and `accounts:credentials`).
#[utoipa::path(get, path = "/v1/projects/{project}/accounts", tag = "accounts",
    security(("bearer" = [])),
    params(ProjectPath, ListParams),
    responses((status = 200, body = AccountList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(project): ApiPath<String>,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<AccountList>, ApiError> {
    principal.require("accounts:read")?;
    let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let include = params.include_credentials.unwrap_or(false);
    check(&state, &principal, "accounts:read", include, &project).await?;
    if let Some(user) = &params.external_user_id {
        accounts::validate_external_user_id(user).map_err(|_| {
            ApiError::bad_request(
                "external_user_id: must be 1 to 250 characters without control characters",
            )
        })?;
    }
    let since = params
        .unused_since
        .as_deref()
        .map(|t| instant("unused_since", t).map(|ms| ms.div_euclid(1000)))
        .transpose()?;
    let store = store(&state);
    let metas = store
        .list(
            &project,
            &AccountFilter {
                app: params.app,
                external_user_id: params.external_user_id,
            },
        )
        .await?;
    // Read before any credential below is revealed, which is a use too.
    let ids: Vec<String> = metas.iter().map(|m| m.id.clone()).collect();
    let used = store.last_used(&ids).await?;
    let mut views = Vec::with_capacity(metas.len());
    for meta in metas {
        let at = used.get(&meta.id).copied();
        if since.is_some_and(|since| !unused_since(at, since)) {
            continue;
        }
        let mut view = if include {
            // Deleted since the listing: leave it out.
            match store.get(&state.master_key, &project, &meta.id).await? {
                Some(account) => revealed(&principal, account),
                None => continue,
            }
        } else {
            AccountView::new(meta, None)
        };
        view.last_used_at = at.map(Timestamp::from_unix_secs);
        views.push(view);
    }
    Ok(Json(AccountList { accounts: views }))
}

/// The view of `account` with its credentials, logged (ids only).
fn revealed(principal: &Principal, account: crate::store::Account) -> AccountView {
    tracing::info!(
        project = %account.meta.project,
        account_id = %account.meta.id,
        caller = %principal.0.id,
        "account credentials returned to the caller"
    );
    AccountView::new(account.meta, Some(Credentials(account.credentials)))
}

/// One account (scope `accounts:read`; credentials only with
/// `include_credentials=true` and `accounts:credentials`).
#[utoipa::path(get, path = "/v1/projects/{project}/accounts/{id}", tag = "accounts",
    security(("bearer" = [])),
    params(AccountPath, GetParams),
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, id)): ApiPath<(String, String)>,
    query: Result<Query<GetParams>, QueryRejection>,
) -> Result<Json<AccountView>, ApiError> {
    principal.require("accounts:read")?;
    let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let include = params.include_credentials.unwrap_or(false);
    check(&state, &principal, "accounts:read", include, &project).await?;
    let store = store(&state);
    let view = if include {
        let account = store
            .get(&state.master_key, &project, &id)
            .await?
            .ok_or_else(|| no_account(&id))?;
        revealed(&principal, account)
    } else {
        let meta = store
            .get_meta(&project, &id)
            .await?
            .ok_or_else(|| no_account(&id))?;
        AccountView::new(meta, None)
    };
    Ok(Json(view))
}

/// Delete an account and its credentials (scope `accounts:write`).
#[utoipa::path(delete, path = "/v1/projects/{project}/accounts/{id}", tag = "accounts",
    security(("bearer" = [])),
    params(AccountPath),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    check(&state, &principal, "accounts:write", false, &project).await?;
    if store(&state).delete(&project, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_account(&id))
    }
}
