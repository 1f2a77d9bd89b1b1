//! The stage phases end to end, with stages of the tests' own added through the testing hook
//! (`bext::start_with_stages`): one that only observes, one that rejects, one that edits the
//! response head, one that rewrites the body, one that carries state from the request to the
//! response, on responded and proxied routes.

mod common;
use bext_stage::{
    BodyError, BodyUse, Flow, LogEntry, Phases, Reply, RequestView, ResponseHead, Stage,
};
use common::*;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

fn start_with(
    config: bext_ir::Config,
    stages: impl FnOnce(&mut bext_engine::Pipeline),
) -> bext::Server {
    bext::start_with_stages(config, opts(), stages).expect("bext starts")
}

fn get(a: std::net::SocketAddr, path: &str) -> Resp {
    exchange(
        a,
        format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes(),
    )
    .0
}

/// Counts requests and log lines; changes nothing.
struct Observer {
    requests: Arc<AtomicUsize>,
    logged: Arc<Mutex<Vec<(u16, u64)>>>,
}

impl Stage for Observer {
    type State = ();
    fn phases(&self) -> Phases {
        Phases::REQUEST | Phases::LOG
    }
    fn init(&self) {}
    fn on_request(&self, _: &mut (), _: &RequestView<'_>) -> Flow {
        self.requests.fetch_add(1, Ordering::SeqCst);
        Flow::Continue
    }
    fn on_log(&self, _: &mut (), e: &LogEntry<'_>) {
        self.logged.lock().unwrap().push((e.status, e.bytes_sent));
    }
}

/// Refuses paths under `/deny`.
struct Deny;

impl Stage for Deny {
    type State = ();
    fn phases(&self) -> Phases {
        Phases::REQUEST
    }
    fn init(&self) {}
    fn on_request(&self, _: &mut (), req: &RequestView<'_>) -> Flow {
        if req.path.starts_with(b"/deny") {
            Flow::Reply(Reply {
                status: 403,
                slug: "forbidden",
                title: "Forbidden",
                retry_after: None,
            })
        } else {
            Flow::Continue
        }
    }
}

/// Adds a field and removes `Server`.
struct EditHead;

impl Stage for EditHead {
    type State = ();
    fn phases(&self) -> Phases {
        Phases::RESPONSE_HEAD
    }
    fn init(&self) {}
    fn on_response_head(&self, _: &mut (), head: &mut ResponseHead<'_>) -> BodyUse {
        head.set(b"X-Stage", b"edited");
        head.remove(b"server");
        BodyUse::Pass
    }
}

/// Upper-cases the body (its length kept) and, with `bang`, appends `!` at its end; says it
/// uses the body as `says`. `SHOUT` says it changes the body (and does); an `Inspect` stage says
/// it keeps the length, and with `bang` breaks its word.
struct Upper {
    says: BodyUse,
    bang: bool,
}

const SHOUT: Upper = Upper {
    says: BodyUse::Filter,
    bang: true,
};

impl Stage for Upper {
    type State = ();
    fn phases(&self) -> Phases {
        Phases::RESPONSE_BODY
    }
    fn init(&self) {}
    fn on_response_head(&self, _: &mut (), _: &mut ResponseHead<'_>) -> BodyUse {
        self.says
    }
    fn on_body(&self, _: &mut (), data: &[u8], out: &mut Vec<u8>) -> Result<(), BodyError> {
        out.extend(data.iter().map(u8::to_ascii_uppercase));
        Ok(())
    }
    fn on_body_end(&self, _: &mut (), out: &mut Vec<u8>) -> Result<(), BodyError> {
        if self.bang {
            out.push(b'!');
        }
        Ok(())
    }
}

/// Keeps the request's path length from the request phase to the response head, and counts
/// the body bytes it saw, per request.
struct Remember {
    seen: Arc<Mutex<Vec<u64>>>,
}

#[derive(Default)]
struct Memory {
    path_len: usize,
    bytes: u64,
}

impl Stage for Remember {
    type State = Memory;
    fn phases(&self) -> Phases {
        Phases::REQUEST | Phases::RESPONSE_BODY | Phases::LOG
    }
    fn init(&self) -> Memory {
        Memory::default()
    }
    fn on_request(&self, st: &mut Memory, req: &RequestView<'_>) -> Flow {
        st.path_len = req.path.len();
        Flow::Continue
    }
    fn on_response_head(&self, st: &mut Memory, head: &mut ResponseHead<'_>) -> BodyUse {
        head.set(b"X-Path-Len", st.path_len.to_string().as_bytes());
        BodyUse::Filter
    }
    fn on_body(&self, st: &mut Memory, data: &[u8], out: &mut Vec<u8>) -> Result<(), BodyError> {
        st.bytes += data.len() as u64;
        out.extend_from_slice(data);
        Ok(())
    }
    fn on_log(&self, st: &mut Memory, _: &LogEntry<'_>) {
        self.seen.lock().unwrap().push(st.bytes);
    }
}

fn hello() -> bext_ir::Config {
    site(vec![route(
        bext_ir::PathMatch::Prefix("/".into()),
        respond(200, "hello"),
    )])
}

