//! A project's usage over a time range, per step: `GET .../usage`.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Error};

/// Sums over the runs of a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotals {
    pub runs: i64,
    /// Runs by status (`succeeded`, `failed`, …).
    pub outcomes: BTreeMap<String, i64>,
    pub duration_ms: i64,
    /// Epoch ticks (1 ms each) during which guest code ran.
    pub cpu_ticks: i64,
    /// KiB x milliseconds of memory and tables held.
    pub memory_kib_ms: i64,
    pub log_bytes: i64,
    /// Response bodies received by outbound HTTP calls.
    pub http_response_bytes: i64,
}

/// The usage of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUsage {
    pub step: String,
    #[serde(flatten)]
    pub usage: UsageTotals,
}

/// A project's usage over `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(serialize_with = "crate::time::millis")]
    pub from: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::millis")]
    pub to: DateTime<Utc>,
    /// By step name.
    pub steps: Vec<StepUsage>,
    pub total: UsageTotals,
}

impl Client {
    /// Usage of `project` per step over runs created in `[from, to)`.
    pub async fn usage(
        &self,
        project: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Usage, Error> {
        let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        self.json(
            self.request(Method::GET, &["v1", "projects", project, "usage"])?
                .query(&[("from", stamp(from)), ("to", stamp(to))]),
        )
        .await
    }
}
