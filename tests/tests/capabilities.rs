//! The capability seam (`airlock_host_api::capability`): a capability left
//! out of an engine's list has no imports — a component needing it fails
//! to link, naming the interface — and the standard list prepares each
//! capability's own state for a run, in order, with the run's parts.

use std::sync::Arc;

use airlock_host_api::capability::{Capabilities, RunHost, RunSetup, StoreData};
use airlock_host_api::context::{Context, RunContext};
use airlock_host_api::http::HttpState;
use airlock_host_api::http::pipeline::HttpGrants;
use airlock_host_api::log::{Log, LogSink};
use airlock_host_api::redact::Redactor;
use airlock_host_api::secrets::{RunSecrets, SecretGrants, SecretsState};
use airlock_host_api::wasi_http::WasiHttpRun;
use airlock_host_api::{HostCallLimits, secrets::Secrets};
use airlock_tests::{component_bytes, examples, guests};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use zeroize::Zeroizing;

/// A store's data as an embedder other than the runtime would write it.
struct Data {
    wasi: WasiCtx,
    table: ResourceTable,
    host: RunHost,
}

impl WasiView for Data {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for Data {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        self.host
            .state_mut::<WasiHttpRun>()
            .expect("wasi:http registered")
            .view(&mut self.table)
    }
}

impl StoreData for Data {
    fn run_host(&mut self) -> &mut RunHost {
        &mut self.host
    }
}

fn engine() -> wasmtime::Engine {
    wasmtime::Engine::new(&wasmtime::Config::new()).unwrap()
}

fn linker(engine: &wasmtime::Engine, capabilities: &Capabilities<Data>) -> Linker<Data> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    capabilities.add_to_linker(&mut linker).unwrap();
    linker
}

fn setup(secrets: RunSecrets) -> RunSetup {
    let redactor = Arc::new(Redactor::new());
    RunSetup {
        context: RunContext::local("run-1", "probe"),
        secrets,
        http_grants: HttpGrants {
            apps: Default::default(),
            allowed_hosts: vec!["api.example.com".into()],
        },
        run_accounts: None,
        deadline: None,
        log: Arc::new(LogSink::new(64 * 1024, redactor)),
        limits: HostCallLimits::default(),
    }
}

#[test]
fn a_capability_left_out_of_the_list_is_not_linked() {
    let engine = engine();
    let only_log_and_context = Capabilities::<Data>::default().with(Log).with(Context);
    let refusing = linker(&engine, &only_log_and_context);

    // hello imports log and context only: it links.
    let hello = Component::new(&engine, component_bytes(examples::HELLO)).unwrap();
    refusing.instantiate_pre(&hello).unwrap();

    // secret-probe imports secrets, which this list does not offer.
    let probe = Component::new(&engine, component_bytes(guests::SECRET_PROBE)).unwrap();
    let err = refusing.instantiate_pre(&probe).err().expect("refused");
    let text = format!("{err:#}");
    assert!(text.contains("airlock:step/secrets"), "{text}");

    // With secrets registered it links.
    let with_secrets = Capabilities::<Data>::default()
        .with(Log)
        .with(Context)
        .with(Secrets);
    linker(&engine, &with_secrets)
        .instantiate_pre(&probe)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_list_prepares_each_capability_and_a_guest_uses_them() {
    let engine = engine();
    let capabilities = Capabilities::<Data>::standard(None);
    let linker = linker(&engine, &capabilities);
    let grants = SecretGrants {
        names: ["TOKEN".to_string()].into(),
        reveal: Default::default(),
    };
    let secret = "s3cr3t-value-0123456789";
    let secrets = RunSecrets::new(grants, [("TOKEN".into(), Zeroizing::new(secret.into()))]);
    let host = capabilities.prepare(setup(secrets));

    // Each capability with per-run state has its own, found by type.
    assert!(host.state::<SecretsState>().is_some());
    assert!(host.state::<WasiHttpRun>().is_some());
    let http = host.state::<HttpState>().expect("http state");
    assert!(http.calls().is_empty());
    assert_eq!(host.context().run_id, "run-1");

    // A guest's secrets.get goes through the secrets capability's state and
    // registers the value with the run's shared redactor.
    let redactor = host.redactor().clone();
    let mut store = wasmtime::Store::new(
        &engine,
        Data {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            host,
        },
    );
    let probe = Component::new(&engine, component_bytes(guests::SECRET_PROBE)).unwrap();
    let pre =
        airlock_host_api::bindings::StepPre::new(linker.instantiate_pre(&probe).unwrap()).unwrap();
    let step = pre.instantiate_async(&mut store).await.unwrap();
    let out = step
        .call_run(&mut store, r#"{"name":"TOKEN"}"#)
        .await
        .unwrap()
        .unwrap();
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["get"], "ok", "{out}");
    assert_eq!(out["reveal"], "RevealNotGranted", "{out}");
    assert_eq!(redactor.redact(secret).as_ref(), "[REDACTED:TOKEN]");
}
