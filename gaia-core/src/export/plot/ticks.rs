//! Tick positions and labels of one axis: round 1-2-5 steps with an exact zero on a linear
//! axis; on a log axis decades, then 1-2-5 and 1…9 per decade, then plain steps inside one
//! decade, so a log axis always has at least three labels. Pure arithmetic: no drawing.

/// The ticks of one axis: labelled ones (each with a major grid line) and the minor grid.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct Ticks {
    /// Labelled positions, ascending.
    pub major: Vec<f64>,
    /// The label of each major tick.
    pub labels: Vec<String>,
    /// Minor grid positions, none of them a major one.
    pub minor: Vec<f64>,
}

/// `m × 10^e` as the double nearest that decimal (`10f64.powi(-30)` is not).
fn decimal(m: u32, e: i32) -> f64 {
    format!("{m}e{e}").parse().unwrap_or(f64::NAN)
}

/// The 1, 2 or 5 of a round step.
fn mantissa(step: f64) -> f64 {
    (step / 10f64.powf(step.log10().floor())).round()
}

/// `k · step` for every whole k with the value in `lo..=hi` (none if more than `limit`); zero is
/// exactly zero, never `-2.2e-16`.
fn multiples(lo: f64, hi: f64, step: f64, limit: usize) -> Vec<f64> {
    // Past 2^52 whole numbers are no longer one apart in f64 (`k + 1.0 == k`): no ticks.
    const EXACT: f64 = (1u64 << 52) as f64;
    let tol = step * 1e-9;
    let (k0, k1) = (((lo - tol) / step).ceil(), ((hi + tol) / step).floor());
    if !(k0.is_finite() && k1.is_finite())
        || k0.abs() > EXACT
        || k1.abs() > EXACT
        || k1 < k0
        || k1 - k0 > limit as f64
    {
        return Vec::new();
    }
    (0..=(k1 - k0) as u64)
        .map(|i| {
            let k = k0 + i as f64;
            if k == 0.0 { 0.0 } else { k * step }
        })
        .collect()
}

/// Round ticks over `lo..hi`, about `target` of them, minor lines between.
pub(crate) fn linear_ticks(lo: f64, hi: f64, target: usize) -> Ticks {
    let span = hi - lo;
    // Degenerate ranges get their ends as ticks: empty or reversed, wider than f64 can hold
    // (±8.5e307), or only a few ulps wide (0.3 and 0.1 + 0.2), where no round step exists.
    if !(lo.is_finite() && hi.is_finite() && hi > lo && span.is_finite())
        || span <= lo.abs().max(hi.abs()) * 1e-12
    {
        let major = if hi > lo { vec![lo, hi] } else { vec![lo] };
        return Ticks {
            labels: major.iter().map(|&v| tick(v)).collect(),
            major,
            minor: Vec::new(),
        };
    }
    // The 1-2-5 step whose tick count is nearest the target (the finer one of two as near),
    // with at least three ticks.
    let target = target.max(1);
    let e = ((hi - lo) / target as f64).log10().floor() as i32;
    let (step, major) = (e - 1..=e + 1)
        .flat_map(|e| [1, 2, 5].map(|m| decimal(m, e)))
        .map(|step| (step, multiples(lo, hi, step, 1000)))
        .min_by_key(|(_, m)| {
            (
                m.len() < 3,
                m.len().abs_diff(target),
                std::cmp::Reverse(m.len()),
            )
        })
        .unwrap_or((span, vec![lo, hi]));
    let sub = step / if mantissa(step) == 2.0 { 4.0 } else { 5.0 };
    let minor = multiples(lo, hi, sub, 10_000)
        .into_iter()
        .filter(|v| !major.iter().any(|m| (m - v).abs() < sub * 1e-6))
        .collect();
    let big = major.iter().fold(0f64, |a, v| a.max(v.abs()));
    let labels = major.iter().map(|&v| step_label(v, step, big)).collect();
    Ticks {
        major,
        labels,
        minor,
    }
}

