//! Cron schedules of a step: create, list (of a step or the whole
//! project), show, change (pause, resume, new cron or input), delete.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Client, Error};

/// Body of `POST .../schedules`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewSchedule {
    /// 5 fields, or 6 with seconds first.
    pub cron: String,
    /// An IANA time zone; `None`: the server's default, `UTC`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Every run's input.
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
    /// `Some(false)`: created paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Body of `PATCH .../schedules/{id}`: `None` fields stay as they are.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScheduleChange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: String,
    pub step: String,
    pub cron: String,
    pub timezone: String,
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
    /// Earliest first; empty while paused.
    #[serde(serialize_with = "millis_each")]
    pub next_fire_times: Vec<DateTime<Utc>>,
    #[serde(
        default,
        serialize_with = "crate::time::millis_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_fired_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_id: Option<String>,
    pub enabled: bool,
    #[serde(serialize_with = "crate::time::millis")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::millis")]
    pub updated_at: DateTime<Utc>,
}

fn millis_each<S: serde::Serializer>(times: &[DateTime<Utc>], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq as _;
    let mut seq = s.serialize_seq(Some(times.len()))?;
    for t in times {
        seq.serialize_element(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))?;
    }
    seq.end()
}

#[derive(Deserialize)]
struct ScheduleList {
    schedules: Vec<Schedule>,
}

impl Client {
    pub async fn create_schedule(
        &self,
        project: &str,
        step: &str,
        new: &NewSchedule,
    ) -> Result<Schedule, Error> {
        self.json(
            self.request(
                Method::POST,
                &["v1", "projects", project, "steps", step, "schedules"],
            )?
            .json(new),
        )
        .await
    }

    /// The schedules of `step`, or of the whole project without one.
    pub async fn list_schedules(
        &self,
        project: &str,
        step: Option<&str>,
    ) -> Result<Vec<Schedule>, Error> {
        let request = match step {
            Some(step) => self.request(
                Method::GET,
                &["v1", "projects", project, "steps", step, "schedules"],
            )?,
            None => self.request(Method::GET, &["v1", "projects", project, "schedules"])?,
        };
        let list: ScheduleList = self.json(request).await?;
        Ok(list.schedules)
    }

    pub async fn get_schedule(&self, project: &str, id: &str) -> Result<Schedule, Error> {
        self.json(self.request(Method::GET, &["v1", "projects", project, "schedules", id])?)
            .await
    }

    pub async fn update_schedule(
        &self,
        project: &str,
        id: &str,
        change: &ScheduleChange,
    ) -> Result<Schedule, Error> {
        self.json(
            self.request(Method::PATCH, &["v1", "projects", project, "schedules", id])?
                .json(change),
        )
        .await
    }

    /// Deletes a schedule; it fires no more.
    pub async fn delete_schedule(&self, project: &str, id: &str) -> Result<(), Error> {
        self.empty(self.request(
            Method::DELETE,
            &["v1", "projects", project, "schedules", id],
        )?)
        .await
    }
}
