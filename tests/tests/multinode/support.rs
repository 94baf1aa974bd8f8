//! Two `airlock serve` nodes on one fresh PostgreSQL database, and the
//! helpers the multi-node tests share.
//!
//! Each node has its own data directory (so its own compile cache), its
//! own port and process; they share the database, the master key
//! ([`airlock_tests::serve::MASTER_KEY`]) and whatever `--apps-dir` a test
//! passes to both, as an operator deploys one configuration on every node.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use airlock_tests::postgres::{Guard, fresh_database};
use airlock_tests::serve::{Reply, Server, ServerBuilder};
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection as _;

pub const BIN: &str = env!("CARGO_BIN_EXE_airlock-under-test");

/// Two nodes on one database, with a global admin key and the projects
/// `alpha` and `beta` (made through node A).
pub struct Cluster {
    pub a: Server,
    pub b: Server,
    pub admin: String,
    /// The database both nodes use, for direct checks.
    pub url: String,
    // Declared last: dropped after the servers are killed.
    _database: Guard,
}

impl Cluster {
    /// Both nodes with the same extra `serve` arguments.
    pub async fn start(args: &[&str]) -> Self {
        Self::start_with(|b| b.args(args)).await
    }

    /// Both nodes, each builder shaped by `configure`. They start at once
    /// (each in its own thread), so they also race the migrations of the
    /// empty database, as nodes of a new deployment do.
    pub async fn start_with(configure: impl Fn(ServerBuilder) -> ServerBuilder) -> Self {
        let (url, guard) = fresh_database().await;
        let [a, b] = [0, 1].map(|_| configure(ServerBuilder::new(BIN).database_url(&url)));
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(move || a.start());
            let b = scope.spawn(move || b.start());
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_ne!(a.base, b.base, "two nodes, two ports");
        assert_ne!(a.data_dir(), b.data_dir(), "two data directories");
        let admin = a.admin_setup().await;
        Self {
            a,
            b,
            admin,
            url,
            _database: guard,
        }
    }

    /// Node A for even `i`, node B for odd: requests alternating nodes.
    pub fn node(&self, i: usize) -> &Server {
        if i.is_multiple_of(2) {
            &self.a
        } else {
            &self.b
        }
    }

    /// A connection to the nodes' database.
    pub async fn pg(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url).await.unwrap()
    }

    /// Advisory locks held or waited for in this test's database (the
    /// cluster is shared by the tests of this process): `(held, waiting)`.
    pub async fn advisory_locks(&self) -> (i64, i64) {
        let mut conn = self.pg().await;
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted)
             FROM pg_locks
             WHERE locktype = 'advisory'
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
    }
}

/// Polls `check` until it holds; panics naming `what` after `bound`. For
/// waiting on something another process does, never for timing it.
pub async fn eventually<F, Fut>(what: &str, bound: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < bound, "not within {bound:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An app file for a loopback upstream at `base_url`, with `extra`
/// top-level settings (an `[oauth]` table goes here).
pub fn write_app(
    dir: &Path,
    slug: &str,
    auth: &str,
    base_url: &str,
    credential: &str,
    extra: &str,
) {
    let toml = format!(
        "slug = \"{slug}\"\nname = \"{slug}\"\nauth = \"{auth}\"\nbase_url = \"{base_url}\"\n\
         allowed_domains = [\"127.0.0.1\"]\n{extra}\n[credential]\n{credential}\n"
    );
    std::fs::write(dir.join(format!("{slug}.toml")), toml).unwrap();
}

/// `serve` arguments letting outbound requests reach loopback fakes, with
/// the apps in `apps`.
pub fn outbound_args<'a>(apps: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--allow-range",
        "127.0.0.0/8",
        "--apps-dir",
        apps.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args
}

/// Stores a secret of project alpha through `node`.
pub async fn put_secret(node: &Server, admin: &str, name: &str, value: &str) {
    let r = node
        .call(
            Method::PUT,
            &format!("/v1/projects/alpha/secrets/{name}"),
            Some(admin),
            Some(json!({ "value": value })),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
}

/// Connects an account of project alpha for `user` through `node`;
/// returns its id.
pub async fn create_account(
    node: &Server,
    admin: &str,
    app: &str,
    user: &str,
    credentials: Value,
) -> String {
    let r = node
        .call(
            Method::POST,
            "/v1/projects/alpha/accounts",
            Some(admin),
            Some(json!({"app": app, "external_user_id": user, "credentials": credentials})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json()["id"].as_str().unwrap().to_owned()
}

/// The account as `node` shows it, credentials included.
pub async fn account(node: &Server, admin: &str, id: &str) -> Value {
    let r = node
        .call(
            Method::GET,
            &format!("/v1/projects/alpha/accounts/{id}?include_credentials=true"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()
}

/// Uploads a step to project alpha through `node`; returns the answer.
pub async fn upload(
    node: &Server,
    admin: &str,
    step: &str,
    component: &str,
    manifest: &str,
) -> Value {
    let bytes = airlock_tests::component_bytes(component);
    let r = node
        .upload("alpha", step, admin, &bytes, Some(manifest))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json()
}

/// The URL of the proxy route of project alpha for `target` (a path under
/// the app's base URL) with `account` of `user`.
pub fn proxy_url(node: &Server, target: &str, account: &str, user: &str) -> String {
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(target);
    format!(
        "{}/v1/projects/alpha/proxy/{encoded}?external_user_id={user}&account_id={account}",
        node.base
    )
}

/// A `GET` through the proxy route.
pub async fn proxy_get(node: &Server, token: &str, target: &str, account: &str) -> Reply {
    let url = proxy_url(node, target, account, "u1");
    node.send(node.client.get(url).bearer_auth(token)).await
}

/// Every compiled artifact (`*.cwasm`) under `dir`, at any depth.
pub fn artifacts(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(artifacts(&path));
        } else if path.extension().is_some_and(|e| e == "cwasm") {
            found.push(path);
        }
    }
    found
}

/// The refresh tokens the fake token endpoint was sent, in order.
pub fn presented_refresh_tokens(provider: &airlock_tests::fakes::OAuthFake) -> Vec<String> {
    provider
        .fake
        .requests()
        .iter()
        .filter(|r| r["path"] == "/oauth/token")
        .map(|r| {
            url::form_urlencoded::parse(r["body"].as_str().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "refresh_token")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect()
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
