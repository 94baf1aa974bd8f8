//! Encrypted local secret store (security invariant 5).
//!
//! Secret values are sealed with AES-256-GCM under the operator's
//! [`MasterKey`] before they reach SQLite; the database holds only the key id,
//! the nonce and the ciphertext. Without a master key nothing is stored or read.
//!
//! - [`crypto`]: the master key and the reusable [`seal`]/[`open`] pair.
//! - [`sqlite`]: [`SecretStore`], the SQLite-backed store.
//! - [`accounts`]: [`AccountStore`], connected accounts in the same database.
//! - [`platform`]: [`PlatformStore`], projects, API keys, OAuth clients and
//!   tokens (hashed), and the audit log of `airlock serve`.

pub mod accounts;
pub mod crypto;
pub mod platform;
pub mod postgres;
pub mod repo;
pub mod runs;
pub mod sqlite;
pub mod steps;
pub mod triggers;

use std::path::PathBuf;

use zeroize::Zeroizing;

pub use accounts::{Account, AccountFilter, AccountMeta, AccountStatus, AccountStore, NewAccount};
pub use crypto::{CryptoError, KeyError, MasterKey, Sealed, account_aad, open, seal, secret_aad};
pub use platform::PlatformStore;
pub use runs::RunStore;
pub use sqlite::SecretStore;
pub use steps::StepStore;
pub use triggers::TriggerStore;

/// Environment variable naming the data directory.
pub const DATA_DIR_ENV: &str = "AIRLOCK_DATA";
/// The data directory when none is configured.
pub const DEFAULT_DATA_DIR: &str = "./airlock-data";
/// The database file inside the data directory.
pub const DB_FILE: &str = "airlock.db";
/// Longest secret or project name, in characters.
pub const MAX_NAME_LEN: usize = 128;

/// Errors of the secret store. None of them contains a secret value or key
/// material: only names, key ids and causes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(
        "invalid {kind} name {name:?}: it must be 1 to {MAX_NAME_LEN} characters of letters, \
         digits, `_`, `-` and `.`, starting with a letter or `_`"
    )]
    InvalidName { kind: &'static str, name: String },
    #[error(
        "the master key (id {current}) is not the key this secret was encrypted with \
         (id {stored}); nothing was changed"
    )]
    KeyMismatch { current: String, stored: String },
    #[error(
        "the master key (id {current}) is not the key this store's secrets are encrypted with \
         (id {stored}); nothing was stored"
    )]
    StoreKeyMismatch { current: String, stored: String },
    #[error("cannot decrypt secret {name:?} of project {project:?}: {source}")]
    Decrypt {
        project: String,
        name: String,
        #[source]
        source: CryptoError,
    },
    #[error("cannot encrypt secret {name:?} of project {project:?}: {source}")]
    Encrypt {
        project: String,
        name: String,
        #[source]
        source: CryptoError,
    },
    #[error("invalid {field}: {reason}")]
    InvalidAccount {
        field: &'static str,
        reason: &'static str,
    },
    #[error("cannot decrypt the credentials of account {id:?} of project {project:?}: {source}")]
    AccountDecrypt {
        project: String,
        id: String,
        #[source]
        source: CryptoError,
    },
    #[error("cannot encrypt the credentials of account {id:?} of project {project:?}: {source}")]
    AccountEncrypt {
        project: String,
        id: String,
        #[source]
        source: CryptoError,
    },
    #[error("no account {id:?} in project {project:?}")]
    AccountNotFound { project: String, id: String },
    #[error("the new master key is the same key (id {0}) as the current one")]
    SameKey(String),
    #[error("cannot create the data directory {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the database schema version {found} is newer than this airlock supports \
         ({supported}); upgrade airlock"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("secret store database error: {0}")]
    Database(#[from] sqlx::Error),
    #[doc(hidden)]
    #[error("injected failure after {0} rows (test hook)")]
    Injected(usize),
}

impl StoreError {
    /// Whether the error is the caller's (bad input, missing or wrong key)
    /// rather than a failure of storage.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            StoreError::Key(_)
                | StoreError::InvalidName { .. }
                | StoreError::InvalidAccount { .. }
                | StoreError::AccountNotFound { .. }
                | StoreError::KeyMismatch { .. }
                | StoreError::StoreKeyMismatch { .. }
                | StoreError::SameKey(_)
        )
    }
}

/// Result of the store's operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What [`SecretStore::set`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    Created,
    Updated,
}

/// A stored secret's metadata; never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMeta {
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Checks a secret name: 1–128 characters of ASCII letters, digits, `_`, `-`
/// and `.`, starting with a letter or `_`.
pub fn validate_secret_name(name: &str) -> Result<()> {
    validate_name("secret", name)
}

/// Checks a project name, under the same rule as secret names.
pub fn validate_project_name(project: &str) -> Result<()> {
    validate_name("project", project)
}

/// Checks a step name (same rules as project and secret names).
pub fn validate_step_name(step: &str) -> Result<()> {
    validate_name("step", step)
}

fn validate_name(kind: &'static str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if first_ok && rest_ok && name.len() <= MAX_NAME_LEN {
        Ok(())
    } else {
        // Cap what is echoed back: a long "name" may be a value pasted by mistake.
        let shown: String = name.chars().take(40).collect();
        Err(StoreError::InvalidName { kind, name: shown })
    }
}

/// The values stored in `project` for the secret `names` a step is granted,
/// in the order of `names`. Names without a stored value are left out; the
/// caller decides whether a missing grant is an error.
pub async fn load_granted(
    store: &SecretStore,
    key: &MasterKey,
    project: &str,
    names: &[String],
) -> Result<Vec<(String, Zeroizing<String>)>> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if let Some(value) = store.get(key, project, name).await? {
            out.push((name.clone(), value));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
