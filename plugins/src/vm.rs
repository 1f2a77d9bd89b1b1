//! One instance of a plugin on one core: its store (memory limit, budget), the root context
//! started (`proxy_on_vm_start`, `proxy_on_configure`), and every callback called under the
//! plugin's budget. A call that traps or runs out of budget is a [`Fault`]: the caller drops
//! the instance (its memory with it) and a fresh one serves the next request.

use crate::budget::{self, budget_ticks, Clock, WallTicks};
use crate::core::CoreShared;
use crate::host::{self, Host};
use crate::load::{engine, Plugin};
use crate::metrics::counters;
use crate::stream::CalloutResponse;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use wasmtime::{
    Linker, Store, StoreLimitsBuilder, Trap, TypedFunc, UpdateDeadline, WasmParams, WasmResults,
};

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The call trapped (unreachable, out-of-bounds access, a failed allocation, proc_exit).
    Trap(String),
    /// The call ran past its budget and was interrupted.
    Budget,
    /// The plugin refused to start (`proxy_on_vm_start` or `proxy_on_configure` answered
    /// false), or the instance could not be made (its memory over the limit).
    Refused(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Trap(m) => write!(f, "trapped: {m}"),
            Fault::Budget => write!(f, "ran past its budget"),
            Fault::Refused(m) => write!(f, "{m}"),
        }
    }
}

/// Accepted (params, results) pairs of an export.
pub(crate) type Signatures = &'static [(&'static str, &'static str)];

/// The accepted (params, results) of each export bext calls, `i` for i32. The headers
/// callbacks are accepted with and without `end_of_stream` (SDK versions differ).
pub(crate) fn export_signature(name: &str) -> Option<Signatures> {
    Some(match name {
        "proxy_on_vm_start" | "proxy_on_configure" => &[("ii", "i")],
        "proxy_on_context_create" => &[("ii", "")],
        "proxy_on_request_headers" | "proxy_on_response_headers" => &[("iii", "i"), ("ii", "i")],
        "proxy_on_request_body" | "proxy_on_response_body" => &[("iii", "i")],
        "proxy_on_request_trailers" | "proxy_on_response_trailers" => &[("ii", "i")],
        "proxy_on_log" | "proxy_on_delete" | "proxy_on_tick" => &[("i", "")],
        "proxy_on_done" => &[("i", "i")],
        "proxy_on_queue_ready" => &[("ii", "")],
        "proxy_on_http_call_response" => &[("iiiii", "")],
        "proxy_on_memory_allocate" | "malloc" => &[("i", "i")],
        "_initialize" | "_start" => &[("", "")],
        _ => return None,
    })
}

/// `proxy_on_http_call_response(context, token, headers, body size, trailers)`.
type CallResponseFn = TypedFunc<(i32, i32, i32, i32, i32), ()>;

/// A headers callback, with or without `end_of_stream`.
#[derive(Clone)]
pub(crate) enum HeadersFn {
    WithEnd(TypedFunc<(i32, i32, i32), i32>),
    NoEnd(TypedFunc<(i32, i32), i32>),
}

#[derive(Clone, Default)]
pub(crate) struct Exports {
    context_create: Option<TypedFunc<(i32, i32), ()>>,
    pub(crate) request_headers: Option<HeadersFn>,
    pub(crate) request_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub(crate) request_trailers: Option<TypedFunc<(i32, i32), i32>>,
    pub(crate) response_headers: Option<HeadersFn>,
    pub(crate) response_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    pub(crate) response_trailers: Option<TypedFunc<(i32, i32), i32>>,
    log: Option<TypedFunc<i32, ()>>,
    done: Option<TypedFunc<i32, i32>>,
    delete: Option<TypedFunc<i32, ()>>,
    tick: Option<TypedFunc<i32, ()>>,
    queue_ready: Option<TypedFunc<(i32, i32), ()>>,
    call_response: Option<CallResponseFn>,
}

thread_local! {
    /// The host functions, bound once per thread (instantiation looks imports up in it).
    static LINKER: RefCell<Option<Rc<Linker<Host>>>> = const { RefCell::new(None) };
}

fn linker() -> Result<Rc<Linker<Host>>, Fault> {
    LINKER.with(|l| {
        if let Some(l) = l.borrow().as_ref() {
            return Ok(l.clone());
        }
        let mut linker = Linker::new(engine());
        host::link(&mut linker).map_err(|e| Fault::Refused(format!("host functions: {e}")))?;
        let linker = Rc::new(linker);
        *l.borrow_mut() = Some(linker.clone());
        Ok(linker)
    })
}

/// The root context's id.
pub(crate) const ROOT: u32 = 1;

