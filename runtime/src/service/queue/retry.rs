//! Whether a failed attempt of a queued run is tried again, and when.
//!
//! Only queued runs retry: a synchronous caller is waiting for its answer.
//! A failure retries when its kind is in the step's `[retry] on`:
//!
//! - `error`: the step returned an error object with `"retryable": true`
//!   (and perhaps `"retry_after_ms"`, the least delay);
//! - `wall_time`: the run hit `limit:wall_time`;
//! - `upstream`: the attempt failed (error or trap) and its last outbound
//!   call answered 429 or 5xx; that answer's `Retry-After` (as the host
//!   recorded it, bounded) is the least delay.
//!
//! The delay is the backoff (`initial_ms`, doubled per attempt when
//! exponential), with equal jitter (half the delay fixed, half random, so
//! many runs failing together do not come back together), raised to the
//! least delay asked for, and capped at `max_ms`.

use std::time::Duration;

use crate::engine::{LimitKind, RunFailure, RunReport};
use crate::manifest::{RetryOn, RetryPolicy};

/// Why and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Retry {
    pub on: RetryOn,
    pub delay: Duration,
}

/// The retry of `attempt` (from 1) that `report` asks for under `policy`,
/// if any; `random` is a random number (for the jitter).
pub(super) fn decide(
    policy: &RetryPolicy,
    attempt: u32,
    report: &RunReport,
    random: u64,
) -> Option<Retry> {
    if attempt >= policy.max_attempts {
        return None;
    }
    let failure = report.outcome.as_ref().err()?;
    let (on, least) = reason(policy, failure, report)?;
    let backoff = jittered(backoff(policy, attempt), policy.jitter, random);
    let delay = backoff.max(least).min(policy.max);
    Some(Retry { on, delay })
}

/// The first of the policy's kinds that `failure` is, with the least delay
/// it asks for.
fn reason(
    policy: &RetryPolicy,
    failure: &RunFailure,
    report: &RunReport,
) -> Option<(RetryOn, Duration)> {
    if matches!(failure, RunFailure::Cancelled) {
        return None;
    }
    let upstream = report.http_calls.last().filter(|c| {
        c.status
            .is_some_and(|s| s == 429 || (500..=599).contains(&s))
    });
    policy.on.iter().find_map(|on| match on {
        RetryOn::Error => match failure {
            RunFailure::StepError(e) if e.retryable == Some(true) => {
                Some((*on, Duration::from_millis(e.retry_after_ms.unwrap_or(0))))
            }
            _ => None,
        },
        RetryOn::WallTime => matches!(
            failure,
            RunFailure::Limit {
                kind: LimitKind::WallTime,
                ..
            }
        )
        .then_some((*on, Duration::ZERO)),
        RetryOn::Upstream => {
            upstream.map(|c| (*on, Duration::from_millis(c.retry_after_ms.unwrap_or(0))))
        }
    })
}

/// The delay after `attempt` before jitter.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    if !policy.exponential {
        return policy.initial.min(policy.max);
    }
    let doublings = attempt.saturating_sub(1).min(40);
    policy
        .initial
        .saturating_mul(1u32 << doublings.min(31))
        .min(policy.max)
}

/// Equal jitter: `d/2 + random(0..=d/2)`.
fn jittered(d: Duration, jitter: bool, random: u64) -> Duration {
    if !jitter {
        return d;
    }
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let half = ms / 2;
    let spread = ms - half;
    Duration::from_millis(half + random % (spread + 1))
}

