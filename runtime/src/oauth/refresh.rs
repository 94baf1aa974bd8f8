//! [`TokenRefresher`]: fresh access tokens, one refresh per account at a time.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AsyncHttpClient, ClientId, ClientSecret, HttpRequest, HttpResponse, RefreshToken,
    RequestTokenError, Scope, TokenResponse as _, TokenUrl,
};
use zeroize::Zeroizing;

use super::single_flight::{LocalRefreshLock, RefreshLock};
use crate::store::accounts::{ACCESS_TOKEN, REFRESH_TOKEN};
use crate::store::{Account, AccountStatus, AccountStore, MasterKey, StoreError};

/// Largest token endpoint response read, in bytes.
pub const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
/// Default time allowed for one token request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest provider error code kept in an error.
const MAX_ERROR_CODE_LEN: usize = 64;

/// An app's OAuth client, as the operator registered it with the provider.
#[derive(Clone)]
pub struct OAuthClientConfig {
    pub token_url: String,
    pub client_id: String,
    /// Sent with HTTP Basic authentication (RFC 6749 §2.3.1). Empty for a
    /// public client, which sends only its `client_id`.
    pub client_secret: Zeroizing<String>,
    /// Scopes sent with the refresh; empty sends none (the provider keeps the
    /// originally granted ones, RFC 6749 §6).
    pub scopes: Vec<String>,
}

impl fmt::Debug for OAuthClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClientConfig")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Why no access token could be had. Never contains a token or secret.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(
        "account {account_id} needs to be connected again: the provider refused its refresh token"
    )]
    NeedsReauth { account_id: String },
    #[error("the token endpoint refused the refresh (HTTP {status:?}, error {error_code:?})")]
    Provider {
        status: Option<u16>,
        error_code: String,
    },
    #[error("the token endpoint's response is not a valid token response (HTTP {status:?})")]
    InvalidResponse { status: Option<u16> },
    #[error("token request failed: {0}")]
    Transport(#[source] HttpError),
    #[error("the token endpoint did not answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("account {account_id} has no refresh token and its access token is not usable")]
    NoRefreshToken { account_id: String },
    #[error("no account {account_id} in project {project}")]
    NotFound { project: String, account_id: String },
    #[error("invalid OAuth client configuration: {0}")]
    Config(String),
    #[error("the token refresh task failed: {0}")]
    Task(String),
}

/// Transport failures of a token request.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Request(reqwest::Error),
    #[error("the token endpoint's response exceeds {MAX_TOKEN_RESPONSE} bytes")]
    TooLarge,
    #[error("invalid HTTP message: {0}")]
    Http(#[from] oauth2::http::Error),
}

/// Hands out usable access tokens for OAuth accounts, refreshing them ahead of
/// expiry, once per account however many callers ask. Cheap to clone; share
/// one per process (the single-flight lock lives in it).
#[derive(Clone)]
pub struct TokenRefresher {
    inner: Arc<Inner>,
}

struct Inner {
    store: AccountStore,
    key: Arc<MasterKey>,
    http: reqwest::Client,
    margin: Duration,
    request_timeout: Duration,
    lock: Arc<dyn RefreshLock>,
    /// Told when an account is marked `needs_reauth` (Connect's webhook).
    on_needs_reauth: Option<Arc<dyn NeedsReauthHook>>,
}

/// Hears that the refresher marked an account as needing
/// re-authorisation. Called after the mark is stored; must not fail the
/// refresh (it cannot: it returns nothing).
#[async_trait::async_trait]
pub trait NeedsReauthHook: Send + Sync {
    async fn needs_reauth(&self, project: &str, account_id: &str);
}

/// What the caller needs from the token.
#[derive(Clone)]
enum Want {
    /// Any token valid beyond the margin.
    Fresh,
    /// A token other than this one (rejected upstream), valid beyond the margin.
    Replace(Zeroizing<String>),
}

impl fmt::Debug for TokenRefresher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRefresher")
            .field("margin", &self.inner.margin)
            .field("key", &self.inner.key)
            .finish_non_exhaustive()
    }
}

