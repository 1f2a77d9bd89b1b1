//! Shared test scaffolding: a cache on a hand-moved clock, and requests and responses written
//! as string tables.
#![allow(dead_code)]

use bext_cache::{
    Cache, Clock, Commit, Config, DontStore, Field, Lookup, ManualClock, Request, Response, Scheme,
};

/// Field lines written as a table.
pub type Lines<'a> = &'a [(&'a str, &'a str)];

/// The time every test starts at.
pub const T0: i64 = 1_700_000_000;

/// An HTTP date `offset` seconds from [`T0`].
pub fn date(offset: i64) -> String {
    String::from_utf8(bext_http1::date::format_http_date(T0 + offset).to_vec()).unwrap()
}

pub fn lines<'a>(h: &'a [(&'a str, &'a str)]) -> Vec<Field<'a>> {
    h.iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect()
}

pub fn request<'a>(method: &'a str, target: &'a str, headers: &'a [Field<'a>]) -> Request<'a> {
    Request {
        method: method.as_bytes(),
        scheme: Scheme::Https,
        authority: b"example.com",
        target: target.as_bytes(),
        headers,
        has_body: false,
    }
}

pub struct Harness {
    pub cache: Cache<ManualClock>,
    pub clock: ManualClock,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(Config::default())
    }

    pub fn with(config: Config) -> Self {
        let clock = ManualClock::at(T0);
        Harness {
            cache: Cache::new(config, clock.clone()),
            clock,
        }
    }

    /// Runs a response for GET `target` through store and commit.
    pub fn fill(
        &mut self,
        target: &str,
        req_headers: &[(&str, &str)],
        status: u16,
        resp_headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Commit, DontStore> {
        let rl = lines(req_headers);
        let req = request("GET", target, &rl);
        let hl = lines(resp_headers);
        let resp = Response {
            status,
            headers: &hl,
        };
        let now = self.clock.now();
        let mut p = self.cache.store(&req, &resp, now)?;
        p.push(body.as_bytes());
        Ok(self.cache.commit(p, true))
    }

    pub fn get(&mut self, target: &str, req_headers: &[(&str, &str)]) -> Lookup {
        self.lookup("GET", target, req_headers)
    }

    pub fn lookup(&mut self, method: &str, target: &str, req_headers: &[(&str, &str)]) -> Lookup {
        let rl = lines(req_headers);
        let req = request(method, target, &rl);
        self.cache.lookup(&req)
    }

    /// Stores a response and reports whether a following plain GET is a fresh hit.
    pub fn reused(&mut self, status: u16, resp_headers: &[(&str, &str)]) -> bool {
        let _ = self.fill("/r", &[], status, resp_headers, "body");
        matches!(self.get("/r", &[]), Lookup::Fresh(_))
    }
}
