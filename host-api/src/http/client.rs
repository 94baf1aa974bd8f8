//! The one pooled HTTP client every run's outbound requests go through.
//!
//! Why each setting:
//!
//! * **One client for all runs.** Connection pooling and TLS session reuse
//!   across runs is most of the latency of a short step. Nothing per-run
//!   (credentials, headers) lives on the client; the pipeline sets them per
//!   request.
//! * **No redirects** (`redirect::Policy::none()`). The pipeline follows
//!   redirects itself so that every hop gets the grant check, the
//!   [`check_literal_host`] check and a fresh decision about which
//!   credentials may travel to the new host.
//! * **No proxy** (`no_proxy()`, and reqwest's `system-proxy` feature is not
//!   enabled). A proxy resolves and dials on our behalf, so an
//!   `HTTP(S)_PROXY` in the environment would silently bypass every egress
//!   check.
//! * **The [`CheckedResolver`]**, so the address that is dialed is the
//!   address that was checked.
//! * **TLS by rustls with the `ring` provider** and the platform's roots
//!   (`rustls-platform-verifier`), configured here and handed to reqwest
//!   preconfigured, so no `aws-lc-rs` C build is needed and no process-wide
//!   default provider has to be installed.
//! * **Connect timeout and idle-pool timeout** bound how long a dead or
//!   black-holed upstream can hold a run, and how long idle sockets are kept.

use std::error::Error as StdError;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::redirect;
use url::{Host, Url};

use super::egress::{EgressDenied, EgressPolicy};
use super::resolver::{CheckedResolver, ResolveDenied};

/// Settings of the shared client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Time to establish TCP (and no more); default 10 s.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept; default 90 s.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per host; default 32.
    pub pool_max_idle_per_host: usize,
    /// Whole-request timeout applied by the client, if any. Runs have their
    /// own wall budget; this is a backstop. Default: none.
    pub request_timeout: Option<Duration>,
    /// TCP keep-alive probes on pooled sockets; default 60 s.
    pub tcp_keepalive: Option<Duration>,
    /// `User-Agent` sent when the request sets none.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 32,
            request_timeout: None,
            tcp_keepalive: Some(Duration::from_secs(60)),
            user_agent: concat!("airlock/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("HTTP client configuration failed: {0}")]
    Client(#[from] reqwest::Error),
}

/// rustls with the `ring` provider, platform roots, HTTP/2 and HTTP/1.1 ALPN.
pub fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    // A preconfigured rustls config is used as is: reqwest adds no ALPN.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Build the shared client with a fresh [`CheckedResolver`] over `policy`.
pub fn build_client(
    policy: Arc<EgressPolicy>,
    config: &ClientConfig,
) -> Result<reqwest::Client, ClientBuildError> {
    build_client_with_resolver(Arc::new(CheckedResolver::new(policy)), config)
}

/// Build the shared client around a resolver the caller keeps, e.g. to read
/// [`CheckedResolver::recent_refusals`].
pub fn build_client_with_resolver(
    resolver: Arc<CheckedResolver>,
    config: &ClientConfig,
) -> Result<reqwest::Client, ClientBuildError> {
    let mut builder = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .no_proxy()
        .dns_resolver(resolver)
        .tls_backend_preconfigured(tls_config()?)
        .connect_timeout(config.connect_timeout)
        .pool_idle_timeout(config.pool_idle_timeout)
        .pool_max_idle_per_host(config.pool_max_idle_per_host)
        .tcp_keepalive(config.tcp_keepalive)
        .user_agent(config.user_agent.clone());
    if let Some(timeout) = config.request_timeout {
        builder = builder.timeout(timeout);
    }
    Ok(builder.build()?)
}

/// Check a URL whose host is an IP literal, which reqwest dials without
/// asking the resolver. Call before every request and every redirect hop.
///
/// `url` (WHATWG parsing) already turns `http://2130706433/`,
/// `http://0x7f.1/`, `http://0177.0.0.1/` and `http://127.1/` into
/// `Host::Ipv4(127.0.0.1)`, and brackets off IPv6 literals, so the parsed
/// host is what is dialed. A domain host is left to the resolver, except
/// that a domain which still parses as an address (possible only for
/// non-special schemes, which the pipeline should refuse anyway) is checked
/// here too. A URL without a host has nothing to dial and passes.
pub fn check_literal_host(policy: &EgressPolicy, url: &Url) -> Result<(), EgressDenied> {
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(domain)) => {
            let bare = domain.trim_start_matches('[').trim_end_matches(']');
            let bare = bare.strip_suffix('.').unwrap_or(bare);
            match bare.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(_) => return Ok(()),
            }
        }
        None => return Ok(()),
    };
    policy.check(ip).inspect_err(|denied| {
        tracing::warn!(
            %ip,
            port = url.port_or_known_default(),
            class = %denied.class,
            "egress: literal address refused"
        );
    })
}

