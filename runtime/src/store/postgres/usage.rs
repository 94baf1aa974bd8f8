//! [`UsageRepo`] on PostgreSQL: one `GROUP BY` over the project's runs in
//! the range, found by `runs_by_project_newest`. `SUM(BIGINT)` is `NUMERIC`
//! in PostgreSQL; it is cast back (a sum past `BIGINT` is an error, not a
//! wrapped number).

use async_trait::async_trait;

use super::PgDatabase;
use crate::store::Result;
use crate::store::repo::UsageRepo;
use crate::store::usage::UsageRow;

#[async_trait]
impl UsageRepo for PgDatabase {
    async fn usage(&self, project: &str, from_ms: i64, to_ms: i64) -> Result<Vec<UsageRow>> {
        Ok(sqlx::query_as(
            "SELECT step, status, COUNT(*) AS runs,
                 SUM(duration_ms)::BIGINT AS duration_ms,
                 SUM(cpu_ticks)::BIGINT AS cpu_ticks,
                 SUM(memory_kib_ms)::BIGINT AS memory_kib_ms,
                 SUM(log_bytes)::BIGINT AS log_bytes,
                 SUM(http_response_bytes)::BIGINT AS http_response_bytes
             FROM runs WHERE project = $1 AND created_at >= $2 AND created_at < $3
             GROUP BY step, status ORDER BY step, status",
        )
        .bind(project)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?)
    }
}
