//! The Connect API end to end: the app catalog (`/v1/apps`) and end users'
//! connected accounts (`/v1/projects/{project}/accounts`) on the real
//! `airlock serve` binary, over real HTTP, with a real SQLite database.
//! Credentials go in and come back only with `include_credentials=true` and
//! the `accounts:credentials` scope; never in an error, a log or on disk.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use airlock_runtime::store::{AccountStore, SecretStore};
use airlock_tests::serve::{MASTER_KEY, Options, Reply, Server, command, timestamp};
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

const GITHUB_TOKEN: &str = "gho_ConnectAccessToken7Qm2xVb9Lk4RtPz";
const GITHUB_REFRESH: &str = "ghr_ConnectRefreshToken3Nd8sWq1Jf6Yh";
const ZENDESK_USER: &str = "agent@acme.example/token";
const ZENDESK_PASSWORD: &str = "zd_ConnectApiToken5Kp0cTg2Hm9Ue";

/// Every credential value these tests store, and the base64 of the basic pair.
fn secrets() -> Vec<String> {
    vec![
        GITHUB_TOKEN.to_owned(),
        GITHUB_REFRESH.to_owned(),
        ZENDESK_PASSWORD.to_owned(),
        base64::engine::general_purpose::STANDARD
            .encode(format!("{ZENDESK_USER}:{ZENDESK_PASSWORD}")),
    ]
}

/// How many app files ship in `host-api/apps/`: every one is served.
fn shipped_apps() -> usize {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../host-api/apps");
    let n = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert!(n >= 60, "the catalog has {n} apps");
    n
}

fn assert_no_secret(r: &Reply, context: &str) {
    for secret in secrets() {
        assert!(
            !r.text.contains(&secret),
            "{context}: the body holds a credential: {}",
            r.text
        );
        for (name, value) in &r.headers {
            assert!(
                !String::from_utf8_lossy(value.as_bytes()).contains(&secret),
                "{context}: header {name} holds a credential"
            );
        }
    }
}

fn github_body(user: &str) -> Value {
    json!({
        "app": "github",
        "external_user_id": user,
        "credentials": {
            "access_token": GITHUB_TOKEN,
            "refresh_token": GITHUB_REFRESH,
            "expires_at": "1900000000",
        },
    })
}

fn zendesk_body(user: &str, subdomain: &str) -> Value {
    json!({
        "app": "zendesk",
        "external_user_id": user,
        "credentials": {"username": ZENDESK_USER, "password": ZENDESK_PASSWORD},
        "custom_fields": {"subdomain": subdomain},
    })
}

const ALPHA: &str = "/v1/projects/alpha/accounts";

