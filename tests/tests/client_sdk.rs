//! The Rust client, `airlock-client`, against a real `airlock serve` on
//! loopback: OAuth client credentials refreshed ahead of expiry (a short
//! `--token-ttl-secs`) and fetched once for many concurrent callers, the
//! server's error `code` in typed errors, 429s from the project's real
//! outbound rate limit retried after `Retry-After`, the proxy helper taking
//! a plain URL through to a loopback upstream, connect tokens, and a run's
//! log streamed as it is written.
//!
//! No wait is a timing assertion: the waits are longer than a token's life
//! so that an expired token would be refused, and a retry is proven by
//! more calls succeeding in a row than the limit lets through without one.

use std::collections::BTreeMap;
use std::time::Duration;

use airlock_client::{
    AccountQuery, Auth, Client, ClientCredentials, Error, LogEvent, NewAccount, NewConnectToken,
    NewCredential, ProxyRequest, RunRequest, StatusCode, StepUpload,
};
use airlock_tests::fakes;
use airlock_tests::serve::{Server, ServerBuilder};
use airlock_tests::{component_bytes, examples};
use reqwest::Method;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

fn api_key_client(server: &Server, key: &str) -> Client {
    Client::builder(&server.base).api_key(key).build().unwrap()
}

/// Access tokens the server has issued (its SQLite database).
async fn tokens_issued(server: &Server) -> i64 {
    let url = format!(
        "sqlite://{}?mode=ro",
        server.data_dir().join("airlock.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let n: (i64,) = sqlx::query_as("SELECT count(*) FROM oauth_tokens")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n.0
}

/// `airlock_auth_failures_total{reason="expired"}`: requests that came
/// with an expired access token.
async fn expired_token_refusals(server: &Server, admin: &str) -> u64 {
    let r = server
        .call(Method::GET, "/metrics", Some(admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.text
        .lines()
        .find(|l| l.starts_with("airlock_auth_failures_total{reason=\"expired\"}"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .unwrap_or(0)
}

/// Waits until the wall clock is 0.85 s into a second. The server counts a
/// token's expiry in whole seconds from the second it was issued in, so a
/// token fetched now lives only a little over `ttl - 1` seconds: a client
/// that used it up to its nominal expiry would be refused.
async fn just_before_a_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = now.subsec_millis();
    tokio::time::sleep(Duration::from_millis(u64::from((1850 - into) % 1000))).await;
}

#[tokio::test]
async fn client_credentials_are_refreshed_ahead_of_expiry_once_for_many_callers() {
    let server = Server::start(BIN, &["--token-ttl-secs", "3"]);
    let admin = server.admin_setup().await;
    let created = api_key_client(&server, &admin)
        .create_client(&NewCredential {
            name: "backend".into(),
            scopes: vec!["runs:read".into()],
            project: None,
        })
        .await
        .unwrap();
    let client = Client::builder(&server.base)
        .client_credentials(&created.client_id, created.client_secret.clone())
        .build()
        .unwrap();

    // Sixteen callers at once on a client with no token yet: one fetch.
    just_before_a_second().await;
    let calls = (0..16).map(|_| {
        let c = client.clone();
        tokio::spawn(async move { c.list_projects().await })
    });
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().len(), 2);
    }
    assert_eq!(tokens_issued(&server).await, 1);

    // 2.5 s on, the token is past the server's expiry (a little over 2 s)
    // though short of its nominal 3 s: refreshed ahead of expiry, the
    // client never sends it (none is refused as expired); then past a
    // whole lifetime.
    for wait in [2500, 3500] {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        assert_eq!(client.list_projects().await.unwrap().len(), 2);
    }
    assert_eq!(tokens_issued(&server).await, 3);
    assert_eq!(expired_token_refusals(&server, &admin).await, 0);

    // A wrong secret is the token endpoint's RFC 6749 error, typed.
    let wrong = Client::builder(&server.base)
        .auth(Auth::ClientCredentials(ClientCredentials::new(
            &created.client_id,
            "cs_wrong",
            None,
        )))
        .build()
        .unwrap();
    let e = wrong.list_projects().await.unwrap_err();
    let api = e.api().unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.code.as_deref(), Some("invalid_client"));
    // A scope the client does not hold.
    let narrowed = Client::builder(&server.base)
        .auth(Auth::ClientCredentials(ClientCredentials::new(
            &created.client_id,
            created.client_secret.clone(),
            Some("admin".into()),
        )))
        .build()
        .unwrap();
    let e = narrowed.list_projects().await.unwrap_err();
    assert_eq!(e.api().unwrap().code.as_deref(), Some("invalid_scope"));
}

#[tokio::test]
async fn errors_carry_the_servers_code() {
    let server = Server::start(BIN, &[]);
    let admin = server.admin_setup().await;
    let client = api_key_client(&server, &admin);
    let e = client.get_run("alpha", "run_nosuch").await.unwrap_err();
    let api = e.api().unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert_eq!(api.code.as_deref(), Some("not_found"));

    let reader = server.new_key(&admin, &["runs:read"], Some("alpha")).await;
    let e = api_key_client(&server, &reader)
        .create_project("gamma")
        .await
        .unwrap_err();
    assert_eq!(e.api().unwrap().code.as_deref(), Some("forbidden"));
    assert_eq!(e.status(), Some(StatusCode::FORBIDDEN));

    let e = api_key_client(&server, "ak_0000000000000000_nope")
        .list_projects()
        .await
        .unwrap_err();
    assert_eq!(e.api().unwrap().code.as_deref(), Some("unauthorized"));

    // Nothing listens: not an answer at all.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = Client::builder(format!("http://127.0.0.1:{port}"))
        .api_key(admin.as_str())
        .build()
        .unwrap()
        .list_projects()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
}

/// A server that may reach loopback, with a bearer app `echo` pointing at
/// the echo upstream, an account of user `u1` and its id.
async fn proxy_world(extra: &[&str]) -> (Server, fakes::Fake, tempfile::TempDir, String, String) {
    let echo = fakes::echo().await;
    let apps = tempfile::tempdir().unwrap();
    std::fs::write(
        apps.path().join("echo.toml"),
        format!(
            "slug = \"echo\"\nname = \"echo\"\nauth = \"bearer\"\nbase_url = \"http://{}\"\n\
             allowed_domains = [\"127.0.0.1\"]\n[credential]\nheader = \"Authorization\"\n\
             template = \"Bearer {{{{token}}}}\"\n",
            echo.addr
        ),
    )
    .unwrap();
    let mut args = vec![
        "--allow-range",
        "127.0.0.0/8",
        "--apps-dir",
        apps.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let server = ServerBuilder::new(BIN).args(&args).start();
    let admin = server.admin_setup().await;
    let account = api_key_client(&server, &admin)
        .create_account(
            "alpha",
            &NewAccount {
                app: "echo".into(),
                external_user_id: "u1".into(),
                credentials: BTreeMap::from([("token".into(), "upstream-tok-5d1e".into())]),
                custom_fields: BTreeMap::new(),
            },
        )
        .await
        .unwrap();
    (server, echo, apps, admin, account.id)
}

#[tokio::test]
async fn the_proxy_takes_a_plain_url_and_round_trips() {
    let (server, echo, _apps, admin, account) = proxy_world(&[]).await;
    let client = api_key_client(&server, &admin);
    let listed = client
        .list_accounts(
            "alpha",
            &AccountQuery {
                external_user_id: Some("u1".into()),
                ..AccountQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    // A full URL with a query whose characters base64 turns into `+` and
    // `/`, a header and a JSON body.
    let url = format!("http://{}/v1/items?q=a b>?&r=é", echo.addr);
    let answer = client
        .proxy(
            "alpha",
            &ProxyRequest::get(&url, "u1", &account)
                .method(Method::POST)
                .header("x-trace", "t-1")
                .json(&json!({"n": 1})),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    // The echo's answer is what it received, the credential masked.
    assert!(
        !answer.text().contains("upstream-tok-5d1e"),
        "{}",
        answer.text()
    );
    let seen = echo.requests().pop().unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/v1/items");
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(seen["query"].as_str().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(
        query,
        [("q".into(), "a b>?".into()), ("r".into(), "é".into())]
    );
    assert_eq!(seen["headers"]["x-trace"], "t-1");
    assert_eq!(seen["headers"]["authorization"], "Bearer upstream-tok-5d1e");
    assert_eq!(seen["body"], r#"{"n":1}"#);

    // A path relative to the app's base URL.
    let answer = client
        .proxy("alpha", &ProxyRequest::get("/rel/path", "u1", &account))
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(echo.requests().pop().unwrap()["path"], "/rel/path");

    // Airlock's own refusal is a typed error: another user's account.
    let e = client
        .proxy("alpha", &ProxyRequest::get("/x", "u2", &account))
        .await
        .unwrap_err();
    assert_eq!(e.api().unwrap().code.as_deref(), Some("not_found"));
}

#[tokio::test]
async fn rate_limited_calls_are_retried_after_retry_after() {
    // 300 outbound requests per 5 minutes: a burst of 300, then one a
    // second.
    let (server, _echo, _apps, admin, account) = proxy_world(&["--http-rate-limit", "300"]).await;
    let once = Client::builder(&server.base)
        .api_key(admin.as_str())
        .retries(0)
        .build()
        .unwrap();
    let request = ProxyRequest::get("/ping", "u1", &account);
    let mut refused = None;
    for _ in 0..400 {
        match once.proxy("alpha", &request).await {
            Ok(r) => assert_eq!(r.status, StatusCode::OK),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("the limit refuses within 400 calls");
    let api = e.api().unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(api.code.as_deref(), Some("rate_limited"));
    assert_eq!(api.retry_after, Some(Duration::from_secs(1)));

    // The limit lets one call a second through; three in a row succeed
    // only by waiting as Retry-After says.
    let retrying = Client::builder(&server.base)
        .api_key(admin.as_str())
        .retries(3)
        .build()
        .unwrap();
    for _ in 0..3 {
        let r = retrying.proxy("alpha", &request).await.unwrap();
        assert_eq!(r.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_connect_token_a_run_and_its_streamed_log() {
    let server = Server::start(BIN, &[]);
    let admin = server.admin_setup().await;
    let client = api_key_client(&server, &admin);

    let created = client
        .create_connect_token("alpha", &NewConnectToken::new("u1"))
        .await
        .unwrap();
    assert!(
        created
            .connect_link_url
            .ends_with(&format!("/connect/{}", created.token.expose())),
        "{}",
        created.connect_link_url
    );
    let token = client
        .get_connect_token("alpha", &created.id)
        .await
        .unwrap();
    assert_eq!(token.status, airlock_client::ConnectTokenStatus::Pending);
    assert_eq!(token.external_user_id, "u1");
    client
        .delete_connect_token("alpha", &created.id)
        .await
        .unwrap();
    let e = client
        .get_connect_token("alpha", &created.id)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(StatusCode::NOT_FOUND));

    client
        .put_step(
            "alpha",
            "hello",
            StepUpload {
                component: component_bytes(examples::HELLO),
                manifest: None,
            },
        )
        .await
        .unwrap();
    let queued = client
        .queue_run(
            "alpha",
            "hello",
            &RunRequest::new(json!({"name": "Ada"})),
            None,
        )
        .await
        .unwrap();
    let mut stream = client.stream_logs("alpha", &queued.id);
    let mut lines = Vec::new();
    let status = loop {
        match stream.next().await.unwrap() {
            Some(LogEvent::Line { line, .. }) => lines.push(line.text),
            Some(LogEvent::End { status }) => break status,
            None => panic!("the stream ended without an end event"),
        }
    };
    assert_eq!(status, "succeeded");
    assert!(lines.iter().any(|l| l.contains("Ada")), "{lines:?}");
    assert!(stream.next().await.unwrap().is_none());
}
