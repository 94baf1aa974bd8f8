//! The credential-injecting proxy, `…/proxy/{url}`: a request sent upstream
//! with an end user's connected account, its credential inserted by the
//! server. [`Client::proxy`] takes the target as a plain URL (or a path
//! relative to the app's base URL) and does the encoding the route wants:
//! URL-safe base64 in the path, and each upstream header as
//! `x-airlock-proxy-<name>` (the server forwards only those).
//!
//! Which answer is whose: the route returns the upstream's status and body
//! as they are, and its own refusals (no such account, a domain the app
//! does not allow, the rate limit, …) in the API's error shape. So an
//! error status with the API's `{"error": {"code", "message"}}` body is
//! [`Error::Api`]; every other answer, 4xx and 5xx too, is the upstream's
//! [`ProxyResponse`]. For the same reason a 401 is not retried with a new
//! token and a 503 not retried at all (the upstream may have acted).

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

use crate::error::api_error_shaped;
use crate::{Client, Error};

/// The prefix that marks a header for the upstream.
pub const FORWARD_PREFIX: &str = "x-airlock-proxy-";

/// A request for the upstream.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    pub method: Method,
    /// A full URL (`https://api.example.com/v1/me`) or a path relative to
    /// the app's base URL (`/v1/me`).
    pub url: String,
    /// The end user the account belongs to.
    pub external_user_id: String,
    /// The connected account (`acc_…`) whose credential is inserted.
    pub account_id: String,
    /// Headers for the upstream, by their own names.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl ProxyRequest {
    /// A `GET` of `url` as `external_user_id` with `account_id`.
    pub fn get(
        url: impl Into<String>,
        external_user_id: impl Into<String>,
        account_id: impl Into<String>,
    ) -> Self {
        Self {
            method: Method::GET,
            url: url.into(),
            external_user_id: external_user_id.into(),
            account_id: account_id.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A JSON body (and `content-type: application/json`).
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.headers
            .push(("content-type".into(), "application/json".into()));
        self.body = Some(body.to_string().into_bytes());
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
}

/// The upstream's answer.
#[derive(Debug, Clone)]
pub struct ProxyResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl ProxyResponse {
    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `url` as the route's path segment: URL-safe base64 without padding.
pub fn encode_target(url: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
}

impl Client {
    /// Sends `request` upstream through the proxy of `project` (scope
    /// `proxy`); see the module's docs for which answers are errors.
    pub async fn proxy(
        &self,
        project: &str,
        request: &ProxyRequest,
    ) -> Result<ProxyResponse, Error> {
        if request.url.is_empty() {
            return Err(Error::InvalidArgument("the proxy URL is empty".into()));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let bad = || Error::InvalidArgument(format!("header {name:?} cannot be sent"));
            let name = HeaderName::from_bytes(format!("{FORWARD_PREFIX}{name}").as_bytes())
                .map_err(|_| bad())?;
            headers.append(name, HeaderValue::from_str(value).map_err(|_| bad())?);
        }
        let mut builder = self
            .request(
                request.method.clone(),
                &[
                    "v1",
                    "projects",
                    project,
                    "proxy",
                    &encode_target(&request.url),
                ],
            )?
            .query(&[
                ("external_user_id", request.external_user_id.as_str()),
                ("account_id", request.account_id.as_str()),
            ])
            .headers(headers);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = self
            .send_with(builder, crate::transport::Upstream::Yes)
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let retry_after = crate::transport::retry_after(&headers);
        let body = response.bytes().await.map_err(|e| self.connect(e))?;
        if (status.is_client_error() || status.is_server_error())
            && let Some(e) = api_error_shaped(status, retry_after, &body)
        {
            // The server refused the token itself: the next call fetches
            // a new one (not retried here, see `send_with`).
            if status == StatusCode::UNAUTHORIZED {
                self.forget_token().await;
            }
            return Err(e.into());
        }
        Ok(ProxyResponse {
            status,
            headers,
            body: body.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_url_safe_base64_without_padding() {
        // `?` and `>` give `/` and `+` in standard base64.
        assert_eq!(encode_target("/a?>"), "L2E_Pg");
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encode_target("https://x.test/v1/me?q=1&r=é"))
            .unwrap();
        assert_eq!(e, "https://x.test/v1/me?q=1&r=é".as_bytes());
    }
}
