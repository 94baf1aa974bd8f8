//! The host-only control headers a standard client uses to name a
//! credential without holding it, and the host name that stands for an
//! account's base URL.
//!
//! | header | meaning |
//! | --- | --- |
//! | `x-airlock-account: <slug \| acc_…>` | the run user's connected account |
//! | `x-airlock-auth: bearer NAME` | granted secret `NAME` as a bearer token |
//! | `x-airlock-auth: basic USER NAME` | basic auth, secret `NAME` the password |
//! | `x-airlock-auth: header H NAME` | secret `NAME` as the value of header `H` |
//! | `x-airlock-auth: query Q NAME` | secret `NAME` as query parameter `Q` |
//! | `x-airlock-auth: aws-sigv4 KEY_ID NAME REGION SERVICE [TOKEN]` | AWS SigV4, secret key `NAME` (session token secret `TOKEN`) |
//! | `x-airlock-auth: digest USER NAME` | HTTP Digest, secret `NAME` the password |
//!
//! Why every `x-airlock-*` header is removed and an unknown one refused: the
//! prefix is the host's. Passing an unknown one upstream could leak intent
//! a step did not mean to send, and silently ignoring one (a typo such as
//! `x-airlock-acount`) would send the request without the credential the
//! author thought it carried.
//!
//! Why a host name for relative URLs: a standard client needs an absolute
//! URL. `https://<slug>.airlock.internal/<path>` means "`/<path>` under the
//! account's app base URL" (custom fields filled in and checked by the
//! pipeline). `.internal` is reserved for private use (ICANN, 2024), so
//! the name can never be a real public host.

use zeroize::Zeroizing;

use crate::http::pipeline::{AwsCredentials, AwsSigV4Auth, Credential, HttpError};
use crate::secrets::RunSecrets;

/// Every header under this prefix belongs to the host.
pub const PREFIX: &str = "x-airlock-";
pub const ACCOUNT: &str = "x-airlock-account";
pub const AUTH: &str = "x-airlock-auth";
/// The domain under which a host name stands for an app's base URL.
pub const BASE_URL_DOMAIN: &str = "airlock.internal";

/// What the control headers of one request asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Control {
    pub account: Option<String>,
    pub auth: Option<AuthSpec>,
}

/// `x-airlock-auth`, parsed; secret names only, no values.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthSpec {
    Bearer {
        secret: String,
    },
    Basic {
        username: String,
        secret: String,
    },
    Header {
        name: String,
        secret: String,
    },
    Query {
        name: String,
        secret: String,
    },
    AwsSigV4 {
        access_key_id: String,
        secret: String,
        region: String,
        service: String,
        session_token: Option<String>,
    },
    Digest {
        username: String,
        secret: String,
    },
}

impl AuthSpec {
    fn secret(&self) -> &str {
        match self {
            Self::Bearer { secret }
            | Self::Basic { secret, .. }
            | Self::Header { secret, .. }
            | Self::Query { secret, .. }
            | Self::AwsSigV4 { secret, .. }
            | Self::Digest { secret, .. } => secret,
        }
    }
}

/// Splits `headers` into the control headers and the rest. Refuses an
/// unknown `x-airlock-*` header, a repeated one, both credentials at once,
/// and values that do not parse.
pub fn split(
    headers: Vec<(String, String)>,
) -> Result<(Control, Vec<(String, String)>), HttpError> {
    let mut control = Control::default();
    let mut rest = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if !lower.starts_with(PREFIX) {
            rest.push((name, value));
            continue;
        }
        match lower.as_str() {
            ACCOUNT => {
                if control.account.is_some() {
                    return Err(repeated(ACCOUNT));
                }
                let value = value.trim();
                if value.is_empty() {
                    return Err(HttpError::InvalidRequest(format!(
                        "{ACCOUNT} needs an app slug or an acc_ id"
                    )));
                }
                control.account = Some(value.to_string());
            }
            AUTH => {
                if control.auth.is_some() {
                    return Err(repeated(AUTH));
                }
                control.auth = Some(parse_auth(&value)?);
            }
            _ => {
                return Err(HttpError::InvalidRequest(format!(
                    "unknown host-only header {lower:?}; the `{PREFIX}` prefix belongs to \
                     Airlock (known: {ACCOUNT}, {AUTH})"
                )));
            }
        }
    }
    if control.account.is_some() && control.auth.is_some() {
        return Err(HttpError::InvalidRequest(format!(
            "a request carries one credential: {ACCOUNT} or {AUTH}, not both"
        )));
    }
    Ok((control, rest))
}