/// A started instance.
pub struct Vm {
    pub(crate) store: Store<Host>,
    /// Shared so a call can hold an export while the instance is borrowed mutably (an `Rc`
    /// clone is a counter; a `TypedFunc` clone is not free).
    pub(crate) f: Rc<Exports>,
    ticks: u64,
    clock: Clock,
    /// Keeps the wall-clock thread ticking while this instance lives (`Clock::Wall`).
    _wall: Option<WallTicks>,
    next_ctx: u32,
}

fn classify(e: wasmtime::Error) -> Fault {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => {
            counters().budget_exceeded.fetch_add(1, Ordering::Relaxed);
            Fault::Budget
        }
        Some(t) => {
            counters().traps.fetch_add(1, Ordering::Relaxed);
            Fault::Trap(t.to_string())
        }
        // A host function's error (proc_exit): its message is the root cause.
        None => {
            counters().traps.fetch_add(1, Ordering::Relaxed);
            Fault::Trap(e.root_cause().to_string())
        }
    }
}

/// The budget of the call about to start.
#[inline]
fn arm(store: &mut Store<Host>, clock: Clock, ticks: u64) {
    match clock {
        Clock::Wall => store.set_epoch_deadline(ticks),
        Clock::Cpu => {
            store.data_mut().call_began = budget::cpu_ticks();
            store.set_epoch_deadline(1);
        }
    }
}

