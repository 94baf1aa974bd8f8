//! Completion callbacks end to end through `airlock serve` (SQLite): a run
//! that names `callback_url` has `run.completed` POSTed once, at its final
//! outcome, signed with the project's webhook secret as Connect's webhooks
//! are, with its output masked; a receiver that fails first gets it from
//! the outbox's retry; a `nostore` run's callback carries no output; and
//! bad callback URLs are refused with a clear 400.
//!
//! Every wait is on a condition with a generous bound, never on a timing.

use airlock_tests::live::{Delivery, Gate, Hooks};
use airlock_tests::serve::{Server, ServerBuilder};
use airlock_tests::{component_bytes, guests};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
const SECRET: &str = "callback-s3cret-value-51d2";
const WEBHOOK_SECRET: &str = "whsec_callbacks_test_5b1e0c";
const MANIFEST: &str = "name = \"wait\"\nsecrets = [\"SECRET\"]\nreveal = [\"SECRET\"]\n\
                        [http]\nallowed_hosts = [\"127.0.0.1\"]\n";

async fn put_secret(s: &Server, admin: &str, name: &str, value: &str) {
    let r = s
        .call(
            Method::PUT,
            &format!("/v1/projects/alpha/secrets/{name}"),
            Some(admin),
            Some(json!({ "value": value })),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
}

/// A server with the step uploaded and SECRET set; the webhook secret only
/// when `signing`.
async fn setup(signing: bool) -> (Server, String) {
    let s = ServerBuilder::new(BIN)
        .args(&["--allow-range", "127.0.0.0/8"])
        .start();
    let admin = s.admin_setup().await;
    put_secret(&s, &admin, "SECRET", SECRET).await;
    if signing {
        put_secret(&s, &admin, "oauth.connect.webhook_secret", WEBHOOK_SECRET).await;
    }
    let r = s
        .upload(
            "alpha",
            "wait",
            &admin,
            &component_bytes(guests::LOG_WAIT),
            Some(MANIFEST),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    (s, admin)
}

async fn post_run(s: &Server, key: &str, body: Value, queued: bool) -> (StatusCode, Value) {
    let mut req = s
        .client
        .post(format!("{}/v1/projects/alpha/steps/wait/runs", s.base))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string());
    if queued {
        req = req.header("prefer", "respond-async");
    }
    let r = s.send(req).await;
    let status = r.status;
    (status, serde_json::from_str(&r.text).unwrap_or(Value::Null))
}

/// Whether `d` verifies with the project's webhook secret, as a receiver
/// checks it (the Stripe scheme: HMAC-SHA256 over `t.body`).
fn verifies(d: &Delivery) -> bool {
    let Some((t, v1)) = d
        .signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
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
    expected == v1
}

fn body(d: &Delivery) -> Value {
    serde_json::from_str(&d.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_run_posts_one_signed_masked_callback_at_its_end() {
    let (s, admin) = setup(true).await;
    let gate = Gate::start().await;
    gate.release();
    let hooks = Hooks::start(0).await;
    let (status, queued) = post_run(
        &s,
        &admin,
        json!({"input": {"url": gate.url()}, "callback_url": hooks.url()}),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let queued_id = queued["id"].as_str().unwrap().to_owned();
    let got = hooks.wait_accepted(1).await;
    let d = &got[0];
    assert!(verifies(d), "{d:?}");
    assert_eq!(d.event_type, "run.completed");
    let b = body(d);
    assert_eq!(b["event"], "run.completed");
    assert_eq!(b["id"], d.event_id.as_str());
    assert_eq!(b["project"], "alpha");
    let run = &b["run"];
    assert_eq!(run["id"], queued_id.as_str());
    assert_eq!(run["step"], "wait");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["attempts"], 1);
    assert!(run["duration_ms"].as_i64().is_some(), "{b}");
    assert_eq!(run["output"]["echo"], "out [REDACTED:SECRET]");
    assert!(!d.body.contains(SECRET), "the secret in a callback");
    // A tampered body does not verify.
    let mut tampered = d.clone();
    tampered.body = d.body.replace("succeeded", "failed");
    assert!(!verifies(&tampered));

    // A synchronous run posts too, once it has answered.
    let (status, sync) = post_run(
        &s,
        &admin,
        json!({"input": {"url": gate.url(), "fail": true}, "callback_url": hooks.url()}),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sync}");
    let got = hooks.wait_accepted(2).await;
    let second = body(&got[1]);
    assert!(verifies(&got[1]));
    assert_eq!(second["run"]["id"], sync["id"]);
    assert_eq!(second["run"]["status"], "failed");
    assert_eq!(second["run"]["error"]["code"], "on_purpose");
    assert_eq!(
        second["run"]["error"]["message"],
        "failed on purpose near [REDACTED:SECRET]"
    );
    assert!(second["run"].get("output").is_none(), "{second}");
    // The same Idempotency-Key with another callback URL is another request.
    for (url, code) in [
        (hooks.url(), StatusCode::OK),
        (
            "https://example.com/other".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let r = s
            .send(
                s.client
                    .post(format!("{}/v1/projects/alpha/steps/wait/runs", s.base))
                    .bearer_auth(&admin)
                    .header("content-type", "application/json")
                    .header("prefer", "respond-async")
                    .header("idempotency-key", "callback-key")
                    .body(json!({"input": {"url": gate.url()}, "callback_url": url}).to_string()),
            )
            .await;
        if code == StatusCode::OK {
            assert!(r.status.is_success(), "{}", r.text);
        } else {
            assert_eq!(r.status, code, "{}", r.text);
        }
    }
    let got = hooks.wait_accepted(3).await;
    assert_eq!(body(&got[2])["run"]["status"], "succeeded");
    // One POST per run: no run was posted again meanwhile.
    let all = hooks.seen.lock().unwrap().clone();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_ne!(all[0].event_id, all[2].event_id);
    assert_ne!(all[0].event_id, all[1].event_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_fails_first_gets_the_callback_on_retry() {
    let (s, admin) = setup(true).await;
    let gate = Gate::start().await;
    gate.release();
    let hooks = Hooks::start(1).await;
    let (status, queued) = post_run(
        &s,
        &admin,
        json!({"input": {"url": gate.url()}, "callback_url": hooks.url()}),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let got = hooks.wait_accepted(1).await;
    let all = hooks.seen.lock().unwrap().clone();
    assert_eq!(all.len(), 2, "one refused, one accepted: {all:?}");
    assert_eq!(all[0].status, 500);
    assert_eq!(all[0].event_id, got[0].event_id, "the same event, retried");
    assert!(verifies(&got[0]));
    assert_eq!(body(&got[0])["run"]["id"], queued["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nostore_runs_callback_carries_no_output() {
    let (s, admin) = setup(true).await;
    let gate = Gate::start().await;
    gate.release();
    let hooks = Hooks::start(0).await;
    for queued in [true, false] {
        let (status, r) = post_run(
            &s,
            &admin,
            json!({"input": {"url": gate.url()}, "callback_url": hooks.url(), "nostore": true}),
            queued,
        )
        .await;
        assert!(status.is_success(), "{r}");
    }
    let got = hooks.wait_accepted(2).await;
    for d in &got {
        let b = body(d);
        assert!(verifies(d));
        assert_eq!(b["run"]["status"], "succeeded", "{b}");
        assert!(b["run"].get("output").is_none(), "{b}");
        assert!(b["run"].get("error").is_none(), "{b}");
        assert!(!d.body.contains("REDACTED") && !d.body.contains(SECRET));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_callback_urls_are_refused() {
    let (s, admin) = setup(false).await;
    let hooks = Hooks::start(0).await;
    let input = json!({"url": "http://127.0.0.1:9/ok"});
    // The project cannot sign yet.
    let (status, r) = post_run(
        &s,
        &admin,
        json!({"input": input, "callback_url": hooks.url()}),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("oauth.connect.webhook_secret"),
        "{r}"
    );
    put_secret(&s, &admin, "oauth.connect.webhook_secret", WEBHOOK_SECRET).await;
    for (url, why) in [
        ("http://hooks.example.com/x", "https://"),
        ("not a url", "absolute URL"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https://10.1.2.3/hook", "callback_url"),
        ("https://169.254.169.254/latest", "callback_url"),
    ] {
        for queued in [true, false] {
            let (status, r) = post_run(
                &s,
                &admin,
                json!({"input": input, "callback_url": url}),
                queued,
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {r}");
            let message = r["error"]["message"].as_str().unwrap();
            assert!(message.contains(why), "{url}: {message}");
        }
    }
    // Nothing was queued or posted.
    let r = s
        .call(Method::GET, "/v1/projects/alpha/runs", Some(&admin), None)
        .await;
    assert_eq!(r.json()["runs"], json!([]), "{}", r.text);
    assert!(hooks.seen.lock().unwrap().is_empty());
}
