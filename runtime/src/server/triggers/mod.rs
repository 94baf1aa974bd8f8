//! HTTP triggers: `POST`/`GET /v1/projects/{project}/steps/{step}/triggers`
//! and `DELETE .../triggers/{id}` manage them (scopes `steps:write` and
//! `steps:read`); the public route `/t/{id}` (no bearer auth) turns a request
//! into the step's input, runs it through the same path as the runs API
//! ([`super::runs::execute`]) and turns the output into the response.
//!
//! A trigger created with `"async": true` (or a request with `Prefer:
//! respond-async`) queues its run instead ([`super::queued`]) and answers
//! 202 `{id, status: "queued"}` at once: a webhook sender that retries on
//! a slow answer gets its answer before the step runs.
//!
//! A signed trigger checks the request's signature with a secret of the
//! project before anything runs. Secret values, signatures, bodies and header
//! values are never logged.

use std::collections::BTreeMap;

use airlock_host_api::context::Trigger;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest as _, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody, payload_too_large};
use super::metrics::LimitedRoute;
use super::params::{FirePath, FireSubPath, StepPath, TriggerPath};
use super::steps::check;
use super::time::Timestamp;
use crate::store;

mod signature;

pub use signature::{Algorithm, Encoding, SignatureError, SignatureSpec, SpecError};
use signature::{DROPPED_REQUEST_HEADERS, Signed};

/// Headers a step may not set on its response.
const REFUSED_RESPONSE_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

/// Body of `POST .../triggers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTrigger {
    /// Absent: anyone with the URL may run the step.
    pub signature: Option<SignatureSpec>,
    /// Record every run of this trigger as metadata only: no input, output,
    /// error or logs (a request may also ask with `x-airlock-nostore: 1`).
    #[serde(default)]
    pub nostore: bool,
    /// Pin the trigger to this stored version (`sha256:<64 hex>`, a digest
    /// from the step's versions): it runs that version even after a newer
    /// upload or a change of the current one. Absent: the current version.
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
    pub digest: Option<String>,
    /// Queue every run: the sender gets 202 `{id, status: "queued"}` at
    /// once, and the run happens in the queue (see `GET …/runs/{id}`).
    #[serde(default, rename = "async")]
    pub queued: bool,
}

/// A trigger.
#[derive(Debug, Serialize, ToSchema)]
pub struct TriggerView {
    /// Unguessable (192 random bits, base64url).
    pub id: String,
    /// `/t/{id}`, relative to the server.
    pub url: String,
    pub step: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureSpec>,
    /// Its runs keep metadata only.
    pub nostore: bool,
    /// The version it is pinned to; absent: it runs the current version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Its runs are queued; requests get 202 at once.
    #[serde(rename = "async")]
    pub queued: bool,
    pub created_at: Timestamp,
}

/// The triggers of a step.
#[derive(Debug, Serialize, ToSchema)]
pub struct TriggerList {
    pub triggers: Vec<TriggerView>,
}

fn view(r: store::triggers::TriggerRecord) -> TriggerView {
    TriggerView {
        url: format!("/t/{}", r.id),
        id: r.id,
        step: r.step,
        signature: r.signature.and_then(|s| serde_json::from_str(&s).ok()),
        nostore: r.nostore,
        digest: r.digest,
        queued: r.queued,
        created_at: Timestamp::from_unix_secs(r.created_at),
    }
}

