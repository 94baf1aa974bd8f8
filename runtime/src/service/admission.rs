//! Admission control: a bounded wait in front of the engine.
//!
//! Why: the engine runs at most `max_concurrent_runs` steps at once (the
//! pooling allocator's slots). Without a bound, every request beyond that
//! waited for a slot as long as it took — a thousand requests parked on a
//! slow upstream made the last caller wait minutes with no sign it was
//! queued. Here a request waits at most `max_wait` for a slot and otherwise
//! gets a prompt "busy" (the server's 503 with `Retry-After`), and no
//! project holds more than `per_project` slots, so one tenant's flood
//! cannot starve the others. The queue is the set of waiting futures: it
//! holds no request bodies beyond what each waiting request already holds,
//! and its depth is a metric.
//!
//! A run's wall-time limit starts when it gets its slot: time spent waiting
//! here is not charged to the step.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How the engine's slots are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Runs at once, over all projects.
    pub max_concurrent: usize,
    /// Runs at once of one project.
    pub per_project: usize,
    /// Longest a request waits for a slot.
    pub max_wait: Duration,
}

/// A request could not start within the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every run slot is busy; retry after {} s", .retry_after.as_secs())]
pub struct Busy {
    pub retry_after: Duration,
}

/// Held while a run executes; gives its slots back when dropped.
#[derive(Debug)]
pub struct Admitted {
    _project: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
    /// How long the request waited.
    pub waited: Duration,
}

/// The slots and the queue in front of them.
#[derive(Debug)]
pub struct Admission {
    config: AdmissionConfig,
    global: Arc<Semaphore>,
    projects: Mutex<HashMap<String, Arc<Semaphore>>>,
    waiting: AtomicI64,
}

impl Admission {
    pub fn new(config: AdmissionConfig) -> Self {
        Self {
            global: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            projects: Mutex::new(HashMap::new()),
            waiting: AtomicI64::new(0),
            config,
        }
    }

    pub fn config(&self) -> AdmissionConfig {
        self.config
    }

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> i64 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A slot for a run of `project`, within the configured wait.
    pub async fn admit(&self, project: &str) -> Result<Admitted, Busy> {
        self.admit_within(project, Some(self.config.max_wait)).await
    }

    /// A slot for a run of `project`, waiting at most `wait` (`None`: as
    /// long as it takes — a queue worker's run, which holds no caller).
    pub async fn admit_within(
        &self,
        project: &str,
        wait: Option<Duration>,
    ) -> Result<Admitted, Busy> {
        let started = Instant::now();
        let busy = Busy {
            retry_after: self.config.max_wait.max(Duration::from_secs(1)),
        };
        self.waiting.fetch_add(1, Ordering::Relaxed);
        // Far beyond any real wait; `Duration::MAX` would overflow the timer.
        let wait = wait.unwrap_or(Duration::from_secs(365 * 24 * 3600));
        let admitted = tokio::time::timeout(wait, async {
            let project_slots = self.project_slots(project);
            let project = project_slots.acquire_owned().await;
            let global = self.global.clone().acquire_owned().await;
            (project, global)
        })
        .await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        match admitted {
            Ok((Ok(project), Ok(global))) => Ok(Admitted {
                _project: project,
                _global: global,
                waited: started.elapsed(),
            }),
            // A closed semaphore (never closed here) or the wait ran out.
            _ => Err(busy),
        }
    }

    fn project_slots(&self, project: &str) -> Arc<Semaphore> {
        let mut projects = self.projects.lock().unwrap_or_else(|p| p.into_inner());
        // Semaphores of projects no one holds or waits for are dropped as
        // others are taken, so the map holds only active projects.
        if projects.len() > 1024 {
            projects.retain(|_, s| Arc::strong_count(s) > 1);
        }
        projects
            .entry(project.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.per_project.max(1))))
            .clone()
    }
}

/// Runs at once when none is configured: 8 per core, but no more than one
/// per 256 MiB of memory (a run may use 128 MiB by default), 4 to 256.
pub fn default_max_concurrent() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let by_memory = total_memory_bytes().map_or(usize::MAX, |m| (m / (256 << 20)) as usize);
    (cores * 8).min(by_memory).clamp(4, 256)
}

fn total_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max: usize, per_project: usize, wait_ms: u64) -> Admission {
        Admission::new(AdmissionConfig {
            max_concurrent: max,
            per_project,
            max_wait: Duration::from_millis(wait_ms),
        })
    }

    #[tokio::test]
    async fn a_full_engine_answers_busy_after_the_wait() {
        let a = admission(2, 2, 50);
        let _one = a.admit("p").await.unwrap();
        let _two = a.admit("q").await.unwrap();
        let started = Instant::now();
        let busy = a.admit("r").await.unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(busy.retry_after, Duration::from_secs(1));
        assert_eq!(a.waiting(), 0);
    }

    #[tokio::test]
    async fn one_project_cannot_take_every_slot() {
        let a = admission(4, 2, 50);
        let _p1 = a.admit("greedy").await.unwrap();
        let _p2 = a.admit("greedy").await.unwrap();
        assert!(a.admit("greedy").await.is_err(), "over its share");
        // Others still get in.
        let _o1 = a.admit("other").await.unwrap();
        let _o2 = a.admit("third").await.unwrap();
    }

    #[tokio::test]
    async fn a_freed_slot_admits_the_next_waiter() {
        let a = Arc::new(admission(1, 1, 5_000));
        let first = a.admit("p").await.unwrap();
        let waiter = tokio::spawn({
            let a = a.clone();
            async move { a.admit("p").await.map(|adm| adm.waited) }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(a.waiting(), 1, "queued, visibly");
        drop(first);
        let waited = waiter.await.unwrap().unwrap();
        assert!(waited >= Duration::from_millis(30));
    }

    #[test]
    fn the_default_follows_cores_and_memory() {
        let n = default_max_concurrent();
        assert!((4..=256).contains(&n), "{n}");
    }
}
