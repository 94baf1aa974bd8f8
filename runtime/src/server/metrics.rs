//! Prometheus metrics of `airlock serve` (`prometheus-client`), served at
//! `GET /metrics` in the OpenMetrics text format to a credential with the
//! `metrics` scope (or `admin`) that is not restricted to a project: the
//! counts span every project.
//!
//! Every label value comes from a fixed set chosen here ([`failure_label`],
//! [`auth_reason_label`], [`trigger_label`]); no project, step, id or any other
//! caller-controlled string ever becomes a label, so the number of series is
//! bounded and nothing secret can reach the exposition.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use airlock_host_api::context::Trigger;

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use crate::engine::{LimitKind, RunFailure};

/// Content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of `airlock_runs_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    /// `succeeded` or `failed`.
    outcome: &'static str,
    /// `api` or `http` (`cli` never happens in the server).
    trigger: &'static str,
    /// `none`, `step_error`, `invalid_output`, `limit:<kind>` or `internal`.
    failure: &'static str,
}

/// Labels of `airlock_compile_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CompileLabels {
    /// `upload` or `run`.
    source: &'static str,
}

/// Labels of `airlock_auth_failures_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    reason: &'static str,
}

/// Labels of `airlock_rate_limited_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitedLabels {
    /// `trigger` or `token`.
    route: &'static str,
}

/// Where a compile happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileSource {
    /// A step upload (`PUT .../steps/{step}`).
    Upload,
    /// A run of a version not loaded in this process yet.
    Run,
}

/// Which route refused a request for its rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitedRoute {
    Trigger,
    Token,
}