#[test]
fn an_observing_stage_sees_every_request_and_its_log_and_changes_nothing() {
    let requests = Arc::new(AtomicUsize::new(0));
    let logged = Arc::new(Mutex::new(Vec::new()));
    let (r2, l2) = (requests.clone(), logged.clone());
    let s = start_with(hello(), move |p| {
        p.add_stage(
            0,
            Box::new(Observer {
                requests: r2,
                logged: l2,
            }),
        )
    });
    for _ in 0..3 {
        let r = get(addr(&s), "/a");
        assert_eq!((r.status, r.text().as_str()), (200, "hello"));
        assert_eq!(r.header("content-length"), Some("5"));
    }
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    wait_until(|| logged.lock().unwrap().len() == 3);
    assert_eq!(logged.lock().unwrap()[0], (200, 5));
    s.shutdown();
}

#[test]
fn a_rejecting_stage_answers_instead_of_the_handler() {
    let s = start_with(hello(), |p| p.add_stage(0, Box::new(Deny)));
    let r = get(addr(&s), "/deny/x");
    assert_eq!(r.status, 403);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert!(r
        .text()
        .contains("\"type\":\"https://bext.dev/problems/forbidden\""));
    assert_eq!(get(addr(&s), "/ok").text(), "hello");
    s.shutdown();
}

#[test]
fn a_head_stage_edits_responded_and_proxied_heads() {
    let s = start_with(hello(), |p| p.add_stage(0, Box::new(EditHead)));
    let r = get(addr(&s), "/");
    assert_eq!(r.header("x-stage"), Some("edited"));
    assert_eq!(r.header("server"), None);
    assert_eq!(
        (r.text().as_str(), r.header("content-length")),
        ("hello", Some("5"))
    );
    let origin = origin(100);
    let proxy = start_with(proxy_to(addr(&origin)), |p| {
        p.add_stage(0, Box::new(EditHead))
    });
    let r = get(addr(&proxy), "/");
    assert_eq!(r.header("x-stage"), Some("edited"));
    assert_eq!(r.header("server"), None);
    assert_eq!(r.body.len(), 100);
    proxy.shutdown();
    origin.shutdown();
}

#[test]
fn a_body_stage_rewrites_bodies_and_the_framing_follows() {
    let s = start_with(hello(), |p| p.add_stage(0, Box::new(SHOUT)));
    let r = get(addr(&s), "/");
    assert_eq!(r.text(), "HELLO!");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    // HTTP/1.0: the end of the body is the end of the connection.
    let (r, _) = exchange(addr(&s), b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.text(), "HELLO!");
    assert_eq!(r.header("connection"), Some("close"));
    // HEAD: no body, whatever the filters.
    let (r, _) = exchange(addr(&s), b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(r.body.is_empty());
    // Proxied, over a Content-Length body larger than one transfer buffer.
    let origin = origin(100_000);
    let proxy = start_with(proxy_to(addr(&origin)), |p| p.add_stage(0, Box::new(SHOUT)));
    let want = get(addr(&origin), "/").body;
    let r = get(addr(&proxy), "/");
    assert!(r.complete);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    let mut up = want.to_ascii_uppercase();
    up.push(b'!');
    assert_eq!(r.body, up);
    proxy.shutdown();
    origin.shutdown();
    s.shutdown();
}

/// A body stage that keeps the length keeps the framing: `Content-Length` stays (and HTTP/1.0
/// keeps its connection); one that changes the length all the same gets its response cut short
/// (never a body longer or shorter than the length the head announced).
#[test]
fn a_body_stage_that_keeps_the_length_keeps_the_framing() {
    let s = start_with(hello(), |p| {
        p.add_stage(
            0,
            Box::new(Upper {
                says: BodyUse::Inspect,
                bang: false,
            }),
        )
    });
    let r = get(addr(&s), "/");
    assert_eq!(r.text(), "HELLO");
    assert_eq!(r.header("content-length"), Some("5"));
    assert_eq!(r.header("transfer-encoding"), None);
    let (r, _) = exchange(
        addr(&s),
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(r.text(), "HELLO");
    assert_eq!(r.header("content-length"), Some("5"));
    assert_eq!(r.header("connection"), Some("keep-alive"));
    let origin = origin(100_000);
    let proxy = start_with(proxy_to(addr(&origin)), |p| {
        p.add_stage(
            0,
            Box::new(Upper {
                says: BodyUse::Inspect,
                bang: false,
            }),
        )
    });
    let want = get(addr(&origin), "/").body;
    let r = get(addr(&proxy), "/");
    assert!(r.complete);
    assert_eq!(r.header("content-length"), Some("100000"));
    assert_eq!(r.body, want.to_ascii_uppercase());
    proxy.shutdown();
    // The stage that breaks its word: cut short, on both paths.
    let liar = start_with(hello(), |p| {
        p.add_stage(
            0,
            Box::new(Upper {
                says: BodyUse::Inspect,
                bang: true,
            }),
        )
    });
    let mut c = std::net::TcpStream::connect(addr(&liar)).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c, &mut got);
    let text = String::from_utf8_lossy(&got);
    // The connection closes with at most the head: never the longer body.
    assert!(!text.contains("HELLO"), "{text}");
    let proxy = start_with(proxy_to(addr(&origin)), |p| {
        p.add_stage(
            0,
            Box::new(Upper {
                says: BodyUse::Inspect,
                bang: true,
            }),
        )
    });
    let r = get(addr(&proxy), "/");
    assert!(!r.complete);
    assert!(r.body.len() <= 100_000);
    proxy.shutdown();
    liar.shutdown();
    origin.shutdown();
    s.shutdown();
}

#[test]
fn stage_state_is_per_request_and_carried_across_phases() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let origin = origin(1000);
    let s2 = seen.clone();
    let proxy = start_with(proxy_to(addr(&origin)), move |p| {
        p.add_stage(0, Box::new(Remember { seen: s2 }))
    });
    let a = get(addr(&proxy), "/abc");
    let b = get(addr(&proxy), "/abcdefgh");
    assert_eq!(a.header("x-path-len"), Some("4"));
    assert_eq!(b.header("x-path-len"), Some("9"));
    assert_eq!(a.body.len(), 1000);
    wait_until(|| seen.lock().unwrap().len() == 2);
    // Each request's state counted its own body only.
    assert_eq!(*seen.lock().unwrap(), vec![1000, 1000]);
    proxy.shutdown();
    origin.shutdown();
}

