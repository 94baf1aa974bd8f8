//! A run's log: `GET /v1/projects/{project}/runs/{id}/logs` (scope
//! `runs:read`, as reading the run).
//!
//! - Without `follow`: JSON `{id, status, lines}` with the lines so far —
//!   the record's log once the run has finished, the live lines while a
//!   queued run runs.
//! - With `?follow=1` (or `Accept: text/event-stream`): Server-Sent
//!   Events. Each line is `event: log` with `id:` its sequence number and
//!   `data:` the line as the record shows it (`source`, `level`,
//!   `elapsed_ms`, `text`); once the run has finished, `event: end` with
//!   `{id, status}`, and the stream closes. `Last-Event-ID` resumes after
//!   that line: ids grow over the run's attempts and the final attempt's
//!   ids are the same in the record, so a resume never repeats a line.
//!
//! Why it can follow a run on another node: the node running a queued run
//! appends its masked lines to the database as it goes
//! ([`crate::store::live_logs`]); the stream reads after its cursor, woken
//! by the change bus, and polls every [`POLL`] should a notification be
//! lost. Lines are masked exactly as the stored log (the run's redactor,
//! across entries; `airlock_host_api::log::live`), so a stream shows
//! nothing the record would not.
//!
//! Bounds: [`MAX_STREAMS_PER_PROJECT`] and [`MAX_STREAMS`] open streams per
//! node (429 beyond), since each holds a connection and polls the
//! database; every stream ends when the server shuts down (graceful
//! shutdown would otherwise wait for streams that never end), and comments
//! keep idle connections alive through proxies.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiPath, ErrorBody};
use super::params::RunPath;
use super::steps::check;
use crate::store::live_logs::{LiveLogStore, seq};
use crate::store::repo::Change;
use crate::store::runs::RunRecord;

/// How often a stream reads again without a notification.
pub const POLL: Duration = Duration::from_secs(1);
/// Open streams per project on one node.
pub const MAX_STREAMS_PER_PROJECT: usize = 32;
/// Open streams on one node.
pub const MAX_STREAMS: usize = 512;
/// Live rows read at once.
const PAGE: u32 = 500;
/// Interval of the keep-alive comments.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The open streams of this node, and the signal that ends them.
#[derive(Debug)]
pub struct Streams {
    open: Mutex<HashMap<String, usize>>,
    shutdown: watch::Sender<bool>,
}

impl Default for Streams {
    fn default() -> Self {
        Self {
            open: Mutex::new(HashMap::new()),
            shutdown: watch::Sender::new(false),
        }
    }
}

impl Streams {
    /// Ends every open stream (and refuses new ones): the server stops.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    fn acquire(self: &Arc<Self>, project: &str) -> Result<Slot, ApiError> {
        if *self.shutdown.borrow() {
            return Err(ApiError::busy(Duration::from_secs(1)));
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = open.values().sum();
        let here = open.get(project).copied().unwrap_or(0);
        if total >= MAX_STREAMS || here >= MAX_STREAMS_PER_PROJECT {
            return Err(ApiError::too_many_requests(
                format!(
                    "too many open log streams (at most {MAX_STREAMS_PER_PROJECT} per project \
                     and {MAX_STREAMS} per node); close one or retry later"
                ),
                Duration::from_secs(1),
            ));
        }
        *open.entry(project.to_owned()).or_default() += 1;
        Ok(Slot {
            streams: self.clone(),
            project: project.to_owned(),
        })
    }
}

/// One open stream's place in the bound; released when the stream ends.
struct Slot {
    streams: Arc<Streams>,
    project: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.project) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.project);
            }
        }
    }
}

/// Query of `GET …/runs/{id}/logs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogsParams {
    /// `1` or `true`: a Server-Sent Events stream that follows the run
    /// until it ends.
    pub follow: Option<String>,
}

/// One log line with its id in the stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogEntry {
    /// The line's id (`Last-Event-ID` of a stream resumes after it).
    pub seq: i64,
    /// The line as the run record shows it: `source`, `level`,
    /// `elapsed_ms`, `text` (masked).
    #[schema(value_type = Object)]
    pub line: Value,
}

/// A run's log so far.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunLogs {
    pub id: String,
    /// The run's status now.
    pub status: String,
    /// In order; empty for a `nostore` run.
    pub lines: Vec<LogEntry>,
}

pub fn is_final(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "cancelled")
}

/// The record's lines with their ids, after `after`.
fn record_lines(r: &RunRecord, after: i64) -> Vec<LogEntry> {
    let lines: Vec<Value> = r
        .logs
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let attempt = u32::try_from(r.attempts.max(1)).unwrap_or(u32::MAX);
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| LogEntry {
            seq: seq(attempt, i as u64),
            line,
        })
        .filter(|e| e.seq > after)
        .collect()
}

/// The lines of `record` so far: its stored log once it has finished, the
/// live rows while it waits or runs (the console's run page shows these).
pub async fn lines_so_far(
    live: &LiveLogStore,
    record: &RunRecord,
) -> crate::store::Result<Vec<LogEntry>> {
    if is_final(&record.status) {
        return Ok(record_lines(record, -1));
    }
    let mut lines = Vec::new();
    let mut cursor = -1;
    loop {
        let page = live_entries(live.after(&record.id, cursor, PAGE).await?);
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        lines.extend(page);
    }
    Ok(lines)
}

fn live_entries(rows: Vec<(i64, String)>) -> Vec<LogEntry> {
    rows.into_iter()
        .filter_map(|(seq, text)| {
            Some(LogEntry {
                seq,
                line: serde_json::from_str(&text).ok()?,
            })
        })
        .collect()
}

