//! Joining a caller's relative URL (`/tickets.json?page=2`) to an app's base
//! URL (`https://acme.zendesk.com/api/v2`): the one place it happens, for the
//! proxy and for `http.send` with an account alike.
//!
//! A relative URL is the caller's way of saying "under this app's base"; it
//! must never climb out of it. With a base of `https://host/{tenant}/api`, a
//! path `/../../x` would otherwise reach `/x` and `/.%2e/x` another tenant's
//! `/acme/x`. Two checks, because two parties normalise the path:
//!
//! - **What the upstream may decode**: no segment of the path may be `.` or
//!   `..`, raw or percent-encoded in any case, at any depth of encoding
//!   (`%252e` is `%2e` to a server that decodes twice), split at `/`, `\`
//!   and their encodings (`..%2f`, `..%5c`), with `;` path parameters
//!   (`..;/`, which some servlet containers honour) and padding (`..%00`,
//!   `..%20`) ignored. Whitespace and control characters are refused
//!   outright: the URL parser drops tabs and newlines, so `.\t.` would
//!   become `..` after any check of the raw text. A segment that decodes to
//!   text containing `/` (`group%2Fproject`, as GitLab's API takes) is fine.
//! - **What our own parser did**: after joining and parsing, the URL must
//!   have the base's scheme, host and port, and its path must be the base's
//!   path or lie under it.

use url::Url;

/// How many times a path is percent-decoded, at most, looking for dot
/// segments. Each level is one more server that might decode it.
const MAX_DECODE_DEPTH: usize = 8;

/// Why a relative URL was refused. Messages never quote the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelativeUrlError {
    #[error("a relative URL must start with `/`")]
    NotRelative,
    #[error("a relative URL must not contain whitespace or control characters")]
    Whitespace,
    #[error(
        "a relative URL must not contain a `.` or `..` path segment \
         (raw, percent-encoded, or split by `\\` or an encoded slash)"
    )]
    DotSegment,
    #[error("a relative URL's path is percent-encoded more than {MAX_DECODE_DEPTH} times over")]
    TooDeeplyEncoded,
    #[error("the joined URL does not parse: {0}")]
    Parse(String),
    #[error("the relative URL resolves outside the app's base URL path `{base_path}`")]
    OutsideBase { base_path: String },
}

/// `relative` joined to `base`: `base` without its trailing `/`, then
/// `relative` (which must start with `/`), checked as the module says.
pub fn join_relative(base: &str, relative: &str) -> Result<Url, RelativeUrlError> {
    if !relative.starts_with('/') {
        return Err(RelativeUrlError::NotRelative);
    }
    if relative
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(RelativeUrlError::Whitespace);
    }
    let path = relative
        .split(['?', '#'])
        .next()
        .expect("split yields at least one part");
    check_no_dot_segments(path)?;
    let base_url = Url::parse(base).map_err(|e| RelativeUrlError::Parse(e.to_string()))?;
    let joined = Url::parse(&format!("{}{relative}", base.trim_end_matches('/')))
        .map_err(|e| RelativeUrlError::Parse(e.to_string()))?;
    check_under(&base_url, &joined)?;
    Ok(joined)
}

/// `joined` has `base`'s origin and its path is `base`'s or lies under it.
fn check_under(base: &Url, joined: &Url) -> Result<(), RelativeUrlError> {
    let base_path = base.path().trim_end_matches('/');
    let same_origin = joined.scheme() == base.scheme()
        && joined.host() == base.host()
        && joined.port_or_known_default() == base.port_or_known_default();
    let under_base = joined.path() == base_path
        || joined
            .path()
            .strip_prefix(base_path)
            .is_some_and(|rest| rest.starts_with('/'));
    if same_origin && under_base {
        Ok(())
    } else {
        Err(RelativeUrlError::OutsideBase {
            base_path: base.path().to_owned(),
        })
    }
}

/// Refuses a path (no query) with a dot segment at any level of decoding.
pub(crate) fn check_no_dot_segments(path: &str) -> Result<(), RelativeUrlError> {
    let mut text = path.to_owned();
    for _ in 0..=MAX_DECODE_DEPTH {
        if text.split(['/', '\\']).any(is_dot_segment) {
            return Err(RelativeUrlError::DotSegment);
        }
        let decoded = percent_encoding::percent_decode_str(&text)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == text {
            return Ok(());
        }
        text = decoded;
    }
    Err(RelativeUrlError::TooDeeplyEncoded)
}

