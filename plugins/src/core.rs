//! What the instances of one core share: proxy-wasm shared data and shared queues, and the
//! log sink. Per core, not per process (documented in docs/plugins.md): plugins on different
//! cores see different shared data, as they would in different Envoy worker VMs that do not
//! share a key-value store, and nothing on the request path takes a lock.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// A shared queue: registered by one instance (which is told when it has items), filled by
/// any instance of the core.
pub(crate) struct Queue {
    pub(crate) name: Vec<u8>,
    pub(crate) owner: u64,
    pub(crate) items: VecDeque<Vec<u8>>,
}

/// Shared data: key → (value, cas).
pub(crate) type SharedData = HashMap<Vec<u8>, (Vec<u8>, u32)>;

/// The shared state of one core's plugin instances.
#[derive(Default)]
pub struct CoreShared {
    /// key → (value, cas). A cas of 0 in a set means "whatever the current version".
    pub(crate) data: RefCell<SharedData>,
    pub(crate) queues: RefCell<Vec<Queue>>,
    /// Queues that received items since their owner was last told.
    pub(crate) ready: RefCell<Vec<u32>>,
    /// Bytes held in shared data (keys and values) and queued items.
    pub(crate) bytes: Cell<usize>,
    next_vm: Cell<u64>,
}

/// Entries a core's shared data may hold; a set beyond is refused (`InternalFailure`).
pub(crate) const MAX_SHARED_KEYS: usize = 65_536;
/// Items a queue may hold; an enqueue beyond is refused.
pub(crate) const MAX_QUEUE_ITEMS: usize = 65_536;
/// Bytes a core's shared data and queues may hold together; a set or enqueue beyond is
/// refused (`InternalFailure`): plugins cannot grow the host's memory without bound.
pub(crate) const MAX_SHARED_BYTES: usize = 64 << 20;

impl CoreShared {
    /// A core's state of its own, for a plugin started outside the workers (`bext check`,
    /// loading on the control thread).
    pub fn detached() -> Rc<CoreShared> {
        Rc::new(CoreShared::default())
    }

    pub(crate) fn vm_id(&self) -> u64 {
        let id = self.next_vm.get() + 1;
        self.next_vm.set(id);
        id
    }
}

thread_local! {
    static CAPTURE: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Log lines of this thread's plugins go to a list from now on, instead of stderr (tests).
pub fn capture_logs() {
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
}

/// The lines captured since [`capture_logs`] (the capture goes on).
pub fn captured_logs() -> Vec<String> {
    CAPTURE.with(|c| {
        c.borrow_mut()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    })
}

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "critical"];

/// One log line of a plugin: `bext: plugin NAME: LEVEL: message` on stderr.
pub(crate) fn log(plugin: &str, level: i32, msg: &[u8]) {
    let level = LEVELS.get(level as usize).copied().unwrap_or("info");
    let line = format!(
        "plugin {plugin}: {level}: {}",
        String::from_utf8_lossy(msg).trim_end_matches('\n')
    );
    let captured = CAPTURE.with(|c| match c.borrow_mut().as_mut() {
        Some(list) => {
            list.push(line.clone());
            true
        }
        None => false,
    });
    if !captured {
        eprintln!("bext: {line}");
    }
}
