//! API keys and the audit of failed authentications in the console, for
//! admins: list, create (the key shown once, on the answer page only),
//! revoke; and the newest failed sign-ins and API calls.
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
use super::views::{self, Nav};
use crate::server::AppState;
use crate::server::error::{ApiJson, ApiPath};
use crate::server::keys::{self, CreateCredential};
use crate::store::platform::SCOPES;

/// The form fields of a POST body (`scopes` may repeat).
fn fields(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn keys_page(
    state: &AppState,
    operator: &Operator,
    project: &str,
    created: Option<(String, String)>,
) -> Response {
    let Json(list) = match keys::list(State(state.clone()), operator.principal.clone()).await {
        Ok(l) => l,
        Err(e) => return refused(&e),
    };
    let page = views::KeysPage {
        nav: Nav::new(Some(project), operator),
        action: format!("/console/projects/{project}/keys"),
        project: project.to_owned(),
        keys: list
            .keys
            .into_iter()
            .map(|k| views::KeyRow {
                revoke: format!("/console/projects/{project}/keys/{}/revoke", k.id),
                id: k.id,
                name: k.name,
                scopes: k.scopes.join(" "),
                project: k.project.unwrap_or_else(|| "every project".to_owned()),
                created: k.created_at.to_string(),
            })
            .collect(),
        scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        created,
    };
    let status = if page.created.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    views::html(status, &page)
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
    let form = fields(&body);
    if !check_post(&state, &headers, &operator, field(&form, "csrf")) {
        return forbidden();
    }
    let request = CreateCredential {
        name: field(&form, "name").unwrap_or("").trim().to_owned(),
        scopes: form
            .iter()
            .filter(|(k, _)| k == "scopes")
            .map(|(_, v)| v.clone())
            .collect(),
        project: Some(project.clone()),
    };
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
            let shown = (created.meta.name, created.key);
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
    let form = fields(&body);
    if !check_post(&state, &headers, &operator, field(&form, "csrf")) {
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
