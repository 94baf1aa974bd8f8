//! Runs: start one (`POST .../steps/{step}/runs`), read one, list them.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Client, Error};

/// Body of `POST .../steps/{step}/runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunRequest {
    /// Any JSON value: the step's input.
    pub input: Value,
    /// The end user the run acts for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
    /// Keep metadata only: no input, output, error or logs.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub nostore: bool,
}

impl RunRequest {
    pub fn new(input: Value) -> Self {
        Self {
            input,
            external_user_id: None,
            nostore: false,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Queued (`Prefer: respond-async`), not started yet.
    Queued,
    /// Queued and running now.
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// A status this client does not know yet.
    #[serde(other)]
    Unknown,
}

fn one() -> i64 {
    1
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Unknown => "unknown",
        }
    }
}

/// Why a run produced no output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    /// `step_error`, `invalid_output`, `limit:<kind>` or `internal`.
    pub kind: String,
    pub message: String,
    /// The step's own error code, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The step's own error details, when it gave any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// [`RunError::kind`], parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind<'a> {
    /// The step returned an error.
    StepError,
    /// The step's output was not JSON.
    InvalidOutput,
    /// A limit stopped it: `wall_time`, `cpu`, `memory`, `output`,
    /// `host_call`, `trap`.
    Limit(&'a str),
    /// The host failed.
    Internal,
    Other(&'a str),
}

impl RunError {
    pub fn failure(&self) -> FailureKind<'_> {
        match self.kind.as_str() {
            "step_error" => FailureKind::StepError,
            "invalid_output" => FailureKind::InvalidOutput,
            "internal" => FailureKind::Internal,
            k => match k.strip_prefix("limit:") {
                Some(limit) => FailureKind::Limit(limit),
                None => FailureKind::Other(k),
            },
        }
    }
}

/// The answer of `POST .../runs` (200 whether the step succeeded or failed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub id: String,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    pub duration_ms: u64,
}

/// What a run used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    pub duration_ms: u64,
    pub cpu_ticks: u64,
    pub memory_peak_bytes: u64,
    pub log_bytes: u64,
    /// KiB x milliseconds of memory held over the run (0 from servers
    /// that do not record it).
    #[serde(default)]
    pub memory_kib_ms: u64,
    /// Bytes of the response bodies its outbound HTTP calls received.
    #[serde(default)]
    pub http_response_bytes: u64,
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// The `log` interface; the line has a level.
    Log,
    Stdout,
    Stderr,
    #[serde(other)]
    Unknown,
}

/// The level of a `log` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    #[serde(other)]
    Unknown,
}

/// One line of a run's log, masked by the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub source: LogSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<LogLevel>,
    /// Milliseconds since the run started.
    pub elapsed_ms: u64,
    pub text: String,
}

/// One outbound call of a run: never a header or a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpCall {
    pub method: String,
    /// Scheme, host, port and path; no query.
    pub url: String,
    /// `None` when no answer came.
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub response_bytes: u64,
    pub account_id: Option<String>,
}

/// A stored run. Input, output, error, logs and calls are absent for a
/// `nostore` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub step: String,
    /// The step version that ran (empty while queued).
    pub digest: String,
    pub status: RunStatus,
    /// Attempts started (1 for a synchronous run; older servers omit it).
    #[serde(default = "one")]
    pub attempts: i64,
    #[serde(serialize_with = "crate::time::millis")]
    pub created_at: DateTime<Utc>,
    /// The end user the run acted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
    /// The run this one re-ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<String>,
    /// When its (latest) attempt started; absent while queued.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::time::millis_opt"
    )]
    pub started_at: Option<DateTime<Utc>>,
    pub stats: RunStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<LogLine>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_calls: Option<Vec<HttpCall>>,
}

/// Filters and paging of `GET .../runs`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// 1 to 100 (the server's default is 20).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// A page of runs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPage {
    pub runs: Vec<Run>,
    /// The cursor of the next page; `None` on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Which version a re-run runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RerunVersion {
    /// The step's current version.
    #[default]
    Current,
    /// The version the recorded run ran.
    Same,
}

/// Body of `POST .../runs/{id}/rerun`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RerunRequest {
    pub version: RerunVersion,
    /// Keep metadata only in the new run's record.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub nostore: bool,
}

/// A queued run (`Prefer: respond-async`), or what cancelling one did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRun {
    pub id: String,
    /// `queued`, `running` (a cancel asked of a running run), `cancelled`, …
    pub status: String,
}

