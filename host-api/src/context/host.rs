//! The context capability: `airlock:step/context`, the run's identity from
//! the shared part (other capabilities read it too: http needs the project
//! and end user). No state of its own.

use wasmtime::component::{HasData, Linker};

use crate::bindings::context::{self, Host, RunContext as WitRunContext};
use crate::capability::{Capability, RunHost, RunSetup, RunShared, StoreData};

/// `airlock:step/context`.
pub struct Context;

pub struct ContextView<'a> {
    shared: &'a RunShared,
}

impl HasData for Context {
    type Data<'a> = ContextView<'a>;
}

impl Capability for Context {
    type State = ();

    fn add_to_linker<T: StoreData>(&self, linker: &mut Linker<T>) -> wasmtime::Result<()> {
        context::add_to_linker::<T, Context>(linker, |t| ContextView {
            shared: t.run_host().shared(),
        })
    }

    fn prepare(&self, _: &mut RunSetup, _: &RunHost) {}
}

impl Host for ContextView<'_> {
    fn get(&mut self) -> wasmtime::Result<WitRunContext> {
        let c = &self.shared.context;
        Ok(WitRunContext {
            run_id: c.run_id.clone(),
            step: c.step.clone(),
            project: c.project.clone(),
            external_user_id: c.external_user_id.clone(),
            trigger: c.trigger,
        })
    }

    fn attempt(&mut self) -> wasmtime::Result<u32> {
        Ok(self.shared.context.attempt)
    }

    fn idempotency_key(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self.shared.context.idempotency_key.clone())
    }
}
