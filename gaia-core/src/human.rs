//! Numbers and times for people: one format for each kind of value, so a value reads the same
//! in every table and message of the `gaia` command (and of any tool that embeds gaia-core).
//! Scores, sizes, fractions, durations and ages are written as the dashboard writes them
//! (`dashboard/format.js`).
//!
//! | kind | format | examples |
//! |---|---|---|
//! | counts: jobs, rows, lines, evaluations, rates | whole, thousands separators | `7`, `1,350`, `1,234,567` |
//! | scores and other metric values (best, mean, σ, …) | four significant digits, trailing zeros dropped; k / M / G from ten thousand | `-109.2`, `500`, `0.01235`, `1.235e-7`, `12.35k` |
//! | fractions | whole percent, rounded down (99.6 % is not done) | `42%` |
//! | durations | whole seconds, then two units | `12s`, `3m 05s`, `2h 07m`, `1d 4h` |
//! | sizes | binary units; one decimal below 100 | `512 B`, `15.6 KiB`, `156 KiB`, `1.5 GiB` |
//! | instants | UTC, to the second ([`crate::time`]) | `2025-11-14 22:13:20` |
//! | ages | one unit | `just now`, `12s ago`, `3m ago`, `5h ago`, `2d ago` |
//!
//! A missing value is `-`; a score that is not a number is `nan`, `inf` or `-inf`. What machines
//! read keeps every digit instead: JSON and CSV exports, and the GAIA lines `gaia logs` writes
//! ([`crate::grammar::format_gen_line`], numbers by [`shortest`]).

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

