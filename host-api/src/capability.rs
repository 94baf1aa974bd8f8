//! A capability is one module: what a step may ask of the host, as Spin's
//! factors shape it.
//!
//! Each capability — [`log`](crate::log), [`context`](crate::context),
//! [`secrets`](crate::secrets), [`crypto`](crate::crypto),
//! [`http`](crate::http), [`wasi_http`](crate::wasi_http) — is a value
//! implementing [`Capability`] in its own module. The value holds what the
//! capability keeps across runs (the http capability holds the shared
//! outbound pipeline); [`Capability::prepare`] builds its state for one run
//! from the run's [`RunSetup`]; [`Capability::add_to_linker`] links its own
//! interfaces, whose host impls work on a view of that state. The engine
//! holds a [`Capabilities`] list; adding a capability is its module and one
//! line in [`Capabilities::standard`].
//!
//! Why per-capability state instead of one struct with a field for
//! everyone:
//!
//! - A capability's per-run fields are private to the module that
//!   implements it, so the code that can touch, say, the secret handle
//!   table is the secrets module and the two capabilities that take secret
//!   handles as arguments (crypto, http), through that module's API.
//! - A capability left out of the list has no state and no imports: a
//!   component importing it fails to link, with the import named — the same
//!   deny-by-default as unlinked WASI.
//! - What every capability may read is [`RunShared`] alone: the run's
//!   identity, its log sink and redactor, and the host-call caps. Nothing
//!   in it is secret.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Linker;

use crate::context::RunContext;
use crate::http::pipeline::{HttpGrants, Pipeline};
use crate::http::run_accounts::RunAccounts;
use crate::limits::{HostCallLimits, HostLimitError};
use crate::log::LogSink;
use crate::redact::Redactor;
use crate::secrets::RunSecrets;

/// What the engine knows of one run before the guest starts; each
/// capability takes its part in [`Capability::prepare`].
pub struct RunSetup {
    pub context: RunContext,
    pub secrets: RunSecrets,
    pub http_grants: HttpGrants,
    /// Credentials passed with this run; registered with the redactor
    /// before the guest starts.
    pub run_accounts: Option<Arc<RunAccounts>>,
    /// The run's wall-clock deadline, which bounds every request.
    pub deadline: Option<Instant>,
    /// Shared with the runtime's stdout/stderr capture, so all three streams
    /// land in one ordered, capped, masked log; its redactor is the run's.
    pub log: Arc<LogSink>,
    pub limits: HostCallLimits,
}

/// What every capability of a run may read.
pub struct RunShared {
    pub(crate) context: RunContext,
    pub(crate) log: Arc<LogSink>,
    pub(crate) redactor: Arc<Redactor>,
    pub(crate) limits: HostCallLimits,
}

impl RunShared {
    /// Traps when a guest-supplied payload is over the per-call cap.
    pub(crate) fn check_payload(
        &self,
        call: &'static str,
        size: usize,
    ) -> Result<(), HostLimitError> {
        if size > self.limits.max_payload_bytes {
            return Err(HostLimitError::Payload {
                call,
                size,
                cap: self.limits.max_payload_bytes,
            });
        }
        Ok(())
    }
}

/// The host's side of one run: the shared part and each registered
/// capability's state. Created per run, dropped with the run's `Store`.
pub struct RunHost {
    shared: RunShared,
    states: Vec<Box<dyn Any + Send>>,
}

impl RunHost {
    pub fn context(&self) -> &RunContext {
        &self.shared.context
    }

