//! `{{placeholder}}` templates used in app definitions.
//!
//! A template is literal text with placeholders in double braces:
//!
//! * `{{custom_fields.NAME}}`: an account's custom field (e.g. a subdomain);
//!   allowed in `base_url`, `allowed_domains` and OAuth URLs.
//! * `{{NAME}}`: an account's credential field (`api_key`, `token`,
//!   `access_token`, ...), or `{{basic}}`; allowed in `credential.template`.
//!
//! Whitespace inside the braces is not allowed, nor are single `{`/`}` that
//! could be mistaken for a placeholder: `{{`, `}}` and a lone `}}` outside a
//! placeholder are errors, so a typo never silently renders as literal text.
//!
//! Values are inserted **verbatim**: no escaping or encoding of any kind.
//! What makes a custom field safe to put into a URL is the field's anchored
//! `pattern`, checked before every substitution (plus a host-character check
//! for placeholders in a URL's host); see [`super::App::resolve_base_url`].

use std::fmt;

/// What a placeholder refers to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Placeholder {
    /// `{{custom_fields.NAME}}`
    CustomField(String),
    /// `{{NAME}}`: a credential field, or the derived `basic`.
    Credential(String),
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placeholder::CustomField(name) => write!(f, "{{{{custom_fields.{name}}}}}"),
            Placeholder::Credential(name) => write!(f, "{{{{{name}}}}}"),
        }
    }
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Placeholder(Placeholder),
}

/// A parsed template. Keeps its source text for display and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// Why a template's text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed `{{{{` at byte {0}")]
    Unclosed(usize),
    #[error("stray `}}}}` at byte {0}")]
    StrayClose(usize),
    #[error(
        "invalid placeholder `{{{{{0}}}}}`: expected `{{{{name}}}}` or `{{{{custom_fields.name}}}}`"
    )]
    BadName(String),
}

/// Names of fields and placeholders: `^[a-z][a-z0-9_]{0,63}$`.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 64
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = source;
        let mut offset = 0;
        while !rest.is_empty() {
            let open = rest.find("{{");
            let close = rest.find("}}");
            match (open, close) {
                (_, Some(c)) if open.is_none_or(|o| c < o) => {
                    return Err(TemplateError::StrayClose(offset + c));
                }
                (Some(o), _) => {
                    literal.push_str(&rest[..o]);
                    let after = &rest[o + 2..];
                    let end = after
                        .find("}}")
                        .ok_or(TemplateError::Unclosed(offset + o))?;
                    let inner = &after[..end];
                    let placeholder = match inner.strip_prefix("custom_fields.") {
                        Some(name) if is_identifier(name) => {
                            Placeholder::CustomField(name.to_owned())
                        }
                        None if is_identifier(inner) => Placeholder::Credential(inner.to_owned()),
                        _ => return Err(TemplateError::BadName(inner.to_owned())),
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Placeholder(placeholder));
                    let consumed = o + 2 + end + 2;
                    offset += consumed;
                    rest = &rest[consumed..];
                }
                (None, _) => {
                    literal.push_str(rest);
                    rest = "";
                }
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            source: source.to_owned(),
            parts,
        })
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Every placeholder, in order of appearance (with repeats).
    pub fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.parts.iter().filter_map(|p| match p {
            Part::Placeholder(ph) => Some(ph),
            Part::Literal(_) => None,
        })
    }

    /// The names of the `{{custom_fields.X}}` placeholders.
    pub fn custom_fields(&self) -> impl Iterator<Item = &str> {
        self.placeholders().filter_map(|p| match p {
            Placeholder::CustomField(name) => Some(name.as_str()),
            Placeholder::Credential(_) => None,
        })
    }

    /// True if the template has no placeholders.
    pub fn is_static(&self) -> bool {
        self.placeholders().next().is_none()
    }

    /// Substitutes every placeholder with `value(placeholder)`, verbatim.
    pub fn render<E>(
        &self,
        mut value: impl FnMut(&Placeholder) -> Result<String, E>,
    ) -> Result<String, E> {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Placeholder(ph) => out.push_str(&value(ph)?),
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_literals_and_placeholders() {
        let t = Template::parse("https://{{custom_fields.sub}}.x.com/{{token}}").unwrap();
        assert_eq!(
            t.parts(),
            &[
                Part::Literal("https://".into()),
                Part::Placeholder(Placeholder::CustomField("sub".into())),
                Part::Literal(".x.com/".into()),
                Part::Placeholder(Placeholder::Credential("token".into())),
            ]
        );
        assert!(!t.is_static());
        assert!(Template::parse("plain").unwrap().is_static());
        assert_eq!(Template::parse("").unwrap().parts(), &[]);
    }

    #[test]
    fn rejects_malformed_templates() {
        assert_eq!(Template::parse("a{{b"), Err(TemplateError::Unclosed(1)));
        assert_eq!(Template::parse("a}}b"), Err(TemplateError::StrayClose(1)));
        assert!(matches!(
            Template::parse("{{ token }}"),
            Err(TemplateError::BadName(_))
        ));
        assert!(matches!(
            Template::parse("{{}}"),
            Err(TemplateError::BadName(_))
        ));
        assert!(matches!(
            Template::parse("{{custom_fields.}}"),
            Err(TemplateError::BadName(_))
        ));
        assert!(matches!(
            Template::parse("{{a.b}}"),
            Err(TemplateError::BadName(_))
        ));
        assert!(matches!(
            Template::parse("{{Token}}"),
            Err(TemplateError::BadName(_))
        ));
    }

    #[test]
    fn renders_verbatim() {
        let t = Template::parse("Bearer {{token}}!").unwrap();
        let out: Result<String, ()> = t.render(|_| Ok("a/b{{c}}".to_owned()));
        assert_eq!(out.unwrap(), "Bearer a/b{{c}}!");
    }
}
