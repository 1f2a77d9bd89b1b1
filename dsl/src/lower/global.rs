//! The `global` block: workers, the admin endpoint, the pid file, request limits, client
//! timeouts, the access log, trusted proxies and per-request metrics.

use super::args::Args;
use super::Lower;
use crate::ast::{Body, Directive};
use crate::diag;
use bext_ir::{AccessLog, LogFormat, LogTarget, Workers};
use std::collections::HashMap;

impl Lower<'_> {
    pub(super) fn global(&mut self, d: &Directive) {
        let mut a = self.args(d);
        let Some(body) = self.block(&mut a) else {
            return;
        };
        self.done(&mut a);
        let mut seen = HashMap::new();
        for d in &body.items {
            if !self.known("global", d) || !self.once(&mut seen, d) {
                continue;
            }
            let mut a = self.args(d);
            match d.name.as_str() {
                "workers" => {
                    if a.eat("auto") {
                        self.config.global.workers = Workers::Auto;
                    } else if let Some(n) = self.next_number(&mut a, 1, 1024) {
                        self.config.global.workers = Workers::Count(n as u16);
                    }
                }
                "admin" => self.admin(&mut a),
                "pid_file" => self.config.global.pid_file = self.value(&mut a, "a file path"),
                "metrics" => {
                    if let Some(on) = self.on_off(&mut a, "metrics value") {
                        self.config.global.metrics = on;
                    }
                }
                "trusted_proxies" => {
                    let what = "an address or CIDR such as 10.0.0.0/8";
                    let mut list = vec![];
                    let mut next = self.need(&mut a, what);
                    while let Some(x) = next {
                        if let Some(c) = self.cidr(x) {
                            list.push(c);
                        }
                        next = a.next();
                    }
                    self.config.global.trusted_proxies = list;
                }
                "limits" => {
                    if let Some(b) = self.block(&mut a) {
                        self.limits(b);
                    }
                }
                "timeouts" => {
                    if let Some(b) = self.block(&mut a) {
                        self.global_timeouts(b);
                    }
                }
                _ => {
                    // access_log
                    if let Some(x) = self.text(&mut a, "stdout, stderr or a file path") {
                        let target = if x.is_word("stdout") {
                            LogTarget::Stdout
                        } else if x.is_word("stderr") {
                            LogTarget::Stderr
                        } else {
                            LogTarget::File(x.text().to_string())
                        };
                        let mut format = LogFormat::Json;
                        if let Some(f) = a.next() {
                            match self.keyword(f, "log format", &["json", "combined"]) {
                                Some(0) => format = LogFormat::Json,
                                Some(_) => format = LogFormat::Combined,
                                None => {}
                            }
                        }
                        self.config.global.access_log = Some(AccessLog {
                            target,
                            format,
                            at: self.loc(d.name_span),
                        });
                    }
                }
            }
            self.done(&mut a);
        }
    }

    /// `admin ADDR [token_file F]`: a loopback address or a unix socket path, and the file
    /// holding the bearer token callers must present.
    fn admin(&mut self, a: &mut Args<'_>) {
        if let Some(x) = self.text(a, "a loopback address or a unix socket path") {
            let t = x.text();
            if t.starts_with('/') {
                self.config.global.admin = Some(t.to_string());
            } else if let Some(addr) = self.socket_addr(x) {
                match addr.parse::<std::net::SocketAddr>() {
                    Ok(sa) if !sa.ip().is_loopback() => self.emit(
                        diag::error(
                            "E0601",
                            x.span,
                            format!("the admin endpoint cannot listen on `{addr}`: not a loopback address"),
                        )
                        .help("use a loopback address or a unix socket, such as `127.0.0.1:9901` or \"/run/bext/admin.sock\""),
                    ),
                    _ => self.config.global.admin = Some(addr),
                }
            }
        }
        if a.eat("token_file") {
            let Some(x) = self.text(a, "the path of the file holding the token") else {
                return;
            };
            let path = x.text().to_string();
            if self.read_files {
                if let Err(why) = bext_ir::read_admin_token(std::path::Path::new(&path)) {
                    self.emit(
                        diag::error(
                            "E0602",
                            x.span,
                            format!("admin token file `{path}` cannot be used: {why}"),
                        )
                        .help("write the token on one line in a file only its owner can read (`chmod 600`)"),
                    );
                }
            }
            self.config.global.admin_token_file = Some(path);
        }
    }

    fn limits(&mut self, body: &Body) {
        let mut seen = HashMap::new();
        for d in &body.items {
            if !self.known("limits", d) || !self.once(&mut seen, d) {
                continue;
            }
            let mut a = self.args(d);
            match d.name.as_str() {
                "headers" => {
                    if let Some(n) = self.next_number(&mut a, 1, 10_000) {
                        self.config.global.limits.headers = n as u32;
                    }
                }
                "connections" => {
                    if let Some(n) = self.next_number(&mut a, 1, 1_000_000) {
                        self.config.global.limits.connections = n as u32;
                    }
                }
                "keepalive_requests" => {
                    if let Some(n) = self.next_number(&mut a, 1, 1_000_000_000) {
                        self.config.global.limits.keepalive_requests = n as u32;
                    }
                }
                name => {
                    if let Some(n) = self.next_size(&mut a) {
                        let l = &mut self.config.global.limits;
                        match name {
                            "header_bytes" => l.header_bytes = n,
                            "uri_bytes" => l.uri_bytes = n,
                            _ => l.body_bytes = n,
                        }
                    }
                }
            }
            self.done(&mut a);
        }
    }

    fn global_timeouts(&mut self, body: &Body) {
        let mut seen = HashMap::new();
        for d in &body.items {
            if !self.known("global timeouts", d) || !self.once(&mut seen, d) {
                continue;
            }
            let mut a = self.args(d);
            if let Some(ms) = self.next_duration(&mut a) {
                let t = &mut self.config.global.timeouts;
                match d.name.as_str() {
                    "header" => t.header_ms = ms,
                    "body" => t.body_ms = ms,
                    "idle" => t.idle_ms = ms,
                    _ => t.drain_ms = ms,
                }
            }
            self.done(&mut a);
        }
    }
}
