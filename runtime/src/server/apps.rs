//! The app catalog: `GET /v1/apps` and `GET /v1/apps/{slug}`.
//!
//! What a client needs to connect an end user's account: each app's auth
//! kind, the credential fields to collect (and which are secret), its custom
//! fields with their patterns, and where the proxy may send requests for it.
//!
//! Any authenticated caller may read the catalog, with no particular scope
//! and whatever project it is restricted to: it is the same for every
//! project, it is the operator's published configuration (the built-in app
//! files ship in the source tree), and it holds no credential or value of
//! any account. Requiring a bearer still keeps an unauthenticated scanner
//! from learning which extra apps an operator defined.

use airlock_host_api::apps::App;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiPath, ErrorBody};
use super::params::AppPath;

/// A credential field an account of the app holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialFieldView {
    /// The key in `credentials` when storing an account (`access_token`, ...).
    pub name: String,
    pub required: bool,
    /// A key, token or password (mask it in forms) rather than an identifier
    /// such as `username`. Every field is encrypted at rest all the same.
    pub secret: bool,
}

/// A per-account value such as a subdomain, not secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomFieldView {
    pub name: String,
    /// The anchored regular expression every value must match.
    pub pattern: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// How the proxy may reach the app for an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectView {
    /// True when the app has a base URL (and its file does not turn the
    /// proxy off with `[connect] proxy_enabled = false`).
    pub proxy_enabled: bool,
    /// Hosts an account's credential may be sent to, as written in the app
    /// file: exact hosts, `*.` wildcards, `{{custom_fields.NAME}}` templates.
    pub allowed_domains: Vec<String>,
    /// The base URL as written, templates included
    /// (`https://{{custom_fields.subdomain}}.zendesk.com/api/v2`); absent
    /// when the app has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_proxy_target_url: Option<String>,
}

/// One app of the catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppView {
    pub slug: String,
    pub name: String,
    /// `api-key`, `bearer`, `basic`, `oauth2` or `custom`.
    pub auth: String,
    /// What `credentials` of a new account must (and may) hold.
    pub credential_fields: Vec<CredentialFieldView>,
    /// What `custom_fields` of a new account must hold.
    pub custom_fields: Vec<CustomFieldView>,
    pub connect: ConnectView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docs_url: Option<String>,
}

/// The catalog, in slug order.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppList {
    pub apps: Vec<AppView>,
}

impl From<&App> for AppView {
    fn from(app: &App) -> Self {
        Self {
            slug: app.slug.clone(),
            name: app.name.clone(),
            auth: app.auth.as_str().to_owned(),
            credential_fields: app
                .credential_fields()
                .into_iter()
                .map(|f| CredentialFieldView {
                    name: f.name.to_owned(),
                    required: f.required,
                    secret: f.secret,
                })
                .collect(),
            custom_fields: app
                .custom_fields
                .iter()
                .map(|f| CustomFieldView {
                    name: f.name.clone(),
                    pattern: f.pattern().to_owned(),
                    description: f.description.clone(),
                })
                .collect(),
            connect: ConnectView {
                proxy_enabled: app.proxy_enabled && app.base_url.is_some(),
                allowed_domains: app.allowed_domains.iter().map(|d| d.to_string()).collect(),
                base_proxy_target_url: app.base_url.as_ref().map(|t| t.source().to_owned()),
            },
            docs_url: app.docs_url.clone(),
        }
    }
}

/// The app catalog: built-in apps and the operator's `--apps-dir` (any
/// authenticated caller).
#[utoipa::path(get, path = "/v1/apps", tag = "apps", security(("bearer" = [])),
    responses((status = 200, body = AppList), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, _principal: Principal) -> Json<AppList> {
    Json(AppList {
        apps: state.pipeline.catalog().iter().map(AppView::from).collect(),
    })
}

/// One app of the catalog (any authenticated caller); 404 for an unknown slug.
#[utoipa::path(get, path = "/v1/apps/{slug}", tag = "apps", security(("bearer" = [])),
    params(AppPath),
    responses((status = 200, body = AppView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<AppView>, ApiError> {
    state
        .pipeline
        .catalog()
        .get(&slug)
        .map(|app| Json(AppView::from(app)))
        .ok_or_else(|| ApiError::not_found(format!("no app {}", shown(&slug))))
}

/// A caller-supplied slug for a message: at most 64 characters, quoted and
/// escaped.
pub(super) fn shown(slug: &str) -> String {
    let cut: String = slug.chars().take(64).collect();
    format!("{cut:?}")
}
