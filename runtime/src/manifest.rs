//! The step manifest, `airlock.toml`: the step's name, the secrets it may
//! use and the subset it may reveal, and its limits. Everything not granted
//! is denied.
//!
//! ```toml
//! name = "echo-secret"
//! secrets = ["TOKEN"]     # names the step may `secrets.get`
//! reveal = ["TOKEN"]      # the subset it may `reveal` (read as plaintext)
//!
//! [limits]                # all optional; defaults in the README
//! timeout_ms = 5000
//! cpu_ms = 1000
//! memory_mib = 64
//!
//! [http]
//! apps = ["github"]                 # apps whose connected accounts it may call with
//! allowed_hosts = ["api.example.com", "*.example.org"]   # reachable without an account
//!
//! [retry]                 # queued runs only (see `queue`)
//! max_attempts = 3
//!
//! [concurrency]           # caps on queued runs (see `queue`)
//! max_running = 2
//! ```
//!
//! A capability owns its section: `[http]` is the http capability's
//! ([`HttpSection`], with its validation and the grants it yields); the
//! secrets capability's grant type is [`SecretGrants`], filled from the
//! top-level `secrets` and `reveal` keys (names are validated here, against
//! the store's naming rules and the host's reserved prefix).
//!
//! Why unknown keys are errors, not ignored: a misspelt grant (`secret =`)
//! or limit (`memroy_mib =`) silently ignored would run the step with
//! different permissions or limits than its author believes.

mod queue;

pub use queue::{ConcurrencySection, RetryOn, RetryPolicy, RetrySection};

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use airlock_host_api::http::manifest::HttpSection;
use airlock_host_api::secrets::SecretGrants;
use serde::Deserialize;

use crate::engine::RunLimits;
use crate::store::validate_secret_name;

/// Largest memory limit a manifest may ask for, in MiB.
pub const MAX_MEMORY_MIB: u64 = 4096;

/// A parsed and validated `airlock.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub reveal: Vec<String>,
    #[serde(default)]
    pub limits: ManifestLimits,
    #[serde(default)]
    pub http: HttpSection,
    /// How a queued run is retried ([`queue`]).
    #[serde(default)]
    pub retry: RetrySection,
    /// Caps on the step's queued runs ([`queue`]).
    #[serde(default)]
    pub concurrency: ConcurrencySection,
}

/// Limits a manifest may set; each is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestLimits {
    pub timeout_ms: Option<u64>,
    pub cpu_ms: Option<u64>,
    pub memory_mib: Option<u64>,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifest {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid manifest{}: {message}", .path.as_deref().map(|p| format!(" {p}")).unwrap_or_default())]
    Invalid {
        path: Option<String>,
        message: String,
    },
}

