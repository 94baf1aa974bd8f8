//! Revoking API keys and deleting OAuth clients, never the last way in.
//!
//! An unrestricted admin credential (scope `admin`, no project) is the only
//! kind that can create projects, read the audit log and make every other
//! credential. Revoking the last one over the API (a key may revoke itself)
//! would leave the server manageable only from a shell on its machine, so
//! the store refuses it: [`Revocation::LastAdmin`]. Keys and clients count
//! together, since an admin client can get an admin token. The check and
//! the delete share one `BEGIN IMMEDIATE` transaction, so two concurrent
//! revocations of the last two cannot both pass.

use sqlx::Row as _;
use sqlx::sqlite::SqliteConnection;

use super::{PlatformStore, Result};

/// What a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    /// There was no such key or client.
    NotFound,
    /// Refused: it is the last unrestricted admin credential.
    LastAdmin,
}

/// `scopes` (space-separated, as stored) hold `admin`.
const HOLDS_ADMIN: &str = "(' ' || scopes || ' ') LIKE '% admin %'";

/// Unrestricted admin credentials other than `except`, keys and clients.
async fn other_unrestricted_admins(conn: &mut SqliteConnection, except: &str) -> Result<i64> {
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM api_keys
                 WHERE project IS NULL AND id != ?1 AND {HOLDS_ADMIN})
              + (SELECT COUNT(*) FROM oauth_clients
                 WHERE project IS NULL AND id != ?1 AND {HOLDS_ADMIN})"
    );
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(except)
        .fetch_one(conn)
        .await?
        .try_get(0)?)
}

/// Whether the row of `table` with `id` is an unrestricted admin; `None`
/// when there is no such row.
async fn is_unrestricted_admin(
    conn: &mut SqliteConnection,
    table: &'static str,
    id: &str,
) -> Result<Option<bool>> {
    let sql = format!("SELECT project IS NULL AND {HOLDS_ADMIN} FROM {table} WHERE id = ?1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(|r| r.try_get::<bool, _>(0))
        .transpose()
        .map_err(Into::into)
}

impl PlatformStore {
    /// Revokes (deletes) an API key, unless it is the last unrestricted
    /// admin credential.
    pub async fn revoke_api_key(&self, id: &str) -> Result<Revocation> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        match is_unrestricted_admin(&mut tx, "api_keys", id).await? {
            None => return Ok(Revocation::NotFound),
            Some(true) if other_unrestricted_admins(&mut tx, id).await? == 0 => {
                return Ok(Revocation::LastAdmin);
            }
            Some(_) => {}
        }
        sqlx::query("DELETE FROM api_keys WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(key_id = %id, "API key revoked");
        Ok(Revocation::Revoked)
    }

    /// Deletes an OAuth client and its tokens, unless it is the last
    /// unrestricted admin credential.
    pub async fn delete_client(&self, id: &str) -> Result<Revocation> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        match is_unrestricted_admin(&mut tx, "oauth_clients", id).await? {
            None => return Ok(Revocation::NotFound),
            Some(true) if other_unrestricted_admins(&mut tx, id).await? == 0 => {
                return Ok(Revocation::LastAdmin);
            }
            Some(_) => {}
        }
        sqlx::query("DELETE FROM oauth_tokens WHERE client_id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM oauth_clients WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(client_id = %id, "OAuth client deleted; its tokens revoked");
        Ok(Revocation::Revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SecretStore;

    fn scopes(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn the_last_unrestricted_admin_key_or_client_stays() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = SecretStore::open(dir.path()).await.unwrap();
        let store = PlatformStore::new(&secrets);
        store.create_project("alpha").await.unwrap();
        let admin = scopes(&["runs:read", "admin"]);
        let (key, _) = store.create_api_key("k", &admin, None).await.unwrap();
        // Neither a restricted admin nor a non-admin counts as a way in.
        let (restricted, _) = store
            .create_api_key("r", &scopes(&["admin"]), Some("alpha"))
            .await
            .unwrap();
        let (reader, _) = store
            .create_client("c", &scopes(&["runs:read"]), None)
            .await
            .unwrap();
        assert_eq!(
            store.revoke_api_key(&key.id).await.unwrap(),
            Revocation::LastAdmin
        );
        // A second admin, as a client: now the key may go, then not the client.
        let (client, _) = store.create_client("a", &admin, None).await.unwrap();
        assert_eq!(
            store.revoke_api_key(&key.id).await.unwrap(),
            Revocation::Revoked
        );
        assert_eq!(
            store.delete_client(&client.id).await.unwrap(),
            Revocation::LastAdmin
        );
        assert!(store.get_client(&client.id).await.unwrap().is_some());
        for (what, outcome) in [
            ("restricted", store.revoke_api_key(&restricted.id).await),
            ("reader", store.delete_client(&reader.id).await),
            ("missing key", store.revoke_api_key(&key.id).await),
            (
                "missing client",
                store.delete_client("ac_0000000000000000").await,
            ),
        ] {
            let want = if what.starts_with("missing") {
                Revocation::NotFound
            } else {
                Revocation::Revoked
            };
            assert_eq!(outcome.unwrap(), want, "{what}");
        }
    }
}
