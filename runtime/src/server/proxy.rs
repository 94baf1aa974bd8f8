//! The credential-injecting proxy:
//! `GET|POST|PUT|PATCH|DELETE /v1/projects/{project}/proxy/{url}` with
//! `external_user_id` and `account_id` in the query (scope `proxy`).
//!
//! `{url}` is the URL-safe base64 (padding optional) of a full URL or of a
//! path relative to the app's base URL. The request goes through the same
//! [`Pipeline`](airlock_host_api::http::pipeline::Pipeline) as a step's
//! `http.send`, so every rule there holds here too: the account's
//! credential inserted where its app says (refreshed by the host when it is
//! an OAuth token), the app's `allowed_domains`, the address checks, the
//! redirect rules, the caps and the project's rate limit.
//!
//! Decisions, and why:
//! - Only headers named `x-airlock-proxy-<name>` are forwarded, as
//!   `<name>`. The caller's own headers (its bearer token for this API, its
//!   `Host`, its `Accept-Encoding`) describe the hop to Airlock, not the
//!   request upstream; forwarding them by default would leak the platform
//!   token to a third party.
//! - A prefixed header the pipeline or the Fetch standard forbids
//!   (credentials, framing, hop-by-hop, `origin`, `referer`, `sec-*`, ...),
//!   or that Pipedream's proxy refuses (`permissions-policy`, `note`), is a
//!   400 naming it rather than silently dropped: the caller asked for
//!   something it will not get. So is any `x-airlock-*` name: that
//!   namespace is the host's own (`x-airlock-account`, `x-airlock-auth`,
//!   `x-airlock-nostore`), never a caller's message to an upstream.
//! - A dynamic-domain app (its host comes from the account's custom fields,
//!   e.g. `{subdomain}.zendesk.com`) takes relative paths only: the host is
//!   then built from the account, never from the caller.
//! - The account must belong to `external_user_id`: an operator's backend
//!   acting for one user cannot reach another user's account by id.
//! - The upstream's status, headers and body come back as they are, except
//!   hop-by-hop headers, and except any credential the host inserted, which
//!   is masked (the pipeline masks responses; an upstream that echoes the
//!   token must not hand it to the caller, who may be a browser-facing
//!   service that never held it).

use std::collections::BTreeSet;

use airlock_host_api::http::pipeline::{
    Caller, Credential, HttpError, HttpGrants, OutboundRequest, OutboundResponse, restricted_header,
};
use airlock_host_api::redact::Redactor;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiPath, ErrorBody};
use super::params::ProxyPath;
use super::steps::check;
use crate::store::accounts::{AccountStatus, AccountStore};

/// The prefix that marks a header for the upstream.
pub const FORWARD_PREFIX: &str = "x-airlock-proxy-";

/// Who the request acts for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProxyParams {
    /// The end user the account belongs to.
    #[param(
        min_length = 1,
        max_length = 250,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub external_user_id: String,
    /// The connected account (`acc_…`) whose credential is inserted.
    #[param(pattern = "^acc_[0-9a-f]{16}$")]
    pub account_id: String,
}

/// Headers refused beyond what the pipeline already refuses: those the
/// Fetch standard forbids a script to set (they describe the client, not
/// the request; `set-cookie` is a response header), and those Pipedream's
/// proxy refuses, so a caller moving between the two meets the same rules.
const FORBIDDEN_EXTRA: &[&str] = &[
    "accept-charset",
    "accept-encoding",
    "access-control-request-headers",
    "access-control-request-method",
    "date",
    "dnt",
    "origin",
    "referer",
    "set-cookie",
    // Pipedream's.
    "note",
    "permissions-policy",
];

/// The host's own header namespace (its forwarding prefix included).
const HOST_HEADER_PREFIX: &str = "x-airlock-";

/// Whether a forwarded header name (prefix removed) is refused.
pub fn forbidden_forward(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    restricted_header(&lower)
        || FORBIDDEN_EXTRA.contains(&lower.as_str())
        || lower.starts_with("access-control-")
        || lower.starts_with(HOST_HEADER_PREFIX)
}

/// Response headers that describe one connection, not the message
/// (RFC 9110 §7.6.1), plus the length the server recomputes.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}

