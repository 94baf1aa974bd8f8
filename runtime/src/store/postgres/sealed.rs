//! [`SealedRepo`] on PostgreSQL: what online master-key rotation reads and
//! rewrites while every node keeps serving.
//!
//! Why compare-and-swap: rotation re-seals in batches, outside any long
//! transaction, while nodes keep writing. A value rewritten between the
//! rotation's read and its write (a secret set again, a token refresh
//! saved) already carries a fresh seal under the current key; re-sealing
//! the stale copy over it would lose that write. So the rewrite is
//! `UPDATE … WHERE nonce = $old` (every seal has a fresh nonce) and a
//! concurrent write wins. `updated_at` is kept: no value changed.
//!
//! Order is stable (secrets by project and name, then accounts by project
//! and id), so a rotation that stops half-way resumes where it was.

use async_trait::async_trait;

use super::PgDatabase;
use super::accounts::{FullRow, all_columns};
use super::secrets::secret_sealed;
use crate::store::Result;
use crate::store::crypto::Sealed;
use crate::store::repo::{AccountRow, SealedOwner, SealedRecord, SealedRepo};

#[derive(sqlx::FromRow)]
struct SecretRow {
    project: String,
    name: String,
    key_id: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

#[async_trait]
impl SealedRepo for PgDatabase {
    async fn key_ids_in_use(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT key_id FROM secrets UNION SELECT key_id FROM accounts ORDER BY key_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn sealed_not_under(&self, key_id: &str, limit: u32) -> Result<Vec<SealedRecord>> {
        let secrets: Vec<SecretRow> = sqlx::query_as(
            "SELECT project, name, key_id, nonce, ciphertext FROM secrets
             WHERE key_id <> $1 ORDER BY project, name LIMIT $2",
        )
        .bind(key_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(secrets.len());
        for r in secrets {
            let sealed = secret_sealed(&r.project, &r.name, r.key_id, &r.nonce, r.ciphertext)?;
            out.push(SealedRecord {
                owner: SealedOwner::Secret {
                    project: r.project,
                    name: r.name,
                },
                sealed,
            });
        }
        let left = i64::from(limit) - out.len() as i64;
        if left <= 0 {
            return Ok(out);
        }
        let accounts: Vec<FullRow> = sqlx::query_as(concat!(
            "SELECT ",
            all_columns!(),
            " FROM accounts WHERE key_id <> $1 ORDER BY project, id LIMIT $2"
        ))
        .bind(key_id)
        .bind(left)
        .fetch_all(&self.pool)
        .await?;
        for row in accounts {
            let AccountRow { meta, sealed } = AccountRow::try_from(row)?;
            out.push(SealedRecord {
                owner: SealedOwner::Account(Box::new(meta)),
                sealed,
            });
        }
        Ok(out)
    }

    async fn reseal(&self, record: &SealedRecord, resealed: &Sealed) -> Result<bool> {
        let old_nonce = record.sealed.nonce.as_slice();
        let query = match &record.owner {
            SealedOwner::Secret { project, name } => sqlx::query(
                "UPDATE secrets SET key_id = $1, nonce = $2, ciphertext = $3
                 WHERE project = $4 AND name = $5 AND nonce = $6",
            )
            .bind(&resealed.key_id)
            .bind(resealed.nonce.as_slice())
            .bind(&resealed.ciphertext)
            .bind(project)
            .bind(name)
            .bind(old_nonce),
            SealedOwner::Account(meta) => sqlx::query(
                "UPDATE accounts SET key_id = $1, nonce = $2, ciphertext = $3
                 WHERE project = $4 AND id = $5 AND nonce = $6",
            )
            .bind(&resealed.key_id)
            .bind(resealed.nonce.as_slice())
            .bind(&resealed.ciphertext)
            .bind(&meta.project)
            .bind(&meta.id)
            .bind(old_nonce),
        };
        Ok(query.execute(&self.pool).await?.rows_affected() > 0)
    }
}
