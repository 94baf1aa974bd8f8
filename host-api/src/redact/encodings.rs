//! The textual forms a secret value takes once a guest (or a library it
//! uses) has put it into a header, URL, JSON document or dump. See the module
//! docs of [`super`] for why each form is covered.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything except the RFC 3986 unreserved set (`A-Z a-z 0-9 - . _ ~`).
const URL_RESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Every form of `value` to mask, the raw value first. May contain
/// duplicates and short strings; the caller filters those.
pub(super) fn forms(value: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(12);
    out.push(value.to_string());
    for k in 0..3 {
        out.push(base64_at_offset(value.as_bytes(), k, false));
        out.push(base64_at_offset(value.as_bytes(), k, true));
    }
    let percent = utf8_percent_encode(value, URL_RESERVED).to_string();
    // Some encoders write `%2f` rather than `%2F`.
    out.push(lowercase_percent_hex(&percent));
    out.push(percent);
    out.push(form_urlencoded::byte_serialize(value.as_bytes()).collect());
    let json = json_escaped(value);
    if !value.is_ascii() {
        out.push(ascii_json(&json));
    }
    // JSON inside JSON: an upstream body (or a log record) kept as a string
    // field of a JSON output is escaped a second time.
    out.push(json_escaped(&json));
    out.push(json);
    out.push(hex(value.as_bytes(), b"0123456789abcdef"));
    out.push(hex(value.as_bytes(), b"0123456789ABCDEF"));
    out
}

/// The base64 characters that depend only on `value`'s bits when `value`
/// follows `k` unknown bytes: characters `ceil(8k/6)..floor(8(k+len)/6)` of
/// the encoding of `k` arbitrary bytes followed by `value`.
pub(super) fn base64_at_offset(value: &[u8], k: usize, url_safe: bool) -> String {
    let mut input = vec![0u8; k];
    input.extend_from_slice(value);
    let encoded = if url_safe {
        URL_SAFE_NO_PAD.encode(&input)
    } else {
        STANDARD_NO_PAD.encode(&input)
    };
    let start = (8 * k).div_ceil(6);
    let end = (8 * (k + value.len())) / 6;
    encoded[start..end.max(start)].to_string()
}

/// `%2F` → `%2f`: the same encoding with lowercase hex digits.
fn lowercase_percent_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut chars = encoded.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            for h in chars.by_ref().take(2) {
                out.push(h.to_ascii_lowercase());
            }
        }
    }
    out
}

/// `value` as it appears inside a JSON string literal written by serde_json.
fn json_escaped(value: &str) -> String {
    let quoted = serde_json::to_string(value).expect("a str always serializes");
    quoted[1..quoted.len() - 1].to_string()
}

/// A JSON-escaped string with every non-ASCII char as `\uXXXX` (surrogate
/// pairs beyond the BMP), as serializers with an ASCII-only mode write it
/// (Python's `json.dumps` default, for one).
fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn hex(bytes: &[u8], digits: &[u8; 16]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(digits[usize::from(b >> 4)] as char);
        out.push(digits[usize::from(b & 0xf)] as char);
    }
    out
}
