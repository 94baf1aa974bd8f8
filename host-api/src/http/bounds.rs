//! Size bounds on a request as the caller built it, checked before any part
//! of it reaches an HTTP library.
//!
//! Why: the `http` crate panics when a header map outgrows its capacity
//! (~32k entries) and hyper allocates for whatever it is given. A guest
//! controls every field of its request, so each size is bounded here first,
//! at the one entry to the pipeline that `http.send`, the proxy and
//! `wasi:http` share, and an oversized request is a `too-large` error the
//! guest can read — never a panic in the host.
//!
//! The bounds are generous for real APIs (browsers and servers commonly cap
//! a header block at 8–64 KiB and a URL at 8 KiB).

use super::pipeline::{Credential, HttpError, OutboundRequest};

/// Most headers one request may carry.
pub const MAX_HEADERS: usize = 100;
/// Longest header name.
pub const MAX_HEADER_NAME_BYTES: usize = 256;
/// Longest header value.
pub const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;
/// All header names and values of one request together.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Longest URL.
pub const MAX_URL_BYTES: usize = 8 * 1024;
/// Longest method name (the allowed ones are at most 7 bytes).
const MAX_METHOD_BYTES: usize = 16;

/// Refuses a request whose method, URL, headers or credential names are
/// over the bounds above. The message names the bound, never the content.
pub fn check(request: &OutboundRequest) -> Result<(), HttpError> {
    let too_large = |what: String| Err(HttpError::TooLarge(what));
    if request.method.len() > MAX_METHOD_BYTES {
        return Err(HttpError::InvalidRequest(format!(
            "a method of {} bytes is not an HTTP method",
            request.method.len()
        )));
    }
    if request.url.len() > MAX_URL_BYTES {
        return too_large(format!(
            "a URL of {} bytes exceeds the cap of {MAX_URL_BYTES} bytes",
            request.url.len()
        ));
    }
    if request.headers.len() > MAX_HEADERS {
        return too_large(format!(
            "{} headers exceed the cap of {MAX_HEADERS} headers",
            request.headers.len()
        ));
    }
    let mut total = 0usize;
    for (i, (name, value)) in request.headers.iter().enumerate() {
        if name.len() > MAX_HEADER_NAME_BYTES {
            return too_large(format!(
                "header #{} has a name of {} bytes, over the cap of {MAX_HEADER_NAME_BYTES} bytes",
                i + 1,
                name.len()
            ));
        }
        if value.len() > MAX_HEADER_VALUE_BYTES {
            return too_large(format!(
                "header {name:?} has a value of {} bytes, over the cap of {MAX_HEADER_VALUE_BYTES} bytes",
                value.len()
            ));
        }
        total += name.len() + value.len();
    }
    if total > MAX_HEADER_BYTES {
        return too_large(format!(
            "headers of {total} bytes in all exceed the cap of {MAX_HEADER_BYTES} bytes"
        ));
    }
    let (name, what) = match &request.credential {
        Some(Credential::Account(id)) => (id.as_str(), "account"),
        Some(Credential::Basic { username, .. }) => (username.as_str(), "basic username"),
        Some(Credential::Header { name, .. }) => (name.as_str(), "credential header name"),
        Some(Credential::Query { name, .. }) => (name.as_str(), "credential query parameter"),
        Some(Credential::Digest { username, .. }) => (username.as_str(), "digest username"),
        // Checked field by field by the signer before use.
        Some(Credential::AwsSigV4(_)) | Some(Credential::Bearer(_)) | None => ("", ""),
    };
    if name.len() > MAX_HEADER_NAME_BYTES {
        return too_large(format!(
            "the {what} of {} bytes exceeds the cap of {MAX_HEADER_NAME_BYTES} bytes",
            name.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: Vec<(String, String)>, url: String) -> OutboundRequest {
        OutboundRequest {
            method: "GET".into(),
            url,
            headers,
            body: Vec::new(),
            timeout: None,
            credential: None,
        }
    }

    fn url() -> String {
        "https://api.example.com/".into()
    }

    #[test]
    fn each_bound_is_a_too_large_error_naming_it() {
        let many = (0..25_000)
            .map(|i| (format!("x-h{i}"), "v".into()))
            .collect();
        let e = check(&request(many, url())).unwrap_err();
        assert!(
            matches!(&e, HttpError::TooLarge(m) if m.contains("25000 headers")),
            "{e}"
        );

        let long_value = vec![("x-a".into(), "v".repeat(MAX_HEADER_VALUE_BYTES + 1))];
        let e = check(&request(long_value, url())).unwrap_err();
        assert!(
            matches!(&e, HttpError::TooLarge(m) if m.contains("\"x-a\"")),
            "{e}"
        );

        let long_name = vec![("n".repeat(MAX_HEADER_NAME_BYTES + 1), "v".into())];
        assert!(matches!(
            check(&request(long_name, url())),
            Err(HttpError::TooLarge(_))
        ));

        let total = (0..10)
            .map(|i| (format!("x-{i}"), "v".repeat(MAX_HEADER_VALUE_BYTES)))
            .collect();
        let e = check(&request(total, url())).unwrap_err();
        assert!(
            matches!(&e, HttpError::TooLarge(m) if m.contains("in all")),
            "{e}"
        );

        let long_url = format!("https://a.example/{}", "p".repeat(MAX_URL_BYTES));
        let e = check(&request(Vec::new(), long_url)).unwrap_err();
        assert!(
            matches!(&e, HttpError::TooLarge(m) if m.contains("URL")),
            "{e}"
        );

        let mut r = request(Vec::new(), url());
        r.method = "G".repeat(1 << 20);
        assert!(matches!(check(&r), Err(HttpError::InvalidRequest(_))));
    }

    #[test]
    fn requests_at_the_bounds_pass() {
        let headers = (0..MAX_HEADERS)
            .map(|i| (format!("x-{i:03}"), "v".repeat(600)))
            .collect();
        check(&request(headers, url())).unwrap();
    }
}
