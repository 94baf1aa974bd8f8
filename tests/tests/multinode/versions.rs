//! Versions across nodes: a step rolled back on one node runs its older
//! version on the other as soon as the change's `NOTIFY` reaches it (well
//! under the caches' 10 s TTL, so a node that missed it fails the test), a
//! trigger pinned on one node keeps its version on the other, and usage
//! counts the runs of both nodes.

use airlock_tests::{examples, guests};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{Cluster, eventually, upload};

/// How long a change may take to reach the other node.
const ACROSS_NODES: std::time::Duration = std::time::Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_on_one_node_is_what_the_other_runs_next() {
    let c = Cluster::start(&[]).await;
    let manifest = "name = \"greet\"\n";
    let v1 = upload(&c.a, &c.admin, "greet", examples::HELLO, manifest).await;
    let v1 = v1["digest"].as_str().unwrap().to_owned();
    let v2 = upload(&c.a, &c.admin, "greet", guests::CONTEXT_ECHO, manifest).await;
    let v2 = v2["digest"].as_str().unwrap().to_owned();
    let run_on_b = || async {
        let r =
            c.b.run(&c.admin, "alpha", "greet", json!({"name": "Ada"}))
                .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json()
    };
    // B runs v2 and now holds v2 as the step's current version, and its
    // plan.
    eventually("B runs v2", ACROSS_NODES, || async {
        run_on_b().await["output"]["step"] == "greet"
    })
    .await;

    // A pinned trigger made on A, to v2.
    let r =
        c.a.call(
            Method::POST,
            "/v1/projects/alpha/steps/greet/triggers",
            Some(&c.admin),
            Some(json!({ "digest": v2 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let trigger = r.json();

    // Rolled back on A: B runs v1 as soon as it hears it (fails if B kept
    // its cached current version past the notification).
    let r =
        c.a.call(
            Method::PUT,
            "/v1/projects/alpha/steps/greet/current",
            Some(&c.admin),
            Some(json!({ "digest": v1 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    eventually("B runs v1", ACROSS_NODES, || async {
        run_on_b().await["output"]["greeting"] == "Hello, Ada!"
    })
    .await;
    let r =
        c.b.call(
            Method::GET,
            "/v1/projects/alpha/steps/greet",
            Some(&c.admin),
            None,
        )
        .await;
    assert_eq!(r.json()["current_digest"], v1.as_str(), "{}", r.text);

    // The pinned trigger still runs v2 on B (its input is the request, which
    // the echo step returns).
    let url = format!("{}{}", c.b.base, trigger["url"].as_str().unwrap());
    let r =
        c.b.send(
            c.b.client
                .post(url)
                .header("content-type", "application/json")
                .body(r#"{"name":"Ada"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["step"], "greet", "{}", r.text);

    // Usage, asked of A, counts the runs both nodes made.
    let r =
        c.a.call(
            Method::GET,
            "/v1/projects/alpha/runs?limit=100",
            Some(&c.admin),
            None,
        )
        .await;
    let made = r.json()["runs"].as_array().unwrap().len() as i64;
    let r =
        c.a.call(
            Method::GET,
            "/v1/projects/alpha/usage?from=0&to=99999999999999",
            Some(&c.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let report: Value = r.json();
    assert_eq!(report["total"]["runs"], made, "{report}");
    assert_eq!(report["steps"][0]["step"], "greet", "{report}");
}
