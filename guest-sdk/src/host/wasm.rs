//! The component backend: the `airlock:step` imports.

use crate::__bindings::airlock::step::{context, crypto, http, log, secrets};
use crate::http::{Auth, Response};

use super::OutRequest;

pub(crate) type SecretHandle = secrets::Secret;

pub(crate) fn log(level: log::Level, message: &str) {
    log::log(level, message);
}

pub(crate) fn context() -> context::RunContext {
    context::get()
}

pub(crate) fn attempt() -> u32 {
    context::attempt()
}

pub(crate) fn idempotency_key() -> Option<String> {
    context::idempotency_key()
}

pub(crate) fn secret_get(name: &str) -> Result<SecretHandle, secrets::Error> {
    secrets::get(name)
}

pub(crate) fn secret_name(handle: &SecretHandle) -> String {
    handle.name()
}

pub(crate) fn secret_reveal(handle: &SecretHandle) -> Result<String, secrets::Error> {
    handle.reveal()
}

pub(crate) fn hmac(algorithm: crypto::HmacAlgorithm, key: &SecretHandle, data: &[u8]) -> Vec<u8> {
    crypto::hmac(algorithm, key, data)
}

pub(crate) fn http_send(request: OutRequest<'_>) -> Result<Response, http::Error> {
    let request_auth = request.auth;
    let headers = request
        .headers
        .into_iter()
        .map(|(name, value)| http::Header { name, value })
        .collect();
    // The signed schemes travel in their own functions' second argument.
    let auth = request.auth.and_then(|a| {
        Some(match a {
            Auth::AwsSigV4(_) | Auth::Digest(..) => return None,
            Auth::Account(id) => http::Auth::Account(id.clone()),
            Auth::Bearer(s) => http::Auth::Bearer(&s.handle),
            Auth::Basic(user, s) => http::Auth::Basic(http::BasicAuth {
                username: user.clone(),
                password: &s.handle,
            }),
            Auth::Header(name, s) => http::Auth::Header(http::NamedSecret {
                name: name.clone(),
                secret: &s.handle,
            }),
            Auth::Query(name, s) => http::Auth::Query(http::NamedSecret {
                name: name.clone(),
                secret: &s.handle,
            }),
        })
    });
    let request = http::Request {
        method: request.method.to_string(),
        url: request.url,
        headers,
        body: request.body,
        timeout_ms: request.timeout_ms,
        auth,
    };
    let r = match request_auth {
        Some(Auth::AwsSigV4(aws)) => http::send_aws_sigv4(
            &request,
            &http::AwsSigv4 {
                access_key_id: aws.access_key_id.to_string(),
                secret_key: &aws.secret_key.handle,
                session_token: aws.session_token.map(|t| &t.handle),
                region: aws.region.to_string(),
                service: aws.service.to_string(),
            },
        )?,
        Some(Auth::Digest(username, password)) => http::send_digest(
            &request,
            &http::BasicAuth {
                username: username.clone(),
                password: &password.handle,
            },
        )?,
        _ => http::send(&request)?,
    };
    Ok(Response {
        status: r.status,
        headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
        body: r.body,
    })
}
