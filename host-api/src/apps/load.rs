//! Parsing and validating one app file into an [`App`].

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use super::template::{Placeholder, Template};
use super::url::{self, Section};
use super::{
    App, AuthKind, BASIC_PLACEHOLDER, CatalogError, CredentialLocation, CredentialPlacement,
    CustomField, DomainRule,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppFile {
    slug: String,
    name: String,
    auth: AuthKind,
    base_url: Option<String>,
    allowed_domains: Vec<String>,
    docs_url: Option<String>,
    credential: CredentialFile,
    #[serde(default)]
    custom_fields: Vec<CustomFieldFile>,
    oauth: Option<super::oauth::OAuthFile>,
    #[serde(default)]
    connect: ConnectFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialFile {
    header: Option<String>,
    query: Option<String>,
    template: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomFieldFile {
    name: String,
    pattern: String,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectFile {
    #[serde(default = "yes")]
    proxy_enabled: bool,
}

impl Default for ConnectFile {
    fn default() -> Self {
        ConnectFile {
            proxy_enabled: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// Headers the host owns; a credential may not be placed in them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
];

/// `^[a-z0-9][a-z0-9_-]{0,63}$`
pub(crate) fn is_valid_slug(slug: &str) -> bool {
    let b = slug.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

/// RFC 9110 token characters.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Unreserved URL characters, so the name never needs encoding.
fn is_query_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

pub(super) struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    pub(super) fn invalid(
        &self,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> CatalogError {
        CatalogError::Invalid {
            file: self.file.to_owned(),
            field: field.into(),
            message: message.into(),
        }
    }

    fn template(&self, field: &str, text: &str) -> Result<Template, CatalogError> {
        Template::parse(text).map_err(|e| self.invalid(field, format!("invalid template: {e}")))
    }

    /// Every placeholder must be `{{custom_fields.X}}` with X declared.
    fn only_custom_fields(
        &self,
        field: &str,
        template: &Template,
        declared: &BTreeSet<&str>,
    ) -> Result<(), CatalogError> {
        for p in template.placeholders() {
            match p {
                Placeholder::CustomField(name) if declared.contains(name.as_str()) => {}
                Placeholder::CustomField(name) => {
                    return Err(self.invalid(
                        field,
                        format!("{p} refers to an unknown custom field `{name}`"),
                    ));
                }
                Placeholder::Credential(_) => {
                    return Err(self.invalid(
                        field,
                        format!("{p} is not allowed here; only {{{{custom_fields.NAME}}}}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A URL template: declared custom fields only, none in the scheme, and
    /// a valid URL with stand-ins for the placeholders.
    pub(super) fn url(
        &self,
        field: &str,
        text: &str,
        declared: &BTreeSet<&str>,
        allow_query: bool,
    ) -> Result<Template, CatalogError> {
        let template = self.template(field, text)?;
        self.only_custom_fields(field, &template, declared)?;
        if url::placeholder_sections(&template).contains(&Section::Scheme) {
            return Err(self.invalid(field, "placeholders are not allowed in the scheme"));
        }
        url::check_url(&url::render_with_stand_ins(&template), allow_query)
            .map_err(|e| self.invalid(field, e))?;
        Ok(template)
    }

    fn domain_rule(
        &self,
        field: &str,
        text: &str,
        declared: &BTreeSet<&str>,
    ) -> Result<DomainRule, CatalogError> {
        let (wildcard, rest) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let template = self.template(field, rest)?;
        self.only_custom_fields(field, &template, declared)?;
        let host = url::render_with_stand_ins(&template);
        if !url::is_valid_host(&host) {
            return Err(self.invalid(
                field,
                format!(
                    "{text:?} is not a host, `*.` wildcard or template of one \
                     (lowercase letters, digits, '-' and '.'; no scheme, port or path)"
                ),
            ));
        }
        if wildcard && template.is_static() && !host.contains('.') {
            return Err(self.invalid(
                field,
                format!("wildcard {text:?} is too broad: the suffix needs at least two labels"),
            ));
        }
        Ok(match (template.is_static(), wildcard) {
            (true, false) => DomainRule::Exact(host),
            (true, true) => DomainRule::Wildcard(host),
            (false, wildcard) => DomainRule::Templated {
                wildcard,
                host: template,
            },
        })
    }

    /// The credential template's placeholders must be fields of `auth`.
    fn credential_template(&self, auth: AuthKind, text: &str) -> Result<Template, CatalogError> {
        let field = "credential.template";
        let template = self.template(field, text)?;
        if template.is_static() {
            return Err(self.invalid(field, "must contain a credential placeholder"));
        }
        for p in template.placeholders() {
            let name = match p {
                Placeholder::CustomField(_) => {
                    return Err(self.invalid(
                        field,
                        format!("{p}: custom fields are not allowed in the credential"),
                    ));
                }
                Placeholder::Credential(name) => name.as_str(),
            };
            let ok = match auth {
                AuthKind::Custom => true,
                AuthKind::Basic => {
                    name == BASIC_PLACEHOLDER || name == "username" || name == "password"
                }
                AuthKind::OAuth2 => name == "access_token",
                AuthKind::ApiKey | AuthKind::Bearer => {
                    auth.credential_fields().iter().any(|f| f.name == name)
                }
            };
            if !ok {
                let allowed: Vec<String> = match auth {
                    AuthKind::Basic => vec![
                        "{{username}}".into(),
                        "{{password}}".into(),
                        "{{basic}}".into(),
                    ],
                    AuthKind::OAuth2 => vec!["{{access_token}}".into()],
                    _ => auth
                        .credential_fields()
                        .iter()
                        .map(|f| format!("{{{{{}}}}}", f.name))
                        .collect(),
                };
                return Err(self.invalid(
                    field,
                    format!(
                        "{p} is not a credential field of auth = \"{auth}\" (allowed: {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(template)
    }
}

/// Parses and validates one app file. `file` is the name used in errors;
/// its stem must equal the slug.
pub(crate) fn parse_app(file: &str, text: &str) -> Result<App, CatalogError> {
    let ctx = Ctx { file };
    let stem = Path::new(file)
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_suffix(".toml"))
        .unwrap_or("");
    if stem.is_empty() {
        return Err(CatalogError::FileName {
            file: file.to_owned(),
        });
    }
    let raw: AppFile = toml::from_str(text).map_err(|e| CatalogError::Parse {
        file: file.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;

    if !is_valid_slug(&raw.slug) {
        return Err(ctx.invalid(
            "slug",
            format!(
                "{:?} is not a valid slug (^[a-z0-9][a-z0-9_-]{{0,63}}$)",
                raw.slug
            ),
        ));
    }
    if raw.slug != stem {
        return Err(CatalogError::SlugMismatch {
            file: file.to_owned(),
            slug: raw.slug,
        });
    }
    if raw.name.trim().is_empty() {
        return Err(ctx.invalid("name", "must not be empty"));
    }

    let mut custom_fields = Vec::with_capacity(raw.custom_fields.len());
    for (i, f) in raw.custom_fields.into_iter().enumerate() {
        if custom_fields.iter().any(|c: &CustomField| c.name == f.name) {
            return Err(ctx.invalid(
                format!("custom_fields[{i}].name"),
                format!("duplicate custom field {:?}", f.name),
            ));
        }
        let field = CustomField::new(f.name, &f.pattern, f.description).map_err(|e| {
            let which = if e.starts_with("invalid name") {
                "name"
            } else {
                "pattern"
            };
            ctx.invalid(format!("custom_fields[{i}].{which}"), e)
        })?;
        custom_fields.push(field);
    }
    let declared: BTreeSet<&str> = custom_fields.iter().map(|f| f.name.as_str()).collect();

    let base_url = raw
        .base_url
        .as_deref()
        .map(|u| ctx.url("base_url", u, &declared, false))
        .transpose()?;

    if raw.allowed_domains.is_empty() {
        return Err(ctx.invalid("allowed_domains", "must not be empty"));
    }
    let allowed_domains = raw
        .allowed_domains
        .iter()
        .enumerate()
        .map(|(i, d)| ctx.domain_rule(&format!("allowed_domains[{i}]"), d, &declared))
        .collect::<Result<Vec<_>, _>>()?;

    // A static base URL must point at an allowed host.
    if let Some(base) = base_url.as_ref().filter(|t| t.is_static()) {
        let host = url::check_url(base.source(), false)
            .map(|u| u.host.to_owned())
            .unwrap_or_default();
        let all_static = allowed_domains
            .iter()
            .all(|r| !matches!(r, DomainRule::Templated { .. }));
        let matched = allowed_domains.iter().any(|r| match r {
            DomainRule::Exact(h) => DomainRule::host_matches(false, h, &host),
            DomainRule::Wildcard(s) => DomainRule::host_matches(true, s, &host),
            DomainRule::Templated { .. } => false,
        });
        if all_static && !matched {
            return Err(ctx.invalid(
                "base_url",
                format!("host {host:?} is not in allowed_domains"),
            ));
        }
    }

    let location = match (raw.credential.header, raw.credential.query) {
        (Some(h), None) => {
            if !is_header_name(&h) {
                return Err(ctx.invalid("credential.header", format!("{h:?} is not a header name")));
            }
            if RESERVED_HEADERS.contains(&h.to_ascii_lowercase().as_str()) {
                return Err(ctx.invalid(
                    "credential.header",
                    format!("{h:?} is set by the host and cannot carry a credential"),
                ));
            }
            CredentialLocation::Header(h)
        }
        (None, Some(q)) => {
            if !is_query_name(&q) {
                return Err(ctx.invalid(
                    "credential.query",
                    format!("{q:?} is not a plain query parameter name (A-Z a-z 0-9 - . _ ~)"),
                ));
            }
            CredentialLocation::Query(q)
        }
        _ => {
            return Err(ctx.invalid(
                "credential",
                "exactly one of `header` or `query` is required",
            ));
        }
    };
    let credential = CredentialPlacement {
        location,
        template: ctx.credential_template(raw.auth, &raw.credential.template)?,
    };

    let oauth = match (raw.auth, raw.oauth) {
        (AuthKind::OAuth2, None) => {
            return Err(ctx.invalid("oauth", "required when auth = \"oauth2\""));
        }
        (AuthKind::OAuth2, Some(o)) => Some(super::oauth::parse(&ctx, o, &declared)?),
        (_, Some(_)) => {
            return Err(ctx.invalid("oauth", "only allowed when auth = \"oauth2\""));
        }
        (_, None) => None,
    };

    if let Some(docs) = &raw.docs_url {
        // Documentation links may point at a section (`#...`).
        let without_fragment = docs.split_once('#').map_or(docs.as_str(), |(u, _)| u);
        url::check_url(without_fragment, true).map_err(|e| ctx.invalid("docs_url", e))?;
    }

    Ok(App {
        slug: raw.slug,
        name: raw.name,
        auth: raw.auth,
        base_url,
        allowed_domains,
        credential,
        custom_fields,
        oauth,
        proxy_enabled: raw.connect.proxy_enabled,
        docs_url: raw.docs_url,
    })
}
