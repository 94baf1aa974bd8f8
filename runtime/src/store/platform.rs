//! [`PlatformStore`]: what `airlock serve` authenticates callers with —
//! projects, API keys, OAuth clients and access tokens — and the audit log of
//! failed authentication. Same database and pool as the [`SecretStore`].
//!
//! Every credential is random (32 bytes from the OS) and stored only as its
//! SHA-256 hash. A slow password hash (argon2, bcrypt) protects low-entropy
//! passwords against guessing; a 256-bit random secret cannot be guessed, so
//! one SHA-256 is enough and keeps every request cheap.
//!
//! - API key: `ak_<id>_<secret>`; `<id>` (16 hex characters) is public and
//!   finds the row, the hash of the whole key is compared in constant time.
//! - OAuth client: id `ac_<16 hex>`, secret `<43 base64url>`.
//! - Access token: `at_<43 base64url>`, found by its hash, with an expiry.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use sqlx::Row as _;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::sqlite::unix_now;
use super::{Result, SecretStore, StoreError};

mod revoke;
pub use revoke::Revocation;

/// Every scope a key, client or token may hold. `admin` implies all others.
pub const SCOPES: &[&str] = &[
    "steps:read",
    "steps:write",
    "runs:read",
    "runs:write",
    "secrets:write",
    "accounts:read",
    "accounts:write",
    "accounts:credentials",
    "proxy",
    "metrics",
    "admin",
];

/// Prefix of every API key.
pub const API_KEY_PREFIX: &str = "ak_";
/// Prefix of every OAuth client id.
pub const CLIENT_ID_PREFIX: &str = "ac_";
/// Prefix of every access token.
pub const ACCESS_TOKEN_PREFIX: &str = "at_";
const ID_HEX_LEN: usize = 16;

/// Who a verified credential belongs to and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// `api_key` or `oauth_token`.
    pub kind: &'static str,
    /// The API key id, or the OAuth client id of a token.
    pub id: String,
    pub scopes: Vec<String>,
    /// The project the credential is restricted to, if any.
    pub project: Option<String>,
}

/// Why a presented credential was refused, and the key or client id when it
/// could be read from the credential. Never contains the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub key_id: Option<String>,
    pub reason: &'static str,
}

/// An API key's or OAuth client's metadata; never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialMeta {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub project: Option<String>,
    pub created_at: i64,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub name: String,
    pub created_at: i64,
}

/// One failed authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub method: String,
    pub route: String,
    pub key_id: Option<String>,
    pub reason: String,
}

/// Checks a list of scopes: each must be one of [`SCOPES`].
pub fn validate_scopes(scopes: &[String]) -> Result<()> {
    match scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        None => Ok(()),
        Some(_) => Err(StoreError::InvalidAccount {
            field: "scopes",
            reason: "unknown scope",
        }),
    }
}

fn random_b64() -> Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut_slice())
        .map_err(|e| StoreError::Key(super::KeyError::Rng(e.to_string())))?;
    Ok(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_slice())))
}

fn random_hex_id() -> Result<String> {
    let mut bytes = [0u8; ID_HEX_LEN / 2];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Key(super::KeyError::Rng(e.to_string())))?;
    Ok(hex::encode(bytes))
}

