//! [`CredentialUseRepo`] on PostgreSQL: one `UNNEST` upsert per flush; a
//! stored time only moves forward (`GREATEST`), whichever node writes last.

use async_trait::async_trait;

use super::PgDatabase;
use crate::store::Result;
use crate::store::repo::CredentialUseRepo;

#[async_trait]
impl CredentialUseRepo for PgDatabase {
    async fn mark_credentials_used(&self, rows: &[(&'static str, &str, i64)]) -> Result<()> {
        let kinds: Vec<&str> = rows.iter().map(|r| r.0).collect();
        let ids: Vec<&str> = rows.iter().map(|r| r.1).collect();
        let times: Vec<i64> = rows.iter().map(|r| r.2).collect();
        sqlx::query(
            "INSERT INTO credential_use (kind, id, last_used_at)
             SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[])
             ON CONFLICT (kind, id) DO UPDATE
               SET last_used_at = GREATEST(credential_use.last_used_at, EXCLUDED.last_used_at)",
        )
        .bind(kinds)
        .bind(ids)
        .bind(times)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn credentials_last_used(
        &self,
        kind: &str,
        ids: &[String],
    ) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT id, last_used_at FROM credential_use WHERE kind = $1 AND id = ANY($2)",
        )
        .bind(kind)
        .bind(ids)
        .fetch_all(&self.pool)
        .await?)
    }
}
