//! The hosted page's GET routes: `/connect/{token}` (the link), `/connect`
//! (the app list) and `/connect/apps/{slug}` (one app's form).

use std::collections::BTreeMap;

use airlock_host_api::apps::{App, AuthKind};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};

use super::super::AppState;
use super::security::{self, SESSION_COOKIE};
use super::views::{self, AppPage, AppTile, AppsPage, FormField};
use super::{Failure, service};
use crate::connect::Connect;
use crate::outbound::oauth_client_secret_names;
use crate::store::connect::{ConnectTokenRow, TOKEN_PREFIX, TokenStatus};
use crate::store::unix_now;

/// A browser's session: its cookie and the token it stands for.
pub struct Session {
    pub cookie: String,
    pub token: ConnectTokenRow,
}

/// The page for a failure, in words, framed as the token allows.
pub fn failure_page(failure: Failure, token: Option<&ConnectTokenRow>) -> Response {
    let frames = token.map(|t| t.allowed_origins.as_slice()).unwrap_or(&[]);
    views::message(
        failure.status(),
        failure.heading(),
        failure.words(),
        Some(failure.code()),
        frames,
    )
}

fn no_session() -> Response {
    views::message(
        StatusCode::UNAUTHORIZED,
        "Your session has ended",
        "Open the link you were given again to connect an account. If it no longer works, ask for a new one.",
        Some("session_missing"),
        &[],
    )
}

fn unavailable() -> Response {
    failure_page(Failure::ServerError, None)
}

/// The failure a token's status means, if it is not pending.
pub fn token_failure(token: &ConnectTokenRow) -> Option<Failure> {
    match token.status(unix_now()) {
        TokenStatus::Pending => None,
        TokenStatus::Used => Some(Failure::TokenUsed),
        TokenStatus::Expired => Some(Failure::TokenExpired),
    }
}

/// The session of the request, or the page to show instead.
pub async fn session(connect: &Connect, headers: &HeaderMap) -> Result<Session, Response> {
    let Some(cookie) = security::cookie(headers, SESSION_COOKIE) else {
        return Err(no_session());
    };
    match connect.store.session_token(cookie).await {
        Ok(Some(token)) => Ok(Session {
            cookie: cookie.to_owned(),
            token,
        }),
        Ok(None) => Err(no_session()),
        Err(e) => {
            tracing::error!(error = %e, "cannot read a connect session");
            Err(unavailable())
        }
    }
}

/// `GET /connect/{token}[?app=slug]`: the link. Trades the token for a
/// session cookie and redirects, so the token leaves the address bar.
pub async fn open(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let Ok(connect) = service(&state) else {
        return unavailable();
    };
    let invalid = || {
        views::message(
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "Check that you opened the whole link you were given, or ask for a new one.",
            Some("token_invalid"),
            &[],
        )
    };
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
        return invalid();
    }
    let row = match connect.store.find(&token).await {
        Ok(Some(row)) => row,
        Ok(None) => return invalid(),
        Err(e) => {
            tracing::error!(error = %e, "cannot look up a connect token");
            return unavailable();
        }
    };
    if let Some(failure) = token_failure(&row) {
        return failure_page(failure, Some(&row));
    }
    let session = match connect.store.open_session(&row).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot open a connect session");
            return unavailable();
        }
    };
    let target = match query.get("app") {
        Some(slug)
            if offered(&state, connect, &row)
                .await
                .iter()
                .any(|a| &a.slug == slug) =>
        {
            format!("/connect/apps/{slug}")
        }
        _ => "/connect".to_owned(),
    };
    tracing::info!(project = %row.project, token_id = %row.id, "connect link opened");
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        security::set_cookie(
            SESSION_COOKIE,
            &session,
            "/connect",
            row.expires_at - unix_now(),
            connect.secure_cookies,
        ),
    );
    security::harden(&mut response, &security::csp(&[], &row.allowed_origins));
    response
}

/// The apps a token's page offers: its list, or every app usable in the
/// project (API-key apps, and OAuth apps whose client id is stored).
pub async fn offered<'a>(
    state: &'a AppState,
    connect: &Connect,
    token: &ConnectTokenRow,
) -> Vec<&'a App> {
    let catalog = state.pipeline.catalog();
    if let Some(apps) = &token.apps {
        return apps.iter().filter_map(|s| catalog.get(s)).collect();
    }
    let oauth: Vec<&App> = catalog
        .iter()
        .filter(|a| a.auth == AuthKind::OAuth2)
        .collect();
    let names: Vec<String> = oauth
        .iter()
        .map(|a| oauth_client_secret_names(&a.slug).0)
        .collect();
    let configured: Vec<String> = match connect
        .secrets
        .get_many(&connect.key, &token.project, &names)
        .await
    {
        Ok(found) => found.into_iter().map(|(name, _)| name).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read OAuth client ids");
            Vec::new()
        }
    };
    catalog
        .iter()
        .filter(|a| {
            a.auth != AuthKind::OAuth2 || configured.contains(&oauth_client_secret_names(&a.slug).0)
        })
        .collect()
}

fn kind_label(app: &App) -> &'static str {
    match app.auth {
        AuthKind::OAuth2 => "Sign in with your account",
        AuthKind::ApiKey => "API key",
        AuthKind::Bearer => "Access token",
        AuthKind::Basic => "Username and password",
        AuthKind::Custom => "Credentials",
    }
}

