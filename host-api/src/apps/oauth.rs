//! The `[oauth]` table of an app file: what the authorization-code flow
//! (RFC 6749 §4.1, with PKCE, RFC 7636) needs to know about a provider.
//!
//! ```toml
//! [oauth]
//! authorize_url = "https://{{custom_fields.instance}}.my.salesforce.com/services/oauth2/authorize"
//! token_url = "https://{{custom_fields.instance}}.my.salesforce.com/services/oauth2/token"
//! scopes = ["api", "refresh_token"]
//! scope_separator = " "          # default " "
//! authorize_params = { prompt = "consent" }
//! client_auth = "basic"          # basic (default) | body
//! pkce = true                    # default true (S256)
//! ```
//!
//! Why these choices:
//!
//! - **PKCE on by default, S256 only.** A code intercepted on its way back
//!   (a leaky redirect, a log) is useless without the verifier, which never
//!   leaves the host. `plain` gives no such protection and is not offered;
//!   `pkce = false` exists only for providers that reject the parameters.
//! - **The host owns the protocol parameters.** `client_id`,
//!   `redirect_uri`, `response_type`, `scope`, `state` and the code
//!   challenge cannot be set through `authorize_params`, so an app file
//!   cannot weaken the flow (e.g. a fixed `state`) or send users elsewhere.
//! - **URLs are templates checked like base URLs**: a custom field inside
//!   one must match its pattern and may bring no `/`, `@` or `:` into a
//!   host, so a user-typed subdomain cannot point the token request (which
//!   carries the client secret) at another host.
//! - **Client authentication** is HTTP Basic by default (RFC 6749 §2.3.1
//!   says servers must support it); `body` sends `client_id` and
//!   `client_secret` as form fields for providers that only read those.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::load::Ctx;
use super::template::Template;
use super::{App, AppError, CatalogError};

/// How the token request authenticates the OAuth client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// `Authorization: Basic base64(urlencode(id):urlencode(secret))`.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
}

impl ClientAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Basic => "basic",
            ClientAuth::Body => "body",
        }
    }
}

/// OAuth 2 authorization-code endpoints, scopes and client settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSpec {
    pub authorize_url: Template,
    pub token_url: Template,
    pub scopes: Vec<String>,
    pub scope_separator: String,
    /// Extra authorize-URL parameters (e.g. `access_type = "offline"`).
    pub authorize_params: BTreeMap<String, String>,
    pub client_auth: ClientAuth,
    /// Whether the flow sends an S256 code challenge (RFC 7636).
    pub pkce: bool,
}

impl OAuthSpec {
    /// The scopes joined with the separator, for the `scope` parameter.
    pub fn scope_param(&self) -> String {
        self.scopes.join(&self.scope_separator)
    }
}

/// The `[oauth]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OAuthFile {
    authorize_url: String,
    token_url: String,
    #[serde(default)]
    scopes: Vec<String>,
    scope_separator: Option<String>,
    #[serde(default)]
    authorize_params: BTreeMap<String, String>,
    #[serde(default)]
    client_auth: ClientAuth,
    pkce: Option<bool>,
}

/// Authorize-URL parameters the host sets itself.
const RESERVED_OAUTH_PARAMS: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

pub(super) fn parse(
    ctx: &Ctx<'_>,
    o: OAuthFile,
    declared: &BTreeSet<&str>,
) -> Result<OAuthSpec, CatalogError> {
    let authorize_url = ctx.url("oauth.authorize_url", &o.authorize_url, declared, true)?;
    let token_url = ctx.url("oauth.token_url", &o.token_url, declared, true)?;
    let scope_separator = o.scope_separator.unwrap_or_else(|| " ".to_owned());
    if scope_separator.is_empty() {
        return Err(ctx.invalid("oauth.scope_separator", "must not be empty"));
    }
    for (i, scope) in o.scopes.iter().enumerate() {
        if scope.is_empty()
            || scope.chars().any(|c| c.is_whitespace() || c.is_control())
            || scope.contains(&scope_separator)
        {
            return Err(ctx.invalid(
                format!("oauth.scopes[{i}]"),
                format!("{scope:?} must be non-empty, without whitespace or the separator"),
            ));
        }
    }
    for (key, value) in &o.authorize_params {
        if key.is_empty() || RESERVED_OAUTH_PARAMS.contains(&key.as_str()) {
            return Err(ctx.invalid(
                format!("oauth.authorize_params.{key}"),
                "is set by the host",
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(ctx.invalid(
                format!("oauth.authorize_params.{key}"),
                "must not contain control characters",
            ));
        }
    }
    Ok(OAuthSpec {
        authorize_url,
        token_url,
        scopes: o.scopes,
        scope_separator,
        authorize_params: o.authorize_params,
        client_auth: o.client_auth,
        pkce: o.pkce.unwrap_or(true),
    })
}

/// What the host puts into an authorization request besides the app's own
/// parameters.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizeRequest<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub state: &'a str,
    /// The S256 challenge; `None` only when the app sets `pkce = false`.
    pub code_challenge: Option<&'a str>,
}

impl App {
    /// The URL to send the user to (RFC 6749 §4.1.1): the app's authorize
    /// URL with custom fields substituted and checked, its extra parameters,
    /// then the host's (`response_type=code`, `client_id`, `redirect_uri`,
    /// `scope`, `state`, `code_challenge` with `S256`), all form-encoded.
    /// Errors name the custom field at fault, never a value.
    pub fn authorize_url(
        &self,
        fields: &BTreeMap<String, String>,
        request: AuthorizeRequest<'_>,
    ) -> Result<String, AppError> {
        let (authorize, _) =
            self.resolve_oauth_urls(fields)?
                .ok_or_else(|| AppError::InvalidUrl {
                    app: self.slug.clone(),
                    what: "oauth",
                    reason: "the app has no OAuth endpoints".to_owned(),
                })?;
        let spec = self.oauth.as_ref().expect("resolved above");
        let mut url = url::Url::parse(&authorize).map_err(|e| AppError::InvalidUrl {
            app: self.slug.clone(),
            what: "oauth.authorize_url",
            reason: e.to_string(),
        })?;
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in &spec.authorize_params {
                query.append_pair(k, v);
            }
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", request.client_id)
                .append_pair("redirect_uri", request.redirect_uri);
            if !spec.scopes.is_empty() {
                query.append_pair("scope", &spec.scope_param());
            }
            query.append_pair("state", request.state);
            if let Some(challenge) = request.code_challenge {
                query
                    .append_pair("code_challenge", challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        Ok(url.into())
    }

    /// The custom fields an OAuth app's authorize or token URL uses: what
    /// the hosted page must ask for before the flow starts.
    pub fn oauth_url_fields(&self) -> BTreeSet<&str> {
        let mut names = BTreeSet::new();
        if let Some(spec) = &self.oauth {
            for template in [&spec.authorize_url, &spec.token_url] {
                for p in template.placeholders() {
                    if let super::Placeholder::CustomField(name) = p {
                        names.insert(name.as_str());
                    }
                }
            }
        }
        names
    }
}
