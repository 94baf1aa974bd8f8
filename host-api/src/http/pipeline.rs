//! The one outbound request pipeline. A step's `http.send` and the REST
//! proxy both run every request through [`Pipeline::send`], in this order:
//!
//! 1. bound every size the caller controls ([`super::bounds`]), then
//!    validate the method, URL and headers; refuse headers a caller may not
//!    set (credentials are the host's job; hop-by-hop and framing headers
//!    belong to the HTTP stack);
//! 2. the project's rate limit;
//! 3. resolve the credential: a connected account (through
//!    [`AccountSource`], which refreshes OAuth tokens) or a secret;
//! 4. resolve the URL: full, or relative to the app's base URL with the
//!    account's custom fields checked against their patterns;
//! 5. the host must be granted: by the app's `allowed_domains` for an
//!    account, by the step's `allowed_hosts` otherwise;
//! 6. the address: IP-literal hosts are checked here, names by the
//!    [`CheckedResolver`](super::resolver::CheckedResolver) that resolves
//!    them, so the address dialed is the address checked;
//! 7. credentials inserted last, after every caller header, and registered
//!    with the run's redactor (so an upstream echoing them leaks nothing);
//! 8. send on the shared pooled client; follow at most 5 redirects, each
//!    hop checked again (steps 5 and 6), credentials dropped when the
//!    origin changes;
//! 9. the response body is read up to the cap; one retry after an OAuth
//!    account's 401, with a forced refresh.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{HeaderName, HeaderValue};
use url::Url;
use zeroize::Zeroizing;

use super::client::{check_literal_host, egress_denial};
use super::egress::{EgressPolicy, host_matches};
use super::ratelimit::RateLimiter;
use super::run_accounts::RunAccounts;
pub use super::sign::sigv4::AwsCredentials;
use super::sign::{digest, sigv4};
use crate::apps::{App, AuthKind, Catalog, CredentialLocation};
use crate::redact::Redactor;

/// Tunables of the pipeline.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Total timeout when the caller sets none.
    pub default_timeout: Duration,
    pub max_request_body: usize,
    pub max_response_body: usize,
    pub max_redirects: usize,
    /// Ceiling for any request's total timeout, whatever the caller asks.
    pub max_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(30),
            max_request_body: 10 * 1024 * 1024,
            max_response_body: 10 * 1024 * 1024,
            max_redirects: 5,
            max_timeout: Duration::from_secs(300),
        }
    }
}

/// What a step's manifest grants for HTTP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpGrants {
    /// Apps whose connected accounts the step may call with.
    pub apps: std::collections::BTreeSet<String>,
    /// Hosts reachable without an account (exact or `*.example.com`).
    pub allowed_hosts: Vec<String>,
}

/// Choices that differ between the paths into the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct SendOptions {
    /// Follow redirects here (each hop checked again). Off for `wasi:http`:
    /// a standard client decides itself, and its next request comes back
    /// through the pipeline as a new, fully checked request.
    pub follow_redirects: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            follow_redirects: true,
        }
    }
}

/// Who is asking, and within what.
pub struct Caller<'a> {
    pub project: &'a str,
    pub external_user_id: Option<&'a str>,
    pub grants: &'a HttpGrants,
    /// The run's wall-clock deadline; requests never outlive it.
    pub deadline: Option<Instant>,
    pub redactor: &'a Redactor,
    /// Credentials passed with this run; they take precedence over stored
    /// accounts for their apps.
    pub run_accounts: Option<&'a RunAccounts>,
}

/// The credential a request should carry, as the caller named it.
pub enum Credential {
    /// A connected account of the caller's external user: an `acc_` id or
    /// an app slug.
    Account(String),
    Bearer(Zeroizing<String>),
    Basic {
        username: String,
        password: Zeroizing<String>,
    },
    Header {
        name: String,
        value: Zeroizing<String>,
    },
    Query {
        name: String,
        value: Zeroizing<String>,
    },
    /// AWS Signature V4 over the final request ([`super::sign::sigv4`]).
    AwsSigV4(Box<AwsSigV4Auth>),
    /// HTTP Digest (RFC 7616): the host answers the server's challenge.
    Digest {
        username: String,
        password: Zeroizing<String>,
    },
}

/// What a request is signed with under AWS Signature V4.
#[derive(Clone)]
pub struct AwsSigV4Auth {
    pub credentials: AwsCredentials,
    pub region: String,
    pub service: String,
}

