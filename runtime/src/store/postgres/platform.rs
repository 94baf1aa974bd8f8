//! [`PlatformRepo`] on PostgreSQL: projects, API keys, OAuth clients and
//! tokens (hashes only), and the audit log.
//!
//! Why an advisory lock for revocations: the last unrestricted admin
//! credential (scope `admin`, no project; keys and clients together) must
//! never be deleted, or the server can only be managed from a shell on its
//! machine. "Count the others, then delete" is two statements; under
//! PostgreSQL's default isolation two nodes revoking the last two admin
//! keys at once would each count the other and both delete. Every
//! revocation therefore first takes one transaction-scoped advisory lock
//! (a fixed key meaning "admin credentials"), so revocations run one at a
//! time, and each counts what the previous one committed. Issuing keys
//! takes no lock: adding an admin never breaks the rule.
//!
//! Why one transaction for a client's secret and its tokens: a rotated or
//! deleted client's tokens must stop working with it, on every node, with
//! no moment in between where the new secret exists beside old tokens.

use async_trait::async_trait;
use sqlx::PgConnection;

use super::{InternalLock, PgDatabase, join_scopes, split_scopes};
use crate::store::Result;
use crate::store::platform::{AuditEntry, CredentialMeta, Project};
use crate::store::repo::{HashedCredential, PlatformRepo, Revocation, TokenRow};

/// `scopes` (space-separated, as stored) hold `admin` as a whole word.
macro_rules! holds_admin {
    () => {
        "'admin' = ANY(string_to_array(scopes, ' '))"
    };
}

#[derive(sqlx::FromRow)]
struct ProjectRow {
    name: String,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: String,
    name: String,
    scopes: String,
    project: Option<String>,
    created_at: i64,
    expires_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct HashedRow {
    #[sqlx(flatten)]
    meta: CredentialRow,
    secret_hash: Vec<u8>,
}

#[derive(sqlx::FromRow)]
struct TokenDbRow {
    client_id: String,
    scopes: String,
    project: Option<String>,
    expires_at: i64,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    method: String,
    route: String,
    key_id: Option<String>,
    reason: String,
}

impl From<ProjectRow> for Project {
    fn from(r: ProjectRow) -> Self {
        Project {
            name: r.name,
            created_at: r.created_at,
        }
    }
}

impl From<CredentialRow> for CredentialMeta {
    fn from(r: CredentialRow) -> Self {
        CredentialMeta {
            id: r.id,
            name: r.name,
            scopes: split_scopes(&r.scopes),
            project: r.project,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

impl From<HashedRow> for HashedCredential {
    fn from(r: HashedRow) -> Self {
        HashedCredential {
            meta: r.meta.into(),
            secret_hash: r.secret_hash,
        }
    }
}

impl From<TokenDbRow> for TokenRow {
    fn from(r: TokenDbRow) -> Self {
        TokenRow {
            client_id: r.client_id,
            scopes: split_scopes(&r.scopes),
            project: r.project,
            expires_at: r.expires_at,
        }
    }
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            id: r.id,
            at: r.at,
            method: r.method,
            route: r.route,
            key_id: r.key_id,
            reason: r.reason,
        }
    }
}

/// The two credential tables, for the revocation check.
#[derive(Clone, Copy)]
enum Table {
    ApiKeys,
    Clients,
}

/// Under the admin-credentials lock: whether `id` of `table` may go.
/// `None` when there is no such row.
async fn may_revoke(conn: &mut PgConnection, table: Table, id: &str) -> Result<Option<bool>> {
    InternalLock::AdminCredentials.take(conn).await?;
    let is_admin = match table {
        Table::ApiKeys => concat!(
            "SELECT project IS NULL AND ",
            holds_admin!(),
            " FROM api_keys WHERE id = $1"
        ),
        Table::Clients => concat!(
            "SELECT project IS NULL AND ",
            holds_admin!(),
            " FROM oauth_clients WHERE id = $1"
        ),
    };
    let Some(is_admin) = sqlx::query_scalar::<_, bool>(is_admin)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    if !is_admin {
        return Ok(Some(true));
    }
    let others: i64 = sqlx::query_scalar(concat!(
        "SELECT (SELECT COUNT(*) FROM api_keys
                 WHERE project IS NULL AND expires_at IS NULL AND id <> $1 AND ",
        holds_admin!(),
        ") + (SELECT COUNT(*) FROM oauth_clients
                 WHERE project IS NULL AND expires_at IS NULL AND id <> $1 AND ",
        holds_admin!(),
        ")"
    ))
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(others > 0))
}

#[async_trait]
impl PlatformRepo for PgDatabase {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_project(&self, name: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO projects (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done > 0)
    }

