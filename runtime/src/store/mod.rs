//! The encrypted store (security invariant 5), on SQLite or PostgreSQL.
//!
//! Secret values and account credentials are sealed with AES-256-GCM under
//! the operator's [`MasterKey`] before they reach the database, which holds
//! only the key id, the nonce and the ciphertext. Without a master key
//! nothing is stored or read.
//!
//! Above the storage seam ([`repo`]), one store per concern holds the model,
//! validation and sealing: [`SecretStore`], [`AccountStore`],
//! [`PlatformStore`] (projects, API keys, OAuth clients and tokens, hashed,
//! and the audit log), [`StepStore`], [`RunStore`], [`TriggerStore`]. Below
//! it, one implementation per backend: [`sqlite`] (the embedded default) and
//! [`postgres`] (many nodes). [`open`] picks one from the configuration.
//!
//! - [`crypto`]: the master key ring and the reusable [`seal`]/[`open`] pair.

pub mod accounts;
pub mod cache;
pub mod config;
pub mod connect;
pub(crate) mod connect_rows;
pub mod console_sessions;
pub mod credential_use;
pub mod crypto;
pub mod live_logs;
pub mod platform;
pub mod postgres;
pub mod queue;
pub mod repo;
pub mod runs;
pub mod schedules;
pub mod secrets;
pub mod shared_limits;
pub mod sqlite;
pub mod steps;
pub mod triggers;
pub mod usage;
pub mod webhooks;

use std::path::PathBuf;

use zeroize::Zeroizing;

pub use accounts::{Account, AccountFilter, AccountMeta, AccountStatus, AccountStore, NewAccount};
pub use crypto::{CryptoError, KeyError, MasterKey, Sealed, account_aad, open, seal, secret_aad};
pub use platform::PlatformStore;
pub use repo::{Backend, Database};
pub use runs::RunStore;
pub use secrets::SecretStore;
pub use steps::StepStore;
pub use triggers::TriggerStore;
pub use usage::UsageStore;

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
        "the store holds values sealed under master key id {stored}, which this key ring \
         (current key id {current}) lacks; nothing was stored. Give that key too, as a retired \
         one after the current: AIRLOCK_MASTER_KEY=\"<current>,<retired>\" (or one key per line \
         in the key file), then re-seal with `airlock secrets rotate-key`"
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
    #[error("invalid database setting: {0}")]
    DatabaseUrl(&'static str),
    #[error("{what} changed under this write too often; nothing was changed, try again")]
    Contended { what: &'static str },
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
                | StoreError::DatabaseUrl(_)
        )
    }
}

/// Result of the store's operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A shared handle on one database, whichever the backend.
pub type Db = std::sync::Arc<dyn Database>;

/// Now, in Unix seconds (the unit of every store timestamp but runs').
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Now, in Unix milliseconds (the unit of run timestamps).
pub(crate) fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

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
/// in the order of `names`, read in one query. Names without a stored value
/// are left out; the caller decides whether a missing grant is an error.
pub async fn load_granted(
    store: &SecretStore,
    key: &MasterKey,
    project: &str,
    names: &[String],
) -> Result<Vec<(String, Zeroizing<String>)>> {
    store.get_many(key, project, names).await
}

#[cfg(test)]
mod tests;
