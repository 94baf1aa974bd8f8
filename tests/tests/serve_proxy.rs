//! The credential-injecting proxy, server runs with outbound HTTP, and
//! credentials passed at run time, end to end: the real `airlock serve` on
//! loopback, fake upstreams on loopback (allowed with `--allow-range`), app
//! definitions pointing at them (`--apps-dir`), accounts connected with the
//! real `airlock accounts` CLI against the server's database.

use std::path::Path;

use airlock_tests::fakes::{self, Fake, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET};
use airlock_tests::serve::{MASTER_KEY, Reply, Server, ServerBuilder, command};
use airlock_tests::{component_bytes, examples, guests};
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

/// An app file for a loopback upstream at `addr`.
fn app_toml(slug: &str, auth: &str, base_url: &str, credential: &str, extra: &str) -> String {
    format!(
        "slug = \"{slug}\"\nname = \"{slug}\"\nauth = \"{auth}\"\nbase_url = \"{base_url}\"\n\
         allowed_domains = [\"127.0.0.1\"]\n{extra}\n[credential]\n{credential}\n"
    )
}

/// The five placements, all against one echo upstream.
fn placement_apps(dir: &Path, echo: &Fake) {
    let base = format!("http://{}", echo.addr);
    for (slug, auth, credential) in [
        (
            "t-bearer",
            "bearer",
            "header = \"Authorization\"\ntemplate = \"Bearer {{token}}\"",
        ),
        (
            "t-key-header",
            "api-key",
            "header = \"x-api-key\"\ntemplate = \"{{api_key}}\"",
        ),
        (
            "t-key-query",
            "api-key",
            "query = \"api_key\"\ntemplate = \"{{api_key}}\"",
        ),
        (
            "t-basic",
            "basic",
            "header = \"Authorization\"\ntemplate = \"Basic {{basic}}\"",
        ),
        (
            "t-custom",
            "custom",
            "header = \"X-Shop-Token\"\ntemplate = \"{{access_token}}\"",
        ),
    ] {
        std::fs::write(
            dir.join(format!("{slug}.toml")),
            app_toml(slug, auth, &base, credential, ""),
        )
        .unwrap();
    }
}

struct World {
    server: Server,
    apps: tempfile::TempDir,
    admin: String,
}

