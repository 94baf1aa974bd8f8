//! The hosted page's POST and the OAuth callback: where accounts are made.
//!
//! - `POST /connect/apps/{slug}` (CSRF token, same origin): for an API-key
//!   app it stores the account from the form; for an OAuth app it stores a
//!   `state` (hashed, bound to project, app, user, token and a binding
//!   cookie, 10 minutes) with the PKCE verifier sealed, and sends the
//!   browser to the provider with the S256 challenge.
//! - `GET /connect/oauth/callback`: consumes the state atomically, checks
//!   its age and the binding cookie, exchanges the code through the host's
//!   checked client ([`crate::oauth::exchange`]) and stores the account.
//!
//! Never logged or shown: the code, the verifier, the state, cookies, the
//! client secret, the tokens, or any text the provider sent. Failures end
//! on the token's error redirect with a [`Failure`] code, or in words.

use std::collections::BTreeMap;

use airlock_host_api::apps::{App, AuthKind, AuthorizeRequest};
use airlock_host_api::http::client::check_literal_host;
use axum::extract::{Path, RawForm, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::super::AppState;
use super::page::{self, Session, failure_page, token_failure};
use super::security::{self, BINDING_COOKIE};
use super::{Failure, service, views};
use crate::connect::webhooks::{self, CONNECTED, CONNECTION_FAILED, RECONNECTED};
use crate::connect::{CALLBACK_PATH, Connect, EXCHANGE_TIMEOUT};
use crate::oauth::exchange::{Exchange, exchange_code};
use crate::outbound::oauth_client_secret_names;
use crate::store::NewAccount;
use crate::store::connect::{ConnectTokenRow, hash_secret, random_secret};
use crate::store::unix_now;

/// Most form fields read, and the longest value.
const MAX_FIELDS: usize = 64;
const MAX_VALUE: usize = 8 * 1024;

/// Where a finished flow sends the browser: the token's redirect with
/// `params`, or a page in words.
fn finish(token: &ConnectTokenRow, outcome: Result<(&str, &str), Failure>) -> Response {
    let (target, params): (Option<&String>, Vec<(&str, &str)>) = match outcome {
        Ok((account_id, app)) => (
            token.success_redirect_uri.as_ref(),
            vec![("account_id", account_id), ("app", app)],
        ),
        Err(f) => (token.error_redirect_uri.as_ref(), vec![("error", f.code())]),
    };
    let Some(target) = target.and_then(|t| url::Url::parse(t).ok()) else {
        return match outcome {
            Ok(_) => views::message(
                StatusCode::OK,
                "Account connected",
                "You can close this window and go back to where you started.",
                None,
                &token.allowed_origins,
            ),
            Err(f) => failure_page(f, Some(token)),
        };
    };
    let mut target = target;
    {
        let mut q = target.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, String::from(target))],
    )
        .into_response();
    security::harden(&mut response, &security::csp(&[], &token.allowed_origins));
    response
}

/// Ends a flow that failed: the `connection_failed` webhook, then the redirect.
async fn fail(connect: &Connect, token: &ConnectTokenRow, app: &str, failure: Failure) -> Response {
    tracing::info!(project = %token.project, token_id = %token.id, app, code = failure.code(), "connect flow failed");
    if let Some(url) = &token.webhook_uri {
        let data = json!({
            "app": app,
            "external_user_id": token.external_user_id,
            "connect_token_id": token.id,
            "account_id": token.account_id,
            "error": failure.code(),
        });
        webhooks::emit(connect, &token.project, url, CONNECTION_FAILED, data).await;
    }
    finish(token, Err(failure))
}

/// `name=value` pairs of a form or query, bounded.
fn pairs(raw: &[u8]) -> Option<Vec<(String, String)>> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw).into_owned().collect();
    (pairs.len() <= MAX_FIELDS
        && pairs
            .iter()
            .all(|(k, v)| k.len() <= 256 && v.len() <= MAX_VALUE))
    .then_some(pairs)
}

fn forbidden(heading: &str, text: &str, code: &str) -> Response {
    views::message(StatusCode::FORBIDDEN, heading, text, Some(code), &[])
}

