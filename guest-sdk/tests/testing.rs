//! The native mock host behaves as documented: grants, reveal, HMAC with
//! the secret's value, canned answers, captured and masked logs, and a
//! clear panic outside a test context.

use airlock_sdk::context::Trigger;
use airlock_sdk::http::HttpError;
use airlock_sdk::secrets::SecretError;
use airlock_sdk::testing::{MockAuth, MockHost, MockResponse};
use airlock_sdk::{Error, context, crypto, http, log, secrets};
use serde::{Deserialize, Serialize};

#[test]
fn secrets_need_a_grant_and_reveal_needs_the_revealable_one() {
    let host = MockHost::new()
        .secret("SIGNING_KEY", "key")
        .revealable_secret("TOKEN", "t0k");
    host.run(|| {
        assert_eq!(secrets::get("NOPE").unwrap_err(), SecretError::NotGranted);
        let key = secrets::get("SIGNING_KEY").unwrap();
        assert_eq!(key.name(), "SIGNING_KEY");
        assert_eq!(key.reveal().unwrap_err(), SecretError::RevealNotGranted);
        assert_eq!(secrets::get("TOKEN").unwrap().reveal().unwrap(), "t0k");
        // RFC 4231 test case 2: key "Jefe".
        let host = MockHost::new().secret("K", "Jefe");
        let mac = host.run(|| {
            crypto::hmac_sha256(&secrets::get("K").unwrap(), "what do ya want for nothing?")
        });
        assert_eq!(
            crypto::to_hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    });
}

#[test]
fn requests_get_canned_answers_and_are_recorded_without_values() {
    let host = MockHost::new()
        .secret("API_KEY", "sk_live_1")
        .account("github", |req| {
            MockResponse::json(200, &serde_json::json!([{"path": req.url}]))
        })
        .url("https://api.example.com/", |req| {
            MockResponse::new(201, req.body.clone()).header("x-id", "7")
        });
    host.run(|| {
        let r = http::get("/user/repos").account("github").send().unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().unwrap();
        assert_eq!(v[0]["path"], "/user/repos");
        let key = secrets::get("API_KEY").unwrap();
        let r = http::post("https://api.example.com/items")
            .bearer(&key)
            .json(&serde_json::json!({"a": 1}))
            .send()
            .unwrap();
        assert_eq!((r.status(), r.header("X-Id")), (201, Some("7")));
        assert!(matches!(
            http::get("https://elsewhere.example/").send(),
            Err(HttpError::Denied(_))
        ));
        assert!(matches!(
            http::get("/x").account("slack").send(),
            Err(HttpError::Denied(_))
        ));
        assert!(matches!(
            http::get("https://api.example.com/")
                .header("Authorization", "Bearer x")
                .send(),
            Err(HttpError::InvalidRequest(_))
        ));
    });
    let requests = host.requests();
    assert_eq!(
        requests.len(),
        4,
        "the refused header never reached a handler"
    );
    assert_eq!(requests[0].account.as_deref(), Some("github"));
    assert_eq!(
        requests[1].auth,
        Some(MockAuth::Bearer {
            secret: "API_KEY".into()
        })
    );
    assert_eq!(requests[1].json()["a"], 1);
    assert!(!format!("{requests:?}").contains("sk_live_1"));
}

#[test]
fn logs_are_captured_and_masked_and_the_context_is_settable() {
    let host = MockHost::new()
        .revealable_secret("TOKEN", "tok_secret_9")
        .context(context::Context {
            run_id: "run_1".into(),
            step: "s".into(),
            project: "p".into(),
            external_user_id: None,
            trigger: Trigger::Api,
        });
    host.run(|| {
        let t = secrets::get("TOKEN").unwrap().reveal().unwrap();
        log::warn(format!("token is {t}"));
        let c = context::get();
        log::info(format!("{} {:?}", c.run_id, c.trigger));
    });
    let logs = host.logs();
    assert_eq!(logs[0].level, "warn");
    assert_eq!(logs[0].message, "token is [REDACTED:TOKEN]");
    assert_eq!(logs[1].message, "run_1 Api");
}

#[derive(Deserialize)]
struct In {
    name: String,
}

#[derive(Serialize)]
struct Out {
    greeting: String,
}

fn greet(input: In) -> Result<Out, Error> {
    if input.name.is_empty() {
        return Err(Error::new("empty").with_code("empty_name"));
    }
    log::info("greeting");
    Ok(Out {
        greeting: format!("Hello, {}!", input.name),
    })
}

#[test]
fn run_json_runs_a_step_function_as_airlock_would() {
    let host = MockHost::new();
    assert_eq!(
        host.run_json(greet, r#"{"name":"Ada"}"#).unwrap(),
        r#"{"greeting":"Hello, Ada!"}"#
    );
    let err = host.run_json(greet, r#"{"name":""}"#).unwrap_err();
    assert!(err.contains("empty_name"), "{err}");
    let err = host.run_json(greet, "{}").unwrap_err();
    assert!(err.contains("invalid_input"), "{err}");
}

#[test]
fn a_host_call_outside_a_test_context_panics_with_a_message() {
    let panic = std::panic::catch_unwind(|| log::info("hi")).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("`log` is a host call"), "{message}");
    assert!(message.contains("MockHost::new().run"), "{message}");
    // The host is uninstalled after `run`, even when its closure panicked.
    let host = MockHost::new();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        host.run(|| panic!("a failing assertion"))
    }));
    assert!(std::panic::catch_unwind(|| secrets::get("X")).is_err());
}

#[test]
fn the_attempt_and_idempotency_key_default_and_are_settable() {
    let first = MockHost::new();
    first.run(|| {
        assert_eq!(context::attempt(), 1);
        assert_eq!(context::idempotency_key(), None);
    });
    let third = MockHost::new().attempt(3).idempotency_key("order-42");
    third.run(|| {
        assert_eq!(context::attempt(), 3);
        assert_eq!(context::idempotency_key().as_deref(), Some("order-42"));
    });
}

#[test]
fn a_retryable_error_says_so_in_its_json() {
    let plain: serde_json::Value =
        serde_json::from_str(&Error::new("no").with_code("bad").to_json()).unwrap();
    assert_eq!(plain, serde_json::json!({"message": "no", "code": "bad"}));
    let temporary = Error::new("upstream busy").retryable();
    assert!(temporary.is_retryable());
    let json: serde_json::Value = serde_json::from_str(&temporary.to_json()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"message": "upstream busy", "retryable": true})
    );
    let later = Error::new("later").retry_after(std::time::Duration::from_secs(2));
    let json: serde_json::Value = serde_json::from_str(&later.to_json()).unwrap();
    assert_eq!(json["retryable"], true);
    assert_eq!(json["retry_after_ms"], 2000);
}
