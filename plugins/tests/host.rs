//! The host functions a plugin shares state through, seen from a hand-written module: shared
//! data (with compare-and-swap), a shared queue delivered to its owner, a property, a metric.

use bext_ir::{Loc, Plugin as IrPlugin};
use bext_plugins::{load, metrics, Props, Stream, Verdict};

const MODULE: &str = r#"(module
  (import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $prop (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $incr (param i32 i64) (result i32)))
  (import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))
  (import "env" "proxy_enqueue_shared_queue" (func $enqueue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_dequeue_shared_queue" (func $dequeue (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 8192))
  (data (i32.const 0) "k")
  (data (i32.const 8) "v1")
  (data (i32.const 16) "q")
  (data (i32.const 32) "x-shared")
  (data (i32.const 48) "request\00path")
  (data (i32.const 64) "x-path")
  (data (i32.const 80) "x-queue")
  (data (i32.const 128) "bext_test_requests")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32) (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get $n i32.add global.set $heap
    local.get $p)
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    ;; shared data: set, read back into a header; a set with a stale cas is refused (8)
    (drop (call $set (i32.const 0) (i32.const 1) (i32.const 8) (i32.const 2) (i32.const 0)))
    (drop (call $get (i32.const 0) (i32.const 1) (i32.const 1000) (i32.const 1004) (i32.const 1008)))
    (drop (call $add (i32.const 0) (i32.const 32) (i32.const 8) (i32.load (i32.const 1000)) (i32.load (i32.const 1004))))
    (if (i32.ne (call $set (i32.const 0) (i32.const 1) (i32.const 8) (i32.const 2) (i32.add (i32.load (i32.const 1008)) (i32.const 7))) (i32.const 8))
      (then unreachable))
    ;; a property
    (drop (call $prop (i32.const 48) (i32.const 12) (i32.const 1000) (i32.const 1004)))
    (drop (call $add (i32.const 0) (i32.const 64) (i32.const 6) (i32.load (i32.const 1000)) (i32.load (i32.const 1004))))
    ;; a metric
    (drop (call $define (i32.const 0) (i32.const 128) (i32.const 18) (i32.const 1016)))
    (drop (call $incr (i32.load (i32.const 1016)) (i64.const 1)))
    ;; what the queue delivered to an earlier request's instance, if anything
    (if (i32.eqz (call $get (i32.const 16) (i32.const 1) (i32.const 1000) (i32.const 1004) (i32.const 1008)))
      (then (drop (call $add (i32.const 0) (i32.const 80) (i32.const 7) (i32.load (i32.const 1000)) (i32.load (i32.const 1004))))))
    ;; a queue: registered by this instance, an item enqueued
    (drop (call $register (i32.const 16) (i32.const 1) (i32.const 1012)))
    (drop (call $enqueue (i32.load (i32.const 1012)) (i32.const 8) (i32.const 2)))
    i32.const 0)
  ;; the owner is told: the item goes into shared data under "q"
  (func (export "proxy_on_queue_ready") (param i32 i32)
    (if (i32.eqz (call $dequeue (local.get 1) (i32.const 1100) (i32.const 1104)))
      (then (drop (call $set (i32.const 16) (i32.const 1) (i32.load (i32.const 1100)) (i32.load (i32.const 1104)) (i32.const 0)))))))"#;

fn headers(h: &[(Vec<u8>, Vec<u8>)]) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into(),
                String::from_utf8_lossy(v).into(),
            )
        })
        .collect()
}

#[test]
fn shared_data_queues_properties_and_metrics() {
    let dir = std::env::temp_dir().join(format!("bext-plugins-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("shared.wat");
    std::fs::write(&path, MODULE).unwrap();
    let p = load(&IrPlugin {
        path: path.to_string_lossy().into_owned(),
        config: vec![],
        at: Loc::default(),
    })
    .unwrap();
    let props = || {
        let mut p = Props::default();
        p.path = b"/a?b=1".to_vec();
        p
    };
    let mut first = Stream::open(&p, props()).unwrap();
    assert_eq!(first.request_headers(true), Verdict::Continue);
    let want = |queue: bool| {
        let mut h = vec![
            ("x-shared".to_string(), "v1".to_string()),
            ("x-path".into(), "/a?b=1".into()),
        ];
        if queue {
            h.push(("x-queue".into(), "v1".into()));
        }
        h
    };
    assert_eq!(headers(&first.data.request_headers), want(false));
    // The first request's item was delivered to the queue's owner after its call.
    let mut second = Stream::open(&p, props()).unwrap();
    assert_eq!(second.request_headers(true), Verdict::Continue);
    assert_eq!(headers(&second.data.request_headers), want(true));
    let text = metrics::prometheus();
    assert!(
        text.lines().any(|l| l
            .starts_with("bext_plugin_metric{name=\"bext_test_requests\",kind=\"counter\"} ")
            && !l.ends_with(" 0")),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
