//! Timestamps are written back as the server writes them: RFC 3339 UTC with
//! exactly three fractional digits (`2026-12-01T08:53:00.123Z`), so a value
//! read and printed again (the CLI's `--json`) keeps one shape.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

pub(crate) fn millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

pub(crate) fn millis_opt<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => millis(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn three_digits_always() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct T {
            #[serde(serialize_with = "super::millis")]
            at: chrono::DateTime<chrono::Utc>,
        }
        for text in ["2026-12-01T08:53:00.000Z", "2026-12-01T08:53:00.120Z"] {
            let json = format!(r#"{{"at":"{text}"}}"#);
            let t: T = serde_json::from_str(&json).unwrap();
            assert_eq!(serde_json::to_string(&t).unwrap(), json);
        }
    }
}