/// `GET /connect`: the app list (or the one app, when the token offers one).
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Ok(connect) = service(&state) else {
        return unavailable();
    };
    let session = match session(connect, &headers).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    if let Some(failure) = token_failure(&session.token) {
        return failure_page(failure, Some(&session.token));
    }
    let apps = offered(&state, connect, &session.token).await;
    if let [only] = apps.as_slice() {
        return app_page(
            &session,
            only,
            false,
            None,
            &BTreeMap::new(),
            StatusCode::OK,
        );
    }
    let tiles = apps
        .iter()
        .map(|a| AppTile {
            name: a.name.clone(),
            initial: views::initial(&a.name),
            hue: views::hue(&a.slug),
            kind: kind_label(a),
            href: format!("/connect/apps/{}", a.slug),
        })
        .collect();
    views::html(
        StatusCode::OK,
        &AppsPage {
            project: session.token.project.clone(),
            apps: tiles,
        },
        &security::csp(&[], &session.token.allowed_origins),
    )
}

/// `GET /connect/apps/{slug}`: one app's form.
pub async fn app(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(connect) = service(&state) else {
        return unavailable();
    };
    let session = match session(connect, &headers).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    if let Some(failure) = token_failure(&session.token) {
        return failure_page(failure, Some(&session.token));
    }
    let apps = offered(&state, connect, &session.token).await;
    let Some(app) = apps.iter().find(|a| a.slug == slug) else {
        return not_offered(&session.token);
    };
    app_page(
        &session,
        app,
        apps.len() > 1,
        None,
        &BTreeMap::new(),
        StatusCode::OK,
    )
}

pub fn not_offered(token: &ConnectTokenRow) -> Response {
    views::message(
        StatusCode::NOT_FOUND,
        "This app is not offered here",
        "The link you were given does not connect this app. Go back and pick one from the list.",
        Some("app_not_offered"),
        &token.allowed_origins,
    )
}

/// A field name for people: `api_key` → `API key`.
pub fn label(name: &str) -> String {
    match name {
        "api_key" => "API key".to_owned(),
        "token" => "Access token".to_owned(),
        "username" => "Username".to_owned(),
        "password" => "Password".to_owned(),
        other => {
            let spaced = other.replace('_', " ");
            let mut chars = spaced.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}

/// The form of `app`; `values` refills non-secret fields after an error.
pub fn app_page(
    session: &Session,
    app: &App,
    back: bool,
    error: Option<String>,
    values: &BTreeMap<String, String>,
    status: StatusCode,
) -> Response {
    let token = &session.token;
    let reconnect = token.account_id.is_some();
    let mut fields = Vec::new();
    if !reconnect {
        for f in &app.custom_fields {
            let input_name = format!("field.{}", f.name);
            fields.push(FormField {
                value: values.get(&input_name).cloned().unwrap_or_default(),
                input_name,
                label: label(&f.name),
                input_type: "text",
                required: true,
                hint: f.description.clone(),
            });
        }
    }
    let mut targets: Vec<String> = [&token.success_redirect_uri, &token.error_redirect_uri]
        .into_iter()
        .flatten()
        .filter_map(|u| security::origin_source(u))
        .collect();
    let (lead, button) = if app.auth == AuthKind::OAuth2 {
        if let Some(spec) = &app.oauth {
            targets.push(authorize_origin(spec.authorize_url.source()));
        }
        (
            format!(
                "You will be sent to {} to sign in and approve access. Nothing is shared until you approve.",
                app.name
            ),
            format!("Continue to {}", app.name),
        )
    } else {
        for f in app.credential_fields() {
            fields.push(FormField {
                input_name: format!("credential.{}", f.name),
                label: label(f.name),
                input_type: if f.secret { "password" } else { "text" },
                required: f.required,
                hint: None,
                // Never echo a credential back into a page.
                value: String::new(),
            });
        }
        (
            format!(
                "Enter your {} credentials. They are encrypted and used only to call {} on your behalf.",
                app.name, app.name
            ),
            format!("Connect {}", app.name),
        )
    };
    let page = AppPage {
        name: app.name.clone(),
        initial: views::initial(&app.name),
        hue: views::hue(&app.slug),
        lead,
        back: back.then(|| "/connect".to_owned()),
        error,
        action: format!("/connect/apps/{}", app.slug),
        csrf: security::csrf_token(&session.cookie),
        fields,
        button,
    };
    views::html(
        status,
        &page,
        &security::csp(&targets, &token.allowed_origins),
    )
}

/// The CSP source the OAuth form's redirect goes to: the authorize URL's
/// origin when no custom field is in its scheme, host or port (a tenant in
/// the path), else `https:` (a templated host is https by the catalog's
/// rules, and its value is not known before the form is sent).
fn authorize_origin(template: &str) -> String {
    let literal = template.split("{{").next().unwrap_or_default();
    let host_is_literal = literal
        .split_once("://")
        .is_some_and(|(_, rest)| rest.contains('/') || literal.len() == template.len());
    host_is_literal
        .then(|| security::origin_source(literal))
        .flatten()
        .unwrap_or_else(|| "https:".to_owned())
}

/// `GET /connect/assets/connect.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        views::STYLESHEET,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::authorize_origin;

    #[test]
    fn the_form_may_redirect_to_the_authorize_origin_when_it_is_known() {
        assert_eq!(
            authorize_origin("https://github.com/login/oauth/authorize"),
            "https://github.com"
        );
        assert_eq!(
            authorize_origin("http://127.0.0.1:8080/{{custom_fields.tenant}}/authorize"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            authorize_origin(
                "https://{{custom_fields.subdomain}}.zendesk.com/oauth/authorizations/new"
            ),
            "https:"
        );
        assert_eq!(
            authorize_origin("https://login.example:{{custom_fields.port}}/a"),
            "https:"
        );
    }
}
