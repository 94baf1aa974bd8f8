//! [`CredentialUseRepo`] on SQLite: the rows go in as one JSON array
//! (`json_each`), so a flush is one statement whatever its size.

use async_trait::async_trait;

use super::SqliteDatabase;
use crate::store::Result;
use crate::store::repo::CredentialUseRepo;

#[async_trait]
impl CredentialUseRepo for SqliteDatabase {
    async fn mark_credentials_used(&self, rows: &[(&'static str, &str, i64)]) -> Result<()> {
        let json = serde_json::to_string(rows).expect("strings and numbers serialise");
        sqlx::query(
            "INSERT INTO credential_use (kind, id, last_used_at)
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
                    json_extract(value, '$[2]')
               FROM json_each(?1) WHERE true
             ON CONFLICT (kind, id) DO UPDATE
               SET last_used_at = MAX(last_used_at, excluded.last_used_at)",
        )
        .bind(json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn credentials_last_used(
        &self,
        kind: &str,
        ids: &[String],
    ) -> Result<Vec<(String, i64)>> {
        let json = serde_json::to_string(ids).expect("strings serialise");
        Ok(sqlx::query_as(
            "SELECT id, last_used_at FROM credential_use
              WHERE kind = ?1 AND id IN (SELECT value FROM json_each(?2))",
        )
        .bind(kind)
        .bind(json)
        .fetch_all(&self.pool)
        .await?)
    }
}
