//! Response parser: never panics, spans in bounds, and when bext accepts, httparse accepts and
//! agrees on head length, version, status, reason (when ASCII) and fields. The first byte picks what the
//! response answers (HEAD, CONNECT) so every framing rule is reached.
#![no_main]

use bext_http1::{parse_response, Framing, Limits, Parse, ResponseContext, ResponseHead};
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

fuzz_target!(|input: &[u8]| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    let ctx = ResponseContext {
        request_was_head: selector & 1 != 0,
        request_was_connect: selector & 2 != 0,
    };
    let limits = Limits::default();
    let mut head = ResponseHead::default();
    let Ok(Parse::Complete) = parse_response(data, &limits, ctx, &mut head) else {
        return;
    };
    assert!(head.head_len <= data.len());
    assert!((100..=599).contains(&head.status));
    let framing = head.framing.expect("complete head has framing");
    if ctx.request_was_head || head.status < 200 || head.status == 204 || head.status == 304 {
        assert_eq!(framing, Framing::None);
    }
    if framing == Framing::CloseDelimited {
        assert!(!head.keep_alive);
    }

    let mut slots = [httparse::EMPTY_HEADER; 100];
    let mut res = httparse::Response::new(&mut slots);
    let status = match res.parse(data) {
        Ok(s) => s,
        Err(e) => panic!("bext accepted a response httparse rejects ({e:?})"),
    };
    let httparse::Status::Complete(len) = status else {
        panic!("bext accepted a response httparse finds incomplete");
    };
    assert_eq!(len, head.head_len);
    assert_eq!(res.code, Some(head.status));
    // httparse reports a reason with obs-text as empty: compare only ASCII ones.
    let reason = head.reason.get(data);
    if reason.is_ascii() {
        assert_eq!(res.reason.map(str::as_bytes).map(trim), Some(trim(reason)));
    }
    assert_eq!(res.headers.len(), head.headers.len());
    for (theirs, ours) in res.headers.iter().zip(&head.headers) {
        assert_eq!(theirs.name.as_bytes(), ours.name.get(data));
        assert_eq!(trim(theirs.value), ours.value.get(data));
    }
});