    pub fn log_sink(&self) -> &Arc<LogSink> {
        &self.shared.log
    }

    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.shared.redactor
    }

    pub(crate) fn shared(&self) -> &RunShared {
        &self.shared
    }

    /// A registered capability's state for this run.
    pub fn state<S: 'static>(&self) -> Option<&S> {
        self.states.iter().find_map(|s| s.downcast_ref())
    }

    pub fn state_mut<S: 'static>(&mut self) -> Option<&mut S> {
        self.states.iter_mut().find_map(|s| s.downcast_mut())
    }

    /// The shared part and one capability's state, for a host impl's view.
    /// Only linked interfaces call this, and an interface is linked only
    /// with its capability registered.
    pub(crate) fn view<S: 'static>(&mut self) -> (&RunShared, &mut S) {
        let state = self
            .states
            .iter_mut()
            .find_map(|s| s.downcast_mut())
            .unwrap_or_else(|| panic!("{} is not registered", std::any::type_name::<S>()));
        (&self.shared, state)
    }

    /// The shared part and two capabilities' states (one capability's
    /// calls taking another's resources, as http and crypto take secret
    /// handles).
    pub(crate) fn view2<A: 'static, B: 'static>(&mut self) -> (&RunShared, &mut A, &mut B) {
        let (mut a, mut b) = (None, None);
        for s in self.states.iter_mut() {
            if a.is_none() && s.is::<A>() {
                a = s.downcast_mut::<A>();
            } else if b.is_none() {
                b = s.downcast_mut::<B>();
            }
        }
        let missing = |name| -> ! { panic!("{name} is not registered") };
        (
            &self.shared,
            a.unwrap_or_else(|| missing(std::any::type_name::<A>())),
            b.unwrap_or_else(|| missing(std::any::type_name::<B>())),
        )
    }
}

/// What a store's data must offer for the capabilities to link: its
/// [`RunHost`], and `wasi:http`'s view (which pairs the wasi:http
/// capability's state with the store's WASI resource table).
pub trait StoreData: wasmtime_wasi_http::WasiHttpView + Send + 'static {
    fn run_host(&mut self) -> &mut RunHost;
}

/// One host capability.
pub trait Capability: Send + Sync + 'static {
    /// Its state for one run, built before the guest starts, dropped with
    /// the store. Each capability's type is its own: the state is found by
    /// type.
    type State: Send + 'static;

    /// Links the capability's interfaces into the engine's linker.
    fn add_to_linker<T: StoreData>(&self, linker: &mut Linker<T>) -> wasmtime::Result<()>;

    /// Its state for the run `setup` describes. `host` holds the shared part
    /// and the states of the capabilities registered before this one.
    fn prepare(&self, setup: &mut RunSetup, host: &RunHost) -> Self::State;
}

/// A capability behind the one object-safe face the list needs.
trait Registered<T>: Send + Sync {
    fn link(&self, linker: &mut Linker<T>) -> wasmtime::Result<()>;
    fn prepare_boxed(&self, setup: &mut RunSetup, host: &RunHost) -> Box<dyn Any + Send>;
}

impl<T: StoreData, C: Capability> Registered<T> for C {
    fn link(&self, linker: &mut Linker<T>) -> wasmtime::Result<()> {
        self.add_to_linker(linker)
    }

    fn prepare_boxed(&self, setup: &mut RunSetup, host: &RunHost) -> Box<dyn Any + Send> {
        Box::new(self.prepare(setup, host))
    }
}

/// The capabilities an engine offers its steps, in registration order
/// (a capability's `prepare` sees the states of those before it).
pub struct Capabilities<T> {
    list: Vec<Box<dyn Registered<T>>>,
}

impl<T: StoreData> Default for Capabilities<T> {
    fn default() -> Self {
        Self { list: Vec::new() }
    }
}

impl<T: StoreData> Capabilities<T> {
    /// Every `airlock:step` interface and `wasi:http`'s outgoing handler.
    /// `pipeline` is the shared outbound pipeline; `None` denies every
    /// request.
    pub fn standard(pipeline: Option<Arc<Pipeline>>) -> Self {
        Self::default()
            .with(crate::log::Log)
            .with(crate::context::Context)
            .with(crate::secrets::Secrets)
            .with(crate::crypto::Crypto)
            .with(crate::http::Http::new(pipeline))
            .with(crate::wasi_http::WasiHttp)
    }

    pub fn with(mut self, capability: impl Capability) -> Self {
        self.list.push(Box::new(capability));
        self
    }

    pub fn add_to_linker(&self, linker: &mut Linker<T>) -> wasmtime::Result<()> {
        self.list.iter().try_for_each(|c| c.link(linker))
    }

    /// The host state of one run.
    pub fn prepare(&self, mut setup: RunSetup) -> RunHost {
        let mut host = RunHost {
            shared: RunShared {
                context: setup.context.clone(),
                redactor: setup.log.redactor().clone(),
                log: setup.log.clone(),
                limits: setup.limits,
            },
            states: Vec::with_capacity(self.list.len()),
        };
        for capability in &self.list {
            let state = capability.prepare_boxed(&mut setup, &host);
            host.states.push(state);
        }
        host
    }
}
