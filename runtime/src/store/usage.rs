//! Usage of a project over a time range: per step, its runs by outcome and
//! the sums of what they used — the numbers a billing system reads.
//!
//! Why in the database: a busy project records millions of runs, so the
//! sums are one `GROUP BY` over the runs of the range (the
//! `runs_by_project_newest` index finds them), never a load of every run.
//! Same database as the [`SecretStore`].

use std::collections::BTreeMap;

use super::{Db, Result, SecretStore};

/// The runs of one step with one status in a range, summed by the database.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageRow {
    pub step: String,
    pub status: String,
    pub runs: i64,
    pub duration_ms: i64,
    pub cpu_ticks: i64,
    pub memory_kib_ms: i64,
    pub log_bytes: i64,
    pub http_response_bytes: i64,
}

/// Sums over runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub runs: i64,
    pub duration_ms: i64,
    pub cpu_ticks: i64,
    pub memory_kib_ms: i64,
    pub log_bytes: i64,
    pub http_response_bytes: i64,
}

impl Totals {
    /// Adds `other`, saturating (a sum past `i64::MAX` stays there).
    pub fn add(&mut self, other: &Totals) {
        self.runs = self.runs.saturating_add(other.runs);
        self.duration_ms = self.duration_ms.saturating_add(other.duration_ms);
        self.cpu_ticks = self.cpu_ticks.saturating_add(other.cpu_ticks);
        self.memory_kib_ms = self.memory_kib_ms.saturating_add(other.memory_kib_ms);
        self.log_bytes = self.log_bytes.saturating_add(other.log_bytes);
        self.http_response_bytes = self
            .http_response_bytes
            .saturating_add(other.http_response_bytes);
    }
}

impl From<&UsageRow> for Totals {
    fn from(r: &UsageRow) -> Self {
        Totals {
            runs: r.runs,
            duration_ms: r.duration_ms,
            cpu_ticks: r.cpu_ticks,
            memory_kib_ms: r.memory_kib_ms,
            log_bytes: r.log_bytes,
            http_response_bytes: r.http_response_bytes,
        }
    }
}

/// The usage of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUsage {
    pub step: String,
    /// Runs by status (`succeeded`, `failed`, …); only statuses that occur.
    pub outcomes: BTreeMap<String, i64>,
    pub totals: Totals,
}

/// Folds rows ordered by step into one [`StepUsage`] per step, by name.
pub fn per_step(rows: &[UsageRow]) -> Vec<StepUsage> {
    let mut steps: BTreeMap<&str, StepUsage> = BTreeMap::new();
    for row in rows {
        let usage = steps.entry(&row.step).or_insert_with(|| StepUsage {
            step: row.step.clone(),
            outcomes: BTreeMap::new(),
            totals: Totals::default(),
        });
        *usage.outcomes.entry(row.status.clone()).or_default() += row.runs;
        usage.totals.add(&Totals::from(row));
    }
    steps.into_values().collect()
}

/// Reads usage from the run table.
#[derive(Debug, Clone)]
pub struct UsageStore {
    db: Db,
}

impl UsageStore {
    /// The run table of `secrets`' database.
    pub fn new(secrets: &SecretStore) -> Self {
        Self {
            db: secrets.db().clone(),
        }
    }

    /// Per step (by name), the runs of `project` created in
    /// `[from_ms, to_ms)` (Unix milliseconds).
    pub async fn per_step(
        &self,
        project: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StepUsage>> {
        let rows = self.db.usage(project, from_ms, to_ms).await?;
        Ok(per_step(&rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: &str, status: &str, runs: i64, bytes: i64) -> UsageRow {
        UsageRow {
            step: step.into(),
            status: status.into(),
            runs,
            duration_ms: runs * 10,
            cpu_ticks: runs,
            memory_kib_ms: runs * 100,
            log_bytes: bytes,
            http_response_bytes: i64::MAX,
        }
    }

    #[test]
    fn rows_fold_into_steps_with_outcomes_and_saturating_sums() {
        let usage = per_step(&[
            row("a", "failed", 1, 5),
            row("a", "succeeded", 2, 7),
            row("b", "succeeded", 3, 0),
        ]);
        assert_eq!(usage.len(), 2);
        let a = &usage[0];
        assert_eq!(a.step, "a");
        assert_eq!(
            a.outcomes,
            BTreeMap::from([("failed".into(), 1), ("succeeded".into(), 2)])
        );
        assert_eq!(
            (a.totals.runs, a.totals.duration_ms, a.totals.log_bytes),
            (3, 30, 12)
        );
        assert_eq!(a.totals.http_response_bytes, i64::MAX, "saturates");
        assert_eq!((usage[1].step.as_str(), usage[1].totals.runs), ("b", 3));
        assert!(per_step(&[]).is_empty());
    }
}
