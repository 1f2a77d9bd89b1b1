//! Access log, one buffer per core: lines are appended to the worker's own buffer without any
//! lock and written out in one `write` when the buffer is large or on the worker's tick (every
//! 100 ms). Files are opened with `O_APPEND` by each worker, so whole buffers from different
//! cores never interleave inside a line.

use crate::pipeline::AccessLogSpec;
use crate::stage::LogEntry;
use bext_ir::{LogFormat, LogTarget};
use std::io::Write;

const FLUSH_AT: usize = 32 * 1024;

enum Sink {
    Stdout,
    Stderr,
    File(std::fs::File),
    /// The file could not be opened; the reason was printed once.
    Broken,
}

pub struct AccessLog {
    format: LogFormat,
    sink: Sink,
    buf: Vec<u8>,
}

impl AccessLog {
    pub fn open(spec: &AccessLogSpec) -> AccessLog {
        let sink = match &spec.target {
            LogTarget::Stdout => Sink::Stdout,
            LogTarget::Stderr => Sink::Stderr,
            LogTarget::File(path) => match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                Ok(f) => Sink::File(f),
                Err(e) => {
                    eprintln!("bext: access log {path}: {e}");
                    Sink::Broken
                }
            },
        };
        AccessLog {
            format: spec.format,
            sink,
            buf: Vec::with_capacity(FLUSH_AT + 1024),
        }
    }

    pub fn record(&mut self, e: &LogEntry<'_>, now_secs: u64) {
        match self.format {
            LogFormat::Json => format_json(&mut self.buf, e, now_secs),
            LogFormat::Combined => format_combined(&mut self.buf, e, now_secs),
        }
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        // A failing log sink must not take the data plane down; lines are dropped.
        let _ = match &mut self.sink {
            Sink::Stdout => std::io::stdout().write_all(&self.buf),
            Sink::Stderr => std::io::stderr().write_all(&self.buf),
            Sink::File(f) => f.write_all(&self.buf),
            Sink::Broken => Ok(()),
        };
        self.buf.clear();
    }
}

fn json_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x20..=0x7e => out.push(b),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(b"0123456789abcdef"[(b >> 4) as usize]);
                out.push(b"0123456789abcdef"[(b & 0xf) as usize]);
            }
        }
    }
    out.push(b'"');
}

/// One JSON object per line.
pub fn format_json(out: &mut Vec<u8>, e: &LogEntry<'_>, now_secs: u64) {
    out.extend_from_slice(b"{\"time\":\"");
    out.extend_from_slice(crate::date::iso_date(now_secs).as_bytes());
    out.extend_from_slice(b"\",\"client\":\"");
    out.extend_from_slice(e.client.ip().to_string().as_bytes());
    out.extend_from_slice(b"\",\"method\":");
    json_str(out, e.method);
    out.extend_from_slice(b",\"target\":");
    json_str(out, e.target);
    out.extend_from_slice(b",\"host\":");
    json_str(out, e.host);
    out.extend_from_slice(
        format!(
            ",\"status\":{},\"bytes\":{},\"duration_us\":{},\"request_id\":",
            e.status, e.bytes_sent, e.duration_us
        )
        .as_bytes(),
    );
    json_str(out, e.request_id.as_bytes());
    if let Some(u) = e.upstream {
        out.extend_from_slice(b",\"upstream\":\"");
        out.extend_from_slice(u.to_string().as_bytes());
        out.push(b'"');
    }
    if let Some(err) = e.error {
        out.extend_from_slice(b",\"error\":\"");
        out.extend_from_slice(err.as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b"}\n");
}

fn clf_field(out: &mut Vec<u8>, v: Option<&[u8]>) {
    out.push(b'"');
    match v {
        Some(v) => {
            for &b in v {
                match b {
                    b'"' | b'\\' => {
                        out.push(b'\\');
                        out.push(b);
                    }
                    0x20..=0x7e => out.push(b),
                    _ => out.push(b'?'),
                }
            }
        }
        None => out.push(b'-'),
    }
    out.push(b'"');
}

/// The combined log format of Apache and nginx.
pub fn format_combined(out: &mut Vec<u8>, e: &LogEntry<'_>, now_secs: u64) {
    out.extend_from_slice(e.client.ip().to_string().as_bytes());
    out.extend_from_slice(b" - - [");
    out.extend_from_slice(crate::date::clf_date(now_secs).as_bytes());
    out.extend_from_slice(b"] ");
    let mut line = Vec::with_capacity(e.method.len() + e.target.len() + 10);
    line.extend_from_slice(e.method);
    line.push(b' ');
    line.extend_from_slice(e.target);
    line.extend_from_slice(if e.http10 { b" HTTP/1.0" } else { b" HTTP/1.1" });
    clf_field(out, Some(&line));
    out.extend_from_slice(format!(" {} {} ", e.status, e.bytes_sent).as_bytes());
    clf_field(out, e.referer);
    out.push(b' ');
    clf_field(out, e.user_agent);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> LogEntry<'static> {
        LogEntry {
            client: "10.0.0.1:5555".parse().unwrap(),
            method: b"GET",
            target: b"/a?\"q\"",
            http10: false,
            host: b"example.com",
            status: 200,
            bytes_sent: 12,
            duration_us: 345,
            request_id: "rid",
            upstream: Some("127.0.0.1:9000".parse().unwrap()),
            error: None,
            referer: None,
            user_agent: Some(b"curl/8"),
        }
    }

    #[test]
    fn json_lines_escape_and_carry_every_field() {
        let mut out = Vec::new();
        format_json(&mut out, &entry(), 0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"time\":\"1970-01-01T00:00:00Z\",\"client\":\"10.0.0.1\",\"method\":\"GET\",\"target\":\"/a?\\\"q\\\"\",\"host\":\"example.com\",\"status\":200,\"bytes\":12,\"duration_us\":345,\"request_id\":\"rid\",\"upstream\":\"127.0.0.1:9000\"}\n"
        );
    }

    #[test]
    fn combined_lines_match_the_apache_layout() {
        let mut out = Vec::new();
        format_combined(&mut out, &entry(), 0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "10.0.0.1 - - [01/Jan/1970:00:00:00 +0000] \"GET /a?\\\"q\\\" HTTP/1.1\" 200 12 \"-\" \"curl/8\"\n"
        );
    }
}
