//! `wasi:http/outgoing-handler` for standard HTTP clients (Rust `wstd`, JS
//! `fetch`, Python over wasi:http), through the one pipeline.
//!
//! Only `wasi:http/types` and `outgoing-handler` are linked, never
//! `incoming-handler`: a step makes requests, it does not serve them.
//! wasmtime-wasi-http is built without its own client
//! (`default-send-request` off), so the only way out is [`Hooks`]'s
//! `send_request`, which:
//!
//! 1. reads the body up to the pipeline's request cap (10 MiB by default)
//!    — never more is buffered;
//! 2. takes the host-only control headers out ([`control`]): every
//!    `x-airlock-*` header is removed, an unknown one refused;
//! 3. calls [`Pipeline::send_with`], so grants, the resolved-address check,
//!    https-only credentials, the rate limit, timeouts bounded by the run's
//!    wall time, response masking and the `http_calls` record are the same
//!    code as `http.send`;
//! 4. turns the answer into a `wasi:http` response.
//!
//! Decisions, and why:
//!
//! - The guest's restricted headers (`authorization`, `cookie`, `host`,
//!   framing and forwarding headers, ...) are refused when the guest sets
//!   them, through `forbidden_header_filter` with the pipeline's list
//!   ([`restricted_header`]), so a client learns at once, not at send. The
//!   one exception is `content-length`, which wasmtime-wasi-http enforces
//!   against the body written and the host then drops (the pipeline
//!   frames the body); the same filter strips restricted headers from
//!   responses before the guest sees them.
//! - Redirects are not followed here: the 3xx goes back to the client with
//!   `Location` masked like every header, and a client that follows it
//!   makes a new request, checked from the start.
//! - A rate-limited request gets a synthesized `429` with `Retry-After`,
//!   and an unusable credential a synthesized `401`, because that is what
//!   a standard client's retry and auth logic understands; the body says
//!   it came from Airlock.
//! - A masked body can be shorter or longer than the upstream's, so the
//!   response's `Content-Length` is the masked body's.
//! - Every other refusal becomes a `wasi:http` error code, and its reason
//!   (never a credential) a warning line in the run's log, since error
//!   codes carry little text.

pub mod control;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi_http::{
    Error, ForbiddenHeaderFilter, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView,
    WasiHttpHooks,
};

use crate::capability::{Capability, RunHost, RunSetup, StoreData};
use crate::http::HttpState;
use crate::http::pipeline::{
    CallSummary, Caller, HttpError, HttpGrants, OutboundRequest, OutboundResponse, Pipeline,
    SendOptions, restricted_header,
};
use crate::http::run_accounts::RunAccounts;
use crate::log::{LogLevel, LogSink, Source};
use crate::redact::Redactor;
use crate::secrets::{RunSecrets, SecretsState};

/// What one run's requests need, shared with the futures the hooks spawn
/// (they outlive the borrow of the store). Taken from the http and
/// secrets capabilities' states: the same pipeline, grants, deadline,
/// accounts, secrets, redactor and call records as `http.send`.
struct RunHttp {
    /// `None` denies every request.
    pipeline: Option<Arc<Pipeline>>,
    project: String,
    external_user_id: Option<String>,
    grants: HttpGrants,
    deadline: Option<Instant>,
    redactor: Arc<Redactor>,
    run_accounts: Option<Arc<RunAccounts>>,
    secrets: Arc<RunSecrets>,
    log: Arc<LogSink>,
    /// The run's call records, shared with `http.send`'s.
    calls: Arc<Mutex<Vec<CallSummary>>>,
}

/// `wasi:http/types` and `wasi:http/outgoing-handler` (not
/// `incoming-handler`); needs [`Http`](crate::http::Http) and
/// [`Secrets`](crate::secrets::Secrets) registered before it.
pub struct WasiHttp;

impl Capability for WasiHttp {
    type State = WasiHttpRun;

    fn add_to_linker<T: StoreData>(&self, linker: &mut Linker<T>) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
    }

    fn prepare(&self, _: &mut RunSetup, host: &RunHost) -> WasiHttpRun {
        let http = host
            .state::<HttpState>()
            .expect("wasi:http is registered after http");
        let secrets = host
            .state::<SecretsState>()
            .expect("wasi:http is registered after secrets");
        let context = host.context();
        WasiHttpRun {
            ctx: WasiHttpCtx::new(),
            hooks: Hooks(Arc::new(RunHttp {
                pipeline: http.pipeline.clone(),
                project: context.project.clone(),
                external_user_id: context.external_user_id.clone(),
                grants: http.grants.clone(),
                deadline: http.deadline,
                redactor: host.redactor().clone(),
                run_accounts: http.run_accounts.clone(),
                secrets: secrets.secrets().clone(),
                log: host.log_sink().clone(),
                calls: http.calls.clone(),
            })),
        }
    }
}

