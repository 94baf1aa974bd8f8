//! [`PlatformStore`]: what `airlock serve` authenticates callers with —
//! projects, API keys, OAuth clients and access tokens — and the audit log of
//! failed authentication. Same database as the [`SecretStore`].
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
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::cache::{self, CachedGrant, StoreCaches};
use super::credential_use::CredentialKind;
pub use super::repo::Revocation;
use super::repo::{Change, HashedCredential, TokenRow};
use super::{Db, Result, SecretStore, StoreError, unix_now};

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
    /// Unix seconds after which it is refused; `None`: it does not expire.
    pub expires_at: Option<i64>,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Project {
    pub name: String,
    pub created_at: i64,
}

/// One failed authentication.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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

pub(super) fn random_b64() -> Result<Zeroizing<String>> {
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

pub(super) fn sha256(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
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

/// A key's or client's clear columns as every backend stores them.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CredentialColumns {
    pub id: String,
    pub name: String,
    /// Space-separated.
    pub scopes: String,
    pub project: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

impl From<CredentialColumns> for CredentialMeta {
    fn from(c: CredentialColumns) -> Self {
        CredentialMeta {
            id: c.id,
            name: c.name,
            scopes: split_scopes(&c.scopes),
            project: c.project,
            created_at: c.created_at,
            expires_at: c.expires_at,
        }
    }
}

/// Projects, API keys, OAuth clients, tokens and the audit log.
#[derive(Debug, Clone)]
pub struct PlatformStore {
    db: Db,
    caches: std::sync::Arc<StoreCaches>,
}

impl PlatformStore {
    /// The platform tables of `secrets`' database.
    pub fn new(secrets: &SecretStore) -> Self {
        Self {
            db: secrets.db().clone(),
            caches: secrets.caches().clone(),
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }

    // --- projects ---

    /// Creates a project; `false` when it already exists.
    pub async fn create_project(&self, name: &str) -> Result<bool> {
        super::validate_project_name(name)?;
        self.db.insert_project(name, unix_now()).await
    }

    /// Every project, by name.
    pub async fn list_projects(&self) -> Result<Vec<Project>> {
        self.db.list_projects().await
    }

    /// One project (cached once found: projects are never deleted).
    pub async fn get_project(&self, name: &str) -> Result<Option<Project>> {
        if let Some(hit) = self.caches.projects.get(name) {
            return Ok(Some(hit));
        }
        let read_at = self.caches.sync();
        let found = self.db.get_project(name).await?;
        if let Some(project) = &found {
            self.caches.fill(
                read_at,
                &self.caches.projects,
                name.to_owned(),
                project.clone(),
            );
        }
        Ok(found)
    }

    // --- API keys ---

    /// Creates an API key; the key itself is returned once and never stored.
    pub async fn create_api_key(
        &self,
        name: &str,
        scopes: &[String],
        project: Option<&str>,
        expires_at: Option<i64>,
    ) -> Result<(CredentialMeta, Zeroizing<String>)> {
        validate_scopes(scopes)?;
        if let Some(p) = project {
            super::validate_project_name(p)?;
        }
        let id = random_hex_id()?;
        let secret = random_b64()?;
        let key = Zeroizing::new(format!("{API_KEY_PREFIX}{id}_{}", secret.as_str()));
        let meta = CredentialMeta {
            id,
            name: name.to_owned(),
            scopes: scopes.to_vec(),
            project: project.map(str::to_owned),
            created_at: unix_now(),
            expires_at,
        };
        self.db
            .insert_api_key(&HashedCredential {
                meta: meta.clone(),
                secret_hash: sha256(&key),
            })
            .await?;
        tracing::info!(key_id = %meta.id, "API key created");
        Ok((meta, key))
    }

    /// Every API key's metadata, in creation order.
    pub async fn list_api_keys(&self) -> Result<Vec<CredentialMeta>> {
        self.db.list_api_keys().await
    }

    /// One API key's metadata.
    pub async fn get_api_key(&self, id: &str) -> Result<Option<CredentialMeta>> {
        Ok(self.db.get_api_key(id).await?.map(|k| k.meta))
    }

    /// Revokes (deletes) an API key, unless it is the last unrestricted
    /// admin credential: that one is the only way to manage the server
    /// without a shell on its machine.
    pub async fn revoke_api_key(&self, id: &str) -> Result<Revocation> {
        let outcome = self.db.delete_api_key(id).await?;
        if outcome == Revocation::Revoked {
            cache::publish(&self.db, Change::ApiKey(id.to_owned())).await;
            tracing::info!(key_id = %id, "API key revoked");
        }
        Ok(outcome)
    }

    /// Gives an API key a new secret: the old key stops working at once, on
    /// every node, and so do the console sessions signed in with it. The
    /// id, name, scopes and project stay. `None` when there is no such key.
    pub async fn rotate_api_key(&self, id: &str) -> Result<Option<Zeroizing<String>>> {
        let secret = random_b64()?;
        let key = Zeroizing::new(format!("{API_KEY_PREFIX}{id}_{}", secret.as_str()));
        if !self.db.rotate_api_key(id, &sha256(&key)).await? {
            return Ok(None);
        }
        cache::publish(&self.db, Change::ApiKey(id.to_owned())).await;
        tracing::info!(key_id = %id, "API key rotated");
        Ok(Some(key))
    }

    /// Checks a presented bearer credential: an API key or an access token.
    /// A credential verified before is answered from the cache (by the
    /// SHA-256 of what was presented) until it is revoked or rotated, its
    /// token expires, or the entry's TTL ends.
    pub async fn verify_bearer(
        &self,
        presented: &str,
    ) -> Result<std::result::Result<Grant, Refusal>> {
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let read_at = self.caches.sync();
        if let Some(hit) = self.caches.principals.get(&hash) {
            match hit.expires_at {
                Some(at) if at <= unix_now() => self.caches.principals.invalidate(&hash),
                _ => {
                    self.mark_used(&hit.grant);
                    return Ok(Ok(hit.grant));
                }
            }
        }
        let verified = self.verify_uncached(presented).await?;
        if let Ok((grant, _)) = &verified {
            self.mark_used(grant);
        }
        if let Ok((grant, expires_at)) = &verified {
            let entry = CachedGrant {
                grant: grant.clone(),
                expires_at: *expires_at,
            };
            self.caches
                .fill(read_at, &self.caches.principals, hash, entry);
        }
        Ok(verified.map(|(grant, _)| grant))
    }

    /// Marks the credential behind `grant` used (memory only; see
    /// [`super::credential_use`]).
    fn mark_used(&self, grant: &Grant) {
        let kind = match grant.kind {
            "api_key" => CredentialKind::ApiKey,
            _ => CredentialKind::OAuthClient,
        };
        self.caches.uses.mark(kind, &grant.id);
    }

    /// When each of `ids` (of `kind`) was last used, Unix seconds.
    pub async fn last_used(
        &self,
        kind: CredentialKind,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, i64>> {
        self.caches.uses.last_used(&self.db, kind, ids).await
    }

    async fn verify_uncached(
        &self,
        presented: &str,
    ) -> Result<std::result::Result<(Grant, Option<i64>), Refusal>> {
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

    /// The key's grant and when it expires (the cache entry ends then too).
    async fn verify_api_key(
        &self,
        presented: &str,
    ) -> Result<std::result::Result<(Grant, Option<i64>), Refusal>> {
        let Some(id) = api_key_id(presented) else {
            return Ok(Err(Refusal {
                key_id: None,
                reason: "malformed API key",
            }));
        };
        let refusal = |reason| {
            Ok(Err(Refusal {
                key_id: Some(id.to_owned()),
                reason,
            }))
        };
        let Some(key) = self.db.get_api_key(id).await? else {
            return refusal("unknown or revoked API key");
        };
        if !ct_eq(&key.secret_hash, &sha256(presented)) {
            return refusal("wrong API key secret");
        }
        if key.meta.expires_at.is_some_and(|at| at <= unix_now()) {
            return refusal("expired API key");
        }
        Ok(Ok((
            Grant {
                kind: "api_key",
                id: id.to_owned(),
                scopes: key.meta.scopes,
                project: key.meta.project,
            },
            key.meta.expires_at,
        )))
    }

    async fn verify_access_token(
        &self,
        presented: &str,
    ) -> Result<std::result::Result<(Grant, Option<i64>), Refusal>> {
        let Some(token) = self.db.get_token(&sha256(presented)).await? else {
            return Ok(Err(Refusal {
                key_id: None,
                reason: "unknown or revoked access token",
            }));
        };
        if token.expires_at <= unix_now() {
            return Ok(Err(Refusal {
                key_id: Some(token.client_id),
                reason: "expired access token",
            }));
        }
        let expires_at = Some(token.expires_at);
        Ok(Ok((
            Grant {
                kind: "oauth_token",
                id: token.client_id,
                scopes: token.scopes,
                project: token.project,
            },
            expires_at,
        )))
    }

    // --- OAuth clients and tokens ---

    /// Creates an OAuth client; the secret is returned once and never stored.
    pub async fn create_client(
        &self,
        name: &str,
        scopes: &[String],
        project: Option<&str>,
        expires_at: Option<i64>,
    ) -> Result<(CredentialMeta, Zeroizing<String>)> {
        validate_scopes(scopes)?;
        if let Some(p) = project {
            super::validate_project_name(p)?;
        }
        let secret = random_b64()?;
        let meta = CredentialMeta {
            id: format!("{CLIENT_ID_PREFIX}{}", random_hex_id()?),
            name: name.to_owned(),
            scopes: scopes.to_vec(),
            project: project.map(str::to_owned),
            created_at: unix_now(),
            expires_at,
        };
        self.db
            .insert_client(&HashedCredential {
                meta: meta.clone(),
                secret_hash: sha256(&secret),
            })
            .await?;
        tracing::info!(client_id = %meta.id, "OAuth client created");
        Ok((meta, secret))
    }

    /// Every OAuth client's metadata (never a secret), in creation order.
    pub async fn list_clients(&self) -> Result<Vec<CredentialMeta>> {
        self.db.list_clients().await
    }

    /// One OAuth client's metadata.
    pub async fn get_client(&self, id: &str) -> Result<Option<CredentialMeta>> {
        Ok(self.db.get_client(id).await?.map(|c| c.meta))
    }

    /// Replaces a client's secret and revokes every token issued to it, in one
    /// transaction. `None` when there is no such client.
    pub async fn rotate_client_secret(&self, id: &str) -> Result<Option<Zeroizing<String>>> {
        let secret = random_b64()?;
        if !self.db.rotate_client_secret(id, &sha256(&secret)).await? {
            return Ok(None);
        }
        cache::publish(&self.db, Change::Client(id.to_owned())).await;
        tracing::info!(client_id = %id, "OAuth client secret rotated; its tokens revoked");
        Ok(Some(secret))
    }

    /// Deletes an OAuth client and its tokens, unless it is the last
    /// unrestricted admin credential.
    pub async fn delete_client(&self, id: &str) -> Result<Revocation> {
        let outcome = self.db.delete_client(id).await?;
        if outcome == Revocation::Revoked {
            cache::publish(&self.db, Change::Client(id.to_owned())).await;
            tracing::info!(client_id = %id, "OAuth client deleted; its tokens revoked");
        }
        Ok(outcome)
    }

    /// Checks a client's id and secret (constant-time on the hash).
    pub async fn verify_client(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<std::result::Result<CredentialMeta, Refusal>> {
        // Only a well-formed id goes to the audit log: a secret pasted into
        // `client_id` by mistake must not be recorded.
        let key_id = is_client_id(id).then(|| id.to_owned());
        let Some(client) = self.db.get_client(id).await? else {
            return Ok(Err(Refusal {
                key_id,
                reason: "unknown OAuth client",
            }));
        };
        if !ct_eq(&client.secret_hash, &sha256(secret)) {
            return Ok(Err(Refusal {
                key_id,
                reason: "wrong client secret",
            }));
        }
        if client.meta.expires_at.is_some_and(|at| at <= unix_now()) {
            return Ok(Err(Refusal {
                key_id,
                reason: "expired OAuth client",
            }));
        }
        self.caches.uses.mark(CredentialKind::OAuthClient, id);
        Ok(Ok(client.meta))
    }

    /// Issues an access token for `client`, valid `ttl_secs`.
    pub async fn issue_token(
        &self,
        client: &CredentialMeta,
        scopes: &[String],
        ttl_secs: u64,
    ) -> Result<Zeroizing<String>> {
        let token = Zeroizing::new(format!("{ACCESS_TOKEN_PREFIX}{}", random_b64()?.as_str()));
        let now = unix_now();
        let row = TokenRow {
            client_id: client.id.clone(),
            scopes: scopes.to_vec(),
            project: client.project.clone(),
            // Never past the client's own expiry, whatever the caller asked.
            expires_at: now
                .saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX))
                .min(client.expires_at.unwrap_or(i64::MAX)),
        };
        self.db.insert_token(&sha256(&token), &row).await?;
        // Expired tokens are useless; drop them as new ones are issued.
        self.db.delete_tokens_expired_before(now - 3600).await?;
        Ok(token)
    }

    // --- audit ---

    /// Records one failed authentication. Never pass a credential here.
    pub async fn record_failure(&self, method: &str, route: &str, refusal: &Refusal) -> Result<()> {
        self.db
            .insert_audit(
                unix_now(),
                method,
                route,
                refusal.key_id.as_deref(),
                refusal.reason,
            )
            .await
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        self.db.list_audit(limit).await
    }
}

#[cfg(test)]
mod tests;
