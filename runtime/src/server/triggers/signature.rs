//! Webhook signature schemes of HTTP triggers: how a trigger proves a
//! request came from its sender before anything runs.
//!
//! | kind | header | signed bytes | MAC, encoding |
//! | --- | --- | --- | --- |
//! | `hmac-sha256` (GitHub) | configurable | body | HMAC-SHA256, `prefix` + hex |
//! | `stripe` | `Stripe-Signature` | `{t}.{body}` | HMAC-SHA256, hex (`v1=`) |
//! | `twilio` | `X-Twilio-Signature` | full URL + sorted POST params | HMAC-SHA1, base64 |
//! | `slack` | `X-Slack-Signature` | `v0:{timestamp}:{body}` | HMAC-SHA256, `v0=` + hex |
//! | `shopify` | `X-Shopify-Hmac-Sha256` | body | HMAC-SHA256, base64 |
//! | `hmac` | configurable | a template of `{body}` and `{timestamp}` | SHA-1/256/512, hex or base64 |
//!
//! Security decisions:
//! - Every comparison of a MAC is constant-time ([`subtle`]); a signature
//!   that does not decode is refused without comparing.
//! - A scheme with a timestamp checks it against the host's clock (Slack:
//!   its documented 5 minutes) *and* signs it, so a captured request cannot
//!   be replayed later with a fresh timestamp. The generic scheme therefore
//!   refuses a `timestamp_header` whose value the template does not sign.
//! - Twilio signs the URL it called, which the host cannot know behind a
//!   proxy: the trigger names its public `base_url` rather than trusting
//!   the request's `Host` or `X-Forwarded-*` headers.
//! - Errors name the header and the rule broken, never a value: the
//!   signing secret is never logged or returned, and neither is a
//!   signature.
//! - Every configurable size is bounded at create time (template, prefix),
//!   and a template signs the body at most once, so a request cannot make
//!   the host hash more than its own (1 MiB) body.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};
use subtle::ConstantTimeEq as _;
use utoipa::ToSchema;

use axum::http::{HeaderMap, HeaderName};

/// Default tolerance of a timestamp, in seconds.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;
/// Slack's documented window: a request more than 5 minutes from the
/// host's clock is refused (a replay).
pub const SLACK_TOLERANCE_SECS: u64 = 300;
/// Longest generic `signed` template.
const MAX_TEMPLATE_LEN: usize = 256;
/// Longest `prefix`.
const MAX_PREFIX_LEN: usize = 64;
/// Longest Twilio `base_url`.
const MAX_BASE_URL_LEN: usize = 2048;
/// Largest tolerance, in seconds (one day): a longer window is no replay
/// protection at all.
const MAX_TOLERANCE_SECS: u64 = 86_400;

/// Request headers that never reach the step (plus the signature header).
pub(super) const DROPPED_REQUEST_HEADERS: &[&str] =
    &["authorization", "proxy-authorization", "cookie"];

fn default_header() -> String {
    "X-Hub-Signature-256".to_owned()
}

fn default_prefix() -> String {
    "sha256=".to_owned()
}

fn default_tolerance() -> u64 {
    DEFAULT_TOLERANCE_SECS
}

fn default_template() -> String {
    "{body}".to_owned()
}

/// The hash of a generic HMAC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

/// How a generic HMAC's bytes are written in its header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Lowercase or uppercase hex.
    #[default]
    Hex,
    /// Standard base64 with padding.
    Base64,
}

