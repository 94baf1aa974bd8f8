//! [`UsageRepo`] on SQLite: one `GROUP BY` over the project's runs in the
//! range, found by `runs_by_project_newest`.

use async_trait::async_trait;

use super::SqliteDatabase;
use crate::store::Result;
use crate::store::repo::UsageRepo;
use crate::store::usage::UsageRow;

#[async_trait]
impl UsageRepo for SqliteDatabase {
    async fn usage(&self, project: &str, from_ms: i64, to_ms: i64) -> Result<Vec<UsageRow>> {
        Ok(sqlx::query_as(
            "SELECT step, status, COUNT(*) AS runs, SUM(duration_ms) AS duration_ms,
                 SUM(cpu_ticks) AS cpu_ticks, SUM(memory_kib_ms) AS memory_kib_ms,
                 SUM(log_bytes) AS log_bytes, SUM(http_response_bytes) AS http_response_bytes
             FROM runs WHERE project = ?1 AND created_at >= ?2 AND created_at < ?3
             GROUP BY step, status ORDER BY step, status",
        )
        .bind(project)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?)
    }
}
