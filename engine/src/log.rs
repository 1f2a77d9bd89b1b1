//! Access log, one buffer per core: lines are appended to the worker's own buffer without any
//! lock and handed, a whole buffer at a time, to the process's log writer thread when the
//! buffer is large or on the worker's tick (every 100 ms). Only that thread writes: a worker
//! never calls `write` on a log sink, so a stalled sink (a pipe nobody reads, a full disk, a
//! terminal scrolled back) never stalls a core. The writer's queue is bounded; when it is full
//! the worker drops the buffer's lines and counts them (`log_dropped` per worker in `/status`),
//! so memory stays bounded too. Files are opened with `O_APPEND` by each worker, and the writer
//! writes whole buffers, so lines from different cores never interleave.

use crate::pipeline::AccessLogSpec;
use crate::stage::LogEntry;
use bext_ir::{LogFormat, LogTarget};
use std::io::Write;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const FLUSH_AT: usize = 32 * 1024;

/// Buffers the writer thread may have queued, over all cores (each up to about `FLUSH_AT`):
/// about 2 MiB of log lines in flight before lines are dropped.
const QUEUE: usize = 64;

enum Sink {
    Stdout,
    Stderr,
    File(std::fs::File),
    /// The file could not be opened; the reason was printed once.
    Broken,
}

impl Sink {
    fn write_all(&self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout => std::io::stdout().lock().write_all(buf),
            Sink::Stderr => std::io::stderr().lock().write_all(buf),
            Sink::File(f) => {
                let mut f: &std::fs::File = f;
                f.write_all(buf)
            }
            Sink::Broken => Ok(()),
        }
    }
}

enum Msg {
    Write(Arc<Sink>, Vec<u8>),
    /// Answer once everything queued before it is written.
    Flushed(mpsc::Sender<()>),
}

/// The queue of the process's log writer thread (`None`: it could not be started).
static WRITER: OnceLock<Option<SyncSender<Msg>>> = OnceLock::new();

/// The process's log writer thread, started with the first access log.
fn writer() -> Option<&'static SyncSender<Msg>> {
    WRITER
        .get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
            let spawned = std::thread::Builder::new()
                .name("bext-log".into())
                .spawn(move || {
                    for m in rx {
                        match m {
                            // A failing sink must not take the data plane down; lines are
                            // dropped.
                            Msg::Write(sink, buf) => {
                                let _ = sink.write_all(&buf);
                            }
                            Msg::Flushed(ack) => {
                                let _ = ack.send(());
                            }
                        }
                    }
                });
            match spawned {
                Ok(_) => Some(tx),
                Err(e) => {
                    eprintln!("bext: cannot start the access log writer: {e}; lines are dropped");
                    None
                }
            }
        })
        .as_ref()
}

/// Wait until the lines handed to the writer so far are written, for at most `limit` (a sink
/// that does not drain, such as a pipe nobody reads, must not hold up a shutdown forever).
/// Returns true when everything was written.
pub fn drain(limit: Duration) -> bool {
    // Nothing was ever logged: no writer to wait for.
    let Some(tx) = WRITER.get().and_then(Option::as_ref) else {
        return true;
    };
    let deadline = Instant::now() + limit;
    let (ack, done) = mpsc::channel();
    let mut m = Msg::Flushed(ack);
    loop {
        match tx.try_send(m) {
            Ok(()) => break,
            Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                m = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return false,
        }
    }
    done.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .is_ok()
}

pub struct AccessLog {
    format: LogFormat,
    sink: Arc<Sink>,
    buf: Vec<u8>,
    /// Lines in `buf`.
    lines: u64,
    /// Lines dropped because the writer's queue was full, not yet published.
    dropped: u64,
}

