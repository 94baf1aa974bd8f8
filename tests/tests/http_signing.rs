//! Auth the host signs per request, from a secret the step holds only as a
//! handle: AWS Signature V4 against `moto` (a local AWS that checks
//! signatures) and an echo server, HTTP Digest against an RFC 7616 server.
//! Every test scans everything the step emitted and received (its output,
//! which carries the responses it got, its logs and call records) for the
//! key.

use std::sync::Arc;

use airlock_host_api::apps::Catalog;
use airlock_host_api::http::egress::parse_range;
use airlock_host_api::http::pipeline::{AccountSource, HttpConfig, HttpGrants, NoAccounts};
use airlock_host_api::http::ratelimit::Quota;
use airlock_host_api::secrets::{RunSecrets, SecretGrants};
use airlock_runtime::engine::{Engine, EngineConfig, RunFailure, RunOptions, RunReport};
use airlock_runtime::outbound::{self, OutboundConfig};
use airlock_tests::moto::Moto;
use airlock_tests::{component_bytes, fakes, guests, test_cache_dir};
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// An engine whose pipeline may reach loopback (the operator allow-range
/// the other loopback tests use).
fn engine() -> Engine {
    let config = OutboundConfig {
        allow_ranges: vec![parse_range("127.0.0.0/8").unwrap()],
        apps_dir: None,
        http: HttpConfig::default(),
        quota: Quota::DEFAULT,
    };
    let (policy, client) = outbound::policy_and_client(&config).unwrap();
    let catalog = Arc::new(Catalog::from_sources(&[]).unwrap());
    let source: Arc<dyn AccountSource> = Arc::new(NoAccounts);
    let pipeline = outbound::pipeline(&config, policy, client, catalog, source);
    Engine::with_http(
        EngineConfig {
            max_concurrent_runs: 4,
            cache_dir: Some(test_cache_dir()),
            ..EngineConfig::default()
        },
        pipeline,
    )
    .unwrap()
}

fn secrets(pairs: &[(&str, &str)]) -> RunSecrets {
    RunSecrets::new(
        SecretGrants {
            names: pairs.iter().map(|(n, _)| n.to_string()).collect(),
            reveal: Default::default(),
        },
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), Zeroizing::new(v.to_string()))),
    )
}

async fn probe(engine: &Engine, input: Value, secrets: RunSecrets) -> RunReport {
    let step = engine
        .load(component_bytes(guests::HTTP_PROBE))
        .await
        .unwrap();
    let mut options = RunOptions::local("http-probe");
    options.http_grants = HttpGrants {
        apps: Default::default(),
        allowed_hosts: vec!["127.0.0.1".into()],
    };
    options.secrets = secrets;
    engine.run(&step, &input.to_string(), options).await
}

fn output(report: &RunReport) -> Value {
    match &report.outcome {
        Ok(o) => serde_json::from_str(o).unwrap(),
        Err(e) => panic!("the run failed: {e}; logs {:?}", report.logs),
    }
}

fn error_code(report: &RunReport) -> (String, String) {
    match &report.outcome {
        Err(RunFailure::StepError(e)) => (e.code.clone().unwrap(), e.message.clone()),
        other => panic!("expected a failed request, got {other:?}"),
    }
}

/// Nothing the step emitted or received holds `value`.
fn assert_never_seen(report: &RunReport, value: &str) {
    let everything = format!(
        "{:?} {:?} {:?}",
        report.outcome, report.logs, report.http_calls
    );
    assert!(
        !everything.contains(value),
        "the step saw a key: {everything}"
    );
}

