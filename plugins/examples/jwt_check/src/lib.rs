//! A JWT-shaped bearer check: the request must carry `Authorization: Bearer H.P.S` whose
//! payload (base64url JSON) names the configured issuer (`"iss"`) and has not expired
//! (`"exp"`, seconds, against the proxy's clock). The subject (`"sub"`) goes upstream as
//! `x-jwt-sub`; anything else is answered 401 with `WWW-Authenticate: Bearer`.
//!
//! The signature is not verified (no cryptography in an example): this shows the flow of an
//! authentication plugin, not a replacement for one.
//!
//! ```text
//! plugin "jwt_check.wasm" { issuer "https://issuer.example" }
//! ```

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;
use std::time::UNIX_EPOCH;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Root {
    issuer: Rc<str>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match example_config::parse(&bytes)
            .and_then(|p| example_config::get(&p, "issuer").map(Rc::from))
        {
            Some(i) => {
                self.issuer = i;
                true
            }
            None => {
                log::error!("`issuer` is required");
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Check {
            issuer: self.issuer.clone(),
        }))
    }
}

struct Check {
    issuer: Rc<str>,
}

impl Context for Check {}

impl HttpContext for Check {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let now = self
            .get_current_time()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let verdict = self
            .get_http_request_header("authorization")
            .ok_or("no bearer token")
            .and_then(|h| check(&h, &self.issuer, now));
        match verdict {
            Ok(sub) => {
                self.set_http_request_header("authorization", None);
                self.set_http_request_header("x-jwt-sub", Some(&sub));
                Action::Continue
            }
            Err(why) => {
                log::info!("refused: {why}");
                let body = format!(
                    "{{\"type\":\"https://bext.dev/problems/unauthorized\",\"title\":\"{why}\",\"status\":401}}"
                );
                self.send_http_response(
                    401,
                    vec![
                        ("content-type", "application/problem+json"),
                        ("www-authenticate", "Bearer"),
                    ],
                    Some(body.as_bytes()),
                );
                Action::Pause
            }
        }
    }
}

/// The subject of a valid token, or why it is refused.
fn check(header: &str, issuer: &str, now: u64) -> Result<String, &'static str> {
    let token = header.strip_prefix("Bearer ").ok_or("not a bearer token")?;
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWT");
    };
    let payload = base64url(payload).ok_or("payload is not base64url")?;
    let payload = String::from_utf8(payload).map_err(|_| "payload is not UTF-8")?;
    if field(&payload, "iss").as_deref() != Some(issuer) {
        return Err("wrong issuer");
    }
    let exp: u64 = field(&payload, "exp")
        .and_then(|e| e.parse().ok())
        .ok_or("no expiry")?;
    if exp <= now {
        return Err("token expired");
    }
    field(&payload, "sub").ok_or("no subject")
}

/// The value of a top-level `"name": "string"` or `"name": number` in a JSON object (enough
/// for the claims read here).
fn field(json: &str, name: &str) -> Option<String> {
    let key = format!("\"{name}\"");
    let rest = json[json.find(&key)? + key.len()..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        return Some(s[..s.find('"')?].to_string());
    }
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    (end > 0).then(|| rest[..end].to_string())
}

fn base64url(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            b'=' => continue,
            _ => return None,
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}
