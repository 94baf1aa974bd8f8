//! Steps in the console: the project's steps, and one step with its
//! versions, current manifest and triggers (full URLs and signature
//! settings), where an operator makes an older version current or deletes
//! the step.
//!
//! Every page and action calls the API's own handler for it
//! ([`crate::server::steps`], [`crate::server::triggers`]) with the
//! session's credential, so the checks, the log lines and the caches'
//! invalidation are the API's, not a second copy.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::{Form, extract::rejection::FormRejection};
use serde::Deserialize;

use super::pages::refused;
use super::session::{Operator, check_post, forbidden};
use super::views::{self, Nav};
use crate::server::AppState;
use crate::server::error::{ApiJson, ApiPath};
use crate::server::steps::{self, SetCurrentBody};
use crate::server::triggers;

/// `GET /console/projects/{project}/steps` (scope `steps:read`).
pub async fn list(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(project): ApiPath<String>,
) -> Response {
    let principal = operator.principal.clone();
    let listed = steps::list(State(state), principal, ApiPath(project.clone())).await;
    let Json(list) = match listed {
        Ok(l) => l,
        Err(e) => return refused(&e),
    };
    let rows = list
        .steps
        .into_iter()
        .map(|s| views::StepRow {
            href: format!("/console/projects/{project}/steps/{}", s.step),
            step: s.step,
            digest: s.current_digest,
            updated: s.updated_at.to_string(),
        })
        .collect();
    views::html(
        StatusCode::OK,
        &views::StepsPage {
            nav: Nav::new(Some(&project), &operator),
            steps: rows,
        },
    )
}

/// `GET /console/projects/{project}/steps/{step}` (scope `steps:read`).
pub async fn show(
    State(state): State<AppState>,
    operator: Operator,
    headers: HeaderMap,
    ApiPath((project, step)): ApiPath<(String, String)>,
) -> Response {
    let principal = operator.principal.clone();
    let detail = steps::get(
        State(state.clone()),
        principal.clone(),
        ApiPath((project.clone(), step.clone())),
    )
    .await;
    let Json(detail) = match detail {
        Ok(d) => d,
        Err(e) => return refused(&e),
    };
    let Json(list) = match triggers::list(
        State(state.clone()),
        principal,
        ApiPath((project.clone(), step.clone())),
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return refused(&e),
    };
    let origin = super::session::our_origin(&headers, &state);
    let page = views::StepPage {
        nav: Nav::new(Some(&project), &operator),
        action: format!("/console/projects/{project}/steps/{step}"),
        step: detail.step,
        current_digest: detail.current_digest,
        manifest: detail.manifest,
        versions: detail
            .versions
            .into_iter()
            .map(|v| views::VersionRow {
                digest: v.digest,
                created: v.created_at.to_string(),
                current: v.current,
            })
            .collect(),
        triggers: list
            .triggers
            .into_iter()
            .map(|t| views::TriggerRow {
                url: format!("{origin}{}", t.url),
                signature: t
                    .signature
                    .as_ref()
                    .and_then(|s| serde_json::to_string(s).ok())
                    .unwrap_or_else(|| "unsigned".to_owned()),
                pinned: t.digest.unwrap_or_default(),
                queued: t.queued,
                nostore: t.nostore,
                created: t.created_at.to_string(),
            })
            .collect(),
    };
    views::html(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct CurrentForm {
    digest: String,
    csrf: Option<String>,
}

/// `POST …/steps/{step}/current`: make a stored version current (scope
/// `steps:write`), then back to the step.
pub async fn make_current(
    State(state): State<AppState>,
    operator: Operator,
    headers: HeaderMap,
    ApiPath((project, step)): ApiPath<(String, String)>,
    form: Result<Form<CurrentForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return forbidden();
    };
    if !check_post(&state, &headers, &operator, form.csrf.as_deref()) {
        return forbidden();
    }
    let done = steps::set_current(
        State(state),
        operator.principal,
        ApiPath((project.clone(), step.clone())),
        ApiJson(SetCurrentBody {
            digest: form.digest,
        }),
    )
    .await;
    match done {
        Ok(_) => Redirect::to(&format!("/console/projects/{project}/steps/{step}")).into_response(),
        Err(e) => refused(&e),
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: Option<String>,
}

/// `POST …/steps/{step}/delete`: delete the step, its versions and its
/// triggers (scope `steps:write`); its runs stay.
pub async fn delete(
    State(state): State<AppState>,
    operator: Operator,
    headers: HeaderMap,
    ApiPath((project, step)): ApiPath<(String, String)>,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    let csrf = form.ok().and_then(|Form(f)| f.csrf);
    if !check_post(&state, &headers, &operator, csrf.as_deref()) {
        return forbidden();
    }
    match steps::delete(
        State(state),
        operator.principal,
        ApiPath((project.clone(), step)),
    )
    .await
    {
        Ok(_) => Redirect::to(&format!("/console/projects/{project}/steps")).into_response(),
        Err(e) => refused(&e),
    }
}
