//! HTTP/3 end to end, on the driver the suite runs with (`BEXT_TEST_DRIVER`), against two
//! independent clients: quinn's h3 client on tokio, and aioquic's (Python,
//! `tests/h3_aioquic.py`). Most tests run bext in-process from a configuration with
//! `listen … tls { … } http3`; the last ones run the `bext` binary (`bext run FILE`), reloaded
//! through its admin endpoint.

mod common;
#[path = "../modules/tls/tests/support/mod.rs"]
mod pki;

use bytes::{Buf, Bytes};
use h3::error::{Code, StreamError};
use pki::{Leaf, Pki};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

type Client = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

struct H3Server {
    pki: Pki,
    server: bext::Server,
    pki_client: bext_tls::rustls::ClientConfig,
}

/// bext serving `sites` on a TLS listener with HTTP/3 on, for the name `a.test`.
fn serve(tag: &str, sites: &str, edit: impl FnOnce(&mut bext_engine::Pipeline)) -> H3Server {
    serve_on(tag, sites, 1, " http3", edit)
}

/// [`serve`] with `workers` workers, `http3` written after the `tls` block (empty: a TLS
/// listener without HTTP/3).
fn serve_on(
    tag: &str,
    sites: &str,
    workers: usize,
    http3: &str,
    edit: impl FnOnce(&mut bext_engine::Pipeline),
) -> H3Server {
    let pki = Pki::new(tag);
    let (cert, key) = pki.leaf(
        "a",
        Leaf {
            names: &["a.test"],
            ..Leaf::default()
        },
    );
    let text =
        format!("listen 127.0.0.1:0 tls {{ cert \"{cert}\" key \"{key}\" }}{http3}\n{sites}");
    let c = bext_dsl::compile_str("h3.bext", &text).expect("configuration compiles");
    let opts = bext::StartOptions {
        workers: Some(workers),
        ..common::opts()
    };
    let server = bext::start_with_stages(c.config, opts, edit).expect("bext starts");
    let pki_client = pki.client();
    H3Server {
        pki,
        server,
        pki_client,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
}

fn client_endpoint(s: &H3Server) -> quinn::Endpoint {
    client_endpoint_with(&s.pki_client, Duration::from_secs(60))
}

/// A client endpoint trusting `pki_client`'s roots, asking for `idle` as its idle timeout.
fn client_endpoint_with(
    pki_client: &bext_tls::rustls::ClientConfig,
    idle: Duration,
) -> quinn::Endpoint {
    let mut tls = pki_client.clone();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("quic client");
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(Some(idle.try_into().expect("idle")));
    config.transport_config(Arc::new(t));
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).expect("endpoint");
    ep.set_default_client_config(config);
    ep
}

async fn connect(ep: &quinn::Endpoint, a: SocketAddr) -> (quinn::Connection, Client) {
    let conn = ep
        .connect(a, "a.test")
        .expect("connect")
        .await
        .expect("handshake");
    let send = h3_client(conn.clone()).await;
    (conn, send)
}

/// An h3 client over a connection that may still be in its handshake.
async fn h3_client(conn: quinn::Connection) -> Client {
    let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(conn))
        .await
        .expect("h3");
    tokio::spawn(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
    });
    send
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

async fn exchange(
    c: &mut Client,
    method: &str,
    path: &str,
    fields: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Answer, StreamError> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("https://a.test{path}"));
    for (n, v) in fields {
        req = req.header(*n, *v);
    }
    let mut s = c.send_request(req.body(()).unwrap()).await?;
    if let Some(b) = body {
        for piece in b.chunks(64 * 1024) {
            s.send_data(Bytes::copy_from_slice(piece)).await?;
        }
    }
    s.finish().await?;
    let resp = s.recv_response().await?;
    let mut out = Vec::new();
    while let Some(mut d) = s.recv_data().await? {
        while d.has_remaining() {
            let chunk = d.chunk();
            out.extend_from_slice(chunk);
            let n = chunk.len();
            d.advance(n);
        }
    }
    Ok(Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: out,
    })
}

/// Request fields of a table row.
type Fields<'a> = &'a [(&'a str, &'a str)];

/// An upstream that sends each request head it reads to the receiver and answers `ok`.
fn recording_upstream() -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
    use std::io::Write;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx = std::sync::Mutex::new(tx);
    let up = common::upstream(move |mut s| {
        let head = common::read_head(&mut s);
        let _ = tx.lock().unwrap().send(head);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    });
    (up, rx)
}

fn message_error(e: &StreamError) -> bool {
    matches!(e, StreamError::RemoteTerminate { code, .. } if *code == Code::H3_MESSAGE_ERROR)
}