/// `POST /connect/apps/{slug}`.
pub async fn submit(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let Ok(connect) = service(&state) else {
        return failure_page(Failure::ServerError, None);
    };
    let session = match page::session(connect, &headers).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    if !security::same_origin(&headers, &connect.origin()) {
        return forbidden(
            "This request did not come from this page",
            "Forms here can only be sent from this page. Open your link again.",
            "cross_origin",
        );
    }
    let Some(form) = pairs(&body) else {
        return views::message(
            StatusCode::BAD_REQUEST,
            "The form could not be read",
            "Reload the page and try again.",
            Some("bad_form"),
            &[],
        );
    };
    let csrf = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    if !security::csrf_ok(&session.cookie, csrf) {
        return forbidden(
            "This form has expired",
            "The page was open too long or came from somewhere else. Reload it and try again.",
            "csrf_invalid",
        );
    }
    let token = &session.token;
    if let Some(failure) = token_failure(token) {
        return fail(connect, token, &slug, failure).await;
    }
    let apps = page::offered(&state, connect, token).await;
    let multiple = apps.len() > 1;
    let Some(app) = apps.into_iter().find(|a| a.slug == slug) else {
        return page::not_offered(token);
    };
    let values: BTreeMap<String, String> = form.into_iter().filter(|(k, _)| k != "csrf").collect();
    let retry = |error: String| {
        // Only non-secret fields are refilled.
        let kept: BTreeMap<String, String> = values
            .iter()
            .filter(|(k, _)| k.starts_with("field."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        page::app_page(
            &session,
            app,
            multiple,
            Some(error),
            &kept,
            StatusCode::BAD_REQUEST,
        )
    };
    let custom_fields = match custom_fields(connect, token, app, &values).await {
        Ok(f) => f,
        Err(message) => return retry(message),
    };
    let credentials = if app.auth == AuthKind::OAuth2 {
        None
    } else {
        match credentials(app, &values) {
            Ok(c) => Some(c),
            Err(message) => return retry(message),
        }
    };
    match connect.store.start_flow(&token.id).await {
        Ok(true) => {}
        Ok(false) => {
            let failure = match connect.store.get_by_id(&token.id).await {
                Ok(Some(t)) => token_failure(&t).unwrap_or(Failure::TooManyAttempts),
                _ => Failure::TokenExpired,
            };
            return fail(connect, token, &slug, failure).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot count a connect flow");
            return failure_page(Failure::ServerError, Some(token));
        }
    }
    match credentials {
        Some(credentials) => {
            let result = store_account(
                connect,
                token,
                app,
                credentials,
                custom_fields,
                None,
                Vec::new(),
            )
            .await;
            match result {
                Ok(account_id) => finish(token, Ok((&account_id, &app.slug))),
                Err(failure) => fail(connect, token, &app.slug, failure).await,
            }
        }
        None => start_oauth(connect, &session, app, &custom_fields).await,
    }
}

/// The custom fields of the form (or, for a reconnect, of the account),
/// checked against the app's patterns.
async fn custom_fields(
    connect: &Connect,
    token: &ConnectTokenRow,
    app: &App,
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    if let Some(id) = &token.account_id {
        return match connect.accounts.get_meta(&token.project, id).await {
            Ok(Some(meta)) => Ok(meta.custom_fields),
            _ => Err("The account to reconnect no longer exists.".to_owned()),
        };
    }
    let fields: BTreeMap<String, String> = values
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("field.")
                .map(|n| (n.to_owned(), v.trim().to_owned()))
        })
        .collect();
    app.validate_custom_fields(&fields).map_err(|e| {
        let name = match &e {
            airlock_host_api::apps::AppError::MissingCustomField { field, .. }
            | airlock_host_api::apps::AppError::CustomFieldMismatch { field, .. }
            | airlock_host_api::apps::AppError::UnknownCustomField { field, .. }
            | airlock_host_api::apps::AppError::UnsafeCustomField { field, .. } => field.clone(),
            _ => String::new(),
        };
        let hint = app
            .custom_field(&name)
            .and_then(|f| f.description.clone())
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        format!(
            "{} is missing or not in the expected form{hint}.",
            page_label(&name)
        )
    })?;
    Ok(fields)
}