/// A request as the caller built it.
pub struct OutboundRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Option<Duration>,
    pub credential: Option<Credential>,
}

#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a run record keeps of a call: no query string, no headers, no
/// credentials.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallSummary {
    pub method: String,
    /// Scheme, host, port and path only.
    pub url: String,
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub response_bytes: u64,
    pub account_id: Option<String>,
    /// For a 429 or 5xx answer, its `Retry-After` as milliseconds from when
    /// it arrived (RFC 9110 §10.2.3), bounded by [`MAX_RETRY_AFTER`]: what a
    /// queued run's retry waits at least. A number the host derived, never
    /// the header's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// Longest `Retry-After` kept (a day; a retry never waits longer).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// The `Retry-After` of a 429 or 5xx `response`, in milliseconds from
/// `now`: delta-seconds or an HTTP-date (a date in the past is 0). `None`
/// for another status, no header or one that does not parse.
pub fn retry_after_ms(
    status: u16,
    headers: &[(String, String)],
    now: std::time::SystemTime,
) -> Option<u64> {
    if status != 429 && !(500..=599).contains(&status) {
        return None;
    }
    let value = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))?
        .1
        .trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still "a long time".
        Duration::from_secs(
            value
                .parse::<u64>()
                .unwrap_or(u64::MAX)
                .min(MAX_RETRY_AFTER.as_secs()),
        )
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(u64::try_from(wait.min(MAX_RETRY_AFTER).as_millis()).unwrap_or(u64::MAX))
}

/// Why a request failed; mirrors the WIT `http.error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("denied: {0}")]
    Denied(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("timeout: {0}")]
    Timeout(String),
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("connection failed: {0}")]
    ConnectionFailed(String),
    #[error("credential unusable: {0}")]
    CredentialUnusable(String),
    #[error("rate limited: retry after {} ms", .0.as_millis())]
    RateLimited(Duration),
}

/// A connected account, resolved for one request.
#[derive(Clone)]
pub struct ResolvedAccount {
    pub id: String,
    pub app: String,
    /// Credential fields (`access_token`, `api_key`, `username`, ...).
    pub credentials: BTreeMap<String, Zeroizing<String>>,
    /// Non-secret fields for base-URL templates (`subdomain`, ...).
    pub custom_fields: BTreeMap<String, String>,
    /// When the OAuth access token expires (unix seconds), if known.
    pub expires_at: Option<i64>,
    /// Passed with the run ([`RunAccounts`]) rather than stored: its OAuth
    /// token is used as given, never refreshed.
    pub from_run: bool,
}

/// Why an account could not be used. Messages never hold a credential.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AccountError(pub String);

/// Where connected accounts come from: the runtime's encrypted store, or
/// credentials passed with a run. Kept a trait so this crate needs no
/// database.
#[async_trait::async_trait]
pub trait AccountSource: Send + Sync {
    /// The account `app_or_id` of `external_user_id` in `project`.
    async fn find(
        &self,
        project: &str,
        external_user_id: &str,
        app_or_id: &str,
    ) -> Result<ResolvedAccount, AccountError>;

    /// A usable OAuth access token for `account`: refreshed ahead of expiry,
    /// or now when `stale` (the token an upstream just refused) is given.
    async fn oauth_access_token(
        &self,
        project: &str,
        account: &ResolvedAccount,
        app: &App,
        stale: Option<&str>,
    ) -> Result<Zeroizing<String>, AccountError>;
}

/// An account source with no accounts (a run without an external user).
pub struct NoAccounts;

#[async_trait::async_trait]
impl AccountSource for NoAccounts {
    async fn find(
        &self,
        _: &str,
        _: &str,
        app_or_id: &str,
    ) -> Result<ResolvedAccount, AccountError> {
        Err(AccountError(format!(
            "no connected account {app_or_id:?} is available to this run"
        )))
    }

    async fn oauth_access_token(
        &self,
        _: &str,
        account: &ResolvedAccount,
        _: &App,
        _: Option<&str>,
    ) -> Result<Zeroizing<String>, AccountError> {
        Err(AccountError(format!(
            "account {} cannot be refreshed here",
            account.id
        )))
    }
}

