//! HTTP dates (IMF-fixdate, RFC 9110 §5.6.7) for the `Date` field and access logs. Each worker
//! formats the current second once and reuses it for every response in that second.

use std::time::{SystemTime, UNIX_EPOCH};

use bext_http1::date::MONTHS;

/// Calendar fields of a Unix time (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
}

pub fn civil(secs: u64) -> Civil {
    let (year, month, day) = bext_http1::date::civil((secs / 86_400) as i64);
    let rem = secs % 86_400;
    Civil {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        min: (rem / 60 % 60) as u32,
        sec: (rem % 60) as u32,
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
pub fn http_date(secs: u64) -> String {
    let out = bext_http1::date::format_http_date(secs.min(i64::MAX as u64) as i64);
    String::from_utf8_lossy(&out).into_owned()
}

fn month_name(m: u32) -> &'static str {
    std::str::from_utf8(MONTHS[(m - 1) as usize]).unwrap_or("???")
}

/// `10/Oct/2000:13:55:36 +0000` (the combined log format's time).
pub fn clf_date(secs: u64) -> String {
    let c = civil(secs);
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        c.day,
        month_name(c.month),
        c.year,
        c.hour,
        c.min,
        c.sec
    )
}

/// `2000-10-10T13:55:36Z`
pub fn iso_date(secs: u64) -> String {
    let c = civil(secs);
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.min, c.sec
    )
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let table = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT", "1970-01-01T00:00:00Z"),
            (
                784_111_777,
                "Sun, 06 Nov 1994 08:49:37 GMT",
                "1994-11-06T08:49:37Z",
            ),
            (
                951_782_400,
                "Tue, 29 Feb 2000 00:00:00 GMT",
                "2000-02-29T00:00:00Z",
            ),
            (
                4_102_444_799,
                "Thu, 31 Dec 2099 23:59:59 GMT",
                "2099-12-31T23:59:59Z",
            ),
        ];
        for (secs, http, iso) in table {
            assert_eq!(http_date(secs), http);
            assert_eq!(iso_date(secs), iso);
        }
        assert_eq!(clf_date(971_185_336), "10/Oct/2000:13:42:16 +0000");
    }
}
