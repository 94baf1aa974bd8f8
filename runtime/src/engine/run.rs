//! One run: a fresh `Store` with its limits, instantiate, call `run`, and
//! classify how it ended. The store is dropped at the end of every run, so
//! nothing (a trapped instance included) is ever reused.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt as _;

use airlock_host_api::context::RunContext;
use airlock_host_api::http::HttpState;
use airlock_host_api::http::pipeline::{CallSummary, HttpGrants};
use airlock_host_api::http::run_accounts::RunAccounts;
use airlock_host_api::log::{LiveTap, LogLine, LogSink};
use airlock_host_api::redact::Redactor;
use airlock_host_api::secrets::RunSecrets;
use airlock_host_api::{HostLimitError, RunSetup};
use serde::Serialize;
use wasmtime::component::{ResourceTable, ResourceTableError};
use wasmtime::{Store, Trap, UpdateDeadline};

use crate::engine::cancel::{CancelFlag, Cancelled};
use crate::engine::limits::{CpuBudgetExceeded, CpuMeter, RunLimiter, RunLimits};
use crate::engine::output::{self, StepError};
use crate::engine::state::{RunState, wasi_ctx};
use crate::engine::{Engine, LoadedStep};

/// How to run a step once.
pub struct RunOptions {
    pub context: RunContext,
    /// `None` uses the engine's default limits.
    pub limits: Option<RunLimits>,
    /// The step's secret grants and the values loaded for them.
    pub secrets: RunSecrets,
    /// Hosts and apps the step may reach over HTTP.
    pub http_grants: HttpGrants,
    /// Credentials passed with this run, acting as its accounts.
    pub run_accounts: Option<Arc<RunAccounts>>,
    /// Set to stop the run (a queued run's cancellation).
    pub cancel: Option<Arc<CancelFlag>>,
    /// Fed each log line once final (a queued run's live log).
    pub live: Option<Arc<dyn LiveTap>>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("context", &self.context)
            .field("limits", &self.limits)
            .field("live", &self.live.is_some())
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    /// A local run (`airlock run`) with no secrets and default limits.
    pub fn local(step: &str) -> Self {
        Self {
            context: RunContext::local(uuid::Uuid::new_v4().to_string(), step),
            limits: None,
            secrets: RunSecrets::default(),
            http_grants: HttpGrants::default(),
            run_accounts: None,
            cancel: None,
            live: None,
        }
    }
}

/// Which limit stopped a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    WallTime,
    Cpu,
    Memory,
    Output,
    HostCall,
    Trap,
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::WallTime => "wall time",
            Self::Cpu => "CPU",
            Self::Memory => "memory",
            Self::Output => "output",
            Self::HostCall => "host call",
            Self::Trap => "trap",
        })
    }
}

/// Why a run did not produce an output.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunFailure {
    /// The step returned an error: its message, and the `code` and
    /// `details` it gave (masked).
    #[error("the step returned an error: {0}")]
    StepError(StepError),
    /// The step returned something that is not valid JSON.
    #[error("the step's output is not valid JSON: {0}")]
    InvalidOutput(String),
    /// A limit stopped the guest (a trap counts: the guest was stopped).
    #[error("{}", limit_message(*.kind, .detail))]
    Limit { kind: LimitKind, detail: String },
    /// The host failed (not the step's doing).
    #[error("internal error: {0}")]
    Internal(String),
    /// The run was cancelled (`POST …/runs/{id}/cancel`).
    #[error("the run was cancelled")]
    Cancelled,
}

fn limit_message(kind: LimitKind, detail: &str) -> String {
    match kind {
        LimitKind::Trap => format!("trap: {detail}"),
        _ => format!("{kind} limit exceeded: {detail}"),
    }
}

/// What the run used.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunStats {
    pub duration_ms: u64,
    /// Epoch ticks spent executing guest code (the CPU budget's unit).
    pub cpu_ticks: u64,
    /// Highest total of linear memory and tables, in bytes.
    pub memory_peak_bytes: u64,
    /// Bytes of log text accepted (log lines, stdout, stderr).
    pub log_bytes: u64,
    /// Memory-time: KiB x milliseconds of memory and tables held, from the
    /// store's creation to the end of the run.
    pub memory_kib_ms: u64,
    /// Bytes of the response bodies the run's outbound HTTP calls received.
    pub http_response_bytes: u64,
}

/// Everything a run produced.
#[derive(Debug)]
pub struct RunReport {
    pub run_id: String,
    /// The output (JSON text) or why there is none.
    pub outcome: Result<String, RunFailure>,
    pub logs: Vec<LogLine>,
    pub stats: RunStats,
    /// Each outbound request: method, URL without query, status, timing.
    pub http_calls: Vec<CallSummary>,
}

