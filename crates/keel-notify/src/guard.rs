//! The private-target guard: subscriber webhooks must not reach into our own network.
//!
//! A webhook URL is typed in by anyone on the public subscribe form, so without this guard the
//! status page would be a request-forgery proxy into the machine and network it runs on
//! (cloud metadata at 169.254.169.254, an admin port on 127.0.0.1, a database on 10.x).
//! [`check_url`] refuses bad schemes, credentials in the URL, and IP literals in forbidden
//! ranges; [`Guard::vet`] also resolves the host name and refuses when *any* address it
//! resolves to is forbidden. At send time the HTTP client resolves names only through
//! [`GuardedResolver`], so the address a request connects to is the one that was just vetted:
//! a name that re-points to 127.0.0.1 after subscribing (DNS rebinding) is refused at the
//! connection, not only when the subscriber signed up.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

/// Why a target URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("not a valid URL: {0}")]
    Invalid(String),
    #[error("URL scheme {0:?} is not allowed: use http or https")]
    Scheme(String),
    #[error("URLs with a user name or password are not allowed")]
    Credentials,
    #[error("URL has no host")]
    NoHost,
    #[error("target {host} ({addr}) is a {range} address; such targets are refused unless [notify] allow_private_targets = true")]
    Forbidden {
        host: String,
        addr: IpAddr,
        range: &'static str,
    },
    #[error("host {host} could not be resolved: {reason}")]
    Resolve { host: String, reason: String },
    #[error("host {0} resolves to no address")]
    NoAddress(String),
}

impl GuardError {
    /// Whether trying again later could succeed (a failed lookup may be a passing DNS
    /// problem; a forbidden address or a malformed URL will not change by waiting).
    pub fn is_transient(&self) -> bool {
        matches!(self, GuardError::Resolve { .. })
    }
}

/// The range a forbidden address belongs to, or `None` when it is a public unicast address.
pub fn forbidden_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if o[0] == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private (RFC 1918)")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("carrier-grade NAT (100.64.0.0/10)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() || o[0] >= 240 {
        Some("reserved")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_multicast() {
        return Some("multicast");
    }
    if (s[0] & 0xffc0) == 0xfe80 {
        return Some("link-local");
    }
    if (s[0] & 0xffc0) == 0xfec0 {
        return Some("site-local");
    }
    if (s[0] & 0xfe00) == 0xfc00 {
        return Some("unique-local");
    }
    // Forms that carry an IPv4 address reach that IPv4 host, so they are judged by it:
    // IPv4-mapped ::ffff:a.b.c.d, the deprecated IPv4-compatible ::a.b.c.d, NAT64
    // 64:ff9b::a.b.c.d and 6to4 2002:AABB:CCDD::.
    let last32 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let embedded = if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if s[..6] == [0, 0, 0, 0, 0, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(last32)
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ))
    } else {
        None
    };
    embedded.and_then(forbidden_v4)
}

/// Parses a target URL and checks what can be checked without DNS: the scheme is http or
/// https, there are no credentials, there is a host, and an IP-literal host is allowed.
pub fn check_url(raw: &str, allow_private_targets: bool) -> Result<Url, GuardError> {
    let url = Url::parse(raw.trim()).map_err(|e| GuardError::Invalid(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(GuardError::Scheme(other.to_string())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(GuardError::Credentials);
    }
    let ip = match url.host() {
        None => return Err(GuardError::NoHost),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let (Some(ip), false) = (ip, allow_private_targets) {
        if let Some(range) = forbidden_range(ip) {
            return Err(GuardError::Forbidden {
                host: ip.to_string(),
                addr: ip,
                range,
            });
        }
    }
    Ok(url)
}

/// Checks resolved addresses: all of them must be allowed, because a client may connect to
/// any one of them.
fn vet_addrs(host: &str, addrs: &[SocketAddr], allow_private: bool) -> Result<(), GuardError> {
    if addrs.is_empty() {
        return Err(GuardError::NoAddress(host.to_string()));
    }
    if allow_private {
        return Ok(());
    }
    for a in addrs {
        if let Some(range) = forbidden_range(a.ip()) {
            return Err(GuardError::Forbidden {
                host: host.to_string(),
                addr: a.ip(),
                range,
            });
        }
    }
    Ok(())
}

/// The guard with its one setting (`[notify] allow_private_targets`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Guard {
    pub allow_private_targets: bool,
}

impl Guard {
    pub fn new(allow_private_targets: bool) -> Self {
        Guard {
            allow_private_targets,
        }
    }

    /// Validates a target fully: [`check_url`], then resolves the host and vets every
    /// address. Used when a subscriber signs up, so a bad URL is refused with a clear 4xx.
    /// Returns the parsed URL and the vetted addresses.
    pub async fn vet(&self, raw: &str) -> Result<(Url, Vec<SocketAddr>), GuardError> {
        let url = check_url(raw, self.allow_private_targets)?;
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs = match url.host() {
            Some(Host::Ipv4(v4)) => vec![SocketAddr::new(IpAddr::V4(v4), port)],
            Some(Host::Ipv6(v6)) => vec![SocketAddr::new(IpAddr::V6(v6), port)],
            Some(Host::Domain(name)) => resolve(name, port, self.allow_private_targets).await?,
            None => return Err(GuardError::NoHost),
        };
        Ok((url, addrs))
    }

    /// A resolver for `reqwest::ClientBuilder::dns_resolver`, so every connection the
    /// client opens goes only to vetted addresses.
    pub fn resolver(&self) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver {
            allow_private_targets: self.allow_private_targets,
        })
    }
}

