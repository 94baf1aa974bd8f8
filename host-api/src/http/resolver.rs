//! A DNS resolver for reqwest that only ever hands out addresses the egress
//! policy allows.
//!
//! Why the check lives in the resolver: reqwest dials exactly the addresses
//! its resolver returns. Checking the name's addresses here, and returning
//! only the ones that passed, means the address that is connected to is the
//! one that was checked. A check done earlier (resolve, check, then let
//! reqwest resolve again) would leave a window for DNS rebinding: the second
//! answer could be `127.0.0.1`.
//!
//! IP-literal URLs never reach a resolver (hyper dials the literal), so the
//! pipeline must also call `client::check_literal_host` on every request and
//! redirect hop.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::egress::{EgressDenied, EgressPolicy};

/// How many recent refusals [`CheckedResolver::recent_refusals`] keeps.
pub const REFUSAL_HISTORY: usize = 64;

/// The lookup failed because every address the name resolved to was refused.
/// Travels inside `reqwest::Error`'s source chain; find it with
/// [`crate::http::client::egress_denial`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("egress refused for {host}: {}", first_denial(.denials))]
pub struct ResolveDenied {
    /// The host name that was looked up (a grant already named it; it holds
    /// no credential).
    pub host: String,
    /// One denial per refused address, in resolver order. Never empty.
    pub denials: Vec<EgressDenied>,
}

fn first_denial(denials: &[EgressDenied]) -> String {
    match denials {
        [] => "no addresses".into(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more refused)", rest.len()),
    }
}

impl ResolveDenied {
    /// The first refused address's denial.
    pub fn denial(&self) -> &EgressDenied {
        &self.denials[0]
    }
}

/// A lookup that failed before the policy was involved.
#[derive(Debug, thiserror::Error)]
#[error("could not resolve {host}: {source}")]
pub struct LookupFailed {
    pub host: String,
    #[source]
    pub source: std::io::Error,
}

/// A refused address, kept for diagnostics: the host that resolved to it,
/// the address and why. No URL, path, query or header is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub host: String,
    pub denied: EgressDenied,
}

/// Resolves with the system resolver (`tokio::net::lookup_host`) and drops
/// every address the [`EgressPolicy`] refuses.
pub struct CheckedResolver {
    policy: Arc<EgressPolicy>,
    refusals: Arc<Mutex<VecDeque<Refusal>>>,
}

impl CheckedResolver {
    pub fn new(policy: Arc<EgressPolicy>) -> Self {
        Self {
            policy,
            refusals: Arc::new(Mutex::new(VecDeque::with_capacity(REFUSAL_HISTORY))),
        }
    }

    pub fn policy(&self) -> &Arc<EgressPolicy> {
        &self.policy
    }

    /// The most recent refusals, oldest first, at most [`REFUSAL_HISTORY`].
    pub fn recent_refusals(&self) -> Vec<Refusal> {
        lock(&self.refusals).iter().cloned().collect()
    }

    /// Resolve `host` and keep only the allowed addresses (port 0: reqwest
    /// puts the URL's port in). Errors if the lookup fails or nothing is left.
    pub async fn resolve_checked(&self, host: &str) -> Result<Vec<SocketAddr>, ResolveError> {
        check_resolved(
            &self.policy,
            &self.refusals,
            host,
            lookup(host).await.map_err(|source| {
                ResolveError::Lookup(LookupFailed {
                    host: host.to_owned(),
                    source,
                })
            })?,
        )
    }
}

/// Why [`CheckedResolver::resolve_checked`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Denied(#[from] ResolveDenied),
    #[error(transparent)]
    Lookup(#[from] LookupFailed),
}

