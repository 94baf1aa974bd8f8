//! AWS Signature Version 4, as the AWS docs specify ("Create a signed AWS
//! API request"): canonical request, string to sign, derived signing key,
//! `Authorization` header.
//!
//! A small pure API — method, URL, headers, body, credentials, region,
//! service, time in; the headers to add out — so every caller (the request
//! pipeline, and later the host's own calls to AWS Secrets Manager) signs
//! with the same code.
//!
//! Why written here on `hmac`/`sha2` rather than the `aws-sigv4` crate: the
//! algorithm is ~150 lines over two crates we already build, while
//! `aws-sigv4` brings the smithy runtime types, `http` 0.2 and `time` into
//! a crate that has no other use for them. It is checked against the AWS
//! SigV4 test-suite vectors (`tests` below) and against a server that
//! verifies signatures (`moto`, `tests/tests/http_signing.rs`).
//!
//! Security decisions:
//! - every header the request will carry from the caller is signed, and the
//!   payload hash is always the SHA-256 of the exact body (never
//!   `UNSIGNED-PAYLOAD`), so nothing the signature covers can change after
//!   signing;
//! - every input is bounded and checked for its character set here, before
//!   it reaches a hash or a header ([`SigV4Error`] names the field, never a
//!   secret's value).

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use url::Url;
use zeroize::Zeroizing;

/// Longest access key id accepted (AWS ids are 16–128 characters).
pub const MAX_ACCESS_KEY_ID: usize = 128;
/// Longest secret access key accepted.
pub const MAX_SECRET_KEY: usize = 1024;
/// Longest session token accepted (STS tokens run to a few KiB).
pub const MAX_SESSION_TOKEN: usize = 8 * 1024;
/// Longest region or service name accepted.
pub const MAX_SCOPE_PART: usize = 64;

/// The signing credentials: what the host read from secret handles.
#[derive(Clone)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_key: Zeroizing<String>,
    pub session_token: Option<Zeroizing<String>>,
}

/// Where and when a request is signed for.
#[derive(Debug, Clone)]
pub struct SigningParams {
    pub region: String,
    pub service: String,
    pub time: SystemTime,
    /// URI-encode the (already encoded) path once more, as every service
    /// but S3 expects.
    pub double_encode_path: bool,
    /// Send and sign `x-amz-content-sha256` (S3 requires it).
    pub content_sha256_header: bool,
}

impl SigningParams {
    /// The AWS defaults for `service`: S3 signs its path as sent and wants
    /// `x-amz-content-sha256`; every other service double-encodes the path.
    pub fn for_service(region: &str, service: &str, time: SystemTime) -> Self {
        let s3 = service == "s3";
        Self {
            region: region.to_string(),
            service: service.to_string(),
            time,
            double_encode_path: !s3,
            content_sha256_header: s3,
        }
    }
}

/// Why a request cannot be signed. Messages name the field, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("aws-sigv4: {field} must be 1 to {max} characters of {allowed}")]
    BadField {
        field: &'static str,
        max: usize,
        allowed: &'static str,
    },
    #[error("aws-sigv4: the request may not set {0:?} itself; the host signs it")]
    ReservedHeader(String),
    #[error("aws-sigv4: the URL has no host")]
    NoHost,
    #[error("aws-sigv4: the signing time is before 1970")]
    BadTime,
}

/// Headers the signer sets; a caller's own value would be signed over or
/// duplicated.
const RESERVED: &[&str] = &[
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
];

/// Checks credentials and scope before any of it is used. Called by the
/// pipeline when the request arrives, so a bad field fails fast.
pub fn validate(creds: &AwsCredentials, region: &str, service: &str) -> Result<(), SigV4Error> {
    let field = |value: &str, field, max, allowed, ok: fn(u8) -> bool| {
        if value.is_empty() || value.len() > max || !value.bytes().all(ok) {
            Err(SigV4Error::BadField {
                field,
                max,
                allowed,
            })
        } else {
            Ok(())
        }
    };
    field(
        &creds.access_key_id,
        "access-key-id",
        MAX_ACCESS_KEY_ID,
        "A-Z, a-z, 0-9",
        |b| b.is_ascii_alphanumeric(),
    )?;
    // The secret key is hashed, never sent, but printable ASCII is all AWS
    // issues; anything else is a wrong secret.
    field(
        &creds.secret_key,
        "secret-key",
        MAX_SECRET_KEY,
        "printable ASCII",
        |b| b.is_ascii_graphic(),
    )?;
    if let Some(token) = &creds.session_token {
        field(
            token,
            "session-token",
            MAX_SESSION_TOKEN,
            "printable ASCII",
            |b| b.is_ascii_graphic(),
        )?;
    }
    let scope = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    field(region, "region", MAX_SCOPE_PART, "a-z, 0-9, -", scope)?;
    field(service, "service", MAX_SCOPE_PART, "a-z, 0-9, -", scope)?;
    Ok(())
}