/// Creates an account in alpha and returns its id.
async fn create(s: &Server, key: &str, body: Value) -> String {
    let r = s.call(Method::POST, ALPHA, Some(key), Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_no_secret(&r, "create");
    r.json()["id"].as_str().unwrap().to_owned()
}

fn ids(r: &Reply) -> Vec<String> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn apps_are_listed_for_any_caller_with_their_connect_settings() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    // Any valid credential reads the catalog, whatever its scopes and project.
    let (_, steps_only) = s
        .new_key_with_id(&admin, &["steps:read"], Some("alpha"))
        .await;

    let r = s.call(Method::GET, "/v1/apps", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    r.assert_error_shape();

    let r = s
        .call(Method::GET, "/v1/apps", Some(&steps_only), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let apps = r.json()["apps"].as_array().unwrap().clone();
    let slugs: Vec<&str> = apps.iter().map(|a| a["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs.len(), shipped_apps(), "{slugs:?}");
    let mut sorted = slugs.clone();
    sorted.sort();
    assert_eq!(slugs, sorted, "slug order");
    assert!(slugs.contains(&"github") && slugs.contains(&"zendesk"));

    // A static-domain app.
    let r = s
        .call(Method::GET, "/v1/apps/github", Some(&steps_only), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let github = r.json();
    assert_eq!(
        apps.iter().find(|a| a["slug"] == "github").unwrap(),
        &github,
        "the list holds the same view"
    );
    assert_eq!(github["name"], "GitHub");
    assert_eq!(github["auth"], "oauth2");
    assert_eq!(
        github["connect"],
        json!({
            "proxy_enabled": true,
            "allowed_domains": ["api.github.com", "uploads.github.com"],
            "base_proxy_target_url": "https://api.github.com",
        })
    );
    assert_eq!(
        github["credential_fields"],
        json!([
            {"name": "access_token", "required": true, "secret": true},
            {"name": "refresh_token", "required": false, "secret": true},
            {"name": "expires_at", "required": false, "secret": false},
        ])
    );
    assert_eq!(github["custom_fields"], json!([]));

    // A dynamic-domain app: its templates as written.
    let r = s
        .call(Method::GET, "/v1/apps/zendesk", Some(&steps_only), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let zendesk = r.json();
    assert_eq!(zendesk["auth"], "basic");
    assert_eq!(
        zendesk["connect"],
        json!({
            "proxy_enabled": true,
            "allowed_domains": ["{{custom_fields.subdomain}}.zendesk.com"],
            "base_proxy_target_url": "https://{{custom_fields.subdomain}}.zendesk.com/api/v2",
        })
    );
    assert_eq!(
        zendesk["credential_fields"],
        json!([
            {"name": "username", "required": true, "secret": false},
            {"name": "password", "required": true, "secret": true},
        ])
    );
    assert_eq!(zendesk["custom_fields"][0]["name"], "subdomain");
    assert_eq!(
        zendesk["custom_fields"][0]["pattern"],
        "^[a-z0-9][a-z0-9-]{0,62}$"
    );
    assert!(zendesk["custom_fields"][0]["description"].is_string());

    // A custom app: the fields its template reads.
    let r = s
        .call(Method::GET, "/v1/apps/trello", Some(&steps_only), None)
        .await;
    assert_eq!(
        r.json()["credential_fields"],
        json!([
            {"name": "api_key", "required": true, "secret": true},
            {"name": "token", "required": true, "secret": true},
        ])
    );

    let r = s
        .call(Method::GET, "/v1/apps/nope", Some(&steps_only), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let (code, message) = r.error();
    assert_eq!(code, "not_found");
    assert!(message.contains("nope"), "{message}");
}

#[tokio::test]
async fn apps_dir_adds_and_overrides_apps() {
    let apps = tempfile::tempdir().unwrap();
    std::fs::write(
        apps.path().join("acme.toml"),
        "slug = \"acme\"\nname = \"Acme\"\nauth = \"api-key\"\n\
         allowed_domains = [\"api.acme.example\"]\n\
         [credential]\nheader = \"X-Api-Key\"\ntemplate = \"{{api_key}}\"\n",
    )
    .unwrap();
    std::fs::write(
        apps.path().join("github.toml"),
        "slug = \"github\"\nname = \"GitHub Enterprise\"\nauth = \"bearer\"\n\
         base_url = \"https://ghe.acme.example/api/v3\"\nallowed_domains = [\"ghe.acme.example\"]\n\
         [credential]\nheader = \"Authorization\"\ntemplate = \"Bearer {{token}}\"\n",
    )
    .unwrap();
    let dir = apps.path().to_str().unwrap();
    let s = Server::start(BIN, &["--apps-dir", dir]);
    let admin = s.admin_setup().await;

    let r = s.call(Method::GET, "/v1/apps", Some(&admin), None).await;
    // One added (acme), one overridden (github).
    assert_eq!(
        r.json()["apps"].as_array().unwrap().len(),
        shipped_apps() + 1,
        "{}",
        r.text
    );
    let r = s
        .call(Method::GET, "/v1/apps/acme", Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let acme = r.json();
    // No base URL: nothing to proxy to.
    assert_eq!(
        acme["connect"],
        json!({"proxy_enabled": false, "allowed_domains": ["api.acme.example"]})
    );
    let r = s
        .call(Method::GET, "/v1/apps/github", Some(&admin), None)
        .await;
    let github = r.json();
    assert_eq!(github["name"], "GitHub Enterprise");
    assert_eq!(
        github["connect"]["base_proxy_target_url"],
        "https://ghe.acme.example/api/v3"
    );

    // Accounts follow the overridden app: a bearer token now.
    let r = s
        .call(
            Method::POST,
            ALPHA,
            Some(&admin),
            Some(
                json!({"app": "github", "external_user_id": "u", "credentials": {"token": "t0k"}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = s
        .call(Method::POST, ALPHA, Some(&admin), Some(github_body("u")))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.error().1.contains("token"), "{}", r.text);
}

#[test]
fn serve_refuses_to_start_with_an_invalid_app_file() {
    let dir = tempfile::tempdir().unwrap();
    let apps = dir.path().join("apps");
    std::fs::create_dir(&apps).unwrap();
    std::fs::write(
        apps.join("broken.toml"),
        "slug = \"broken\"\nname = \"Broken\"\nauth = \"oauth2\"\n\
         allowed_domains = [\"api.broken.example\"]\n\
         [credential]\nheader = \"Authorization\"\ntemplate = \"Bearer {{access_token}}\"\n",
    )
    .unwrap();
    let mut child = command(BIN, &dir.path().join("data"))
        .args(["serve", "--listen", "127.0.0.1:0", "--apps-dir"])
        .arg(&apps)
        .env("AIRLOCK_MASTER_KEY", MASTER_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A server that started anyway prints its address: stop it and fail.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.starts_with("listening on") {
        let _ = child.kill();
        let _ = child.wait();
        panic!("serve started with an invalid app file");
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("app catalog")
            && stderr.contains("broken.toml")
            && stderr.contains("oauth"),
        "{stderr}"
    );
}

#[tokio::test]
async fn accounts_are_created_listed_filtered_read_and_deleted() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let (_, key) = s
        .new_key_with_id(&admin, &["accounts:read", "accounts:write"], Some("alpha"))
        .await;

    let r = s
        .call(Method::POST, ALPHA, Some(&key), Some(github_body("user-1")))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_no_secret(&r, "create github");
    let github = r.json();
    let github_id = github["id"].as_str().unwrap().to_owned();
    assert!(
        github_id.starts_with("acc_") && github_id.len() == 20,
        "{github_id}"
    );
    assert_eq!(github["app"], "github");
    assert_eq!(github["external_user_id"], "user-1");
    assert_eq!(github["custom_fields"], json!({}));
    assert_eq!(github["health"], "healthy");
    assert_eq!(github["expires_at"], "2030-03-17T17:46:40.000Z");
    timestamp(&github["created_at"]);
    timestamp(&github["updated_at"]);
    assert!(github.get("credentials").is_none(), "{github}");

    let zendesk_id = create(&s, &key, zendesk_body("user-1", "acme")).await;
    let other_id = create(&s, &key, github_body("user-2")).await;

    let list = |query: &str| {
        let path = format!("{ALPHA}{query}");
        let s = &s;
        let key = &key;
        async move { s.call(Method::GET, &path, Some(key), None).await }
    };
    let r = list("").await;
    assert_no_secret(&r, "list");
    assert_eq!(
        ids(&r),
        [other_id.as_str(), zendesk_id.as_str(), github_id.as_str()],
        "newest first"
    );
    let zendesk = r.json()["accounts"][1].clone();
    assert_eq!(zendesk["custom_fields"], json!({"subdomain": "acme"}));
    assert!(zendesk.get("expires_at").is_none(), "{zendesk}");
    assert!(zendesk.get("credentials").is_none(), "{zendesk}");
    assert_eq!(
        ids(&list("?app=github").await),
        [other_id.as_str(), github_id.as_str()]
    );
    assert_eq!(
        ids(&list("?external_user_id=user-1").await),
        [zendesk_id.as_str(), github_id.as_str()]
    );
    assert_eq!(
        ids(&list("?app=github&external_user_id=user-1").await),
        [github_id.as_str()]
    );
    assert!(ids(&list("?app=slack").await).is_empty());
    let r = list("?colour=blue").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    r.assert_error_shape();

    let r = s
        .call(
            Method::GET,
            &format!("{ALPHA}/{github_id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_no_secret(&r, "get");
    assert_eq!(r.json(), github, "get shows what create returned");

    let r = s
        .call(
            Method::DELETE,
            &format!("{ALPHA}/{github_id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    for method in [Method::GET, Method::DELETE] {
        let r = s
            .call(method, &format!("{ALPHA}/{github_id}"), Some(&key), None)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
        assert_eq!(r.error().0, "not_found");
    }
    assert_eq!(
        ids(&list("").await),
        [other_id.as_str(), zendesk_id.as_str()]
    );
}

#[tokio::test]
async fn bad_accounts_are_refused_naming_the_problem() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let (_, key) = s
        .new_key_with_id(&admin, &["accounts:read", "accounts:write"], Some("alpha"))
        .await;
    let post = |body: Value| {
        let s = &s;
        let key = &key;
        async move { s.call(Method::POST, ALPHA, Some(key), Some(body)).await }
    };
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = github_body("user-1");
        change(&mut body);
        body
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "external user id of 251 characters",
            github_body(&"u".repeat(251)),
            "external_user_id",
        ),
        (
            "empty external user id",
            github_body(""),
            "external_user_id",
        ),
        (
            "unknown app",
            with(&|b| b["app"] = json!("no-such-app")),
            "no-such-app",
        ),
        (
            "missing credential field",
            with(&|b| {
                b["credentials"]
                    .as_object_mut()
                    .unwrap()
                    .remove("access_token");
            }),
            "access_token",
        ),
        (
            "unknown credential field",
            with(&|b| b["credentials"]["api_key"] = json!(GITHUB_TOKEN)),
            "api_key",
        ),
        (
            "no credentials",
            with(&|b| {
                b.as_object_mut().unwrap().remove("credentials");
            }),
            "access_token",
        ),
        (
            "empty credential",
            with(&|b| b["credentials"]["access_token"] = json!("")),
            "access_token",
        ),
        (
            "credential with a line break",
            with(&|b| b["credentials"]["access_token"] = json!(format!("{GITHUB_TOKEN}\r\nX: y"))),
            "access_token",
        ),
        (
            "credential that is not a string",
            with(&|b| b["credentials"]["access_token"] = json!(987_654_321_123u64)),
            "access_token",
        ),
        (
            "credentials that are not an object",
            with(&|b| b["credentials"] = json!(GITHUB_TOKEN)),
            "credentials",
        ),
        (
            "expires_at that is not a number",
            with(&|b| b["credentials"]["expires_at"] = json!("tomorrow")),
            "expires_at",
        ),
        (
            "custom field the app does not declare",
            with(&|b| b["custom_fields"] = json!({"subdomain": "acme"})),
            "subdomain",
        ),
        (
            "custom field that does not match its pattern",
            zendesk_body("user-1", "evil.com/x"),
            "subdomain",
        ),
        (
            "missing custom field",
            with(&|b| {
                b["app"] = json!("zendesk");
                b["credentials"] = json!({"username": ZENDESK_USER, "password": ZENDESK_PASSWORD});
            }),
            "subdomain",
        ),
        (
            "unknown body field",
            with(&|b| b["colour"] = json!("blue")),
            "colour",
        ),
    ];
    for (name, body, named) in cases {
        let r = post(body).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "case `{name}`: {}",
            r.text
        );
        let (code, message) = r.error();
        assert_eq!(code, "bad_request", "case `{name}`");
        assert!(message.contains(named), "case `{name}`: {message}");
        assert_no_secret(&r, name);
        assert!(
            !message.contains("987654321123"),
            "case `{name}`: {message}"
        );
    }
    // 250 characters is the limit, and nothing above was stored.
    let r = post(github_body(&"u".repeat(250))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = s.call(Method::GET, ALPHA, Some(&key), None).await;
    assert_eq!(ids(&r).len(), 1, "{}", r.text);
}

/// A row: name, credential, method, path, body, expected status, a word the
/// error message must hold.
type ScopeCase<'a> = (
    &'a str,
    &'a str,
    Method,
    &'a str,
    Option<Value>,
    StatusCode,
    &'a str,
);

#[tokio::test]
async fn accounts_are_bounded_by_scopes_and_projects() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let (_, writer) = s
        .new_key_with_id(&admin, &["accounts:read", "accounts:write"], Some("alpha"))
        .await;
    let (_, reader) = s
        .new_key_with_id(&admin, &["accounts:read"], Some("alpha"))
        .await;
    let (_, steps) = s
        .new_key_with_id(&admin, &["steps:read"], Some("alpha"))
        .await;
    let (_, global) = s
        .new_key_with_id(&admin, &["accounts:read", "accounts:write"], None)
        .await;
    let id = create(&s, &writer, github_body("user-1")).await;
    let one = format!("{ALPHA}/{id}");
    let in_beta = format!("/v1/projects/beta/accounts/{id}");

    let cases: Vec<ScopeCase> = vec![
        (
            "reader creates",
            &reader,
            Method::POST,
            ALPHA,
            Some(github_body("u")),
            StatusCode::FORBIDDEN,
            "accounts:write",
        ),
        (
            "reader deletes",
            &reader,
            Method::DELETE,
            &one,
            None,
            StatusCode::FORBIDDEN,
            "accounts:write",
        ),
        (
            "steps key lists",
            &steps,
            Method::GET,
            ALPHA,
            None,
            StatusCode::FORBIDDEN,
            "accounts:read",
        ),
        (
            "steps key reads",
            &steps,
            Method::GET,
            &one,
            None,
            StatusCode::FORBIDDEN,
            "accounts:read",
        ),
        (
            "alpha key creates in beta",
            &writer,
            Method::POST,
            "/v1/projects/beta/accounts",
            Some(github_body("u")),
            StatusCode::NOT_FOUND,
            "beta",
        ),
        (
            "alpha key lists beta",
            &writer,
            Method::GET,
            "/v1/projects/beta/accounts",
            None,
            StatusCode::NOT_FOUND,
            "beta",
        ),
        (
            "alpha key reads via beta",
            &writer,
            Method::GET,
            &in_beta,
            None,
            StatusCode::NOT_FOUND,
            "beta",
        ),
        (
            "global key reads via beta",
            &global,
            Method::GET,
            &in_beta,
            None,
            StatusCode::NOT_FOUND,
            &id,
        ),
        (
            "global key deletes via beta",
            &global,
            Method::DELETE,
            &in_beta,
            None,
            StatusCode::NOT_FOUND,
            &id,
        ),
        (
            "no project",
            &global,
            Method::GET,
            "/v1/projects/gamma/accounts",
            None,
            StatusCode::NOT_FOUND,
            "gamma",
        ),
    ];
    for (name, key, method, path, body, want, named) in cases {
        let r = s.call(method, path, Some(key), body).await;
        assert_eq!(r.status, want, "case `{name}`: {}", r.text);
        let (_, message) = r.error();
        assert!(message.contains(named), "case `{name}`: {message}");
    }
    // Still there for its own project; and readable by the global key there.
    let r = s.call(Method::GET, &one, Some(&reader), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = s.call(Method::GET, &one, Some(&global), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = s
        .call(
            Method::GET,
            "/v1/projects/beta/accounts",
            Some(&global),
            None,
        )
        .await;
    assert!(ids(&r).is_empty(), "{}", r.text);
    let r = s.call(Method::GET, ALPHA, Some(&reader), None).await;
    assert_eq!(ids(&r), [id.as_str()]);
}

#[tokio::test]
async fn credentials_come_back_only_with_the_flag_and_the_scope() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let (_, writer) = s
        .new_key_with_id(&admin, &["accounts:write"], Some("alpha"))
        .await;
    let (_, reader) = s
        .new_key_with_id(&admin, &["accounts:read"], Some("alpha"))
        .await;
    let (_, revealer) = s
        .new_key_with_id(
            &admin,
            &["accounts:read", "accounts:credentials"],
            Some("alpha"),
        )
        .await;
    let (_, credentials_only) = s
        .new_key_with_id(&admin, &["accounts:credentials"], Some("alpha"))
        .await;
    let (_, beta_revealer) = s
        .new_key_with_id(
            &admin,
            &["accounts:read", "accounts:credentials"],
            Some("beta"),
        )
        .await;
    let github = create(&s, &writer, github_body("user-1")).await;
    let zendesk = create(&s, &writer, zendesk_body("user-1", "acme")).await;
    let get = |key: &str, path: String| {
        let s = &s;
        let key = key.to_owned();
        async move { s.call(Method::GET, &path, Some(&key), None).await }
    };
    let one = |id: &str, query: &str| format!("{ALPHA}/{id}{query}");

    // Without the flag: never, whoever asks.
    for key in [&reader, &revealer, &admin] {
        for path in [
            one(&github, ""),
            one(&github, "?include_credentials=false"),
            ALPHA.to_owned(),
        ] {
            let r = get(key, path.clone()).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
            assert_no_secret(&r, &path);
            assert!(!r.text.contains("credentials"), "{path}: {}", r.text);
        }
    }
    // The flag without the scope: 403 naming it.
    for path in [
        one(&github, "?include_credentials=true"),
        format!("{ALPHA}?include_credentials=true"),
    ] {
        let r = get(&reader, path.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.text);
        let (code, message) = r.error();
        assert_eq!(code, "forbidden");
        assert!(message.contains("accounts:credentials"), "{message}");
        assert_no_secret(&r, &path);
    }
    // The credentials scope alone does not read accounts.
    let r = get(&credentials_only, one(&github, "?include_credentials=true")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.error().1.contains("accounts:read"), "{}", r.text);
    assert_no_secret(&r, "credentials scope only");
    // Another project's credential: 404, as for any of its requests.
    let r = get(&beta_revealer, one(&github, "?include_credentials=true")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_no_secret(&r, "beta");
    let r = get(&revealer, one(&github, "?include_credentials=yes")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    r.assert_error_shape();

    // Flag and scope (or admin): the stored values.
    for key in [&revealer, &admin] {
        let r = get(key, one(&github, "?include_credentials=true")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let v = r.json();
        assert_eq!(
            v["credentials"],
            json!({"access_token": GITHUB_TOKEN, "refresh_token": GITHUB_REFRESH}),
            "expires_at is the account's, not a credential"
        );
        assert_eq!(v["expires_at"], "2030-03-17T17:46:40.000Z");
        let r = get(key, one(&zendesk, "?include_credentials=true")).await;
        assert_eq!(
            r.json()["credentials"],
            json!({"username": ZENDESK_USER, "password": ZENDESK_PASSWORD})
        );
        let r = get(key, format!("{ALPHA}?include_credentials=true")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let accounts = r.json()["accounts"].as_array().unwrap().clone();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts[0]["id"], zendesk.as_str());
        assert_eq!(accounts[0]["credentials"]["password"], ZENDESK_PASSWORD);
        assert_eq!(accounts[1]["credentials"]["access_token"], GITHUB_TOKEN);
    }
}

#[tokio::test]
async fn an_account_whose_refresh_was_refused_shows_needs_reauth() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let id = create(&s, &admin, github_body("user-1")).await;
    let other = create(&s, &admin, github_body("user-2")).await;

    // What the token refresher does when the provider answers `invalid_grant`.
    let store = SecretStore::open(&s.data_dir()).await.unwrap();
    assert!(
        AccountStore::new(&store)
            .mark_needs_reauth("alpha", &id)
            .await
            .unwrap()
    );
    store.close().await;

    let r = s
        .call(Method::GET, &format!("{ALPHA}/{id}"), Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["health"], "needs_reauth");
    let r = s.call(Method::GET, ALPHA, Some(&admin), None).await;
    let accounts = r.json()["accounts"].as_array().unwrap().clone();
    let health = |account: &str| {
        accounts
            .iter()
            .find(|a| a["id"] == account)
            .map(|a| a["health"].clone())
            .unwrap()
    };
    assert_eq!(health(&id), "needs_reauth");
    assert_eq!(health(&other), "healthy");
}

#[tokio::test]
async fn credentials_never_reach_the_server_log_or_the_disk() {
    let mut s = Server::start_with(
        BIN,
        tempfile::tempdir().unwrap(),
        Options {
            env: &[("AIRLOCK_LOG", "trace")],
            capture_stderr: true,
            ..Options::default()
        },
    );
    let admin = s.admin_setup().await;
    let (_, reader) = s
        .new_key_with_id(&admin, &["accounts:read"], Some("alpha"))
        .await;
    let github = create(&s, &admin, github_body("user-1")).await;
    let zendesk = create(&s, &admin, zendesk_body("user-1", "acme")).await;
    // Reads with and without credentials, refusals, and bad bodies carrying them.
    for (key, path) in [
        (&admin, format!("{ALPHA}/{github}?include_credentials=true")),
        (
            &admin,
            format!("{ALPHA}/{zendesk}?include_credentials=true"),
        ),
        (&admin, format!("{ALPHA}?include_credentials=true")),
        (
            &reader,
            format!("{ALPHA}/{github}?include_credentials=true"),
        ),
        (&reader, format!("{ALPHA}/{github}")),
    ] {
        let r = s.call(Method::GET, &path, Some(key), None).await;
        assert!(r.status.is_success() || r.status == StatusCode::FORBIDDEN);
    }
    let mut unknown_app = github_body("user-1");
    unknown_app["app"] = json!("nope");
    let mut extra_field = zendesk_body("user-1", "acme");
    extra_field["credentials"]["token"] = json!(GITHUB_TOKEN);
    let mut bad_subdomain = zendesk_body("user-1", "evil.com/x");
    bad_subdomain["credentials"]["password"] = json!(ZENDESK_PASSWORD);
    for (key, body) in [
        (&admin, unknown_app),
        (&admin, extra_field),
        (&admin, bad_subdomain),
        (&reader, github_body("user-1")),
    ] {
        let r = s.call(Method::POST, ALPHA, Some(key), Some(body)).await;
        assert!(r.status.is_client_error(), "{}", r.text);
    }

    let log = s.stop_and_stderr();
    // The log was really captured, at trace level, with the accounts' ids.
    assert!(log.contains("account created"), "{log}");
    assert!(log.contains(&github) && log.contains(&zendesk), "{log}");
    assert!(log.contains("TRACE"), "trace level is on");
    for secret in secrets() {
        assert!(
            !log.contains(&secret),
            "the server log holds a credential:\n{log}"
        );
    }

    // Every file under the data directory: sealed, never in plaintext.
    let mut files = Vec::new();
    let mut dirs = vec![s.data_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty());
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        for secret in secrets() {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "plaintext credential in {}",
                path.display()
            );
        }
    }
}
