//! The app catalog: which external APIs a step may call with an end user's
//! connected account, and how the host inserts that account's credential.
//!
//! An app is data, not code: one TOML file per app, named `<slug>.toml`.
//! The shipped apps live in `host-api/apps/` and are embedded in the binary
//! ([`Catalog::builtin`]); an operator may add or override apps from a
//! directory ([`Catalog::load_dir`]). Every file is validated when loaded,
//! and errors name the file and the field (`apps/zendesk.toml:
//! custom_fields[0].pattern: invalid regex: ...`).
//!
//! ```toml
//! slug = "zendesk"                 # ^[a-z0-9][a-z0-9_-]{0,63}$, equal to the file stem
//! name = "Zendesk"
//! auth = "basic"                   # api-key | bearer | basic | oauth2 | custom
//! base_url = "https://{{custom_fields.subdomain}}.zendesk.com/api/v2"   # optional
//! allowed_domains = ["{{custom_fields.subdomain}}.zendesk.com"]
//! docs_url = "https://developer.zendesk.com/..."                        # optional
//!
//! [credential]                     # exactly one of header / query
//! header = "Authorization"
//! template = "Basic {{basic}}"
//!
//! [[custom_fields]]
//! name = "subdomain"
//! pattern = "^[a-z0-9][a-z0-9-]{0,62}$"
//! description = "Your Zendesk subdomain"
//!
//! [oauth]                          # required iff auth = "oauth2"
//! authorize_url = "https://..."
//! token_url = "https://..."
//! scopes = ["..."]
//! scope_separator = " "            # default " "
//! authorize_params = { access_type = "offline" }   # optional extras
//! client_auth = "basic"           # basic (default) | body: how the token request authenticates
//! pkce = true                      # default true: S256 code challenge (RFC 7636)
//!
//! [connect]
//! proxy_enabled = true             # default true
//! ```
//!
//! # Templates and why they are safe
//!
//! `base_url`, `allowed_domains` and the OAuth URLs may contain
//! `{{custom_fields.NAME}}`; the credential template contains credential
//! fields (`{{api_key}}`, `{{token}}`, `{{username}}`, `{{password}}`,
//! `{{access_token}}`, or for custom apps any name) and `{{basic}}`
//! (= base64 of `username:password`, for basic and custom apps).
//!
//! Values are inserted **verbatim**, with no escaping. What keeps a custom
//! field from redirecting a request is its `pattern`: an anchored regex
//! (`^...$`, and compiled as `^(?:...)$` regardless) that every value must
//! match before it is used. On top of that, a value substituted into a
//! URL's host (or into an `allowed_domains` entry) may only contain
//! `a-z 0-9 - .`, so no value can bring `/`, `@`, `:`, `?`, `#` or
//! whitespace into a host even under a lax operator-written pattern, and the
//! whole URL is checked again after substitution. Which part of a URL a
//! placeholder is in is decided by the template's literal text, never by
//! the values.
//!
//! Credential values are checked for control characters (no CR/LF header
//! injection) but otherwise also inserted verbatim; a query-placed value is
//! returned unencoded and the HTTP layer percent-encodes it.
//!
//! # Allowed domains
//!
//! Each entry is an exact host (`api.stripe.com`), a wildcard
//! (`*.slack.com`: any subdomain at any depth, *not* `slack.com` itself;
//! the suffix must have at least two labels), or a template of either
//! (`{{custom_fields.subdomain}}.zendesk.com`). Hosts are lowercase ASCII
//! without a port; IPv6 literals cannot be listed (use `127.0.0.1` or a name
//! for local test apps). The allow-list narrows where a credential may go; it
//! does not replace the network policy (private and metadata addresses are
//! refused at dial time regardless).

mod load;
mod oauth;
mod relative;
pub mod template;
mod url;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use regex::Regex;
use serde::Deserialize;