impl Vm {
    /// Instantiates `plugin` with `core`'s shared state and starts its root context.
    pub fn start(plugin: &Arc<Plugin>, core: &Rc<CoreShared>) -> Result<Vm, Fault> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(plugin.settings.memory as usize)
            .instances(1)
            .memories(1)
            .tables(4)
            .build();
        let host = Host {
            limits,
            memory: None,
            alloc: None,
            config: plugin.config.clone(),
            name: plugin.short_name.clone(),
            core: core.clone(),
            vm_id: core.vm_id(),
            stream: Default::default(),
            call_response: None,
            callouts: Vec::new(),
            next_token: 0,
            tick_ms: 0,
            metrics: Vec::new(),
            out_line: Vec::new(),
            scratch: Vec::new(),
            call_began: 0,
        };
        let mut store = Store::new(engine(), host);
        store.limiter(|h| &mut h.limits);
        let clock = budget::clock();
        let ticks = budget_ticks(plugin.settings.budget, clock);
        let wall = match clock {
            Clock::Wall => Some(WallTicks::hold()),
            Clock::Cpu => {
                // Any core's tick reaches the deadline; the call is stopped only once its own
                // thread has ticked its budget.
                store.epoch_deadline_callback(move |cx| {
                    if budget::cpu_ticks().wrapping_sub(cx.data().call_began) >= ticks {
                        Err(Trap::Interrupt.into())
                    } else {
                        Ok(UpdateDeadline::Continue(1))
                    }
                });
                None
            }
        };
        arm(&mut store, clock, ticks);
        let instance = linker()?
            .instantiate(&mut store, &plugin.module)
            .map_err(|e| match e.downcast_ref::<Trap>() {
                Some(_) => classify(e),
                None => Fault::Refused(format!("cannot instantiate: {e:#}")),
            })?;
        counters().instances_started.fetch_add(1, Ordering::Relaxed);
        let memory = instance.get_memory(&mut store, "memory");
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")
            .or_else(|_| instance.get_typed_func::<i32, i32>(&mut store, "malloc"))
            .ok();
        store.data_mut().memory = memory;
        store.data_mut().alloc = alloc;
        macro_rules! get {
            ($name:literal) => {
                instance.get_typed_func(&mut store, $name).ok()
            };
        }
        let headers = |store: &mut Store<Host>, name: &str| -> Option<HeadersFn> {
            if let Ok(f) = instance.get_typed_func(&mut *store, name) {
                return Some(HeadersFn::WithEnd(f));
            }
            instance
                .get_typed_func(&mut *store, name)
                .ok()
                .map(HeadersFn::NoEnd)
        };
        let f = Exports {
            context_create: get!("proxy_on_context_create"),
            request_headers: headers(&mut store, "proxy_on_request_headers"),
            request_body: get!("proxy_on_request_body"),
            request_trailers: get!("proxy_on_request_trailers"),
            response_headers: headers(&mut store, "proxy_on_response_headers"),
            response_body: get!("proxy_on_response_body"),
            response_trailers: get!("proxy_on_response_trailers"),
            log: get!("proxy_on_log"),
            done: get!("proxy_on_done"),
            delete: get!("proxy_on_delete"),
            tick: get!("proxy_on_tick"),
            queue_ready: get!("proxy_on_queue_ready"),
            call_response: get!("proxy_on_http_call_response"),
        };
        let start: Option<TypedFunc<(), ()>> = get!("_initialize");
        let vm_start: Option<TypedFunc<(i32, i32), i32>> = get!("proxy_on_vm_start");
        let configure: Option<TypedFunc<(i32, i32), i32>> = get!("proxy_on_configure");
        let mut vm = Vm {
            store,
            f: Rc::new(f),
            ticks,
            clock,
            _wall: wall,
            next_ctx: ROOT + 1,
        };
        // A WASI reactor's constructors (the Rust SDK's `main` registers its root context).
        if let Some(init) = start {
            vm.call(&init, ())?;
        }
        let fs = Rc::clone(&vm.f);
        if let Some(cc) = &fs.context_create {
            vm.call(cc, (ROOT as i32, 0))?;
        }
        if let Some(s) = vm_start {
            if vm.call(&s, (ROOT as i32, 0))? == 0 {
                return Err(Fault::Refused("proxy_on_vm_start answered false".into()));
            }
        }
        if let Some(c) = configure {
            let n = plugin.config.len() as i32;
            if vm.call(&c, (ROOT as i32, n))? == 0 {
                return Err(Fault::Refused(
                    "proxy_on_configure refused the plugin configuration".into(),
                ));
            }
        }
        Ok(vm)
    }

    /// Calls `f` within the plugin's budget.
    pub(crate) fn call<P: WasmParams, Rt: WasmResults>(
        &mut self,
        f: &TypedFunc<P, Rt>,
        args: P,
    ) -> Result<Rt, Fault> {
        arm(&mut self.store, self.clock, self.ticks);
        counters().calls.fetch_add(1, Ordering::Relaxed);
        f.call(&mut self.store, args).map_err(classify)
    }

    /// A new stream context under the root context.
    pub(crate) fn create_context(&mut self) -> Result<u32, Fault> {
        let id = self.next_ctx;
        self.next_ctx = self.next_ctx.checked_add(1).unwrap_or(ROOT + 1);
        let fs = Rc::clone(&self.f);
        if let Some(cc) = &fs.context_create {
            self.call(cc, (id as i32, ROOT as i32))?;
        }
        Ok(id)
    }

    /// `proxy_on_log`, `proxy_on_done` and `proxy_on_delete` for a finished context.
    pub(crate) fn finish_context(&mut self, ctx: u32, log: bool) -> Result<(), Fault> {
        let fs = Rc::clone(&self.f);
        if log {
            if let Some(f) = &fs.log {
                self.call(f, ctx as i32)?;
            }
        }
        if let Some(f) = &fs.done {
            self.call(f, ctx as i32)?;
        }
        if let Some(f) = &fs.delete {
            self.call(f, ctx as i32)?;
        }
        Ok(())
    }

    /// `proxy_on_http_call_response` for context `ctx` with the answer to callout `token`
    /// (`None`: it failed or timed out). A failed call reads as an empty response (no fields,
    /// no body), never as a missing buffer: the SDKs read the body whatever the sizes say.
    pub(crate) fn call_response(
        &mut self,
        ctx: u32,
        token: u32,
        response: Option<CalloutResponse>,
    ) -> Result<(), Fault> {
        let Some(f) = self.f.call_response.clone() else {
            return Ok(());
        };
        let response = response.unwrap_or_default();
        let sizes = (
            response.headers.len() as i32,
            response.body.len() as i32,
            response.trailers.len() as i32,
        );
        self.store.data_mut().call_response = Some(response);
        let r = self.call(&f, (ctx as i32, token as i32, sizes.0, sizes.1, sizes.2));
        self.store.data_mut().call_response = None;
        r
    }

    /// The tick period the root context asked for, in milliseconds (0: none).
    pub fn tick_period_ms(&self) -> u32 {
        self.store.data().tick_ms
    }

    /// `proxy_on_tick` on the root context.
    pub fn tick(&mut self) -> Result<(), Fault> {
        match self.f.tick.clone() {
            Some(f) => self.call(&f, ROOT as i32),
            None => Ok(()),
        }
    }

    /// `proxy_on_queue_ready` for every queue of this core this instance registered that has
    /// items waiting.
    pub fn deliver_queues(&mut self) -> Result<(), Fault> {
        // The common case, after every callback: no queue of the core has items waiting.
        if self.f.queue_ready.is_none() || self.store.data().core.ready.borrow().is_empty() {
            return Ok(());
        }
        let Some(f) = self.f.queue_ready.clone() else {
            return Ok(());
        };
        let core = self.store.data().core.clone();
        let me = self.store.data().vm_id;
        let mine: Vec<u32> = {
            let qs = core.queues.borrow();
            let mut ready = core.ready.borrow_mut();
            let (mine, others): (Vec<u32>, Vec<u32>) = ready
                .iter()
                .partition(|&&q| qs.get(q as usize).is_some_and(|q| q.owner == me));
            *ready = others;
            mine
        };
        for q in mine {
            self.call(&f, (ROOT as i32, q as i32))?;
        }
        Ok(())
    }

    /// Bytes of linear memory the instance has.
    pub fn memory_bytes(&self) -> usize {
        self.store
            .data()
            .memory
            .map(|m| m.data_size(&self.store))
            .unwrap_or(0)
    }
}
