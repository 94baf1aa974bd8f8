//! Connect tokens (`…/connect/tokens`, scope `accounts:write`): the
//! operator's backend asks for a short-lived, single-use link to send one
//! end user to, where they connect an account on the hosted page.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Error, SecretString};

/// Body of `POST …/connect/tokens`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewConnectToken {
    /// The end user the account will belong to.
    pub external_user_id: String,
    /// Apps the page offers (slugs); all usable apps when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<String>>,
    /// Where the browser goes after an account is stored; on `allowed_origins`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_redirect_uri: Option<String>,
    /// Where the browser goes after a failure; on `allowed_origins`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_redirect_uri: Option<String>,
    /// Where signed `account.*` events are posted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_uri: Option<String>,
    /// Origins that may frame the page and receive the redirects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// Lifetime, 60 to 14400 seconds (default 1800).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<i64>,
    /// Reconnect this account: its credentials are replaced in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

impl NewConnectToken {
    pub fn new(external_user_id: impl Into<String>) -> Self {
        Self {
            external_user_id: external_user_id.into(),
            ..Self::default()
        }
    }
}

/// A new token; `token` is shown only here.
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedConnectToken {
    /// `ct_` and 16 hex digits.
    pub id: String,
    pub token: SecretString,
    pub expires_at: DateTime<Utc>,
    /// Send the end user here.
    pub connect_link_url: String,
}

/// Where a token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectTokenStatus {
    Pending,
    Used,
    Expired,
    #[serde(other)]
    Unknown,
}

/// A token, never its secret.
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectToken {
    pub id: String,
    pub external_user_id: String,
    pub status: ConnectTokenStatus,
    /// The account it stored (`used`).
    pub account_id: Option<String>,
    /// The account it reconnects, if any.
    pub reconnect_account_id: Option<String>,
    pub apps: Option<Vec<String>>,
    pub flows_started: i64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

impl Client {
    /// Issues a connect token for one end user.
    pub async fn create_connect_token(
        &self,
        project: &str,
        new: &NewConnectToken,
    ) -> Result<CreatedConnectToken, Error> {
        self.json(
            self.request(
                Method::POST,
                &["v1", "projects", project, "connect", "tokens"],
            )?
            .json(new),
        )
        .await
    }

    pub async fn get_connect_token(&self, project: &str, id: &str) -> Result<ConnectToken, Error> {
        self.json(self.request(
            Method::GET,
            &["v1", "projects", project, "connect", "tokens", id],
        )?)
        .await
    }

    /// Revokes a token that has not been used.
    pub async fn delete_connect_token(&self, project: &str, id: &str) -> Result<(), Error> {
        self.empty(self.request(
            Method::DELETE,
            &["v1", "projects", project, "connect", "tokens", id],
        )?)
        .await
    }
}
