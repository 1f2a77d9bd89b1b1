//! HTTP calls a stage makes to a named upstream while its request waits (a plugin's
//! callouts). The stage API has no runtime: each core's engine installs a [`Caller`] for its
//! thread, which sends the call through that core's upstream pools; a stage starts a call
//! with [`call`] and polls the [`Pending`] answer from its `poll_request`.
//!
//! ```text
//! stage: call(CallRequest) ──▶ Pending ──poll from poll_request──▶ Ready(CallResult)
//! engine: Caller::call ──▶ a task on the core: pool → request → response (or its timeout)
//!                          └─▶ Completer::complete, which wakes the request's task
//! ```

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Header fields: (name, value), in order.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// An HTTP/1.1 request to a named upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallRequest {
    /// The upstream's name, as in its `upstream` block.
    pub upstream: String,
    pub method: Vec<u8>,
    /// The target, origin form (`/path?query`).
    pub path: Vec<u8>,
    /// Sent as `Host`; the server's address when empty.
    pub authority: Vec<u8>,
    /// Other fields (framing fields are bext's own: `Content-Length` follows the body).
    pub fields: Fields,
    pub body: Vec<u8>,
    /// The whole call, connection to the end of the response, fails after this long.
    pub timeout: Duration,
}

/// The upstream's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallResponse {
    pub status: u16,
    pub fields: Fields,
    pub body: Vec<u8>,
}

/// Why a call has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// No upstream of that name in the running configuration.
    UnknownUpstream,
    /// No server could be reached, or the connection failed before the response ended.
    Unavailable,
    /// The call's timeout passed first.
    Timeout,
    /// The response was not valid HTTP/1.1, or too large.
    Invalid,
    /// No caller is installed on this thread (a stage run outside a worker).
    NoCaller,
}

pub type CallResult = Result<CallResponse, CallError>;

#[derive(Default)]
struct Shared {
    result: RefCell<Option<CallResult>>,
    waker: RefCell<Option<Waker>>,
    abandoned: Cell<bool>,
}

/// A call under way, as the stage holds it. Dropping it abandons the call: the engine stops
/// waiting for the answer at its next step.
pub struct Pending(Rc<Shared>);

/// A call under way, as the engine holds it.
pub struct Completer(Rc<Shared>);

/// A call's two ends.
pub fn pending() -> (Pending, Completer) {
    let s = Rc::new(Shared::default());
    (Pending(s.clone()), Completer(s))
}

impl Pending {
    /// A call answered at once (a failure known before anything was sent).
    pub fn ready(r: CallResult) -> Pending {
        let (p, c) = pending();
        c.complete(r);
        p
    }

    /// The answer, once there is one (taken: a second poll after `Ready` waits forever).
    pub fn poll(&self, cx: &mut Context<'_>) -> Poll<CallResult> {
        if let Some(r) = self.0.result.borrow_mut().take() {
            return Poll::Ready(r);
        }
        let mut w = self.0.waker.borrow_mut();
        match w.as_ref() {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.abandoned.set(true);
    }
}

impl Completer {
    /// The stage dropped its end: nobody waits for the answer.
    pub fn is_abandoned(&self) -> bool {
        self.0.abandoned.get()
    }

    /// Deliver the answer and wake the waiting request.
    pub fn complete(self, r: CallResult) {
        *self.0.result.borrow_mut() = Some(r);
        if let Some(w) = self.0.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// What sends calls on one core: the engine's worker.
pub trait Caller {
    fn call(&self, req: CallRequest) -> Pending;
}

thread_local! {
    static CALLER: RefCell<Option<Rc<dyn Caller>>> = const { RefCell::new(None) };
}

/// Install (or, with `None`, remove) this thread's caller.
pub fn install(caller: Option<Rc<dyn Caller>>) {
    CALLER.with(|c| *c.borrow_mut() = caller);
}

/// Start `req` on this thread's caller; without one it fails at once ([`CallError::NoCaller`]).
pub fn call(req: CallRequest) -> Pending {
    let caller = CALLER.with(|c| c.borrow().clone());
    match caller {
        Some(c) => c.call(req),
        None => Pending::ready(Err(CallError::NoCaller)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn an_answer_wakes_the_waiting_request_once_and_is_taken() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let (p, c) = pending();
        assert!(p.poll(&mut cx).is_pending());
        assert!(!c.is_abandoned());
        c.complete(Err(CallError::Timeout));
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert_eq!(p.poll(&mut cx), Poll::Ready(Err(CallError::Timeout)));
        assert!(p.poll(&mut cx).is_pending());
    }

    #[test]
    fn a_dropped_call_is_abandoned_and_no_caller_fails_at_once() {
        let (p, c) = pending();
        drop(p);
        assert!(c.is_abandoned());
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let r = call(CallRequest::default()).poll(&mut cx);
        assert_eq!(r, Poll::Ready(Err(CallError::NoCaller)));
    }
}