impl TokenRefresher {
    /// The default refresh-ahead margin.
    pub const DEFAULT_MARGIN: Duration = Duration::from_secs(60);

    /// A refresher over `store`, decrypting with `key` and calling token
    /// endpoints with `http` (the host's policy-checked client). Tokens that
    /// expire within `margin` are refreshed. Single-flight is per process
    /// ([`LocalRefreshLock`]) until [`with_lock`](Self::with_lock) says otherwise.
    pub fn new(
        store: AccountStore,
        key: Arc<MasterKey>,
        http: reqwest::Client,
        margin: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                key,
                http,
                margin,
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
                lock: Arc::new(LocalRefreshLock::new()),
                on_needs_reauth: None,
            }),
        }
    }

    /// Uses `lock` for single-flight (e.g. a PostgreSQL advisory lock shared
    /// by many nodes). Call before cloning the refresher.
    pub fn with_lock(mut self, lock: Arc<dyn RefreshLock>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_lock is called before the refresher is shared")
            .lock = lock;
        self
    }

    /// Calls `hook` whenever an account is marked `needs_reauth`. Call
    /// before cloning the refresher.
    pub fn with_needs_reauth_hook(mut self, hook: Arc<dyn NeedsReauthHook>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_needs_reauth_hook is called before the refresher is shared")
            .on_needs_reauth = Some(hook);
        self
    }

    /// Bounds one token request (default 30 s). With a
    /// [`SharedRefreshLock`](super::SharedRefreshLock), keep its hold above
    /// this ([`SharedRefreshLock::with_hold`](super::SharedRefreshLock::with_hold)).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_request_timeout is called before the refresher is shared")
            .request_timeout = timeout;
        self
    }

    /// A usable access token for the account: the stored one while it is
    /// valid beyond the margin (no lock, no request), otherwise a refreshed
    /// one. With `force`, the token stored when the call starts is treated as
    /// rejected; prefer [`refresh_after_unauthorized`](Self::refresh_after_unauthorized),
    /// which names the rejected token, so late callers do not refresh again.
    pub async fn access_token(
        &self,
        project: &str,
        account_id: &str,
        oauth: &OAuthClientConfig,
        force: bool,
    ) -> Result<Zeroizing<String>, RefreshError> {
        let account = self.load(project, account_id).await?;
        let want = if force {
            Want::Replace(
                account
                    .credential(ACCESS_TOKEN)
                    .map(|t| Zeroizing::new(t.to_owned()))
                    .unwrap_or_default(),
            )
        } else {
            if let Some(token) = self.usable(&account, &Want::Fresh) {
                return Ok(token);
            }
            Want::Fresh
        };
        drop(account);
        self.refresh_locked(project, account_id, oauth, want).await
    }

    /// After the upstream API answered 401 to `stale`: a token other than
    /// `stale`, refreshing only if `stale` is still the stored one (or the
    /// stored one is near expiry). Concurrent callers with the same stale
    /// token cause one refresh.
    pub async fn refresh_after_unauthorized(
        &self,
        project: &str,
        account_id: &str,
        oauth: &OAuthClientConfig,
        stale: &str,
    ) -> Result<Zeroizing<String>, RefreshError> {
        let want = Want::Replace(Zeroizing::new(stale.to_owned()));
        let account = self.load(project, account_id).await?;
        if let Some(token) = self.usable(&account, &want) {
            return Ok(token);
        }
        drop(account);
        self.refresh_locked(project, account_id, oauth, want).await
    }

    /// Reads the account (from the cache); a missing one or one needing
    /// re-authorisation fails.
    async fn load(&self, project: &str, account_id: &str) -> Result<Account, RefreshError> {
        self.load_from(project, account_id, false).await
    }

    /// Reads the account from the database itself: after taking the lock,
    /// and after a refusal, what another node saved must be seen, and its
    /// notification may not have arrived yet.
    async fn load_fresh(&self, project: &str, account_id: &str) -> Result<Account, RefreshError> {
        self.load_from(project, account_id, true).await
    }

    async fn load_from(
        &self,
        project: &str,
        account_id: &str,
        fresh: bool,
    ) -> Result<Account, RefreshError> {
        let store = &self.inner.store;
        let key = &self.inner.key;
        let found = if fresh {
            store.get_fresh(key, project, account_id).await?
        } else {
            store.get(key, project, account_id).await?
        };
        let account = found.ok_or_else(|| RefreshError::NotFound {
            project: project.to_owned(),
            account_id: account_id.to_owned(),
        })?;
        if account.meta.status == AccountStatus::NeedsReauth {
            return Err(RefreshError::NeedsReauth {
                account_id: account_id.to_owned(),
            });
        }
        Ok(account)
    }

    /// The stored access token if it satisfies `want` without a refresh.
    fn usable(&self, account: &Account, want: &Want) -> Option<Zeroizing<String>> {
        let token = account.credential(ACCESS_TOKEN).filter(|t| !t.is_empty())?;
        if let Want::Replace(stale) = want
            && token == stale.as_str()
        {
            return None;
        }
        let fresh = match account.meta.expires_at {
            // No expiry known: the provider said nothing, so the token is used
            // until it is rejected (then a forced refresh replaces it).
            None => true,
            Some(expires_at) => {
                let margin = i64::try_from(self.inner.margin.as_secs()).unwrap_or(i64::MAX);
                expires_at.saturating_sub(unix_now()) > margin
            }
        };
        fresh.then(|| Zeroizing::new(token.to_owned()))
    }

    /// Takes the account's refresh lock, re-reads, and refreshes if still
    /// needed, on a task of its own so that dropping the caller's future
    /// cannot interrupt a refresh between the provider's answer and the save.
    async fn refresh_locked(
        &self,
        project: &str,
        account_id: &str,
        oauth: &OAuthClientConfig,
        want: Want,
    ) -> Result<Zeroizing<String>, RefreshError> {
        let this = self.clone();
        let (project, account_id, oauth) =
            (project.to_owned(), account_id.to_owned(), oauth.clone());
        let task = tokio::spawn(async move {
            let lock_key = format!("{project}\0{account_id}");
            let _guard = this.inner.lock.acquire(&lock_key).await;
            // Re-read: whoever held the lock before may have refreshed already.
            let account = this.load_fresh(&project, &account_id).await?;
            if let Some(token) = this.usable(&account, &want) {
                tracing::debug!(%project, %account_id, "token refreshed by another caller");
                return Ok(token);
            }
            let Some(refresh_token) = account
                .credential(REFRESH_TOKEN)
                .filter(|t| !t.is_empty())
                .map(|t| Zeroizing::new(t.to_owned()))
            else {
                return Err(RefreshError::NoRefreshToken { account_id });
            };
            drop(account);
            this.refresh(&project, &account_id, &oauth, &refresh_token)
                .await
        });
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(RefreshError::Task(e.to_string())),
        }
    }

    /// One token request (RFC 6749 §6), and saving its result.
    async fn refresh(
        &self,
        project: &str,
        account_id: &str,
        oauth: &OAuthClientConfig,
        refresh_token: &str,
    ) -> Result<Zeroizing<String>, RefreshError> {
        let token_url = TokenUrl::new(oauth.token_url.clone())
            .map_err(|e| RefreshError::Config(format!("token URL: {e}")))?;
        let mut client =
            BasicClient::new(ClientId::new(oauth.client_id.clone())).set_token_uri(token_url);
        if !oauth.client_secret.is_empty() {
            client = client.set_client_secret(ClientSecret::new(oauth.client_secret.to_string()));
        }
        let refresh_token = RefreshToken::new(refresh_token.to_owned());
        let mut request = client.exchange_refresh_token(&refresh_token);
        for scope in &oauth.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let http = Http {
            client: self.inner.http.clone(),
            status: AtomicU16::new(0),
        };
        let timeout = self.inner.request_timeout;
        let started = std::time::Instant::now();
        let response = tokio::time::timeout(timeout, request.request_async(&http))
            .await
            .map_err(|_| RefreshError::Timeout(timeout))?;
        let status = match http.status.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s),
        };
        let response = match response {
            Ok(response) => response,
            Err(RequestTokenError::ServerResponse(err)) => {
                if *err.error() == BasicErrorResponseType::InvalidGrant {
                    return self
                        .after_invalid_grant(project, account_id, refresh_token.secret())
                        .await;
                }
                let error_code: String = err
                    .error()
                    .to_string()
                    .chars()
                    .take(MAX_ERROR_CODE_LEN)
                    .collect();
                tracing::warn!(project, account_id, ?status, %error_code, "token refresh refused");
                return Err(RefreshError::Provider { status, error_code });
            }
            Err(RequestTokenError::Request(e)) => {
                tracing::warn!(project, account_id, error = %e, "token request failed");
                return Err(RefreshError::Transport(e));
            }
            // Neither the body (it may hold tokens) nor oauth2's message is kept.
            Err(RequestTokenError::Parse(..)) | Err(RequestTokenError::Other(_)) => {
                tracing::warn!(project, account_id, ?status, "invalid token response");
                return Err(RefreshError::InvalidResponse { status });
            }
        };
        let access = Zeroizing::new(response.access_token().secret().clone());
        if access.is_empty() {
            return Err(RefreshError::InvalidResponse { status });
        }
        let rotated = response
            .refresh_token()
            .map(|t| Zeroizing::new(t.secret().clone()))
            .filter(|t| !t.is_empty());
        let expires_at = response
            .expires_in()
            .map(|d| unix_now().saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
        if let Err(e) = self
            .inner
            .store
            .save_refreshed(
                &self.inner.key,
                project,
                account_id,
                &access,
                rotated.as_deref().map(String::as_str),
                expires_at,
            )
            .await
        {
            // The provider may have rotated the refresh token already; the
            // account may need reconnecting if this persists.
            tracing::error!(project, account_id, error = %e, "refreshed tokens could not be saved");
            return Err(e.into());
        }
        tracing::info!(
            project,
            account_id,
            rotated = rotated.is_some(),
            expires_at,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "access token refreshed"
        );
        Ok(access)
    }
}

