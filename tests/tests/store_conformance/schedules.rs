//! [`ScheduleRepo`](airlock_runtime::store::repo::ScheduleRepo), and the
//! scheduler's pass over it ([`fire_due`]): a tick fires once, missed
//! ticks coalesce, and two nodes firing the same ticks queue one run each.

use std::sync::Arc;

use airlock_runtime::service::schedules::{fire_due, tick_key};
use airlock_runtime::store::queue::QueueStore;
use airlock_runtime::store::repo::Database;
use airlock_runtime::store::runs::RunFilter;
use airlock_runtime::store::schedules::{Advance, ScheduleRecord, ScheduleStore};

/// 2026-06-01T12:00:00Z in Unix milliseconds.
const NOON: i64 = 1_780_315_200_000;

fn schedule(
    id: &str,
    step: &str,
    cron: &str,
    next: Option<i64>,
    created_at: i64,
) -> ScheduleRecord {
    ScheduleRecord {
        id: id.to_owned(),
        project: "alpha".into(),
        step: step.to_owned(),
        cron: cron.to_owned(),
        timezone: "UTC".into(),
        input: format!(r#"{{"from":"{id}"}}"#),
        digest: None,
        external_user_id: Some("ada".into()),
        enabled: true,
        next_fire_at: next,
        last_fired_at: None,
        last_run_id: None,
        created_at,
        updated_at: created_at,
    }
}

fn ids(rows: &[ScheduleRecord]) -> Vec<&str> {
    rows.iter().map(|s| s.id.as_str()).collect()
}

pub async fn schedule_insert_get_list_update_delete(db: Arc<dyn Database>) {
    let a = schedule("sch_a", "s", "* * * * *", Some(NOON), 200);
    let b = schedule("sch_b", "s", "0 9 * * *", None, 100);
    let c = schedule("sch_c", "s2", "@hourly", Some(NOON), 300);
    for s in [&a, &b, &c] {
        assert!(db.insert_schedule(s, 3).await.unwrap());
    }
    assert!(db.insert_schedule(&a, 10).await.is_err(), "ids are unique");
    // The project is full at 3; another project is not.
    let full = schedule("sch_d", "s", "* * * * *", Some(NOON), 400);
    assert!(!db.insert_schedule(&full, 3).await.unwrap());
    assert_eq!(db.get_schedule("alpha", "sch_d").await.unwrap(), None);
    let mut other = full.clone();
    other.project = "beta".into();
    assert!(db.insert_schedule(&other, 3).await.unwrap());

    assert_eq!(
        db.get_schedule("alpha", "sch_a").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        db.get_schedule("alpha", "sch_b").await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(db.get_schedule("beta", "sch_a").await.unwrap(), None);
    // Creation order, of a step or of the project.
    assert_eq!(
        ids(&db.list_schedules("alpha", Some("s")).await.unwrap()),
        ["sch_b", "sch_a"]
    );
    assert_eq!(
        ids(&db.list_schedules("alpha", None).await.unwrap()),
        ["sch_b", "sch_a", "sch_c"]
    );
    assert_eq!(
        ids(&db.list_schedules("beta", None).await.unwrap()),
        ["sch_d"]
    );

    // An update keeps the fire time unless it reschedules, and never
    // touches what the scheduler writes.
    let mut changed = a.clone();
    changed.cron = "*/5 * * * *".into();
    changed.timezone = "Europe/Paris".into();
    changed.input = "[1]".into();
    changed.enabled = false;
    changed.updated_at = 900;
    changed.next_fire_at = Some(NOON + 60_000);
    changed.last_run_id = Some("ignored".into());
    assert!(db.update_schedule(&changed, false).await.unwrap());
    let stored = db.get_schedule("alpha", "sch_a").await.unwrap().unwrap();
    assert_eq!(stored.next_fire_at, Some(NOON));
    assert_eq!(stored.last_run_id, None);
    assert_eq!(
        (
            stored.cron.as_str(),
            stored.timezone.as_str(),
            stored.input.as_str()
        ),
        ("*/5 * * * *", "Europe/Paris", "[1]")
    );
    assert!((!stored.enabled) && stored.updated_at == 900);
    assert!(db.update_schedule(&changed, true).await.unwrap());
    let stored = db.get_schedule("alpha", "sch_a").await.unwrap().unwrap();
    assert_eq!(stored.next_fire_at, Some(NOON + 60_000));
    let mut elsewhere = changed.clone();
    elsewhere.project = "gamma".into();
    assert!(!db.update_schedule(&elsewhere, true).await.unwrap());

    assert!(!db.delete_schedule("beta", "sch_a").await.unwrap());
    assert!(db.delete_schedule("alpha", "sch_a").await.unwrap());
    assert!(!db.delete_schedule("alpha", "sch_a").await.unwrap());
    assert_eq!(db.delete_schedules_of_step("alpha", "s").await.unwrap(), 1);
    assert_eq!(
        ids(&db.list_schedules("alpha", None).await.unwrap()),
        ["sch_c"]
    );
    assert_eq!(db.delete_schedules_of_step("alpha", "s").await.unwrap(), 0);
}

pub async fn schedule_due_earliest_and_advance_compare_and_set(db: Arc<dyn Database>) {
    assert_eq!(db.earliest_schedule_fire().await.unwrap(), None);
    let late = schedule("sch_late", "s", "* * * * *", Some(NOON + 5_000), 1);
    let early = schedule("sch_early", "s", "* * * * *", Some(NOON - 5_000), 2);
    let mut paused = schedule("sch_paused", "s", "* * * * *", Some(NOON - 9_000), 3);
    paused.enabled = false;
    let never = schedule("sch_never", "s", "* * * * *", None, 4);
    for s in [&late, &early, &paused, &never] {
        assert!(db.insert_schedule(s, 100).await.unwrap());
    }
    // Enabled only, due only, the oldest tick first.
    assert_eq!(
        ids(&db.due_schedules(NOON, 10).await.unwrap()),
        ["sch_early"]
    );
    assert_eq!(
        ids(&db.due_schedules(NOON + 5_000, 10).await.unwrap()),
        ["sch_early", "sch_late"]
    );
    assert_eq!(
        ids(&db.due_schedules(NOON + 5_000, 1).await.unwrap()),
        ["sch_early"]
    );
    assert_eq!(
        db.earliest_schedule_fire().await.unwrap(),
        Some(NOON - 5_000)
    );

    let advance = Advance {
        id: "sch_early",
        expected: NOON - 5_000,
        next: Some(NOON + 55_000),
        tick: NOON - 5_000,
        run_id: "run-1",
    };
    assert!(db.advance_schedule(&advance).await.unwrap());
    // The value it expected is gone: a second node's advance does nothing.
    let again = Advance {
        run_id: "run-2",
        ..advance.clone()
    };
    assert!(!db.advance_schedule(&again).await.unwrap());
    let stored = db
        .get_schedule("alpha", "sch_early")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.next_fire_at, Some(NOON + 55_000));
    assert_eq!(stored.last_fired_at, Some(NOON - 5_000));
    assert_eq!(stored.last_run_id.as_deref(), Some("run-1"));
    assert_eq!(
        db.earliest_schedule_fire().await.unwrap(),
        Some(NOON + 5_000)
    );
    // A paused schedule is not advanced.
    let on_paused = Advance {
        id: "sch_paused",
        expected: NOON - 9_000,
        ..advance
    };
    assert!(!db.advance_schedule(&on_paused).await.unwrap());
}

/// The runs the scheduler queued, oldest first, as a worker claims them.
async fn claim_all(db: &Arc<dyn Database>, now: i64) -> Vec<(String, Option<String>, String)> {
    let mut claimed = Vec::new();
    while let Some(run) = db.claim_run("node", now, 30_000).await.unwrap() {
        claimed.push((run.trigger, run.idempotency_key, run.input));
    }
    claimed
}

pub async fn schedule_missed_ticks_coalesce_into_one_run(db: Arc<dyn Database>) {
    let schedules = ScheduleStore::new(db.clone());
    let queue = QueueStore::new(db.clone());
    // Every minute; due a month ago (every node was down since).
    let month_ago = NOON - 31 * 86_400_000;
    let s = schedule("sch_m", "s", "0 * * * * *", Some(month_ago), 1);
    assert!(db.insert_schedule(&s, 100).await.unwrap());
    let now = NOON + 30_500; // 12:00:30.5
    assert_eq!(fire_due(&schedules, &queue, now).await.unwrap(), 1);
    // One run, for the latest missed tick (12:00:00); the older ones skipped.
    let runs = claim_all(&db, now).await;
    assert_eq!(
        runs,
        [(
            "schedule".to_owned(),
            Some(tick_key("sch_m", NOON)),
            r#"{"from":"sch_m"}"#.to_owned()
        )]
    );
    let stored = db.get_schedule("alpha", "sch_m").await.unwrap().unwrap();
    assert_eq!(stored.last_fired_at, Some(NOON));
    // It continues from now: the next tick after 12:00:30.5.
    assert_eq!(stored.next_fire_at, Some(NOON + 60_000));
    let listed = db
        .list_runs(
            "alpha",
            &RunFilter {
                limit: 10,
                ..RunFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(stored.last_run_id.as_deref(), Some(listed[0].id.as_str()));
    // Nothing more is due until then; then the next tick fires.
    assert_eq!(
        fire_due(&schedules, &queue, NOON + 59_999).await.unwrap(),
        0
    );
    assert_eq!(
        fire_due(&schedules, &queue, NOON + 60_000).await.unwrap(),
        1
    );
    let runs = claim_all(&db, NOON + 60_000).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].1, Some(tick_key("sch_m", NOON + 60_000)));
}

/// Two nodes run every pass at the same moments over 20 ticks of an
/// every-second schedule: each tick queues exactly one run.
pub async fn concurrent_passes_fire_each_tick_once(a: Arc<dyn Database>, b: Arc<dyn Database>) {
    let s = schedule("sch_c", "s", "* * * * * *", Some(NOON), 1);
    assert!(a.insert_schedule(&s, 100).await.unwrap());
    let nodes = [
        (ScheduleStore::new(a.clone()), QueueStore::new(a.clone())),
        (ScheduleStore::new(b.clone()), QueueStore::new(b.clone())),
    ];
    for tick in 0..20 {
        let now = NOON + tick * 1000 + 10;
        let (x, y) = tokio::join!(
            fire_due(&nodes[0].0, &nodes[0].1, now),
            fire_due(&nodes[1].0, &nodes[1].1, now),
        );
        x.unwrap();
        y.unwrap();
    }
    let runs = claim_all(&a, NOON + 30_000).await;
    let keys: Vec<String> = runs.into_iter().filter_map(|r| r.1).collect();
    let expected: Vec<String> = (0..20)
        .map(|t| tick_key("sch_c", NOON + t * 1000))
        .collect();
    assert_eq!(keys, expected);
    let stored = a.get_schedule("alpha", "sch_c").await.unwrap().unwrap();
    assert_eq!(stored.next_fire_at, Some(NOON + 20_000));
}

/// Concurrent creates on two handles never pass the per-project limit.
pub async fn concurrent_creates_stop_at_the_limit(a: Arc<dyn Database>, b: Arc<dyn Database>) {
    let mut tasks = Vec::new();
    for i in 0..12 {
        let db = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let s = schedule(&format!("sch_{i:02}"), "s", "* * * * *", Some(NOON), i);
            db.insert_schedule(&s, 5).await.unwrap()
        }));
    }
    let mut created = 0;
    for t in tasks {
        created += usize::from(t.await.unwrap());
    }
    assert_eq!(created, 5);
    assert_eq!(a.list_schedules("alpha", None).await.unwrap().len(), 5);
}