/// `.` or `..`, ignoring `;` parameters and surrounding whitespace or
/// control characters.
fn is_dot_segment(segment: &str) -> bool {
    let name = segment.split(';').next().unwrap_or("");
    let name = name.trim_matches(|c: char| c.is_whitespace() || c.is_control());
    name == "." || name == ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://host.example/acme/api";

    #[test]
    fn paths_under_the_base_are_joined() {
        for (relative, path, query) in [
            ("/tickets.json", "/acme/api/tickets.json", None),
            ("/a/b?x=1&y=../..", "/acme/api/a/b", Some("x=1&y=../..")),
            ("/", "/acme/api/", None),
            (
                "/projects/group%2Fproject",
                "/acme/api/projects/group%2Fproject",
                None,
            ),
            ("/a..b/.hidden/...", "/acme/api/a..b/.hidden/...", None),
            ("//double", "/acme/api//double", None),
        ] {
            let url = join_relative(BASE, relative).unwrap_or_else(|e| panic!("{relative}: {e}"));
            assert_eq!(url.host_str(), Some("host.example"), "{relative}");
            assert_eq!(url.path(), path, "{relative}");
            assert_eq!(url.query(), query, "{relative}");
        }
        assert_eq!(
            join_relative("https://host.example/v1/", "/x")
                .unwrap()
                .as_str(),
            "https://host.example/v1/x"
        );
        assert_eq!(
            join_relative("https://host.example", "/x")
                .unwrap()
                .as_str(),
            "https://host.example/x"
        );
    }

    #[test]
    fn dot_segments_are_refused_however_they_are_written() {
        for relative in [
            "/../../x",
            "/%2e%2e/%2e%2e/x",
            "/.%2e/x",
            "/%2E%2e/x",
            "/%2e./x",
            "/./x",
            "/%2e/x",
            "/a/..",
            "/a/.",
            "/..\\x",
            "/a\\..\\..\\x",
            "/..%2fx",
            "/..%2Fx",
            "/..%5cx",
            "/%252e%252e/x",
            "/%25252e%25252e/x",
            "/..;/x",
            "/..;jsessionid=1/x",
            "/..%00/x",
            "/..%20/x",
            "/%2e%2e%2f%2e%2e%2fx",
        ] {
            assert_eq!(
                join_relative(BASE, relative),
                Err(RelativeUrlError::DotSegment),
                "{relative}"
            );
        }
    }

    #[test]
    fn whitespace_that_the_parser_would_drop_is_refused() {
        for relative in ["/.\t./x", "/.\n./x", "/a b", "/x\r", "/\u{0}"] {
            assert_eq!(
                join_relative(BASE, relative),
                Err(RelativeUrlError::Whitespace),
                "{relative:?}"
            );
        }
    }

    #[test]
    fn other_refusals() {
        assert_eq!(join_relative(BASE, "x"), Err(RelativeUrlError::NotRelative));
        // `.` encoded MAX_DECODE_DEPTH + 2 times over: `%` `25`… `2e`.
        let dot = format!("%{}2e", "25".repeat(MAX_DECODE_DEPTH + 1));
        let deep = format!("/{dot}{dot}/x");
        assert_eq!(
            join_relative(BASE, &deep),
            Err(RelativeUrlError::TooDeeplyEncoded)
        );
    }

    #[test]
    fn the_parsed_url_must_stay_under_the_base() {
        let base = Url::parse(BASE).unwrap();
        for inside in [
            "https://host.example/acme/api",
            "https://host.example/acme/api/",
            "https://host.example:443/acme/api/x",
        ] {
            assert_eq!(
                check_under(&base, &Url::parse(inside).unwrap()),
                Ok(()),
                "{inside}"
            );
        }
        for outside in [
            "https://host.example/x",
            "https://host.example/acme/x",
            "https://host.example/acme/apix",
            "https://other.example/acme/api/x",
            "https://host.example:8443/acme/api/x",
            "http://host.example/acme/api/x",
        ] {
            assert!(
                matches!(
                    check_under(&base, &Url::parse(outside).unwrap()),
                    Err(RelativeUrlError::OutsideBase { .. })
                ),
                "{outside}"
            );
        }
        let root = Url::parse("https://host.example").unwrap();
        assert_eq!(
            check_under(&root, &Url::parse("https://host.example/any/path").unwrap()),
            Ok(())
        );
    }
}
