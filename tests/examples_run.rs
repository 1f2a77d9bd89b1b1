//! The examples the engine can run, run: each is compiled from its file, served on an
//! ephemeral port (its own `listen` is replaced, so tests never fight over 8080), and asked
//! what its comments promise. The static site's roots are relative to the repository's root,
//! which is where tests run.

mod common;
use common::*;
use std::io::Write;
use std::path::Path;

fn serve_example(name: &str) -> bext::Server {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    let compiled = match bext_dsl::compile_file(&path) {
        Ok(c) => c,
        Err(f) => panic!("{name} compiles:\n{}", f.render_human()),
    };
    let mut config = compiled.config;
    for l in &mut config.listeners {
        l.addr = "127.0.0.1:0".into();
    }
    bext::start(config, opts()).unwrap_or_else(|e| panic!("{name} runs: {e}"))
}

#[test]
fn the_static_site_serves_files_compressed_ranges_and_redirects() {
    let s = serve_example("static-site.bext");
    let a = addr(&s);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site");
    // The index of the root directory.
    let (r, mut rd) = exchange(a, b"GET / HTTP/1.1\r\nHost: docs.example\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        std::fs::read(root.join("public/index.html")).unwrap()
    );
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    // An asset: its precompressed sibling for gzip, with the route's cache-control.
    rd.get_mut()
        .write_all(
            b"GET /assets/site.css HTTP/1.1\r\nHost: docs.example\r\nAccept-Encoding: gzip\r\n\r\n",
        )
        .unwrap();
    let r = read_response(&mut rd, false);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=3600"));
    assert_eq!(
        r.body,
        std::fs::read(root.join("assets/site.css.gz")).unwrap()
    );
    // The same asset for a client that takes brotli: compressed on the fly, and it decodes
    // to the file.
    rd.get_mut()
        .write_all(
            b"GET /assets/site.css HTTP/1.1\r\nHost: docs.example\r\nAccept-Encoding: br\r\n\r\n",
        )
        .unwrap();
    let r = read_response(&mut rd, false);
    assert_eq!(r.header("content-encoding"), Some("br"));
    let mut plain = Vec::new();
    brotli_decompress(&r.body, &mut plain);
    assert_eq!(plain, std::fs::read(root.join("assets/site.css")).unwrap());
    // A directory without its slash, a range of a page, the old section's redirect.
    let r = get(a, "/guide");
    assert_eq!((r.status, r.header("location")), (301, Some("/guide/")));
    let (r, _) = exchange(
        a,
        b"GET /guide/ HTTP/1.1\r\nHost: docs.example\r\nRange: bytes=0-14\r\n\r\n",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, b"<!doctype html>");
    let r = get(a, "/old/intro");
    assert_eq!(
        (r.status, r.header("location")),
        (301, Some("/guide/old/intro"))
    );
    // Nothing outside the roots.
    assert_eq!(get(a, "/assets/../../Cargo.toml").status, 404);
    s.shutdown();
}

fn get(a: std::net::SocketAddr, path: &str) -> Resp {
    exchange(
        a,
        format!("GET {path} HTTP/1.1\r\nHost: docs.example\r\n\r\n").as_bytes(),
    )
    .0
}

fn brotli_decompress(data: &[u8], out: &mut Vec<u8>) {
    let mut r = brotli::Decompressor::new(data, 4096);
    std::io::Read::read_to_end(&mut r, out).expect("a brotli stream");
}