/// Ticks of a log axis over `lo..hi` (both > 0), always at least three labelled ones: decades
/// (every k-th when there are many), else 1-2-5 per decade, else 1…9 per decade, else (inside
/// one decade) round linear steps.
pub(crate) fn log_ticks(lo: f64, hi: f64, target: usize) -> Ticks {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return linear_ticks(lo, hi, target);
    }
    let (e0, e1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let per_decade = |ms: &[u32]| -> Vec<f64> {
        (e0..=e1)
            .flat_map(|e| ms.iter().map(move |&m| decimal(m, e)))
            .filter(|v| *v >= lo * (1.0 - 1e-12) && *v <= hi * (1.0 + 1e-12))
            .collect()
    };
    let without = |all: Vec<f64>, major: &[f64]| -> Vec<f64> {
        all.into_iter()
            .filter(|v| !major.iter().any(|m| (m - v).abs() <= m.abs() * 1e-9))
            .collect()
    };
    let nines = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    let decades = per_decade(&[1]);
    let (major, minor) = if decades.len() >= 3 {
        let k = decades.len().div_ceil(target.max(1)).max(1) as i32;
        let major: Vec<f64> = decades
            .iter()
            .copied()
            .filter(|v| (v.log10().round() as i32).rem_euclid(k) == 0)
            .collect();
        let minor = if decades.len() <= 12 {
            without(per_decade(&nines), &major)
        } else {
            without(decades, &major)
        };
        (major, minor)
    } else {
        let fives = per_decade(&[1, 2, 5]);
        if fives.len() >= 3 {
            let minor = without(per_decade(&nines), &fives);
            (fives, minor)
        } else {
            let all = per_decade(&nines);
            if all.len() < 3 {
                return linear_ticks(lo, hi, target.min(6));
            }
            (all, Vec::new())
        }
    };
    let labels = major.iter().map(|&v| tick(v)).collect();
    Ticks {
        major,
        labels,
        minor,
    }
}

/// The label of `v` on an axis of round steps `step` whose largest |tick| is `big`: as many
/// decimals as the step needs (neighbours never read alike), k/M/G/T when the axis reaches
/// 10,000.
fn step_label(v: f64, step: f64, big: f64) -> String {
    let a = v.abs();
    if a < step * 1e-6 {
        return "0".into();
    }
    let e = step.log10().floor() as i32;
    if big >= 1e4 && a >= 1e3 {
        for (div, p, suffix) in [(1e12, 12, "T"), (1e9, 9, "G"), (1e6, 6, "M"), (1e3, 3, "k")] {
            if a >= div {
                let d = (p - e).max(0) as usize;
                return format!("{}{suffix}", trim(format!("{:.d$}", v / div)));
            }
        }
    }
    if e >= -4 {
        let d = (-e).max(0) as usize;
        return format!("{v:.d$}");
    }
    let p = (a.log10().floor() as i32 - e).clamp(0, 6) as usize;
    let text = format!("{v:.p$e}");
    match text.split_once('e') {
        Some((m, x)) => format!("{}e{x}", trim(m.to_string())),
        None => text,
    }
}