/// How a trigger's requests are signed. `secret` names a secret of the
/// project; its value is never shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum SignatureSpec {
    /// `header` = `prefix` + hex(HMAC-SHA256(secret, raw body)) (GitHub style).
    #[serde(rename = "hmac-sha256")]
    HmacSha256 {
        /// A secret of the project.
        #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")]
        secret: String,
        /// Default `X-Hub-Signature-256`; a header name other than
        /// `authorization`, `proxy-authorization` and `cookie` (which never
        /// reach a trigger).
        #[serde(default = "default_header")]
        #[schema(pattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
        header: String,
        /// Default `sha256=`.
        #[serde(default = "default_prefix")]
        prefix: String,
    },
    /// `Stripe-Signature: t=<unix>,v1=<hex>`: HMAC-SHA256 over `"{t}.{body}"`.
    #[serde(rename = "stripe")]
    Stripe {
        /// A secret of the project.
        #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")]
        secret: String,
        /// Largest |now − t|, in seconds (default 300, at most 86400).
        #[serde(default = "default_tolerance")]
        tolerance_secs: u64,
    },
    /// `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + each POST
    /// parameter's name and value, sorted by name)). The URL is `base_url`
    /// followed by the request's path and query (`/t/{id}…?…`). A request
    /// whose URL carries `bodySHA256` (Twilio's JSON webhooks) signs the URL
    /// alone, and the body must hash to it.
    #[serde(rename = "twilio")]
    Twilio {
        /// A secret of the project holding the account's auth token.
        #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")]
        secret: String,
        /// The scheme and host Twilio calls, as configured there (e.g.
        /// `https://hooks.example.com`), with any path prefix a proxy strips.
        #[schema(example = "https://hooks.example.com")]
        base_url: String,
    },
    /// `X-Slack-Signature: v0=<hex>`: HMAC-SHA256 over
    /// `"v0:{X-Slack-Request-Timestamp}:{body}"`; the timestamp must be
    /// within 5 minutes of the host's clock.
    #[serde(rename = "slack")]
    Slack {
        /// A secret of the project holding the app's signing secret.
        #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")]
        secret: String,
    },
    /// `X-Shopify-Hmac-Sha256`: base64(HMAC-SHA256(secret, raw body)).
    #[serde(rename = "shopify")]
    Shopify {
        /// A secret of the project holding the app's client secret.
        #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")]
        secret: String,
    },
    /// A configurable HMAC: `header` = `prefix` + encode(HMAC-`algorithm`(
    /// secret, `signed`)), where `signed` is a template of `{body}` (the raw
    /// body, exactly once) and `{timestamp}` (the value of
    /// `timestamp_header`, unix seconds within `tolerance_secs`).
    #[serde(rename = "hmac")]
    Hmac {
        /// A secret of the project.
        #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")]
        secret: String,
        /// Default `sha256`.
        #[serde(default)]
        algorithm: Algorithm,
        /// The header carrying the signature (not `authorization`,
        /// `proxy-authorization` or `cookie`).
        #[schema(pattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
        header: String,
        /// Default `hex`.
        #[serde(default)]
        encoding: Encoding,
        /// Text before the encoded MAC (default none; at most 64 bytes).
        #[serde(default)]
        prefix: String,
        /// What is signed (default `{body}`; at most 256 bytes); any other
        /// text is literal, and `{` may only open a placeholder.
        #[serde(default = "default_template")]
        #[schema(example = "{timestamp}.{body}")]
        signed: String,
        /// The header carrying the timestamp; required exactly when
        /// `signed` holds `{timestamp}`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(pattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
        timestamp_header: Option<String>,
        /// Largest |now − timestamp|, in seconds (default 300, at most 86400).
        #[serde(default = "default_tolerance")]
        tolerance_secs: u64,
    },
}

/// Why signature settings were refused at create time. Names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature.{field}: {problem}")]
pub struct SpecError {
    pub field: &'static str,
    pub problem: String,
}

fn spec_error(field: &'static str, problem: impl Into<String>) -> SpecError {
    SpecError {
        field,
        problem: problem.into(),
    }
}

/// Why a request's signature was refused. Names headers and rules, never
/// a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no `{0}` header")]
    Missing(String),
    #[error("the `{0}` header is malformed")]
    Malformed(String),
    #[error("the `{0}` header's signature does not match")]
    Mismatch(String),
    #[error("the request's timestamp is more than {0} s from the server's clock")]
    Stale(u64),
    #[error("the body does not match the URL's `bodySHA256`")]
    BodyHash,
}

/// What a signature is checked against.
pub struct Signed<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The request's path and query as received (`/t/{id}…?…`).
    pub path_and_query: &'a str,
    /// The host's clock, unix seconds.
    pub now: i64,
}

