//! `rate_limit RATE [per client_ip | per header NAME | global] [burst N]` in a route.

use super::args::Args;
use super::Lower;
use crate::diag;
use bext_ir::{Loc, RateKey, RateLimit};

impl Lower<'_> {
    pub(super) fn rate_limit(&mut self, a: &mut Args<'_>, at: Loc) -> Option<RateLimit> {
        let x = self.need(a, "a rate such as `100/s`")?;
        let rate = x.text().split_once('/').and_then(|(n, u)| {
            let per = match u {
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                _ => return None,
            };
            // At most one request per microsecond (1,000,000/s): the limiter counts whole
            // microseconds between requests.
            n.parse::<u64>()
                .ok()
                .filter(|n| *n > 0 && *n <= per * 1_000)
                .map(|n| (n, per))
        });
        let Some((requests, per_ms)) = rate else {
            self.emit(
                diag::error("E0215", x.span, format!("invalid rate {}", x.describe()))
                    .help("write requests per second, minute or hour, at most 1000000/s: `100/s`, `600/m`, `5000/h`"),
            );
            return None;
        };
        let mut r = RateLimit {
            requests,
            per_ms,
            key: RateKey::ClientIp,
            burst: requests,
            at,
        };
        while let Some(k) = a.next() {
            match self.keyword(k, "rate_limit option", &["per", "global", "burst"])? {
                0 => {
                    let w = self.need(a, "client_ip or header NAME")?;
                    r.key = match self.keyword(w, "rate key", &["client_ip", "header"])? {
                        0 => RateKey::ClientIp,
                        _ => {
                            let n = self.need(a, "a header name")?;
                            RateKey::Header(self.header_name(n)?.to_ascii_lowercase())
                        }
                    };
                }
                1 => r.key = RateKey::Global,
                _ => r.burst = self.next_number(a, 1, u64::from(u32::MAX))?,
            }
        }
        Some(r)
    }
}