/// Rewrites `url`'s path and query into AWS's own encoding (every byte
/// but `A-Z a-z 0-9 - _ . ~` percent-encoded; query pairs sorted), so the
/// request sent is byte for byte what was signed. Why: servers and SDKs
/// differ in whether they re-encode what they receive (`/` or `!` left
/// bare by a URL parser); sending the canonical form leaves nothing to
/// re-encode. Call before [`sign`], and send the rewritten URL.
pub fn normalize_url(url: &mut Url) {
    let path = url.path().to_string();
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(&path).collect();
    url.set_path(&uri_encode(&decoded, true));
    if url.query().is_some_and(|q| !q.is_empty()) {
        let query = canonical_query(url);
        url.set_query(Some(&query));
    }
}

/// Signs a request. `headers` are every header the caller's request will
/// carry (the host header is derived from `url`); the result is the headers
/// to add: `x-amz-date`, `x-amz-content-sha256` (when asked),
/// `x-amz-security-token` (with a session token) and `authorization`.
pub fn sign(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: &[u8],
    creds: &AwsCredentials,
    params: &SigningParams,
) -> Result<Vec<(String, String)>, SigV4Error> {
    validate(creds, &params.region, &params.service)?;
    if let Some((name, _)) = headers
        .iter()
        .find(|(n, _)| RESERVED.iter().any(|r| n.eq_ignore_ascii_case(r)))
    {
        return Err(SigV4Error::ReservedHeader(name.to_ascii_lowercase()));
    }
    let secs = params
        .time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| SigV4Error::BadTime)?
        .as_secs();
    let (date, amz_date) = amz_dates(secs);
    let payload_hash = hex::encode(Sha256::digest(body));

    let mut added: Vec<(String, String)> = vec![("x-amz-date".into(), amz_date.clone())];
    if params.content_sha256_header {
        added.push(("x-amz-content-sha256".into(), payload_hash.clone()));
    }
    if let Some(token) = &creds.session_token {
        added.push(("x-amz-security-token".into(), token.to_string()));
    }

    // Canonical headers: lower-case names, values trimmed with inner runs
    // of spaces collapsed, repeated names joined by commas in order.
    let host = host_header(url)?;
    let mut canonical: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    canonical.entry("host".into()).or_default().push(host);
    for (name, value) in headers.iter().chain(added.iter()) {
        canonical
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(collapse_spaces(value));
    }
    let signed_headers = canonical.keys().cloned().collect::<Vec<_>>().join(";");
    let mut canonical_headers = String::new();
    for (name, values) in &canonical {
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }

    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        method.to_ascii_uppercase(),
        canonical_uri(url, params.double_encode_path),
        canonical_query(url),
    );
    let scope = format!("{date}/{}/{}/aws4_request", params.region, params.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let key = Zeroizing::new(format!("AWS4{}", creds.secret_key.as_str()));
    let k_date = hmac(key.as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, params.region.as_bytes());
    let k_service = hmac(&k_region, params.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
    added.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            creds.access_key_id
        ),
    ));
    Ok(added)
}

fn hmac(key: &[u8], data: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    Zeroizing::new(mac.finalize().into_bytes().to_vec())
}

/// `YYYYMMDD` and `YYYYMMDDTHHMMSSZ` for unix seconds `secs` (UTC).
fn amz_dates(secs: u64) -> (String, String) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let date = format!("{y:04}{m:02}{d:02}");
    let time = format!(
        "{date}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    (date, time)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The `Host` header the HTTP stack sends for `url`: the host, and the
/// port unless it is the scheme's default.
fn host_header(url: &Url) -> Result<String, SigV4Error> {
    let host = url.host_str().ok_or(SigV4Error::NoHost)?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// RFC 3986 unreserved characters stay; every other byte is `%XX`
/// (upper-case hex), as AWS's `UriEncode` says.
fn uri_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path as sent (the URL parser has already removed dot segments and
/// percent-encoded it), normalised to AWS's encoding: decoded and encoded
/// again segment by segment; for services other than S3 encoded once more.
fn canonical_uri(url: &Url, double: bool) -> String {
    let path = url.path();
    let path = if path.is_empty() { "/" } else { path };
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(path).collect();
    let once = uri_encode(&decoded, true);
    if double {
        uri_encode(once.as_bytes(), true)
    } else {
        once
    }
}

/// Query parameters decoded, each name and value encoded, sorted by name
/// then value, joined by `&`.
fn canonical_query(url: &Url) -> String {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            (
                uri_encode(k.as_bytes(), false),
                uri_encode(v.as_bytes(), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
