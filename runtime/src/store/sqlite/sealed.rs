//! Every sealed value on SQLite, for master-key rotation.

use async_trait::async_trait;

use super::SqliteDatabase;
use super::secrets::SealedColumns;
use crate::store::Result;
use crate::store::accounts::AccountColumns;
use crate::store::repo::{SealedOwner, SealedRecord, SealedRepo};

#[derive(sqlx::FromRow)]
struct SecretRow {
    project: String,
    name: String,
    #[sqlx(flatten)]
    sealed: SealedColumns,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    #[sqlx(flatten)]
    meta: AccountColumns,
    #[sqlx(flatten)]
    sealed: SealedColumns,
}

#[async_trait]
impl SealedRepo for SqliteDatabase {
    async fn key_ids_in_use(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT key_id FROM secrets UNION SELECT key_id FROM accounts ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn sealed_not_under(&self, key_id: &str, limit: u32) -> Result<Vec<SealedRecord>> {
        let secrets: Vec<SecretRow> = sqlx::query_as(
            "SELECT project, name, key_id, nonce, ciphertext FROM secrets
             WHERE key_id <> ?1 ORDER BY project, name LIMIT ?2",
        )
        .bind(key_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(secrets.len());
        for r in secrets {
            let sealed = r.sealed.into_sealed(&r.project, &r.name)?;
            out.push(SealedRecord {
                owner: SealedOwner::Secret {
                    project: r.project,
                    name: r.name,
                },
                sealed,
            });
        }
        let room = limit.saturating_sub(out.len() as u32);
        if room == 0 {
            return Ok(out);
        }
        let accounts: Vec<AccountRow> = sqlx::query_as(
            "SELECT id, project, external_user_id, app, custom_fields, expires_at, status,
                    created_at, updated_at, key_id, nonce, ciphertext
             FROM accounts WHERE key_id <> ?1 ORDER BY project, id LIMIT ?2",
        )
        .bind(key_id)
        .bind(room)
        .fetch_all(&self.pool)
        .await?;
        for r in accounts {
            let meta = r.meta.into_meta()?;
            let sealed = r.sealed.into_sealed(&meta.project, &meta.id)?;
            out.push(SealedRecord {
                owner: SealedOwner::Account(Box::new(meta)),
                sealed,
            });
        }
        Ok(out)
    }

    async fn reseal(&self, record: &SealedRecord, resealed: &crate::store::Sealed) -> Result<bool> {
        let old = record.sealed.nonce.as_slice();
        let query = match &record.owner {
            SealedOwner::Secret { project, name } => sqlx::query(
                "UPDATE secrets SET key_id = ?1, nonce = ?2, ciphertext = ?3
                 WHERE project = ?4 AND name = ?5 AND nonce = ?6",
            )
            .bind(&resealed.key_id)
            .bind(resealed.nonce.as_slice())
            .bind(&resealed.ciphertext)
            .bind(project)
            .bind(name)
            .bind(old),
            SealedOwner::Account(meta) => sqlx::query(
                "UPDATE accounts SET key_id = ?1, nonce = ?2, ciphertext = ?3
                 WHERE project = ?4 AND id = ?5 AND nonce = ?6",
            )
            .bind(&resealed.key_id)
            .bind(resealed.nonce.as_slice())
            .bind(&resealed.ciphertext)
            .bind(&meta.project)
            .bind(&meta.id)
            .bind(old),
        };
        Ok(query.execute(&self.pool).await?.rows_affected() > 0)
    }
}