pub use oauth::{AuthorizeRequest, ClientAuth, OAuthSpec};
pub use relative::{RelativeUrlError, join_relative};
pub use template::{Placeholder, Template, TemplateError};

/// How an app authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum AuthKind {
    #[serde(rename = "api-key")]
    ApiKey,
    #[serde(rename = "bearer")]
    Bearer,
    #[serde(rename = "basic")]
    Basic,
    #[serde(rename = "oauth2")]
    OAuth2,
    #[serde(rename = "custom")]
    Custom,
}

/// A credential field an account of some [`AuthKind`] (or [`App`]) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialField<'a> {
    pub name: &'a str,
    pub required: bool,
    /// Whether the value is a secret (a key, token or password) rather than
    /// an identifier people may see (`username`, `expires_at`). A hint for
    /// forms that collect it; every field is encrypted at rest all the same.
    pub secret: bool,
}

const fn field(name: &'static str, required: bool, secret: bool) -> CredentialField<'static> {
    CredentialField {
        name,
        required,
        secret,
    }
}

/// Whether a credential field of this name holds a secret (see
/// [`CredentialField::secret`]).
fn is_secret_credential(name: &str) -> bool {
    !matches!(name, "username" | "expires_at")
}

impl AuthKind {
    /// The credential fields an account of this kind holds. `Custom` returns
    /// an empty list: a custom app's fields are the names its credential
    /// template uses (see [`App::credential_template_fields`]).
    pub fn credential_fields(self) -> &'static [CredentialField<'static>] {
        const API_KEY: &[CredentialField<'static>] = &[field("api_key", true, true)];
        const BEARER: &[CredentialField<'static>] = &[field("token", true, true)];
        const BASIC: &[CredentialField<'static>] = &[
            field("username", true, false),
            field("password", true, true),
        ];
        const OAUTH2: &[CredentialField<'static>] = &[
            field("access_token", true, true),
            field("refresh_token", false, true),
            field("expires_at", false, false),
        ];
        match self {
            AuthKind::ApiKey => API_KEY,
            AuthKind::Bearer => BEARER,
            AuthKind::Basic => BASIC,
            AuthKind::OAuth2 => OAUTH2,
            AuthKind::Custom => &[],
        }
    }

    /// The name used in app files (`api-key`, `oauth2`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::ApiKey => "api-key",
            AuthKind::Bearer => "bearer",
            AuthKind::Basic => "basic",
            AuthKind::OAuth2 => "oauth2",
            AuthKind::Custom => "custom",
        }
    }
}

impl fmt::Display for AuthKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The placeholder that stands for base64(`username:password`).
pub const BASIC_PLACEHOLDER: &str = "basic";

/// Where the rendered credential goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialLocation {
    /// A request header of this name.
    Header(String),
    /// A query parameter of this name (value returned unencoded).
    Query(String),
}

/// Where and how an account's credential is inserted into a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialPlacement {
    pub location: CredentialLocation,
    pub template: Template,
}

/// A per-account value such as a subdomain, checked against `pattern`.
#[derive(Debug, Clone)]
pub struct CustomField {
    pub name: String,
    pub description: Option<String>,
    pattern_source: String,
    pattern: Regex,
}

impl CustomField {
    /// `pattern` must be anchored (`^...$`); it is compiled as `^(?:...)$`.
    pub fn new(
        name: impl Into<String>,
        pattern: &str,
        description: Option<String>,
    ) -> Result<CustomField, String> {
        let name = name.into();
        if !template::is_identifier(&name) {
            return Err(format!(
                "invalid name {name:?} (expected ^[a-z][a-z0-9_]{{0,63}}$)"
            ));
        }
        if !pattern.starts_with('^') || !pattern.ends_with('$') || pattern.len() < 2 {
            return Err(format!(
                "pattern {pattern:?} must be anchored: start with ^ and end with $"
            ));
        }
        let build = |p: &str| {
            regex::RegexBuilder::new(p)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("invalid regex: {e}"))
        };
        // The pattern as written first, so errors point into it; then
        // wrapped, so an alternation cannot escape the anchors.
        build(pattern)?;
        let regex = build(&format!("^(?:{pattern})$"))?;
        Ok(CustomField {
            name,
            description,
            pattern_source: pattern.to_owned(),
            pattern: regex,
        })
    }

    /// The pattern as written in the app file.
    pub fn pattern(&self) -> &str {
        &self.pattern_source
    }

    /// True if `value` matches the whole pattern.
    pub fn matches(&self, value: &str) -> bool {
        self.pattern.is_match(value)
    }
}