fn repeated(name: &str) -> HttpError {
    HttpError::InvalidRequest(format!("{name} may be given once"))
}

fn parse_auth(value: &str) -> Result<AuthSpec, HttpError> {
    let words: Vec<&str> = value.split_ascii_whitespace().collect();
    let kind = words.first().map(|w| w.to_ascii_lowercase());
    let spec = match (kind.as_deref(), &words[..]) {
        (Some("bearer"), [_, secret]) => AuthSpec::Bearer {
            secret: secret.to_string(),
        },
        (Some("basic"), [_, username, secret]) => AuthSpec::Basic {
            username: username.to_string(),
            secret: secret.to_string(),
        },
        (Some("header"), [_, name, secret]) => AuthSpec::Header {
            name: name.to_string(),
            secret: secret.to_string(),
        },
        (Some("query"), [_, name, secret]) => AuthSpec::Query {
            name: name.to_string(),
            secret: secret.to_string(),
        },
        (Some("aws-sigv4"), [_, key_id, secret, region, service, token @ ..])
            if token.len() <= 1 =>
        {
            AuthSpec::AwsSigV4 {
                access_key_id: key_id.to_string(),
                secret: secret.to_string(),
                region: region.to_string(),
                service: service.to_string(),
                session_token: token.first().map(|t| t.to_string()),
            }
        }
        (Some("digest"), [_, username, secret]) => AuthSpec::Digest {
            username: username.to_string(),
            secret: secret.to_string(),
        },
        // The value names secrets only, so it is safe to quote.
        _ => {
            return Err(HttpError::InvalidRequest(format!(
                "{AUTH} {value:?} is not one of `bearer NAME`, `basic USER NAME`, \
                 `header H NAME`, `query Q NAME`, \
                 `aws-sigv4 KEY_ID NAME REGION SERVICE [TOKEN]`, `digest USER NAME`"
            )));
        }
    };
    Ok(spec)
}

/// The credential the control headers name, secret values read host-side.
/// A secret outside the step's grant is denied; a granted one without a
/// value is unusable (the caller answers 401).
pub fn credential(control: Control, secrets: &RunSecrets) -> Result<Option<Credential>, HttpError> {
    if let Some(account) = control.account {
        return Ok(Some(Credential::Account(account)));
    }
    let Some(auth) = control.auth else {
        return Ok(None);
    };
    let value = granted_value(auth.secret(), secrets)?;
    Ok(Some(match auth {
        AuthSpec::Bearer { .. } => Credential::Bearer(value),
        AuthSpec::Basic { username, .. } => Credential::Basic {
            username,
            password: value,
        },
        AuthSpec::Header { name, .. } => Credential::Header { name, value },
        AuthSpec::Query { name, .. } => Credential::Query { name, value },
        AuthSpec::AwsSigV4 {
            access_key_id,
            region,
            service,
            session_token,
            ..
        } => Credential::AwsSigV4(Box::new(AwsSigV4Auth {
            credentials: AwsCredentials {
                access_key_id,
                secret_key: value,
                session_token: match session_token {
                    Some(name) => Some(granted_value(&name, secrets)?),
                    None => None,
                },
            },
            region,
            service,
        })),
        AuthSpec::Digest { username, .. } => Credential::Digest {
            username,
            password: value,
        },
    }))
}

/// The value of granted secret `name`, read host-side.
fn granted_value(name: &str, secrets: &RunSecrets) -> Result<Zeroizing<String>, HttpError> {
    if !secrets.grants().allows(name) {
        return Err(HttpError::Denied(format!(
            "secret {name} is not granted to this step (manifest `[secrets]`)"
        )));
    }
    secrets
        .value(name)
        .map(|v| Zeroizing::new(v.to_string()))
        .ok_or_else(|| HttpError::CredentialUnusable(format!("secret {name} has no value")))
}

