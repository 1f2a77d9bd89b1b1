//! One QUIC connection, one core: every worker has its own UDP socket in one `SO_REUSEPORT`
//! group, and a classic BPF program on the group sends each datagram to the socket of the
//! worker that owns its connection.
//!
//! The owner is written into the connection ids the server issues: their first byte is
//! congruent to the worker's index modulo the number of workers (the other bits and bytes are
//! random, so ids stay unlinkable beyond the core number). The program reads that byte from
//! where a datagram carries the destination connection id:
//!
//! - short header (every packet after the handshake): byte 1;
//! - long-header Handshake packets: byte 6, after the version and the id's length;
//! - Initial and 0-RTT packets: the id is still the one the client chose, so the program
//!   returns an index out of range and the kernel picks by its address hash, which sends
//!   every datagram of that address to the same worker: the one that accepts the connection
//!   and issues its ids.
//!
//! A client that moves to a new address (migration, NAT rebinding) sends short-header packets
//! only, so it reaches the owner whatever its new address hashes to.
//!
//! The group's order is the order of binding, so all the sockets of an address are bound at
//! once, in worker order, by the first worker to ask; each worker takes its own. Where the
//! kernel refuses the program, only worker 0 serves the address (correct, not spread).

use quinn::{ConnectionId, ConnectionIdGenerator};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::time::Duration;

/// Length of the connection ids the server issues.
pub(crate) const CID_LEN: usize = 8;

/// The steering program for `n` workers (see the module docs).
pub(crate) fn program(n: u32) -> Vec<libc::sock_filter> {
    const LDB: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
    const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
    const AND: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
    const MOD: u16 = (libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K) as u16;
    const RET_A: u16 = (libc::BPF_RET | libc::BPF_A) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    vec![
        /* 0 */ op(LDB, 0, 0, 0), // first byte of the UDP payload
        /* 1 */ op(JSET, 0, 2, 0x80), // long header? else to 4
        /* 2 */ op(AND, 0, 0, 0x30), // long packet type
        /* 3 */ op(JEQ, 2, 5, 0x20), // Handshake: to 6; else to 9 (hash)
        /* 4 */ op(LDB, 0, 0, 1), // short header: the id's first byte
        /* 5 */ op(JA, 0, 0, 1), // to 7
        /* 6 */ op(LDB, 0, 0, 6), // Handshake: the id's first byte
        /* 7 */ op(MOD, 0, 0, n), // its worker ...
        /* 8 */ op(RET_A, 0, 0, 0), // ... is the socket's index
        /* 9 */ op(RET_K, 0, 0, u32::MAX), // out of range: the kernel's hash
    ]
}

/// Connection ids whose first byte names the worker (see the module docs).
pub(crate) struct CoreCids {
    worker: u8,
    workers: u8,
}

impl CoreCids {
    pub(crate) fn new(worker: usize, workers: usize) -> CoreCids {
        CoreCids {
            worker: worker.min(255) as u8,
            workers: workers.clamp(1, 255) as u8,
        }
    }

    /// `byte` moved to the nearest value congruent to the worker modulo the workers.
    fn stamp(&self, byte: u8) -> u8 {
        let n = u16::from(self.workers);
        let base = u16::from(byte) / n * n + u16::from(self.worker);
        // `base` can pass 255 only in the last, partial group; step one group down.
        (if base > 255 { base - n } else { base }) as u8
    }
}

impl ConnectionIdGenerator for CoreCids {
    fn generate_cid(&mut self) -> ConnectionId {
        let mut bytes = [0u8; CID_LEN];
        random(&mut bytes);
        bytes[0] = self.stamp(bytes[0]);
        ConnectionId::new(&bytes)
    }

