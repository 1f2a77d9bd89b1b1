//! Large bodies stream through bext with bounded memory, both ways. This file holds one test so
//! that the process's peak resident set (VmHWM) measures it alone.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};

const MIB: u64 = 1024 * 1024;

fn read_head_lines(r: &mut BufReader<std::net::TcpStream>) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        if l == "\r\n" || l.is_empty() {
            return lines;
        }
        lines.push(l.trim_end().to_string());
    }
}

fn drain_exact(r: &mut impl Read, mut n: u64) -> u64 {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while n > 0 {
        let want = buf.len().min(n as usize);
        match r.read(&mut buf[..want]) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(0) | Err(_) => break,
            Ok(k) => {
                got += k as u64;
                n -= k as u64;
            }
        }
    }
    got
}

#[test]
fn large_bodies_stream_with_bounded_memory() {
    let download = 256 * MIB;
    let upload = 128 * MIB;
    let o = origin(download);
    let mut config = proxy_to(addr(&o));
    config.global.limits.body_bytes = 1024 * MIB;
    let srv = start(config);
    // Warm up both servers (buffers, pools) before taking the baseline.
    let (resp, _) = exchange(
        addr(&srv),
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx",
    );
    assert_eq!(resp.text(), "x");
    let baseline = rss_kib("VmRSS:");

    // Download: a generated 256 MiB body through the proxy.
    let mut s = connect(addr(&srv));
    s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let mut r = BufReader::with_capacity(64 * 1024, s);
    let head = read_head_lines(&mut r);
    assert!(
        head.iter()
            .any(|l| l == &format!("Content-Length: {download}")),
        "{head:?}"
    );
    assert_eq!(drain_exact(&mut r, download), download);

    // Upload: 128 MiB echoed back, sent and received at the same time.
    let s = connect(addr(&srv));
    let mut w = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        write!(
            w,
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {upload}\r\n\r\n"
        )
        .unwrap();
        let block = vec![b'u'; 64 * 1024];
        let mut left = upload;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            w.write_all(&block[..n]).unwrap();
            left -= n as u64;
        }
    });
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut r = BufReader::with_capacity(64 * 1024, s);
    let head = read_head_lines(&mut r);
    assert!(
        head.iter()
            .any(|l| l == &format!("Content-Length: {upload}")),
        "{head:?}"
    );
    assert_eq!(drain_exact(&mut r, upload), upload);
    sender.join().unwrap();

    let peak = rss_kib("VmHWM:");
    let growth_mib = peak.saturating_sub(baseline) / 1024;
    assert!(
        growth_mib < 64,
        "peak memory grew by {growth_mib} MiB while moving {} MiB",
        (download + 2 * upload) / MIB
    );
    srv.shutdown();
    o.shutdown();
}
