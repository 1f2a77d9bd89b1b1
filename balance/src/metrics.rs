//! Plain per-core counters the engine exports; summing over cores gives the upstream totals.

/// Counters of one server on one core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerMetrics {
    pub requests: u64,
    pub failures: u64,
    pub ejections: u64,
}

/// Counters of one upstream on one core.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamMetrics {
    pub requests: u64,
    pub failures: u64,
    pub retries: u64,
    pub budget_exhausted: u64,
    pub breaker_open: u64,
    pub servers: Vec<ServerMetrics>,
}

impl UpstreamMetrics {
    pub fn new(servers: usize) -> UpstreamMetrics {
        UpstreamMetrics {
            servers: vec![ServerMetrics::default(); servers],
            ..UpstreamMetrics::default()
        }
    }

    /// An attempt was sent to `idx`.
    pub fn attempt(&mut self, idx: usize) {
        if let Some(s) = self.servers.get_mut(idx) {
            s.requests += 1;
        }
    }

    /// An attempt to `idx` failed.
    pub fn failure(&mut self, idx: usize) {
        self.failures += 1;
        if let Some(s) = self.servers.get_mut(idx) {
            s.failures += 1;
        }
    }

    pub fn ejection(&mut self, idx: usize) {
        if let Some(s) = self.servers.get_mut(idx) {
            s.ejections += 1;
        }
    }
}
