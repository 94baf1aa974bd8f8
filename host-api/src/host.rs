//! Per-run host state shared by every interface's `Host` impl.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::{HasSelf, Linker, ResourceTable};

use crate::bindings::Step;
use crate::context::RunContext;
use crate::http::pipeline::{CallSummary, HttpGrants, Pipeline};
use crate::http::run_accounts::RunAccounts;
use crate::limits::HostCallLimits;
use crate::log::LogSink;
use crate::redact::Redactor;
use crate::secrets::RunSecrets;

/// What the host keeps for one run of one step. Created per run, dropped
/// with the run's `Store`.
pub struct StepHost {
    pub(crate) context: RunContext,
    pub(crate) log: Arc<LogSink>,
    pub(crate) redactor: Arc<Redactor>,
    pub(crate) limits: HostCallLimits,
    pub(crate) secrets: Arc<RunSecrets>,
    /// Resources handed to the guest through `airlock:step` interfaces
    /// (secret handles), capped at `limits.max_resources`.
    pub(crate) table: ResourceTable,
    /// The shared outbound pipeline; `None` denies every request.
    pub(crate) http: Option<Arc<Pipeline>>,
    pub(crate) http_grants: HttpGrants,
    /// Credentials passed with this run (registered with the redactor).
    pub(crate) run_accounts: Option<Arc<RunAccounts>>,
    /// The run's wall-clock deadline, which bounds every request.
    pub(crate) deadline: Option<Instant>,
    /// What each request did, without credentials, for the run record;
    /// shared with the run's `wasi:http` hooks.
    pub(crate) http_calls: Arc<Mutex<Vec<CallSummary>>>,
}

impl StepHost {
    /// `log` is shared with the runtime's stdout/stderr capture so all three
    /// streams land in one ordered, capped, masked log; its redactor is the
    /// run's redactor.
    pub fn new(
        context: RunContext,
        secrets: RunSecrets,
        log: Arc<LogSink>,
        limits: HostCallLimits,
    ) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_resources);
        Self {
            context,
            redactor: log.redactor().clone(),
            log,
            limits,
            secrets: Arc::new(secrets),
            table,
            http: None,
            http_grants: HttpGrants::default(),
            run_accounts: None,
            deadline: None,
            http_calls: Arc::default(),
        }
    }

    /// Lets the run make outbound requests through `pipeline`, within
    /// `grants`, until `deadline`.
    pub fn with_http(
        mut self,
        pipeline: Arc<Pipeline>,
        grants: HttpGrants,
        deadline: Option<Instant>,
    ) -> Self {
        self.http = Some(pipeline);
        self.http_grants = grants;
        self.deadline = deadline;
        self
    }

    /// Credentials passed with this run act as its accounts. Every value is
    /// registered with the run's redactor now, before the guest starts.
    pub fn with_run_accounts(mut self, accounts: Arc<RunAccounts>) -> Self {
        accounts.register(&self.redactor);
        self.run_accounts = Some(accounts);
        self
    }

    /// The outbound calls made so far (`http.send` and `wasi:http`).
    pub fn http_calls(&self) -> Vec<CallSummary> {
        self.http_calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The run's `wasi:http` state: the same pipeline, grants, secrets,
    /// redactor, deadline and call records as `http.send`.
    pub fn wasi_http(&self) -> crate::wasi_http::WasiHttpRun {
        crate::wasi_http::WasiHttpRun::new(crate::wasi_http::RunHttp {
            pipeline: self.http.clone(),
            project: self.context.project.clone(),
            external_user_id: self.context.external_user_id.clone(),
            grants: self.http_grants.clone(),
            deadline: self.deadline,
            redactor: self.redactor.clone(),
            run_accounts: self.run_accounts.clone(),
            secrets: self.secrets.clone(),
            log: self.log.clone(),
            calls: self.http_calls.clone(),
        })
    }

    pub fn log_sink(&self) -> &Arc<LogSink> {
        &self.log
    }

    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.redactor
    }

    pub fn context(&self) -> &RunContext {
        &self.context
    }

    /// Traps when a guest-supplied payload is over the per-call cap.
    pub(crate) fn check_payload(
        &self,
        call: &'static str,
        size: usize,
    ) -> Result<(), crate::HostLimitError> {
        if size > self.limits.max_payload_bytes {
            return Err(crate::HostLimitError::Payload {
                call,
                size,
                cap: self.limits.max_payload_bytes,
            });
        }
        Ok(())
    }
}

/// Adds every `airlock:step` interface to `linker`. `get` projects the
/// store's data onto its [`StepHost`].
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut StepHost,
) -> wasmtime::Result<()> {
    Step::add_to_linker::<T, HasSelf<StepHost>>(linker, get)
}
