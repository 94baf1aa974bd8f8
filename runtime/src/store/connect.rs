//! Connect: short-lived links an operator's backend hands its end users, the
//! browser sessions they become, and the pending OAuth flows they start.
//!
//! Why each piece is stored the way it is:
//!
//! - **Connect tokens are stored hashed.** The token (`ctok_` and 32 random
//!   bytes, base64url) is a bearer secret in a URL: whoever holds it may
//!   connect an account for the user it names. Only its SHA-256 is kept (a
//!   256-bit random value needs no slow hash), so a database dump opens
//!   nothing. The API shows the token once and afterwards names it by id.
//! - **Single use, bounded attempts.** A token is spent when an account is
//!   stored ([`ConnectRepo::spend_connect_token`], a conditional update:
//!   two racing flows cannot both spend it). Failed attempts do not spend
//!   it, but it may start at most [`MAX_FLOWS`] flows
//!   ([`ConnectRepo::start_connect_flow`], also one conditional update), so
//!   a leaked link cannot be used to hammer a provider.
//! - **Sessions** replace the token in the browser: the page trades the
//!   token for an HttpOnly cookie and redirects, so the token leaves the
//!   address bar and history. The cookie value is random; only its hash is
//!   stored, bound to the token and expiring with it.
//! - **OAuth states** are 256 random bits; only their hash is stored, bound
//!   to project, app, external user and token, with a 10-minute expiry and
//!   the hash of a binding cookie set in the browser that started the flow.
//!   They are consumed with one `DELETE … RETURNING`, so a state works once
//!   even if two callbacks race. The PKCE verifier is sealed with the
//!   master key (AES-256-GCM, bound to the state's hash) and never leaves
//!   the server.
//!
//! [`ConnectRepo::spend_connect_token`]: super::repo::ConnectRepo::spend_connect_token
//! [`ConnectRepo::start_connect_flow`]: super::repo::ConnectRepo::start_connect_flow

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::crypto::{self, MasterKey, Sealed};
use super::{Db, KeyError, Result, SecretStore, StoreError, unix_now};

/// Flows (OAuth starts and form submissions) one token may start.
pub const MAX_FLOWS: i64 = 10;
/// How long an OAuth `state` is accepted, in seconds.
pub const STATE_TTL_SECS: i64 = 600;
/// Prefix of a connect token (the secret).
pub const TOKEN_PREFIX: &str = "ctok_";
/// Prefix of a connect token's id (not secret).
pub const TOKEN_ID_PREFIX: &str = "ct_";

/// Domain separation for the associated data of sealed PKCE verifiers.
const VERIFIER_AAD_DOMAIN: &[u8] = b"airlock:connect-verifier:v1\0";

/// A connect token as stored: everything but the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTokenRow {
    pub id: String,
    pub project: String,
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    pub external_user_id: String,
    /// The apps the page offers; `None` for every app usable in the project.
    pub apps: Option<Vec<String>>,
    pub success_redirect_uri: Option<String>,
    pub error_redirect_uri: Option<String>,
    pub webhook_uri: Option<String>,
    pub allowed_origins: Vec<String>,
    /// Reconnect: the account whose credentials the flow replaces.
    pub account_id: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Flows started so far (at most [`MAX_FLOWS`]).
    pub flows_started: i64,
    /// When an account was stored with it (Unix seconds).
    pub used_at: Option<i64>,
    /// The account stored with it.
    pub used_account_id: Option<String>,
}

/// Where a token stands, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    Pending,
    Used,
    Expired,
}

impl ConnectTokenRow {
    pub fn status(&self, now: i64) -> TokenStatus {
        if self.used_at.is_some() {
            TokenStatus::Used
        } else if self.expires_at <= now {
            TokenStatus::Expired
        } else {
            TokenStatus::Pending
        }
    }
}

