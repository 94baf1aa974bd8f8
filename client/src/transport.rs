//! [`Client`]: the base URL, the credential and one pooled HTTP client;
//! request building, sending and decoding shared by every route.
//!
//! Retries, and why only these: a 429 (rate limited) or 503 (the server
//! cannot start the run in time) means the request was refused before it
//! did anything, so sending it again is safe for every method. The wait is
//! the answer's `Retry-After` (capped by [`ClientBuilder::max_retry_wait`];
//! a longer one is returned to the caller as the error), else an
//! exponential backoff from [`BASE_BACKOFF`]. A body that cannot be
//! replayed (a streamed upload) is not retried. Nothing else is retried: a
//! connection that broke may have delivered a `POST` that ran. Through the
//! proxy only 429 is: a 503 there may be the upstream's, after it acted.

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use crate::auth::Auth;
use crate::error::{Error, api_error};
use crate::secret::SecretString;

/// Where `airlock serve` listens by default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// The first wait of a retry without `Retry-After`; doubled each time.
pub const BASE_BACKOFF: Duration = Duration::from_millis(250);

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A client of one `airlock serve` server. Clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The server's base URL without a trailing `/`.
    base: String,
    auth: Auth,
    retries: u32,
    max_retry_wait: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base)
            .field("auth", &self.inner.auth)
            .finish()
    }
}

/// Settings of a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    base: String,
    auth: Auth,
    connect_timeout: Duration,
    timeout: Option<Duration>,
    retries: u32,
    max_retry_wait: Duration,
}

impl ClientBuilder {
    /// Authenticate with an API key.
    pub fn api_key(mut self, key: impl Into<SecretString>) -> Self {
        self.auth = Auth::ApiKey(key.into());
        self
    }

    /// Authenticate as an OAuth client: access tokens are fetched from
    /// `POST /v1/oauth/token` and refreshed ahead of expiry.
    pub fn client_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> Self {
        self.auth = Auth::client_credentials(client_id, client_secret);
        self
    }

    /// How many times a 429 or 503 answer is retried (default 2; 0 turns
    /// retries off).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The longest `Retry-After` waited for (default 30 s); a longer one
    /// is returned as the error at once.
    pub fn max_retry_wait(mut self, wait: Duration) -> Self {
        self.max_retry_wait = wait;
        self
    }

    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// How long to wait for a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A limit on each whole request (default none: a run takes as long as
    /// its step's wall-time limit lets it).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: self.base.clone(),
            reason: reason.to_owned(),
        };
        let url = Url::parse(&self.base).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("a base URL has no query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "put no credentials in the URL; pass an API key instead",
            ));
        }
        let mut http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config().map_err(|e| Error::Setup(e.to_string()))?)
            .connect_timeout(self.connect_timeout)
            .user_agent(concat!("airlock-client/", env!("CARGO_PKG_VERSION")));
        if let Some(t) = self.timeout {
            http = http.timeout(t);
        }
        let http = http.build().map_err(|e| Error::Setup(e.to_string()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base: url.as_str().trim_end_matches('/').to_owned(),
                auth: self.auth,
                retries: self.retries,
                max_retry_wait: self.max_retry_wait,
            }),
        })
    }
}

/// rustls with the `ring` provider (no C toolchain) and the platform's
/// verifier, as the host's own outbound client uses. A preconfigured config
/// is used as is, so ALPN is set here.
fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

