//! Strict checks for the URLs and hosts in app definitions, before and after
//! template substitution. Hand-written on purpose: app URLs are a small,
//! regular subset (`http(s)://host[:port][/path][?query]`, no userinfo), and
//! anything outside it is refused rather than interpreted.

use std::net::{IpAddr, Ipv6Addr};

use super::template::{Part, Placeholder, Template};

/// A host name as the catalog accepts it: labels of 1..=63 lowercase ASCII
/// letters, digits and `-`, separated by single dots, at most 253 bytes, no
/// trailing dot. IPv4 literals pass this check too.
pub(crate) fn is_valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Characters a custom field may bring into a host: no `/`, `@`, `:`, `?`,
/// `#`, whitespace or anything else that would end or reshape the host.
pub(crate) fn is_host_fragment(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// The parts of a checked URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckedUrl<'a> {
    pub host: &'a str,
}

/// Checks `url` is an absolute `https://` URL (or `http://` to `localhost` or
/// an IP literal) with a valid host, optional port, no userinfo, no
/// fragment, and a query only if `allow_query`.
pub(crate) fn check_url(url: &str, allow_query: bool) -> Result<CheckedUrl<'_>, String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters".into());
    }
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err("must be an absolute https:// URL".into());
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err("must not contain userinfo (`@`)".into());
    }
    if tail.contains('#') {
        return Err("must not contain a fragment (`#`)".into());
    }
    if !allow_query && tail.contains('?') {
        return Err("must not contain a query (`?`)".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let close = v6.find(']').ok_or("unterminated IPv6 literal")?;
        let addr = &v6[..close];
        addr.parse::<Ipv6Addr>()
            .map_err(|_| "invalid IPv6 literal".to_string())?;
        let after = &v6[close + 1..];
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or("invalid text after IPv6 literal")?,
            ),
        };
        (&authority[..close + 2], port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().map_or(true, |p| p == 0))
    {
        return Err("invalid port".into());
    }
    let ip_literal = is_ip_literal(host);
    if !ip_literal && !is_valid_host(host) {
        return Err(format!(
            "invalid host {host:?} (lowercase letters, digits, '-' and '.' only)"
        ));
    }
    if !(https || ip_literal || host == "localhost") {
        return Err(
            "must be https:// (http:// is allowed only for localhost or an IP literal)".into(),
        );
    }
    Ok(CheckedUrl { host })
}

/// True if `host` is an IP literal (`1.2.3.4`, `[::1]` or `::1`).
pub(crate) fn is_ip_literal(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().is_ok()
}

/// Which part of a URL a placeholder sits in, judged from the literal text
/// before it (placeholder values are never allowed to change this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Scheme,
    Host,
    Path,
    Query,
}

/// The [`Section`] of each placeholder of a URL template, in order.
pub(crate) fn placeholder_sections(template: &Template) -> Vec<Section> {
    let mut prefix = String::new();
    let mut sections = Vec::new();
    for part in template.parts() {
        match part {
            Part::Literal(text) => prefix.push_str(text),
            Part::Placeholder(_) => sections.push(match prefix.find("://") {
                None => Section::Scheme,
                Some(i) => {
                    let after = &prefix[i + 3..];
                    if after.contains(['?', '#']) {
                        Section::Query
                    } else if after.contains('/') {
                        Section::Path
                    } else {
                        Section::Host
                    }
                }
            }),
        }
    }
    sections
}

/// Checks a custom field's value may be substituted into `section`.
/// Returns the reason if not (never including the value).
pub(crate) fn check_value_for_section(value: &str, section: Section) -> Result<(), &'static str> {
    let bad_common = |c: char| c.is_whitespace() || c.is_control();
    match section {
        Section::Scheme => Err("placeholders are not allowed in a URL scheme"),
        Section::Host => {
            if is_host_fragment(value) {
                Ok(())
            } else {
                Err("only a-z, 0-9, '-' and '.' may be substituted into a host")
            }
        }
        Section::Path => {
            if value.is_empty() || value.contains(bad_common) || value.contains(['?', '#', '\\']) {
                Err("must be non-empty, without whitespace, '?', '#' or '\\' in a URL path")
            } else if super::relative::check_no_dot_segments(value).is_err() {
                // `..` in a base URL's path would climb out of it, as in a
                // caller's relative URL (see `relative.rs`).
                Err("must not hold a `.` or `..` path segment, raw or percent-encoded")
            } else {
                Ok(())
            }
        }
        Section::Query => {
            if value.is_empty() || value.contains(bad_common) || value.contains(['#', '&']) {
                Err("must be non-empty, without whitespace, '#' or '&' in a URL query")
            } else {
                Ok(())
            }
        }
    }
}

/// Renders a URL template with a harmless stand-in for every placeholder,
/// so its static shape can be checked at load time.
pub(crate) fn render_with_stand_ins(template: &Template) -> String {
    let stand_in = |_: &Placeholder| -> Result<String, std::convert::Infallible> { Ok("x".into()) };
    match template.render(stand_in) {
        Ok(text) => text,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            check_url("https://api.x.com/v1", false).unwrap().host,
            "api.x.com"
        );
        assert!(check_url("https://api.x.com:8443", false).is_ok());
        assert!(check_url("http://localhost:8080/x", false).is_ok());
        assert!(check_url("http://127.0.0.1/x", false).is_ok());
        assert_eq!(check_url("http://[::1]:80/", false).unwrap().host, "[::1]");
        assert!(check_url("http://api.x.com", false).is_err());
        assert!(check_url("ftp://api.x.com", false).is_err());
        assert!(check_url("https://u:p@api.x.com", false).is_err());
        assert!(check_url("https://api.x.com/#f", true).is_err());
        assert!(check_url("https://api.x.com/?q=1", false).is_err());
        assert!(check_url("https://api.x.com/?q=1", true).is_ok());
        assert!(check_url("https://API.x.com", false).is_err());
        assert!(check_url("https://a..x.com", false).is_err());
        assert!(check_url("https://a.x.com:0", false).is_err());
        assert!(check_url("https://a.x.com:", false).is_err());
        assert!(check_url("https:// a.x.com", false).is_err());
        assert!(check_url("https://", false).is_err());
    }

    #[test]
    fn path_values_cannot_climb() {
        for ok in ["acme", "a.b", "v2/items", "..x", "group%2Fproject"] {
            assert_eq!(check_value_for_section(ok, Section::Path), Ok(()), "{ok}");
        }
        for bad in ["..", ".", "a/../b", "%2e%2e", ".%2E", "a%2f..", "..;x"] {
            assert!(
                check_value_for_section(bad, Section::Path).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn sections() {
        let t = Template::parse(
            "https://{{custom_fields.a}}.x.com/{{custom_fields.b}}?q={{custom_fields.c}}",
        )
        .unwrap();
        assert_eq!(
            placeholder_sections(&t),
            vec![Section::Host, Section::Path, Section::Query]
        );
        let t = Template::parse("{{custom_fields.a}}://x").unwrap();
        assert_eq!(placeholder_sections(&t), vec![Section::Scheme]);
    }
}