#[test]
fn get_post_static_and_problems_run_the_same_pipeline() {
    let origin = common::origin(16);
    let pki_dir = Pki::new("h3-files");
    let root = pki_dir.dir.0.join("www");
    std::fs::create_dir_all(&root).expect("root");
    let file: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &file).expect("file");
    let sites = format!(
        "upstream app {{ server {} }}\nsite * {{\n    route /hello {{ respond 200 \"hello over h3\"; response_header set x-stage h3 }}\n    route /files/* {{ strip_prefix /files; static \"{}\" }}\n    route /app/* {{ proxy app }}\n}}\n",
        common::addr(&origin),
        root.display()
    );
    let s = serve("h3-basic", &sites, |_| {});
    let a = common::addr(&s.server);
    rt().block_on(async {
        let ep = client_endpoint(&s);
        let (_conn, mut c) = connect(&ep, a).await;
        // A respond route with a response header operation.
        let r = exchange(&mut c, "GET", "/hello", &[], None)
            .await
            .expect("get");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello over h3");
        assert_eq!(r.headers.get("x-stage").unwrap(), "h3");
        assert!(r.headers.get("connection").is_none());
        // A static file, larger than a pipe's buffer and a stream window.
        let r = exchange(&mut c, "GET", "/files/big.bin", &[], None)
            .await
            .expect("file");
        assert_eq!(r.status, 200);
        assert!(r.body == file, "file bytes differ ({} bytes)", r.body.len());
        // 2 MB up through the proxy to an HTTP/1.1 origin and echoed back, with a declared
        // length, then the same without one (chunked towards the origin).
        let up: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
        let len = up.len().to_string();
        let r = exchange(
            &mut c,
            "POST",
            "/app/echo",
            &[("content-length", &len)],
            Some(&up),
        )
        .await
        .expect("post");
        assert_eq!(r.status, 200);
        assert!(r.body == up, "echoed body differs ({} bytes)", r.body.len());
        let r = exchange(&mut c, "POST", "/app/echo", &[], Some(&up[..100_000]))
            .await
            .expect("post chunked");
        assert_eq!(r.status, 200);
        assert!(r.body == up[..100_000], "echoed body differs");
        // No route: the engine's problem+json.
        let r = exchange(&mut c, "GET", "/nowhere", &[], None)
            .await
            .expect("404");
        assert_eq!(r.status, 404);
        assert_eq!(
            r.headers.get("content-type").unwrap(),
            "application/problem+json"
        );
        assert!(String::from_utf8_lossy(&r.body).contains("route-not-found"));
        // HEAD: the length, no body.
        let r = exchange(&mut c, "HEAD", "/hello", &[], None)
            .await
            .expect("head");
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty());
    });
}

#[test]
fn a_hundred_concurrent_streams_on_one_connection() {
    let s = serve(
        "h3-streams",
        "site * { route /* { respond 200 \"stream\" } }\n",
        |_| {},
    );
    let a = common::addr(&s.server);
    rt().block_on(async {
        let ep = client_endpoint(&s);
        let (_conn, c) = connect(&ep, a).await;
        let mut tasks = Vec::new();
        for i in 0..100 {
            let mut c = c.clone();
            tasks.push(tokio::spawn(async move {
                exchange(&mut c, "GET", &format!("/n{i}"), &[], None).await
            }));
        }
        for t in tasks {
            let r = t.await.expect("task").expect("request");
            assert_eq!(r.status, 200);
            assert_eq!(r.body, b"stream");
        }
    });
}

#[test]
fn malformed_requests_are_stream_errors_and_the_connection_lives_on() {
    let origin = common::origin(16);
    let sites = format!(
        "upstream app {{ server {} }}\nsite * {{\n    route /app/* {{ proxy app }}\n    route /* {{ respond 200 \"fine\" }}\n}}\n",
        common::addr(&origin)
    );
    let s = serve("h3-hostile", &sites, |_| {});
    let a = common::addr(&s.server);
    rt().block_on(async {
        let ep = client_endpoint(&s);
        let (_conn, mut c) = connect(&ep, a).await;
        let table: &[(&str, Fields, Option<&[u8]>)] = &[
            ("/x", &[("connection", "keep-alive")], None),
            ("/x", &[("transfer-encoding", "chunked")], None),
            ("/x", &[("keep-alive", "timeout=5")], None),
            ("/x", &[("upgrade", "websocket")], None),
            ("/x", &[("te", "gzip")], None),
            // DATA longer and shorter than the declared length, to a route that reads the
            // body (one that does not answers at once and leaves it unread).
            ("/app/echo", &[("content-length", "3")], Some(b"toolong")),
            ("/app/echo", &[("content-length", "30")], Some(b"short")),
        ];
        for (path, fields, body) in table {
            match exchange(&mut c, "POST", path, fields, *body).await {
                Err(e) => assert!(message_error(&e), "{fields:?}: {e:?}"),
                Ok(r) => panic!("{fields:?} answered {}", r.status),
            }
        }
        // (A Host that disagrees with :authority is refused too, see bridge.rs's unit tests:
        // quinn's client will not send one.)
        // What HTTP/1.1 refuses is refused the same way: a field name the strict parser
        // rejects would not survive QPACK, so an over-long target stands for the limits.
        let long = format!("/{}", "a".repeat(9000));
        let r = exchange(&mut c, "GET", &long, &[], None)
            .await
            .expect("414");
        assert_eq!(r.status, 414);
        assert_eq!(
            r.headers.get("content-type").unwrap(),
            "application/problem+json"
        );
        let r = exchange(&mut c, "GET", "/after", &[], None)
            .await
            .expect("after");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"fine");
    });
}

#[test]
fn a_stream_reset_mid_body_leaves_the_connection_serving() {
    let origin = common::origin(16);
    let sites = format!(
        "upstream app {{ server {} }}\nsite * {{ route /* {{ proxy app }} }}\n",
        common::addr(&origin)
    );
    let s = serve("h3-reset", &sites, |_| {});
    let a = common::addr(&s.server);
    rt().block_on(async {
        let ep = client_endpoint(&s);
        let (_conn, mut c) = connect(&ep, a).await;
        let req = http::Request::builder()
            .method("POST")
            .uri("https://a.test/echo")
            .header("content-length", "1000000")
            .body(())
            .unwrap();
        let mut st = c.send_request(req).await.expect("request");
        st.send_data(Bytes::from(vec![b'x'; 100_000]))
            .await
            .expect("data");
        st.stop_stream(Code::H3_REQUEST_CANCELLED);
        drop(st);
        for i in 0..3 {
            let r = exchange(&mut c, "GET", &format!("/after{i}"), &[], None)
                .await
                .expect("after the reset");
            assert_eq!(r.status, 200);
        }
    });
}

