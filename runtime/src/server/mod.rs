//! `airlock serve`: the REST API (axum) with platform auth.
//!
//! - [`config`]: flags, environment and the `--config` file.
//! - [`error`]: the one JSON error shape, for our failures and axum's rejections.
//! - [`auth`]: bearer API keys and OAuth access tokens, scopes, projects, audit.
//! - [`health`], [`projects`], [`keys`], [`oauth_clients`], [`token`] (the
//!   OAuth token endpoint, whose errors follow RFC 6749), [`secrets`],
//!   [`steps`], [`runs`], [`triggers`], [`schedules`], [`audit`], [`apps`],
//!   [`accounts`], [`proxy`]: the routes (`/t/{id}`, the public trigger route, has no
//!   bearer auth).
//! - [`time`]: the one form of every timestamp in a response (RFC 3339 UTC,
//!   milliseconds).
//! - Operations: [`metrics`] (`GET /metrics`), [`ratelimit`] (triggers and
//!   failed token requests), [`retention`] (old run records), [`panic`] (a
//!   panicking handler answers 500).
//!
//! The OpenAPI 3.1 document is generated from the handlers ([`ApiDoc`]) and
//! served at `GET /v1/openapi.json`.

pub mod accounts;
pub mod apps;
pub mod audit;
pub mod auth;
pub mod config;
pub mod connect;
pub mod console;
pub mod error;
pub mod health;
pub mod keys;
pub mod metrics;
pub mod oauth_clients;
pub mod panic;
pub mod params;
pub mod periodic;
pub mod projects;
pub mod proxy;
pub mod queued;
pub mod ratelimit;
pub mod rerun;
pub mod retention;
pub mod run_logs;
pub mod runs;
pub mod schedules;
pub mod secrets;
pub mod steps;
pub mod time;
pub mod token;
pub mod triggers;
pub mod usage;

use std::net::SocketAddr;
use std::sync::Arc;

use airlock_host_api::apps::Catalog;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, delete, get, post, put};
use utoipa::OpenApi as _;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

use airlock_host_api::http::pipeline::Pipeline;
use airlock_host_api::http::ratelimit::RateLimiter;

use crate::engine::{Engine, EngineConfig};
use crate::outbound::{self, OutboundConfig, StoredAccounts};
use crate::store::{MasterKey, PlatformStore, RunStore, SecretStore, StepStore, TriggerStore};
pub use config::{ServeArgs, ServeConfig};

/// Largest request body, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub secrets: SecretStore,
    pub platform: PlatformStore,
    pub master_key: Arc<MasterKey>,
    pub token_ttl_secs: u64,
    pub steps: StepStore,
    pub runs: RunStore,
    pub triggers: TriggerStore,
    /// Queued runs (rows of the run table).
    pub queue: crate::store::queue::QueueStore,
    /// Validates, compiles and runs steps; its runs send through `pipeline`.
    pub engine: Engine,
    /// The one outbound pipeline: steps' `http.send` and the proxy.
    pub pipeline: Arc<Pipeline>,
    /// Bounds concurrent compiles of uploaded components (and of steps run
    /// cold).
    pub compile_permits: Arc<tokio::sync::Semaphore>,
    /// The one run path: plans, admission, group-committed records.
    pub service: crate::service::RunService,
    // --- operations: metrics and rate limits ---
    pub metrics: Arc<metrics::Metrics>,
    pub rate_limits: Arc<ratelimit::RateLimits>,
    /// Connect (tokens, the hosted page, webhooks); `serve` sets it.
    pub connect: Option<Arc<crate::connect::Connect>>,
    /// Open log streams, bounded, ended at shutdown.
    pub log_streams: Arc<run_logs::Streams>,
}

/// How often idle shared rate-limit keys are swept.
const RATE_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// Concurrent compiles of uploaded components.
pub const COMPILE_PERMITS: usize = 2;

impl AppState {
    /// The state over an opened store, with a fresh engine.
    pub fn new(
        secrets: SecretStore,
        master_key: Arc<MasterKey>,
        token_ttl_secs: u64,
        engine: Engine,
        pipeline: Arc<Pipeline>,
        service: crate::service::ServiceConfig,
    ) -> Self {
        let metrics = Arc::new(metrics::Metrics::new());
        let compile_permits = Arc::new(tokio::sync::Semaphore::new(COMPILE_PERMITS));
        let service = crate::service::RunService::new(
            engine.clone(),
            secrets.clone(),
            master_key.clone(),
            compile_permits.clone(),
            metrics.clone(),
            service,
        );
        Self {
            service,
            platform: PlatformStore::new(&secrets),
            steps: StepStore::new(&secrets),
            runs: RunStore::new(&secrets),
            triggers: TriggerStore::new(&secrets),
            queue: crate::store::queue::QueueStore::new(secrets.db().clone()),
            secrets,
            master_key,
            token_ttl_secs,
            engine,
            pipeline,
            compile_permits,
            // --- operations (`serve` sets the configured limits) ---
            metrics,
            rate_limits: Arc::new(ratelimit::RateLimits::default()),
            connect: None,
            log_streams: Arc::default(),
        }
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("master_key_id", &self.master_key.id())
            .field("token_ttl_secs", &self.token_ttl_secs)
            .finish_non_exhaustive()
    }
}

