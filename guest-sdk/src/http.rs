//! Outbound HTTP, made by the host on the step's behalf.
//!
//! ```no_run
//! # use serde::Deserialize;
//! # #[derive(Deserialize)] struct Repo { name: String }
//! # fn demo() -> Result<(), airlock_sdk::Error> {
//! use airlock_sdk::http;
//!
//! // As the run's end user: the host inserts their GitHub token.
//! let repos: Vec<Repo> = http::get("/user/repos").account("github").send()?.json()?;
//!
//! // With a secret handle as a bearer token, never reading it.
//! let key = airlock_sdk::secrets::get("API_KEY")?;
//! let resp = http::post("https://api.example.com/v1/items")
//!     .bearer(&key)
//!     .json(&serde_json::json!({"name": "x"}))
//!     .send()?;
//! if resp.status() >= 400 {
//!     return Err(airlock_sdk::Error::new(format!("upstream said {}", resp.status())));
//! }
//! # Ok(()) }
//! ```
//!
//! The host checks every request against the step's manifest grants and
//! its egress policy; see the README's "Outbound HTTP" section.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::airlock::step::http as wit;
use crate::secrets::Secret;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Refused by policy (host not granted, forbidden address).
    Denied(String),
    /// A bad method, URL or header.
    InvalidRequest(String),
    Timeout(String),
    TooLarge(String),
    ConnectionFailed(String),
    /// No such account, a refused OAuth refresh, or re-authorisation needed.
    CredentialUnusable(String),
    /// The project's rate limit is spent; retry after this long.
    RateLimited(Duration),
    /// The request body could not be serialized, or the response not parsed.
    Body(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied(m) => write!(f, "denied: {m}"),
            Self::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            Self::Timeout(m) => write!(f, "timeout: {m}"),
            Self::TooLarge(m) => write!(f, "too large: {m}"),
            Self::ConnectionFailed(m) => write!(f, "connection failed: {m}"),
            Self::CredentialUnusable(m) => write!(f, "credential unusable: {m}"),
            Self::RateLimited(d) => write!(f, "rate limited: retry after {} ms", d.as_millis()),
            Self::Body(m) => write!(f, "body: {m}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<wit::Error> for HttpError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::Denied(m) => Self::Denied(m),
            wit::Error::InvalidRequest(m) => Self::InvalidRequest(m),
            wit::Error::Timeout(m) => Self::Timeout(m),
            wit::Error::TooLarge(m) => Self::TooLarge(m),
            wit::Error::ConnectionFailed(m) => Self::ConnectionFailed(m),
            wit::Error::CredentialUnusable(m) => Self::CredentialUnusable(m),
            wit::Error::RateLimited(ms) => Self::RateLimited(Duration::from_millis(ms)),
        }
    }
}

pub(crate) enum Auth<'a> {
    Account(String),
    Bearer(&'a Secret),
    Basic(String, &'a Secret),
    Header(String, &'a Secret),
    Query(String, &'a Secret),
    AwsSigV4(AwsSigV4<'a>),
    Digest(String, &'a Secret),
}

/// AWS Signature V4 credentials and scope for
/// [`RequestBuilder::aws_sigv4`]: the host signs the final request with the
/// secret key, which the step holds only as a handle.
///
/// ```no_run
/// # fn demo() -> Result<(), airlock_sdk::Error> {
/// use airlock_sdk::{http, secrets};
/// let key = secrets::get("AWS_SECRET_ACCESS_KEY")?;
/// let aws = http::AwsSigV4::new("AKIAIOSFODNN7EXAMPLE", &key, "us-east-1", "s3");
/// let resp = http::get("https://my-bucket.s3.us-east-1.amazonaws.com/report.csv")
///     .aws_sigv4(aws)
///     .send()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Copy)]
pub struct AwsSigV4<'a> {
    pub(crate) access_key_id: &'a str,
    pub(crate) secret_key: &'a Secret,
    pub(crate) session_token: Option<&'a Secret>,
    pub(crate) region: &'a str,
    pub(crate) service: &'a str,
}

impl<'a> AwsSigV4<'a> {
    /// `access_key_id` is sent in the clear (it is not secret);
    /// `secret_key` never leaves the host.
    pub fn new(
        access_key_id: &'a str,
        secret_key: &'a Secret,
        region: &'a str,
        service: &'a str,
    ) -> Self {
        Self {
            access_key_id,
            secret_key,
            session_token: None,
            region,
            service,
        }
    }

    /// A temporary credential's session token (sent as
    /// `x-amz-security-token`, masked like every credential).
    pub fn session_token(mut self, token: &'a Secret) -> Self {
        self.session_token = Some(token);
        self
    }
}

/// A request being built. Nothing is sent until [`RequestBuilder::send`].
pub struct RequestBuilder<'a> {
    method: &'static str,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout: Option<Duration>,
    auth: Option<Auth<'a>>,
    error: Option<HttpError>,
}

pub fn get(url: impl Into<String>) -> RequestBuilder<'static> {
    RequestBuilder::new("GET", url)
}

pub fn post(url: impl Into<String>) -> RequestBuilder<'static> {
    RequestBuilder::new("POST", url)
}

pub fn put(url: impl Into<String>) -> RequestBuilder<'static> {
    RequestBuilder::new("PUT", url)
}

