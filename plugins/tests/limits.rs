//! Plugins that misbehave, written by hand in the WebAssembly text format: an infinite loop,
//! a trap, a memory hog, a callout that is never answered. None may take bext down, hold
//! the core past its budget, or leave instances behind; a well-behaved plugin on the same
//! core goes on serving.

use bext_ir::{Loc, Plugin as IrPlugin};
use bext_plugins::{load, pool, Fault, LoadErrorKind, Props, Stream, Verdict};
use std::sync::Arc;

/// A proxy-wasm 0.2.1 module whose `proxy_on_request_headers` body is `headers` (locals:
/// $ctx, $n, $eos; returns an action), and whose callout callback body is `callback`.
/// Memory from 0: "x-wat" at 0, "1" at 16, "denied" at 32, "auth" at 64, the callout's
/// serialised head at 128 (its length in $call_head_len).
fn wat(headers: &str, callback: &str, initial_pages: u32) -> String {
    let mut head = Vec::new();
    let pairs: [(&[u8], &[u8]); 3] = [
        (b":method", b"GET"),
        (b":path", b"/check"),
        (b":authority", b"auth"),
    ];
    head.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        head.extend_from_slice(&(k.len() as u32).to_le_bytes());
        head.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        head.extend_from_slice(k);
        head.push(0);
        head.extend_from_slice(v);
        head.push(0);
    }
    let escaped: String = head.iter().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"(module
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $buffer (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") {initial_pages})
  (global $heap (mut i32) (i32.const 8192))
  (global $call_head_len i32 (i32.const {len}))
  (data (i32.const 0) "x-wat")
  (data (i32.const 16) "1")
  (data (i32.const 32) "denied")
  (data (i32.const 64) "auth")
  (data (i32.const 128) "{escaped}")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32) (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get $n i32.add global.set $heap
    local.get $p)
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    {headers})
  (func (export "proxy_on_http_call_response") (param $ctx i32) (param $token i32) (param $h i32) (param $b i32) (param $t i32)
    {callback})
)"#,
        len = head.len(),
    )
}

const ADD_HEADER: &str = "(drop (call $add (i32.const 0) (i32.const 0) (i32.const 5) (i32.const 16) (i32.const 1))) i32.const 0";
const DENY: &str = "(drop (call $local (i32.const 403) (i32.const 0) (i32.const 0) (i32.const 32) (i32.const 6) (i32.const 0) (i32.const 0) (i32.const -1))) i32.const 1";
const LOOP: &str = "(loop $l (br $l)) i32.const 0";
const TRAP: &str = "unreachable";
const HOG: &str =
    "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable";
const CALLOUT: &str = "(drop (call $call (i32.const 64) (i32.const 4) (i32.const 128) (global.get $call_head_len) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 4000))) i32.const 1";
/// The callout's answer: its body is read first, as the SDKs do whatever the sizes (a
/// `BadArgument` there traps); no headers (failed or timed out) → 503; otherwise go on.
const ON_CALLOUT: &str = "(if (i32.eq (call $buffer (i32.const 4) (i32.const 0) (i32.const 100) (i32.const 200) (i32.const 204)) (i32.const 2)) (then unreachable)) (if (i32.eqz (local.get $h)) (then (drop (call $local (i32.const 503) (i32.const 0) (i32.const 0) (i32.const 32) (i32.const 6) (i32.const 0) (i32.const 0) (i32.const -1)))) (else (drop (call $continue (i32.const 0)))))";

