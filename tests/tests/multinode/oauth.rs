//! OAuth refresh across nodes: one refresh per account however many runs
//! on however many nodes need it, and a node that dies holding the refresh
//! frees it. The provider is the fake token endpoint, which rotates the
//! refresh token on every refresh and refuses a used one (`invalid_grant`),
//! as providers with rotation do.

use std::sync::atomic::Ordering;
use std::time::Duration;

use airlock_tests::fakes::{self, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, OAuthFake};
use airlock_tests::guests;
use airlock_tests::serve::Server;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::{
    Cluster, account, create_account, eventually, outbound_args, presented_refresh_tokens,
    proxy_url, put_secret, unix_now, upload, write_app,
};

/// Two nodes whose app `t-oauth` has its token endpoint at `provider`, the
/// client credentials stored, and an account of `u1` whose access token
/// expired ten seconds ago (refresh token `refresh-0`).
struct World {
    c: Cluster,
    account: String,
    _apps: tempfile::TempDir,
}

async fn world(provider: &OAuthFake, extra: &[&str]) -> World {
    let a = provider.fake.addr;
    let apps = tempfile::tempdir().unwrap();
    write_app(
        apps.path(),
        "t-oauth",
        "oauth2",
        &format!("http://{a}"),
        "header = \"Authorization\"\ntemplate = \"Bearer {{access_token}}\"",
        &format!(
            "[oauth]\nauthorize_url = \"http://{a}/oauth/authorize\"\n\
             token_url = \"http://{a}/oauth/token\"\nscopes = [\"read\"]\n"
        ),
    );
    let c = Cluster::start(&outbound_args(apps.path(), extra)).await;
    put_secret(&c.a, &c.admin, "oauth.t-oauth.client_id", OAUTH_CLIENT_ID).await;
    put_secret(
        &c.a,
        &c.admin,
        "oauth.t-oauth.client_secret",
        OAUTH_CLIENT_SECRET,
    )
    .await;
    let account = create_account(
        &c.a,
        &c.admin,
        "t-oauth",
        "u1",
        json!({
            "access_token": "access-expired",
            "refresh_token": "refresh-0",
            "expires_at": unix_now() - 10,
        }),
    )
    .await;
    World {
        c,
        account,
        _apps: apps,
    }
}

fn token_requests(provider: &OAuthFake) -> usize {
    provider.state.token_requests.load(Ordering::SeqCst)
}