pub(crate) async fn execute(
    engine: &Engine,
    step: &LoadedStep,
    input: &str,
    options: RunOptions,
) -> RunReport {
    let inner = &engine.inner;
    let limits = options
        .limits
        .unwrap_or(inner.config.default_limits)
        .clamped_to(&inner.config);
    let run_id = options.context.run_id.clone();
    let redactor = Arc::new(Redactor::new());
    let mut sink = LogSink::new(inner.config.host_limits.max_log_bytes, redactor.clone());
    if let Some(tap) = options.live.clone() {
        sink = sink.with_live(tap);
    }
    let sink = Arc::new(sink);

    let _permit = match inner.permits.acquire().await {
        Ok(p) => p,
        Err(_) => {
            return RunReport {
                run_id,
                outcome: Err(RunFailure::Internal("the engine is shutting down".into())),
                logs: Vec::new(),
                stats: RunStats::default(),
                http_calls: Vec::new(),
            };
        }
    };
    let started = Instant::now();
    let deadline = started + limits.wall_time;
    let cancel = options.cancel.clone();
    if cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
        return RunReport {
            run_id,
            outcome: Err(RunFailure::Cancelled),
            logs: Vec::new(),
            stats: RunStats::default(),
            http_calls: Vec::new(),
        };
    }
    let mut store = new_store(engine, &sink, options, &limits, deadline);

    let call = async {
        let instance = step.pre.instantiate_async(&mut store).await?;
        store.data_mut().instantiated = true;
        instance.call_run(&mut store, input).await
    };
    // A panic in a host call (a library refusing what a guest passed it)
    // must end this run, not the worker serving it: it is caught here and
    // the run reported as trapped. The store is dropped right after.
    let timed = tokio::time::timeout(limits.wall_time, AssertUnwindSafe(call).catch_unwind());
    // A cancelled run waiting in a host call is dropped here, as a run out
    // of wall time is; one executing is stopped by the epoch callback.
    let result = match &cancel {
        None => Some(timed.await),
        Some(flag) => tokio::select! {
            r = timed => Some(r),
            () = flag.cancelled() => None,
        },
    };

    let cap = inner.config.max_output_bytes;
    let outcome = match result {
        None => Err(RunFailure::Cancelled),
        Some(Err(_elapsed)) => Err(RunFailure::Limit {
            kind: LimitKind::WallTime,
            detail: format!(
                "the step ran longer than its wall-time limit of {} ms",
                limits.wall_time.as_millis()
            ),
        }),
        Some(Ok(Err(_panic))) => {
            tracing::error!(%run_id, "a host call panicked; the run was stopped");
            Err(RunFailure::Limit {
                kind: LimitKind::Trap,
                detail: "a host call failed unexpectedly; the run was stopped".into(),
            })
        }
        Some(Ok(Ok(Ok(Ok(output))))) => output::output(output, cap, &redactor),
        Some(Ok(Ok(Ok(Err(step_error))))) => Err(output::step_error(step_error, cap, &redactor)),
        Some(Ok(Ok(Err(e)))) if find::<Cancelled>(&e).is_some() => Err(RunFailure::Cancelled),
        Some(Ok(Ok(Err(e)))) => Err(classify_trap(&e, store.data(), &limits, &sink)),
    };

    let state = store.data();
    let http_calls = state
        .host
        .state::<HttpState>()
        .map(HttpState::calls)
        .unwrap_or_default();
    let stats = RunStats {
        duration_ms: started.elapsed().as_millis() as u64,
        cpu_ticks: state.cpu.used_ticks,
        memory_peak_bytes: state.limiter.peak() as u64,
        log_bytes: sink.bytes_used() as u64,
        memory_kib_ms: state.limiter.kib_ms(Instant::now()),
        http_response_bytes: http_calls.iter().map(|c| c.response_bytes).sum(),
    };
    drop(store);
    tracing::debug!(%run_id, duration_ms = stats.duration_ms, ok = outcome.is_ok(), "run finished");
    RunReport {
        run_id,
        outcome: mask_outcome(outcome, &redactor),
        logs: sink.finish(),
        stats,
        http_calls,
    }
}

fn new_store(
    engine: &Engine,
    sink: &Arc<LogSink>,
    options: RunOptions,
    limits: &RunLimits,
    deadline: Instant,
) -> Store<RunState> {
    let inner = &engine.inner;
    let options_cancel = options.cancel.clone();
    let mut table = ResourceTable::new();
    table.set_max_capacity(inner.config.host_limits.max_resources);
    let host = inner.capabilities.prepare(RunSetup {
        context: options.context,
        secrets: options.secrets,
        http_grants: options.http_grants,
        run_accounts: options.run_accounts,
        deadline: Some(deadline),
        log: sink.clone(),
        limits: inner.config.host_limits,
    });
    let state = RunState {
        wasi: wasi_ctx(sink),
        table,
        host,
        limiter: RunLimiter::new(limits.memory_bytes),
        cpu: CpuMeter::new(limits.cpu_time, inner.config.epoch_tick),
        instantiated: false,
    };
    let mut store = Store::new(&inner.wasmtime, state);
    store.limiter(|s| &mut s.limiter);
    let cancel = options_cancel;
    // Each tick the guest is running costs one unit of its CPU budget and
    // yields to tokio, so a busy guest cannot starve other runs or the
    // wall-clock timer.
    store.epoch_deadline_callback(move |mut ctx| {
        if cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(wasmtime::Error::new(Cancelled));
        }
        ctx.data_mut().cpu.tick().map_err(wasmtime::Error::new)?;
        Ok(UpdateDeadline::Yield(1))
    });
    store.set_epoch_deadline(1);
    store
}

