//! Encoders kept per core between responses.
//!
//! An encoder's context is large (about 1.3 MB for zstd at level 3, 300 KB for deflate), so a
//! core keeps a few idle ones per (encoding, level) in a thread-local free list instead of
//! building one per response. A [`Lease`] takes one (or builds one when the list has none of
//! that kind) and gives it back, reset, when it drops: after the end of the body, and just as
//! well when a response is abandoned half-way (a client gone, an upstream failing), since the
//! per-request state holding it is dropped either way. [`Encoder::reset`] copes with both: a
//! gzip stream left before its end gets fresh deflate tables, not a reset of the old ones.
//!
//! The list is bounded ([`IDLE_PER_KIND`] per kind, [`IDLE_MAX`] in all): a burst of concurrent
//! compressed responses on one core builds more encoders, and those beyond the bound are freed
//! when their responses end.

use std::cell::RefCell;

use bext_ir::Encoding;

use crate::encoder::Encoder;

/// Idle encoders kept per (encoding, level) on one core.
pub const IDLE_PER_KIND: usize = 4;

/// Idle encoders kept on one core, of all kinds (a configuration may use many levels).
pub const IDLE_MAX: usize = 16;

thread_local! {
    static FREE: RefCell<Vec<Encoder>> = const { RefCell::new(Vec::new()) };
}

/// An encoder taken from this core's free list, given back (reset) when dropped.
pub struct Lease {
    encoder: Option<Encoder>,
}

impl Lease {
    /// An encoder for `encoding` at `level` (clamped to the encoding's range): an idle one of
    /// this core when there is one, else a new one.
    pub fn take(encoding: Encoding, level: u32) -> Lease {
        let range = encoding.levels();
        let level = level.clamp(*range.start(), *range.end());
        let idle = FREE
            .try_with(|f| {
                let mut f = f.borrow_mut();
                let at = f
                    .iter()
                    .rposition(|e| e.encoding() == encoding && e.level() == level)?;
                Some(f.swap_remove(at))
            })
            .ok()
            .flatten();
        Lease {
            encoder: Some(idle.unwrap_or_else(|| Encoder::new(encoding, level))),
        }
    }

    /// The encoder.
    pub fn encoder(&mut self) -> &mut Encoder {
        // Only `drop` takes the encoder out.
        #[allow(clippy::expect_used)]
        self.encoder
            .as_mut()
            .expect("a lease holds its encoder until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut e) = self.encoder.take() else {
            return;
        };
        // While the thread's storage is being torn down the encoder is simply freed.
        let _ = FREE.try_with(|f| {
            let mut f = f.borrow_mut();
            let kind = f
                .iter()
                .filter(|o| o.encoding() == e.encoding() && o.level() == e.level())
                .count();
            if kind < IDLE_PER_KIND && f.len() < IDLE_MAX {
                e.reset();
                f.push(e);
            }
        });
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("encoder", &self.encoder)
            .finish()
    }
}

/// How many encoders of `encoding` at `level` this core holds idle (for tests and metrics).
pub fn idle(encoding: Encoding, level: u32) -> usize {
    FREE.try_with(|f| {
        f.borrow()
            .iter()
            .filter(|e| e.encoding() == encoding && e.level() == level)
            .count()
    })
    .unwrap_or(0)
}
