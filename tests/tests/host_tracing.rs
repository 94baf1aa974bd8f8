//! The host's own tracing, captured at TRACE level for every target while a
//! hostile step leaks secrets every way it can, while the outbound pipeline
//! inserts credentials (hyper and reqwest trace too), and while the store
//! encrypts and decrypts them, holds no secret value. Its own binary,
//! because the subscriber is process-global.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use airlock_host_api::secrets::{RunSecrets, SecretGrants};
use airlock_runtime::engine::RunOptions;
use airlock_runtime::store::{MasterKey, SecretStore};
use airlock_tests::guests;
use zeroize::Zeroizing;

const SECRET: &str = "trace_canary_Vb7Qm2Xk9Lp4";

/// An engine with outbound HTTP, loopback allowed.
fn http_engine() -> airlock_runtime::engine::Engine {
    use airlock_runtime::outbound::{self, OutboundConfig};
    let config = OutboundConfig {
        allow_ranges: vec![airlock_host_api::http::egress::parse_range("127.0.0.0/8").unwrap()],
        ..OutboundConfig::default()
    };
    let (policy, client) = outbound::policy_and_client(&config).unwrap();
    let pipeline = outbound::pipeline(
        &config,
        policy,
        client,
        std::sync::Arc::new(airlock_host_api::apps::Catalog::new()),
        std::sync::Arc::new(airlock_host_api::http::pipeline::NoAccounts),
    );
    airlock_runtime::engine::Engine::with_http(
        airlock_runtime::engine::EngineConfig {
            cache_dir: Some(airlock_tests::test_cache_dir()),
            ..Default::default()
        },
        pipeline,
    )
    .unwrap()
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_tracing_never_holds_a_secret() {
    // Compile first: compilation handles no secret, and Cranelift's own
    // TRACE output on a cold cache would only slow the capture down.
    let step = common::load(guests::LEAK_SECRET).await;
    let http_engine = http_engine();
    let probe = http_engine
        .load(airlock_tests::component_bytes(guests::HTTP_PROBE))
        .await
        .unwrap();
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    // A run that obtains, reveals and leaks the secret every way it can.
    for mode in ["log", "output", "error"] {
        let mut options = RunOptions::local("leak-secret");
        options.secrets = RunSecrets::new(
            SecretGrants {
                names: ["SECRET".into(), "MULTI".into()].into(),
                reveal: ["SECRET".into(), "MULTI".into()].into(),
            },
            [
                ("SECRET".to_string(), Zeroizing::new(SECRET.to_string())),
                (
                    "MULTI".to_string(),
                    Zeroizing::new(format!("{SECRET}\nline-two-{SECRET}")),
                ),
            ],
        );
        let input = format!(r#"{{"mode":"{mode}"}}"#);
        let report = common::engine().run(&step, &input, options).await;
        tracing::info!(run_id = %report.run_id, ok = report.outcome.is_ok(), "test saw a run end");
    }

    // The outbound pipeline inserting the secret as a bearer token and as a
    // query parameter, to a loopback echo server.
    let echo = airlock_tests::fakes::echo().await;
    for auth in [
        serde_json::json!({"bearer": "SECRET"}),
        serde_json::json!({"query": ["api_key", "SECRET"]}),
    ] {
        let mut options = RunOptions::local("http-probe");
        options.secrets = RunSecrets::new(
            SecretGrants {
                names: ["SECRET".into()].into(),
                reveal: Default::default(),
            },
            [("SECRET".to_string(), Zeroizing::new(SECRET.to_string()))],
        );
        options.http_grants = airlock_host_api::http::pipeline::HttpGrants {
            apps: Default::default(),
            allowed_hosts: vec!["127.0.0.1".into()],
        };
        let input =
            serde_json::json!({"url": echo.url("/trace?x=1"), "auth": auth, "log_response": true});
        let report = http_engine.run(&probe, &input.to_string(), options).await;
        assert!(report.outcome.is_ok(), "{:?}", report.outcome);
    }
    assert_eq!(
        echo.requests().len(),
        2,
        "both requests reached the upstream"
    );

    // The store encrypting and decrypting it, and failing to with a wrong key.
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStore::open(dir.path()).await.unwrap();
    let key = MasterKey::generate().unwrap();
    store.set(&key, "local", "SECRET", SECRET).await.unwrap();
    let back = store.get(&key, "local", "SECRET").await.unwrap().unwrap();
    assert_eq!(back.as_str(), SECRET);
    let wrong = MasterKey::generate().unwrap();
    assert!(store.get(&wrong, "local", "SECRET").await.is_err());
    store.close().await;

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The capture is live: the host's own events are in it.
    assert!(
        text.contains("run finished"),
        "no host events captured:\n{text}"
    );
    assert!(text.contains("test saw a run end"));
    assert!(
        text.contains("hyper_util") && text.contains("reqwest"),
        "the HTTP stack's own events are in the capture"
    );
    for needle in [SECRET, "trace_canary", "Vb7Qm2Xk9Lp4"] {
        assert!(!text.contains(needle), "tracing leaked {needle:?}:\n{text}");
    }
}
