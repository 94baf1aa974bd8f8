//! The operator console: server-rendered pages under `/console/` for the
//! people who run Airlock — runs with their masked logs first.
//!
//! The pages are the API's data in HTML, through the same stores and the
//! same checks: a page asks [`super::steps::check`] for the scope its API
//! route needs, with the credential the session stands for
//! ([`session`]), so a `runs:read` key sees runs and nothing it may not.
//! Values shown are the stored ones, which were masked before they were
//! stored; askama escapes every one of them.
//!
//! No script runs on these pages (`script-src` is not even allowed by the
//! CSP), so nothing a step logs can become code in an operator's browser.

pub mod accounts;
pub mod chart;
pub mod clients;
pub mod keys;
pub mod overview;
pub mod pages;
pub mod session;
pub mod steps;
pub mod views;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::AppState;

/// The console's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(pages::home))
        .route(
            "/console/login",
            get(session::login_form).post(session::login),
        )
        .route("/console/logout", post(session::logout))
        .route("/console/assets/console.css", get(stylesheet))
        .route("/console/projects/{project}", get(overview::show))
        .route("/console/projects/{project}/runs", get(pages::runs))
        .route("/console/projects/{project}/runs/{id}", get(pages::run))
        .route("/console/projects/{project}/steps", get(steps::list))
        .route("/console/projects/{project}/steps/{step}", get(steps::show))
        .route(
            "/console/projects/{project}/steps/{step}/current",
            post(steps::make_current),
        )
        .route(
            "/console/projects/{project}/steps/{step}/delete",
            post(steps::delete),
        )
        .route(
            "/console/projects/{project}/keys",
            get(keys::list).post(keys::create),
        )
        .route(
            "/console/projects/{project}/keys/{id}/revoke",
            post(keys::revoke),
        )
        .route(
            "/console/projects/{project}/keys/{id}/rotate",
            post(keys::rotate),
        )
        .route(
            "/console/projects/{project}/clients",
            get(clients::list).post(clients::create),
        )
        .route(
            "/console/projects/{project}/clients/{id}/rotate",
            post(clients::rotate),
        )
        .route(
            "/console/projects/{project}/clients/{id}/delete",
            post(clients::delete),
        )
        .route("/console/projects/{project}/audit", get(keys::audit))
        .route("/console/projects/{project}/accounts", get(accounts::list))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        views::STYLESHEET,
    )
        .into_response()
}