#[test]
fn a_client_that_moves_to_a_new_port_keeps_its_connection() {
    let s = serve(
        "h3-migrate",
        "site * { route /* { respond 200 \"moved\" } }\n",
        |_| {},
    );
    let a = common::addr(&s.server);
    rt().block_on(async {
        let ep = client_endpoint(&s);
        let (conn, mut c) = connect(&ep, a).await;
        let r = exchange(&mut c, "GET", "/before", &[], None)
            .await
            .expect("before");
        assert_eq!(r.status, 200);
        let before = ep.local_addr().expect("addr");
        let fresh = std::net::UdpSocket::bind("127.0.0.1:0").expect("socket");
        ep.rebind(fresh).expect("rebind");
        assert_ne!(ep.local_addr().expect("addr").port(), before.port());
        for i in 0..3 {
            let r = exchange(&mut c, "GET", &format!("/after{i}"), &[], None)
                .await
                .expect("after the move");
            assert_eq!(r.status, 200);
            assert_eq!(r.body, b"moved");
        }
        assert!(conn.close_reason().is_none());
    });
}

#[test]
fn the_idle_timeout_is_the_servers_limit() {
    let s = serve_on(
        "h3-idle",
        "site * { route /* { respond 200 \"idle\" } }\n",
        1,
        " http3 { idle_timeout 1s }",
        |_| {},
    );
    let a = common::addr(&s.server);
    rt().block_on(async {
        let ep = client_endpoint(&s);
        let (conn, mut c) = connect(&ep, a).await;
        let r = exchange(&mut c, "GET", "/", &[], None).await.expect("get");
        assert_eq!(r.status, 200);
        // The client asked for 60 s; the connection ends by the server's 1 s, negotiated down.
        let reason = conn.closed().await;
        assert!(
            matches!(reason, quinn::ConnectionError::TimedOut),
            "{reason:?}"
        );
    });
}

/// aioquic (Python) importable: `scripts/setup-debian.sh` installs it.
fn have_aioquic() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import aioquic"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn aioquic_client_gets_posts_and_is_refused_like_quinns() {
    if !have_aioquic() {
        eprintln!("aioquic not installed (scripts/setup-debian.sh installs it): skipped");
        return;
    }
    let origin = common::origin(16);
    let sites = format!(
        "upstream app {{ server {} }}\nsite * {{\n    route /hello {{ respond 200 \"hello aioquic\" }}\n    route /app/* {{ proxy app }}\n}}\n",
        common::addr(&origin)
    );
    let s = serve("h3-aioquic", &sites, |_| {});
    let a = common::addr(&s.server);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h3_aioquic.py");
    let mut args = vec![
        script.to_string(),
        "127.0.0.1".into(),
        a.port().to_string(),
        "a.test".into(),
        s.pki.ca_file.clone(),
        "GET:/hello".into(),
        "POST:/app/echo:1500000".into(),
    ];
    // 100 concurrent streams on the connection.
    args.extend((0..100).map(|i| format!("GET:/hello?n={i}")));
    // Malformed: connection-specific fields, a body longer than its Content-Length.
    args.push("GET:/hello:-:connection=close".into());
    args.push("GET:/hello:-:transfer-encoding=chunked".into());
    args.push("POST:/app/echo:5:content-length=3".into());
    let out = std::process::Command::new("python3")
        .args(&args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "aioquic client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 105);
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["length"], 13);
    // The echoed body is the one sent.
    assert_eq!(lines[1]["status"], 200);
    assert_eq!(lines[1]["length"], 1_500_000);
    assert_eq!(lines[1]["sha256"], lines[1]["sent_sha256"]);
    for l in &lines[2..102] {
        assert_eq!(l["status"], 200);
        assert_eq!(l["length"], 13);
    }
    // H3_MESSAGE_ERROR (0x10e), RFC 9114 §8.1.
    for l in &lines[102..] {
        assert_eq!(l["error"], 0x10e, "{l}");
    }
}

#[test]
fn connections_spread_over_cores_and_stay_on_theirs_when_clients_move() {
    let s = serve_on(
        "h3-cores",
        "site * { route /* { respond 200 \"core\" } }\n",
        4,
        " http3",
        |_| {},
    );
    let a = common::addr(&s.server);
    rt().block_on(async {
        // Eight clients from eight ports: the kernel's hash spreads their first packets.
        let mut clients = Vec::new();
        for _ in 0..8 {
            let ep = client_endpoint(&s);
            let (conn, c) = connect(&ep, a).await;
            clients.push((ep, conn, c));
        }
        for (ep, conn, c) in &mut clients {
            let r = exchange(c, "GET", "/before", &[], None)
                .await
                .expect("before");
            assert_eq!(r.status, 200);
            // A new port hashes anywhere; the connection id still names the owner.
            let fresh = std::net::UdpSocket::bind("127.0.0.1:0").expect("socket");
            ep.rebind(fresh).expect("rebind");
            for i in 0..3 {
                let r = exchange(c, "GET", &format!("/after{i}"), &[], None)
                    .await
                    .expect("after the move");
                assert_eq!(r.body, b"core");
            }
            assert!(conn.close_reason().is_none());
        }
    });
    // 32 requests, served by more than one worker: the connections were spread.
    let per_worker: Vec<u64> = s.server.stats().iter().map(|w| w.2).collect();
    assert_eq!(per_worker.iter().sum::<u64>(), 32, "{per_worker:?}");
    assert!(
        per_worker.iter().filter(|n| **n > 0).count() > 1,
        "{per_worker:?}"
    );
}

