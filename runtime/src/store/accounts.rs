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
//! access token and the new refresh token in one `UPDATE` of one column:
//! SQLite applies a statement entirely or not at all, and
//! [`AccountStore::save_refreshed`] additionally runs its read-decrypt-
//! modify-seal-write inside one `BEGIN IMMEDIATE` transaction, so a
//! concurrent writer cannot interleave and a failure before commit changes
//! nothing. There is no state in which the new access token is stored with
//! the old refresh token (which the provider may already have revoked).
//!
//! # Why [`AccountStore`] shares the [`SecretStore`]'s pool
//!
//! Accounts live in the same `airlock.db`, created by the same migration list
//! (recorded in `PRAGMA user_version`), so one file holds all sealed state,
//! one WAL, one set of permissions; and master-key rotation
//! ([`SecretStore::rotate_key`]) re-seals secrets and accounts in a single
//! transaction. A separate type keeps the secret API small and lets callers
//! hold only what they need; [`AccountStore::new`] borrows the pool.

use std::collections::BTreeMap;
use std::fmt;

use sqlx::Row as _;
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};
use zeroize::Zeroizing;

use super::crypto::{self, CryptoError, MasterKey, Sealed};
use super::sqlite::{check_store_key, unix_now};
use super::{Result, SecretStore, StoreError, validate_project_name};

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

    fn parse(s: &str) -> Option<Self> {
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
    pool: SqlitePool,
}

const META_COLUMNS: &str =
    "id, project, external_user_id, app, custom_fields, expires_at, status, created_at, updated_at";
const ALL_COLUMNS: &str = "id, project, external_user_id, app, custom_fields, expires_at, status, \
                           created_at, updated_at, key_id, nonce, ciphertext";

impl AccountStore {
    /// Accounts in the same database (and pool) as `secrets`.
    pub fn new(secrets: &SecretStore) -> Self {
        Self {
            pool: secrets.pool().clone(),
        }
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
        let id = new_account_id()?;
        let aad = binding(
            &new.project,
            &id,
            &new.app,
            &new.external_user_id,
            &new.custom_fields,
        );
        let sealed = seal_credentials(key, &new.project, &id, &aad, &new.credentials)?;
        let custom_fields =
            serde_json::to_string(&new.custom_fields).expect("a map of strings serialises to JSON");
        let now = unix_now();

        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        check_store_key(&mut tx, key).await?;
        sqlx::query(
            "INSERT INTO accounts (id, project, external_user_id, app, key_id, nonce, ciphertext,
                                   custom_fields, expires_at, status, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'healthy', ?10, ?10)",
        )
        .bind(&id)
        .bind(&new.project)
        .bind(&new.external_user_id)
        .bind(&new.app)
        .bind(&sealed.key_id)
        .bind(sealed.nonce.as_slice())
        .bind(&sealed.ciphertext)
        .bind(&custom_fields)
        .bind(new.expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(project = %new.project, account_id = %id, app = %new.app, "account created");
        Ok(Account {
            meta: AccountMeta {
                id,
                project: new.project,
                external_user_id: new.external_user_id,
                app: new.app,
                custom_fields: new.custom_fields,
                expires_at: new.expires_at,
                status: AccountStatus::Healthy,
                created_at: now,
                updated_at: now,
            },
            credentials: new.credentials,
        })
    }

