//! Secrets the step's manifest grants, as opaque handles.
//!
//! ```no_run
//! # fn demo() -> Result<(), airlock_sdk::Error> {
//! let key = airlock_sdk::secrets::get("SIGNING_KEY")?;
//! // Use the handle without seeing the value...
//! let mac = airlock_sdk::crypto::hmac_sha256(&key, b"payload");
//! // ...or read it, when the manifest lists it under `reveal`.
//! let token = airlock_sdk::secrets::get("TOKEN")?.reveal()?;
//! # let _ = (mac, token); Ok(()) }
//! ```
//!
//! Every value a run obtains is masked (`[REDACTED:NAME]`) from its log,
//! output and errors, with its common encodings.

use crate::__bindings::airlock::step::secrets as wit;

/// Why a secret call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretError {
    /// The manifest does not grant this name (returned whether or not the
    /// secret exists).
    NotGranted,
    /// Granted, but no value is stored or passed under this name.
    NotFound,
    /// The manifest does not list this name under `reveal`.
    RevealNotGranted,
}

impl std::fmt::Display for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotGranted => "not-granted: the step's manifest does not grant this secret",
            Self::NotFound => "not-found: no value is stored under this name",
            Self::RevealNotGranted => {
                "reveal-not-granted: the step's manifest does not allow revealing this secret"
            }
        })
    }
}

impl std::error::Error for SecretError {}

impl From<wit::Error> for SecretError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::NotGranted => Self::NotGranted,
            wit::Error::NotFound => Self::NotFound,
            wit::Error::RevealNotGranted => Self::RevealNotGranted,
        }
    }
}

/// An opaque handle to one secret, valid for the current run.
#[derive(Debug)]
pub struct Secret {
    pub(crate) handle: crate::host::SecretHandle,
}

impl Secret {
    /// The name it was obtained under.
    pub fn name(&self) -> String {
        crate::host::secret_name(&self.handle)
    }

    /// The plaintext value, if the manifest grants reveal for this name.
    pub fn reveal(&self) -> Result<String, SecretError> {
        crate::host::secret_reveal(&self.handle).map_err(SecretError::from)
    }
}

/// Returns a handle to the secret `name`.
pub fn get(name: &str) -> Result<Secret, SecretError> {
    crate::host::secret_get(name)
        .map(|handle| Secret { handle })
        .map_err(SecretError::from)
}