/// A tick label: `0`, `12.5`, `0.00123`, `250k`, `1.5M`, `1e-5`.
pub(crate) fn tick(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if a >= 1e4 {
        for (div, suffix) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
            if a >= div {
                return format!("{}{suffix}", trim(format!("{:.2}", v / div)));
            }
        }
    }
    if a >= 1e-3 {
        let digits = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        return trim(format!("{v:.digits$}"));
    }
    let s = format!("{v:.1e}");
    s.replace(".0e", "e")
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::plot::render;
    use crate::export::plot::testutil::figure;

    #[test]
    fn ticks_read_well() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(250_000.0), "250k");
        assert_eq!(tick(1_500_000.0), "1.5M");
        assert_eq!(tick(12.5), "12.5");
        assert_eq!(tick(1234.0), "1234");
        assert_eq!(tick(0.00123), "0.00123");
        assert_eq!(tick(-0.5), "-0.5");
        assert_eq!(tick(0.00001), "1e-5");
    }

    fn parse(label: &str) -> f64 {
        let (num, mul) = match label.chars().last() {
            Some('k') => (&label[..label.len() - 1], 1e3),
            Some('M') => (&label[..label.len() - 1], 1e6),
            _ => (label, 1.0),
        };
        num.parse::<f64>().unwrap_or_else(|_| panic!("{label:?}")) * mul
    }

    /// At least three labels, distinct, each reading as its tick's value, inside the range.
    fn readable(t: &Ticks, lo: f64, hi: f64) {
        assert!(t.major.len() >= 3, "{t:?}");
        assert_eq!(t.major.len(), t.labels.len());
        let distinct: std::collections::BTreeSet<&String> = t.labels.iter().collect();
        assert_eq!(distinct.len(), t.labels.len(), "{:?}", t.labels);
        for (v, l) in t.major.iter().zip(&t.labels) {
            assert!(*v >= lo && *v <= hi, "{v} outside {lo}..{hi}");
            let read = parse(l);
            assert!((read - v).abs() <= v.abs() * 1e-6 + 1e-12, "{l:?} for {v}");
        }
    }

    #[test]
    fn log_axes_always_have_readable_ticks() {
        // Inside one decade (sigma 0.394..0.479, padded as bounds() pads it).
        let pad = (0.479f64 / 0.394).powf(0.05);
        let (lo, hi) = (0.394 / pad, 0.479 * pad);
        let t = log_ticks(lo, hi, 8);
        readable(&t, lo, hi);
        assert!(t.labels.contains(&"0.40".to_string()), "{:?}", t.labels);
        // A constant 0.1 (padded to 0.05..0.2), a decade and a half, many decades.
        for (lo, hi) in [
            (0.05, 0.2),
            (0.3, 9.0),
            (2e-9, 0.8),
            (1e-30, 1e3),
            (0.7, 0.95),
        ] {
            readable(&log_ticks(lo, hi, 8), lo, hi);
        }
        assert_eq!(log_ticks(2e-9, 0.8, 8).labels[0], "1e-8");
        assert_eq!(log_ticks(0.05, 0.2, 8).labels, ["0.05", "0.1", "0.2"]);
        let many = log_ticks(1e-30, 1e3, 8);
        assert!(many.major.len() <= 8 && !many.minor.is_empty(), "{many:?}");
    }

    #[test]
    fn degenerate_ranges_give_ticks_at_once_and_never_panic() {
        // A range a few ulps wide once made `multiples` loop for ever (k + 1.0 == k past 2^53).
        let t0 = std::time::Instant::now();
        for (lo, hi) in [
            (0.3, 0.1 + 0.2),
            (1.0, 1.0000000000000002),
            (-1e308, 1e308),
            (-f64::MAX, f64::MAX),
            (5.0, 5.0),
            (2.0, 1.0),
        ] {
            let t = linear_ticks(lo, hi, 8);
            assert!(
                !t.major.is_empty() && t.major.len() <= 2,
                "{lo}..{hi}: {:?}",
                t.major
            );
            let _ = log_ticks(lo.abs().max(1e-300), hi.abs().max(1e-300), 8);
        }
        assert!(multiples(1e17, 1e17 + 64.0, 1.0, 1000).is_empty());
        assert!(t0.elapsed() < std::time::Duration::from_secs(1));
        // And a whole figure of such a curve renders.
        let mut fig = figure("flat", 800, 500);
        fig.panels[0].lines[0].points = vec![(1.0, 0.3), (2.0, 0.1 + 0.2), (3.0, 0.3)];
        render(&fig).unwrap();
    }

    #[test]
    fn linear_ticks_are_round_and_zero_is_zero() {
        let t = linear_ticks(-0.2 - 0.06, 1.0 + 0.06, 8);
        assert!(t.major.contains(&0.0), "{t:?}");
        assert!(t.labels.contains(&"0".to_string()), "{:?}", t.labels);
        for (lo, hi) in [
            (-0.3, 0.7),
            (-2.5e-3, 7.1e-3),
            (-1e-9, 3e-9),
            (-1025.3, -1004.1),
        ] {
            let t = linear_ticks(lo, hi, 8);
            // No label reads as a sliver next to zero (plotters' own ticks gave -2.2e-16).
            let step = t.major[1] - t.major[0];
            for l in &t.labels {
                let v: f64 = l.parse().unwrap_or_else(|_| parse(l));
                assert!(
                    v == 0.0 || v.abs() > step * 0.5,
                    "{lo}..{hi}: {:?}",
                    t.labels
                );
            }
            let distinct: std::collections::BTreeSet<&String> = t.labels.iter().collect();
            assert_eq!(distinct.len(), t.labels.len(), "{:?}", t.labels);
        }
        assert_eq!(
            linear_ticks(0.0, 100_000.0, 5).labels,
            ["0", "20k", "40k", "60k", "80k", "100k"]
        );
        assert_eq!(
            linear_ticks(0.39, 0.48, 5).labels,
            ["0.40", "0.42", "0.44", "0.46", "0.48"]
        );
        assert_eq!(linear_ticks(0.0, 1.2e6, 6).labels[5], "1M");
    }
}
