//! [`ScheduleRepo`] on PostgreSQL. Many nodes write at once: a create
//! counts the project's schedules under a per-project advisory lock held
//! by its transaction (two concurrent creates cannot both see room for
//! one), and an advance is one conditional `UPDATE`, which under READ
//! COMMITTED re-reads a row another node just changed and then matches
//! nothing: of the nodes firing one tick, one advances it.

use async_trait::async_trait;

use super::PgDatabase;
use crate::store::Result;
use crate::store::repo::ScheduleRepo;
use crate::store::schedules::{Advance, ScheduleRecord};

/// The first integer of the per-project lock a create takes (`AIRS`; the
/// store's own locks use `AIRL`).
const SCHEDULE_LOCK_CLASS: i32 = i32::from_be_bytes(*b"AIRS");

const COLUMNS: &str = "id, project, step, cron, timezone, input, digest, external_user_id, \
                       enabled, next_fire_at, last_fired_at, last_run_id, created_at, updated_at";

#[async_trait]
impl ScheduleRepo for PgDatabase {
    async fn insert_schedule(&self, s: &ScheduleRecord, max_per_project: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(SCHEDULE_LOCK_CLASS)
            .bind(&s.project)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query(
            "INSERT INTO schedules (id, project, step, cron, timezone, input, digest,
                 external_user_id, enabled, next_fire_at, last_fired_at, last_run_id,
                 created_at, updated_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14
             WHERE (SELECT COUNT(*) FROM schedules WHERE project = $2) < $15",
        )
        .bind(&s.id)
        .bind(&s.project)
        .bind(&s.step)
        .bind(&s.cron)
        .bind(&s.timezone)
        .bind(&s.input)
        .bind(&s.digest)
        .bind(&s.external_user_id)
        .bind(s.enabled)
        .bind(s.next_fire_at)
        .bind(s.last_fired_at)
        .bind(&s.last_run_id)
        .bind(s.created_at)
        .bind(s.updated_at)
        .bind(max_per_project)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn get_schedule(&self, project: &str, id: &str) -> Result<Option<ScheduleRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM schedules WHERE project = $1 AND id = $2");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn list_schedules(
        &self,
        project: &str,
        step: Option<&str>,
    ) -> Result<Vec<ScheduleRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM schedules WHERE project = $1 AND ($2::TEXT IS NULL OR step = $2)
             ORDER BY created_at, id"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(step)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn update_schedule(&self, s: &ScheduleRecord, reschedule: bool) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE schedules SET cron = $3, timezone = $4, input = $5, enabled = $6,
                 updated_at = $7,
                 next_fire_at = CASE WHEN $8::BOOLEAN THEN $9 ELSE next_fire_at END
             WHERE project = $1 AND id = $2",
        )
        .bind(&s.project)
        .bind(&s.id)
        .bind(&s.cron)
        .bind(&s.timezone)
        .bind(&s.input)
        .bind(s.enabled)
        .bind(s.updated_at)
        .bind(reschedule)
        .bind(s.next_fire_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn delete_schedule(&self, project: &str, id: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM schedules WHERE project = $1 AND id = $2")
            .bind(project)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn delete_schedules_of_step(&self, project: &str, step: &str) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM schedules WHERE project = $1 AND step = $2")
                .bind(project)
                .bind(step)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn due_schedules(&self, now_ms: i64, limit: u32) -> Result<Vec<ScheduleRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM schedules WHERE enabled AND next_fire_at <= $1
             ORDER BY next_fire_at, id LIMIT $2"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(now_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?)
    }

    async fn earliest_schedule_fire(&self) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT MIN(next_fire_at) FROM schedules WHERE enabled")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn advance_schedule(&self, a: &Advance<'_>) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE schedules SET next_fire_at = $3, last_fired_at = $4, last_run_id = $5
             WHERE id = $1 AND next_fire_at = $2 AND enabled",
        )
        .bind(a.id)
        .bind(a.expected)
        .bind(a.next)
        .bind(a.tick)
        .bind(a.run_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
