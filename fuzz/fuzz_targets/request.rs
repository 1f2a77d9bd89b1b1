//! Request parser, differential against httparse.
//!
//! Properties: bext never panics; a complete head lies inside the input and every span is in
//! bounds; when bext accepts, httparse accepts too and they agree on head length, method,
//! target, version, and every field name and value (values compared without surrounding
//! whitespace); every proper prefix of an accepted head is `Partial` for bext.
#![no_main]

use bext_http1::{parse_request, Limits, Parse, RequestHead, Version};
use libfuzzer_sys::fuzz_target;

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let mut head = RequestHead::default();
    let Ok(Parse::Complete) = parse_request(data, &limits, &mut head) else {
        return;
    };
    assert!(head.head_len <= data.len());
    for s in [head.method_span, head.target, head.path]
        .into_iter()
        .chain(head.query)
        .chain(head.authority)
        .chain(head.host)
        .chain(head.upgrade)
        .chain(head.connection_tokens.iter().copied())
    {
        assert!(
            s.start <= s.end && (s.end as usize) <= head.head_len,
            "span {s:?}"
        );
    }

    let mut slots = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut slots);
    let status = match req.parse(data) {
        Ok(s) => s,
        Err(e) => panic!("bext accepted a head httparse rejects ({e:?})"),
    };
    let httparse::Status::Complete(len) = status else {
        panic!("bext accepted a head httparse finds incomplete");
    };
    assert_eq!(len, head.head_len, "head length");
    assert_eq!(
        req.method.map(str::as_bytes),
        Some(head.method_bytes(data)),
        "method"
    );
    assert_eq!(
        req.path.map(str::as_bytes),
        Some(head.target.get(data)),
        "target"
    );
    let version = match head.version {
        Some(Version::Http10) => 0,
        Some(Version::Http11) => 1,
        None => panic!("complete head without version"),
    };
    assert_eq!(req.version, Some(version), "version");
    assert_eq!(req.headers.len(), head.headers.len(), "field count");
    for (theirs, ours) in req.headers.iter().zip(&head.headers) {
        assert_eq!(theirs.name.as_bytes(), ours.name.get(data), "field name");
        assert_eq!(trim(theirs.value), ours.value.get(data), "field value");
    }

    // The same head is complete alone, and no proper prefix of it is complete.
    let mut again = RequestHead::default();
    assert_eq!(
        parse_request(&data[..head.head_len], &limits, &mut again),
        Ok(Parse::Complete)
    );
    assert_eq!(again.headers, head.headers);
    for cut in [head.head_len - 1, head.head_len / 2, head.head_len / 3] {
        let r = parse_request(&data[..cut], &limits, &mut again);
        assert_eq!(r, Ok(Parse::Partial), "prefix of {cut} bytes");
    }
});