fn page_label(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut chars = spaced.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_else(|| "A field".to_owned())
}

/// The credential fields of the form, checked as the accounts API checks them.
fn credentials(
    app: &App,
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Zeroizing<String>>, String> {
    let mut creds = BTreeMap::new();
    for (k, v) in values {
        if let Some(name) = k.strip_prefix("credential.")
            && !v.is_empty()
        {
            if v.chars().any(char::is_control) {
                return Err(format!(
                    "{} must not contain control characters.",
                    page_label(name)
                ));
            }
            creds.insert(name.to_owned(), Zeroizing::new(v.clone()));
        }
    }
    if let Err(e) = app.check_credential_names(creds.keys().map(String::as_str)) {
        let missing = e.missing.iter().map(|m| page::label(m)).collect::<Vec<_>>();
        return Err(if missing.is_empty() {
            "The form holds fields this app does not take.".to_owned()
        } else {
            format!("Fill in {}.", missing.join(", "))
        });
    }
    // Rendered once to catch what only rendering checks (a `:` in a Basic
    // username); the copies are wiped after.
    let mut plain: BTreeMap<String, String> = creds
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    let rendered = app.render_credential(&plain);
    for v in plain.values_mut() {
        zeroize::Zeroize::zeroize(v);
    }
    match rendered {
        Ok((_, mut value)) => zeroize::Zeroize::zeroize(&mut value),
        Err(airlock_host_api::apps::AppError::InvalidCredential { field, reason, .. }) => {
            return Err(format!("{} {reason}.", page_label(&field)));
        }
        Err(_) => return Err("The credentials are incomplete.".to_owned()),
    }
    Ok(creds)
}

/// Stores the account (or replaces the reconnected one's credentials),
/// spends the token and queues the webhook. Returns the account id.
#[allow(clippy::too_many_arguments)]
async fn store_account(
    connect: &Connect,
    token: &ConnectTokenRow,
    app: &App,
    credentials: BTreeMap<String, Zeroizing<String>>,
    custom_fields: BTreeMap<String, String>,
    expires_at: Option<i64>,
    scopes: Vec<String>,
) -> Result<String, Failure> {
    let server_error = |e: crate::store::StoreError| {
        tracing::error!(project = %token.project, token_id = %token.id, error = %e, "cannot store a connected account");
        Failure::ServerError
    };
    let (account_id, event) = match &token.account_id {
        Some(id) => {
            // Spend first: a reconnect cannot be undone, so it happens only
            // for the one flow that spent the token.
            if !connect
                .store
                .spend(&token.id, id)
                .await
                .map_err(server_error)?
            {
                return Err(Failure::TokenUsed);
            }
            connect
                .accounts
                .replace_credentials(&connect.key, &token.project, id, &credentials, expires_at)
                .await
                .map_err(server_error)?;
            (id.clone(), RECONNECTED)
        }
        None => {
            let account = connect
                .accounts
                .create(
                    &connect.key,
                    NewAccount {
                        project: token.project.clone(),
                        external_user_id: token.external_user_id.clone(),
                        app: app.slug.clone(),
                        credentials,
                        custom_fields,
                        expires_at,
                    },
                )
                .await
                .map_err(server_error)?;
            let id = account.meta.id.clone();
            drop(account);
            // Another tab may have spent the token meanwhile: then this
            // account is not kept, so one token makes one account.
            if !connect
                .store
                .spend(&token.id, &id)
                .await
                .map_err(server_error)?
            {
                let _ = connect.accounts.delete(&token.project, &id).await;
                return Err(Failure::TokenUsed);
            }
            (id, CONNECTED)
        }
    };
    tracing::info!(project = %token.project, token_id = %token.id, account_id = %account_id, app = %app.slug, event, "connect: account stored");
    if let Some(url) = &token.webhook_uri {
        let data = json!({
            "account_id": account_id,
            "app": app.slug,
            "external_user_id": token.external_user_id,
            "health": "healthy",
            "connect_token_id": token.id,
            "scopes": scopes,
        });
        webhooks::emit(connect, &token.project, url, event, data).await;
    }
    Ok(account_id)
}

/// The S256 challenge of a verifier (RFC 7636 §4.2).
fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Stores the state and sends the browser to the provider.
async fn start_oauth(
    connect: &Connect,
    session: &Session,
    app: &App,
    custom_fields: &BTreeMap<String, String>,
) -> Response {
    let token = &session.token;
    let (id_name, _) = oauth_client_secret_names(&app.slug);
    let client_id = match connect
        .secrets
        .get(&connect.key, &token.project, &id_name)
        .await
    {
        Ok(Some(id)) => id,
        Ok(None) => return fail(connect, token, &app.slug, Failure::NotConfigured).await,
        Err(e) => {
            tracing::error!(error = %e, "cannot read an OAuth client id");
            return fail(connect, token, &app.slug, Failure::ServerError).await;
        }
    };
    let pkce = app.oauth.as_ref().is_some_and(|s| s.pkce);
    let secrets = (|| {
        Ok::<_, crate::store::StoreError>((
            random_secret("")?,
            random_secret("")?,
            random_secret("")?,
        ))
    })();
    let Ok((state, binding, verifier)) = secrets else {
        return fail(connect, token, &app.slug, Failure::ServerError).await;
    };
    let verifier = pkce.then_some(verifier);
    let code_challenge = verifier.as_ref().map(|v| challenge(v));
    let redirect_uri = connect.redirect_uri();
    let url = match app.authorize_url(
        custom_fields,
        AuthorizeRequest {
            client_id: &client_id,
            redirect_uri: &redirect_uri,
            state: &state,
            code_challenge: code_challenge.as_deref(),
        },
    ) {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(app = %app.slug, error = %e, "cannot build the authorize URL");
            return fail(connect, token, &app.slug, Failure::ServerError).await;
        }
    };
    if let Err(e) = connect
        .store
        .save_state(
            &connect.key,
            token,
            &app.slug,
            &state,
            &binding,
            custom_fields,
            verifier.as_deref().map(String::as_str),
            connect.state_ttl_secs,
        )
        .await
    {
        tracing::error!(error = %e, "cannot store an OAuth state");
        return fail(connect, token, &app.slug, Failure::ServerError).await;
    }
    tracing::info!(project = %token.project, token_id = %token.id, app = %app.slug, "connect: OAuth flow started");
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        security::set_cookie(
            BINDING_COOKIE,
            &binding,
            CALLBACK_PATH,
            connect.state_ttl_secs,
            connect.secure_cookies,
        ),
    );
    security::harden(&mut response, &security::csp(&[], &token.allowed_origins));
    response
}