/// One `allowed_domains` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRule {
    /// Exactly this host.
    Exact(String),
    /// `*.SUFFIX`: any subdomain of SUFFIX (at any depth), not SUFFIX itself.
    Wildcard(String),
    /// A host (or `*.` wildcard when `wildcard`) with custom-field placeholders.
    Templated { wildcard: bool, host: Template },
}

impl DomainRule {
    /// Whether `host` matches the static rule `(wildcard, pattern)`.
    fn host_matches(wildcard: bool, pattern: &str, host: &str) -> bool {
        if wildcard {
            host.len() > pattern.len() + 1
                && host.ends_with(pattern)
                && host.as_bytes()[host.len() - pattern.len() - 1] == b'.'
        } else {
            host == pattern
        }
    }
}

impl fmt::Display for DomainRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainRule::Exact(h) => f.write_str(h),
            DomainRule::Wildcard(s) => write!(f, "*.{s}"),
            DomainRule::Templated { wildcard, host } => {
                write!(f, "{}{host}", if *wildcard { "*." } else { "" })
            }
        }
    }
}

/// One app of the catalog. Built only by loading (validated) app files.
#[derive(Debug, Clone)]
pub struct App {
    pub slug: String,
    pub name: String,
    pub auth: AuthKind,
    pub base_url: Option<Template>,
    pub allowed_domains: Vec<DomainRule>,
    pub credential: CredentialPlacement,
    pub custom_fields: Vec<CustomField>,
    pub oauth: Option<OAuthSpec>,
    pub proxy_enabled: bool,
    pub docs_url: Option<String>,
}

/// Errors using an app with an account's fields. Never contains a field's
/// value, only its name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    #[error("app {app}: custom field `{field}` is missing")]
    MissingCustomField { app: String, field: String },
    #[error("app {app}: custom field `{field}` does not match its pattern {pattern}")]
    CustomFieldMismatch {
        app: String,
        field: String,
        pattern: String,
    },
    #[error("app {app}: custom field `{field}` is not declared by the app")]
    UnknownCustomField { app: String, field: String },
    #[error("app {app}: custom field `{field}`: {reason}")]
    UnsafeCustomField {
        app: String,
        field: String,
        reason: &'static str,
    },
    #[error("app {app}: {what} is invalid after substitution: {reason}")]
    InvalidUrl {
        app: String,
        what: &'static str,
        reason: String,
    },
    #[error("app {app}: credential field `{field}` is missing")]
    MissingCredential { app: String, field: String },
    #[error("app {app}: credential field `{field}` {reason}")]
    InvalidCredential {
        app: String,
        field: String,
        reason: &'static str,
    },
}

/// The credential fields given for an account do not fit its app: some are
/// missing, or the app does not take them. Names only, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialNamesError {
    pub app: String,
    pub auth: AuthKind,
    /// Required fields that were not given.
    pub missing: Vec<String>,
    /// Given fields the app does not take (each cut to 64 characters).
    pub unknown: Vec<String>,
    /// Every field the app takes.
    pub expected: Vec<String>,
}

