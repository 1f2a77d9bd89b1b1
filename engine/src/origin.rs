//! What the origin sees: the compiled policies that decide the path a request is routed on and
//! forwarded with, and whose forwarding fields are believed.
//!
//! - [`SitePaths`]: each site's path normalisation options (`merge_slashes`,
//!   `escaped_slashes`); the normaliser itself is `bext_http1::normalize_path`.
//! - [`TrustedProxies`]: the `trusted_proxies` list. A request from any other peer has its
//!   `Forwarded`, `X-Real-IP`, `X-Forwarded-*` and `X-Request-Id` fields replaced by bext's own
//!   (see `proxy::upstream_head` and `docs/conformance.md`, "What the origin sees").

use bext_http1::PathOptions;
use std::net::IpAddr;

/// Path options per site, in `Config::sites` order.
#[derive(Debug, Clone, Default)]
pub struct SitePaths {
    sites: Vec<PathOptions>,
    /// Set when every site has the same options (almost always): no site lookup is needed
    /// before routing.
    uniform: Option<PathOptions>,
}

impl SitePaths {
    pub fn compile(config: &bext_ir::Config) -> SitePaths {
        let sites: Vec<PathOptions> = config
            .sites
            .iter()
            .map(|s| PathOptions {
                merge_slashes: s.paths.merge_slashes,
                keep_escaped_separators: s.paths.escaped_slashes == bext_ir::EscapedSlashes::Keep,
            })
            .collect();
        let first = sites.first().copied().unwrap_or_default();
        let uniform = sites.iter().all(|o| *o == first).then_some(first);
        SitePaths { sites, uniform }
    }

    /// The options for a request, `site` being asked only when sites differ.
    #[inline]
    pub fn options(&self, site: impl FnOnce() -> Option<usize>) -> PathOptions {
        match self.uniform {
            Some(o) => o,
            None => site()
                .and_then(|i| self.sites.get(i).copied())
                .unwrap_or_default(),
        }
    }
}

/// The peers whose forwarding fields are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// From `trusted_proxies` entries (`addr` or `addr/bits`, checked by the language).
    pub fn compile(list: &[String]) -> Result<TrustedProxies, String> {
        let mut nets = Vec::with_capacity(list.len());
        for entry in list {
            let (ip, bits) = match entry.split_once('/') {
                Some((ip, bits)) => (ip, Some(bits)),
                None => (entry.as_str(), None),
            };
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| format!("invalid trusted proxy `{entry}`"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("invalid prefix length in `{entry}`"))?,
                None => max,
            };
            nets.push((ip, bits));
        }
        Ok(TrustedProxies { nets })
    }

    /// Whether a peer is trusted (an IPv4-mapped IPv6 peer counts as its IPv4 address).
    #[inline]
    pub fn contains(&self, peer: IpAddr) -> bool {
        if self.nets.is_empty() {
            return false;
        }
        let peer = peer.to_canonical();
        self.nets.iter().any(|&(net, bits)| match (net, peer) {
            (IpAddr::V4(n), IpAddr::V4(p)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(p) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(p)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
                u128::from(n) & mask == u128::from(p) & mask
            }
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_match_by_prefix() {
        let t = TrustedProxies::compile(&[
            "10.0.0.0/8".into(),
            "192.0.2.7".into(),
            "fd00::/8".into(),
            "0.0.0.0/0".into(),
        ])
        .unwrap();
        for (ip, want) in [
            ("10.1.2.3", true),
            ("192.0.2.7", true),
            ("::ffff:10.9.9.9", true),
            ("fd12::1", true),
            ("fe80::1", false),
        ] {
            assert_eq!(t.contains(ip.parse().unwrap()), want, "{ip}");
        }
        let t = TrustedProxies::compile(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(!t.contains("11.0.0.1".parse().unwrap()));
        assert!(t.contains("::1".parse().unwrap()));
        assert!(!t.contains("::2".parse().unwrap()));
        assert!(!TrustedProxies::default().contains("127.0.0.1".parse().unwrap()));
        assert!(TrustedProxies::compile(&["10.0.0.0/33".into()]).is_err());
    }
}