/// Every metric of the server, and the registry that exposes them.
pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    run_duration: Histogram,
    compile_duration: Family<CompileLabels, Histogram>,
    active_runs: Gauge,
    auth_failures: Family<AuthLabels, Counter>,
    rate_limited: Family<LimitedLabels, Counter>,
    retention_deleted: Counter,
    queue_depth: Gauge,
    queue_wait: Histogram,
    busy: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn compile_histogram() -> Histogram {
    // 10 ms to ~20 s.
    Histogram::new(exponential_buckets(0.01, 2.0, 12))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let runs = Family::<RunLabels, Counter>::default();
        registry.register(
            "airlock_runs",
            "Runs finished, by outcome, trigger and failure kind",
            runs.clone(),
        );
        // 5 ms to ~41 s.
        let run_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "airlock_run_duration_seconds",
            "Wall time of runs, as measured by the engine",
            run_duration.clone(),
        );
        let compile_duration = Family::<CompileLabels, Histogram>::new_with_constructor(
            compile_histogram as fn() -> _,
        );
        registry.register(
            "airlock_compile_duration_seconds",
            "Time to compile (or load from the disk cache) a component not yet loaded, by source",
            compile_duration.clone(),
        );
        let active_runs = Gauge::default();
        registry.register(
            "airlock_active_runs",
            "Runs executing now",
            active_runs.clone(),
        );
        let auth_failures = Family::<AuthLabels, Counter>::default();
        registry.register(
            "airlock_auth_failures",
            "Refused platform credentials and missing scopes, by reason",
            auth_failures.clone(),
        );
        let rate_limited = Family::<LimitedLabels, Counter>::default();
        registry.register(
            "airlock_rate_limited",
            "Requests refused with 429, by route (`trigger` or `token`)",
            rate_limited.clone(),
        );
        let retention_deleted = Counter::default();
        registry.register(
            "airlock_retention_deleted_runs",
            "Run records deleted for being older than the retention period",
            retention_deleted.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "airlock_run_queue_depth",
            "Run requests waiting for a slot now",
            queue_depth.clone(),
        );
        // 0.1 ms to ~6.5 s.
        let queue_wait = Histogram::new(exponential_buckets(0.0001, 2.0, 17));
        registry.register(
            "airlock_run_queue_wait_seconds",
            "Time run requests waited for a slot (admitted or not)",
            queue_wait.clone(),
        );
        let busy = Counter::default();
        registry.register(
            "airlock_runs_refused_busy",
            "Run requests refused with 503 because no slot freed within the wait",
            busy.clone(),
        );
        Self {
            registry,
            queue_depth,
            queue_wait,
            busy,
            runs,
            run_duration,
            compile_duration,
            active_runs,
            auth_failures,
            rate_limited,
            retention_deleted,
        }
    }

    /// Counts a finished run and its duration.
    pub fn run_finished(
        &self,
        trigger: &Trigger,
        outcome: Result<(), &RunFailure>,
        wall: Duration,
    ) {
        let labels = RunLabels {
            outcome: if outcome.is_ok() {
                "succeeded"
            } else {
                "failed"
            },
            trigger: trigger_label(trigger),
            failure: outcome.err().map_or("none", failure_label),
        };
        self.runs.get_or_create(&labels).inc();
        self.run_duration.observe(wall.as_secs_f64());
    }

    /// Marks a run as executing until the guard is dropped.
    pub fn run_started(&self) -> ActiveRun {
        self.active_runs.inc();
        ActiveRun(self.active_runs.clone())
    }

    /// Records how long a compile (or a load from the disk cache) took.
    pub fn compiled(&self, source: CompileSource, took: Duration) {
        let source = match source {
            CompileSource::Upload => "upload",
            CompileSource::Run => "run",
        };
        self.compile_duration
            .get_or_create(&CompileLabels { source })
            .observe(took.as_secs_f64());
    }

    /// Counts a refused credential, by its audit reason (mapped onto a fixed set).
    pub fn auth_failed(&self, refusal_reason: &str) {
        self.auth_failures
            .get_or_create(&AuthLabels {
                reason: auth_reason_label(refusal_reason),
            })
            .inc();
    }

    /// Counts a request refused for a missing scope (403).
    pub fn forbidden(&self) {
        self.auth_failures
            .get_or_create(&AuthLabels {
                reason: "forbidden",
            })
            .inc();
    }

    /// Counts a request refused with 429.
    pub fn rate_limited(&self, route: LimitedRoute) {
        let route = match route {
            LimitedRoute::Trigger => "trigger",
            LimitedRoute::Token => "token",
        };
        self.rate_limited
            .get_or_create(&LimitedLabels { route })
            .inc();
    }

    /// Counts run records deleted by the retention sweep.
    pub fn retention_deleted(&self, n: u64) {
        self.retention_deleted.inc_by(n);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

impl crate::service::RunObserver for Metrics {
    fn started(&self) -> Box<dyn Send> {
        Box::new(self.run_started())
    }

    fn finished(&self, trigger: &Trigger, report: &crate::engine::RunReport) {
        self.run_finished(
            trigger,
            report.outcome.as_ref().map(|_| ()),
            Duration::from_millis(report.stats.duration_ms),
        );
    }

    fn admission(&self, waited: Duration, admitted: bool, queue_depth: i64) {
        self.queue_wait.observe(waited.as_secs_f64());
        self.queue_depth.set(queue_depth);
        if !admitted {
            self.busy.inc();
        }
    }

    fn loaded(&self, took: Duration) {
        self.compiled(CompileSource::Run, took);
    }
}

/// Decrements `airlock_active_runs` when dropped (also if the run's task is
/// cancelled).
#[derive(Debug)]
pub struct ActiveRun(Gauge);

impl Drop for ActiveRun {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn trigger_label(trigger: &Trigger) -> &'static str {
    match trigger {
        Trigger::Api => "api",
        Trigger::Http => "http",
        Trigger::Cli => "cli",
    }
}

/// The `failure` label of a failed run: one of a fixed set.
pub fn failure_label(failure: &RunFailure) -> &'static str {
    match failure {
        RunFailure::StepError(_) => "step_error",
        RunFailure::InvalidOutput(_) => "invalid_output",
        RunFailure::Limit { kind, .. } => match kind {
            LimitKind::WallTime => "limit:wall_time",
            LimitKind::Cpu => "limit:cpu",
            LimitKind::Memory => "limit:memory",
            LimitKind::Output => "limit:output",
            LimitKind::HostCall => "limit:host_call",
            LimitKind::Trap => "limit:trap",
        },
        RunFailure::Internal(_) => "internal",
        RunFailure::Cancelled => "cancelled",
    }
}