fn decode_target(encoded: &str) -> Result<String, ApiError> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(encoded).map_err(|_| {
        ApiError::bad_request("url: not URL-safe base64 (RFC 4648 §5) of a URL or a path")
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("url: the decoded URL is not UTF-8"))?;
    if text.is_empty() {
        return Err(ApiError::bad_request("url: the decoded URL is empty"));
    }
    Ok(text)
}

/// The forwarded headers, prefix removed; a refused one is a 400 naming it.
fn forwarded_headers(headers: &HeaderMap) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for (name, value) in headers {
        let Some(upstream) = name.as_str().strip_prefix(FORWARD_PREFIX) else {
            continue;
        };
        if upstream.is_empty() || forbidden_forward(upstream) {
            return Err(ApiError::bad_request(format!(
                "header {name} would set `{upstream}`, which cannot be sent through the proxy"
            )));
        }
        let value = value.to_str().map_err(|_| {
            ApiError::bad_request(format!("header {name}: the value is not visible ASCII"))
        })?;
        out.push((upstream.to_owned(), value.to_owned()));
    }
    Ok(out)
}

/// An upstream answer as ours: its status, headers (hop-by-hop dropped)
/// and body.
fn upstream_response(r: OutboundResponse) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, r.body).into_response();
    let headers = response.headers_mut();
    headers.remove(axum::http::header::CONTENT_TYPE);
    for (name, value) in r.headers {
        if hop_by_hop(&name) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    response
}

/// A pipeline failure as an API error with the status the issue names.
fn pipeline_error(e: HttpError) -> Response {
    match e {
        HttpError::RateLimited(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("the project's outbound rate limit is spent; retry after {secs} s"),
            )
            .into_response();
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from(secs.max(1)),
            );
            response
        }
        HttpError::Timeout(m) => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", m).into_response()
        }
        HttpError::Denied(m) => ApiError::forbidden(m).into_response(),
        HttpError::InvalidRequest(m) => ApiError::bad_request(m).into_response(),
        HttpError::TooLarge(m) | HttpError::ConnectionFailed(m) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "bad_gateway", m).into_response()
        }
        HttpError::CredentialUnusable(m) => {
            ApiError::new(StatusCode::CONFLICT, "credential_unusable", m).into_response()
        }
    }
}

/// Send a request upstream with an end user's account (scope `proxy`).
#[utoipa::path(method(get, post, put, patch, delete), path = "/v1/projects/{project}/proxy/{url}", tag = "proxy",
    security(("bearer" = [])),
    params(ProxyPath, ProxyParams),
    responses(
        (status = "default", description = "The upstream's answer (any status), as it is"),
        (status = 400, body = ErrorBody, description = "bad URL, refused header, full URL for a dynamic-domain app"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "missing scope, or a domain outside the app's allowed domains"),
        (status = 404, body = ErrorBody, description = "no such project or account"),
        (status = 409, body = ErrorBody, description = "the account needs re-authorisation"),
        (status = 413, body = ErrorBody, description = "a body over 1 MiB"),
        (status = 429, body = ErrorBody, description = "over the project's rate limit; see Retry-After"),
        (status = 502, body = ErrorBody), (status = 504, body = ErrorBody, description = "no answer within the timeout")))]
pub async fn forward(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, encoded)): ApiPath<(String, String)>,
    query: Result<Query<ProxyParams>, QueryRejection>,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // A chunked body over the limit is cut as it is read: the API's 413.
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return super::error::payload_too_large().into_response();
        }
        Err(_) => return ApiError::bad_request("cannot read the request body").into_response(),
    };
    match prepare(&state, &principal, &project, &encoded, query, &headers).await {
        Err(e) => e.into_response(),
        Ok(prepared) => send(&state, &project, method, prepared, body).await,
    }
}

struct Prepared {
    target: String,
    headers: Vec<(String, String)>,
    external_user_id: String,
    account_id: String,
    app: String,
}

