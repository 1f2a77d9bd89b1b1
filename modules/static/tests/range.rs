//! `Range` against a representation (RFC 9110 §14), as a table: the RFC's examples, merging,
//! invalid forms (ignored: 200), unsatisfiable sets (416), the cap on ranges, empty files; and
//! the exact bytes of a `multipart/byteranges` body.

use bext_static::range::{parse, Boundary, ByteRange, Multipart, RangeOutcome, MAX_RANGES};

#[derive(Debug)]
enum Want {
    Full,
    Unsatisfiable,
    Ranges(&'static [(u64, u64)]),
}

const LEN: u64 = 10_000;

const TABLE: &[(&str, u64, Want)] = &[
    // RFC 9110 §14.1.2 examples, on a 10000-byte representation.
    ("bytes=0-499", LEN, Want::Ranges(&[(0, 499)])),
    ("bytes=500-999", LEN, Want::Ranges(&[(500, 999)])),
    ("bytes=-500", LEN, Want::Ranges(&[(9500, 9999)])),
    ("bytes=9500-", LEN, Want::Ranges(&[(9500, 9999)])),
    ("bytes=0-0,-1", LEN, Want::Ranges(&[(0, 0), (9999, 9999)])),
    ("bytes=500-600,601-999", LEN, Want::Ranges(&[(500, 999)])),
    ("bytes=500-700,601-999", LEN, Want::Ranges(&[(500, 999)])),
    // Clamping, ordering, merging.
    ("bytes=9000-20000", LEN, Want::Ranges(&[(9000, 9999)])),
    ("bytes=-20000", LEN, Want::Ranges(&[(0, 9999)])),
    (
        "bytes=0-99999999999999999999999",
        LEN,
        Want::Ranges(&[(0, 9999)]),
    ),
    (
        "bytes=900-999,0-99,50-149",
        LEN,
        Want::Ranges(&[(0, 149), (900, 999)]),
    ),
    (
        "bytes=0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-",
        LEN,
        Want::Ranges(&[(0, 9999)]),
    ),
    ("bytes=10-19,0-9,20-29", LEN, Want::Ranges(&[(0, 29)])),
    ("bytes=0-0,2-2,1-1", LEN, Want::Ranges(&[(0, 2)])),
    ("bytes=0-1,20000-", LEN, Want::Ranges(&[(0, 1)])),
    // Whitespace and case.
    ("bytes=0-1, 3-4", LEN, Want::Ranges(&[(0, 1), (3, 4)])),
    ("bytes=0-1 ,\t3-4", LEN, Want::Ranges(&[(0, 1), (3, 4)])),
    ("  bytes=0-1  ", LEN, Want::Ranges(&[(0, 1)])),
    ("Bytes=0-1", LEN, Want::Ranges(&[(0, 1)])),
    ("bytes=0-1,,3-4", LEN, Want::Ranges(&[(0, 1), (3, 4)])),
    // Invalid: ignored, the whole representation.
    ("bytes=", LEN, Want::Full),
    ("bytes=,", LEN, Want::Full),
    ("bytes=abc", LEN, Want::Full),
    ("bytes=5-3", LEN, Want::Full),
    ("bytes=-", LEN, Want::Full),
    ("bytes=--1", LEN, Want::Full),
    ("bytes=1-2-3", LEN, Want::Full),
    ("bytes=0-1,x", LEN, Want::Full),
    ("bytes=0-499;x", LEN, Want::Full),
    ("bytes=+0-1", LEN, Want::Full),
    ("bytes=0x10-20", LEN, Want::Full),
    ("bytes 0-1", LEN, Want::Full),
    ("items=0-1", LEN, Want::Full),
    ("0-499", LEN, Want::Full),
    ("", LEN, Want::Full),
    // Unsatisfiable: 416.
    ("bytes=10000-", LEN, Want::Unsatisfiable),
    ("bytes=20000-30000", LEN, Want::Unsatisfiable),
    ("bytes=-0", LEN, Want::Unsatisfiable),
    ("bytes=-0,10000-", LEN, Want::Unsatisfiable),
    ("bytes=1-1", 1, Want::Unsatisfiable),
    // Tiny and empty representations.
    ("bytes=0-0", 1, Want::Ranges(&[(0, 0)])),
    ("bytes=-5", 1, Want::Ranges(&[(0, 0)])),
    ("bytes=0-0", 0, Want::Full),
    ("bytes=-1", 0, Want::Full),
    ("bytes=0-", 0, Want::Full),
];

fn check(header: &str, len: u64, want: &Want) -> Result<(), String> {
    let got = parse(header.as_bytes(), len);
    let ok = match (want, &got) {
        (Want::Full, RangeOutcome::Full) => true,
        (Want::Unsatisfiable, RangeOutcome::Unsatisfiable) => true,
        (Want::Ranges(w), RangeOutcome::Partial(r)) => {
            let w: Vec<ByteRange> = w
                .iter()
                .map(|&(first, last)| ByteRange { first, last })
                .collect();
            r.as_slice() == w.as_slice()
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{header:?} on {len}: want {want:?}, got {got:?}"))
    }
}

#[test]
fn range_table() {
    let failures: Vec<String> = TABLE
        .iter()
        .filter_map(|(h, len, w)| check(h, *len, w).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn more_ranges_than_the_cap_after_merging_are_ignored() {
    let spec = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!("{}-{}", i * 2, i * 2)).collect();
        format!("bytes={}", list.join(","))
    };
    match parse(spec(MAX_RANGES).as_bytes(), LEN) {
        RangeOutcome::Partial(r) => assert_eq!(r.as_slice().len(), MAX_RANGES),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse(spec(MAX_RANGES + 1).as_bytes(), LEN),
        RangeOutcome::Full
    );
    assert_eq!(parse(spec(5000).as_bytes(), LEN), RangeOutcome::Full);
    // Many ranges that merge into few are fine: adjacent single bytes become one range.
    let adjacent: Vec<String> = (0..1000).map(|i| format!("{i}-{i}")).collect();
    match parse(format!("bytes={}", adjacent.join(",")).as_bytes(), LEN) {
        RangeOutcome::Partial(r) => assert_eq!(
            r.as_slice(),
            &[ByteRange {
                first: 0,
                last: 999
            }]
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn multipart_body_bytes_and_length() {
    let file = b"0123456789abcdefghij";
    let RangeOutcome::Partial(ranges) = parse(b"bytes=0-1,5-6,-2", file.len() as u64) else {
        panic!("ranges");
    };
    let m = Multipart::new(
        &ranges,
        file.len() as u64,
        "text/plain; charset=utf-8",
        Boundary::new(0x0123_4567_89ab_cdef),
    );
    let mut ct = vec![];
    m.content_type_value(&mut ct);
    assert_eq!(ct, b"multipart/byteranges; boundary=bext0123456789abcdef");
    let mut body = vec![];
    for (i, r) in m.ranges().iter().enumerate() {
        m.write_part_head(i, &mut body);
        body.extend_from_slice(&file[r.first as usize..=r.last as usize]);
    }
    m.write_trailer(&mut body);
    let want = "\r\n--bext0123456789abcdef\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 0-1/20\r\n\r\n01\
\r\n--bext0123456789abcdef\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 5-6/20\r\n\r\n56\
\r\n--bext0123456789abcdef\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 18-19/20\r\n\r\nij\
\r\n--bext0123456789abcdef--\r\n";
    assert_eq!(String::from_utf8_lossy(&body), want);
    assert_eq!(m.content_length(), body.len() as u64);
}

#[test]
fn multipart_length_is_exact_across_digit_counts() {
    for len in [
        2u64,
        10,
        11,
        99,
        100,
        101,
        9_999,
        10_000,
        123_456_789,
        u64::MAX / 2,
    ] {
        let h = format!("bytes=0-0,{}-{}", len / 2, len - 1);
        let RangeOutcome::Partial(ranges) = parse(h.as_bytes(), len) else {
            panic!("{h}");
        };
        let m = Multipart::new(&ranges, len, "application/octet-stream", Boundary::new(len));
        let mut heads = vec![];
        for i in 0..m.ranges().len() {
            m.write_part_head(i, &mut heads);
        }
        m.write_trailer(&mut heads);
        let data: u64 = m.ranges().iter().map(|r| r.len()).sum();
        assert_eq!(m.content_length(), heads.len() as u64 + data, "{len}");
    }
}