/// Headers a caller may never set. Credentials are inserted by the host;
/// the rest describe the connection or framing, which the HTTP stack owns
/// (a caller-set `host` or `content-length` is a request-smuggling tool).
pub fn restricted_header(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "authorization",
        "proxy-authorization",
        "cookie",
        "cookie2",
        "host",
        "content-length",
        "connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "keep-alive",
        "via",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-forwarded-server",
        "x-real-ip",
        "x-client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "x-original-url",
        "x-rewrite-url",
        // Method overrides: a GET the host let through must not become a
        // DELETE at a framework that honours them.
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "http2-settings",
    ];
    let n = name.to_ascii_lowercase();
    EXACT.contains(&n.as_str()) || n.starts_with("proxy-") || n.starts_with("sec-")
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// The shared pipeline: one pooled client and policy for every run.
pub struct Pipeline {
    client: reqwest::Client,
    policy: Arc<EgressPolicy>,
    limiter: Arc<RateLimiter>,
    catalog: Arc<Catalog>,
    accounts: Arc<dyn AccountSource>,
    config: HttpConfig,
}

/// Where a request is allowed to go, fixed before the first hop.
enum Scope<'a> {
    App {
        app: &'a App,
        fields: &'a BTreeMap<String, String>,
    },
    Hosts(&'a [String]),
}

impl Scope<'_> {
    fn allows(&self, host: &str) -> Result<(), HttpError> {
        match self {
            Scope::App { app, fields } => match app.allows_host(host, fields) {
                Ok(true) => Ok(()),
                Ok(false) => Err(HttpError::Denied(format!(
                    "{host} is not among the allowed domains of app {}",
                    app.slug
                ))),
                Err(e) => Err(HttpError::CredentialUnusable(e.to_string())),
            },
            Scope::Hosts(rules) => {
                if rules.iter().any(|r| host_matches(r, host)) {
                    Ok(())
                } else {
                    Err(HttpError::Denied(format!(
                        "{host} is not granted to this step (manifest `[http] allowed_hosts`)"
                    )))
                }
            }
        }
    }
}

/// The credential to insert, fully rendered (or, for the schemes the host
/// computes per request, what it computes them from).
enum Insert {
    Header(HeaderName, Zeroizing<String>),
    Query(String, Zeroizing<String>),
    /// Signed at each hop, over exactly what that hop sends.
    SigV4(Box<AwsSigV4Auth>),
    /// Sent without credentials first; a same-origin 401's challenge is
    /// answered once.
    Digest {
        username: String,
        password: Zeroizing<String>,
    },
}

