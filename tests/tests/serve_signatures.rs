//! Webhook signature schemes of HTTP triggers end to end through `airlock
//! serve` (Twilio, Slack, Shopify and the configurable HMAC): a request
//! signed as the provider documents runs the step; a forged, unsigned or
//! expired one is 401 `bad_signature` naming the header or rule (never a
//! value), and nothing runs. The signatures here are computed with the
//! `hmac` crate as each provider describes, independently of the server's
//! code; the providers' published vectors are checked in the server's unit
//! tests (`server::triggers::signature`).

use airlock_tests::serve::{Reply, Server};
use airlock_tests::{component_bytes, guests};
use base64::Engine as _;
use hmac::Hmac;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
const SECRET: &str = "signing-secret-value-7d2e91";

fn mac<M: hmac::Mac + hmac::digest::KeyInit>(parts: &[&[u8]]) -> Vec<u8> {
    let mut m = <M as hmac::Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A key on `alpha` with step, run and secret scopes, the echo step and the
/// secret `hook`.
async fn setup(s: &Server) -> String {
    let admin = s.admin_setup().await;
    let key = s
        .new_key(
            &admin,
            &["steps:write", "steps:read", "runs:read", "secrets:write"],
            Some("alpha"),
        )
        .await;
    let r = s
        .upload(
            "alpha",
            "echo",
            &key,
            &component_bytes(guests::CONTEXT_ECHO),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = s
        .call(
            Method::PUT,
            "/v1/projects/alpha/secrets/hook",
            Some(&key),
            Some(json!({"value": SECRET})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    key
}

async fn create(s: &Server, key: &str, signature: Value) -> Reply {
    s.call(
        Method::POST,
        "/v1/projects/alpha/steps/echo/triggers",
        Some(key),
        Some(json!({ "signature": signature })),
    )
    .await
}

/// Creates a trigger; returns its URL path.
async fn trigger(s: &Server, key: &str, signature: Value) -> String {
    let r = create(s, key, signature).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(!r.text.contains(SECRET), "{}", r.text);
    r.json()["url"].as_str().unwrap().to_owned()
}

async fn run_count(s: &Server, key: &str) -> usize {
    let r = s
        .call(Method::GET, "/v1/projects/alpha/runs", Some(key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["runs"].as_array().unwrap().len()
}

/// 401 `bad_signature` whose message names `needle`, without the secret.
fn refused(r: &Reply, needle: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let (code, message) = r.error();
    assert_eq!(code, "bad_signature", "{}", r.text);
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
    assert!(!r.text.contains(SECRET), "{}", r.text);
}

#[tokio::test]
async fn twilio_signs_the_full_url_and_sorted_form_parameters() {
    let s = Server::start(BIN, &[]);
    let key = setup(&s).await;
    let url = trigger(
        &s,
        &key,
        json!({"kind": "twilio", "secret": "hook", "base_url": s.base}),
    )
    .await;
    let path = format!("{url}/voice?foo=1&bar=2");
    let body = "To=%2B18005551212&From=%2B14158675309&Digits=1234&CallSid=CA1234567890ABCDE";
    // As Twilio documents: the URL it called, then each POST parameter's
    // name and value, sorted by name.
    let signed = format!(
        "{}{path}CallSidCA1234567890ABCDEDigits1234From+14158675309To+18005551212",
        s.base
    );
    let good = b64(&mac::<Hmac<sha1::Sha1>>(&[signed.as_bytes()]));
    let post = |body: &str, sig: Option<&str>| {
        let mut req = s
            .client
            .post(format!("{}{path}", s.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some(sig) = sig {
            req = req.header("X-Twilio-Signature", sig);
        }
        req
    };
    let r = s.send(post(body, Some(&good))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let input = &r.json()["input"];
    assert_eq!(input["path"], "/voice");
    assert!(
        input["headers"].get("x-twilio-signature").is_none(),
        "{input}"
    );
    assert_eq!(run_count(&s, &key).await, 1);

    let forged = body.replace("Digits=1234", "Digits=9999");
    refused(
        &s.send(post(&forged, Some(&good))).await,
        "x-twilio-signature",
    );
    refused(
        &s.send(post(body, None)).await,
        "no `x-twilio-signature` header",
    );
    assert_eq!(run_count(&s, &key).await, 1, "a refused request ran");

    // The base URL is checked when the trigger is created.
    let r = create(
        &s,
        &key,
        json!({"kind": "twilio", "secret": "hook", "base_url": "ftp://x.example"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.error().1.contains("signature.base_url"), "{}", r.text);
}

#[tokio::test]
async fn slack_signatures_expire_after_five_minutes() {
    let s = Server::start(BIN, &[]);
    let key = setup(&s).await;
    let url = trigger(&s, &key, json!({"kind": "slack", "secret": "hook"})).await;
    let body = r#"{"type":"event_callback","event":{"type":"app_mention"}}"#;
    let sig = |t: i64| {
        format!(
            "v0={}",
            hex(&mac::<Hmac<sha2::Sha256>>(&[
                format!("v0:{t}:").as_bytes(),
                body.as_bytes()
            ]))
        )
    };
    let post = |t: i64, sig: String| {
        s.client
            .post(format!("{}{url}", s.base))
            .header("content-type", "application/json")
            .header("X-Slack-Request-Timestamp", t.to_string())
            .header("X-Slack-Signature", sig)
            .body(body)
    };
    let now = unix_now();
    let r = s.send(post(now, sig(now))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let input = &r.json()["input"];
    assert_eq!(input["json"]["type"], "event_callback");
    assert!(
        input["headers"].get("x-slack-signature").is_none(),
        "{input}"
    );

    // A replay: correctly signed, but older than 5 minutes.
    let old = now - 300 - 30;
    refused(&s.send(post(old, sig(old))).await, "more than 300 s");
    // The timestamp is signed: a fresh one on an old signature fails.
    refused(&s.send(post(now, sig(old))).await, "does not match");
    assert_eq!(run_count(&s, &key).await, 1, "a refused request ran");
}

#[tokio::test]
async fn shopify_signs_the_body_in_base64() {
    let s = Server::start(BIN, &[]);
    let key = setup(&s).await;
    let url = trigger(&s, &key, json!({"kind": "shopify", "secret": "hook"})).await;
    let body = r#"{"id":820982911946154508,"email":"jon@doe.ca"}"#;
    let good = b64(&mac::<Hmac<sha2::Sha256>>(&[body.as_bytes()]));
    let post = |body: &str, sig: &str| {
        s.client
            .post(format!("{}{url}", s.base))
            .header("content-type", "application/json")
            .header("X-Shopify-Topic", "orders/create")
            .header("X-Shopify-Hmac-Sha256", sig)
            .body(body.to_owned())
    };
    let r = s.send(post(body, &good)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.json()["input"]["headers"]["x-shopify-topic"],
        "orders/create"
    );

    refused(
        &s.send(post(&body.replace("jon", "eve"), &good)).await,
        "x-shopify-hmac-sha256",
    );
    // Hex is not Shopify's encoding.
    let hex_sig = hex(&mac::<Hmac<sha2::Sha256>>(&[body.as_bytes()]));
    refused(&s.send(post(body, &hex_sig)).await, "x-shopify-hmac-sha256");
    assert_eq!(run_count(&s, &key).await, 1, "a refused request ran");
}

#[tokio::test]
async fn a_configurable_hmac_signs_a_template_with_a_timestamp() {
    let s = Server::start(BIN, &[]);
    let key = setup(&s).await;
    let url = trigger(
        &s,
        &key,
        json!({"kind": "hmac", "secret": "hook", "algorithm": "sha512",
            "header": "X-Acme-Signature", "encoding": "base64", "prefix": "v1,",
            "signed": "{timestamp}.{body}", "timestamp_header": "X-Acme-Timestamp",
            "tolerance_secs": 120}),
    )
    .await;
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/steps/echo/triggers",
            Some(&key),
            None,
        )
        .await;
    let listed = &r.json()["triggers"][0]["signature"];
    assert_eq!(listed["algorithm"], "sha512", "{listed}");
    assert_eq!(listed["secret"], "hook", "{listed}");

    let body = r#"{"order":42}"#;
    let sig = |t: i64, body: &str| {
        format!(
            "v1,{}",
            b64(&mac::<Hmac<sha2::Sha512>>(&[
                format!("{t}.").as_bytes(),
                body.as_bytes()
            ]))
        )
    };
    let post = |t: i64, sig: String, body: &str| {
        s.client
            .post(format!("{}{url}", s.base))
            .header("X-Acme-Timestamp", t.to_string())
            .header("X-Acme-Signature", sig)
            .body(body.to_owned())
    };
    let now = unix_now();
    let r = s.send(post(now, sig(now, body), body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["input"]["json"]["order"], 42);

    let old = now - 200;
    refused(
        &s.send(post(old, sig(old, body), body)).await,
        "more than 120 s",
    );
    refused(
        &s.send(post(now, sig(now, body), r#"{"order":43}"#)).await,
        "x-acme-signature",
    );
    assert_eq!(run_count(&s, &key).await, 1, "a refused request ran");

    // Settings that would not protect anything are refused up front.
    for (signature, field) in [
        (
            json!({"kind": "hmac", "secret": "hook", "header": "X-S",
                "signed": "{ts}.{body}"}),
            "signature.signed",
        ),
        (
            json!({"kind": "hmac", "secret": "hook", "header": "X-S",
                "timestamp_header": "X-T"}),
            "signature.signed",
        ),
        (
            json!({"kind": "hmac", "secret": "hook", "header": "Cookie"}),
            "signature.header",
        ),
    ] {
        let r = create(&s, &key, signature).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.error().1.contains(field), "{field}: {}", r.text);
    }
    let r = create(
        &s,
        &key,
        json!({"kind": "hmac", "secret": "hook", "header": "X-S", "algorithm": "md5"}),
    )
    .await;
    assert!(r.status.is_client_error(), "{}", r.text);
}

/// `airlock triggers create` makes each new scheme; Twilio needs its URL.
#[tokio::test]
async fn the_cli_creates_triggers_with_the_new_schemes() {
    let s = Server::start(BIN, &[]);
    let key = setup(&s).await;
    let cli = |args: &[&str]| {
        s.command()
            .args([
                "triggers",
                "--server",
                &s.base,
                "--project",
                "alpha",
                "--json",
            ])
            .env("AIRLOCK_API_KEY", &key)
            .args(["create", "echo"])
            .args(args)
            .output()
            .unwrap()
    };
    for (args, kind) in [
        (vec!["--signature", "slack", "--secret", "hook"], "slack"),
        (
            vec!["--signature", "shopify", "--secret", "hook"],
            "shopify",
        ),
        (
            vec![
                "--signature",
                "twilio",
                "--secret",
                "hook",
                "--base-url",
                "https://hooks.example.com",
            ],
            "twilio",
        ),
        (
            vec![
                "--signature",
                "hmac",
                "--secret",
                "hook",
                "--header",
                "X-Sig",
                "--algorithm",
                "sha1",
                "--encoding",
                "base64",
            ],
            "hmac",
        ),
    ] {
        let out = cli(&args);
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(shown["signature"]["kind"], kind, "{shown}");
        assert!(shown["full_url"].as_str().unwrap().starts_with(&s.base));
    }
    let out = cli(&["--signature", "twilio", "--secret", "hook"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--base-url"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
