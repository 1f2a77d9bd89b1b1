//! Resolution beneath the root: a corpus of paths, each served as a named file, redirected, or
//! refused with a given reason, under both symlink policies.

mod common;

use bext_static::{Found, Options, Refusal, Static, Symlinks};
use std::fs;
use std::os::unix::fs::MetadataExt;

#[derive(Debug, Clone, Copy)]
enum Want {
    /// Served: this file (relative to the root).
    File(&'static str),
    /// 301 to the path with a slash.
    AddSlash,
    /// Refused.
    No(Refusal),
    /// A symlink inside the root: served (this file) when symlinks are followed beneath the
    /// root, refused when symlinks are refused.
    Inside(&'static str),
}

use Refusal::*;
use Want::*;

const CORPUS: &[(&str, Want)] = &[
    // served
    ("/a.txt", File("a.txt")),
    ("a.txt", File("a.txt")),
    ("/%61.txt", File("a.txt")),
    ("//a.txt", File("a.txt")),
    ("/", File("index.html")),
    ("", AddSlash),
    ("/sub/", File("sub/index.html")),
    ("/with%20space.txt", File("with space.txt")),
    ("/caf%E9", File("caf\u{FFFD}")),
    ("/.well-known/acme", File(".well-known/acme")),
    // directories
    ("/sub", AddSlash),
    ("/empty", AddSlash),
    ("/empty/", No(NotFound)),
    // missing
    ("/missing", No(NotFound)),
    ("/missing/", No(NotFound)),
    ("/a.txt/", No(NotFound)),
    ("/a.txt/x", No(NotFound)),
    // dot segments, raw and encoded
    ("/../outside.txt", No(BadPath)),
    ("/sub/../../outside.txt", No(BadPath)),
    ("/%2e%2e/outside.txt", No(BadPath)),
    ("/%2E%2E/outside.txt", No(BadPath)),
    ("/.%2E/outside.txt", No(BadPath)),
    ("/%2e./outside.txt", No(BadPath)),
    ("/./a.txt", No(BadPath)),
    ("/.", No(BadPath)),
    ("/%2e", No(BadPath)),
    // separators smuggled in a segment
    ("/..%2foutside.txt", No(BadPath)),
    ("/..%2Foutside.txt", No(BadPath)),
    ("/sub%2f..%2f..%2foutside.txt", No(BadPath)),
    ("/..%5coutside.txt", No(BadPath)),
    ("/..\\outside.txt", No(BadPath)),
    ("/sub\\..\\a.txt", No(BadPath)),
    // NUL and broken escapes
    ("/a.txt%00.html", No(BadPath)),
    ("/a.txt\0.html", No(BadPath)),
    ("/%", No(BadPath)),
    ("/%2", No(BadPath)),
    ("/%zz", No(BadPath)),
    // dotfiles
    ("/.git/config", No(Hidden)),
    ("/.git/", No(Hidden)),
    ("/.env", No(Hidden)),
    ("/%2eenv", No(Hidden)),
    ("/sub/.htpasswd", No(Hidden)),
    ("/style.css/.br", No(Hidden)),
    // symlinks that leave the root
    ("/link-abs", No(Escapes)),
    ("/link-out", No(Escapes)),
    ("/link-dir-out/outside.txt", No(Escapes)),
    ("/link-dir-out/root/a.txt", No(Escapes)),
    ("/sub/up", No(Escapes)),
    // symlinks that stay inside
    ("/link-inside", Inside("a.txt")),
    ("/link-dir-inside/index.html", Inside("sub/index.html")),
    ("/link-dir-inside/", Inside("sub/index.html")),
    // not a regular file
    ("/pipe", No(Forbidden)),
];

fn check(h: &Static, tree: &common::Tree, path: &[u8], want: Want) -> Result<(), String> {
    let got = h.resolve(path);
    let shown = String::from_utf8_lossy(path).into_owned();
    let want = match want {
        Inside(f) if h.symlinks() == Symlinks::FollowBeneath => File(f),
        Inside(_) => No(Escapes),
        w => w,
    };
    match (want, &got) {
        (File(name), Ok(Found::File(f))) => {
            let name = if name == "caf\u{FFFD}" {
                tree.root
                    .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"caf\xE9"))
            } else {
                tree.root.join(name)
            };
            let m = fs::metadata(&name).map_err(|e| format!("{shown}: {e}"))?;
            if f.identity().identity() == (m.dev(), m.ino()) {
                Ok(())
            } else {
                Err(format!(
                    "{shown}: served another file than {}",
                    name.display()
                ))
            }
        }
        (AddSlash, Ok(Found::AddSlash)) => Ok(()),
        (No(r), Err(g)) if r == *g => Ok(()),
        _ => Err(format!("{shown}: want {want:?}, got {got:?}")),
    }
}

