//! [`RunRepo`](airlock_runtime::store::repo::RunRepo).

use std::sync::Arc;

use airlock_runtime::store::repo::Database;
use airlock_runtime::store::runs::RunFilter;

use super::support::{ids, run};

pub async fn run_insert_get_with_nulls(db: Arc<dyn Database>) {
    let mut full = run("r1", "alpha", "hello", "succeeded", 1_700_000_000_123);
    full.memory_peak_bytes = 1 << 40;
    full.cpu_ticks = i64::MAX;
    full.memory_kib_ms = i64::MAX - 1;
    full.http_response_bytes = 10 << 20;
    full.input = Some(r#"{"name":"x"}"#.into());
    full.output = Some(r#"{"ok":true}"#.into());
    full.logs = Some(r#"[{"source":"stdout","text":"hi"}]"#.into());
    full.http_calls = Some("[]".into());
    full.external_user_id = Some("ada".into());
    full.rerun_of = Some("r0".into());
    full.started_at = Some(1_700_000_000_124);
    let mut failed = run("r2", "alpha", "hello", "failed", 1);
    failed.error = Some(r#"{"kind":"trap","message":"boom"}"#.into());
    let bare = run("r3", "alpha", "hello", "succeeded", 2);
    for r in [&full, &failed, &bare] {
        db.insert_run(r).await.unwrap();
    }
    assert!(db.insert_run(&full).await.is_err(), "ids are unique");
    assert_eq!(db.get_run("alpha", "r1").await.unwrap(), Some(full));
    assert_eq!(db.get_run("alpha", "r2").await.unwrap(), Some(failed));
    assert_eq!(db.get_run("alpha", "r3").await.unwrap(), Some(bare));
    assert_eq!(db.get_run("beta", "r1").await.unwrap(), None);
    assert_eq!(db.get_run("alpha", "r9").await.unwrap(), None);
    // The grouped insert (the recorder's) keeps every column too.
    let mut grouped = run("r4", "alpha", "hello", "succeeded", 3);
    grouped.external_user_id = Some("grace".into());
    grouped.rerun_of = Some("r1".into());
    let plain = run("r5", "alpha", "hello", "failed", 4);
    db.insert_runs(&[grouped.clone(), plain.clone()])
        .await
        .unwrap();
    assert_eq!(db.get_run("alpha", "r4").await.unwrap(), Some(grouped));
    assert_eq!(db.get_run("alpha", "r5").await.unwrap(), Some(plain));
}

pub async fn run_list_is_newest_first_with_filters_and_cursor(db: Arc<dyn Database>) {
    for r in [
        run("r1", "alpha", "s1", "succeeded", 1_000),
        run("r2", "alpha", "s1", "failed", 2_000),
        run("r3", "alpha", "s2", "succeeded", 2_000),
        run("r4", "alpha", "s1", "succeeded", 3_000),
        run("r5", "beta", "s1", "succeeded", 4_000),
    ] {
        db.insert_run(&r).await.unwrap();
    }
    let list = |step: Option<&str>, status: Option<&str>, before: Option<(i64, &str)>, limit| {
        let filter = RunFilter {
            step: step.map(str::to_owned),
            status: status.map(str::to_owned),
            before: before.map(|(at, id)| (at, id.to_owned())),
            limit,
        };
        let db = db.clone();
        async move { ids(&db.list_runs("alpha", &filter).await.unwrap(), |r| &r.id) }
    };
    // Newest first; the same millisecond by id, descending.
    assert_eq!(list(None, None, None, 10).await, ["r4", "r3", "r2", "r1"]);
    assert_eq!(list(Some("s1"), None, None, 10).await, ["r4", "r2", "r1"]);
    assert_eq!(list(None, Some("failed"), None, 10).await, ["r2"]);
    assert_eq!(
        list(Some("s1"), Some("succeeded"), None, 10).await,
        ["r4", "r1"]
    );
    assert_eq!(list(None, None, None, 2).await, ["r4", "r3"]);
    assert!(list(None, None, None, 0).await.is_empty());
    // The cursor is exclusive and ordered like the list.
    assert_eq!(
        list(None, None, Some((2_000, "r3")), 10).await,
        ["r2", "r1"]
    );
    assert_eq!(list(None, None, Some((2_000, "r2")), 10).await, ["r1"]);
    assert_eq!(
        list(None, None, Some((2_000, "r9")), 10).await,
        ["r3", "r2", "r1"]
    );
    assert_eq!(
        list(None, None, Some((3_000, "r4")), 10).await,
        ["r3", "r2", "r1"]
    );
    assert!(list(None, None, Some((1_000, "r1")), 10).await.is_empty());
    assert_eq!(list(Some("s1"), None, Some((3_000, "r4")), 1).await, ["r2"]);

    // Paging one at a time visits every run once, in order.
    let mut seen = Vec::new();
    let mut before: Option<(i64, String)> = None;
    loop {
        let filter = RunFilter {
            before: before.clone(),
            limit: 1,
            ..RunFilter::default()
        };
        let page = db.list_runs("alpha", &filter).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some((last.created_at, last.id.clone()));
        seen.extend(page.into_iter().map(|r| r.id));
    }
    assert_eq!(seen, ["r4", "r3", "r2", "r1"]);
}

pub async fn run_delete_before_in_batches(db: Arc<dyn Database>) {
    for i in 1..=7 {
        db.insert_run(&run(
            &format!("old{i}"),
            "alpha",
            "s",
            "succeeded",
            i * 1_000,
        ))
        .await
        .unwrap();
    }
    db.insert_run(&run("at-cutoff", "alpha", "s", "succeeded", 8_000))
        .await
        .unwrap();
    // Old but unfinished (a run waiting in the queue, one running): kept,
    // however old, or the queue would lose them.
    for (id, status) in [("waiting", "queued"), ("busy", "running")] {
        db.insert_run(&run(id, "alpha", "s", status, 500))
            .await
            .unwrap();
    }
    db.insert_run(&run("new", "beta", "s", "succeeded", 9_000))
        .await
        .unwrap();
    // At most a batch each time; runs at the cutoff stay.
    for want in [3, 3, 1, 0] {
        assert_eq!(db.delete_runs_before(8_000, 3).await.unwrap(), want);
    }
    let filter = RunFilter {
        limit: 100,
        ..RunFilter::default()
    };
    let left = db.list_runs("alpha", &filter).await.unwrap();
    assert_eq!(ids(&left, |r| &r.id), ["at-cutoff", "waiting", "busy"]);
    assert!(db.get_run("beta", "new").await.unwrap().is_some());
}

/// The chart's points: time, outcome and duration of one project's runs
/// since a time, newest first, at most `limit`.
pub async fn run_points_are_newest_first_since_a_time(db: Arc<dyn Database>) {
    use airlock_runtime::store::runs::{RunOutcome, RunPoint};
    let mut slow = run("r3", "alpha", "s1", "failed", 3_000);
    slow.duration_ms = 250;
    for r in [
        run("r1", "alpha", "s1", "succeeded", 1_000),
        run("r2", "alpha", "s2", "queued", 2_000),
        slow,
        run("r4", "alpha", "s1", "cancelled", 4_000),
        run("r5", "beta", "s1", "succeeded", 5_000),
    ] {
        db.insert_run(&r).await.unwrap();
    }
    let points = db.run_points("alpha", 2_000, 10).await.unwrap();
    let outcomes: Vec<(i64, RunOutcome)> =
        points.iter().map(|p| (p.created_at, p.status)).collect();
    assert_eq!(
        outcomes,
        [
            (4_000, RunOutcome::Cancelled),
            (3_000, RunOutcome::Failed),
            (2_000, RunOutcome::Unfinished),
        ]
    );
    assert_eq!(
        points[1],
        RunPoint {
            created_at: 3_000,
            status: RunOutcome::Failed,
            duration_ms: 250,
        }
    );
    assert_eq!(db.run_points("alpha", 0, 2).await.unwrap().len(), 2);
    assert!(db.run_points("gamma", 0, 10).await.unwrap().is_empty());
}
