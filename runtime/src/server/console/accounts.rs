//! Connected accounts in the console: a project's accounts by end user,
//! with their app, health (`needs_reauth` when the provider refused a
//! refresh) and dates — never a credential. The API's own handler lists
//! them, with `include_credentials` always off, so the console cannot show
//! what `accounts:credentials` guards even to a key that holds it.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::pages::refused;
use super::session::Operator;
use super::views::{self, Nav};
use crate::server::AppState;
use crate::server::accounts::{self, ListParams};
use crate::server::error::ApiPath;

/// The one filter of the page.
#[derive(Debug, Default, Deserialize)]
pub struct AccountsQuery {
    user: Option<String>,
}

/// `GET /console/projects/{project}/accounts` (scope `accounts:read`).
pub async fn list(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(project): ApiPath<String>,
    query: Result<Query<AccountsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let user = query
        .ok()
        .and_then(|Query(q)| q.user)
        .filter(|u| !u.trim().is_empty());
    let params = ListParams {
        app: None,
        external_user_id: user.clone(),
        include_credentials: Some(false),
        unused_since: None,
    };
    let listed = accounts::list(
        State(state),
        operator.principal.clone(),
        ApiPath(project.clone()),
        Ok(Query(params)),
    )
    .await;
    let Json(list) = match listed {
        Ok(l) => l,
        Err(e) => return refused(&e),
    };
    let mut rows: Vec<views::AccountRow> = list
        .accounts
        .into_iter()
        .map(|a| views::AccountRow {
            user: a.external_user_id,
            id: a.id,
            app: a.app,
            health: serde_json::to_value(a.health)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            updated: a.updated_at.to_string(),
            expires: a.expires_at.map(|t| t.to_string()).unwrap_or_default(),
            last_used: a
                .last_used_at
                .map_or_else(|| "never".to_owned(), |t| t.to_string()),
        })
        .collect();
    // Grouped by end user; newest first within each (the API's order).
    rows.sort_by(|a, b| a.user.cmp(&b.user));
    views::html(
        StatusCode::OK,
        &views::AccountsPage {
            nav: Nav::new(Some(&project), &operator),
            user: user.unwrap_or_default(),
            accounts: rows,
        },
    )
}