/// Masks every value the run touched out of the host's own failure texts
/// (the output and the step's error are masked by [`output`]).
fn mask_outcome(
    outcome: Result<String, RunFailure>,
    redactor: &Redactor,
) -> Result<String, RunFailure> {
    let mask = |s: String| match redactor.redact(&s) {
        std::borrow::Cow::Borrowed(_) => s,
        std::borrow::Cow::Owned(masked) => masked,
    };
    match outcome {
        Err(RunFailure::InvalidOutput(e)) => Err(RunFailure::InvalidOutput(mask(e))),
        Err(RunFailure::Limit { kind, detail }) => Err(RunFailure::Limit {
            kind,
            detail: mask(detail),
        }),
        Err(RunFailure::Internal(e)) => Err(RunFailure::Internal(mask(e))),
        other => other,
    }
}

/// Names the limit (or trap) that ended a run that failed inside wasmtime.
fn classify_trap(
    e: &wasmtime::Error,
    state: &RunState,
    limits: &RunLimits,
    sink: &LogSink,
) -> RunFailure {
    let limit = |kind, detail: String| RunFailure::Limit { kind, detail };
    if let Some(cpu) = find::<CpuBudgetExceeded>(e) {
        return limit(
            LimitKind::Cpu,
            format!(
                "the step used more than its CPU limit of {} ms ({} ticks)",
                limits.cpu_time.as_millis(),
                cpu.budget_ticks
            ),
        );
    }
    if let Some(h) = find::<HostLimitError>(e) {
        let kind = match h {
            HostLimitError::Output { .. } => LimitKind::Output,
            HostLimitError::Payload { .. } => LimitKind::HostCall,
        };
        return limit(kind, h.to_string());
    }
    if sink.exceeded() {
        return limit(
            LimitKind::Output,
            "log output exceeded the run's cap".to_string(),
        );
    }
    if let Some(ResourceTableError::Full) = find::<ResourceTableError>(e) {
        return limit(
            LimitKind::HostCall,
            "the step holds too many host resources at once".into(),
        );
    }
    if let Some(asked) = state.limiter.refused() {
        let detail = if state.instantiated {
            format!(
                "the step tried to use {} of memory, over its limit of {}",
                size(asked as u64),
                size(limits.memory_bytes)
            )
        } else {
            format!(
                "the step needs {} of memory to start ({asked} bytes), over its limit of {} \
                 ({} bytes); raise `memory_mib`",
                size(asked as u64),
                size(limits.memory_bytes),
                limits.memory_bytes
            )
        };
        return limit(LimitKind::Memory, detail);
    }
    match find::<Trap>(e) {
        Some(Trap::StackOverflow) => limit(
            LimitKind::Trap,
            "the step exhausted its call stack (endless recursion?)".into(),
        ),
        Some(trap) => limit(LimitKind::Trap, format!("the step trapped: {trap}")),
        None => limit(LimitKind::Trap, format!("the step failed: {e:#}")),
    }
}

/// Bytes as MiB (`32 MiB`, `1.1 MiB`), or KiB below one MiB.
fn size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

fn find<E: std::error::Error + Send + Sync + 'static>(e: &wasmtime::Error) -> Option<&E> {
    e.chain().find_map(|c| c.downcast_ref::<E>())
}

impl RunLimits {
    /// These limits, never above the engine's ceilings.
    pub fn clamped_to(self, config: &crate::engine::EngineConfig) -> Self {
        Self {
            wall_time: self.wall_time.min(config.max_wall_time),
            cpu_time: self.cpu_time.min(config.max_cpu_time),
            memory_bytes: self.memory_bytes.min(config.max_memory_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::EngineConfig;

    #[test]
    fn a_step_cannot_lift_its_limits_above_the_engine_ceilings() {
        let config = EngineConfig::default();
        let asked = RunLimits {
            wall_time: Duration::from_secs(u64::MAX / 4),
            cpu_time: Duration::MAX,
            memory_bytes: u64::MAX,
        };
        let l = asked.clamped_to(&config);
        assert_eq!(l.wall_time, config.max_wall_time);
        assert_eq!(l.cpu_time, config.max_cpu_time);
        assert_eq!(l.memory_bytes, config.max_memory_bytes);
    }
}