async fn lookup(host: &str) -> std::io::Result<Vec<IpAddr>> {
    let addrs = tokio::net::lookup_host((host, 0)).await?;
    let mut ips: Vec<IpAddr> = Vec::new();
    for addr in addrs {
        if !ips.contains(&addr.ip()) {
            ips.push(addr.ip());
        }
    }
    Ok(ips)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the deque inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn check_resolved(
    policy: &EgressPolicy,
    refusals: &Mutex<VecDeque<Refusal>>,
    host: &str,
    ips: Vec<IpAddr>,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let mut allowed = Vec::with_capacity(ips.len());
    let mut denials = Vec::new();
    for ip in ips {
        match policy.check(ip) {
            Ok(()) => allowed.push(SocketAddr::new(ip, 0)),
            Err(denied) => {
                tracing::warn!(host, %ip, class = %denied.class, "egress: resolved address refused");
                denials.push(denied);
            }
        }
    }
    if !denials.is_empty() {
        let mut log = lock(refusals);
        for denied in &denials {
            if log.len() == REFUSAL_HISTORY {
                log.pop_front();
            }
            log.push_back(Refusal {
                host: host.to_owned(),
                denied: denied.clone(),
            });
        }
    }
    if allowed.is_empty() {
        if denials.is_empty() {
            return Err(ResolveError::Lookup(LookupFailed {
                host: host.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
            }));
        }
        return Err(ResolveError::Denied(ResolveDenied {
            host: host.to_owned(),
            denials,
        }));
    }
    Ok(allowed)
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let refusals = self.refusals.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = lookup(&host).await.map_err(|source| {
                Box::new(LookupFailed {
                    host: host.clone(),
                    source,
                }) as Box<dyn std::error::Error + Send + Sync>
            })?;
            match check_resolved(&policy, &refusals, &host, ips) {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as Addrs),
                Err(ResolveError::Denied(d)) => Err(Box::new(d) as _),
                Err(ResolveError::Lookup(l)) => Err(Box::new(l) as _),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::egress::{AddrClass, parse_range};

    #[tokio::test]
    async fn egress_resolver_localhost_refused_by_default() {
        let resolver = CheckedResolver::new(Arc::new(EgressPolicy::default()));
        let err = resolver.resolve_checked("localhost").await.unwrap_err();
        let ResolveError::Denied(denied) = err else {
            panic!("expected a denial, got {err}");
        };
        assert_eq!(denied.host, "localhost");
        assert!(
            denied
                .denials
                .iter()
                .all(|d| d.class == AddrClass::Loopback),
            "{denied:?}"
        );
        assert!(
            denied.to_string().contains("is loopback; refused"),
            "{denied}"
        );
        let refusals = resolver.recent_refusals();
        assert!(!refusals.is_empty());
        assert!(refusals.iter().all(|r| r.host == "localhost"));
    }

    #[tokio::test]
    async fn egress_resolver_localhost_allowed_with_loopback_range() {
        let policy = EgressPolicy::new(vec![parse_range("127.0.0.0/8").unwrap()]);
        let resolver = CheckedResolver::new(Arc::new(policy));
        let addrs = resolver.resolve_checked("localhost").await.unwrap();
        assert!(!addrs.is_empty());
        // Only the allowed IPv4 loopback is handed out; ::1 (if the system
        // resolves it) is dropped because only 127/8 was allowed.
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_ipv4() && a.ip().is_loopback()),
            "{addrs:?}"
        );
    }

    #[test]
    fn egress_resolver_drops_refused_keeps_allowed() {
        let policy = EgressPolicy::default();
        let refusals = Mutex::new(VecDeque::new());
        let ips = vec![
            "10.0.0.1".parse().unwrap(),
            "8.8.8.8".parse().unwrap(),
            "169.254.169.254".parse().unwrap(),
        ];
        let kept = check_resolved(&policy, &refusals, "mixed.example", ips).unwrap();
        assert_eq!(kept, vec!["8.8.8.8:0".parse::<SocketAddr>().unwrap()]);
        let log = lock(&refusals);
        assert_eq!(log.len(), 2);
        assert_eq!(log[1].denied.class, AddrClass::LinkLocal);
    }

    #[test]
    fn egress_resolver_refusal_history_is_bounded() {
        let policy = EgressPolicy::default();
        let refusals = Mutex::new(VecDeque::new());
        for _ in 0..(REFUSAL_HISTORY + 10) {
            let ips = vec!["10.0.0.1".parse().unwrap()];
            assert!(check_resolved(&policy, &refusals, "private.example", ips).is_err());
        }
        assert_eq!(lock(&refusals).len(), REFUSAL_HISTORY);
    }
}
