//! Reconnecting an account: new credentials in place of the old, by the
//! same compare-and-swap as a token refresh, so a refresh racing the
//! reconnect cannot put the old grant back.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::{AccountStatus, AccountStore, SAVE_ATTEMPTS, open_account, seal_credentials};
use crate::store::{MasterKey, Result, StoreError, unix_now, validate_project_name};

impl AccountStore {
    /// Replaces every credential of account `id` with `credentials`, sets
    /// `expires_at`, and marks it `healthy` (a reconnect clears
    /// `needs_reauth`). The id, app, user and custom fields stay.
    pub async fn replace_credentials(
        &self,
        key: &MasterKey,
        project: &str,
        id: &str,
        credentials: &BTreeMap<String, Zeroizing<String>>,
        expires_at: Option<i64>,
    ) -> Result<()> {
        validate_project_name(project)?;
        for _ in 0..SAVE_ATTEMPTS {
            let row = self.db.get_account(project, id).await?.ok_or_else(|| {
                StoreError::AccountNotFound {
                    project: project.to_owned(),
                    id: id.to_owned(),
                }
            })?;
            let read_nonce = row.sealed.nonce;
            // Opened only to prove the ring still holds the account's key.
            let account = open_account(key, row)?;
            let sealed = seal_credentials(key, &account.meta, credentials)?;
            drop(account);
            if self
                .db
                .replace_account_credentials(
                    project,
                    id,
                    &read_nonce,
                    &sealed,
                    expires_at,
                    AccountStatus::Healthy,
                    unix_now(),
                )
                .await?
            {
                // Cached rows of the project hold the old grant: drop them.
                self.changed(project).await;
                tracing::info!(project, account_id = id, "account reconnected");
                return Ok(());
            }
        }
        Err(StoreError::Contended {
            what: "account credentials",
        })
    }
}
