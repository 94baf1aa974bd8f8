//! The Connect tests' world: the real `airlock serve` (outbound to
//! loopback allowed), the fake OAuth provider ([`crate::oauth_provider`]),
//! the operator's site ([`crate::operator_site`]), an echo upstream for
//! API-key apps, and app files pointing at them. [`Visitor`] walks the
//! hosted page over plain HTTP with its own cookie jar, for the checks a
//! browser cannot make (a replayed state, a wrong binding cookie).

use std::collections::BTreeMap;
use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fakes::{self, Fake};
use crate::oauth_provider::{self, CLIENT_ID, CLIENT_SECRET, PASSWORD, Provider, USERNAME};
use crate::operator_site::{self, Site};
use crate::serve::{Reply, Server, ServerBuilder};

/// The project secret that signs webhooks, and its value in these tests.
pub const WEBHOOK_SECRET_NAME: &str = "oauth.connect.webhook_secret";
pub const WEBHOOK_SECRET: &str = "whsec_connect_test_4Hq8Zt1Rb6";
/// The OAuth app (client sent with HTTP Basic), the dynamic one (a tenant
/// custom field in every URL; client in the body) and the API-key app.
pub const OAUTH_APP: &str = "fakeid";
pub const TENANT_APP: &str = "workspace";
pub const KEY_APP: &str = "t-key";

pub struct World {
    /// The `airlock` binary (`CARGO_BIN_EXE_airlock-under-test`).
    pub bin: &'static str,
    pub server: Server,
    pub provider: Provider,
    pub site: Site,
    pub echo: Fake,
    pub apps: tempfile::TempDir,
    pub admin: String,
    /// The server's arguments, to restart it on the same directory.
    pub args: Vec<String>,
}

/// Writes the three apps into a fresh directory.
pub fn apps_dir(provider: &Provider, echo: &Fake) -> tempfile::TempDir {
    let apps = tempfile::tempdir().unwrap();
    let write = |slug: &str, text: String| {
        std::fs::write(apps.path().join(format!("{slug}.toml")), text).unwrap();
    };
    write(OAUTH_APP, provider.app_toml(OAUTH_APP, "Fake ID", "basic"));
    write(
        TENANT_APP,
        provider.tenant_app_toml(TENANT_APP, "Workspace"),
    );
    write(
        KEY_APP,
        format!(
            "slug = \"{KEY_APP}\"\nname = \"Keyed API\"\nauth = \"api-key\"\n\
             base_url = \"http://{}\"\nallowed_domains = [\"127.0.0.1\"]\n\n\
             [credential]\nheader = \"x-api-key\"\ntemplate = \"{{{{api_key}}}}\"\n",
            echo.addr
        ),
    );
    apps
}

/// The server's arguments for `apps`.
fn server_args(apps: &std::path::Path) -> Vec<String> {
    vec![
        "--allow-range".into(),
        "127.0.0.0/8".into(),
        "--apps-dir".into(),
        apps.to_str().unwrap().into(),
    ]
}

/// Starts a server (on `dir`, or a fresh directory) with every log line
/// down to `debug` captured, so tests can look for leaks in all of it.
pub fn start_server(bin: &'static str, args: &[String], dir: Option<tempfile::TempDir>) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut b = ServerBuilder::new(bin)
        .args(&args)
        .env("AIRLOCK_LOG", "debug")
        .capture_stderr();
    if let Some(dir) = dir {
        b = b.dir(dir);
    }
    b.start()
}

impl World {
    pub async fn new(bin: &'static str) -> World {
        Self::with_site(bin, operator_site::start().await).await
    }

    /// A world whose operator site is `site` (started by the caller).
    pub async fn with_site(bin: &'static str, site: Site) -> World {
        Self::with_args(bin, site, &[]).await
    }

    /// A world whose server also gets `extra` arguments.
    pub async fn with_args(bin: &'static str, site: Site, extra: &[&str]) -> World {
        let provider = oauth_provider::start().await;
        let echo = fakes::echo().await;
        let apps = apps_dir(&provider, &echo);
        let mut args = server_args(apps.path());
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let server = start_server(bin, &args, None);
        let admin = server.admin_setup().await;
        let w = World {
            bin,
            server,
            provider,
            site,
            echo,
            apps,
            admin,
            args,
        };
        w.after_start().await;
        w
    }

