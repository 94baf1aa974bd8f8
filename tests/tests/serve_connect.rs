//! The app catalog (`/v1/apps`) end to end on the real `airlock serve`
//! binary, over real HTTP.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use airlock_tests::serve::{MASTER_KEY, Server, command};
use reqwest::{Method, StatusCode};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

#[tokio::test]
async fn apps_are_listed_for_any_caller_with_their_connect_settings() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    // Any valid credential reads the catalog, whatever its scopes and project.
    let (_, steps_only) = s.new_key(&admin, &["steps:read"], Some("alpha")).await;

    let r = s.call(Method::GET, "/v1/apps", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    r.assert_error_shape();

    let r = s
        .call(Method::GET, "/v1/apps", Some(&steps_only), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let apps = r.json()["apps"].as_array().unwrap().clone();
    let slugs: Vec<&str> = apps.iter().map(|a| a["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs.len(), 25, "{slugs:?}");
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
    assert_eq!(r.json()["apps"].as_array().unwrap().len(), 26, "{}", r.text);
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