struct Dir(std::path::PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("bext-plugins-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn plugin(&self, file: &str, text: &str, settings: &[(&str, &str)]) -> IrPlugin {
        let path = self.0.join(file);
        std::fs::write(&path, text).unwrap();
        IrPlugin {
            path: path.to_string_lossy().into_owned(),
            config: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            at: Loc::default(),
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(p: &Arc<bext_plugins::Plugin>) -> Stream {
    let mut s = Stream::open(p, Props::default()).unwrap();
    s.data.request_headers = vec![(b":path".to_vec(), b"/".to_vec())];
    s
}

#[test]
fn a_header_is_added_and_a_local_reply_answers() {
    let d = Dir::new("basic");
    let add = load(&d.plugin("add.wat", &wat(ADD_HEADER, "", 1), &[])).unwrap();
    let mut s = open(&add);
    assert_eq!(s.request_headers(true), Verdict::Continue);
    assert!(s.data.request_headers_changed);
    assert_eq!(
        s.data.request_headers[1],
        (b"x-wat".to_vec(), b"1".to_vec())
    );
    s.finish();

    let deny = load(&d.plugin("deny.wat", &wat(DENY, "", 1), &[])).unwrap();
    let mut s = open(&deny);
    match s.request_headers(true) {
        Verdict::Local(l) => {
            assert_eq!(l.status, 403);
            assert_eq!(l.body, b"denied");
        }
        v => panic!("{v:?}"),
    }
}

#[test]
fn an_infinite_loop_is_stopped_at_its_budget_and_the_core_goes_on() {
    let d = Dir::new("loop");
    let looping = load(&d.plugin("loop.wat", &wat(LOOP, "", 1), &[("budget", "5ms")])).unwrap();
    let good = load(&d.plugin("good.wat", &wat(ADD_HEADER, "", 1), &[])).unwrap();
    // A request of the good plugin in flight on this core while the loop runs.
    let mut before = open(&good);
    for _ in 0..3 {
        let mut s = open(&looping);
        assert_eq!(s.request_headers(true), Verdict::Failed(Fault::Budget));
        assert!(s.is_off());
    }
    assert_eq!(before.request_headers(true), Verdict::Continue);
    let mut after = open(&good);
    assert_eq!(after.request_headers(true), Verdict::Continue);
    // Fail open: the request goes on without the plugin.
    let skip = load(&d.plugin(
        "skip.wat",
        &wat(LOOP, "", 1),
        &[("budget", "2ms"), ("on_error", "skip")],
    ))
    .unwrap();
    let mut s = open(&skip);
    assert_eq!(s.request_headers(true), Verdict::Continue);
    assert!(s.is_off());
    assert!(!s.data.request_headers_changed);
}

#[test]
fn traps_and_memory_hogs_end_their_request_and_leave_no_instance_behind() {
    let d = Dir::new("trap");
    let trap = load(&d.plugin("trap.wat", &wat(TRAP, "", 1), &[])).unwrap();
    let hog = load(&d.plugin("hog.wat", &wat(HOG, "", 1), &[("memory", "2mb")])).unwrap();
    let started = pool::live_instances();
    for _ in 0..20 {
        for p in [&trap, &hog] {
            let mut s = open(p);
            match s.request_headers(true) {
                Verdict::Failed(Fault::Trap(m)) => assert!(m.contains("unreachable"), "{m}"),
                v => panic!("{v:?}"),
            }
        }
        // Each failure dropped its instance: none accumulate.
        assert_eq!(pool::live_instances(), started);
    }
    // A plugin that takes all it can when it starts, then goes on: it got up to its limit and
    // no further.
    let greedy = wat(ADD_HEADER, "", 1).replace(
        r#"(func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)"#,
        r#"(func (export "proxy_on_vm_start") (param i32 i32) (result i32)
            (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) i32.const 1)"#,
    );
    let greedy = load(&d.plugin("greedy.wat", &greedy, &[("memory", "2mb")])).unwrap();
    let vm = bext_plugins::Vm::start(&greedy, &bext_plugins::core::CoreShared::detached()).unwrap();
    assert_eq!(vm.memory_bytes(), 2 << 20);
}

#[test]
fn a_callout_is_handed_out_and_a_never_answered_one_fails_cleanly() {
    let d = Dir::new("callout");
    let p = load(&d.plugin("call.wat", &wat(CALLOUT, ON_CALLOUT, 1), &[])).unwrap();
    let mut s = open(&p);
    assert_eq!(s.request_headers(true), Verdict::Pause);
    let calls = s.take_callouts();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].upstream, "auth");
    assert_eq!(calls[0].timeout_ms, 1000);
    assert_eq!(calls[0].headers[1], (b":path".to_vec(), b"/check".to_vec()));
    // Answered: the plugin resumes the request.
    let ok = bext_plugins::CalloutResponse {
        headers: vec![(b":status".to_vec(), b"200".to_vec())],
        ..Default::default()
    };
    assert_eq!(s.callout_done(calls[0].token, Some(ok)), Verdict::Continue);
    s.finish();
    // Timed out (the caller's timer ran out): the plugin sees no response and answers 503.
    let mut s = open(&p);
    assert_eq!(s.request_headers(true), Verdict::Pause);
    let token = s.take_callouts()[0].token;
    match s.callout_done(token, None) {
        Verdict::Local(l) => assert_eq!(l.status, 503),
        v => panic!("{v:?}"),
    }
    // Never answered at all (the client left): the streams are dropped, contexts deleted.
    let live = pool::live_instances();
    for _ in 0..50 {
        let mut s = open(&p);
        assert_eq!(s.request_headers(true), Verdict::Pause);
        drop(s);
    }
    assert_eq!(pool::live_instances(), live);
}

