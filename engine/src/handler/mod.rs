//! Handlers: what produces the response once the request filters let a request through.

pub mod static_files;
