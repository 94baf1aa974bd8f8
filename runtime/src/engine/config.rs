//! Engine-wide configuration and the wasmtime `Config` it implies.
//!
//! Why each wasmtime setting:
//! - Only Tier-1 wasm features. Threads, shared memory, GC and stack
//!   switching are not even compiled in (the `threads`, `gc` and
//!   `stack-switching` cargo features of wasmtime are off); memory64, custom
//!   page sizes are switched off here, and the component-model async ABI is
//!   not compiled in either.
//!   Untrusted code gets the best-tested surface only.
//! - Async support with async stack zeroing: each run executes on a fiber
//!   whose stack may be reused by the pool; zeroing keeps one tenant's stack
//!   contents from being readable by the next.
//! - Epoch interruption rather than fuel: near-zero overhead, and the epoch
//!   callback lets a CPU-bound guest yield to tokio.
//! - The pooling allocator, sized from `max_concurrent_runs`: instantiation
//!   becomes a slot reuse instead of mmap/munmap per run.

use std::path::PathBuf;
use std::time::Duration;

use airlock_host_api::HostCallLimits;
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::engine::limits::RunLimits;

/// How the process-wide engine is built.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Runs that may execute at once; further runs queue.
    pub max_concurrent_runs: u32,
    /// Hard ceiling for any one run's memory; per-run limits may be lower.
    pub max_memory_bytes: u64,
    /// Ceilings for any one run's wall and CPU time, whatever a manifest or
    /// caller asks for: a step cannot lift its own limits.
    pub max_wall_time: Duration,
    pub max_cpu_time: Duration,
    /// How often the epoch advances; the CPU budget's unit.
    pub epoch_tick: Duration,
    /// Where compiled artifacts are cached; `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Caps on host-call traffic applied to every run.
    pub host_limits: HostCallLimits,
    /// Largest output (JSON text) a step may return.
    pub max_output_bytes: usize,
    /// Limits used when a run does not set its own.
    pub default_limits: RunLimits,
}

/// Core instances, memories and tables one component may hold. Rust guests
/// use one of each; interpreters built with componentize-py/js use more.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 50;
const MAX_MEMORIES_PER_COMPONENT: u32 = 8;
const MAX_TABLES_PER_COMPONENT: u32 = 16;
/// Dirty bytes of a memory or table reset in place (found with Linux's
/// `PAGEMAP_SCAN`, restored with `memset`) when its slot is freed, instead
/// of `madvise`: small steps touch less than this, and skipping `madvise`
/// skips the TLB shoot-down it sends to every core (12 % of the trigger
/// path's samples). Larger footprints are still given back with `madvise`.
/// The slot is reset to its initial image either way.
/// What it costs: up to this much stays resident per warm slot; the pool
/// reuses warm slots first, so in practice about `max_concurrent_runs` of
/// them (16 × 2 MiB at the default).
const KEEP_RESIDENT_BYTES: usize = 2 << 20;
/// Tables are small; the same idea at a smaller bound.
const TABLE_KEEP_RESIDENT_BYTES: usize = 64 << 10;

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_concurrent_runs: 16,
            max_memory_bytes: 512 * 1024 * 1024,
            max_wall_time: Duration::from_secs(15 * 60),
            max_cpu_time: Duration::from_secs(15 * 60),
            epoch_tick: Duration::from_millis(1),
            cache_dir: None,
            host_limits: HostCallLimits::default(),
            max_output_bytes: 1024 * 1024,
            default_limits: RunLimits::default(),
        }
    }
}

impl EngineConfig {
    pub(crate) fn wasmtime_config(&self) -> Config {
        let mut c = Config::new();
        c.wasm_component_model(true)
            .async_stack_zeroing(true)
            .epoch_interruption(true)
            .wasm_memory64(false)
            .wasm_custom_page_sizes(false)
            .concurrency_support(false)
            .max_wasm_stack(1024 * 1024);

        let concurrency = self.max_concurrent_runs.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(concurrency)
            .total_core_instances(concurrency * MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .total_memories(concurrency * MAX_MEMORIES_PER_COMPONENT)
            .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
            .total_tables(concurrency * MAX_TABLES_PER_COMPONENT)
            .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
            .total_stacks(concurrency)
            .max_memory_size(self.max_memory_bytes as usize)
            .table_elements(100_000)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(1 << 20)
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(TABLE_KEEP_RESIDENT_BYTES)
            .pagemap_scan(wasmtime::Enabled::Auto);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        c
    }
}
