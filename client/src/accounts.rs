//! End users' connected accounts of a project. Credentials go in; this
//! client never asks for them back (`include_credentials` is left to a
//! caller that needs it, with the `accounts:credentials` scope).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Error, SecretString};

/// Whether an account's credentials can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountHealth {
    Healthy,
    /// The provider refused a token refresh: the user must connect again.
    NeedsReauth,
    #[serde(other)]
    Unknown,
}

impl AccountHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountHealth::Healthy => "healthy",
            AccountHealth::NeedsReauth => "needs_reauth",
            AccountHealth::Unknown => "unknown",
        }
    }
}

/// A connected account (metadata only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// `acc_` and 16 hex digits.
    pub id: String,
    pub app: String,
    pub external_user_id: String,
    #[serde(default)]
    pub custom_fields: BTreeMap<String, String>,
    pub health: AccountHealth,
    #[serde(serialize_with = "crate::time::millis")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::millis")]
    pub updated_at: DateTime<Utc>,
    /// When the OAuth access token expires, if known.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::time::millis_opt"
    )]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Body of `POST .../accounts`.
#[derive(Debug, Clone, Serialize)]
pub struct NewAccount {
    pub app: String,
    pub external_user_id: String,
    /// The app's credential fields; for `oauth2` apps `expires_at` (Unix
    /// seconds) becomes the account's expiry.
    pub credentials: BTreeMap<String, SecretString>,
    pub custom_fields: BTreeMap<String, String>,
}

/// Filters of `GET .../accounts`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccountQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
}

#[derive(Deserialize)]
struct AccountList {
    accounts: Vec<Account>,
}

impl Client {
    /// Connects an account; the answer never holds the credentials.
    pub async fn create_account(&self, project: &str, new: &NewAccount) -> Result<Account, Error> {
        self.json(
            self.request(Method::POST, &["v1", "projects", project, "accounts"])?
                .json(new),
        )
        .await
    }

    /// A project's accounts, newest first.
    pub async fn list_accounts(
        &self,
        project: &str,
        query: &AccountQuery,
    ) -> Result<Vec<Account>, Error> {
        let list: AccountList = self
            .json(
                self.request(Method::GET, &["v1", "projects", project, "accounts"])?
                    .query(query),
            )
            .await?;
        Ok(list.accounts)
    }

    pub async fn get_account(&self, project: &str, id: &str) -> Result<Account, Error> {
        self.json(self.request(Method::GET, &["v1", "projects", project, "accounts", id])?)
            .await
    }

    /// Deletes an account and its credentials.
    pub async fn delete_account(&self, project: &str, id: &str) -> Result<(), Error> {
        self.empty(self.request(Method::DELETE, &["v1", "projects", project, "accounts", id])?)
            .await
    }
}