/// Find the egress denial inside an error from the client, if that is why
/// the request failed (the resolver's error travels in `source()`).
pub fn egress_denial<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a EgressDenied> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(d) = e.downcast_ref::<ResolveDenied>() {
            return Some(d.denial());
        }
        if let Some(d) = e.downcast_ref::<EgressDenied>() {
            return Some(d);
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::egress::{AddrClass, parse_range};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn loopback_policy() -> Arc<EgressPolicy> {
        Arc::new(EgressPolicy::new(vec![parse_range("127.0.0.0/8").unwrap()]))
    }

    /// A one-connection-at-a-time HTTP/1.1 server on 127.0.0.1 answering
    /// every request with `hello`. Bounded: serves at most `max` requests.
    async fn serve_hello(max: usize) -> (u16, tokio::task::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut served = 0;
            while served < max {
                let Ok((mut sock, _)) = listener.accept().await else {
                    break;
                };
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
                    )
                    .await;
                let _ = sock.shutdown().await;
                served += 1;
            }
            served
        });
        (port, task)
    }

    #[tokio::test]
    async fn egress_client_localhost_allowed_with_loopback_range() {
        let (port, server) = serve_hello(1).await;
        let client = build_client(loopback_policy(), &ClientConfig::default()).unwrap();
        let url = Url::parse(&format!("http://localhost:{port}/ping")).unwrap();
        check_literal_host(&loopback_policy(), &url).unwrap();
        let resp = client.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "hello");
        assert_eq!(server.await.unwrap(), 1);
    }

    #[tokio::test]
    async fn egress_client_localhost_refused_by_default() {
        // A server is listening, so a refusal can only come from the policy.
        let (port, server) = serve_hello(1).await;
        let resolver = Arc::new(CheckedResolver::new(Arc::new(EgressPolicy::default())));
        let client =
            build_client_with_resolver(resolver.clone(), &ClientConfig::default()).unwrap();
        let err = client
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        let denied = egress_denial(&err).unwrap_or_else(|| panic!("no denial in {err:?}"));
        assert_eq!(denied.class, AddrClass::Loopback);
        assert!(!resolver.recent_refusals().is_empty());
        server.abort();
    }

    #[test]
    fn egress_literal_loopback_refused_by_default() {
        let policy = EgressPolicy::default();
        let url = Url::parse("http://127.0.0.1:8080/").unwrap();
        let denied = check_literal_host(&policy, &url).unwrap_err();
        assert_eq!(denied.to_string(), "127.0.0.1 is loopback; refused");
        assert!(check_literal_host(&loopback_policy(), &url).is_ok());
    }

    #[tokio::test]
    async fn egress_literal_allowed_request_reaches_server() {
        let (port, server) = serve_hello(1).await;
        let policy = loopback_policy();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        check_literal_host(&policy, &url).unwrap();
        let client = build_client(policy, &ClientConfig::default()).unwrap();
        assert_eq!(client.get(url).send().await.unwrap().status(), 200);
        assert_eq!(server.await.unwrap(), 1);
    }

    #[test]
    fn egress_literal_forms_normalised_by_url() {
        let policy = EgressPolicy::default();
        // Decimal, hex, octal and short IPv4 forms all become 127.0.0.1.
        for s in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://017700000001/",
            "http://127.1/",
            "http://127.0.0.1./",
            "HTTP://127.000.000.001/",
        ] {
            let url = Url::parse(s).unwrap();
            assert_eq!(url.host_str(), Some("127.0.0.1"), "{s}");
            let denied = check_literal_host(&policy, &url).unwrap_err();
            assert_eq!(denied.class, AddrClass::Loopback, "{s}");
        }
        // Bracketed IPv6, including mapped metadata.
        let url = Url::parse("http://[::ffff:169.254.169.254]/latest").unwrap();
        let denied = check_literal_host(&policy, &url).unwrap_err();
        assert!(
            denied
                .to_string()
                .contains("169.254.169.254, which is link-local (cloud metadata)"),
            "{denied}"
        );
        let url = Url::parse("https://[::1]:8443/").unwrap();
        assert!(check_literal_host(&policy, &url).is_err());
        let url = Url::parse("http://[fe80::1]/").unwrap();
        assert!(check_literal_host(&policy, &url).is_err());
        // A decimal metadata literal.
        let url = Url::parse("http://2852039166/").unwrap();
        assert_eq!(url.host_str(), Some("169.254.169.254"));
        assert!(check_literal_host(&policy, &url).is_err());
        // Non-special scheme: the host stays a "domain"; still checked.
        let url = Url::parse("foo://127.0.0.1/").unwrap();
        assert!(check_literal_host(&policy, &url).is_err());
        // Names are left to the resolver; public literals pass.
        assert!(check_literal_host(&policy, &Url::parse("https://example.com/").unwrap()).is_ok());
        assert!(check_literal_host(&policy, &Url::parse("http://8.8.8.8/").unwrap()).is_ok());
        assert!(
            check_literal_host(&policy, &Url::parse("http://[2606:4700::1111]/").unwrap()).is_ok()
        );
    }

    #[tokio::test]
    async fn egress_client_does_not_follow_redirects() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = sock.read(&mut buf).await;
            sock.write_all(
                b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        });
        let client = build_client(loopback_policy(), &ClientConfig::default()).unwrap();
        let resp = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
        server.await.unwrap();
    }
}
