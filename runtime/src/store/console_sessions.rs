//! Sessions of the operator console (`/console/`): a browser signs in once
//! with an API key and holds a random session cookie instead.
//!
//! Why a row per session rather than a signed cookie: logging out must end
//! the session everywhere, at once — a copied cookie must stop working —
//! so the server has to be able to forget it. Only the SHA-256 of the
//! cookie value is stored (a database leak yields no usable session), with
//! the credential it stands for: its id and kind, never the key itself.
//!
//! Why the credential is looked up on every page: a session never holds
//! more than its credential does now. The scopes and project restriction
//! come from the key's current row, so revoking the key ends its sessions
//! and the console applies exactly the API's checks.

use zeroize::Zeroizing;

use super::platform::{Grant, random_b64, sha256};
use super::{Db, Result, unix_now};

/// How long a session lasts without signing in again.
pub const SESSION_TTL_SECS: i64 = 12 * 3600;

/// One stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// `api_key`.
    pub credential_kind: String,
    pub credential_id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The console's sessions, in the platform's database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ConsoleSessions {
    db: Db,
}

impl ConsoleSessions {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Starts a session for `grant` (an API key's, as `verify_bearer` gave
    /// it); returns the cookie value, shown to nobody but the browser.
    pub async fn start(&self, grant: &Grant) -> Result<Zeroizing<String>> {
        let value = random_b64()?;
        let now = unix_now();
        let row = SessionRow {
            credential_kind: grant.kind.to_owned(),
            credential_id: grant.id.clone(),
            created_at: now,
            expires_at: now.saturating_add(SESSION_TTL_SECS),
        };
        self.db
            .insert_console_session(&sha256(&value), &row)
            .await?;
        // Expired sessions are useless; drop them as new ones start.
        self.db.delete_console_sessions_expired(now).await?;
        Ok(value)
    }

    /// The grant of the session `value` stands for, as its credential is
    /// now; `None` for an unknown, ended or expired session, or one whose
    /// credential was revoked.
    pub async fn open(&self, value: &str) -> Result<Option<Grant>> {
        let Some(row) = self.db.get_console_session(&sha256(value)).await? else {
            return Ok(None);
        };
        if row.expires_at <= unix_now() {
            return Ok(None);
        }
        if row.credential_kind != "api_key" {
            return Ok(None);
        }
        let Some(key) = self.db.get_api_key(&row.credential_id).await? else {
            return Ok(None);
        };
        Ok(Some(Grant {
            kind: "api_key",
            id: key.meta.id,
            scopes: key.meta.scopes,
            project: key.meta.project,
        }))
    }

    /// Ends the session `value` (logout). Ending an unknown one is no error.
    pub async fn end(&self, value: &str) -> Result<()> {
        self.db.delete_console_session(&sha256(value)).await
    }
}

/// A random cookie value (32 bytes, base64url), e.g. for the pre-session
/// cookie of the sign-in form.
pub fn random_value() -> Result<Zeroizing<String>> {
    random_b64()
}
