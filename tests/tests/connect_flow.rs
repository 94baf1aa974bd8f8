//! Connect end to end over HTTP: the tokens API, the hosted page, the OAuth
//! flow against a fake provider that behaves as RFC 6749 and RFC 7636 say
//! (`airlock_tests::oauth_provider`), API-key and dynamic apps, every
//! refusal the issue lists (each a clear error and no account), and the
//! webhook outbox across a receiver outage and restarts. The real
//! `airlock serve` on loopback with SQLite; the browser tests are in
//! `connect_browser.rs`.

use std::time::Duration;

use airlock_tests::connect::{
    KEY_APP, OAUTH_APP, TENANT_APP, Visitor, WEBHOOK_SECRET, World, location, query,
};
use airlock_tests::oauth_provider::CLIENT_SECRET;
use airlock_tests::operator_site::{self, Delivery, Seen};
use airlock_tests::{component_bytes, guests};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
const API_KEY: &str = "key_ConnectFormValue8Yw3Nq5Tz";

/// Runs the probe guest for `user` with the account of `app`, calling `url`
/// (relative to the app's base URL): the run's JSON.
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

/// The body the probe got back from the upstream.
fn upstream_body(run: &Value) -> Value {
    let body = run["output"]["body"]
        .as_str()
        .unwrap_or_else(|| panic!("{run}"));
    serde_json::from_str(body).unwrap()
}

/// Whether `d` is signed with the project's webhook secret, recently.
fn signed(d: &Delivery) -> bool {
    let Some((t, v1)) = d
        .signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let Ok(t_secs) = t.parse::<i64>() else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", d.body).as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (now - t_secs).abs() < 300 && expected == v1
}

