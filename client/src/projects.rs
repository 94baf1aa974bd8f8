//! Projects: `GET`/`POST /v1/projects`, `GET /v1/projects/{name}`.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Error};

/// A project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub name: String,
    #[serde(serialize_with = "crate::time::millis")]
    pub created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct ProjectList {
    projects: Vec<Project>,
}

#[derive(Serialize)]
struct CreateProject<'a> {
    name: &'a str,
}

impl Client {
    /// The projects the credential may see.
    pub async fn list_projects(&self) -> Result<Vec<Project>, Error> {
        let list: ProjectList = self
            .json(self.request(Method::GET, &["v1", "projects"])?)
            .await?;
        Ok(list.projects)
    }

    /// Creates a project (an admin credential restricted to no project).
    pub async fn create_project(&self, name: &str) -> Result<Project, Error> {
        self.json(
            self.request(Method::POST, &["v1", "projects"])?
                .json(&CreateProject { name }),
        )
        .await
    }

    pub async fn get_project(&self, name: &str) -> Result<Project, Error> {
        self.json(self.request(Method::GET, &["v1", "projects", name])?)
            .await
    }
}