/// A pending OAuth flow, found by the hash of its `state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthStateRow {
    pub state_hash: Vec<u8>,
    pub token_id: String,
    pub project: String,
    pub app: String,
    pub external_user_id: String,
    /// SHA-256 of the binding cookie set in the browser that started it.
    pub binding_hash: Vec<u8>,
    /// The custom fields the user gave (a subdomain), JSON with sorted keys.
    pub custom_fields: String,
    /// The PKCE verifier, sealed; `None` when the app has `pkce = false`.
    pub verifier: Option<Sealed>,
    /// Unix seconds.
    pub expires_at: i64,
    pub created_at: i64,
}

/// A new connect token: the row to store and the token, shown once.
pub struct IssuedToken {
    pub row: ConnectTokenRow,
    pub token: Zeroizing<String>,
}

/// What a new token carries besides its id, hash and dates.
#[derive(Debug, Clone, Default)]
pub struct NewConnectToken {
    pub project: String,
    pub external_user_id: String,
    pub apps: Option<Vec<String>>,
    pub success_redirect_uri: Option<String>,
    pub error_redirect_uri: Option<String>,
    pub webhook_uri: Option<String>,
    pub allowed_origins: Vec<String>,
    pub account_id: Option<String>,
    pub expires_in_secs: i64,
}

/// SHA-256 of a presented secret (token, session cookie, state, binding).
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// 32 random bytes, base64url without padding, behind `prefix`.
pub fn random_secret(prefix: &str) -> Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut_slice())
        .map_err(|e| StoreError::Key(KeyError::Rng(e.to_string())))?;
    Ok(Zeroizing::new(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(bytes.as_slice())
    )))
}

fn random_hex(prefix: &str, len: usize) -> Result<String> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Key(KeyError::Rng(e.to_string())))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

fn verifier_aad(state_hash: &[u8]) -> Vec<u8> {
    let mut aad = VERIFIER_AAD_DOMAIN.to_vec();
    aad.extend_from_slice(state_hash);
    aad
}

/// Connect tokens, sessions and OAuth states in the secret store's database.
#[derive(Debug, Clone)]
pub struct ConnectStore {
    db: Db,
}

impl ConnectStore {
    pub fn new(secrets: &SecretStore) -> Self {
        Self {
            db: secrets.db().clone(),
        }
    }

    /// Stores a new token; the caller checked every field.
    pub async fn issue(&self, new: NewConnectToken) -> Result<IssuedToken> {
        let token = random_secret(TOKEN_PREFIX)?;
        let now = unix_now();
        let row = ConnectTokenRow {
            id: random_hex(TOKEN_ID_PREFIX, 8)?,
            project: new.project,
            token_hash: hash_secret(&token),
            external_user_id: new.external_user_id,
            apps: new.apps,
            success_redirect_uri: new.success_redirect_uri,
            error_redirect_uri: new.error_redirect_uri,
            webhook_uri: new.webhook_uri,
            allowed_origins: new.allowed_origins,
            account_id: new.account_id,
            expires_at: now.saturating_add(new.expires_in_secs),
            created_at: now,
            flows_started: 0,
            used_at: None,
            used_account_id: None,
        };
        self.db.insert_connect_token(&row).await?;
        tracing::info!(project = %row.project, token_id = %row.id, "connect token issued");
        Ok(IssuedToken { row, token })
    }

    /// The token `id` of `project` (another project's is `None`).
    pub async fn get(&self, project: &str, id: &str) -> Result<Option<ConnectTokenRow>> {
        Ok(self
            .db
            .get_connect_token(id)
            .await?
            .filter(|t| t.project == project))
    }

    /// The token `id`, in any project (a session names it).
    pub async fn get_by_id(&self, id: &str) -> Result<Option<ConnectTokenRow>> {
        self.db.get_connect_token(id).await
    }

    /// The token whose secret is `token`.
    pub async fn find(&self, token: &str) -> Result<Option<ConnectTokenRow>> {
        self.db.find_connect_token(&hash_secret(token)).await
    }

    /// Deletes token `id` of `project` with its sessions and states.
    pub async fn delete(&self, project: &str, id: &str) -> Result<bool> {
        self.db.delete_connect_token(project, id).await
    }

