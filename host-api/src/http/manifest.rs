//! The http capability's section of a step's manifest (`airlock.toml`):
//!
//! ```toml
//! [http]
//! apps = ["github"]                 # apps whose connected accounts it may call with
//! allowed_hosts = ["api.example.com", "*.example.org"]   # reachable without an account
//! ```
//!
//! Why a wildcard needs two labels after `*.`: `*.com` would grant a whole
//! top-level domain. Why hosts carry no scheme, port or path: the grant is
//! about where a request may go; https-only for credentials and the
//! address checks are the pipeline's, for every request alike.

use serde::Deserialize;

use crate::http::pipeline::HttpGrants;

/// `[http]`: outbound grants; nothing listed, nothing reachable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    #[serde(default)]
    pub apps: Vec<String>,
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

impl HttpSection {
    /// Names the first bad entry, as the manifest's error message.
    pub fn validate(&self) -> Result<(), String> {
        for app in &self.apps {
            if !valid_slug(app) {
                return Err(format!("`http.apps` holds an invalid app slug {app:?}"));
            }
        }
        for host in &self.allowed_hosts {
            if !valid_host_rule(host) {
                return Err(format!(
                    "`http.allowed_hosts` holds {host:?}; give a host name (`api.example.com`) \
                     or a wildcard (`*.example.com`), without scheme, port or path"
                ));
            }
        }
        Ok(())
    }

    /// Whether the step may make any outbound request at all.
    pub fn grants_any(&self) -> bool {
        !self.apps.is_empty() || !self.allowed_hosts.is_empty()
    }

    /// The grants the pipeline checks each request against.
    pub fn grants(&self) -> HttpGrants {
        HttpGrants {
            apps: self.apps.iter().cloned().collect(),
            allowed_hosts: self.allowed_hosts.clone(),
        }
    }
}

fn valid_slug(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && s.len() <= 64
}

fn valid_host_rule(s: &str) -> bool {
    let (wildcard, host) = match s.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if wildcard && host.split('.').count() < 2 {
        return false;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}
