//! Secrets on SQLite.

use async_trait::async_trait;

use super::SqliteDatabase;
use crate::store::crypto::Sealed;
use crate::store::repo::SecretRepo;
use crate::store::{Result, SecretMeta, SetOutcome, StoreError};

#[derive(sqlx::FromRow)]
pub(super) struct SealedColumns {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl SealedColumns {
    /// The sealed value; a nonce of the wrong length is a decrypt error
    /// naming `project` and `name`.
    pub fn into_sealed(self, project: &str, name: &str) -> Result<Sealed> {
        Sealed::from_parts(self.key_id, &self.nonce, self.ciphertext).map_err(|source| {
            StoreError::Decrypt {
                project: project.to_owned(),
                name: name.to_owned(),
                source,
            }
        })
    }
}

#[derive(sqlx::FromRow)]
struct NamedSealed {
    name: String,
    #[sqlx(flatten)]
    sealed: SealedColumns,
}

#[derive(sqlx::FromRow)]
struct MetaRow {
    name: String,
    created_at: i64,
    updated_at: i64,
}

#[async_trait]
impl SecretRepo for SqliteDatabase {
    async fn put_secret(
        &self,
        project: &str,
        name: &str,
        sealed: &Sealed,
        now: i64,
    ) -> Result<SetOutcome> {
        // The write lock is taken first, so "did it exist" and the upsert
        // see the same row.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let existed: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM secrets WHERE project = ?1 AND name = ?2")
                .bind(project)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO secrets (project, name, key_id, nonce, ciphertext, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (project, name) DO UPDATE SET key_id = excluded.key_id,
                 nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                 updated_at = excluded.updated_at",
        )
        .bind(project)
        .bind(name)
        .bind(&sealed.key_id)
        .bind(sealed.nonce.as_slice())
        .bind(&sealed.ciphertext)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(if existed.is_some() {
            SetOutcome::Updated
        } else {
            SetOutcome::Created
        })
    }

    async fn get_secret(&self, project: &str, name: &str) -> Result<Option<Sealed>> {
        let row: Option<SealedColumns> = sqlx::query_as(
            "SELECT key_id, nonce, ciphertext FROM secrets WHERE project = ?1 AND name = ?2",
        )
        .bind(project)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.into_sealed(project, name)).transpose()
    }

    async fn get_secrets(&self, project: &str, names: &[String]) -> Result<Vec<(String, Sealed)>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        // The names travel as one JSON array: one statement whatever their count.
        let list = serde_json::to_string(names).expect("strings serialise");
        let rows: Vec<NamedSealed> = sqlx::query_as(
            "SELECT name, key_id, nonce, ciphertext FROM secrets
             WHERE project = ?1 AND name IN (SELECT value FROM json_each(?2))",
        )
        .bind(project)
        .bind(list)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let sealed = r.sealed.into_sealed(project, &r.name)?;
                Ok((r.name, sealed))
            })
            .collect()
    }

    async fn list_secrets(&self, project: &str) -> Result<Vec<SecretMeta>> {
        let rows: Vec<MetaRow> = sqlx::query_as(
            "SELECT name, created_at, updated_at FROM secrets WHERE project = ?1 ORDER BY name",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SecretMeta {
                name: r.name,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
            .collect())
    }

    async fn delete_secret(&self, project: &str, name: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM secrets WHERE project = ?1 AND name = ?2")
            .bind(project)
            .bind(name)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}
