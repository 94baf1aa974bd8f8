//! A schedule's cron expression in its IANA time zone: parsing (with the
//! bounds a caller's text gets before it reaches the parser) and the fire
//! times it gives, all in Unix milliseconds (whole seconds).
//!
//! Syntax: the standard five fields (`minute hour day-of-month month
//! day-of-week`), or six with a leading seconds field, as `croner` reads
//! them (ranges, lists, steps, `L`, `W`, `#`, names, `@hourly`-style
//! nicknames); no year field. Day of month and day of week combine as in
//! Vixie cron (either matches).
//!
//! Daylight saving time is the crate's (OCPS / Vixie cron rules): a time
//! that does not exist (clocks spring forward) fires at the first second
//! after the gap for a fixed-time expression (`0 30 2 * * *`), and is
//! skipped by an interval or wildcard one (`*/5 * * * * *`); a time that
//! happens twice (clocks fall back) fires once, at its first occurrence,
//! for a fixed-time expression, and at both for an interval one.

use std::str::FromStr as _;

use chrono::{DateTime, TimeZone as _, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Longest cron expression, in bytes.
pub const MAX_CRON_LEN: usize = 256;
/// Longest time zone name, in bytes (IANA names are far shorter).
pub const MAX_TIMEZONE_LEN: usize = 64;

/// Why a cron expression or time zone was refused. The message names the
/// field, for a 400 or a CLI error as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("cron: {0}")]
    Cron(String),
    #[error("timezone: {0}")]
    Timezone(String),
}

/// A parsed cron expression in its time zone.
#[derive(Debug, Clone)]
pub struct Spec {
    cron: Cron,
    tz: chrono_tz::Tz,
}

impl Spec {
    /// Parses `cron` (5 or 6 fields) and `timezone` (an IANA name such as
    /// `Europe/Paris`, or `UTC`); an expression that never fires is
    /// refused too.
    pub fn parse(cron: &str, timezone: &str) -> Result<Self, SpecError> {
        if timezone.len() > MAX_TIMEZONE_LEN {
            return Err(SpecError::Timezone(format!(
                "longer than {MAX_TIMEZONE_LEN} bytes"
            )));
        }
        let tz = chrono_tz::Tz::from_str(timezone).map_err(|_| {
            let shown: String = timezone.chars().take(40).collect();
            SpecError::Timezone(format!(
                "unknown time zone {shown:?}: give an IANA name such as `Europe/Paris` or `UTC`"
            ))
        })?;
        if cron.len() > MAX_CRON_LEN {
            return Err(SpecError::Cron(format!("longer than {MAX_CRON_LEN} bytes")));
        }
        let fields = cron.split_whitespace().count();
        if !cron.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
            return Err(SpecError::Cron(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds \
                 first), found {fields}"
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(cron)
            .map_err(|e| SpecError::Cron(e.to_string()))?;
        let spec = Self { cron, tz };
        if spec.next_after(crate::service::unix_millis()).is_none() {
            return Err(SpecError::Cron("it never fires".to_owned()));
        }
        Ok(spec)
    }

    /// The first fire time strictly after `after_ms`; `None` if there is
    /// none (before the year 5000).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let start = self.local(after_ms)?;
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(next.timestamp_millis())
    }

    /// The latest fire time at or before `at_ms`.
    pub fn latest_at_or_before(&self, at_ms: i64) -> Option<i64> {
        let start = self.local(at_ms)?;
        let previous = self.cron.find_previous_occurrence(&start, true).ok()?;
        Some(previous.timestamp_millis())
    }

    /// Up to `n` fire times from `first_ms` (itself a fire time) on.
    pub fn times_from(&self, first_ms: i64, n: usize) -> Vec<i64> {
        let mut times = Vec::with_capacity(n);
        let mut at = first_ms;
        for _ in 0..n {
            times.push(at);
            match self.next_after(at) {
                Some(next) => at = next,
                None => break,
            }
        }
        times
    }

    /// `ms` in the schedule's zone, whole seconds (fire times are whole
    /// seconds; a fraction would make "at or before" miss this second).
    fn local(&self, ms: i64) -> Option<DateTime<chrono_tz::Tz>> {
        let utc: DateTime<Utc> = DateTime::from_timestamp(ms.div_euclid(1000), 0)?;
        Some(self.tz.from_utc_datetime(&utc.naive_utc()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn five_and_six_fields_parse_and_other_counts_do_not() {
        assert!(Spec::parse("* * * * *", "UTC").is_ok());
        assert!(Spec::parse("* * * * * *", "UTC").is_ok());
        assert!(Spec::parse("@hourly", "UTC").is_ok());
        for bad in ["", "* * * *", "* * * * * * *", "61 * * * *", "x * * * *"] {
            let e = Spec::parse(bad, "UTC").unwrap_err();
            assert!(matches!(e, SpecError::Cron(_)), "{bad:?}: {e}");
            assert!(e.to_string().starts_with("cron: "), "{e}");
        }
        assert!(matches!(
            Spec::parse("0 0 31 2 *", "UTC"),
            Err(SpecError::Cron(m)) if m.contains("never")
        ));
        assert!(matches!(
            Spec::parse(&"* ".repeat(200), "UTC"),
            Err(SpecError::Cron(_))
        ));
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert!(Spec::parse("* * * * *", "Europe/Paris").is_ok());
        let e = Spec::parse("* * * * *", "Mars/Olympus").unwrap_err();
        assert!(e.to_string().starts_with("timezone: unknown"), "{e}");
        assert!(Spec::parse("* * * * *", &"A".repeat(100)).is_err());
    }

    #[test]
    fn fire_times_follow_the_zone_and_whole_seconds() {
        let every_second = Spec::parse("* * * * * *", "UTC").unwrap();
        let t = ms("2026-06-01T12:00:00Z");
        assert_eq!(every_second.next_after(t), Some(t + 1000));
        assert_eq!(every_second.next_after(t + 400), Some(t + 1000));
        assert_eq!(every_second.latest_at_or_before(t + 400), Some(t));
        assert_eq!(every_second.times_from(t, 3), vec![t, t + 1000, t + 2000]);
        let paris = Spec::parse("0 0 9 * * *", "Europe/Paris").unwrap();
        // Summer: Paris is UTC+2.
        assert_eq!(paris.next_after(t), Some(ms("2026-06-02T07:00:00Z")));
        // Winter: UTC+1.
        assert_eq!(
            paris.next_after(ms("2026-12-01T12:00:00Z")),
            Some(ms("2026-12-02T08:00:00Z"))
        );
        assert_eq!(
            paris.latest_at_or_before(t),
            Some(ms("2026-06-01T07:00:00Z"))
        );
    }

    #[test]
    fn a_fixed_time_in_the_spring_gap_fires_after_it() {
        // Europe/Paris skips 02:00-03:00 on 2026-03-29.
        let spec = Spec::parse("30 2 * * *", "Europe/Paris").unwrap();
        let next = spec.next_after(ms("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(next, ms("2026-03-29T01:00:00Z")); // 03:00 CEST
        // And the day after, 02:30 CEST again.
        assert_eq!(spec.next_after(next), Some(ms("2026-03-30T00:30:00Z")));
    }
}