/// A random number from the OS (0 if it has none: no jitter then).
pub(super) fn random() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0;
    }
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use airlock_host_api::http::pipeline::CallSummary;

    use super::*;
    use crate::engine::{RunStats, StepError};
    use crate::manifest::RetrySection;

    fn policy(text: &str) -> RetryPolicy {
        toml::from_str::<RetrySection>(text)
            .unwrap()
            .policy()
            .unwrap()
    }

    fn report(outcome: Result<String, RunFailure>, calls: Vec<CallSummary>) -> RunReport {
        RunReport {
            run_id: "r".into(),
            outcome,
            logs: Vec::new(),
            stats: RunStats::default(),
            http_calls: calls,
        }
    }

    fn step_error(retryable: Option<bool>, after: Option<u64>) -> RunFailure {
        RunFailure::StepError(StepError {
            message: "m".into(),
            code: None,
            details: None,
            retryable,
            retry_after_ms: after,
        })
    }

    fn call(status: u16, retry_after_ms: Option<u64>) -> CallSummary {
        CallSummary {
            method: "GET".into(),
            url: "http://x/".into(),
            status: Some(status),
            duration_ms: 1,
            response_bytes: 0,
            account_id: None,
            retry_after_ms,
        }
    }

    #[test]
    fn exponential_backoff_doubles_up_to_the_cap() {
        let p = policy("max_attempts = 20\ninitial_ms = 100\nmax_ms = 1000\njitter = false");
        let r = report(Err(step_error(Some(true), None)), vec![]);
        let delays: Vec<u128> = (1..=6)
            .map(|a| decide(&p, a, &r, 0).unwrap().delay.as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert!(decide(&p, 20, &r, 0).is_none(), "the last attempt is final");
        let fixed =
            policy("max_attempts = 3\nbackoff = \"fixed\"\ninitial_ms = 70\njitter = false");
        assert_eq!(decide(&fixed, 2, &r, 0).unwrap().delay.as_millis(), 70);
    }

    #[test]
    fn equal_jitter_stays_between_half_and_the_whole() {
        let p = policy("max_attempts = 5\ninitial_ms = 1000");
        let r = report(Err(step_error(Some(true), None)), vec![]);
        for random in [0, 1, 499, 500, 501, u64::MAX] {
            let d = decide(&p, 1, &r, random).unwrap().delay.as_millis();
            assert!((500..=1000).contains(&d), "{random}: {d}");
        }
        assert_eq!(decide(&p, 1, &r, 0).unwrap().delay.as_millis(), 500);
        assert_eq!(decide(&p, 1, &r, 500).unwrap().delay.as_millis(), 1000);
    }

    #[test]
    fn only_the_listed_kinds_retry() {
        let all = policy("max_attempts = 3\ninitial_ms = 10\njitter = false");
        let not_retryable = report(Err(step_error(Some(false), None)), vec![]);
        assert!(decide(&all, 1, &not_retryable, 0).is_none());
        let plain = report(Err(step_error(None, None)), vec![call(404, None)]);
        assert!(decide(&all, 1, &plain, 0).is_none());
        let ok = report(Ok("1".into()), vec![call(503, None)]);
        assert!(decide(&all, 1, &ok, 0).is_none());
        let cancelled = report(Err(RunFailure::Cancelled), vec![call(503, None)]);
        assert!(decide(&all, 1, &cancelled, 0).is_none());
        let wall = report(
            Err(RunFailure::Limit {
                kind: LimitKind::WallTime,
                detail: String::new(),
            }),
            vec![],
        );
        assert_eq!(decide(&all, 1, &wall, 0).unwrap().on, RetryOn::WallTime);
        let only_error = policy("max_attempts = 3\non = [\"error\"]");
        assert!(decide(&only_error, 1, &wall, 0).is_none());
        // The last call's 503 counts, an earlier one does not.
        let upstream = report(
            Err(step_error(None, None)),
            vec![call(200, None), call(503, None)],
        );
        assert_eq!(decide(&all, 1, &upstream, 0).unwrap().on, RetryOn::Upstream);
        let earlier = report(
            Err(step_error(None, None)),
            vec![call(503, None), call(200, None)],
        );
        assert!(decide(&all, 1, &earlier, 0).is_none());
    }

    #[test]
    fn a_least_delay_raises_the_backoff_within_the_cap() {
        let p = policy("max_attempts = 3\ninitial_ms = 10\nmax_ms = 5000\njitter = false");
        let upstream = report(Err(step_error(None, None)), vec![call(429, Some(2000))]);
        assert_eq!(decide(&p, 1, &upstream, 0).unwrap().delay.as_millis(), 2000);
        let asked = report(Err(step_error(Some(true), Some(9_000_000))), vec![]);
        assert_eq!(decide(&p, 1, &asked, 0).unwrap().delay.as_millis(), 5000);
    }
}
