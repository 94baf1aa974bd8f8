//! A step's queue settings — its `[retry]` policy and `[concurrency]`
//! caps — parsed from a version's manifest once per version (versions are
//! immutable, so an entry never goes stale; the step's *current* version
//! is resolved through the step store's cache, which follows changes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::manifest::{Manifest, RetryPolicy};
use crate::store::queue::QueueCaps;
use crate::store::{Result, StepStore};

/// Versions whose settings are kept; past this the map starts afresh.
const KEPT: usize = 4096;

/// What the queue needs of one version's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Settings {
    pub retry: RetryPolicy,
    pub caps: QueueCaps,
}

pub(super) struct SettingsCache {
    steps: StepStore,
    by_digest: Mutex<HashMap<String, Arc<Settings>>>,
}

impl SettingsCache {
    pub fn new(steps: StepStore) -> Self {
        Self {
            steps,
            by_digest: Mutex::new(HashMap::new()),
        }
    }

    /// The settings of `project`/`step`'s current version (`None`: no
    /// such step, so nothing to cap; its runs fail as `no_step`).
    pub async fn current(&self, project: &str, step: &str) -> Result<Option<Arc<Settings>>> {
        let Some(v) = self.steps.current(project, step).await? else {
            return Ok(None);
        };
        Ok(self.parsed(&v.digest, &v.manifest))
    }

    /// The settings of version `digest`.
    pub async fn version(
        &self,
        project: &str,
        step: &str,
        digest: &str,
    ) -> Result<Option<Arc<Settings>>> {
        if let Some(hit) = self.lock().get(digest) {
            return Ok(Some(hit.clone()));
        }
        let Some(v) = self.steps.version(project, step, digest).await? else {
            return Ok(None);
        };
        Ok(self.parsed(&v.digest, &v.manifest))
    }

    fn parsed(&self, digest: &str, manifest: &str) -> Option<Arc<Settings>> {
        if let Some(hit) = self.lock().get(digest) {
            return Some(hit.clone());
        }
        // A stored manifest was validated at push; one that no longer
        // parses (an older binary's) gets no retries and no caps.
        let manifest = Manifest::parse(manifest).ok()?;
        let settings = Arc::new(Settings {
            retry: manifest.retry.policy().ok()?,
            caps: manifest.concurrency.caps(),
        });
        let mut map = self.lock();
        if map.len() >= KEPT {
            map.clear();
        }
        map.insert(digest.to_owned(), settings.clone());
        Some(settings)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Settings>>> {
        self.by_digest.lock().unwrap_or_else(|p| p.into_inner())
    }
}
