//! The hosted page's templates (askama, compiled into the binary and
//! escaping every value) and how a page becomes a response.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};

use super::security;

#[derive(Template)]
#[template(path = "connect/apps.html")]
pub struct AppsPage {
    pub project: String,
    pub apps: Vec<AppTile>,
}

pub struct AppTile {
    pub name: String,
    pub initial: String,
    pub hue: u8,
    pub kind: &'static str,
    pub href: String,
}

#[derive(Template)]
#[template(path = "connect/app.html")]
pub struct AppPage {
    pub name: String,
    pub initial: String,
    pub hue: u8,
    pub lead: String,
    pub back: Option<String>,
    pub error: Option<String>,
    pub action: String,
    pub csrf: String,
    pub fields: Vec<FormField>,
    pub button: String,
}

pub struct FormField {
    pub input_name: String,
    pub label: String,
    pub input_type: &'static str,
    pub required: bool,
    pub hint: Option<String>,
    /// Only ever a non-secret value typed before (a subdomain), never a credential.
    pub value: String,
}

#[derive(Template)]
#[template(path = "connect/message.html")]
pub struct MessagePage {
    pub heading: String,
    pub text: String,
    pub code: Option<String>,
    pub tone: &'static str,
}

/// The stylesheet, served from `/connect/assets/connect.css`.
pub const STYLESHEET: &str = include_str!("../../../templates/connect/connect.css");

/// A colour for an app's initial, stable per slug.
pub fn hue(slug: &str) -> u8 {
    (slug
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 12) as u8
}

/// The first letter of a name, upper case.
pub fn initial(name: &str) -> String {
    name.chars()
        .find(|c| c.is_alphanumeric())
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_else(|| "?".to_owned())
}

/// `page` as an HTML response with `status` and the page headers.
pub fn html(status: StatusCode, page: &impl Template, csp: &str) -> Response {
    let mut response = match page.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a connect page");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response()
        }
    };
    security::harden(&mut response, csp);
    response
}

/// A message page (an error in words, or a success).
pub fn message(
    status: StatusCode,
    heading: &str,
    text: &str,
    code: Option<&str>,
    frame_origins: &[String],
) -> Response {
    let tone = if status.is_success() {
        "success"
    } else {
        "error"
    };
    html(
        status,
        &MessagePage {
            heading: heading.to_owned(),
            text: text.to_owned(),
            code: code.map(str::to_owned),
            tone,
        },
        &security::csp(&[], frame_origins),
    )
}
