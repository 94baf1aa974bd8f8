//! The OAuth 2.0 token endpoint, `POST /v1/oauth/token` (client credentials
//! grant, RFC 6749 §4.4; no bearer). Its failed attempts are rate limited
//! per client id and source address ([`super::ratelimit`]).
//!
//! Decisions, and why:
//! - **Errors follow RFC 6749 §5.2 here, and only here**:
//!   `{"error": "invalid_client", "error_description": "..."}`, because
//!   OAuth client libraries (authlib, requests-oauthlib, golang.org/x/oauth2)
//!   read exactly that and misreport anything else. Every other route keeps
//!   the project's `{"error": {"code", "message"}}`.
//! - Statuses as the RFC says: 400 for every error but `invalid_client`,
//!   which is 401 with `WWW-Authenticate: Basic realm="airlock"` (the scheme
//!   the client may authenticate with; a 401 must name one). Beyond the RFC:
//!   413 for an oversized body, 405 for another method, 429
//!   `temporarily_unavailable` with `Retry-After` past the failure limit, 500
//!   `server_error` — all in the same RFC body.
//! - `admin` implies every other scope, here as on every route: an admin
//!   client may ask for a token narrowed to `runs:read`. A token never gets
//!   more than the client holds, nor an unknown scope.
//! - One client authentication method per request (§2.3): HTTP Basic and a
//!   `client_secret` in the body together are refused, as is a body
//!   `client_id` other than Basic's. A parameter given twice is refused
//!   (§3.2) rather than resolved by order. Unknown parameters are ignored
//!   (§3.2).
//! - Answers carry `Cache-Control: no-store` (every API answer does) and
//!   `Pragma: no-cache` (§5.1).

use std::collections::BTreeSet;
use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::AppState;
use super::auth::audit_failure;
use super::error::without_quoted_values;
use super::metrics::LimitedRoute;
use crate::store::StoreError;
use crate::store::platform::{Refusal, SCOPES, is_client_id};

/// The route.
pub const PATH: &str = "/v1/oauth/token";

/// `WWW-Authenticate` of an `invalid_client` answer.
const BASIC_CHALLENGE: &str = "Basic realm=\"airlock\"";

/// Body of `POST /v1/oauth/token`, as form or JSON (or id and secret by HTTP Basic).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// `client_credentials`.
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Space-separated scopes, each held by the client (`admin` holds all);
    /// all of the client's when absent.
    pub scope: Option<String>,
}

/// An access token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds.
    pub expires_in: u64,
    pub scope: String,
}

/// The `error` codes of this endpoint (RFC 6749 §5.2, and §4.1.2.1's
/// `temporarily_unavailable` and `server_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    UnsupportedGrantType,
    InvalidScope,
    TemporarilyUnavailable,
    ServerError,
}

/// An error of the token endpoint, as RFC 6749 §5.2 shapes it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    pub error: OAuthErrorCode,
    /// For people; never holds a credential.
    pub error_description: String,
}

/// A failure of the token endpoint.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    body: OAuthErrorBody,
    retry_after_secs: Option<u64>,
}

impl OAuthError {
    fn new(status: StatusCode, error: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            status,
            body: OAuthErrorBody {
                error,
                error_description: description.into(),
            },
            retry_after_secs: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::InvalidRequest,
            description,
        )
    }

    /// 401 `invalid_client`.
    fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            OAuthErrorCode::InvalidClient,
            "unknown client or wrong client secret",
        )
    }

    /// 413, for a body over the limit.
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            OAuthErrorCode::InvalidRequest,
            "the request body is too large",
        )
    }

    /// 500 `server_error`; the cause goes to the log only.
    fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            OAuthErrorCode::ServerError,
            "internal server error",
        )
    }

    /// 429 `temporarily_unavailable` with `Retry-After` (whole seconds,
    /// rounded up, at least 1).
    fn too_many_failures(wait: std::time::Duration) -> Self {
        let secs = wait
            .as_secs()
            .saturating_add(u64::from(wait.subsec_nanos() > 0))
            .max(1);
        Self {
            retry_after_secs: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                OAuthErrorCode::TemporarilyUnavailable,
                "too many failed attempts; retry later",
            )
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage failure");
        Self::server_error()
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(BASIC_CHALLENGE),
            );
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// The answer to another method on the token route.
pub async fn method_not_allowed() -> OAuthError {
    OAuthError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        OAuthErrorCode::InvalidRequest,
        "the token endpoint takes POST only",
    )
}

fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn parse_form(body: &[u8]) -> Result<TokenRequest, OAuthError> {
    let mut req = TokenRequest::default();
    let mut seen = BTreeSet::new();
    for (k, v) in form_urlencoded::parse(body) {
        let slot = match k.as_ref() {
            "grant_type" => &mut req.grant_type,
            "client_id" => &mut req.client_id,
            "client_secret" => &mut req.client_secret,
            "scope" => &mut req.scope,
            // RFC 6749 §3.2: unrecognized parameters are ignored.
            _ => continue,
        };
        if !seen.insert(k.clone().into_owned()) {
            return Err(OAuthError::invalid_request(format!(
                "{k}: given more than once"
            )));
        }
        *slot = Some(v.into_owned());
    }
    Ok(req)
}

/// The HTTP Basic credentials, if the request has `Authorization: Basic`.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_request("invalid Basic credentials");
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Ok(None);
    };
    // RFC 9110 §11.1: the scheme is case-insensitive.
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| bad())?,
    );
    let text = std::str::from_utf8(&decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    // RFC 6749 §2.3.1: both are form-urlencoded before they are joined.
    Ok(Some((form_decode(id)?, form_decode(secret)?)))
}

fn parse_token_request(headers: &HeaderMap, body: &[u8]) -> Result<TokenRequest, OAuthError> {
    let media_type = media_type(headers);
    let mut req = if body.is_empty() {
        TokenRequest::default()
    } else if media_type == "application/json" {
        // serde quotes a mistyped value, which may be a secret: drop it.
        serde_json::from_slice(body).map_err(|e| {
            OAuthError::invalid_request(format!(
                "invalid JSON body: {}",
                without_quoted_values(&e.to_string())
            ))
        })?
    } else if media_type == "application/x-www-form-urlencoded" {
        parse_form(body)?
    } else {
        return Err(OAuthError::invalid_request(
            "expected a body of type application/x-www-form-urlencoded or application/json",
        ));
    };
    if let Some((id, secret)) = basic_credentials(headers)? {
        if req.client_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "client authentication given twice: HTTP Basic and client_secret",
            ));
        }
        if req.client_id.as_ref().is_some_and(|body_id| *body_id != id) {
            return Err(OAuthError::invalid_request(
                "client_id differs from the HTTP Basic client id",
            ));
        }
        req.client_id = Some(id);
        req.client_secret = Some(secret);
    }
    Ok(req)
}

/// Decodes one `application/x-www-form-urlencoded` value (`+` is a space).
fn form_decode(text: &str) -> Result<String, OAuthError> {
    let plus_as_space = text.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| OAuthError::invalid_request("invalid Basic credentials"))
}

/// The scopes of the new token: those asked for (deduplicated, in the
/// order given), or all of the client's. `None` when one is not allowed.
fn granted_scopes(asked: Option<&str>, client_scopes: &[String]) -> Option<Vec<String>> {
    let Some(asked) = asked else {
        return Some(client_scopes.to_vec());
    };
    let admin = client_scopes.iter().any(|s| s == "admin");
    let mut granted: Vec<String> = Vec::new();
    for scope in asked.split_whitespace() {
        let allowed =
            client_scopes.iter().any(|s| s == scope) || (admin && SCOPES.contains(&scope));
        if !allowed {
            return None;
        }
        if !granted.iter().any(|g| g == scope) {
            granted.push(scope.to_owned());
        }
    }
    (!granted.is_empty()).then_some(granted)
}

/// Exchange client credentials for an access token (no bearer needed).
/// Errors are RFC 6749 §5.2 objects, not the project's error shape.
#[utoipa::path(post, path = "/v1/oauth/token", tag = "oauth",
    request_body(content(
        (TokenRequest = "application/x-www-form-urlencoded"),
        (TokenRequest = "application/json"))),
    responses((status = 200, body = TokenResponse,
            headers(("pragma" = String, description = "`no-cache`"))),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request` (a missing, \
            repeated or malformed parameter, two client authentication methods, a body \
            that is neither form nor JSON), `unsupported_grant_type` or `invalid_scope`"),
        (status = 401, body = OAuthErrorBody, description = "`invalid_client`",
            headers(("www-authenticate" = String, description = "`Basic realm=\"airlock\"`"))),
        (status = 405, body = OAuthErrorBody),
        (status = 413, body = OAuthErrorBody),
        (status = 429, body = OAuthErrorBody,
            description = "`temporarily_unavailable`: too many failed attempts for this \
                client from this address, or from this address; see `Retry-After`",
            headers(("retry-after" = u64, description = "seconds"))),
        (status = 500, body = OAuthErrorBody, description = "`server_error`")))]
