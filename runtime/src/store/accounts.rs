//! Connected accounts: an end user's credentials for one app, encrypted at rest.
//!
//! An account belongs to one external user of one project. Its credential
//! fields (`api_key`, `access_token`/`refresh_token`, `username`/`password`,
//! …) are serialised as one JSON object and sealed with AES-256-GCM under the
//! [`MasterKey`], with associated data binding the ciphertext to the project,
//! account id, app, external user and custom fields ([`binding`]). What is
//! not secret stays in clear so it can be listed and scheduled without the
//! key: the app slug, custom fields (a subdomain, a region), `expires_at` and
//! `status`. Why bind the clear columns too: they decide where the
//! credentials are sent (a subdomain in a base URL) and for whom; someone
//! able to write the database but without the key could otherwise re-point
//! an account at their own host. With the binding, any such edit makes the
//! credentials undecryptable instead of misdirected.
//!
//! # Why one sealed blob
//!
//! All credential fields of an account live in one `ciphertext` column. A
//! token refresh that rotates the refresh token therefore writes the new
//! access token and the new refresh token in one `UPDATE` of one column, so
//! there is no state in which the new access token is stored with the old
//! refresh token (which the provider may already have revoked).
//! [`AccountStore::save_refreshed`] reads, decrypts, modifies and re-seals,
//! then writes with a compare-and-swap on the nonce it read: a concurrent
//! writer (another node) makes the swap fail and the save starts over from
//! a fresh read, on every backend, without holding a transaction open.
//!
//! # Why [`AccountStore`] shares the [`SecretStore`]'s database
//!
//! One database holds all sealed state, and master-key rotation
//! ([`SecretStore::rotate_to_current`]) re-seals secrets and accounts alike.
//! A separate type keeps the secret API small and lets callers hold only
//! what they need; [`AccountStore::new`] shares the handle.

use std::collections::BTreeMap;
use std::fmt;

use zeroize::Zeroizing;

use super::cache::{self, StoreCaches};
use super::credential_use::CredentialKind;
use super::crypto::{self, CryptoError, MasterKey, Sealed};
use super::repo::{AccountRow, Change};
use super::{Db, Result, SecretStore, StoreError, unix_now, validate_project_name};

/// How often [`AccountStore::save_refreshed`] retries after losing a
/// compare-and-swap to a concurrent writer.
const SAVE_ATTEMPTS: usize = 5;

/// Prefix of every account id.
pub const ACCOUNT_ID_PREFIX: &str = "acc_";
/// Longest external user id, in characters.
pub const MAX_EXTERNAL_USER_ID_LEN: usize = 250;
/// Longest app slug or field name, in characters.
pub const MAX_SLUG_LEN: usize = 128;
/// Longest custom field value, in bytes.
pub const MAX_CUSTOM_FIELD_LEN: usize = 2048;

/// The credential field holding an OAuth access token.
pub const ACCESS_TOKEN: &str = "access_token";
/// The credential field holding an OAuth refresh token.
pub const REFRESH_TOKEN: &str = "refresh_token";

/// Whether an account's credentials can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Healthy,
    /// The provider refused a refresh (`invalid_grant`): the user has to
    /// connect the account again. Refreshes fail fast without a request.
    NeedsReauth,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Healthy => "healthy",
            AccountStatus::NeedsReauth => "needs_reauth",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "healthy" => Some(AccountStatus::Healthy),
            "needs_reauth" => Some(AccountStatus::NeedsReauth),
            _ => None,
        }
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`AccountStore::create`] stores.
pub struct NewAccount {
    pub project: String,
    pub external_user_id: String,
    /// App slug; the caller checks it against the app catalog.
    pub app: String,
    pub credentials: BTreeMap<String, Zeroizing<String>>,
    pub custom_fields: BTreeMap<String, String>,
    /// Unix seconds when the access token expires, if known.
    pub expires_at: Option<i64>,
}

