//! Helpers for the engine's unit tests.

use crate::pipeline::Pipeline;
use crate::stage::{RequestView, RouteResult, RouteStage};

pub struct NoRoutes;

impl RouteStage for NoRoutes {
    fn route(&self, _req: &RequestView<'_>) -> RouteResult {
        RouteResult::NotFound
    }
}

pub fn empty_pipeline() -> Pipeline {
    Pipeline::compile(&bext_ir::Config::default(), Box::new(NoRoutes), 1)
        .expect("the empty configuration compiles")
}

/// A pipeline of generation `generation` with one upstream `u` of `servers` (address, weight).
pub fn pipeline_with_upstream(servers: &[(&str, u32)], generation: u64) -> Pipeline {
    pipeline_with(servers, generation, |_| {})
}

/// Like [`pipeline_with_upstream`], with `edit` applied to the upstream (policy, passive
/// health, retries ...).
pub fn pipeline_with(
    servers: &[(&str, u32)],
    generation: u64,
    edit: impl FnOnce(&mut bext_ir::Upstream),
) -> Pipeline {
    let mut config = bext_ir::Config {
        upstreams: vec![bext_ir::Upstream {
            name: "u".into(),
            servers: servers
                .iter()
                .map(|(a, w)| bext_ir::Server {
                    addr: (*a).into(),
                    weight: *w,
                    backup: false,
                    tls: None,
                    at: Default::default(),
                })
                .collect(),
            balance: bext_ir::Balance::RoundRobin,
            keepalive: 0,
            health: None,
            passive: None,
            retry: None,
            timeouts: Default::default(),
            max_connections: None,
            max_pending: None,
            at: Default::default(),
        }],
        ..bext_ir::Config::default()
    };
    edit(&mut config.upstreams[0]);
    Pipeline::compile(&config, Box::new(NoRoutes), generation).expect("the upstream compiles")
}