/// Maps an audit reason onto the fixed `reason` labels: `missing`,
/// `malformed`, `invalid` (unknown, revoked or wrong secret), `expired`,
/// `invalid_client`, `invalid_scope`, `rate_limited`, or `other`.
pub fn auth_reason_label(reason: &str) -> &'static str {
    match reason {
        "missing Authorization header" => "missing",
        "malformed Authorization header"
        | "Authorization is not a Bearer credential"
        | "malformed credential"
        | "malformed API key" => "malformed",
        "unknown or revoked API key"
        | "wrong API key secret"
        | "unknown or revoked access token" => "invalid",
        "expired access token" => "expired",
        "unknown OAuth client" | "wrong client secret" => "invalid_client",
        "scope not allowed for client" => "invalid_scope",
        "too many failed attempts" => "rate_limited",
        _ => "other",
    }
}

/// Counts 403 answers as `airlock_auth_failures_total{reason="forbidden"}`:
/// every 403 of the API is a credential lacking a scope or a project.
pub async fn count_forbidden(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    if response.status() == StatusCode::FORBIDDEN {
        state.metrics.forbidden();
    }
    response
}

/// Prometheus metrics in the OpenMetrics text format (scope `metrics` or
/// `admin`, on a credential not restricted to a project).
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("bearer" = [])),
    responses(
        (status = 200, description = "The OpenMetrics text exposition",
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn metrics(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    principal.require("metrics")?;
    if principal.0.project.is_some() {
        return Err(ApiError::forbidden(
            "metrics span every project: they need a credential not restricted to one",
        ));
    }
    let text = state.metrics.encode().map_err(|_| ApiError::internal())?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_every_family_and_only_fixed_labels() {
        let m = Metrics::new();
        m.run_finished(&Trigger::Api, Ok(()), Duration::from_millis(20));
        m.run_finished(
            &Trigger::Http,
            Err(&RunFailure::StepError(crate::engine::StepError {
                message: "secret-ish text".into(),
                code: Some("a-code".into()),
                details: None,
                retryable: None,
                retry_after_ms: None,
            })),
            Duration::from_millis(20),
        );
        m.compiled(CompileSource::Upload, Duration::from_millis(300));
        m.auth_failed("wrong API key secret");
        m.auth_failed("a reason added later");
        m.forbidden();
        m.rate_limited(LimitedRoute::Trigger);
        let active = m.run_started();
        let text = m.encode().unwrap();
        drop(active);
        for needle in [
            r#"airlock_runs_total{outcome="succeeded",trigger="api",failure="none"} 1"#,
            r#"airlock_runs_total{outcome="failed",trigger="http",failure="step_error"} 1"#,
            "airlock_run_duration_seconds_count 2",
            r#"airlock_compile_duration_seconds_count{source="upload"} 1"#,
            "airlock_active_runs 1",
            r#"airlock_auth_failures_total{reason="invalid"} 1"#,
            r#"airlock_auth_failures_total{reason="other"} 1"#,
            r#"airlock_auth_failures_total{reason="forbidden"} 1"#,
            r#"airlock_rate_limited_total{route="trigger"} 1"#,
            "# EOF",
        ] {
            assert!(text.contains(needle), "missing {needle}:\n{text}");
        }
        assert!(!text.contains("secret-ish"), "{text}");
        assert!(m.encode().unwrap().contains("airlock_active_runs 0"));
    }
}
