//! Projects, API keys, OAuth clients and tokens, and the audit log on SQLite.
//!
//! Revoking the last unrestricted admin credential is refused (see
//! [`crate::store::platform`]); the check and the delete share one
//! `BEGIN IMMEDIATE` transaction, so two concurrent revocations of the last
//! two cannot both pass.

use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::SqliteDatabase;
use crate::store::Result;
use crate::store::platform::{AuditEntry, CredentialColumns, CredentialMeta, Project};
use crate::store::repo::{HashedCredential, PlatformRepo, Revocation, TokenRow};

/// `scopes` (space-separated, as stored) hold `admin`.
const HOLDS_ADMIN: &str = "(' ' || scopes || ' ') LIKE '% admin %'";

#[derive(sqlx::FromRow)]
struct HashedColumns {
    #[sqlx(flatten)]
    meta: CredentialColumns,
    secret_hash: Vec<u8>,
}

impl From<HashedColumns> for HashedCredential {
    fn from(c: HashedColumns) -> Self {
        HashedCredential {
            meta: c.meta.into(),
            secret_hash: c.secret_hash,
        }
    }
}

#[derive(sqlx::FromRow)]
struct TokenColumns {
    client_id: String,
    scopes: String,
    project: Option<String>,
    expires_at: i64,
}

/// Whether the row of `table` with `id` is an unrestricted admin; `None`
/// when there is no such row.
async fn is_unrestricted_admin(
    conn: &mut SqliteConnection,
    table: &'static str,
    id: &str,
) -> Result<Option<bool>> {
    let sql = format!("SELECT project IS NULL AND {HOLDS_ADMIN} FROM {table} WHERE id = ?1");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// Unrestricted admin credentials other than `except`, keys and clients,
/// that do not expire (one that expires would leave the server without an
/// admin when it does).
async fn other_unrestricted_admins(conn: &mut SqliteConnection, except: &str) -> Result<i64> {
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM api_keys
                 WHERE project IS NULL AND expires_at IS NULL AND id != ?1 AND {HOLDS_ADMIN})
              + (SELECT COUNT(*) FROM oauth_clients
                 WHERE project IS NULL AND expires_at IS NULL AND id != ?1 AND {HOLDS_ADMIN})"
    );
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(except)
        .fetch_one(conn)
        .await?)
}

impl SqliteDatabase {
    /// Deletes the row `id` of `table` (and what `also` deletes first),
    /// unless it is the last unrestricted admin credential.
    async fn revoke(
        &self,
        table: &'static str,
        id: &str,
        also: Option<&str>,
    ) -> Result<Revocation> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        match is_unrestricted_admin(&mut tx, table, id).await? {
            None => return Ok(Revocation::NotFound),
            Some(true) if other_unrestricted_admins(&mut tx, id).await? == 0 => {
                return Ok(Revocation::LastAdmin);
            }
            Some(_) => {}
        }
        if let Some(sql) = also {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let sql = format!("DELETE FROM {table} WHERE id = ?1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Revocation::Revoked)
    }

    async fn insert_credential(&self, table: &'static str, c: &HashedCredential) -> Result<()> {
        let sql = format!(
            "INSERT INTO {table} (id, name, secret_hash, scopes, project, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&c.meta.id)
            .bind(&c.meta.name)
            .bind(&c.secret_hash)
            .bind(c.meta.scopes.join(" "))
            .bind(&c.meta.project)
            .bind(c.meta.created_at)
            .bind(c.meta.expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Creation order: keys by time then id, clients by time then insertion
    /// (as every backend orders them).
    async fn list_credentials(&self, table: &'static str) -> Result<Vec<CredentialMeta>> {
        let tie = if table == "api_keys" { "id" } else { "rowid" };
        let sql = format!(
            "SELECT id, name, scopes, project, created_at, expires_at FROM {table} ORDER BY created_at, {tie}"
        );
        let rows: Vec<CredentialColumns> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn get_credential(
        &self,
        table: &'static str,
        id: &str,
    ) -> Result<Option<HashedCredential>> {
        let sql = format!(
            "SELECT id, name, scopes, project, created_at, expires_at, secret_hash FROM {table} WHERE id = ?1"
        );
        let row: Option<HashedColumns> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Into::into))
    }
}

#[async_trait]
impl PlatformRepo for SqliteDatabase {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_project(&self, name: &str, now: i64) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO projects (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn list_projects(&self) -> Result<Vec<Project>> {
        Ok(
            sqlx::query_as("SELECT name, created_at FROM projects ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn get_project(&self, name: &str) -> Result<Option<Project>> {
        Ok(
            sqlx::query_as("SELECT name, created_at FROM projects WHERE name = ?1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn insert_api_key(&self, key: &HashedCredential) -> Result<()> {
        self.insert_credential("api_keys", key).await
    }

    async fn list_api_keys(&self) -> Result<Vec<CredentialMeta>> {
        self.list_credentials("api_keys").await
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<HashedCredential>> {
        self.get_credential("api_keys", id).await
    }

    async fn delete_api_key(&self, id: &str) -> Result<Revocation> {
        self.revoke("api_keys", id, None).await
    }

    async fn insert_client(&self, client: &HashedCredential) -> Result<()> {
        self.insert_credential("oauth_clients", client).await
    }

    async fn list_clients(&self) -> Result<Vec<CredentialMeta>> {
        self.list_credentials("oauth_clients").await
    }

    async fn get_client(&self, id: &str) -> Result<Option<HashedCredential>> {
        self.get_credential("oauth_clients", id).await
    }

    async fn rotate_api_key(&self, id: &str, secret_hash: &[u8]) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let n = sqlx::query("UPDATE api_keys SET secret_hash = ?1 WHERE id = ?2")
            .bind(secret_hash)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM console_sessions WHERE credential_kind = 'api_key' AND credential_id = ?1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn rotate_client_secret(&self, id: &str, secret_hash: &[u8]) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let n = sqlx::query("UPDATE oauth_clients SET secret_hash = ?1 WHERE id = ?2")
            .bind(secret_hash)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM oauth_tokens WHERE client_id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_client(&self, id: &str) -> Result<Revocation> {
        self.revoke(
            "oauth_clients",
            id,
            Some("DELETE FROM oauth_tokens WHERE client_id = ?1"),
        )
        .await
    }

    async fn insert_token(&self, token_hash: &[u8], token: &TokenRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO oauth_tokens (token_hash, client_id, scopes, project, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(token_hash)
        .bind(&token.client_id)
        .bind(token.scopes.join(" "))
        .bind(&token.project)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_token(&self, token_hash: &[u8]) -> Result<Option<TokenRow>> {
        let row: Option<TokenColumns> = sqlx::query_as(
            "SELECT client_id, scopes, project, expires_at FROM oauth_tokens WHERE token_hash = ?1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| TokenRow {
            client_id: r.client_id,
            scopes: r.scopes.split_whitespace().map(str::to_owned).collect(),
            project: r.project,
            expires_at: r.expires_at,
        }))
    }

    async fn delete_tokens_expired_before(&self, cutoff: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM oauth_tokens WHERE expires_at <= ?1")
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn insert_audit(
        &self,
        at: i64,
        method: &str,
        route: &str,
        key_id: Option<&str>,
        reason: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO auth_audit (at, method, route, key_id, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(at)
        .bind(method)
        .bind(route)
        .bind(key_id)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        Ok(sqlx::query_as(
            "SELECT id, at, method, route, key_id, reason FROM auth_audit ORDER BY id DESC LIMIT ?1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
