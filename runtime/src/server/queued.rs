//! Queued runs on the API: `Prefer: respond-async` (RFC 7240) on `POST
//! …/steps/{step}/runs` (or a queued trigger) writes the run `queued` and
//! answers 202 at once; `POST …/runs/{id}/cancel` cancels one. The workers
//! that run them are [`crate::service::queue`].
//!
//! `Idempotency-Key` makes a retried request safe: the key is unique per
//! project and step, so the database, not this process, decides which of
//! two concurrent requests queued the run, and the other gets that run.
//! The request's hash is kept with it, so the same key with a different
//! request is refused (422) instead of silently answering with a run of
//! another input. Keys and inputs are never logged.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use utoipa::ToSchema;

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ApiPath, ErrorBody};
use super::params::RunPath;
use super::steps::check;
use crate::store::queue::{Cancel, Enqueued, NewQueuedRun};

/// The request header naming the key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// A queued run, as `POST …/runs` with `Prefer: respond-async` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedRun {
    pub id: String,
    /// `queued` for a new run; for a replayed `Idempotency-Key`, the run's
    /// status now (`queued`, `running`, `succeeded`, `failed`, `cancelled`).
    pub status: String,
}

/// What `POST …/runs/{id}/cancel` did.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancelResult {
    pub id: String,
    /// `cancelled` (it was queued), or `running` while its node stops it.
    pub status: &'static str,
    /// The run's node was asked to stop it (status `running`).
    pub cancel_requested: bool,
}

