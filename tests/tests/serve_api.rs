//! `airlock serve` end to end: the real binary on 127.0.0.1 port 0, a real
//! SQLite database in a tempdir, real HTTP through reqwest.

use std::path::Path;
use std::time::Duration;

use airlock_tests::serve::{Reply, Server, assert_timestamps, command, timestamp};
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");
const SECRET_VALUE: &str = "sk_live_Zq8mW7RtxU9LpVb3NcE2hJ-plaintext-marker";

/// A matrix row: name, credential, request (method, path, body), expected status.
type MatrixCase<'a> = (
    &'a str,
    Option<&'a str>,
    (Method, String, Option<Value>),
    StatusCode,
);

#[test]
fn serve_refuses_to_start_without_a_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(BIN, dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("airlock keygen"), "{stderr}");
}

#[tokio::test]
async fn serve_refuses_a_master_key_that_does_not_match_the_store() {
    let mut s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let r = s
        .call(
            Method::PUT,
            "/v1/projects/alpha/secrets/X",
            Some(&admin),
            Some(json!({"value": SECRET_VALUE})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    s.terminate();
    let other_key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let out = command(BIN, &s.data_dir())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("AIRLOCK_MASTER_KEY", other_key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("master key"), "{stderr}");
}

#[tokio::test]
async fn healthz_readyz_and_graceful_shutdown() {
    let mut s = Server::start(BIN, &[]);
    for path in ["/healthz", "/readyz"] {
        let r = s.call(Method::GET, path, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.json()["status"], "ok");
    }
    let r = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.json()["database"], "sqlite", "{}", r.text);
    let status = s.terminate();
    assert_eq!(status.code(), Some(0), "SIGTERM stops the server cleanly");
}

#[tokio::test]
async fn scope_and_project_matrix() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let (_, alpha_secrets) = s
        .new_key_with_id(&admin, &["secrets:write"], Some("alpha"))
        .await;
    let (_, alpha_steps) = s
        .new_key_with_id(&admin, &["steps:read"], Some("alpha"))
        .await;
    let (_, global_secrets) = s.new_key_with_id(&admin, &["secrets:write"], None).await;
    let (_, alpha_admin) = s.new_key_with_id(&admin, &["admin"], Some("alpha")).await;
    let (client_id, client_secret) = s
        .new_client(&admin, &["secrets:write"], Some("alpha"))
        .await;
    let tok = s
        .token_json(json!({"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}))
        .await;
    assert_eq!(tok.status, StatusCode::OK, "{}", tok.text);
    let alpha_token = tok.json()["access_token"].as_str().unwrap().to_owned();
    let bad_secret = format!("{}x", &alpha_secrets[..alpha_secrets.len() - 1]);

    let put = |p: &str| {
        (
            Method::PUT,
            format!("/v1/projects/{p}/secrets/API_TOKEN"),
            Some(json!({"value": SECRET_VALUE})),
        )
    };
    let list = |p: &str| (Method::GET, format!("/v1/projects/{p}/secrets"), None);
    let proj = |p: &str| (Method::GET, format!("/v1/projects/{p}"), None);
    let cases: Vec<MatrixCase> = vec![
        ("no token", None, list("alpha"), StatusCode::UNAUTHORIZED),
        (
            "garbage token",
            Some("nonsense"),
            list("alpha"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong key secret",
            Some(&bad_secret),
            list("alpha"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "unknown token",
            Some("at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            list("alpha"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "alpha secrets put alpha",
            Some(&alpha_secrets),
            put("alpha"),
            StatusCode::CREATED,
        ),
        (
            "alpha secrets list alpha",
            Some(&alpha_secrets),
            list("alpha"),
            StatusCode::OK,
        ),
        (
            "alpha secrets put beta",
            Some(&alpha_secrets),
            put("beta"),
            StatusCode::NOT_FOUND,
        ),
        (
            "alpha secrets list beta",
            Some(&alpha_secrets),
            list("beta"),
            StatusCode::NOT_FOUND,
        ),
        (
            "alpha secrets list missing",
            Some(&alpha_secrets),
            list("gamma"),
            StatusCode::NOT_FOUND,
        ),
        (
            "alpha secrets get beta",
            Some(&alpha_secrets),
            proj("beta"),
            StatusCode::NOT_FOUND,
        ),
        (
            "alpha secrets get alpha",
            Some(&alpha_secrets),
            proj("alpha"),
            StatusCode::OK,
        ),
        (
            "alpha steps put alpha",
            Some(&alpha_steps),
            put("alpha"),
            StatusCode::FORBIDDEN,
        ),
        (
            "alpha steps list alpha",
            Some(&alpha_steps),
            list("alpha"),
            StatusCode::FORBIDDEN,
        ),
        (
            "global secrets put beta",
            Some(&global_secrets),
            put("beta"),
            StatusCode::CREATED,
        ),
        (
            "global secrets list missing",
            Some(&global_secrets),
            list("gamma"),
            StatusCode::NOT_FOUND,
        ),
        (
            "alpha token list alpha",
            Some(&alpha_token),
            list("alpha"),
            StatusCode::OK,
        ),
        (
            "alpha token list beta",
            Some(&alpha_token),
            list("beta"),
            StatusCode::NOT_FOUND,
        ),
        (
            "alpha secrets create project",
            Some(&alpha_secrets),
            (
                Method::POST,
                "/v1/projects".into(),
                Some(json!({"name": "delta"})),
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "alpha admin create project",
            Some(&alpha_admin),
            (
                Method::POST,
                "/v1/projects".into(),
                Some(json!({"name": "delta"})),
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "alpha admin key for beta",
            Some(&alpha_admin),
            (
                Method::POST,
                "/v1/keys".into(),
                Some(json!({"name": "x", "scopes": ["proxy"], "project": "beta"})),
            ),
            StatusCode::NOT_FOUND,
        ),
        (
            "alpha admin key for alpha",
            Some(&alpha_admin),
            (
                Method::POST,
                "/v1/keys".into(),
                Some(json!({"name": "x", "scopes": ["proxy"]})),
            ),
            StatusCode::CREATED,
        ),
        (
            "alpha admin audit",
            Some(&alpha_admin),
            (Method::GET, "/v1/audit".into(), None),
            StatusCode::FORBIDDEN,
        ),
        (
            "alpha steps list keys",
            Some(&alpha_steps),
            (Method::GET, "/v1/keys".into(), None),
            StatusCode::FORBIDDEN,
        ),
        (
            "admin list keys",
            Some(&admin),
            (Method::GET, "/v1/keys".into(), None),
            StatusCode::OK,
        ),
    ];
    for (name, token, (method, path, body), want) in cases {
        let r = s.call(method, &path, token, body).await;
        assert_eq!(r.status, want, "case `{name}`: {}", r.text);
        if !r.status.is_success() {
            r.assert_error_shape();
        }
    }

    // A restricted key lists only its own project.
    let r = s
        .call(Method::GET, "/v1/projects", Some(&alpha_secrets), None)
        .await;
    assert_eq!(
        r.json()["projects"].as_array().unwrap().len(),
        1,
        "{}",
        r.text
    );
    assert!(!r.text.contains("beta"));
    let r = s
        .call(Method::GET, "/v1/projects", Some(&admin), None)
        .await;
    assert_eq!(
        r.json()["projects"].as_array().unwrap().len(),
        2,
        "{}",
        r.text
    );
    // A restricted admin sees only its project's keys.
    let r = s
        .call(Method::GET, "/v1/keys", Some(&alpha_admin), None)
        .await;
    let keys = r.json()["keys"].as_array().unwrap().clone();
    assert!(keys.iter().all(|k| k["project"] == "alpha"), "{}", r.text);
}

#[tokio::test]
async fn create_key_works_without_a_server_and_no_cache_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(BIN, &dir.path().join("data"))
        .args([
            "admin",
            "create-key",
            "--scope",
            "secrets:write",
            "--project",
            "alpha",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("ak_"), "only the key on stdout: {key}");
    let s = Server::start_in(BIN, dir, &[]);
    let r = s
        .call(Method::GET, "/v1/projects/alpha/secrets", Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers["cache-control"], "no-store");
    let r = s
        .call(Method::GET, "/v1/projects/beta/secrets", Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

#[tokio::test]
async fn revoked_key_is_refused_on_the_next_request() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let (id, key) = s
        .new_key_with_id(&admin, &["secrets:write"], Some("alpha"))
        .await;
    let path = "/v1/projects/alpha/secrets";
    assert_eq!(
        s.call(Method::GET, path, Some(&key), None).await.status,
        StatusCode::OK
    );
    let listed = s.call(Method::GET, "/v1/keys", Some(&admin), None).await;
    assert!(listed.text.contains(&id) && !listed.text.contains(&key));
    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/keys/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = s.call(Method::GET, path, Some(&key), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    r.assert_error_shape();
    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/keys/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// The last unrestricted admin credential (key or client) cannot be revoked
/// over the API, by itself or another: that would leave the server with no
/// way to manage it but a shell on its machine.
#[tokio::test]
async fn the_last_unrestricted_admin_credential_cannot_be_revoked() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let keys = s.call(Method::GET, "/v1/keys", Some(&admin), None).await;
    let admin_id = keys.json()["keys"][0]["id"].as_str().unwrap().to_owned();
    let delete = |path: String, token: String| {
        let s = &s;
        async move { s.call(Method::DELETE, &path, Some(&token), None).await }
    };
    // A restricted admin and a non-admin key are no way in.
    let (alpha_admin_id, alpha_admin) = s.new_key_with_id(&admin, &["admin"], Some("alpha")).await;
    let _reader = s.new_key(&admin, &["runs:read", "steps:read"], None).await;
    let r = delete(format!("/v1/keys/{admin_id}"), admin.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let (code, message) = r.error();
    assert_eq!(code, "last_admin");
    assert!(message.contains("airlock admin create-key"), "{message}");
    assert!(message.contains("POST /v1/keys"), "{message}");
    // The restricted admin cannot see it at all.
    let r = delete(format!("/v1/keys/{admin_id}"), alpha_admin.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    // Restricted admins may go, even by themselves.
    let r = delete(format!("/v1/keys/{alpha_admin_id}"), alpha_admin).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        s.call(Method::GET, "/v1/keys", Some(&admin), None)
            .await
            .status,
        StatusCode::OK,
        "refused, so still working"
    );

    // With an admin client as well, the key may revoke itself...
    let (client_id, client_secret) = s.new_client(&admin, &["admin"], None).await;
    let r = delete(format!("/v1/keys/{admin_id}"), admin.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = s.call(Method::GET, "/v1/keys", Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    // ...and now the client is the last one: it may not delete itself.
    let r = s.token_form(&client_id, &client_secret).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let r = delete(format!("/v1/oauth/clients/{client_id}"), token.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.error().0, "last_admin");
    let r = s
        .call(Method::GET, "/v1/oauth/clients", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn rotated_or_deleted_client_kills_old_secret_and_tokens() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let (id, old_secret) = s
        .new_client(&admin, &["secrets:write"], Some("alpha"))
        .await;
    let grant = |secret: &str| json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret});
    let r = s.token_json(grant(&old_secret)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let old_token = r.json()["access_token"].as_str().unwrap().to_owned();
    let path = "/v1/projects/alpha/secrets";
    assert_eq!(
        s.call(Method::GET, path, Some(&old_token), None)
            .await
            .status,
        StatusCode::OK
    );

    let r = s
        .call(
            Method::POST,
            &format!("/v1/oauth/clients/{id}/rotate-secret"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let new_secret = r.json()["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);

    let r = s.token_json(grant(&old_secret)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(r.assert_oauth_error(), "invalid_client");
    assert_eq!(
        s.call(Method::GET, path, Some(&old_token), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    let r = s.token_json(grant(&new_secret)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let new_token = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.call(Method::GET, path, Some(&new_token), None)
            .await
            .status,
        StatusCode::OK
    );

    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/oauth/clients/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        s.call(Method::GET, path, Some(&new_token), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.token_json(grant(&new_secret)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn expired_token_is_refused() {
    let s = Server::start(BIN, &["--token-ttl-secs", "1"]);
    let admin = s.admin_setup().await;
    let (id, secret) = s
        .new_client(&admin, &["secrets:write"], Some("alpha"))
        .await;
    let r = s
        .token_json(
            json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        )
        .await;
    assert_eq!(r.json()["expires_in"], 1);
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/secrets",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let audit = s.call(Method::GET, "/v1/audit", Some(&admin), None).await;
    assert!(
        audit.text.contains("expired access token"),
        "{}",
        audit.text
    );
}

#[tokio::test]
async fn token_endpoint_accepts_form_json_and_basic() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let (id, secret) = s
        .new_client(&admin, &["secrets:write", "steps:read"], None)
        .await;
    let url = format!("{}/v1/oauth/token", s.base);

    let form = format!(
        "grant_type=client_credentials&client_id={id}&client_secret={}&scope=steps%3Aread",
        secret.replace('-', "%2D")
    );
    let r = s
        .send(
            s.client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "form: {}", r.text);
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["scope"], "steps:read");
    // The narrowed token lacks secrets:write.
    let narrowed = v["access_token"].as_str().unwrap().to_owned();
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/secrets",
            Some(&narrowed),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = s
        .token_json(
            json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "json: {}", r.text);
    assert_eq!(r.json()["scope"], "secrets:write steps:read");

    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let r = s
        .send(
            s.client
                .post(&url)
                .header("authorization", format!("Basic {basic}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "basic: {}", r.text);

    // Errors are RFC 6749 §5.2 objects: wider than allowed, an unknown
    // scope, wrong grant type, none, wrong secret.
    for (scope, grant, want, code) in [
        (Some("admin"), "client_credentials", 400, "invalid_scope"),
        (Some("root"), "client_credentials", 400, "invalid_scope"),
        (None, "password", 400, "unsupported_grant_type"),
        (None, "", 400, "invalid_request"),
    ] {
        let mut body = json!({"client_id": id, "client_secret": secret});
        if !grant.is_empty() {
            body["grant_type"] = json!(grant);
        }
        if let Some(scope) = scope {
            body["scope"] = json!(scope);
        }
        let r = s.token_json(body).await;
        assert_eq!(r.status.as_u16(), want, "{scope:?} {grant}: {}", r.text);
        assert_eq!(r.assert_oauth_error(), code, "{scope:?} {grant}");
    }
    let r = s
        .token_json(
            json!({"grant_type": "client_credentials", "client_id": id, "client_secret": "nope"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.assert_oauth_error(), "invalid_client");
    assert!(!r.text.contains(&secret));
    // A failed Basic authentication names the Basic scheme (RFC 6749 §5.2).
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{id}:nope"));
    let r = s
        .send(
            s.client
                .post(&url)
                .header("authorization", format!("Basic {wrong}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(r.assert_oauth_error(), "invalid_client");
    assert_eq!(r.headers["www-authenticate"], "Basic realm=\"airlock\"");
    // One client authentication method per request; one value per parameter.
    let r = s
        .send(
            s.client
                .post(&url)
                .header("authorization", format!("Basic {basic}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "grant_type=client_credentials&client_secret={secret}"
                )),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.assert_oauth_error(), "invalid_request");
    let r = s
        .send(
            s.client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "grant_type=client_credentials&client_id={id}&client_secret={secret}&scope=steps%3Aread&scope=secrets%3Awrite"
                )),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.assert_oauth_error(), "invalid_request");
    // Other methods and content types: still RFC errors.
    let r = s.send(s.client.get(&url)).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.text);
    assert_eq!(r.assert_oauth_error(), "invalid_request");
    let r = s
        .send(
            s.client
                .post(&url)
                .header("content-type", "text/plain")
                .body("x"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.assert_oauth_error(), "invalid_request");
}

/// `admin` implies every other scope on the token endpoint as on every
/// route: an admin client gets a token narrowed to what it asks for.
#[tokio::test]
async fn an_admin_client_may_ask_for_any_narrower_scope() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let (id, secret) = s.new_client(&admin, &["admin"], None).await;
    let r = s
        .token_json(json!({"grant_type": "client_credentials", "client_id": id,
            "client_secret": secret, "scope": "runs:read secrets:write"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["scope"], "runs:read secrets:write");
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    // The token holds what it asked for, and nothing more.
    let r = s
        .call(Method::GET, "/v1/projects/alpha/runs", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = s.call(Method::GET, "/v1/keys", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // Asking for nothing gives the client's own scopes.
    let r = s
        .token_json(json!({"grant_type": "client_credentials", "client_id": id,
            "client_secret": secret}))
        .await;
    assert_eq!(r.json()["scope"], "admin");
}

/// POSTs headers announcing a 2 MiB JSON body, sends none of it and reads the reply.
fn raw_too_large(base: &str, path: &str, auth: Option<&str>) -> Reply {
    use std::io::{Read as _, Write as _};
    let addr = base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = auth
        .map(|a| format!("authorization: Bearer {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{auth}\
         content-length: {}\r\nconnection: close\r\n\r\n",
        2 * 1024 * 1024
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response");
    let mut lines = head.lines();
    let code: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(
                reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                v.trim().parse().unwrap(),
            );
        }
    }
    Reply {
        status: StatusCode::from_u16(code).unwrap(),
        headers,
        text: body.to_owned(),
    }
}

/// POSTs a chunked body a little over 1 MiB, all of it, and reads the reply.
fn raw_chunked_too_large(base: &str, path: &str, bearer: &str) -> Reply {
    use std::io::{Read as _, Write as _};
    let addr = base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {bearer}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..17 {
        let _ = write!(stream, "{:x}\r\n", chunk.len());
        let _ = stream.write_all(&chunk);
        let _ = stream.write_all(b"\r\n");
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_raw_reply(&String::from_utf8_lossy(&raw))
}

fn parse_raw_reply(raw: &str) -> Reply {
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response");
    let mut lines = head.lines();
    let code: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(
                reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                v.trim().parse().unwrap(),
            );
        }
    }
    // A chunked answer: the JSON is the one chunk's data.
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked")
    {
        body.split("\r\n").nth(1).unwrap_or("").to_owned()
    } else {
        body.to_owned()
    };
    Reply {
        status: StatusCode::from_u16(code).unwrap(),
        headers,
        text: body,
    }
}

fn assert_no_leak(r: &Reply, needles: &[&str]) {
    for n in needles {
        assert!(!r.text.contains(n), "body leaks a secret: {}", r.text);
        for (name, value) in &r.headers {
            assert!(
                !value.as_bytes().windows(n.len()).any(|w| w == n.as_bytes()),
                "header {name} leaks"
            );
        }
    }
}

#[tokio::test]
async fn secrets_round_trip_never_reveals_values() {
    let mut s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let (_, key) = s
        .new_key_with_id(&admin, &["secrets:write"], Some("alpha"))
        .await;
    let (_, client_secret) = s
        .new_client(&admin, &["secrets:write"], Some("alpha"))
        .await;
    let path = "/v1/projects/alpha/secrets/API_TOKEN";
    let mut replies = Vec::new();

    let r = s
        .call(
            Method::PUT,
            path,
            Some(&key),
            Some(json!({"value": SECRET_VALUE})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    replies.push(r);
    let r = s
        .call(
            Method::PUT,
            path,
            Some(&key),
            Some(json!({"value": format!("{SECRET_VALUE}-2")})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["outcome"], "updated");
    replies.push(r);
    let r = s
        .call(Method::GET, "/v1/projects/alpha/secrets", Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["secrets"][0]["name"], "API_TOKEN");
    timestamp(&v["secrets"][0]["created_at"]);
    replies.push(r);
    let r = s
        .call(
            Method::PUT,
            "/v1/projects/alpha/secrets/OTHER",
            Some(&key),
            Some(json!({"value": SECRET_VALUE})),
        )
        .await;
    replies.push(r);
    let r = s
        .call(
            Method::PUT,
            "/v1/projects/alpha/secrets/bad%20name",
            Some(&key),
            Some(json!({"value": SECRET_VALUE})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    r.assert_error_shape();
    replies.push(r);
    let r = s.call(Method::DELETE, path, Some(&key), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    replies.push(r);
    let r = s.call(Method::DELETE, path, Some(&key), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    r.assert_error_shape();
    replies.push(r);
    for r in &replies {
        assert_no_leak(r, &[SECRET_VALUE]);
    }

    // Stop the server, then scan every file of the database.
    s.terminate();
    let key_secret = key.rsplit_once('_').unwrap().1.to_owned();
    let mut scanned = 0;
    // Every file under the data directory (the compile cache included).
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
    for path in files {
        let bytes = std::fs::read(path).unwrap();
        scanned += 1;
        for needle in [
            SECRET_VALUE,
            key.as_str(),
            key_secret.as_str(),
            client_secret.as_str(),
            "plaintext-marker",
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "plaintext on disk"
            );
        }
    }
    assert!(scanned >= 1);
}

#[tokio::test]
async fn audit_log_records_failures_without_the_secret() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let (id, key) = s
        .new_key_with_id(&admin, &["secrets:write"], Some("alpha"))
        .await;
    let wrong = format!("ak_{id}_{}", "W".repeat(43));
    let r = s
        .call(
            Method::GET,
            "/v1/projects/alpha/secrets",
            Some(&wrong),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = s.call(Method::GET, "/v1/projects", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (cid, _) = s.new_client(&admin, &["proxy"], None).await;
    let bad_client_secret = "Q".repeat(43);
    let r = s
        .token_json(json!({"grant_type": "client_credentials", "client_id": cid, "client_secret": bad_client_secret}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let audit = s.call(Method::GET, "/v1/audit", Some(&admin), None).await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text);
    let entries = audit.json()["entries"].as_array().unwrap().clone();
    assert!(
        entries.iter().any(|e| e["key_id"] == id.as_str()
            && e["route"] == "/v1/projects/alpha/secrets"
            && e["reason"] == "wrong API key secret"
            && e["at"].is_string()),
        "{}",
        audit.text
    );
    assert!(
        entries
            .iter()
            .any(|e| e["route"] == "/v1/projects" && e["reason"] == "missing Authorization header")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["key_id"] == cid.as_str() && e["route"] == "/v1/oauth/token")
    );
    for needle in [&wrong[20..], &bad_client_secret, &key[20..]] {
        assert!(!audit.text.contains(needle), "audit leaks a secret");
    }
    // Not for non-admins.
    let r = s.call(Method::GET, "/v1/audit", Some(&key), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn every_error_has_the_json_shape() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let url = |p: &str| format!("{}{p}", s.base);
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode)> = vec![
        (
            "bad json",
            s.client
                .post(url("/v1/projects"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body("{nope"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "missing field",
            s.client
                .post(url("/v1/projects"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body("{}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong content type",
            s.client
                .post(url("/v1/projects"))
                .bearer_auth(&admin)
                .header("content-type", "text/plain")
                .body("{\"name\":\"x\"}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "invalid name",
            s.client
                .post(url("/v1/projects"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body("{\"name\":\"1bad\"}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "duplicate",
            s.client
                .post(url("/v1/projects"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body("{\"name\":\"alpha\"}"),
            StatusCode::CONFLICT,
        ),
        (
            "unknown scope",
            s.client
                .post(url("/v1/keys"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body("{\"name\":\"k\",\"scopes\":[\"root\"]}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown route",
            s.client.get(url("/v1/nothing")).bearer_auth(&admin),
            StatusCode::NOT_FOUND,
        ),
        (
            "wrong method",
            s.client.patch(url("/v1/projects")).bearer_auth(&admin),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "no project",
            s.client.get(url("/v1/projects/gamma")).bearer_auth(&admin),
            StatusCode::NOT_FOUND,
        ),
        (
            "unauthorized",
            s.client.get(url("/v1/keys")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "upload not multipart",
            s.client
                .put(url("/v1/projects/alpha/steps/x"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body("{}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ];
    for (name, req, want) in cases {
        let r = s.send(req).await;
        assert_eq!(r.status, want, "case `{name}`: {}", r.text);
        r.assert_error_shape();
    }
    // The token endpoint's errors are RFC 6749 §5.2 objects instead.
    for (name, req) in [
        (
            "token form junk",
            s.client
                .post(url("/v1/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("x=y"),
        ),
        (
            "token bad json",
            s.client
                .post(url("/v1/oauth/token"))
                .header("content-type", "application/json")
                .body("{"),
        ),
    ] {
        let r = s.send(req).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "case `{name}`: {}",
            r.text
        );
        assert_eq!(r.assert_oauth_error(), "invalid_request", "case `{name}`");
    }
    // Too large: announced by Content-Length and refused before the body is
    // read (over a raw socket: a client still sending would see a reset).
    for (path, auth) in [
        ("/v1/projects", Some(admin.as_str())),
        ("/v1/oauth/token", None),
    ] {
        let r = raw_too_large(&s.base, path, auth);
        assert_eq!(
            r.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{path}: {}",
            r.text
        );
        if path == "/v1/oauth/token" {
            assert_eq!(r.assert_oauth_error(), "invalid_request");
        } else {
            r.assert_error_shape();
        }
    }
    // A chunked body (no Content-Length) over the limit is cut as it is
    // read, with the same answer, the proxy's included.
    let r = raw_chunked_too_large(
        &s.base,
        "/v1/projects/alpha/proxy/L3g?external_user_id=u&account_id=acc_0123456789abcdef",
        &admin,
    );
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(r.assert_error_shape(), "payload_too_large");
    // The missing field is named.
    let r = s
        .call(Method::POST, "/v1/projects", Some(&admin), Some(json!({})))
        .await;
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("name"),
        "{}",
        r.text
    );
}

/// Every timestamp of every answer is RFC 3339 UTC with milliseconds: the
/// stores keep seconds (most tables) and milliseconds (runs), and a unit
/// mix-up would put one of them 1000 times off; all land in this test's span.
#[tokio::test]
async fn every_timestamp_in_a_response_is_rfc3339_utc_with_milliseconds() {
    let s = Server::start(BIN, &[]);
    let started = chrono::Utc::now() - chrono::Duration::seconds(2);
    let admin = s.admin_setup().await;
    let r = s
        .upload(
            "alpha",
            "hello",
            &admin,
            &airlock_tests::component_bytes(airlock_tests::examples::HELLO),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let run = s
        .run(&admin, "alpha", "hello", json!({"name": "Ada"}))
        .await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    let run_id = run.json()["id"].as_str().unwrap().to_owned();
    let created = |path: &'static str, body: Value| {
        let (s, admin) = (&s, &admin);
        async move {
            let r = s.call(Method::POST, path, Some(admin), Some(body)).await;
            assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.text);
            r
        }
    };
    let trigger = created("/v1/projects/alpha/steps/hello/triggers", json!({})).await;
    let key = created("/v1/keys", json!({"name": "k", "scopes": ["proxy"]})).await;
    let client = created(
        "/v1/oauth/clients",
        json!({"name": "c", "scopes": ["proxy"]}),
    )
    .await;
    let account = created(
        "/v1/projects/alpha/accounts",
        json!({"app": "github", "external_user_id": "u1",
            "credentials": {"access_token": "t", "expires_at": 1_900_000_000}}),
    )
    .await;
    assert_eq!(account.json()["expires_at"], "2030-03-17T17:46:40.000Z");
    let r = s
        .call(
            Method::PUT,
            "/v1/projects/alpha/secrets/TOKEN",
            Some(&admin),
            Some(json!({"value": "v"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // One failed authentication for the audit log.
    s.call(
        Method::GET,
        "/v1/projects",
        Some("ak_0123456789abcdef_x"),
        None,
    )
    .await;

    let mut answers = vec![
        ("trigger", trigger),
        ("key", key),
        ("client", client),
        ("account", account),
    ];
    for path in [
        "/v1/projects",
        "/v1/projects/alpha",
        "/v1/keys",
        "/v1/oauth/clients",
        "/v1/audit",
        "/v1/projects/alpha/secrets",
        "/v1/projects/alpha/steps",
        "/v1/projects/alpha/steps/hello",
        "/v1/projects/alpha/steps/hello/triggers",
        "/v1/projects/alpha/runs",
        "/v1/projects/alpha/accounts",
    ] {
        let r = s.call(Method::GET, path, Some(&admin), None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        answers.push((path, r));
    }
    let r = s
        .call(
            Method::GET,
            &format!("/v1/projects/alpha/runs/{run_id}"),
            Some(&admin),
            None,
        )
        .await;
    answers.push(("run", r));
    let finished = chrono::Utc::now() + chrono::Duration::seconds(2);
    for (what, r) in &answers {
        let v = r.json();
        assert!(assert_timestamps(&v, what) > 0, "{what}: no timestamp: {v}");
        let mut created_now = Vec::new();
        collect_created(&v, &mut created_now);
        for at in created_now {
            let at = timestamp(&at);
            assert!(started <= at && at <= finished, "{what}: {at} is not now");
        }
    }
}

/// Every `created_at`, `updated_at` and `at` in `v` (each made in the test).
fn collect_created(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if matches!(k.as_str(), "created_at" | "updated_at" | "at") {
                    out.push(v.clone());
                } else {
                    collect_created(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_created(v, out)),
        _ => {}
    }
}

/// The document states what the server enforces, so a client generated
/// from it does not send what is refused: 400/413/415 where they happen,
/// every trigger route and method, and the limits as schema constraints.
#[tokio::test]
async fn openapi_states_the_statuses_and_limits_the_server_enforces() {
    let s = Server::start(BIN, &[]);
    let doc = s
        .call(Method::GET, "/v1/openapi.json", None, None)
        .await
        .json();
    let paths = doc["paths"].as_object().unwrap();
    let mut json_ops = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let has =
                |code: &str| responses.contains_key(code) || responses.contains_key("default");
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            if params.iter().any(|p| p["in"] == "path") {
                assert!(has("400"), "{method} {path}: a bad path parameter is a 400");
            }
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
                && path != "/v1/oauth/token"
            {
                json_ops += 1;
                for code in ["400", "413", "415"] {
                    assert!(has(code), "{method} {path} lacks {code}");
                }
            }
            if op["security"].is_array() {
                assert!(has("401"), "{method} {path} lacks 401");
            }
        }
    }
    assert!(json_ops >= 7, "{json_ops} JSON operations");
    for path in ["/t/{id}", "/t/{id}/{path}"] {
        let methods: Vec<&String> = paths[path].as_object().unwrap().keys().collect();
        for m in [
            "get", "post", "put", "patch", "delete", "head", "options", "trace",
        ] {
            assert!(
                methods.iter().any(|k| *k == m),
                "{path} lacks {m}: {methods:?}"
            );
        }
    }
    let upload = &paths["/v1/projects/{project}/steps/{step}"]["put"]["responses"];
    assert!(upload.get("415").is_some(), "{upload}");

    let param = |path: &str, method: &str, name: &str| -> Value {
        paths[path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{method} {path}: no {name}"))["schema"]
            .clone()
    };
    let limit = param("/v1/projects/{project}/runs", "get", "limit");
    assert_eq!(
        (limit["minimum"].as_u64(), limit["maximum"].as_u64()),
        (Some(1), Some(100))
    );
    let status = param("/v1/projects/{project}/runs", "get", "status");
    assert!(status.to_string().contains("succeeded"), "{status}");
    let name_pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$";
    assert_eq!(
        param("/v1/projects/{project}/secrets/{name}", "put", "name")["pattern"],
        name_pattern
    );
    assert_eq!(
        param("/v1/projects/{project}/steps/{step}", "get", "step")["pattern"],
        name_pattern
    );
    assert_eq!(
        param("/v1/keys/{id}", "delete", "id")["pattern"],
        "^[0-9a-f]{16}$"
    );
    let schemas = &doc["components"]["schemas"];
    let credential = &schemas["CreateCredential"]["properties"];
    assert_eq!(credential["scopes"]["minItems"], 1);
    assert_eq!(credential["name"]["maxLength"], 128);
    assert_eq!(schemas["ScopeName"]["enum"].as_array().unwrap().len(), 11);
    assert_eq!(
        schemas["CreateProject"]["properties"]["name"]["pattern"],
        name_pattern
    );
    assert_eq!(schemas["PutSecret"]["properties"]["value"]["minLength"], 1);
    assert_eq!(
        schemas["CreateAccount"]["properties"]["external_user_id"]["maxLength"],
        250
    );
    assert_eq!(schemas["Timestamp"]["format"], "date-time");
    let token =
        &paths["/v1/oauth/token"]["post"]["responses"]["401"]["content"]["application/json"];
    assert_eq!(
        token["schema"]["$ref"],
        "#/components/schemas/OAuthErrorBody"
    );
}

/// A key name is counted in characters, as the document's `maxLength` is.
#[tokio::test]
async fn a_key_name_of_128_characters_is_accepted_whatever_their_bytes() {
    let s = Server::start(BIN, &[]);
    let admin = s.admin_setup().await;
    let r = s
        .call(
            Method::POST,
            "/v1/keys",
            Some(&admin),
            Some(json!({"name": "é".repeat(128), "scopes": ["proxy"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = s
        .call(
            Method::POST,
            "/v1/keys",
            Some(&admin),
            Some(json!({"name": "é".repeat(129), "scopes": ["proxy"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
}

#[tokio::test]
async fn openapi_document_matches_the_checked_in_file() {
    let s = Server::start(BIN, &[]);
    let r = s.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let served = r.json();
    assert!(
        served["openapi"].as_str().unwrap().starts_with("3.1"),
        "OpenAPI 3.1"
    );
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    if std::env::var_os("AIRLOCK_UPDATE_OPENAPI").is_some() {
        std::fs::write(
            &file,
            format!("{}\n", serde_json::to_string_pretty(&served).unwrap()),
        )
        .unwrap();
    }
    let stored: Value = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    assert!(
        stored == served,
        "docs/openapi.json is out of date with the served document; regenerate it with \
         `AIRLOCK_UPDATE_OPENAPI=1 CARGO_TARGET_DIR=/work/main/target cargo test --workspace \
         --test serve_api openapi` and commit it"
    );
}
