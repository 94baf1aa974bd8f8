//! How requests authenticate.
//!
//! Every request asks [`Auth::bearer`] for its token and nothing else knows
//! which kind of credential is behind it. That is the seam for OAuth client
//! credentials: a variant holding the client id and secret, whose bearer is
//! a cached access token fetched from `POST /v1/oauth/token` and refreshed
//! ahead of its expiry (once for many concurrent callers), slots in here
//! without changing a single call.

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
}

impl Auth {
    /// The bearer token for the next request, if any. `async` and fallible
    /// because a token-based credential may have to fetch one first.
    pub(crate) async fn bearer(&self) -> Result<Option<&str>, crate::Error> {
        Ok(match self {
            Auth::None => None,
            Auth::ApiKey(key) => Some(key.expose()),
        })
    }
}
