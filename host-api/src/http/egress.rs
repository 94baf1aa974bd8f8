//! Egress policy: which addresses a guest's HTTP request may reach
//! (security invariant 2 in the design brief).
//!
//! A guest names a host; the host resolves it and dials. Without a check on
//! the *address*, a step could reach the host's own services on loopback, the
//! operator's private network, or the cloud metadata service at
//! 169.254.169.254 (server-side request forgery). This module decides, for
//! one IP address, whether it may be dialed. It is deliberately small and
//! synchronous: [`classify`] names what an address is, [`EgressPolicy::check`]
//! says yes or no, and the resolver (`resolver.rs`) applies it to the exact
//! addresses that are then dialed.
//!
//! # Decisions and their reasons
//!
//! * **Deny by class, allow only `Public`.** [`classify`] puts every address
//!   in exactly one [`AddrClass`]; only [`AddrClass::Public`] passes by
//!   default. Listing what is *not* reachable (rather than what is) would
//!   fail open on the next special range someone forgets.
//! * **IPv6 outside `2000::/3` is `Reserved`.** Only `2000::/3` is allocated
//!   for global unicast. Everything else that is not named explicitly
//!   (loopback, ULA, link-local, multicast, embedded IPv4) is refused, so a
//!   future special-purpose assignment outside that block fails closed.
//! * **Special-purpose blocks are refused even when some are technically
//!   routable** (`192.0.0.0/24`, `2001::/23`, benchmarking `198.18.0.0/15`,
//!   the deprecated 6to4 relay anycast `192.88.99.0/24`, `240.0.0.0/4`,
//!   `0.0.0.0/8`). No workflow step has a reason to call them, and several
//!   of them are used inside operators' networks.
//! * **Documentation ranges are refused.** `192.0.2.0/24`, `198.51.100.0/24`,
//!   `203.0.113.0/24`, `2001:db8::/32` and `3fff::/20` never appear on the
//!   internet; if one resolves, something is being spoofed or misconfigured.
//! * **IPv4 embedded in IPv6 is classified by the IPv4 inside it.**
//!   `::ffff:169.254.169.254` reaches the metadata service on a dual-stack
//!   socket; NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`), 6to4 (`2002::/16`),
//!   Teredo (`2001::/32`) and the deprecated IPv4-compatible form (`::/96`)
//!   are translated to an IPv4 address somewhere on the path. So each is an
//!   [`AddrClass::Ipv4Embedded`] carrying the inner address, and is refused
//!   by default *even when the inner address is public*: there is no
//!   legitimate reason for a public API to resolve to one of these forms,
//!   and refusing them removes a whole family of filter bypasses. An
//!   operator who needs them sets
//!   [`EgressPolicy::allow_embedded_public`]; the inner address must still
//!   be public.
//! * **`64:ff9b:1::/48` is never allowed through the embedded-public rule.**
//!   It is a local-use NAT64 prefix whose operator chooses the prefix length,
//!   so where the IPv4 sits inside it is not knowable here. We read the last
//!   32 bits (the `/96` layout) for the message, but only an explicitly
//!   allowed IPv6 range can let it through.
//! * **Operator-allowed ranges override the class, nothing else does.** An
//!   operator may allow chosen ranges (the tests allow `127.0.0.0/8` to talk
//!   to a loopback server). For an embedded form, the IPv6 address *or* the
//!   embedded IPv4 may match: allowing `127.0.0.0/8` also allows
//!   `::ffff:127.0.0.1`, which is the same destination on a dual-stack host;
//!   allowing `::ffff:0:0/96` allows every IPv4-mapped address. An allowed
//!   range never lets through anything outside it: allowing `127.0.0.0/8`
//!   does not allow `169.254.169.254` in any form.
//! * **Cloud metadata addresses are named in the denial**
//!   (169.254.169.254, fd00:ec2::254, 100.100.100.200) so an operator reading
//!   a refused run sees at once what was attempted. They are refused by their
//!   class; no extra rule is needed.
//! * **Grants name hosts, the policy checks addresses.** [`host_matches`]
//!   decides whether a host is granted; it is a separate, earlier check. A
//!   granted host that resolves to a refused address is still refused.
//!
//! The check runs on the resolved address that is dialed (see
//! `resolver.rs`) and, for IP-literal URLs which never reach a resolver, on
//! the literal (`client::check_literal_host`) before every request and every
//! redirect hop.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// How an IPv4 address is embedded in an IPv6 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmbeddedKind {
    /// `::ffff:0:0/96` (RFC 4291): dials the IPv4 address on a dual-stack socket.
    Mapped,
    /// `::/96`, deprecated IPv4-compatible form (RFC 4291).
    Compatible,
    /// `64:ff9b::/96`, the well-known NAT64 prefix (RFC 6052).
    Nat64,
    /// `64:ff9b:1::/48`, local-use NAT64 prefix (RFC 8215); IPv4 read from
    /// the last 32 bits.
    Nat64Local,
    /// `2002::/16`, 6to4 (RFC 3056): IPv4 in bits 16..48.
    SixToFour,
    /// `2001::/32`, Teredo (RFC 4380): the client's IPv4, bit-inverted, in
    /// the last 32 bits.
    Teredo,
}

