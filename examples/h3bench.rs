//! Server CPU per request, keep-alive HTTP/3 next to keep-alive HTTP/1.1 over TLS on TCP, at
//! a fixed request rate, in one process and one run (bench/scripts/h3.sh runs it).
//!
//! bext runs in-process with one worker, pinned to CPU 0, serving a small `respond` body on
//! a TLS listener that also serves HTTP/3 (`listen … tls { … } http3`). The clients run on
//! other threads, all pinned to the client CPU (default 1) so that the worker has its CPU to
//! itself: quinn's h3 client on tokio for HTTP/3, rustls over blocking TCP sockets for TLS.
//! The server's cost is the worker thread's time on a CPU (`/proc/self/task/TID/schedstat`,
//! nanoseconds) over each measured window, divided by the responses completed in it;
//! handshakes happen before the window. Rounds alternate the two protocols.
//!
//! ```text
//! cargo run --release --example h3bench -- [--rate 2000] [--seconds 5] [--runs 5]
//!     [--conns 10] [--body 100] [--client-cpu 1] [--only tls|h3]
//! ```
//!
//! Prints one TSV line per round (protocol, run, requests, errors, cpu_ms, us_per_request),
//! then the medians and their ratio.

use bytes::{Buf, Bytes};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    rate: u64,
    seconds: u64,
    runs: usize,
    conns: usize,
    body: usize,
    client_cpu: u64,
    /// The protocols measured, in round order (`--only tls` or `--only h3` for one, to
    /// profile it).
    protocols: Vec<&'static str>,
}