fn header_name(field: &'static str, name: &str) -> Result<(), SpecError> {
    let name = HeaderName::try_from(name).map_err(|_| spec_error(field, "not a header name"))?;
    if DROPPED_REQUEST_HEADERS.contains(&name.as_str()) {
        return Err(spec_error(field, "this header never reaches a trigger"));
    }
    Ok(())
}

fn tolerance(secs: u64) -> Result<(), SpecError> {
    if secs > MAX_TOLERANCE_SECS {
        return Err(spec_error(
            "tolerance_secs",
            format!("at most {MAX_TOLERANCE_SECS}"),
        ));
    }
    Ok(())
}

fn prefix(text: &str) -> Result<(), SpecError> {
    if text.len() > MAX_PREFIX_LEN {
        return Err(spec_error(
            "prefix",
            format!("at most {MAX_PREFIX_LEN} bytes"),
        ));
    }
    Ok(())
}

/// One piece of a generic template.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Body,
    Timestamp,
}

/// The pieces of a `signed` template; refuses an unknown placeholder.
fn pieces(template: &str) -> Result<Vec<Piece<'_>>, SpecError> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        if at > 0 {
            out.push(Piece::Text(&rest[..at]));
        }
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{body}") {
            out.push(Piece::Body);
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{timestamp}") {
            out.push(Piece::Timestamp);
            rest = after;
        } else {
            return Err(spec_error(
                "signed",
                "`{` opens no placeholder (only `{body}` and `{timestamp}` are known)",
            ));
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

impl SignatureSpec {
    /// The project secret that keys it.
    pub fn secret(&self) -> &str {
        match self {
            Self::HmacSha256 { secret, .. }
            | Self::Stripe { secret, .. }
            | Self::Twilio { secret, .. }
            | Self::Slack { secret }
            | Self::Shopify { secret }
            | Self::Hmac { secret, .. } => secret,
        }
    }

    /// The header that carries the signature (lowercase); the step never
    /// sees it.
    pub fn header(&self) -> String {
        match self {
            Self::HmacSha256 { header, .. } | Self::Hmac { header, .. } => {
                header.to_ascii_lowercase()
            }
            Self::Stripe { .. } => "stripe-signature".to_owned(),
            Self::Twilio { .. } => "x-twilio-signature".to_owned(),
            Self::Slack { .. } => "x-slack-signature".to_owned(),
            Self::Shopify { .. } => "x-shopify-hmac-sha256".to_owned(),
        }
    }

    /// Checks the settings a client sent (the secret's name is checked by
    /// the caller, against the store's rules).
    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            Self::HmacSha256 {
                header, prefix: p, ..
            } => {
                header_name("header", header)?;
                prefix(p)
            }
            Self::Stripe { tolerance_secs, .. } => tolerance(*tolerance_secs),
            Self::Twilio { base_url, .. } => {
                if base_url.len() > MAX_BASE_URL_LEN {
                    return Err(spec_error(
                        "base_url",
                        format!("at most {MAX_BASE_URL_LEN} bytes"),
                    ));
                }
                let url = url::Url::parse(base_url)
                    .map_err(|e| spec_error("base_url", format!("not a URL ({e})")))?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(spec_error("base_url", "needs http(s)://host"));
                }
                if url.query().is_some() || url.fragment().is_some() {
                    return Err(spec_error("base_url", "no query or fragment"));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(spec_error("base_url", "no user or password"));
                }
                Ok(())
            }
            Self::Slack { .. } | Self::Shopify { .. } => Ok(()),
            Self::Hmac {
                header,
                prefix: p,
                signed,
                timestamp_header,
                tolerance_secs,
                ..
            } => {
                header_name("header", header)?;
                prefix(p)?;
                tolerance(*tolerance_secs)?;
                if signed.len() > MAX_TEMPLATE_LEN {
                    return Err(spec_error(
                        "signed",
                        format!("at most {MAX_TEMPLATE_LEN} bytes"),
                    ));
                }
                let pieces = pieces(signed)?;
                let count = |p: Piece<'_>| pieces.iter().filter(|x| **x == p).count();
                if count(Piece::Body) != 1 {
                    return Err(spec_error("signed", "needs `{body}` exactly once"));
                }
                match (count(Piece::Timestamp), timestamp_header) {
                    (0, None) => Ok(()),
                    (1, Some(name)) => {
                        header_name("timestamp_header", name)?;
                        if name.eq_ignore_ascii_case(header) {
                            return Err(spec_error(
                                "timestamp_header",
                                "must differ from `header`",
                            ));
                        }
                        Ok(())
                    }
                    (0, Some(_)) => Err(spec_error(
                        "signed",
                        "needs `{timestamp}` when `timestamp_header` is set \
                         (an unsigned timestamp does not stop replays)",
                    )),
                    (1, None) => Err(spec_error(
                        "timestamp_header",
                        "required when `signed` holds `{timestamp}`",
                    )),
                    _ => Err(spec_error("signed", "`{timestamp}` at most once")),
                }
            }
        }
    }

    /// Whether the request carries a valid signature under `key`.
    pub fn verify(&self, key: &[u8], request: &Signed<'_>) -> Result<(), SignatureError> {
        let header = self.header();
        let value = header_text(request.headers, &header)?;
        match self {
            Self::HmacSha256 { prefix, .. } => {
                let given = value
                    .trim()
                    .strip_prefix(prefix.as_str())
                    .ok_or_else(|| SignatureError::Malformed(header.clone()))?;
                let expected = mac(Algorithm::Sha256, key, &[request.body]);
                compare(&expected, decode(Encoding::Hex, given, &header)?, &header)
            }
            Self::Stripe { tolerance_secs, .. } => {
                let mut timestamp: Option<&str> = None;
                let mut candidates = Vec::new();
                for item in value.split(',') {
                    match item.trim().split_once('=') {
                        Some(("t", t)) => timestamp = Some(t),
                        Some(("v1", sig)) => candidates.push(sig),
                        _ => {}
                    }
                }
                let t = timestamp.ok_or_else(|| SignatureError::Malformed(header.clone()))?;
                fresh(t, *tolerance_secs, request.now, &header)?;
                let expected = mac(Algorithm::Sha256, key, &[t.as_bytes(), b".", request.body]);
                // Every candidate is compared (a rotation sends two).
                let mut ok = subtle::Choice::from(0);
                for sig in candidates {
                    if let Ok(given) = hex::decode(sig) {
                        ok |= expected.as_slice().ct_eq(given.as_slice());
                    }
                }
                if bool::from(ok) {
                    Ok(())
                } else {
                    Err(SignatureError::Mismatch(header))
                }
            }
            Self::Twilio { base_url, .. } => {
                let url = format!(
                    "{}{}",
                    base_url.trim_end_matches('/'),
                    request.path_and_query
                );
                let expected = twilio(key, &url, request)?;
                compare(
                    &expected,
                    decode(Encoding::Base64, value.trim(), &header)?,
                    &header,
                )
            }
            Self::Slack { .. } => {
                let t = header_text(request.headers, "x-slack-request-timestamp")?;
                fresh(
                    t,
                    SLACK_TOLERANCE_SECS,
                    request.now,
                    "x-slack-request-timestamp",
                )?;
                let given = value
                    .trim()
                    .strip_prefix("v0=")
                    .ok_or_else(|| SignatureError::Malformed(header.clone()))?;
                let expected = mac(
                    Algorithm::Sha256,
                    key,
                    &[b"v0:", t.as_bytes(), b":", request.body],
                );
                compare(&expected, decode(Encoding::Hex, given, &header)?, &header)
            }
            Self::Shopify { .. } => {
                let expected = mac(Algorithm::Sha256, key, &[request.body]);
                compare(
                    &expected,
                    decode(Encoding::Base64, value.trim(), &header)?,
                    &header,
                )
            }
            Self::Hmac {
                algorithm,
                encoding,
                prefix,
                signed,
                timestamp_header,
                tolerance_secs,
                ..
            } => {
                let timestamp = match timestamp_header {
                    Some(name) => {
                        let name = name.to_ascii_lowercase();
                        let t = header_text(request.headers, &name)?;
                        fresh(t, *tolerance_secs, request.now, &name)?;
                        Some(t)
                    }
                    None => None,
                };
                // Checked at create time; a stored template that no longer
                // parses refuses every request.
                let pieces =
                    pieces(signed).map_err(|_| SignatureError::Mismatch(header.clone()))?;
                let mut parts: Vec<&[u8]> = Vec::with_capacity(pieces.len());
                for piece in &pieces {
                    parts.push(match piece {
                        Piece::Text(t) => t.as_bytes(),
                        Piece::Body => request.body,
                        Piece::Timestamp => timestamp
                            .ok_or_else(|| SignatureError::Mismatch(header.clone()))?
                            .as_bytes(),
                    });
                }
                let given = value
                    .trim()
                    .strip_prefix(prefix.as_str())
                    .ok_or_else(|| SignatureError::Malformed(header.clone()))?;
                let expected = mac(*algorithm, key, &parts);
                compare(&expected, decode(*encoding, given, &header)?, &header)
            }
        }
    }
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, SignatureError> {
    let value = headers
        .get(name)
        .ok_or_else(|| SignatureError::Missing(name.to_owned()))?;
    value
        .to_str()
        .map_err(|_| SignatureError::Malformed(name.to_owned()))
}

