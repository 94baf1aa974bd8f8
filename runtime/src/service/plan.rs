//! A step version made ready to run: the loaded component, the parsed
//! manifest, its grants and limits — worked out once per version, not per
//! run.
//!
//! Why by version digest: a version is immutable (its digest covers the
//! component and the manifest), so a plan never goes stale and needs no
//! invalidation; which version is *current* is the store's cached answer,
//! invalidated when a step changes. The cache is bounded by the memory its
//! compiled components take ([`PlanCache`]), so memory does not grow with the
//! number of steps ever run: an evicted step is loaded again, from the disk
//! cache, at its next run.

use std::sync::Arc;

use airlock_host_api::http::pipeline::HttpGrants;
use airlock_host_api::secrets::SecretGrants;
use moka::sync::Cache;

use crate::engine::{EngineConfig, LoadedStep, RunLimits};
use crate::manifest::Manifest;

/// What running one step version needs besides its input.
#[derive(Debug)]
pub struct StepPlan {
    pub digest: String,
    pub manifest: Manifest,
    pub secret_grants: SecretGrants,
    /// The granted names, in the manifest's order, for one store read.
    pub secret_names: Vec<String>,
    pub http_grants: HttpGrants,
    pub limits: RunLimits,
    pub step: Arc<LoadedStep>,
}

impl StepPlan {
    /// The plan of `manifest` over `step`, with limits bounded by `engine`'s
    /// defaults.
    pub fn new(
        digest: String,
        manifest: Manifest,
        step: Arc<LoadedStep>,
        engine: &EngineConfig,
    ) -> Self {
        let secret_grants = manifest.grants();
        Self {
            digest,
            secret_names: secret_grants.names.iter().cloned().collect(),
            secret_grants,
            http_grants: manifest.http_grants(),
            limits: manifest.limits_over(engine.default_limits),
            manifest,
            step,
        }
    }
}

/// Plans by version digest, weighed by their compiled size.
pub struct PlanCache {
    plans: Cache<String, Arc<StepPlan>>,
}

impl PlanCache {
    /// A cache holding at most `budget_bytes` of compiled components (a
    /// plan counts at least 64 KiB, so tiny steps are bounded in number too).
    pub fn new(budget_bytes: u64) -> Self {
        let plans = Cache::builder()
            .max_capacity(budget_bytes)
            .weigher(|_, plan: &Arc<StepPlan>| {
                let bytes = plan.step.compiled_bytes().max(64 * 1024);
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .build();
        Self { plans }
    }

    pub fn get(&self, digest: &str) -> Option<Arc<StepPlan>> {
        self.plans.get(digest)
    }

    /// Evictions run before this returns: the cache applies them lazily
    /// otherwise, so a burst of cold loads could hold more than the budget
    /// until its next housekeeping. An insert is a cold load, rare enough
    /// to pay for that.
    pub fn insert(&self, plan: Arc<StepPlan>) {
        self.plans.insert(plan.digest.clone(), plan);
        self.plans.run_pending_tasks();
    }

    /// Plans held now (after pending evictions).
    pub fn len(&self) -> u64 {
        self.plans.run_pending_tasks();
        self.plans.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
