//! Secrets of a project: names and dates come out, values only go in.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Error, SecretString};

/// A secret's metadata; never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    pub name: String,
    #[serde(serialize_with = "crate::time::millis")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::millis")]
    pub updated_at: DateTime<Utc>,
}

/// Whether a `PUT` created or replaced the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetOutcome {
    Created,
    Updated,
}

/// What `PUT .../secrets/{name}` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutOutcome {
    pub name: String,
    pub outcome: SetOutcome,
}

#[derive(Deserialize)]
struct SecretList {
    secrets: Vec<Secret>,
}

#[derive(Serialize)]
struct PutSecret<'a> {
    value: &'a SecretString,
}

impl Client {
    pub async fn list_secrets(&self, project: &str) -> Result<Vec<Secret>, Error> {
        let list: SecretList = self
            .json(self.request(Method::GET, &["v1", "projects", project, "secrets"])?)
            .await?;
        Ok(list.secrets)
    }

    /// Stores a secret (insert or replace); the value is sealed by the server.
    pub async fn put_secret(
        &self,
        project: &str,
        name: &str,
        value: &SecretString,
    ) -> Result<PutOutcome, Error> {
        self.json(
            self.request(Method::PUT, &["v1", "projects", project, "secrets", name])?
                .json(&PutSecret { value }),
        )
        .await
    }

    pub async fn delete_secret(&self, project: &str, name: &str) -> Result<(), Error> {
        self.empty(self.request(
            Method::DELETE,
            &["v1", "projects", project, "secrets", name],
        )?)
        .await
    }
}