impl fmt::Display for CredentialNamesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "app {} ({} auth)", self.app, self.auth)?;
        let mut sep = ":";
        if !self.missing.is_empty() {
            write!(
                f,
                "{sep} missing credential field(s) {}",
                self.missing.join(", ")
            )?;
            sep = ";";
        }
        if !self.unknown.is_empty() {
            write!(
                f,
                "{sep} unknown credential field(s) {} (it takes {})",
                self.unknown.join(", "),
                self.expected.join(", ")
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for CredentialNamesError {}

/// `name` cut to 64 characters and escaped, for messages.
fn shorten(name: &str) -> String {
    let mut shown: String = name.chars().take(64).flat_map(char::escape_debug).collect();
    if name.chars().nth(64).is_some() {
        shown.push_str("...");
    }
    shown
}

impl App {
    /// `base_url` with custom fields substituted; each field must be present
    /// and match its pattern. `Ok(None)` if the app has no base URL.
    pub fn resolve_base_url(
        &self,
        fields: &BTreeMap<String, String>,
    ) -> Result<Option<String>, AppError> {
        self.base_url
            .as_ref()
            .map(|t| self.resolve_url(t, fields, false, "base_url"))
            .transpose()
    }

    /// The OAuth authorize and token URLs with custom fields substituted,
    /// or `None` for apps that are not `oauth2`.
    pub fn resolve_oauth_urls(
        &self,
        fields: &BTreeMap<String, String>,
    ) -> Result<Option<(String, String)>, AppError> {
        let Some(oauth) = &self.oauth else {
            return Ok(None);
        };
        Ok(Some((
            self.resolve_url(&oauth.authorize_url, fields, true, "oauth.authorize_url")?,
            self.resolve_url(&oauth.token_url, fields, true, "oauth.token_url")?,
        )))
    }

    /// True if `host` (lowercase ASCII, no port) is allowed by
    /// `allowed_domains` after substituting fields. A `host` that is not a
    /// valid lowercase host name is never allowed. Static rules are checked
    /// first, so a missing field only errors if no static rule matched.
    pub fn allows_host(
        &self,
        host: &str,
        fields: &BTreeMap<String, String>,
    ) -> Result<bool, AppError> {
        if !url::is_valid_host(host) {
            return Ok(false);
        }
        let mut templated = Vec::new();
        for rule in &self.allowed_domains {
            match rule {
                DomainRule::Exact(h) if DomainRule::host_matches(false, h, host) => {
                    return Ok(true);
                }
                DomainRule::Wildcard(s) if DomainRule::host_matches(true, s, host) => {
                    return Ok(true);
                }
                DomainRule::Templated { wildcard, host: t } => templated.push((*wildcard, t)),
                _ => {}
            }
        }
        for (wildcard, template) in templated {
            let pattern = self.resolve_host(template, fields)?;
            if DomainRule::host_matches(wildcard, &pattern, host) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The `(location, value)` to insert, from the account's credential
    /// fields (e.g. `{"access_token": ".."}`). Errors name a missing field.
    /// `{{basic}}` renders base64(`username:password`); a username with `:`
    /// is refused (RFC 7617). No value may contain control characters.
    pub fn render_credential(
        &self,
        creds: &BTreeMap<String, String>,
    ) -> Result<(CredentialLocation, String), AppError> {
        let get = |field: &str| -> Result<&str, AppError> {
            let value = creds.get(field).filter(|v| !v.is_empty()).ok_or_else(|| {
                AppError::MissingCredential {
                    app: self.slug.clone(),
                    field: field.to_owned(),
                }
            })?;
            if value.chars().any(char::is_control) {
                return Err(AppError::InvalidCredential {
                    app: self.slug.clone(),
                    field: field.to_owned(),
                    reason: "contains a control character",
                });
            }
            Ok(value)
        };
        let value = self.credential.template.render(|p| match p {
            Placeholder::Credential(name) if name == BASIC_PLACEHOLDER => {
                let username = get("username")?;
                let password = get("password")?;
                if username.contains(':') {
                    return Err(AppError::InvalidCredential {
                        app: self.slug.clone(),
                        field: "username".to_owned(),
                        reason: "must not contain ':' for basic auth",
                    });
                }
                Ok(base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}")))
            }
            Placeholder::Credential(name) => get(name).map(str::to_owned),
            // Rejected at load; kept total rather than panicking.
            Placeholder::CustomField(name) => Err(AppError::MissingCredential {
                app: self.slug.clone(),
                field: format!("custom_fields.{name}"),
            }),
        })?;
        Ok((self.credential.location.clone(), value))
    }

    /// The credential fields [`App::render_credential`] reads: the names in
    /// the template, with `{{basic}}` standing for `username` and `password`.
    pub fn credential_template_fields(&self) -> BTreeSet<&str> {
        let mut names = BTreeSet::new();
        for p in self.credential.template.placeholders() {
            match p {
                Placeholder::Credential(n) if n == BASIC_PLACEHOLDER => {
                    names.insert("username");
                    names.insert("password");
                }
                Placeholder::Credential(n) => {
                    names.insert(n.as_str());
                }
                Placeholder::CustomField(_) => {}
            }
        }
        names
    }

    /// The credential fields an account of this app holds: its auth kind's
    /// ([`AuthKind::credential_fields`]), or for `custom` apps the names its
    /// credential template reads ([`App::credential_template_fields`]), all
    /// required.
    pub fn credential_fields(&self) -> Vec<CredentialField<'_>> {
        match self.auth {
            AuthKind::Custom => self
                .credential_template_fields()
                .into_iter()
                .map(|name| CredentialField {
                    name,
                    required: true,
                    secret: is_secret_credential(name),
                })
                .collect(),
            kind => kind.credential_fields().to_vec(),
        }
    }

    /// Checks the names of an account's credential fields against
    /// [`App::credential_fields`]: every required field present, none that
    /// the app does not take. The one check of a new account's credentials,
    /// for `airlock accounts add` and the REST API alike.
    pub fn check_credential_names<'n>(
        &self,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Result<(), CredentialNamesError> {
        let fields = self.credential_fields();
        let given: BTreeSet<&str> = names.into_iter().collect();
        let missing: Vec<String> = fields
            .iter()
            .filter(|f| f.required && !given.contains(f.name))
            .map(|f| f.name.to_owned())
            .collect();
        let unknown: Vec<String> = given
            .iter()
            .filter(|n| !fields.iter().any(|f| f.name == **n))
            .map(|n| shorten(n))
            .collect();
        if missing.is_empty() && unknown.is_empty() {
            return Ok(());
        }
        Err(CredentialNamesError {
            app: self.slug.clone(),
            auth: self.auth,
            expected: fields.iter().map(|f| f.name.to_owned()).collect(),
            missing,
            unknown,
        })
    }

    /// Whether `base_url`/`allowed_domains` depend on custom fields (a
    /// "dynamic-domain" app).
    pub fn is_dynamic(&self) -> bool {
        self.base_url.as_ref().is_some_and(|t| !t.is_static())
            || self
                .allowed_domains
                .iter()
                .any(|r| matches!(r, DomainRule::Templated { .. }))
    }

    /// Checks a whole set of custom fields for an account: every declared
    /// field present and matching its pattern, nothing undeclared.
    pub fn validate_custom_fields(
        &self,
        fields: &BTreeMap<String, String>,
    ) -> Result<(), AppError> {
        if let Some(unknown) = fields
            .keys()
            .find(|k| !self.custom_fields.iter().any(|f| &f.name == *k))
        {
            return Err(AppError::UnknownCustomField {
                app: self.slug.clone(),
                field: unknown.clone(),
            });
        }
        for field in &self.custom_fields {
            self.custom_value(&field.name, fields)?;
        }
        Ok(())
    }

    pub fn custom_field(&self, name: &str) -> Option<&CustomField> {
        self.custom_fields.iter().find(|f| f.name == name)
    }

    /// A custom field's value, present and matching its pattern.
    fn custom_value<'a>(
        &self,
        name: &str,
        fields: &'a BTreeMap<String, String>,
    ) -> Result<&'a str, AppError> {
        let missing = || AppError::MissingCustomField {
            app: self.slug.clone(),
            field: name.to_owned(),
        };
        let field = self.custom_field(name).ok_or_else(missing)?;
        let value = fields.get(name).ok_or_else(missing)?;
        if !field.matches(value) {
            return Err(AppError::CustomFieldMismatch {
                app: self.slug.clone(),
                field: name.to_owned(),
                pattern: field.pattern().to_owned(),
            });
        }
        Ok(value)
    }

    fn resolve_url(
        &self,
        template: &Template,
        fields: &BTreeMap<String, String>,
        allow_query: bool,
        what: &'static str,
    ) -> Result<String, AppError> {
        let mut sections = url::placeholder_sections(template).into_iter();
        let rendered = template.render(|p| {
            let section = sections.next().unwrap_or(url::Section::Scheme);
            self.substitute(p, fields, section)
        })?;
        url::check_url(&rendered, allow_query).map_err(|reason| AppError::InvalidUrl {
            app: self.slug.clone(),
            what,
            reason,
        })?;
        Ok(rendered)
    }

    fn resolve_host(
        &self,
        template: &Template,
        fields: &BTreeMap<String, String>,
    ) -> Result<String, AppError> {
        let host = template.render(|p| self.substitute(p, fields, url::Section::Host))?;
        if !url::is_valid_host(&host) {
            return Err(AppError::InvalidUrl {
                app: self.slug.clone(),
                what: "allowed_domains",
                reason: "not a valid host name".to_owned(),
            });
        }
        Ok(host)
    }

    fn substitute(
        &self,
        placeholder: &Placeholder,
        fields: &BTreeMap<String, String>,
        section: url::Section,
    ) -> Result<String, AppError> {
        let name = match placeholder {
            Placeholder::CustomField(name) => name,
            // Rejected at load; refuse rather than panic.
            Placeholder::Credential(name) => {
                return Err(AppError::MissingCustomField {
                    app: self.slug.clone(),
                    field: name.clone(),
                });
            }
        };
        let value = self.custom_value(name, fields)?;
        url::check_value_for_section(value, section).map_err(|reason| {
            AppError::UnsafeCustomField {
                app: self.slug.clone(),
                field: name.clone(),
                reason,
            }
        })?;
        Ok(value.to_owned())
    }
}

/// Errors loading app files. Each names the file, and the field if any.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// TOML syntax errors and serde's messages (unknown keys, wrong types).
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: String,
        field: String,
        message: String,
    },
    #[error("{file}: slug {slug:?} does not match the file name")]
    SlugMismatch { file: String, slug: String },
    #[error("{file}: file name must be <slug>.toml")]
    FileName { file: String },
    #[error("{file}: slug {slug:?} is already defined by {first}")]
    Duplicate {
        file: String,
        slug: String,
        first: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The shipped app files, embedded. A test checks this list against the
/// directory, so a new file cannot be forgotten.
macro_rules! builtin_apps {
    ($($slug:literal),* $(,)?) => {
        &[$(($slug, include_str!(concat!("../../apps/", $slug, ".toml")))),*]
    };
}

const BUILTIN: &[(&str, &str)] = builtin_apps![
    "airtable",
    "algolia",
    "anthropic",
    "asana",
    "asana_oauth",
    "bitbucket",
    "box",
    "brevo",
    "calendly",
    "clickup",
    "cloudflare",
    "confluence",
    "datadog",
    "deepl",
    "digitalocean",
    "discord",
    "discord_oauth",
    "dropbox",
    "elevenlabs",
    "facebook_pages",
    "figma",
    "freshdesk",
    "github",
    "gitlab",
    "gitlab_self_managed",
    "gmail",
    "google_calendar",
    "google_drive",
    "google_sheets",
    "helpscout",
    "heroku",
    "hubspot",
    "instagram",
    "intercom",
    "jira",
    "jira_oauth",
    "klaviyo",
    "linear",
    "linear_oauth",
    "linkedin",
    "mailchimp",
    "mailgun",
    "microsoft_outlook",
    "microsoft_teams",
    "miro",
    "mistral",
    "monday",
    "netlify",
    "notion",
    "notion_oauth",
    "okta",
    "onedrive",
    "openai",
    "pagerduty",
    "pipedrive",
    "postmark",
    "quickbooks",
    "reddit",
    "resend",
    "salesforce",
    "sendgrid",
    "sentry",
    "shopify",
    "slack",
    "smartsheet",
    "spotify",
    "square",
    "strava",
    "stripe",
    "todoist",
    "trello",
    "twilio",
    "typeform",
    "vercel",
    "webflow",
    "x",
    "xero",
    "youtube",
    "zendesk",
    "zendesk_oauth",
    "zoho_crm",
    "zoom",
];

/// A set of apps by slug.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    apps: BTreeMap<String, App>,
    /// Where each app was loaded from, for error messages.
    origins: BTreeMap<String, String>,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// The shipped apps (`host-api/apps/*.toml`, embedded at build time).
    pub fn builtin() -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::new();
        catalog.add_all(
            BUILTIN
                .iter()
                .map(|(slug, text)| (format!("apps/{slug}.toml"), *text)),
            false,
        )?;
        Ok(catalog)
    }

    /// Adds every `*.toml` file in `dir` (not recursive; other files are
    /// ignored). An app whose slug is already in the catalog replaces it,
    /// so an operator can override a builtin. All or nothing: on error the
    /// catalog is unchanged.
    pub fn load_dir(&mut self, dir: &Path) -> Result<(), CatalogError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CatalogError::Io { path, source }
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut sources = Vec::with_capacity(files.len());
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            sources.push((path.display().to_string(), text));
        }
        self.add_all(sources.iter().map(|(f, t)| (f.clone(), t.as_str())), true)
    }

    /// A catalog of `(file name, TOML text)` sources; file names must be
    /// `<slug>.toml` (a directory prefix is allowed) and slugs unique.
    pub fn from_sources(sources: &[(String, String)]) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::new();
        catalog.add_all(sources.iter().map(|(f, t)| (f.clone(), t.as_str())), false)?;
        Ok(catalog)
    }

    fn add_all<'a>(
        &mut self,
        sources: impl Iterator<Item = (String, &'a str)>,
        override_existing: bool,
    ) -> Result<(), CatalogError> {
        let mut loaded: BTreeMap<String, (String, App)> = BTreeMap::new();
        for (file, text) in sources {
            let app = load::parse_app(&file, text)?;
            let first = loaded.get(&app.slug).map(|(f, _)| f.clone()).or_else(|| {
                (!override_existing)
                    .then(|| self.origins.get(&app.slug).cloned())
                    .flatten()
            });
            if let Some(first) = first {
                return Err(CatalogError::Duplicate {
                    file,
                    slug: app.slug,
                    first,
                });
            }
            loaded.insert(app.slug.clone(), (file, app));
        }
        for (slug, (file, app)) in loaded {
            self.origins.insert(slug.clone(), file);
            self.apps.insert(slug, app);
        }
        Ok(())
    }

    pub fn get(&self, slug: &str) -> Option<&App> {
        self.apps.get(slug)
    }

    /// Apps in slug order.
    pub fn iter(&self) -> impl Iterator<Item = &App> {
        self.apps.values()
    }

    pub fn len(&self) -> usize {
        self.apps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// The file an app was loaded from (`apps/zendesk.toml` for builtins).
    pub fn origin(&self, slug: &str) -> Option<&str> {
        self.origins.get(slug).map(String::as_str)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod catalog_tests;
