//! The columns of the Connect tables as both backends read them (SQLite's
//! `INTEGER`/`BLOB` and PostgreSQL's `BIGINT`/`BYTEA` decode alike), and
//! their conversion to the stores' rows.

use super::connect::{ConnectTokenRow, OAuthStateRow};
use super::crypto::Sealed;
use super::webhooks::WebhookRow;
use super::{Result, StoreError};

pub(crate) const TOKEN_COLUMNS: &str = "id, project, token_hash, external_user_id, apps, \
     success_redirect_uri, error_redirect_uri, webhook_uri, allowed_origins, account_id, \
     expires_at, created_at, flows_started, used_at, used_account_id";

pub(crate) const STATE_COLUMNS: &str = "state_hash, token_id, project, app, external_user_id, \
     binding_hash, custom_fields, key_id, nonce, ciphertext, expires_at, created_at";

pub(crate) const WEBHOOK_COLUMNS: &str =
    "id, project, url, event, body, attempts, next_attempt_at, created_at";

fn corrupt(what: String) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(what.into()))
}

#[derive(sqlx::FromRow)]
pub(crate) struct TokenColumns {
    id: String,
    project: String,
    token_hash: Vec<u8>,
    external_user_id: String,
    apps: Option<String>,
    success_redirect_uri: Option<String>,
    error_redirect_uri: Option<String>,
    webhook_uri: Option<String>,
    allowed_origins: String,
    account_id: Option<String>,
    expires_at: i64,
    created_at: i64,
    flows_started: i64,
    used_at: Option<i64>,
    used_account_id: Option<String>,
}

impl TokenColumns {
    pub(crate) fn into_row(self) -> Result<ConnectTokenRow> {
        let id = self.id;
        let apps = self
            .apps
            .map(|a| serde_json::from_str(&a))
            .transpose()
            .map_err(|_| corrupt(format!("apps of connect token {id}")))?;
        let allowed_origins = serde_json::from_str(&self.allowed_origins)
            .map_err(|_| corrupt(format!("allowed_origins of connect token {id}")))?;
        Ok(ConnectTokenRow {
            project: self.project,
            token_hash: self.token_hash,
            external_user_id: self.external_user_id,
            apps,
            success_redirect_uri: self.success_redirect_uri,
            error_redirect_uri: self.error_redirect_uri,
            webhook_uri: self.webhook_uri,
            allowed_origins,
            account_id: self.account_id,
            expires_at: self.expires_at,
            created_at: self.created_at,
            flows_started: self.flows_started,
            used_at: self.used_at,
            used_account_id: self.used_account_id,
            id,
        })
    }
}

/// `apps` and `allowed_origins` as stored (JSON arrays).
pub(crate) fn token_json(row: &ConnectTokenRow) -> (Option<String>, String) {
    let json = |v: &Vec<String>| serde_json::to_string(v).expect("strings serialise");
    (row.apps.as_ref().map(json), json(&row.allowed_origins))
}

#[derive(sqlx::FromRow)]
pub(crate) struct StateColumns {
    state_hash: Vec<u8>,
    token_id: String,
    project: String,
    app: String,
    external_user_id: String,
    binding_hash: Vec<u8>,
    custom_fields: String,
    key_id: Option<String>,
    nonce: Option<Vec<u8>>,
    ciphertext: Option<Vec<u8>>,
    expires_at: i64,
    created_at: i64,
}

impl StateColumns {
    pub(crate) fn into_row(self) -> Result<OAuthStateRow> {
        let verifier = match (self.key_id, self.nonce, self.ciphertext) {
            (Some(key_id), Some(nonce), Some(ciphertext)) => Some(
                Sealed::from_parts(key_id, &nonce, ciphertext)
                    .map_err(|_| corrupt("the verifier of a connect state".to_owned()))?,
            ),
            _ => None,
        };
        Ok(OAuthStateRow {
            state_hash: self.state_hash,
            token_id: self.token_id,
            project: self.project,
            app: self.app,
            external_user_id: self.external_user_id,
            binding_hash: self.binding_hash,
            custom_fields: self.custom_fields,
            verifier,
            expires_at: self.expires_at,
            created_at: self.created_at,
        })
    }
}

/// A state's sealed verifier as its three nullable columns.
pub(crate) fn verifier_columns(
    row: &OAuthStateRow,
) -> (Option<&str>, Option<&[u8]>, Option<&[u8]>) {
    match &row.verifier {
        Some(s) => (
            Some(s.key_id.as_str()),
            Some(s.nonce.as_slice()),
            Some(s.ciphertext.as_slice()),
        ),
        None => (None, None, None),
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct WebhookColumns {
    id: String,
    project: String,
    url: String,
    event: String,
    body: String,
    attempts: i64,
    next_attempt_at: i64,
    created_at: i64,
}

impl From<WebhookColumns> for WebhookRow {
    fn from(c: WebhookColumns) -> Self {
        WebhookRow {
            id: c.id,
            project: c.project,
            url: c.url,
            event: c.event,
            body: c.body,
            attempts: c.attempts,
            next_attempt_at: c.next_attempt_at,
            created_at: c.created_at,
        }
    }
}
