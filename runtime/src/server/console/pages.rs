//! The console's pages: the project list, a project's runs, one run.
//!
//! Each page makes the same check as the API route that returns its data
//! (scope and project through [`check`]), so what an operator sees here is
//! exactly what their key may read over the API.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use super::session::Operator;
use super::views::{self, LogRow, RunRow, RunsPage};
use crate::server::AppState;
use crate::server::error::{ApiError, ApiPath};
use crate::server::run_logs::{is_final, lines_so_far};
use crate::server::steps::check;
use crate::server::time::Timestamp;
use crate::store::live_logs::LiveLogStore;
use crate::store::runs::{RunFilter, RunRecord};

/// Seconds between reloads of a queued or running run's page.
const FOLLOW_SECS: u32 = 2;

/// Runs on one page of the list.
const PAGE_SIZE: u32 = 50;

/// An API refusal as a page: the same status, the same words.
pub(super) fn refused(e: &ApiError) -> Response {
    let heading = match e.status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::BAD_REQUEST => "Bad request",
        s if s.is_server_error() => "Unavailable",
        _ => "Refused",
    };
    views::message(e.status, heading, &e.message)
}

/// `GET /console/`: a key restricted to one project goes straight to it;
/// a global one picks from every project.
pub async fn home(State(state): State<AppState>, operator: Operator) -> Response {
    if let Some(project) = &operator.principal.0.project {
        return Redirect::to(&format!("/console/projects/{project}")).into_response();
    }
    let projects = match state.platform.list_projects().await {
        Ok(p) => p.into_iter().map(|p| p.name).collect(),
        Err(e) => return refused(&ApiError::from(e)),
    };
    views::html(
        StatusCode::OK,
        &views::ProjectsPage {
            nav: views::Nav::new(None, &operator),
            projects,
        },
    )
}

/// Filters and paging of the runs list.
#[derive(Debug, Default, Deserialize)]
pub struct RunsQuery {
    step: Option<String>,
    status: Option<String>,
    /// `created_at.id` of the last run of the previous page.
    before: Option<String>,
}

fn empty_to_none(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// `GET /console/projects/{project}/runs`: newest first, filtered by step
/// and status, 50 a page (scope `runs:read`).
pub async fn runs(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(project): ApiPath<String>,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return views::message(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The filters could not be read.",
        );
    };
    if let Err(e) = check(&state, &operator.principal, "runs:read", &project, None).await {
        return refused(&e);
    }
    let step = empty_to_none(query.step);
    let status = empty_to_none(query.status);
    if let Some(s) = &status
        && !matches!(
            s.as_str(),
            "queued" | "running" | "succeeded" | "failed" | "cancelled"
        )
    {
        return views::message(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "status: one of queued, running, succeeded, failed, cancelled",
        );
    }
    let before = match query.before.as_deref().map(parse_before) {
        None => None,
        Some(Some(b)) => Some(b),
        Some(None) => {
            return views::message(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "before: not a page of this list",
            );
        }
    };
    let filter = RunFilter {
        step: step.clone(),
        status: status.clone(),
        before,
        limit: PAGE_SIZE,
    };
    let records = match state.runs.list(&project, &filter).await {
        Ok(r) => r,
        Err(e) => return refused(&ApiError::from(e)),
    };
    let next = (records.len() == PAGE_SIZE as usize)
        .then(|| records.last().map(|r| format!("{}.{}", r.created_at, r.id)))
        .flatten()
        .map(|before| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            if let Some(s) = &step {
                q.append_pair("step", s);
            }
            if let Some(s) = &status {
                q.append_pair("status", s);
            }
            q.append_pair("before", &before);
            format!("/console/projects/{project}/runs?{}", q.finish())
        });
    let rows = records.iter().map(|r| run_row(&project, r)).collect();
    views::html(
        StatusCode::OK,
        &RunsPage {
            nav: views::Nav::new(Some(&project), &operator),
            project: project.clone(),
            step: step.unwrap_or_default(),
            status: status.unwrap_or_default(),
            runs: rows,
            next,
        },
    )
}

fn parse_before(text: &str) -> Option<(i64, String)> {
    let (at, id) = text.split_once('.')?;
    Some((at.parse().ok()?, id.to_owned()))
}