fn sigv4(url: String, method: &str, service: &str, key_id: &str) -> Value {
    json!({
        "method": method,
        "url": url,
        "log_response": true,
        "auth": {"sigv4": {"key_id": key_id, "secret": "AWS_SECRET", "region": "us-east-1", "service": service}},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_requests_pass_motos_signature_checks_and_the_key_never_reaches_the_step() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let engine = engine();
    let key_id = moto.access_key_id.clone();
    let secret = moto.secret_access_key.to_string();
    let granted = || secrets(&[("AWS_SECRET", &secret)]);

    // S3: create a bucket, put an object with headers and a body, read it back.
    let report = probe(
        &engine,
        sigv4(moto.url("/airlock-signed"), "PUT", "s3", &key_id),
        granted(),
    )
    .await;
    assert_eq!(output(&report)["status"], 200, "{:?}", output(&report));
    assert_never_seen(&report, &secret);

    let mut put = sigv4(
        moto.url("/airlock-signed/notes/hello.txt"),
        "PUT",
        "s3",
        &key_id,
    );
    put["body"] = json!("hello from a signed step");
    put["headers"] = json!([
        ["content-type", "text/plain"],
        ["x-amz-meta-origin", "airlock"]
    ]);
    let report = probe(&engine, put, granted()).await;
    assert_eq!(output(&report)["status"], 200, "{:?}", output(&report));
    assert_never_seen(&report, &secret);

    let report = probe(
        &engine,
        sigv4(
            moto.url("/airlock-signed/notes/hello.txt"),
            "GET",
            "s3",
            &key_id,
        ),
        granted(),
    )
    .await;
    let out = output(&report);
    assert_eq!(out["status"], 200, "{out:?}");
    assert_eq!(out["body"], "hello from a signed step");
    assert_eq!(out["headers"]["x-amz-meta-origin"], "airlock");
    assert_never_seen(&report, &secret);

    // A signed query string, sent sorted: list the bucket. (Not `notes/`:
    // moto verifies against the decoded query, so an encoded `/` fails
    // there for boto3 too; AWS re-encodes and accepts it.)
    let report = probe(
        &engine,
        sigv4(
            moto.url("/airlock-signed?prefix=notes&list-type=2"),
            "GET",
            "s3",
            &key_id,
        ),
        granted(),
    )
    .await;
    let out = output(&report);
    assert_eq!(out["status"], 200, "{out:?}");
    assert!(
        out["body"]
            .as_str()
            .unwrap()
            .contains("<Key>notes/hello.txt</Key>"),
        "{out:?}"
    );
    assert_never_seen(&report, &secret);

    // A query API (STS), double-encoded path, form body: moto knows who signed.
    let mut sts = sigv4(moto.url("/"), "POST", "sts", &key_id);
    sts["body"] = json!("Action=GetCallerIdentity&Version=2011-06-15");
    sts["headers"] = json!([["content-type", "application/x-www-form-urlencoded"]]);
    let report = probe(&engine, sts, granted()).await;
    let out = output(&report);
    assert_eq!(out["status"], 200, "{out:?}");
    assert!(
        out["body"].as_str().unwrap().contains("user/airlock"),
        "{out:?}"
    );
    assert_never_seen(&report, &secret);

    // The server really checks: a wrong secret key is refused.
    let report = probe(
        &engine,
        sigv4(
            moto.url("/airlock-signed/notes/hello.txt"),
            "GET",
            "s3",
            &key_id,
        ),
        secrets(&[("AWS_SECRET", "not-the-secret-key-0000000000000000000000")]),
    )
    .await;
    let out = output(&report);
    assert_eq!(out["status"], 403, "{out:?}");
    assert!(
        out["body"]
            .as_str()
            .unwrap()
            .contains("SignatureDoesNotMatch"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_signs_the_final_request_and_the_upstream_sees_no_key() {
    let echo = fakes::echo().await;
    let engine = engine();
    const KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const TOKEN: &str = "FwoGZXIvYXdzEXAMPLEsessiontoken0123456789";
    let input = json!({
        "method": "POST",
        "url": echo.url("/prod/items?b=2&a=1"),
        "headers": [["x-custom", "  two   words "]],
        "body": "{\"n\":1}",
        "log_response": true,
        "auth": {"sigv4": {"key_id": "AKIDEXAMPLE", "secret": "AWS_SECRET", "token": "AWS_TOKEN",
                           "region": "eu-west-1", "service": "execute-api"}},
    });
    let report = probe(
        &engine,
        input,
        secrets(&[("AWS_SECRET", KEY), ("AWS_TOKEN", TOKEN)]),
    )
    .await;
    assert_eq!(output(&report)["status"], 200);
    let seen = &echo.requests()[0];
    let auth = seen["headers"]["authorization"].as_str().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        "{auth}"
    );
    assert!(auth.contains("/eu-west-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token;x-custom, Signature="), "{auth}");
    assert_eq!(seen["headers"]["x-amz-security-token"], TOKEN);
    // The key itself went nowhere; the token only in its header.
    assert!(!seen.to_string().contains(KEY), "{seen}");
    assert_never_seen(&report, KEY);
    // The echo of the token came back to the step masked.
    assert_never_seen(&report, TOKEN);
    assert!(
        output(&report)["body"]
            .as_str()
            .unwrap()
            .contains("[REDACTED:")
    );

    // Headers the signer owns, and bad scope fields, are clear errors.
    let mut bad = json!({
        "url": echo.url("/"),
        "headers": [["x-amz-date", "20150830T123600Z"]],
        "auth": {"sigv4": {"key_id": "AKIDEXAMPLE", "secret": "AWS_SECRET", "region": "us-east-1", "service": "s3"}},
    });
    let report = probe(&engine, bad.clone(), secrets(&[("AWS_SECRET", KEY)])).await;
    let (code, message) = error_code(&report);
    assert_eq!(code, "invalid_request");
    assert!(message.contains("x-amz-date"), "{message}");
    bad["headers"] = json!([]);
    bad["auth"]["sigv4"]["region"] = json!("us-east-1\r\nx-evil: 1");
    let report = probe(&engine, bad.clone(), secrets(&[("AWS_SECRET", KEY)])).await;
    let (code, message) = error_code(&report);
    assert_eq!(code, "invalid_request");
    assert!(message.contains("region"), "{message}");
    bad["auth"]["sigv4"]["region"] = json!("us-east-1");
    bad["auth"]["sigv4"]["key_id"] = json!("K".repeat(100_000));
    let report = probe(&engine, bad, secrets(&[("AWS_SECRET", KEY)])).await;
    let (code, message) = error_code(&report);
    assert_eq!(code, "invalid_request");
    assert!(message.contains("access-key-id"), "{message}");
    assert_eq!(echo.requests().len(), 1, "no bad request was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_answers_the_servers_challenge_and_the_password_stays_host_side() {
    const PASSWORD: &str = "Circle of Life 7616";
    let server = fakes::digest("Mufasa", PASSWORD).await;
    let engine = engine();
    for (path, algorithm) in [
        ("/md5/dir/index.html?page=2", "MD5"),
        ("/sha256/dir/index.html", "SHA-256"),
    ] {
        let input = json!({
            "url": server.url(path),
            "log_response": true,
            "auth": {"digest": ["Mufasa", "DIGEST_PW"]},
        });
        let report = probe(&engine, input, secrets(&[("DIGEST_PW", PASSWORD)])).await;
        let out = output(&report);
        assert_eq!(out["status"], 200, "{path}: {out:?}");
        let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, json!({"user": "Mufasa", "algorithm": algorithm}));
        assert_never_seen(&report, PASSWORD);
    }
    // First without credentials, then the answer: two requests per call.
    let seen = server.requests();
    assert_eq!(seen.len(), 4);
    assert!(seen[0]["headers"]["authorization"].is_null());
    assert!(
        seen[1]["headers"]["authorization"]
            .as_str()
            .unwrap()
            .starts_with("Digest username=\"Mufasa\"")
    );
    assert!(!serde_json::to_string(&seen).unwrap().contains(PASSWORD));

    // A wrong password: the server's second 401 is the step's answer.
    let input = json!({"url": server.url("/md5/x"), "auth": {"digest": ["Mufasa", "DIGEST_PW"]}});
    let report = probe(&engine, input, secrets(&[("DIGEST_PW", "wrong")])).await;
    assert_eq!(output(&report)["status"], 401);
    assert_eq!(
        server.requests().len(),
        6,
        "one answer per challenge, no loop"
    );

    // A username the header cannot carry is refused before anything is sent.
    let input = json!({"url": server.url("/md5/x"), "auth": {"digest": ["Mu\"fasa", "DIGEST_PW"]}});
    let report = probe(&engine, input, secrets(&[("DIGEST_PW", PASSWORD)])).await;
    let (code, message) = error_code(&report);
    assert_eq!(code, "invalid_request", "{message}");
    assert!(message.contains("username"), "{message}");
    assert_eq!(server.requests().len(), 6);
}
