//! Reading a process's CPU time and resident memory from `/proc`, for per-request costs.
//!
//! The harness charges a server with the user+system CPU time of its processes (all threads,
//! from `/proc/PID/stat`) over the measured window, divided by the requests completed in it,
//! and its memory with `VmRSS` from `/proc/PID/status`.

use std::fs;
use std::io;
use std::process::Command;

/// utime + stime of a process, in clock ticks, from the text of `/proc/PID/stat`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may itself contain spaces or ')':
    // fields are counted from the last ')'. utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` in KiB from the text of `/proc/PID/status`.
pub fn parse_status_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Total CPU ticks of the given processes.
pub fn cpu_ticks(pids: &[u32]) -> io::Result<u64> {
    let mut total = 0;
    for pid in pids {
        let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
        total += parse_stat_ticks(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/{pid}/stat unreadable"),
            )
        })?;
    }
    Ok(total)
}

/// Total resident memory of the given processes, in KiB.
pub fn rss_kib(pids: &[u32]) -> io::Result<u64> {
    let mut total = 0;
    for pid in pids {
        let text = fs::read_to_string(format!("/proc/{pid}/status"))?;
        total += parse_status_rss_kib(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/{pid}/status has no VmRSS"),
            )
        })?;
    }
    Ok(total)
}

/// Clock ticks per second (`getconf CLK_TCK`); 100 on every Linux this runs on when unknown.
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_are_utime_plus_stime() {
        let cases = [
            (
                "1234 (nginx) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 100 1000 10",
                Some(325),
            ),
            // A command name with spaces and a parenthesis.
            (
                "7 (my (odd) name) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 1 1",
                Some(7),
            ),
            ("garbage", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_stat_ticks(text), want, "{text}");
        }
    }

    #[test]
    fn rss_is_read_from_vmrss() {
        let status = "Name:\tnginx\nVmPeak:\t  9000 kB\nVmRSS:\t    4321 kB\nThreads:\t1\n";
        assert_eq!(parse_status_rss_kib(status), Some(4321));
        assert_eq!(parse_status_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        assert!(cpu_ticks(&[me]).is_ok());
        assert!(rss_kib(&[me]).unwrap() > 0);
    }
}