/// A score or any other metric value: four significant digits, trailing zeros dropped, with
/// k / M / G from ten thousand (`-109.2`, `0.01235`, `1.235e-7`, `12.35k`, `1.2M`); `-` when
/// missing.
pub fn score(v: Option<f64>) -> String {
    let Some(v) = v else {
        return "-".into();
    };
    if !v.is_finite() {
        return shortest(v);
    }
    let a = v.abs();
    for (from, scale, suffix) in [(1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")] {
        if a >= from {
            return format!("{}{suffix}", four_digits(v / scale));
        }
    }
    four_digits(v)
}

/// `v` to four significant digits, in its shortest form (`95.44`, `0.01235`, `1.235e-7`).
fn four_digits(v: f64) -> String {
    // Through the decimal form, so no binary noise is left (95.43999999999999 is 95.44).
    let rounded: f64 = format!("{v:.3e}").parse().unwrap_or(v);
    if rounded == 0.0 || (1e-6..1e21).contains(&rounded.abs()) {
        format!("{rounded}")
    } else {
        format!("{rounded:e}")
    }
}

/// An estimate and its interval, each as a [`score`]: `0.8123 [0.7, 0.91]`; a bound that is
/// not a number as `-` (as the dashboard's `fmtInterval`).
pub fn interval(estimate: f64, low: f64, high: f64) -> String {
    let s = |v: f64| {
        if v.is_nan() {
            "-".to_string()
        } else {
            score(Some(v))
        }
    };
    format!("{} [{}, {}]", s(estimate), s(low), s(high))
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

/// A fraction 0..1 as a whole percent, rounded down so a job at 99.6 % is not shown as done:
/// `0.996` → `99%`.
pub fn percent(f: f64) -> String {
    if f.is_finite() {
        format!("{}%", (f * 100.0 + 1e-9).floor())
    } else {
        "-".into()
    }
}

/// A duration: `12s`, `3m 05s`, `2h 07m`, `1d 4h`.
pub fn duration(ms: u64) -> String {
    let s = (ms + 500) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {:02}m", s / 3600, (s / 60) % 60),
        _ => format!("{}d {}h", s / 86_400, (s / 3600) % 24),
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

/// A size in binary units, one decimal below 100: `512 B`, `15.6 KiB`, `156 KiB`, `1.5 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 || v >= 100.0 {
        format!("{} {}", v.round(), UNITS[i])
    } else {
        let one = format!("{v:.1}");
        format!("{} {}", one.trim_end_matches(".0"), UNITS[i])
    }
}

/// An instant, UTC, to the second: `2025-11-14 22:13:20`.
pub fn time(ms: Millis) -> String {
    crate::time::UtcTime::from_millis(ms).to_string()
}

/// How long ago an instant was, in one unit: `just now`, `12s ago`, `3m ago`, `5h ago`,
/// `2d ago`.
pub fn ago(ms: Millis) -> String {
    let s = crate::model::now_ms().saturating_sub(ms) / 1000;
    match s {
        0..=4 => "just now".into(),
        5..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// `1 line`, `2 lines`, `1,000 lines`: a count and a noun in the right number (`word` + `s`).
pub fn plural(n: u64, word: &str) -> String {
    format!("{} {word}{}", count(n), if n == 1 { "" } else { "s" })
}

/// A span of time as people write it: `90s`, `30m`, `12h`, `7d`, `2w`, or a plain number of
/// seconds (`3600`). The error says what is accepted.
pub fn parse_span(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let secs = match unit.trim() {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 7.0 * 86_400.0,
        _ => f64::NAN,
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .map(|n| n * secs)
        .filter(|v| v.is_finite() && *v >= 0.0)
        .and_then(|v| std::time::Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| {
            format!(
                "{s:?} is not a span of time: write 90s, 30m, 12h, 7d, 2w or a number of seconds"
            )
        })
}

/// [`parse_span`] in whole seconds (for settings kept as seconds: `gc --rows-older-than 180d`).
pub fn parse_span_secs(s: &str) -> Result<u64, String> {
    parse_span(s).map(|d| d.as_secs())
}

/// Hours of use from seconds: `0.25 h`, `12.5 h`, `1,234 h` (worker and GPU hours).
pub fn hours(secs: f64) -> String {
    let h = secs / 3600.0;
    if !h.is_finite() {
        "-".into()
    } else if h < 10.0 {
        format!("{h:.2} h")
    } else if h < 1000.0 {
        format!("{h:.1} h")
    } else {
        format!("{} h", count(h.round() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_hours() {
        use std::time::Duration;
        assert_eq!(parse_span("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_span("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_span(" 30m "), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_span("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_span_secs("180d"), Ok(180 * 86_400));
        assert_eq!(parse_span_secs("2w"), Ok(14 * 86_400));
        assert!(
            parse_span_secs("3y")
                .unwrap_err()
                .contains("90s, 30m, 12h, 7d, 2w")
        );
        assert_eq!(parse_span("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_span("3600"), Ok(Duration::from_secs(3600)));
        for bad in ["", "d", "7x", "-1d", "nan", "inf"] {
            let e = parse_span(bad).unwrap_err();
            assert!(e.contains("7d"), "{bad:?}: {e}");
        }
        assert_eq!(hours(900.0), "0.25 h");
        assert_eq!(hours(45_000.0), "12.5 h");
        assert_eq!(hours(3600.0 * 1234.4), "1,234 h");
    }

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
        assert_eq!(score(Some(-1304.7)), "-1305");
        assert_eq!(score(Some(-109.2)), "-109.2");
        assert_eq!(score(Some(500.0)), "500");
        assert_eq!(score(Some(95.43999999999999)), "95.44");
        assert_eq!(score(Some(0.012345)), "0.01235");
        assert_eq!(score(Some(12_345.6)), "12.35k");
        assert_eq!(score(Some(-1_234_567.0)), "-1.235M");
        assert_eq!(score(Some(2.5e9)), "2.5G");
        assert_eq!(score(Some(-1.2345678e-7)), "-1.235e-7");
        assert_eq!(score(Some(0.0)), "0");
        assert_eq!(score(Some(f64::NAN)), "nan");
        assert_eq!(score(Some(f64::NEG_INFINITY)), "-inf");
        assert_eq!(score(None), "-");
        assert_eq!(interval(0.81234, 0.7, 0.912), "0.8123 [0.7, 0.912]");
        assert_eq!(interval(2100.0, 700.0, f64::INFINITY), "2100 [700, inf]");
        assert_eq!(interval(0.5, f64::NAN, 1.0), "0.5 [-, 1]");
        assert_eq!(shortest(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(shortest(2.5e20), "2.5e20");
        assert_eq!(percent(0.423), "42%");
        assert_eq!(percent(0.996), "99%", "not done until it is");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(duration(12_345), "12s");
        assert_eq!(duration(61_000), "1m 01s");
        assert_eq!(duration(3_720_000), "1h 02m");
        assert_eq!(duration(183_600_000), "2d 3h");
        assert_eq!(seconds(f64::INFINITY), "-");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(15_974), "15.6 KiB");
        assert_eq!(bytes(2048), "2 KiB");
        assert_eq!(bytes(159_744), "156 KiB");
        assert_eq!(bytes(1_610_612_736), "1.5 GiB");
        assert_eq!(bytes(24 << 30), "24 GiB");
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