impl Manifest {
    pub fn from_file(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ManifestError::Invalid { message, .. } => ManifestError::Invalid {
                path: Some(path.display().to_string()),
                message,
            },
            other => other,
        })
    }

    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let invalid = |message: String| ManifestError::Invalid {
            path: None,
            message,
        };
        let manifest: Manifest = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        manifest.validate().map_err(invalid)?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), String> {
        if validate_secret_name(&self.name).is_err() {
            return Err(format!(
                "`name` = {:?}: a step name is 1-128 ASCII letters, digits, `_`, `-` or `.`, \
                 starting with a letter or `_`",
                self.name
            ));
        }
        let mut seen = BTreeSet::new();
        for name in &self.secrets {
            if validate_secret_name(name).is_err() {
                return Err(format!("`secrets` holds an invalid secret name {name:?}"));
            }
            if !seen.insert(name) {
                return Err(format!("`secrets` lists {name:?} twice"));
            }
            if name.starts_with(crate::outbound::RESERVED_SECRET_PREFIX) {
                return Err(format!(
                    "`secrets` lists {name:?}: names starting with `{}` are reserved for the \
                     host (OAuth client credentials) and cannot be granted to a step",
                    crate::outbound::RESERVED_SECRET_PREFIX
                ));
            }
        }
        for name in &self.reveal {
            if !self.secrets.contains(name) {
                return Err(format!(
                    "`reveal` lists {name:?}, which is not in `secrets`; a step can only \
                     reveal a secret it is granted"
                ));
            }
        }
        self.http.validate()?;
        self.retry.validate()?;
        self.concurrency.validate()?;
        let l = &self.limits;
        for (key, value) in [("timeout_ms", l.timeout_ms), ("cpu_ms", l.cpu_ms)] {
            if value == Some(0) {
                return Err(format!("`limits.{key}` must be at least 1"));
            }
        }
        if let Some(mib) = l.memory_mib
            && !(1..=MAX_MEMORY_MIB).contains(&mib)
        {
            return Err(format!(
                "`limits.memory_mib` = {mib} is outside 1..={MAX_MEMORY_MIB}"
            ));
        }
        Ok(())
    }

    /// The grants this manifest gives.
    pub fn grants(&self) -> SecretGrants {
        SecretGrants {
            names: self.secrets.iter().cloned().collect(),
            reveal: self.reveal.iter().cloned().collect(),
        }
    }

    /// The outbound HTTP grants.
    pub fn http_grants(&self) -> airlock_host_api::http::pipeline::HttpGrants {
        self.http.grants()
    }

    /// `base` with this manifest's limits applied over it.
    pub fn limits_over(&self, base: RunLimits) -> RunLimits {
        let l = &self.limits;
        RunLimits {
            wall_time: l
                .timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(base.wall_time),
            cpu_time: l.cpu_ms.map(Duration::from_millis).unwrap_or(base.cpu_time),
            memory_bytes: l
                .memory_mib
                .map(|m| m * 1024 * 1024)
                .unwrap_or(base.memory_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Manifest::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn a_full_manifest_parses() {
        let m = Manifest::parse(
            r#"
            name = "echo-secret"
            secrets = ["TOKEN", "OTHER"]
            reveal = ["TOKEN"]
            [limits]
            timeout_ms = 5000
            cpu_ms = 100
            memory_mib = 64
            "#,
        )
        .unwrap();
        let g = m.grants();
        assert!(g.allows("OTHER") && !g.allows_reveal("OTHER"));
        assert!(g.allows_reveal("TOKEN"));
        let l = m.limits_over(RunLimits::default());
        assert_eq!(l.cpu_time, Duration::from_millis(100));
        assert_eq!(l.memory_bytes, 64 << 20);
    }

    #[test]
    fn nothing_is_granted_by_default() {
        let m = Manifest::parse(r#"name = "x""#).unwrap();
        assert_eq!(m.grants(), SecretGrants::default());
        assert_eq!(m.limits_over(RunLimits::default()), RunLimits::default());
    }

    #[test]
    fn bad_manifests_are_refused_naming_the_problem() {
        assert!(
            err(r#"name = "x"
secret = ["A"]"#)
            .contains("unknown field `secret`")
        );
        assert!(
            err("name = \"x\"\n[limits]\nmemroy_mib = 3").contains("unknown field `memroy_mib`")
        );
        assert!(err(r#"secrets = []"#).contains("missing field `name`"));
        assert!(
            err(r#"name = "x"
reveal = ["A"]"#)
            .contains("`reveal` lists \"A\", which is not in `secrets`")
        );
        assert!(
            err(r#"name = "x"
secrets = ["A", "A"]"#)
            .contains("twice")
        );
        assert!(
            err(r#"name = "x"
secrets = ["no spaces"]"#)
            .contains("invalid secret name")
        );
        assert!(
            err("name = \"x\"\n[limits]\ncpu_ms = 0")
                .contains("`limits.cpu_ms` must be at least 1")
        );
        assert!(err("name = \"x\"\n[limits]\nmemory_mib = 9999").contains("outside"));
        assert!(
            err(r#"name = "x"
secrets = "A""#)
            .contains("invalid type")
        );
        assert!(err(r#"name = "has space""#).contains("`name`"));
        assert!(
            err("name = \"x\"\n[http]\nallowed_hosts = [\"https://a.com\"]")
                .contains("without scheme")
        );
        assert!(err("name = \"x\"\n[http]\napps = [\"Git Hub\"]").contains("invalid app slug"));
        assert!(err("name = \"x\"\n[http]\nallowed_hosts = [\"*.com\"]").contains("allowed_hosts"));
        assert!(err("name = \"x\"\n[http]\nhosts = []").contains("unknown field `hosts`"));
    }

    #[test]
    fn http_grants_parse() {
        let m = Manifest::parse(
            "name = \"x\"\n[http]\napps = [\"github\"]\nallowed_hosts = [\"api.example.com\", \"*.example.org\"]",
        )
        .unwrap();
        let g = m.http_grants();
        assert!(g.apps.contains("github"));
        assert_eq!(g.allowed_hosts, ["api.example.com", "*.example.org"]);
    }
}