fn new_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "no randomness for a trigger id");
        ApiError::internal()
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Create an HTTP trigger for a step (scope `steps:write`).
#[utoipa::path(post, path = "/v1/projects/{project}/steps/{step}/triggers", tag = "triggers",
    security(("bearer" = [])),
    params(StepPath),
    request_body = CreateTrigger,
    responses((status = 201, body = TriggerView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, step)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<CreateTrigger>,
) -> Result<(StatusCode, Json<TriggerView>), ApiError> {
    check(&state, &principal, "steps:write", &project, Some(&step)).await?;
    if let Some(spec) = &body.signature {
        store::validate_secret_name(spec.secret())?;
        spec.validate()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    if state.steps.current(&project, &step).await?.is_none() {
        return Err(ApiError::not_found(format!("no step `{step}`")));
    }
    if let Some(digest) = &body.digest {
        super::steps::check_version(&state, &project, &step, digest).await?;
    }
    let signature = body
        .signature
        .as_ref()
        .map(|s| serde_json::to_string(s).map_err(|_| ApiError::internal()))
        .transpose()?;
    let id = new_id()?;
    let record = state
        .triggers
        .insert(
            &id,
            &project,
            &step,
            signature.as_deref(),
            body.nostore,
            body.digest.as_deref(),
            body.queued,
        )
        .await?;
    tracing::info!(%project, %step, signed = signature.is_some(), nostore = body.nostore,
        pinned = ?body.digest, queued = body.queued, "trigger created");
    Ok((StatusCode::CREATED, Json(view(record))))
}

/// List a step's triggers (scope `steps:read`).
#[utoipa::path(get, path = "/v1/projects/{project}/steps/{step}/triggers", tag = "triggers",
    security(("bearer" = [])),
    params(StepPath),
    responses((status = 200, body = TriggerList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, step)): ApiPath<(String, String)>,
) -> Result<Json<TriggerList>, ApiError> {
    check(&state, &principal, "steps:read", &project, Some(&step)).await?;
    let triggers = state
        .triggers
        .list(&project, &step)
        .await?
        .into_iter()
        .map(view)
        .collect();
    Ok(Json(TriggerList { triggers }))
}

/// Delete a trigger; its URL answers 404 from then on (scope `steps:write`).
#[utoipa::path(delete, path = "/v1/projects/{project}/steps/{step}/triggers/{id}",
    tag = "triggers", security(("bearer" = [])),
    params(TriggerPath),
    responses((status = 204), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, step, id)): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    check(&state, &principal, "steps:write", &project, Some(&step)).await?;
    if state.triggers.delete(&project, &step, &id).await? {
        tracing::info!(%project, %step, "trigger deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such trigger"))
    }
}

/// 401 `bad_signature`; `why` names a header or rule, never a value.
fn bad_signature(why: Option<&SignatureError>) -> Response {
    let message = match why {
        Some(e) => format!("missing, invalid or stale request signature: {e}"),
        None => "missing, invalid or stale request signature".to_owned(),
    };
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", message).into_response();
    // Not a bearer route.
    response
        .headers_mut()
        .remove(axum::http::header::WWW_AUTHENTICATE);
    response
}

