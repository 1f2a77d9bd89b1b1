//! The `static` handler end to end, with a raw client and curl, on the driver the suite runs
//! with (`BEXT_TEST_DRIVER`): bodies byte-exact (small ones behind the head, large ones by
//! sendfile), validators and conditional requests, ranges per RFC 9110 §14, precompressed
//! siblings, methods, keep-alive, and a traversal corpus that must never reach a file outside
//! the root.

mod common;
use common::*;
use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A directory tree for one test, removed when dropped.
struct Tree(PathBuf);

impl Tree {
    fn new(name: &str) -> Tree {
        let dir = std::env::temp_dir().join(format!("bext-static-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Tree(dir)
    }

    fn file(&self, rel: &str, data: &[u8]) -> &Tree {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
        self
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic bytes that are not a repeating pattern of a small period.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn serve(root: &Path, prefix: &str) -> bext::Server {
    let action = bext_ir::Action::Static {
        root: root.to_str().unwrap().into(),
        index: vec!["index.html".into()],
    };
    let path = if prefix == "/" {
        bext_ir::PathMatch::Prefix("/".into())
    } else {
        bext_ir::PathMatch::Prefix(format!("{prefix}/"))
    };
    start(site(vec![route(path, action)]))
}

fn req(a: SocketAddr, head: &str) -> Resp {
    exchange(a, head.as_bytes()).0
}

fn get(a: SocketAddr, path: &str, fields: &str) -> Resp {
    req(
        a,
        &format!("GET {path} HTTP/1.1\r\nHost: h\r\n{fields}\r\n"),
    )
}

fn site_tree(name: &str) -> (Tree, Vec<u8>, Vec<u8>) {
    let t = Tree::new(name);
    let small = b"<!doctype html><title>home</title>hello\n".to_vec();
    let large = bytes(1_300_000, 7);
    t.file("index.html", &small)
        .file("big.bin", &large)
        .file("docs/index.html", b"docs index")
        .file("docs/a.txt", b"0123456789abcdefghijklmnopqrstuvwxyz")
        .file("style.css", &b"body{color:red}\n".repeat(300))
        .file(".env", b"SECRET=1")
        .file(".well-known/security.txt", b"Contact: x");
    (t, small, large)
}

#[test]
fn files_are_served_byte_exact_with_their_validators() {
    let (t, small, large) = site_tree("exact");
    let s = serve(t.path(), "/");
    let a = addr(&s);
    let r = get(a, "/", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, small);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let etag = r.header("etag").expect("etag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    assert!(r.header("last-modified").unwrap().ends_with(" GMT"));
    assert_eq!(r.header("content-length"), Some(&*small.len().to_string()));
    // Large: the sendfile path.
    let r = get(a, "/big.bin", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body.len(), large.len());
    assert!(r.body == large, "large body differs");
    assert!(r.complete);
    // HEAD: the fields a GET gets, no body.
    let r = req(a, "HEAD /big.bin HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1300000"));
    assert!(r.body.is_empty());
    // A directory index, a directory without its slash, a nested index.
    let r = get(a, "/docs/", "");
    assert_eq!((r.status, r.text().as_str()), (200, "docs index"));
    let r = get(a, "/docs?x=1", "");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/docs/?x=1"));
    let r = get(a, "/.well-known/security.txt", "");
    assert_eq!(r.status, 200);
    s.shutdown();
}

#[test]
fn a_route_prefix_is_not_part_of_the_file_path() {
    let (t, small, _) = site_tree("prefix");
    let s = serve(t.path(), "/assets");
    let a = addr(&s);
    assert_eq!(get(a, "/assets/index.html", "").body, small);
    assert_eq!(get(a, "/assets/docs/a.txt", "").status, 200);
    let r = get(a, "/assets/docs", "");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/assets/docs/"));
    assert_eq!(get(a, "/assets/", "").body, small);
    s.shutdown();
}

#[test]
fn keep_alive_carries_many_files_on_one_connection() {
    let (t, small, large) = site_tree("keepalive");
    let s = serve(t.path(), "/");
    let mut c = connect(addr(&s));
    let mut r = BufReader::new(c.try_clone().unwrap());
    for i in 0..6 {
        let path = if i % 2 == 0 { "/big.bin" } else { "/" };
        c.write_all(format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes())
            .unwrap();
        let resp = read_response(&mut r, false);
        assert_eq!(resp.status, 200);
        let want = if i % 2 == 0 { &large } else { &small };
        assert!(&resp.body == want, "request {i}");
    }
    // Pipelined: two requests in one write.
    c.write_all(b"GET /docs/a.txt HTTP/1.1\r\nHost: h\r\n\r\nHEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_response(&mut r, false).body,
        b"0123456789abcdefghijklmnopqrstuvwxyz"
    );
    let h = read_response(&mut r, true);
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    s.shutdown();
}

#[test]
fn conditional_requests_follow_rfc_9110_order() {
    let (t, _, _) = site_tree("conditional");
    let s = serve(t.path(), "/");
    let a = addr(&s);
    let r = get(a, "/docs/a.txt", "");
    let etag = r.header("etag").unwrap().to_string();
    let lm = r.header("last-modified").unwrap().to_string();
    let cases: Vec<(String, u16)> = vec![
        (format!("If-None-Match: {etag}\r\n"), 304),
        (format!("If-None-Match: W/{etag}\r\n"), 304),
        ("If-None-Match: *\r\n".into(), 304),
        ("If-None-Match: \"other\", \"more\"\r\n".into(), 200),
        ("If-None-Match: \"other\"\r\n".into(), 200),
        (format!("If-Modified-Since: {lm}\r\n"), 304),
        (
            "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n".into(),
            200,
        ),
        // If-None-Match wins over If-Modified-Since.
        (
            format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {lm}\r\n"),
            200,
        ),
        (format!("If-Match: {etag}\r\n"), 200),
        ("If-Match: \"other\"\r\n".into(), 412),
        // Weak comparison is not enough for If-Match.
        (format!("If-Match: W/{etag}\r\n"), 412),
        (
            "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n".into(),
            412,
        ),
        (format!("If-Unmodified-Since: {lm}\r\n"), 200),
        // An unparseable date is ignored.
        ("If-Modified-Since: yesterday\r\n".into(), 200),
    ];
    for (fields, want) in cases {
        let r = get(a, "/docs/a.txt", &fields);
        assert_eq!(r.status, want, "{fields}");
        if want == 304 {
            assert!(r.body.is_empty());
            assert_eq!(r.header("etag"), Some(&*etag), "{fields}");
            assert_eq!(r.header("content-length"), None, "{fields}");
        }
    }
    s.shutdown();
}

/// Parses a `multipart/byteranges` body into (Content-Range, data) parts.
fn parts(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
    let delim = format!("\r\n--{boundary}");
    let mut out = Vec::new();
    let text = body;
    let mut at = 0;
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + from)
    };
    while let Some(i) = find(text, delim.as_bytes(), at) {
        let after = i + delim.len();
        if text[after..].starts_with(b"--") {
            break;
        }
        let head_end = find(text, b"\r\n\r\n", after).unwrap();
        let head = String::from_utf8_lossy(&text[after..head_end]).into_owned();
        let range = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Range: "))
            .unwrap()
            .to_string();
        let data_start = head_end + 4;
        let next = find(text, delim.as_bytes(), data_start).unwrap();
        out.push((range, text[data_start..next].to_vec()));
        at = next;
    }
    out
}

#[test]
fn ranges_follow_rfc_9110_section_14() {
    let (t, _, large) = site_tree("ranges");
    let s = serve(t.path(), "/");
    let a = addr(&s);
    let data = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let len = data.len();
    // (Range value, status, Content-Range, body)
    let single: Vec<(&str, u16, Option<String>, Vec<u8>)> = vec![
        (
            "bytes=0-0",
            206,
            Some(format!("bytes 0-0/{len}")),
            data[..1].to_vec(),
        ),
        (
            "bytes=0-9",
            206,
            Some(format!("bytes 0-9/{len}")),
            data[..10].to_vec(),
        ),
        (
            "bytes=-1",
            206,
            Some(format!("bytes 35-35/{len}")),
            data[35..].to_vec(),
        ),
        (
            "bytes=30-",
            206,
            Some(format!("bytes 30-35/{len}")),
            data[30..].to_vec(),
        ),
        // A last position past the end is the end (§14.1.2).
        (
            "bytes=10-999999",
            206,
            Some(format!("bytes 10-35/{len}")),
            data[10..].to_vec(),
        ),
        // A suffix longer than the file is the file.
        (
            "bytes=-100",
            206,
            Some(format!("bytes 0-35/{len}")),
            data.to_vec(),
        ),
        // Overlapping and adjacent ranges are merged into one.
        (
            "bytes=0-5,3-10",
            206,
            Some(format!("bytes 0-10/{len}")),
            data[..11].to_vec(),
        ),
        (
            "bytes=0-4,5-9",
            206,
            Some(format!("bytes 0-9/{len}")),
            data[..10].to_vec(),
        ),
        // Units other than bytes and bad syntax: the Range field is ignored (§14.2).
        ("items=0-1", 200, None, data.to_vec()),
        ("bytes=abc", 200, None, data.to_vec()),
        ("bytes=5-1", 200, None, data.to_vec()),
        ("bytes=", 200, None, data.to_vec()),
        // Unsatisfiable: no range overlaps.
        ("bytes=36-", 416, Some(format!("bytes */{len}")), vec![]),
        ("bytes=-0", 416, Some(format!("bytes */{len}")), vec![]),
    ];
    for (range, status, content_range, body) in single {
        let r = get(a, "/docs/a.txt", &format!("Range: {range}\r\n"));
        assert_eq!(r.status, status, "{range}");
        assert_eq!(
            r.header("content-range").map(str::to_string),
            content_range,
            "{range}"
        );
        if status != 416 {
            assert_eq!(r.body, body, "{range}");
            assert_eq!(r.header("content-length"), Some(&*body.len().to_string()));
        }
    }
    // Several ranges: multipart/byteranges, each part with its Content-Range.
    let r = get(a, "/docs/a.txt", "Range: bytes=0-1,10-11,-2\r\n");
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").unwrap().to_string();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .expect("multipart");
    assert_eq!(r.header("content-length"), Some(&*r.body.len().to_string()));
    let got = parts(&r.body, boundary);
    assert_eq!(
        got,
        vec![
            (format!("bytes 0-1/{len}"), b"01".to_vec()),
            (format!("bytes 10-11/{len}"), b"ab".to_vec()),
            (format!("bytes 34-35/{len}"), b"yz".to_vec()),
        ]
    );
    // If-Range: a current validator gives the range, a stale one the whole file.
    let etag = get(a, "/docs/a.txt", "")
        .header("etag")
        .unwrap()
        .to_string();
    let r = get(
        a,
        "/docs/a.txt",
        &format!("Range: bytes=0-1\r\nIf-Range: {etag}\r\n"),
    );
    assert_eq!((r.status, r.body.as_slice()), (206, &b"01"[..]));
    let r = get(
        a,
        "/docs/a.txt",
        "Range: bytes=0-1\r\nIf-Range: \"stale\"\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    // HEAD ignores Range.
    let r = req(
        a,
        "HEAD /docs/a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    // Ranges of a large file (sendfile from an offset), single and several.
    let r = get(a, "/big.bin", "Range: bytes=1000000-1299999\r\n");
    assert_eq!(r.status, 206);
    assert!(r.body == large[1_000_000..1_300_000]);
    let r = get(a, "/big.bin", "Range: bytes=10-200009,700000-999999\r\n");
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").unwrap().to_string();
    let got = parts(&r.body, ct.rsplit('=').next().unwrap());
    assert_eq!(got.len(), 2);
    assert!(got[0].1 == large[10..200_010]);
    assert!(got[1].1 == large[700_000..1_000_000]);
    s.shutdown();
}

#[test]
fn precompressed_siblings_are_chosen_by_accept_encoding() {
    let t = Tree::new("precompressed");
    t.file("app.js", b"identity body")
        .file("app.js.gz", b"gzip body")
        .file("app.js.zst", b"zstd body")
        .file("plain.txt", b"no siblings");
    let s = serve(t.path(), "/");
    let a = addr(&s);
    let cases = [
        ("", None, "identity body"),
        ("Accept-Encoding: gzip\r\n", Some("gzip"), "gzip body"),
        ("Accept-Encoding: gzip, zstd\r\n", Some("zstd"), "zstd body"),
        (
            "Accept-Encoding: zstd;q=0.5, gzip\r\n",
            Some("gzip"),
            "gzip body",
        ),
        ("Accept-Encoding: br\r\n", None, "identity body"),
        (
            "Accept-Encoding: *;q=0, identity\r\n",
            None,
            "identity body",
        ),
        ("Accept-Encoding: x-gzip\r\n", Some("gzip"), "gzip body"),
    ];
    let mut etags = std::collections::HashSet::new();
    for (fields, enc, body) in cases {
        let r = get(a, "/app.js", fields);
        assert_eq!(r.status, 200, "{fields}");
        assert_eq!(r.header("content-encoding"), enc, "{fields}");
        assert_eq!(r.text(), body, "{fields}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{fields}");
        assert_eq!(
            r.header("content-type"),
            Some("text/javascript; charset=utf-8"),
            "{fields}"
        );
        etags.insert((enc, r.header("etag").unwrap().to_string()));
    }
    // Each representation has its own validator.
    let distinct: std::collections::HashSet<_> = etags.iter().map(|(_, e)| e).collect();
    assert_eq!(distinct.len(), 3, "{etags:?}");
    let r = get(a, "/plain.txt", "Accept-Encoding: gzip\r\n");
    assert_eq!(r.header("vary"), None);
    assert_eq!(r.header("content-encoding"), None);
    s.shutdown();
}

#[test]
fn methods_other_than_get_and_head_are_refused_with_allow() {
    let (t, _, _) = site_tree("methods");
    let s = serve(t.path(), "/");
    let a = addr(&s);
    for m in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let (r, mut rd) = exchange(
            a,
            format!("{m} / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc").as_bytes(),
        );
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{m}");
        // The body was read: the connection goes on.
        rd.get_mut()
            .write_all(b"GET /docs/a.txt HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut rd, false).status, 200, "{m}");
    }
    s.shutdown();
}

#[test]
fn traversal_and_hidden_paths_never_reach_a_file_outside_the_root() {
    let outer = Tree::new("outer");
    outer.file("secret.txt", b"TOP SECRET");
    let (t, _, _) = site_tree("traversal");
    std::os::unix::fs::symlink(outer.path().join("secret.txt"), t.path().join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(outer.path(), t.path().join("leakdir")).unwrap();
    std::os::unix::fs::symlink("docs/a.txt", t.path().join("inside.txt")).unwrap();
    let fifo = t.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let s = serve(t.path(), "/");
    let a = addr(&s);
    let long = "a".repeat(300);
    let deep = "/d".repeat(2100);
    let outer_name = outer
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let corpus: Vec<String> = vec![
        "/../secret.txt".into(),
        format!("/../{outer_name}/secret.txt"),
        "/%2e%2e/secret.txt".into(),
        "/%2E%2E/%2e%2e/etc/passwd".into(),
        "/.%2e/.%2e/etc/passwd".into(),
        "/docs/..%2f..%2fetc%2fpasswd".into(),
        "/docs/%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(),
        "/..%5c..%5cetc%5cpasswd".into(),
        "/docs\\..\\..\\etc\\passwd".into(),
        "/%5c..%5c..%5cetc/passwd".into(),
        "/index.html%00.txt".into(),
        "/%00".into(),
        "/docs/a.txt%00".into(),
        "/..;/..;/etc/passwd".into(),
        "//etc/passwd".into(),
        "/%2fetc%2fpasswd".into(),
        "/.env".into(),
        "/.ENV".into(),
        "/%2eenv".into(),
        "/.git/config".into(),
        "/leak.txt".into(),
        "/leakdir/secret.txt".into(),
        "/fifo".into(),
        format!("/{long}"),
        deep,
        "/%c0%ae%c0%ae/etc/passwd".into(),
        "/%%32%65%%32%65/etc/passwd".into(),
        "/docs/./a.txt/".into(),
    ];
    for path in &corpus {
        let (r, _) = exchange(
            a,
            format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes(),
        );
        assert!(
            matches!(r.status, 400 | 403 | 404 | 414 | 431),
            "{path}: {} {}",
            r.status,
            r.text()
        );
        assert!(!r.text().contains("TOP SECRET"), "{path}");
        assert!(!r.text().contains("root:"), "{path}");
    }
    // A symlink that stays beneath the root is followed.
    let r = get(a, "/inside.txt", "");
    assert_eq!(r.status, 200);
    s.shutdown();
}

#[test]
fn curl_downloads_whole_files_and_ranges() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("curl is not installed: skipped");
        return;
    }
    let (t, _, large) = site_tree("curl");
    let s = serve(t.path(), "/");
    let a = addr(&s);
    let out = t.path().join("download.bin");
    let st = std::process::Command::new("curl")
        .args(["-sS", "-o"])
        .arg(&out)
        .arg(format!("http://{a}/big.bin"))
        .status()
        .unwrap();
    assert!(st.success());
    assert!(std::fs::read(&out).unwrap() == large);
    let r = std::process::Command::new("curl")
        .args(["-sS", "-r", "100-199"])
        .arg(format!("http://{a}/big.bin"))
        .output()
        .unwrap();
    assert!(r.status.success());
    assert!(r.stdout == large[100..200]);
    // --compressed takes the gzip sibling and decodes it.
    let css = b"body{color:red}\n".repeat(300);
    let gz = std::process::Command::new("gzip")
        .args(["-9", "-k", "-n"])
        .arg(t.path().join("style.css"))
        .status()
        .unwrap();
    assert!(gz.success());
    let r = std::process::Command::new("curl")
        .args(["-sS", "--compressed", "-D", "-"])
        .arg(format!("http://{a}/style.css"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.contains("Content-Encoding: gzip"), "{text}");
    assert!(r.stdout.ends_with(&css));
    s.shutdown();
}

#[test]
fn a_client_that_stops_reading_costs_the_worker_nothing_else() {
    let (t, small, _) = site_tree("stalled");
    t.file("huge.bin", &bytes(8 << 20, 3));
    let s = serve(t.path(), "/");
    let a = addr(&s);
    // Ask for a large file and never read it: the worker must keep serving others.
    let mut stalled = connect(a);
    stalled
        .write_all(b"GET /huge.bin HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    for _ in 0..5 {
        assert_eq!(get(a, "/", "").body, small);
    }
    drop(stalled);
    assert_eq!(get(a, "/", "").body, small);
    s.shutdown();
}

/// Upper-cases ASCII letters of every body: a body filter on a static route.
struct Upper;

impl bext_stage::Stage for Upper {
    type State = ();
    fn phases(&self) -> bext_stage::Phases {
        bext_stage::Phases::RESPONSE_BODY
    }
    fn init(&self) {}
    fn on_response_head(
        &self,
        _: &mut (),
        head: &mut bext_stage::ResponseHead<'_>,
    ) -> bext_stage::BodyUse {
        head.set(b"X-Upper", b"1");
        bext_stage::BodyUse::Filter
    }
    fn on_body(
        &self,
        _: &mut (),
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), bext_stage::BodyError> {
        out.extend(data.iter().map(u8::to_ascii_uppercase));
        Ok(())
    }
}

#[test]
fn body_filters_see_static_files_and_the_framing_follows() {
    let (t, small, large) = site_tree("filtered");
    let action = bext_ir::Action::Static {
        root: t.path().to_str().unwrap().into(),
        index: vec!["index.html".into()],
    };
    let config = site(vec![route(bext_ir::PathMatch::Prefix("/".into()), action)]);
    let s = bext::start_with_stages(config, opts(), |p| p.add_stage(0, Box::new(Upper)))
        .expect("bext starts");
    let a = addr(&s);
    let upper = |b: &[u8]| b.iter().map(u8::to_ascii_uppercase).collect::<Vec<u8>>();
    let (r, mut rd) = exchange(a, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.header("x-upper"), Some("1"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.body, upper(&small));
    // The connection goes on after a chunked body.
    rd.get_mut()
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let r = read_response(&mut rd, false);
    assert!(r.body == upper(&large));
    let r = get(a, "/docs/a.txt", "Range: bytes=0-1,10-11\r\n");
    assert_eq!(r.status, 206);
    assert!(r.text().contains("AB"), "{}", r.text());
    // HTTP/1.0: close-delimited.
    let (r, mut rd) = exchange(a, b"GET /docs/a.txt HTTP/1.0\r\n\r\n");
    assert_eq!(r.body, upper(b"0123456789abcdefghijklmnopqrstuvwxyz"));
    assert!(closed(&mut rd));
    s.shutdown();
}

/// A request body that arrives in several reads is read and dropped without touching the head
/// the handler answers from: a static file's path and fields, a redirect's location.
#[test]
fn a_body_in_several_reads_leaves_the_head_intact() {
    let (t, small, _) = site_tree("split-body");
    let files = route(
        bext_ir::PathMatch::Prefix("/".into()),
        bext_ir::Action::Static {
            root: t.path().to_str().unwrap().into(),
            index: vec!["index.html".into()],
        },
    );
    let old = route(
        bext_ir::PathMatch::Prefix("/old/".into()),
        bext_ir::Action::Redirect {
            status: 301,
            location: "/new{path}?{query}".into(),
        },
    );
    let s = start(site(vec![old, files]));
    let a = addr(&s);
    let send = |head: &str| {
        let mut c = connect(a);
        c.write_all(head.as_bytes()).unwrap();
        c.write_all(b"4\r\nabcd\r\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        c.write_all(b"4\r\nefgh\r\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        c.write_all(b"0\r\n\r\n").unwrap();
        let mut rd = BufReader::new(c);
        read_response(&mut rd, false)
    };
    let chunked = "Transfer-Encoding: chunked\r\n";
    let r = send(&format!(
        "GET /index.html HTTP/1.1\r\nHost: h\r\n{chunked}\r\n"
    ));
    assert_eq!((r.status, &r.body), (200, &small));
    let r = send(&format!(
        "POST /docs/a.txt HTTP/1.1\r\nHost: h\r\n{chunked}\r\n"
    ));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = send(&format!(
        "POST /old/page?x=1 HTTP/1.1\r\nHost: h\r\n{chunked}\r\n"
    ));
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/new/old/page?x=1"));
    s.shutdown();
}
