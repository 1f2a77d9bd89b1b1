//! proxy-wasm ABI values (the spec's 0.2.1 numbering, the same in 0.2.0) and the serialised
//! header map format.

/// `WasmResult`, what every host function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    ParseFailure = 4,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
}

/// What a stream callback answers.
pub(crate) const ACTION_CONTINUE: i32 = 0;

pub(crate) mod map {
    pub(crate) const REQUEST_HEADERS: i32 = 0;
    pub(crate) const REQUEST_TRAILERS: i32 = 1;
    pub(crate) const RESPONSE_HEADERS: i32 = 2;
    pub(crate) const RESPONSE_TRAILERS: i32 = 3;
    pub(crate) const CALL_RESPONSE_HEADERS: i32 = 6;
    pub(crate) const CALL_RESPONSE_TRAILERS: i32 = 7;
}

pub(crate) mod buffer {
    pub(crate) const REQUEST_BODY: i32 = 0;
    pub(crate) const RESPONSE_BODY: i32 = 1;
    pub(crate) const CALL_RESPONSE_BODY: i32 = 4;
    pub(crate) const VM_CONFIGURATION: i32 = 6;
    pub(crate) const PLUGIN_CONFIGURATION: i32 = 7;
}

pub(crate) mod stream {
    pub(crate) const REQUEST: i32 = 0;
    pub(crate) const RESPONSE: i32 = 1;
}

/// A header map as the ABI carries it: the pair count, each pair's key and value lengths (u32
/// little-endian), then each key and value followed by a NUL.
pub(crate) fn serialize(pairs: &[(Vec<u8>, Vec<u8>)], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
}

/// The pairs of a serialised map; `None` when it is malformed.
pub(crate) fn deserialize(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let u32_at = |i: usize| -> Option<usize> {
        let b = bytes.get(i..i + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let n = u32_at(0)?;
    let mut sizes = 4usize.checked_add(n.checked_mul(8)?)?;
    if sizes > bytes.len() {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    let mut at = sizes;
    for i in 0..n {
        let k = u32_at(4 + i * 8)?;
        let v = u32_at(8 + i * 8)?;
        let key = bytes.get(at..at.checked_add(k)?)?.to_vec();
        at += k + 1;
        let value = bytes.get(at..at.checked_add(v)?)?.to_vec();
        at += v + 1;
        out.push((key, value));
    }
    sizes = at;
    (sizes <= bytes.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn maps_round_trip_and_malformed_ones_are_refused() {
        let pairs = vec![
            (b":path".to_vec(), b"/a".to_vec()),
            (b"x".to_vec(), b"".to_vec()),
        ];
        let mut out = Vec::new();
        super::serialize(&pairs, &mut out);
        assert_eq!(
            out,
            b"\x02\0\0\0\x05\0\0\0\x02\0\0\0\x01\0\0\0\0\0\0\0:path\0/a\0x\0\0".to_vec()
        );
        assert_eq!(super::deserialize(&out), Some(pairs));
        assert_eq!(super::deserialize(&[]), Some(vec![]));
        for bad in [
            &out[..out.len() - 3],
            &b"\xff\xff\xff\xff"[..],
            &b"\x01\0"[..],
        ] {
            assert_eq!(super::deserialize(bad), None, "{bad:?}");
        }
    }
}
