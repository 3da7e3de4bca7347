//! Statistics over scores: the one home of every estimate GAIA shows. Pure functions over
//! slices and score matrices: no I/O, no store, no HTTP, so the server, the CLI, the PNG
//! figures and the dashboard (which draws what the server computed) all show the same numbers.
//!
//! - here: quantiles, mean ± std over seeds, five-number summaries (`gaia study`, the overview);
//! - [`matrix`]: a method's runs per environment ([`ScoreMatrix`]) and the aggregates of
//!   Agarwal et al. (2021) over them — IQM, median, mean, optimality gap — the performance
//!   profile and the probability of improvement, exactly as `rliable` 1.2 defines them;
//! - [`bootstrap`]: their 95 % percentile stratified bootstrap intervals, sample-efficiency
//!   curves ([`CurveMatrix`]), seeds needed for a target interval width;
//! - [`target`]: fixed-target views — evaluations to reach a target, success rate (with
//!   Wilson's interval, not a bootstrap), ERT, ECDF;
//! - [`rng`]: the seeded generator (PCG64) that makes every interval reproducible.
//!
//! `docs/COMPARE.md` states each definition for readers of a paper.

pub mod bootstrap;
pub mod matrix;
pub mod rng;
pub mod target;

pub use bootstrap::{Bootstrap, CurveMatrix, Interval};
pub use matrix::{Aggregates, ScoreMatrix};

use serde::{Deserialize, Serialize};

/// Linear-interpolation quantile (type 7, as numpy's default) of values sorted ascending.
/// `q` in 0..=1. Panics on an empty slice: callers decide what "no data" means.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The standard normal distribution's quantile: the z with P(Z ≤ z) = `p`, for `p` in (0, 1)
/// (±∞ at 0 and 1, NaN outside). Found by bisection on the distribution function, written with
/// `libm`'s complementary error function, in the lower tail (an upper-tail `p` by symmetry, so
/// that `1 − p` close to 0 keeps its precision): 50 to 120 evaluations, once per table.
pub fn normal_quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 || p == 1.0 {
        return if p == 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    if p > 0.5 {
        return -normal_quantile(1.0 - p);
    }
    let cdf = |z: f64| 0.5 * libm::erfc(-z / std::f64::consts::SQRT_2);
    // Φ(±38.5) is 0 or 1 in an f64's resolution.
    let (mut lo, mut hi) = (-38.5f64, 38.5f64);
    while hi - lo > f64::EPSILON * hi.abs().max(lo.abs()).max(1e-300) {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Mean, spread and best of a set of values (typically one score per seed).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct MeanStd {
    pub mean: f64,
    /// Sample standard deviation (n − 1); None for a single value.
    #[serde(default)]
    pub std: Option<f64>,
    pub n: u64,
    /// The best (highest) value.
    pub max: f64,
}

/// Mean, sample standard deviation (n − 1; None for a single value) and max of the finite
/// values (None when there are none). The one implementation of "± std over seeds". Summed in
/// ascending order, so the same values in any order give the same bits.
pub fn mean_std(values: &[f64]) -> Option<MeanStd> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.len() > 1)
        .then(|| (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    Some(MeanStd {
        mean,
        std,
        n: v.len() as u64,
        max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// The five-number summary of values sorted ascending: min, quartiles, max.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FiveNumbers {
    pub min: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub max: f64,
}

/// Min, quartiles (linear interpolation, [`quantile`]) and max of sorted values; None if empty.
pub fn five_numbers(sorted: &[f64]) -> Option<FiveNumbers> {
    Some(FiveNumbers {
        min: *sorted.first()?,
        q1: quantile(sorted, 0.25),
        median: quantile(sorted, 0.5),
        q3: quantile(sorted, 0.75),
        max: *sorted.last()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_quantile_matches_the_tables() {
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-12);
        assert!((normal_quantile(0.995) - 2.575_829_303_548_901).abs() < 1e-12);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.025) + 1.959_963_984_540_054).abs() < 1e-12);
        assert!((normal_quantile(1e-10) + 6.361_340_902_404_056).abs() < 1e-9);
        // 1 − 1e-10 as an f64 (scipy's norm.ppf of the same f64).
        assert!((normal_quantile(1.0 - 1e-10) - 6.361_340_889_697_421).abs() < 1e-9);
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
        assert!(normal_quantile(1.5).is_nan());
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.5), 3.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.25), 2.0);
        assert_eq!(quantile(&[1.0, 2.0], 0.5), 1.5);
        assert_eq!(quantile(&[7.0], 0.75), 7.0);
    }

    #[test]
    fn mean_std_is_the_sample_std_of_finite_values() {
        assert_eq!(mean_std(&[]), None);
        assert_eq!(mean_std(&[f64::NAN]), None);
        assert_eq!(mean_std(&[42.0]).unwrap().std, None);
        let m = mean_std(&[300.0, f64::NAN, 100.0, 200.0]).unwrap();
        assert_eq!((m.mean, m.std, m.n, m.max), (200.0, Some(100.0), 3, 300.0));
    }

    #[test]
    fn five_numbers_of_sorted_values() {
        let f = five_numbers(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(
            (f.min, f.q1, f.median, f.q3, f.max),
            (1.0, 2.0, 3.0, 4.0, 5.0)
        );
        assert_eq!(five_numbers(&[]), None);
    }
}
