use crate::StepHost;
use crate::bindings::log::{Host, Level};
use crate::log::Source;

impl Host for StepHost {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.check_payload("log.log", message.len())?;
        self.log.push_line(Source::Log(level.into()), message)?;
        Ok(())
    }
}
