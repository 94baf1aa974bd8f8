//! Platform auth: `Authorization: Bearer <API key or access token>` on every
//! `/v1` route, scopes and project restriction. Failures are audited (route,
//! key id when known, reason), never with the presented credential.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::store::platform::{Grant, Refusal};

/// The authenticated caller of a `/v1` route.
#[derive(Debug, Clone)]
pub struct Principal(pub Grant);

impl Principal {
    /// Whether the caller holds `scope` (`admin` holds every scope).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.iter().any(|s| s == scope || s == "admin")
    }

    /// 403 unless the caller holds `scope`.
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this credential lacks the `{scope}` scope"
            )))
        }
    }

    /// 403 unless the caller is an admin restricted to no project.
    pub fn require_global_admin(&self) -> Result<(), ApiError> {
        self.require("admin")?;
        if self.0.project.is_some() {
            return Err(ApiError::forbidden(
                "this needs an admin credential that is not restricted to a project",
            ));
        }
        Ok(())
    }

    /// Whether the caller may see `project` at all.
    pub fn may_see(&self, project: &str) -> bool {
        self.0.project.as_deref().is_none_or(|p| p == project)
    }
}

/// The bearer credential of a request, if the header is well formed.
fn bearer(parts: &Parts) -> Result<&str, &'static str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or("missing Authorization header")?;
    let value = value
        .to_str()
        .map_err(|_| "malformed Authorization header")?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("malformed Authorization header")?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err("Authorization is not a Bearer credential");
    }
    Ok(token.trim())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let outcome = match bearer(parts) {
            Ok(token) => state.platform.verify_bearer(token).await?,
            Err(reason) => Err(Refusal {
                key_id: None,
                reason,
            }),
        };
        match outcome {
            Ok(grant) => Ok(Principal(grant)),
            Err(refusal) => {
                audit_failure(state, parts.method.as_str(), parts.uri.path(), &refusal).await;
                Err(ApiError::unauthorized(
                    "missing, invalid, expired or revoked credential",
                ))
            }
        }
    }
}

/// Records a failed authentication (never the credential) and logs it.
pub async fn audit_failure(state: &AppState, method: &str, route: &str, refusal: &Refusal) {
    state.metrics.auth_failed(refusal.reason);
    tracing::warn!(
        method,
        route,
        key_id = refusal.key_id.as_deref().unwrap_or("-"),
        reason = refusal.reason,
        "authentication failed"
    );
    if let Err(e) = state.platform.record_failure(method, route, refusal).await {
        tracing::error!(error = %e, "cannot write the audit log");
    }
}