fn args() -> Args {
    let mut a = Args {
        rate: 2000,
        seconds: 5,
        runs: 5,
        conns: 10,
        body: 100,
        client_cpu: 1,
        protocols: vec!["tls", "h3"],
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < v.len() {
        if v[i] == "--only" {
            a.protocols = match v[i + 1].as_str() {
                "tls" => vec!["tls"],
                "h3" => vec!["h3"],
                o => panic!("--only tls or --only h3, not {o}"),
            };
            i += 2;
            continue;
        }
        let n: u64 = v[i + 1].parse().expect("a number after each option");
        match v[i].as_str() {
            "--rate" => a.rate = n.max(1),
            "--seconds" => a.seconds = n.max(1),
            "--runs" => a.runs = n.max(1) as usize,
            "--conns" => a.conns = n.max(1) as usize,
            "--body" => a.body = n as usize,
            "--client-cpu" => a.client_cpu = n,
            o => panic!("unknown option {o}"),
        }
        i += 2;
    }
    a
}

/// The worker thread's CPU time so far, nanoseconds.
fn worker_cpu_ns(tid: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .expect("schedstat of the worker thread");
    s.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("schedstat's first field")
}

fn worker_tid() -> String {
    for e in std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .flatten()
    {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() == "bext-worker-0" {
            return e.file_name().to_string_lossy().into_owned();
        }
    }
    panic!("no bext-worker-0 thread");
}

fn main() {
    let a = args();
    let dir = std::env::temp_dir().join(format!("bext-h3bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let (cert_file, key_file) = (dir.join("c.pem"), dir.join("c.key"));
    std::fs::write(&cert_file, cert.pem()).expect("write");
    std::fs::write(&key_file, key.serialize_pem()).expect("write");
    let body = "b".repeat(a.body);
    let text = format!(
        "global {{ limits {{ keepalive_requests 1000000000 }} }}\nlisten 127.0.0.1:0 tls {{ cert \"{}\" key \"{}\" }} http3\nsite * {{ route /* {{ respond 200 \"{body}\" }} }}\n",
        cert_file.display(),
        key_file.display()
    );
    let config = bext_dsl::compile_str("bench.bext", &text)
        .expect("configuration")
        .config;
    let opts = bext::StartOptions {
        workers: Some(1),
        driver: std::env::var("BEXT_DRIVER")
            .ok()
            .map(|d| d.parse().expect("BEXT_DRIVER: auto, epoll or io-uring"))
            .unwrap_or(bext::DriverChoice::Auto),
        pin: true,
    };
    let server = bext::start(config, opts).expect("bext starts");
    let addr = server.local_addrs()[0];
    let tid = worker_tid();
    // The clients (this thread and every thread it starts from now on) on their own CPU.
    let pinned = std::process::Command::new("taskset")
        .args(["-p", "-c", &a.client_cpu.to_string()])
        .arg(std::process::id().to_string())
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        pinned,
        "taskset could not pin the clients to CPU {}",
        a.client_cpu
    );
    let mut roots = bext_tls::rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).expect("root");
    let client = bext_tls::rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    println!("protocol\trun\trequests\terrors\tcpu_ms\tus_per_request");
    let mut per: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for run in 0..a.runs {
        for proto in &a.protocols {
            let i = usize::from(*proto == "h3");
            let (done, errors, cpu) = if *proto == "tls" {
                tls_round(&a, addr, &client, &tid)
            } else {
                h3_round(&a, addr, &client, &tid)
            };
            let us = cpu as f64 / 1000.0 / done.max(1) as f64;
            println!(
                "{proto}\t{run}\t{done}\t{errors}\t{:.1}\t{us:.2}",
                cpu as f64 / 1e6
            );
            per[i].push(us);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|x, y| x.total_cmp(y));
        v[v.len() / 2]
    };
    if per.iter().all(|v| !v.is_empty()) {
        let (t, h) = (median(&mut per[0]), median(&mut per[1]));
        println!(
            "# median us/request: tls {t:.2}, h3 {h:.2}, h3/tls {:.2}",
            h / t
        );
    }
    server.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Keep-alive HTTP/1.1 over TLS: `conns` connections, each on its own thread paced at
/// rate/conns.
fn tls_round(
    a: &Args,
    addr: SocketAddr,
    client: &bext_tls::rustls::ClientConfig,
    tid: &str,
) -> (u64, u64, u64) {
    let client = Arc::new(client.clone());
    let mut streams = Vec::new();
    for _ in 0..a.conns {
        let name = bext_tls::rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let conn = bext_tls::rustls::ClientConnection::new(client.clone(), name).expect("tls");
        let tcp = std::net::TcpStream::connect(addr).expect("connect");
        let mut s = bext_tls::rustls::StreamOwned::new(conn, tcp);
        request_tls(&mut s).expect("first request");
        streams.push(s);
    }
    let (done, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let gap = Duration::from_nanos(1_000_000_000 * a.conns as u64 / a.rate);
    let total = a.rate * a.seconds / a.conns as u64;
    let start_cpu = worker_cpu_ns(tid);
    let threads: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            let (done, errors) = (done.clone(), errors.clone());
            std::thread::spawn(move || {
                let start = Instant::now();
                for n in 0..total {
                    let due = start + gap * n as u32;
                    if let Some(w) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(w);
                    }
                    match request_tls(&mut s) {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let cpu = worker_cpu_ns(tid) - start_cpu;
    (
        done.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        cpu,
    )
}

fn request_tls(
    s: &mut bext_tls::rustls::StreamOwned<bext_tls::rustls::ClientConnection, std::net::TcpStream>,
) -> std::io::Result<()> {
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let len: usize = text
        .split("content-length: ")
        .nth(1)
        .and_then(|v| v.split("\r\n").next())
        .and_then(|v| v.trim().parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
}

/// Keep-alive HTTP/3: `conns` QUIC connections, requests started at the fixed rate, spread
/// over them in turn.
fn h3_round(
    a: &Args,
    addr: SocketAddr,
    client: &bext_tls::rustls::ClientConfig,
    tid: &str,
) -> (u64, u64, u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async {
        let mut tls = client.clone();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("quic");
        let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).expect("endpoint");
        ep.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
        let mut senders = Vec::new();
        for _ in 0..a.conns {
            let conn = ep
                .connect(addr, "localhost")
                .expect("connect")
                .await
                .expect("handshake");
            let (mut driver, mut send) = h3::client::new(h3_quinn::Connection::new(conn))
                .await
                .expect("h3");
            tokio::spawn(async move {
                let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
            });
            get_h3(&mut send).await.expect("first request");
            senders.push(send);
        }
        let (done, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let total = a.rate * a.seconds;
        let gap = Duration::from_nanos(1_000_000_000 / a.rate);
        let start_cpu = worker_cpu_ns(tid);
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::with_capacity(total as usize);
        for n in 0..total {
            tokio::time::sleep_until(start + gap * n as u32).await;
            let mut s = senders[n as usize % senders.len()].clone();
            let (done, errors) = (done.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                match get_h3(&mut s).await {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let cpu = worker_cpu_ns(tid) - start_cpu;
        ep.close(0u32.into(), b"");
        (
            done.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed),
            cpu,
        )
    })
}

async fn get_h3(
    s: &mut h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let req = http::Request::get("https://localhost/").body(())?;
    let mut st = s.send_request(req).await?;
    st.finish().await?;
    let resp = st.recv_response().await?;
    if resp.status() != 200 {
        return Err("status".into());
    }
    while let Some(mut d) = st.recv_data().await? {
        d.advance(d.remaining());
    }
    Ok(())
}
