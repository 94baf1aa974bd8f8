//! Cron schedules on one node (SQLite), end to end through `airlock
//! serve`: an every-second schedule queues runs (trigger `schedule` in the
//! run record) whose fire times advance second by second; pausing stops
//! it, resuming starts it again, deleting it (or its step) removes it; a
//! time zone schedule fires at that zone's wall-clock time; bad input is
//! refused naming the field; a project holds at most 1,000 schedules.
//! Missed-tick coalescing and two nodes on one tick are in
//! `store_conformance` (schedules) and `multinode` (schedules).
//!
//! A scheduled run's `context` says trigger `api` (the WIT enum has no
//! `schedule` case) and carries the schedule's user and input.
//!
//! Every wait is on a condition with a generous bound; the negative checks
//! (a paused or deleted schedule queues no later tick) watch three ticks
//! and compare tick times, so a slow pass cannot make them flaky.

use std::time::{Duration, Instant};

use airlock_tests::serve::{Reply, Server, ServerBuilder, timestamp};
use airlock_tests::{component_bytes, examples};
use chrono::{DateTime, TimeZone as _, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
const HELLO: &str = "name = \"hello\"\n";

async fn setup() -> (Server, String) {
    let s = ServerBuilder::new(BIN).start();
    let admin = s.admin_setup().await;
    let r = s
        .upload(
            "alpha",
            "hello",
            &admin,
            &component_bytes(examples::HELLO),
            Some(HELLO),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    (s, admin)
}

async fn create(s: &Server, key: &str, step: &str, body: Value) -> Reply {
    s.call(
        Method::POST,
        &format!("/v1/projects/alpha/steps/{step}/schedules"),
        Some(key),
        Some(body),
    )
    .await
}

async fn get(s: &Server, key: &str, id: &str) -> Reply {
    s.call(
        Method::GET,
        &format!("/v1/projects/alpha/schedules/{id}"),
        Some(key),
        None,
    )
    .await
}

async fn patch(s: &Server, key: &str, id: &str, body: Value) -> Reply {
    s.call(
        Method::PATCH,
        &format!("/v1/projects/alpha/schedules/{id}"),
        Some(key),
        Some(body),
    )
    .await
}

fn times(schedule: &Value) -> Vec<DateTime<Utc>> {
    schedule["next_fire_times"]
        .as_array()
        .unwrap()
        .iter()
        .map(timestamp)
        .collect()
}

/// `(id, run_trigger, idempotency_key)` of the runs in the node's database.
async fn stored_runs(s: &Server) -> Vec<(String, Option<String>, Option<String>)> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(s.data_dir().join("airlock.db"))
        .read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let rows = sqlx::query_as("SELECT id, run_trigger, idempotency_key FROM runs ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

/// The latest tick any scheduled run was queued for (Unix ms).
async fn latest_tick(s: &Server) -> i64 {
    stored_runs(s)
        .await
        .iter()
        .filter_map(|(_, _, key)| key.as_deref()?.rsplit(':').next()?.parse().ok())
        .max()
        .unwrap()
}

/// Waits until `check` holds for schedule `id`; returns the schedule.
async fn wait_schedule(
    s: &Server,
    key: &str,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let bound = Duration::from_secs(60);
    let start = Instant::now();
    loop {
        let r = get(s, key, id).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let v = r.json();
        if check(&v) {
            return v;
        }
        assert!(start.elapsed() < bound, "not within {bound:?}: {what}: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_every_second_schedule_queues_runs_until_paused_and_stops_when_deleted() {
    let (s, admin) = setup().await;
    let before = Utc::now();
    let r = create(
        &s,
        &admin,
        "hello",
        json!({"cron": "* * * * * *", "timezone": "UTC", "input": {"name": "Cron"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("sch_") && id.len() == 20, "{id}");
    assert_eq!(created["cron"], "* * * * * *");
    assert_eq!(created["timezone"], "UTC");
    assert_eq!(created["input"], json!({"name": "Cron"}));
    assert_eq!(created["enabled"], true);
    assert!(created.get("last_fired_at").is_none() && created.get("last_run_id").is_none());
    // The next five whole seconds after creation, one second apart.
    let next = times(&created);
    assert_eq!(next.len(), 5, "{created}");
    assert!(next[0] > before && next[0] <= Utc::now() + chrono::Duration::seconds(1));
    assert_eq!(next[0].timestamp_subsec_millis(), 0);
    for pair in next.windows(2) {
        assert_eq!(pair[1] - pair[0], chrono::Duration::seconds(1), "{created}");
    }

    // It fires: its runs run the step with its input.
    let fired = wait_schedule(&s, &admin, &id, "three ticks fired", |v| {
        v["last_fired_at"].is_string()
            && timestamp(&v["last_fired_at"]) >= next[0] + chrono::Duration::seconds(2)
    })
    .await;
    let run_id = fired["last_run_id"].as_str().unwrap().to_owned();
    let bound = Instant::now();
    let run = loop {
        let r = s
            .call(
                Method::GET,
                &format!("/v1/projects/alpha/runs/{run_id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let run = r.json();
        if run["status"] == "succeeded" {
            break run;
        }
        assert!(bound.elapsed() < Duration::from_secs(60), "{run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(run["output"], json!({"greeting": "Hello, Cron!"}));
    // Its fire times moved on, still whole seconds a second apart.
    let later = times(&fired);
    assert!(later[0] > timestamp(&fired["last_fired_at"]), "{fired}");
    assert!(later[0] > next[0]);
    // The record says `schedule`, keyed by schedule and tick.
    let runs = stored_runs(&s).await;
    assert!(runs.len() >= 3, "{runs:?}");
    let mut ticks = Vec::new();
    for (_, trigger, key) in &runs {
        assert_eq!(trigger.as_deref(), Some("schedule"));
        let key = key.as_deref().unwrap();
        let tick: i64 = key
            .strip_prefix(&format!("schedule:{id}:"))
            .unwrap_or_else(|| panic!("{key}"))
            .parse()
            .unwrap();
        assert_eq!(tick % 1000, 0, "{key}");
        ticks.push(tick);
    }
    ticks.sort_unstable();
    assert!(
        ticks.windows(2).all(|w| w[1] > w[0]),
        "one run per tick: {ticks:?}"
    );
    assert!(runs.iter().any(|r| r.0 == run_id));

    // Listed with its step and with the project.
    for path in [
        "/v1/projects/alpha/steps/hello/schedules",
        "/v1/projects/alpha/schedules",
    ] {
        let r = s.call(Method::GET, path, Some(&admin), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json()["schedules"][0]["id"], id.as_str(), "{path}");
    }

    // Paused: no fire times, and no tick after the pause.
    let r = patch(&s, &admin, &id, json!({"enabled": false})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["enabled"], false);
    assert_eq!(r.json()["next_fire_times"], json!([]));
    // A pass that read the schedule before the pause may still queue its
    // tick, but no tick after the pause fires.
    let paused_at = Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let latest = latest_tick(&s).await;
    assert!(
        latest <= paused_at,
        "a paused schedule fired: tick {latest} > {paused_at}"
    );

    // Resumed: from the next tick after now, and it fires again.
    let resumed_at = Utc::now();
    let r = patch(
        &s,
        &admin,
        &id,
        json!({"enabled": true, "input": {"name": "Again"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let resumed = r.json();
    assert_eq!(resumed["input"], json!({"name": "Again"}));
    assert!(times(&resumed)[0] > resumed_at, "{resumed}");
    wait_schedule(&s, &admin, &id, "a tick after the resume", |v| {
        v["last_fired_at"].is_string() && timestamp(&v["last_fired_at"]) > resumed_at
    })
    .await;

    // Deleted: gone, and it queues nothing more.
    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/projects/alpha/schedules/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(get(&s, &admin, &id).await.status, StatusCode::NOT_FOUND);
    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/projects/alpha/schedules/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let deleted_at = Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let latest = latest_tick(&s).await;
    assert!(
        latest <= deleted_at,
        "a deleted schedule fired: tick {latest} > {deleted_at}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_zone_schedule_fires_at_that_zones_wall_clock_time() {
    let (s, admin) = setup().await;
    let r = create(
        &s,
        &admin,
        "hello",
        json!({"cron": "0 0 9 * * *", "timezone": "Europe/Paris", "input": {}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let created = r.json();
    let created_at = timestamp(&created["created_at"]);
    // The next five 09:00 in Paris after creation, by chrono-tz.
    let paris = chrono_tz::Europe::Paris;
    let mut day = created_at.with_timezone(&paris).date_naive();
    let mut expected = Vec::new();
    while expected.len() < 5 {
        let nine = paris
            .from_local_datetime(&day.and_hms_opt(9, 0, 0).unwrap())
            .single()
            .unwrap()
            .with_timezone(&Utc);
        if nine > created_at {
            expected.push(nine);
        }
        day = day.succ_opt().unwrap();
    }
    assert_eq!(times(&created), expected, "{created}");
    // The five-field form is the same expression without seconds.
    let r = create(
        &s,
        &admin,
        "hello",
        json!({"cron": "0 9 * * *", "timezone": "Europe/Paris", "enabled": false}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let paused = r.json();
    assert_eq!(paused["enabled"], false);
    assert_eq!(paused["next_fire_times"], json!([]));
    assert_eq!(paused["input"], Value::Null);
    let r = patch(
        &s,
        &admin,
        paused["id"].as_str().unwrap(),
        json!({"enabled": true}),
    )
    .await;
    assert_eq!(times(&r.json()), expected, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schedules_are_refused_naming_the_field() {
    let (s, admin) = setup().await;
    let cases = [
        (json!({"cron": "* * *", "timezone": "UTC"}), "cron: "),
        (json!({"cron": "61 * * * *", "timezone": "UTC"}), "cron: "),
        (
            json!({"cron": "0 0 31 2 *", "timezone": "UTC"}),
            "cron: it never fires",
        ),
        (
            json!({"cron": "x".repeat(300), "timezone": "UTC"}),
            "cron: ",
        ),
        (
            json!({"cron": "* * * * *", "timezone": "Mars/Olympus"}),
            "timezone: ",
        ),
        (
            json!({"cron": "* * * * *", "input": "x".repeat(70_000)}),
            "input: ",
        ),
        (
            json!({"cron": "* * * * *", "external_user_id": "a\u{7}b"}),
            "external_user_id: ",
        ),
    ];
    for (body, named) in cases {
        let r = create(&s, &admin, "hello", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        let message = r.error().1;
        assert!(message.starts_with(named), "{body}: {message}");
    }
    // Not JSON at all, or a field that does not exist.
    let r = s
        .send(
            s.client
                .post(format!(
                    "{}/v1/projects/alpha/steps/hello/schedules",
                    s.base
                ))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body("{\"cron\": "),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = create(
        &s,
        &admin,
        "hello",
        json!({"cron": "* * * * *", "every": 5}),
    )
    .await;
    assert!(r.status.is_client_error(), "{}", r.text);
    assert!(r.text.contains("every"), "{}", r.text);
    // A step that does not exist; a digest that names no version of it,
    // or is not a digest.
    let r = create(&s, &admin, "nope", json!({"cron": "* * * * *"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let missing = format!("sha256:{}", "0".repeat(64));
    let r = create(
        &s,
        &admin,
        "hello",
        json!({"cron": "* * * * *", "digest": missing}),
    )
    .await;
    assert_eq!(
        (r.status, r.error().0.as_str()),
        (StatusCode::NOT_FOUND, "no_version")
    );
    let r = create(
        &s,
        &admin,
        "hello",
        json!({"cron": "* * * * *", "digest": "latest"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    // Nothing was stored by any of them.
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/schedules",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.json()["schedules"], json!([]));

    // A change is checked the same way and leaves the schedule as it was.
    let r = create(
        &s,
        &admin,
        "hello",
        json!({"cron": "0 9 * * *", "enabled": false}),
    )
    .await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = patch(&s, &admin, &id, json!({"cron": "nope"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.error().1.starts_with("cron: "));
    let r = patch(&s, &admin, &id, json!({"timezone": "Nowhere"})).await;
    assert!(r.error().1.starts_with("timezone: "));
    assert_eq!(get(&s, &admin, &id).await.json()["cron"], "0 9 * * *");
    // Unknown ids, and ids that cannot be one.
    for bad in ["sch_0000000000000000", "nope"] {
        assert_eq!(get(&s, &admin, bad).await.status, StatusCode::NOT_FOUND);
        let r = patch(&s, &admin, bad, json!({"enabled": true})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    // Scopes: reading needs `steps:read`, changing `steps:write`.
    let reader = s.new_key(&admin, &["steps:read"], Some("alpha")).await;
    assert_eq!(get(&s, &reader, &id).await.status, StatusCode::OK);
    let r = create(&s, &reader, "hello", json!({"cron": "* * * * *"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = patch(&s, &reader, &id, json!({"enabled": true})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let runner = s.new_key(&admin, &["runs:write"], Some("alpha")).await;
    assert_eq!(get(&s, &runner, &id).await.status, StatusCode::FORBIDDEN);
    // Nor can a caller of the runs API take a tick's idempotency key.
    let r = s
        .send(
            s.client
                .post(format!("{}/v1/projects/alpha/steps/hello/runs", s.base))
                .bearer_auth(&runner)
                .header("content-type", "application/json")
                .header("prefer", "respond-async")
                .header("idempotency-key", format!("schedule:{id}:1780315200000"))
                .body(json!({"input": {}}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.error().1.starts_with("Idempotency-Key: "), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_holds_a_thousand_schedules_and_a_deleted_step_takes_its_own() {
    let (s, admin) = setup().await;
    let body = json!({"cron": "0 0 1 1 *", "enabled": false});
    for i in 0..1000 {
        let r = create(&s, &admin, "hello", body.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "schedule {i}: {}", r.text);
    }
    let r = create(&s, &admin, "hello", body.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.error().0, "schedule_limit");
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/schedules",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.json()["schedules"].as_array().unwrap().len(), 1000);

    // Deleting the step deletes its schedules: the project has room again.
    let r = s
        .call(
            Method::DELETE,
            "/v1/projects/alpha/steps/hello",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/schedules",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.json()["schedules"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_run_sees_its_user_and_input_and_the_api_trigger_in_context() {
    let (s, admin) = setup().await;
    let r = s
        .upload(
            "alpha",
            "echo",
            &admin,
            &component_bytes(airlock_tests::guests::CONTEXT_ECHO),
            Some("name = \"echo\"\n"),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = create(
        &s,
        &admin,
        "echo",
        json!({"cron": "* * * * * *", "input": [1, 2], "external_user_id": "user-7"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["external_user_id"], "user-7");
    let fired = wait_schedule(&s, &admin, &id, "a tick fired", |v| {
        v["last_run_id"].is_string()
    })
    .await;
    let run_id = fired["last_run_id"].as_str().unwrap().to_owned();
    let bound = Instant::now();
    let run = loop {
        let r = s
            .call(
                Method::GET,
                &format!("/v1/projects/alpha/runs/{run_id}"),
                Some(&admin),
                None,
            )
            .await;
        let run = r.json();
        if run["status"] == "succeeded" {
            break run;
        }
        assert!(bound.elapsed() < Duration::from_secs(60), "{run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = &run["output"];
    assert_eq!(output["run_id"], run_id.as_str(), "{run}");
    assert_eq!(output["step"], "echo");
    assert_eq!(output["external_user_id"], "user-7");
    assert_eq!(output["input"], json!([1, 2]));
    // The WIT trigger enum has no `schedule` case: the context says `api`,
    // the run record `schedule`.
    assert_eq!(output["trigger"], "Api");
    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/projects/alpha/schedules/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_schedule_runs_its_version_after_a_newer_one_is_pushed() {
    let (s, admin) = setup().await;
    let pinned = s
        .call(
            Method::GET,
            "/v1/projects/alpha/steps/hello",
            Some(&admin),
            None,
        )
        .await
        .json()["current_digest"]
        .as_str()
        .unwrap()
        .to_owned();
    // A newer version becomes current; the schedule keeps the old one.
    let r = s
        .upload(
            "alpha",
            "hello",
            &admin,
            &component_bytes(airlock_tests::guests::CONTEXT_ECHO),
            Some(HELLO),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_ne!(r.json()["digest"], pinned.as_str());
    let r = create(
        &s,
        &admin,
        "hello",
        json!({"cron": "* * * * * *", "digest": pinned, "input": {"name": "Pin"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["digest"], pinned.as_str(), "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let fired = wait_schedule(&s, &admin, &id, "a fired tick", |v| {
        v["last_run_id"].is_string()
    })
    .await;
    let run_id = fired["last_run_id"].as_str().unwrap().to_owned();
    let bound = Instant::now();
    let run = loop {
        let r = s
            .call(
                Method::GET,
                &format!("/v1/projects/alpha/runs/{run_id}"),
                Some(&admin),
                None,
            )
            .await;
        let run = r.json();
        if run["status"] == "succeeded" {
            break run;
        }
        assert!(bound.elapsed() < Duration::from_secs(60), "{run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(run["digest"], pinned.as_str(), "{run}");
    assert_eq!(run["output"], json!({"greeting": "Hello, Pin!"}), "{run}");
    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/projects/alpha/schedules/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
}
