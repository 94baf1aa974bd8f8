//! Airlock's per-run overhead: `hello` run in-process through
//! `Engine::run` with every guard on (pooling + semaphore, epoch CPU budget
//! with yields, wall timeout, memory limiter, resource cap, captured
//! stdout/stderr, log sink, output JSON check) against bare wasmtime
//! (pooling allocator + `InstancePre`, WASI defaults, no limits)
//! instantiating and calling the same component in the same process.
//!
//! Both are measured in interleaved batches so drift hits both alike.
//! Run: `cargo bench -p airlock-tests --bench run_overhead`

use std::time::{Duration, Instant};

use airlock_host_api::bindings::{StepPre, context, log};
use airlock_runtime::engine::{Engine, EngineConfig, RunOptions};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

const INPUT: &str = r#"{"name":"Ada"}"#;
const BATCHES: usize = 20;
const PER_BATCH: usize = 250;

struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl log::Host for Bare {
    fn log(&mut self, _: log::Level, _: String) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl context::Host for Bare {
    fn get(&mut self) -> wasmtime::Result<context::RunContext> {
        Ok(context::RunContext {
            run_id: "bench".into(),
            step: "hello".into(),
            project: "local".into(),
            external_user_id: None,
            trigger: context::Trigger::Cli,
        })
    }

    fn attempt(&mut self) -> wasmtime::Result<u32> {
        Ok(1)
    }

    fn idempotency_key(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(None)
    }
}

fn bare_pre(bytes: &[u8]) -> (wasmtime::Engine, StepPre<Bare>) {
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(
        PoolingAllocationConfig::default(),
    ));
    let engine = wasmtime::Engine::new(&config).unwrap();
    let component = Component::new(&engine, bytes).unwrap();
    let mut linker: Linker<Bare> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    // Only what `hello` imports: log and context.
    log::add_to_linker::<Bare, HasSelf<Bare>>(&mut linker, |s| s).unwrap();
    context::add_to_linker::<Bare, HasSelf<Bare>>(&mut linker, |s| s).unwrap();
    let pre = StepPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    (engine, pre)
}

async fn bare_run(engine: &wasmtime::Engine, pre: &StepPre<Bare>) -> Duration {
    let started = Instant::now();
    let mut store = Store::new(
        engine,
        Bare {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    let step = pre.instantiate_async(&mut store).await.unwrap();
    let out = step.call_run(&mut store, INPUT).await.unwrap().unwrap();
    drop(store);
    let elapsed = started.elapsed();
    assert!(out.contains("Ada"));
    elapsed
}

async fn airlock_run(engine: &Engine, step: &airlock_runtime::LoadedStep) -> Duration {
    let started = Instant::now();
    let report = engine.run(step, INPUT, RunOptions::local("hello")).await;
    let elapsed = started.elapsed();
    assert!(report.outcome.unwrap().contains("Ada"));
    elapsed
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; a `cargo test` of benches passes nothing
    // useful either way: keep the run short there.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (batches, per_batch) = if quick { (2, 20) } else { (BATCHES, PER_BATCH) };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bytes = std::fs::read(airlock_tests::examples::HELLO).unwrap();
    let (bare_engine, pre) = bare_pre(&bytes);
    let engine = Engine::new(EngineConfig::default()).unwrap();
    let step = rt.block_on(engine.load(bytes)).unwrap();

    let (mut bare, mut guarded) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for _ in 0..per_batch {
            bare_run(&bare_engine, &pre).await;
            airlock_run(&engine, &step).await;
        }
        for _ in 0..batches {
            for _ in 0..per_batch {
                bare.push(bare_run(&bare_engine, &pre).await);
            }
            for _ in 0..per_batch {
                guarded.push(airlock_run(&engine, &step).await);
            }
        }
    });
    bare.sort();
    guarded.sort();
    let (b50, a50) = (percentile(&bare, 0.5), percentile(&guarded, 0.5));
    let (b99, a99) = (percentile(&bare, 0.99), percentile(&guarded, 0.99));
    println!("runs per side: {}", bare.len());
    println!("bare wasmtime (pooling + InstancePre): p50 {b50:?}  p99 {b99:?}");
    println!("airlock Engine::run, all guards on:    p50 {a50:?}  p99 {a99:?}");
    println!(
        "ratio p50 {:.2}  p99 {:.2}",
        a50.as_secs_f64() / b50.as_secs_f64(),
        a99.as_secs_f64() / b99.as_secs_f64()
    );
}
