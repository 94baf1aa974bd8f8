//! A mock host for native tests of a step: `cargo test` on the step's own
//! crate, no component, no Airlock.
//!
//! ```
//! use airlock_sdk::testing::{MockHost, MockResponse};
//! use airlock_sdk::{http, log, secrets};
//!
//! // The step's code, as it would run in Airlock.
//! fn step() -> Result<u16, airlock_sdk::Error> {
//!     let key = secrets::get("API_KEY")?;
//!     let r = http::get("/user").account("github").send()?;
//!     log::info(format!("key {} gave {}", key.reveal()?, r.status()));
//!     Ok(r.status())
//! }
//!
//! let host = MockHost::new()
//!     .revealable_secret("API_KEY", "sk_test_123")
//!     .account("github", |req| {
//!         assert_eq!(req.url, "/user");
//!         MockResponse::json(200, &serde_json::json!({"login": "ada"}))
//!     });
//! assert_eq!(host.run(step).unwrap(), 200);
//! // Logs are captured, with secret values masked as Airlock masks them.
//! assert_eq!(host.logs()[0].message, "key [REDACTED:API_KEY] gave 200");
//! assert_eq!(host.requests()[0].account.as_deref(), Some("github"));
//! ```
//!
//! What the mock does like the host: secrets need a grant (`secret` or
//! `revealable_secret`), `reveal` needs the revealable one, HMAC uses the
//! secret's value, restricted request headers (`authorization`, `cookie`,
//! ...) are refused, and logs mask every secret value. What it does not:
//! no network at all — a request is answered by the handler registered for
//! its account ([`MockHost::account`]) or URL prefix ([`MockHost::url`]),
//! otherwise it is `denied`. Credentials are not inserted; a
//! [`MockRequest`] says which one the host would insert.
//!
//! A host function called natively outside [`MockHost::run`] panics with a
//! message saying so (only that test fails). `wasi:http` clients (`wstd`)
//! are not mocked: they need a component.

pub(crate) mod native;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::context::{Context, Trigger};

/// One captured log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockLog {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// Masked like the host masks it.
    pub message: String,
}

/// Which credential a request asked the host to insert (names, no values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockAuth {
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
    /// `.aws_sigv4(...)`: the secret key's (and session token's) secret names.
    AwsSigV4 {
        access_key_id: String,
        secret_key: String,
        session_token: Option<String>,
        region: String,
        service: String,
    },
    Digest {
        username: String,
        secret: String,
    },
}

/// A request the step made.
#[derive(Debug, Clone)]
pub struct MockRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The account (app slug or `acc_` id) named with `.account(...)`.
    pub account: Option<String>,
    /// The secret credential named with `.bearer(...)` and friends.
    pub auth: Option<MockAuth>,
    /// The timeout the step asked for.
    pub timeout: Option<std::time::Duration>,
}

impl MockRequest {
    /// The body as JSON (panics if it is not: this is a test helper).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }
}

/// A canned answer.
#[derive(Debug, Clone)]
pub struct MockResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl MockResponse {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn json(status: u16, value: &impl serde::Serialize) -> Self {
        Self::new(status, serde_json::to_vec(value).expect("serializable"))
            .header("content-type", "application/json")
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

pub(crate) type Handler = Rc<dyn Fn(&MockRequest) -> MockResponse>;

pub(crate) struct MockSecret {
    pub(crate) value: String,
    pub(crate) revealable: bool,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) secrets: BTreeMap<String, MockSecret>,
    pub(crate) accounts: Vec<(String, Handler)>,
    pub(crate) urls: Vec<(String, Handler)>,
    pub(crate) context: Option<Context>,
    pub(crate) attempt: Option<u32>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) logs: Vec<MockLog>,
    pub(crate) requests: Vec<MockRequest>,
}

/// The host a native test runs a step against. Build it, then call the
/// step's code inside [`MockHost::run`].
#[derive(Clone, Default)]
pub struct MockHost {
    pub(crate) state: Rc<RefCell<State>>,
}

impl MockHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// A granted secret the step may use (handles, HMAC, HTTP auth) but
    /// not reveal.
    pub fn secret(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.add_secret(name.into(), value.into(), false)
    }

    /// A granted secret the step may also `reveal`.
    pub fn revealable_secret(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.add_secret(name.into(), value.into(), true)
    }

    fn add_secret(self, name: String, value: String, revealable: bool) -> Self {
        self.state
            .borrow_mut()
            .secrets
            .insert(name, MockSecret { value, revealable });
        self
    }

    /// Answers requests made with `.account(app_or_id)`.
    pub fn account(
        self,
        app_or_id: impl Into<String>,
        handler: impl Fn(&MockRequest) -> MockResponse + 'static,
    ) -> Self {
        self.state
            .borrow_mut()
            .accounts
            .push((app_or_id.into(), Rc::new(handler)));
        self
    }

    /// Answers requests without an account whose URL starts with `prefix`.
    pub fn url(
        self,
        prefix: impl Into<String>,
        handler: impl Fn(&MockRequest) -> MockResponse + 'static,
    ) -> Self {
        self.state
            .borrow_mut()
            .urls
            .push((prefix.into(), Rc::new(handler)));
        self
    }

    /// The run context `context::get()` returns (default: run `run_test`,
    /// step `test`, project `local`, end user `user-test`, trigger CLI).
    pub fn context(self, context: Context) -> Self {
        self.state.borrow_mut().context = Some(context);
        self
    }

    /// The attempt number `context::attempt()` returns (default 1), to test
    /// what a step does when it runs again.
    pub fn attempt(self, attempt: u32) -> Self {
        self.state.borrow_mut().attempt = Some(attempt);
        self
    }

    /// The key `context::idempotency_key()` returns (default none).
    pub fn idempotency_key(self, key: impl Into<String>) -> Self {
        self.state.borrow_mut().idempotency_key = Some(key.into());
        self
    }

    /// Runs `f` with this host serving the current thread's host calls;
    /// the host installed before (if any) is restored afterwards.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        // Restored even when `f` panics (a failing assertion).
        struct Guard(Option<Rc<RefCell<State>>>);
        impl Drop for Guard {
            fn drop(&mut self) {
                native::install(self.0.take());
            }
        }
        let _guard = Guard(native::install(Some(self.state.clone())));
        f()
    }

    /// Runs a step's `run` function on JSON input, as Airlock would: the
    /// input parsed into its type, the output or error as JSON text.
    pub fn run_json<In, Out>(
        &self,
        run: impl FnOnce(In) -> Result<Out, crate::Error>,
        input: &str,
    ) -> Result<String, String>
    where
        In: serde::de::DeserializeOwned,
        Out: serde::Serialize,
    {
        self.run(|| crate::__private::run_json(input, run))
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<MockLog> {
        self.state.borrow().logs.clone()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<MockRequest> {
        self.state.borrow().requests.clone()
    }
}

pub(crate) fn default_context() -> Context {
    Context {
        run_id: "run_test".into(),
        step: "test".into(),
        project: "local".into(),
        external_user_id: Some("user-test".into()),
        trigger: Trigger::Cli,
    }
}