#[test]
fn load_errors_each_have_their_code() {
    let d = Dir::new("errors");
    let grpc = r#"(module (import "env" "proxy_grpc_call" (func (param i32) (result i32)))
        (import "env" "envoy_only" (func (param i32) (result i32)))
        (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1"))
        (func (export "malloc") (param i32) (result i32) i32.const 0)
        (func (export "proxy_on_context_create") (param i32 i32)))"#;
    let refuses = wat(ADD_HEADER, "", 1).replace(
        r#"(func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1)"#,
        r#"(func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 0)"#,
    );
    let table: Vec<(IrPlugin, LoadErrorKind, &str)> = vec![
        (
            IrPlugin {
                path: d.0.join("absent.wasm").to_string_lossy().into_owned(),
                config: vec![],
                at: Loc::default(),
            },
            LoadErrorKind::Missing,
            "cannot read plugin",
        ),
        (
            d.plugin("text.wasm", "hello", &[]),
            LoadErrorKind::NotProxyWasm,
            "not a WebAssembly module",
        ),
        (
            d.plugin("plain.wat", "(module (func (export \"f\")))", &[]),
            LoadErrorKind::NotProxyWasm,
            "proxy_abi_version",
        ),
        (
            d.plugin("grpc.wat", grpc, &[]),
            LoadErrorKind::MissingImports,
            "env::proxy_grpc_call, env::envoy_only",
        ),
        (
            d.plugin("refuses.wat", &refuses, &[]),
            LoadErrorKind::Start,
            "refused the plugin configuration",
        ),
        (
            d.plugin("big.wat", &wat(ADD_HEADER, "", 64), &[("memory", "1mb")]),
            LoadErrorKind::Start,
            "cannot instantiate",
        ),
        (
            d.plugin("bad.wat", &wat(ADD_HEADER, "", 1), &[("on_error", "maybe")]),
            LoadErrorKind::Settings,
            "on_error",
        ),
    ];
    for (p, kind, msg) in table {
        let e = load(&p).unwrap_err();
        assert_eq!(e.kind, kind, "{}: {}", p.path, e.message);
        assert!(e.message.contains(msg), "{}: {}", p.path, e.message);
    }
    let codes: Vec<&str> = [
        LoadErrorKind::Missing,
        LoadErrorKind::NotProxyWasm,
        LoadErrorKind::MissingImports,
        LoadErrorKind::Settings,
        LoadErrorKind::Start,
    ]
    .iter()
    .map(|k| k.code())
    .collect();
    assert_eq!(codes, ["E0801", "E0802", "E0803", "E0804", "E0805"]);
}

#[test]
fn an_unchanged_plugin_is_the_same_plugin_after_a_reload_and_a_changed_one_is_not() {
    let d = Dir::new("reload");
    let ir = d.plugin("p.wat", &wat(ADD_HEADER, "", 1), &[]);
    let a = load(&ir).unwrap();
    let b = load(&ir).unwrap();
    assert!(
        Arc::ptr_eq(&a, &b),
        "same module and settings: the same plugin, instances kept"
    );
    // In flight on the old plugin while the file changes and is loaded again.
    let mut old = open(&a);
    let ir = d.plugin("p.wat", &wat(DENY, "", 1), &[]);
    let c = load(&ir).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert_ne!(a.content_hash(), c.content_hash());
    drop((a, b));
    assert_eq!(
        old.request_headers(true),
        Verdict::Continue,
        "the old instance finishes it"
    );
    old.finish();
    assert!(matches!(open(&c).request_headers(true), Verdict::Local(_)));
}
