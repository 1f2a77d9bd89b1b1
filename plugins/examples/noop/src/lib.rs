//! The smallest plugin: a stream context for every request whose callbacks all answer
//! `Continue` (the SDK's defaults). What it costs is what the host costs a request, which is
//! what the benchmark of docs/benchmarks.md measures with it.
//!
//! ```text
//! plugin "noop.wasm"
//! ```

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream))
    }
}

struct Stream;

impl Context for Stream {}

impl HttpContext for Stream {}
