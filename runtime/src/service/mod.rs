//! The run service: the one path by which `airlock serve` runs a step,
//! whether the runs API, an HTTP trigger or a queue worker ([`queue`]) asked.
//!
//! A run here costs, when warm, no database round trip but the write of its
//! record: the step's current version comes from the store's cache, its
//! plan (loaded component, parsed manifest, grants, limits) from
//! [`plan::PlanCache`] by version digest, the granted secrets' ciphertext
//! from the store's cache (opened per run). Then:
//!
//! 1. [`admission`]: a slot within a bounded wait, or [`ServiceError::Busy`];
//! 2. the engine runs the plan (the output comes back parsed and masked);
//! 3. [`recorder`]: the record joins the next group commit, and the answer
//!    waits for it to be durable.
//!
//! `airlock run` builds the same [`plan::StepPlan`] from a file and runs it
//! through the same engine.

pub mod admission;
pub mod callbacks;
pub mod live;
pub mod outcome;
pub mod plan;
pub mod queue;
pub mod recorder;
pub mod schedules;

use std::sync::Arc;
use std::time::Duration;

use airlock_host_api::context::{RunContext, Trigger};
use airlock_host_api::http::run_accounts::RunAccounts;
use airlock_host_api::secrets::RunSecrets;
use tokio::sync::Semaphore;

use crate::engine::cancel::CancelFlag;
use crate::engine::{Engine, RunOptions, RunReport};
use crate::manifest::Manifest;
use crate::store::runs::RunRecord;
use crate::store::{self, MasterKey, SecretStore, StepStore, StoreError};
use admission::{Admission, Busy};
use plan::{PlanCache, StepPlan};
use recorder::Recorder;

/// Why a run did not happen (a run that happened and failed is a
/// [`RunReport`] with an error outcome, not this).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no step `{0}`")]
    NoStep(String),
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The host failed (a stored manifest or component that does not load):
    /// logged where it happened, reported without detail.
    #[error("internal error")]
    Internal,
}

/// One request to run a step's current version.
pub struct Invocation {
    pub project: String,
    pub step: String,
    /// The input, as JSON text.
    pub input: String,
    pub external_user_id: Option<String>,
    /// Keep metadata only in the record.
    pub nostore: bool,
    pub trigger: Trigger,
    /// Credentials passed with the run (never stored).
    pub run_accounts: Option<Arc<RunAccounts>>,
    /// Run this stored version (a pinned trigger) instead of the current.
    pub digest: Option<String>,
    /// Set when a queue worker runs one attempt of a queued run.
    pub queued: Option<QueuedAttempt>,
}

/// One attempt of a queued run, as its worker runs it.
pub struct QueuedAttempt {
    /// The queued run's id (the run keeps it over every attempt).
    pub run_id: String,
    /// From 1.
    pub attempt: u32,
    pub idempotency_key: Option<String>,
    /// Set to stop the attempt.
    pub cancel: Arc<CancelFlag>,
}

/// A run that happened: its report and the version it ran.
pub struct Ran {
    pub report: RunReport,
    pub digest: String,
    /// Unix milliseconds when it was admitted.
    pub created_at: i64,
}

/// Observes runs (the server's metrics); the service itself needs none.
pub trait RunObserver: Send + Sync {
    /// A run is about to execute; the guard lives while it does.
    fn started(&self) -> Box<dyn Send>;
    /// A run finished (or never started).
    fn finished(&self, trigger: &Trigger, report: &RunReport);
    /// A request waited `waited` for a slot (`admitted` false: it gave up).
    fn admission(&self, waited: Duration, admitted: bool, queue_depth: i64);
    /// A version was loaded (compiled, or read from the disk cache).
    fn loaded(&self, took: Duration);
}

/// Settings of the service.
#[derive(Debug, Clone, Copy)]
pub struct ServiceConfig {
    pub admission: admission::AdmissionConfig,
    /// Compiled components kept loaded at most, in bytes.
    pub loaded_budget_bytes: u64,
}

/// The run service. Cheap to clone.
#[derive(Clone)]
pub struct RunService {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    steps: StepStore,
    secrets: SecretStore,
    master_key: Arc<MasterKey>,
    plans: PlanCache,
    admission: Admission,
    recorder: Recorder,
    /// Bounds concurrent compiles (shared with uploads).
    compile_permits: Arc<Semaphore>,
    observer: Arc<dyn RunObserver>,
}

