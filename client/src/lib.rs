//! A typed async client for the REST API of `airlock serve`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), airlock_client::Error> {
//! let client = airlock_client::Client::builder("http://127.0.0.1:8080")
//!     .api_key("ak_…")
//!     .build()?;
//! for step in client.list_steps("demo").await? {
//!     println!("{} {}", step.step, step.current_digest);
//! }
//! # Ok(()) }
//! ```
//!
//! - [`Client`] holds one pooled HTTP client (reqwest over rustls with the
//!   `ring` provider; `https://` servers are verified with the platform's
//!   roots). It is cheap to clone.
//! - Every call returns [`Error`]: [`Error::Api`] when the server answered
//!   with an error status (its `code` and `message`, see [`ApiError`]),
//!   [`Error::Connect`] when no answer came at all, kept apart so a caller
//!   can tell "the server said no" from "there is no server".
//! - Types mirror the API's JSON field for field; timestamps are RFC 3339
//!   UTC strings, read as [`chrono::DateTime<Utc>`](chrono::DateTime).
//! - Credentials the API returns once (API keys, client secrets) and values
//!   sent in (secrets, account credentials) are [`SecretString`]s: zeroed on
//!   drop and never shown by `Debug`.
//!
//! Authentication is an [`Auth`]; today an API key. The seam for OAuth
//! client credentials (a token fetched and refreshed ahead of expiry) is
//! [`Auth`] and the one place that turns it into a bearer token.

mod accounts;
mod auth;
mod connect;
mod credentials;
mod error;
mod logs;
mod projects;
mod proxy;
mod runs;
mod schedules;
mod secret;
mod secrets;
mod steps;
mod time;
mod transport;
mod triggers;
mod usage;

pub use accounts::{Account, AccountHealth, AccountQuery, NewAccount};
pub use auth::{Auth, ClientCredentials};
pub use connect::{ConnectToken, ConnectTokenStatus, CreatedConnectToken, NewConnectToken};
pub use credentials::{
    ApiKey, CreatedClient, CreatedKey, NewCredential, OAuthClient, RotatedSecret,
};
pub use error::{ApiError, Error};
pub use logs::{LogEvent, LogStream};
pub use projects::Project;
pub use proxy::{ProxyRequest, ProxyResponse, encode_target};
pub use runs::{
    FailureKind, HttpCall, LogLevel, LogLine, LogSource, QueuedRun, RerunRequest, RerunVersion,
    Run, RunError, RunPage, RunQuery, RunRequest, RunResult, RunStats, RunStatus,
};
pub use schedules::{NewSchedule, Schedule, ScheduleChange};
pub use secret::SecretString;
pub use secrets::{PutOutcome, Secret, SetOutcome};
pub use steps::{Step, StepDetail, StepUpload, StepVersion, UploadOutcome};
pub use transport::{Client, ClientBuilder, DEFAULT_SERVER};
pub use triggers::{NewTrigger, Signature, Trigger};
pub use usage::{StepUsage, Usage, UsageTotals};

/// The HTTP status type of [`ApiError::status`].
pub use reqwest::StatusCode;
