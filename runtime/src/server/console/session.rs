//! Signing in and out of the console, and the session every page needs.
//!
//! - **Sign-in** takes an API key pasted once into a form and verifies it
//!   exactly as the API does (`verify_bearer`); a refusal is audited like
//!   any failed authentication, never with the key. The key itself is not
//!   kept: the browser gets a random session cookie, the database its hash
//!   ([`crate::store::console_sessions`]).
//! - **The cookie** (`airlock_console`) is `HttpOnly` (no script reads it),
//!   `SameSite=Strict` (no other site's page or link sends it),
//!   `Path=/console`, and `Secure` when the server's public URL is https.
//! - **CSRF**: every form carries an HMAC of the session cookie (of a
//!   pre-session cookie on the sign-in form, against login CSRF), checked
//!   in constant time; a POST the browser marks as from another site
//!   (`Sec-Fetch-Site`, `Origin`) is refused before that.
//! - **Logout** deletes the session row, so a copied cookie stops working
//!   at once, on every node.

use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::views;
use crate::server::AppState;
use crate::server::auth::Principal;
use crate::server::connect::security::{cookie, csrf_ok, csrf_token, same_origin};
use crate::store::console_sessions::{ConsoleSessions, SESSION_TTL_SECS};
use crate::store::platform::Refusal;

pub const SESSION_COOKIE: &str = "airlock_console";
/// The pre-session cookie the sign-in form's CSRF token is bound to.
pub const LOGIN_COOKIE: &str = "airlock_console_login";
const LOGIN_TTL_SECS: i64 = 3600;

/// A signed-in operator: the credential's grant and the page's CSRF token.
pub struct Operator {
    pub principal: Principal,
    pub csrf: String,
}

/// Not signed in (or the session ended): to the sign-in page.
pub struct SignIn;

impl IntoResponse for SignIn {
    fn into_response(self) -> Response {
        Redirect::to("/console/login").into_response()
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(value) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(SignIn.into_response());
        };
        let sessions = ConsoleSessions::new(state.secrets.db().clone());
        match sessions.open(value).await {
            Ok(Some(grant)) => Ok(Operator {
                principal: Principal(grant),
                csrf: csrf_token(value),
            }),
            Ok(None) => Err(SignIn.into_response()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a console session");
                Err(views::message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    "The console cannot reach its database; try again shortly.",
                ))
            }
        }
    }
}

/// Whether the server's cookies need `Secure` (its public URL is https).
fn secure(state: &AppState) -> bool {
    state.connect.as_ref().is_some_and(|c| c.secure_cookies)
}

fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        max_age.max(0)
    ))
    .expect("cookie values are base64url")
}

/// The origin the browser addressed (for the `Origin` check).
pub(super) fn our_origin(headers: &HeaderMap, state: &AppState) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let scheme = if secure(state) { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// `GET /console/login`: the form, with a fresh pre-session cookie.
pub async fn login_form(State(state): State<AppState>) -> Response {
    login_page(&state, StatusCode::OK, None)
}

fn login_page(state: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let Ok(pre) = crate::store::console_sessions::random_value() else {
        return views::message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Unavailable",
            "No randomness for a session; try again.",
        );
    };
    let page = views::LoginPage {
        csrf: csrf_token(&pre),
        error: error.map(str::to_owned),
    };
    let mut response = views::html(status, &page);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &pre, LOGIN_TTL_SECS, secure(state)),
    );
    response
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    api_key: Zeroizing<String>,
    csrf: String,
}

/// `POST /console/login`: verify the key as the API does, start a session.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return login_page(
            &state,
            StatusCode::BAD_REQUEST,
            Some("The form was incomplete: paste an API key."),
        );
    };
    if !same_origin(&headers, &our_origin(&headers, &state))
        || !csrf_ok(
            cookie(&headers, LOGIN_COOKIE).unwrap_or(""),
            Some(&form.csrf),
        )
    {
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            Some("The form expired or came from another site; sign in again."),
        );
    }
    let key = form.api_key.trim();
    let verified = if key.starts_with(crate::store::platform::API_KEY_PREFIX) {
        state.platform.verify_bearer(key).await
    } else {
        Ok(Err(Refusal {
            key_id: None,
            reason: "console sign-in with something that is not an API key",
        }))
    };
    let grant = match verified {
        Ok(Ok(grant)) => grant,
        Ok(Err(refusal)) => {
            crate::server::auth::audit_failure(&state, "POST", "/console/login", &refusal).await;
            return login_page(
                &state,
                StatusCode::UNAUTHORIZED,
                Some("That API key was not accepted."),
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot verify a console sign-in");
            return views::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The console cannot reach its database; try again shortly.",
            );
        }
    };
    let sessions = ConsoleSessions::new(state.secrets.db().clone());
    let value = match sessions.start(&grant).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start a console session");
            return views::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The console cannot reach its database; try again shortly.",
            );
        }
    };
    tracing::info!(key_id = %grant.id, "console sign-in");
    let mut response = Redirect::to("/console/").into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &value, SESSION_TTL_SECS, secure(&state)),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", 0, secure(&state)),
    );
    response
}

/// A form that only carries the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// Whether a POST of a signed-in page is genuine: from our origin, with the
/// session's CSRF token (answer one that is not with [`forbidden`]).
pub fn check_post(
    state: &AppState,
    headers: &HeaderMap,
    operator: &Operator,
    csrf: Option<&str>,
) -> bool {
    same_origin(headers, &our_origin(headers, state))
        && csrf.is_some_and(|c| {
            use subtle::ConstantTimeEq as _;
            bool::from(c.as_bytes().ct_eq(operator.csrf.as_bytes()))
        })
}

/// The answer to a POST that failed [`check_post`].
pub fn forbidden() -> Response {
    views::message(
        StatusCode::FORBIDDEN,
        "Refused",
        "The form expired or came from another site. Go back, reload the page and try again.",
    )
}

/// `POST /console/logout`: end the session everywhere.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    operator: Operator,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !check_post(&state, &headers, &operator, form.csrf.as_deref()) {
        return forbidden();
    }
    if let Some(value) = cookie(&headers, SESSION_COOKIE) {
        let sessions = ConsoleSessions::new(state.secrets.db().clone());
        if let Err(e) = sessions.end(value).await {
            tracing::warn!(error = %e, "cannot end a console session");
            return views::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The session could not be ended; try again.",
            );
        }
    }
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, secure(&state)),
    );
    response
}
