//! Path normalisation (`bext_http1::normalize_path`, `route_view`).
//!
//! Properties: it never panics; the normal form is a fixed point (normalising it again borrows
//! it unchanged); it starts with `/` and holds no dot segment (`/./`, `/../`, or one at the
//! end) and, with merging on, no `//`; it never holds `%00`, nor `%2F`/`%5C`/`\` unless those are
//! kept; the route view holds no dot segment either.
#![no_main]

use bext_http1::{normalize_path, route_view, PathOptions};
use libfuzzer_sys::fuzz_target;
use std::borrow::Cow;

fn has(s: &[u8], w: &[u8]) -> bool {
    s.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w))
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let opts = PathOptions {
        merge_slashes: flags & 1 == 0,
        keep_escaped_separators: flags & 2 != 0,
    };
    let mut path = vec![b'/'];
    path.extend_from_slice(rest);
    let Ok(n) = normalize_path(&path, &opts) else {
        return;
    };
    let again = normalize_path(&n, &opts).expect("a normal path is accepted");
    assert!(matches!(again, Cow::Borrowed(_)), "not a fixed point");
    assert_eq!(again.as_ref(), n.as_ref());
    let s = n.as_ref();
    assert!(s.starts_with(b"/"));
    assert!(!has(s, b"/./") && !has(s, b"/../"));
    assert!(!s.ends_with(b"/.") && !s.ends_with(b"/.."));
    assert!(!has(s, b"%00"));
    if opts.merge_slashes {
        assert!(!has(s, b"//"));
    }
    if !opts.keep_escaped_separators {
        assert!(!has(s, b"%2f") && !has(s, b"%5c") && !s.contains(&b'\\'));
    }
    let v = route_view(s, &opts);
    assert!(!has(&v, b"/../") && !v.ends_with(b"/.."));
});
