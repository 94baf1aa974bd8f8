//! Platform credentials: API keys (`/v1/keys`) and OAuth clients
//! (`/v1/oauth/clients`). Keys and client secrets come back once, as
//! [`SecretString`]s.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Error, SecretString};

/// Body of `POST /v1/keys` and `POST /v1/oauth/clients`.
#[derive(Debug, Clone, Serialize)]
pub struct NewCredential {
    /// A label for people.
    pub name: String,
    pub scopes: Vec<String>,
    /// Restrict the credential to this project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// An API key's metadata; never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub project: Option<String>,
    #[serde(serialize_with = "crate::time::millis")]
    pub created_at: DateTime<Utc>,
}

/// A new API key; `key` is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub meta: ApiKey,
    /// `ak_<id>_<secret>`.
    pub key: SecretString,
}

/// An OAuth client's metadata; never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthClient {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub project: Option<String>,
    #[serde(serialize_with = "crate::time::millis")]
    pub created_at: DateTime<Utc>,
}

/// A new OAuth client; `client_secret` is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedClient {
    pub client_id: String,
    pub client_secret: SecretString,
    pub name: String,
    pub scopes: Vec<String>,
    pub project: Option<String>,
}

/// A client's new secret; the old one and its tokens stopped working.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotatedSecret {
    pub client_id: String,
    pub client_secret: SecretString,
}

#[derive(Deserialize)]
struct KeyList {
    keys: Vec<ApiKey>,
}

#[derive(Deserialize)]
struct ClientList {
    clients: Vec<OAuthClient>,
}

impl Client {
    pub async fn list_keys(&self) -> Result<Vec<ApiKey>, Error> {
        let list: KeyList = self
            .json(self.request(Method::GET, &["v1", "keys"])?)
            .await?;
        Ok(list.keys)
    }

    pub async fn create_key(&self, new: &NewCredential) -> Result<CreatedKey, Error> {
        self.json(self.request(Method::POST, &["v1", "keys"])?.json(new))
            .await
    }

    /// Revokes a key; it stops working at once.
    pub async fn revoke_key(&self, id: &str) -> Result<(), Error> {
        self.empty(self.request(Method::DELETE, &["v1", "keys", id])?)
            .await
    }

    /// Gives a key a new secret (same id, name and scopes); the old key
    /// stops working at once. The new key is in the answer, once.
    pub async fn rotate_key(&self, id: &str) -> Result<CreatedKey, Error> {
        self.json(self.request(Method::POST, &["v1", "keys", id, "rotate"])?)
            .await
    }

    pub async fn list_clients(&self) -> Result<Vec<OAuthClient>, Error> {
        let list: ClientList = self
            .json(self.request(Method::GET, &["v1", "oauth", "clients"])?)
            .await?;
        Ok(list.clients)
    }

    pub async fn create_client(&self, new: &NewCredential) -> Result<CreatedClient, Error> {
        self.json(
            self.request(Method::POST, &["v1", "oauth", "clients"])?
                .json(new),
        )
        .await
    }

    /// Replaces a client's secret; the old one and its tokens die at once.
    pub async fn rotate_client_secret(&self, client_id: &str) -> Result<RotatedSecret, Error> {
        self.json(self.request(
            Method::POST,
            &["v1", "oauth", "clients", client_id, "rotate-secret"],
        )?)
        .await
    }

    /// Deletes a client and revokes its tokens.
    pub async fn delete_client(&self, client_id: &str) -> Result<(), Error> {
        self.empty(self.request(Method::DELETE, &["v1", "oauth", "clients", client_id])?)
            .await
    }
}