    /// Counts one flow against the token; `false` when it is used, expired
    /// or out of flows.
    pub async fn start_flow(&self, id: &str) -> Result<bool> {
        self.db.start_connect_flow(id, MAX_FLOWS, unix_now()).await
    }

    /// Spends the token on `account_id`; `false` if it was spent (or expired) already.
    pub async fn spend(&self, id: &str, account_id: &str) -> Result<bool> {
        self.db
            .spend_connect_token(id, account_id, unix_now())
            .await
    }

    /// A new browser session for `token`: the cookie value, shown once.
    pub async fn open_session(&self, token: &ConnectTokenRow) -> Result<Zeroizing<String>> {
        let session = random_secret("")?;
        self.db
            .insert_connect_session(&hash_secret(&session), &token.id, token.expires_at)
            .await?;
        Ok(session)
    }

    /// The token of the session `cookie`, if the session is still valid.
    pub async fn session_token(&self, cookie: &str) -> Result<Option<ConnectTokenRow>> {
        let Some((token_id, expires_at)) =
            self.db.get_connect_session(&hash_secret(cookie)).await?
        else {
            return Ok(None);
        };
        if expires_at <= unix_now() {
            return Ok(None);
        }
        self.db.get_connect_token(&token_id).await
    }

    /// Stores a pending OAuth flow for `state`, its PKCE `verifier` sealed.
    #[allow(clippy::too_many_arguments)]
    pub async fn save_state(
        &self,
        key: &MasterKey,
        token: &ConnectTokenRow,
        app: &str,
        state: &str,
        binding: &str,
        custom_fields: &BTreeMap<String, String>,
        verifier: Option<&str>,
        ttl_secs: i64,
    ) -> Result<()> {
        let state_hash = hash_secret(state);
        let verifier = verifier
            .map(|v| crypto::seal(key, &verifier_aad(&state_hash), v.as_bytes()))
            .transpose()
            .map_err(|source| StoreError::Encrypt {
                project: token.project.clone(),
                name: "connect state".to_owned(),
                source,
            })?;
        let now = unix_now();
        self.db
            .insert_oauth_state(&OAuthStateRow {
                state_hash,
                token_id: token.id.clone(),
                project: token.project.clone(),
                app: app.to_owned(),
                external_user_id: token.external_user_id.clone(),
                binding_hash: hash_secret(binding),
                custom_fields: serde_json::to_string(custom_fields)
                    .expect("a map of strings serialises to JSON"),
                verifier,
                expires_at: now.saturating_add(ttl_secs),
                created_at: now,
            })
            .await
    }

    /// Consumes the flow of `state` (once: a second call finds nothing).
    pub async fn take_state(&self, state: &str) -> Result<Option<OAuthStateRow>> {
        self.db.take_oauth_state(&hash_secret(state)).await
    }

    /// Opens a state's sealed verifier.
    pub fn open_verifier(
        &self,
        key: &MasterKey,
        row: &OAuthStateRow,
    ) -> Result<Option<Zeroizing<String>>> {
        let Some(sealed) = &row.verifier else {
            return Ok(None);
        };
        let plain =
            crypto::open(key, &verifier_aad(&row.state_hash), sealed).map_err(|source| {
                StoreError::Decrypt {
                    project: row.project.clone(),
                    name: "connect state".to_owned(),
                    source,
                }
            })?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| StoreError::Decrypt {
            project: row.project.clone(),
            name: "connect state".to_owned(),
            source: crypto::CryptoError::Decrypt,
        })?;
        Ok(Some(Zeroizing::new(text)))
    }

    /// The webhook URI of the token that connected `account_id`, if any
    /// (where its later events go).
    pub async fn webhook_for_account(
        &self,
        project: &str,
        account_id: &str,
    ) -> Result<Option<String>> {
        self.db
            .connect_webhook_for_account(project, account_id)
            .await
    }

    /// Forgets expired sessions and states.
    pub async fn sweep(&self) -> Result<u64> {
        self.db.delete_connect_expired(unix_now()).await
    }
}
