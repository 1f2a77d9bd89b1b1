//! Runs one case against a running proxy and its recording origin, and says what differed.

use crate::case::{escape, Case, ExpectedForward};
use crate::client::{exchange, Client};
use crate::origin::{Forwarded, Origin, Script};
use crate::wire::Message;
use std::net::SocketAddr;
use std::time::Duration;

/// Bounds every wait of a case (a failing proxy never hangs the suite; no timing is asserted).
pub const LIMIT: Duration = Duration::from_secs(10);

/// Run `case` against the proxy at `proxy`, which forwards every request to `origin`.
/// `Ok(())` when everything the case expects was observed, else each difference, one a line.
pub fn run_case(case: &Case, proxy: SocketAddr, origin: &Origin) -> Result<(), String> {
    origin.clear_scripts();
    let mark = origin.mark();
    if let Some(u) = &case.upstream {
        origin.push_script(Script::Reply(u.response.clone(), u.then));
    }
    let to_head: Vec<bool> = case.expect.responses.iter().map(|r| r.to_head).collect();
    let obs = exchange(proxy, &case.send, &to_head, case.expect.close, LIMIT);
    barrier(proxy)?;
    origin.clear_scripts();
    let forwarded = origin.forwarded_since(mark);

    let mut diffs = Vec::new();
    let got: Vec<String> = obs
        .responses
        .iter()
        .map(|m| {
            let s = m.status().map_or("?".into(), |s| s.to_string());
            if m.truncated {
                format!("{s}:truncated")
            } else {
                s
            }
        })
        .collect();
    let want: Vec<String> = case
        .expect
        .responses
        .iter()
        .map(|r| {
            if r.truncated {
                format!("{}:truncated", r.status)
            } else {
                r.status.to_string()
            }
        })
        .collect();
    if got != want {
        diffs.push(format!(
            "responses: want [{}], got [{}]",
            want.join(" "),
            got.join(" ")
        ));
    }
    if let Some(m) = &obs.malformed {
        diffs.push(format!("client: {m}"));
    }
    if obs.timed_out {
        diffs.push("client: timed out waiting for a response".into());
    }
    if case.expect.close && !obs.closed && !obs.timed_out && obs.malformed.is_none() {
        diffs.push("connection: want closed, the server kept it open".into());
    }
    if !case.expect.close && obs.closed {
        diffs.push("connection: want kept open, the server closed it".into());
    }
    if !obs.extra.is_empty() {
        diffs.push(format!(
            "client: bytes beyond the expected responses: {}",
            escape(&obs.extra[..obs.extra.len().min(200)])
        ));
    }
    if let Some(first) = obs.responses.first() {
        for (name, value) in &case.response_has {
            let vals: Vec<&[u8]> = first.all(name).collect();
            if vals != [value.as_slice()] {
                let got: Vec<String> = vals.iter().map(|v| escape(v)).collect();
                diffs.push(format!(
                    "response: {name}: want exactly `{}`, got {got:?}",
                    escape(value)
                ));
            }
        }
        for name in &case.response_lacks {
            if first.count(name) != 0 {
                let got: Vec<String> = first.all(name).map(escape).collect();
                diffs.push(format!("response: must not carry {name}, has {got:?}"));
            }
        }
    }
    if forwarded.len() != case.forward.len() {
        diffs.push(format!(
            "origin: want {} forwarded request(s), got {}: {}",
            case.forward.len(),
            forwarded.len(),
            describe(&forwarded)
        ));
    }
    for (i, (want, got)) in case.forward.iter().zip(&forwarded).enumerate() {
        match &got.message {
            Err(e) => diffs.push(format!(
                "origin: forwarded request {i} has no single reading: {e}"
            )),
            Ok(m) => check_forward(i, want, m, &mut diffs),
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("\n"))
    }
}

/// A request on a fresh connection whose answer shows the proxy has finished the case.
fn barrier(proxy: SocketAddr) -> Result<(), String> {
    let mut c = Client::connect(proxy, LIMIT).map_err(|e| format!("barrier connect: {e}"))?;
    c.send(
        b"GET /__conformance/barrier HTTP/1.1\r\nHost: barrier.test\r\nConnection: close\r\n\r\n",
    );
    match c.read_response(false) {
        Ok(Some(m)) if m.status() == Some(200) => Ok(()),
        other => Err(format!("barrier request failed: {other:?}")),
    }
}

fn describe(f: &[Forwarded]) -> String {
    let v: Vec<String> = f
        .iter()
        .map(|f| match &f.message {
            Ok(m) => format!("`{}`", m.start_line),
            Err(e) => format!("<unreadable: {e}>"),
        })
        .collect();
    format!("[{}]", v.join(", "))
}

/// Invariants every forwarded request must meet, then the case's own expectations.
fn check_forward(i: usize, want: &ExpectedForward, m: &Message, diffs: &mut Vec<String>) {
    if m.start_line != want.line {
        diffs.push(format!(
            "origin: request {i} line: want `{}`, got `{}`",
            want.line, m.start_line
        ));
    }
    // One Host: the origin must route exactly as the proxy did.
    if m.count("host") != 1 {
        diffs.push(format!(
            "origin: request {i} has {} Host fields",
            m.count("host")
        ));
    }
    // Framing and routing never come from a trailer (RFC 9110 §6.5.1): an origin that merges
    // trailers into the head would read them.
    for (name, v) in &m.trailers {
        if ["host", "content-length", "transfer-encoding"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            diffs.push(format!(
                "origin: request {i} carries {name} as a trailer: `{}`",
                escape(v)
            ));
        }
    }
    for (name, value) in &want.has {
        let vals: Vec<&[u8]> = m.all(name).collect();
        if vals != [value.as_slice()] {
            let got: Vec<String> = vals.iter().map(|v| escape(v)).collect();
            diffs.push(format!(
                "origin: request {i} {name}: want exactly `{}`, got {:?}",
                escape(value),
                got
            ));
        }
    }
    for name in &want.present {
        if m.count(name) != 1 {
            diffs.push(format!(
                "origin: request {i} must carry one {name}, has {}",
                m.count(name)
            ));
        }
    }
    for name in &want.lacks {
        if m.count(name) != 0 {
            let got: Vec<String> = m.all(name).map(escape).collect();
            diffs.push(format!(
                "origin: request {i} must not carry {name}, has {got:?}"
            ));
        }
        if let Some((_, v)) = m
            .trailers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            diffs.push(format!(
                "origin: request {i} must not carry {name}, has it as a trailer: `{}`",
                escape(v)
            ));
        }
    }
    if m.body != want.body {
        diffs.push(format!(
            "origin: request {i} body: want `{}`, got `{}`",
            escape(&want.body),
            escape(&m.body)
        ));
    }
}
