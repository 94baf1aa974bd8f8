use crate::StepHost;
use crate::bindings::context::{Host, RunContext as WitRunContext};

impl Host for StepHost {
    fn get(&mut self) -> wasmtime::Result<WitRunContext> {
        let c = &self.context;
        Ok(WitRunContext {
            run_id: c.run_id.clone(),
            step: c.step.clone(),
            project: c.project.clone(),
            external_user_id: c.external_user_id.clone(),
            trigger: c.trigger,
        })
    }

    fn attempt(&mut self) -> wasmtime::Result<u32> {
        Ok(self.context.attempt)
    }

    fn idempotency_key(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self.context.idempotency_key.clone())
    }
}
