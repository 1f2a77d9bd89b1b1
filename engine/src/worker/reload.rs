//! Reloads on one core: the two phases a reload goes through on every worker (prepare, then
//! commit; or abort), and how a worker holds and lets go of pipelines.
//!
//! Prepare opens everything the new pipeline needs on this core (its access log, its new
//! listeners, its upstream state), so that the commit, a swap of the pipeline slot, cannot
//! fail: either every core commits or the control thread aborts on every core. Requests
//! already running keep the pipeline they hold; a retired pipeline is freed by the engine's
//! reaper thread once its last request ends, never on a worker thread.

use super::mix;
use super::Worker;
use crate::log::AccessLog;
use crate::pipeline::Pipeline;
use crate::upstream::CoreUpstreams;
use monoio::net::TcpListener;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

/// Where a worker sends the pipelines it lets go of: the engine's reaper thread, which drops
/// them. Freeing a large configuration (route tables, regexes, upstream definitions) takes
/// time that must not be spent between two requests of a core.
pub type Reaper = mpsc::Sender<Arc<Pipeline>>;

/// A pipeline as a worker holds it. Dropping it sends the `Arc` to the reaper instead of
/// releasing it here, so the last reference to a retired pipeline is never dropped on a worker
/// thread (unless the reaper is gone, when the engine is being torn down).
pub struct Held {
    /// `Some` from creation until `drop` takes it.
    p: Option<Arc<Pipeline>>,
    reaper: Reaper,
}

impl Held {
    pub fn new(p: Arc<Pipeline>, reaper: &Reaper) -> Held {
        Held {
            p: Some(p),
            reaper: reaper.clone(),
        }
    }
}

impl std::ops::Deref for Held {
    type Target = Pipeline;
    fn deref(&self) -> &Pipeline {
        match &self.p {
            Some(p) => p,
            // Invariant: only `drop` takes the pipeline out.
            None => unreachable!("a held pipeline is taken only when it is dropped"),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(p) = self.p.take() {
            // The reaper ends only once every sender is gone, and this one is alive here: the
            // send fails only if its thread could not be started, and then `p` drops here.
            let _ = self.reaper.send(p);
        }
    }
}

/// A message from the control thread to one worker: the two phases of a reload.
pub enum ControlMsg {
    /// Make ready to run `pipeline` (open what it needs on this core) and answer on `ack`;
    /// nothing changes for requests yet.
    Prepare {
        pipeline: Arc<Pipeline>,
        /// This worker's sockets for the listeners the new pipeline adds (bound, listening),
        /// keyed by their configured address.
        listeners: Vec<(SocketAddr, std::net::TcpListener)>,
        ack: mpsc::Sender<Result<(), String>>,
    },
    /// Switch to the prepared pipeline of `generation` and answer once it is active.
    Commit {
        generation: u64,
        ack: mpsc::Sender<u64>,
    },
    /// Forget the prepared pipeline of `generation`.
    Abort { generation: u64 },
    /// Remove what `purge` names from this core's response caches; answer with the number
    /// of objects removed.
    Purge {
        purge: crate::handler::cache::Purge,
        ack: mpsc::Sender<usize>,
    },
}

/// What a worker prepared for the next generation: the pipeline and its access log, opened on
/// this core before the commit so that the commit itself cannot fail.
pub(super) struct Prepared {
    pub(super) pipeline: Held,
    pub(super) log: Option<AccessLog>,
    listeners: Vec<(SocketAddr, TcpListener)>,
    upstreams: Rc<CoreUpstreams>,
}

impl Worker {
    /// Handle one control message (see [`ControlMsg`]).
    pub fn control(self: &Rc<Self>, m: ControlMsg) {
        match m {
            ControlMsg::Prepare {
                pipeline,
                listeners,
                ack,
            } => {
                let pipeline = Held::new(pipeline, &self.reaper);
                let _ = ack.send(self.prepare(pipeline, listeners));
            }
            ControlMsg::Commit { generation, ack } => {
                let closing = self.commit(generation);
                let active = self.pipeline.borrow().generation;
                // Confirm once the listeners this commit dropped are closed, so that the
                // control thread's "done" means the port no longer accepts.
                monoio::spawn(async move {
                    for h in closing {
                        h.await;
                    }
                    let _ = ack.send(active);
                });
            }
            ControlMsg::Purge { purge, ack } => {
                let _ = ack.send(self.caches.purge(&purge));
            }
            ControlMsg::Abort { generation } => {
                let mut prepared = self.prepared.borrow_mut();
                if prepared
                    .as_ref()
                    .is_some_and(|p| p.pipeline.generation == generation)
                {
                    *prepared = None;
                }
            }
        }
    }

