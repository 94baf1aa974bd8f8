//! Path parameters of the API as the OpenAPI document states them, with the
//! patterns the server enforces, so a schema-driven client never sends a
//! name the server refuses. The handlers extract tuples; these structs only
//! describe them (`params(ProjectPath)` in an operation).
//!
//! The patterns repeat the store's rules ([`crate::store::validate_step_name`]
//! and friends); `tests::patterns_match_the_stores_rules` holds them together.

use serde::Deserialize;
use utoipa::IntoParams;

/// A project, secret or step name: [`crate::store::MAX_NAME_LEN`] letters,
/// digits, `_`, `-`, `.`, starting with a letter or `_`.
pub const NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$";
/// An API key id: 16 hex digits.
pub const KEY_ID_PATTERN: &str = "^[0-9a-f]{16}$";
/// An OAuth client id.
pub const CLIENT_ID_PATTERN: &str = "^ac_[0-9a-f]{16}$";
/// A connected account id.
pub const ACCOUNT_ID_PATTERN: &str = "^acc_[0-9a-f]{16}$";
/// A trigger id: 24 random bytes, base64url.
pub const TRIGGER_ID_PATTERN: &str = "^[A-Za-z0-9_-]{32}$";
/// An app slug (whether it is in the catalog is another question).
pub const SLUG_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$";
/// Text without control characters (what an external user id may hold).
pub const NO_CONTROL_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";

/// `/v1/projects/{project}/...`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectPath {
    /// A project name.
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", example = "alpha")]
    pub project: String,
}

/// `/v1/projects/{name}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectNamePath {
    /// A project name.
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", example = "alpha")]
    pub name: String,
}

/// `/v1/projects/{project}/steps/{step}...`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct StepPath {
    /// A project name.
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", example = "alpha")]
    pub project: String,
    /// A step name.
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", example = "hello")]
    pub step: String,
}

/// `/v1/projects/{project}/steps/{step}/triggers/{id}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TriggerPath {
    /// A project name.
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", example = "alpha")]
    pub project: String,
    /// A step name.
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", example = "hello")]
    pub step: String,
    /// A trigger id.
    #[param(pattern = "^[A-Za-z0-9_-]{32}$")]
    pub id: String,
}

/// `/v1/projects/{project}/secrets/{name}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SecretPath {
    /// A project name.
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", example = "alpha")]
    pub project: String,
    /// A secret name.
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", example = "TOKEN")]
    pub name: String,
}

/// `/v1/projects/{project}/runs/{id}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RunPath {
    /// A project name.
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", example = "alpha")]
    pub project: String,
    /// A run id (a UUID).
    pub id: String,
}

/// `/v1/projects/{project}/accounts/{id}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AccountPath {
    /// A project name.
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", example = "alpha")]
    pub project: String,
    /// An account id.
    #[param(pattern = "^acc_[0-9a-f]{16}$")]
    pub id: String,
}

/// `/v1/projects/{project}/proxy/{url}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProxyPath {
    /// A project name.
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", example = "alpha")]
    pub project: String,
    /// URL-safe base64 (RFC 4648 §5, padding optional) of a full URL or of
    /// a path relative to the app's base URL.
    #[param(pattern = "^[A-Za-z0-9_-]+={0,2}$", example = "L3VzZXIvcmVwb3M")]
    pub url: String,
}

/// `/v1/keys/{id}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPath {
    /// An API key id.
    #[param(pattern = "^[0-9a-f]{16}$")]
    pub id: String,
}

/// `?unused_since=` of the credential listings (keys, OAuth clients,
/// accounts, secrets).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnusedSinceParams {
    /// Only credentials not used at or after this instant (never used ones
    /// count): an RFC 3339 timestamp or Unix milliseconds. Uses are
    /// recorded at most once a minute per node.
    #[param(example = "2026-11-01T00:00:00Z")]
    pub unused_since: Option<String>,
}

impl UnusedSinceParams {
    /// The instant in Unix seconds (what `last_used_at` is stored in).
    pub fn since_secs(&self) -> Result<Option<i64>, super::error::ApiError> {
        self.unused_since
            .as_deref()
            .map(|t| super::time::instant("unused_since", t).map(|ms| ms.div_euclid(1000)))
            .transpose()
    }
}

/// `/v1/oauth/clients/{id}...`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ClientPath {
    /// An OAuth client id.
    #[param(pattern = "^ac_[0-9a-f]{16}$")]
    pub id: String,
}

/// `/v1/apps/{slug}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppPath {
    /// An app slug, e.g. `github`.
    #[param(pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", example = "github")]
    pub slug: String,
}

/// `/t/{id}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FirePath {
    /// The trigger id.
    #[param(pattern = "^[A-Za-z0-9_-]{32}$")]
    pub id: String,
}

/// `/t/{id}/{path}`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FireSubPath {
    /// The trigger id.
    #[param(pattern = "^[A-Za-z0-9_-]{32}$")]
    pub id: String,
    /// The rest of the path, given to the step as `path` (it may hold `/`).
    pub path: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(text)
    }

    #[test]
    fn patterns_match_the_stores_rules() {
        let long = "a".repeat(crate::store::MAX_NAME_LEN);
        let too_long = "a".repeat(crate::store::MAX_NAME_LEN + 1);
        for name in [
            "alpha",
            "_x",
            "A.b-c_9",
            long.as_str(),
            "9x",
            "",
            "a b",
            too_long.as_str(),
            "é",
        ] {
            assert_eq!(
                matches(NAME_PATTERN, name),
                crate::store::validate_step_name(name).is_ok(),
                "{name}"
            );
        }
        for slug in ["github", "9x", "a.b_c-d", "", "_x", "acc_0123456789abcdef"] {
            let store = crate::store::accounts::validate_app(slug).is_ok();
            // The document's pattern may be looser only where the server
            // answers 404 or 400 for an unknown slug anyway.
            if store {
                assert!(matches(SLUG_PATTERN, slug), "{slug}");
            }
        }
        assert!(matches(NO_CONTROL_PATTERN, "ada@example.com"));
        assert!(!matches(NO_CONTROL_PATTERN, "a\u{7}b"));
        assert!(!matches(NO_CONTROL_PATTERN, "a\u{85}b"));
    }

    /// The attributes spell the patterns out (they take literals only); they
    /// must be these constants.
    #[test]
    fn the_documented_patterns_are_the_constants() {
        let known = [
            NAME_PATTERN,
            KEY_ID_PATTERN,
            CLIENT_ID_PATTERN,
            ACCOUNT_ID_PATTERN,
            TRIGGER_ID_PATTERN,
            SLUG_PATTERN,
            "^[A-Za-z0-9_-]+={0,2}$",
        ];
        let all = [
            ProjectPath::into_params(|| None),
            ProjectNamePath::into_params(|| None),
            StepPath::into_params(|| None),
            TriggerPath::into_params(|| None),
            SecretPath::into_params(|| None),
            RunPath::into_params(|| None),
            AccountPath::into_params(|| None),
            ProxyPath::into_params(|| None),
            KeyPath::into_params(|| None),
            ClientPath::into_params(|| None),
            AppPath::into_params(|| None),
            FirePath::into_params(|| None),
            FireSubPath::into_params(|| None),
        ];
        for params in all {
            for p in params {
                let json = serde_json::to_value(&p).unwrap();
                if let Some(pattern) = json["schema"]["pattern"].as_str() {
                    assert!(known.contains(&pattern), "{}: {pattern}", p.name);
                }
            }
        }
    }
}
