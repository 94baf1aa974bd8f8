//! [`SecretRepo`] on PostgreSQL.
//!
//! Why one upsert: on SQLite "update, else insert" ran inside one
//! `BEGIN IMMEDIATE`, which no other writer could interleave. Here two nodes
//! may set the same new secret at once; `INSERT … ON CONFLICT DO UPDATE` is
//! atomic against that (the second waits on the first's row and updates
//! it), and `RETURNING (xmax = 0)` tells in the same statement whether this
//! writer inserted the row (a fresh row has no locking transaction) or
//! updated it, so exactly one writer ever answers `Created`.

use async_trait::async_trait;

use super::PgDatabase;
use crate::store::crypto::Sealed;
use crate::store::repo::SecretRepo;
use crate::store::{Result, SecretMeta, SetOutcome, StoreError};

#[derive(sqlx::FromRow)]
struct SealedRow {
    key_id: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

#[derive(sqlx::FromRow)]
struct NamedSealedRow {
    name: String,
    #[sqlx(flatten)]
    sealed: SealedRow,
}

#[derive(sqlx::FromRow)]
struct MetaRow {
    name: String,
    created_at: i64,
    updated_at: i64,
}

/// Rebuilds a secret's sealed value; a stored nonce of the wrong length is
/// reported as SQLite's backend does, naming the secret.
pub(super) fn secret_sealed(
    project: &str,
    name: &str,
    key_id: String,
    nonce: &[u8],
    ciphertext: Vec<u8>,
) -> Result<Sealed> {
    Sealed::from_parts(key_id, nonce, ciphertext).map_err(|source| StoreError::Decrypt {
        project: project.to_owned(),
        name: name.to_owned(),
        source,
    })
}

impl SealedRow {
    fn into_sealed(self, project: &str, name: &str) -> Result<Sealed> {
        secret_sealed(project, name, self.key_id, &self.nonce, self.ciphertext)
    }
}

#[async_trait]
impl SecretRepo for PgDatabase {
    async fn put_secret(
        &self,
        project: &str,
        name: &str,
        sealed: &Sealed,
        now: i64,
    ) -> Result<SetOutcome> {
        let created: bool = sqlx::query_scalar(
            "INSERT INTO secrets (project, name, key_id, nonce, ciphertext, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (project, name) DO UPDATE SET
                 key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce,
                 ciphertext = EXCLUDED.ciphertext, updated_at = EXCLUDED.updated_at
             RETURNING (xmax = 0)",
        )
        .bind(project)
        .bind(name)
        .bind(&sealed.key_id)
        .bind(sealed.nonce.as_slice())
        .bind(&sealed.ciphertext)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(if created {
            SetOutcome::Created
        } else {
            SetOutcome::Updated
        })
    }

    async fn get_secret(&self, project: &str, name: &str) -> Result<Option<Sealed>> {
        let row: Option<SealedRow> = sqlx::query_as(
            "SELECT key_id, nonce, ciphertext FROM secrets WHERE project = $1 AND name = $2",
        )
        .bind(project)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| row.into_sealed(project, name)).transpose()
    }

    async fn get_secrets(&self, project: &str, names: &[String]) -> Result<Vec<(String, Sealed)>> {
        let rows: Vec<NamedSealedRow> = sqlx::query_as(
            "SELECT name, key_id, nonce, ciphertext FROM secrets
             WHERE project = $1 AND name = ANY($2) ORDER BY name",
        )
        .bind(project)
        .bind(names)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let sealed = row.sealed.into_sealed(project, &row.name)?;
                Ok((row.name, sealed))
            })
            .collect()
    }

    async fn list_secrets(&self, project: &str) -> Result<Vec<SecretMeta>> {
        let rows: Vec<MetaRow> = sqlx::query_as(
            "SELECT name, created_at, updated_at FROM secrets WHERE project = $1 ORDER BY name",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| SecretMeta {
                name: row.name,
                created_at: row.created_at,
                updated_at: row.updated_at,
            })
            .collect())
    }

    async fn delete_secret(&self, project: &str, name: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM secrets WHERE project = $1 AND name = $2")
            .bind(project)
            .bind(name)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }
}