/// Whether the request says `Prefer: respond-async` (tokens are
/// case-insensitive; a header may list several preferences, with
/// parameters).
pub fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| {
            let token = p.split([';', '=']).next().unwrap_or("").trim();
            token.eq_ignore_ascii_case("respond-async")
        })
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| {
            !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Idempotency-Key: must be 1 to {MAX_KEY_LEN} visible ASCII characters"
            ))
        })?;
    // A caller's key must not take a schedule tick's (it would stand in for
    // the tick's run, so the tick would queue nothing).
    if key.starts_with(crate::service::schedules::KEY_PREFIX) {
        return Err(ApiError::bad_request(
            "Idempotency-Key: keys starting `schedule:` are the schedules' own",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// What to queue.
pub(super) struct Enqueue<'a> {
    pub project: &'a str,
    pub step: &'a str,
    pub input: &'a Value,
    pub external_user_id: Option<String>,
    pub nostore: bool,
    /// `api` or `http`.
    pub trigger: &'static str,
    pub idempotency_key: Option<String>,
    /// Whether the caller sent `Prefer: respond-async` (then the answer
    /// says `Preference-Applied`).
    pub preferred: bool,
    /// The version to run (a pinned trigger); `None`: the step's current
    /// version when each attempt starts.
    pub digest: Option<String>,
    /// The recorded run this one re-runs.
    pub rerun_of: Option<String>,
    /// Checked already (`service::callbacks::check_url`).
    pub callback_url: Option<String>,
}

/// Queues a run of the step's current version, or of `e.digest` (404 for an unknown step)
/// and answers 202 `{id, status}` with `Location`; a replayed
/// idempotency key answers with its run (200 once it has finished).
pub(super) async fn enqueue(state: &AppState, e: Enqueue<'_>) -> Result<Response, ApiError> {
    if state.steps.current(e.project, e.step).await?.is_none() {
        return Err(ApiError::not_found(format!("no step `{}`", e.step)));
    }
    let input = e.input.to_string();
    let request_hash = e.idempotency_key.as_ref().map(|_| {
        let mut asked = serde_json::json!({
            "input": e.input,
            "external_user_id": e.external_user_id,
            "nostore": e.nostore,
        });
        // Only when set, so hashes stored before re-runs existed still match.
        if let Some(of) = &e.rerun_of {
            asked["rerun_of"] = Value::String(of.clone());
        }
        // Only when named, so the hashes of requests without one stay.
        if let Some(url) = &e.callback_url {
            asked["callback_url"] = url.as_str().into();
        }
        hex::encode(Sha256::digest(asked.to_string().as_bytes()))
    });
    let now = crate::service::unix_millis();
    let run = NewQueuedRun {
        id: uuid::Uuid::now_v7().to_string(),
        project: e.project.to_owned(),
        step: e.step.to_owned(),
        input,
        external_user_id: e.external_user_id,
        nostore: e.nostore,
        trigger: e.trigger.to_owned(),
        idempotency_key: e.idempotency_key,
        request_hash: request_hash.clone(),
        created_at: now,
        not_before: now,
        digest: e.digest,
        rerun_of: e.rerun_of,
        callback_url: e.callback_url,
    };
    let (id, status, replayed) = match state.queue.enqueue(&run).await? {
        Enqueued::New => {
            tracing::info!(project = %e.project, step = %e.step, run_id = %run.id, "run queued");
            (run.id, "queued".to_owned(), false)
        }
        Enqueued::Existing {
            request_hash: stored,
            ..
        } if stored != request_hash => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request to this step",
            ));
        }
        Enqueued::Existing { id, status, .. } => (id, status, true),
    };
    let code = if matches!(status.as_str(), "queued" | "running") {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let mut response = (
        code,
        Json(QueuedRun {
            id: id.clone(),
            status,
        }),
    )
        .into_response();
    let headers = response.headers_mut();
    if e.preferred {
        headers.insert(
            "preference-applied",
            HeaderValue::from_static("respond-async"),
        );
    }
    if e.trigger == crate::store::queue::TRIGGER_API
        && let Ok(location) = HeaderValue::try_from(format!("/v1/projects/{}/runs/{id}", e.project))
    {
        headers.insert(axum::http::header::LOCATION, location);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Cancel a queued run (scope `runs:write`): a queued one at once (200,
/// `cancelled`), a running one within an epoch tick on whichever node runs
/// it (202, `running` with `cancel_requested`; its status becomes
/// `cancelled`). A finished run is 409 `run_finished`. Runs started
/// without `Prefer: respond-async` are not in the queue: they cannot be
/// cancelled (their caller holds them).
#[utoipa::path(post, path = "/v1/projects/{project}/runs/{id}/cancel", tag = "runs",
    security(("bearer" = [])),
    params(RunPath),
    responses((status = 200, body = CancelResult), (status = 202, body = CancelResult),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`run_finished`")))]
pub async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((project, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    check(&state, &principal, "runs:write", &project, None).await?;
    let (code, status, requested) = match state.queue.cancel(&project, &id).await? {
        Cancel::Cancelled => (StatusCode::OK, "cancelled", false),
        Cancel::Requested => (StatusCode::ACCEPTED, "running", true),
        Cancel::Finished(status) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "run_finished",
                format!("the run has finished already (`{status}`)"),
            ));
        }
        Cancel::NotFound => return Err(ApiError::not_found("no such run")),
    };
    tracing::info!(%project, run_id = %id, status, "run cancel asked");
    if !requested {
        // Cancelled before it ran: no attempt will settle it.
        crate::service::callbacks::settled(&state.service, &project, &id).await;
    }
    Ok((
        code,
        Json(CancelResult {
            id,
            status,
            cancel_requested: requested,
        }),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn prefer_is_parsed_as_rfc_7240_lists() {
        assert!(prefers_async(&headers(&[("prefer", "respond-async")])));
        assert!(prefers_async(&headers(&[(
            "prefer",
            "wait=10, Respond-Async"
        )])));
        assert!(prefers_async(&headers(&[
            ("prefer", "return=minimal"),
            ("prefer", "respond-async;x=1")
        ])));
        assert!(!prefers_async(&headers(&[("prefer", "return=minimal")])));
        assert!(!prefers_async(&headers(&[("prefer", "respond-asyncx")])));
        assert!(!prefers_async(&HeaderMap::new()));
    }

    #[test]
    fn idempotency_keys_are_bounded_visible_ascii() {
        assert_eq!(
            idempotency_key(&headers(&[("idempotency-key", "order-42")])).unwrap(),
            Some("order-42".into())
        );
        assert!(idempotency_key(&headers(&[("idempotency-key", "")])).is_err());
        assert!(idempotency_key(&headers(&[("idempotency-key", "a b")])).is_err());
        let long = "k".repeat(MAX_KEY_LEN + 1);
        let mut h = HeaderMap::new();
        h.insert("idempotency-key", HeaderValue::try_from(long).unwrap());
        assert!(idempotency_key(&h).is_err());
        assert_eq!(idempotency_key(&HeaderMap::new()).unwrap(), None);
    }
}