/// The log phase runs after the response was written, so a client may see the response just
/// before it: poll for it (bounded).
fn wait_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("condition not reached");
}

/// Request body filters: counts the bytes it sees, refuses bodies holding `evil`, and
/// upper-cases the body for the handler.
struct BodyGuard {
    seen: Arc<AtomicUsize>,
}

impl Stage for BodyGuard {
    type State = Vec<u8>;
    fn phases(&self) -> Phases {
        Phases::REQUEST_BODY
    }
    fn init(&self) -> Vec<u8> {
        Vec::new()
    }
    fn on_request_body(&self, tail: &mut Vec<u8>, chunk: &mut bext_stage::BodyChunk<'_>) -> Flow {
        self.seen.fetch_add(chunk.data().len(), Ordering::SeqCst);
        // A match across two pieces counts: keep the last bytes of the previous piece.
        tail.extend_from_slice(chunk.data());
        if tail.windows(4).any(|w| w == b"evil") {
            return Flow::Reply(Reply {
                status: 403,
                slug: "forbidden",
                title: "Forbidden",
                retry_after: None,
            });
        }
        let keep = tail.len().saturating_sub(3);
        tail.drain(..keep);
        let upper: Vec<u8> = chunk.data().iter().map(u8::to_ascii_uppercase).collect();
        chunk.replace(&upper);
        Flow::Continue
    }
}

#[test]
fn request_body_stages_inspect_refuse_and_rewrite_bodies_before_the_handler() {
    let origin = origin(0);
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let proxy = start_with(proxy_to(addr(&origin)), move |p| {
        p.add_stage(0, Box::new(BodyGuard { seen: counter }))
    });
    let a = addr(&proxy);
    // Content-Length body: the origin (an echo) receives it rewritten.
    let (r, mut rd) = exchange(
        a,
        b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"HELLO WORLD");
    // Chunked, on the same connection; a match split across two chunks is refused.
    rd.get_mut()
        .write_all(b"POST /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        .unwrap();
    let r = read_response(&mut rd, false);
    assert_eq!(r.body, b"ABCDE");
    let (r, _) = exchange(
        a,
        b"POST /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nev\r\n2\r\nil\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 403);
    assert!(seen.load(Ordering::SeqCst) >= 11 + 5 + 4);
    // A chunked body that arrives in several reads: the head the proxy forwards must still be
    // the client's once the body's bytes have moved through the connection buffer.
    let mut c = connect(a);
    c.write_all(
        b"POST /e/split HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n",
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    c.write_all(b"4\r\nefgh\r\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    c.write_all(b"0\r\n\r\n").unwrap();
    let mut rd = std::io::BufReader::new(c.try_clone().unwrap());
    let r = read_response(&mut rd, false);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"ABCDEFGH");
    // Expect: 100-continue is honoured before the body is read.
    let mut c = connect(a);
    c.write_all(
        b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let mut rd = std::io::BufReader::new(c.try_clone().unwrap());
    assert_eq!(read_response(&mut rd, false).status, 100);
    c.write_all(b"xyz").unwrap();
    assert_eq!(read_response(&mut rd, false).body, b"XYZ");
    // Over the body limit: 413 from the head, the stage never runs.
    let before = seen.load(Ordering::SeqCst);
    let (r, _) = exchange(
        a,
        b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999\r\n\r\n",
    );
    assert_eq!(r.status, 413);
    assert_eq!(seen.load(Ordering::SeqCst), before);
    // Requests without a body do not enter the phase.
    assert_eq!(get(a, "/").status, 200);
    proxy.shutdown();
    origin.shutdown();
}
