//! Steps of a project: upload (`PUT`, multipart), list, show, delete, and
//! which stored version is current.

use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde::{Deserialize, Serialize};

use crate::{Client, Error};

/// A step and its current version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub step: String,
    pub current_digest: String,
    #[serde(serialize_with = "crate::time::millis")]
    pub updated_at: DateTime<Utc>,
}

/// One stored version of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepVersion {
    /// `sha256:<hex>` over the component and the manifest.
    pub digest: String,
    /// `sha256:<hex>` of the component bytes.
    pub component_digest: String,
    #[serde(serialize_with = "crate::time::millis")]
    pub created_at: DateTime<Utc>,
    /// Whether it is the step's current version.
    #[serde(default)]
    pub current: bool,
}

/// A step: its current manifest and every stored version, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepDetail {
    pub step: String,
    pub current_digest: String,
    #[serde(serialize_with = "crate::time::millis")]
    pub updated_at: DateTime<Utc>,
    /// The `airlock.toml` text of the current version.
    pub manifest: String,
    pub versions: Vec<StepVersion>,
}

/// What an upload sends.
#[derive(Debug, Clone)]
pub struct StepUpload {
    /// The component (`.wasm` bytes).
    pub component: Vec<u8>,
    /// The `airlock.toml` text; without it the server uses `name = "<step>"`.
    pub manifest: Option<String>,
}

/// What an upload stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadOutcome {
    pub step: String,
    pub digest: String,
    pub component_digest: String,
    /// Whether this version is new (or was already stored).
    pub created: bool,
}

#[derive(Deserialize)]
struct StepList {
    steps: Vec<Step>,
}

impl Client {
    pub async fn list_steps(&self, project: &str) -> Result<Vec<Step>, Error> {
        let list: StepList = self
            .json(self.request(Method::GET, &["v1", "projects", project, "steps"])?)
            .await?;
        Ok(list.steps)
    }

    pub async fn get_step(&self, project: &str, step: &str) -> Result<StepDetail, Error> {
        self.json(self.request(Method::GET, &["v1", "projects", project, "steps", step])?)
            .await
    }

    /// Deletes a step, its versions and its triggers; its runs stay.
    pub async fn delete_step(&self, project: &str, step: &str) -> Result<(), Error> {
        self.empty(self.request(Method::DELETE, &["v1", "projects", project, "steps", step])?)
            .await
    }

    /// Makes the stored version `digest` the step's current one (a
    /// rollback, or forward again); the step as [`get_step`](Self::get_step)
    /// shows it.
    pub async fn set_current_step(
        &self,
        project: &str,
        step: &str,
        digest: &str,
    ) -> Result<StepDetail, Error> {
        self.json(
            self.request(
                Method::PUT,
                &["v1", "projects", project, "steps", step, "current"],
            )?
            .json(&serde_json::json!({ "digest": digest })),
        )
        .await
    }

    /// Uploads a version of a step and makes it current.
    pub async fn put_step(
        &self,
        project: &str,
        step: &str,
        upload: StepUpload,
    ) -> Result<UploadOutcome, Error> {
        let component = Part::bytes(upload.component)
            .file_name("component.wasm")
            .mime_str("application/wasm")
            .map_err(|e| Error::Setup(e.to_string()))?;
        let mut form = Form::new().part("component", component);
        if let Some(manifest) = upload.manifest {
            let part = Part::text(manifest)
                .mime_str("text/plain; charset=utf-8")
                .map_err(|e| Error::Setup(e.to_string()))?;
            form = form.part("manifest", part);
        }
        self.json(
            self.request(Method::PUT, &["v1", "projects", project, "steps", step])?
                .multipart(form),
        )
        .await
    }
}