/// The OpenAPI document of the API.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Airlock API", description = "The REST API of `airlock serve`."),
    paths(
        health::healthz,
        health::readyz,
        projects::create,
        projects::list,
        projects::get,
        projects::get_limits,
        projects::put_limits,
        keys::create,
        keys::list,
        keys::delete,
        keys::rotate,
        oauth_clients::create,
        oauth_clients::list,
        oauth_clients::rotate_secret,
        oauth_clients::delete,
        token::token,
        secrets::put,
        secrets::delete,
        secrets::list,
        steps::put,
        steps::list,
        steps::get,
        steps::delete,
        steps::set_current,
        usage::get,
        runs::create,
        runs::get,
        runs::list,
        queued::cancel,
        rerun::rerun,
        run_logs::get,
        triggers::create,
        triggers::list,
        triggers::delete,
        triggers::fire,
        triggers::fire_path,
        schedules::create,
        schedules::list_for_step,
        schedules::list,
        schedules::get,
        schedules::update,
        schedules::delete,
        audit::list,
        apps::list,
        apps::get,
        accounts::create,
        accounts::list,
        accounts::get,
        accounts::delete,
        proxy::forward,
        metrics::metrics,
        connect::tokens::create,
        connect::tokens::get,
        connect::tokens::delete,
    ),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI document as pretty JSON (what `GET /v1/openapi.json` serves).
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

async fn openapi_route() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi_json(),
    )
        .into_response()
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/v1/openapi.json", get(openapi_route))
        .route("/v1/projects", post(projects::create).get(projects::list))
        .route("/v1/projects/{name}", get(projects::get))
        .route(
            "/v1/projects/{project}/limits",
            get(projects::get_limits).put(projects::put_limits),
        )
        .route("/v1/projects/{project}/secrets", get(secrets::list))
        .route(
            "/v1/projects/{project}/secrets/{name}",
            put(secrets::put).delete(secrets::delete),
        )
        .route("/v1/projects/{project}/steps", get(steps::list))
        .route(
            "/v1/projects/{project}/steps/{step}",
            put(steps::put)
                .layer(DefaultBodyLimit::max(steps::MAX_UPLOAD_BYTES))
                .get(steps::get)
                .delete(steps::delete),
        )
        .route(
            "/v1/projects/{project}/steps/{step}/runs",
            post(runs::create),
        )
        .route(
            "/v1/projects/{project}/steps/{step}/triggers",
            post(triggers::create).get(triggers::list),
        )
        .route(
            "/v1/projects/{project}/steps/{step}/triggers/{id}",
            delete(triggers::delete),
        )
        .route(
            "/v1/projects/{project}/steps/{step}/schedules",
            post(schedules::create).get(schedules::list_for_step),
        )
        .route("/v1/projects/{project}/schedules", get(schedules::list))
        .route(
            "/v1/projects/{project}/schedules/{id}",
            get(schedules::get)
                .patch(schedules::update)
                .delete(schedules::delete),
        )
        .route("/t/{id}", any(triggers::fire))
        .route("/t/{id}/{*rest}", any(triggers::fire))
        .route(
            "/v1/projects/{project}/steps/{step}/current",
            put(steps::set_current),
        )
        .route("/v1/projects/{project}/usage", get(usage::get))
        .route("/v1/projects/{project}/runs", get(runs::list))
        .route("/v1/projects/{project}/runs/{id}", get(runs::get))
        .route("/v1/projects/{project}/runs/{id}/logs", get(run_logs::get))
        .route(
            "/v1/projects/{project}/runs/{id}/cancel",
            post(queued::cancel),
        )
        .route("/v1/projects/{project}/runs/{id}/rerun", post(rerun::rerun))
        .route(
            "/v1/projects/{project}/proxy/{url}",
            get(proxy::forward)
                .post(proxy::forward)
                .put(proxy::forward)
                .patch(proxy::forward)
                .delete(proxy::forward),
        )
        .route("/v1/keys", post(keys::create).get(keys::list))
        .route("/v1/keys/{id}", delete(keys::delete))
        .route("/v1/keys/{id}/rotate", post(keys::rotate))
        .route(
            "/v1/oauth/clients",
            post(oauth_clients::create).get(oauth_clients::list),
        )
        .route("/v1/oauth/clients/{id}", delete(oauth_clients::delete))
        .route(
            "/v1/oauth/clients/{id}/rotate-secret",
            post(oauth_clients::rotate_secret),
        )
        .route(
            token::PATH,
            post(token::token).fallback(token::method_not_allowed),
        )
        .route("/v1/audit", get(audit::list))
        .route("/v1/apps", get(apps::list))
        .route("/v1/apps/{slug}", get(apps::get))
        .route(
            "/v1/projects/{project}/accounts",
            post(accounts::create).get(accounts::list),
        )
        .route(
            "/v1/projects/{project}/accounts/{id}",
            get(accounts::get).delete(accounts::delete),
        )
        .route("/metrics", get(metrics::metrics))
        .route(
            "/v1/projects/{project}/connect/tokens",
            post(connect::tokens::create),
        )
        .route(
            "/v1/projects/{project}/connect/tokens/{id}",
            get(connect::tokens::get).delete(connect::tokens::delete),
        )
        .merge(connect::page_routes())
        .merge(console::routes())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_forbidden,
        ));
    layered(routes.with_state(state))
}

