//! Dates for people: milliseconds since the Unix epoch as a UTC calendar date and time.
//!
//! GAIA stores every instant as [`Millis`] and only ever shows them in UTC, so one small
//! function (the proleptic Gregorian calendar from a day count) is all the calendar it needs; a
//! date crate would bring time zones and parsing nothing here uses.

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

/// Reads an age as people write it: `180d`, `30d`, `12h`, `90m`, `45s`, `2w` (a plain number is
/// seconds). Returns seconds.
pub fn parse_age(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not an age: write it like 180d, 12h, 90m or 45s"))?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?}; use s, m, h, d or w (180d, 12h)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too long an age"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_people_write_them() {
        assert_eq!(parse_age("180d"), Ok(180 * 86_400));
        assert_eq!(parse_age("12h"), Ok(43_200));
        assert_eq!(parse_age("90m"), Ok(5_400));
        assert_eq!(parse_age("45"), Ok(45));
        assert_eq!(parse_age("2w"), Ok(14 * 86_400));
        assert!(parse_age("d").is_err());
        assert!(parse_age("3y").unwrap_err().contains("unknown unit"));
        assert!(parse_age("99999999999999999999d").is_err());
    }

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