/// `GET /connect/oauth/callback?code=…&state=…` (or `?error=…&state=…`).
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Ok(connect) = service(&state) else {
        return failure_page(Failure::ServerError, None);
    };
    let params: BTreeMap<String, String> = pairs(query.unwrap_or_default().as_bytes())
        .unwrap_or_default()
        .into_iter()
        .collect();
    // The session (if the browser still has one) says where a failure
    // goes when the state itself is gone.
    let session_token = page::session(connect, &headers).await.ok().map(|s| s.token);
    let taken = match params.get("state") {
        Some(s) if s.len() <= 256 => connect.store.take_state(s).await,
        _ => Ok(None),
    };
    let row = match taken {
        Ok(Some(row)) => row,
        Ok(None) => {
            return match &session_token {
                Some(t) => fail(connect, t, "", Failure::StateInvalid).await,
                None => failure_page(Failure::StateInvalid, None),
            };
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot take an OAuth state");
            return failure_page(Failure::ServerError, None);
        }
    };
    let token = match connect.store.get_by_id(&row.token_id).await {
        Ok(Some(t)) => t,
        _ => return failure_page(Failure::TokenExpired, None),
    };
    let mut response = callback_inner(&state, connect, &headers, &params, &row, &token).await;
    // The binding cookie has done its job either way.
    response.headers_mut().append(
        header::SET_COOKIE,
        security::set_cookie(BINDING_COOKIE, "", CALLBACK_PATH, 0, connect.secure_cookies),
    );
    response
}