/// `routes` inside the layers every answer passes: a panic becomes the JSON
/// 500 ([`panic`]), then [`guard`] (body size, `no-store`).
fn layered(routes: Router) -> Router {
    routes
        .layer(panic::layer())
        .layer(axum::middleware::from_fn(guard))
}

/// Refuses a body whose `Content-Length` is over [`MAX_BODY_BYTES`] before
/// reading any of it (chunked bodies are cut by `DefaultBodyLimit` as read),
/// and marks every response `Cache-Control: no-store`.
async fn guard(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = if is_upload(&request) {
        steps::MAX_UPLOAD_BYTES
    } else {
        MAX_BODY_BYTES
    };
    if announced.is_some_and(|n| n > limit as u64) {
        // The body stays unread, so this connection cannot carry another
        // request: say so, or a client may reuse it and lose its next request.
        let mut response = if request.uri().path() == token::PATH {
            token::OAuthError::payload_too_large().into_response()
        } else {
            error::payload_too_large().into_response()
        };
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        return no_store(response);
    }
    no_store(next.run(request).await)
}

/// Whether `request` is a step upload (`PUT /v1/projects/{p}/steps/{s}`),
/// the one route with a larger body limit.
fn is_upload(request: &axum::extract::Request) -> bool {
    if request.method() != axum::http::Method::PUT {
        return false;
    }
    let segments: Vec<&str> = request.uri().path().split('/').collect();
    matches!(segments.as_slice(), ["", "v1", "projects", _, "steps", _])
}