fn run(opts: Options) -> Symlinks {
    let tree = common::tree();
    let h = Static::open(&tree.root, &["index.html".into()], opts).expect("open root");
    let mut failures = vec![];
    for &(path, want) in CORPUS {
        if let Err(e) = check(&h, &tree, path.as_bytes(), want) {
            failures.push(e);
        }
    }
    // Over-long names and paths.
    let long = |n: usize| format!("/{}", "a".repeat(n));
    let extra: Vec<(String, Want)> = vec![
        (long(255), No(NotFound)),
        (long(256), No(TooLong)),
        (format!("/{}", "%61".repeat(256)), No(TooLong)),
        ("/a".repeat(2100), No(TooLong)),
        ("/sub".repeat(1100) + "/x", No(TooLong)),
        ("/sub".repeat(1000) + "/x", No(NotFound)),
    ];
    for (path, want) in &extra {
        if let Err(e) = check(&h, &tree, path.as_bytes(), *want) {
            failures.push(e.chars().take(200).collect());
        }
    }
    // Every refusal maps to a client error, never to a success or a 5xx.
    for r in [BadPath, Hidden, TooLong, NotFound, Escapes, Forbidden] {
        assert!((400..500).contains(&r.status()), "{r:?}");
    }
    assert!(
        failures.is_empty(),
        "{:?}:\n{}",
        h.symlinks(),
        failures.join("\n")
    );
    h.symlinks()
}

#[test]
fn corpus_with_symlinks_followed_beneath_the_root() {
    // Where the kernel has no openat2 this runs the other policy: the corpus holds either way.
    let got = run(Options::default());
    eprintln!("symlink policy in effect: {got:?}");
}

#[test]
fn corpus_with_symlinks_refused() {
    let got = run(Options {
        symlinks: Symlinks::Refuse,
        ..Options::default()
    });
    assert_eq!(got, Symlinks::Refuse);
}

#[test]
fn index_files_are_tried_in_order() {
    let tree = common::tree();
    let h = Static::open(
        &tree.root,
        &["index.htm".into(), "index.html".into()],
        Options::default(),
    )
    .expect("open");
    for (path, file) in [("/both/", "both/index.htm"), ("/sub/", "sub/index.html")] {
        let Ok(Found::File(f)) = h.resolve(path.as_bytes()) else {
            panic!("{path}");
        };
        let m = fs::metadata(tree.root.join(file)).expect("meta");
        assert_eq!(f.identity().identity(), (m.dev(), m.ino()), "{path}");
        assert_eq!(f.content_type(), "text/html; charset=utf-8");
    }
}

#[test]
fn bad_index_names_are_refused_when_compiled() {
    let tree = common::tree();
    for bad in ["", ".index.html", "a/b.html", "..", "x\0"] {
        assert!(
            Static::open(&tree.root, &[bad.into()], Options::default()).is_err(),
            "{bad:?}"
        );
    }
    assert!(Static::open(&tree.root.join("a.txt"), &[], Options::default()).is_err());
    assert!(Static::open(&tree.root.join("nope"), &[], Options::default()).is_err());
}

#[test]
fn a_renamed_root_keeps_serving_from_the_directory_opened() {
    let tree = common::tree();
    let h = Static::open(&tree.root, &["index.html".into()], Options::default()).expect("open");
    let moved = tree.base.join("moved");
    fs::rename(&tree.root, &moved).expect("rename");
    // A new directory at the old path does not capture lookups.
    fs::create_dir(&tree.root).expect("mkdir");
    fs::write(tree.root.join("a.txt"), "impostor").expect("write");
    let Ok(Found::File(f)) = h.resolve(b"/a.txt") else {
        panic!("a.txt");
    };
    let m = fs::metadata(moved.join("a.txt")).expect("meta");
    assert_eq!(f.identity().identity(), (m.dev(), m.ino()));
}
