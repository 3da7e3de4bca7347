//! Numbers and times for people: one format for each kind of value, so a value reads the same
//! in every table and message of the `gaia` command (and of any tool that embeds gaia-core).
//!
//! | kind | format | examples |
//! |---|---|---|
//! | counts: jobs, rows, lines, evaluations, rates | whole, thousands separators | `7`, `1,350`, `1,234,567` |
//! | scores and other metric values (best, mean, σ, …) | at most 6 significant digits, shortest form | `-1285`, `-1304.7`, `0.4123`, `1.23457e-7` |
//! | fractions | whole percent | `42%` |
//! | durations | seconds with a tenth, then two units | `12.3s`, `3m05s`, `1h02m`, `2d03h` |
//! | sizes | bytes, then one decimal of kB, MB, GB, TB (powers of 1000) | `512 B`, `15.6 kB`, `1.2 GB` |
//! | instants | UTC, to the second ([`crate::time`]) | `2025-11-14 22:13:20` |
//! | ages | one unit | `12s ago`, `3m ago`, `5h ago`, `2d ago` |
//!
//! A missing value is `-`. What machines read keeps every digit instead: JSON and CSV exports,
//! and the GAIA lines `gaia logs` writes ([`crate::grammar::format_gen_line`], numbers by
//! [`shortest`]).

use crate::model::Millis;

/// A count with thousands separators: `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    thousands(n as i64)
}

/// A signed whole number with thousands separators: `-1234567` → `-1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Evaluations (stored as numbers), a rate, or any count that may be fractional or missing:
/// rounded to a whole [`count`]; `-` when missing or not finite.
pub fn evals(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() && v.abs() < 9.2e18 => thousands(v.round() as i64),
        Some(v) if v.is_nan() => "nan".into(),
        Some(v) if v.is_infinite() => if v > 0.0 { "inf" } else { "-inf" }.into(),
        _ => "-".into(),
    }
}

/// A score or any other metric value: at most 6 significant digits, written as
/// [`shortest`] writes them; `-` when missing.
pub fn score(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if !v.is_finite() => shortest(v),
        Some(v) => {
            // Round to 6 significant digits through their decimal form, then write the shortest
            // text of that: no binary noise (95.43999999999999 is 95.44).
            let rounded: f64 = format!("{v:.5e}").parse().unwrap_or(v);
            shortest(rounded)
        }
    }
}

/// The shortest text that reads back as exactly `v`: a plain decimal (`-55`, `-1304.7`,
/// `0.4123`, as CSV exports write numbers), an exponent only far from 1 (`1e-7`, `2.5e20`),
/// `nan`, `inf`, `-inf`.
pub fn shortest(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else if v == 0.0 || (1e-5..1e16).contains(&v.abs()) {
        // Display and LowerExp are Rust's shortest round-trip forms.
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// A fraction 0..1 as a whole percent: `0.423` → `42%`.
pub fn percent(f: f64) -> String {
    format!("{:.0}%", f * 100.0)
}

/// A duration: `12.3s`, `3m05s`, `1h02m`, `2d03h`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{:.1}s", ms as f64 / 1000.0),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A duration in seconds (`--wait`'s ETA, a study's): as [`duration`]; `-` if not finite.
pub fn seconds(secs: f64) -> String {
    if secs.is_finite() && secs >= 0.0 {
        duration((secs * 1000.0).min(u64::MAX as f64) as u64)
    } else {
        "-".into()
    }
}

/// A size: `512 B`, `15.6 kB`, `3.4 MB`, `1.2 GB`, `2.0 TB` (powers of 1000).
pub fn bytes(n: u64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")];
    let v = n as f64;
    for (scale, unit) in UNITS {
        // 999,950 bytes would round to "1000.0 kB": it is 1.0 MB.
        if v >= scale * 0.99995 {
            return format!("{:.1} {unit}", v / scale);
        }
    }
    format!("{n} B")
}

/// An instant, UTC, to the second: `2025-11-14 22:13:20`.
pub fn time(ms: Millis) -> String {
    crate::time::UtcTime::from_millis(ms).to_string()
}

/// How long ago an instant was, in one unit: `12s ago`, `3m ago`, `5h ago`, `2d ago`.
pub fn ago(ms: Millis) -> String {
    let s = crate::model::now_ms().saturating_sub(ms) / 1000;
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// `1 line`, `2 lines`, `1,000 lines`: a count and a noun in the right number (`word` + `s`).
pub fn plural(n: u64, word: &str) -> String {
    format!("{} {word}{}", count(n), if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_format_per_kind() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(thousands(-1_234_567), "-1,234,567");
        // Evals are counts: never `1.235e6`, never `1234567.0`.
        assert_eq!(evals(Some(1_234_567.0)), "1,234,567");
        assert_eq!(evals(Some(10.0)), "10");
        assert_eq!(evals(Some(49.6)), "50");
        assert_eq!(evals(None), "-");
        // Scores: one rule, whatever the magnitude (the log mixed `-1285` and `-1304.70`).
        assert_eq!(score(Some(-1285.0)), "-1285");
        assert_eq!(score(Some(-1304.7)), "-1304.7");
        assert_eq!(score(Some(95.43999999999999)), "95.44");
        assert_eq!(score(Some(0.41234567)), "0.412346");
        assert_eq!(score(Some(1_234_567.0)), "1234570");
        assert_eq!(score(Some(-1.2345678e-7)), "-1.23457e-7");
        assert_eq!(score(Some(f64::NAN)), "nan");
        assert_eq!(score(Some(f64::NEG_INFINITY)), "-inf");
        assert_eq!(score(None), "-");
        assert_eq!(shortest(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(shortest(2.5e20), "2.5e20");
        assert_eq!(percent(0.423), "42%");
        assert_eq!(duration(12_345), "12.3s");
        assert_eq!(duration(61_000), "1m01s");
        assert_eq!(duration(3_720_000), "1h02m");
        assert_eq!(duration(183_600_000), "2d03h");
        assert_eq!(seconds(f64::INFINITY), "-");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(15_600), "15.6 kB");
        assert_eq!(bytes(999_999), "1.0 MB");
        assert_eq!(bytes(1_200_000_000), "1.2 GB");
        assert_eq!(time(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(plural(1, "line"), "1 line");
        assert_eq!(plural(1_000, "line"), "1,000 lines");
    }

    proptest::proptest! {
        /// Every finite value's shortest text reads back as the value itself.
        #[test]
        fn shortest_reads_back_exactly(v in proptest::num::f64::ANY) {
            let text = shortest(v);
            let back: f64 = match text.as_str() {
                "nan" => f64::NAN,
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                t => t.parse().unwrap(),
            };
            proptest::prop_assert!(back == v || (v.is_nan() && back.is_nan()), "{v} as {text}");
        }
    }
}