impl fmt::Display for EmbeddedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EmbeddedKind::Mapped => "IPv4-mapped",
            EmbeddedKind::Compatible => "IPv4-compatible",
            EmbeddedKind::Nat64 => "NAT64",
            EmbeddedKind::Nat64Local => "local-use NAT64",
            EmbeddedKind::SixToFour => "6to4",
            EmbeddedKind::Teredo => "Teredo",
        })
    }
}

/// What an address is, for egress purposes. Every address is in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrClass {
    /// Globally routable unicast; the only class allowed by default.
    Public,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), unique local
    /// `fc00::/7`, deprecated site-local `fec0::/10`.
    Private,
    /// `169.254.0.0/16` (including the 169.254.169.254 metadata service),
    /// `fe80::/10`.
    LinkLocal,
    /// `100.64.0.0/10`, carrier-grade NAT shared space (RFC 6598).
    SharedCgnat,
    /// `0.0.0.0`, `::`; dialing them reaches the local host.
    Unspecified,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Everything else that is not global unicast: `0/8`, `240/4`,
    /// `192.0.0/24`, benchmarking `198.18/15`, `192.88.99/24`, `100::/64`,
    /// `2001::/23` (outside Teredo), `5f00::/16`, and IPv6 outside `2000::/3`.
    Reserved,
    /// An IPv4 address embedded in an IPv6 one; see [`EmbeddedKind`].
    Ipv4Embedded { inner: Ipv4Addr, kind: EmbeddedKind },
}

impl AddrClass {
    fn phrase(&self) -> String {
        match self {
            AddrClass::Public => "public".into(),
            AddrClass::Loopback => "loopback".into(),
            AddrClass::Private => "private".into(),
            AddrClass::LinkLocal => "link-local".into(),
            AddrClass::SharedCgnat => "shared CGNAT space".into(),
            AddrClass::Unspecified => "unspecified".into(),
            AddrClass::Multicast => "multicast".into(),
            AddrClass::Broadcast => "broadcast".into(),
            AddrClass::Documentation => "a documentation address".into(),
            AddrClass::Reserved => "reserved".into(),
            AddrClass::Ipv4Embedded { inner, kind } => {
                let inner_class = classify(IpAddr::V4(*inner));
                format!(
                    "the {kind} form of {inner}, which is {}",
                    annotated(IpAddr::V4(*inner), &inner_class)
                )
            }
        }
    }
}

impl fmt::Display for AddrClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.phrase())
    }
}

/// Well-known cloud metadata endpoints, named in denials.
fn is_cloud_metadata(ip: IpAddr) -> bool {
    const METADATA: [IpAddr; 3] = [
        IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
        IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    ];
    METADATA.contains(&ip)
}

fn annotated(ip: IpAddr, class: &AddrClass) -> String {
    if is_cloud_metadata(ip) {
        format!("{class} (cloud metadata)")
    } else {
        class.to_string()
    }
}

fn in_v4(addr: u32, net: [u8; 4], prefix: u32) -> bool {
    let net = u32::from_be_bytes(net);
    prefix == 0 || (addr >> (32 - prefix)) == (net >> (32 - prefix))
}

fn in_v6(addr: u128, net: Ipv6Addr, prefix: u32) -> bool {
    let net = u128::from(net);
    prefix == 0 || (addr >> (128 - prefix)) == (net >> (128 - prefix))
}

