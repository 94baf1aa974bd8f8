//! The http capability: `airlock:step/http`, the guest's side of the
//! pipeline. Secret handles in `auth` are resolved here, host-side, through
//! the secrets capability's state; the value never enters the guest.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::{HasData, Linker, Resource};
use zeroize::Zeroizing;

use crate::bindings::http::{
    self, Auth, AwsSigv4, BasicAuth, Error, Header, Host, Request, Response,
};
use crate::capability::{Capability, RunHost, RunSetup, RunShared, StoreData};
use crate::http::pipeline::{
    AwsCredentials, AwsSigV4Auth, CallSummary, Caller, Credential, HttpError, HttpGrants,
    OutboundRequest, Pipeline,
};
use crate::http::run_accounts::RunAccounts;
use crate::secrets::{SecretHandle, SecretsState};

/// `airlock:step/http`; needs [`Secrets`](crate::secrets::Secrets)
/// registered. Holds the engine's one outbound pipeline; `None` denies
/// every request.
pub struct Http {
    pipeline: Option<Arc<Pipeline>>,
}

impl Http {
    pub fn new(pipeline: Option<Arc<Pipeline>>) -> Self {
        Self { pipeline }
    }
}

/// One run's outbound HTTP: the pipeline, the manifest's grants, the run's
/// deadline and passed accounts, and the record of every call (shared with
/// the run's `wasi:http` requests).
pub struct HttpState {
    pub(crate) pipeline: Option<Arc<Pipeline>>,
    pub(crate) grants: HttpGrants,
    pub(crate) run_accounts: Option<Arc<RunAccounts>>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) calls: Arc<Mutex<Vec<CallSummary>>>,
}

impl HttpState {
    /// The outbound calls made so far (`http.send` and `wasi:http`), without
    /// credentials.
    pub fn calls(&self) -> Vec<CallSummary> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

pub struct HttpView<'a> {
    shared: &'a RunShared,
    state: &'a mut HttpState,
    secrets: &'a mut SecretsState,
}

impl HasData for Http {
    type Data<'a> = HttpView<'a>;
}

impl Capability for Http {
    type State = HttpState;

    fn add_to_linker<T: StoreData>(&self, linker: &mut Linker<T>) -> wasmtime::Result<()> {
        http::add_to_linker::<T, Http>(linker, |t| {
            let (shared, state, secrets) = t.run_host().view2::<HttpState, SecretsState>();
            HttpView {
                shared,
                state,
                secrets,
            }
        })
    }

    /// Credentials passed with the run are registered with its redactor
    /// here, before the guest starts.
    fn prepare(&self, setup: &mut RunSetup, host: &RunHost) -> HttpState {
        if let Some(accounts) = &setup.run_accounts {
            accounts.register(host.redactor());
        }
        HttpState {
            pipeline: self.pipeline.clone(),
            grants: std::mem::take(&mut setup.http_grants),
            run_accounts: setup.run_accounts.clone(),
            deadline: setup.deadline,
            calls: Arc::default(),
        }
    }
}

impl Host for HttpView<'_> {
    async fn send(&mut self, mut request: Request) -> wasmtime::Result<Result<Response, Error>> {
        let credential = match request.auth.take() {
            None => None,
            Some(auth) => match self.credential(auth) {
                Ok(c) => Some(c),
                Err(e) => return Ok(Err(e)),
            },
        };
        self.send_as(request, credential).await
    }

    async fn send_aws_sigv4(
        &mut self,
        request: Request,
        auth: AwsSigv4,
    ) -> wasmtime::Result<Result<Response, Error>> {
        if request.auth.is_some() {
            return Ok(Err(signed_with_auth()));
        }
        let secret_key = match self.secret_value(&auth.secret_key) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let session_token = match auth.session_token.as_ref().map(|h| self.secret_value(h)) {
            Some(Err(e)) => return Ok(Err(e)),
            Some(Ok(v)) => Some(v),
            None => None,
        };
        let credential = Credential::AwsSigV4(Box::new(AwsSigV4Auth {
            credentials: AwsCredentials {
                access_key_id: auth.access_key_id,
                secret_key,
                session_token,
            },
            region: auth.region,
            service: auth.service,
        }));
        self.send_as(request, Some(credential)).await
    }

    async fn send_digest(
        &mut self,
        request: Request,
        auth: BasicAuth,
    ) -> wasmtime::Result<Result<Response, Error>> {
        if request.auth.is_some() {
            return Ok(Err(signed_with_auth()));
        }
        let credential = match self.secret_value(&auth.password) {
            Ok(password) => Credential::Digest {
                username: auth.username,
                password,
            },
            Err(e) => return Ok(Err(e)),
        };
        self.send_as(request, Some(credential)).await
    }
}