    /// What a (re)started server needs: the provider knows its callback,
    /// and project alpha holds the OAuth clients and the webhook secret.
    async fn after_start(&self) {
        self.provider
            .state
            .register_redirect_uri(&format!("{}/connect/oauth/callback", self.server.base));
        for (name, value) in [
            (format!("oauth.{OAUTH_APP}.client_id"), CLIENT_ID),
            (format!("oauth.{OAUTH_APP}.client_secret"), CLIENT_SECRET),
            (format!("oauth.{TENANT_APP}.client_id"), CLIENT_ID),
            (format!("oauth.{TENANT_APP}.client_secret"), CLIENT_SECRET),
            (WEBHOOK_SECRET_NAME.to_owned(), WEBHOOK_SECRET),
        ] {
            let r = self
                .server
                .call(
                    Method::PUT,
                    &format!("/v1/projects/alpha/secrets/{name}"),
                    Some(&self.admin),
                    Some(json!({ "value": value })),
                )
                .await;
            assert!(r.status.is_success(), "{}", r.text);
        }
    }

    /// Stops the server (SIGTERM) and starts it again on the same data
    /// (on a new port); returns the world and the stopped one's stderr.
    pub async fn restart(self) -> (World, String) {
        let World {
            bin,
            server,
            provider,
            site,
            echo,
            apps,
            admin,
            args,
        } = self;
        let stopped = server.stop();
        assert!(stopped.status.success(), "{:?}", stopped.status);
        let server = start_server(bin, &args, Some(stopped.dir));
        let w = World {
            bin,
            server,
            provider,
            site,
            echo,
            apps,
            admin,
            args,
        };
        w.after_start().await;
        (w, stopped.stderr)
    }

    /// A token body for `user`: the site's landing pages and webhook, its
    /// origin allowed.
    pub fn token_body(&self, user: &str) -> Value {
        json!({
            "external_user_id": user,
            "success_redirect_uri": self.site.url("/done"),
            "error_redirect_uri": self.site.url("/failed"),
            "webhook_uri": self.site.url("/hooks"),
            "allowed_origins": [self.site.origin()],
        })
    }

    /// `POST /v1/projects/alpha/connect/tokens` with `body`.
    pub async fn create_token(&self, body: Value) -> Reply {
        self.server
            .call(
                Method::POST,
                "/v1/projects/alpha/connect/tokens",
                Some(&self.admin),
                Some(body),
            )
            .await
    }

    /// A token for `user` (see [`World::token_body`]) with `extra` fields
    /// merged in: `(id, connect_link_url)`.
    pub async fn link(&self, user: &str, extra: Value) -> (String, String) {
        let mut body = self.token_body(user);
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let r = self.create_token(body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let v = r.json();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["connect_link_url"].as_str().unwrap().to_owned(),
        )
    }