/// A timestamp of unix seconds within `tolerance` of `now`.
fn fresh(t: &str, tolerance: u64, now: i64, header: &str) -> Result<(), SignatureError> {
    let at = t
        .trim()
        .parse::<i64>()
        .map_err(|_| SignatureError::Malformed(header.to_owned()))?;
    if now.abs_diff(at) > tolerance {
        return Err(SignatureError::Stale(tolerance));
    }
    Ok(())
}

fn decode(encoding: Encoding, text: &str, header: &str) -> Result<Vec<u8>, SignatureError> {
    let decoded = match encoding {
        Encoding::Hex => hex::decode(text).ok(),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.decode(text).ok(),
    };
    decoded.ok_or_else(|| SignatureError::Malformed(header.to_owned()))
}

/// Constant-time equality of the expected and the given MAC.
fn compare(expected: &[u8], given: Vec<u8>, header: &str) -> Result<(), SignatureError> {
    if bool::from(expected.ct_eq(given.as_slice())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch(header.to_owned()))
    }
}

/// HMAC of the concatenation of `parts`.
pub(super) fn mac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha1 => run::<Hmac<Sha1>>(key, parts),
        Algorithm::Sha256 => run::<Hmac<Sha256>>(key, parts),
        Algorithm::Sha512 => run::<Hmac<Sha512>>(key, parts),
    }
}

