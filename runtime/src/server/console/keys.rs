//! API keys and the audit of failed authentications in the console, for
//! admins: list, create (the key shown once, on the answer page only),
//! rotate (the new key shown once), revoke; and the newest failed sign-ins
//! and API calls. [`super::clients`] does the same for OAuth clients, on
//! the same page shape.
//!
//! As with every console page, the API's own handlers do the work
//! ([`crate::server::keys`], [`crate::server::audit`]) with the session's
//! credential: a key without `admin` gets the API's 403 here too.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Redirect, Response};

use super::pages::refused;
use super::session::{Operator, check_post, forbidden};
use super::views::{self, CredentialRow, CredentialsPage, Nav, Shown, ShownLine};
use crate::server::AppState;
use crate::server::error::{ApiJson, ApiPath};
use crate::server::keys::{self, CreateCredential, KeyView};
use crate::store::platform::SCOPES;

/// The form fields of a POST body (`scopes` may repeat).
pub(super) fn fields(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

pub(super) fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A POST's form, or `None` when its CSRF token or origin is wrong.
pub(super) fn checked_form(
    state: &AppState,
    headers: &HeaderMap,
    operator: &Operator,
    body: &[u8],
) -> Option<Vec<(String, String)>> {
    let form = fields(body);
    check_post(state, headers, operator, field(&form, "csrf")).then_some(form)
}

/// A create form as the API's request body, restricted to `project`.
pub(super) fn new_credential(form: &[(String, String)], project: &str) -> CreateCredential {
    CreateCredential {
        name: field(form, "name").unwrap_or("").trim().to_owned(),
        scopes: form
            .iter()
            .filter(|(k, _)| k == "scopes")
            .map(|(_, v)| v.clone())
            .collect(),
        project: Some(project.to_owned()),
        expires_at: None,
    }
}

/// The page's row for a credential's metadata, with its action URLs under
/// `base` (`/console/projects/{p}/keys` or `…/clients`).
pub(super) fn row(base: &str, rotate: &str, revoke: &str, meta: KeyView) -> CredentialRow {
    CredentialRow {
        rotate: format!("{base}/{}/{rotate}", meta.id),
        revoke: format!("{base}/{}/{revoke}", meta.id),
        id: meta.id,
        name: meta.name,
        scopes: meta.scopes.join(" "),
        project: meta.project.unwrap_or_else(|| "every project".to_owned()),
        created: meta.created_at.to_string(),
        last_used: meta
            .last_used_at
            .map_or_else(|| "never".to_owned(), |t| t.to_string()),
        expires: meta
            .expires_at
            .map_or_else(|| "never".to_owned(), |t| t.to_string()),
    }
}

/// Renders a credentials page: 201 when it shows a new credential, 200
/// otherwise.
pub(super) fn render(page: CredentialsPage) -> Response {
    let status = if page.shown.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    views::html(status, &page)
}

async fn keys_page(
    state: &AppState,
    operator: &Operator,
    project: &str,
    shown: Option<Shown>,
) -> Response {
    let Json(list) = match keys::list_keys(state, &operator.principal, None).await {
        Ok(l) => l,
        Err(e) => return refused(&e),
    };
    let base = format!("/console/projects/{project}/keys");
    render(CredentialsPage {
        nav: Nav::new(Some(project), operator),
        title: "API keys",
        noun: "key",
        revoke_label: "Revoke",
        rotate_help: "Rotate gives a key a new secret: the old key stops working at once, \
                      and so do the console sessions signed in with it.",
        rows: list
            .keys
            .into_iter()
            .map(|k| row(&base, "rotate", "revoke", k))
            .collect(),
        action: base,
        project: project.to_owned(),
        scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        shown,
    })
}

fn shown_key(heading: String, key: String) -> Shown {
    Shown {
        heading,
        lines: vec![ShownLine {
            label: "Key",
            html_id: "new-key",
            value: key,
        }],
    }
}

/// `GET /console/projects/{project}/keys` (scope `admin`).
pub async fn list(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(project): ApiPath<String>,
) -> Response {
    keys_page(&state, &operator, &project, None).await
}

/// `POST /console/projects/{project}/keys`: create a key restricted to
/// the project; the page that answers shows it, once.
pub async fn create(
    State(state): State<AppState>,
    operator: Operator,
    headers: HeaderMap,
    ApiPath(project): ApiPath<String>,
    body: Bytes,
) -> Response {
    let Some(form) = checked_form(&state, &headers, &operator, &body) else {
        return forbidden();
    };
    let request = new_credential(&form, &project);
    let created = keys::create(
        State(state.clone()),
        operator.principal.clone(),
        ApiJson(request),
    )
    .await;
    match created {
        Ok((_, Json(created))) => {
            tracing::info!(key_id = %created.meta.id, by = %operator.principal.0.id,
                "API key created in the console");
            let shown = shown_key(format!("Key {} created.", created.meta.name), created.key);
            keys_page(&state, &operator, &project, Some(shown)).await
        }
        Err(e) => refused(&e),
    }
}

/// `POST /console/projects/{project}/keys/{id}/rotate`: a new secret for
/// the key, shown once. Rotating the session's own key ends the session
/// (the next page asks to sign in with the new key).
pub async fn rotate(
    State(state): State<AppState>,
    operator: Operator,
    headers: HeaderMap,
    ApiPath((project, id)): ApiPath<(String, String)>,
    body: Bytes,
) -> Response {
    if checked_form(&state, &headers, &operator, &body).is_none() {
        return forbidden();
    }
    let rotated = keys::rotate(
        State(state.clone()),
        operator.principal.clone(),
        ApiPath(id),
    )
    .await;
    match rotated {
        Ok(Json(rotated)) => {
            tracing::info!(key_id = %rotated.meta.id, by = %operator.principal.0.id,
                "API key rotated in the console");
            let shown = shown_key(
                format!(
                    "Key {} rotated: its old secret no longer works.",
                    rotated.meta.name
                ),
                rotated.key,
            );
            keys_page(&state, &operator, &project, Some(shown)).await
        }
        Err(e) => refused(&e),
    }
}

/// `POST /console/projects/{project}/keys/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    operator: Operator,
    headers: HeaderMap,
    ApiPath((project, id)): ApiPath<(String, String)>,
    body: Bytes,
) -> Response {
    if checked_form(&state, &headers, &operator, &body).is_none() {
        return forbidden();
    }
    match keys::delete(State(state), operator.principal, ApiPath(id)).await {
        Ok(_) => Redirect::to(&format!("/console/projects/{project}/keys")).into_response(),
        Err(e) => refused(&e),
    }
}

/// `GET /console/projects/{project}/audit`: failed authentications, newest
/// first (an admin not restricted to a project, as over the API).
pub async fn audit(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(project): ApiPath<String>,
) -> Response {
    let listed = crate::server::audit::list(State(state.clone()), operator.principal.clone()).await;
    let Json(list) = match listed {
        Ok(l) => l,
        Err(e) => return refused(&e),
    };
    views::html(
        StatusCode::OK,
        &views::AuditPage {
            nav: Nav::new(Some(&project), &operator),
            entries: list
                .entries
                .into_iter()
                .map(|e| views::AuditRow {
                    at: e.at.to_string(),
                    method: e.method,
                    route: e.route,
                    key_id: e.key_id.unwrap_or_default(),
                    reason: e.reason,
                })
                .collect(),
        },
    )
}
