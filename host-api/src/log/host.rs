//! The log capability: `airlock:step/log` into the run's shared sink. It has
//! no state of its own: the sink is shared with stdout/stderr capture and
//! with every capability that warns into the log.

use wasmtime::component::{HasData, Linker};

use crate::bindings::log::{self, Host, Level};
use crate::capability::{Capability, RunHost, RunSetup, RunShared, StoreData};
use crate::log::Source;

/// `airlock:step/log`.
pub struct Log;

pub struct LogView<'a> {
    shared: &'a RunShared,
}

impl HasData for Log {
    type Data<'a> = LogView<'a>;
}

impl Capability for Log {
    type State = ();

    fn add_to_linker<T: StoreData>(&self, linker: &mut Linker<T>) -> wasmtime::Result<()> {
        log::add_to_linker::<T, Log>(linker, |t| LogView {
            shared: t.run_host().shared(),
        })
    }

    fn prepare(&self, _: &mut RunSetup, _: &RunHost) {}
}

impl Host for LogView<'_> {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.shared.check_payload("log.log", message.len())?;
        self.shared
            .log
            .push_line(Source::Log(level.into()), message)?;
        Ok(())
    }
}