    fn prepare(
        &self,
        pipeline: Held,
        listeners: Vec<(SocketAddr, std::net::TcpListener)>,
    ) -> Result<(), String> {
        if self.stop.is_stopped() {
            return Err(format!("worker {} is stopping", self.id));
        }
        // HTTP/3 the new pipeline starts (on an added listener, or on a kept one that gains
        // it) must be able to bind its UDP port: checked now, so that a port held elsewhere
        // fails the reload on every core instead of leaving the listener without HTTP/3.
        for addr in &pipeline.http3 {
            if self.quic.borrow().iter().any(|(a, _)| a == addr) {
                continue;
            }
            let bound = (listeners.iter())
                .find(|(a, _)| a == addr)
                .and_then(|(_, l)| l.local_addr().ok())
                .or_else(|| {
                    let kept = self.listeners.borrow();
                    kept.iter().find(|l| l.0 == *addr).map(|l| l.1)
                });
            if let Some(b) = bound {
                crate::h3::probe_udp(b)
                    .map_err(|e| format!("worker {}: http3 on {b} (udp): {e}", self.id))?;
            }
        }
        let mut added = Vec::with_capacity(listeners.len());
        for (addr, l) in listeners {
            let l = TcpListener::from_std(l)
                .map_err(|e| format!("worker {}: listener {addr}: {e}", self.id))?;
            added.push((addr, l));
        }
        let log = match &pipeline.access_log {
            None => None,
            Some(spec) => {
                if let bext_ir::LogTarget::File(path) = &spec.target {
                    // Checked here so that a log that cannot be opened aborts the reload
                    // instead of leaving a core logging nowhere.
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|e| format!("access log {path}: {e}"))?;
                }
                Some(AccessLog::open(spec))
            }
        };
        let upstreams = {
            let sets = self.upstreams.borrow();
            let seed = mix(self.seed ^ pipeline.generation);
            Rc::new(CoreUpstreams::build(
                &pipeline,
                seed,
                sets.last().map(|u| &**u),
            ))
        };
        *self.prepared.borrow_mut() = Some(Prepared {
            pipeline,
            log,
            listeners: added,
            upstreams,
        });
        Ok(())
    }

    /// Switch to the prepared pipeline. Requests already running keep the pipeline they hold;
    /// the next request of every connection reads the new one.
    /// Returns the accept loops of the listeners it dropped (they end at their next poll).
    fn commit(self: &Rc<Self>, generation: u64) -> Vec<monoio::task::JoinHandle<()>> {
        let Some(prep) = self.prepared.borrow_mut().take() else {
            return Vec::new();
        };
        if prep.pipeline.generation != generation {
            return Vec::new();
        }
        // Listeners the new pipeline drops stop accepting (their sockets close when their
        // accept loop ends); connections they accepted are not touched. Added ones start.
        let mut closing = Vec::new();
        let listeners = std::mem::take(&mut *self.listeners.borrow_mut());
        for (addr, bound, stop, h) in listeners {
            if prep.pipeline.listeners.contains(&addr) {
                self.listeners.borrow_mut().push((addr, bound, stop, h));
            } else {
                stop.trigger();
                closing.push(h);
                // Its HTTP/3 endpoint stops with it (below); Alt-Svc no longer names the port.
                if self.quic.borrow().iter().any(|(a, _)| *a == addr) {
                    crate::h3::withdraw(bound.port());
                }
            }
        }
        for (addr, l) in prep.listeners {
            self.start_accepting(addr, l);
        }
        self.flush_log();
        *self.log.borrow_mut() = prep.log;
        self.upstreams.borrow_mut().push(prep.upstreams);
        // Caches whose configuration the new pipeline no longer has are dropped; the others
        // keep their objects.
        self.caches.keep_only(&prep.pipeline.cache_ids());
        let old = std::mem::replace(&mut *self.pipeline.borrow_mut(), Rc::new(prep.pipeline));
        let old_gen = old.generation;
        if Rc::strong_count(&old) > 1 {
            self.retired
                .borrow_mut()
                .push((old_gen, Rc::downgrade(&old)));
        }
        drop(old);
        // HTTP/3 starts on the listeners the new pipeline adds it to and stops where it no
        // longer lists it (after the swap: an endpoint reads its limits from the pipeline).
        self.serve_http3();
        self.shared.stats[self.id]
            .generation
            .store(generation, Ordering::Release);
        self.publish_in_use();
        // The new pipeline may allow more connections.
        self.wake_accepting();
        closing
    }

    /// Publish, per generation, how many requests of this core still run on it.
    pub(super) fn publish_in_use(&self) {
        let mut retired = self.retired.borrow_mut();
        retired.retain(|(_, w)| w.strong_count() > 0);
        let cur = self.pipeline.borrow();
        let mut v = Vec::with_capacity(retired.len() + 1);
        v.push((cur.generation, Rc::strong_count(&cur) - 1));
        for (g, w) in retired.iter() {
            v.push((*g, w.strong_count()));
        }
        drop(cur);
        drop(retired);
        // Upstream state lives as long as some request may still run on its generation.
        let mut sets = self.upstreams.borrow_mut();
        sets.retain(|u| v.iter().any(|(g, _)| *g == u.generation));
        let snapshot = sets.last().map(|u| u.snapshot()).unwrap_or_default();
        drop(sets);
        let stats = &self.shared.stats[self.id];
        *stats.in_use.lock().unwrap_or_else(|e| e.into_inner()) = v;
        *stats.upstreams.lock().unwrap_or_else(|e| e.into_inner()) = snapshot;
        stats
            .connections
            .store(self.connections.get(), Ordering::Relaxed);
    }
}