fn unix_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The step's input for a request.
fn request_input(
    method: &Method,
    path: &str,
    uri: &Uri,
    headers: &HeaderMap,
    drop_header: Option<&str>,
    body: &[u8],
) -> Value {
    let mut query = Map::new();
    if let Some(q) = uri.query() {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            query.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    let mut header_map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str();
        if DROPPED_REQUEST_HEADERS.contains(&name)
            || Some(name) == drop_header
            || name == super::runs::NOSTORE_HEADER
        {
            continue;
        }
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        header_map
            .entry(name.to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let text = String::from_utf8_lossy(body).into_owned();
    let mut input = serde_json::json!({
        "method": method.as_str(),
        "path": path,
        "query": query,
        "headers": header_map,
    });
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        input["json"] = json;
    }
    input["body"] = Value::String(text);
    input
}

fn step_failed(message: impl Into<String>) -> Response {
    ApiError::new(StatusCode::BAD_GATEWAY, "step_failed", message).into_response()
}

/// The response a step's output asks for.
fn output_response(output: Value) -> Response {
    let Some(status) = output
        .as_object()
        .and_then(|o| o.get("status"))
        .and_then(Value::as_u64)
    else {
        return Json(output).into_response();
    };
    let Some(status) = u16::try_from(status)
        .ok()
        .filter(|s| (100..=599).contains(s))
        .and_then(|s| StatusCode::from_u16(s).ok())
    else {
        return step_failed("the step's response status is not 100 to 599");
    };
    let mut headers = HeaderMap::new();
    if let Some(given) = output.get("headers") {
        let Some(given) = given.as_object() else {
            return step_failed("the step's response headers are not an object");
        };
        for (name, value) in given {
            let (Ok(name), Some(Ok(value))) = (
                HeaderName::try_from(name.as_str()),
                value.as_str().map(HeaderValue::try_from),
            ) else {
                return step_failed("the step's response has an invalid header");
            };
            if REFUSED_RESPONSE_HEADERS.contains(&name.as_str()) {
                return step_failed(format!(
                    "the step may not set the `{}` response header",
                    name.as_str()
                ));
            }
            headers.append(name, value);
        }
    }
    let body = match output.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => {
            if !headers.contains_key(axum::http::header::CONTENT_TYPE) {
                headers.insert(
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
            }
            s.clone()
        }
        Some(other) => {
            if !headers.contains_key(axum::http::header::CONTENT_TYPE) {
                headers.insert(
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            other.to_string()
        }
    };
    (status, headers, body).into_response()
}

/// The public trigger route: any method, no bearer auth. Runs the step with
/// the request as input (`method`, `path` after `/t/{id}`, `query`,
/// `headers` without `authorization`, `cookie`, `x-airlock-nostore` and the
/// signature header, `body`, and `json` when the body is JSON). The run is
/// recorded as metadata only when the trigger is `nostore` or the request
/// says `x-airlock-nostore: 1`. An output object with `status`
/// (and optionally `headers` and `body`) becomes the response; any other
/// output is returned as JSON with 200.
#[utoipa::path(method(get, post, put, patch, delete, head, options, trace), path = "/t/{id}",
    tag = "triggers",
    params(FirePath,
        ("x-airlock-nostore" = Option<String>, Header,
            description = "`1` or `true`: record the run as metadata only")),
    request_body(content = String, description = "Any body up to 1 MiB, of any type"),
    responses((status = "default", description = "The step's output (200, JSON), or the \
            response it asks for: any status, headers and body"),
        (status = 202, body = super::queued::QueuedRun,
            description = "An `async` trigger (or `Prefer: respond-async`): the run is queued"),
        (status = 401, body = ErrorBody, description = "`bad_signature`"),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 429, body = ErrorBody,
            description = "`rate_limited`: over `--trigger-rate-limit`; see `Retry-After`"),
        (status = 502, body = ErrorBody, description = "`step_failed`")))]
