//! Every hostile guest, run through the engine: each is stopped with its own
//! error class, and the same engine then runs `hello` correctly.

mod common;

use std::net::TcpListener;

use airlock_host_api::log::{Source, TRUNCATION_MARKER};
use airlock_runtime::engine::{LimitKind, RunFailure, RunReport};
use airlock_tests::guests;
use common::{assert_hello_still_runs, limits, run_with};

fn limit_kind(report: &RunReport) -> LimitKind {
    match &report.outcome {
        Err(RunFailure::Limit { kind, .. }) => *kind,
        other => panic!("expected a limit, got {other:?}"),
    }
}

fn step_error(report: &RunReport) -> &str {
    match &report.outcome {
        Err(RunFailure::StepError(e)) => &e.message,
        other => panic!("expected a step error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_loop_is_stopped_by_the_cpu_budget() {
    let report = run_with(guests::LOOP_FOREVER, "{}", limits(20_000, 200, 64)).await;
    assert_eq!(limit_kind(&report), LimitKind::Cpu, "{:?}", report.outcome);
    let message = report.outcome.unwrap_err().to_string();
    assert!(message.contains("CPU limit exceeded"), "{message}");
    assert!(report.stats.cpu_ticks > 100, "{:?}", report.stats);
    // Ended well before its wall limit.
    assert!(report.stats.duration_ms < 20_000);
    assert_hello_still_runs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_loop_is_stopped_by_the_wall_clock() {
    let report = run_with(guests::LOOP_FOREVER, "{}", limits(300, 60_000, 64)).await;
    assert_eq!(limit_kind(&report), LimitKind::WallTime);
    let message = report.outcome.unwrap_err().to_string();
    assert!(message.contains("wall time limit exceeded"), "{message}");
    assert_hello_still_runs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_recursion_traps_with_a_stack_overflow() {
    let report = run_with(guests::RECURSE_FOREVER, "{}", limits(10_000, 5_000, 64)).await;
    assert_eq!(limit_kind(&report), LimitKind::Trap);
    let message = report.outcome.unwrap_err().to_string();
    assert!(message.contains("call stack"), "{message}");
    assert_hello_still_runs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_allocation_hits_the_memory_limit() {
    let report = run_with(guests::GROW_MEMORY, "{}", limits(10_000, 5_000, 32)).await;
    assert_eq!(
        limit_kind(&report),
        LimitKind::Memory,
        "{:?}",
        report.outcome
    );
    let message = report.outcome.unwrap_err().to_string();
    assert!(message.contains("memory limit exceeded"), "{message}");
    assert!(message.contains("limit of 32 MiB"), "{message}");
    assert!(report.stats.memory_peak_bytes <= 32 * 1024 * 1024);
    assert!(report.stats.memory_peak_bytes > 16 * 1024 * 1024);
    assert_hello_still_runs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_flood_hits_the_log_cap() {
    let report = run_with(guests::FLOOD_OUTPUT, "{}", limits(10_000, 5_000, 64)).await;
    assert_eq!(
        limit_kind(&report),
        LimitKind::Output,
        "{:?}",
        report.outcome
    );
    let cap = common::engine().config().host_limits.max_log_bytes as u64;
    // Filled to within one entry's overhead of the cap, never past it.
    let overhead = airlock_host_api::log::ENTRY_OVERHEAD as u64;
    assert!(
        (cap - overhead..=cap).contains(&report.stats.log_bytes),
        "{:?}",
        report.stats
    );
    assert_eq!(report.logs.last().unwrap().text, TRUNCATION_MARKER);
    assert!(report.logs[0].text.starts_with("flood line 0 "));
    assert_hello_still_runs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_traps_and_its_message_is_logged() {
    let report = run_with(guests::PANIC, "{}", limits(10_000, 5_000, 64)).await;
    assert_eq!(limit_kind(&report), LimitKind::Trap);
    let message = report.outcome.as_ref().unwrap_err().to_string();
    assert!(message.starts_with("trap: "), "{message}");
    assert!(
        report
            .logs
            .iter()
            .any(|l| l.source == Source::Stderr && l.text.contains("deliberate panic")),
        "{:?}",
        report.logs
    );
    assert_hello_still_runs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filesystem_is_not_there() {
    let report = run_with(guests::OPEN_FILES, "{}", limits(10_000, 5_000, 64)).await;
    let error = step_error(&report);
    assert!(error.contains("denied:"), "{error}");
    assert!(!std::path::Path::new("/tmp/airlock-escape").exists());
    assert_hello_still_runs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_environment_and_no_arguments() {
    // SAFETY: set before any run reads the environment; tests never remove it.
    unsafe { std::env::set_var("AIRLOCK_TEST_CANARY", "host-only") };
    let report = run_with(guests::READ_ENV, "{}", limits(10_000, 5_000, 64)).await;
    let error = step_error(&report);
    assert!(error.contains("denied: no environment"), "{error}");
    assert_hello_still_runs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_are_refused_and_nothing_connects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let input = format!(r#"{{"addr":"{addr}"}}"#);
    let report = run_with(guests::OPEN_SOCKET, &input, limits(10_000, 5_000, 64)).await;
    let error = step_error(&report);
    assert!(error.contains("denied:"), "{error}");
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the guest reached the listener: {other:?}"),
    }
    assert_hello_still_runs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_host_call_payload_is_refused() {
    let report = run_with(guests::HUGE_LOG, "{}", limits(10_000, 5_000, 64)).await;
    assert_eq!(limit_kind(&report), LimitKind::HostCall);
    let message = report.outcome.unwrap_err().to_string();
    assert!(message.contains("log.log"), "{message}");
    assert_hello_still_runs().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_guest_does_not_stop_others() {
    let runaway = tokio::spawn(run_with(
        guests::LOOP_FOREVER,
        "{}",
        limits(3_000, 60_000, 64),
    ));
    // While the loop spins, hello runs complete.
    for _ in 0..5 {
        assert_hello_still_runs().await;
    }
    assert!(
        !runaway.is_finished(),
        "the runaway guest should still be running"
    );
    let report = runaway.await.unwrap();
    assert_eq!(limit_kind(&report), LimitKind::WallTime);
}

/// A run leaves its marker in its data section, statics, heap and grown
/// pages; the next run on the same pooled slot (an engine of one slot)
/// must find none of it: slots are reset to the component's initial image
/// whether their dirty pages are given back (`madvise`) or reset in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_slot_comes_back_as_its_initial_image() {
    use airlock_runtime::engine::{Engine, EngineConfig, RunOptions};

    let engine = Engine::new(EngineConfig {
        max_concurrent_runs: 1,
        ..EngineConfig::default()
    })
    .unwrap();
    let step = engine
        .load(airlock_tests::component_bytes(guests::MEMORY_RESIDUE))
        .await
        .unwrap();
    let run = |mode: &'static str| {
        let (engine, step) = (engine.clone(), step.clone());
        async move {
            let report = engine
                .run(
                    &step,
                    &format!(r#"{{"mode":"{mode}"}}"#),
                    RunOptions::local("memory-residue"),
                )
                .await;
            serde_json::from_str::<serde_json::Value>(&report.outcome.unwrap()).unwrap()
        }
    };
    // The probe finds a marker when there is one.
    let both = run("both").await;
    assert!(
        both["found_at"].as_array().unwrap().len() >= 4,
        "the scan finds what the same run wrote: {both}"
    );
    assert_eq!(both["statics_initial"], false);
    for round in 0..5 {
        run("dirty").await;
        let seen = run("scan").await;
        assert_eq!(
            seen["found_at"],
            serde_json::json!([]),
            "round {round}: {seen}"
        );
        assert_eq!(seen["statics_initial"], true, "round {round}: {seen}");
    }
}
