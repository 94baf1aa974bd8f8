//! The operator console, the rest of it, in headless Chromium over
//! WebDriver: a project's overview draws its runs per minute by outcome
//! and p50/p95 durations as SVG; a running run's page follows it (masked
//! live lines, reloading itself without script) until it ends; API keys
//! and OAuth clients are rotated from the console (the new secret shown
//! once, the old one dead at once, and a rotated key's console sessions
//! with it); a client is created and deleted. Pages are saved as
//! `target/test-artifacts/console-*.png` (with `AIRLOCK_UPDATE_SCREENSHOT=1`,
//! the overview also as `docs/images/console-overview.png`).

use std::time::{Duration, Instant};

use airlock_tests::browser::{Browser, artifact};
use airlock_tests::live::Gate;
use airlock_tests::serve::{Server, ServerBuilder};
use airlock_tests::{component_bytes, examples, guests};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
const SECRET: &str = "console-live-s3cret-41d9";
const WAIT_MANIFEST: &str = "name = \"wait\"\nsecrets = [\"SECRET\"]\nreveal = [\"SECRET\"]\n\
                             [http]\nallowed_hosts = [\"127.0.0.1\"]\n";

async fn sign_in(browser: &Browser, s: &Server, key: &str) {
    browser.goto(&format!("{}/console/login", s.base)).await;
    browser.type_into("#api_key", key).await;
    browser.click("button[type=submit]").await;
    browser
        .wait_for_url("signed in", |u| u.path() != "/console/login")
        .await;
}

