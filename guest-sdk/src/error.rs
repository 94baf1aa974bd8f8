use serde::Serialize;

/// The error a step returns: a message, an optional machine-readable code
/// and optional JSON details. It reaches the caller as
/// `{"message": ..., "code": ..., "details": ...}`.
///
/// Any `std::error::Error` converts into it, so `?` works on most results.
#[derive(Debug, Clone, Serialize)]
pub struct Error {
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    retryable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
}

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: None,
            details: None,
            retryable: false,
            retry_after_ms: None,
        }
    }

    /// Adds a machine-readable code, e.g. `"not_found"`.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: impl Serialize) -> Self {
        self.details = serde_json::to_value(details).ok();
        self
    }

    /// Marks the failure as temporary: when the step's manifest has a
    /// `[retry]` policy retrying `"error"`, a queued run is tried again
    /// after its backoff. Errors are not retried unless marked.
    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// Marks the failure as temporary and asks for the next attempt no
    /// sooner than `after` (still within the policy's `max_ms`).
    pub fn retry_after(mut self, after: std::time::Duration) -> Self {
        self.retryable = true;
        self.retry_after_ms = Some(u64::try_from(after.as_millis()).unwrap_or(u64::MAX));
        self
    }

    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The JSON text the host receives.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| format!(r#"{{"message":{:?}}}"#, self.message))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} ({code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Self {
        Self::new(e.to_string())
    }
}
