//! [`AccountRepo`] on PostgreSQL.
//!
//! Why compare-and-swap on the nonce: a token refresh reads an account,
//! asks the provider, and writes the rotated tokens back. On SQLite the
//! read and the write shared one `BEGIN IMMEDIATE`; here another node may
//! have saved its own refresh in between, and blindly overwriting it would
//! store a refresh token the provider has already rotated away. Every seal
//! has a fresh random nonce, so "the nonce is still the one I read" means
//! "nobody wrote the credentials since": `UPDATE … WHERE nonce = $old`
//! updates at most one writer's way, and the loser re-reads.
//!
//! "Newest" is creation time, then insertion order (`seq`, SQLite's
//! `rowid`).

use async_trait::async_trait;

use super::{PgDatabase, decode_error};
use crate::store::accounts::{ACCOUNT_ID_PREFIX, AccountFilter, AccountMeta, AccountStatus};
use crate::store::crypto::Sealed;
use crate::store::repo::{AccountRepo, AccountRow};
use crate::store::{Result, StoreError};

/// The columns of [`MetaRow`], for `SELECT`s.
macro_rules! meta_columns {
    () => {
        "id, project, external_user_id, app, custom_fields, expires_at, status, created_at, \
         updated_at"
    };
}
/// The columns of [`FullRow`].
macro_rules! all_columns {
    () => {
        concat!(
            $crate::store::postgres::accounts::meta_columns!(),
            ", key_id, nonce, ciphertext"
        )
    };
}
pub(super) use {all_columns, meta_columns};

#[derive(sqlx::FromRow)]
pub(super) struct MetaRow {
    id: String,
    project: String,
    external_user_id: String,
    app: String,
    custom_fields: String,
    expires_at: Option<i64>,
    status: String,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
pub(super) struct FullRow {
    #[sqlx(flatten)]
    meta: MetaRow,
    key_id: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl TryFrom<MetaRow> for AccountMeta {
    type Error = StoreError;

    fn try_from(row: MetaRow) -> Result<Self> {
        let custom_fields = serde_json::from_str(&row.custom_fields)
            .map_err(|e| decode_error(format!("custom_fields of account {}: {e}", row.id)))?;
        let status = [AccountStatus::Healthy, AccountStatus::NeedsReauth]
            .into_iter()
            .find(|s| s.as_str() == row.status)
            .ok_or_else(|| decode_error(format!("unknown status of account {}", row.id)))?;
        Ok(AccountMeta {
            id: row.id,
            project: row.project,
            external_user_id: row.external_user_id,
            app: row.app,
            custom_fields,
            expires_at: row.expires_at,
            status,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

impl TryFrom<FullRow> for AccountRow {
    type Error = StoreError;

    fn try_from(row: FullRow) -> Result<Self> {
        let meta = AccountMeta::try_from(row.meta)?;
        // A nonce of the wrong length, reported as SQLite's backend does.
        let sealed =
            Sealed::from_parts(row.key_id, &row.nonce, row.ciphertext).map_err(|source| {
                StoreError::AccountDecrypt {
                    project: meta.project.clone(),
                    id: meta.id.clone(),
                    source,
                }
            })?;
        Ok(AccountRow { meta, sealed })
    }
}

#[async_trait]
impl AccountRepo for PgDatabase {
    async fn insert_account(&self, row: &AccountRow) -> Result<()> {
        let meta = &row.meta;
        let custom_fields = serde_json::to_string(&meta.custom_fields)
            .expect("a map of strings serialises to JSON");
        sqlx::query(
            "INSERT INTO accounts (id, project, external_user_id, app, key_id, nonce, ciphertext,
                                   custom_fields, expires_at, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&meta.id)
        .bind(&meta.project)
        .bind(&meta.external_user_id)
        .bind(&meta.app)
        .bind(&row.sealed.key_id)
        .bind(row.sealed.nonce.as_slice())
        .bind(&row.sealed.ciphertext)
        .bind(custom_fields)
        .bind(meta.expires_at)
        .bind(meta.status.as_str())
        .bind(meta.created_at)
        .bind(meta.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_account(&self, project: &str, id: &str) -> Result<Option<AccountRow>> {
        let row: Option<FullRow> = sqlx::query_as(concat!(
            "SELECT ",
            all_columns!(),
            " FROM accounts WHERE project = $1 AND id = $2"
        ))
        .bind(project)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(AccountRow::try_from).transpose()
    }

    async fn get_account_meta(&self, project: &str, id: &str) -> Result<Option<AccountMeta>> {
        let row: Option<MetaRow> = sqlx::query_as(concat!(
            "SELECT ",
            meta_columns!(),
            " FROM accounts WHERE project = $1 AND id = $2"
        ))
        .bind(project)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(AccountMeta::try_from).transpose()
    }

    async fn find_account(
        &self,
        project: &str,
        external_user_id: &str,
        app_or_id: &str,
    ) -> Result<Option<AccountRow>> {
        let sql = if app_or_id.starts_with(ACCOUNT_ID_PREFIX) {
            concat!(
                "SELECT ",
                all_columns!(),
                " FROM accounts WHERE project = $1 AND external_user_id = $2 AND id = $3"
            )
        } else {
            concat!(
                "SELECT ",
                all_columns!(),
                " FROM accounts WHERE project = $1 AND external_user_id = $2 AND app = $3
                  ORDER BY created_at DESC, seq DESC LIMIT 1"
            )
        };
        let row: Option<FullRow> = sqlx::query_as(sql)
            .bind(project)
            .bind(external_user_id)
            .bind(app_or_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(AccountRow::try_from).transpose()
    }

    async fn list_accounts(
        &self,
        project: &str,
        filter: &AccountFilter,
    ) -> Result<Vec<AccountMeta>> {
        let rows: Vec<MetaRow> = sqlx::query_as(concat!(
            "SELECT ",
            meta_columns!(),
            " FROM accounts WHERE project = $1
                AND ($2::TEXT IS NULL OR app = $2)
                AND ($3::TEXT IS NULL OR external_user_id = $3)
              ORDER BY created_at DESC, seq DESC"
        ))
        .bind(project)
        .bind(filter.app.as_deref())
        .bind(filter.external_user_id.as_deref())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AccountMeta::try_from).collect()
    }

    async fn delete_account(&self, project: &str, id: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM accounts WHERE project = $1 AND id = $2")
            .bind(project)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn set_account_status(
        &self,
        project: &str,
        id: &str,
        status: AccountStatus,
        now: i64,
    ) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE accounts SET status = $1, updated_at = $2 WHERE project = $3 AND id = $4",
        )
        .bind(status.as_str())
        .bind(now)
        .bind(project)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(updated > 0)
    }

    async fn replace_account_credentials(
        &self,
        project: &str,
        id: &str,
        expected_nonce: &[u8],
        sealed: &Sealed,
        expires_at: Option<i64>,
        status: AccountStatus,
        now: i64,
    ) -> Result<bool> {
        // One statement: a concurrent writer's committed update makes the
        // `nonce` test fail when this one re-checks the row it waited for.
        let updated = sqlx::query(
            "UPDATE accounts SET key_id = $1, nonce = $2, ciphertext = $3, expires_at = $4,
                                 status = $5, updated_at = $6
             WHERE project = $7 AND id = $8 AND nonce = $9",
        )
        .bind(&sealed.key_id)
        .bind(sealed.nonce.as_slice())
        .bind(&sealed.ciphertext)
        .bind(expires_at)
        .bind(status.as_str())
        .bind(now)
        .bind(project)
        .bind(id)
        .bind(expected_nonce)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(updated > 0)
    }
}
