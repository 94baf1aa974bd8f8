//! `airlock:step/context`: the run's identity, chosen by the host.

mod host;

pub use host::Context;

pub use crate::bindings::context::Trigger;

/// The host's view of a run's identity. None of it is secret.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub run_id: String,
    pub step: String,
    pub project: String,
    pub external_user_id: Option<String>,
    pub trigger: Trigger,
    /// Which attempt of the run this is, from 1.
    pub attempt: u32,
    /// The caller's `Idempotency-Key` of a queued run.
    pub idempotency_key: Option<String>,
}

impl RunContext {
    /// A context for a local run (`airlock run`): project `local`.
    pub fn local(run_id: impl Into<String>, step: impl Into<String>) -> Self {
        Self {
            run_id: run_id.into(),
            step: step.into(),
            project: "local".into(),
            external_user_id: None,
            trigger: Trigger::Cli,
            attempt: 1,
            idempotency_key: None,
        }
    }
}