impl AccessLog {
    pub fn open(spec: &AccessLogSpec) -> AccessLog {
        // Standard output and error are written through descriptors of their own, so a
        // stalled sink holds the writer thread, never the process's stdout or stderr lock.
        let std_sink = |fd, fallback| {
            crate::sys::duplicate(fd)
                .map(|d| Sink::File(std::fs::File::from(d)))
                .unwrap_or(fallback)
        };
        let sink = match &spec.target {
            LogTarget::Stdout => std_sink(1, Sink::Stdout),
            LogTarget::Stderr => std_sink(2, Sink::Stderr),
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
            sink: Arc::new(sink),
            buf: Vec::with_capacity(FLUSH_AT + 1024),
            lines: 0,
            dropped: 0,
        }
    }

    pub fn record(&mut self, e: &LogEntry<'_>, now_secs: u64) {
        match self.format {
            LogFormat::Json => format_json(&mut self.buf, e, now_secs),
            LogFormat::Combined => format_combined(&mut self.buf, e, now_secs),
        }
        self.lines += 1;
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Hand the buffer to the writer thread without waiting; when its queue is full, the lines
    /// are dropped and counted.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let buf = std::mem::replace(&mut self.buf, Vec::with_capacity(FLUSH_AT + 1024));
        let lines = std::mem::take(&mut self.lines);
        let sent =
            writer().is_some_and(|tx| tx.try_send(Msg::Write(self.sink.clone(), buf)).is_ok());
        if !sent {
            self.dropped += lines;
        }
    }

    /// Lines dropped since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

fn json_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    json_escaped(out, s);
    out.push(b'"');
}

/// `s` as the inside of a JSON string: printable ASCII as it is (one copy when nothing needs
/// escaping), `"` and `\\` escaped, every other byte as `\\u00XX`.
pub(crate) fn json_escaped(out: &mut Vec<u8>, s: &[u8]) {
    if s.iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.extend_from_slice(s);
        return;
    }
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
    if let Some((trace, span)) = e.trace {
        out.extend_from_slice(b",\"trace_id\":");
        json_str(out, trace.as_bytes());
        out.extend_from_slice(b",\"span_id\":");
        json_str(out, span.as_bytes());
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
    line.extend_from_slice(match (e.http3, e.http10) {
        (true, _) => b" HTTP/3",
        (false, true) => b" HTTP/1.0",
        (false, false) => b" HTTP/1.1",
    });
    clf_field(out, Some(&line));
    out.extend_from_slice(format!(" {} {} ", e.status, e.bytes_sent).as_bytes());
    clf_field(out, e.referer);
    out.push(b' ');
    clf_field(out, e.user_agent);
    // With tracing, the trace id as one more quoted field (as nginx's `$request_id` is often
    // appended to the combined layout).
    if let Some((trace, _)) = e.trace {
        out.push(b' ');
        clf_field(out, Some(trace.as_bytes()));
    }
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
            http3: false,
            host: b"example.com",
            status: 200,
            bytes_sent: 12,
            duration_us: 345,
            request_id: "rid",
            upstream: Some("127.0.0.1:9000".parse().unwrap()),
            error: None,
            referer: None,
            user_agent: Some(b"curl/8"),
            trace: None,
        }
    }

    #[test]
    fn the_trace_id_ends_both_layouts_when_tracing() {
        let e = LogEntry {
            trace: Some(("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")),
            ..entry()
        };
        let mut out = Vec::new();
        format_json(&mut out, &e, 0);
        assert!(String::from_utf8(out).unwrap().ends_with(
            ",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"00f067aa0ba902b7\"}\n"
        ));
        let mut out = Vec::new();
        format_combined(&mut out, &e, 0);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("\"curl/8\" \"4bf92f3577b34da6a3ce929d0e0e4736\"\n"));
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

    #[test]
    fn combined_lines_name_http3() {
        let mut out = Vec::new();
        let e = LogEntry {
            http3: true,
            ..entry()
        };
        format_combined(&mut out, &e, 0);
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.contains("\"GET /a?\\\"q\\\" HTTP/3\" 200 12 "),
            "{line}"
        );
    }
}