/// A GET over TLS on TCP: the response head's fields, lower-cased.
fn tcp_tls_fields(s: &H3Server, a: SocketAddr) -> Vec<(String, String)> {
    tls_get(&s.pki_client, a).0
}

/// `GET /` over TLS on TCP to `a`, for `a.test`: the response's fields (names in lower case)
/// and its body.
fn tls_get(
    client: &bext_tls::rustls::ClientConfig,
    a: SocketAddr,
) -> (Vec<(String, String)>, String) {
    use std::io::{Read, Write};
    let name = bext_tls::rustls::pki_types::ServerName::try_from("a.test").expect("name");
    let conn =
        bext_tls::rustls::ClientConnection::new(Arc::new(client.clone()), name).expect("client");
    let tcp = std::net::TcpStream::connect(a).expect("connect");
    let mut tls = bext_tls::rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let fields = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    (fields, body.to_string())
}

#[test]
fn tls_over_tcp_advertises_http3_on_the_same_port_and_only_there() {
    let sites = "site * { route /* { respond 200 \"tcp\" } }\n";
    let s = serve("h3-altsvc", sites, |_| {});
    let a = common::addr(&s.server);
    let fields = tcp_tls_fields(&s, a);
    let alt: Vec<&String> = (fields.iter())
        .filter(|(n, _)| n == "alt-svc")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(alt, [&format!("h3=\":{}\"; ma=86400", a.port())]);
    // The same listener without HTTP/3 advertises nothing.
    let plain = serve_on("h3-altsvc-off", sites, 1, "", |_| {});
    let fields = tcp_tls_fields(&plain, common::addr(&plain.server));
    assert!(fields.iter().all(|(n, _)| n != "alt-svc"), "{fields:?}");
}

#[test]
fn a_reload_swaps_the_pipeline_under_a_live_connection() {
    let sites = |body: &str| format!("site * {{ route /* {{ respond 200 \"{body}\" }} }}\n");
    let s = serve("h3-reload", &sites("one"), |_| {});
    let a = common::addr(&s.server);
    let (cert, key) = (
        format!("{}/a.pem", s.pki.dir.0.display()),
        format!("{}/a.key", s.pki.dir.0.display()),
    );
    rt().block_on(async {
        let ep = client_endpoint(&s);
        let (conn, mut c) = connect(&ep, a).await;
        let r = exchange(&mut c, "GET", "/", &[], None)
            .await
            .expect("before");
        assert_eq!(r.body, b"one");
        let text = format!(
            "listen 127.0.0.1:0 tls {{ cert \"{cert}\" key \"{key}\" }} http3\n{}",
            sites("two")
        );
        let config = bext_dsl::compile_str("h3.bext", &text)
            .expect("compiles")
            .config;
        let p = bext::compile_carrying(&config, 0, &s.server.limits(), &s.server.tls_carry())
            .expect("pipeline");
        s.server.control().reload(p).expect("reload");
        let r = exchange(&mut c, "GET", "/", &[], None)
            .await
            .expect("after");
        assert_eq!(r.body, b"two");
        assert!(conn.close_reason().is_none(), "the connection survived");
        // A new connection after the reload too.
        let (_conn2, mut c2) = connect(&ep, a).await;
        let r = exchange(&mut c2, "GET", "/", &[], None).await.expect("new");
        assert_eq!(r.body, b"two");
    });
}

#[test]
fn a_draining_server_sends_goaway_and_finishes_the_request_in_flight() {
    use std::io::Write;
    use std::sync::mpsc;
    let (arrived_tx, arrived) = mpsc::channel::<()>();
    let (release, release_rx) = mpsc::channel::<()>();
    let arrived_tx = std::sync::Mutex::new(arrived_tx);
    let release_rx = std::sync::Mutex::new(release_rx);
    let slow = common::upstream(move |mut s| {
        let _ = common::read_head(&mut s);
        let _ = arrived_tx.lock().unwrap().send(());
        let _ = release_rx.lock().unwrap().recv();
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone");
    });
    let sites = format!(
        "upstream slow {{ server {slow} }}\nsite * {{\n    route /slow {{ proxy slow }}\n    route /* {{ respond 200 \"fast\" }}\n}}\n"
    );
    let s = serve("h3-drain", &sites, |_| {});
    let a = common::addr(&s.server);
    let runtime = rt();
    let ep = runtime.block_on(async { client_endpoint(&s) });
    let H3Server {
        pki: _pki, server, ..
    } = s;
    runtime.block_on(async {
        let (conn, c) = connect(&ep, a).await;
        let mut c1 = c.clone();
        let in_flight =
            tokio::spawn(async move { exchange(&mut c1, "GET", "/slow", &[], None).await });
        // The runtime runs the request while this waits for the upstream to see it.
        let mut reached = false;
        for _ in 0..1000 {
            if arrived.try_recv().is_ok() {
                reached = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(reached, "the request reached the upstream");
        let stopping = std::thread::spawn(move || server.shutdown());
        // New requests are refused once the GOAWAY arrived (bounded wait for it).
        let mut c2 = c.clone();
        let mut refused = false;
        for _ in 0..500 {
            if exchange(&mut c2, "GET", "/fast", &[], None).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "a request after GOAWAY was served");
        release.send(()).expect("release");
        let r = in_flight.await.expect("task").expect("in-flight request");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"done");
        let reason = conn.closed().await;
        assert!(
            matches!(&reason, quinn::ConnectionError::ApplicationClosed(c) if c.error_code == 0x100u32.into()),
            "{reason:?}"
        );
        stopping.join().expect("shutdown");
    });
}

#[test]
fn proxied_requests_carry_the_https_scheme_and_canonical_fields() {
    let (up, rx) = recording_upstream();
    let sites = format!("upstream app {{ server {up} }}\nsite * {{ route /* {{ proxy app }} }}\n");
    let s = serve("h3-proxied", &sites, |_| {});
    let a = common::addr(&s.server);
    rt().block_on(async {
        let ep = client_endpoint(&s);
        let (_conn, mut c) = connect(&ep, a).await;
        let fields = [("cookie", "a=1"), ("cookie", "b=2"), ("x-client", "yes")];
        let r = exchange(&mut c, "GET", "/p?q=1", &fields, None)
            .await
            .expect("get");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"ok");
    });
    let head = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("upstream head");
    let lower = head.to_ascii_lowercase();
    assert!(head.starts_with("GET /p?q=1 HTTP/1.1\r\n"), "{head}");
    assert!(lower.contains("\r\nhost: a.test\r\n"), "{head}");
    assert!(lower.contains("\r\nx-forwarded-proto: https\r\n"), "{head}");
    assert!(lower.contains("\r\ncookie: a=1; b=2\r\n"), "{head}");
    assert!(lower.contains("\r\nx-client: yes\r\n"), "{head}");
}

