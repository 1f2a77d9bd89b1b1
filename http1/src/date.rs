//! HTTP dates (RFC 9110 §5.6.7): IMF-fixdate out; IMF-fixdate, RFC 850 and asctime in. The
//! engine's `Date` field and access-log times and the static handler's `Last-Modified` and
//! conditional requests all use these, so there is one calendar in the project.

/// Day names from 1970-01-01, a Thursday.
pub const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
/// Month names, January first.
pub const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Days since 1970-01-01 → (year, month 1–12, day 1–31) (Howard Hinnant's `civil_from_days`).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month 1–12, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats `secs` (Unix time) as an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT` (29 bytes).
/// Times before 1970 or after 9999 are clamped (a file's mtime can be anything).
pub fn format_http_date(secs: i64) -> [u8; 29] {
    let secs = secs.clamp(0, 253_402_300_799);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[days.rem_euclid(7) as usize]);
    two(&mut out[5..7], d);
    out[8..11].copy_from_slice(MONTHS[m as usize - 1]);
    let y = y as u32;
    two(&mut out[12..14], y / 100);
    two(&mut out[14..16], y % 100);
    two(&mut out[17..19], (rem / 3600) as u32);
    two(&mut out[20..22], (rem / 60 % 60) as u32);
    two(&mut out[23..25], (rem % 60) as u32);
    out
}

fn two(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

fn num(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |a, &b| a * 10 + u32::from(b - b'0')))
}

fn month(s: &[u8]) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| &m[..] == s)
        .map(|i| i as u32 + 1)
}

fn hms(s: &[u8]) -> Option<i64> {
    if s.len() != 8 || s[2] != b':' || s[5] != b':' {
        return None;
    }
    let (h, m, sec) = (num(&s[..2])?, num(&s[3..5])?, num(&s[6..])?);
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(i64::from(h * 3600 + m * 60 + sec))
}

fn assemble(y: i64, m: u32, d: u32, t: i64) -> Option<i64> {
    if !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + t)
}

/// Parses an HTTP date in any of the three forms RFC 9110 §5.6.7 requires recipients to
/// accept; `None` for anything else (a condition with an invalid date is ignored). The day
/// name is not checked against the date.
pub fn parse_http_date(s: &[u8]) -> Option<i64> {
    let s = s.trim_ascii();
    let words: [&[u8]; 6] = {
        let mut w: [&[u8]; 6] = [&[]; 6];
        for (n, part) in s
            .split(|&b| b == b' ')
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            if n == 6 {
                return None;
            }
            w[n] = part;
        }
        w
    };
    if s.len() == 29 && s[3] == b',' {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        if words[5] != b"GMT" || words[1].len() != 2 || words[3].len() != 4 {
            return None;
        }
        let (d, m, y) = (num(words[1])?, month(words[2])?, num(words[3])?);
        return assemble(i64::from(y), m, d, hms(words[4])?);
    }
    if let Some(comma) = s.iter().position(|&b| b == b',') {
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT; a two-digit year more than 50 years
        // ahead is in the past century (RFC 9110 §5.6.7).
        if comma < 6 || words[3] != b"GMT" || !words[4].is_empty() {
            return None;
        }
        let dmy = words[1];
        if dmy.len() != 9 || dmy[2] != b'-' || dmy[6] != b'-' {
            return None;
        }
        let (d, m, yy) = (num(&dmy[..2])?, month(&dmy[3..6])?, num(&dmy[7..])?);
        let y = if yy < 70 { 2000 + yy } else { 1900 + yy };
        return assemble(i64::from(y), m, d, hms(words[2])?);
    }
    // asctime: Sun Nov  6 08:49:37 1994
    if words[0].len() != 3 || !words[5].is_empty() || words[4].len() != 4 {
        return None;
    }
    let (m, d, y) = (month(words[1])?, num(words[2])?, num(words[4])?);
    if words[2].len() > 2 {
        return None;
    }
    assemble(i64::from(y), m, d, hms(words[3])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_example_in_all_three_forms() {
        let t = 784_111_777;
        assert_eq!(&format_http_date(t), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994"), Some(t));
        for bad in [
            &b""[..],
            b"yesterday",
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 32 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 25:49:37 GMT",
            b"1994-11-06",
        ] {
            assert_eq!(
                parse_http_date(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn round_trip_over_centuries() {
        for t in [
            0,
            951_782_400,
            1_709_164_800,
            4_102_444_800,
            253_402_300_799,
        ] {
            assert_eq!(parse_http_date(&format_http_date(t)), Some(t), "{t}");
        }
    }
}