/// The per-run `wasi:http` state kept in the store.
pub struct WasiHttpRun {
    ctx: WasiHttpCtx,
    hooks: Hooks,
}

impl WasiHttpRun {
    /// The view wasmtime-wasi-http's `Host` impls work on. `table` must be
    /// the run's WASI table: requests, bodies and pollables live there
    /// next to `wasi:io` streams.
    pub fn view<'a>(&'a mut self, table: &'a mut ResourceTable) -> WasiHttpCtxView<'a> {
        WasiHttpCtxView {
            ctx: &mut self.ctx,
            table,
            hooks: &mut self.hooks,
        }
    }
}

struct Hooks(Arc<RunHttp>);

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

impl WasiHttpHooks for Hooks {
    /// The pipeline's restricted list, but for `content-length`: clients
    /// (Python's `http.client`, JS `fetch`) set it, wasmtime-wasi-http
    /// holds the body written to it, and the host drops it before the
    /// pipeline, which frames the body itself. Allowing it also lets the
    /// guest see the masked body's length on the response.
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(|name| name != http::header::CONTENT_LENGTH && restricted_header(name.as_str()))
    }

    /// The pipeline sets `Host` from the URL it checked.
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send> {
        let run = self.0.clone();
        Box::new(async move {
            let response = run.send(request, options).await?;
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}

impl RunHttp {
    async fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, Error> {
        let is_head = request.method() == http::Method::HEAD;
        let result = match self.prepare(request, options).await {
            Ok((pipeline, outbound)) => {
                let caller = Caller {
                    project: &self.project,
                    external_user_id: self.external_user_id.as_deref(),
                    grants: &self.grants,
                    deadline: self.deadline,
                    redactor: &self.redactor,
                    run_accounts: self.run_accounts.as_deref(),
                };
                let options = SendOptions {
                    follow_redirects: false,
                };
                let (result, summary) = pipeline.send_with(&caller, outbound, options).await;
                self.calls
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(summary);
                result
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(r) => Ok(response(r, is_head)),
            Err(HttpError::RateLimited(after)) => {
                self.warn(&HttpError::RateLimited(after));
                let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                Ok(synthesized(
                    429,
                    Some(secs.max(1)),
                    "rate limited by Airlock: the project's request quota is spent".into(),
                ))
            }
            Err(HttpError::CredentialUnusable(m)) => {
                let m = self.redactor.redact(&m).into_owned();
                self.warn(&HttpError::CredentialUnusable(m.clone()));
                Ok(synthesized(
                    401,
                    None,
                    format!("Airlock could not use the credential: {m}"),
                ))
            }
            Err(e) => Err(self.refuse(e)),
        }
    }

    /// The guest's request as the pipeline takes it: body read within the
    /// cap, control headers out, credential named, URL resolved.
    ///
    /// The body is read first, before any refusal: a client writes its
    /// body while it waits for the answer, and a body stream closed under
    /// it would surface as a write error instead of the reason.
    async fn prepare(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(&Pipeline, OutboundRequest), HttpError> {
        let (parts, body) = request.into_parts();
        let cap = self.pipeline.as_ref().map_or_else(
            || crate::http::pipeline::HttpConfig::default().max_request_body,
            |p| p.config().max_request_body,
        );
        let body = Limited::new(body, cap)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    HttpError::TooLarge(format!("the request body exceeds the cap of {cap} bytes"))
                } else {
                    HttpError::InvalidRequest(format!("the request body could not be read: {e}"))
                }
            })?
            .to_bytes()
            .to_vec();
        let Some(pipeline) = self.pipeline.as_deref() else {
            return Err(HttpError::Denied(
                "outbound HTTP is not available to this run".into(),
            ));
        };
        let mut headers = Vec::with_capacity(parts.headers.len());
        for (name, value) in &parts.headers {
            // wasmtime-wasi-http checked it against the body; the pipeline
            // frames the body itself.
            if name == http::header::CONTENT_LENGTH {
                continue;
            }
            let value = value.to_str().map_err(|_| {
                HttpError::InvalidRequest(format!("header {name} is not visible ASCII"))
            })?;
            headers.push((name.as_str().to_string(), value.to_string()));
        }
        let (control, headers) = control::split(headers)?;
        let host = parts.uri.host().unwrap_or_default();
        let path = parts.uri.path_and_query().map_or("", |p| p.as_str());
        let url = match control::base_url_path(host, path, control.account.as_deref())? {
            Some(relative) => relative,
            None => parts.uri.to_string(),
        };
        let credential = control::credential(control, &self.secrets)?;
        let outbound = OutboundRequest {
            method: parts.method.as_str().to_string(),
            url,
            headers,
            body,
            timeout: timeout(options),
            credential,
        };
        Ok((pipeline, outbound))
    }

    /// Logs why a request failed and gives the guest the error code.
    fn refuse(&self, e: HttpError) -> Error {
        self.warn(&e);
        code(&e)
    }

    fn warn(&self, e: &HttpError) {
        // Over the log cap the line is dropped; the run still gets the
        // error code, and the cap itself ends the run at its next write.
        let _ = self.log.push_line(
            Source::Log(LogLevel::Warn),
            format!("airlock: wasi:http request failed: {e}"),
        );
    }
}

/// A client's timeouts as one total: connect plus first byte when the
/// first-byte timeout is set; otherwise the pipeline's default. Either is
/// bounded by the run's wall time in the pipeline.
fn timeout(options: Option<RequestOptions>) -> Option<Duration> {
    let o = options?;
    o.first_byte_timeout
        .map(|first| first + o.connect_timeout.unwrap_or_default())
}

/// The `wasi:http` error code for a refusal. Why messages are looked at:
/// the pipeline's `too-large` covers the URL, the header block and both
/// bodies, and `wasi:http` has a code for each.
fn code(e: &HttpError) -> Error {
    match e {
        HttpError::Denied(_) => Error::HttpRequestDenied,
        HttpError::InvalidRequest(m) => Error::InternalError(Some(format!("invalid request: {m}"))),
        HttpError::Timeout(_) => Error::HttpResponseTimeout,
        HttpError::TooLarge(m) if m.contains("response") => Error::HttpResponseBodySize(None),
        HttpError::TooLarge(m) if m.contains("request body") => Error::HttpRequestBodySize(None),
        HttpError::TooLarge(m) if m.contains("URL") => Error::HttpRequestUriTooLong,
        HttpError::TooLarge(_) => Error::HttpRequestHeaderSectionSize(None),
        HttpError::ConnectionFailed(m) if m.starts_with("could not connect") => {
            Error::ConnectionRefused
        }
        HttpError::ConnectionFailed(_) => Error::HttpProtocolError,
        // Answered as 401 and 429 before this; kept total for safety.
        HttpError::CredentialUnusable(_) => Error::HttpRequestDenied,
        HttpError::RateLimited(_) => Error::ConnectionLimitReached,
    }
}

/// Headers that describe the upstream's framing, which no longer holds
/// once the body is read whole and masked.
const FRAMING: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
];

