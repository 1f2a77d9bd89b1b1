//! `compress`: response compression as a library the engine drives per request.
//!
//! # How it fits
//!
//! The engine compiles a route's `compress` directive ([`bext_ir::Compress`]) once into a
//! [`Policy`]. For each response it fills two plain structs from the heads — [`RequestFacts`]
//! and [`ResponseFacts`], no header map type imposed — and asks [`Policy::decide`] which
//! encoding to use, if any. When one is chosen it edits the response head with the helpers in
//! [`head`] (`Content-Encoding`, `Vary`, a weakened `ETag`, no `Content-Length`) and runs the
//! body through an [`Encoder`]: [`Encoder::push`] for each piece of body as it arrives,
//! [`Encoder::flush`] when the upstream stalls, [`Encoder::finish`] at the end.
//!
//! ```text
//!   request head ──► RequestFacts ─┐
//!                                  ├─► Policy::decide ──► Some(enc) ──► head::* edits
//!   response head ─► ResponseFacts ┘                              └──► Encoder::push/flush/finish
//! ```
//!
//! # Per-request state
//!
//! [`Policy`] is compiled, immutable and shared; an [`Encoder`] is per-response scratch. An
//! encoder's context is large (zstd keeps about 1.3 MB of tables at level 3, deflate about
//! 300 KB), so a few are kept per core ([`pool`]) and calls [`Encoder::reset`] between responses
//! instead of building one per response: a reset gzip or zstd encoder allocates nothing. The
//! brotli encoder is rebuilt on reset (its state cannot be rewound), but it allocates its
//! tables lazily, on the first bytes, and sized by the window.
//!
//! # The stage
//!
//! [`CompressStage`] runs all of this on the phases of a request (`bext-stage`'s [`Stage`]
//! trait): negotiation in the request phase, the decision and the head edits in the response
//! head phase, the encoder in the body phase; encoders come from a per-core pool ([`pool`]).
//! The wiring registers one per route that has `compress`.
//!
//! Nothing here does I/O or knows about the runtime: the crate depends on the IR and the stage
//! API only, never on the engine.
//!
//! [`Stage`]: bext_stage::Stage
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod encoder;
pub mod head;
mod negotiate;
mod policy;
pub mod pool;
mod stage;

pub use bext_ir::Encoding;
pub use encoder::{EncodeError, Encoder};
pub use negotiate::{negotiate, parse_qvalue};
pub use policy::{Policy, RequestFacts, ResponseFacts};
pub use stage::{CompressStage, CompressState, FULL_PIECE};