fn when(millis: i64) -> String {
    Timestamp::from_unix_millis(millis).to_string()
}

fn run_row(project: &str, r: &RunRecord) -> RunRow {
    RunRow {
        href: format!("/console/projects/{project}/runs/{}", r.id),
        id: r.id.clone(),
        step: r.step.clone(),
        status: r.status.clone(),
        duration: format!("{} ms", r.duration_ms),
        created: when(r.created_at),
    }
}

/// Pretty JSON of stored JSON text (already masked when stored).
fn pretty(text: Option<&str>) -> Option<String> {
    let value: Value = serde_json::from_str(text?).ok()?;
    serde_json::to_string_pretty(&value).ok()
}

/// `GET /console/projects/{project}/runs/{id}`: one run, with its input,
/// output or error, masked log lines, outbound calls and stats (scope
/// `runs:read`).
pub async fn run(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath((project, id)): ApiPath<(String, String)>,
) -> Response {
    if let Err(e) = check(&state, &operator.principal, "runs:read", &project, None).await {
        return refused(&e);
    }
    let record = match state.runs.get(&project, &id).await {
        Ok(Some(r)) => r,
        Ok(None) => return views::message(StatusCode::NOT_FOUND, "Not found", "No such run."),
        Err(e) => return refused(&ApiError::from(e)),
    };
    // Finished: the stored log. Queued or running: the live lines so far,
    // and the page reloads itself (no script) until the run ends.
    let live = LiveLogStore::new(state.secrets.db().clone());
    let lines = match lines_so_far(&live, &record).await {
        Ok(l) => l,
        Err(e) => return refused(&ApiError::from(e)),
    };
    let logs: Vec<LogRow> = lines
        .iter()
        .map(|entry| {
            let line = &entry.line;
            LogRow {
                elapsed: line["elapsed_ms"]
                    .as_u64()
                    .map(|ms| format!("{ms} ms"))
                    .unwrap_or_default(),
                level: line["level"]
                    .as_str()
                    .or(line["source"].as_str())
                    .unwrap_or("")
                    .to_owned(),
                text: line["text"].as_str().unwrap_or("").to_owned(),
            }
        })
        .collect();
    let calls: Vec<views::CallRow> = record
        .http_calls
        .as_deref()
        .and_then(|t| serde_json::from_str::<Vec<Value>>(t).ok())
        .unwrap_or_default()
        .iter()
        .map(|c| views::CallRow {
            method: c["method"].as_str().unwrap_or("").to_owned(),
            url: c["url"].as_str().unwrap_or("").to_owned(),
            status: c["status"]
                .as_u64()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "—".to_owned()),
            duration: c["duration_ms"]
                .as_u64()
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_default(),
        })
        .collect();
    let error: Option<Value> = record
        .error
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok());
    let page = views::RunPage {
        nav: views::Nav::new(Some(&project), &operator),
        back: format!("/console/projects/{project}/runs"),
        id: record.id.clone(),
        step: record.step.clone(),
        status: record.status.clone(),
        digest: record.digest.clone(),
        attempts: record.attempts,
        created: when(record.created_at),
        started: record.started_at.map(when),
        external_user_id: record.external_user_id.clone(),
        rerun_of: record
            .rerun_of
            .as_ref()
            .map(|of| (of.clone(), format!("/console/projects/{project}/runs/{of}"))),
        duration: format!("{} ms", record.duration_ms),
        cpu_ticks: record.cpu_ticks,
        memory_peak_kib: record.memory_peak_bytes / 1024,
        log_bytes: record.log_bytes,
        input: pretty(record.input.as_deref()),
        output: pretty(record.output.as_deref()),
        error_kind: error
            .as_ref()
            .and_then(|e| e["kind"].as_str())
            .map(str::to_owned),
        error_code: error
            .as_ref()
            .and_then(|e| e["code"].as_str())
            .map(str::to_owned),
        error_message: error
            .as_ref()
            .and_then(|e| e["message"].as_str())
            .map(str::to_owned),
        nostore: record.input.is_none() && record.logs.is_none() && is_final(&record.status),
        follow: (!is_final(&record.status)).then_some(FOLLOW_SECS),
        logs,
        calls,
    };
    views::html(StatusCode::OK, &page)
}