    /// Account `id` of `project` with its credentials, or `None`.
    pub async fn get(&self, key: &MasterKey, project: &str, id: &str) -> Result<Option<Account>> {
        validate_project_name(project)?;
        let sql = format!("SELECT {ALL_COLUMNS} FROM accounts WHERE project = ?1 AND id = ?2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| account_from_row(key, &row)).transpose()
    }

    /// Account `id` of `project` without its credentials (nothing is
    /// decrypted), or `None`.
    pub async fn get_meta(&self, project: &str, id: &str) -> Result<Option<AccountMeta>> {
        validate_project_name(project)?;
        let sql = format!("SELECT {META_COLUMNS} FROM accounts WHERE project = ?1 AND id = ?2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(meta_from_row).transpose()
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
        let row = if app_or_id.starts_with(ACCOUNT_ID_PREFIX) {
            let sql = format!(
                "SELECT {ALL_COLUMNS} FROM accounts
                 WHERE project = ?1 AND external_user_id = ?2 AND id = ?3"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(project)
                .bind(external_user_id)
                .bind(app_or_id)
                .fetch_optional(&self.pool)
                .await?
        } else {
            let sql = format!(
                "SELECT {ALL_COLUMNS} FROM accounts
                 WHERE project = ?1 AND external_user_id = ?2 AND app = ?3
                 ORDER BY created_at DESC, rowid DESC LIMIT 1"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(project)
                .bind(external_user_id)
                .bind(app_or_id)
                .fetch_optional(&self.pool)
                .await?
        };
        row.map(|row| account_from_row(key, &row)).transpose()
    }

    /// Accounts of `project` matching `filter`, newest first; never credentials.
    pub async fn list(&self, project: &str, filter: &AccountFilter) -> Result<Vec<AccountMeta>> {
        validate_project_name(project)?;
        let sql = format!(
            "SELECT {META_COLUMNS} FROM accounts
             WHERE project = ?1 AND (?2 IS NULL OR app = ?2)
               AND (?3 IS NULL OR external_user_id = ?3)
             ORDER BY created_at DESC, rowid DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(filter.app.as_deref())
            .bind(filter.external_user_id.as_deref())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(meta_from_row).collect()
    }

    /// Deletes account `id` of `project`; `false` when there was none.
    pub async fn delete(&self, project: &str, id: &str) -> Result<bool> {
        validate_project_name(project)?;
        let deleted = sqlx::query("DELETE FROM accounts WHERE project = ?1 AND id = ?2")
            .bind(project)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if deleted > 0 {
            tracing::info!(project, account_id = id, "account deleted");
        }
        Ok(deleted > 0)
    }

    /// Marks account `id` as needing re-authorisation (its refresh was
    /// refused); `false` when there is no such account.
    pub async fn mark_needs_reauth(&self, project: &str, id: &str) -> Result<bool> {
        validate_project_name(project)?;
        let updated = sqlx::query(
            "UPDATE accounts SET status = 'needs_reauth', updated_at = ?1
             WHERE project = ?2 AND id = ?3",
        )
        .bind(unix_now())
        .bind(project)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated > 0 {
            tracing::warn!(project, account_id = id, "account needs re-authorisation");
        }
        Ok(updated > 0)
    }

    /// Saves the result of a token refresh: the new `access_token`, the
    /// rotated `refresh_token` when the provider returned one (otherwise the
    /// old one is kept), `expires_at`, and status `healthy`.
    ///
    /// Atomic: the credentials are one sealed column, rewritten by one
    /// `UPDATE` inside one `BEGIN IMMEDIATE` transaction together with
    /// `expires_at`. Either both tokens change or neither does.
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
    /// `fail_before_commit`, fails with [`StoreError::Injected`] after the
    /// `UPDATE` ran but before the transaction commits.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn save_refreshed_inner(
        &self,
        key: &MasterKey,
        project: &str,
        id: &str,
        access_token: &str,
        refresh_token: Option<&str>,
        expires_at: Option<i64>,
        fail_before_commit: bool,
    ) -> Result<()> {
        validate_project_name(project)?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let sql = format!("SELECT {ALL_COLUMNS} FROM accounts WHERE project = ?1 AND id = ?2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::AccountNotFound {
                project: project.to_owned(),
                id: id.to_owned(),
            })?;
        let mut account = account_from_row(key, &row)?;
        account.credentials.insert(
            ACCESS_TOKEN.to_owned(),
            Zeroizing::new(access_token.to_owned()),
        );
        if let Some(refresh) = refresh_token {
            account
                .credentials
                .insert(REFRESH_TOKEN.to_owned(), Zeroizing::new(refresh.to_owned()));
        }
        let aad = meta_binding(&account.meta);
        let sealed = seal_credentials(key, project, id, &aad, &account.credentials)?;
        drop(account);
        sqlx::query(
            "UPDATE accounts SET key_id = ?1, nonce = ?2, ciphertext = ?3, expires_at = ?4,
                                 status = 'healthy', updated_at = ?5
             WHERE project = ?6 AND id = ?7",
        )
        .bind(&sealed.key_id)
        .bind(sealed.nonce.as_slice())
        .bind(&sealed.ciphertext)
        .bind(expires_at)
        .bind(unix_now())
        .bind(project)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if fail_before_commit {
            tx.rollback().await?;
            return Err(StoreError::Injected(1));
        }
        tx.commit().await?;
        tracing::info!(
            project,
            account_id = id,
            rotated = refresh_token.is_some(),
            expires_at,
            "refreshed tokens saved"
        );
        Ok(())
    }
}

/// Re-seals every account's credentials from `old` to `new` inside the key
/// rotation's transaction. `done` rows were re-sealed before (secrets), for
/// the test hook's count. Returns how many accounts were re-sealed.
pub(crate) async fn reseal_accounts(
    conn: &mut SqliteConnection,
    old: &MasterKey,
    new: &MasterKey,
    fail_after: Option<usize>,
    done: usize,
) -> Result<usize> {
    let sql = format!("SELECT {ALL_COLUMNS} FROM accounts ORDER BY project, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;
    let mut count = 0;
    for row in &rows {
        if fail_after == Some(done + count) {
            return Err(StoreError::Injected(done + count));
        }
        let account = account_from_row(old, row)?;
        let sealed = seal_credentials(
            new,
            &account.meta.project,
            &account.meta.id,
            &meta_binding(&account.meta),
            &account.credentials,
        )?;
        sqlx::query("UPDATE accounts SET key_id = ?1, nonce = ?2, ciphertext = ?3 WHERE id = ?4")
            .bind(&sealed.key_id)
            .bind(sealed.nonce.as_slice())
            .bind(&sealed.ciphertext)
            .bind(&account.meta.id)
            .execute(&mut *conn)
            .await?;
        count += 1;
    }
    Ok(count)
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
    project: &str,
    id: &str,
    aad: &[u8],
    credentials: &BTreeMap<String, Zeroizing<String>>,
) -> Result<Sealed> {
    let plain: BTreeMap<&str, &str> = credentials
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let json =
        Zeroizing::new(serde_json::to_vec(&plain).expect("a map of strings serialises to JSON"));
    crypto::seal(key, aad, &json).map_err(|source| StoreError::AccountEncrypt {
        project: project.to_owned(),
        id: id.to_owned(),
        source,
    })
}

fn meta_from_row(row: &SqliteRow) -> Result<AccountMeta> {
    let custom: String = row.try_get("custom_fields")?;
    let status: String = row.try_get("status")?;
    let id: String = row.try_get("id")?;
    Ok(AccountMeta {
        custom_fields: serde_json::from_str(&custom).map_err(|e| {
            StoreError::Database(sqlx::Error::Decode(
                format!("custom_fields of account {id}: {e}").into(),
            ))
        })?,
        status: AccountStatus::parse(&status).ok_or_else(|| {
            StoreError::Database(sqlx::Error::Decode(
                format!("unknown status of account {id}").into(),
            ))
        })?,
        project: row.try_get("project")?,
        external_user_id: row.try_get("external_user_id")?,
        app: row.try_get("app")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        id,
    })
}

fn account_from_row(key: &MasterKey, row: &SqliteRow) -> Result<Account> {
    let meta = meta_from_row(row)?;
    let decrypt_err = |source| StoreError::AccountDecrypt {
        project: meta.project.clone(),
        id: meta.id.clone(),
        source,
    };
    let key_id: String = row.try_get("key_id")?;
    let nonce: Vec<u8> = row.try_get("nonce")?;
    let ciphertext: Vec<u8> = row.try_get("ciphertext")?;
    let sealed = Sealed::from_parts(key_id, &nonce, ciphertext).map_err(decrypt_err)?;
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

#[cfg(test)]
mod tests;
