//! Body redaction: response bodies are held until their end, then every run of 13 to 19
//! digits (card-number-like) and every configured word (`words`, comma-separated) is
//! replaced by `[redacted]`. The response loses its `Content-Length` (the body changes); how
//! many spans were replaced is logged.
//!
//! ```text
//! plugin "redact_body.wasm" { words "secret,password" }
//! ```

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Root {
    words: Rc<Vec<String>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let Some(pairs) = example_config::parse(&bytes) else {
            return false;
        };
        let words = example_config::get(&pairs, "words").unwrap_or("");
        self.words = Rc::new(
            words
                .split(',')
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect(),
        );
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Redact {
            words: self.words.clone(),
        }))
    }
}

struct Redact {
    words: Rc<Vec<String>>,
}

impl Context for Redact {}

impl HttpContext for Redact {
    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        self.set_http_response_header("content-length", None);
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            // Held until the end: a number or word may straddle two pieces.
            return Action::Pause;
        }
        let Some(body) = self.get_http_response_body(0, size) else {
            return Action::Continue;
        };
        let (out, n) = redact(&body, &self.words);
        if n > 0 {
            log::info!("redacted {n} spans");
            self.set_http_response_body(0, size, &out);
        }
        Action::Continue
    }
}

const MARK: &[u8] = b"[redacted]";

fn redact(body: &[u8], words: &[String]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(body.len());
    let mut n = 0;
    let mut i = 0;
    'outer: while i < body.len() {
        let digits = body[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 {
            if (13..=19).contains(&digits) {
                out.extend_from_slice(MARK);
                n += 1;
            } else {
                out.extend_from_slice(&body[i..i + digits]);
            }
            i += digits;
            continue;
        }
        for w in words {
            if body[i..].starts_with(w.as_bytes()) {
                out.extend_from_slice(MARK);
                n += 1;
                i += w.len();
                continue 'outer;
            }
        }
        out.push(body[i]);
        i += 1;
    }
    (out, n)
}
