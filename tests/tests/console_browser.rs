//! The operator console in a real browser (headless Chromium over
//! WebDriver, as for the Connect page): sign in with an API key, open a
//! project's runs and one run whose step leaked its secret, and see the
//! log lines with `[REDACTED:TOKEN]` and the value nowhere in the page;
//! a `runs:read` key restricted to another project is refused there;
//! logging out ends the session for a copied cookie too; a POST without
//! the CSRF token, or from another site, is refused. The pages are saved
//! as `target/test-artifacts/console-*.png` (with
//! `AIRLOCK_UPDATE_SCREENSHOT=1`, also as `docs/images/console-*.png`).
//!
//! Without Chromium these tests fail, naming what to install.

use airlock_tests::browser::{Browser, artifact};
use airlock_tests::serve::{Server, ServerBuilder};
use airlock_tests::{component_bytes, examples};
use reqwest::{Method, StatusCode};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
const TOKEN: &str = "tok_console_Q8x2Lm5Vr9";

fn screenshot_to_docs() -> bool {
    std::env::var_os("AIRLOCK_UPDATE_SCREENSHOT").is_some()
}

/// A server whose project alpha has run echo-secret (which leaks TOKEN
/// into its stdout, log and output); the admin key and the run's id.
async fn world() -> (Server, String, String) {
    let s = ServerBuilder::new(BIN).start();
    let admin = s.admin_setup().await;
    let r = s
        .call(
            Method::PUT,
            "/v1/projects/alpha/secrets/TOKEN",
            Some(&admin),
            Some(json!({"value": TOKEN})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let manifest = "name = \"echo-secret\"\nsecrets = [\"TOKEN\"]\nreveal = [\"TOKEN\"]\n";
    let r = s
        .upload(
            "alpha",
            "echo-secret",
            &admin,
            &component_bytes(examples::ECHO_SECRET),
            Some(manifest),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = s.run(&admin, "alpha", "echo-secret", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    (s, admin, id)
}

async fn sign_in(browser: &Browser, s: &Server, key: &str) {
    browser.goto(&format!("{}/console/", s.base)).await;
    browser
        .wait_for_url("the sign-in page", |u| u.path() == "/console/login")
        .await;
    browser.type_into("#api_key", key).await;
    browser.click("button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_reads_a_masked_run_and_signs_out() {
    let (s, admin, id) = world().await;
    let browser = Browser::start().await;
    sign_in(&browser, &s, &admin).await;
    // A global key picks a project.
    browser
        .wait_for_url("the project list", |u| u.path() == "/console/")
        .await;
    browser.click("a[href='/console/projects/alpha']").await;
    browser
        .wait_for_url("alpha's overview", |u| {
            u.path() == "/console/projects/alpha"
        })
        .await;
    browser
        .click("nav.tabs a[href='/console/projects/alpha/runs']")
        .await;
    browser
        .wait_for_url("alpha's runs", |u| {
            u.path() == "/console/projects/alpha/runs"
        })
        .await;
    let list = browser.source().await;
    assert!(
        list.contains("echo-secret") && list.contains("succeeded"),
        "{list}"
    );
    browser.screenshot(&artifact("console-runs.png")).await;
    if screenshot_to_docs() {
        browser
            .screenshot(std::path::Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../docs/images/console-runs.png"
            )))
            .await;
    }

    browser.click("a.run-link").await;
    browser
        .wait_for_url("the run", |u| u.path().ends_with(&id))
        .await;
    let page = browser.source().await;
    assert!(
        page.contains("the log sees the token: [REDACTED:TOKEN]"),
        "the log line, masked: {page}"
    );
    assert!(
        page.contains("stdout sees the token: [REDACTED:TOKEN]"),
        "{page}"
    );
    assert!(!page.contains(TOKEN), "the value is nowhere in the page");
    browser.screenshot(&artifact("console-run.png")).await;
    if screenshot_to_docs() {
        browser
            .screenshot(std::path::Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../docs/images/console-run.png"
            )))
            .await;
    }
    // Steps: an older version made current from the step's page.
    let r = s
        .upload(
            "alpha",
            "echo-secret",
            &admin,
            &component_bytes(examples::HELLO),
            Some("name = \"echo-secret\"\n"),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let newer = r.json()["digest"].as_str().unwrap().to_owned();
    browser
        .goto(&format!("{}/console/projects/alpha/steps", s.base))
        .await;
    browser.click("a.step-link").await;
    browser
        .wait_for_url("the step", |u| u.path().ends_with("/steps/echo-secret"))
        .await;
    let step_page = browser.source().await;
    assert!(step_page.contains(&newer), "{step_page}");
    browser.click("button.make-current").await;
    // The answer is the same address: wait for the rollback to be seen.
    let bound = std::time::Instant::now();
    loop {
        let r = s
            .call(
                Method::GET,
                "/v1/projects/alpha/steps/echo-secret",
                Some(&admin),
                None,
            )
            .await;
        if r.json()["current_digest"] != newer.as_str() {
            break;
        }
        assert!(
            bound.elapsed() < std::time::Duration::from_secs(30),
            "not rolled back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    browser
        .wait_for_url("the step again", |u| {
            u.path().ends_with("/steps/echo-secret")
        })
        .await;
    browser.screenshot(&artifact("console-step.png")).await;

    // Keys: created (shown once, and it works), then revoked.
    browser
        .goto(&format!("{}/console/projects/alpha/keys", s.base))
        .await;
    browser.type_into("#name", "reader from the console").await;
    browser.click("input[value='runs:read']").await;
    browser.click("form.card button[type=submit]").await;
    let shown = browser.find("#new-key").await.text().await.unwrap();
    let shown = shown.trim().to_owned();
    assert!(shown.starts_with("ak_"), "{shown}");
    let reads = |key: String| {
        let s = &s;
        async move {
            s.call(Method::GET, "/v1/projects/alpha/runs", Some(&key), None)
                .await
                .status
        }
    };
    assert_eq!(reads(shown.clone()).await, StatusCode::OK);
    let id = airlock_runtime::store::platform::api_key_id(&shown)
        .unwrap()
        .to_owned();
    browser
        .goto(&format!("{}/console/projects/alpha/keys", s.base))
        .await;
    let listed = browser.source().await;
    assert!(listed.contains(&id), "{listed}");
    assert!(!listed.contains(&shown), "the key is shown only once");
    browser
        .click(&format!("form[action$='/keys/{id}/revoke'] button"))
        .await;
    // The answer is the keys page again, without the key (the address was
    // the same before, so wait for the list to change).
    let bound = std::time::Instant::now();
    while browser.source().await.contains(&id) {
        assert!(
            bound.elapsed() < std::time::Duration::from_secs(30),
            "not revoked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(reads(shown).await, StatusCode::UNAUTHORIZED);

    // The page allows no script at all.
    let r = s
        .send(s.client.get(format!("{}/console/login", s.base)))
        .await;
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");

    // Signed out: back at the sign-in page, and the run is out of reach.
    let cookie = browser
        .client
        .get_named_cookie("airlock_console")
        .await
        .unwrap();
    let copied = format!("airlock_console={}", cookie.value());
    browser.click("form.logout button").await;
    browser
        .wait_for_url("the sign-in page", |u| u.path() == "/console/login")
        .await;
    browser
        .goto(&format!("{}/console/projects/alpha/runs/{id}", s.base))
        .await;
    browser
        .wait_for_url("the sign-in page again", |u| u.path() == "/console/login")
        .await;
    // A copy of the cookie no longer works either.
    let r = s
        .send(
            no_redirects()
                .get(format!("{}/console/projects/alpha/runs", s.base))
                .header("cookie", &copied),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.headers["location"], "/console/login");
    browser.close().await;
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The CSRF token in a console page's form.
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a csrf field")
        .to_owned()
}

/// Submits the sign-in form with `key` over plain HTTP as a browser would
/// (the sign-in page's pre-session cookie and CSRF token, then the form).
async fn post_login(s: &Server, key: &str) -> reqwest::Response {
    let http = no_redirects();
    let r = http
        .get(format!("{}/console/login", s.base))
        .send()
        .await
        .unwrap();
    let pre = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            let v = v.to_str().ok()?;
            v.strip_prefix("airlock_console_login=")
                .map(|rest| rest.split(';').next().unwrap().to_owned())
        })
        .expect("a pre-session cookie");
    let csrf = csrf_of(&r.text().await.unwrap());
    http.post(format!("{}/console/login", s.base))
        .header("cookie", format!("airlock_console_login={pre}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("api_key", key), ("csrf", csrf.as_str())]))
        .send()
        .await
        .unwrap()
}

/// Signs in with `key`; the session cookie.
async fn session_of(s: &Server, key: &str) -> String {
    let r = post_login(s, key).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("airlock_console="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(attribute), "{set}");
    }
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_csrf_and_bad_keys_are_enforced_as_over_the_api() {
    let (s, admin, id) = world().await;
    let http = no_redirects();
    // A wrong key: 401 on the page, and audited as a failed authentication.
    let r = http
        .get(format!("{}/console/login", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let session = session_of(&s, &admin).await;
    let before_audit = audit_len(&s, &admin).await;
    let bad = post_login(&s, "ak_nope.wrong").await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let text = bad.text().await.unwrap();
    assert!(text.contains("was not accepted"), "{text}");
    assert!(!text.contains("ak_nope.wrong"), "the key is not echoed");
    assert_eq!(audit_len(&s, &admin).await, before_audit + 1);

    // A login POST without the pre-session cookie's token: refused.
    let r = http
        .post(format!("{}/console/login", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("api_key", admin.as_str()), ("csrf", "forged")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A CSRF-less logout is refused and leaves the session working; one
    // from another site is refused even with the token.
    let r = http
        .post(format!("{}/console/logout", s.base))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("x", "y")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http
        .get(format!("{}/console/projects/alpha/runs/{id}", s.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csrf = csrf_of(&r.text().await.unwrap());
    let r = http
        .post(format!("{}/console/logout", s.base))
        .header("cookie", &session)
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("csrf", csrf.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Accounts by end user: app and health, never the credential, even
    // for the admin (whose key may read credentials over the API).
    let account_token = "gho_console_Zq81Lp";
    let r = s
        .call(
            Method::POST,
            "/v1/projects/alpha/accounts",
            Some(&admin),
            Some(json!({"app": "github", "external_user_id": "ada",
                "credentials": {"access_token": account_token}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let account_id = r.json()["id"].as_str().unwrap().to_owned();
    for query in ["", "?user=ada"] {
        let r = http
            .get(format!("{}/console/projects/alpha/accounts{query}", s.base))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let page = r.text().await.unwrap();
        assert!(
            page.contains(&account_id) && page.contains("healthy"),
            "{page}"
        );
        assert!(!page.contains(account_token), "no credential: {page}");
    }
    let r = http
        .get(format!(
            "{}/console/projects/alpha/accounts?user=grace",
            s.base
        ))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert!(!r.text().await.unwrap().contains(&account_id));

    // A runs:read key of project beta: beta's runs yes, alpha's no.
    let beta_reader = s.new_key(&admin, &["runs:read"], Some("beta")).await;
    let reader = session_of(&s, &beta_reader).await;
    let r = http
        .get(format!("{}/console/", s.base))
        .header("cookie", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/console/projects/beta");
    let r = http
        .get(format!("{}/console/projects/beta/runs", s.base))
        .header("cookie", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for path in ["runs", &format!("runs/{id}")] {
        let r = http
            .get(format!("{}/console/projects/alpha/{path}", s.base))
            .header("cookie", &reader)
            .send()
            .await
            .unwrap();
        assert!(
            matches!(r.status(), StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
            "{path}: {}",
            r.status()
        );
        let text = r.text().await.unwrap();
        assert!(!text.contains("echo-secret"), "{text}");
    }
    // Nor alpha's overview, whose chart is of runs (another project's
    // name is not even confirmed, as over the API).
    let r = http
        .get(format!("{}/console/projects/alpha", s.base))
        .header("cookie", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(!r.text().await.unwrap().contains("succeeded"));
    // Nor keys, clients, audit, steps or accounts: they need `admin`,
    // `steps:read` and `accounts:read`.
    for path in ["keys", "clients", "audit", "steps", "accounts"] {
        let r = http
            .get(format!("{}/console/projects/beta/{path}", s.base))
            .header("cookie", &reader)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // A key lacking runs:read sees no runs at all.
    let writer = s.new_key(&admin, &["steps:read"], Some("alpha")).await;
    let writer = session_of(&s, &writer).await;
    let r = http
        .get(format!("{}/console/projects/alpha/runs", s.base))
        .header("cookie", &writer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("runs:read"));

    // Revoking the key ends its sessions.
    let key_id = airlock_runtime::store::platform::api_key_id(&beta_reader)
        .unwrap()
        .to_owned();
    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/keys/{key_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = http
        .get(format!("{}/console/projects/beta/runs", s.base))
        .header("cookie", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

async fn audit_len(s: &Server, admin: &str) -> usize {
    let r = s.call(Method::GET, "/v1/audit", Some(admin), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["entries"].as_array().unwrap().len()
}

fn encode(pairs: &[(&str, &str)]) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        form.append_pair(k, v);
    }
    form.finish()
}
