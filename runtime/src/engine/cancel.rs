//! A per-run cancel flag.
//!
//! Why a flag the epoch callback reads: a guest spinning in its own code
//! never returns to the host, but every epoch tick already calls back into
//! the host (the CPU meter), so checking one atomic there stops it within a
//! tick at no cost to runs that are not cancelled. A guest waiting in a
//! host call (a slow upstream) is not ticking; for that the run's future
//! also waits on [`CancelFlag::cancelled`] and is dropped, as the wall-time
//! limit drops it.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Set once; never cleared.
#[derive(Debug, Default)]
pub struct CancelFlag {
    set: AtomicBool,
    notify: Notify,
}

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop.
    pub fn cancel(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Returns once [`cancel`](Self::cancel) was called.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a cancel in between is seen.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// The error the epoch callback stops a cancelled guest with.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the run was cancelled")]
pub struct Cancelled;

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_waiter_wakes_on_cancel_and_a_late_waiter_returns_at_once() {
        let flag = Arc::new(CancelFlag::new());
        let waiter = tokio::spawn({
            let flag = flag.clone();
            async move { flag.cancelled().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        flag.cancel();
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), flag.cancelled())
            .await
            .unwrap();
        assert!(flag.is_cancelled());
    }
}
