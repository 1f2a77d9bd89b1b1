//! Handlers: what produces the response once the request filters let a request through.
//!
//! Each handler is a module here with one entry point taking the request's [`Ctx`] and the
//! route; a route's compiled [`Handler`] names one. Adding a handler (cache hits, plugin local
//! replies) is adding a module, a variant and its compilation in `pipeline`: the connection
//! code (`conn`) does not change. A handler writes its head through
//! `conn::reply::finish_head`, so the route's response stages see it, and its body through
//! `Framed::piece`, so body filters see it.

pub mod cache;
pub(crate) mod local;
pub(crate) mod proxy;
pub(crate) mod redirect;
pub(crate) mod respond;
pub mod static_files;

use crate::conn::{Ctx, Outcome};
use crate::pipeline::{CompiledRoute, Handler, Pipeline};

/// Run the route's handler.
pub(crate) async fn run(ctx: &mut Ctx<'_>, p: &Pipeline, route: &CompiledRoute) -> Outcome {
    match &route.handler {
        Handler::Respond(r) => respond::serve(ctx, route, r).await,
        Handler::Redirect { status, location } => {
            redirect::serve(ctx, route, *status, location).await
        }
        Handler::Proxy { upstream } => proxy::proxy(ctx, p, route, *upstream).await,
        Handler::Static(files) => static_files::serve(ctx, route, files).await,
        // Boxed: the cache wraps the proxy, and its larger state must not grow every
        // connection's task (a task is sized for the largest handler it may run).
        Handler::Cached { cache, upstream } => {
            Box::pin(cache::serve(ctx, p, route, cache, *upstream)).await
        }
    }
}
