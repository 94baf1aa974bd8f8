//! What the outbound pipeline adds to a request: a guest's `http.send` to a
//! loopback upstream (guest → host → egress checks → pooled client →
//! upstream → response copied back into the guest) against the same pooled
//! client sending the same request directly, in the same process.
//!
//! Latency: 2,000 sequential requests each side, p50/p99 (the guest times
//! its own calls with the WASI monotonic clock). Throughput: 8 concurrent
//! workers (8 concurrent runs of the guest vs 8 tokio tasks), in 5 pairs of
//! alternating 1 s windows, requests per second.
//!
//! Run: `cargo bench --workspace --bench http_overhead`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use airlock_host_api::apps::Catalog;
use airlock_host_api::http::egress::parse_range;
use airlock_host_api::http::pipeline::{HttpConfig, HttpGrants, NoAccounts};
use airlock_host_api::http::ratelimit::Quota;
use airlock_runtime::engine::{Engine, EngineConfig, RunOptions};
use airlock_runtime::outbound::{self, OutboundConfig};
use axum::Router;
use axum::routing::get;

const WORKERS: usize = 8;
const ROUNDS: usize = 5;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let (sequential, window) = if quick {
        (50, Duration::from_millis(300))
    } else {
        (2_000, Duration::from_secs(1))
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, Router::new().route("/ping", get(|| async { "pong" })))
                .await
                .unwrap()
        });
        let url = format!("http://{addr}/ping");

        let config = OutboundConfig {
            allow_ranges: vec![parse_range("127.0.0.0/8").unwrap()],
            apps_dir: None,
            http: HttpConfig::default(),
            // The bench sends far more than the default quota.
            quota: Quota { max: u32::MAX, period: Duration::from_secs(1) },
        };
        let (policy, client) = outbound::policy_and_client(&config).unwrap();
        let pipeline = outbound::pipeline(
            &config,
            policy,
            client.clone(),
            Arc::new(Catalog::new()),
            Arc::new(NoAccounts),
        );
        let engine = Engine::with_http(
            EngineConfig { max_concurrent_runs: WORKERS as u32, ..EngineConfig::default() },
            pipeline,
        )
        .unwrap();
        let step = engine
            .load(std::fs::read(airlock_tests::guests::HTTP_LOOP).unwrap())
            .await
            .unwrap();
        let grants = HttpGrants { apps: Default::default(), allowed_hosts: vec!["127.0.0.1".into()] };
        let guest_url = url.clone();
        let guest_run = move |n: usize| {
            let (engine, step, grants, url) =
                (engine.clone(), step.clone(), grants.clone(), guest_url.clone());
            async move {
                let mut options = RunOptions::local("http-loop");
                options.http_grants = grants;
                options.limits = Some(airlock_runtime::RunLimits {
                    wall_time: Duration::from_secs(120),
                    cpu_time: Duration::from_secs(120),
                    memory_bytes: 64 << 20,
                });
                let input = format!(r#"{{"url":"{url}","n":{n}}}"#);
                let report = engine.run(&step, &input, options).await;
                let out: serde_json::Value = serde_json::from_str(&report.outcome.unwrap()).unwrap();
                out["nanos"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| Duration::from_nanos(v.as_u64().unwrap()))
                    .collect::<Vec<_>>()
            }
        };

        // Warm both paths (connections, caches).
        guest_run(200).await;
        for _ in 0..200 {
            client.get(&url).send().await.unwrap().bytes().await.unwrap();
        }

        // Sequential latency, interleaved halves.
        let (mut direct, mut guest) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            for _ in 0..sequential / 2 {
                let t = Instant::now();
                client.get(&url).send().await.unwrap().bytes().await.unwrap();
                direct.push(t.elapsed());
            }
            guest.extend(guest_run(sequential / 2).await);
        }
        direct.sort();
        guest.sort();
        let (d50, g50) = (percentile(&direct, 0.5), percentile(&guest, 0.5));
        let (d99, g99) = (percentile(&direct, 0.99), percentile(&guest, 0.99));

        // Throughput at concurrency 8: alternating windows, so load drift
        // on the machine hits both sides alike.
        let (mut direct_n, mut direct_t, mut guest_n, mut guest_t) = (0u64, 0f64, 0u64, 0f64);
        for _ in 0..ROUNDS {
            let count = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let deadline = started + window;
            let mut tasks = Vec::new();
            for _ in 0..WORKERS {
                let (client, url, count) = (client.clone(), url.clone(), count.clone());
                tasks.push(tokio::spawn(async move {
                    while Instant::now() < deadline {
                        client.get(&url).send().await.unwrap().bytes().await.unwrap();
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            direct_n += count.load(Ordering::Relaxed);
            direct_t += started.elapsed().as_secs_f64();

            // Guests: each worker runs the guest with batches of 100.
            let done = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let deadline = started + window;
            let mut tasks = Vec::new();
            for _ in 0..WORKERS {
                let (run, done) = (guest_run.clone(), done.clone());
                tasks.push(tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let n = run(100).await.len();
                        done.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            guest_n += done.load(Ordering::Relaxed);
            guest_t += started.elapsed().as_secs_f64();
        }
        let direct_rps = direct_n as f64 / direct_t;
        let guest_rps = guest_n as f64 / guest_t;

        println!("sequential requests per side: {}", direct.len());
        println!("direct (same pooled client): p50 {d50:?}  p99 {d99:?}");
        println!("guest http.send via pipeline: p50 {g50:?}  p99 {g99:?}");
        println!(
            "added p50 {:?}  added p99 {:?}",
            g50.saturating_sub(d50),
            g99.saturating_sub(d99)
        );
        println!(
            "throughput at concurrency {WORKERS}: direct {direct_rps:.0}/s  guest {guest_rps:.0}/s  ratio {:.2}",
            guest_rps / direct_rps
        );
    });
}
