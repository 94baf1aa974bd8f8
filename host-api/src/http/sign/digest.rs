//! HTTP Digest access authentication (RFC 7616), the client side: read a
//! server's `WWW-Authenticate: Digest` challenge, answer it with an
//! `Authorization: Digest` header.
//!
//! Supported: `MD5`, `MD5-sess`, `SHA-256`, `SHA-256-sess`, `qop=auth`,
//! `userhash`, and the RFC 2069 form without `qop` that old servers still
//! send. `auth-int` alone is refused (it would hash the body into every
//! answer; no API we target needs it).
//!
//! Security decisions:
//! - the password never leaves the host: only the hash answer is sent, and
//!   the pipeline registers the password with the run's redactor;
//! - a challenge is read only from the origin the request went to (the
//!   pipeline answers only a same-origin 401), and is bounded in size and
//!   parsed without a regex engine, so a hostile upstream gets a clear
//!   error, never a panic;
//! - the algorithm the server asks for is used as asked; when it offers
//!   several challenges, SHA-256 wins over MD5 (RFC 7616 §3.7).

use md5::{Digest as _, Md5};
use sha2::{Digest as _, Sha256};

/// Longest challenge header read.
pub const MAX_CHALLENGE_BYTES: usize = 8 * 1024;
/// Longest username accepted.
pub const MAX_USERNAME_BYTES: usize = 256;

/// Why a challenge cannot be answered. Messages never hold the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest: the server's 401 carried no Digest challenge")]
    NoChallenge,
    #[error("digest: the server's challenge is malformed: {0}")]
    Malformed(&'static str),
    #[error(
        "digest: the server asks for algorithm {0:?}; supported: MD5, MD5-sess, SHA-256, SHA-256-sess"
    )]
    Algorithm(String),
    #[error("digest: the server offers only qop {0:?}; supported: auth")]
    Qop(String),
    #[error(
        "digest: a username must be 1 to {MAX_USERNAME_BYTES} bytes of printable ASCII without `\"` or `\\`"
    )]
    Username,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "MD5" => Self::Md5,
            "MD5-SESS" => Self::Md5Sess,
            "SHA-256" => Self::Sha256,
            "SHA-256-SESS" => Self::Sha256Sess,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Self::Md5 | Self::Md5Sess => hex::encode(Md5::digest(data.as_bytes())),
            Self::Sha256 | Self::Sha256Sess => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }

    fn sess(self) -> bool {
        matches!(self, Self::Md5Sess | Self::Sha256Sess)
    }
}

/// One parsed `Digest` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// `qop=auth` offered; `false` is the RFC 2069 form.
    pub qop_auth: bool,
    pub userhash: bool,
}