impl fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccount")
            .field("project", &self.project)
            .field("external_user_id", &self.external_user_id)
            .field("app", &self.app)
            .field("credentials", &CredentialNames(&self.credentials))
            .field("custom_fields", &self.custom_fields)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// An account's metadata: everything but the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountMeta {
    pub id: String,
    pub project: String,
    pub external_user_id: String,
    pub app: String,
    pub custom_fields: BTreeMap<String, String>,
    pub expires_at: Option<i64>,
    pub status: AccountStatus,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

impl AccountMeta {
    /// The custom fields as stored: JSON with sorted keys.
    pub(crate) fn custom_fields_json(&self) -> String {
        serde_json::to_string(&self.custom_fields).expect("a map of strings serialises to JSON")
    }
}

/// An account's clear columns as every backend stores them.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AccountColumns {
    pub id: String,
    pub project: String,
    pub external_user_id: String,
    pub app: String,
    pub custom_fields: String,
    pub expires_at: Option<i64>,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl AccountColumns {
    pub(crate) fn into_meta(self) -> Result<AccountMeta> {
        let id = self.id;
        let corrupt = |what: &str| {
            StoreError::Database(sqlx::Error::Decode(
                format!("{what} of account {id}").into(),
            ))
        };
        Ok(AccountMeta {
            custom_fields: serde_json::from_str(&self.custom_fields)
                .map_err(|_| corrupt("custom_fields"))?,
            status: AccountStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?,
            project: self.project,
            external_user_id: self.external_user_id,
            app: self.app,
            expires_at: self.expires_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            id,
        })
    }
}

/// An account with its decrypted credentials. The values are zeroed on drop
/// and `Debug` shows only the credential field names.
pub struct Account {
    pub meta: AccountMeta,
    pub credentials: BTreeMap<String, Zeroizing<String>>,
}

impl Account {
    pub fn id(&self) -> &str {
        &self.meta.id
    }

    /// A credential field's value.
    pub fn credential(&self, field: &str) -> Option<&str> {
        self.credentials.get(field).map(|v| v.as_str())
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("meta", &self.meta)
            .field("credentials", &CredentialNames(&self.credentials))
            .finish()
    }
}

/// Debug-prints credential field names, never values.
struct CredentialNames<'a>(&'a BTreeMap<String, Zeroizing<String>>);

impl fmt::Debug for CredentialNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Filters of [`AccountStore::list`]; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    pub app: Option<String>,
    pub external_user_id: Option<String>,
}

/// Connected accounts in the secret store's database.
#[derive(Debug, Clone)]
pub struct AccountStore {
    db: Db,
    secrets: SecretStore,
    caches: std::sync::Arc<StoreCaches>,
}

impl AccountStore {
    /// Accounts in the same database as `secrets`.
    pub fn new(secrets: &SecretStore) -> Self {
        Self {
            db: secrets.db().clone(),
            caches: secrets.caches().clone(),
            secrets: secrets.clone(),
        }
    }

    /// Every cache entry of `project`'s accounts goes: one was written.
    async fn changed(&self, project: &str) {
        let change = Change::Account {
            project: project.to_owned(),
        };
        cache::publish(&self.db, change).await;
    }

    /// Account `id`'s row, from the cache or the database.
    async fn row(&self, project: &str, id: &str) -> Result<Option<AccountRow>> {
        let key = (project.to_owned(), id.to_owned());
        let read_at = self.caches.sync();
        if let Some(hit) = self.caches.accounts.get(&key) {
            return Ok(hit);
        }
        let row = self.db.get_account(project, id).await?;
        self.caches
            .fill(read_at, &self.caches.accounts, key, row.clone());
        Ok(row)
    }

