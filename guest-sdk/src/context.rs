//! The current run's identity.

use crate::__bindings::airlock::step::context as wit;

/// What started the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Cli,
    Api,
    Http,
}

/// Facts about the current run; none of them secret.
#[derive(Debug, Clone)]
pub struct Context {
    pub run_id: String,
    pub step: String,
    pub project: String,
    pub external_user_id: Option<String>,
    pub trigger: Trigger,
}

/// Returns the context of the current run.
pub fn get() -> Context {
    let c = crate::host::context();
    Context {
        run_id: c.run_id,
        step: c.step,
        project: c.project,
        external_user_id: c.external_user_id,
        trigger: match c.trigger {
            wit::Trigger::Cli => Trigger::Cli,
            wit::Trigger::Api => Trigger::Api,
            wit::Trigger::Http => Trigger::Http,
        },
    }
}

/// Which attempt of the run this is: 1 for the first. A queued run is run
/// again (the next attempt) when its step's `[retry]` policy retries a
/// failure, or when the node running it stopped mid-run. Side effects done
/// by an earlier attempt may have happened: make them idempotent, e.g. with
/// [`idempotency_key`].
pub fn attempt() -> u32 {
    crate::host::attempt()
}

/// The `Idempotency-Key` the run was queued with (the same for every
/// attempt), if the caller gave one. A natural key for an upstream's own
/// idempotency header.
pub fn idempotency_key() -> Option<String> {
    crate::host::idempotency_key()
}