async fn callback_inner(
    state: &AppState,
    connect: &Connect,
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
    row: &crate::store::connect::OAuthStateRow,
    token: &ConnectTokenRow,
) -> Response {
    let app_slug = row.app.as_str();
    if row.expires_at <= unix_now() {
        return fail(connect, token, app_slug, Failure::StateExpired).await;
    }
    let bound = security::cookie(headers, BINDING_COOKIE)
        .map(|c| hash_secret(c).ct_eq(&row.binding_hash).into())
        .unwrap_or(false);
    if !bound {
        return fail(connect, token, app_slug, Failure::BindingMismatch).await;
    }
    if let Some(error) = params.get("error") {
        let failure = if error == "access_denied" {
            Failure::AccessDenied
        } else {
            Failure::ProviderError
        };
        return fail(connect, token, app_slug, failure).await;
    }
    if let Some(failure) = token_failure(token) {
        return fail(connect, token, app_slug, failure).await;
    }
    let Some(code) = params
        .get("code")
        .filter(|c| !c.is_empty() && c.len() <= 4096)
    else {
        return fail(connect, token, app_slug, Failure::ProviderError).await;
    };
    let Some(app) = state
        .pipeline
        .catalog()
        .get(app_slug)
        .filter(|a| a.oauth.is_some())
    else {
        return fail(connect, token, app_slug, Failure::NotConfigured).await;
    };
    let custom_fields: BTreeMap<String, String> =
        serde_json::from_str(&row.custom_fields).unwrap_or_default();
    let token_url = match app.resolve_oauth_urls(&custom_fields) {
        Ok(Some((_, t))) => t,
        _ => return fail(connect, token, app_slug, Failure::NotConfigured).await,
    };
    match url::Url::parse(&token_url) {
        Ok(u) if check_literal_host(&connect.policy, &u).is_ok() => {}
        _ => {
            tracing::warn!(
                app = app_slug,
                "the token URL's address is refused by the egress policy"
            );
            return fail(connect, token, app_slug, Failure::ExchangeFailed).await;
        }
    }
    let (id_name, secret_name) = oauth_client_secret_names(&app.slug);
    let read = |name: String| async move {
        connect
            .secrets
            .get(&connect.key, &token.project, &name)
            .await
    };
    let (Ok(Some(client_id)), Ok(client_secret)) = (read(id_name).await, read(secret_name).await)
    else {
        return fail(connect, token, app_slug, Failure::NotConfigured).await;
    };
    let client_secret = client_secret.unwrap_or_default();
    let verifier = match connect.store.open_verifier(&connect.key, row) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "cannot open a PKCE verifier");
            return fail(connect, token, app_slug, Failure::ServerError).await;
        }
    };
    let spec = app.oauth.as_ref().expect("checked above");
    let granted = exchange_code(
        &connect.http,
        Exchange {
            token_url: &token_url,
            redirect_uri: &connect.redirect_uri(),
            client_id: &client_id,
            client_secret: &client_secret,
            client_in_body: spec.client_auth == airlock_host_api::apps::ClientAuth::Body,
            code,
            verifier: verifier.as_deref().map(String::as_str),
            timeout: EXCHANGE_TIMEOUT,
        },
        unix_now(),
    )
    .await;
    let granted = match granted {
        Ok(g) => g,
        Err(e) => {
            // The error holds a status and a registered code at most.
            tracing::warn!(project = %token.project, token_id = %token.id, app = app_slug, error = %e, "code exchange failed");
            return fail(connect, token, app_slug, Failure::ExchangeFailed).await;
        }
    };
    match store_account(
        connect,
        token,
        app,
        granted.credentials,
        custom_fields,
        granted.expires_at,
        granted.scopes,
    )
    .await
    {
        Ok(account_id) => finish(token, Ok((&account_id, &app.slug))),
        Err(failure) => fail(connect, token, app_slug, failure).await,
    }
}
