//! Group commit of run records: one writer task takes every record that is
//! waiting and stores them in one transaction, then answers each waiter.
//!
//! Why: a durable commit costs an fsync (SQLite, `synchronous = FULL`) or a
//! WAL flush (PostgreSQL). One commit per run made that the ceiling of the
//! server; with concurrent runs, one commit now carries all records that
//! arrived while the previous one was being written. Each caller still gets
//! its answer only after its own record is committed, so a run that
//! answered is never lost to a crash (`kill -9`), and a failed commit is the
//! error of every run in it.

use tokio::sync::{mpsc, oneshot};

use crate::store::runs::RunRecord;
use crate::store::{Db, StoreError};

/// Records one commit carries at most.
const MAX_BATCH: usize = 256;
/// Records waiting for the writer at most; beyond, callers wait to enqueue.
const QUEUE: usize = 4096;

type Waiter = oneshot::Sender<Result<(), StoreError>>;

/// The handle runs record through. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    queue: mpsc::Sender<(RunRecord, Waiter)>,
}

impl Recorder {
    /// Starts the writer task over `db`; it stops when every handle is gone.
    pub fn start(db: Db) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write(db, rx));
        Self { queue }
    }

    /// Stores `record`; returns once it is committed.
    pub async fn record(&self, record: RunRecord) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        let gone = || StoreError::Contended {
            what: "the run record writer (stopped)",
        };
        self.queue.send((record, done)).await.map_err(|_| gone())?;
        wait.await.map_err(|_| gone())?
    }
}

async fn write(db: Db, mut rx: mpsc::Receiver<(RunRecord, Waiter)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (records, waiters): (Vec<RunRecord>, Vec<Waiter>) = batch.drain(..).unzip();
        let result = db.insert_runs(&records).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, records = records.len(), "run records could not be stored");
        }
        for waiter in waiters {
            // A caller that went away (its request was cancelled) is fine.
            let _ = waiter.send(match &result {
                Ok(()) => Ok(()),
                Err(_) => Err(StoreError::Contended {
                    what: "the run record (its commit failed)",
                }),
            });
        }
    }
}