async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, GuardError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| GuardError::Resolve {
            host: host.to_string(),
            reason: e.to_string(),
        })?
        .collect();
    vet_addrs(host, &addrs, allow_private)?;
    Ok(addrs)
}

/// Name resolution for the HTTP client that refuses forbidden addresses at connect time.
///
/// reqwest calls it for host names only; IP-literal URLs are checked by [`check_url`] before
/// each send.
#[derive(Debug)]
pub struct GuardedResolver {
    allow_private_targets: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private_targets;
        Box::pin(async move {
            // The port is replaced by the client with the URL's own.
            let addrs = resolve(name.as_str(), 0, allow).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> GuardError {
        check_url(raw, false).expect_err(raw)
    }

    #[test]
    fn forbidden_ranges_are_named() {
        let cases = [
            ("127.0.0.1", "loopback"),
            ("127.1.2.3", "loopback"),
            ("10.1.2.3", "private (RFC 1918)"),
            ("172.16.0.1", "private (RFC 1918)"),
            ("172.31.255.255", "private (RFC 1918)"),
            ("192.168.1.1", "private (RFC 1918)"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "carrier-grade NAT (100.64.0.0/10)"),
            ("100.127.255.254", "carrier-grade NAT (100.64.0.0/10)"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private (RFC 1918)"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:7f00:1::", "loopback"),
        ];
        for (ip, range) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(forbidden_range(ip), Some(range), "{ip}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "93.184.215.14",
            "172.32.0.1",
            "100.128.0.1",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(forbidden_range(ip), None, "{ip}");
        }
    }

    #[test]
    fn literal_hosts_in_forbidden_ranges_are_refused_in_every_spelling() {
        for raw in [
            "http://127.0.0.1/hook",
            "http://127.1/hook",
            "http://0x7f.0.0.1/hook",
            "http://2130706433/hook",
            "http://10.0.0.5:8080/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0/",
        ] {
            assert!(
                matches!(refused(raw), GuardError::Forbidden { .. }),
                "{raw} should be refused"
            );
        }
    }

    #[test]
    fn schemes_credentials_and_garbage_are_refused() {
        assert_eq!(
            refused("ftp://example.com/x"),
            GuardError::Scheme("ftp".into())
        );
        assert_eq!(
            refused("file:///etc/passwd"),
            GuardError::Scheme("file".into())
        );
        assert_eq!(
            refused("gopher://example.com/"),
            GuardError::Scheme("gopher".into())
        );
        assert_eq!(
            refused("https://user:pw@example.com/"),
            GuardError::Credentials
        );
        assert_eq!(
            refused("https://user@example.com/"),
            GuardError::Credentials
        );
        assert!(matches!(refused("not a url"), GuardError::Invalid(_)));
        assert!(matches!(refused(""), GuardError::Invalid(_)));
        assert!(matches!(refused("https://"), GuardError::Invalid(_)));
    }

    #[test]
    fn allowing_private_targets_lets_literals_through() {
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_url("http://[::1]:9/x", true).is_ok());
        // But never other schemes or credentials.
        assert!(check_url("ftp://127.0.0.1/", true).is_err());
        assert!(check_url("http://a:b@127.0.0.1/", true).is_err());
    }

    #[test]
    fn errors_read_well() {
        let e = refused("http://169.254.169.254/");
        assert_eq!(
            e.to_string(),
            "target 169.254.169.254 (169.254.169.254) is a link-local address; such targets are refused unless [notify] allow_private_targets = true"
        );
        assert!(!e.is_transient());
    }
}