    fn cid_len(&self) -> usize {
        CID_LEN
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

fn random(out: &mut [u8]) {
    let provider = quinn::rustls::crypto::aws_lc_rs::default_provider();
    if provider.secure_random.fill(out).is_err() {
        // The system's random source failed: ids must still differ, so fall back to a
        // counter mixed with the clock (ids are not secrets; the reset key is).
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let v = t ^ N.fetch_add(0x9e37_79b9_7f4a_7c15, std::sync::atomic::Ordering::Relaxed);
        for (o, b) in out.iter_mut().zip(v.to_le_bytes().iter().cycle()) {
            *o = *b;
        }
    }
}

/// The sockets of one address, bound in worker order, waiting for their workers.
struct Group {
    sockets: Vec<Option<UdpSocket>>,
    steered: bool,
    /// Workers yet to ask (the group is forgotten when none is left).
    left: usize,
}

static GROUPS: Mutex<Vec<(SocketAddr, Group)>> = Mutex::new(Vec::new());

/// What a worker gets for an address.
pub(crate) enum Taken {
    /// Its socket; `steered` when datagrams reach it by connection id.
    Socket { socket: UdpSocket, steered: bool },
    /// No steering: another worker serves the address alone.
    NotThisWorker,
}

/// Worker `worker`'s socket for `addr`, of `workers` (see the module docs).
pub(crate) fn take(addr: SocketAddr, worker: usize, workers: usize) -> std::io::Result<Taken> {
    let mut groups = GROUPS.lock().unwrap_or_else(|e| e.into_inner());
    let pos = match groups.iter().position(|(a, _)| *a == addr) {
        Some(p) => p,
        None => {
            groups.push((addr, bind_group(addr, workers)?));
            groups.len() - 1
        }
    };
    let group = &mut groups[pos].1;
    let steered = group.steered;
    let socket = group.sockets.get_mut(worker).and_then(Option::take);
    group.left = group.left.saturating_sub(1);
    if group.left == 0 {
        groups.remove(pos);
    }
    Ok(match socket {
        Some(socket) if steered || worker == 0 => Taken::Socket { socket, steered },
        _ => Taken::NotThisWorker,
    })
}

fn bind_group(addr: SocketAddr, workers: usize) -> std::io::Result<Group> {
    let mut sockets = Vec::with_capacity(workers);
    for _ in 0..workers.max(1) {
        sockets.push(Some(super::bind_udp(addr)?));
    }
    let steered = workers > 1
        && sockets[0].as_ref().is_some_and(|s| {
            crate::sys::attach_reuseport_cbpf(s.as_raw_fd(), &program(workers as u32)).is_ok()
        });
    if workers > 1 && !steered {
        // Without steering one socket serves: the others leave the group.
        sockets.truncate(1);
    }
    Ok(Group {
        sockets,
        steered,
        left: workers.max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_names_its_worker() {
        for workers in [1usize, 2, 3, 7, 64, 255] {
            for worker in 0..workers {
                let mut g = CoreCids::new(worker, workers);
                for _ in 0..64 {
                    let cid = g.generate_cid();
                    assert_eq!(cid.len(), CID_LEN);
                    assert_eq!(usize::from(cid[0]) % workers, worker, "{workers} {worker}");
                }
                for b in 0..=255u8 {
                    assert_eq!(usize::from(g.stamp(b)) % workers, worker);
                }
            }
        }
    }

    /// The program, run by a small interpreter of the instructions it uses, on the packets
    /// it must steer.
    fn run(prog: &[libc::sock_filter], pkt: &[u8]) -> u32 {
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let i = &prog[pc];
            let class = u32::from(i.code) & 0x07;
            match class {
                c if c == libc::BPF_LD => {
                    let Some(b) = pkt.get(i.k as usize) else {
                        return 0;
                    };
                    a = u32::from(*b);
                }
                c if c == libc::BPF_ALU => {
                    let op = u32::from(i.code) & 0xf0;
                    a = if op == libc::BPF_AND {
                        a & i.k
                    } else {
                        a % i.k
                    };
                }
                c if c == libc::BPF_JMP => {
                    let op = u32::from(i.code) & 0xf0;
                    if op == libc::BPF_JA {
                        pc += i.k as usize;
                    } else {
                        let t = if op == libc::BPF_JSET {
                            a & i.k != 0
                        } else {
                            a == i.k
                        };
                        pc += usize::from(if t { i.jt } else { i.jf });
                    }
                }
                c if c == libc::BPF_RET => {
                    return if u32::from(i.code) & 0x18 == libc::BPF_A {
                        a
                    } else {
                        i.k
                    };
                }
                _ => unreachable!("instruction class {class}"),
            }
            pc += 1;
        }
    }

    #[test]
    fn the_program_steers_by_the_ids_first_byte_and_hashes_initials() {
        let prog = program(4);
        // Short header: flags, then the id (first byte 0x46 = 70, 70 % 4 = 2).
        assert_eq!(run(&prog, &[0x40, 0x46, 1, 2, 3]), 2);
        // Handshake (long header, type 2): flags, version, id length, id.
        assert_eq!(run(&prog, &[0xe0, 0, 0, 0, 1, 8, 0x47, 9]), 3);
        // Initial (type 0) and 0-RTT (type 1): the kernel's hash.
        assert_eq!(run(&prog, &[0xc0, 0, 0, 0, 1, 8, 0x47, 9]), u32::MAX);
        assert_eq!(run(&prog, &[0xd0, 0, 0, 0, 1, 8, 0x47, 9]), u32::MAX);
    }
}
