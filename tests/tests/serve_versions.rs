//! Step versions and usage through a real `airlock serve` (SQLite):
//! `PUT .../steps/{step}/current` rolls a step back (and forward) with
//! effect at the very next run, a trigger pinned to a digest keeps its
//! version through uploads and rollbacks, and `GET .../usage` sums exactly
//! the runs that were made. The multi-node case (a rollback seen by the
//! other node) is in `multinode/versions.rs`.

use airlock_tests::serve::{Reply, Server, ServerBuilder};
use airlock_tests::{component_bytes, examples, fakes, guests};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

fn start(args: &[&str]) -> Server {
    ServerBuilder::new(BIN).args(args).start()
}

/// Uploads `component` as `step` of alpha; the new version's digest.
async fn push(s: &Server, admin: &str, step: &str, component: &str, manifest: &str) -> String {
    let r = s
        .upload(
            "alpha",
            step,
            admin,
            &component_bytes(component),
            Some(manifest),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    r.json()["digest"].as_str().unwrap().to_owned()
}

async fn set_current(s: &Server, token: &str, step: &str, digest: &str) -> Reply {
    s.call(
        Method::PUT,
        &format!("/v1/projects/alpha/steps/{step}/current"),
        Some(token),
        Some(json!({ "digest": digest })),
    )
    .await
}

/// The digest of the version the newest run of alpha ran.
async fn newest_run_digest(s: &Server, admin: &str) -> String {
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/runs?limit=1",
            Some(admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["runs"][0]["digest"].as_str().unwrap().to_owned()
}

fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_current_rolls_a_step_back_and_forward_at_the_next_run() {
    let s = start(&[]);
    let admin = s.admin_setup().await;
    let manifest = "name = \"greet\"\n";
    let v1 = push(&s, &admin, "greet", examples::HELLO, manifest).await;
    let v2 = push(&s, &admin, "greet", guests::CONTEXT_ECHO, manifest).await;
    assert_ne!(v1, v2);

    // v2 is current: the echo step answers.
    let r = s
        .run(&admin, "alpha", "greet", json!({"name": "Ada"}))
        .await;
    assert_eq!(r.json()["output"]["step"], "greet", "{}", r.text);
    assert_eq!(newest_run_digest(&s, &admin).await, v2);

    // Back to v1: the answer is the step as GET shows it.
    let r = set_current(&s, &admin, "greet", &v1).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let step = r.json();
    assert_eq!(step["current_digest"], v1.as_str(), "{step}");
    let versions: Vec<(&str, bool)> = step["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["digest"].as_str().unwrap(),
                v["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, [(v2.as_str(), false), (v1.as_str(), true)]);
    assert!(step["versions"][0]["created_at"].is_string(), "{step}");
    assert_eq!(step["manifest"], manifest);
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/steps/greet",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.json(), step, "GET shows the same");

    // The very next run is v1 (fails if the cached current version or
    // plan survived the change).
    let r = s
        .run(&admin, "alpha", "greet", json!({"name": "Ada"}))
        .await;
    assert_eq!(r.json()["output"]["greeting"], "Hello, Ada!", "{}", r.text);
    assert_eq!(newest_run_digest(&s, &admin).await, v1);
    let r = s
        .call(Method::GET, "/v1/projects/alpha/steps", Some(&admin), None)
        .await;
    assert_eq!(r.json()["steps"][0]["current_digest"], v1.as_str());

    // Again: 200, nothing changes.
    let r = set_current(&s, &admin, "greet", &v1).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["updated_at"], step["updated_at"]);

    // Forward to v2 again, and a new upload is current as always.
    let r = set_current(&s, &admin, "greet", &v2).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = s
        .run(&admin, "alpha", "greet", json!({"name": "Ada"}))
        .await;
    assert_eq!(r.json()["output"]["step"], "greet", "{}", r.text);
    set_current(&s, &admin, "greet", &v1).await;
    let v3 = push(&s, &admin, "greet", guests::CONTEXT_ECHO, "name = \"v3\"\n").await;
    s.run(&admin, "alpha", "greet", json!({})).await;
    assert_eq!(newest_run_digest(&s, &admin).await, v3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_current_refuses_what_cannot_be_made_current() {
    let s = start(&[]);
    let admin = s.admin_setup().await;
    let v1 = push(&s, &admin, "greet", examples::HELLO, "name = \"greet\"\n").await;
    let other = push(&s, &admin, "other", guests::CONTEXT_ECHO, "name = \"o\"\n").await;
    let unknown = format!("sha256:{}", "0".repeat(64));

    // Malformed digests: 422 `invalid_digest`, whatever the step.
    for bad in [
        "v1".to_owned(),
        "sha256:xyz".to_owned(),
        v1.to_uppercase(),
        format!("{v1}0"),
        v1.trim_start_matches("sha256:").to_owned(),
    ] {
        let r = set_current(&s, &admin, "greet", &bad).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.text
        );
        let (code, message) = r.error();
        assert_eq!(code, "invalid_digest", "{message}");
        assert!(message.contains("sha256:"), "{message}");
    }
    // Well formed, but not a version of this step: 404 `no_version`.
    for digest in [&unknown, &other] {
        let r = set_current(&s, &admin, "greet", digest).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
        let (code, message) = r.error();
        assert_eq!(code, "no_version", "{message}");
        assert!(message.contains(digest.as_str()), "{message}");
    }
    // No such step: 404 `not_found`.
    let r = set_current(&s, &admin, "nope", &v1).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(r.error().0, "not_found");
    // Bad bodies: 400; a reader may not switch: 403; another project's
    // key sees nothing: 404.
    let path = "/v1/projects/alpha/steps/greet/current";
    for body in [
        json!({}),
        json!({"digest": v1, "extra": 1}),
        json!({"digest": 5}),
    ] {
        let r = s.call(Method::PUT, path, Some(&admin), Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        r.assert_error_shape();
    }
    let reader = s.new_key(&admin, &["steps:read"], Some("alpha")).await;
    let r = set_current(&s, &reader, "greet", &v1).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let beta = s.new_key(&admin, &["steps:write"], Some("beta")).await;
    let r = set_current(&s, &beta, "greet", &v1).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    // Nothing changed.
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/steps/greet",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.json()["current_digest"], v1.as_str());
}

/// Fires trigger `t` (a created trigger's JSON) with a JSON body.
async fn fire(s: &Server, t: &Value) -> Reply {
    let url = format!("{}{}", s.base, t["url"].as_str().unwrap());
    s.send(
        s.client
            .post(url)
            .header("content-type", "application/json")
            .body("{}"),
    )
    .await
}

async fn create_trigger(s: &Server, admin: &str, step: &str, body: Value) -> Reply {
    s.call(
        Method::POST,
        &format!("/v1/projects/alpha/steps/{step}/triggers"),
        Some(admin),
        Some(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_trigger_keeps_its_version_and_an_unpinned_one_follows_current() {
    let s = start(&[]);
    let admin = s.admin_setup().await;
    // Two versions of one component: the manifests differ.
    let v1 = push(&s, &admin, "echo", guests::CONTEXT_ECHO, "name = \"one\"\n").await;
    let r = create_trigger(&s, &admin, "echo", json!({"digest": v1})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let pinned = r.json();
    assert_eq!(pinned["digest"], v1.as_str(), "{pinned}");
    let r = create_trigger(&s, &admin, "echo", json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let follows = r.json();
    assert!(follows.get("digest").is_none(), "{follows}");

    let ran = |t: &'static str| {
        let (s, admin, t) = (&s, &admin, if t == "pinned" { &pinned } else { &follows });
        async move {
            let r = fire(s, t).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            newest_run_digest(s, admin).await
        }
    };
    assert_eq!(ran("pinned").await, v1);
    assert_eq!(ran("follows").await, v1);

    // A newer upload: the pinned trigger keeps v1.
    let v2 = push(&s, &admin, "echo", guests::CONTEXT_ECHO, "name = \"two\"\n").await;
    assert_eq!(ran("pinned").await, v1);
    assert_eq!(ran("follows").await, v2);
    // A rollback to v1 and forward to v2: still v1 for the pinned one.
    let r = create_trigger(&s, &admin, "echo", json!({"digest": v2})).await;
    let pinned_v2 = r.json();
    set_current(&s, &admin, "echo", &v1).await;
    assert_eq!(ran("follows").await, v1);
    let r = fire(&s, &pinned_v2).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(newest_run_digest(&s, &admin).await, v2, "pinned to v2");
    set_current(&s, &admin, "echo", &v2).await;
    assert_eq!(ran("pinned").await, v1);
    assert_eq!(ran("follows").await, v2);

    // The list shows the pin.
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/steps/echo/triggers",
            Some(&admin),
            None,
        )
        .await;
    let listed: Vec<Option<String>> = r.json()["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["digest"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(listed.len(), 3);
    assert!(listed.contains(&Some(v1.clone())) && listed.contains(&None));

    // A pin must name a version of this step.
    let other = push(&s, &admin, "other", guests::CONTEXT_ECHO, "name = \"o\"\n").await;
    for (digest, status, code) in [
        (
            "nope".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_digest",
        ),
        (
            format!("sha256:{}", "f".repeat(64)),
            StatusCode::NOT_FOUND,
            "no_version",
        ),
        (other, StatusCode::NOT_FOUND, "no_version"),
    ] {
        let r = create_trigger(&s, &admin, "echo", json!({ "digest": digest })).await;
        assert_eq!(r.status, status, "{digest}: {}", r.text);
        assert_eq!(r.error().0, code, "{}", r.text);
    }
}

/// `GET .../usage` with these query parameters.
async fn usage(s: &Server, token: &str, query: &str) -> Reply {
    s.call(
        Method::GET,
        &format!("/v1/projects/alpha/usage?{query}"),
        Some(token),
        None,
    )
    .await
}

/// Every run of alpha (at most 100), newest first.
async fn all_runs(s: &Server, admin: &str) -> Vec<Value> {
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/runs?limit=100",
            Some(admin),
            None,
        )
        .await;
    r.json()["runs"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_sums_exactly_the_runs_made_in_the_range() {
    let fake = fakes::echo().await;
    let s = start(&["--allow-range", "127.0.0.0/8"]);
    let admin = s.admin_setup().await;
    push(
        &s,
        &admin,
        "echo",
        guests::CONTEXT_ECHO,
        "name = \"echo\"\n",
    )
    .await;
    push(&s, &admin, "hello", examples::HELLO, "name = \"hello\"\n").await;
    let probe = "name = \"probe\"\n[http]\nallowed_hosts = [\"127.0.0.1\"]\n";
    push(&s, &admin, "probe", guests::HTTP_PROBE, probe).await;

    let from = unix_millis();
    for _ in 0..3 {
        let r = s.run(&admin, "alpha", "echo", json!({})).await;
        assert_eq!(r.json()["status"], "succeeded", "{}", r.text);
    }
    // A metadata-only run counts like any other.
    let r = s
        .call(
            Method::POST,
            "/v1/projects/alpha/steps/echo/runs",
            Some(&admin),
            Some(json!({"input": {}, "nostore": true})),
        )
        .await;
    assert_eq!(r.json()["status"], "succeeded", "{}", r.text);
    for name in ["Ada", "Grace", ""] {
        s.run(&admin, "alpha", "hello", json!({ "name": name }))
            .await;
    }
    let big = fake.url("/big?bytes=5000");
    for _ in 0..2 {
        let r = s.run(&admin, "alpha", "probe", json!({ "url": big })).await;
        assert_eq!(r.json()["status"], "succeeded", "{}", r.text);
    }
    let to = unix_millis() + 1;

    // `from` as RFC 3339, `to` as Unix milliseconds.
    let from_text = chrono::DateTime::from_timestamp_millis(from)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let query = format!("from={}&to={to}", from_text.replace('+', "%2B"));
    let r = usage(&s, &admin, &query).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let report = r.json();
    assert_eq!(report["from"], from_text.as_str(), "{report}");
    let steps = report["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(names, ["echo", "hello", "probe"], "{report}");
    let (echo, hello, probe) = (&steps[0], &steps[1], &steps[2]);
    assert_eq!(
        (echo["runs"].as_i64(), echo["outcomes"].clone()),
        (Some(4), json!({"succeeded": 4}))
    );
    assert_eq!(
        (hello["runs"].as_i64(), hello["outcomes"].clone()),
        (Some(3), json!({"succeeded": 2, "failed": 1}))
    );
    assert_eq!(probe["runs"], 2);

    // The sums are the runs' own stats, summed (nostore runs included) …
    let runs = all_runs(&s, &admin).await;
    assert_eq!(runs.len(), 9);
    for step in steps {
        let name = step["step"].as_str().unwrap();
        let mine: Vec<&Value> = runs.iter().filter(|r| r["step"] == name).collect();
        for field in [
            "duration_ms",
            "cpu_ticks",
            "log_bytes",
            "memory_kib_ms",
            "http_response_bytes",
        ] {
            let sum: i64 = mine
                .iter()
                .map(|r| r["stats"][field].as_i64().unwrap())
                .sum();
            assert_eq!(step[field].as_i64(), Some(sum), "{name}.{field}: {report}");
        }
        // … and every run held some memory for some time.
        assert!(
            step["memory_kib_ms"].as_i64().unwrap() > 0,
            "{name}: {report}"
        );
    }
    // … at least what was logged and fetched: each echo run writes
    // "to stdout" and "to stderr", each probe run got 5000 bytes.
    assert!(echo["log_bytes"].as_i64().unwrap() >= 4 * 18, "{report}");
    assert!(
        probe["http_response_bytes"].as_i64().unwrap() >= 2 * 5000,
        "{report}"
    );
    assert_eq!(echo["http_response_bytes"], 0, "{report}");
    let total = &report["total"];
    assert_eq!(total["runs"], 9, "{report}");
    assert_eq!(total["outcomes"], json!({"succeeded": 8, "failed": 1}));
    let sum_of = |field: &str| {
        steps
            .iter()
            .map(|s| s[field].as_i64().unwrap())
            .sum::<i64>()
    };
    for field in [
        "duration_ms",
        "cpu_ticks",
        "log_bytes",
        "memory_kib_ms",
        "http_response_bytes",
    ] {
        assert_eq!(total[field].as_i64(), Some(sum_of(field)), "{field}");
    }

    // A range before the runs holds none; `to` is excluded.
    let r = usage(&s, &admin, &format!("from=0&to={from}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["steps"], json!([]));
    assert_eq!(r.json()["total"]["runs"], 0);
    assert_eq!(r.json()["total"]["outcomes"], json!({}));

    // Bad ranges.
    for (query, status, code, names) in [
        ("from=0", StatusCode::BAD_REQUEST, "bad_request", "to"),
        ("to=5", StatusCode::BAD_REQUEST, "bad_request", "from"),
        (
            "from=yesterday&to=5",
            StatusCode::BAD_REQUEST,
            "bad_request",
            "from",
        ),
        (
            "from=0&to=2026-13-01T00:00:00Z",
            StatusCode::BAD_REQUEST,
            "bad_request",
            "to",
        ),
        (
            "from=0&to=5&step=x",
            StatusCode::BAD_REQUEST,
            "bad_request",
            "step",
        ),
        (
            "from=5&to=5",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_range",
            "to",
        ),
        (
            "from=2027-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_range",
            "from",
        ),
    ] {
        let r = usage(&s, &admin, query).await;
        assert_eq!(r.status, status, "{query}: {}", r.text);
        let (got, message) = r.error();
        assert_eq!(got, code, "{query}: {message}");
        assert!(message.contains(names), "{query}: {message}");
    }
    // The scope of reading runs; another project's key sees nothing.
    let reader = s.new_key(&admin, &["runs:read"], Some("alpha")).await;
    assert_eq!(usage(&s, &reader, &query).await.status, StatusCode::OK);
    let writer = s
        .new_key(&admin, &["runs:write", "steps:read"], Some("alpha"))
        .await;
    assert_eq!(
        usage(&s, &writer, &query).await.status,
        StatusCode::FORBIDDEN
    );
    let beta = s.new_key(&admin, &["runs:read"], Some("beta")).await;
    assert_eq!(usage(&s, &beta, &query).await.status, StatusCode::NOT_FOUND);
}