/// Waits until `site` received `n` webhooks (or 30 s pass).
async fn wait_for_deliveries(seen: &Seen, n: usize) -> Vec<Delivery> {
    for _ in 0..300 {
        let d = seen.deliveries.lock().unwrap().clone();
        if d.len() >= n {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let d = seen.deliveries.lock().unwrap().clone();
    panic!("expected {n} webhooks, got {}: {d:?}", d.len());
}

/// Waits for `n` webhooks of type `event`.
async fn wait_for_events(seen: &Seen, event: &str, n: usize) -> Vec<Delivery> {
    for _ in 0..300 {
        let d: Vec<Delivery> = seen
            .deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.event_type == event)
            .cloned()
            .collect();
        if d.len() >= n {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "expected {n} {event} webhooks: {:?}",
        seen.deliveries.lock().unwrap()
    );
}

fn body(d: &Delivery) -> Value {
    serde_json::from_str(&d.body).unwrap()
}

fn assert_absent(haystack: &str, needles: &[String], context: &str) {
    for n in needles {
        assert!(!n.is_empty());
        assert!(!haystack.contains(n.as_str()), "{context} holds {n:?}");
    }
}

/// Where an error redirect went, with its `error` code.
fn error_code(target: &str) -> String {
    assert!(
        target.contains("/failed"),
        "not the error redirect: {target}"
    );
    query(target).get("error").cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_created_shown_once_checked_and_revoked() {
    let w = World::new(BIN).await;
    let r = w.create_token(w.token_body("user-1")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let created = r.json();
    let id = created["id"].as_str().unwrap();
    let token = created["token"].as_str().unwrap();
    assert!(id.starts_with("ct_"), "{created}");
    assert_eq!(
        created["connect_link_url"],
        format!("{}/connect/{token}", w.server.base)
    );
    let expires = airlock_tests::serve::timestamp(&created["expires_at"]);
    let in_secs = (expires - chrono::Utc::now()).num_seconds();
    assert!(
        (1790..=1800).contains(&in_secs),
        "default 1800 s: {in_secs}"
    );

    let path = format!("/v1/projects/alpha/connect/tokens/{id}");
    let r = w
        .server
        .call(Method::GET, &path, Some(&w.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["status"], "pending");
    assert_eq!(r.json()["external_user_id"], "user-1");
    assert!(
        !r.text.contains(token),
        "the token is shown once: {}",
        r.text
    );
    // The database holds its hash only.
    let db = std::fs::read(w.database()).unwrap_or_default();
    let wal = std::fs::read(w.server.data_dir().join("airlock.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes
                .windows(token.len())
                .any(|win| win == token.as_bytes()),
            "the token is stored in plain text"
        );
    }

    // Bad bodies: a 400 that names the field.
    let site = w.site.origin();
    for (patch, named) in [
        (json!({"expires_in_secs": 59}), "expires_in_secs"),
        (json!({"expires_in_secs": 14401}), "expires_in_secs"),
        (
            json!({"success_redirect_uri": "https://evil.example/done"}),
            "success_redirect_uri",
        ),
        (
            json!({"error_redirect_uri": format!("{site}.evil.example/x")}),
            "error_redirect_uri",
        ),
        (
            json!({"success_redirect_uri": "http://app.example/done", "allowed_origins": ["http://app.example"]}),
            "allowed_origins[0]",
        ),
        (
            json!({"allowed_origins": [format!("{site}/path")]}),
            "allowed_origins[0]",
        ),
        (json!({"apps": ["no-such-app"]}), "no-such-app"),
        (json!({"external_user_id": ""}), "external_user_id"),
        (json!({"account_id": "acc_0000000000000000"}), "account_id"),
        (
            json!({"webhook_uri": "ftp://hooks.example/x"}),
            "webhook_uri",
        ),
    ] {
        let mut b = w.token_body("user-1");
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        let r = w.create_token(b).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{patch}: {}", r.text);
        let (_, message) = r.error();
        assert!(message.contains(named), "{patch}: {message}");
    }
    // A webhook needs the signing secret in the project first.
    let mut b = w.token_body("user-1");
    b["allowed_origins"] = json!([]);
    b.as_object_mut().unwrap().remove("success_redirect_uri");
    b.as_object_mut().unwrap().remove("error_redirect_uri");
    let r = w
        .server
        .call(
            Method::POST,
            "/v1/projects/beta/connect/tokens",
            Some(&w.admin),
            Some(b),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.text.contains("oauth.connect.webhook_secret"),
        "{}",
        r.text
    );

    // Scope and project bound every call: a key without accounts:write is
    // 403; another project's key never sees alpha's token.
    let reader = w.server.new_key(&w.admin, &["accounts:read"], None).await;
    let r = w.server.call(Method::GET, &path, Some(&reader), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let beta = w
        .server
        .new_key(&w.admin, &["accounts:write"], Some("beta"))
        .await;
    let r = w.server.call(Method::GET, &path, Some(&beta), None).await;
    assert!(
        matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{}",
        r.text
    );
    // The token of another project: not found under beta, even for admin.
    let r = w
        .server
        .call(
            Method::GET,
            &format!("/v1/projects/beta/connect/tokens/{id}"),
            Some(&w.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    r.assert_error_shape();
    let r = w
        .server
        .call(
            Method::DELETE,
            &format!("/v1/projects/beta/connect/tokens/{id}"),
            Some(&w.admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    // Revoked: the link stops working at once.
    let r = w
        .server
        .call(Method::DELETE, &path, Some(&w.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = w
        .server
        .call(Method::GET, &path, Some(&w.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let mut v = w.visitor();
    let r = v.get(created["connect_link_url"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(r.text.contains("This link is not valid"), "{}", r.text);
    assert!(v.cookies.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_flow_stores_the_account_a_step_then_uses_and_reconnect_replaces_it() {
    let w = World::new(BIN).await;
    let (token_id, link) = w.link("user-1", json!({})).await;
    let mut v = w.visitor();
    assert_eq!(v.open(&link).await, "/connect");
    let secret_token = link.rsplit('/').next().unwrap().to_owned();
    // The page: product words, the headers of a hosted page.
    let page = v.get("/connect").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("Connect an account"), "{}", page.text);
    assert!(page.text.contains("Fake ID") && page.text.contains("Keyed API"));
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains(&format!("frame-ancestors {}", w.site.origin())),
        "{csp}"
    );
    assert!(csp.contains("default-src 'none'"), "{csp}");

    let authorize = v.start_oauth(OAUTH_APP, &[]).await;
    let request = query(&authorize);
    assert_eq!(
        request["redirect_uri"],
        format!("{}/connect/oauth/callback", w.server.base)
    );
    assert_eq!(request["code_challenge_method"], "S256");
    assert_eq!(request["scope"], "profile repo:read");
    assert_eq!(request["state"].len(), 43, "256 bits, base64url");
    let state = request["state"].clone();
    let callback = v.at_provider(&authorize, "allow").await;
    let done = v.get(&callback).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let landing = location(&done);
    assert!(landing.starts_with(&w.site.url("/done?")), "{landing}");
    let landed = query(&landing);
    let account_id = landed["account_id"].clone();
    assert_eq!(landed["app"], OAUTH_APP);
    assert!(account_id.starts_with("acc_"), "{landing}");
    assert!(
        !v.cookies.contains_key("airlock_oauth"),
        "the binding cookie is cleared"
    );

    // The account exists, healthy, with what the provider granted.
    let accounts = w.accounts_of("user-1").await;
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(accounts[0]["id"], account_id.as_str());
    assert_eq!(accounts[0]["app"], OAUTH_APP);
    assert_eq!(accounts[0]["health"], "healthy");
    assert!(accounts[0]["expires_at"].is_string(), "{:?}", accounts[0]);
    let r = w
        .server
        .call(
            Method::GET,
            &format!("/v1/projects/alpha/connect/tokens/{token_id}"),
            Some(&w.admin),
            None,
        )
        .await;
    assert_eq!(r.json()["status"], "used", "{}", r.text);
    assert_eq!(r.json()["account_id"], account_id.as_str());

    // A step calls the provider's API with it; the host inserts the token.
    let run = call_with_account(&w, OAUTH_APP, "user-1", "/me").await;
    let me = upstream_body(&run);
    assert_eq!(me["login"], "ada", "{run}");
    let first_grant = me["grant"].clone();

    // account.connected, signed, with ids and health only.
    let d = wait_for_events(&w.site.seen, "account.connected", 1).await;
    assert!(signed(&d[0]), "{:?}", d[0]);
    let event = body(&d[0]);
    assert_eq!(event["type"], "account.connected");
    assert_eq!(event["data"]["account_id"], account_id.as_str());
    assert_eq!(event["data"]["health"], "healthy");
    assert_eq!(event["data"]["external_user_id"], "user-1");
    assert_eq!(event["id"], d[0].event_id.as_str());
    assert_absent(&d[0].body, &w.provider.state.issued(), "the webhook");

    // The link is spent: opening it again is a page in words, no session.
    let mut again = w.visitor();
    let r = again.get(&link).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text);
    assert!(r.text.contains("This link has been used"), "{}", r.text);
    // The callback replayed: the state was consumed; nothing new is stored.
    let r = v.get(&callback).await;
    assert_eq!(error_code(&location(&r)), "state_invalid", "{}", r.text);
    assert_eq!(w.accounts_of("user-1").await.len(), 1);

    // Reconnect: new grant in place, same id, account.reconnected.
    let (_, link2) = w.link("user-1", json!({"account_id": account_id})).await;
    let mut v2 = w.visitor();
    assert_eq!(v2.open(&link2).await, "/connect");
    let authorize = v2.start_oauth(OAUTH_APP, &[]).await;
    let callback2 = v2.at_provider(&authorize, "allow").await;
    let done = v2.get(&callback2).await;
    let landed = query(&location(&done));
    assert_eq!(landed["account_id"], account_id, "reconnected in place");
    assert_eq!(w.accounts_of("user-1").await.len(), 1);
    let d = wait_for_events(&w.site.seen, "account.reconnected", 1).await;
    assert_eq!(body(&d[0])["data"]["account_id"], account_id.as_str());
    assert!(signed(&d[0]));
    // The step now gets the new grant (no cache holds the old one).
    let run = call_with_account(&w, OAUTH_APP, "user-1", "/me").await;
    let me = upstream_body(&run);
    assert_ne!(me["grant"], first_grant, "still the old grant: {run}");

    // Nothing secret in any log line, at debug level, or in the run.
    let mut w = w;
    let log = w.server.stop_and_stderr();
    let mut secrets = w.provider.state.issued();
    secrets.extend([CLIENT_SECRET.to_owned(), secret_token, state]);
    secrets.extend(v.cookies.values().cloned());
    assert_absent(&log, &secrets, "the server's log");
    assert_absent(&run.to_string(), &w.provider.state.issued(), "the run");
    assert!(
        log.contains("connect: account stored"),
        "logs at debug are on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_app_is_connected_through_its_form() {
    let w = World::new(BIN).await;
    let (_, link) = w.link("user-2", json!({"apps": [KEY_APP]})).await;
    let mut v = w.visitor();
    v.open(&link).await;
    let (form, csrf) = v.form(KEY_APP).await;
    assert!(
        form.text
            .contains(r#"type="password" name="credential.api_key""#),
        "{}",
        form.text
    );
    assert!(form.text.contains(r#"autocomplete="off""#));

    // A POST without the CSRF token, or from another origin: refused.
    let action = format!("/connect/apps/{KEY_APP}");
    let r = v
        .post_form(&action, &[("credential.api_key", API_KEY)], None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("csrf_invalid"), "{}", r.text);
    let r = v
        .post_form(
            &action,
            &[("csrf", "forged"), ("credential.api_key", API_KEY)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = v
        .post_form(
            &action,
            &[("csrf", &csrf), ("credential.api_key", API_KEY)],
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("cross_origin"), "{}", r.text);
    // A CSRF token of another session does not pass either.
    let mut other = w.visitor();
    let (_, link_b) = w.link("user-2", json!({"apps": [KEY_APP]})).await;
    other.open(&link_b).await;
    let (_, other_csrf) = other.form(KEY_APP).await;
    let r = v
        .post_form(
            &action,
            &[("csrf", &other_csrf), ("credential.api_key", API_KEY)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(w.accounts_of("user-2").await.is_empty());

    // An empty key: the form again, in words, nothing echoed.
    let r = v.submit(KEY_APP, &[("credential.api_key", "")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("Fill in API key."), "{}", r.text);
    assert!(w.accounts_of("user-2").await.is_empty());

    let r = v.submit(KEY_APP, &[("credential.api_key", API_KEY)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let landed = query(&location(&r));
    let accounts = w.accounts_of("user-2").await;
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["id"], landed["account_id"].as_str());
    assert_eq!(accounts[0]["app"], KEY_APP);

    // A step calls out with it: the key goes where the app says.
    let run = call_with_account(&w, KEY_APP, "user-2", "/whoami").await;
    let seen = w.echo.requests().pop().unwrap();
    assert_eq!(seen["path"], "/whoami");
    let key = seen["headers"]
        .as_array()
        .and_then(|h| {
            h.iter()
                .find(|p| p[0] == "x-api-key")
                .and_then(|p| p[1].as_str().map(str::to_owned))
        })
        .or_else(|| seen["headers"]["x-api-key"].as_str().map(str::to_owned));
    assert_eq!(key.as_deref(), Some(API_KEY), "{seen}");
    // The run echoed it back and logged it: masked everywhere.
    assert!(!run.to_string().contains(API_KEY), "{run}");
    let mut w = w;
    let log = w.server.stop_and_stderr();
    assert_absent(&log, &[API_KEY.to_owned()], "the server's log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_app_asks_for_its_custom_field_and_uses_it_in_every_url() {
    let w = World::new(BIN).await;
    let (_, link) = w
        .link("user-3", json!({"apps": [TENANT_APP, KEY_APP]}))
        .await;
    let mut v = w.visitor();
    v.open(&link).await;
    let (form, _) = v.form(TENANT_APP).await;
    assert!(
        form.text.contains(r#"name="field.tenant""#),
        "{}",
        form.text
    );
    assert!(form.text.contains("Your workspace name"), "{}", form.text);
    // A value off the pattern never reaches the provider.
    for bad in ["", "Acme", "acme.evil.example/x", "a"] {
        let r = v.submit(TENANT_APP, &[("field.tenant", bad)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad:?}: {}", r.text);
        assert!(
            r.text
                .contains("Tenant is missing or not in the expected form"),
            "{}",
            r.text
        );
    }
    assert_eq!(w.provider.state.token_requests(), 0);
    let authorize = v.start_oauth(TENANT_APP, &[("field.tenant", "acme")]).await;
    assert!(
        authorize.starts_with(&w.provider.url("/acme/authorize?")),
        "{authorize}"
    );
    let callback = v.at_provider(&authorize, "allow").await;
    let done = v.get(&callback).await;
    let landed = query(&location(&done));
    assert_eq!(landed["app"], TENANT_APP);
    let accounts = w.accounts_of("user-3").await;
    assert_eq!(accounts.len(), 1);
    assert_eq!(
        accounts[0]["custom_fields"]["tenant"], "acme",
        "{:?}",
        accounts[0]
    );
    // The exchange went to acme's token endpoint (a code is good only
    // there), and the step's calls go to acme's API.
    assert_eq!(w.provider.state.refusals(), Vec::<String>::new());
    let run = call_with_account(&w, TENANT_APP, "user-3", "/me").await;
    assert_eq!(upstream_body(&run)["tenant"], "acme", "{run}");
}

/// Opens `link` and starts the OAuth flow: the visitor and the provider URL.
async fn started(w: &World, link: &str) -> (Visitor, String) {
    let mut v = w.visitor();
    v.open(link).await;
    let authorize = v.start_oauth(OAUTH_APP, &[]).await;
    (v, authorize)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refused_flow_ends_on_the_error_redirect_with_a_code_and_no_account() {
    let w = World::new(BIN).await;
    let user = "user-4";

    // The user declines at the provider: access_denied.
    let (_, link) = w.link(user, json!({})).await;
    let (mut v, authorize) = started(&w, &link).await;
    let back = v.at_provider(&authorize, "deny").await;
    assert!(query(&back).contains_key("error"), "{back}");
    let r = v.get(&back).await;
    assert_eq!(error_code(&location(&r)), "access_denied");
    // Its state is spent: a code for it later is a replay.
    let (mut v, authorize) = started(&w, &link).await;
    let good = v.at_provider(&authorize, "allow").await;
    let state = query(&good)["state"].clone();
    // A wrong binding cookie (the callback in another browser): refused,
    // and the state is gone with it.
    let real = v.cookies["airlock_oauth"].clone();
    v.cookies
        .insert("airlock_oauth".into(), "not-the-binding".into());
    let r = v.get(&good).await;
    assert_eq!(error_code(&location(&r)), "binding_mismatch");
    v.cookies.insert("airlock_oauth".into(), real);
    let r = v.get(&good).await;
    assert_eq!(
        error_code(&location(&r)),
        "state_invalid",
        "a replayed state"
    );
    // A state nobody issued, and none at all.
    let r = v
        .get(&format!("/connect/oauth/callback?code=x&state={state}x"))
        .await;
    assert_eq!(error_code(&location(&r)), "state_invalid");
    let r = w.visitor().get("/connect/oauth/callback?code=x").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("state_invalid"), "{}", r.text);

    // An expired state (older than its 10 minutes).
    let (mut v, authorize) = started(&w, &link).await;
    let back = v.at_provider(&authorize, "allow").await;
    assert!(
        w.execute("UPDATE connect_oauth_states SET expires_at = 0")
            .await
            >= 1
    );
    let r = v.get(&back).await;
    assert_eq!(error_code(&location(&r)), "state_expired");

    // A PKCE mismatch: flow 2's state with the code issued for flow 1's
    // challenge (a code injected into another flow). The provider refuses
    // the verifier; nothing is stored.
    let (mut v, authorize1) = started(&w, &link).await;
    let code1 = query(&v.at_provider(&authorize1, "allow").await)["code"].clone();
    let authorize2 = v.start_oauth(OAUTH_APP, &[]).await;
    let back2 = v.at_provider(&authorize2, "allow").await;
    let state2 = query(&back2)["state"].clone();
    let refusals = w.provider.state.refusals().len();
    let r = v
        .get(&format!(
            "/connect/oauth/callback?code={code1}&state={state2}"
        ))
        .await;
    assert_eq!(error_code(&location(&r)), "exchange_failed");
    assert_eq!(
        w.provider.state.refusals()[refusals..],
        ["invalid_grant".to_owned()],
        "the provider checked the verifier"
    );

    // None of it made an account, and the link is still good.
    assert!(w.accounts_of(user).await.is_empty());
    let d = wait_for_deliveries(&w.site.seen, 1).await;
    assert!(
        d.iter()
            .all(|d| d.event_type == "account.connection_failed"),
        "{d:?}"
    );
    assert_eq!(body(&d[0])["data"]["error"], "access_denied");

    // An expired token: the link and an open session both stop.
    let (token_id, link) = w.link(user, json!({"apps": [KEY_APP]})).await;
    let mut v = w.visitor();
    v.open(&link).await;
    let (_, csrf) = v.form(KEY_APP).await;
    let now = chrono::Utc::now().timestamp();
    let sql = format!(
        "UPDATE connect_tokens SET expires_at = {} WHERE id = '{token_id}'",
        now - 1
    );
    assert_eq!(w.execute(&sql).await, 1);
    let r = w.visitor().get(&link).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text);
    assert!(r.text.contains("This link has expired"), "{}", r.text);
    let r = v
        .post_form(
            &format!("/connect/apps/{KEY_APP}"),
            &[("csrf", &csrf), ("credential.api_key", API_KEY)],
            None,
        )
        .await;
    assert!(
        r.status == StatusCode::GONE || error_code(&location(&r)) == "token_expired",
        "{} {}",
        r.status,
        r.text
    );
    let r = w
        .server
        .call(
            Method::GET,
            &format!("/v1/projects/alpha/connect/tokens/{token_id}"),
            Some(&w.admin),
            None,
        )
        .await;
    assert_eq!(r.json()["status"], "expired", "{}", r.text);
    assert!(w.accounts_of(user).await.is_empty());

    // A link of another project makes its account there, never here.
    let r = w
        .server
        .call(
            Method::POST,
            "/v1/projects/beta/connect/tokens",
            Some(&w.admin),
            Some(json!({"external_user_id": user, "apps": [KEY_APP]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let mut v = w.visitor();
    v.open(r.json()["connect_link_url"].as_str().unwrap()).await;
    let r = v.submit(KEY_APP, &[("credential.api_key", API_KEY)]).await;
    assert_eq!(r.status, StatusCode::OK, "no redirect: a page {}", r.text);
    assert!(r.text.contains("Account connected"), "{}", r.text);
    assert!(w.accounts_of(user).await.is_empty(), "alpha has none");
}

/// Connects an API-key account of user-5 whose webhook goes to `hooks`.
async fn connect_with_hook(w: &World, hooks: &str) -> String {
    let (_, link) = w
        .link("user-5", json!({"apps": [KEY_APP], "webhook_uri": hooks}))
        .await;
    let mut v = w.visitor();
    v.open(&link).await;
    let r = v.submit(KEY_APP, &[("credential.api_key", API_KEY)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    query(&location(&r))["account_id"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_survive_a_receiver_outage_and_restarts_without_duplicates() {
    // The receiver's address is fixed, but nothing listens there yet.
    let addr = operator_site::free_addr();
    let w = World::with_site(BIN, operator_site::start().await).await;
    let hooks = format!("{}/hooks", operator_site::origin(addr));
    let first = connect_with_hook(&w, &hooks).await;
    // Wait for a failed attempt (connection refused) to be recorded.
    let mut tried = false;
    for _ in 0..100 {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(w.database());
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let (attempts,): (i64,) =
            sqlx::query_as("SELECT MAX(attempts) FROM webhook_outbox WHERE lease_owner IS NULL")
                .fetch_one(&pool)
                .await
                .unwrap_or((0,));
        pool.close().await;
        if attempts >= 1 {
            tried = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(tried, "no failed attempt recorded");
    // A restart with the event still queued; then the receiver comes up.
    let (w, _) = w.restart().await;
    let seen = std::sync::Arc::new(Seen::default());
    let receiver = operator_site::start_at(addr, seen.clone()).await;
    let d = wait_for_deliveries(&seen, 1).await;
    assert_eq!(d[0].event_type, "account.connected");
    assert_eq!(body(&d[0])["data"]["account_id"], first.as_str());
    assert!(signed(&d[0]));
    // One more, delivered at once; then a restart sends nothing again.
    let second = connect_with_hook(&w, &hooks).await;
    let d = wait_for_deliveries(&seen, 2).await;
    assert_eq!(body(&d[1])["data"]["account_id"], second.as_str());
    let (w, _) = w.restart().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let d = receiver.deliveries();
    let mut ids: Vec<&str> = d.iter().map(|d| d.event_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2, "each event once: {d:?}");
    assert_eq!(d.len(), 2, "each event once: {d:?}");
    drop(w);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_url_makes_links_and_the_redirect_uri_whatever_the_host_header_says() {
    const PUBLIC: &str = "https://airlock.example.com";
    let w = World::with_args(BIN, operator_site::start().await, &["--public-url", PUBLIC]).await;
    let (_, link) = w.link("user-6", json!({"apps": [OAUTH_APP]})).await;
    let token = link
        .strip_prefix(&format!("{PUBLIC}/connect/"))
        .unwrap_or_else(|| panic!("not under the public URL: {link}"))
        .to_owned();
    // Reached at its listen address with a forged Host: the provider is
    // still told the public callback, and cookies are Secure (https).
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/connect/{token}", w.server.base))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    let page = client
        .get(format!("{}/connect/apps/{OAUTH_APP}", w.server.base))
        .header("host", "evil.example")
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = airlock_tests::connect::hidden(&page, "csrf").expect("a form");
    let r = client
        .post(format!("{}/connect/apps/{OAUTH_APP}", w.server.base))
        .header("host", "evil.example")
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let authorize = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        query(&authorize)["redirect_uri"],
        format!("{PUBLIC}/connect/oauth/callback")
    );
}