/// Polls the browser's page until `ok` holds for its source.
async fn wait_for_page(browser: &Browser, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let bound = Instant::now();
    loop {
        let page = browser.source().await;
        if ok(&page) {
            return page;
        }
        assert!(bound.elapsed() < Duration::from_secs(30), "{what}: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn upload(s: &Server, admin: &str, step: &str, wasm: &str, manifest: &str) {
    let r = s
        .upload("alpha", step, admin, &component_bytes(wasm), Some(manifest))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_charts_runs_and_a_running_run_is_followed_live() {
    let s = ServerBuilder::new(BIN)
        .args(&["--allow-range", "127.0.0.0/8"])
        .start();
    let admin = s.admin_setup().await;
    let r = s
        .call(
            Method::PUT,
            "/v1/projects/alpha/secrets/SECRET",
            Some(&admin),
            Some(json!({ "value": SECRET })),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    upload(&s, &admin, "hello", examples::HELLO, "name = \"hello\"\n").await;
    upload(&s, &admin, "boom", guests::PANIC, "name = \"boom\"\n").await;
    upload(&s, &admin, "wait", guests::LOG_WAIT, WAIT_MANIFEST).await;
    for _ in 0..3 {
        let r = s
            .run(&admin, "alpha", "hello", json!({"name": "Ada"}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = s.run(&admin, "alpha", "boom", json!({})).await;
    assert_eq!(r.json()["status"], "failed", "{}", r.text);

    // A queued run that waits on the gate: running until released.
    let gate = Gate::start().await;
    let r = s
        .send(
            s.client
                .post(format!("{}/v1/projects/alpha/steps/wait/runs", s.base))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .header("prefer", "respond-async")
                .body(json!({"input": {"url": gate.url()}}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let waiting = r.json()["id"].as_str().unwrap().to_owned();

    let browser = Browser::start().await;
    sign_in(&browser, &s, &admin).await;
    browser.click("a[href='/console/projects/alpha']").await;
    browser
        .wait_for_url("alpha's overview", |u| {
            u.path() == "/console/projects/alpha"
        })
        .await;
    let page = browser.source().await;
    // Totals: three succeeded, one failed, one queued or running.
    for total in [
        "<strong>3</strong> succeeded",
        "<strong>1</strong> failed",
        "<strong>1</strong> queued or running",
    ] {
        assert!(page.contains(total), "{total}: {page}");
    }
    // The bars of this minute: one per outcome, titled with its count.
    let bars = browser
        .client
        .find_all(fantoccini::Locator::Css("#rate-chart rect.bar"))
        .await
        .unwrap();
    let mut titles = Vec::new();
    for bar in &bars {
        let title = bar
            .find(fantoccini::Locator::Css("title"))
            .await
            .unwrap()
            .html(true)
            .await
            .unwrap();
        titles.push(title);
    }
    // Summed by outcome (the runs may straddle a minute's end).
    let mut by_outcome = std::collections::BTreeMap::new();
    for title in &titles {
        let (_, count) = title.split_once(" UTC: ").expect(title);
        let (n, outcome) = count.split_once(' ').unwrap();
        *by_outcome.entry(outcome.to_owned()).or_insert(0) += n.parse::<u32>().unwrap();
    }
    assert_eq!(
        by_outcome,
        [("failed", 1), ("succeeded", 3), ("unfinished", 1)]
            .map(|(k, v)| (k.to_owned(), v))
            .into(),
        "{titles:?}"
    );
    // Durations: finished runs give a p50 and a p95 line.
    let lines = browser
        .client
        .find_all(fantoccini::Locator::Css("#duration-chart polyline"))
        .await
        .unwrap();
    assert!(lines.len() >= 2, "p50 and p95 lines");
    browser.screenshot(&artifact("console-overview.png")).await;
    if std::env::var_os("AIRLOCK_UPDATE_SCREENSHOT").is_some() {
        browser
            .screenshot(std::path::Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../docs/images/console-overview.png"
            )))
            .await;
    }
    // The day window, and a window that does not exist.
    browser.click("a[href$='?window=day']").await;
    wait_for_page(&browser, "the day window", |p| {
        p.contains("aria-current=\"page\">day")
    })
    .await;
    let r = s
        .send(
            s.client
                .get(format!("{}/console/projects/alpha?window=week", s.base))
                .header("cookie", session_cookie(&browser).await),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("window: one of hour, day"), "{}", r.text);

    // The running run's page: its masked lines so far, and it follows.
    browser
        .goto(&format!("{}/console/projects/alpha/runs/{waiting}", s.base))
        .await;
    let page = wait_for_page(&browser, "the live line", |p| {
        p.contains("first: the secret is [REDACTED:SECRET]")
    })
    .await;
    assert!(page.contains("http-equiv=\"refresh\""), "{page}");
    assert!(page.contains("running"), "{page}");
    assert!(!page.contains(SECRET), "the value is nowhere in the page");
    browser.screenshot(&artifact("console-run-live.png")).await;
    gate.release();
    // The page reloads itself: the run's end arrives without a click.
    let page = wait_for_page(&browser, "the finished run", |p| {
        p.contains("status succeeded") && p.contains("stderr after the wait, [REDACTED:SECRET]")
    })
    .await;
    assert!(!page.contains("http-equiv=\"refresh\""), "it stops: {page}");
    assert!(!page.contains(SECRET));
    browser.close().await;
}

async fn session_cookie(browser: &Browser) -> String {
    let c = browser
        .client
        .get_named_cookie("airlock_console")
        .await
        .unwrap();
    format!("airlock_console={}", c.value())
}

async fn token_for(s: &Server, client_id: &str, secret: &str) -> StatusCode {
    s.send(
        s.client
            .post(format!("{}/v1/oauth/token", s.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&client_id={client_id}&client_secret={secret}"
            )),
    )
    .await
    .status
}

async fn text_of(browser: &Browser, css: &str) -> String {
    browser
        .find(css)
        .await
        .text()
        .await
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_oauth_clients_rotate_from_the_console() {
    let s = ServerBuilder::new(BIN).start();
    let admin = s.admin_setup().await;
    let r = s
        .call(
            Method::POST,
            "/v1/keys",
            Some(&admin),
            Some(json!({"name": "second admin", "scopes": ["admin"], "project": "alpha"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let second: Value = r.json();
    let second_key = second["key"].as_str().unwrap().to_owned();
    let second_id = second["id"].as_str().unwrap().to_owned();
    let reads = |key: String| {
        let s = &s;
        async move {
            s.call(Method::GET, "/v1/projects/alpha/runs", Some(&key), None)
                .await
                .status
        }
    };

    // A session of the second key, which the first admin will rotate.
    let other = Browser::start().await;
    sign_in(&other, &s, &second_key).await;
    other
        .goto(&format!("{}/console/projects/alpha/runs", s.base))
        .await;
    wait_for_page(&other, "the second admin's runs page", |p| {
        p.contains("<h1>Runs</h1>")
    })
    .await;

    let browser = Browser::start().await;
    sign_in(&browser, &s, &admin).await;
    browser
        .goto(&format!("{}/console/projects/alpha/keys", s.base))
        .await;
    browser
        .click(&format!("form[action$='/keys/{second_id}/rotate'] button"))
        .await;
    let page = wait_for_page(&browser, "the rotated key", |p| {
        p.contains("id=\"new-key\"")
    })
    .await;
    assert!(
        page.contains("rotated: its old secret no longer works"),
        "{page}"
    );
    let rotated = text_of(&browser, "#new-key").await;
    assert!(
        rotated.starts_with(&format!("ak_{second_id}_")),
        "{rotated}"
    );
    assert_ne!(rotated, second_key);
    assert_eq!(reads(second_key.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(reads(rotated.clone()).await, StatusCode::OK);
    // The rotated key's console session ended with its old secret.
    other
        .goto(&format!("{}/console/projects/alpha/runs", s.base))
        .await;
    other
        .wait_for_url("the sign-in page", |u| u.path() == "/console/login")
        .await;
    other.close().await;
    // Shown once: the list does not show it again.
    browser
        .goto(&format!("{}/console/projects/alpha/keys", s.base))
        .await;
    assert!(!browser.source().await.contains(&rotated));

    // OAuth clients: created (the secret shown once, and it works).
    browser
        .goto(&format!("{}/console/projects/alpha/clients", s.base))
        .await;
    browser.type_into("#name", "backend").await;
    browser.click("input[value='runs:read']").await;
    browser.click("form.card button[type=submit]").await;
    wait_for_page(&browser, "the new client", |p| {
        p.contains("id=\"new-client-secret\"")
    })
    .await;
    let client_id = text_of(&browser, "#new-client-id").await;
    let secret = text_of(&browser, "#new-client-secret").await;
    assert_eq!(token_for(&s, &client_id, &secret).await, StatusCode::OK);
    browser.screenshot(&artifact("console-clients.png")).await;
    // Rotated: the old secret is refused, the new one works.
    browser
        .goto(&format!("{}/console/projects/alpha/clients", s.base))
        .await;
    assert!(!browser.source().await.contains(&secret), "shown once");
    browser
        .click(&format!(
            "form[action$='/clients/{client_id}/rotate'] button"
        ))
        .await;
    wait_for_page(&browser, "the rotated secret", |p| {
        p.contains("Secret rotated")
    })
    .await;
    let new_secret = text_of(&browser, "#new-client-secret").await;
    assert_ne!(new_secret, secret);
    assert_eq!(
        token_for(&s, &client_id, &secret).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(token_for(&s, &client_id, &new_secret).await, StatusCode::OK);
    // Deleted: gone from the list, and its secret no longer works.
    browser
        .click(&format!(
            "form[action$='/clients/{client_id}/delete'] button"
        ))
        .await;
    wait_for_page(&browser, "the client gone", |p| {
        p.contains("<h1>OAuth clients</h1>") && !p.contains(&client_id)
    })
    .await;
    assert_eq!(
        token_for(&s, &client_id, &new_secret).await,
        StatusCode::UNAUTHORIZED
    );

    // Rotating without the form's CSRF token is refused, and changes nothing.
    let r = s
        .send(
            s.client
                .post(format!(
                    "{}/console/projects/alpha/keys/{second_id}/rotate",
                    s.base
                ))
                .header("cookie", session_cookie(&browser).await)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("csrf=forged"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(reads(rotated.clone()).await, StatusCode::OK);

    // Over the API and the CLI's client: the same rotation.
    let r = s
        .call(
            Method::POST,
            &format!("/v1/keys/{second_id}/rotate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["id"], second_id.as_str());
    assert_eq!(r.json()["scopes"], json!(["admin"]));
    assert_eq!(reads(rotated).await, StatusCode::UNAUTHORIZED);
    let r = s
        .call(
            Method::POST,
            "/v1/keys/0000000000000000/rotate",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    browser.close().await;
}