/// Classify one address. The single place that knows the special ranges.
pub fn classify(ip: IpAddr) -> AddrClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddrClass {
    let a = u32::from(ip);
    if a == u32::MAX {
        AddrClass::Broadcast
    } else if a == 0 {
        AddrClass::Unspecified
    } else if in_v4(a, [0, 0, 0, 0], 8) {
        AddrClass::Reserved // "this network"
    } else if in_v4(a, [127, 0, 0, 0], 8) {
        AddrClass::Loopback
    } else if in_v4(a, [10, 0, 0, 0], 8)
        || in_v4(a, [172, 16, 0, 0], 12)
        || in_v4(a, [192, 168, 0, 0], 16)
    {
        AddrClass::Private
    } else if in_v4(a, [169, 254, 0, 0], 16) {
        AddrClass::LinkLocal
    } else if in_v4(a, [100, 64, 0, 0], 10) {
        AddrClass::SharedCgnat
    } else if in_v4(a, [192, 0, 2, 0], 24)
        || in_v4(a, [198, 51, 100, 0], 24)
        || in_v4(a, [203, 0, 113, 0], 24)
    {
        AddrClass::Documentation
    } else if in_v4(a, [224, 0, 0, 0], 4) {
        AddrClass::Multicast
    } else if in_v4(a, [240, 0, 0, 0], 4) // future use
        || in_v4(a, [198, 18, 0, 0], 15) // benchmarking
        || in_v4(a, [192, 88, 99, 0], 24) // deprecated 6to4 relay anycast
        || in_v4(a, [192, 0, 0, 0], 24)
    {
        // (the last: IETF protocol assignments)
        AddrClass::Reserved
    } else {
        AddrClass::Public
    }
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().expect("constant IPv6 prefix")
}

fn classify_v6(ip: Ipv6Addr) -> AddrClass {
    let a = u128::from(ip);
    let embedded = |inner: u32, kind| AddrClass::Ipv4Embedded {
        inner: Ipv4Addr::from(inner),
        kind,
    };
    if a == 0 {
        AddrClass::Unspecified
    } else if a == 1 {
        AddrClass::Loopback
    } else if in_v6(a, v6("::ffff:0:0"), 96) {
        embedded(a as u32, EmbeddedKind::Mapped)
    } else if in_v6(a, Ipv6Addr::UNSPECIFIED, 96) {
        embedded(a as u32, EmbeddedKind::Compatible)
    } else if in_v6(a, v6("64:ff9b::"), 96) {
        embedded(a as u32, EmbeddedKind::Nat64)
    } else if in_v6(a, v6("64:ff9b:1::"), 48) {
        embedded(a as u32, EmbeddedKind::Nat64Local)
    } else if in_v6(a, v6("2002::"), 16) {
        embedded((a >> 80) as u32, EmbeddedKind::SixToFour)
    } else if in_v6(a, v6("2001::"), 32) {
        embedded(!(a as u32), EmbeddedKind::Teredo)
    } else if in_v6(a, v6("2001:db8::"), 32) || in_v6(a, v6("3fff::"), 20) {
        AddrClass::Documentation
    } else if in_v6(a, v6("fc00::"), 7) || in_v6(a, v6("fec0::"), 10) {
        AddrClass::Private
    } else if in_v6(a, v6("fe80::"), 10) {
        AddrClass::LinkLocal
    } else if in_v6(a, v6("ff00::"), 8) {
        AddrClass::Multicast
    } else if in_v6(a, v6("100::"), 64) // discard-only
        || in_v6(a, v6("2001::"), 23) // IETF protocol assignments, benchmarking, ORCHID
        || in_v6(a, v6("5f00::"), 16) // SRv6 SIDs
        || !in_v6(a, v6("2000::"), 3)
    {
        AddrClass::Reserved
    } else {
        AddrClass::Public
    }
}

/// Why an address was refused. Names the address and its class; it holds
/// no host name, URL or header, so it is safe to log and to show a guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ip} is {}; refused{}", annotated(*ip, class), hint(class))]
pub struct EgressDenied {
    pub ip: IpAddr,
    pub class: AddrClass,
}

fn hint(class: &AddrClass) -> &'static str {
    match class {
        AddrClass::Ipv4Embedded { inner, .. }
            if classify(IpAddr::V4(*inner)) == AddrClass::Public =>
        {
            " (IPv4 embedded in IPv6 is not allowed by this policy)"
        }
        _ => "",
    }
}

/// A bad operator-supplied range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("`{input}` is neither an IP address nor a CIDR range (like 10.0.0.0/8 or fd00::/8)")]
    Invalid { input: String },
    #[error("`{input}` has bits set after the prefix length; did you mean {network}?")]
    HostBits { input: String, network: IpNet },
}