/// API answers may hold credentials shown once: no cache may keep them.
fn no_store(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Key(#[from] crate::store::KeyError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error(transparent)]
    Outbound(#[from] crate::outbound::OutboundError),
    #[error("cannot load the app catalog: {0}")]
    Catalog(#[source] crate::outbound::OutboundError),
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the store, binds, prints `listening on http://ADDR` on stdout and
/// serves until SIGINT or SIGTERM; in-flight requests finish first.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    // No master key, no server: secrets are never stored in plaintext.
    let master_key = MasterKey::from_env_or_file(config.master_key_file.as_deref())?;
    // An invalid app file stops the start, naming the file and field.
    let catalog = crate::outbound::load_catalog(config.outbound.apps_dir.as_deref())
        .map_err(ServeError::Catalog)?;
    let secrets = crate::store::config::open(&config.data_dir, &config.database).await?;
    // A key that is not the one the stored values are sealed under would make
    // every read fail later: refuse now, naming both key ids.
    secrets.check_keyring(&master_key).await?;
    let master_key = Arc::new(master_key);
    // The refresher tells Connect of accounts it marks `needs_reauth`; the
    // Connect service exists once the address is known (below).
    let connect_cell = Arc::new(std::sync::OnceLock::new());
    let (pipeline, policy, client) = outbound_pipeline(
        &config.outbound,
        Arc::new(catalog),
        &secrets,
        &master_key,
        connect_cell.clone(),
    )?;
    let engine = Engine::with_http(
        EngineConfig {
            cache_dir: Some(config.data_dir.join("cache")),
            // One pool slot per admitted run: admission is the queue.
            max_concurrent_runs: u32::try_from(config.service.admission.max_concurrent)
                .unwrap_or(u32::MAX),
            ..EngineConfig::default()
        },
        pipeline.clone(),
    )?;
    let mut state = AppState::new(
        secrets.clone(),
        master_key,
        config.token_ttl_secs,
        engine,
        pipeline,
        config.service,
    );
    state.rate_limits = Arc::new(ratelimit::RateLimits::with_stores(
        config.trigger_rate_limit,
        outbound::rate_limit_store(secrets.db(), "trigger"),
        outbound::rate_limit_store(secrets.db(), "token"),
    ));
    // Old runs go before the server answers; then hourly in the background.
    let retention = match config.retention_days {
        Some(days) => {
            retention::sweep(&state.runs, &state.metrics, days).await?;
            Some(retention::spawn(
                secrets.db().clone(),
                state.runs.clone(),
                state.metrics.clone(),
                days,
                std::time::Duration::from_secs(config.retention_interval_secs),
            ))
        }
        None => None,
    };
    // Shared rate-limit keys idle for their period are forgotten.
    let rate_sweep = {
        let db = secrets.db().clone();
        periodic::spawn(
            db.clone(),
            "rate-limit-sweep",
            RATE_SWEEP_INTERVAL,
            move || {
                let db = db.clone();
                async move {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as i64)
                        .unwrap_or(0);
                    if let Err(e) = db.rate_sweep(now).await {
                        tracing::warn!(error = %e, "cannot sweep idle rate-limit keys");
                    }
                }
            },
        )
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    let public_url = match &config.public_url {
        Some(url) => url.clone(),
        None => url::Url::parse(&format!("http://{addr}")).expect("an address is a URL"),
    };
    let connect = Arc::new(crate::connect::Connect::new(
        &public_url,
        secrets.clone(),
        state.master_key.clone(),
        client,
        policy,
    ));
    let _ = connect_cell.set(connect.clone());
    state.connect = Some(connect.clone());
    let webhook_worker = crate::connect::webhooks::spawn(connect.clone());
    // Queued runs of every node's callers, run here as slots allow.
    let queue_workers = crate::service::queue::spawn(
        state.service.clone(),
        secrets.db().clone(),
        crate::service::queue::QueueConfig {
            lease: config.run_lease,
            poll: crate::service::queue::POLL,
            slots: config.service.admission.max_concurrent,
        },
    );
    // Due cron schedules, fired once per tick across every node.
    let scheduler = crate::service::schedules::spawn(secrets.db().clone());
    let connect_sweep = {
        let connect = connect.clone();
        periodic::spawn(
            secrets.db().clone(),
            "connect-sweep",
            RATE_SWEEP_INTERVAL,
            move || {
                let connect = connect.clone();
                async move {
                    if let Err(e) = connect.store.sweep().await {
                        tracing::warn!(error = %e, "cannot sweep expired connect sessions");
                    }
                }
            },
        )
    };
    println!("listening on http://{addr}");
    tracing::info!(%addr, database = secrets.db().backend().as_str(), "airlock serve listening");
    let log_streams = state.log_streams.clone();
    let live_sweep = run_logs::spawn_sweep(secrets.db().clone());
    let use_marks = crate::store::credential_use::spawn_flush(secrets.clone());
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            log_streams.shut_down();
        })
        .await?;
    if let Some(task) = retention {
        task.abort();
    }
    rate_sweep.abort();
    connect_sweep.abort();
    webhook_worker.abort();
    scheduler.abort();
    live_sweep.abort();
    use_marks.abort();
    // The last minute's marks of credential use.
    if let Err(e) = secrets.caches().uses.flush(secrets.db()).await {
        tracing::warn!(error = %e, "cannot write credential use marks");
    }
    // Attempts still running are dropped; their leases run out and another
    // node (or this one, restarted) runs them again.
    drop(queue_workers);
    tracing::info!("airlock serve stopped");
    secrets.close().await;
    Ok(())
}

/// The pipeline of this server: the operator's ranges, apps, timeout and
/// quota, with connected accounts from the store.
type OutboundParts = (
    Arc<Pipeline>,
    Arc<airlock_host_api::http::egress::EgressPolicy>,
    reqwest::Client,
);

fn outbound_pipeline(
    config: &OutboundConfig,
    catalog: Arc<Catalog>,
    secrets: &SecretStore,
    master_key: &Arc<MasterKey>,
    connect: Arc<std::sync::OnceLock<Arc<crate::connect::Connect>>>,
) -> Result<OutboundParts, ServeError> {
    let (policy, client) = outbound::policy_and_client(config)?;
    let accounts = Arc::new(
        StoredAccounts::new(
            secrets.clone(),
            master_key.clone(),
            client.clone(),
            policy.clone(),
        )
        .with_needs_reauth_hook(Arc::new(crate::connect::webhooks::ReauthWebhooks(connect))),
    );
    let limiter = RateLimiter::with_store(
        config.quota,
        outbound::rate_limit_store(secrets.db(), "outbound"),
    );
    let pipeline = outbound::pipeline_with(
        config,
        policy.clone(),
        client.clone(),
        catalog,
        accounts,
        limiter,
    );
    Ok((pipeline, policy, client))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down; finishing in-flight requests");
}
