//! Header rewrite: sets a response header (`name`, `value`), and when configured renames a
//! request header on its way upstream (`rename_from` → `rename_to`, the value kept) and drops
//! one (`drop`).
//!
//! ```text
//! plugin "add_header.wasm" { name "x-served-by"; value "bext"; rename_from "x-user"; rename_to "x-account"; drop "x-debug" }
//! ```

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default, Clone)]
struct Rules {
    name: String,
    value: String,
    rename: Option<(String, String)>,
    drop: Option<String>,
}

#[derive(Default)]
struct Root {
    rules: Rc<Rules>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let Some(pairs) = example_config::parse(&bytes) else {
            log::error!("the configuration is not a flat JSON object of strings");
            return false;
        };
        let get = |k| example_config::get(&pairs, k).map(str::to_string);
        let (Some(name), Some(value)) = (get("name"), get("value")) else {
            log::error!("`name` and `value` are required");
            return false;
        };
        let rename = match (get("rename_from"), get("rename_to")) {
            (Some(f), Some(t)) => Some((f, t)),
            (None, None) => None,
            _ => {
                log::error!("`rename_from` and `rename_to` go together");
                return false;
            }
        };
        self.rules = Rc::new(Rules {
            name,
            value,
            rename,
            drop: get("drop"),
        });
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Rewrite {
            rules: self.rules.clone(),
        }))
    }
}

struct Rewrite {
    rules: Rc<Rules>,
}

impl Context for Rewrite {}

impl HttpContext for Rewrite {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        if let Some((from, to)) = &self.rules.rename {
            if let Some(v) = self.get_http_request_header(from) {
                self.set_http_request_header(from, None);
                self.set_http_request_header(to, Some(&v));
            }
        }
        if let Some(d) = &self.rules.drop {
            self.set_http_request_header(d, None);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        self.set_http_response_header(&self.rules.name, Some(&self.rules.value));
        Action::Continue
    }
}
