//! OAuth 2.0 access tokens for connected accounts, refreshed host-side
//! (and first obtained by [`exchange`], Connect's code exchange).
//!
//! A step never holds a token: when it calls an app with an account, the host
//! asks [`TokenRefresher::access_token`] for a usable access token and inserts
//! it. The refresher decides *when* to refresh and makes sure a refresh
//! happens *once*:
//!
//! - **Refresh ahead of expiry (the margin).** A token is refreshed when it
//!   expires within `margin` (default 60 s), not when it already has: a token
//!   that is valid when read may expire while the request is in flight, and
//!   the provider's clock may run ahead of ours.
//! - **Single-flight.** Many runs may use one account at once. Refresh tokens
//!   are often single-use (rotated on every refresh, RFC 6749 §6 and OAuth 2.1
//!   §4.3.1): if two callers refreshed concurrently with the same refresh
//!   token, the second would get `invalid_grant` and could even make the
//!   provider revoke the whole grant as a suspected replay. So refreshes of
//!   one account are serialised by a [`RefreshLock`]; exactly one token
//!   request is made and the others use its result.
//! - **Re-read after the lock.** A caller that waited for the lock does not
//!   trust what it read before: it reads the account again and returns the
//!   token another caller just stored if that one is fresh (beyond the margin
//!   and, for a forced refresh, different from the token that was rejected).
//!   The lock alone would only make the refreshes sequential, not single.
//! - **Forced refresh after a 401.** An upstream 401 says the token is bad
//!   even though it has not expired. The caller passes the token that was
//!   rejected ([`TokenRefresher::refresh_after_unauthorized`]); a caller that
//!   then finds a *different* token stored knows someone already replaced it
//!   and does not refresh again, so ten requests failing with the same token
//!   cause one refresh.
//! - **Atomic rotation.** The new access token and the rotated refresh token
//!   are saved in one statement ([`AccountStore::save_refreshed`]); the old
//!   refresh token is kept only when the provider did not send a new one.
//! - **Refresh runs to completion.** The locked section runs on its own task,
//!   so a caller whose future is dropped (its run timed out) cannot cancel a
//!   refresh after the provider rotated the refresh token but before it was
//!   saved, which would lose the grant.
//! - **Refused grants.** `invalid_grant` marks the account `needs_reauth`;
//!   later calls fail fast with [`RefreshError::NeedsReauth`] without asking
//!   the provider, until the account is connected again.
//!
//! The HTTP client is passed in: it is the egress-policy-checked client of the
//! host, so token endpoints obey the same rules as everything else. It should
//! not follow redirects for token requests (RFC 6749 §5 responses are never
//! redirects), and token responses are capped at [`MAX_TOKEN_RESPONSE`] bytes.
//!
//! Nothing here logs or puts into an error a token, refresh token or client
//! secret: errors carry account ids, HTTP statuses and the provider's error
//! code (`invalid_grant`, `invalid_client`), never descriptions or bodies.
//!
//! [`AccountStore::save_refreshed`]: crate::store::AccountStore::save_refreshed

pub mod exchange;
mod refresh;
mod single_flight;

pub use refresh::{
    DEFAULT_REQUEST_TIMEOUT, HttpError, MAX_TOKEN_RESPONSE, NeedsReauthHook, OAuthClientConfig,
    RefreshError, TokenRefresher,
};
pub use single_flight::{
    LocalRefreshLock, RefreshGuard, RefreshLock, SHARED_LOCK_HOLD, SharedRefreshLock,
};

#[cfg(test)]
mod tests;
