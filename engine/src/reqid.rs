//! Request ids that cannot be guessed: AES-128 under a per-core secret key over a counter.
//!
//! An id travels to the origin (`X-Request-Id`) and back to the client in problem details, and
//! origins use it to correlate logs or as a nonce. A seed plus a counter, as before, let anyone
//! who saw one id predict the next ones. Here each core draws a 128-bit key from the kernel's
//! CSPRNG (`/dev/urandom`) once, and an id is the AES-128 encryption (a keyed pseudo-random
//! permutation) of a 128-bit block holding the core number and the core's counter: distinct
//! for distinct blocks, so ids never repeat on a core nor across cores, and unpredictable while
//! the key is unknown outside the process. The blocks are encrypted [`BATCH`] at a time (AES in
//! counter mode over zeros), so an id costs a copy of 16 bytes, not a cipher call.
//!
//! Should the cipher be unavailable, two SipHash-2-4 outputs (also a keyed pseudo-random
//! function) of the counter serve instead.

use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128};
use aws_lc_rs::iv::FixedLength;
use std::cell::{Cell, RefCell};
use std::io::Read;

/// Ids encrypted at once.
const BATCH: usize = 64;

pub struct RequestIds {
    k0: u64,
    k1: u64,
    core: u64,
    counter: Cell<u64>,
    aes: Option<EncryptingKey>,
    /// Ids encrypted ahead, and how many of them were handed out.
    batch: RefCell<[[u8; 16]; BATCH]>,
    used: Cell<usize>,
}

impl RequestIds {
    /// A generator for core `core`, keyed from the kernel's random source.
    pub fn new(core: usize) -> RequestIds {
        let mut key = [0u8; 16];
        let from_kernel = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .is_ok();
        if !from_kernel {
            // The standard library keys its hash maps from the same source by other means
            // (getrandom(2)); borrow that randomness.
            use std::hash::{BuildHasher, Hasher};
            for (i, chunk) in key.chunks_mut(8).enumerate() {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_usize(i);
                chunk.copy_from_slice(&h.finish().to_le_bytes());
            }
        }
        let aes = UnboundCipherKey::new(&AES_128, &key)
            .and_then(EncryptingKey::ctr)
            .ok();
        let mut k = [0u8; 8];
        k.copy_from_slice(&key[..8]);
        let k0 = u64::from_le_bytes(k);
        k.copy_from_slice(&key[8..]);
        let k1 = u64::from_le_bytes(k);
        RequestIds {
            k0,
            k1,
            core: core as u64,
            counter: Cell::new(0),
            aes,
            batch: RefCell::new([[0; 16]; BATCH]),
            used: Cell::new(BATCH),
        }
    }

    /// The next id as two 64-bit halves.
    pub fn next(&self) -> (u64, u64) {
        if let Some(id) = self.next_aes() {
            let (a, b) = id.split_at(8);
            let half = |h: &[u8]| {
                let mut w = [0u8; 8];
                w.copy_from_slice(h);
                u64::from_be_bytes(w)
            };
            return (half(a), half(b));
        }
        let n = self.counter.get().wrapping_add(1);
        self.counter.set(n);
        let a = siphash24(self.k0, self.k1, [n, self.core << 1]);
        let b = siphash24(self.k0, self.k1, [n, self.core << 1 | 1]);
        (a, b)
    }

    /// The next id of the batch, encrypting the next [`BATCH`] blocks when it is used up.
    fn next_aes(&self) -> Option<[u8; 16]> {
        let aes = self.aes.as_ref()?;
        let mut batch = self.batch.borrow_mut();
        if self.used.get() == BATCH {
            // Counter blocks: the core number in the top 64 bits, the core's block counter in
            // the low 64 (counter mode adds one per block). Blocks are never reused: the counter
            // advances by the whole batch, and would take centuries to wrap.
            let first = self.counter.get();
            self.counter.set(first.wrapping_add(BATCH as u64));
            let mut iv = [0u8; 16];
            iv[..8].copy_from_slice(&self.core.to_be_bytes());
            iv[8..].copy_from_slice(&first.to_be_bytes());
            let flat = batch.as_flattened_mut();
            flat.fill(0);
            let ctx = EncryptionContext::Iv128(FixedLength::from(iv));
            aes.less_safe_encrypt(flat, ctx).ok()?;
            self.used.set(0);
        }
        let i = self.used.get();
        self.used.set(i + 1);
        Some(batch[i])
    }
}

/// SipHash-2-4 (Aumasson and Bernstein) of a 16-byte message given as two little-endian words.
fn siphash24(k0: u64, k1: u64, m: [u64; 2]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    // The two message words, then the final word: the length (16) in the top byte.
    for w in [m[0], m[1], 16u64 << 56] {
        v[3] ^= w;
        round(&mut v);
        round(&mut v);
        v[0] ^= w;
    }
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference implementation's test vector for a 16-byte input (key 00..0f, message
    /// 00..0f): `siphash24.c`'s `vectors[16]`.
    #[test]
    fn siphash_matches_the_reference_vector() {
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let m0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let m1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let want = u64::from_le_bytes([0xdb, 0x9b, 0xc2, 0x57, 0x7f, 0xcc, 0x2a, 0x3f]);
        assert_eq!(siphash24(k0, k1, [m0, m1]), want);
    }

    /// Ids are distinct across batches and across cores, and a generator without the cipher
    /// (the SipHash fallback) still answers.
    #[test]
    fn ids_do_not_repeat_across_batches_or_cores() {
        let a = RequestIds::new(0);
        let b = RequestIds::new(1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..(3 * BATCH + 5) {
            assert!(seen.insert(a.next()), "an id repeated on one core");
            assert!(seen.insert(b.next()), "an id repeated across cores");
        }
        let mut fallback = RequestIds::new(2);
        fallback.aes = None;
        assert_ne!(fallback.next(), fallback.next());
    }

    #[test]
    fn generators_are_keyed_apart() {
        let a = RequestIds::new(0);
        let b = RequestIds::new(0);
        assert_ne!(a.next(), b.next(), "two generators share a key");
    }
}
