//! The authorization-code exchange of Connect (RFC 6749 §4.1.3, with the
//! PKCE verifier of RFC 7636 §4.5): the one request that turns a code the
//! provider sent to the browser into tokens.
//!
//! Why it is shaped like the refresh ([`super::TokenRefresher`]):
//!
//! - it goes through the host's policy-checked client (the caller passes
//!   it), so a token URL that resolves to a private or metadata address is
//!   refused exactly as a step's request would be, and the caller checks
//!   IP-literal hosts first;
//! - it never follows redirects, and reads at most
//!   [`super::MAX_TOKEN_RESPONSE`] bytes;
//! - neither the code, the verifier, the client secret nor anything in the
//!   answer is logged or put in an error: errors carry an HTTP status and
//!   the provider's registered error code, never `error_description` (a
//!   provider's free text, which a hostile provider could fill with
//!   anything and which would end up on an operator's screen).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, TokenResponse as _, TokenUrl,
};
use zeroize::Zeroizing;

use super::refresh::{Http, HttpError};
use crate::store::accounts::{ACCESS_TOKEN, REFRESH_TOKEN};

/// The credential field holding the scopes the provider granted.
pub const SCOPE: &str = "scope";

/// Longest provider error code kept.
const MAX_ERROR_CODE_LEN: usize = 64;

/// The client and endpoint of one exchange.
pub struct Exchange<'a> {
    pub token_url: &'a str,
    pub redirect_uri: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    /// Send the client in the body rather than with HTTP Basic.
    pub client_in_body: bool,
    pub code: &'a str,
    pub verifier: Option<&'a str>,
    pub timeout: Duration,
}

/// What the provider granted, as an account's credentials.
pub struct Granted {
    /// `access_token`, `refresh_token` when sent, `scope` when known.
    pub credentials: BTreeMap<String, Zeroizing<String>>,
    /// Unix seconds, from `expires_in`.
    pub expires_at: Option<i64>,
    pub scopes: Vec<String>,
}

/// Why an exchange failed. Never holds a code, token or secret.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("the token endpoint refused the code (HTTP {status:?}, error {error_code:?})")]
    Provider {
        status: Option<u16>,
        error_code: String,
    },
    #[error("the token endpoint's answer is not a valid token response (HTTP {status:?})")]
    InvalidResponse { status: Option<u16> },
    #[error("the token request failed: {0}")]
    Transport(#[source] HttpError),
    #[error("the token endpoint did not answer within {0:?}")]
    Timeout(Duration),
    #[error("invalid OAuth settings: {0}")]
    Config(&'static str),
}

/// Exchanges the code over `http` (the host's checked client).
pub async fn exchange_code(
    http: &reqwest::Client,
    x: Exchange<'_>,
    now: i64,
) -> Result<Granted, ExchangeError> {
    let token_url =
        TokenUrl::new(x.token_url.to_owned()).map_err(|_| ExchangeError::Config("token URL"))?;
    let redirect = RedirectUrl::new(x.redirect_uri.to_owned())
        .map_err(|_| ExchangeError::Config("redirect URI"))?;
    let mut client = BasicClient::new(ClientId::new(x.client_id.to_owned()))
        .set_token_uri(token_url)
        .set_redirect_uri(redirect)
        .set_auth_type(if x.client_in_body {
            AuthType::RequestBody
        } else {
            AuthType::BasicAuth
        });
    if !x.client_secret.is_empty() {
        client = client.set_client_secret(ClientSecret::new(x.client_secret.to_owned()));
    }
    let mut request = client.exchange_code(AuthorizationCode::new(x.code.to_owned()));
    if let Some(v) = x.verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(v.to_owned()));
    }
    let adapter = Http {
        client: http.clone(),
        status: AtomicU16::new(0),
    };
    let response = tokio::time::timeout(x.timeout, request.request_async(&adapter))
        .await
        .map_err(|_| ExchangeError::Timeout(x.timeout))?;
    let status = match adapter.status.load(Ordering::Relaxed) {
        0 => None,
        s => Some(s),
    };
    let response = match response {
        Ok(r) => r,
        Err(RequestTokenError::ServerResponse(err)) => {
            let error_code: String = err
                .error()
                .to_string()
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(MAX_ERROR_CODE_LEN)
                .collect();
            return Err(ExchangeError::Provider { status, error_code });
        }
        Err(RequestTokenError::Request(e)) => return Err(ExchangeError::Transport(e)),
        Err(RequestTokenError::Parse(..)) | Err(RequestTokenError::Other(_)) => {
            return Err(ExchangeError::InvalidResponse { status });
        }
    };
    let access = response.access_token().secret();
    if access.is_empty() {
        return Err(ExchangeError::InvalidResponse { status });
    }
    let mut credentials = BTreeMap::new();
    credentials.insert(ACCESS_TOKEN.to_owned(), Zeroizing::new(access.clone()));
    if let Some(r) = response.refresh_token().filter(|r| !r.secret().is_empty()) {
        credentials.insert(REFRESH_TOKEN.to_owned(), Zeroizing::new(r.secret().clone()));
    }
    let scopes: Vec<String> = response
        .scopes()
        .map(|s| s.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default();
    if !scopes.is_empty() {
        credentials.insert(SCOPE.to_owned(), Zeroizing::new(scopes.join(" ")));
    }
    let expires_at = response
        .expires_in()
        .map(|d| now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
    Ok(Granted {
        credentials,
        expires_at,
        scopes,
    })
}
