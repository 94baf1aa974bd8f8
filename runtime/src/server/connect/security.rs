//! The hosted page's defences, in one place.
//!
//! - **Session cookie** (`airlock_connect`): random, HttpOnly (no script
//!   can read it), `SameSite=Lax` (not sent on cross-site POSTs), `Path=/connect`,
//!   `Secure` when the public URL is https. It stands for the connect token,
//!   which leaves the address bar at the first redirect.
//! - **CSRF token** on every form: HMAC-SHA256 keyed by the session cookie,
//!   so only a page that could read the cookie's session — ours — can
//!   produce it; compared in constant time. A POST the browser marks as
//!   from elsewhere (`Sec-Fetch-Site` other than `same-origin`, or another
//!   `Origin`) is refused before the token is looked at. (`Origin: null`
//!   is what our own form sends under `no-referrer`, so it is let through
//!   to the token check.)
//! - **Binding cookie** (`airlock_oauth`, `Path=/connect/oauth/callback`):
//!   set when a flow starts, its hash stored with the state. A callback
//!   arriving in a browser that did not start the flow (a code injected
//!   into someone else's session, RFC 6749 §10.12) fails the check.
//! - **Headers** on every page: `Referrer-Policy: no-referrer` (the
//!   provider and the operator's site never see our URLs), a CSP allowing
//!   only our stylesheet, forms posting only to us and the pages we
//!   redirect to, and `frame-ancestors` limited to the token's
//!   `allowed_origins` (`'none'` without any), so no other site can frame
//!   the page to trick a user into clicking through it.

use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

pub const SESSION_COOKIE: &str = "airlock_connect";
pub const BINDING_COOKIE: &str = "airlock_oauth";

const CSRF_DOMAIN: &[u8] = b"airlock:connect-csrf:v1";

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, `Secure` when asked.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        max_age.max(0)
    ))
    .expect("cookie values are base64url")
}

/// The CSRF token of a session.
pub fn csrf_token(session: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(session.as_bytes()).expect("any key length");
    mac.update(CSRF_DOMAIN);
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Whether `presented` is the session's CSRF token (constant time).
pub fn csrf_ok(session: &str, presented: Option<&str>) -> bool {
    let Some(presented) = presented else {
        return false;
    };
    csrf_token(session)
        .as_bytes()
        .ct_eq(presented.as_bytes())
        .into()
}

/// Whether a POST came from our own page, as far as the browser says:
/// `Sec-Fetch-Site` (when sent) must be `same-origin`, and an `Origin`
/// (when sent) must be ours. `Origin: null` says nothing: under our
/// `Referrer-Policy: no-referrer` browsers send exactly that on a form POST
/// of our own page, so it cannot be told from a sandboxed frame's. The
/// CSRF token decides then.
pub fn same_origin(headers: &HeaderMap, ours: &str) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let site_ok =
        text(HeaderName::from_static("sec-fetch-site")).is_none_or(|s| s == "same-origin");
    let origin_ok = text(header::ORIGIN).is_none_or(|o| o == "null" || o == ours);
    site_ok && origin_ok
}

/// The CSP of a page: our stylesheet, forms to us and `form_targets`,
/// framed only by `frame_origins`.
pub fn csp(form_targets: &[String], frame_origins: &[String]) -> String {
    let mut form = vec!["'self'".to_owned()];
    form.extend(form_targets.iter().cloned());
    form.dedup();
    let frames = if frame_origins.is_empty() {
        "'none'".to_owned()
    } else {
        frame_origins.join(" ")
    };
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action {}; \
         base-uri 'none'; frame-ancestors {frames}",
        form.join(" ")
    )
}

/// Adds the page headers to `response`.
pub fn harden(response: &mut Response, csp: &str) {
    let h = response.headers_mut();
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(HeaderName::from_static("content-security-policy"), v);
    }
}

/// The CSP source of a URL's origin (`https://host:port`), or `https:`
/// when its host comes from a custom field and is not known yet.
pub fn origin_source(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_are_per_session_and_checked() {
        let t = csrf_token("session-a");
        assert!(csrf_ok("session-a", Some(&t)));
        assert!(!csrf_ok("session-b", Some(&t)));
        assert!(!csrf_ok("session-a", None));
        assert!(!csrf_ok("session-a", Some("")));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; airlock_connect=xyz; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, BINDING_COOKIE), None);
    }

    #[test]
    fn posts_from_elsewhere_are_told_apart() {
        let ours = "http://127.0.0.1:8080";
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
            }
            same_origin(&h, ours)
        };
        assert!(with(&[]));
        assert!(with(&[("origin", "http://127.0.0.1:8080")]));
        // Our own form under `Referrer-Policy: no-referrer`, as Chromium sends it.
        assert!(with(&[
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ]));
        assert!(!with(&[
            ("origin", "null"),
            ("sec-fetch-site", "cross-site")
        ]));
        assert!(!with(&[("origin", "https://evil.example")]));
        assert!(!with(&[("sec-fetch-site", "same-site")]));
        assert!(!with(&[
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "same-origin")
        ]));
    }

    #[test]
    fn frame_ancestors_default_to_none() {
        assert!(csp(&[], &[]).contains("frame-ancestors 'none'"));
        let c = csp(
            &["https://idp.example".into()],
            &["https://app.example".into()],
        );
        assert!(c.contains("form-action 'self' https://idp.example;"), "{c}");
        assert!(c.ends_with("frame-ancestors https://app.example"), "{c}");
    }
}
