//! Connect in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver) opens `connect_link_url`,
//! picks an app, signs in at the fake OAuth provider or fills in a form,
//! and lands on the operator's success page; then a step uses the account
//! and no log line holds a credential. The hosted page is saved as
//! `target/test-artifacts/connect-page.png` (with
//! `AIRLOCK_UPDATE_SCREENSHOT=1`, also as `docs/images/connect-page.png`
//! for the README).
//!
//! Without Chromium these tests fail, naming what to install.

use airlock_tests::browser::{Browser, artifact};
use airlock_tests::connect::{KEY_APP, OAUTH_APP, TENANT_APP, World};
use airlock_tests::oauth_provider::{CLIENT_SECRET, PASSWORD, USERNAME};
use airlock_tests::{component_bytes, guests};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
const API_KEY: &str = "key_BrowserFormValue2Lr7Vx4Hc";

/// Where the browser landed on the operator's site: its query.
fn landed(url: &url::Url) -> std::collections::BTreeMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// Runs the probe guest with `user`'s account of `app`, calling `url`.
async fn call_with_account(w: &World, app: &str, user: &str, url: &str) -> Value {
    let step = format!("probe-{app}");
    let manifest = format!("name = \"{step}\"\n[http]\napps = [\"{app}\"]\n");
    let r = w
        .server
        .upload(
            "alpha",
            &step,
            &w.admin,
            &component_bytes(guests::HTTP_PROBE),
            Some(&manifest),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = w
        .server
        .call(
            Method::POST,
            &format!("/v1/projects/alpha/steps/{step}/runs"),
            Some(&w.admin),
            Some(json!({
                "input": {"url": url, "auth": {"account": app}, "log_response": true},
                "external_user_id": user,
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let run = r.json();
    assert_eq!(run["status"], "succeeded", "{run}");
    run
}

fn upstream_body(run: &Value) -> Value {
    serde_json::from_str(run["output"]["body"].as_str().unwrap()).unwrap()
}

/// Opens the link, and checks the token left the address bar.
async fn open(browser: &Browser, w: &World, link: &str) {
    browser.goto(link).await;
    let at = browser
        .wait_for_url("the hosted page", |u| u.path().starts_with("/connect"))
        .await;
    let token = link.rsplit('/').next().unwrap();
    assert!(
        !at.as_str().contains(token),
        "the token stayed in the URL: {at}"
    );
    assert!(at.as_str().starts_with(&w.server.base), "{at}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_app_is_connected_in_chromium_and_a_step_uses_it() {
    let mut w = World::new(BIN).await;
    let browser = Browser::start().await;
    // The page as the README shows it: a link offering a few shipped apps.
    let shown = [
        "github",
        "google_drive",
        "slack",
        "hubspot",
        "stripe",
        "zendesk",
    ];
    let (_, showcase) = w.link("browser-0", json!({"apps": shown})).await;
    open(&browser, &w, &showcase).await;
    let list = browser.source().await;
    for name in [
        "GitHub",
        "Google Drive",
        "Slack",
        "HubSpot",
        "Stripe",
        "Zendesk",
    ] {
        assert!(list.contains(name), "{name} not offered: {list}");
    }
    browser.screenshot(&artifact("connect-page.png")).await;
    if std::env::var_os("AIRLOCK_UPDATE_SCREENSHOT").is_some() {
        let docs = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/images/connect-page.png"
        );
        browser.screenshot(std::path::Path::new(docs)).await;
    }

    // Without a list: every API-key app, and the OAuth apps whose client
    // the project holds.
    let (_, link) = w.link("browser-1", json!({})).await;
    open(&browser, &w, &link).await;
    let list = browser.source().await;
    assert!(list.contains("Connect an account"), "{list}");
    for name in ["Fake ID", "Keyed API", "Workspace", "Stripe"] {
        assert!(list.contains(name), "{name} not offered: {list}");
    }
    assert!(
        !list.contains("Google Drive"),
        "no client, not offered: {list}"
    );
    browser
        .screenshot(&artifact("connect-page-all-apps.png"))
        .await;

    browser
        .click(&format!("a.app[href=\"/connect/apps/{OAUTH_APP}\"]"))
        .await;
    browser
        .wait_for_url("the app's page", |u| u.path().ends_with(OAUTH_APP))
        .await;
    browser
        .screenshot(&artifact("connect-page-oauth-app.png"))
        .await;
    browser.click("button.button").await;
    // At the provider: its own sign-in page.
    browser
        .wait_for_url("the provider", |u| u.path() == "/authorize")
        .await;
    browser.type_into("#username", USERNAME).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#allow").await;
    let done = browser
        .wait_for_url("the success redirect", |u| u.path() == "/done")
        .await;
    assert!(done.as_str().starts_with(&w.site.origin()), "{done}");
    let q = landed(&done);
    assert_eq!(q["app"], OAUTH_APP);
    let account_id = q["account_id"].clone();
    browser.close().await;

    let accounts = w.accounts_of("browser-1").await;
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(accounts[0]["id"], account_id.as_str());
    let run = call_with_account(&w, OAUTH_APP, "browser-1", "/me").await;
    assert_eq!(upstream_body(&run)["login"], USERNAME, "{run}");

    let log = w.server.stop_and_stderr();
    let mut secrets = w.provider.state.issued();
    secrets.push(CLIENT_SECRET.to_owned());
    secrets.push(link.rsplit('/').next().unwrap().to_owned());
    assert!(secrets.len() >= 3, "a code and two tokens: {secrets:?}");
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "the server's log holds {s:?}");
        assert!(!run.to_string().contains(s.as_str()), "the run holds {s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_app_and_a_dynamic_app_are_connected_in_chromium() {
    let mut w = World::new(BIN).await;
    let browser = Browser::start().await;

    // The API-key app: a form of its credential, masked as a password.
    let (_, link) = w
        .link("browser-2", json!({"apps": [KEY_APP, TENANT_APP]}))
        .await;
    open(&browser, &w, &link).await;
    browser
        .click(&format!("a.app[href=\"/connect/apps/{KEY_APP}\"]"))
        .await;
    let input = browser.find("input[name=\"credential.api_key\"]").await;
    assert_eq!(
        input.attr("type").await.unwrap().as_deref(),
        Some("password")
    );
    assert_eq!(
        input.attr("autocomplete").await.unwrap().as_deref(),
        Some("off")
    );
    input.send_keys(API_KEY).await.unwrap();
    browser.click("button.button").await;
    let done = browser
        .wait_for_url("the success redirect", |u| u.path() == "/done")
        .await;
    assert_eq!(landed(&done)["app"], KEY_APP);
    let run = call_with_account(&w, KEY_APP, "browser-2", "/whoami").await;
    assert!(
        w.echo
            .requests()
            .last()
            .unwrap()
            .to_string()
            .contains(API_KEY),
        "the upstream got the key"
    );
    assert!(!run.to_string().contains(API_KEY), "{run}");

    // The dynamic app: its custom field first, checked against its
    // pattern; the flow then runs at that tenant's site.
    let (_, link) = w.link("browser-3", json!({"apps": [TENANT_APP]})).await;
    open(&browser, &w, &link).await;
    // One app offered: its form straight away.
    let field = browser.find("input[name=\"field.tenant\"]").await;
    field.send_keys("Not A Tenant!").await.unwrap();
    browser.click("button.button").await;
    let alert = browser.find("p.alert").await.text().await.unwrap();
    assert!(
        alert.contains("Tenant is missing or not in the expected form"),
        "{alert}"
    );
    let field = browser.find("input[name=\"field.tenant\"]").await;
    field.clear().await.unwrap();
    field.send_keys("acme").await.unwrap();
    browser.click("button.button").await;
    browser
        .wait_for_url("acme's provider site", |u| u.path() == "/acme/authorize")
        .await;
    browser.type_into("#username", USERNAME).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#allow").await;
    let done = browser
        .wait_for_url("the success redirect", |u| u.path() == "/done")
        .await;
    assert_eq!(landed(&done)["app"], TENANT_APP);
    browser.close().await;
    let accounts = w.accounts_of("browser-3").await;
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(accounts[0]["custom_fields"]["tenant"], "acme");
    let run = call_with_account(&w, TENANT_APP, "browser-3", "/me").await;
    assert_eq!(upstream_body(&run)["tenant"], "acme", "{run}");

    let log = w.server.stop_and_stderr();
    let mut secrets = w.provider.state.issued();
    secrets.push(API_KEY.to_owned());
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "the server's log holds {s:?}");
    }
}
