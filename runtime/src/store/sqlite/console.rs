//! [`ConsoleRepo`] on SQLite.

use async_trait::async_trait;

use super::SqliteDatabase;
use crate::store::Result;
use crate::store::console_sessions::SessionRow;
use crate::store::repo::ConsoleRepo;

#[async_trait]
impl ConsoleRepo for SqliteDatabase {
    async fn insert_console_session(&self, session_hash: &[u8], row: &SessionRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO console_sessions
                 (session_hash, credential_kind, credential_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(session_hash)
        .bind(&row.credential_kind)
        .bind(&row.credential_id)
        .bind(row.created_at)
        .bind(row.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_console_session(&self, session_hash: &[u8]) -> Result<Option<SessionRow>> {
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT credential_kind, credential_id, created_at, expires_at
             FROM console_sessions WHERE session_hash = ?1",
        )
        .bind(session_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(credential_kind, credential_id, created_at, expires_at)| SessionRow {
                credential_kind,
                credential_id,
                created_at,
                expires_at,
            },
        ))
    }

    async fn delete_console_session(&self, session_hash: &[u8]) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE session_hash = ?1")
            .bind(session_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_console_sessions_expired(&self, now: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM console_sessions WHERE expires_at <= ?1")
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}