pub fn patch(url: impl Into<String>) -> RequestBuilder<'static> {
    RequestBuilder::new("PATCH", url)
}

pub fn delete(url: impl Into<String>) -> RequestBuilder<'static> {
    RequestBuilder::new("DELETE", url)
}

impl<'a> RequestBuilder<'a> {
    fn new(method: &'static str, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout: None,
            auth: None,
            error: None,
        }
    }

    /// Adds a header. Credentials are the host's job: `authorization` and
    /// other restricted headers are refused.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends `body` as the raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sends `value` as JSON, with `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                self.body = Some(body);
                self.headers
                    .push(("content-type".into(), "application/json".into()));
            }
            Err(e) => self.error = Some(HttpError::Body(e.to_string())),
        }
        self
    }

    /// Total timeout for this request (never beyond the run's wall time).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// As the run's end user: their connected account of this app (a slug
    /// such as `"github"`) or an account id (`"acc_..."`). The URL may then
    /// be a path relative to the app's base URL.
    pub fn account(self, app_or_id: impl Into<String>) -> RequestBuilder<'a> {
        self.with_auth(Auth::Account(app_or_id.into()))
    }

    /// `Authorization: Bearer <secret>`, inserted by the host.
    pub fn bearer<'b>(self, secret: &'b Secret) -> RequestBuilder<'b>
    where
        'a: 'b,
    {
        self.with_auth(Auth::Bearer(secret))
    }

    /// `Authorization: Basic base64(username:secret)`, inserted by the host.
    pub fn basic<'b>(self, username: impl Into<String>, password: &'b Secret) -> RequestBuilder<'b>
    where
        'a: 'b,
    {
        self.with_auth(Auth::Basic(username.into(), password))
    }

    /// A header whose value is the secret, inserted by the host.
    pub fn secret_header<'b>(
        self,
        name: impl Into<String>,
        secret: &'b Secret,
    ) -> RequestBuilder<'b>
    where
        'a: 'b,
    {
        self.with_auth(Auth::Header(name.into(), secret))
    }

    /// A query parameter whose value is the secret, inserted by the host.
    pub fn secret_query<'b>(self, name: impl Into<String>, secret: &'b Secret) -> RequestBuilder<'b>
    where
        'a: 'b,
    {
        self.with_auth(Auth::Query(name.into(), secret))
    }

    /// Signed by the host with AWS Signature V4 over the final request
    /// (every header set here, the exact body).
    pub fn aws_sigv4<'b>(self, aws: AwsSigV4<'b>) -> RequestBuilder<'b>
    where
        'a: 'b,
    {
        self.with_auth(Auth::AwsSigV4(aws))
    }

    /// HTTP Digest (RFC 7616): the host answers the server's challenge with
    /// the password, which the step holds only as a handle.
    pub fn digest<'b>(self, username: impl Into<String>, password: &'b Secret) -> RequestBuilder<'b>
    where
        'a: 'b,
    {
        self.with_auth(Auth::Digest(username.into(), password))
    }

    fn with_auth<'b>(self, auth: Auth<'b>) -> RequestBuilder<'b>
    where
        'a: 'b,
    {
        RequestBuilder {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
            timeout: self.timeout,
            auth: Some(auth),
            error: self.error,
        }
    }

    /// Sends the request and waits for the whole response.
    pub fn send(self) -> Result<Response, HttpError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let request = crate::host::OutRequest {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
            timeout_ms: self
                .timeout
                .map(|t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX)),
            auth: self.auth.as_ref(),
        };
        Ok(crate::host::http_send(request)?)
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text (invalid bytes replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Body(e.to_string()))
    }
}
