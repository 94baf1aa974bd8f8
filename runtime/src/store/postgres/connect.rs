//! Connect tokens, sessions, OAuth states and the webhook outbox on
//! PostgreSQL. Every conditional write is one statement whose `WHERE`
//! re-checks the condition under the row lock it takes, so of two nodes
//! racing to count a flow, spend a token or take a state, one wins. The
//! outbox is claimed `FOR UPDATE SKIP LOCKED`: nodes claiming at once each
//! get other rows instead of queueing behind one another.

use async_trait::async_trait;

use super::PgDatabase;
use crate::store::Result;
use crate::store::connect::{ConnectTokenRow, OAuthStateRow};
use crate::store::connect_rows::{
    STATE_COLUMNS, StateColumns, TOKEN_COLUMNS, TokenColumns, WEBHOOK_COLUMNS, WebhookColumns,
    token_json, verifier_columns,
};
use crate::store::repo::{ConnectRepo, WebhookRepo};
use crate::store::webhooks::{Attempt, WebhookRow};

#[async_trait]
impl ConnectRepo for PgDatabase {
    async fn insert_connect_token(&self, row: &ConnectTokenRow) -> Result<()> {
        let (apps, origins) = token_json(row);
        sqlx::query(
            "INSERT INTO connect_tokens (id, project, token_hash, external_user_id, apps,
                 success_redirect_uri, error_redirect_uri, webhook_uri, allowed_origins,
                 account_id, expires_at, created_at, flows_started, used_at, used_account_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&row.id)
        .bind(&row.project)
        .bind(&row.token_hash)
        .bind(&row.external_user_id)
        .bind(apps)
        .bind(&row.success_redirect_uri)
        .bind(&row.error_redirect_uri)
        .bind(&row.webhook_uri)
        .bind(origins)
        .bind(&row.account_id)
        .bind(row.expires_at)
        .bind(row.created_at)
        .bind(row.flows_started)
        .bind(row.used_at)
        .bind(&row.used_account_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_connect_token(&self, id: &str) -> Result<Option<ConnectTokenRow>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM connect_tokens WHERE id = $1");
        let row: Option<TokenColumns> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(TokenColumns::into_row).transpose()
    }

    async fn find_connect_token(&self, token_hash: &[u8]) -> Result<Option<ConnectTokenRow>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM connect_tokens WHERE token_hash = $1");
        let row: Option<TokenColumns> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(TokenColumns::into_row).transpose()
    }

    async fn delete_connect_token(&self, project: &str, id: &str) -> Result<bool> {
        // Sessions and states go with it (ON DELETE CASCADE).
        let n = sqlx::query("DELETE FROM connect_tokens WHERE project = $1 AND id = $2")
            .bind(project)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn start_connect_flow(&self, id: &str, max_flows: i64, now: i64) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE connect_tokens SET flows_started = flows_started + 1
             WHERE id = $1 AND used_at IS NULL AND expires_at > $2 AND flows_started < $3",
        )
        .bind(id)
        .bind(now)
        .bind(max_flows)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn spend_connect_token(&self, id: &str, account_id: &str, now: i64) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE connect_tokens SET used_at = $2, used_account_id = $3
             WHERE id = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .bind(account_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn insert_connect_session(
        &self,
        session_hash: &[u8],
        token_id: &str,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO connect_sessions (session_hash, token_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(session_hash)
        .bind(token_id)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_connect_session(&self, session_hash: &[u8]) -> Result<Option<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT token_id, expires_at FROM connect_sessions WHERE session_hash = $1",
        )
        .bind(session_hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn insert_oauth_state(&self, row: &OAuthStateRow) -> Result<()> {
        let (key_id, nonce, ciphertext) = verifier_columns(row);
        sqlx::query(
            "INSERT INTO connect_oauth_states (state_hash, token_id, project, app,
                 external_user_id, binding_hash, custom_fields, key_id, nonce, ciphertext,
                 expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&row.state_hash)
        .bind(&row.token_id)
        .bind(&row.project)
        .bind(&row.app)
        .bind(&row.external_user_id)
        .bind(&row.binding_hash)
        .bind(&row.custom_fields)
        .bind(key_id)
        .bind(nonce)
        .bind(ciphertext)
        .bind(row.expires_at)
        .bind(row.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_oauth_state(&self, state_hash: &[u8]) -> Result<Option<OAuthStateRow>> {
        let sql = format!(
            "DELETE FROM connect_oauth_states WHERE state_hash = $1 RETURNING {STATE_COLUMNS}"
        );
        let row: Option<StateColumns> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(state_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(StateColumns::into_row).transpose()
    }

    async fn connect_webhook_for_account(
        &self,
        project: &str,
        account_id: &str,
    ) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT webhook_uri FROM connect_tokens
             WHERE project = $1 AND used_account_id = $2 AND webhook_uri IS NOT NULL
             ORDER BY used_at DESC, created_at DESC LIMIT 1",
        )
        .bind(project)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn delete_connect_expired(&self, now: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let states = sqlx::query("DELETE FROM connect_oauth_states WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let sessions = sqlx::query("DELETE FROM connect_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(states + sessions)
    }
}

#[async_trait]
impl WebhookRepo for PgDatabase {
    async fn enqueue_webhook(&self, row: &WebhookRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhook_outbox (id, project, url, event, body, attempts,
                 next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&row.id)
        .bind(&row.project)
        .bind(&row.url)
        .bind(&row.event)
        .bind(&row.body)
        .bind(row.attempts)
        .bind(row.next_attempt_at)
        .bind(row.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim_webhooks(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<WebhookRow>> {
        // SKIP LOCKED: rows another node is claiming right now are passed
        // over, not waited for; the re-check in the outer WHERE is implied
        // by the lock the subquery took.
        let sql = format!(
            "UPDATE webhook_outbox
             SET lease_owner = $1, lease_until = $2::BIGINT + $3::BIGINT, attempts = attempts + 1
             WHERE id IN (
                 SELECT id FROM webhook_outbox
                 WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2
                   AND (lease_until IS NULL OR lease_until <= $2)
                 ORDER BY next_attempt_at, seq LIMIT $4
                 FOR UPDATE SKIP LOCKED)
             RETURNING {WEBHOOK_COLUMNS}"
        );
        let rows: Vec<WebhookColumns> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(now_ms)
            .bind(lease_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        // RETURNING gives no order; oldest due first, as documented.
        let mut rows: Vec<WebhookRow> = rows.into_iter().map(WebhookRow::from).collect();
        rows.sort_by(|a, b| {
            (a.next_attempt_at, a.created_at).cmp(&(b.next_attempt_at, b.created_at))
        });
        Ok(rows)
    }

    async fn finish_webhook(
        &self,
        id: &str,
        owner: &str,
        attempt: &Attempt,
        now_ms: i64,
    ) -> Result<bool> {
        let q = match attempt {
            Attempt::Delivered => sqlx::query(
                "UPDATE webhook_outbox SET delivered_at = $3, lease_owner = NULL,
                     lease_until = NULL, last_error = NULL
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(now_ms),
            Attempt::Retry { at_ms, error } => sqlx::query(
                "UPDATE webhook_outbox SET next_attempt_at = $3, last_error = $4,
                     lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(*at_ms)
            .bind(error),
            Attempt::GiveUp { error } => sqlx::query(
                "UPDATE webhook_outbox SET failed_at = $3, last_error = $4,
                     lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(now_ms)
            .bind(error),
        };
        Ok(q.execute(&self.pool).await?.rows_affected() > 0)
    }
}
