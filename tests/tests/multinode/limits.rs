//! Rate limits count every node together: the project's outbound limit,
//! the trigger limit and the failed-token limit. Requests alternate between the nodes, so a limit
//! kept per node would let through twice as many as the limit says.

use airlock_runtime::server::ratelimit::TOKEN_FAILURES_PER_CLIENT;
use airlock_tests::{examples, fakes};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::{Cluster, create_account, outbound_args, proxy_get, upload, write_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbound_rate_limit_counts_both_nodes_together() {
    const LIMIT: usize = 4;
    let echo = fakes::echo().await;
    let apps = tempfile::tempdir().unwrap();
    write_app(
        apps.path(),
        "t-bearer",
        "bearer",
        &format!("http://{}", echo.addr),
        "header = \"Authorization\"\ntemplate = \"Bearer {{token}}\"",
        "",
    );
    let limit = LIMIT.to_string();
    let c = Cluster::start(&outbound_args(apps.path(), &["--http-rate-limit", &limit])).await;
    let account = create_account(
        &c.a,
        &c.admin,
        "t-bearer",
        "u1",
        json!({"token": "tok-multinode-1"}),
    )
    .await;
    let key = c.a.new_key(&c.admin, &["proxy"], None).await;

    for i in 0..LIMIT {
        let r = proxy_get(c.node(i), &key, "/ok", &account).await;
        assert_eq!(r.status, StatusCode::OK, "call {i}: {}", r.text);
    }
    // The N+1-th call is refused on either node: each has let through only
    // half the limit itself, so a per-node count would answer 200 here.
    for (name, node) in [("A", &c.a), ("B", &c.b)] {
        let r = proxy_get(node, &key, "/ok", &account).await;
        assert_eq!(
            r.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{name}: {}",
            r.text
        );
        assert_eq!(r.assert_error_shape(), "rate_limited", "{}", r.text);
        assert!(r.retry_after() >= 1, "{:?}", r.headers);
    }
    assert_eq!(echo.requests().len(), LIMIT, "only the admitted calls left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trigger_rate_limit_counts_both_nodes_together() {
    const LIMIT: usize = 2;
    let limit = LIMIT.to_string();
    let c = Cluster::start(&["--trigger-rate-limit", &limit]).await;
    upload(
        &c.a,
        &c.admin,
        "hello",
        examples::HELLO,
        "name = \"hello\"\n",
    )
    .await;
    let r =
        c.a.call(
            Method::POST,
            "/v1/projects/alpha/steps/hello/triggers",
            Some(&c.admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let path = r.json()["url"].as_str().unwrap().to_owned();
    let fire = |i: usize| {
        let node = c.node(i);
        node.send(
            node.client
                .post(format!("{}{path}", node.base))
                .header("content-type", "application/json")
                .body(r#"{"name":"Ada"}"#),
        )
    };
    for i in 0..LIMIT {
        let r = fire(i).await;
        assert_eq!(r.status, StatusCode::OK, "request {i}: {}", r.text);
    }
    // Each node has admitted one; a per-node count would admit these.
    for i in LIMIT..LIMIT + 2 {
        let r = fire(i).await;
        assert_eq!(
            r.status,
            StatusCode::TOO_MANY_REQUESTS,
            "request {i}: {}",
            r.text
        );
        assert_eq!(r.assert_error_shape(), "rate_limited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_token_attempts_on_both_nodes_count_against_one_limit() {
    let c = Cluster::start(&[]).await;
    let (id, secret) = c.a.new_client(&c.admin, &["runs:read"], None).await;
    let (other_id, other_secret) = c.a.new_client(&c.admin, &["runs:read"], None).await;
    // The limit's worth of wrong secrets, half on each node.
    for i in 0..TOKEN_FAILURES_PER_CLIENT as usize {
        let r = c.node(i).token_form(&id, "not-the-secret").await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "attempt {i}: {}",
            r.text
        );
        assert_eq!(r.assert_oauth_error(), "invalid_client");
    }
    // Now the client is refused on both nodes, even with the right secret,
    // though each node saw only half the limit itself (fails if the count
    // is per node: the right secret would get a token).
    for (name, node) in [("A", &c.a), ("B", &c.b)] {
        let r = node.token_form(&id, &secret).await;
        assert_eq!(
            r.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{name}: {}",
            r.text
        );
        assert_eq!(r.assert_oauth_error(), "temporarily_unavailable");
        assert!(!r.text.contains(&secret));
    }
    // It is this client's limit that tripped, not the address's: another
    // client from the same address still gets its token on either node.
    for node in [&c.a, &c.b] {
        let r = node.token_form(&other_id, &other_secret).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
}
