//! Connect, the HTTP side: the tokens API ([`tokens`]), the hosted page
//! ([`page`]) and the OAuth flow ([`flow`]); [`security`] holds the page's
//! defences and [`views`] its templates. What the routes share lives in
//! [`crate::connect::Connect`].
//!
//! A flow, end to end:
//!
//! 1. the operator's backend `POST`s `…/connect/tokens` and sends its user
//!    to `connect_link_url` (`/connect/{token}`);
//! 2. that page trades the token for a session cookie and redirects to
//!    `/connect` (the token leaves the URL); the user picks an app;
//! 3. an API-key (bearer, basic, custom) app shows a form of its credential
//!    fields; its POST stores the account;
//! 4. an OAuth app asks for the custom fields its URLs need, then its POST
//!    stores a `state` and sends the browser to the provider with a PKCE
//!    challenge; the provider sends it back to `/connect/oauth/callback`,
//!    which consumes the state, exchanges the code and stores the account;
//! 5. the browser lands on the token's success (or error) redirect, and an
//!    `account.*` webhook is queued.
//!
//! Failures end in words on the page, or on the error redirect with a code
//! ([`Failure`]) — never with a provider's own text.

pub mod flow;
pub mod page;
pub mod security;
pub mod tokens;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

use super::AppState;
use super::error::ApiError;
use crate::connect::Connect;

/// The routes of the hosted page (the tokens API is routed with the rest of `/v1`).
pub fn page_routes() -> Router<AppState> {
    Router::new()
        .route("/connect", get(page::home))
        .route("/connect/assets/connect.css", get(page::stylesheet))
        .route("/connect/oauth/callback", get(flow::callback))
        .route("/connect/apps/{slug}", get(page::app).post(flow::submit))
        .route("/connect/{token}", get(page::open))
}

/// The Connect service of a running server.
pub(crate) fn service(state: &AppState) -> Result<&Arc<Connect>, ApiError> {
    state.connect.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Connect is not set up on this server",
        )
    })
}

/// Why a flow did not end with an account: a code for the error redirect
/// and the words the page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The user declined at the provider (`error=access_denied`).
    AccessDenied,
    /// The provider sent another error to the callback.
    ProviderError,
    /// The state is unknown or was used already (a replay).
    StateInvalid,
    /// The state is older than its 10 minutes.
    StateExpired,
    /// The callback came to a browser that did not start the flow.
    BindingMismatch,
    /// The provider refused the code (e.g. a PKCE mismatch) or could not be reached.
    ExchangeFailed,
    /// The link was used already.
    TokenUsed,
    /// The link expired.
    TokenExpired,
    /// The link started too many flows.
    TooManyAttempts,
    /// The app's OAuth client is not configured in the project.
    NotConfigured,
    /// Something failed on our side.
    ServerError,
}

impl Failure {
    pub fn code(self) -> &'static str {
        match self {
            Failure::AccessDenied => "access_denied",
            Failure::ProviderError => "provider_error",
            Failure::StateInvalid => "state_invalid",
            Failure::StateExpired => "state_expired",
            Failure::BindingMismatch => "binding_mismatch",
            Failure::ExchangeFailed => "exchange_failed",
            Failure::TokenUsed => "token_used",
            Failure::TokenExpired => "token_expired",
            Failure::TooManyAttempts => "too_many_attempts",
            Failure::NotConfigured => "not_configured",
            Failure::ServerError => "server_error",
        }
    }

    pub fn heading(self) -> &'static str {
        match self {
            Failure::AccessDenied => "Access was not granted",
            Failure::TokenUsed => "This link has been used",
            Failure::TokenExpired => "This link has expired",
            Failure::NotConfigured => "This app is not available yet",
            _ => "The account could not be connected",
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Failure::AccessDenied => {
                "You declined the request at the provider, so no account was connected."
            }
            Failure::ProviderError => {
                "The provider reported an error and sent you back without access. Try again."
            }
            Failure::StateInvalid => {
                "This sign-in was already completed or is not known. Start again from your link."
            }
            Failure::StateExpired => {
                "The sign-in took longer than 10 minutes. Start again from your link."
            }
            Failure::BindingMismatch => {
                "The sign-in was finished in a different browser than it was started in. \
                 Start again in one browser."
            }
            Failure::ExchangeFailed => {
                "The provider did not accept the sign-in. Try again; if it keeps failing, \
                 contact the service that sent you here."
            }
            Failure::TokenUsed => {
                "An account was already connected with this link. Ask for a new link to connect another."
            }
            Failure::TokenExpired => {
                "Links to connect an account are valid for a short time. Ask for a new one."
            }
            Failure::TooManyAttempts => "This link was tried too many times. Ask for a new link.",
            Failure::NotConfigured => {
                "This app has not been set up for connecting yet. Contact the service that sent you here."
            }
            Failure::ServerError => "Something went wrong on our side. Try again in a moment.",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Failure::TokenUsed | Failure::TokenExpired => StatusCode::GONE,
            Failure::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            Failure::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Failure::ExchangeFailed | Failure::ProviderError => StatusCode::BAD_GATEWAY,
            Failure::NotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}
