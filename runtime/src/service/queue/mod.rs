//! Queue workers: every node claims queued runs from the run table and runs
//! them through the one run service ([`super::RunService::run`]).
//!
//! How a node takes work: it holds at most `slots` attempts at once (the
//! engine's run slots, so it never claims what it could not start), and
//! claims one run per free slot, oldest due first, in one atomic statement
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL). It looks for work when told a
//! run was queued — the change bus: `NOTIFY` across nodes on PostgreSQL, in
//! process on SQLite — and every `poll` besides, since a notification can
//! be lost with a listener's connection and a run may only become due later.
//!
//! Why a lease, and why at-least-once: a claimed run is leased to its node
//! for `lease` (default 30 s), renewed every third of that. A node that
//! dies (`kill -9`, a lost machine) stops renewing; once the lease has
//! ended the reaper, on any node, puts the run back in the queue and the
//! next claim is attempt + 1. So every attempt starts exactly once, and a
//! run runs *at least* once: the dead node may have done part or all of the
//! step's side effects before it died. The step sees its attempt number and
//! the caller's idempotency key in `context` to make those effects
//! idempotent. The lease is the price of noticing a dead node: shorter
//! re-runs sooner but costs more renewals, and must stay well above a
//! database hiccup (a worker that cannot renew stops its own attempt before
//! the lease can end, so two attempts never run at once) and above the
//! clock difference between nodes (leases are compared with each node's
//! clock).
//!
//! Cancellation reaches the node running a run by the change bus, and by
//! the next lease renewal should that message be lost.
//!
//! Retries ([`retry`]): a failed attempt that the step's `[retry]` policy
//! retries goes back to `queued`, due after its backoff, with a summary
//! in the run's `attempt_history`; cancelling it meanwhile is immediate
//! (it is queued). Caps (`[concurrency]`, and a project's limits): a
//! claim looks at the step of the oldest due run, and claims from it
//! unless a cap of that step or its project is reached — then it looks at
//! the next step's runs, so a capped step never holds up others (no
//! head-of-line blocking). The caps of a step are its current version's.

mod attempt;
mod retry;
mod settings;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, Semaphore};

use super::RunService;
use crate::engine::cancel::CancelFlag;
use crate::store::Db;
use crate::store::queue::{ClaimedRun, GroupClaim, QueueCaps, QueueStore};
use crate::store::repo::Change;

/// The default lease of a claimed run.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How often a worker looks for work when it heard of none.
pub const POLL: Duration = Duration::from_secs(1);
/// Steps one claim looks at before it waits (each capped or taken).
const STEPS_PER_CLAIM: usize = 64;

/// How a node's workers run.
#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    /// How long a claimed run is ours without renewal.
    pub lease: Duration,
    /// How often to look for work without a notification.
    pub poll: Duration,
    /// Attempts running at once on this node.
    pub slots: usize,
}

/// What the tasks of one node share.
struct Shared {
    service: RunService,
    queue: QueueStore,
    /// This node's lease owner id (random per start).
    owner: String,
    config: QueueConfig,
    slots: Arc<Semaphore>,
    /// The cancel flags of the attempts running here, by run id.
    running: Mutex<HashMap<String, Arc<CancelFlag>>>,
    wake: Notify,
    settings: settings::SettingsCache,
}

/// The workers of this node; they stop when this is dropped.
pub struct Workers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts this node's workers on `db`'s queue.
pub fn spawn(service: RunService, db: Db, config: QueueConfig) -> Workers {
    let shared = Arc::new(Shared {
        queue: QueueStore::new(db.clone()),
        owner: uuid::Uuid::new_v4().to_string(),
        slots: Arc::new(Semaphore::new(config.slots.max(1))),
        config,
        running: Mutex::new(HashMap::new()),
        wake: Notify::new(),
        settings: settings::SettingsCache::new(service.steps().clone()),
        service,
    });
    let changes = db.subscribe();
    Workers {
        tasks: vec![
            tokio::spawn(listen(shared.clone(), changes)),
            tokio::spawn(claim(shared.clone())),
            tokio::spawn(reap(shared)),
        ],
    }
}

/// Turns the change bus into wake-ups and cancellations.
async fn listen(shared: Arc<Shared>, mut changes: tokio::sync::broadcast::Receiver<Change>) {
    loop {
        match changes.recv().await {
            Ok(Change::RunQueued | Change::All) | Err(RecvError::Lagged(_)) => {
                shared.wake.notify_one();
            }
            Ok(Change::RunCancel(id)) => {
                let flag = shared.running_flag(&id);
                if let Some(flag) = flag {
                    flag.cancel();
                }
            }
            Ok(_) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

/// Claims a run per free slot; waits for a wake-up or the poll otherwise.
async fn claim(shared: Arc<Shared>) {
    loop {
        let Ok(permit) = shared.slots.clone().acquire_owned().await else {
            return;
        };
        match claim_next(&shared).await {
            Ok(Some(run)) => {
                tokio::spawn(attempt::run(shared.clone(), run, permit));
            }
            Ok(None) => {
                drop(permit);
                tokio::select! {
                    () = shared.wake.notified() => {}
                    () = tokio::time::sleep(shared.config.poll) => {}
                }
            }
            Err(e) => {
                drop(permit);
                tracing::warn!(error = %e, "cannot claim queued runs; trying again");
                tokio::time::sleep(shared.config.poll).await;
            }
        }
    }
}

/// Claims the oldest due run whose step and project are under their caps.
async fn claim_next(shared: &Shared) -> crate::store::Result<Option<ClaimedRun>> {
    let mut skip = Vec::new();
    for _ in 0..STEPS_PER_CLAIM {
        let Some((project, step)) = shared.queue.next_due_step(&skip).await? else {
            return Ok(None);
        };
        let caps = shared
            .settings
            .current(&project, &step)
            .await?
            .map_or(QueueCaps::default(), |s| s.caps);
        match shared
            .queue
            .claim_step(&shared.owner, shared.config.lease, &project, &step, &caps)
            .await?
        {
            GroupClaim::Claimed(run) => return Ok(Some(*run)),
            // Capped, or taken by another worker: the next step's runs.
            GroupClaim::Capped | GroupClaim::Empty => skip.push((project, step)),
        }
    }
    Ok(None)
}

/// Re-queues the runs of dead nodes, every half lease.
async fn reap(shared: Arc<Shared>) {
    let every = (shared.config.lease / 2).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        match shared.queue.reap().await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(runs = n, "runs whose lease ended were queued again");
                shared.wake.notify_one();
            }
            Err(e) => tracing::warn!(error = %e, "cannot re-queue runs whose lease ended"),
        }
        if let Err(e) = shared.queue.prune_starts().await {
            tracing::warn!(error = %e, "cannot prune the starts of capped runs");
        }
    }
}

impl Shared {
    fn running_flag(&self, id: &str) -> Option<Arc<CancelFlag>> {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}