impl Client {
    /// A builder for a client of the server at `base_url`
    /// (e.g. [`DEFAULT_SERVER`]).
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base_url.into(),
            auth: Auth::None,
            connect_timeout: Duration::from_secs(10),
            timeout: None,
            retries: 2,
            max_retry_wait: Duration::from_secs(30),
        }
    }

    /// The server's base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// `path` (absolute, e.g. a trigger's `/t/{id}`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.inner.base, path.trim_start_matches('/'))
    }

    /// A request to the route made of `segments`, each percent-encoded, so
    /// a name with a `/` or `?` stays one segment instead of changing the
    /// route. `.` and `..` (even encoded, URL parsers resolve them) and the
    /// empty string would change it too, and are no valid name or id: refused.
    pub(crate) fn request(
        &self,
        method: Method,
        segments: &[&str],
    ) -> Result<RequestBuilder, Error> {
        let mut url = self.inner.base.clone();
        for s in segments {
            if matches!(*s, "" | "." | "..") {
                return Err(Error::InvalidArgument(format!(
                    "{s:?} is not a valid name or id"
                )));
            }
            url.push('/');
            url.extend(utf8_percent_encode(s, SEGMENT));
        }
        Ok(self.inner.http.request(method, url))
    }

    /// Sends `request` with the credential, retrying 429 and 503 answers
    /// (see the module's docs); an error status becomes [`Error::Api`].
    pub(crate) async fn send(&self, request: RequestBuilder) -> Result<Response, Error> {
        let response = self.send_raw(request).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await.map_err(|e| self.connect(e))?;
        Err(api_error(status, retry_after, &body).into())
    }

    /// [`Client::send`] without turning an error status into an error: the
    /// last answer after the retries, whatever its status.
    pub(crate) async fn send_raw(&self, request: RequestBuilder) -> Result<Response, Error> {
        self.send_with(request, Upstream::No).await
    }

    /// [`Client::send_raw`]; with [`Upstream::Yes`] the answer may be an
    /// upstream's (the proxy), so a 401 is not taken for the server refusing
    /// the token and only a 429 is retried: an upstream's 503 may come after
    /// it acted on the request.
    pub(crate) async fn send_with(
        &self,
        request: RequestBuilder,
        upstream: Upstream,
    ) -> Result<Response, Error> {
        let mut attempt = 0;
        let mut refreshed = false;
        let mut request = request;
        loop {
            // A copy for the next attempt, made before this one consumes
            // the request; `None` when the body is a stream.
            let next = request.try_clone();
            let (response, token) = self.send_once(request).await?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let retry_after = retry_after(response.headers());
            // A cached token the server refused: fetch a new one, once.
            if status == StatusCode::UNAUTHORIZED
                && upstream == Upstream::No
                && !refreshed
                && next.is_some()
                && let (Auth::ClientCredentials(c), Some(token)) = (&self.inner.auth, &token)
            {
                c.forget(token).await;
                refreshed = true;
                request = next.expect("checked");
                continue;
            }
            let wait = match retry_after {
                Some(w) => w,
                None => BASE_BACKOFF * 2u32.saturating_pow(attempt),
            };
            if let Some(again) = next
                && (status == StatusCode::TOO_MANY_REQUESTS
                    || (status == StatusCode::SERVICE_UNAVAILABLE && upstream == Upstream::No))
                && attempt < self.inner.retries
                && wait <= self.inner.max_retry_wait
            {
                attempt += 1;
                drop(response);
                tokio::time::sleep(wait).await;
                request = again;
                continue;
            }
            return Ok(response);
        }
    }

    /// Drops the cached access token, if any: the server refused it.
    pub(crate) async fn forget_token(&self) {
        if let Auth::ClientCredentials(c) = &self.inner.auth {
            c.forget_all().await;
        }
    }

    /// One attempt; also returns the bearer token it carried.
    async fn send_once(
        &self,
        request: RequestBuilder,
    ) -> Result<(Response, Option<String>), Error> {
        let token = match &self.inner.auth {
            Auth::None => None,
            Auth::ApiKey(key) => Some(key.expose().to_owned()),
            Auth::ClientCredentials(c) => Some(c.token(&self.inner.http, &self.inner.base).await?),
        };
        let request = match &token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        let response = request.send().await.map_err(|e| self.connect(e))?;
        Ok((response, token))
    }

    /// Sends `request` and reads the answer as `T`.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<T, Error> {
        let response = self.send(request).await?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.connect(e))?;
        serde_json::from_slice(&body).map_err(|e| self.unexpected(status, e.to_string()))
    }

    /// Sends `request` and expects an empty success (204).
    pub(crate) async fn empty(&self, request: RequestBuilder) -> Result<(), Error> {
        self.send(request).await.map(drop)
    }

    pub(crate) fn connect(&self, source: reqwest::Error) -> Error {
        Error::Connect {
            server: self.inner.base.clone(),
            // The URL in reqwest's message is ours, never a credential:
            // tokens travel in a header.
            source,
        }
    }

    pub(crate) fn unexpected(&self, status: StatusCode, detail: String) -> Error {
        Error::UnexpectedResponse {
            server: self.inner.base.clone(),
            status,
            detail,
        }
    }
}

/// Whether an answer may be an upstream's rather than the server's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upstream {
    No,
    Yes,
}

/// `Retry-After` in seconds (the form the server sends).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> Client {
        Client::builder(base).build().unwrap()
    }

    #[test]
    fn segments_are_encoded_one_by_one() {
        let c = client("http://127.0.0.1:8080/");
        let r = c
            .request(Method::GET, &["v1", "projects", "a/b", "x y?#"])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            r.url().as_str(),
            "http://127.0.0.1:8080/v1/projects/a%2Fb/x%20y%3F%23"
        );
        for bad in ["..", ".", ""] {
            let e = c
                .request(Method::GET, &["v1", "projects", bad])
                .unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_base_path_is_kept() {
        let c = client("https://example.com/airlock/");
        assert_eq!(c.base_url(), "https://example.com/airlock");
        assert_eq!(c.url("/t/abc"), "https://example.com/airlock/t/abc");
    }

    #[test]
    fn bad_base_urls_are_refused() {
        for bad in ["ftp://x", "not a url", "http://u:p@host", "http://h/?q=1"] {
            let e = Client::builder(bad).build().unwrap_err();
            assert!(matches!(e, Error::InvalidUrl { .. }), "{bad}: {e}");
        }
    }
}
