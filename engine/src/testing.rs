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