async fn prepare(
    state: &AppState,
    principal: &Principal,
    project: &str,
    encoded: &str,
    query: Result<Query<ProxyParams>, QueryRejection>,
    headers: &HeaderMap,
) -> Result<Prepared, ApiError> {
    check(state, principal, "proxy", project, None).await?;
    let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let target = decode_target(encoded)?;
    let forwarded = forwarded_headers(headers)?;
    let no_account = || ApiError::not_found("no such account for this external user");
    // Metadata only: the pipeline decrypts the credentials when it sends.
    let account = AccountStore::new(&state.secrets)
        .get_meta(project, &params.account_id)
        .await?
        .ok_or_else(no_account)?;
    if account.external_user_id != params.external_user_id {
        return Err(no_account());
    }
    if account.status == AccountStatus::NeedsReauth {
        return Err(ApiError::conflict(format!(
            "account {} needs re-authorisation: its OAuth refresh was refused",
            account.id
        )));
    }
    let app = state.pipeline.catalog().get(&account.app).ok_or_else(|| {
        ApiError::conflict(format!(
            "app {} of this account is not in the app catalog",
            account.app
        ))
    })?;
    if !app.proxy_enabled {
        return Err(ApiError::forbidden(format!(
            "app {} does not allow the proxy",
            app.slug
        )));
    }
    if !target.starts_with('/') && app.is_dynamic() {
        return Err(ApiError::bad_request(format!(
            "app {} has a dynamic domain: pass a path relative to its base URL, not a full URL",
            app.slug
        )));
    }
    Ok(Prepared {
        target,
        headers: forwarded,
        external_user_id: params.external_user_id,
        account_id: account.id.clone(),
        app: app.slug.clone(),
    })
}

async fn send(
    state: &AppState,
    project: &str,
    method: Method,
    prepared: Prepared,
    body: Bytes,
) -> Response {
    let grants = HttpGrants {
        apps: BTreeSet::from([prepared.app.clone()]),
        allowed_hosts: Vec::new(),
    };
    // A redactor of this request alone: the inserted credential is
    // registered with it, and the response is masked with it.
    let redactor = Redactor::new();
    let caller = Caller {
        project,
        external_user_id: Some(&prepared.external_user_id),
        grants: &grants,
        deadline: None,
        redactor: &redactor,
        run_accounts: None,
    };
    let request = OutboundRequest {
        method: method.as_str().to_owned(),
        url: prepared.target,
        headers: prepared.headers,
        body: body.to_vec(),
        timeout: None,
        credential: Some(Credential::Account(prepared.account_id)),
    };
    let (result, summary) = state.pipeline.send(&caller, request).await;
    // The summary holds no query, header or credential.
    tracing::info!(
        %project,
        app = %prepared.app,
        method = %summary.method,
        url = %summary.url,
        status = summary.status,
        duration_ms = summary.duration_ms,
        "proxied"
    );
    match result {
        Ok(response) => upstream_response(response),
        Err(e) => pipeline_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_decode_with_or_without_padding() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for raw in ["/user/repos?per_page=5", "https://api.github.com/user"] {
            assert_eq!(decode_target(&b64.encode(raw)).unwrap(), raw);
            let padded = base64::engine::general_purpose::URL_SAFE.encode(raw);
            assert_eq!(decode_target(&padded).unwrap(), raw);
        }
        assert!(decode_target("not base64!").is_err());
        assert!(decode_target("").is_err());
    }

    #[test]
    fn forwarding_rules() {
        for refused in [
            "cookie",
            "host",
            "accept-encoding",
            "content-length",
            "connection",
            "origin",
            "referer",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "via",
            "keep-alive",
            "expect",
            "date",
            "dnt",
            "proxy-foo",
            "sec-fetch-mode",
            "authorization",
            "x-airlock-proxy-x",
            "x-airlock-account",
            "X-Airlock-Auth",
            "permissions-policy",
            "Note",
            "set-cookie",
            "x-http-method",
            "X-Method-Override",
            "x-http-method-override",
        ] {
            assert!(forbidden_forward(refused), "{refused}");
        }
        for allowed in [
            "accept",
            "content-type",
            "x-github-api-version",
            "if-none-match",
            "notes",
            "x-note",
            "user-agent",
        ] {
            assert!(!forbidden_forward(allowed), "{allowed}");
        }
    }
}
