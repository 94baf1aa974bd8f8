//! `airlock:step/crypto`: HMAC keyed by a secret handle, so a step can sign
//! without reading the key. The MAC is not secret, but the key is: it is
//! looked up host-side from the handle and never crosses into the guest.

mod host;

pub use host::Crypto;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};

use crate::bindings::crypto::HmacAlgorithm;

/// HMAC of `data` under `key` with `algorithm`.
pub fn hmac(algorithm: HmacAlgorithm, key: &[u8], data: &[u8]) -> Vec<u8> {
    fn mac<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    match algorithm {
        HmacAlgorithm::Sha256 => mac::<Hmac<sha2::Sha256>>(key, data),
        HmacAlgorithm::Sha512 => mac::<Hmac<sha2::Sha512>>(key, data),
        HmacAlgorithm::Sha1 => mac::<Hmac<sha1::Sha1>>(key, data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_4231_test_case_2() {
        let mac = hmac(
            HmacAlgorithm::Sha256,
            b"Jefe",
            b"what do ya want for nothing?",
        );
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(hmac(HmacAlgorithm::Sha512, b"k", b"d").len(), 64);
        assert_eq!(hmac(HmacAlgorithm::Sha1, b"k", b"d").len(), 20);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