#[test]
fn quic_connections_count_against_the_connection_cap() {
    let s = serve(
        "h3-cap",
        "site * { route /* { respond 200 \"capped\" } }\n",
        |p| p.client.max_connections = 2,
    );
    let a = common::addr(&s.server);
    rt().block_on(async {
        let ep = client_endpoint(&s);
        let (first, _c1) = connect(&ep, a).await;
        let (_second, mut c2) = connect(&ep, a).await;
        let r = exchange(&mut c2, "GET", "/", &[], None)
            .await
            .expect("second");
        assert_eq!(r.body, b"capped");
        let third = ep.connect(a, "a.test").expect("connect").await;
        assert!(
            matches!(&third, Err(quinn::ConnectionError::ConnectionClosed(c))
                if c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED),
            "{third:?}"
        );
        // Room again once a connection has closed (bounded wait for the server to see it).
        first.close(0x100u32.into(), b"");
        let mut served = false;
        for _ in 0..100 {
            if let Ok(conn) = ep.connect(a, "a.test").expect("connect").await {
                drop(conn);
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(served, "a connection was accepted after one closed");
    });
}

/// `bext run FILE` on the suite's driver, its configuration written to a file of `pki`'s
/// directory; stopped (SIGTERM, then waited for) when dropped.
struct Run {
    child: std::process::Child,
    file: std::path::PathBuf,
    /// The first `listening on` address.
    addr: SocketAddr,
    /// The `admin on` address, when the file has one.
    admin: Option<SocketAddr>,
}

impl Run {
    fn start(pki: &Pki, text: &str) -> Run {
        use std::io::BufRead;
        let file = pki.dir.0.join("bext.bext");
        std::fs::write(&file, text).expect("write the configuration");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bext"))
            .arg("run")
            .arg(&file)
            .args(["--no-pin", "--driver", common::driver_arg()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn bext");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let (mut addr, mut admin) = (None, None);
        let mut line = String::new();
        while out.read_line(&mut line).expect("bext's stdout") > 0 {
            let l = line.trim();
            if let Some(a) = l.strip_prefix("listening on ") {
                addr = addr.or(a.parse().ok());
            } else if let Some(a) = l.strip_prefix("admin on ") {
                admin = a.parse().ok();
            }
            if admin.is_some() || (addr.is_some() && !text.contains("admin ")) {
                break;
            }
            line.clear();
        }
        Run {
            child,
            file,
            addr: addr.expect("a `listening on` line"),
            admin,
        }
    }

    /// Write `text` to the file and reload it through the admin endpoint; the new generation.
    fn reload(&self, text: &str) -> u64 {
        use std::io::{BufReader, Write};
        std::fs::write(&self.file, text).expect("write the configuration");
        let mut s = common::connect(self.admin.expect("an admin endpoint"));
        write!(
            s,
            "POST /reload HTTP/1.1\r\nHost: localhost\r\nX-Bext-Admin: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let resp = common::read_response(&mut BufReader::new(s), false);
        assert_eq!(resp.status, 200, "reload: {}", resp.text());
        let v: serde_json::Value = serde_json::from_str(&resp.text()).expect("JSON");
        v["generation"].as_u64().expect("generation")
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A certificate for `a.test` in a fresh PKI, its client configuration, and the `tls` block
/// that serves it.
fn run_pki(tag: &str) -> (Pki, bext_tls::rustls::ClientConfig, String) {
    let pki = Pki::new(tag);
    let (cert, key) = pki.leaf(
        "a",
        Leaf {
            names: &["a.test"],
            ..Leaf::default()
        },
    );
    let client = pki.client();
    (
        pki,
        client,
        format!("tls {{ cert \"{cert}\" key \"{key}\" }}"),
    )
}

#[test]
fn bext_run_serves_http3_from_a_file_to_both_clients() {
    let origin = common::origin(16);
    let (pki, client, tls) = run_pki("h3-run");
    let log = pki.dir.0.join("access.log");
    let text = format!(
        "global {{\n    workers 2\n    access_log \"{}\" combined\n}}\nlisten 127.0.0.1:0 {tls} http3 {{\n    max_streams 150\n    idle_timeout 3s\n}}\nupstream app {{ server {} }}\nsite * {{\n    route /hello {{ respond 200 \"hello from a file\" }}\n    route /app/* {{ proxy app }}\n}}\n",
        log.display(),
        common::addr(&origin)
    );
    let run = Run::start(&pki, &text);
    let a = run.addr;
    rt().block_on(async {
        let ep = client_endpoint_with(&client, Duration::from_secs(60));
        let (conn, mut c) = connect(&ep, a).await;
        let r = exchange(&mut c, "GET", "/hello", &[], None)
            .await
            .expect("get");
        assert_eq!((r.status, &r.body[..]), (200, &b"hello from a file"[..]));
        let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let r = exchange(&mut c, "POST", "/app/echo", &[], Some(&big))
            .await
            .expect("post");
        assert_eq!(r.status, 200);
        assert!(r.body == big, "the echo is the body sent");
        // The file's idle timeout (3 s), not the client's 60 s, ends the quiet connection.
        let reason = conn.closed().await;
        assert!(
            matches!(reason, quinn::ConnectionError::TimedOut),
            "{reason:?}"
        );
    });
    if have_aioquic() {
        aioquic_against_run(&pki, a);
    } else {
        eprintln!("aioquic not installed (scripts/setup-debian.sh installs it): skipped");
    }
    // Stopped, its access log is flushed: the requests are logged as HTTP/3.
    drop(run);
    let log = std::fs::read_to_string(&log).expect("the access log");
    assert!(log.contains("\"GET /hello HTTP/3\" 200 17 "), "{log}");
    assert!(
        log.contains("\"POST /app/echo HTTP/3\" 200 1000000 "),
        "{log}"
    );
}

/// aioquic's client against `bext run` at `a`: a GET, a 1.5 MB POST echoed, 100 concurrent
/// streams and a refused field.
fn aioquic_against_run(pki: &Pki, a: SocketAddr) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h3_aioquic.py");
    let mut args = vec![
        script.to_string(),
        "127.0.0.1".into(),
        a.port().to_string(),
        "a.test".into(),
        pki.ca_file.clone(),
        "GET:/hello".into(),
        "POST:/app/echo:1500000".into(),
    ];
    args.extend((0..100).map(|i| format!("GET:/hello?n={i}")));
    args.push("GET:/hello:-:keep-alive=1".into());
    let out = std::process::Command::new("python3")
        .args(&args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "aioquic client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 103);
    assert_eq!(
        (lines[0]["status"].as_u64(), lines[0]["length"].as_u64()),
        (Some(200), Some(17))
    );
    assert_eq!(lines[1]["status"], 200);
    assert_eq!(lines[1]["length"], 1_500_000);
    assert_eq!(lines[1]["sha256"], lines[1]["sent_sha256"]);
    for l in &lines[2..102] {
        assert_eq!(l["status"], 200, "{l}");
    }
    // A connection-specific field: H3_MESSAGE_ERROR (0x10e).
    assert_eq!(lines[102]["error"], 0x10e, "{}", lines[102]);
}

#[test]
fn a_reload_of_bext_run_starts_http3_on_an_added_listener_and_drains_a_removed_one() {
    let (pki, client, tls) = run_pki("h3-run-reload");
    // The port of the listener the reload adds, held (TCP, SO_REUSEPORT, never listening)
    // so that no other test takes it meanwhile.
    let (port, _held) = common::reserved();
    let head = "global {\n    admin 127.0.0.1:0\n    workers 2\n}\nlisten 127.0.0.1:0\n";
    let site = |body: &str| format!("site * {{ route /* {{ respond 200 \"{body}\" }} }}\n");
    let run = Run::start(&pki, &format!("{head}{}", site("one")));
    let added = format!("{head}listen {port} {tls} http3\n{}", site("two"));
    assert_eq!(run.reload(&added), 2);
    rt().block_on(async {
        let ep = client_endpoint_with(&client, Duration::from_secs(60));
        let (conn, mut c) = connect(&ep, port).await;
        let r = exchange(&mut c, "GET", "/", &[], None).await.expect("get");
        assert_eq!(r.body, b"two");
        let (fields, _) = tls_get(&client, port);
        let alt = format!("h3=\":{}\"; ma=86400", port.port());
        assert!(fields.contains(&("alt-svc".into(), alt)), "{fields:?}");
        // The same listener without `http3`: the live connection is told GOAWAY and closes
        // with H3_NO_ERROR (0x100); the TCP side keeps serving.
        let removed = format!("{head}listen {port} {tls}\n{}", site("three"));
        assert_eq!(run.reload(&removed), 3);
        let reason = tokio::time::timeout(Duration::from_secs(30), conn.closed())
            .await
            .expect("the connection closes once drained");
        assert!(
            matches!(&reason, quinn::ConnectionError::ApplicationClosed(c)
                if c.error_code == quinn::VarInt::from_u32(0x100)),
            "{reason:?}"
        );
        // No new QUIC connection is served on the port (the client gives up after 2 s).
        let ep2 = client_endpoint_with(&client, Duration::from_secs(2));
        let refused = ep2.connect(port, "a.test").expect("connect").await;
        assert!(refused.is_err(), "{refused:?}");
    });
    // The TCP side serves the new generation and no longer advertises HTTP/3.
    let (fields, body) = tls_get(&client, port);
    assert_eq!(body, "three");
    assert!(fields.iter().all(|(n, _)| n != "alt-svc"), "{fields:?}");
    drop(run);
}

#[test]
fn a_response_sent_before_the_whole_body_asks_the_client_to_stop_sending() {
    let s = serve(
        "h3-stop-sending",
        "site * { route /* { respond 404 \"not here\" } }\n",
        |_| {},
    );
    let a = common::addr(&s.server);
    rt().block_on(async {
        let ep = client_endpoint(&s);
        let (_conn, mut c) = connect(&ep, a).await;
        let req = http::Request::builder()
            .method("POST")
            .uri("https://a.test/upload")
            .body(())
            .unwrap();
        let mut st = c.send_request(req).await.expect("request");
        let piece = Bytes::from(vec![b'x'; 64 * 1024]);
        st.send_data(piece.clone()).await.expect("first piece");
        // The whole response arrives while the body is still being sent (never finished).
        let resp = st.recv_response().await.expect("response");
        assert_eq!(resp.status(), 404);
        let mut body = Vec::new();
        while let Some(mut d) = st.recv_data().await.expect("data") {
            body.extend_from_slice(&d.copy_to_bytes(d.remaining()));
        }
        assert_eq!(body, b"not here");
        // Then STOP_SENDING with H3_NO_ERROR (RFC 9114 §4.1) ends the upload: without it
        // the client would block once the flow-control window (1 MiB) is full.
        let stopped = tokio::time::timeout(Duration::from_secs(30), async {
            for _ in 0..1024 {
                if let Err(e) = st.send_data(piece.clone()).await {
                    return Some(e);
                }
            }
            None
        })
        .await
        .expect("the upload is stopped, not left blocked");
        assert!(
            matches!(&stopped, Some(StreamError::RemoteTerminate { code, .. }) if *code == Code::H3_NO_ERROR),
            "{stopped:?}"
        );
        // The connection serves on.
        let r = exchange(&mut c, "GET", "/", &[], None).await.expect("next");
        assert_eq!(r.status, 404);
    });
}

#[test]
fn trailers_are_dropped_both_ways_as_over_http11() {
    use std::io::{Read, Write};
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let tx = std::sync::Mutex::new(tx);
    let up = common::upstream(move |mut s| {
        // The whole request: its head and chunked body up to the empty trailer section.
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        while !got.ends_with(b"\r\n0\r\n\r\n") {
            match s.read(&mut b) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&b[..n]),
            }
        }
        if got.is_empty() {
            // A connection that carried no request (closed before one was sent).
            return;
        }
        let _ = tx.lock().unwrap().send(got);
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\nx-checksum: abc\r\n\r\n",
        );
    });
    let sites = format!("upstream app {{ server {up} }}\nsite * {{ route /* {{ proxy app }} }}\n");
    let s = serve("h3-trailers", &sites, |_| {});
    let a = common::addr(&s.server);
    rt().block_on(async {
        let ep = client_endpoint(&s);
        let (_conn, mut c) = connect(&ep, a).await;
        let req = http::Request::builder()
            .method("POST")
            .uri("https://a.test/t")
            .body(())
            .unwrap();
        let mut st = c.send_request(req).await.expect("request");
        st.send_data(Bytes::from_static(b"hello"))
            .await
            .expect("data");
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-trailer", "t1".parse().unwrap());
        trailers.insert("content-length", "999".parse().unwrap());
        st.send_trailers(trailers).await.expect("trailers");
        st.finish().await.expect("finish");
        let resp = st.recv_response().await.expect("response");
        assert_eq!(resp.status(), 200);
        let mut body = Vec::new();
        while let Some(mut d) = st.recv_data().await.expect("data") {
            body.extend_from_slice(&d.copy_to_bytes(d.remaining()));
        }
        assert_eq!(body, b"ok");
        // The upstream's trailer is not passed on.
        let t = st.recv_trailers().await.expect("end of the response");
        assert!(t.is_none(), "{t:?}");
    });
    let got = rx.recv_timeout(Duration::from_secs(10)).expect("upstream");
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    // The body arrived whole; the client's trailers reached neither the head nor the
    // trailer section.
    assert!(text.ends_with("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), "{text}");
    assert!(
        !text.contains("x-trailer") && !text.contains("999"),
        "{text}"
    );
}

#[test]
fn a_reload_that_cannot_bind_http3s_udp_port_changes_nothing() {
    let sites = |body: &str| format!("site * {{ route /* {{ respond 200 \"{body}\" }} }}\n");
    let s = serve_on("h3-reload-busy", &sites("one"), 2, "", |_| {});
    let a = common::addr(&s.server);
    let (cert, key) = (
        format!("{}/a.pem", s.pki.dir.0.display()),
        format!("{}/a.key", s.pki.dir.0.display()),
    );
    let text = format!(
        "listen 127.0.0.1:0 tls {{ cert \"{cert}\" key \"{key}\" }} http3\n{}",
        sites("two")
    );
    let config = bext_dsl::compile_str("h3.bext", &text)
        .expect("compiles")
        .config;
    let pipeline = || {
        bext::compile_carrying(&config, 0, &s.server.limits(), &s.server.tls_carry())
            .expect("pipeline")
    };
    // The port's UDP side held without SO_REUSEPORT: HTTP/3 cannot start there.
    let busy = std::net::UdpSocket::bind(a).expect("udp");
    let err = s.server.control().reload(pipeline()).expect_err("refused");
    assert!(err.to_string().contains("udp"), "{err}");
    let (fields, body) = tls_get(&s.pki_client, a);
    assert_eq!(body, "one", "the running configuration is kept");
    assert!(fields.iter().all(|(n, _)| n != "alt-svc"), "{fields:?}");
    // Freed, the same reload starts HTTP/3 on the kept listener.
    drop(busy);
    s.server.control().reload(pipeline()).expect("reload");
    rt().block_on(async {
        let ep = client_endpoint(&s);
        let (_conn, mut c) = connect(&ep, a).await;
        let r = exchange(&mut c, "GET", "/", &[], None).await.expect("get");
        assert_eq!(r.body, b"two");
    });
}

/// A client endpoint that keeps its TLS sessions and may send 0-RTT data with them.
fn early_client_endpoint(s: &H3Server) -> quinn::Endpoint {
    let mut tls = s.pki_client.clone();
    tls.enable_early_data = true;
    client_endpoint_with(&tls, Duration::from_secs(60))
}

/// A first connection, whose session the client keeps (its ticket arrives after the
/// handshake: one request is answered before it closes).
async fn resumable_session(ep: &quinn::Endpoint, a: SocketAddr) {
    let (conn, mut c) = connect(ep, a).await;
    let r = exchange(&mut c, "GET", "/", &[], None).await.expect("get");
    assert_eq!(r.status, 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    conn.close(0u32.into(), b"");
}

/// `early_data on`: a resumed client's requests in 0-RTT data are served for safe methods,
/// marked `Early-Data: 1` for the origin (RFC 8470 §5.1), and refused 425 for others (§5.2);
/// after the handshake the same client's POST goes through unmarked. Without the setting the
/// server's tickets allow no early data, so the client cannot send any.
#[test]
fn early_data_serves_safe_methods_marked_and_answers_425_to_others() {
    let (up, rx) = recording_upstream();
    let sites = format!("upstream app {{ server {up} }}\nsite * {{ route /* {{ proxy app }} }}\n");
    let s = serve_on("h3-early", &sites, 1, " http3 { early_data on }", |_| {});
    let a = common::addr(&s.server);
    rt().block_on(async {
        let ep = early_client_endpoint(&s);
        resumable_session(&ep, a).await;
        let first = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("first head");
        assert!(
            !first.to_ascii_lowercase().contains("early-data"),
            "{first}"
        );
        // The server sees the 0-RTT requests before the client's Finished, unless the
        // scheduler lets the handshake complete first: then they are not early, and the
        // round is repeated.
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds <= 5, "no request was taken as early in five rounds");
            let connecting = ep.connect(a, "a.test").expect("connect");
            let Ok((conn, _accepted)) = connecting.into_0rtt() else {
                panic!("the resumed session allows no 0-RTT data");
            };
            let mut c = h3_client(conn.clone()).await;
            let mut c2 = c.clone();
            let post = tokio::spawn(async move {
                exchange(&mut c2, "POST", "/p", &[], Some(b"body"))
                    .await
                    .expect("early post")
            });
            let get = exchange(&mut c, "GET", "/g", &[], None)
                .await
                .expect("early get");
            let post = post.await.expect("post task");
            assert_eq!(get.status, 200);
            assert_eq!(get.body, b"ok");
            let head = rx.recv_timeout(Duration::from_secs(10)).expect("get head");
            let lower = head.to_ascii_lowercase();
            if post.status == 200 {
                // The POST came after the handshake: it reached the origin too, unmarked.
                let more = rx.recv_timeout(Duration::from_secs(10)).expect("post head");
                let post_head = if head.starts_with("POST") {
                    &head
                } else {
                    &more
                };
                assert!(post_head.starts_with("POST /p "), "{post_head}");
                assert!(
                    !post_head.to_ascii_lowercase().contains("early-data"),
                    "{post_head}"
                );
                conn.close(0u32.into(), b"");
                continue;
            }
            assert_eq!(post.status, 425);
            assert_eq!(
                post.headers["content-type"], "application/problem+json",
                "{:?}",
                post.headers
            );
            assert!(String::from_utf8_lossy(&post.body).contains("too-early"));
            assert!(head.starts_with("GET /g "), "{head}");
            assert!(lower.contains("\r\nearly-data: 1\r\n"), "{head}");
            // Once the handshake is complete, the POST goes through, unmarked.
            _accepted.await;
            let again = exchange(&mut c, "POST", "/p", &[], Some(b"body"))
                .await
                .expect("post after the handshake");
            assert_eq!(again.status, 200);
            let head = rx.recv_timeout(Duration::from_secs(10)).expect("post head");
            assert!(head.starts_with("POST /p "), "{head}");
            assert!(!head.to_ascii_lowercase().contains("early-data"), "{head}");
            break;
        }
        assert!(
            rx.try_recv().is_err(),
            "the refused POST reached the origin"
        );
    });

    // Without `early_data`, tickets allow none: the client cannot start in 0-RTT.
    let s = serve(
        "h3-no-early",
        "site * { route /* { respond 200 \"ok\" } }\n",
        |_| {},
    );
    let a = common::addr(&s.server);
    rt().block_on(async {
        let ep = early_client_endpoint(&s);
        resumable_session(&ep, a).await;
        let connecting = ep.connect(a, "a.test").expect("connect");
        assert!(
            connecting.into_0rtt().is_err(),
            "0-RTT offered without early_data"
        );
    });
}
