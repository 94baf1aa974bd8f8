//! [`UsageRepo`](airlock_runtime::store::repo::UsageRepo).

use std::sync::Arc;

use airlock_runtime::store::repo::Database;
use airlock_runtime::store::usage::UsageRow;

use super::support::run;

pub async fn usage_sums_per_step_and_status_in_the_range(db: Arc<dyn Database>) {
    // Each run's stats are scaled by a power of ten, so a sum that counted
    // a run twice, or one outside the range, shows.
    let scaled = |id: &str, step: &str, status: &str, at: i64, k: i64| {
        let mut r = run(id, "alpha", step, status, at);
        r.duration_ms *= k;
        r.cpu_ticks *= k;
        r.memory_kib_ms *= k;
        r.log_bytes *= k;
        r.http_response_bytes *= k;
        r
    };
    let runs = [
        scaled("r0", "a", "succeeded", 999, 1_000), // before the range
        scaled("r1", "a", "succeeded", 1_000, 1),   // at `from`: in
        scaled("r2", "a", "succeeded", 1_500, 10),
        scaled("r3", "a", "failed", 1_600, 100),
        scaled("r4", "b", "succeeded", 1_999, 1),
        scaled("r5", "b", "succeeded", 2_000, 1_000), // at `to`: out
        {
            let mut r = scaled("r6", "a", "succeeded", 1_700, 1);
            r.project = "beta".into(); // another project
            r
        },
    ];
    db.insert_runs(&runs).await.unwrap();
    let rows = db.usage("alpha", 1_000, 2_000).await.unwrap();
    // `run` sets duration 1, cpu 2, log 4, memory-time 5, response bytes
    // 6; `k` is the sum of the scales.
    let row = |step: &str, status: &str, n: i64, k: i64| UsageRow {
        step: step.into(),
        status: status.into(),
        runs: n,
        duration_ms: k,
        cpu_ticks: 2 * k,
        memory_kib_ms: 5 * k,
        log_bytes: 4 * k,
        http_response_bytes: 6 * k,
    };
    assert_eq!(
        rows,
        [
            row("a", "failed", 1, 100),
            row("a", "succeeded", 2, 11),
            row("b", "succeeded", 1, 1),
        ]
    );
    assert!(db.usage("alpha", 5_000, 6_000).await.unwrap().is_empty());
    assert!(db.usage("gamma", 0, i64::MAX).await.unwrap().is_empty());
    let everything = db.usage("alpha", i64::MIN, i64::MAX).await.unwrap();
    let total: i64 = everything.iter().map(|r| r.runs).sum();
    assert_eq!(total, 6);
}
