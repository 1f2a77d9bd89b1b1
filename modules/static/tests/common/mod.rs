//! A directory tree for the tests, built fresh under the system temporary directory:
//!
//! ```text
//! TMP/outside.txt                  a file next to the root, never to be served
//! TMP/root/index.html  a.txt  style.css(.br newer, .gz older)  with space.txt  caf\xE9
//!          sub/index.html  empty/  both/index.htm both/index.html
//!          .git/config  .env  sub/.htpasswd  .well-known/acme
//!          link-inside → a.txt        link-dir-inside → sub
//!          link-out → ../outside.txt  link-abs → /etc/passwd
//!          link-dir-out → ..          sub/up → ../../outside.txt
//!          pipe (a FIFO)
//! ```
#![allow(dead_code)]

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

pub struct Tree {
    pub base: PathBuf,
    pub root: PathBuf,
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

fn write(p: &Path, body: &str) {
    fs::write(p, body).expect("write");
}

pub fn set_mtime(p: &Path, t: SystemTime) {
    fs::File::options()
        .write(true)
        .open(p)
        .expect("open")
        .set_modified(t)
        .expect("set mtime");
}

static N: AtomicUsize = AtomicUsize::new(0);

pub fn tree() -> Tree {
    let base = std::env::temp_dir().join(format!(
        "bext-static-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&base);
    let root = base.join("root");
    for d in ["sub", "empty", "both", ".git", ".well-known"] {
        fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    write(&base.join("outside.txt"), "secret");
    write(&root.join("index.html"), "<h1>home</h1>");
    write(&root.join("a.txt"), "0123456789");
    write(&root.join("with space.txt"), "space");
    fs::write(
        root.join(std::ffi::OsStr::from_bytes(b"caf\xE9")),
        "latin-1 name",
    )
    .expect("write");
    write(&root.join("sub/index.html"), "sub");
    write(&root.join("both/index.htm"), "htm");
    write(&root.join("both/index.html"), "html");
    write(&root.join(".git/config"), "[core]");
    write(&root.join(".env"), "KEY=1");
    write(&root.join("sub/.htpasswd"), "u:p");
    write(&root.join(".well-known/acme"), "token");
    let t = SystemTime::now() - Duration::from_secs(100);
    write(&root.join("style.css"), "body{}");
    set_mtime(&root.join("style.css"), t);
    write(&root.join("style.css.br"), "br-bytes");
    set_mtime(&root.join("style.css.br"), t + Duration::from_secs(10));
    write(&root.join("style.css.gz"), "gz-bytes");
    set_mtime(&root.join("style.css.gz"), t - Duration::from_secs(10));
    symlink("a.txt", root.join("link-inside")).expect("symlink");
    symlink("sub", root.join("link-dir-inside")).expect("symlink");
    symlink("../outside.txt", root.join("link-out")).expect("symlink");
    symlink("/etc/passwd", root.join("link-abs")).expect("symlink");
    symlink("..", root.join("link-dir-out")).expect("symlink");
    symlink("../../outside.txt", root.join("sub/up")).expect("symlink");
    let ok = std::process::Command::new("mkfifo")
        .arg(root.join("pipe"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "mkfifo");
    Tree { base, root }
}