    async fn list_projects(&self) -> Result<Vec<Project>> {
        let rows: Vec<ProjectRow> =
            sqlx::query_as("SELECT name, created_at FROM projects ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(Project::from).collect())
    }

    async fn get_project(&self, name: &str) -> Result<Option<Project>> {
        let row: Option<ProjectRow> =
            sqlx::query_as("SELECT name, created_at FROM projects WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(Project::from))
    }

    async fn insert_api_key(&self, key: &HashedCredential) -> Result<()> {
        insert_credential(&self.pool, Table::ApiKeys, key).await
    }

    async fn list_api_keys(&self) -> Result<Vec<CredentialMeta>> {
        let rows: Vec<CredentialRow> = sqlx::query_as(
            "SELECT id, name, scopes, project, created_at, expires_at FROM api_keys ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(CredentialMeta::from).collect())
    }

    async fn get_api_key(&self, id: &str) -> Result<Option<HashedCredential>> {
        let row: Option<HashedRow> = sqlx::query_as(
            "SELECT id, name, secret_hash, scopes, project, created_at, expires_at FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(HashedCredential::from))
    }

    async fn delete_api_key(&self, id: &str) -> Result<Revocation> {
        let mut tx = self.pool.begin().await?;
        match may_revoke(&mut tx, Table::ApiKeys, id).await? {
            None => return Ok(Revocation::NotFound),
            Some(false) => return Ok(Revocation::LastAdmin),
            Some(true) => {}
        }
        sqlx::query("DELETE FROM api_keys WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Revocation::Revoked)
    }

    async fn insert_client(&self, client: &HashedCredential) -> Result<()> {
        insert_credential(&self.pool, Table::Clients, client).await
    }

    async fn list_clients(&self) -> Result<Vec<CredentialMeta>> {
        let rows: Vec<CredentialRow> = sqlx::query_as(
            "SELECT id, name, scopes, project, created_at, expires_at FROM oauth_clients
             ORDER BY created_at, seq",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(CredentialMeta::from).collect())
    }

    async fn get_client(&self, id: &str) -> Result<Option<HashedCredential>> {
        let row: Option<HashedRow> = sqlx::query_as(
            "SELECT id, name, secret_hash, scopes, project, created_at, expires_at FROM oauth_clients
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(HashedCredential::from))
    }

    async fn rotate_api_key(&self, id: &str, secret_hash: &[u8]) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("UPDATE api_keys SET secret_hash = $1 WHERE id = $2")
            .bind(secret_hash)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM console_sessions WHERE credential_kind = 'api_key' AND credential_id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn rotate_client_secret(&self, id: &str, secret_hash: &[u8]) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("UPDATE oauth_clients SET secret_hash = $1 WHERE id = $2")
            .bind(secret_hash)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM oauth_tokens WHERE client_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_client(&self, id: &str) -> Result<Revocation> {
        let mut tx = self.pool.begin().await?;
        match may_revoke(&mut tx, Table::Clients, id).await? {
            None => return Ok(Revocation::NotFound),
            Some(false) => return Ok(Revocation::LastAdmin),
            Some(true) => {}
        }
        sqlx::query("DELETE FROM oauth_tokens WHERE client_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM oauth_clients WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Revocation::Revoked)
    }

    async fn insert_token(&self, token_hash: &[u8], token: &TokenRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO oauth_tokens (token_hash, client_id, scopes, project, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(&token.client_id)
        .bind(join_scopes(&token.scopes))
        .bind(&token.project)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_token(&self, token_hash: &[u8]) -> Result<Option<TokenRow>> {
        let row: Option<TokenDbRow> = sqlx::query_as(
            "SELECT client_id, scopes, project, expires_at FROM oauth_tokens
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(TokenRow::from))
    }

    async fn delete_tokens_expired_before(&self, cutoff: i64) -> Result<u64> {
        // `<=`, as on SQLite: a token expiring at `cutoff` is already expired.
        Ok(
            sqlx::query("DELETE FROM oauth_tokens WHERE expires_at <= $1")
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
            "INSERT INTO auth_audit (at, method, route, key_id, reason) VALUES ($1, $2, $3, $4, $5)",
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
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, at, method, route, key_id, reason FROM auth_audit
             ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }
}

async fn insert_credential(
    pool: &sqlx::PgPool,
    table: Table,
    credential: &HashedCredential,
) -> Result<()> {
    let sql = match table {
        Table::ApiKeys => {
            "INSERT INTO api_keys (id, name, secret_hash, scopes, project, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        }
        Table::Clients => {
            "INSERT INTO oauth_clients (id, name, secret_hash, scopes, project, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        }
    };
    let meta = &credential.meta;
    sqlx::query(sql)
        .bind(&meta.id)
        .bind(&meta.name)
        .bind(&credential.secret_hash)
        .bind(join_scopes(&meta.scopes))
        .bind(&meta.project)
        .bind(meta.created_at)
        .bind(meta.expires_at)
        .execute(pool)
        .await?;
    Ok(())
}