/// Parse an operator's allowed range: a CIDR (`127.0.0.0/8`, `fd00::/8`) or
/// a bare address (`10.1.2.3`, meaning `/32` or `/128`).
///
/// A CIDR with host bits set (`10.1.2.3/8`) is refused rather than silently
/// widened or narrowed: the operator meant one of two things and we cannot
/// tell which.
pub fn parse_range(s: &str) -> Result<IpNet, RangeError> {
    let input = s.trim();
    if let Ok(ip) = input.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    let net: IpNet = input.parse().map_err(|_| RangeError::Invalid {
        input: input.to_owned(),
    })?;
    if net.trunc() != net {
        return Err(RangeError::HostBits {
            input: input.to_owned(),
            network: net.trunc(),
        });
    }
    Ok(net)
}

/// Which addresses may be dialed. Public addresses pass; anything else only
/// inside an operator-allowed range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allow_ranges: Vec<IpNet>,
    allow_embedded_public: bool,
}

impl EgressPolicy {
    pub fn new(allow_ranges: Vec<IpNet>) -> Self {
        Self {
            allow_ranges,
            allow_embedded_public: false,
        }
    }

    /// Let IPv6 forms that embed a *public* IPv4 address through (NAT64
    /// networks need this). Off by default. Never applies to the local-use
    /// NAT64 prefix, whose layout is unknown.
    pub fn allow_embedded_public(mut self, allow: bool) -> Self {
        self.allow_embedded_public = allow;
        self
    }

    pub fn allow_ranges(&self) -> &[IpNet] {
        &self.allow_ranges
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        self.allow_ranges.iter().any(|net| net.contains(&ip))
    }

    /// May `ip` be dialed?
    pub fn check(&self, ip: IpAddr) -> Result<(), EgressDenied> {
        let class = classify(ip);
        let ok = match class {
            AddrClass::Public => true,
            AddrClass::Ipv4Embedded { inner, kind } => {
                let inner_ip = IpAddr::V4(inner);
                let layout_known = kind != EmbeddedKind::Nat64Local;
                self.allowed(ip)
                    || (layout_known && self.allowed(inner_ip))
                    || (layout_known
                        && self.allow_embedded_public
                        && classify(inner_ip) == AddrClass::Public)
            }
            _ => self.allowed(ip),
        };
        if ok {
            Ok(())
        } else {
            Err(EgressDenied { ip, class })
        }
    }
}

/// Does a grant's host `rule` cover `host`?
///
/// `rule` is an exact host (`api.github.com`) or a wildcard `*.github.com`,
/// which matches subdomains at any depth (`api.github.com`,
/// `a.b.github.com`) but not the apex `github.com`. Comparison is ASCII
/// case-insensitive and ignores one trailing dot on either side. Hosts and
/// rules are expected in ASCII (IDNA/punycode) form, as `url` gives them.
/// A `*` anywhere else, a lone `*`, or empty labels never match. Wildcards
/// never match IP literals (`*.0.0.1` must not cover `127.0.0.1`).
pub fn host_matches(rule: &str, host: &str) -> bool {
    let Some(host) = normalize_host(host) else {
        return false;
    };
    if let Some(suffix) = rule.strip_prefix("*.") {
        let Some(suffix) = normalize_host(suffix) else {
            return false;
        };
        if suffix.contains('*') || host.parse::<IpAddr>().is_ok() {
            return false;
        }
        // Labels are non-empty, so ".{suffix}" at the end means at least
        // one whole label precedes the suffix.
        host.len() > suffix.len() + 1
            && host.ends_with(&suffix)
            && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
    } else {
        match normalize_host(rule) {
            Some(rule) => !rule.contains('*') && rule == host,
            None => false,
        }
    }
}