    /// Stores a new account, its credentials sealed under `key`, with status
    /// `healthy` and a fresh random id (`acc_` and 16 hex digits).
    pub async fn create(&self, key: &MasterKey, new: NewAccount) -> Result<Account> {
        validate_project_name(&new.project)?;
        validate_external_user_id(&new.external_user_id)?;
        validate_app(&new.app)?;
        for name in new.credentials.keys() {
            validate_field_name("credential field name", name)?;
        }
        for (name, value) in &new.custom_fields {
            validate_field_name("custom field name", name)?;
            if value.len() > MAX_CUSTOM_FIELD_LEN || value.chars().any(char::is_control) {
                return Err(StoreError::InvalidAccount {
                    field: "custom field value",
                    reason: "it must be at most 2048 bytes without control characters",
                });
            }
        }
        self.secrets.check_keyring(key).await?;
        let now = unix_now();
        let meta = AccountMeta {
            id: new_account_id()?,
            project: new.project,
            external_user_id: new.external_user_id,
            app: new.app,
            custom_fields: new.custom_fields,
            expires_at: new.expires_at,
            status: AccountStatus::Healthy,
            created_at: now,
            updated_at: now,
        };
        let sealed = seal_credentials(key, &meta, &new.credentials)?;
        self.db
            .insert_account(&AccountRow {
                meta: meta.clone(),
                sealed,
            })
            .await?;
        self.changed(&meta.project).await;
        tracing::info!(project = %meta.project, account_id = %meta.id, app = %meta.app, "account created");
        Ok(Account {
            meta,
            credentials: new.credentials,
        })
    }

    /// Account `id` of `project` with its credentials, or `None`.
    pub async fn get(&self, key: &MasterKey, project: &str, id: &str) -> Result<Option<Account>> {
        validate_project_name(project)?;
        let row = self.row(project, id).await?;
        self.mark_used(row.as_ref());
        row.map(|row| open_account(key, row)).transpose()
    }

    /// Marks the account whose credentials were read used (memory only).
    fn mark_used(&self, row: Option<&AccountRow>) {
        if let Some(row) = row {
            self.caches.uses.mark(CredentialKind::Account, &row.meta.id);
        }
    }

