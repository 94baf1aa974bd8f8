//! How requests authenticate: an API key as it is, or OAuth 2.0 client
//! credentials (RFC 6749 §4.4) exchanged at `POST /v1/oauth/token` for an
//! access token that is cached and fetched again ahead of its expiry.
//!
//! Decisions, and why:
//! - **Refresh ahead of expiry**: a token is replaced once less than
//!   [`refresh_margin`] of its life is left (half its lifetime, at most a
//!   minute), so a request never leaves with a token about to expire on the
//!   way; the server counts its expiry in whole seconds, so the margin also
//!   covers that rounding.
//! - **Single flight**: the cached token sits behind an async mutex held
//!   across the fetch. Many concurrent callers that find the token stale
//!   wait for one exchange and share its token, instead of each asking the
//!   server for its own (and each counting against its failure limit).
//! - **A refused token is dropped**: after a 401 on a cached token (revoked,
//!   or the server's clock ran ahead) the transport forgets it and retries
//!   once with a new one; see [`crate::Client`].
//! - The client secret and tokens are [`SecretString`]s: never in `Debug`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::error::{Error, api_error};
use crate::secret::SecretString;

/// A credential for the API.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Auth {
    /// No credential: only public routes (`/healthz`, `/t/{id}`) answer.
    None,
    /// An API key, `ak_<id>_<secret>` (`airlock admin create-key`,
    /// `POST /v1/keys`).
    ApiKey(SecretString),
    /// An OAuth client (`POST /v1/oauth/clients`): its access tokens are
    /// fetched and refreshed by the client.
    ClientCredentials(ClientCredentials),
}

impl Auth {
    /// OAuth client credentials asking for all of the client's scopes.
    pub fn client_credentials(
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> Self {
        Auth::ClientCredentials(ClientCredentials::new(client_id, client_secret, None))
    }
}

/// An OAuth client's id and secret, and its cached access token. Clones
/// share the cache.
#[derive(Clone)]
pub struct ClientCredentials {
    client_id: String,
    client_secret: SecretString,
    scope: Option<String>,
    cache: Arc<Mutex<Option<Cached>>>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

struct Cached {
    token: SecretString,
    /// When to fetch a new one (ahead of the expiry).
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    expires_in: u64,
}

/// The longest lifetime believed (a year).
const MAX_TTL_SECS: u64 = 365 * 86_400;

/// How long before expiry a token of lifetime `ttl` is replaced.
pub fn refresh_margin(ttl: Duration) -> Duration {
    (ttl / 2).min(Duration::from_secs(60))
}

impl ClientCredentials {
    /// `scope`: space-separated scopes, each held by the client; all of the
    /// client's when `None`.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
        scope: Option<String>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope,
            cache: Arc::new(Mutex::new(None)),
        }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// A token valid for a while yet: the cached one, or a new one fetched
    /// by one caller while the others wait.
    pub(crate) async fn token(&self, http: &reqwest::Client, base: &str) -> Result<String, Error> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(c.token.expose().to_owned());
        }
        let fetched = self.fetch(http, base).await?;
        let token = fetched.token.expose().to_owned();
        *cache = Some(fetched);
        Ok(token)
    }

    /// Forgets `token` if it is still the cached one (the server refused it).
    pub(crate) async fn forget(&self, token: &str) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| c.token.expose() == token) {
            *cache = None;
        }
    }

    /// Forgets the cached token, whichever it is.
    pub(crate) async fn forget_all(&self) {
        *self.cache.lock().await = None;
    }

    async fn fetch(&self, http: &reqwest::Client, base: &str) -> Result<Cached, Error> {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
        ];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let connect = |source| Error::Connect {
            server: base.to_owned(),
            source,
        };
        let started = Instant::now();
        let response = http
            .post(format!("{base}/v1/oauth/token"))
            .form(&form)
            .send()
            .await
            .map_err(connect)?;
        let status = response.status();
        let retry_after = crate::transport::retry_after(response.headers());
        let body = response.bytes().await.map_err(connect)?;
        if status != StatusCode::OK {
            return Err(api_error(status, retry_after, &body).into());
        }
        let token: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| Error::UnexpectedResponse {
                server: base.to_owned(),
                status,
                detail: format!("a token answer that does not parse: {e}"),
            })?;
        // Bounded, so that no answer can overflow the clock's arithmetic.
        let ttl = Duration::from_secs(token.expires_in.min(MAX_TTL_SECS));
        Ok(Cached {
            token: token.access_token,
            // From when the request left: the server's clock started then
            // at the latest.
            refresh_at: started + ttl - refresh_margin(ttl),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_is_half_the_life_at_most_a_minute() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3)),
            Duration::from_millis(1500)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let auth = Auth::client_credentials("oc_0123", "cs_topsecret");
        assert!(!format!("{auth:?}").contains("topsecret"));
    }
}