/// A server whose outbound side may reach loopback, with the apps in
/// `apps` and `extra` flags, a global admin key and projects alpha, beta.
async fn world(apps: tempfile::TempDir, extra: &[&str]) -> World {
    let mut args = vec![
        "--allow-range",
        "127.0.0.0/8",
        "--apps-dir",
        apps.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let server = ServerBuilder::new(BIN).args(&args).start();
    let admin = server.admin_setup().await;
    World {
        server,
        apps,
        admin,
    }
}

impl World {
    /// `airlock accounts add` for project alpha; returns the account id.
    fn add_account(&self, app: &str, user: &str, flags: &[&str]) -> String {
        let out = command(BIN, &self.server.data_dir())
            .env("AIRLOCK_MASTER_KEY", MASTER_KEY)
            .args(["accounts", "--project", "alpha", "--apps-dir"])
            .arg(self.apps.path())
            .args(["add", "--app", app, "--external-user", user])
            .args(flags)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    // One call per proxy request shape; a struct would only rename the arguments.
    #[allow(clippy::too_many_arguments)]
    async fn proxy(
        &self,
        token: &str,
        method: Method,
        target: &str,
        account: &str,
        user: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(target);
        let url = format!(
            "{}/v1/projects/alpha/proxy/{encoded}?external_user_id={user}&account_id={account}",
            self.server.base
        );
        let mut req = self.server.client.request(method, url).bearer_auth(token);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        if let Some(b) = body {
            req = req.body(b.to_owned());
        }
        self.server.send(req).await
    }

    fn db_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for name in ["airlock.db", "airlock.db-wal", "airlock.db-journal"] {
            if let Ok(b) = std::fs::read(self.server.data_dir().join(name)) {
                all.extend(b);
            }
        }
        assert!(!all.is_empty(), "no database file");
        all
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn header<'a>(request: &'a Value, name: &str) -> Option<&'a str> {
    request["headers"][name].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_inserts_each_auth_kind_where_its_app_says_and_nowhere_else() {
    let echo = fakes::echo().await;
    let apps = tempfile::tempdir().unwrap();
    placement_apps(apps.path(), &echo);
    let w = world(apps, &[]).await;
    let token = w.server.new_key(&w.admin, &["proxy"], None).await;
    let cases: [(&str, &[&str], &str); 5] = [
        (
            "t-bearer",
            &["--bearer", "tok-bearer-111111"],
            "tok-bearer-111111",
        ),
        (
            "t-key-header",
            &["--api-key", "key-header-222222"],
            "key-header-222222",
        ),
        (
            "t-key-query",
            &["--api-key", "key-query-333333"],
            "key-query-333333",
        ),
        (
            "t-basic",
            &["--username", "ada", "--password", "pw-basic-444444"],
            "pw-basic-444444",
        ),
        (
            "t-custom",
            &["--access-token", "shop-tok-555555"],
            "shop-tok-555555",
        ),
    ];
    for (i, (app, flags, secret)) in cases.iter().enumerate() {
        let account = w.add_account(app, "u1", flags);
        let r = w
            .proxy(
                &token,
                Method::GET,
                "/anything?x=1",
                &account,
                "u1",
                &[],
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{app}: {}", r.text);
        // The echo upstream returns what it received: the credential in the
        // answer is masked, so the caller never sees it.
        assert!(!r.text.contains(secret), "{app}: {}", r.text);
        let seen = &echo.requests()[i];
        assert_eq!(seen["path"], "/anything", "{app}");
        let query = seen["query"].as_str().unwrap_or("");
        let auth = header(seen, "authorization");
        match *app {
            "t-bearer" => assert_eq!(auth, Some("Bearer tok-bearer-111111")),
            "t-key-header" => {
                assert_eq!(header(seen, "x-api-key"), Some("key-header-222222"));
                assert_eq!(auth, None);
            }
            "t-key-query" => {
                assert!(query.contains("api_key=key-query-333333"), "{query}");
                assert!(query.contains("x=1"), "{query}");
                assert_eq!(auth, None);
            }
            "t-basic" => {
                let expected =
                    base64::engine::general_purpose::STANDARD.encode("ada:pw-basic-444444");
                assert_eq!(auth, Some(format!("Basic {expected}").as_str()));
            }
            "t-custom" => {
                assert_eq!(header(seen, "x-shop-token"), Some("shop-tok-555555"));
                assert_eq!(auth, None);
            }
            _ => unreachable!(),
        }
        // Nowhere else: not in the query (unless placed there), not in the
        // path, not in another header than the app's.
        let everything = seen.to_string();
        assert_eq!(
            everything.matches(secret).count(),
            usize::from(*app != "t-basic"),
            "{app}: {everything}"
        );
        // The platform token for Airlock never reaches the upstream.
        assert!(!everything.contains(&token), "{everything}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_takes_full_and_relative_urls_and_forwards_only_prefixed_headers() {
    let echo = fakes::echo().await;
    let apps = tempfile::tempdir().unwrap();
    placement_apps(apps.path(), &echo);
    let w = world(apps, &[]).await;
    let token = w.server.new_key(&w.admin, &["proxy"], None).await;
    let account = w.add_account("t-bearer", "u1", &["--bearer", "tok-abcdef"]);

    // A full URL on an allowed domain, a POST body, a prefixed header.
    let full = echo.url("/v2/items?page=2");
    let r = w
        .proxy(
            &token,
            Method::POST,
            &full,
            &account,
            "u1",
            &[
                ("x-airlock-proxy-x-custom", "kept"),
                ("x-airlock-proxy-content-type", "application/json"),
                ("x-other", "dropped"),
            ],
            Some("{\"a\":1}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let seen = echo.requests().pop().unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/v2/items");
    assert_eq!(seen["query"], "page=2");
    assert_eq!(seen["body"], "{\"a\":1}");
    assert_eq!(header(&seen, "x-custom"), Some("kept"));
    assert_eq!(header(&seen, "content-type"), Some("application/json"));
    assert_eq!(header(&seen, "x-other"), None);
    assert_eq!(header(&seen, "x-airlock-proxy-x-custom"), None);

    // The upstream's status comes back as it is.
    let r = w
        .proxy(
            &token,
            Method::DELETE,
            "/status/418",
            &account,
            "u1",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status.as_u16(), 418, "{}", r.text);

    // Restricted headers: a 400 naming the header, nothing sent.
    let before = echo.requests().len();
    for name in [
        "cookie",
        "host",
        "accept-encoding",
        "origin",
        "referer",
        "sec-fetch-site",
        "proxy-authorization",
        "authorization",
        "permissions-policy",
        "note",
        "x-http-method",
        "x-airlock-account",
    ] {
        let prefixed = format!("x-airlock-proxy-{name}");
        let r = w
            .proxy(
                &token,
                Method::GET,
                "/x",
                &account,
                "u1",
                &[(&prefixed, "v")],
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.text);
        r.assert_error_shape();
        assert!(r.text.contains(name), "{name}: {}", r.text);
    }
    assert_eq!(echo.requests().len(), before, "a refused request was sent");

    // Bad base64, a wrong user, an unknown account, a missing scope, a
    // missing query.
    let base = &w.server.base;
    let r = w
        .server
        .send(
            w.server
                .client
                .get(format!(
                    "{base}/v1/projects/alpha/proxy/%%%?external_user_id=u1&account_id={account}"
                ))
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = w
        .proxy(
            &token,
            Method::GET,
            "/x",
            &account,
            "someone-else",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = w
        .proxy(
            &token,
            Method::GET,
            "/x",
            "acc_0000000000000000",
            "u1",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let runs_only = w.server.new_key(&w.admin, &["runs:write"], None).await;
    let r = w
        .proxy(&runs_only, Method::GET, "/x", &account, "u1", &[], None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let beta_only = w.server.new_key(&w.admin, &["proxy"], Some("beta")).await;
    let r = w
        .proxy(&beta_only, Method::GET, "/x", &account, "u1", &[], None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = w
        .server
        .call(
            Method::GET,
            "/v1/projects/alpha/proxy/L3g",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(echo.requests().len(), before, "a refused request was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_outside_the_apps_allowed_domains_are_403_and_dynamic_apps_take_paths_only() {
    let echo = fakes::echo().await;
    let apps = tempfile::tempdir().unwrap();
    placement_apps(apps.path(), &echo);
    // A dynamic-domain app: its base URL comes from the account's tenant.
    std::fs::write(
        apps.path().join("t-tenant.toml"),
        format!(
            "{}\n[[custom_fields]]\nname = \"tenant\"\npattern = \"^[a-z]+$\"\n",
            app_toml(
                "t-tenant",
                "bearer",
                &format!("http://{}/{{{{custom_fields.tenant}}}}/api", echo.addr),
                "header = \"Authorization\"\ntemplate = \"Bearer {{token}}\"",
                ""
            )
        ),
    )
    .unwrap();
    let w = world(apps, &[]).await;
    let token = w.server.new_key(&w.admin, &["proxy"], None).await;
    let account = w.add_account("t-bearer", "u1", &["--bearer", "tok-abcdef"]);

    // 127.0.0.2 is reachable (allowed range) but not an allowed domain.
    let outside = format!("http://127.0.0.2:{}/x", echo.addr.port());
    let r = w
        .proxy(&token, Method::GET, &outside, &account, "u1", &[], None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    r.assert_error_shape();
    assert!(echo.requests().is_empty());

    let tenant = w.add_account(
        "t-tenant",
        "u1",
        &["--bearer", "tok-tenant-1", "--field", "tenant=acme"],
    );
    let r = w
        .proxy(
            &token,
            Method::GET,
            &echo.url("/acme/api/tickets"),
            &tenant,
            "u1",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("relative"), "{}", r.text);
    let r = w
        .proxy(
            &token,
            Method::GET,
            "/tickets.json",
            &tenant,
            "u1",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let seen = echo.requests().pop().unwrap();
    assert_eq!(seen["path"], "/acme/api/tickets.json");
    assert_eq!(header(&seen, "authorization"), Some("Bearer tok-tenant-1"));

    // A relative path never climbs out of the base path (`/acme/api`): to
    // the root, or to another tenant's `/other/api`.
    let before = echo.requests().len();
    for path in [
        "/../../x",
        "/%2e%2e/%2e%2e/x",
        "/.%2e/x",
        "/%2E./%2e%2E/other/api/x",
        "/..%2f..%2fx",
        "/..\\..\\x",
        "/%252e%252e/x",
        "/..;/x",
        "/.\t./x",
    ] {
        let r = w
            .proxy(&token, Method::GET, path, &tenant, "u1", &[], None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text);
        r.assert_error_shape();
    }
    assert_eq!(echo.requests().len(), before, "a refused request was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_rate_limit_is_429_with_retry_after_and_a_slow_upstream_is_504() {
    let echo = fakes::echo().await;
    let apps = tempfile::tempdir().unwrap();
    placement_apps(apps.path(), &echo);
    let w = world(
        apps,
        &["--http-rate-limit", "3", "--http-timeout-secs", "1"],
    )
    .await;
    let token = w.server.new_key(&w.admin, &["proxy"], None).await;
    let account = w.add_account("t-bearer", "u1", &["--bearer", "tok-abcdef"]);

    // The first request waits on an upstream slower than the 1 s bound.
    let r = w
        .proxy(
            &token,
            Method::GET,
            "/slow?ms=5000",
            &account,
            "u1",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.text);
    r.assert_error_shape();
    for _ in 0..2 {
        let r = w
            .proxy(&token, Method::GET, "/ok", &account, "u1", &[], None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = w
        .proxy(&token, Method::GET, "/ok", &account, "u1", &[], None)
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    r.assert_error_shape();
    assert!(r.retry_after() >= 1, "{:?}", r.headers);
    // 3 per 5 minutes: the next slot is 100 s away.
    assert!(r.retry_after() <= 100, "{:?}", r.headers);
    assert_eq!(echo.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_oauth_token_is_refreshed_once_for_many_concurrent_proxy_requests() {
    let provider = fakes::oauth("refresh-0", "access-fresh").await;
    let a = provider.fake.addr;
    let apps = tempfile::tempdir().unwrap();
    std::fs::write(
        apps.path().join("t-oauth.toml"),
        app_toml(
            "t-oauth",
            "oauth2",
            &format!("http://{a}"),
            "header = \"Authorization\"\ntemplate = \"Bearer {{access_token}}\"",
            &format!(
                "[oauth]\nauthorize_url = \"http://{a}/oauth/authorize\"\n\
                 token_url = \"http://{a}/oauth/token\"\nscopes = [\"read\"]\n"
            ),
        ),
    )
    .unwrap();
    let w = world(apps, &[]).await;
    for (name, value) in [
        ("oauth.t-oauth.client_id", OAUTH_CLIENT_ID),
        ("oauth.t-oauth.client_secret", OAUTH_CLIENT_SECRET),
    ] {
        let r = w
            .server
            .call(
                Method::PUT,
                &format!("/v1/projects/alpha/secrets/{name}"),
                Some(&w.admin),
                Some(json!({ "value": value })),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.text);
    }
    let account = w.add_account(
        "t-oauth",
        "u1",
        &[
            "--access-token",
            "access-expired",
            "--refresh-token",
            "refresh-0",
            "--expires-in",
            "-10",
        ],
    );
    let token = w.server.new_key(&w.admin, &["proxy"], None).await;
    let mut calls = Vec::new();
    for _ in 0..16 {
        calls.push(w.proxy(&token, Method::GET, "/api/me", &account, "u1", &[], None));
    }
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json()["login"], "ada");
    }
    assert_eq!(
        provider
            .state
            .token_requests
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    // A refresh the provider refuses (invalid_grant): 409, the account
    // shows needs_reauth, and the next request does not ask again.
    let stale = w.add_account(
        "t-oauth",
        "u2",
        &[
            "--access-token",
            "access-old",
            "--refresh-token",
            "refresh-unknown-to-the-provider",
            "--expires-in",
            "-10",
        ],
    );
    let requests = || {
        provider
            .state
            .token_requests
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let r = w
        .proxy(&token, Method::GET, "/api/me", &stale, "u2", &[], None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    r.assert_error_shape();
    assert_eq!(requests(), 2);
    let r = w
        .server
        .call(
            Method::GET,
            &format!("/v1/projects/alpha/accounts/{stale}"),
            Some(&w.admin),
            None,
        )
        .await;
    assert_eq!(r.json()["health"], "needs_reauth", "{}", r.text);
    let r = w
        .proxy(&token, Method::GET, "/api/me", &stale, "u2", &[], None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("re-authorisation"), "{}", r.text);
    assert_eq!(requests(), 2);

    // The rotated tokens are stored sealed, like every credential.
    let db = w.db_bytes();
    for value in [
        provider.state.current_access_token(),
        provider.state.current_refresh_token(),
        OAUTH_CLIENT_SECRET.to_owned(),
    ] {
        assert!(!contains(&db, &value), "{value} in the database");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_run_calls_out_with_a_stored_account_of_its_external_user() {
    let github = fakes::github("gho_stored_token_123456").await;
    let apps = tempfile::tempdir().unwrap();
    // The real GitHub definition, pointed at the fake.
    let real = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../host-api/apps/github.toml"
    ))
    .unwrap();
    let local = real
        .replace("https://api.github.com", &format!("http://{}", github.addr))
        .replace("\"api.github.com\"", "\"127.0.0.1\"");
    std::fs::write(apps.path().join("github.toml"), local).unwrap();
    let w = world(apps, &[]).await;
    w.add_account(
        "github",
        "user-7",
        &["--access-token", "gho_stored_token_123456"],
    );
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/github-repos/airlock.toml"
    ))
    .unwrap();
    let r = w
        .server
        .upload(
            "alpha",
            "github-repos",
            &w.admin,
            &component_bytes(examples::GITHUB_REPOS),
            Some(&manifest),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = w
        .server
        .call(
            Method::POST,
            "/v1/projects/alpha/steps/github-repos/runs",
            Some(&w.admin),
            Some(json!({"input": {}, "external_user_id": "user-7"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let run = r.json();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(
        run["output"].to_string().contains("ada/analytical-engine"),
        "{run}"
    );
    // The run record lists the call, without the credential.
    let id = run["id"].as_str().unwrap();
    let r = w
        .server
        .call(
            Method::GET,
            &format!("/v1/projects/alpha/runs/{id}"),
            Some(&w.admin),
            None,
        )
        .await;
    assert!(!r.text.contains("gho_stored_token_123456"), "{}", r.text);
    let calls = r.json()["http_calls"].clone();
    assert_eq!(calls[0]["method"], "GET", "{calls}");
    assert_eq!(calls[0]["status"], 200, "{calls}");
    assert!(
        calls[0]["url"].as_str().unwrap().ends_with("/user/repos"),
        "{calls}"
    );
    assert!(
        calls[0]["account_id"].as_str().unwrap().starts_with("acc_"),
        "{calls}"
    );

    // Another end user has no account: the step reports it, the server serves on.
    let r = w
        .server
        .call(
            Method::POST,
            "/v1/projects/alpha/steps/github-repos/runs",
            Some(&w.admin),
            Some(json!({"input": {}, "external_user_id": "nobody"})),
        )
        .await;
    assert_eq!(r.json()["status"], "failed", "{}", r.text);
    // An external user id over 250 characters is refused before running.
    let r = w
        .server
        .call(
            Method::POST,
            "/v1/projects/alpha/steps/github-repos/runs",
            Some(&w.admin),
            Some(json!({"input": {}, "external_user_id": "x".repeat(251)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // A manifest granting an app the server does not know is refused at upload.
    let r = w
        .server
        .upload(
            "alpha",
            "ghost",
            &w.admin,
            &component_bytes(examples::GITHUB_REPOS),
            Some("name = \"ghost\"\n[http]\napps = [\"no-such-app\"]\n"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("no-such-app"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_passed_at_run_time_are_used_masked_and_never_stored() {
    const RUN_TOKEN: &str = "tok-runtime-9f8e7d6c5b";
    let echo = fakes::echo().await;
    let apps = tempfile::tempdir().unwrap();
    placement_apps(apps.path(), &echo);
    let w = world(apps, &[]).await;
    let manifest = "name = \"probe\"\n[http]\napps = [\"t-bearer\"]\n";
    let r = w
        .server
        .upload(
            "alpha",
            "probe",
            &w.admin,
            &component_bytes(guests::HTTP_PROBE),
            Some(manifest),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let input = json!({
        "url": "/whoami",
        "auth": {"account": "t-bearer"},
        "log_response": true,
        "reverse_body": false,
    });
    let r = w
        .server
        .call(
            Method::POST,
            "/v1/projects/alpha/steps/probe/runs",
            Some(&w.admin),
            Some(json!({
                "input": input,
                "credentials": {"t-bearer": {"token": RUN_TOKEN}},
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let run = r.json();
    assert_eq!(run["status"], "succeeded", "{run}");
    // The upstream got it where the app says.
    let seen = echo.requests().pop().unwrap();
    assert_eq!(
        header(&seen, "authorization"),
        Some(format!("Bearer {RUN_TOKEN}").as_str())
    );
    // The echo came back into the step, which logged and returned it: masked.
    assert!(!r.text.contains(RUN_TOKEN), "{}", r.text);
    let id = run["id"].as_str().unwrap();
    let record = w
        .server
        .call(
            Method::GET,
            &format!("/v1/projects/alpha/runs/{id}"),
            Some(&w.admin),
            None,
        )
        .await;
    assert!(
        record.json()["logs"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
    );
    assert!(!record.text.contains(RUN_TOKEN), "{}", record.text);
    assert!(record.text.contains("whoami"), "{}", record.text);
    // Nothing of it in the database, records on.
    assert!(!contains(&w.db_bytes(), RUN_TOKEN));

    // Bad credentials are a 400 naming the field, not the value; nothing runs.
    for (credentials, named) in [
        (json!({"t-bearer": {"api_key": RUN_TOKEN}}), "api_key"),
        (json!({"t-bearer": {}}), "token"),
        (json!({"nope": {"token": RUN_TOKEN}}), "nope"),
        // A value where an object belongs: serde's message must not quote it.
        (json!({"t-bearer": RUN_TOKEN}), "t-bearer"),
    ] {
        let before = echo.requests().len();
        let r = w
            .server
            .call(
                Method::POST,
                "/v1/projects/alpha/steps/probe/runs",
                Some(&w.admin),
                Some(json!({"input": input, "credentials": credentials})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.text.contains(named), "{}", r.text);
        assert!(!r.text.contains(RUN_TOKEN), "{}", r.text);
        assert_eq!(echo.requests().len(), before);
    }
    // A credential for an app the manifest does not grant stays unused.
    let r = w
        .server
        .call(
            Method::POST,
            "/v1/projects/alpha/steps/probe/runs",
            Some(&w.admin),
            Some(json!({
                "input": {"url": "/x", "auth": {"account": "t-key-header"}},
                "credentials": {"t-key-header": {"api_key": RUN_TOKEN}},
            })),
        )
        .await;
    assert_eq!(r.json()["status"], "failed", "{}", r.text);
    assert!(r.text.contains("does not grant"), "{}", r.text);
}