fn wants_stream(params: &LogsParams, headers: &HeaderMap) -> Result<bool, ApiError> {
    let asked = match params.follow.as_deref().map(str::trim) {
        None => false,
        Some("1" | "true") => true,
        Some("0" | "false") => false,
        Some(_) => {
            return Err(ApiError::bad_request(
                "follow: must be `1`, `true`, `0` or `false`",
            ));
        }
    };
    let accepts = headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    Ok(asked || accepts)
}

/// The `Last-Event-ID` header: a line id, or none.
fn last_event_id(headers: &HeaderMap) -> Result<i64, ApiError> {
    match headers.get("last-event-id") {
        None => Ok(-1),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::bad_request("Last-Event-ID: must be the id of an event of this stream")
            }),
    }
}

/// A run's log lines (scope `runs:read`): JSON, or with `follow` a
/// Server-Sent Events stream of `log` events until an `end` event with the
/// run's status. Lines are masked as the run record shows them. A queued
/// run can be followed while it runs, from any node; a synchronous run's
/// lines exist once it has finished (its caller holds the answer).
#[utoipa::path(get, path = "/v1/projects/{project}/runs/{id}/logs", tag = "runs",
    security(("bearer" = [])),
    params(RunPath, LogsParams,
        ("last-event-id" = Option<String>, Header,
            description = "With `follow`: resume after this line id")),
    responses((status = 200, body = RunLogs,
            description = "The lines so far; with `follow`, `text/event-stream`"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "Too many open streams")))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    query: Result<Query<LogsParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    check(&state, &principal, "runs:read", &project, None).await?;
    let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let stream = wants_stream(&params, &headers)?;
    let after = last_event_id(&headers)?;
    let record = state
        .runs
        .get(&project, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such run"))?;
    let live = LiveLogStore::new(state.secrets.db().clone());
    if !stream {
        let lines = lines_so_far(&live, &record).await?;
        return Ok(Json(RunLogs {
            id,
            status: record.status,
            lines,
        })
        .into_response());
    }
    let slot = state.log_streams.acquire(&project)?;
    let follow = Follow {
        changes: live.subscribe(),
        shutdown: state.log_streams.shutdown.subscribe(),
        state,
        live,
        project,
        id,
        after,
        pending: VecDeque::new(),
        done: false,
        _slot: slot,
    };
    let events = futures_util::stream::unfold(follow, |mut f| async move {
        loop {
            if let Some(event) = f.pending.pop_front() {
                return Some((Ok::<Event, Infallible>(event), f));
            }
            if f.done {
                return None;
            }
            f.fill().await;
        }
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // Proxies must pass events on as they come.
    response.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// One stream's state.
struct Follow {
    state: AppState,
    live: LiveLogStore,
    changes: broadcast::Receiver<Change>,
    shutdown: watch::Receiver<bool>,
    project: String,
    id: String,
    /// The last line id sent.
    after: i64,
    pending: VecDeque<Event>,
    done: bool,
    _slot: Slot,
}

impl Follow {
    /// Reads what is new; waits for a wake-up when nothing is.
    async fn fill(&mut self) {
        if *self.shutdown.borrow() {
            self.done = true;
            return;
        }
        match self.state.runs.get(&self.project, &self.id).await {
            Ok(Some(record)) if is_final(&record.status) => {
                let lines = record_lines(&record, self.after);
                self.push(lines);
                let end = serde_json::json!({"id": record.id, "status": record.status});
                self.pending
                    .push_back(Event::default().event("end").data(end.to_string()));
                self.done = true;
                return;
            }
            Ok(Some(_)) => match self.live.after(&self.id, self.after, PAGE).await {
                Ok(rows) if !rows.is_empty() => {
                    self.push(live_entries(rows));
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(run_id = %self.id, error = %e, "cannot read live log lines")
                }
            },
            // Deleted meanwhile (retention): nothing more will come.
            Ok(None) => {
                self.done = true;
                return;
            }
            Err(e) => tracing::warn!(run_id = %self.id, error = %e, "cannot read a followed run"),
        }
        self.wait().await;
    }

    fn push(&mut self, entries: Vec<LogEntry>) {
        for e in entries {
            self.after = self.after.max(e.seq);
            self.pending.push_back(
                Event::default()
                    .event("log")
                    .id(e.seq.to_string())
                    .data(e.line.to_string()),
            );
        }
    }

    /// Until this run's lines change, the poll interval passes, or the
    /// server shuts down.
    async fn wait(&mut self) {
        let id = self.id.clone();
        let changes = &mut self.changes;
        let heard = async move {
            loop {
                match changes.recv().await {
                    Ok(Change::RunLog(run)) if run == id => return,
                    Ok(Change::All) | Err(RecvError::Lagged(_)) => return,
                    Ok(_) => {}
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            () = heard => {}
            () = tokio::time::sleep(POLL) => {}
            _ = self.shutdown.changed() => self.done = true,
        }
    }
}

/// How often live rows past their age are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Deletes live log rows older than
/// [`MAX_AGE`](crate::store::live_logs::MAX_AGE) every hour, on one node
/// per tick: rows of runs whose node died before it could delete them.
pub fn spawn_sweep(db: crate::store::Db) -> tokio::task::JoinHandle<()> {
    let live = LiveLogStore::new(db.clone());
    super::periodic::spawn(db, "live-log-sweep", SWEEP_EVERY, move || {
        let live = live.clone();
        async move {
            match live.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "old live log lines deleted"),
                Err(e) => tracing::warn!(error = %e, "cannot delete old live log lines"),
            }
        }
    })
}
