//! `GET /v1/audit`: failed authentications, newest first (scope `admin`, not
//! restricted to a project). Entries never hold the presented credential.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::time::Timestamp;

/// One failed authentication.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub at: Timestamp,
    pub method: String,
    pub route: String,
    /// The API key id or OAuth client id, when the credential named one.
    pub key_id: Option<String>,
    pub reason: String,
}

/// The audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub entries: Vec<AuditView>,
}

/// The newest 1000 failed authentications.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<AuditList>, ApiError> {
    principal.require_global_admin()?;
    let entries = state
        .platform
        .list_audit(1000)
        .await?
        .into_iter()
        .map(|e| AuditView {
            id: e.id,
            at: Timestamp::from_unix_secs(e.at),
            method: e.method,
            route: e.route,
            key_id: e.key_id,
            reason: e.reason,
        })
        .collect();
    Ok(Json(AuditList { entries }))
}
