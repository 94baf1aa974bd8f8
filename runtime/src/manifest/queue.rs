//! The queue's sections of a step's manifest: how a queued run is retried
//! and how many of the step's queued runs may run or start.
//!
//! ```toml
//! [retry]                      # queued runs only; a synchronous caller is waiting
//! max_attempts = 5             # 1..=20, default 1 (no retry)
//! backoff = "exponential"      # or "fixed"
//! initial_ms = 1000            # first delay (exponential: doubled each attempt)
//! max_ms = 60000               # cap of any delay, up to 24 h
//! jitter = true                # equal jitter: a delay d waits d/2 + random(0..=d/2)
//! on = ["error", "wall_time", "upstream"]   # which failures retry (default all)
//!
//! [concurrency]                # queued runs of this step
//! max_running = 2              # at once, across every node
//! max_starts = 10              # started per `per_secs` seconds (both or neither)
//! per_secs = 60
//! ```
//!
//! Why bounds on every number: a manifest is pushed by a tenant; 20
//! attempts and a day's delay keep one run's retries from holding a queue
//! row (and its input) for ever, and a window of at most a day bounds the
//! start records a start cap keeps.

use std::time::Duration;

use serde::Deserialize;

use crate::store::queue::{MAX_WINDOW_SECS, QueueCaps};

/// Most attempts a run may have.
pub const MAX_ATTEMPTS: u32 = 20;
/// Longest delay between attempts (24 h).
pub const MAX_DELAY_MS: u64 = 86_400_000;
/// Largest `max_running` / `max_starts`.
pub const MAX_CAP: i64 = 1_000_000;

/// Which failures a retry policy retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOn {
    /// The step returned an error with `"retryable": true`.
    Error,
    /// The run hit `limit:wall_time`.
    WallTime,
    /// The attempt failed and its last outbound call answered 429 or 5xx.
    Upstream,
}

impl RetryOn {
    pub fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::WallTime => "wall_time",
            Self::Upstream => "upstream",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Error, Self::WallTime, Self::Upstream]
            .into_iter()
            .find(|k| k.name() == s)
    }
}

/// `[retry]` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySection {
    pub max_attempts: Option<u32>,
    pub backoff: Option<String>,
    pub initial_ms: Option<u64>,
    pub max_ms: Option<u64>,
    pub jitter: Option<bool>,
    pub on: Option<Vec<String>>,
}

/// `[concurrency]` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencySection {
    pub max_running: Option<i64>,
    pub max_starts: Option<i64>,
    pub per_secs: Option<i64>,
}

/// A validated retry policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// Exponential (else fixed).
    pub exponential: bool,
    pub initial: Duration,
    pub max: Duration,
    pub jitter: bool,
    pub on: Vec<RetryOn>,
}

impl RetrySection {
    /// Names the first bad field, as the manifest's error message.
    pub fn validate(&self) -> Result<(), String> {
        self.policy().map(|_| ())
    }

    /// The policy; defaults: 1 attempt, exponential from 1 s up to 60 s
    /// (or `initial_ms` if larger), jitter, every kind.
    pub fn policy(&self) -> Result<RetryPolicy, String> {
        let max_attempts = self.max_attempts.unwrap_or(1);
        if !(1..=MAX_ATTEMPTS).contains(&max_attempts) {
            return Err(format!(
                "`retry.max_attempts` = {max_attempts} is outside 1..={MAX_ATTEMPTS}"
            ));
        }
        let exponential = match self.backoff.as_deref() {
            None | Some("exponential") => true,
            Some("fixed") => false,
            Some(other) => {
                return Err(format!(
                    "`retry.backoff` = {other:?}: give \"exponential\" or \"fixed\""
                ));
            }
        };
        let initial_ms = self.initial_ms.unwrap_or(1000);
        if !(1..=MAX_DELAY_MS).contains(&initial_ms) {
            return Err(format!(
                "`retry.initial_ms` = {initial_ms} is outside 1..={MAX_DELAY_MS}"
            ));
        }
        let max_ms = self.max_ms.unwrap_or(initial_ms.max(60_000));
        if !(1..=MAX_DELAY_MS).contains(&max_ms) {
            return Err(format!(
                "`retry.max_ms` = {max_ms} is outside 1..={MAX_DELAY_MS} (24 h)"
            ));
        }
        if max_ms < initial_ms {
            return Err(format!(
                "`retry.max_ms` = {max_ms} is below `retry.initial_ms` = {initial_ms}"
            ));
        }
        let on = match &self.on {
            None => vec![RetryOn::Error, RetryOn::WallTime, RetryOn::Upstream],
            Some(names) => {
                let mut on = Vec::new();
                for name in names {
                    let kind = RetryOn::parse(name).ok_or_else(|| {
                        format!(
                            "`retry.on` holds {name:?}: give \"error\", \"wall_time\" or \
                             \"upstream\""
                        )
                    })?;
                    if on.contains(&kind) {
                        return Err(format!("`retry.on` lists {name:?} twice"));
                    }
                    on.push(kind);
                }
                on
            }
        };
        Ok(RetryPolicy {
            max_attempts,
            exponential,
            initial: Duration::from_millis(initial_ms),
            max: Duration::from_millis(max_ms),
            jitter: self.jitter.unwrap_or(true),
            on,
        })
    }
}

