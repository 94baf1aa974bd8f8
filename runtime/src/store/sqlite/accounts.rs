//! Connected accounts on SQLite.

use async_trait::async_trait;

use super::SqliteDatabase;
use super::secrets::SealedColumns;
use crate::store::accounts::{
    ACCOUNT_ID_PREFIX, AccountColumns, AccountFilter, AccountMeta, AccountStatus,
};
use crate::store::crypto::Sealed;
use crate::store::repo::{AccountRepo, AccountRow};
use crate::store::{Result, StoreError};

const META: &str =
    "id, project, external_user_id, app, custom_fields, expires_at, status, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct FullRow {
    #[sqlx(flatten)]
    meta: AccountColumns,
    #[sqlx(flatten)]
    sealed: SealedColumns,
}

impl FullRow {
    fn into_row(self) -> Result<AccountRow> {
        let meta = self.meta.into_meta()?;
        let sealed = Sealed::from_parts(
            self.sealed.key_id,
            &self.sealed.nonce,
            self.sealed.ciphertext,
        )
        .map_err(|source| StoreError::AccountDecrypt {
            project: meta.project.clone(),
            id: meta.id.clone(),
            source,
        })?;
        Ok(AccountRow { meta, sealed })
    }
}

#[async_trait]
impl AccountRepo for SqliteDatabase {
    async fn insert_account(&self, row: &AccountRow) -> Result<()> {
        let m = &row.meta;
        sqlx::query(
            "INSERT INTO accounts (id, project, external_user_id, app, key_id, nonce, ciphertext,
                                   custom_fields, expires_at, status, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .bind(&m.id)
        .bind(&m.project)
        .bind(&m.external_user_id)
        .bind(&m.app)
        .bind(&row.sealed.key_id)
        .bind(row.sealed.nonce.as_slice())
        .bind(&row.sealed.ciphertext)
        .bind(m.custom_fields_json())
        .bind(m.expires_at)
        .bind(m.status.as_str())
        .bind(m.created_at)
        .bind(m.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_account(&self, project: &str, id: &str) -> Result<Option<AccountRow>> {
        let sql = format!(
            "SELECT {META}, key_id, nonce, ciphertext FROM accounts WHERE project = ?1 AND id = ?2"
        );
        let row: Option<FullRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(FullRow::into_row).transpose()
    }

    async fn get_account_meta(&self, project: &str, id: &str) -> Result<Option<AccountMeta>> {
        let sql = format!("SELECT {META} FROM accounts WHERE project = ?1 AND id = ?2");
        let row: Option<AccountColumns> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(AccountColumns::into_meta).transpose()
    }

    async fn find_account(
        &self,
        project: &str,
        external_user_id: &str,
        app_or_id: &str,
    ) -> Result<Option<AccountRow>> {
        // An `acc_` id, which must be the user's; or the user's newest
        // account of that app (rowid breaks ties within one second).
        let by_id = app_or_id.starts_with(ACCOUNT_ID_PREFIX);
        let sql = if by_id {
            format!(
                "SELECT {META}, key_id, nonce, ciphertext FROM accounts
                 WHERE project = ?1 AND external_user_id = ?2 AND id = ?3"
            )
        } else {
            format!(
                "SELECT {META}, key_id, nonce, ciphertext FROM accounts
                 WHERE project = ?1 AND external_user_id = ?2 AND app = ?3
                 ORDER BY created_at DESC, rowid DESC LIMIT 1"
            )
        };
        let row: Option<FullRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(external_user_id)
            .bind(app_or_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(FullRow::into_row).transpose()
    }

    async fn list_accounts(
        &self,
        project: &str,
        filter: &AccountFilter,
    ) -> Result<Vec<AccountMeta>> {
        let sql = format!(
            "SELECT {META} FROM accounts
             WHERE project = ?1 AND (?2 IS NULL OR app = ?2)
               AND (?3 IS NULL OR external_user_id = ?3)
             ORDER BY created_at DESC, rowid DESC"
        );
        let rows: Vec<AccountColumns> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(filter.app.as_deref())
            .bind(filter.external_user_id.as_deref())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(AccountColumns::into_meta).collect()
    }

    async fn delete_account(&self, project: &str, id: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM accounts WHERE project = ?1 AND id = ?2")
            .bind(project)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn set_account_status(
        &self,
        project: &str,
        id: &str,
        status: AccountStatus,
        now: i64,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE accounts SET status = ?1, updated_at = ?2 WHERE project = ?3 AND id = ?4",
        )
        .bind(status.as_str())
        .bind(now)
        .bind(project)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
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
        let n = sqlx::query(
            "UPDATE accounts SET key_id = ?1, nonce = ?2, ciphertext = ?3, expires_at = ?4,
                                 status = ?5, updated_at = ?6
             WHERE project = ?7 AND id = ?8 AND nonce = ?9",
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
        Ok(n > 0)
    }
}
