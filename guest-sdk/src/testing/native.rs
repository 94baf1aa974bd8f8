//! The native backend of [`crate::host`]: every host call goes to the
//! [`MockHost`](super::MockHost) installed on this thread, or panics with
//! a message naming the call.

use std::cell::RefCell;
use std::rc::Rc;

use hmac::{Hmac, Mac};

use super::{MockAuth, MockLog, MockRequest, State, default_context};
use crate::__bindings::airlock::step::{context, crypto, http, log, secrets};
use crate::host::OutRequest;
use crate::http::{Auth, Response};

thread_local! {
    static CURRENT: RefCell<Option<Rc<RefCell<State>>>> = const { RefCell::new(None) };
}

/// Installs `state`, returning the host it replaces (for nested use).
pub(crate) fn install(state: Option<Rc<RefCell<State>>>) -> Option<Rc<RefCell<State>>> {
    CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), state))
}

fn with<T>(call: &str, f: impl FnOnce(&mut State) -> T) -> T {
    let state = CURRENT.with(|c| c.borrow().clone()).unwrap_or_else(|| {
        panic!(
            "airlock_sdk: `{call}` is a host call, and there is no host here: natively it needs \
             a mock host. In a test, run the step's code inside \
             `airlock_sdk::testing::MockHost::new().run(|| ...)`; to run it for real, build for \
             wasm32-wasip2 and use `airlock run`."
        )
    });
    let mut state = state.borrow_mut();
    f(&mut state)
}

/// Natively a handle is the secret's name; the value stays in the mock.
pub(crate) type SecretHandle = String;

pub(crate) fn log(level: log::Level, message: &str) {
    with("log", |s| {
        let mut message = message.to_string();
        for (name, secret) in &s.secrets {
            if !secret.value.is_empty() {
                message = message.replace(&secret.value, &format!("[REDACTED:{name}]"));
            }
        }
        let level = match level {
            log::Level::Trace => "trace",
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        s.logs.push(MockLog { level, message });
    })
}

pub(crate) fn context() -> context::RunContext {
    with("context::get", |s| {
        let c = s.context.clone().unwrap_or_else(default_context);
        context::RunContext {
            run_id: c.run_id,
            step: c.step,
            project: c.project,
            external_user_id: c.external_user_id,
            trigger: match c.trigger {
                crate::context::Trigger::Cli => context::Trigger::Cli,
                crate::context::Trigger::Api => context::Trigger::Api,
                crate::context::Trigger::Http => context::Trigger::Http,
            },
        }
    })
}

pub(crate) fn attempt() -> u32 {
    with("context::attempt", |s| s.attempt.unwrap_or(1))
}

pub(crate) fn idempotency_key() -> Option<String> {
    with("context::idempotency_key", |s| s.idempotency_key.clone())
}

pub(crate) fn secret_get(name: &str) -> Result<SecretHandle, secrets::Error> {
    with("secrets::get", |s| {
        if s.secrets.contains_key(name) {
            Ok(name.to_string())
        } else {
            // As the host: a name outside the grant is not-granted.
            Err(secrets::Error::NotGranted)
        }
    })
}

pub(crate) fn secret_name(handle: &SecretHandle) -> String {
    handle.clone()
}

pub(crate) fn secret_reveal(handle: &SecretHandle) -> Result<String, secrets::Error> {
    with("Secret::reveal", |s| match s.secrets.get(handle) {
        Some(secret) if secret.revealable => Ok(secret.value.clone()),
        _ => Err(secrets::Error::RevealNotGranted),
    })
}

pub(crate) fn hmac(algorithm: crypto::HmacAlgorithm, key: &SecretHandle, data: &[u8]) -> Vec<u8> {
    let value = with("crypto::hmac", |s| {
        s.secrets
            .get(key)
            .map(|secret| secret.value.clone().into_bytes())
            .unwrap_or_default()
    });
    fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = <M as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    match algorithm {
        crypto::HmacAlgorithm::Sha256 => mac::<Hmac<sha2::Sha256>>(&value, data),
        crypto::HmacAlgorithm::Sha512 => mac::<Hmac<sha2::Sha512>>(&value, data),
        crypto::HmacAlgorithm::Sha1 => mac::<Hmac<sha1::Sha1>>(&value, data),
    }
}

/// Headers the host refuses from a step (the common ones; the host's
/// list is longer).
const RESTRICTED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
];

pub(crate) fn http_send(request: OutRequest<'_>) -> Result<Response, http::Error> {
    if let Some((name, _)) = request
        .headers
        .iter()
        .find(|(n, _)| RESTRICTED.contains(&n.to_ascii_lowercase().as_str()))
    {
        return Err(http::Error::InvalidRequest(format!(
            "header {name:?} may not be set by the caller; credentials are inserted by the host (use `auth`)"
        )));
    }
    let (account, auth) = match request.auth {
        None => (None, None),
        Some(Auth::Account(id)) => (Some(id.clone()), None),
        Some(Auth::Bearer(s)) => (
            None,
            Some(MockAuth::Bearer {
                secret: s.handle.clone(),
            }),
        ),
        Some(Auth::Basic(username, s)) => (
            None,
            Some(MockAuth::Basic {
                username: username.clone(),
                secret: s.handle.clone(),
            }),
        ),
        Some(Auth::Header(name, s)) => (
            None,
            Some(MockAuth::Header {
                name: name.clone(),
                secret: s.handle.clone(),
            }),
        ),
        Some(Auth::Query(name, s)) => (
            None,
            Some(MockAuth::Query {
                name: name.clone(),
                secret: s.handle.clone(),
            }),
        ),
        Some(Auth::AwsSigV4(aws)) => (
            None,
            Some(MockAuth::AwsSigV4 {
                access_key_id: aws.access_key_id.to_string(),
                secret_key: aws.secret_key.handle.clone(),
                session_token: aws.session_token.map(|t| t.handle.clone()),
                region: aws.region.to_string(),
                service: aws.service.to_string(),
            }),
        ),
        Some(Auth::Digest(username, s)) => (
            None,
            Some(MockAuth::Digest {
                username: username.clone(),
                secret: s.handle.clone(),
            }),
        ),
    };
    let mock = MockRequest {
        method: request.method.to_string(),
        url: request.url,
        headers: request.headers,
        body: request.body.unwrap_or_default(),
        account,
        auth,
        timeout: request
            .timeout_ms
            .map(|ms| std::time::Duration::from_millis(ms.into())),
    };
    // The handler is called with no borrow held: it may log, or make
    // assertions that panic.
    let handler = with("http::send", |s| {
        s.requests.push(mock.clone());
        match &mock.account {
            Some(id) => s.accounts.iter().find(|(a, _)| a == id),
            None => s
                .urls
                .iter()
                .find(|(prefix, _)| mock.url.starts_with(prefix.as_str())),
        }
        .map(|(_, h)| h.clone())
    });
    let Some(handler) = handler else {
        return Err(http::Error::Denied(match &mock.account {
            Some(id) => format!("the mock host has no account {id:?} (MockHost::account)"),
            None => format!(
                "the mock host answers no URL {:?} (MockHost::url)",
                mock.url
            ),
        }));
    };
    let r = handler(&mock);
    Ok(Response {
        status: r.status,
        headers: r.headers,
        body: r.body,
    })
}
