//! The client's errors: an answer that is an error, no answer at all, or an
//! answer the API does not document.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

/// An error answer of the server: `{"error": {"code": "...", "message": "..."}}`
/// with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({status})")]
pub struct ApiError {
    pub status: StatusCode,
    /// The server's stable code (`bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `rate_limited`, `internal`, …); `None` when
    /// the body was not the API's error shape (e.g. a proxy's error page).
    pub code: Option<String>,
    /// The server's message for people (or, without the API's shape, the
    /// status's reason).
    pub message: String,
    /// `Retry-After`, for 429 and 503 answers that carry it.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// Whether the request itself was at fault (4xx).
    pub fn is_client_error(&self) -> bool {
        self.status.is_client_error()
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error status.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// No answer: nothing listens there, DNS or TLS failed, the connection
    /// broke or timed out.
    #[error("cannot reach {server}: {source}")]
    Connect {
        server: String,
        #[source]
        source: reqwest::Error,
    },
    /// An answer, but not one the API documents (a body that does not parse).
    #[error("unexpected answer from {server} ({status}): {detail}")]
    UnexpectedResponse {
        server: String,
        status: StatusCode,
        detail: String,
    },
    /// A run's log stream ended wrongly: it kept breaking before the run
    /// ended, or sent an event the API does not document.
    #[error("the log stream from {server}: {detail}")]
    Stream { server: String, detail: String },
    /// The server URL is not an `http://` or `https://` base URL.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// An argument that cannot be sent (a name or id of `..`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The HTTP client could not be set up (TLS roots, provider).
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

impl Error {
    /// The server's error, when it answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api(e) => Some(e.status),
            Error::UnexpectedResponse { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorBody {
    /// The API's shape.
    Api { error: ErrorDetail },
    /// RFC 6749 §5.2, which a token endpoint answers with.
    OAuth {
        error: String,
        error_description: Option<String>,
    },
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// The [`ApiError`] of an answer with the API's own error shape, `None`
/// for any other body (an upstream's, through the proxy).
pub(crate) fn api_error_shaped(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Option<ApiError> {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody::Api { error }) => Some(ApiError {
            status,
            code: Some(error.code),
            message: error.message,
            retry_after,
        }),
        _ => None,
    }
}

/// Longest message kept from an error body that is not the API's shape.
const MAX_FOREIGN_MESSAGE: usize = 200;

/// The [`ApiError`] of an error answer.
pub(crate) fn api_error(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> ApiError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody::Api { error }) => ApiError {
            status,
            code: Some(error.code),
            message: error.message,
            retry_after,
        },
        Ok(ErrorBody::OAuth {
            error,
            error_description,
        }) => ApiError {
            status,
            message: error_description.unwrap_or_else(|| error.clone()),
            code: Some(error),
            retry_after,
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let message = if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_owned()
            } else {
                text.chars().take(MAX_FOREIGN_MESSAGE).collect()
            };
            ApiError {
                status,
                code: None,
                message,
                retry_after,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_shape_gives_code_and_message() {
        let e = api_error(
            StatusCode::NOT_FOUND,
            None,
            br#"{"error":{"code":"not_found","message":"no step `x`"}}"#,
        );
        assert_eq!(e.code.as_deref(), Some("not_found"));
        assert_eq!(e.message, "no step `x`");
        assert_eq!(e.to_string(), "no step `x` (404 Not Found)");
    }

    #[test]
    fn a_token_endpoints_rfc6749_error_gives_code_and_description() {
        let e = api_error(
            StatusCode::UNAUTHORIZED,
            None,
            br#"{"error":"invalid_client","error_description":"unknown client"}"#,
        );
        assert_eq!(e.code.as_deref(), Some("invalid_client"));
        assert_eq!(e.message, "unknown client");
    }

    #[test]
    fn another_shape_keeps_a_bounded_message_and_no_code() {
        let e = api_error(StatusCode::BAD_GATEWAY, None, b"<html>bad gateway</html>");
        assert_eq!(e.code, None);
        assert_eq!(e.message, "<html>bad gateway</html>");
        let e = api_error(StatusCode::BAD_GATEWAY, None, &[b'x'; 5000]);
        assert_eq!(e.message.len(), MAX_FOREIGN_MESSAGE);
        let e = api_error(StatusCode::SERVICE_UNAVAILABLE, None, b"");
        assert_eq!(e.message, "Service Unavailable");
    }
}
