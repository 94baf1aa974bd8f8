//! The console's templates (askama: compiled in, every value escaped) and
//! how a page becomes a response with the console's headers.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};

use super::session::Operator;
use crate::server::connect::security;

/// The stylesheet, served from `/console/assets/console.css`.
pub const STYLESHEET: &str = include_str!("../../../templates/console/console.css");

/// What the top bar of a signed-in page shows.
pub struct Nav {
    pub project: Option<String>,
    /// The key the session stands for (its id, never the key).
    pub key_id: String,
    pub scopes: String,
    pub csrf: String,
}

impl Nav {
    pub fn new(project: Option<&str>, operator: &Operator) -> Self {
        Self {
            project: project.map(str::to_owned),
            key_id: operator.principal.0.id.clone(),
            scopes: operator.principal.0.scopes.join(" "),
            csrf: operator.csrf.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/login.html")]
pub struct LoginPage {
    pub csrf: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/projects.html")]
pub struct ProjectsPage {
    pub nav: Nav,
    pub projects: Vec<String>,
}

pub struct RunRow {
    pub href: String,
    pub id: String,
    pub step: String,
    pub status: String,
    pub duration: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "console/runs.html")]
pub struct RunsPage {
    pub nav: Nav,
    pub project: String,
    /// The filters as given ("" for none).
    pub step: String,
    pub status: String,
    pub runs: Vec<RunRow>,
    pub next: Option<String>,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
pub struct OverviewPage {
    pub nav: Nav,
    /// `hour` or `day`.
    pub window: &'static str,
    /// This page's URL (the window links add `?window=`).
    pub here: String,
    /// The project's runs list.
    pub runs: String,
    /// Set when the chart read its cap of runs (older ones are not drawn).
    pub capped: Option<u32>,
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub charts: super::chart::Charts,
}

pub struct LogRow {
    pub elapsed: String,
    pub level: String,
    pub text: String,
}

pub struct CallRow {
    pub method: String,
    pub url: String,
    pub status: String,
    pub duration: String,
}

#[derive(Template)]
#[template(path = "console/run.html")]
pub struct RunPage {
    pub nav: Nav,
    pub back: String,
    pub id: String,
    pub step: String,
    pub status: String,
    pub digest: String,
    pub attempts: i64,
    pub created: String,
    pub started: Option<String>,
    pub external_user_id: Option<String>,
    /// The original's id and page.
    pub rerun_of: Option<(String, String)>,
    pub duration: String,
    pub cpu_ticks: i64,
    pub memory_peak_kib: i64,
    pub log_bytes: i64,
    pub input: Option<String>,
    pub output: Option<String>,
    pub error_kind: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub nostore: bool,
    /// Set while the run is queued or running: the page reloads itself
    /// every this many seconds (a `<meta>` refresh; the console runs no
    /// script).
    pub follow: Option<u32>,
    pub logs: Vec<LogRow>,
    pub calls: Vec<CallRow>,
}

pub struct StepRow {
    pub href: String,
    pub step: String,
    pub digest: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "console/steps.html")]
pub struct StepsPage {
    pub nav: Nav,
    pub steps: Vec<StepRow>,
}

pub struct VersionRow {
    pub digest: String,
    pub created: String,
    pub current: bool,
}

pub struct TriggerRow {
    /// The full URL senders call.
    pub url: String,
    /// The signature settings as JSON (a secret's name, never its value).
    pub signature: String,
    /// The pinned digest ("" for the current version).
    pub pinned: String,
    pub queued: bool,
    pub nostore: bool,
    pub created: String,
}

#[derive(Template)]
#[template(path = "console/step.html")]
pub struct StepPage {
    pub nav: Nav,
    /// The step's console URL (actions are below it).
    pub action: String,
    pub step: String,
    pub current_digest: String,
    pub manifest: String,
    pub versions: Vec<VersionRow>,
    pub triggers: Vec<TriggerRow>,
}

/// One API key or OAuth client (never its secret), with its actions.
pub struct CredentialRow {
    pub rotate: String,
    pub revoke: String,
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub project: String,
    pub created: String,
    /// When it was last used, or `never`.
    pub last_used: String,
    /// When it stops working, or `never`.
    pub expires: String,
}

/// A value shown once: a new key, or a client's id and secret.
pub struct ShownLine {
    pub label: &'static str,
    /// The element's id (tests and people find the value by it).
    pub html_id: &'static str,
    pub value: String,
}

pub struct Shown {
    pub heading: String,
    pub lines: Vec<ShownLine>,
}

/// The API keys page and the OAuth clients page: one shape.
#[derive(Template)]
#[template(path = "console/credentials.html")]
pub struct CredentialsPage {
    pub nav: Nav,
    pub title: &'static str,
    /// `key` or `client`.
    pub noun: &'static str,
    pub revoke_label: &'static str,
    pub rotate_help: &'static str,
    pub action: String,
    pub project: String,
    pub rows: Vec<CredentialRow>,
    pub scopes: Vec<String>,
    pub shown: Option<Shown>,
}

pub struct AuditRow {
    pub at: String,
    pub method: String,
    pub route: String,
    pub key_id: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
pub struct AuditPage {
    pub nav: Nav,
    pub entries: Vec<AuditRow>,
}

pub struct AccountRow {
    pub user: String,
    pub id: String,
    pub app: String,
    /// `healthy` or `needs_reauth`.
    pub health: String,
    pub updated: String,
    pub expires: String,
    /// When its credentials were last used, or `never`.
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "console/accounts.html")]
pub struct AccountsPage {
    pub nav: Nav,
    /// The end-user filter ("" for all).
    pub user: String,
    pub accounts: Vec<AccountRow>,
}

#[derive(Template)]
#[template(path = "console/message.html")]
pub struct MessagePage {
    pub heading: String,
    pub text: String,
}

/// `page` as HTML with `status`, the console's CSP (no script at all, our
/// stylesheet, forms only to us, never framed) and `Cache-Control:
/// no-store` (a page may show run data).
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    let mut response = match page.render() {
        Ok(body) => (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a console page");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response()
        }
    };
    security::harden(&mut response, &security::csp(&[], &[]));
    response
}

/// A page of words: an error or a refusal.
pub fn message(status: StatusCode, heading: &str, text: &str) -> Response {
    html(
        status,
        &MessagePage {
            heading: heading.to_owned(),
            text: text.to_owned(),
        },
    )
}