fn normalize_host(s: &str) -> Option<String> {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.split('.').any(str::is_empty) {
        return None;
    }
    Some(s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn emb(inner: &str, kind: EmbeddedKind) -> AddrClass {
        AddrClass::Ipv4Embedded {
            inner: inner.parse().unwrap(),
            kind,
        }
    }

    #[test]
    fn egress_classify_table() {
        use AddrClass::*;
        use EmbeddedKind::*;
        let table: &[(&str, AddrClass)] = &[
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("172.32.0.1", Public),
            ("172.15.255.255", Public),
            ("192.168.1.1", Private),
            ("169.254.169.254", LinkLocal),
            ("169.254.0.1", LinkLocal),
            ("100.64.0.1", SharedCgnat),
            ("100.127.255.255", SharedCgnat),
            ("100.128.0.1", Public),
            ("100.63.255.255", Public),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Reserved),
            ("255.255.255.255", Broadcast),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("240.0.0.1", Reserved),
            ("255.255.255.254", Reserved),
            ("198.18.0.1", Reserved),
            ("198.19.255.255", Reserved),
            ("198.20.0.1", Public),
            ("192.0.0.8", Reserved),
            ("192.88.99.1", Reserved),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("::1", Loopback),
            ("::", Unspecified),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fc00::1", Private),
            ("fd00:ec2::254", Private),
            ("fec0::1", Private),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("100::1", Reserved),
            ("2001:2::1", Reserved),
            ("5f00::1", Reserved),
            ("4000::1", Reserved),
            ("::ffff:0:0:1", Reserved), // SIIT IPv4-translated, not global
            ("::ffff:127.0.0.1", emb("127.0.0.1", Mapped)),
            ("::ffff:169.254.169.254", emb("169.254.169.254", Mapped)),
            ("::ffff:8.8.8.8", emb("8.8.8.8", Mapped)),
            ("::127.0.0.1", emb("127.0.0.1", Compatible)),
            ("::2", emb("0.0.0.2", Compatible)),
            ("64:ff9b::a9fe:a9fe", emb("169.254.169.254", Nat64)),
            ("64:ff9b::808:808", emb("8.8.8.8", Nat64)),
            ("64:ff9b:1::a00:1", emb("10.0.0.1", Nat64Local)),
            ("2002:7f00:1::", emb("127.0.0.1", SixToFour)),
            ("2002:a9fe:a9fe::1", emb("169.254.169.254", SixToFour)),
            (
                "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                emb("192.0.2.45", Teredo),
            ),
            ("2606:4700::1111", Public),
            ("2a00:1450:4001::200e", Public),
        ];
        let mut wrong = Vec::new();
        for (addr, want) in table {
            let got = classify(ip(addr));
            if got != *want {
                wrong.push(format!("{addr}: got {got:?}, want {want:?}"));
            }
        }
        assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
    }

    #[test]
    fn egress_policy_loopback_refused_by_default() {
        let policy = EgressPolicy::default();
        let err = policy.check(ip("127.0.0.1")).unwrap_err();
        assert_eq!(err.class, AddrClass::Loopback);
        assert_eq!(err.to_string(), "127.0.0.1 is loopback; refused");
        assert!(policy.check(ip("::1")).is_err());
        assert!(policy.check(ip("8.8.8.8")).is_ok());
        assert!(policy.check(ip("2606:4700::1111")).is_ok());
    }

    #[test]
    fn egress_policy_allowed_range_admits_loopback() {
        let policy = EgressPolicy::new(vec![parse_range("127.0.0.0/8").unwrap()]);
        assert!(policy.check(ip("127.0.0.1")).is_ok());
        assert!(policy.check(ip("127.8.9.10")).is_ok());
        // The range is IPv4 loopback only.
        assert!(policy.check(ip("::1")).is_err());
        assert!(policy.check(ip("10.0.0.1")).is_err());
    }

    #[test]
    fn egress_policy_mapped_loopback_needs_an_allowed_range() {
        let mapped = ip("::ffff:127.0.0.1");
        let err = EgressPolicy::default().check(mapped).unwrap_err();
        assert_eq!(
            err.to_string(),
            "::ffff:127.0.0.1 is the IPv4-mapped form of 127.0.0.1, which is loopback; refused"
        );
        let by_v4 = EgressPolicy::new(vec![parse_range("127.0.0.0/8").unwrap()]);
        assert!(by_v4.check(mapped).is_ok());
        let by_v6 = EgressPolicy::new(vec![parse_range("::ffff:0:0/96").unwrap()]);
        assert!(by_v6.check(mapped).is_ok());
        // An unrelated range does not help.
        let other = EgressPolicy::new(vec![parse_range("10.0.0.0/8").unwrap()]);
        assert!(other.check(mapped).is_err());
    }

    #[test]
    fn egress_policy_metadata_refused_even_with_loopback_allowed() {
        let policy = EgressPolicy::new(vec![parse_range("127.0.0.0/8").unwrap()]);
        for addr in [
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::",
            "fd00:ec2::254",
        ] {
            let err = policy.check(ip(addr)).unwrap_err();
            assert!(
                err.to_string().contains("(cloud metadata)"),
                "{addr}: {err}"
            );
        }
        assert_eq!(
            policy.check(ip("169.254.169.254")).unwrap_err().to_string(),
            "169.254.169.254 is link-local (cloud metadata); refused"
        );
    }

    #[test]
    fn egress_policy_embedded_public_refused_unless_allowed() {
        let nat64_public = ip("64:ff9b::808:808");
        let mapped_public = ip("::ffff:8.8.8.8");
        let default = EgressPolicy::default();
        let err = default.check(nat64_public).unwrap_err();
        assert!(err.to_string().contains("embedded in IPv6"), "{err}");
        assert!(default.check(mapped_public).is_err());

        let lenient = EgressPolicy::default().allow_embedded_public(true);
        assert!(lenient.check(nat64_public).is_ok());
        assert!(lenient.check(mapped_public).is_ok());
        // The inner address must still be public.
        assert!(lenient.check(ip("::ffff:10.0.0.1")).is_err());
        assert!(
            lenient
                .check(ip("2001:0:4136:e378:8000:63bf:3fff:fdd2"))
                .is_err()
        );
        // Local-use NAT64: layout unknown, never through this rule.
        assert!(lenient.check(ip("64:ff9b:1::808:808")).is_err());
    }

    #[test]
    fn egress_policy_refuses_every_non_public_class() {
        let policy = EgressPolicy::default();
        for addr in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "240.0.0.1",
            "::",
            "fe80::1",
            "fc00::1",
            "ff02::1",
            "2002:7f00:1::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(policy.check(ip(addr)).is_err(), "{addr} passed");
        }
    }

    #[test]
    fn egress_parse_range() {
        assert_eq!(
            parse_range("127.0.0.0/8").unwrap(),
            "127.0.0.0/8".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            parse_range(" 10.1.2.3 ").unwrap(),
            "10.1.2.3/32".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            parse_range("::1").unwrap(),
            "::1/128".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            parse_range("fd00::/8").unwrap(),
            "fd00::/8".parse::<IpNet>().unwrap()
        );
        let err = parse_range("10.1.2.3/8").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`10.1.2.3/8` has bits set after the prefix length; did you mean 10.0.0.0/8?"
        );
        for bad in ["", "localhost", "10.0.0.0/33", "10.0.0/8", "1.2.3.4/"] {
            assert!(
                matches!(parse_range(bad), Err(RangeError::Invalid { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn egress_host_matches() {
        // Exact, case-insensitive, trailing dot ignored.
        assert!(host_matches("api.github.com", "api.github.com"));
        assert!(host_matches("api.github.com", "API.GitHub.com"));
        assert!(host_matches("API.GITHUB.COM", "api.github.com"));
        assert!(host_matches("api.github.com", "api.github.com."));
        assert!(host_matches("api.github.com.", "api.github.com"));
        assert!(!host_matches("api.github.com", "github.com"));
        assert!(!host_matches("github.com", "api.github.com"));
        assert!(!host_matches("api.github.com", "api.github.com.."));
        // Wildcards: any depth, not the apex, not suffix tricks.
        assert!(host_matches("*.github.com", "api.github.com"));
        assert!(host_matches("*.github.com", "a.b.c.github.com"));
        assert!(host_matches("*.GitHub.com", "API.github.com."));
        assert!(!host_matches("*.github.com", "github.com"));
        assert!(!host_matches("*.github.com", "github.com."));
        assert!(!host_matches("*.github.com", "evilgithub.com"));
        assert!(!host_matches("*.github.com", "api.github.com.evil.com"));
        assert!(!host_matches("api.github.com", "api.github.com.evil.com"));
        assert!(!host_matches("*.github.com", ".github.com"));
        assert!(!host_matches("*.github.com", "a..github.com"));
        // Malformed rules match nothing.
        assert!(!host_matches("*", "github.com"));
        assert!(!host_matches("*.", "github.com"));
        assert!(!host_matches("api.*.com", "api.github.com"));
        assert!(!host_matches("*.*.com", "api.github.com"));
        assert!(!host_matches("", ""));
        // Wildcards never cover IP literals.
        assert!(!host_matches("*.0.0.1", "127.0.0.1"));
        assert!(host_matches("127.0.0.1", "127.0.0.1"));
    }
}
