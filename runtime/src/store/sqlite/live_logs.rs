//! [`LiveLogRepo`] on SQLite.

use async_trait::async_trait;

use super::SqliteDatabase;
use crate::store::Result;
use crate::store::repo::LiveLogRepo;
use crate::store::webhooks::WebhookRow;

#[async_trait]
impl LiveLogRepo for SqliteDatabase {
    async fn append_run_log_lines(
        &self,
        run_id: &str,
        lines: &[(i64, String)],
        now_ms: i64,
    ) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut insert =
            sqlx::QueryBuilder::new("INSERT INTO run_log_lines (run_id, seq, line, created_at) ");
        insert.push_values(lines, |mut row, (seq, line)| {
            row.push_bind(run_id)
                .push_bind(*seq)
                .push_bind(line)
                .push_bind(now_ms);
        });
        insert.push(" ON CONFLICT DO NOTHING");
        insert.build().execute(&self.pool).await?;
        Ok(())
    }

    async fn run_log_lines_after(
        &self,
        run_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT seq, line FROM run_log_lines WHERE run_id = ?1 AND seq > ?2
             ORDER BY seq LIMIT ?3",
        )
        .bind(run_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delete_run_log_lines(&self, run_id: &str) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM run_log_lines WHERE run_id = ?1")
            .bind(run_id)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn delete_run_log_lines_before(&self, cutoff_ms: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM run_log_lines WHERE created_at < ?1")
                .bind(cutoff_ms)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn run_callback_url(&self, project: &str, id: &str) -> Result<Option<String>> {
        let url: Option<Option<String>> =
            sqlx::query_scalar("SELECT callback_url FROM runs WHERE project = ?1 AND id = ?2")
                .bind(project)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(url.flatten())
    }

    async fn enqueue_webhook_once(&self, row: &WebhookRow) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO webhook_outbox (id, project, url, event, body, attempts,
                 next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO NOTHING",
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
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
