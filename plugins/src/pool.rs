//! Each core's instances: one per plugin, started at the core's first request for it and
//! replaced after a failure. Looked up by the plugin's identity; entries of plugins no
//! pipeline holds any more are dropped at the next look-up that misses. A request in flight
//! holds its slot, so a reload that changes a plugin never pulls an instance from under it.

use crate::core::CoreShared;
use crate::load::Plugin;
use crate::metrics::counters;
use crate::vm::{Fault, Vm, ROOT};
use bext_stage::callout::{self, Pending};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Waker};

/// A plugin's instance on this core.
pub struct Slot {
    plugin: Weak<Plugin>,
    vm: RefCell<Option<Vm>>,
    /// Bumped each time the instance is replaced: a stream context of an older generation
    /// no longer exists.
    generation: Cell<u64>,
    core: Rc<CoreShared>,
    /// Starting the instance from the tick failed: the next request tries again, not the
    /// next tick.
    tick_start_failed: Cell<bool>,
    /// Callouts the root context made (from its start, a tick, a queue delivery, an earlier
    /// answer), by token: answered to the root context at the worker's ticks.
    root_waiting: RefCell<Vec<(u32, Pending)>>,
}

thread_local! {
    static POOL: RefCell<Vec<Rc<Slot>>> = const { RefCell::new(Vec::new()) };
    static CORE: Rc<CoreShared> = CoreShared::detached();
}

/// This core's slot for `plugin`.
pub(crate) fn slot(plugin: &Arc<Plugin>) -> Rc<Slot> {
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        if let Some(s) = pool
            .iter()
            .find(|s| Weak::as_ptr(&s.plugin) == Arc::as_ptr(plugin))
        {
            return s.clone();
        }
        pool.retain(|s| s.plugin.strong_count() > 0);
        let s = Rc::new(Slot {
            plugin: Arc::downgrade(plugin),
            vm: RefCell::new(None),
            generation: Cell::new(1),
            core: CORE.with(Rc::clone),
            tick_start_failed: Cell::new(false),
            root_waiting: RefCell::new(Vec::new()),
        });
        pool.push(s.clone());
        s
    })
}

/// Instances this core holds (live ones; a failed instance is gone until its next request).
pub fn live_instances() -> usize {
    POOL.with(|p| {
        p.borrow()
            .iter()
            .filter(|s| s.plugin.strong_count() > 0 && s.vm.borrow().is_some())
            .count()
    })
}

/// Root-context work of this core's instances, for the worker's tick: `proxy_on_tick` for
/// those whose period elapsed since `last` (milliseconds of the worker's clock), and queue
/// deliveries. An instance that fails here is replaced.
pub fn tick(now_ms: u64, last_ms: u64) {
    // A plugin with a tick runs on every core from its load, as each Envoy worker starts its
    // VM: its root context does not wait for a request to reach the core.
    for p in crate::load::ticking_plugins() {
        let s = slot(&p);
        if s.vm.borrow().is_none() && !s.tick_start_failed.get() {
            let started = s.with_vm(|_| Ok(()));
            s.tick_start_failed.set(started.is_err());
        }
    }
    let slots: Vec<Rc<Slot>> = POOL.with(|p| p.borrow().clone());
    for s in slots {
        let generation = s.generation.get();
        let r = s.call_in(generation, |vm| {
            let period = vm.tick_period_ms() as u64;
            if period > 0 && now_ms / period != last_ms / period {
                vm.tick()?;
            }
            vm.deliver_queues()?;
            s.send_root_callouts(vm);
            s.answer_root_callouts(vm)
        });
        if r.is_err() {
            s.replace(generation);
        }
    }
}

impl Slot {
    fn plugin(&self) -> Result<Arc<Plugin>, Fault> {
        self.plugin
            .upgrade()
            .ok_or_else(|| Fault::Refused("the plugin was unloaded".into()))
    }

    /// Runs `f` on the instance (started now if there is none), with its generation.
    pub(crate) fn with_vm<R>(
        &self,
        f: impl FnOnce(&mut Vm) -> Result<R, Fault>,
    ) -> Result<(u64, R), Fault> {
        let mut vm = self.vm.borrow_mut();
        if vm.is_none() {
            let mut started = Vm::start(&self.plugin()?, &self.core)?;
            // What `proxy_on_vm_start` and `proxy_on_configure` asked for.
            self.send_root_callouts(&mut started);
            *vm = Some(started);
        }
        let Some(v) = vm.as_mut() else {
            return Err(Fault::Refused("no instance".into()));
        };
        f(v).map(|r| (self.generation.get(), r))
    }

    /// Runs `f` on the instance of `generation`; an error when it was replaced since.
    #[inline]
    pub(crate) fn call_in<R>(
        &self,
        generation: u64,
        f: impl FnOnce(&mut Vm) -> Result<R, Fault>,
    ) -> Result<R, Fault> {
        if generation != self.generation.get() {
            return Err(Fault::Refused(
                "the instance was replaced after a failure".into(),
            ));
        }
        let mut vm = self.vm.borrow_mut();
        match vm.as_mut() {
            Some(v) => f(v),
            None => Err(Fault::Refused(
                "the instance was replaced after a failure".into(),
            )),
        }
    }

    /// Sends the callouts the root context made in its last callbacks (its start, a tick, a
    /// queue delivery, an answer): they are the root context's, answered to it at the
    /// worker's ticks, never to a stream's.
    #[inline]
    pub(crate) fn send_root_callouts(&self, vm: &mut Vm) {
        if vm.store.data().callouts.is_empty() {
            return;
        }
        let made = std::mem::take(&mut vm.store.data_mut().callouts);
        let mut waiting = self.root_waiting.borrow_mut();
        for c in made {
            counters().callouts.fetch_add(1, Ordering::Relaxed);
            let token = c.token;
            waiting.push((token, callout::call(crate::stage::call_request(c))));
        }
    }

    /// `proxy_on_http_call_response` on the root context for each of its callouts answered
    /// since the last tick (a failed or timed-out one as a response without fields or body).
    fn answer_root_callouts(&self, vm: &mut Vm) -> Result<(), Fault> {
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            let answered = crate::stage::next_answer(&mut self.root_waiting.borrow_mut(), &mut cx);
            let Some((token, r)) = answered else {
                return Ok(());
            };
            let name = vm.store.data().name.clone();
            vm.call_response(ROOT, token, crate::stage::callout_response(r, &name))?;
            self.send_root_callouts(vm);
        }
    }

    /// Drops the instance of `generation` (after its failure): the next request starts a
    /// fresh one.
    pub(crate) fn replace(&self, generation: u64) {
        if generation != self.generation.get() {
            return;
        }
        self.root_waiting.borrow_mut().clear();
        self.generation.set(generation + 1);
        if self.vm.borrow_mut().take().is_some() {
            counters()
                .instances_replaced
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}