fn response(r: OutboundResponse, is_head: bool) -> http::Response<WasiBody> {
    let mut builder = http::Response::builder().status(r.status);
    // A HEAD answer or a 204/304 has no body; its Content-Length describes
    // the resource, so the upstream's value stands.
    let keep_length = is_head || matches!(r.status, 204 | 304);
    for (name, value) in &r.headers {
        let lower = name.to_ascii_lowercase();
        if FRAMING.contains(&lower.as_str()) && !(keep_length && lower == "content-length") {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            builder = builder.header(n, v);
        }
    }
    if !keep_length {
        builder = builder.header(http::header::CONTENT_LENGTH, r.body.len());
    }
    builder
        .body(body(r.body))
        .unwrap_or_else(|_| synthesized(502, None, "the upstream's answer was malformed".into()))
}

fn synthesized(status: u16, retry_after: Option<u64>, message: String) -> http::Response<WasiBody> {
    let mut builder = http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(http::header::CONTENT_LENGTH, message.len());
    if let Some(secs) = retry_after {
        builder = builder.header(http::header::RETRY_AFTER, secs);
    }
    builder
        .body(body(message.into_bytes()))
        .expect("a status and headers known to be valid")
}

fn body(bytes: Vec<u8>) -> WasiBody {
    Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed_unsync()
}