/// For a host under [`BASE_URL_DOMAIN`], the URL to hand the pipeline: the
/// path and query alone, which it resolves against the account's base URL.
/// The label must be the account's app slug when the account is named by
/// slug, so a URL cannot say one app while the header says another.
pub fn base_url_path(
    host: &str,
    path_and_query: &str,
    account: Option<&str>,
) -> Result<Option<String>, HttpError> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    // On a label boundary: `evilairlock.internal` is not under the domain.
    let label = if host == BASE_URL_DOMAIN {
        ""
    } else {
        match host
            .strip_suffix(BASE_URL_DOMAIN)
            .and_then(|l| l.strip_suffix('.'))
        {
            Some(label) => label,
            None => return Ok(None),
        }
    };
    let Some(account) = account else {
        return Err(HttpError::InvalidRequest(format!(
            "a URL on {host} stands for an account's base URL and needs {ACCOUNT}"
        )));
    };
    if !account.starts_with("acc_") && !label.eq_ignore_ascii_case(account) {
        return Err(HttpError::InvalidRequest(format!(
            "the URL names {host} but {ACCOUNT} is {account:?}; use {account}.{BASE_URL_DOMAIN}"
        )));
    }
    let path = if path_and_query.is_empty() {
        "/"
    } else {
        path_and_query
    };
    Ok(Some(path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn control_headers_are_taken_out_and_the_rest_kept() {
        let (c, rest) = split(h(&[
            ("X-Airlock-Account", "github"),
            ("accept", "application/json"),
        ]))
        .unwrap();
        assert_eq!(c.account.as_deref(), Some("github"));
        assert_eq!(rest, h(&[("accept", "application/json")]));
        let (c, _) = split(h(&[("x-airlock-auth", "basic svc API_PW")])).unwrap();
        assert_eq!(
            c.auth,
            Some(AuthSpec::Basic {
                username: "svc".into(),
                secret: "API_PW".into()
            })
        );
    }

    #[test]
    fn unknown_repeated_conflicting_and_malformed_ones_are_refused() {
        for headers in [
            h(&[("x-airlock-acount", "github")]),
            h(&[("x-airlock-account", "a"), ("x-airlock-account", "b")]),
            h(&[("x-airlock-account", "a"), ("x-airlock-auth", "bearer T")]),
            h(&[("x-airlock-auth", "bearer")]),
            h(&[("x-airlock-auth", "digest T")]),
            h(&[("x-airlock-auth", "header x-key")]),
            h(&[("x-airlock-account", " ")]),
        ] {
            assert!(
                matches!(split(headers.clone()), Err(HttpError::InvalidRequest(_))),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn the_base_url_host_needs_a_matching_account() {
        assert_eq!(
            base_url_path("github.airlock.internal", "/user?a=1", Some("github")).unwrap(),
            Some("/user?a=1".into())
        );
        assert_eq!(
            base_url_path("x.airlock.internal", "", Some("acc_123")).unwrap(),
            Some("/".into())
        );
        assert_eq!(base_url_path("api.github.com", "/", None).unwrap(), None);
        assert_eq!(
            base_url_path("evilairlock.internal", "/", None).unwrap(),
            None
        );
        assert!(base_url_path("github.airlock.internal", "/", None).is_err());
        assert!(base_url_path("slack.airlock.internal", "/", Some("github")).is_err());
    }

    #[test]
    fn signed_schemes_name_their_secrets() {
        let (c, _) = split(h(&[(
            "x-airlock-auth",
            "aws-sigv4 AKIDEXAMPLE AWS_KEY us-east-1 s3 AWS_TOKEN",
        )]))
        .unwrap();
        assert_eq!(
            c.auth,
            Some(AuthSpec::AwsSigV4 {
                access_key_id: "AKIDEXAMPLE".into(),
                secret: "AWS_KEY".into(),
                region: "us-east-1".into(),
                service: "s3".into(),
                session_token: Some("AWS_TOKEN".into()),
            })
        );
        let (c, _) = split(h(&[("x-airlock-auth", "aws-sigv4 AKID K eu-west-1 sts")])).unwrap();
        assert!(matches!(
            c.auth,
            Some(AuthSpec::AwsSigV4 {
                session_token: None,
                ..
            })
        ));
        let (c, _) = split(h(&[("x-airlock-auth", "digest Mufasa PW")])).unwrap();
        assert_eq!(
            c.auth,
            Some(AuthSpec::Digest {
                username: "Mufasa".into(),
                secret: "PW".into()
            })
        );
        for bad in [
            "aws-sigv4 AKID K us-east-1",
            "aws-sigv4 A K r s T extra",
            "digest PW",
        ] {
            assert!(split(h(&[("x-airlock-auth", bad)])).is_err(), "{bad}");
        }
        // The session token's secret is checked against the grant too.
        let secrets = RunSecrets::new(
            crate::secrets::SecretGrants {
                names: ["AWS_KEY".to_string()].into(),
                reveal: Default::default(),
            },
            [("AWS_KEY".to_string(), Zeroizing::new("k".to_string()))],
        );
        let (c, _) = split(h(&[(
            "x-airlock-auth",
            "aws-sigv4 AKID AWS_KEY us-east-1 s3 AWS_TOKEN",
        )]))
        .unwrap();
        assert!(
            matches!(credential(c, &secrets), Err(HttpError::Denied(m)) if m.contains("AWS_TOKEN"))
        );
    }
}