    /// When each of `ids` was last used, Unix seconds.
    pub async fn last_used(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, i64>> {
        self.caches
            .uses
            .last_used(&self.db, CredentialKind::Account, ids)
            .await
    }

    /// Account `id` of `project` with its credentials, read from the
    /// database rather than the cache (for a read that must see another
    /// node's write at once).
    pub async fn get_fresh(
        &self,
        key: &MasterKey,
        project: &str,
        id: &str,
    ) -> Result<Option<Account>> {
        validate_project_name(project)?;
        let row = self.db.get_account(project, id).await?;
        row.map(|row| open_account(key, row)).transpose()
    }

    /// Account `id` of `project` without its credentials (nothing is
    /// decrypted), or `None`.
    pub async fn get_meta(&self, project: &str, id: &str) -> Result<Option<AccountMeta>> {
        validate_project_name(project)?;
        Ok(self.row(project, id).await?.map(|row| row.meta))
    }

    /// The account a step names: `app_or_id` is either an account id (`acc_…`,
    /// which must belong to `external_user_id`) or an app slug, meaning that
    /// user's newest account of that app.
    pub async fn find(
        &self,
        key: &MasterKey,
        project: &str,
        external_user_id: &str,
        app_or_id: &str,
    ) -> Result<Option<Account>> {
        validate_project_name(project)?;
        let cache_key = (
            project.to_owned(),
            external_user_id.to_owned(),
            app_or_id.to_owned(),
        );
        let read_at = self.caches.sync();
        let row = match self.caches.found_accounts.get(&cache_key) {
            Some(hit) => hit,
            None => {
                let row = self
                    .db
                    .find_account(project, external_user_id, app_or_id)
                    .await?;
                self.caches
                    .fill(read_at, &self.caches.found_accounts, cache_key, row.clone());
                row
            }
        };
        self.mark_used(row.as_ref());
        row.map(|row| open_account(key, row)).transpose()
    }

    /// Accounts of `project` matching `filter`, newest first; never credentials.
    pub async fn list(&self, project: &str, filter: &AccountFilter) -> Result<Vec<AccountMeta>> {
        validate_project_name(project)?;
        self.db.list_accounts(project, filter).await
    }

    /// Deletes account `id` of `project`; `false` when there was none.
    pub async fn delete(&self, project: &str, id: &str) -> Result<bool> {
        validate_project_name(project)?;
        let deleted = self.db.delete_account(project, id).await?;
        self.changed(project).await;
        if deleted {
            tracing::info!(project, account_id = id, "account deleted");
        }
        Ok(deleted)
    }

    /// Marks account `id` as needing re-authorisation (its refresh was
    /// refused); `false` when there is no such account.
    pub async fn mark_needs_reauth(&self, project: &str, id: &str) -> Result<bool> {
        validate_project_name(project)?;
        let updated = self
            .db
            .set_account_status(project, id, AccountStatus::NeedsReauth, unix_now())
            .await?;
        self.changed(project).await;
        if updated {
            tracing::warn!(project, account_id = id, "account needs re-authorisation");
        }
        Ok(updated)
    }

    /// Saves the result of a token refresh: the new `access_token`, the
    /// rotated `refresh_token` when the provider returned one (otherwise the
    /// old one is kept), `expires_at`, and status `healthy`.
    ///
    /// Atomic: the credentials are one sealed column, rewritten by one
    /// compare-and-swap together with `expires_at`. Either both tokens
    /// change or neither does.
    pub async fn save_refreshed(
        &self,
        key: &MasterKey,
        project: &str,
        id: &str,
        access_token: &str,
        refresh_token: Option<&str>,
        expires_at: Option<i64>,
    ) -> Result<()> {
        self.save_refreshed_inner(
            key,
            project,
            id,
            access_token,
            refresh_token,
            expires_at,
            false,
        )
        .await
    }

    /// [`save_refreshed`](Self::save_refreshed) with a test hook: when
    /// `fail_before_write`, fails with [`StoreError::Injected`] after the new
    /// credentials are sealed but before they are written.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn save_refreshed_inner(
        &self,
        key: &MasterKey,
        project: &str,
        id: &str,
        access_token: &str,
        refresh_token: Option<&str>,
        expires_at: Option<i64>,
        fail_before_write: bool,
    ) -> Result<()> {
        validate_project_name(project)?;
        let not_found = || StoreError::AccountNotFound {
            project: project.to_owned(),
            id: id.to_owned(),
        };
        for _ in 0..SAVE_ATTEMPTS {
            let row = self
                .db
                .get_account(project, id)
                .await?
                .ok_or_else(not_found)?;
            let read_nonce = row.sealed.nonce;
            let mut account = open_account(key, row)?;
            account.credentials.insert(
                ACCESS_TOKEN.to_owned(),
                Zeroizing::new(access_token.to_owned()),
            );
            if let Some(refresh) = refresh_token {
                account
                    .credentials
                    .insert(REFRESH_TOKEN.to_owned(), Zeroizing::new(refresh.to_owned()));
            }
            let sealed = seal_credentials(key, &account.meta, &account.credentials)?;
            drop(account);
            if fail_before_write {
                return Err(StoreError::Injected(1));
            }
            let saved = self
                .db
                .replace_account_credentials(
                    project,
                    id,
                    &read_nonce,
                    &sealed,
                    expires_at,
                    AccountStatus::Healthy,
                    unix_now(),
                )
                .await?;
            if saved {
                self.changed(project).await;
                tracing::info!(
                    project,
                    account_id = id,
                    rotated = refresh_token.is_some(),
                    expires_at,
                    "refreshed tokens saved"
                );
                return Ok(());
            }
        }
        Err(StoreError::Contended {
            what: "account credentials",
        })
    }
}

/// An account's credentials opened with the ring and sealed again under
/// its current key (for master-key rotation).
pub(crate) fn reseal(ring: &MasterKey, meta: &AccountMeta, sealed: &Sealed) -> Result<Sealed> {
    let account = open_account(
        ring,
        AccountRow {
            meta: meta.clone(),
            sealed: sealed.clone(),
        },
    )?;
    seal_credentials(ring, &account.meta, &account.credentials)
}

