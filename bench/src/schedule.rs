//! The open-loop send schedule.
//!
//! At a fixed total rate R over C connections, requests are numbered globally g = 0, 1, 2 …
//! and request g is due at `g / R` seconds after the start. Connection `c` owns the requests
//! with `g % C == c`, so its k-th request is g = c + k·C. Together the connections send at
//! exactly R with evenly spaced send times, and each connection's requests are spaced C/R
//! apart. Latency is measured from this intended time, not from the moment the request was
//! actually written: a stalled server cannot hide its stall by delaying the generator
//! (coordinated omission).

use std::time::Duration;

/// Requests due for one connection, in order.
#[derive(Debug, Clone)]
pub struct Schedule {
    conn: u64,
    conns: u64,
    ns_per_request: f64,
    next: u64,
}

impl Schedule {
    /// `rate` is the total requests per second over all `conns` connections.
    pub fn new(conn: u64, conns: u64, rate: f64) -> Self {
        Schedule {
            conn,
            conns: conns.max(1),
            ns_per_request: 1e9 / rate,
            next: 0,
        }
    }

    /// Offset from the start at which this connection's next request is due; advances.
    pub fn next_due(&mut self) -> Duration {
        let g = self.conn + self.next * self.conns;
        self.next += 1;
        Duration::from_nanos((g as f64 * self.ns_per_request) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_together_send_evenly_at_the_rate() {
        // 4 connections at 1000 req/s: the merged send times are 0, 1, 2, … ms.
        let mut all: Vec<Duration> = (0..4)
            .flat_map(|c| {
                let mut s = Schedule::new(c, 4, 1000.0);
                (0..25).map(move |_| s.next_due())
            })
            .collect();
        all.sort();
        let want: Vec<Duration> = (0..100).map(Duration::from_millis).collect();
        assert_eq!(all, want);
    }

    #[test]
    fn one_connection_is_spaced_by_conns_over_rate() {
        let mut s = Schedule::new(2, 10, 100.0);
        let got: Vec<Duration> = (0..3).map(|_| s.next_due()).collect();
        assert_eq!(
            got,
            vec![
                Duration::from_millis(20),
                Duration::from_millis(120),
                Duration::from_millis(220)
            ]
        );
    }
}