    /// The accounts of `user` in project alpha.
    pub async fn accounts_of(&self, user: &str) -> Vec<Value> {
        let r = self
            .server
            .call(
                Method::GET,
                &format!("/v1/projects/alpha/accounts?external_user_id={user}"),
                Some(&self.admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let v = r.json();
        v.get("accounts")
            .or_else(|| v.get("items"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| v.as_array().cloned().unwrap_or_default())
    }

    /// The data directory's SQLite database, for what only time would do
    /// (expiring a state or a token without waiting for it).
    pub fn database(&self) -> PathBuf {
        self.server.data_dir().join("airlock.db")
    }

    /// Runs `sql` against the server's database (WAL: the server keeps
    /// running); returns the rows changed.
    pub async fn execute(&self, sql: &str) -> u64 {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(self.database())
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        done.rows_affected()
    }

    /// A visitor of this server's hosted page.
    pub fn visitor(&self) -> Visitor {
        Visitor::new(&self.server.base)
    }
}

/// A browser without a browser: follows nothing by itself, keeps the
/// server's cookies (name → value; paths are not modelled, every cookie
/// goes to every path of the server).
pub struct Visitor {
    base: String,
    client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl Visitor {
    pub fn new(base: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Visitor {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with("http://") || url.starts_with("https://") {
            url.to_owned()
        } else {
            format!("{}{url}", self.base)
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder, ours: bool) -> Reply {
        let req = if ours && !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req.header("cookie", jar.join("; "))
        } else {
            req
        };
        let r = req.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        if ours {
            for v in headers.get_all("set-cookie") {
                let text = v.to_str().unwrap();
                let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
                let (name, value) = pair.split_once('=').unwrap();
                if value.is_empty() || attrs.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let text = r.text().await.unwrap();
        Reply {
            status,
            headers,
            text,
        }
    }

    /// `GET url` (absolute, or a path of the server).
    pub async fn get(&mut self, url: &str) -> Reply {
        let url = self.absolute(url);
        let ours = url.starts_with(&self.base);
        let req = self.client.get(&url);
        self.send(req, ours).await
    }

    /// `POST path` with a form, and `origin` as the `Origin` header if given.
    pub async fn post_form(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Reply {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let url = self.absolute(path);
        let ours = url.starts_with(&self.base);
        let mut req = self
            .client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        self.send(req, ours).await
    }

    /// Opens a connect link: expects the redirect that trades it for a
    /// session cookie; returns where it goes.
    pub async fn open(&mut self, link: &str) -> String {
        let r = self.get(link).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        assert!(
            self.cookies.contains_key("airlock_connect"),
            "{:?}",
            r.headers
        );
        location(&r)
    }

    /// The form of `slug`: the page and its CSRF token.
    pub async fn form(&mut self, slug: &str) -> (Reply, String) {
        let r = self.get(&format!("/connect/apps/{slug}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let csrf = hidden(&r.text, "csrf").expect("a CSRF token in the form");
        (r, csrf)
    }

    /// Posts the form of `slug` with its CSRF token and `fields`.
    pub async fn submit(&mut self, slug: &str, fields: &[(&str, &str)]) -> Reply {
        let (_, csrf) = self.form(slug).await;
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let origin = self.base.clone();
        self.post_form(&format!("/connect/apps/{slug}"), &form, Some(&origin))
            .await
    }

    /// Starts the OAuth flow of `slug`: the provider URL it sends to.
    pub async fn start_oauth(&mut self, slug: &str, fields: &[(&str, &str)]) -> String {
        let r = self.submit(slug, fields).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        assert!(
            self.cookies.contains_key("airlock_oauth"),
            "{:?}",
            r.headers
        );
        location(&r)
    }

    /// Signs in at the provider page `authorize_url` and answers
    /// `decision` (`allow`, `deny`): where the provider sends the browser.
    pub async fn at_provider(&mut self, authorize_url: &str, decision: &str) -> String {
        let page = self.get(authorize_url).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let url = url::Url::parse(authorize_url).unwrap();
        let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        form.push(("username".into(), USERNAME.into()));
        form.push(("password".into(), PASSWORD.into()));
        form.push(("decision".into(), decision.into()));
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let action = format!("{}{}", url.origin().ascii_serialization(), url.path());
        let r = self.post_form(&action, &pairs, None).await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
        location(&r)
    }

    /// A whole OAuth flow up to Airlock's answer to the callback.
    pub async fn connect_oauth(
        &mut self,
        link: &str,
        slug: &str,
        fields: &[(&str, &str)],
    ) -> Reply {
        self.open(link).await;
        let authorize = self.start_oauth(slug, fields).await;
        let callback = self.at_provider(&authorize, "allow").await;
        self.get(&callback).await
    }
}

/// The `Location` of a redirect.
pub fn location(r: &Reply) -> String {
    r.headers
        .get("location")
        .unwrap_or_else(|| panic!("no Location in {:?}: {}", r.headers, r.text))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The value of hidden input `name` in `html`.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let re = regex::Regex::new(&format!(r#"name="{name}" value="([^"]*)""#)).unwrap();
    re.captures(html).map(|c| c[1].to_owned())
}

/// The query pairs of `url`.
pub fn query(url: &str) -> BTreeMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}
