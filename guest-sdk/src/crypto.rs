//! HMAC keyed by a secret handle: sign without reading the key.

use crate::__bindings::airlock::step::crypto::HmacAlgorithm;
use crate::host::hmac;
use crate::secrets::Secret;

/// HMAC-SHA256 of `data` keyed by `key`'s value (32 bytes).
pub fn hmac_sha256(key: &Secret, data: impl AsRef<[u8]>) -> Vec<u8> {
    hmac(HmacAlgorithm::Sha256, &key.handle, data.as_ref())
}

/// HMAC-SHA512 of `data` keyed by `key`'s value (64 bytes).
pub fn hmac_sha512(key: &Secret, data: impl AsRef<[u8]>) -> Vec<u8> {
    hmac(HmacAlgorithm::Sha512, &key.handle, data.as_ref())
}

/// HMAC-SHA1 of `data` keyed by `key`'s value (20 bytes). Only for legacy
/// schemes that require it.
pub fn hmac_sha1(key: &Secret, data: impl AsRef<[u8]>) -> Vec<u8> {
    hmac(HmacAlgorithm::Sha1, &key.handle, data.as_ref())
}

/// Lowercase hex of `bytes`, for signatures in headers.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}