impl Pipeline {
    pub fn new(
        client: reqwest::Client,
        policy: Arc<EgressPolicy>,
        limiter: Arc<RateLimiter>,
        catalog: Arc<Catalog>,
        accounts: Arc<dyn AccountSource>,
        config: HttpConfig,
    ) -> Self {
        Self {
            client,
            policy,
            limiter,
            catalog,
            accounts,
            config,
        }
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Runs one request through every step of the pipeline.
    pub async fn send(
        &self,
        caller: &Caller<'_>,
        request: OutboundRequest,
    ) -> (Result<OutboundResponse, HttpError>, CallSummary) {
        self.send_with(caller, request, SendOptions::default())
            .await
    }

    /// [`Pipeline::send`] with per-path choices (`wasi:http` returns
    /// redirects to the guest's client instead of following them).
    pub async fn send_with(
        &self,
        caller: &Caller<'_>,
        request: OutboundRequest,
        options: SendOptions,
    ) -> (Result<OutboundResponse, HttpError>, CallSummary) {
        let started = Instant::now();
        let mut summary = CallSummary {
            method: String::new(),
            url: String::new(),
            status: None,
            duration_ms: 0,
            response_bytes: 0,
            account_id: None,
            retry_after_ms: None,
        };
        let result = self
            .send_inner(caller, request, options, &mut summary)
            .await;
        summary.duration_ms = started.elapsed().as_millis() as u64;
        if let Ok(r) = &result {
            summary.status = Some(r.status);
            summary.response_bytes = r.body.len() as u64;
            summary.retry_after_ms =
                retry_after_ms(r.status, &r.headers, std::time::SystemTime::now());
        }
        // A path can hold a secret (`/bot<TOKEN>/send`): the summary goes
        // into run records, so it is masked like everything else.
        summary.url = caller.redactor.redact(&summary.url).into_owned();
        let result = result.map(|r| mask_response(r, caller.redactor));
        (result, summary)
    }

    async fn send_inner(
        &self,
        caller: &Caller<'_>,
        request: OutboundRequest,
        options: SendOptions,
        summary: &mut CallSummary,
    ) -> Result<OutboundResponse, HttpError> {
        super::bounds::check(&request)?;
        let method = validate_method(&request.method)?;
        summary.method = method.as_str().to_string();
        let headers = validate_headers(&request.headers)?;
        if request.body.len() > self.config.max_request_body {
            return Err(HttpError::TooLarge(format!(
                "request body of {} bytes exceeds the cap of {} bytes",
                request.body.len(),
                self.config.max_request_body
            )));
        }
        self.limiter
            .check(caller.project)
            .await
            .map_err(|e| HttpError::RateLimited(e.retry_after))?;
        let timeout = self.timeout_for(caller, request.timeout)?;
        let deadline = Instant::now() + timeout;

        let account = match &request.credential {
            Some(Credential::Account(app_or_id)) => {
                Some(self.find_account(caller, app_or_id).await?)
            }
            _ => None,
        };
        let app = match &account {
            Some(a) => Some(self.app_for(caller, a)?),
            None => None,
        };
        summary.account_id = account.as_ref().map(|a| a.id.clone());
        let scope = match (&account, app) {
            (Some(a), Some(app)) => Scope::App {
                app,
                fields: &a.custom_fields,
            },
            _ => Scope::Hosts(&caller.grants.allowed_hosts),
        };
        let url = self.resolve_url(&request.url, &scope)?;
        summary.url = summary_url(&url);

        let mut attempt_stale: Option<Zeroizing<String>> = None;
        for attempt in 0..2 {
            let insert = self
                .credential(
                    caller,
                    &request.credential,
                    account.as_ref(),
                    app,
                    attempt_stale.as_deref().map(|s| s.as_str()),
                )
                .await?;
            if insert.is_some() {
                self.check_credential_transport(&url)?;
            }
            let (response, same_origin) = self
                .send_following_redirects(
                    caller,
                    &method,
                    &url,
                    &headers,
                    &request.body,
                    &scope,
                    insert.as_ref(),
                    deadline,
                    options.follow_redirects,
                )
                .await?;
            // A token passed with the run cannot be refreshed here.
            let refreshable = app.is_some_and(|a| a.auth == AuthKind::OAuth2)
                && account.as_ref().is_some_and(|a| !a.from_run);
            // Only a 401 from the origin that received the token says the
            // token is bad; a 401 from elsewhere must not force a refresh.
            if attempt == 0 && response.status == 401 && refreshable && same_origin {
                // The token may have been revoked or expired early: refresh
                // once, with the refused token as the stale one, and retry.
                if let Some(Insert::Header(_, value)) = &insert {
                    attempt_stale = Some(Zeroizing::new(bearer_token(value).to_string()));
                    continue;
                }
            }
            return Ok(response);
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn timeout_for(
        &self,
        caller: &Caller<'_>,
        asked: Option<Duration>,
    ) -> Result<Duration, HttpError> {
        let mut timeout = asked
            .unwrap_or(self.config.default_timeout)
            .min(self.config.max_timeout);
        if let Some(deadline) = caller.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(HttpError::Timeout("the run's wall time is spent".into()));
            }
            timeout = timeout.min(left);
        }
        Ok(timeout)
    }

    async fn find_account(
        &self,
        caller: &Caller<'_>,
        app_or_id: &str,
    ) -> Result<ResolvedAccount, HttpError> {
        // The grant is checked before the lookup, and an account id the
        // step may not use answers exactly like one that does not exist, so
        // a step cannot learn which apps its end user has connected.
        let is_id = app_or_id.starts_with("acc_");
        if !is_id && !caller.grants.apps.contains(app_or_id) {
            return Err(HttpError::Denied(format!(
                "the step's manifest does not grant app {app_or_id} (`[http] apps`)"
            )));
        }
        if !is_id && let Some(account) = caller.run_accounts.and_then(|r| r.get(app_or_id)) {
            return Ok(account.clone());
        }
        let unavailable = || {
            HttpError::CredentialUnusable(format!(
                "no connected account {app_or_id:?} is available to this run"
            ))
        };
        let Some(user) = caller.external_user_id else {
            return Err(HttpError::CredentialUnusable(format!(
                "this run has no external user and no credentials for {app_or_id:?}, \
                 so it has no such connected account"
            )));
        };
        let account = match self.accounts.find(caller.project, user, app_or_id).await {
            Ok(a) => a,
            Err(e) if !is_id => return Err(HttpError::CredentialUnusable(e.0)),
            Err(_) => return Err(unavailable()),
        };
        if !caller.grants.apps.contains(&account.app) {
            return Err(unavailable());
        }
        Ok(account)
    }

    fn app_for<'c>(
        &'c self,
        _caller: &Caller<'_>,
        account: &ResolvedAccount,
    ) -> Result<&'c App, HttpError> {
        self.catalog.get(&account.app).ok_or_else(|| {
            HttpError::CredentialUnusable(format!("app {} is not in the catalog", account.app))
        })
    }

    fn resolve_url(&self, raw: &str, scope: &Scope<'_>) -> Result<Url, HttpError> {
        let url = if raw.starts_with('/') {
            let Scope::App { app, fields } = scope else {
                return Err(HttpError::InvalidRequest(format!(
                    "a relative URL ({raw:?}) needs an account whose app has a base URL"
                )));
            };
            let base = app
                .resolve_base_url(fields)
                .map_err(|e| HttpError::CredentialUnusable(e.to_string()))?
                .ok_or_else(|| {
                    HttpError::InvalidRequest(format!(
                        "app {} has no base URL; use a full URL",
                        app.slug
                    ))
                })?;
            // Never outside the base: no dot segments, and the parsed URL
            // still under the base path (`apps::join_relative`).
            crate::apps::join_relative(&base, raw)
                .map_err(|e| HttpError::InvalidRequest(e.to_string()))?
        } else {
            Url::parse(raw).map_err(|e| HttpError::InvalidRequest(format!("bad URL: {e}")))?
        };
        self.check_url(&url, scope)?;
        Ok(url)
    }

    /// Steps 5 and 6 for one hop.
    fn check_url(&self, url: &Url, scope: &Scope<'_>) -> Result<(), HttpError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::InvalidRequest(format!(
                "scheme {:?} is not allowed; use https",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(HttpError::InvalidRequest(
                "credentials in the URL are not allowed; use `auth`".into(),
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| HttpError::InvalidRequest("the URL has no host".into()))?
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        scope.allows(host)?;
        check_literal_host(&self.policy, url).map_err(|e| HttpError::Denied(e.to_string()))?;
        Ok(())
    }

    /// Credentials travel over https only. The exception is an IP-literal
    /// host inside a range the operator allowed explicitly (a local test
    /// server): the operator has said that network is trusted.
    fn check_credential_transport(&self, url: &Url) -> Result<(), HttpError> {
        if url.scheme() == "https" {
            return Ok(());
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && self.policy.allow_ranges().iter().any(|r| r.contains(&ip))
        {
            return Ok(());
        }
        Err(HttpError::Denied(
            "credentials are only sent over https".into(),
        ))
    }

    /// Renders the credential to insert, registering every value with the
    /// run's redactor first.
    async fn credential(
        &self,
        caller: &Caller<'_>,
        credential: &Option<Credential>,
        account: Option<&ResolvedAccount>,
        app: Option<&App>,
        stale: Option<&str>,
    ) -> Result<Option<Insert>, HttpError> {
        let r = caller.redactor;
        let header = |name: &str, value: String| -> Result<Insert, HttpError> {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("bad header name {name:?}")))?;
            Ok(Insert::Header(name, Zeroizing::new(value)))
        };
        let insert = match credential {
            None => return Ok(None),
            Some(Credential::Bearer(token)) => {
                r.register("bearer", token);
                header("authorization", format!("Bearer {}", token.as_str()))?
            }
            Some(Credential::Basic { username, password }) => {
                if username.contains(':') || username.chars().any(char::is_control) {
                    return Err(HttpError::InvalidRequest(
                        "a basic-auth username may not contain `:` or control characters (RFC 7617)"
                            .into(),
                    ));
                }
                r.register("basic", password);
                let pair = Zeroizing::new(format!("{username}:{}", password.as_str()));
                r.register("basic", &pair);
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
                r.register("basic", &encoded);
                header("authorization", format!("Basic {encoded}"))?
            }
            Some(Credential::Header { name, value }) => {
                r.register(name, value);
                if restricted_header(name) && !name.eq_ignore_ascii_case("authorization") {
                    return Err(HttpError::InvalidRequest(format!(
                        "header {name:?} cannot carry a secret"
                    )));
                }
                header(name, value.to_string())?
            }
            Some(Credential::Query { name, value }) => {
                r.register(name, value);
                Insert::Query(name.clone(), value.clone())
            }
            Some(Credential::AwsSigV4(auth)) => {
                r.register("aws-sigv4", &auth.credentials.secret_key);
                if let Some(token) = &auth.credentials.session_token {
                    r.register("aws-sigv4", token);
                }
                sigv4::validate(&auth.credentials, &auth.region, &auth.service)
                    .map_err(|e| HttpError::InvalidRequest(e.to_string()))?;
                Insert::SigV4(auth.clone())
            }
            Some(Credential::Digest { username, password }) => {
                r.register("digest", password);
                digest::validate_username(username)
                    .map_err(|e| HttpError::InvalidRequest(e.to_string()))?;
                Insert::Digest {
                    username: username.clone(),
                    password: password.clone(),
                }
            }
            Some(Credential::Account(_)) => {
                let (account, app) = (
                    account.expect("resolved above"),
                    app.expect("resolved above"),
                );
                let mut fields: BTreeMap<String, String> = account
                    .credentials
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string()))
                    .collect();
                if app.auth == AuthKind::OAuth2 && !account.from_run {
                    let token = self
                        .accounts
                        .oauth_access_token(caller.project, account, app, stale)
                        .await
                        .map_err(|e| HttpError::CredentialUnusable(e.0))?;
                    fields.insert("access_token".into(), token.to_string());
                }
                let label = format!("account:{}", app.slug);
                for value in fields.values() {
                    r.register(&label, value);
                }
                let (location, rendered) = app
                    .render_credential(&fields)
                    .map_err(|e| HttpError::CredentialUnusable(e.to_string()))?;
                fields.values_mut().for_each(zeroize::Zeroize::zeroize);
                r.register(&label, &rendered);
                match location {
                    CredentialLocation::Header(name) => header(&name, rendered)?,
                    CredentialLocation::Query(name) => {
                        Insert::Query(name, Zeroizing::new(rendered))
                    }
                }
            }
        };
        Ok(Some(insert))
    }

    /// Sends the request, following redirects. Returns the response and
    /// whether it came from the original origin.
    #[allow(clippy::too_many_arguments)]
    async fn send_following_redirects(
        &self,
        caller: &Caller<'_>,
        method: &reqwest::Method,
        url: &Url,
        headers: &[(HeaderName, HeaderValue)],
        body: &[u8],
        scope: &Scope<'_>,
        insert: Option<&Insert>,
        deadline: Instant,
        follow: bool,
    ) -> Result<(OutboundResponse, bool), HttpError> {
        let origin = url.origin();
        let (mut method, mut url, mut body) = (method.clone(), url.clone(), Some(body.to_vec()));
        for hop in 0..=self.config.max_redirects {
            let mut target = url.clone();
            // Credentials only while the request stays on its origin.
            let creds = insert.filter(|_| target.origin() == origin);
            if let Some(Insert::Query(name, value)) = creds {
                target.query_pairs_mut().append_pair(name, value);
            }
            let body_now = body.as_deref().unwrap_or_default();
            let mut response = self
                .send_hop(&method, &target, headers, body_now, creds, None, deadline)
                .await?;
            if let Some(Insert::Digest { username, password }) = creds
                && response.status() == reqwest::StatusCode::UNAUTHORIZED
            {
                let answer = digest_answer(&response, username, password, &method, &target)?;
                response = self
                    .send_hop(
                        &method,
                        &target,
                        headers,
                        body_now,
                        creds,
                        Some(answer),
                        deadline,
                    )
                    .await?;
            }
            let status = response.status();
            if follow
                && status.is_redirection()
                && let Some(location) = response.headers().get(reqwest::header::LOCATION)
            {
                if hop == self.config.max_redirects {
                    return Err(HttpError::ConnectionFailed(format!(
                        "more than {} redirects",
                        self.config.max_redirects
                    )));
                }
                let location = location.to_str().map_err(|_| {
                    HttpError::ConnectionFailed("a redirect with an unreadable Location".into())
                })?;
                let next = url.join(location).map_err(|e| {
                    HttpError::ConnectionFailed(format!("a redirect to a bad URL: {e}"))
                })?;
                self.check_url(&next, scope)?;
                if next.origin() != origin {
                    // An upstream may copy the query (and a credential in
                    // it) into `Location`: strip the parameter the host
                    // inserted, and refuse to carry any other value the run
                    // has registered to another origin.
                    let mut next = next.clone();
                    if let Some(Insert::Query(name, _)) = insert {
                        strip_query_param(&mut next, name);
                    }
                    if let std::borrow::Cow::Owned(_) = caller.redactor.redact(next.as_str()) {
                        return Err(HttpError::Denied(
                            "a redirect would carry a credential to another origin".into(),
                        ));
                    }
                    url = next;
                } else {
                    url = next;
                }
                if status == reqwest::StatusCode::SEE_OTHER
                    || (matches!(status.as_u16(), 301 | 302) && method == reqwest::Method::POST)
                {
                    method = reqwest::Method::GET;
                    body = None;
                }
                continue;
            }
            let same_origin = url.origin() == origin;
            return Ok((self.read_response(response).await?, same_origin));
        }
        unreachable!("the loop returns by its last hop")
    }

    /// Builds and sends one hop: the caller's headers, then the credential
    /// (a SigV4 signature computed over exactly this hop's method, URL,
    /// headers and body; a Digest answer when one is given).
    #[allow(clippy::too_many_arguments)]
    async fn send_hop(
        &self,
        method: &reqwest::Method,
        target: &Url,
        headers: &[(HeaderName, HeaderValue)],
        body: &[u8],
        creds: Option<&Insert>,
        digest_answer: Option<Zeroizing<String>>,
        deadline: Instant,
    ) -> Result<reqwest::Response, HttpError> {
        let mut builder = self.client.request(method.clone(), target.clone());
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let sensitive = |value: &str| {
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                HttpError::CredentialUnusable("the credential is not a valid header value".into())
            })?;
            value.set_sensitive(true);
            Ok::<_, HttpError>(value)
        };
        match creds {
            Some(Insert::Header(name, value)) => {
                builder = builder.header(name, sensitive(value)?);
            }
            Some(Insert::SigV4(auth)) => {
                let mut target = target.clone();
                sigv4::normalize_url(&mut target);
                builder = self.client.request(method.clone(), target.clone());
                for (name, value) in headers {
                    builder = builder.header(name, value);
                }
                let plain = headers
                    .iter()
                    .map(|(n, v)| {
                        let v = v.to_str().map_err(|_| {
                            HttpError::InvalidRequest(format!(
                                "header {n} is not ASCII; AWS SigV4 signs ASCII header values"
                            ))
                        })?;
                        Ok((n.as_str().to_string(), v.to_string()))
                    })
                    .collect::<Result<Vec<_>, HttpError>>()?;
                let params = sigv4::SigningParams::for_service(
                    &auth.region,
                    &auth.service,
                    std::time::SystemTime::now(),
                );
                let added = sigv4::sign(
                    method.as_str(),
                    &target,
                    &plain,
                    body,
                    &auth.credentials,
                    &params,
                )
                .map_err(|e| HttpError::InvalidRequest(e.to_string()))?;
                for (name, value) in added {
                    builder = builder.header(name, sensitive(&value)?);
                }
            }
            Some(Insert::Digest { .. }) => {
                if let Some(answer) = &digest_answer {
                    builder = builder.header(reqwest::header::AUTHORIZATION, sensitive(answer)?);
                }
            }
            Some(Insert::Query(..)) | None => {}
        }
        if !body.is_empty() {
            builder = builder.body(body.to_vec());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HttpError::Timeout("no answer within the timeout".into()));
        }
        builder
            .timeout(left)
            .send()
            .await
            .map_err(map_reqwest_error)
    }

    async fn read_response(
        &self,
        mut response: reqwest::Response,
    ) -> Result<OutboundResponse, HttpError> {
        let cap = self.config.max_response_body;
        if let Some(len) = response.content_length()
            && len as usize > cap
        {
            return Err(HttpError::TooLarge(format!(
                "the response body of {len} bytes exceeds the cap of {cap} bytes"
            )));
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        // reqwest's per-request timeout (set from the deadline when the
        // request was built) covers reading the body too: no timer here.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(map_reqwest_error)? {
            if body.len() + chunk.len() > cap {
                return Err(HttpError::TooLarge(format!(
                    "the response body exceeds the cap of {cap} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(OutboundResponse {
            status,
            headers,
            body,
        })
    }
}

/// The `Authorization: Digest` answer to a 401's challenge, for `target`.
fn digest_answer(
    response: &reqwest::Response,
    username: &str,
    password: &str,
    method: &reqwest::Method,
    target: &Url,
) -> Result<Zeroizing<String>, HttpError> {
    let challenges = response
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let challenge = digest::parse_challenge(challenges)
        .map_err(|e| HttpError::CredentialUnusable(e.to_string()))?;
    let mut uri = target.path().to_string();
    if let Some(q) = target.query() {
        uri.push('?');
        uri.push_str(q);
    }
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)
        .map_err(|_| HttpError::ConnectionFailed("no randomness for a digest cnonce".into()))?;
    digest::respond(
        &challenge,
        username,
        password,
        method.as_str(),
        &uri,
        &hex::encode(nonce),
        1,
    )
    .map(Zeroizing::new)
    .map_err(|e| HttpError::InvalidRequest(e.to_string()))
}

/// Removes every `name=` pair from `url`'s query.
fn strip_query_param(url: &mut Url, name: &str) {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
}

/// Masks every value the run has registered out of a response before the
/// guest sees it. Why: a step without the reveal grant could otherwise read
/// a secret (or an account token) by sending it to a granted host that
/// echoes requests back. Bodies that are not UTF-8 are passed as they are.
fn mask_response(mut r: OutboundResponse, redactor: &Redactor) -> OutboundResponse {
    if let Ok(text) = std::str::from_utf8(&r.body)
        && let std::borrow::Cow::Owned(masked) = redactor.redact(text)
    {
        r.body = masked.into_bytes();
    }
    for (_, value) in &mut r.headers {
        if let std::borrow::Cow::Owned(masked) = redactor.redact(value) {
            *value = masked;
        }
    }
    r
}

fn validate_method(method: &str) -> Result<reqwest::Method, HttpError> {
    let upper = method.to_ascii_uppercase();
    if !METHODS.contains(&upper.as_str()) {
        return Err(HttpError::InvalidRequest(format!(
            "method {method:?} is not allowed; use one of {}",
            METHODS.join(", ")
        )));
    }
    reqwest::Method::from_bytes(upper.as_bytes())
        .map_err(|_| HttpError::InvalidRequest(format!("bad method {method:?}")))
}

fn validate_headers(
    headers: &[(String, String)],
) -> Result<Vec<(HeaderName, HeaderValue)>, HttpError> {
    headers
        .iter()
        .map(|(name, value)| {
            if restricted_header(name) {
                return Err(HttpError::InvalidRequest(format!(
                    "header {name:?} may not be set by the caller; credentials are inserted by the host (use `auth`)"
                )));
            }
            if value.contains(['\r', '\n']) || name.contains(['\r', '\n']) {
                return Err(HttpError::InvalidRequest(format!(
                    "header {name:?} holds a CR or LF"
                )));
            }
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("bad header name {name:?}")))?;
            let v = HeaderValue::from_str(value)
                .map_err(|_| HttpError::InvalidRequest(format!("bad value for header {name:?}")))?;
            Ok((n, v))
        })
        .collect()
}

