//! Dates for people: milliseconds since the Unix epoch as a UTC calendar date and time.
//!
//! GAIA stores every instant as [`Millis`] and only ever shows them in UTC, so one small
//! function (the proleptic Gregorian calendar from a day count) and its inverse are all the
//! calendar it needs; a date crate would bring time zones nothing here uses. The one date GAIA
//! reads is a worker's `--deadline` ([`parse_rfc3339`]).

use crate::model::Millis;

/// A UTC date and time of day, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UtcTime {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl UtcTime {
    /// The UTC time `ms` milliseconds after 1970-01-01 00:00:00 (sub-second part dropped).
    pub fn from_millis(ms: Millis) -> UtcTime {
        let secs = (ms / 1000) as i64;
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400) as u32;
        UtcTime {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: (rem % 3600) / 60,
            second: rem % 60,
        }
    }

    /// `YYYY-MM-DD HH:MM` (to the minute, for messages).
    pub fn to_minutes(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }
}

/// `YYYY-MM-DD HH:MM:SS`.
impl std::fmt::Display for UtcTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`: exact for every `i64` day count a `Millis` can give).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month 1..=12, day 1..=31) → days since 1970-01-01: the inverse of
/// [`civil_from_days`] (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Reads an RFC 3339 date and time (`2026-12-03T18:00:00Z`, `2026-12-03 18:00:00+01:00`,
/// seconds optional, a fraction of a second ignored) as milliseconds since the epoch. An offset
/// (`Z` or `±HH:MM`) is required: a time without a zone means nothing the same on two machines.
pub fn parse_rfc3339(s: &str) -> Result<Millis, String> {
    let bad = || {
        format!(
            "{s:?} is not a date and time like 2026-12-03T18:00:00Z (UTC) or 2026-12-03T19:00:00+01:00"
        )
    };
    let s = s.trim();
    if s.len() < 16 || !s.is_char_boundary(10) || !s.is_char_boundary(11) {
        return Err(bad());
    }
    let (date, rest) = (&s[..10], &s[11..]);
    if !matches!(s.as_bytes()[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    let num = |t: &str| -> Result<i64, String> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse::<i64>().map_err(|_| bad())
    };
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d[..] else {
        return Err(bad());
    };
    let (y, mo, da) = (num(y)?, num(mo)?, num(da)?);
    // The zone: Z, or the last + / - (the date's dashes are already cut off).
    let (clock, offset_min) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (c, z) = (&rest[..i], &rest[i..]);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (h, m) = z[1..].split_once(':').ok_or_else(bad)?;
        (c, sign * (num(h)? * 60 + num(m)?))
    } else {
        return Err(bad());
    };
    let clock = clock.split('.').next().unwrap_or("");
    let t: Vec<&str> = clock.split(':').collect();
    let (h, mi, se) = match t[..] {
        [h, m] => (num(h)?, num(m)?, 0),
        [h, m, s] => (num(h)?, num(m)?, num(s)?),
        _ => return Err(bad()),
    };
    let month_ok = (1..=12).contains(&mo);
    let day_ok = month_ok && {
        let next = if mo == 12 { (y + 1, 1) } else { (y, mo + 1) };
        let len = days_from_civil(next.0, next.1 as u32, 1) - days_from_civil(y, mo as u32, 1);
        (1..=len).contains(&da)
    };
    if !day_ok || h > 23 || mi > 59 || se > 60 || offset_min.abs() > 24 * 60 {
        return Err(bad());
    }
    let secs = days_from_civil(y, mo as u32, da as u32) * 86_400 + h * 3600 + mi * 60 + se
        - offset_min * 60;
    u64::try_from(secs)
        .map(|s| s * 1000)
        .map_err(|_| format!("{s:?} is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(UtcTime::from_millis(0).to_string(), "1970-01-01 00:00:00");
        assert_eq!(
            UtcTime::from_millis(1_700_000_000_000).to_string(),
            "2023-11-14 22:13:20"
        );
        assert_eq!(
            UtcTime::from_millis(1_700_000_000_999).to_minutes(),
            "2023-11-14 22:13"
        );
        // Leap days, century rules.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(47_540), (2100, 2, 28));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn rfc3339_times_read_back_as_the_instants_they_name() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14 23:13:20+01:00"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T17:13:20.5-05:00"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(parse_rfc3339("2023-11-14T22:13z"), Ok(1_699_999_980_000));
        for bad in [
            "2023-11-14T22:13:20",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-11-14T24:00:00Z",
            "tomorrow",
            "2023-11-14Tx",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        for days in [-1000, 0, 11_016, 47_541, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    /// Day by day over four centuries: the date always moves to the next day of a valid
    /// calendar (month lengths, leap years), never skipping or repeating one.
    #[test]
    fn consecutive_days_are_consecutive_dates() {
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_len = |y: i64, m: u32| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut prev = civil_from_days(-146_097);
        assert_eq!(prev, (1570, 1, 1));
        for days in -146_096..146_097 {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = prev;
            let expected = if pd < month_len(py, pm) {
                (py, pm, pd + 1)
            } else if pm < 12 {
                (py, pm + 1, 1)
            } else {
                (py + 1, 1, 1)
            };
            assert_eq!((y, m, d), expected, "day {days}");
            prev = (y, m, d);
        }
    }
}