fn sha256(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

fn join_scopes(scopes: &[String]) -> String {
    scopes.join(" ")
}

fn split_scopes(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// The public id of an API key (`ak_<id>_<secret>`), if it is well formed.
pub fn api_key_id(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(API_KEY_PREFIX)?;
    let id = rest.get(..ID_HEX_LEN)?;
    let secret = rest.get(ID_HEX_LEN..)?.strip_prefix('_')?;
    (id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty()).then_some(id)
}

/// Whether `id` has the form of a client id: `ac_` and 16 hex digits.
pub fn is_client_id(id: &str) -> bool {
    id.strip_prefix(CLIENT_ID_PREFIX)
        .is_some_and(|h| h.len() == ID_HEX_LEN && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn meta_from_row(row: &SqliteRow) -> Result<CredentialMeta> {
    Ok(CredentialMeta {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scopes: split_scopes(&row.try_get::<String, _>("scopes")?),
        project: row.try_get("project")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Projects, API keys, OAuth clients, tokens and the audit log.
#[derive(Debug, Clone)]
pub struct PlatformStore {
    pool: SqlitePool,
}

impl PlatformStore {
    /// The platform tables of `secrets`' database (same pool).
    pub fn new(secrets: &SecretStore) -> Self {
        Self {
            pool: secrets.pool().clone(),
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // --- projects ---

    /// Creates a project; `false` when it already exists.
    pub async fn create_project(&self, name: &str) -> Result<bool> {
        super::validate_project_name(name)?;
        let done = sqlx::query(
            "INSERT INTO projects (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(unix_now())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done > 0)
    }

    /// Every project, by name.
    pub async fn list_projects(&self) -> Result<Vec<Project>> {
        let rows = sqlx::query("SELECT name, created_at FROM projects ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Project {
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// One project.
    pub async fn get_project(&self, name: &str) -> Result<Option<Project>> {
        let row = sqlx::query("SELECT name, created_at FROM projects WHERE name = ?1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Project {
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    // --- API keys ---

    /// Creates an API key; the key itself is returned once and never stored.
    pub async fn create_api_key(
        &self,
        name: &str,
        scopes: &[String],
        project: Option<&str>,
    ) -> Result<(CredentialMeta, Zeroizing<String>)> {
        validate_scopes(scopes)?;
        if let Some(p) = project {
            super::validate_project_name(p)?;
        }
        let id = random_hex_id()?;
        let secret = random_b64()?;
        let key = Zeroizing::new(format!("{API_KEY_PREFIX}{id}_{}", secret.as_str()));
        let now = unix_now();
        sqlx::query(
            "INSERT INTO api_keys (id, name, secret_hash, scopes, project, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(&id)
        .bind(name)
        .bind(sha256(&key))
        .bind(join_scopes(scopes))
        .bind(project)
        .bind(now)
        .execute(&self.pool)
        .await?;
        tracing::info!(key_id = %id, "API key created");
        let meta = CredentialMeta {
            id,
            name: name.to_owned(),
            scopes: scopes.to_vec(),
            project: project.map(str::to_owned),
            created_at: now,
        };
        Ok((meta, key))
    }

    /// API keys (metadata only), all or those of one project.
    pub async fn list_api_keys(&self) -> Result<Vec<CredentialMeta>> {
        let rows = sqlx::query(
            "SELECT id, name, scopes, project, created_at FROM api_keys ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(meta_from_row).collect()
    }

    /// One API key's metadata.
    pub async fn get_api_key(&self, id: &str) -> Result<Option<CredentialMeta>> {
        let row =
            sqlx::query("SELECT id, name, scopes, project, created_at FROM api_keys WHERE id = ?1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(meta_from_row).transpose()
    }

    /// Checks a presented bearer credential: an API key or an access token.
    pub async fn verify_bearer(
        &self,
        presented: &str,
    ) -> Result<std::result::Result<Grant, Refusal>> {
        if presented.starts_with(API_KEY_PREFIX) {
            self.verify_api_key(presented).await
        } else if presented.starts_with(ACCESS_TOKEN_PREFIX) {
            self.verify_access_token(presented).await
        } else {
            Ok(Err(Refusal {
                key_id: None,
                reason: "malformed credential",
            }))
        }
    }

    async fn verify_api_key(&self, presented: &str) -> Result<std::result::Result<Grant, Refusal>> {
        let Some(id) = api_key_id(presented) else {
            return Ok(Err(Refusal {
                key_id: None,
                reason: "malformed API key",
            }));
        };
        let row = sqlx::query("SELECT secret_hash, scopes, project FROM api_keys WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let refusal = |reason| {
            Ok(Err(Refusal {
                key_id: Some(id.to_owned()),
                reason,
            }))
        };
        let Some(row) = row else {
            return refusal("unknown or revoked API key");
        };
        let stored: Vec<u8> = row.try_get("secret_hash")?;
        if !ct_eq(&stored, &sha256(presented)) {
            return refusal("wrong API key secret");
        }
        Ok(Ok(Grant {
            kind: "api_key",
            id: id.to_owned(),
            scopes: split_scopes(&row.try_get::<String, _>("scopes")?),
            project: row.try_get("project")?,
        }))
    }

    async fn verify_access_token(
        &self,
        presented: &str,
    ) -> Result<std::result::Result<Grant, Refusal>> {
        let row = sqlx::query(
            "SELECT client_id, scopes, project, expires_at FROM oauth_tokens WHERE token_hash = ?1",
        )
        .bind(sha256(presented))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(Err(Refusal {
                key_id: None,
                reason: "unknown or revoked access token",
            }));
        };
        let client_id: String = row.try_get("client_id")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at <= unix_now() {
            return Ok(Err(Refusal {
                key_id: Some(client_id),
                reason: "expired access token",
            }));
        }
        Ok(Ok(Grant {
            kind: "oauth_token",
            id: client_id,
            scopes: split_scopes(&row.try_get::<String, _>("scopes")?),
            project: row.try_get("project")?,
        }))
    }

    // --- OAuth clients and tokens ---

    /// Creates an OAuth client; the secret is returned once and never stored.
    pub async fn create_client(
        &self,
        name: &str,
        scopes: &[String],
        project: Option<&str>,
    ) -> Result<(CredentialMeta, Zeroizing<String>)> {
        validate_scopes(scopes)?;
        if let Some(p) = project {
            super::validate_project_name(p)?;
        }
        let id = format!("{CLIENT_ID_PREFIX}{}", random_hex_id()?);
        let secret = random_b64()?;
        let now = unix_now();
        sqlx::query(
            "INSERT INTO oauth_clients (id, name, secret_hash, scopes, project, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(&id)
        .bind(name)
        .bind(sha256(&secret))
        .bind(join_scopes(scopes))
        .bind(project)
        .bind(now)
        .execute(&self.pool)
        .await?;
        tracing::info!(client_id = %id, "OAuth client created");
        let meta = CredentialMeta {
            id,
            name: name.to_owned(),
            scopes: scopes.to_vec(),
            project: project.map(str::to_owned),
            created_at: now,
        };
        Ok((meta, secret))
    }

    /// Every OAuth client's metadata (never a secret), in creation order.
    pub async fn list_clients(&self) -> Result<Vec<CredentialMeta>> {
        let rows = sqlx::query(
            "SELECT id, name, scopes, project, created_at FROM oauth_clients
             ORDER BY created_at, rowid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(meta_from_row).collect()
    }

    /// One OAuth client's metadata.
    pub async fn get_client(&self, id: &str) -> Result<Option<CredentialMeta>> {
        let row = sqlx::query(
            "SELECT id, name, scopes, project, created_at FROM oauth_clients WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(meta_from_row).transpose()
    }

    /// Replaces a client's secret and revokes every token issued to it, in one
    /// transaction. `None` when there is no such client.
    pub async fn rotate_client_secret(&self, id: &str) -> Result<Option<Zeroizing<String>>> {
        let secret = random_b64()?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let n = sqlx::query("UPDATE oauth_clients SET secret_hash = ?1 WHERE id = ?2")
            .bind(sha256(&secret))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        sqlx::query("DELETE FROM oauth_tokens WHERE client_id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(client_id = %id, "OAuth client secret rotated; its tokens revoked");
        Ok(Some(secret))
    }

    /// Checks a client's id and secret (constant-time on the hash).
    pub async fn verify_client(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<std::result::Result<CredentialMeta, Refusal>> {
        let row = sqlx::query(
            "SELECT id, name, secret_hash, scopes, project, created_at FROM oauth_clients
             WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        // Only a well-formed id goes to the audit log: a secret pasted into
        // `client_id` by mistake must not be recorded.
        let key_id = is_client_id(id).then(|| id.to_owned());
        let Some(row) = row else {
            return Ok(Err(Refusal {
                key_id,
                reason: "unknown OAuth client",
            }));
        };
        let stored: Vec<u8> = row.try_get("secret_hash")?;
        if !ct_eq(&stored, &sha256(secret)) {
            return Ok(Err(Refusal {
                key_id,
                reason: "wrong client secret",
            }));
        }
        Ok(Ok(meta_from_row(&row)?))
    }

    /// Issues an access token for `client`, valid `ttl_secs`.
    pub async fn issue_token(
        &self,
        client: &CredentialMeta,
        scopes: &[String],
        ttl_secs: u64,
    ) -> Result<Zeroizing<String>> {
        let token = Zeroizing::new(format!("{ACCESS_TOKEN_PREFIX}{}", random_b64()?.as_str()));
        let expires_at = unix_now().saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX));
        sqlx::query(
            "INSERT INTO oauth_tokens (token_hash, client_id, scopes, project, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(sha256(&token))
        .bind(&client.id)
        .bind(join_scopes(scopes))
        .bind(&client.project)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        // Expired tokens are useless; drop them as new ones are issued.
        sqlx::query("DELETE FROM oauth_tokens WHERE expires_at <= ?1")
            .bind(unix_now() - 3600)
            .execute(&self.pool)
            .await?;
        Ok(token)
    }

    // --- audit ---

    /// Records one failed authentication. Never pass a credential here.
    pub async fn record_failure(&self, method: &str, route: &str, refusal: &Refusal) -> Result<()> {
        sqlx::query(
            "INSERT INTO auth_audit (at, method, route, key_id, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(unix_now())
        .bind(method)
        .bind(route)
        .bind(&refusal.key_id)
        .bind(refusal.reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, method, route, key_id, reason FROM auth_audit ORDER BY id DESC LIMIT ?1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    method: r.try_get("method")?,
                    route: r.try_get("route")?,
                    key_id: r.try_get("key_id")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