impl RunService {
    pub fn new(
        engine: Engine,
        secrets: SecretStore,
        master_key: Arc<MasterKey>,
        compile_permits: Arc<Semaphore>,
        observer: Arc<dyn RunObserver>,
        config: ServiceConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                steps: StepStore::new(&secrets),
                recorder: Recorder::start(secrets.db().clone()),
                plans: PlanCache::new(config.loaded_budget_bytes),
                admission: Admission::new(config.admission),
                engine,
                secrets,
                master_key,
                compile_permits,
                observer,
            }),
        }
    }

    /// The step tables the service reads versions from.
    pub fn steps(&self) -> &StepStore {
        &self.inner.steps
    }

    /// The database runs are stored in.
    pub fn db(&self) -> &store::Db {
        self.inner.secrets.db()
    }

    /// Requests waiting for a run slot now.
    pub fn queue_depth(&self) -> i64 {
        self.inner.admission.waiting()
    }

    /// Runs the current version of the invoked step once. The report's
    /// output and error are masked; nothing is recorded (see
    /// [`record`](Self::record)).
    pub async fn run(&self, invocation: Invocation) -> Result<Ran, ServiceError> {
        let inner = &self.inner;
        let plan = self
            .plan(
                &invocation.project,
                &invocation.step,
                invocation.digest.as_deref(),
            )
            .await?;
        let values = store::load_granted(
            &inner.secrets,
            &inner.master_key,
            &invocation.project,
            &plan.secret_names,
        )
        .await?;
        // A queued run waits in the queue, not in front of the caller: no
        // bound on its wait for a slot (its worker holds no one's request).
        let wait = match &invocation.queued {
            Some(_) => None,
            None => Some(inner.admission.config().max_wait),
        };
        let admitted = match inner
            .admission
            .admit_within(&invocation.project, wait)
            .await
        {
            Ok(a) => a,
            Err(busy) => {
                let waited = inner.admission.config().max_wait;
                inner
                    .observer
                    .admission(waited, false, inner.admission.waiting());
                return Err(busy.into());
            }
        };
        inner
            .observer
            .admission(admitted.waited, true, inner.admission.waiting());
        let created_at = unix_millis();
        // Version 7: ids sort by time, so runs of the same millisecond still
        // list newest first.
        let queued = invocation.queued.as_ref();
        // A queued run's id is known before it runs, so its log can be
        // followed live (a `nostore` run keeps no log anywhere, live rows
        // included).
        let live = queued.filter(|_| !invocation.nostore).map(|q| {
            live::Live::start(
                crate::store::live_logs::LiveLogStore::new(inner.secrets.db().clone()),
                q.run_id.clone(),
                q.attempt,
            )
        });
        let options = RunOptions {
            context: RunContext {
                run_id: queued
                    .map_or_else(|| uuid::Uuid::now_v7().to_string(), |q| q.run_id.clone()),
                step: invocation.step.clone(),
                project: invocation.project.clone(),
                external_user_id: invocation.external_user_id.clone(),
                trigger: invocation.trigger,
                attempt: queued.map_or(1, |q| q.attempt),
                idempotency_key: queued.and_then(|q| q.idempotency_key.clone()),
            },
            limits: Some(plan.limits),
            secrets: RunSecrets::new(plan.secret_grants.clone(), values),
            http_grants: plan.http_grants.clone(),
            run_accounts: invocation.run_accounts.clone(),
            cancel: queued.map(|q| q.cancel.clone()),
            live: live.as_ref().map(|l| l.tap.clone()),
        };
        let report = {
            let _active = inner.observer.started();
            inner
                .engine
                .run(&plan.step, &invocation.input, options)
                .await
        };
        if let Some(live) = live {
            live.finished().await;
        }
        drop(admitted);
        inner.observer.finished(&invocation.trigger, &report);
        Ok(Ran {
            report,
            digest: plan.digest.clone(),
            created_at,
        })
    }

    /// Keeps the plan of a version just uploaded (and loaded), so its first
    /// run does not load it again.
    pub fn preload(
        &self,
        digest: String,
        manifest: Manifest,
        step: Arc<crate::engine::LoadedStep>,
    ) {
        let plan = StepPlan::new(digest, manifest, step, self.inner.engine.config());
        self.inner.plans.insert(Arc::new(plan));
    }

    /// Stores `record` in the next group commit; returns once it is durable.
    pub async fn record(&self, record: RunRecord) -> Result<(), StoreError> {
        self.inner.recorder.record(record).await
    }

    /// The plan of `project`/`step`'s current version (or of the pinned
    /// `digest`): from the cache by digest, or built once (loading the
    /// component when the engine does not hold it).
    async fn plan(
        &self,
        project: &str,
        step: &str,
        pinned: Option<&str>,
    ) -> Result<Arc<StepPlan>, ServiceError> {
        let inner = &self.inner;
        let version = match pinned {
            Some(digest) => inner.steps.version(project, step, digest).await?,
            None => inner.steps.current(project, step).await?,
        }
        .ok_or_else(|| ServiceError::NoStep(step.to_owned()))?;
        if let Some(plan) = inner.plans.get(&version.digest) {
            return Ok(plan);
        }
        let manifest = Manifest::parse(&version.manifest).map_err(|e| {
            tracing::error!(%project, %step, error = %e, "a stored manifest does not parse");
            ServiceError::Internal
        })?;
        let loaded = match inner.engine.loaded(&version.component_digest) {
            Some(loaded) => loaded,
            None => {
                let component = inner
                    .steps
                    .component(project, step, &version.digest)
                    .await?
                    .ok_or_else(|| ServiceError::NoStep(step.to_owned()))?;
                let _permit = inner
                    .compile_permits
                    .acquire()
                    .await
                    .map_err(|_| ServiceError::Internal)?;
                let started = std::time::Instant::now();
                let loaded = inner.engine.load(component).await.map_err(|e| {
                    tracing::error!(%project, %step, error = %e, "a stored component does not load");
                    ServiceError::Internal
                })?;
                inner.observer.loaded(started.elapsed());
                loaded
            }
        };
        let plan = Arc::new(StepPlan::new(
            version.digest,
            manifest,
            loaded,
            inner.engine.config(),
        ));
        inner.plans.insert(plan.clone());
        Ok(plan)
    }
}

/// Unix milliseconds now.
pub fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Invocation {
    /// The input as given, for a record (`None` when metadata only).
    pub fn stored_input(&self) -> Option<String> {
        (!self.nostore).then(|| self.input.clone())
    }
}
