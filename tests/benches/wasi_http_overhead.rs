//! A standard client's `wasi:http` request against `http.send`, both
//! through the same pipeline to the same loopback upstream, in the same
//! process and engine: the guests `wasi-http-probe` (wstd's client, with
//! `repeat`) and `http-loop` (`airlock_sdk::http`), each timing its own
//! calls with the WASI monotonic clock.
//!
//! 2,000 sequential requests per side in interleaved halves; p50/p99 and
//! their ratio. Quick mode (no `--bench`) sends 100.
//!
//! Run: `cargo bench -p airlock-tests --bench wasi_http_overhead`

use std::sync::Arc;
use std::time::Duration;

use airlock_host_api::apps::Catalog;
use airlock_host_api::http::egress::parse_range;
use airlock_host_api::http::pipeline::{HttpConfig, HttpGrants, NoAccounts};
use airlock_host_api::http::ratelimit::Quota;
use airlock_runtime::engine::{Engine, EngineConfig, LoadedStep, RunOptions};
use airlock_runtime::outbound::{self, OutboundConfig};
use axum::Router;
use axum::routing::get;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn timed(engine: &Engine, step: &Arc<LoadedStep>, input: String) -> Vec<Duration> {
    let mut options = RunOptions::local("bench");
    options.http_grants = HttpGrants {
        apps: Default::default(),
        allowed_hosts: vec!["127.0.0.1".into()],
    };
    options.limits = Some(airlock_runtime::RunLimits {
        wall_time: Duration::from_secs(120),
        cpu_time: Duration::from_secs(120),
        memory_bytes: 64 << 20,
    });
    let report = engine.run(step, &input, options).await;
    let out: serde_json::Value = serde_json::from_str(&report.outcome.unwrap()).unwrap();
    out["nanos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| Duration::from_nanos(v.as_u64().unwrap()))
        .collect()
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let sequential = if quick { 100 } else { 2_000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                Router::new().route("/ping", get(|| async { "pong" })),
            )
            .await
            .unwrap()
        });
        let url = format!("http://{addr}/ping");
        let config = OutboundConfig {
            allow_ranges: vec![parse_range("127.0.0.0/8").unwrap()],
            apps_dir: None,
            http: HttpConfig::default(),
            quota: Quota {
                max: u32::MAX,
                period: Duration::from_secs(1),
            },
        };
        let (policy, client) = outbound::policy_and_client(&config).unwrap();
        let pipeline = outbound::pipeline(
            &config,
            policy,
            client,
            Arc::new(Catalog::new()),
            Arc::new(NoAccounts),
        );
        let engine = Engine::with_http(EngineConfig::default(), pipeline).unwrap();
        let load = |path: &'static str| {
            let engine = engine.clone();
            async move { engine.load(std::fs::read(path).unwrap()).await.unwrap() }
        };
        let send = load(airlock_tests::guests::HTTP_LOOP).await;
        let wasi = load(airlock_tests::guests::WASI_HTTP_PROBE).await;
        let send_input = |n: usize| format!(r#"{{"url":"{url}","n":{n}}}"#);
        let wasi_input = |n: usize| format!(r#"{{"url":"{url}","repeat":{n}}}"#);

        // Warm both paths (connections, caches).
        timed(&engine, &send, send_input(200)).await;
        timed(&engine, &wasi, wasi_input(200)).await;

        let (mut s, mut w) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            s.extend(timed(&engine, &send, send_input(sequential / 2)).await);
            w.extend(timed(&engine, &wasi, wasi_input(sequential / 2)).await);
        }
        s.sort();
        w.sort();
        let (s50, w50) = (percentile(&s, 0.5), percentile(&w, 0.5));
        let (s99, w99) = (percentile(&s, 0.99), percentile(&w, 0.99));
        println!("sequential requests per side: {}", s.len());
        println!("http.send (airlock_sdk::http): p50 {s50:?}  p99 {s99:?}");
        println!("wasi:http (wstd client):       p50 {w50:?}  p99 {w99:?}");
        println!(
            "ratio wasi:http / http.send: p50 {:.2}  p99 {:.2}",
            w50.as_secs_f64() / s50.as_secs_f64(),
            w99.as_secs_f64() / s99.as_secs_f64()
        );
    });
}