pub async fn token(
    State(state): State<AppState>,
    // Absent when the router is served without connect info (unit tests).
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            OAuthError::payload_too_large()
        } else {
            OAuthError::invalid_request("cannot read the request body")
        }
    })?;
    let req = parse_token_request(&headers, &body)?;
    match req.grant_type.as_deref() {
        Some("client_credentials") => {}
        None => return Err(OAuthError::invalid_request("grant_type is missing")),
        Some(_) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                OAuthErrorCode::UnsupportedGrantType,
                "grant_type: only `client_credentials` is supported",
            ));
        }
    }
    let client_id = req
        .client_id
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("client_id is missing"))?;
    let secret = Zeroizing::new(
        req.client_secret
            .clone()
            .ok_or_else(|| OAuthError::invalid_request("client_secret is missing"))?,
    );
    // Over the failure limit, the secret is not even checked: a right guess
    // looks like a wrong one.
    let addr = peer.map(|axum::Extension(ConnectInfo(a))| a.ip());
    if let Some(wait) = state.rate_limits.token_blocked(Some(client_id), addr).await {
        let refusal = Refusal {
            key_id: is_client_id(client_id).then(|| client_id.to_owned()),
            reason: "too many failed attempts",
        };
        audit_failure(&state, "POST", PATH, &refusal).await;
        state.metrics.rate_limited(LimitedRoute::Token);
        return Err(OAuthError::too_many_failures(wait));
    }
    let client = match state.platform.verify_client(client_id, &secret).await? {
        Ok(c) => c,
        Err(refusal) => {
            state.rate_limits.token_failed(Some(client_id), addr).await;
            audit_failure(&state, "POST", PATH, &refusal).await;
            return Err(OAuthError::invalid_client());
        }
    };
    let Some(scopes) = granted_scopes(req.scope.as_deref(), &client.scopes) else {
        let refusal = Refusal {
            key_id: Some(client.id.clone()),
            reason: "scope not allowed for client",
        };
        audit_failure(&state, "POST", PATH, &refusal).await;
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::InvalidScope,
            "scope: give known scopes, each held by the client (`admin` holds all)",
        ));
    };
    // A token never outlives its client.
    let ttl = match client.expires_at {
        Some(at) => {
            let left = at.saturating_sub(chrono::Utc::now().timestamp());
            state.token_ttl_secs.min(u64::try_from(left).unwrap_or(0))
        }
        None => state.token_ttl_secs,
    };
    let token = state.platform.issue_token(&client, &scopes, ttl).await?;
    let mut response = Json(TokenResponse {
        access_token: token.as_str().to_owned(),
        token_type: "Bearer",
        expires_in: ttl,
        scope: scopes.join(" "),
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(scopes: &[&str]) -> Vec<String> {
        scopes.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn admin_implies_every_known_scope_and_nothing_else() {
        let admin = owned(&["admin"]);
        assert_eq!(
            granted_scopes(Some("runs:read"), &admin),
            Some(owned(&["runs:read"]))
        );
        assert_eq!(
            granted_scopes(Some("runs:read proxy runs:read"), &admin),
            Some(owned(&["runs:read", "proxy"]))
        );
        assert_eq!(granted_scopes(Some("root"), &admin), None);
        assert_eq!(granted_scopes(None, &admin), Some(admin.clone()));
        let narrow = owned(&["runs:read", "proxy"]);
        assert_eq!(
            granted_scopes(Some("proxy"), &narrow),
            Some(owned(&["proxy"]))
        );
        assert_eq!(granted_scopes(Some("admin"), &narrow), None);
        assert_eq!(granted_scopes(Some("runs:write"), &narrow), None);
        assert_eq!(granted_scopes(Some("  "), &narrow), None);
    }

    #[test]
    fn form_parameters_may_not_repeat() {
        assert!(parse_form(b"grant_type=a&scope=x&grant_type=b").is_err());
        let req = parse_form(b"grant_type=client_credentials&extra=1&extra=2").unwrap();
        assert_eq!(req.grant_type.as_deref(), Some("client_credentials"));
    }

    #[test]
    fn basic_schemes_are_case_insensitive_and_one_method_is_allowed() {
        let mut headers = HeaderMap::new();
        let basic = base64::engine::general_purpose::STANDARD.encode("ac_1:s%2B1");
        headers.insert(
            header::AUTHORIZATION,
            format!("BASIC {basic}").parse().unwrap(),
        );
        assert_eq!(
            basic_credentials(&headers).unwrap(),
            Some(("ac_1".to_owned(), "s+1".to_owned()))
        );
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let body = b"grant_type=client_credentials&client_secret=x";
        assert!(parse_token_request(&headers, body).is_err());
        let body = b"grant_type=client_credentials&client_id=ac_2";
        assert!(parse_token_request(&headers, body).is_err());
        let body = b"grant_type=client_credentials&client_id=ac_1";
        let req = parse_token_request(&headers, body).unwrap();
        assert_eq!(req.client_secret.as_deref(), Some("s+1"));
    }
}
