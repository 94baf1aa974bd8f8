//! Connect: end users connect their own accounts on a hosted page (the
//! routes are in [`crate::server::connect`]); this module holds what the
//! routes share and what runs beside them.
//!
//! - [`Connect`]: the public URL, the stores, the policy-checked HTTP
//!   client the code exchange and webhooks use.
//! - [`webhooks`]: signed events from the outbox, with retries.
//!
//! Why the redirect URI comes from `public_url` alone: the provider sends
//! the code to whatever `redirect_uri` the authorization request named. A
//! URI derived from the request's `Host` header would let anyone who can
//! reach the server with a forged `Host` have codes (and, with a lax
//! provider, tokens) sent to a host they choose. The operator states the
//! one public URL; without one the server uses its own listen address,
//! which is right only for local use.

pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use airlock_host_api::http::egress::EgressPolicy;
use url::Url;

use crate::store::connect::{ConnectStore, STATE_TTL_SECS};
use crate::store::webhooks::WebhookStore;
use crate::store::{AccountStore, MasterKey, SecretStore};

/// The path of the OAuth callback under the public URL.
pub const CALLBACK_PATH: &str = "/connect/oauth/callback";
/// The project secret that signs a project's webhooks.
pub const WEBHOOK_SECRET_NAME: &str = "oauth.connect.webhook_secret";
/// Longest a code exchange may take.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the Connect routes and the webhook worker share.
pub struct Connect {
    /// The server's public URL, without a trailing slash.
    public_url: String,
    pub secure_cookies: bool,
    pub store: ConnectStore,
    pub webhooks: WebhookStore,
    pub accounts: AccountStore,
    pub secrets: SecretStore,
    pub key: Arc<MasterKey>,
    /// The host's policy-checked client (names resolved by the checked
    /// resolver); IP literals are checked with `policy` before use.
    pub http: reqwest::Client,
    pub policy: Arc<EgressPolicy>,
    /// Wakes the webhook worker when an event is queued.
    pub wake: Arc<tokio::sync::Notify>,
    /// How long an OAuth `state` is accepted.
    pub state_ttl_secs: i64,
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl Connect {
    pub fn new(
        public_url: &Url,
        secrets: SecretStore,
        key: Arc<MasterKey>,
        http: reqwest::Client,
        policy: Arc<EgressPolicy>,
    ) -> Self {
        Self {
            public_url: public_url.as_str().trim_end_matches('/').to_owned(),
            secure_cookies: public_url.scheme() == "https",
            store: ConnectStore::new(&secrets),
            webhooks: WebhookStore::new(&secrets),
            accounts: AccountStore::new(&secrets),
            secrets,
            key,
            http,
            policy,
            wake: Arc::new(tokio::sync::Notify::new()),
            state_ttl_secs: STATE_TTL_SECS,
        }
    }

    /// `{public_url}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    /// The one redirect URI every provider is given.
    pub fn redirect_uri(&self) -> String {
        self.url(CALLBACK_PATH)
    }

    /// The origin of the public URL (`https://airlock.example.com`).
    pub fn origin(&self) -> String {
        Url::parse(&self.public_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }
}

/// Checks a `--public-url`: http(s), a host, no query or fragment, no
/// credentials. Returns it without a trailing slash.
pub fn parse_public_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} must be an http:// or https:// URL"));
    }
    if url.host().is_none() {
        return Err(format!("{text:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{text:?} must not hold credentials"));
    }
    Ok(url)
}