/// Twilio's MAC of a request to `url` (the full URL it called).
fn twilio(key: &[u8], url: &str, request: &Signed<'_>) -> Result<Vec<u8>, SignatureError> {
    let query = request
        .path_and_query
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("");
    let body_hash = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v.into_owned());
    if let Some(given) = body_hash {
        // JSON (and other non-form) webhooks: the URL is signed, and it
        // carries the body's hash.
        let actual = hex::encode(Sha256::digest(request.body));
        if !bool::from(
            actual
                .as_bytes()
                .ct_eq(given.to_ascii_lowercase().as_bytes()),
        ) {
            return Err(SignatureError::BodyHash);
        }
        return Ok(mac(Algorithm::Sha1, key, &[url.as_bytes()]));
    }
    let form = request
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    let mut params: Vec<(String, String)> = if form {
        form_urlencoded::parse(request.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    } else {
        Vec::new()
    };
    // Twilio sorts by name (byte order); repeated names by value, as its
    // helper libraries do.
    params.sort();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * params.len());
    parts.push(url.as_bytes());
    for (k, v) in &params {
        parts.push(k.as_bytes());
        parts.push(v.as_bytes());
    }
    Ok(mac(Algorithm::Sha1, key, &parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::try_from(*k).unwrap(),
                HeaderValue::try_from(*v).unwrap(),
            );
        }
        h
    }

    fn check(
        spec: &SignatureSpec,
        key: &str,
        h: &HeaderMap,
        body: &str,
        path: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        spec.verify(
            key.as_bytes(),
            &Signed {
                headers: h,
                body: body.as_bytes(),
                path_and_query: path,
                now,
            },
        )
    }

    /// Twilio's documented example (the security page and the helper
    /// libraries' docs: auth token `12345`, this URL and these POST
    /// parameters). Both published variants, which differ in the caller's
    /// number, also checked with Python's `hmac`:
    /// `base64(hmac.new(b"12345", url + "".join(k + v for k, v in
    /// sorted(params)), sha1).digest())`.
    #[test]
    fn twilio_matches_its_documented_examples() {
        let spec = SignatureSpec::Twilio {
            secret: "t".into(),
            base_url: "https://mycompany.com".into(),
        };
        let path = "/myapp.php?foo=1&bar=2";
        for (number, signature) in [
            ("%2B12349013030", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            ("%2B14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ] {
            // Sent in another order than signed: the host sorts.
            let body = format!(
                "To=%2B18005551212&From={number}&Digits=1234&Caller={number}\
                 &CallSid=CA1234567890ABCDE"
            );
            let h = headers(&[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-twilio-signature", signature),
            ]);
            assert_eq!(check(&spec, "12345", &h, &body, path, 0), Ok(()));
            // Another token, URL, or parameter value: refused.
            assert!(check(&spec, "12346", &h, &body, path, 0).is_err());
            assert!(check(&spec, "12345", &h, &body, "/myapp.php?foo=1&bar=3", 0).is_err());
            let forged = body.replace("Digits=1234", "Digits=1235");
            assert_eq!(
                check(&spec, "12345", &h, &forged, path, 0),
                Err(SignatureError::Mismatch("x-twilio-signature".into()))
            );
        }
        // A trailing slash of `base_url` is not doubled.
        let spec = SignatureSpec::Twilio {
            secret: "t".into(),
            base_url: "https://mycompany.com/".into(),
        };
        let h = headers(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-twilio-signature", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
        ]);
        let body = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234\
                    &From=%2B12349013030&To=%2B18005551212";
        assert_eq!(check(&spec, "12345", &h, body, path, 0), Ok(()));
        assert_eq!(
            check(&spec, "12345", &headers(&[]), body, path, 0),
            Err(SignatureError::Missing("x-twilio-signature".into()))
        );
    }

    /// Twilio's JSON webhooks: the URL carries `bodySHA256` and is signed
    /// alone. Vector from Python: `hashlib.sha256(b'{"a":1}').hexdigest()`
    /// and `base64(hmac.new(b"12345", url, sha1).digest())`.
    #[test]
    fn twilio_json_bodies_are_bound_by_their_hash() {
        let spec = SignatureSpec::Twilio {
            secret: "t".into(),
            base_url: "https://mycompany.com".into(),
        };
        let body = r#"{"a":1}"#;
        let hash = "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862";
        let path = format!("/hook?bodySHA256={hash}");
        let url = format!("https://mycompany.com{path}");
        let sig = base64::engine::general_purpose::STANDARD.encode(mac(
            Algorithm::Sha1,
            b"12345",
            &[url.as_bytes()],
        ));
        let h = headers(&[
            ("content-type", "application/json"),
            ("x-twilio-signature", &sig),
        ]);
        assert_eq!(check(&spec, "12345", &h, body, &path, 0), Ok(()));
        assert_eq!(
            check(&spec, "12345", &h, r#"{"a":2}"#, &path, 0),
            Err(SignatureError::BodyHash)
        );
    }

    const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&\
        team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&\
        user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&\
        response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F\
        397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.\
        47445629121.803a0bc887a14d10d2c447fce8b6703c";

    /// Slack's documented example ("Verifying requests from Slack": signing
    /// secret, timestamp, slash-command body, signature), also checked with
    /// Python's `hmac`. The example is from 2018: it verifies at its own
    /// time and is a replay 5 minutes and a second later.
    #[test]
    fn slack_matches_its_documented_example_within_five_minutes() {
        let spec = SignatureSpec::Slack { secret: "s".into() };
        let key = "8f742231b10e8888abcd99yyyzzz85a5";
        let t = 1_531_420_618;
        let h = headers(&[
            ("x-slack-request-timestamp", "1531420618"),
            (
                "x-slack-signature",
                "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            ),
        ]);
        assert_eq!(check(&spec, key, &h, SLACK_BODY, "/", t), Ok(()));
        assert_eq!(check(&spec, key, &h, SLACK_BODY, "/", t + 300), Ok(()));
        assert_eq!(check(&spec, key, &h, SLACK_BODY, "/", t - 300), Ok(()));
        assert_eq!(
            check(&spec, key, &h, SLACK_BODY, "/", t + 301),
            Err(SignatureError::Stale(300))
        );
        assert_eq!(
            check(&spec, key, &h, SLACK_BODY, "/", t - 301),
            Err(SignatureError::Stale(300))
        );
        let forged = SLACK_BODY.replace("roadrunner", "coyote");
        assert_eq!(
            check(&spec, key, &h, &forged, "/", t),
            Err(SignatureError::Mismatch("x-slack-signature".into()))
        );
        // The timestamp is signed: moving it forward breaks the signature.
        let mut moved = h.clone();
        moved.insert(
            "x-slack-request-timestamp",
            HeaderValue::from_static("1531420700"),
        );
        assert!(check(&spec, key, &moved, SLACK_BODY, "/", t).is_err());
        let mut no_ts = h.clone();
        no_ts.remove("x-slack-request-timestamp");
        assert_eq!(
            check(&spec, key, &no_ts, SLACK_BODY, "/", t),
            Err(SignatureError::Missing("x-slack-request-timestamp".into()))
        );
    }

    /// Shopify documents the scheme (base64 of HMAC-SHA256 over the raw
    /// body) but publishes no vector; this one is from Python:
    /// `base64.b64encode(hmac.new(b"shpss_test_secret", body,
    /// hashlib.sha256).digest())`.
    #[test]
    fn shopify_is_base64_hmac_sha256_of_the_body() {
        let spec = SignatureSpec::Shopify { secret: "s".into() };
        let body = r#"{"id":820982911946154508,"email":"jon@doe.ca"}"#;
        let h = headers(&[(
            "X-Shopify-Hmac-Sha256",
            "ydL79GgFis+45WlpB77OS7dfcX+8t6iObguHVHAAEPc=",
        )]);
        assert_eq!(check(&spec, "shpss_test_secret", &h, body, "/", 0), Ok(()));
        assert!(check(&spec, "other", &h, body, "/", 0).is_err());
        assert!(check(&spec, "shpss_test_secret", &h, "{}", "/", 0).is_err());
        let hex = headers(&[("X-Shopify-Hmac-Sha256", "c9d2fbf468")]);
        assert!(check(&spec, "shpss_test_secret", &hex, body, "/", 0).is_err());
    }

    /// Vectors from Python's `hmac`: SHA-512/base64 over
    /// `"1700000000.{body}"` and SHA-1/hex over the body, key
    /// `generic-key`, body `{"a":1}`.
    #[test]
    fn generic_hmac_follows_its_settings() {
        let body = r#"{"a":1}"#;
        let spec = SignatureSpec::Hmac {
            secret: "s".into(),
            algorithm: Algorithm::Sha512,
            header: "X-Signature".into(),
            encoding: Encoding::Base64,
            prefix: "sig=".into(),
            signed: "{timestamp}.{body}".into(),
            timestamp_header: Some("X-Timestamp".into()),
            tolerance_secs: 60,
        };
        spec.validate().unwrap();
        let sig = "sig=6AWxgXHSI3iR1Q6h4KZE5Hzd6iejuGmbMUJXXkRFcOnfafZ6xoTYrDFybeZoKVAT9NkaCrPaVuuUkjv4HfajBQ==";
        let h = headers(&[("x-signature", sig), ("x-timestamp", "1700000000")]);
        let t = 1_700_000_000;
        assert_eq!(check(&spec, "generic-key", &h, body, "/", t + 60), Ok(()));
        assert_eq!(
            check(&spec, "generic-key", &h, body, "/", t + 61),
            Err(SignatureError::Stale(60))
        );
        assert!(check(&spec, "generic-key", &h, "{}", "/", t).is_err());
        let unprefixed = headers(&[
            ("x-signature", sig.strip_prefix("sig=").unwrap()),
            ("x-timestamp", "1700000000"),
        ]);
        assert_eq!(
            check(&spec, "generic-key", &unprefixed, body, "/", t),
            Err(SignatureError::Malformed("x-signature".into()))
        );

        let spec = SignatureSpec::Hmac {
            secret: "s".into(),
            algorithm: Algorithm::Sha1,
            header: "X-Signature".into(),
            encoding: Encoding::Hex,
            prefix: String::new(),
            signed: "{body}".into(),
            timestamp_header: None,
            tolerance_secs: 300,
        };
        spec.validate().unwrap();
        let good = headers(&[("x-signature", "D39DABC0C4092BEC6171786DF18400D2E3C1437C")]);
        assert_eq!(check(&spec, "generic-key", &good, body, "/", 0), Ok(()));
        let bad = headers(&[("x-signature", "d39dabc0c4092bec6171786df18400d2e3c1437d")]);
        assert!(check(&spec, "generic-key", &bad, body, "/", 0).is_err());
    }

    #[test]
    fn settings_are_checked_at_create_time() {
        let generic = |signed: &str, ts: Option<&str>| SignatureSpec::Hmac {
            secret: "s".into(),
            algorithm: Algorithm::Sha256,
            header: "X-Sig".into(),
            encoding: Encoding::Hex,
            prefix: String::new(),
            signed: signed.into(),
            timestamp_header: ts.map(str::to_owned),
            tolerance_secs: 300,
        };
        let field = |spec: SignatureSpec| spec.validate().unwrap_err().field;
        assert_eq!(field(generic("{ts}.{body}", Some("X-T"))), "signed");
        assert_eq!(field(generic("{timestamp}", Some("X-T"))), "signed");
        assert_eq!(field(generic("{body}{body}", None)), "signed");
        assert_eq!(field(generic("{body}", Some("X-T"))), "signed");
        assert_eq!(
            field(generic("{timestamp}.{body}", None)),
            "timestamp_header"
        );
        assert_eq!(
            field(generic("{timestamp}.{body}", Some("Cookie"))),
            "timestamp_header"
        );
        assert_eq!(
            field(generic("{timestamp}.{body}", Some("x-sig"))),
            "timestamp_header"
        );
        assert_eq!(field(generic(&"x".repeat(300), None)), "signed");
        generic("v1:{timestamp}:{body}", Some("X-T"))
            .validate()
            .unwrap();
        for base_url in [
            "ftp://x.example",
            "https://x.example/?a=1",
            "not a url",
            "https://u:p@x.example",
        ] {
            let spec = SignatureSpec::Twilio {
                secret: "s".into(),
                base_url: base_url.into(),
            };
            assert_eq!(field(spec), "base_url", "{base_url}");
        }
        let stripe = SignatureSpec::Stripe {
            secret: "s".into(),
            tolerance_secs: 86_401,
        };
        assert_eq!(field(stripe), "tolerance_secs");
        // Unknown fields are refused, not ignored.
        let typo = serde_json::json!({"kind": "slack", "secret": "s", "tolerance": 5});
        assert!(serde_json::from_value::<SignatureSpec>(typo).is_err());
        let ok = serde_json::json!({"kind": "hmac", "secret": "s", "header": "X-Sig"});
        let spec: SignatureSpec = serde_json::from_value(ok).unwrap();
        spec.validate().unwrap();
    }

    #[test]
    fn stripe_signatures_need_a_fresh_timestamp_and_a_matching_v1() {
        let spec = SignatureSpec::Stripe {
            secret: "s".into(),
            tolerance_secs: 300,
        };
        let body = "{\"a\":1}";
        let now = 1_700_000_000;
        let sig = |t: i64| {
            hex::encode(mac(
                Algorithm::Sha256,
                b"key",
                &[t.to_string().as_bytes(), b".", body.as_bytes()],
            ))
        };
        let verify = |value: String| {
            let h = headers(&[("stripe-signature", &value)]);
            check(&spec, "key", &h, body, "/", now).is_ok()
        };
        assert!(verify(format!("t={now},v1={}", sig(now))));
        assert!(verify(format!("t={now},v1=00,v1={}", sig(now))));
        assert!(!verify(format!("t={now},v1=00")));
        let stale = now - 400;
        assert!(!verify(format!("t={stale},v1={}", sig(stale))));
        assert!(!verify(format!("v1={}", sig(now))));
    }
}
