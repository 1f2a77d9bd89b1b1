//! Session resumption state that outlives a configuration: the ticket keys and the stateful
//! session cache.
//!
//! One [`Resumption`] serves every core of a listener (the `ServerConfig` holding it is shared),
//! so a ticket issued on one core resumes on any other. A listener rebuilt by `bext reload`
//! takes the old listener's [`Resumption`] (see [`crate::load_with`]), so clients holding a
//! ticket or a session id resume after the reload instead of paying a full handshake.
//!
//! rustls refuses to resume a session under a server name other than the one it was
//! established for, for tickets and cached sessions, TLS 1.2 and 1.3 alike (its `can_resume`
//! compares the SNI stored in the session with the one of the new ClientHello), which is what
//! RFC 6066 §3 asks; `tests/resume.rs` checks it with a client that offers a ticket under
//! another name.

use std::sync::Arc;

use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};

use crate::policy::Provider;

/// Ticket encryption keys, rotated every 6 hours, shared by whoever holds a clone.
#[derive(Clone)]
pub struct TicketKeys(pub(crate) Arc<dyn ProducesTickets>);

impl TicketKeys {
    pub fn new(provider: Provider) -> Result<Self, rustls::Error> {
        provider.ticketer().map(TicketKeys)
    }

    /// Whether two handles share the same keys.
    pub fn same_keys(&self, other: &TicketKeys) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKeys(..)")
    }
}

/// What a listener resumes sessions with; cheap to clone, carried across reloads.
#[derive(Clone, Debug)]
pub struct Resumption {
    /// `None`: tickets off, sessions resume from the cache only.
    pub tickets: Option<TicketKeys>,
    pub sessions: Arc<dyn StoresServerSessions>,
    /// The number of sessions the cache holds.
    pub capacity: usize,
}

impl Resumption {
    pub fn new(provider: Provider, tickets: bool, capacity: usize) -> Result<Self, rustls::Error> {
        Ok(Resumption {
            tickets: if tickets {
                Some(TicketKeys::new(provider)?)
            } else {
                None
            },
            sessions: ServerSessionMemoryCache::new(capacity),
            capacity,
        })
    }

    /// The state for a rebuilt listener: what `self` has, where the new settings still want it.
    pub(crate) fn carried(
        &self,
        provider: Provider,
        tickets: bool,
        capacity: usize,
    ) -> Result<Self, rustls::Error> {
        Ok(Resumption {
            tickets: match (&self.tickets, tickets) {
                (_, false) => None,
                (Some(keys), true) => Some(keys.clone()),
                (None, true) => Some(TicketKeys::new(provider)?),
            },
            sessions: if capacity == self.capacity {
                self.sessions.clone()
            } else {
                ServerSessionMemoryCache::new(capacity)
            },
            capacity,
        })
    }
}
