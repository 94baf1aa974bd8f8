//! What one node changes, the other sees as soon as the change's `NOTIFY`
//! reaches it: keys, OAuth client secrets, steps and triggers. Each check
//! polls for at most [`ACROSS_NODES`], well under the caches' 10 s TTL, so a
//! cache on a node (of principals, step plans or triggers) that missed the
//! notification fails it.

use airlock_tests::{examples, guests};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::{Cluster, artifacts, eventually, upload};

/// How long a change may take to reach the other node: its `NOTIFY`
/// normally arrives within milliseconds.
const ACROSS_NODES: std::time::Duration = std::time::Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_client_secrets_changed_on_one_node_are_changed_on_the_other() {
    let c = Cluster::start(&[]).await;
    let runs = "/v1/projects/alpha/runs";

    // A key made on A works on B.
    let (key_id, key) =
        c.a.new_key_with_id(&c.admin, &["runs:read"], Some("alpha"))
            .await;
    let r = c.b.call(Method::GET, runs, Some(&key), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Revoked on A: B refuses it at once (fails if B kept the principal).
    let r =
        c.a.call(
            Method::DELETE,
            &format!("/v1/keys/{key_id}"),
            Some(&c.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    // B refuses it as soon as it hears the change (fails if B kept the
    // principal in its cache past the notification).
    eventually("B refuses the revoked key", ACROSS_NODES, || async {
        c.b.call(Method::GET, runs, Some(&key), None).await.status == StatusCode::UNAUTHORIZED
    })
    .await;
    let r = c.b.call(Method::GET, runs, Some(&key), None).await;
    r.assert_error_shape();

    // A client made on A gets a token from B, which A accepts.
    let (id, old_secret) =
        c.a.new_client(&c.admin, &["runs:read"], Some("alpha"))
            .await;
    let r = c.b.token_form(&id, &old_secret).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let old_token = r.json()["access_token"].as_str().unwrap().to_owned();
    let r = c.a.call(Method::GET, runs, Some(&old_token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Its secret rotated on A: on B the old token and the old secret are
    // dead at once (fails if B cached either), the new secret works.
    let r =
        c.a.call(
            Method::POST,
            &format!("/v1/oauth/clients/{id}/rotate-secret"),
            Some(&c.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let new_secret = r.json()["client_secret"].as_str().unwrap().to_owned();
    eventually(
        "B refuses the rotated client's token",
        ACROSS_NODES,
        || async {
            c.b.call(Method::GET, runs, Some(&old_token), None)
                .await
                .status
                == StatusCode::UNAUTHORIZED
        },
    )
    .await;
    let r = c.b.token_form(&id, &old_secret).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(r.assert_oauth_error(), "invalid_client");
    let r = c.b.token_form(&id, &new_secret).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let new_token = r.json()["access_token"].as_str().unwrap().to_owned();
    let r = c.a.call(Method::GET, runs, Some(&new_token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Deleted on B: A refuses its tokens at once.
    let r =
        c.b.call(
            Method::DELETE,
            &format!("/v1/oauth/clients/{id}"),
            Some(&c.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    eventually(
        "A refuses the deleted client's token",
        ACROSS_NODES,
        || async {
            c.a.call(Method::GET, runs, Some(&new_token), None)
                .await
                .status
                == StatusCode::UNAUTHORIZED
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_pushed_to_one_node_runs_on_the_other_from_its_own_cache() {
    let c = Cluster::start(&[]).await;
    let (a_cache, b_cache) = (c.a.data_dir().join("cache"), c.b.data_dir().join("cache"));

    // Pushed to A: A compiled it into its own cache; B has compiled nothing.
    let pushed = upload(
        &c.a,
        &c.admin,
        "greet",
        examples::HELLO,
        "name = \"greet\"\n",
    )
    .await;
    let hex = pushed["component_digest"]
        .as_str()
        .and_then(|d| d.strip_prefix("sha256:"))
        .unwrap_or_else(|| panic!("{pushed}"))
        .to_owned();
    let named = |dir: &std::path::Path| {
        artifacts(dir)
            .iter()
            .filter(|p| p.file_stem().is_some_and(|s| s == hex.as_str()))
            .count()
    };
    assert_eq!(named(&a_cache), 1, "{:?}", artifacts(&a_cache));
    assert!(artifacts(&b_cache).is_empty(), "{:?}", artifacts(&b_cache));

    // Runs on B, which compiles it into its own cache, named by its digest
    // (fails if B could not load a step it did not receive, or compiled it
    // anywhere else).
    let r =
        c.b.run(&c.admin, "alpha", "greet", json!({"name": "Ada"}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["status"], "succeeded", "{}", r.text);
    assert_eq!(r.json()["output"]["greeting"], "Hello, Ada!", "{}", r.text);
    assert_eq!(named(&b_cache), 1, "{:?}", artifacts(&b_cache));

    // A new version pushed to A is what B runs next (fails if B kept the
    // old version's plan).
    upload(
        &c.a,
        &c.admin,
        "greet",
        guests::CONTEXT_ECHO,
        "name = \"greet\"\n",
    )
    .await;
    eventually("B runs the new version", ACROSS_NODES, || async {
        let r =
            c.b.run(&c.admin, "alpha", "greet", json!({"name": "Ada"}))
                .await;
        r.json()["output"]["step"] == "greet"
    })
    .await;
    let r =
        c.b.run(&c.admin, "alpha", "greet", json!({"name": "Ada"}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let output = &r.json()["output"];
    assert_eq!(output["step"], "greet", "{}", r.text);
    assert_eq!(output["input"]["name"], "Ada", "{}", r.text);
    assert_eq!(artifacts(&b_cache).len(), 2, "{:?}", artifacts(&b_cache));

    // A trigger made on A fires on B; deleted on A, it is 404 on B at once.
    let r =
        c.a.call(
            Method::POST,
            "/v1/projects/alpha/steps/greet/triggers",
            Some(&c.admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let trigger = r.json();
    let fire = || async {
        let url = format!("{}{}", c.b.base, trigger["url"].as_str().unwrap());
        c.b.send(
            c.b.client
                .post(url)
                .header("content-type", "application/json")
                .body(r#"{"name":"Ada"}"#),
        )
        .await
    };
    let r = fire().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = trigger["id"].as_str().unwrap();
    let r =
        c.a.call(
            Method::DELETE,
            &format!("/v1/projects/alpha/steps/greet/triggers/{id}"),
            Some(&c.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    eventually("B forgets the deleted trigger", ACROSS_NODES, || async {
        fire().await.status == StatusCode::NOT_FOUND
    })
    .await;
    fire().await.assert_error_shape();
}