impl ConcurrencySection {
    /// Names the first bad field, as the manifest's error message.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_named("concurrency.")
    }

    /// [`validate`](Self::validate), naming fields with `prefix` (the
    /// same caps set for a project through the API have none).
    pub fn validate_named(&self, prefix: &str) -> Result<(), String> {
        for (key, value) in [
            ("max_running", self.max_running),
            ("max_starts", self.max_starts),
        ] {
            if let Some(n) = value
                && !(1..=MAX_CAP).contains(&n)
            {
                return Err(format!("`{prefix}{key}` = {n} is outside 1..={MAX_CAP}"));
            }
        }
        if let Some(secs) = self.per_secs
            && !(1..=MAX_WINDOW_SECS).contains(&secs)
        {
            return Err(format!(
                "`{prefix}per_secs` = {secs} is outside 1..={MAX_WINDOW_SECS} (a day)"
            ));
        }
        match (self.max_starts, self.per_secs) {
            (Some(_), None) => Err(format!("`{prefix}max_starts` needs `{prefix}per_secs`")),
            (None, Some(_)) => Err(format!("`{prefix}per_secs` needs `{prefix}max_starts`")),
            _ => Ok(()),
        }
    }

    /// The caps, as the queue applies them.
    pub fn caps(&self) -> QueueCaps {
        QueueCaps {
            max_running: self.max_running,
            max_starts: self.max_starts,
            per_secs: self.per_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(text: &str) -> Result<RetryPolicy, String> {
        toml::from_str::<RetrySection>(text)
            .map_err(|e| e.to_string())?
            .policy()
    }

    #[test]
    fn the_default_policy_does_not_retry() {
        let p = retry("").unwrap();
        assert_eq!(p.max_attempts, 1);
        assert!(p.exponential && p.jitter);
        assert_eq!(p.on.len(), 3);
        assert_eq!(p.max, Duration::from_secs(60));
    }

    #[test]
    fn bad_retry_fields_are_named() {
        for (text, named) in [
            ("max_attempts = 0", "retry.max_attempts"),
            ("max_attempts = 21", "retry.max_attempts"),
            ("backoff = \"linear\"", "retry.backoff"),
            ("initial_ms = 0", "retry.initial_ms"),
            ("max_ms = 86400001", "retry.max_ms"),
            ("initial_ms = 500\nmax_ms = 100", "retry.max_ms"),
            ("on = [\"timeout\"]", "retry.on"),
            ("on = [\"error\", \"error\"]", "retry.on"),
        ] {
            let e = retry(text).unwrap_err();
            assert!(e.contains(named), "{text}: {e}");
        }
        assert!(
            toml::from_str::<RetrySection>("attempts = 3")
                .unwrap_err()
                .to_string()
                .contains("unknown field `attempts`")
        );
    }

    #[test]
    fn bad_concurrency_fields_are_named() {
        let check = |text: &str| {
            toml::from_str::<ConcurrencySection>(text)
                .unwrap()
                .validate()
        };
        assert!(check("max_running = 2\nmax_starts = 3\nper_secs = 60").is_ok());
        for (text, named) in [
            ("max_running = 0", "concurrency.max_running"),
            ("max_starts = 0\nper_secs = 1", "concurrency.max_starts"),
            ("max_starts = 1\nper_secs = 86401", "concurrency.per_secs"),
            ("max_starts = 1", "concurrency.per_secs"),
            ("per_secs = 1", "concurrency.max_starts"),
        ] {
            let e = check(text).unwrap_err();
            assert!(e.contains(named), "{text}: {e}");
        }
    }
}