pub async fn fire(
    State(state): State<AppState>,
    axum::extract::Path(params): axum::extract::Path<BTreeMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    let Some(id) = params.get("id") else {
        return ApiError::not_found("no such trigger").into_response();
    };
    let trigger = match state.triggers.get(id).await {
        Ok(Some(t)) => t,
        Ok(None) => return ApiError::not_found("no such trigger").into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    // Over its rate limit, a trigger costs no signature check, no body read
    // and no run. (The id is never logged: it is the trigger's capability.)
    if let Err(wait) = state.rate_limits.trigger(id).await {
        state.metrics.rate_limited(LimitedRoute::Trigger);
        tracing::debug!(project = %trigger.project, step = %trigger.step,
            "trigger request refused: rate limit");
        return ApiError::too_many_requests("this trigger's rate limit is reached", wait)
            .into_response();
    }
    let body: Result<Bytes, BytesRejection> = Bytes::from_request(request, &state).await;
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return payload_too_large().into_response();
        }
        Err(e) => return ApiError::bad_request(e.body_text()).into_response(),
    };
    let (project, step) = (trigger.project.as_str(), trigger.step.as_str());
    let spec = match trigger
        .signature
        .as_deref()
        .map(serde_json::from_str::<SignatureSpec>)
    {
        None => None,
        Some(Ok(spec)) => Some(spec),
        Some(Err(e)) => {
            tracing::error!(%project, %step, error = %e, "a stored trigger does not parse");
            return ApiError::internal().into_response();
        }
    };
    let mut drop_header = None;
    if let Some(spec) = &spec {
        let secret = match state
            .secrets
            .get(&state.master_key, project, spec.secret())
            .await
        {
            Ok(Some(v)) => v,
            Ok(None) => {
                tracing::warn!(%project, %step, secret = spec.secret(),
                    "a trigger's signing secret is not in the store");
                return bad_signature(None);
            }
            Err(e) => return ApiError::from(e).into_response(),
        };
        let signed = Signed {
            headers: &headers,
            body: &body,
            path_and_query: uri.path_and_query().map_or("/", |p| p.as_str()),
            now: unix_secs(),
        };
        if let Err(e) = spec.verify(secret.as_bytes(), &signed) {
            // The reason names a header or a rule, never a value.
            tracing::info!(%project, %step, reason = %e, "trigger request refused: bad signature");
            return bad_signature(Some(&e));
        }
        drop_header = Some(spec.header());
    }
    let path = params
        .get("rest")
        .map(|r| format!("/{r}"))
        .unwrap_or_else(|| "/".to_owned());
    let input = request_input(
        &method,
        &path,
        &uri,
        &headers,
        drop_header.as_deref(),
        &body,
    );
    // As on the runs API; a `nostore` trigger cannot be overridden.
    let nostore = trigger.nostore || super::runs::wants_nostore(&headers);
    // A queued run keeps the trigger's pinned version through the queue.
    let preferred = super::queued::prefers_async(&headers);
    if trigger.queued || preferred {
        let queued = super::queued::enqueue(
            &state,
            super::queued::Enqueue {
                project,
                step,
                input: &input,
                external_user_id: None,
                nostore,
                trigger: crate::store::queue::TRIGGER_HTTP,
                idempotency_key: None,
                preferred,
                digest: trigger.digest.clone(),
                rerun_of: None,
                callback_url: None,
            },
        )
        .await;
        return queued.unwrap_or_else(IntoResponse::into_response);
    }
    let invocation = super::runs::Invocation {
        input: &input,
        external_user_id: None,
        nostore,
        trigger: Trigger::Http,
        run_accounts: None,
        // A pinned trigger runs its version, not the current one.
        digest: trigger.digest.clone(),
        rerun_of: None,
    };
    match super::runs::execute(&state, project, step, invocation).await {
        Err(e) => e.into_response(),
        Ok(result) => match (result.output, result.error) {
            (Some(output), _) => output_response(output),
            (None, Some(error)) => step_failed(error.message),
            (None, None) => step_failed("the step produced no output"),
        },
    }
}

/// The public trigger route with a path after the id: as `/t/{id}`, the
/// step's input `path` being `/{path}`. (Documentation of [`fire`], which
/// serves both routes.)
#[utoipa::path(method(get, post, put, patch, delete, head, options, trace), path = "/t/{id}/{path}",
    tag = "triggers",
    params(FireSubPath,
        ("x-airlock-nostore" = Option<String>, Header,
            description = "`1` or `true`: record the run as metadata only")),
    request_body(content = String, description = "Any body up to 1 MiB, of any type"),
    responses((status = "default", description = "The step's output (200, JSON), or the \
            response it asks for: any status, headers and body"),
        (status = 202, body = super::queued::QueuedRun,
            description = "An `async` trigger (or `Prefer: respond-async`): the run is queued"),
        (status = 401, body = ErrorBody, description = "`bad_signature`"),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 429, body = ErrorBody,
            description = "`rate_limited`: over `--trigger-rate-limit`; see `Retry-After`"),
        (status = 502, body = ErrorBody, description = "`step_failed`")))]
#[allow(dead_code)] // `fire` serves the route; this only documents it
pub(super) async fn fire_path() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_with_a_status_shape_the_response() {
        let r = output_response(serde_json::json!({"status": 201, "body": {"ok": true}}));
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.headers()["content-type"], "application/json");
        let r = output_response(serde_json::json!({"status": 200, "headers": {"connection": "x"}}));
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        let r = output_response(serde_json::json!({"status": 99}));
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        let r = output_response(serde_json::json!({"hello": "x"}));
        assert_eq!(r.status(), StatusCode::OK);
    }
}