/// The associated data of an account's ciphertext: project and id (as
/// [`crypto::account_aad`]) followed by app, external user and the canonical
/// JSON of the custom fields, NUL-separated.
fn binding(
    project: &str,
    id: &str,
    app: &str,
    external_user_id: &str,
    custom_fields: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut aad = crypto::account_aad(project, id);
    for part in [app, external_user_id] {
        aad.push(0);
        aad.extend_from_slice(part.as_bytes());
    }
    aad.push(0);
    // A BTreeMap serialises with sorted keys: the same fields, the same bytes.
    aad.extend_from_slice(
        serde_json::to_string(custom_fields)
            .expect("a map of strings serialises to JSON")
            .as_bytes(),
    );
    aad
}

fn meta_binding(meta: &AccountMeta) -> Vec<u8> {
    binding(
        &meta.project,
        &meta.id,
        &meta.app,
        &meta.external_user_id,
        &meta.custom_fields,
    )
}

fn seal_credentials(
    key: &MasterKey,
    meta: &AccountMeta,
    credentials: &BTreeMap<String, Zeroizing<String>>,
) -> Result<Sealed> {
    let plain: BTreeMap<&str, &str> = credentials
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let json =
        Zeroizing::new(serde_json::to_vec(&plain).expect("a map of strings serialises to JSON"));
    crypto::seal(key, &meta_binding(meta), &json).map_err(|source| StoreError::AccountEncrypt {
        project: meta.project.clone(),
        id: meta.id.clone(),
        source,
    })
}

fn open_account(key: &MasterKey, row: AccountRow) -> Result<Account> {
    let AccountRow { meta, sealed } = row;
    let decrypt_err = |source| StoreError::AccountDecrypt {
        project: meta.project.clone(),
        id: meta.id.clone(),
        source,
    };
    let plaintext = crypto::open(key, &meta_binding(&meta), &sealed).map_err(|e| match e {
        CryptoError::KeyMismatch { current, stored } => StoreError::KeyMismatch { current, stored },
        other => decrypt_err(other),
    })?;
    // The parsed strings are moved into `Zeroizing` at once; serde_json's error
    // never quotes the input, so a malformed blob does not leak into errors.
    let parsed: BTreeMap<String, String> =
        serde_json::from_slice(&plaintext).map_err(|_| decrypt_err(CryptoError::Decrypt))?;
    drop(plaintext);
    let credentials = parsed
        .into_iter()
        .map(|(k, v)| (k, Zeroizing::new(v)))
        .collect();
    Ok(Account { meta, credentials })
}

fn new_account_id() -> Result<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Key(super::KeyError::Rng(e.to_string())))?;
    Ok(format!("{ACCOUNT_ID_PREFIX}{}", hex::encode(bytes)))
}

/// Checks an external user id: 1–250 characters, no control characters.
pub fn validate_external_user_id(id: &str) -> Result<()> {
    let len = id.chars().count();
    if (1..=MAX_EXTERNAL_USER_ID_LEN).contains(&len) && !id.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(StoreError::InvalidAccount {
            field: "external user id",
            reason: "it must be 1 to 250 characters without control characters",
        })
    }
}

/// Checks the shape of an app slug: 1–128 ASCII letters, digits, `_`, `-`,
/// `.`, starting with a letter or digit, and not starting with `acc_` (which
/// would be read as an account id by [`AccountStore::find`]).
pub fn validate_app(app: &str) -> Result<()> {
    let ok = app.len() <= MAX_SLUG_LEN
        && app
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && app
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !app.starts_with(ACCOUNT_ID_PREFIX);
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidAccount {
            field: "app slug",
            reason: "it must be 1 to 128 characters of ASCII letters, digits, `_`, `-` and `.`, \
                     starting with a letter or digit, and must not start with `acc_`",
        })
    }
}

fn validate_field_name(field: &'static str, name: &str) -> Result<()> {
    let ok = (1..=MAX_SLUG_LEN).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidAccount {
            field,
            reason: "it must be 1 to 128 characters of ASCII letters, digits, `_`, `-` and `.`",
        })
    }
}

mod replace;

#[cfg(test)]
mod tests;