/// The token of a `Bearer <token>` value, or the whole value.
fn bearer_token(value: &str) -> &str {
    value.strip_prefix("Bearer ").unwrap_or(value)
}

fn summary_url(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

fn map_reqwest_error(e: reqwest::Error) -> HttpError {
    // A refusal by the checked resolver travels inside reqwest's error.
    if let Some(denied) = egress_denial(&e) {
        return HttpError::Denied(denied.to_string());
    }
    if e.is_timeout() {
        HttpError::Timeout("no answer within the timeout".into())
    } else {
        // reqwest's message names the URL; keep only the kind of failure.
        let kind = if e.is_connect() {
            "could not connect"
        } else {
            "the request failed"
        };
        let mut detail = String::new();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            detail = s.to_string();
            source = s.source();
        }
        HttpError::ConnectionFailed(if detail.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}: {detail}")
        })
    }
}

#[cfg(test)]
mod retry_after_tests {
    use std::time::{Duration, SystemTime};

    use super::retry_after_ms;

    fn h(v: &str) -> Vec<(String, String)> {
        vec![("Retry-After".to_owned(), v.to_owned())]
    }

    #[test]
    fn retry_after_is_read_as_rfc_9110_says() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(retry_after_ms(503, &h("2"), now), Some(2000));
        assert_eq!(retry_after_ms(429, &h(" 0 "), now), Some(0));
        // An HTTP-date: from now; in the past, no wait.
        let at = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after_ms(503, &h(&at), now), Some(30_000));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(retry_after_ms(503, &h(&past), now), Some(0));
        // Bounded at a day, however large.
        assert_eq!(
            retry_after_ms(503, &h("99999999999999999999999"), now),
            Some(86_400_000)
        );
        // Only for 429 and 5xx, and only what parses.
        assert_eq!(retry_after_ms(200, &h("2"), now), None);
        assert_eq!(retry_after_ms(302, &h("2"), now), None);
        assert_eq!(retry_after_ms(503, &h("soon"), now), None);
        assert_eq!(retry_after_ms(503, &h("-1"), now), None);
        assert_eq!(retry_after_ms(503, &[], now), None);
    }
}
