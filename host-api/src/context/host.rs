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
}