impl TokenRefresher {
    /// The provider refused `used` as a refresh token. If the stored one
    /// changed meanwhile, a sibling (another node, without the shared lock)
    /// rotated it and saved fresh tokens: use those. Only a refusal of the
    /// refresh token still stored marks the account as needing
    /// re-authorisation.
    async fn after_invalid_grant(
        &self,
        project: &str,
        account_id: &str,
        used: &str,
    ) -> Result<Zeroizing<String>, RefreshError> {
        let account = self.load_fresh(project, account_id).await?;
        let stored = account.credential(REFRESH_TOKEN).unwrap_or_default();
        if stored != used
            && let Some(token) = self.usable(&account, &Want::Fresh)
        {
            tracing::info!(
                project,
                account_id,
                "refresh token rotated by another node; using its tokens"
            );
            return Ok(token);
        }
        drop(account);
        let marked = self
            .inner
            .store
            .mark_needs_reauth(project, account_id)
            .await?;
        if marked && let Some(hook) = &self.inner.on_needs_reauth {
            hook.needs_reauth(project, account_id).await;
        }
        Err(RefreshError::NeedsReauth {
            account_id: account_id.to_owned(),
        })
    }
}

/// oauth2's HTTP client interface over the host's `reqwest::Client`, capping
/// the response size and remembering the status for errors.
pub(super) struct Http {
    pub(super) client: reqwest::Client,
    pub(super) status: AtomicU16,
}

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|e| HttpError::Request(e.without_url()))?;
            let mut response = self
                .client
                .execute(request)
                .await
                .map_err(|e| HttpError::Request(e.without_url()))?;
            self.status
                .store(response.status().as_u16(), Ordering::Relaxed);
            let mut builder = oauth2::http::Response::builder()
                .status(response.status())
                .version(response.version());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| HttpError::Request(e.without_url()))?
            {
                if body.len() + chunk.len() > MAX_TOKEN_RESPONSE {
                    return Err(HttpError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(builder.body(body)?)
        })
    }
}

fn unix_now() -> i64 {
    crate::store::unix_now()
}
