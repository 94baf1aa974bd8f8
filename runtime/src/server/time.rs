//! Timestamps of the API: every `created_at`, `updated_at`, `expires_at` and
//! `at` in a response is one [`Timestamp`], an RFC 3339 string in UTC with
//! millisecond precision (`2026-12-01T08:53:00.123Z`).
//!
//! Why one string form rather than Unix numbers: the stores keep seconds in
//! most tables and milliseconds in `runs`, and a client cannot tell the two
//! apart from a bare number. A fixed-width UTC string sorts as text, reads
//! without a conversion, and says its own unit. The stores stay as they are
//! (their ordering and cursors use the integers); the conversion happens
//! here, at the view, and nowhere else.
//!
//! RFC 3339 has four-digit years, so a stored value outside 0000–9999 (only a
//! corrupt row or a far-off `expires_at` could be) is clamped to that range
//! rather than written in a form clients cannot parse.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// `0000-01-01T00:00:00Z` in Unix seconds.
const MIN_SECS: i64 = -62_167_219_200;
/// `9999-12-31T23:59:59Z` in Unix seconds.
const MAX_SECS: i64 = 253_402_300_799;

/// An instant, serialized as RFC 3339 UTC with milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ToSchema)]
#[schema(example = "2026-12-01T08:53:00.123Z")]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// From Unix seconds (most store columns).
    pub fn from_unix_secs(secs: i64) -> Self {
        Self::from_unix_millis(secs.clamp(MIN_SECS, MAX_SECS) * 1000)
    }

    /// From Unix milliseconds (the `runs` table).
    pub fn from_unix_millis(millis: i64) -> Self {
        let millis = millis.clamp(MIN_SECS * 1000, MAX_SECS * 1000 + 999);
        Self(DateTime::from_timestamp_millis(millis).expect("clamped into RFC 3339's years"))
    }

    /// Unix milliseconds.
    pub fn unix_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Any RFC 3339 instant (any offset, any precision), for clients of the API
/// written with this crate.
impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| Self(t.with_timezone(&Utc)))
            .map_err(serde::de::Error::custom)
    }
}

/// An instant given in a query: an RFC 3339 timestamp
/// (`2026-12-01T00:00:00Z`) or Unix milliseconds; Unix milliseconds, or a
/// 400 naming the parameter.
pub fn instant(name: &str, text: &str) -> Result<i64, super::error::ApiError> {
    let text = text.trim();
    let parsed = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<i64>().ok()
    } else {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.timestamp_millis())
    };
    parsed.ok_or_else(|| {
        super::error::ApiError::bad_request(format!(
            "{name}: expected an RFC 3339 timestamp (`2026-12-01T00:00:00Z`) or Unix milliseconds"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_milliseconds_come_out_in_one_form() {
        assert_eq!(
            Timestamp::from_unix_secs(1_900_000_000).to_string(),
            "2030-03-17T17:46:40.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_millis(1_796_115_180_123).to_string(),
            "2026-12-01T08:53:00.123Z"
        );
        assert_eq!(
            Timestamp::from_unix_secs(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        let json = serde_json::to_value(Timestamp::from_unix_millis(5)).unwrap();
        assert_eq!(json, "1970-01-01T00:00:00.005Z");
        let back: Timestamp = serde_json::from_value(json).unwrap();
        assert_eq!(back.unix_millis(), 5);
    }

    #[test]
    fn values_beyond_four_digit_years_are_clamped() {
        assert_eq!(
            Timestamp::from_unix_secs(i64::MAX).to_string(),
            "9999-12-31T23:59:59.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_millis(i64::MAX).to_string(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            Timestamp::from_unix_secs(i64::MIN).to_string(),
            "0000-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_millis(i64::MIN).to_string(),
            "0000-01-01T00:00:00.000Z"
        );
    }
}
