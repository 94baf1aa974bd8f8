//! HTTP triggers of a step: create, list, delete. A trigger's `url` is
//! relative to the server; [`Client::url`] makes it whole.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Error};

/// How a trigger's requests are signed. `secret` names a secret of the
/// project, never its value. Fields left `None` take the server's defaults
/// (`X-Hub-Signature-256`, `sha256=`, 300 s); answers always fill them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Signature {
    /// `header` = `prefix` + hex(HMAC-SHA256(secret, raw body)), GitHub style.
    #[serde(rename = "hmac-sha256")]
    HmacSha256 {
        secret: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
    },
    /// `Stripe-Signature: t=<unix>,v1=<hex>`.
    #[serde(rename = "stripe")]
    Stripe {
        secret: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tolerance_secs: Option<u64>,
    },
    /// `X-Twilio-Signature`: HMAC-SHA1 over `base_url` + the request's path
    /// and query + the sorted POST parameters, base64.
    #[serde(rename = "twilio")]
    Twilio { secret: String, base_url: String },
    /// `X-Slack-Signature: v0=…` over `v0:{timestamp}:{body}`, 5 minutes.
    #[serde(rename = "slack")]
    Slack { secret: String },
    /// `X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the body.
    #[serde(rename = "shopify")]
    Shopify { secret: String },
    /// A configurable HMAC (`sha1`/`sha256`/`sha512`, `hex`/`base64`, a
    /// `signed` template of `{body}` and `{timestamp}`).
    #[serde(rename = "hmac")]
    Hmac {
        secret: String,
        header: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        algorithm: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encoding: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signed: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timestamp_header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tolerance_secs: Option<u64>,
    },
}

/// Body of `POST .../triggers`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewTrigger {
    /// `None`: anyone with the URL may run the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
    /// Pin the trigger to this stored version; `None`: it runs the current.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// A trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub id: String,
    /// `/t/{id}`, relative to the server.
    pub url: String,
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
    /// The version it is pinned to; `None`: it runs the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(serialize_with = "crate::time::millis")]
    pub created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct TriggerList {
    triggers: Vec<Trigger>,
}

impl Client {
    pub async fn create_trigger(
        &self,
        project: &str,
        step: &str,
        new: &NewTrigger,
    ) -> Result<Trigger, Error> {
        self.json(
            self.request(
                Method::POST,
                &["v1", "projects", project, "steps", step, "triggers"],
            )?
            .json(new),
        )
        .await
    }

    pub async fn list_triggers(&self, project: &str, step: &str) -> Result<Vec<Trigger>, Error> {
        let list: TriggerList = self
            .json(self.request(
                Method::GET,
                &["v1", "projects", project, "steps", step, "triggers"],
            )?)
            .await?;
        Ok(list.triggers)
    }

    /// Deletes a trigger; its URL answers 404 from then on.
    pub async fn delete_trigger(&self, project: &str, step: &str, id: &str) -> Result<(), Error> {
        self.empty(self.request(
            Method::DELETE,
            &["v1", "projects", project, "steps", step, "triggers", id],
        )?)
        .await
    }
}
