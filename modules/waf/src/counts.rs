//! Per-rule block counts, for `/status` and `/metrics`: how many requests each rule fired in
//! that the WAF refused, or, in detection mode, would have refused.
//!
//! A request adds to its core's counts (a thread-local table, no lock, touched only by a
//! request the WAF refused or would have refused). On every worker's tick the core adds what
//! changed to the process's totals, under a mutex that only the ticks and the scrape take, and
//! the engine shows the totals through `bext_stage::hooks` as
//! `bext_waf_rule_matches_total{rule="ID"}` and `bext_waf_would_block_total`. The labels are
//! rule ids of compiled rule sets, so their number is bounded by the configuration; the
//! totals are per process and trail the requests by at most a tick.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use bext_stage::hooks::{self, Counter};

/// The family of the per-rule counts.
pub const RULE_FAMILY: &str = "bext_waf_rule_matches_total";
/// The family of the requests a WAF in detection mode would have refused.
pub const WOULD_BLOCK_FAMILY: &str = "bext_waf_would_block_total";

/// One core's counts since its last tick.
#[derive(Default)]
struct Core {
    /// (rule id, requests), in the order rules first fired on this core.
    rules: Vec<(u32, u64)>,
    would_block: u64,
}

thread_local! {
    static CORE: RefCell<Core> = RefCell::new(Core::default());
}

/// The process's totals, as of each core's last tick.
struct Totals {
    rules: BTreeMap<u32, u64>,
    would_block: u64,
}

static TOTALS: Mutex<Totals> = Mutex::new(Totals {
    rules: BTreeMap::new(),
    would_block: 0,
});

/// Registers the tick and the export with the engine (once per process).
pub(crate) fn register() {
    hooks::on_tick("waf", publish);
    hooks::add_counters("waf", export);
}

/// Counts a request the WAF refused (`would`: detection mode would have) in which `rules`
/// fired (distinct ids).
pub(crate) fn record(rules: &[u32], would: bool) {
    CORE.with(|c| {
        let mut c = c.borrow_mut();
        if would {
            c.would_block += 1;
        }
        for &id in rules {
            match c.rules.iter_mut().find(|(r, _)| *r == id) {
                Some((_, n)) => *n += 1,
                None => c.rules.push((id, 1)),
            }
        }
    });
}

/// A worker's tick: this core's counts go to the totals.
fn publish(_now_ms: u64, _last_ms: u64) {
    CORE.with(|c| {
        let mut c = c.borrow_mut();
        if c.rules.is_empty() && c.would_block == 0 {
            return;
        }
        let mut t = TOTALS.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, n) in c.rules.drain(..) {
            *t.rules.entry(id).or_default() += n;
        }
        t.would_block += std::mem::take(&mut c.would_block);
    });
}

/// The totals as the engine shows them.
fn export(out: &mut Vec<Counter>) {
    let t = TOTALS.lock().unwrap_or_else(PoisonError::into_inner);
    out.push(Counter {
        name: WOULD_BLOCK_FAMILY,
        help: "Requests a WAF in detection mode would have refused.",
        gauge: false,
        label: None,
        value: t.would_block as i64,
    });
    for (id, n) in &t.rules {
        out.push(Counter {
            name: RULE_FAMILY,
            help: "Requests the WAF refused (or, in detection mode, would have refused) in which the rule fired, by rule id.",
            gauge: false,
            label: Some(("rule", id.to_string())),
            value: *n as i64,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_counts_go_to_the_totals_on_its_tick() {
        let before = |id: u32| TOTALS.lock().unwrap().rules.get(&id).copied().unwrap_or(0);
        let (a, b) = (4_000_001, 4_000_002);
        let (a0, b0) = (before(a), before(b));
        record(&[a, b], false);
        record(&[a], true);
        assert_eq!(before(a), a0, "nothing before the tick");
        publish(0, 0);
        assert_eq!((before(a), before(b)), (a0 + 2, b0 + 1));
        let mut out = Vec::new();
        export(&mut out);
        let find = |id: u32| {
            out.iter()
                .find(|c| c.name == RULE_FAMILY && c.label == Some(("rule", id.to_string())))
                .map(|c| c.value)
        };
        assert_eq!(find(a), Some(a0 as i64 + 2));
        assert!(out
            .iter()
            .any(|c| c.name == WOULD_BLOCK_FAMILY && c.value >= 1));
    }
}
