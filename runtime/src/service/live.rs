//! The live log of a queued run: the run's log sink hands each final,
//! masked line to [`LiveWriter`] (`airlock_host_api::log::live`), and a
//! task of this node appends them to the database in small batches
//! ([`crate::store::live_logs`]), where a stream on any node reads them.
//!
//! Why batches: one insert (and one `NOTIFY`) per line would cost a
//! commit per `log` call; a batch every [`FLUSH_EVERY`] or [`MAX_BATCH`]
//! lines bounds both the delay a follower sees and the writes a chatty
//! step causes. The channel to the task is unbounded but bounded in fact:
//! every line is an entry of the run's capped log, sent once.
//!
//! Live lines are best effort: a batch that cannot be written is logged
//! (counts only, never text) and dropped; the run's record keeps the whole
//! log either way.

use std::sync::Arc;
use std::time::Duration;

use airlock_host_api::log::{LiveTap, LogLine};
use tokio::sync::mpsc;

use crate::store::live_logs::{LiveLogStore, seq};

/// Longest a line waits for its batch.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Lines one batch carries at most.
pub const MAX_BATCH: usize = 256;
/// Longest the end of a run waits for its last batch to be written.
const LAST_FLUSH: Duration = Duration::from_secs(10);

enum Message {
    Lines(Vec<(i64, String)>),
    End,
}

/// The tap a queued run's log sink feeds.
pub struct LiveWriter {
    attempt: u32,
    tx: mpsc::UnboundedSender<Message>,
}

impl LiveTap for LiveWriter {
    fn lines(&self, first: u64, lines: &[LogLine]) {
        let rows = lines
            .iter()
            .enumerate()
            .filter_map(|(i, line)| {
                let json = serde_json::to_string(line).ok()?;
                Some((seq(self.attempt, first + i as u64), json))
            })
            .collect();
        // The task outlives the sink unless the run's service is gone.
        let _ = self.tx.send(Message::Lines(rows));
    }

    fn end(&self) {
        let _ = self.tx.send(Message::End);
    }
}

/// The writer of one attempt's live log: the tap and the task appending
/// what it is fed.
pub struct Live {
    pub tap: Arc<dyn LiveTap>,
    task: tokio::task::JoinHandle<()>,
}

impl Live {
    /// Starts the task for attempt `attempt` of run `run_id`.
    pub fn start(store: LiveLogStore, run_id: String, attempt: u32) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(write(store, run_id, rx));
        Self {
            tap: Arc::new(LiveWriter { attempt, tx }),
            task,
        }
    }

    /// Waits (boundedly) until every line fed so far is written: the run's
    /// outcome is stored after, so no live row is written after the run's
    /// rows were deleted.
    pub async fn finished(self) {
        drop(self.tap);
        let mut task = self.task;
        if tokio::time::timeout(LAST_FLUSH, &mut task).await.is_err() {
            task.abort();
            tracing::warn!("a run's last live log lines could not be written in time");
        }
    }
}

async fn write(store: LiveLogStore, run_id: String, mut rx: mpsc::UnboundedReceiver<Message>) {
    let mut batch: Vec<(i64, String)> = Vec::new();
    let mut ended = false;
    while !ended {
        match rx.recv().await {
            Some(Message::Lines(lines)) => batch.extend(lines),
            Some(Message::End) | None => break,
        }
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_elapsed) => break,
                Ok(Some(Message::Lines(lines))) => batch.extend(lines),
                Ok(Some(Message::End) | None) => {
                    ended = true;
                    break;
                }
            }
        }
        flush(&store, &run_id, &mut batch).await;
    }
    // What arrived with the end.
    while let Ok(Message::Lines(lines)) = rx.try_recv() {
        batch.extend(lines);
    }
    flush(&store, &run_id, &mut batch).await;
}

async fn flush(store: &LiveLogStore, run_id: &str, batch: &mut Vec<(i64, String)>) {
    for chunk in batch.chunks(MAX_BATCH) {
        if let Err(e) = store.append(run_id, chunk).await {
            tracing::warn!(%run_id, lines = chunk.len(), error = %e,
                "live log lines could not be stored; the run's record keeps them");
        }
    }
    batch.clear();
}
