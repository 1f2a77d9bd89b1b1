//! Authorisation by a callout: each request's `Authorization` is sent to an auth service
//! (an upstream of the configuration, by name) as `GET PATH`; the request waits for the
//! answer. A 200 lets it through, with the service's `x-user` forwarded upstream as
//! `x-auth-user`; any other answer, or none within `timeout_ms`, is a 403 from the plugin.
//!
//! ```text
//! upstream auth { server 127.0.0.1:9000 }
//! plugin "callout_auth.wasm" { upstream "auth"; path "/check"; timeout_ms "500" }
//! ```

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Settings {
    upstream: String,
    path: String,
    timeout: Duration,
}

#[derive(Default)]
struct Root {
    settings: Rc<Settings>,
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
        let Some(upstream) = get("upstream") else {
            log::error!("`upstream` is required");
            return false;
        };
        let timeout = match get("timeout_ms").map(|t| t.parse::<u64>()) {
            None => Duration::from_millis(1000),
            Some(Ok(ms)) => Duration::from_millis(ms),
            Some(Err(_)) => {
                log::error!("`timeout_ms` is a number of milliseconds");
                return false;
            }
        };
        self.settings = Rc::new(Settings {
            upstream,
            path: get("path").unwrap_or_else(|| "/check".into()),
            timeout,
        });
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Check {
            settings: self.settings.clone(),
        }))
    }
}

struct Check {
    settings: Rc<Settings>,
}

impl Check {
    fn deny(&self) {
        self.send_http_response(
            403,
            vec![("content-type", "text/plain")],
            Some(b"access denied\n"),
        );
    }
}

impl Context for Check {
    fn on_http_call_response(&mut self, _token: u32, _headers: usize, _body: usize, _t: usize) {
        let status = self.get_http_call_response_header(":status");
        if status.as_deref() != Some("200") {
            log::info!("denied: the auth service answered {status:?}");
            self.deny();
            return;
        }
        if let Some(user) = self.get_http_call_response_header("x-user") {
            self.set_http_request_header("x-auth-user", Some(&user));
        }
        self.resume_http_request();
    }
}

impl HttpContext for Check {
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let auth = self.get_http_request_header("authorization").unwrap_or_default();
        let s = &self.settings;
        let sent = self.dispatch_http_call(
            &s.upstream,
            vec![
                (":method", "GET"),
                (":path", &s.path),
                (":authority", &s.upstream),
                ("authorization", &auth),
            ],
            None,
            vec![],
            s.timeout,
        );
        match sent {
            Ok(_) => Action::Pause,
            Err(e) => {
                log::error!("the auth service cannot be called: {e:?}");
                self.deny();
                Action::Pause
            }
        }
    }
}