/// The account is healthy on `nodes` and holds the provider's current
/// refresh token: the rotation was saved.
async fn assert_healthy_with_current_tokens(w: &World, nodes: &[&Server], provider: &OAuthFake) {
    for node in nodes {
        let v = account(node, &w.c.admin, &w.account).await;
        assert_eq!(v["health"], "healthy", "{v}");
        assert_eq!(
            v["credentials"]["refresh_token"].as_str(),
            Some(provider.state.current_refresh_token().as_str()),
            "{v}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_runs_on_two_nodes_refresh_an_expired_token_once() {
    let provider = fakes::oauth("refresh-0", "access-gen0").await;
    let w = world(&provider, &[]).await;
    let c = &w.c;
    let manifest = "name = \"probe\"\n[http]\napps = [\"t-oauth\"]\n";
    upload(&c.a, &c.admin, "probe", guests::HTTP_PROBE, manifest).await;
    // B compiles the step before the race, so the runs overlap on the
    // refresh rather than queue behind a compile. No account, no refresh.
    let r =
        c.b.run(
            &c.admin,
            "alpha",
            "probe",
            json!({"url": provider.fake.url("/api/me")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(token_requests(&provider), 0);

    let input = json!({"url": "/api/me", "auth": {"account": "t-oauth"}});
    let runs = (0..50).map(|i| {
        c.node(i).call(
            Method::POST,
            "/v1/projects/alpha/steps/probe/runs",
            Some(&c.admin),
            Some(json!({"input": input, "external_user_id": "u1"})),
        )
    });
    for r in futures::future::join_all(runs).await {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let run = r.json();
        assert_eq!(run["status"], "succeeded", "{run}");
        // `/api/me` accepts only the newest access token.
        assert_eq!(run["output"]["status"], 200, "{run}");
        assert!(
            run["output"]["body"].as_str().unwrap().contains("ada"),
            "{run}"
        );
    }
    // One refresh for fifty runs on two nodes: fails if either the
    // in-process single-flight or the database lock is missing (each node,
    // or each run, would refresh).
    assert_eq!(token_requests(&provider), 1);
    assert_eq!(presented_refresh_tokens(&provider), ["refresh-0"]);
    // The provider refuses the used refresh token: a second refresh with
    // it would not have been quietly accepted.
    let r =
        c.a.send(
            c.a.client
                .post(provider.fake.url("/oauth/token"))
                .basic_auth(OAUTH_CLIENT_ID, Some(OAUTH_CLIENT_SECRET))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=refresh_token&refresh_token=refresh-0"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.json()["error"], "invalid_grant", "{}", r.text);
    assert_healthy_with_current_tokens(&w, &[&c.a, &c.b], &provider).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_while_it_refreshes_leaves_nothing_locked() {
    let provider = fakes::oauth("refresh-0", "access-gen0").await;
    // Longer than the test: A's request is still held when A dies, and the
    // provider has rotated nothing.
    provider.state.hold_first_request(Duration::from_secs(120));
    let w = world(&provider, &[]).await;
    let c = &w.c;
    let key = c.a.new_key(&c.admin, &["proxy"], None).await;

    // A asks for the token and holds the refresh while the provider stalls.
    let on_a = tokio::spawn({
        let req =
            c.a.client
                .get(proxy_url(&c.a, "/api/me", &w.account, "u1"))
                .bearer_auth(&key);
        async move { req.send().await.map(|r| r.status()) }
    });
    eventually(
        "A's refresh reaches the provider",
        Duration::from_secs(20),
        || async { token_requests(&provider) == 1 },
    )
    .await;
    // B asks too, and waits on A's lock in the database; it must not
    // refresh while A holds the lock (fails if the lock is not shared).
    let on_b = tokio::spawn({
        let req =
            c.b.client
                .get(proxy_url(&c.b, "/api/me", &w.account, "u1"))
                .bearer_auth(&key);
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    });
    eventually(
        "B waits on A's refresh lock",
        Duration::from_secs(20),
        || async {
            assert_eq!(
                token_requests(&provider),
                1,
                "B refreshed while A held the lock"
            );
            c.advisory_locks().await == (1, 1)
        },
    )
    .await;

    c.a.sigkill();
    // A's connection to the database ends with it, and so does its lock:
    // B refreshes (with the refresh token A never got to use) and answers.
    // The bound is a liveness bound (a lock left behind would hang B until
    // the statement timeout), not a measurement.
    let (status, text) = tokio::time::timeout(Duration::from_secs(20), on_b)
        .await
        .expect("B finished the refresh after A died")
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("ada"), "{text}");
    assert!(on_a.await.unwrap().is_err(), "A answered after SIGKILL");
    assert_eq!(token_requests(&provider), 2);
    assert_eq!(
        presented_refresh_tokens(&provider),
        ["refresh-0", "refresh-0"]
    );
    assert_healthy_with_current_tokens(&w, &[&c.b], &provider).await;
    // Nothing is left locked once B's transaction is over (its rollback
    // is sent as the connection goes back to the pool).
    eventually(
        "no advisory lock is left",
        Duration::from_secs(10),
        || async { c.advisory_locks().await == (0, 0) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_slower_than_the_statement_timeout_is_still_done_once() {
    let provider = fakes::oauth("refresh-0", "access-gen0").await;
    // The provider takes three times the statement timeout to answer A.
    provider.state.hold_first_request(Duration::from_secs(3));
    let w = world(&provider, &["--database-statement-timeout-ms", "1000"]).await;
    let c = &w.c;
    let key = c.a.new_key(&c.admin, &["proxy"], None).await;
    let ask = |node: &Server| {
        let req = node
            .client
            .get(proxy_url(node, "/api/me", &w.account, "u1"))
            .bearer_auth(&key);
        tokio::spawn(async move {
            let r = req.send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        })
    };
    let on_a = ask(&c.a);
    eventually(
        "A's refresh reaches the provider",
        Duration::from_secs(20),
        || async { token_requests(&provider) == 1 },
    )
    .await;
    let on_b = ask(&c.b);
    eventually(
        "B waits on A's refresh lock",
        Duration::from_secs(20),
        || async { c.advisory_locks().await == (1, 1) },
    )
    .await;
    for on in [on_a, on_b] {
        let (status, text) = on.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{text}");
        assert!(text.contains("ada"), "{text}");
    }
    // B waited for A's refresh and used its result: fails if B's wait for
    // the lock ends at the statement timeout and B refreshes on its own.
    assert_eq!(token_requests(&provider), 1);
    assert_healthy_with_current_tokens(&w, &[&c.a, &c.b], &provider).await;
}
