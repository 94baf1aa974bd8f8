//! Caps on what a guest may push through host calls, and the typed error a
//! host call traps with when a guest breaks one.
//!
//! Why trap rather than return an error value: these caps exist to protect
//! the host from a guest that floods it. A guest that ignored an error would
//! keep flooding; a trap ends the run and names the limit.

/// Per-run caps on host-call traffic.
#[derive(Debug, Clone, Copy)]
pub struct HostCallLimits {
    /// Largest single payload (a log message, later an HTTP body or secret
    /// name) a guest may pass to one host call.
    pub max_payload_bytes: usize,
    /// Total bytes of log output (log lines, stdout and stderr together).
    pub max_log_bytes: usize,
    /// Most entries the run's resource table may hold at once.
    pub max_resources: usize,
}

impl Default for HostCallLimits {
    fn default() -> Self {
        Self {
            max_payload_bytes: 64 * 1024,
            max_log_bytes: 1024 * 1024,
            max_resources: 1024,
        }
    }
}

/// A guest broke a host-call limit. Host calls trap with this error so the
/// runtime can tell a limit from any other trap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostLimitError {
    /// The run's log budget (log lines + stdout + stderr) is spent.
    #[error("log output exceeded the run's cap of {cap} bytes")]
    Output { cap: usize },
    /// One host-call argument was larger than allowed.
    #[error("host call `{call}` payload of {size} bytes exceeds the cap of {cap} bytes")]
    Payload {
        call: &'static str,
        size: usize,
        cap: usize,
    },
}
