//! A project's overview: what happened over the last hour or day, as
//! totals and two charts ([`super::chart`]), for the scope `runs:read`.
//!
//! The chart reads at most [`MAX_POINTS`] runs (the newest), three small
//! columns each, so a busy project's page stays cheap; when the cap is
//! reached the page says the older part of the window is not drawn.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::chart::{self, Window};
use super::pages::refused;
use super::session::Operator;
use super::views::{self, Nav};
use crate::server::AppState;
use crate::server::error::{ApiError, ApiPath};
use crate::server::steps::check;
use crate::store::webhooks::now_ms;

/// The most runs one overview reads.
pub const MAX_POINTS: u32 = 50_000;

#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    window: Option<String>,
}

/// `GET /console/projects/{project}`: totals, runs per minute by outcome,
/// p50/p95 duration; `?window=day` for the last day.
pub async fn show(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(project): ApiPath<String>,
    query: Result<Query<OverviewQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let window = query
        .ok()
        .and_then(|Query(q)| Window::parse(q.window.as_deref()));
    let Some(window) = window else {
        return views::message(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "window: one of hour, day",
        );
    };
    if let Err(e) = check(&state, &operator.principal, "runs:read", &project, None).await {
        return refused(&e);
    }
    let now = now_ms();
    let since = now - window.span_ms();
    let points = match state.runs.points(&project, since, MAX_POINTS).await {
        Ok(p) => p,
        Err(e) => return refused(&ApiError::from(e)),
    };
    let capped = points.len() == MAX_POINTS as usize;
    let charts = chart::draw(&points, window, now);
    let runs = format!("/console/projects/{project}/runs");
    views::html(
        StatusCode::OK,
        &views::OverviewPage {
            nav: Nav::new(Some(&project), &operator),
            window: window.name(),
            here: format!("/console/projects/{project}"),
            runs,
            capped: capped.then_some(MAX_POINTS),
            width: chart::WIDTH,
            height: chart::HEIGHT,
            left: chart::LEFT,
            charts,
        },
    )
}
