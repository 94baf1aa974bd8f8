//! The data of one run's `Store`, and the linker that serves it.
//!
//! WASI is deny-by-default here. Why link `wasi:filesystem` and
//! `wasi:sockets` at all: language toolchains (Rust std, componentize-py,
//! componentize-js) import them whether or not a step uses them, and
//! refusing those imports would refuse most real steps. So they are linked,
//! and nothing is granted through them: no preopened directory (there is no
//! path to open), no TCP, no UDP, no name lookup, and a socket-address check
//! that says no to every address. Network access goes through
//! `airlock:step/http` and `wasi:http/outgoing-handler` (standard clients),
//! both into the one pipeline where the host applies egress policy.

use std::sync::Arc;

use airlock_host_api::log::{LogSink, StdStream};
use airlock_host_api::wasi_http::WasiHttpRun;
use airlock_host_api::{Capabilities, RunHost, StoreData};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::engine::limits::{CpuMeter, RunLimiter};
use crate::engine::stdio::CapturedStream;

pub struct RunState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    /// Every capability's state for this run.
    pub(crate) host: RunHost,
    pub(crate) limiter: RunLimiter,
    pub(crate) cpu: CpuMeter,
    /// Set once the component is instantiated: a memory refusal before
    /// then means its initial memory is over the run's limit.
    pub(crate) instantiated: bool,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// `wasi:http`'s resources live in the WASI table, next to `wasi:io`
/// streams; its own state is the wasi:http capability's.
impl wasmtime_wasi_http::WasiHttpView for RunState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        self.host
            .state_mut::<WasiHttpRun>()
            .expect("the wasi:http capability is registered")
            .view(&mut self.table)
    }
}

impl StoreData for RunState {
    fn run_host(&mut self) -> &mut RunHost {
        &mut self.host
    }
}

/// The deny-by-default WASI context of one run: stdout/stderr into `sink`,
/// empty stdin, no env, no args, no directories, no network.
pub fn wasi_ctx(sink: &Arc<LogSink>) -> WasiCtx {
    let mut b = WasiCtxBuilder::new();
    b.stdout(CapturedStream::new(sink.clone(), StdStream::Stdout))
        .stderr(CapturedStream::new(sink.clone(), StdStream::Stderr))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    b.build()
}

/// WASI (deny-by-default, above) and every capability's interfaces.
pub fn linker(
    engine: &wasmtime::Engine,
    capabilities: &Capabilities<RunState>,
) -> wasmtime::Result<Linker<RunState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    capabilities.add_to_linker(&mut linker)?;
    Ok(linker)
}