impl Client {
    /// Queues a run of the step's current version (`Prefer:
    /// respond-async`); returns once the server has stored it.
    /// `idempotency_key` makes a retry return the same run.
    pub async fn queue_run(
        &self,
        project: &str,
        step: &str,
        request: &RunRequest,
        idempotency_key: Option<&str>,
    ) -> Result<QueuedRun, Error> {
        let mut builder = self
            .request(
                Method::POST,
                &["v1", "projects", project, "steps", step, "runs"],
            )?
            .header("prefer", "respond-async")
            .json(request);
        if let Some(key) = idempotency_key {
            builder = builder.header("idempotency-key", key);
        }
        self.json(builder).await
    }

    /// Cancels a queued run: at once if it waits, within a tick if it runs.
    pub async fn cancel_run(&self, project: &str, id: &str) -> Result<QueuedRun, Error> {
        self.json(self.request(
            Method::POST,
            &["v1", "projects", project, "runs", id, "cancel"],
        )?)
        .await
    }

    /// Runs the step's current version once and waits for it.
    pub async fn start_run(
        &self,
        project: &str,
        step: &str,
        request: &RunRequest,
    ) -> Result<RunResult, Error> {
        self.json(
            self.request(
                Method::POST,
                &["v1", "projects", project, "steps", step, "runs"],
            )?
            .json(request),
        )
        .await
    }

    /// Runs a recorded run's input again and waits for the new run.
    pub async fn rerun(
        &self,
        project: &str,
        id: &str,
        request: &RerunRequest,
    ) -> Result<RunResult, Error> {
        self.json(
            self.request(
                Method::POST,
                &["v1", "projects", project, "runs", id, "rerun"],
            )?
            .json(request),
        )
        .await
    }

    /// Queues a re-run of a recorded run (`Prefer: respond-async`).
    pub async fn queue_rerun(
        &self,
        project: &str,
        id: &str,
        request: &RerunRequest,
        idempotency_key: Option<&str>,
    ) -> Result<QueuedRun, Error> {
        let mut builder = self
            .request(
                Method::POST,
                &["v1", "projects", project, "runs", id, "rerun"],
            )?
            .header("prefer", "respond-async")
            .json(request);
        if let Some(key) = idempotency_key {
            builder = builder.header("idempotency-key", key);
        }
        self.json(builder).await
    }

    pub async fn get_run(&self, project: &str, id: &str) -> Result<Run, Error> {
        self.json(self.request(Method::GET, &["v1", "projects", project, "runs", id])?)
            .await
    }

    /// Opens the Server-Sent Events stream of run `id`'s log
    /// (`GET …/runs/{id}/logs?follow=1`), resuming after the line id
    /// `last_event_id`: `log` events until an `end` event with the run's
    /// status. Read it with [`reqwest::Response::chunk`].
    pub async fn follow_logs(
        &self,
        project: &str,
        id: &str,
        last_event_id: Option<&str>,
    ) -> Result<reqwest::Response, Error> {
        let mut request = self
            .request(
                Method::GET,
                &["v1", "projects", project, "runs", id, "logs"],
            )?
            .query(&[("follow", "1")])
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(last) = last_event_id {
            request = request.header("last-event-id", last);
        }
        self.send(request).await
    }

    pub async fn list_runs(&self, project: &str, query: &RunQuery) -> Result<RunPage, Error> {
        self.json(
            self.request(Method::GET, &["v1", "projects", project, "runs"])?
                .query(query),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_error_reads_with_and_without_the_steps_code() {
        let old: RunError =
            serde_json::from_str(r#"{"kind":"step_error","message":"boom"}"#).unwrap();
        assert_eq!(old.code, None);
        assert_eq!(old.failure(), FailureKind::StepError);
        let new: RunError = serde_json::from_str(
            r#"{"kind":"limit:cpu","message":"m","code":"c","details":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(new.code.as_deref(), Some("c"));
        assert_eq!(new.failure(), FailureKind::Limit("cpu"));
    }

    #[test]
    fn log_lines_read_the_engines_shape() {
        let line: LogLine =
            serde_json::from_str(r#"{"source":"log","level":"info","elapsed_ms":3,"text":"hi"}"#)
                .unwrap();
        assert_eq!(line.level, Some(LogLevel::Info));
        let line: LogLine =
            serde_json::from_str(r#"{"source":"stdout","elapsed_ms":0,"text":"x"}"#).unwrap();
        assert_eq!((line.source, line.level), (LogSource::Stdout, None));
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let run: Run = serde_json::from_str(
            r#"{"id":"r","step":"s","digest":"d","status":"failed",
                "created_at":"2026-12-01T08:53:00.123Z",
                "stats":{"duration_ms":1,"cpu_ticks":0,"memory_peak_bytes":0,"log_bytes":0}}"#,
        )
        .unwrap();
        assert_eq!(run.created_at.timestamp_millis(), 1_796_115_180_123);
    }
}
