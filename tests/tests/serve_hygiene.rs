//! Credential hygiene over a real `airlock serve`: API keys and OAuth
//! clients may expire (refused after, audited, never the last admin); keys,
//! clients, secrets and connected accounts show when they were last used,
//! and every listing filters `unused_since`, so unused credentials can be
//! found and revoked.

use std::time::Duration;

use airlock_tests::serve::{Server, ServerBuilder};
use airlock_tests::{component_bytes, examples};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

fn rfc3339_in(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn get(s: &Server, key: &str, path: &str) -> Value {
    let r = s.call(Method::GET, path, Some(key), None).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
    r.json()
}

fn find<'a>(list: &'a Value, field: &str, id_field: &str, id: &str) -> Option<&'a Value> {
    list[field]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v[id_field] == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_clients_expire_and_never_count_as_the_last_admin() {
    let s = ServerBuilder::new(BIN).start();
    let admin = s.admin_setup().await;
    // An expiry in the past is refused, naming the field.
    let r = s
        .call(
            Method::POST,
            "/v1/keys",
            Some(&admin),
            Some(json!({"name": "late", "scopes": ["runs:read"], "expires_at": rfc3339_in(-5)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("invalid expires_at"), "{}", r.text);

    let r = s
        .call(
            Method::POST,
            "/v1/keys",
            Some(&admin),
            Some(
                json!({"name": "brief", "scopes": ["runs:read"], "project": "alpha",
                "expires_at": rfc3339_in(2)}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let brief = r.json()["key"].as_str().unwrap().to_owned();
    let brief_id = r.json()["id"].as_str().unwrap().to_owned();
    assert!(r.json()["expires_at"].is_string(), "{}", r.text);
    let runs = |key: String| {
        let s = &s;
        async move {
            s.call(Method::GET, "/v1/projects/alpha/runs", Some(&key), None)
                .await
                .status
        }
    };
    assert_eq!(runs(brief.clone()).await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    // Refused once expired, although it was verified (and cached) before.
    assert_eq!(runs(brief).await, StatusCode::UNAUTHORIZED);
    let audit = get(&s, &admin, "/v1/audit").await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["key_id"] == brief_id.as_str() && e["reason"] == "expired API key"),
        "{audit}"
    );

    // A client whose tokens never outlive it, and which expires too.
    let r = s
        .call(
            Method::POST,
            "/v1/oauth/clients",
            Some(&admin),
            Some(json!({"name": "c", "scopes": ["runs:read"], "expires_at": rfc3339_in(2)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (cid, secret) = (
        r.json()["client_id"].as_str().unwrap().to_owned(),
        r.json()["client_secret"].as_str().unwrap().to_owned(),
    );
    let token = |cid: String, secret: String| {
        let s = &s;
        async move {
            s.send(
                s.client
                    .post(format!("{}/v1/oauth/token", s.base))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!(
                        "grant_type=client_credentials&client_id={cid}&client_secret={secret}"
                    )),
            )
            .await
        }
    };
    let r = token(cid.clone(), secret.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.json()["expires_in"].as_u64().unwrap() <= 2, "{}", r.text);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let r = token(cid, secret).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);

    // An expiring admin key is no successor: the lasting one stays.
    let r = s
        .call(
            Method::POST,
            "/v1/keys",
            Some(&admin),
            Some(
                json!({"name": "temp admin", "scopes": ["admin"], "expires_at": rfc3339_in(3600)}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let temp = r.json()["key"].as_str().unwrap().to_owned();
    let admin_id = airlock_runtime::store::platform::api_key_id(&admin)
        .unwrap()
        .to_owned();
    let r = s
        .call(
            Method::DELETE,
            &format!("/v1/keys/{admin_id}"),
            Some(&temp),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("last_admin"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_show_last_use_and_filter_unused_since() {
    let s = ServerBuilder::new(BIN).start();
    let admin = s.admin_setup().await;
    let before = rfc3339_in(-60);
    let used = s.new_key(&admin, &["runs:read"], Some("alpha")).await;
    let idle = s.new_key(&admin, &["runs:read"], Some("alpha")).await;
    let id = |key: &str| {
        airlock_runtime::store::platform::api_key_id(key)
            .unwrap()
            .to_owned()
    };
    get(&s, &used, "/v1/projects/alpha/runs").await;
    let keys = get(&s, &admin, "/v1/keys").await;
    let used_view = find(&keys, "keys", "id", &id(&used)).unwrap();
    assert!(used_view["last_used_at"].is_string(), "{keys}");
    assert!(
        find(&keys, "keys", "id", &id(&idle)).unwrap()["last_used_at"].is_null(),
        "{keys}"
    );
    // Unused since a minute ago: the idle key only (the admin key is in use).
    let unused = get(&s, &admin, &format!("/v1/keys?unused_since={before}")).await;
    let ids: Vec<&str> = unused["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id(&idle)], "{unused}");
    // In Unix milliseconds too; a bad instant is a 400 naming the field.
    let future_ms = (chrono::Utc::now().timestamp() + 3600) * 1000;
    let all = get(&s, &admin, &format!("/v1/keys?unused_since={future_ms}")).await;
    assert_eq!(all["keys"].as_array().unwrap().len(), 3, "{all}");
    let r = s
        .call(
            Method::GET,
            "/v1/keys?unused_since=yesterday",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("unused_since"), "{}", r.text);

    // OAuth clients: one that got a token, one that never did.
    let mut clients = Vec::new();
    for name in ["busy", "quiet"] {
        let r = s
            .call(
                Method::POST,
                "/v1/oauth/clients",
                Some(&admin),
                Some(json!({"name": name, "scopes": ["runs:read"]})),
            )
            .await;
        clients.push((
            r.json()["client_id"].as_str().unwrap().to_owned(),
            r.json()["client_secret"].as_str().unwrap().to_owned(),
        ));
    }
    let r = s
        .send(
            s.client
                .post(format!("{}/v1/oauth/token", s.base))
                .basic_auth(&clients[0].0, Some(&clients[0].1))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let unused = get(
        &s,
        &admin,
        &format!("/v1/oauth/clients?unused_since={before}"),
    )
    .await;
    let ids: Vec<&str> = unused["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [clients[1].0.as_str()], "{unused}");
    let listed = get(&s, &admin, "/v1/oauth/clients").await;
    assert!(
        find(&listed, "clients", "client_id", &clients[0].0).unwrap()["last_used_at"].is_string()
    );

    // Secrets: the one a run read, and one no run has.
    for name in ["TOKEN", "SPARE"] {
        let r = s
            .call(
                Method::PUT,
                &format!("/v1/projects/alpha/secrets/{name}"),
                Some(&admin),
                Some(json!({"value": "v4lue-of-some-length"})),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.text);
    }
    let r = s
        .upload(
            "alpha",
            "echo-secret",
            &admin,
            &component_bytes(examples::ECHO_SECRET),
            Some("name = \"echo-secret\"\nsecrets = [\"TOKEN\"]\nreveal = [\"TOKEN\"]\n"),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = s.run(&admin, "alpha", "echo-secret", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let secrets = get(&s, &admin, "/v1/projects/alpha/secrets").await;
    assert!(
        find(&secrets, "secrets", "name", "TOKEN").unwrap()["last_used_at"].is_string(),
        "{secrets}"
    );
    let unused = get(
        &s,
        &admin,
        &format!("/v1/projects/alpha/secrets?unused_since={before}"),
    )
    .await;
    let names: Vec<&str> = unused["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["SPARE"], "{unused}");

    // Accounts: one whose credentials were read, one never.
    let mut accounts = Vec::new();
    for user in ["ada", "grace"] {
        let r = s
            .call(
                Method::POST,
                "/v1/projects/alpha/accounts",
                Some(&admin),
                Some(json!({"app": "github", "external_user_id": user,
                    "credentials": {"access_token": format!("gho_{user}_token")}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        accounts.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    get(
        &s,
        &admin,
        &format!(
            "/v1/projects/alpha/accounts/{}?include_credentials=true",
            accounts[0]
        ),
    )
    .await;
    let unused = get(
        &s,
        &admin,
        &format!("/v1/projects/alpha/accounts?unused_since={before}"),
    )
    .await;
    let ids: Vec<&str> = unused["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [accounts[1].as_str()], "{unused}");
    let listed = get(&s, &admin, "/v1/projects/alpha/accounts").await;
    assert!(
        find(&listed, "accounts", "id", &accounts[0]).unwrap()["last_used_at"].is_string(),
        "{listed}"
    );
    assert!(!listed.to_string().contains("gho_"), "never a credential");
}