fn signed_with_auth() -> Error {
    Error::InvalidRequest(
        "a signed request carries its credential in the second argument; `request.auth` must be none"
            .into(),
    )
}

impl HttpView<'_> {
    /// Sends `request` through the pipeline with `credential` (already
    /// read host-side from the guest's handles).
    async fn send_as(
        &mut self,
        request: Request,
        credential: Option<Credential>,
    ) -> wasmtime::Result<Result<Response, Error>> {
        let body = request.body.unwrap_or_default();
        let Some(http) = self.state.pipeline.clone() else {
            return Ok(Err(Error::Denied(
                "outbound HTTP is not available to this run".into(),
            )));
        };
        if body.len() > http.config().max_request_body {
            return Ok(Err(Error::TooLarge(format!(
                "request body of {} bytes exceeds the cap of {} bytes",
                body.len(),
                http.config().max_request_body
            ))));
        }
        let outbound = OutboundRequest {
            method: request.method,
            url: request.url,
            headers: request
                .headers
                .into_iter()
                .map(|h| (h.name, h.value))
                .collect(),
            body,
            timeout: request
                .timeout_ms
                .map(|ms| std::time::Duration::from_millis(ms.into())),
            credential,
        };
        let caller = Caller {
            project: &self.shared.context.project,
            external_user_id: self.shared.context.external_user_id.as_deref(),
            grants: &self.state.grants,
            deadline: self.state.deadline,
            redactor: &self.shared.redactor,
            run_accounts: self.state.run_accounts.as_deref(),
        };
        let (result, summary) = http.send(&caller, outbound).await;
        self.state
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(summary);
        Ok(result
            .map(|r| Response {
                status: r.status,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(name, value)| Header { name, value })
                    .collect(),
                body: r.body,
            })
            .map_err(to_wit))
    }

    /// Turns the guest's `auth` into a credential, reading secret values
    /// from handles. A handle's value is already registered with the
    /// redactor (at `secrets.get`).
    fn credential(&mut self, auth: Auth) -> Result<Credential, Error> {
        Ok(match auth {
            Auth::Account(id) => Credential::Account(id),
            Auth::Bearer(h) => Credential::Bearer(self.secret_value(&h)?),
            Auth::Basic(b) => Credential::Basic {
                username: b.username,
                password: self.secret_value(&b.password)?,
            },
            Auth::Header(n) => Credential::Header {
                value: self.secret_value(&n.secret)?,
                name: n.name,
            },
            Auth::Query(n) => Credential::Query {
                value: self.secret_value(&n.secret)?,
                name: n.name,
            },
        })
    }

    fn secret_value(&self, handle: &Resource<SecretHandle>) -> Result<Zeroizing<String>, Error> {
        let (name, value) = self.secrets.value_of(handle).map_err(|_| {
            Error::InvalidRequest("a secret handle that is not valid in this run".into())
        })?;
        value
            .map(|v| Zeroizing::new(v.to_string()))
            .ok_or_else(|| Error::CredentialUnusable(format!("secret {name} has no value")))
    }
}

fn to_wit(e: HttpError) -> Error {
    match e {
        HttpError::Denied(m) => Error::Denied(m),
        HttpError::InvalidRequest(m) => Error::InvalidRequest(m),
        HttpError::Timeout(m) => Error::Timeout(m),
        HttpError::TooLarge(m) => Error::TooLarge(m),
        HttpError::ConnectionFailed(m) => Error::ConnectionFailed(m),
        HttpError::CredentialUnusable(m) => Error::CredentialUnusable(m),
        HttpError::RateLimited(d) => Error::RateLimited(d.as_millis() as u64),
    }
}
