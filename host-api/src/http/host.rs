//! `airlock:step/http`: the guest's side of the pipeline. Secret handles in
//! `auth` are resolved here, host-side; the value never enters the guest.

use wasmtime::component::Resource;
use zeroize::Zeroizing;

use crate::StepHost;
use crate::bindings::http::{Auth, Error, Header, Host, Request, Response};
use crate::http::pipeline::{Caller, Credential, HttpError, OutboundRequest};
use crate::secrets::SecretHandle;

impl Host for StepHost {
    async fn send(&mut self, request: Request) -> wasmtime::Result<Result<Response, Error>> {
        let body = request.body.unwrap_or_default();
        let Some(http) = self.http.clone() else {
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
        let credential = match request.auth {
            None => None,
            Some(auth) => match self.credential(auth) {
                Ok(c) => Some(c),
                Err(e) => return Ok(Err(e)),
            },
        };
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
            project: &self.context.project,
            external_user_id: self.context.external_user_id.as_deref(),
            grants: &self.http_grants,
            deadline: self.deadline,
            redactor: &self.redactor,
            run_accounts: self.run_accounts.as_deref(),
        };
        let (result, summary) = http.send(&caller, outbound).await;
        self.http_calls
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
}

impl StepHost {
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
        let name = &self
            .table
            .get(handle)
            .map_err(|_| {
                Error::InvalidRequest("a secret handle that is not valid in this run".into())
            })?
            .name;
        self.secrets
            .value(name)
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