/// The best `Digest` challenge among `WWW-Authenticate` values.
pub fn parse_challenge<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Challenge, DigestError> {
    let mut best: Option<Challenge> = None;
    let mut first_error = None;
    for value in values {
        if value.len() > MAX_CHALLENGE_BYTES {
            first_error.get_or_insert(DigestError::Malformed("a challenge over 8 KiB"));
            continue;
        }
        let trimmed = value.trim_start();
        let Some(scheme) = trimmed.get(..7) else {
            continue;
        };
        if !scheme.eq_ignore_ascii_case("digest ") {
            continue;
        }
        match parse_one(&trimmed[7..]) {
            Ok(c) => {
                let better = match &best {
                    None => true,
                    Some(b) => {
                        matches!(c.algorithm, Algorithm::Sha256 | Algorithm::Sha256Sess)
                            && !matches!(b.algorithm, Algorithm::Sha256 | Algorithm::Sha256Sess)
                    }
                };
                if better {
                    best = Some(c);
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    best.ok_or(first_error.unwrap_or(DigestError::NoChallenge))
}

fn parse_one(params: &str) -> Result<Challenge, DigestError> {
    let mut realm = None;
    let mut nonce = None;
    let mut opaque = None;
    let mut algorithm = Algorithm::Md5;
    let mut qop: Option<String> = None;
    let mut userhash = false;
    for (name, value) in auth_params(params)? {
        match name.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "nonce" => nonce = Some(value),
            "opaque" => opaque = Some(value),
            "algorithm" => {
                algorithm = Algorithm::parse(&value).ok_or(DigestError::Algorithm(value))?
            }
            "qop" => qop = Some(value),
            "userhash" => userhash = value.eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    let qop_auth = match qop {
        None => false,
        Some(q) => {
            if !q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")) {
                return Err(DigestError::Qop(q));
            }
            true
        }
    };
    Ok(Challenge {
        realm: realm.ok_or(DigestError::Malformed("no realm"))?,
        nonce: nonce.ok_or(DigestError::Malformed("no nonce"))?,
        opaque,
        algorithm,
        qop_auth,
        userhash,
    })
}

/// `name=token` or `name="quoted \" string"` pairs separated by commas
/// (RFC 9110 §11.2).
fn auth_params(s: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && *c != ',' && !c.is_whitespace()) {
            name.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(DigestError::Malformed("a parameter without a value"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err(DigestError::Malformed("an unterminated quoted string")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => {
                            return Err(DigestError::Malformed("an unterminated quoted string"));
                        }
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',' && !c.is_whitespace()) {
                value.push(c);
            }
        }
        out.push((name, value));
    }
}

/// Checks a username can be sent as a quoted `username` (no `username*`
/// encoding).
pub fn validate_username(username: &str) -> Result<(), DigestError> {
    if username.is_empty()
        || username.len() > MAX_USERNAME_BYTES
        || !username
            .bytes()
            .all(|b| (b.is_ascii_graphic() || b == b' ') && b != b'"' && b != b'\\')
    {
        return Err(DigestError::Username);
    }
    Ok(())
}

/// The `Authorization` value answering `challenge` for `method uri`
/// (`uri` is the request target: path and query). `cnonce` is fresh random
/// text per answer; `nc` counts answers to this nonce.
pub fn respond(
    challenge: &Challenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> Result<String, DigestError> {
    validate_username(username)?;
    let alg = challenge.algorithm;
    let realm = &challenge.realm;
    let nonce = &challenge.nonce;
    let mut ha1 = zeroize::Zeroizing::new(alg.hash(&format!("{username}:{realm}:{password}")));
    if alg.sess() {
        ha1 = zeroize::Zeroizing::new(alg.hash(&format!("{}:{nonce}:{cnonce}", ha1.as_str())));
    }
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    let nc = format!("{nc:08x}");
    let response = if challenge.qop_auth {
        alg.hash(&format!(
            "{}:{nonce}:{nc}:{cnonce}:auth:{ha2}",
            ha1.as_str()
        ))
    } else {
        alg.hash(&format!("{}:{nonce}:{ha2}", ha1.as_str()))
    };
    let user = if challenge.userhash {
        alg.hash(&format!("{username}:{realm}"))
    } else {
        username.to_string()
    };
    let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut header = format!(
        "Digest username=\"{}\", realm=\"{}\", uri=\"{}\", algorithm={}, nonce=\"{}\"",
        q(&user),
        q(realm),
        q(uri),
        alg.name(),
        q(nonce)
    );
    if challenge.qop_auth {
        header.push_str(&format!(", nc={nc}, cnonce=\"{}\", qop=auth", q(cnonce)));
    }
    header.push_str(&format!(", response=\"{response}\""));
    if let Some(opaque) = &challenge.opaque {
        header.push_str(&format!(", opaque=\"{}\"", q(opaque)));
    }
    if challenge.userhash {
        header.push_str(", userhash=true");
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1: Mufasa / "Circle of Life", GET /dir/index.html.
    const RFC_CHALLENGE_SHA256: &str = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    const RFC_CHALLENGE_MD5: &str = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn answer(challenge: &str) -> String {
        let c = parse_challenge([challenge]).unwrap();
        respond(
            &c,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            CNONCE,
            1,
        )
        .unwrap()
    }

    #[test]
    fn the_rfc_7616_examples() {
        let sha = answer(RFC_CHALLENGE_SHA256);
        assert!(
            sha.contains(
                r#"response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1""#
            ),
            "{sha}"
        );
        assert!(sha.contains("algorithm=SHA-256"), "{sha}");
        assert!(sha.contains(r#"opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#));
        assert!(sha.contains(
            ", nc=00000001, cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth"
        ));
        let md5 = answer(RFC_CHALLENGE_MD5);
        assert!(
            md5.contains(r#"response="8ca523f5e9506fed4657c9700eebdbec""#),
            "{md5}"
        );
        // Offered both, SHA-256 wins whatever the order.
        let c = parse_challenge([RFC_CHALLENGE_MD5, RFC_CHALLENGE_SHA256]).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
    }

    /// RFC 2617 §3.5 (no `algorithm`: MD5; `qop=auth`).
    #[test]
    fn the_rfc_2617_example() {
        let c = parse_challenge([r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#]).unwrap();
        let a = respond(
            &c,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
            1,
        )
        .unwrap();
        assert!(
            a.contains(r#"response="6629fae49393a05397450978507c4ef1""#),
            "{a}"
        );
    }

    #[test]
    fn bad_challenges_and_usernames_are_named_errors() {
        assert_eq!(
            parse_challenge(["Basic realm=\"x\""]),
            Err(DigestError::NoChallenge)
        );
        assert_eq!(
            parse_challenge([r#"Digest realm="r", nonce="n", algorithm=SHA-512"#]),
            Err(DigestError::Algorithm("SHA-512".into()))
        );
        assert_eq!(
            parse_challenge([r#"Digest realm="r", nonce="n", qop="auth-int""#]),
            Err(DigestError::Qop("auth-int".into()))
        );
        assert!(matches!(
            parse_challenge([r#"Digest realm="r"#]),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            parse_challenge([r#"Digest nonce="n""#]),
            Err(DigestError::Malformed(_))
        ));
        let huge = format!(
            "Digest realm=\"{}\", nonce=\"n\"",
            "r".repeat(MAX_CHALLENGE_BYTES)
        );
        assert!(matches!(
            parse_challenge([huge.as_str()]),
            Err(DigestError::Malformed(_))
        ));
        let c = parse_challenge([r#"Digest realm="r", nonce="n""#]).unwrap();
        assert!(!c.qop_auth);
        for bad in ["", "a\"b", "a\\b", "line\nbreak", "ü"] {
            assert_eq!(
                respond(&c, bad, "pw", "GET", "/", "c", 1),
                Err(DigestError::Username),
                "{bad:?}"
            );
        }
        // RFC 2069 form: no nc/cnonce/qop.
        let a = respond(&c, "u", "pw", "GET", "/", "c", 1).unwrap();
        assert!(!a.contains("qop") && !a.contains("cnonce"), "{a}");
    }
}
