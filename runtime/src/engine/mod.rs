//! The engine: one wasmtime `Engine` per process, narrowed to the single
//! async path Airlock uses to run a step.
//!
//! | concern | module |
//! | --- | --- |
//! | wasmtime `Config`: features, pooling, epochs, stack zeroing | [`config`] |
//! | the epoch ticker thread | [`epoch`] |
//! | per-run limits: memory limiter, CPU budget | [`limits`] |
//! | stdout/stderr capture into the run's log | [`stdio`] |
//! | what a component must and must not be | [`validate`] |
//! | compile once per digest, cached on disk | [`cache`] |
//! | the step's output and error, parsed and masked | [`output`] |
//! | one run: store, instantiate, call, classify | [`run`] |

pub mod cache;
pub mod cancel;
pub mod config;
pub mod epoch;
pub mod limits;
pub mod output;
pub mod run;
pub mod stdio;
pub mod validate;

mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use airlock_host_api::Capabilities;
use airlock_host_api::bindings::StepPre;
use airlock_host_api::http::pipeline::Pipeline;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};

pub use config::EngineConfig;
pub use limits::RunLimits;
pub use output::StepError;
pub use run::{LimitKind, RunFailure, RunOptions, RunReport, RunStats};
pub use validate::LoadError;

use state::RunState;

/// Errors building the engine itself (not a step's fault).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid engine configuration: {0}")]
    Config(String),
    #[error("cannot create the compile cache directory {path}: {source}")]
    CacheDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// A validated, compiled step ready to instantiate.
pub struct LoadedStep {
    digest: String,
    pre: StepPre<RunState>,
    /// Bytes of its compiled image in memory.
    compiled_bytes: usize,
}

/// `sha256:<hex>` of a component's bytes: what names it in the caches.
pub fn component_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl LoadedStep {
    /// `sha256:<hex>` of the component bytes it was compiled from.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Bytes its compiled code takes in memory (what a cache of loaded
    /// steps weighs it by).
    pub fn compiled_bytes(&self) -> usize {
        self.compiled_bytes
    }
}

impl std::fmt::Debug for LoadedStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedStep")
            .field("digest", &self.digest)
            .finish()
    }
}

/// The process-wide engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    wasmtime: wasmtime::Engine,
    linker: Linker<RunState>,
    config: EngineConfig,
    /// One permit per pooling-allocator slot: a full pool queues here
    /// instead of failing instantiation.
    permits: Semaphore,
    cache: cache::ArtifactCache,
    /// Steps loaded and still held by someone (a plan cache, a caller):
    /// loading a digest twice shares one, and the engine itself keeps
    /// nothing alive, so whoever caches steps bounds their memory.
    loaded: Mutex<HashMap<String, Weak<LoadedStep>>>,
    /// What a step may ask of the host; the http capability holds the
    /// outbound pipeline shared by every run (or none, denying HTTP).
    capabilities: Capabilities<RunState>,
    _ticker: epoch::EpochTicker,
}

impl Engine {
    /// An engine whose runs may make outbound requests through `http`.
    pub fn with_http(config: EngineConfig, http: Arc<Pipeline>) -> Result<Self, EngineError> {
        Self::build(config, Some(http))
    }

    /// An engine whose runs have no outbound HTTP.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        Self::build(config, None)
    }

    fn build(config: EngineConfig, http: Option<Arc<Pipeline>>) -> Result<Self, EngineError> {
        let wasmtime = wasmtime::Engine::new(&config.wasmtime_config())
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let capabilities = Capabilities::standard(http);
        let linker = state::linker(&wasmtime, &capabilities)
            .map_err(|e| EngineError::Config(e.to_string()))?;
        let cache = cache::ArtifactCache::open(&wasmtime, config.cache_dir.as_deref())?;
        let ticker = epoch::EpochTicker::start(&wasmtime, config.epoch_tick);
        let permits = Semaphore::new(config.max_concurrent_runs as usize);
        Ok(Self {
            inner: Arc::new(Inner {
                wasmtime,
                linker,
                config,
                permits,
                cache,
                loaded: Mutex::new(HashMap::new()),
                capabilities,
                _ticker: ticker,
            }),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Whether the component with `digest` (`sha256:<hex>` of its bytes, see
    /// [`component_digest`]) is loaded in memory, so [`Engine::load`] would
    /// neither compile it nor read the disk cache.
    pub fn is_loaded(&self, digest: &str) -> bool {
        self.loaded(digest).is_some()
    }

    /// The compiled step with `digest`, if it is loaded in memory: a warm
    /// run needs neither the component bytes nor a hash over them.
    pub fn loaded(&self, digest: &str) -> Option<Arc<LoadedStep>> {
        self.lock_loaded().get(digest).and_then(Weak::upgrade)
    }

    /// Validates and compiles `bytes` (or fetches the compiled step from the
    /// in-memory or on-disk cache). Compilation runs on a blocking thread.
    pub async fn load(&self, bytes: Vec<u8>) -> Result<Arc<LoadedStep>, LoadError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.load_blocking(&bytes))
            .await
            .map_err(|e| LoadError::Internal(format!("compile task failed: {e}")))?
    }

    /// Like [`Engine::load`], on the calling thread.
    pub fn load_blocking(&self, bytes: &[u8]) -> Result<Arc<LoadedStep>, LoadError> {
        validate::check_header(bytes)?;
        let digest = component_digest(bytes);
        if let Some(step) = self.loaded(&digest) {
            return Ok(step);
        }
        // Imports first, from the binary: refusing them costs no compile.
        validate::check_binary(bytes)?;
        let (component, cached) = self.compile_cached(&digest, bytes)?;
        // Then the compiled component's own view of its types. Only a
        // component that passes is cached: nothing refused is kept.
        validate::check_imports(&self.inner.wasmtime, &component)?;
        validate::check_exports(&self.inner.wasmtime, &component)?;
        if !cached {
            self.inner.cache.put(&digest, &component);
        }
        let instance_pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = StepPre::new(instance_pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let image = component.image_range();
        let step = Arc::new(LoadedStep {
            digest: digest.clone(),
            pre,
            compiled_bytes: (image.end as usize).saturating_sub(image.start as usize),
        });
        let mut loaded = self.lock_loaded();
        loaded.retain(|_, weak| weak.strong_count() > 0);
        loaded.insert(digest, Arc::downgrade(&step));
        Ok(step)
    }

    /// Runs `step` once with `input` (JSON text) under `options`.
    pub async fn run(&self, step: &LoadedStep, input: &str, options: RunOptions) -> RunReport {
        run::execute(self, step, input, options).await
    }

    /// The component from the disk cache (`true`) or freshly compiled.
    fn compile_cached(&self, digest: &str, bytes: &[u8]) -> Result<(Component, bool), LoadError> {
        let engine = &self.inner.wasmtime;
        if let Some(component) = self.inner.cache.get(engine, digest) {
            return Ok((component, true));
        }
        let started = std::time::Instant::now();
        let component = Component::new(engine, bytes).map_err(|e| LoadError::Invalid {
            reason: format!("{e:#}"),
        })?;
        tracing::debug!(%digest, elapsed_ms = started.elapsed().as_millis() as u64, "compiled component");
        Ok((component, false))
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<LoadedStep>>> {
        self.inner.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }
}
