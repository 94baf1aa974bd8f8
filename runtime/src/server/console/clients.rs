//! OAuth clients in the console, for admins: list, create (the secret
//! shown once), rotate the secret (the old one and every token issued to
//! the client stop working), delete. The page is the API keys' page shape
//! ([`super::keys`]), and the work is the API's own handlers'
//! ([`crate::server::oauth_clients`]) with the session's credential.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse as _, Redirect, Response};

use super::keys::{checked_form, new_credential, render, row};
use super::pages::refused;
use super::session::{Operator, forbidden};
use super::views::{CredentialsPage, Nav, Shown, ShownLine};
use crate::server::AppState;
use crate::server::error::{ApiJson, ApiPath};
use crate::server::keys::KeyView;
use crate::server::oauth_clients::{self, ClientView};
use crate::store::platform::SCOPES;

fn as_meta(c: ClientView) -> KeyView {
    KeyView {
        id: c.client_id,
        name: c.name,
        scopes: c.scopes,
        project: c.project,
        created_at: c.created_at,
        expires_at: c.expires_at,
        last_used_at: c.last_used_at,
    }
}

fn shown_secret(heading: String, client_id: String, secret: String) -> Shown {
    Shown {
        heading,
        lines: vec![
            ShownLine {
                label: "Client id",
                html_id: "new-client-id",
                value: client_id,
            },
            ShownLine {
                label: "Client secret",
                html_id: "new-client-secret",
                value: secret,
            },
        ],
    }
}

async fn clients_page(
    state: &AppState,
    operator: &Operator,
    project: &str,
    shown: Option<Shown>,
) -> Response {
    let listed = oauth_clients::list_clients(state, &operator.principal, None).await;
    let Json(list) = match listed {
        Ok(l) => l,
        Err(e) => return refused(&e),
    };
    let base = format!("/console/projects/{project}/clients");
    render(CredentialsPage {
        nav: Nav::new(Some(project), operator),
        title: "OAuth clients",
        noun: "client",
        revoke_label: "Delete",
        rotate_help: "Rotate gives a client a new secret: the old secret and every token \
                      issued to the client stop working at once.",
        rows: list
            .clients
            .into_iter()
            .map(|c| row(&base, "rotate", "delete", as_meta(c)))
            .collect(),
        action: base,
        project: project.to_owned(),
        scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        shown,
    })
}

/// `GET /console/projects/{project}/clients` (scope `admin`).
pub async fn list(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(project): ApiPath<String>,
) -> Response {
    clients_page(&state, &operator, &project, None).await
}

/// `POST /console/projects/{project}/clients`: a client restricted to the
/// project; its secret is shown once, on the answer.
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
    let created = oauth_clients::create(
        State(state.clone()),
        operator.principal.clone(),
        ApiJson(new_credential(&form, &project)),
    )
    .await;
    match created {
        Ok((_, Json(c))) => {
            tracing::info!(client_id = %c.client_id, by = %operator.principal.0.id,
                "OAuth client created in the console");
            let shown = shown_secret(
                format!("Client {} created.", c.name),
                c.client_id,
                c.client_secret,
            );
            clients_page(&state, &operator, &project, Some(shown)).await
        }
        Err(e) => refused(&e),
    }
}

/// `POST /console/projects/{project}/clients/{id}/rotate`.
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
    let rotated = oauth_clients::rotate_secret(
        State(state.clone()),
        operator.principal.clone(),
        ApiPath(id),
    )
    .await;
    match rotated {
        Ok(Json(r)) => {
            tracing::info!(client_id = %r.client_id, by = %operator.principal.0.id,
                "OAuth client secret rotated in the console");
            let shown = shown_secret(
                "Secret rotated: the old secret and its tokens no longer work.".to_owned(),
                r.client_id,
                r.client_secret,
            );
            clients_page(&state, &operator, &project, Some(shown)).await
        }
        Err(e) => refused(&e),
    }
}

/// `POST /console/projects/{project}/clients/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    operator: Operator,
    headers: HeaderMap,
    ApiPath((project, id)): ApiPath<(String, String)>,
    body: Bytes,
) -> Response {
    if checked_form(&state, &headers, &operator, &body).is_none() {
        return forbidden();
    }
    match oauth_clients::delete(State(state), operator.principal, ApiPath(id)).await {
        Ok(_) => Redirect::to(&format!("/console/projects/{project}/clients")).into_response(),
        Err(e) => refused(&e),
    }
}
