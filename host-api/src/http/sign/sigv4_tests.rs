//! The AWS SigV4 test suite (`aws-sig-v4-test-suite`, credentials
//! `AKIDEXAMPLE`, 2015-08-30T12:36:00Z, us-east-1, service `service`): each
//! case's request and the `Authorization` header AWS publishes for it.

use std::time::{Duration, UNIX_EPOCH};

use super::*;

struct Case {
    name: &'static str,
    method: &'static str,
    /// Path and query, as sent.
    target: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    token: Option<&'static str>,
    signed_headers: &'static str,
    signature: &'static str,
}

const TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

const fn case(
    name: &'static str,
    method: &'static str,
    target: &'static str,
    headers: &'static [(&'static str, &'static str)],
    signed_headers: &'static str,
    signature: &'static str,
) -> Case {
    Case {
        name,
        method,
        target,
        headers,
        body: "",
        token: None,
        signed_headers,
        signature,
    }
}

const H: &str = "host;x-amz-date";
const H1: &str = "host;my-header1;x-amz-date";

const CASES: &[Case] = &[
    case(
        "get-vanilla",
        "GET",
        "/",
        &[],
        H,
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    case(
        "get-vanilla-empty-query-key",
        "GET",
        "/?Param1=value1",
        &[],
        H,
        "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
    ),
    case(
        "get-vanilla-query-order-key-case",
        "GET",
        "/?Param2=value2&Param1=value1",
        &[],
        H,
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
    case(
        "get-vanilla-query-unreserved",
        "GET",
        "/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        &[],
        H,
        "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    ),
    case(
        "get-vanilla-utf8-query",
        "GET",
        "/?\u{1234}=bar",
        &[],
        H,
        "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    ),
    case(
        "get-unreserved",
        "GET",
        "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        &[],
        H,
        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    ),
    case(
        "get-header-key-duplicate",
        "GET",
        "/",
        &[
            ("My-Header1", "value2"),
            ("My-Header1", "value2"),
            ("My-Header1", "value1"),
        ],
        H1,
        "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    ),
    case(
        "get-header-value-order",
        "GET",
        "/",
        &[
            ("My-Header1", "value4"),
            ("My-Header1", "value1"),
            ("My-Header1", "value3"),
            ("My-Header1", "value2"),
        ],
        H1,
        "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    ),
    case(
        "get-header-value-trim",
        "GET",
        "/",
        &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
        "host;my-header1;my-header2;x-amz-date",
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    ),
    case(
        "post-vanilla",
        "POST",
        "/",
        &[],
        H,
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    ),
    case(
        "post-vanilla-query",
        "POST",
        "/?Param1=value1",
        &[],
        H,
        "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    ),
    case(
        "post-vanilla-query-nonunreserved",
        "POST",
        "/?%40%23%24%25%5E=&%2B=%2F%2C%3F%3E%3C%60%22%3B%3A%5C%7C%5D%5B%7B%7D",
        &[],
        H,
        "66c82657c86e26fb25238d0e69f011edc4c6df5ae71119d7cb98ed9b87393c1e",
    ),
    case(
        "post-vanilla-query-space",
        "POST",
        "/?p=",
        &[],
        H,
        "e71688addb58a26418614085fb730ba3faa623b461c17f48f2fbdb9361b94a9b",
    ),
    case(
        "post-header-key-sort",
        "POST",
        "/",
        &[("My-Header1", "value1")],
        H1,
        "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    ),
    case(
        "post-header-value-case",
        "POST",
        "/",
        &[("My-Header1", "VALUE1")],
        H1,
        "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
    ),
    Case {
        body: "Param1=value1",
        ..case(
            "post-x-www-form-urlencoded",
            "POST",
            "/",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            "content-type;host;x-amz-date",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        )
    },
    Case {
        body: "Param1=value1",
        ..case(
            "post-x-www-form-urlencoded-parameters",
            "POST",
            "/",
            &[(
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf8",
            )],
            "content-type;host;x-amz-date",
            "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe",
        )
    },
    Case {
        token: Some(TOKEN),
        ..case(
            "post-sts-header-before",
            "POST",
            "/",
            &[],
            "host;x-amz-date;x-amz-security-token",
            "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        )
    },
];

fn creds(token: Option<&str>) -> AwsCredentials {
    AwsCredentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_key: Zeroizing::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
        session_token: token.map(|t| Zeroizing::new(t.to_string())),
    }
}

fn params() -> SigningParams {
    SigningParams::for_service(
        "us-east-1",
        "service",
        UNIX_EPOCH + Duration::from_secs(1_440_938_160),
    )
}

fn authorization(added: &[(String, String)]) -> &str {
    &added.iter().find(|(n, _)| n == "authorization").unwrap().1
}

#[test]
fn the_aws_test_suite_signatures() {
    for c in CASES {
        let url = Url::parse(&format!("https://example.amazonaws.com{}", c.target)).unwrap();
        let headers: Vec<(String, String)> = c
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let added = sign(
            c.method,
            &url,
            &headers,
            c.body.as_bytes(),
            &creds(c.token),
            &params(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let want = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders={}, Signature={}",
            c.signed_headers, c.signature
        );
        assert_eq!(authorization(&added), want, "{}", c.name);
        assert_eq!(added[0], ("x-amz-date".into(), "20150830T123600Z".into()));
        if let Some(t) = c.token {
            assert!(added.contains(&("x-amz-security-token".into(), t.into())));
        }
    }
}

/// `get-utf8`: the suite's request line holds the raw path `/ሴ`, which it
/// encodes once; a URL always carries it encoded, so this is the signer's
/// "path as sent" (S3) mode. Other services encode the sent path again.
#[test]
fn the_suite_utf8_path_and_double_encoding() {
    let url = Url::parse("https://example.amazonaws.com/\u{1234}").unwrap();
    let mut p = params();
    p.double_encode_path = false;
    let added = sign("GET", &url, &[], b"", &creds(None), &p).unwrap();
    assert!(
        authorization(&added).ends_with(
            "Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
        ),
        "{added:?}"
    );
    assert_eq!(canonical_uri(&url, true), "/%25E1%2588%25B4");
    assert_eq!(
        canonical_uri(&Url::parse("https://h/a%20b/c").unwrap(), false),
        "/a%20b/c"
    );
}

#[test]
fn s3_adds_the_payload_hash_and_dates_are_utc() {
    let url = Url::parse("http://127.0.0.1:9000/bucket/key").unwrap();
    let p = SigningParams::for_service(
        "eu-west-1",
        "s3",
        UNIX_EPOCH + Duration::from_secs(951_782_400),
    );
    let added = sign("PUT", &url, &[], b"hello", &creds(None), &p).unwrap();
    assert_eq!(added[0].1, "20000229T000000Z");
    assert_eq!(
        added[1],
        (
            "x-amz-content-sha256".into(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".into()
        )
    );
    assert!(authorization(&added).contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"));
    assert_eq!(host_header(&url).unwrap(), "127.0.0.1:9000");
    assert_eq!(
        host_header(&Url::parse("https://h.example:443/").unwrap()).unwrap(),
        "h.example"
    );
}

#[test]
fn bad_fields_and_reserved_headers_are_named_errors() {
    let url = Url::parse("https://example.amazonaws.com/").unwrap();
    let mut c = creds(None);
    c.access_key_id = "AKID EXAMPLE".into();
    let e = sign("GET", &url, &[], b"", &c, &params()).unwrap_err();
    assert!(e.to_string().contains("access-key-id"), "{e}");
    let mut p = params();
    p.region = "x".repeat(MAX_SCOPE_PART + 1);
    let e = sign("GET", &url, &[], b"", &creds(None), &p).unwrap_err();
    assert!(e.to_string().contains("region"), "{e}");
    p.region = "us-east-1\n".into();
    assert!(sign("GET", &url, &[], b"", &creds(None), &p).is_err());
    let mut c = creds(None);
    c.secret_key = Zeroizing::new("s".repeat(MAX_SECRET_KEY + 1));
    let e = sign("GET", &url, &[], b"", &c, &params()).unwrap_err();
    assert!(e.to_string().contains("secret-key"), "{e}");
    assert!(!e.to_string().contains("sss"), "{e}");
    let e = sign(
        "GET",
        &url,
        &[("X-Amz-Date".into(), "x".into())],
        b"",
        &creds(None),
        &params(),
    )
    .unwrap_err();
    assert_eq!(e, SigV4Error::ReservedHeader("x-amz-date".into()));
}

#[test]
fn the_sent_url_is_the_signed_encoding() {
    let mut url =
        Url::parse("http://127.0.0.1:9000/b/a!(x)/k%20y?prefix=notes/&list-type=2&e=").unwrap();
    normalize_url(&mut url);
    assert_eq!(url.path(), "/b/a%21%28x%29/k%20y");
    assert_eq!(url.query(), Some("e=&list-type=2&prefix=notes%2F"));
    // Idempotent: the canonical form of the normalised URL is itself.
    assert_eq!(canonical_uri(&url, false), url.path());
    assert_eq!(canonical_query(&url), url.query().unwrap());
    let mut bare = Url::parse("https://h.example/").unwrap();
    normalize_url(&mut bare);
    assert_eq!(bare.as_str(), "https://h.example/");
}
