//! Fixed-target statistics (the anytime view of COCO and IOHprofiler): how many evaluations
//! each run needed to reach a target, and what that says per method — success rate, expected
//! running time (ERT) and the empirical cumulative distribution (ECDF) of running times. They
//! separate methods that all end solved ("500 ± 0") by how soon they got there.
//!
//! A success rate's interval is Wilson's score interval for a binomial proportion (Wilson
//! 1927; Brown, Cai & DasGupta 2001 recommend it for small samples), not a bootstrap: runs
//! resampled from 10 of 10 successes are always 10 of 10, which would claim a rate of exactly 1
//! ("[1, 1]") where ten runs only show it is above ≈ 0.72.

use serde::{Deserialize, Serialize};

use super::bootstrap::{Bootstrap, Interval};
use super::rng::Rng;

/// One run against one target.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct TargetRun {
    /// Evaluations the run had used when its best-ever first reached the target; None if it
    /// never did.
    pub hit: Option<f64>,
    /// Evaluations the run used in all.
    pub used: f64,
}

/// Success rate and ERT of runs counted with weights `w`: (successes / runs, total evaluations
/// spent until success or end / successes — ∞ without a success).
fn rate_and_ert<'a>(runs: impl Iterator<Item = (&'a TargetRun, u32)>) -> (f64, f64) {
    let (mut n, mut hits, mut spent) = (0u64, 0u64, 0.0);
    for (r, c) in runs {
        let c64 = u64::from(c);
        n += c64;
        match r.hit {
            Some(h) => {
                hits += c64;
                spent += h * c as f64;
            }
            None => spent += r.used * c as f64,
        }
    }
    let rate = if n == 0 {
        f64::NAN
    } else {
        hits as f64 / n as f64
    };
    let ert = if hits == 0 {
        f64::INFINITY
    } else {
        spent / hits as f64
    };
    (rate, ert)
}

/// The expected running time of runs: all evaluations they spent (until the target, or until
/// they ended without it) over the number that reached it. ∞ when none did.
pub fn ert(runs: &[TargetRun]) -> f64 {
    rate_and_ert(runs.iter().map(|r| (r, 1))).1
}

/// The fraction of runs that reached the target (NaN without runs).
pub fn success_rate(runs: &[TargetRun]) -> f64 {
    rate_and_ert(runs.iter().map(|r| (r, 1))).0
}

/// Wilson's score interval for `hits` successes in `runs` trials at `confidence` (e.g. 0.95):
/// the proportions p whose test |p̂ − p| ≤ z·√(p(1 − p)/n) would not reject. It stays inside
/// [0, 1] and keeps a width at 0 or n successes (0 of 10: [0, 0.28]; 10 of 10: [0.72, 1]).
/// NaN without runs.
pub fn wilson(hits: u64, runs: u64, confidence: f64) -> Interval {
    if runs == 0 {
        return Interval::exact(f64::NAN);
    }
    // The two-sided interval's z, from the lower tail (which keeps its precision).
    let z = -super::normal_quantile((1.0 - confidence) / 2.0);
    if !z.is_finite() {
        // A coverage of 1 (or not a coverage): every proportion.
        return Interval {
            estimate: hits as f64 / runs as f64,
            low: 0.0,
            high: 1.0,
        };
    }
    let (n, p) = (runs as f64, hits as f64 / runs as f64);
    let z2n = z * z / n;
    let centre = (p + z2n / 2.0) / (1.0 + z2n);
    let half = z * (p * (1.0 - p) / n + z2n / (4.0 * n)).sqrt() / (1.0 + z2n);
    Interval {
        estimate: p,
        // At 0 or n successes one bound is the estimate itself, up to rounding.
        low: if hits == 0 {
            0.0
        } else {
            (centre - half).max(0.0)
        },
        high: if hits == runs {
            1.0
        } else {
            (centre + half).min(1.0)
        },
    }
}

/// Success rate (Wilson's interval, [`wilson`]) and ERT (a bootstrap interval: runs resampled
/// with replacement; it reaches ∞ when resamples without a success are common) of one cell's
/// runs.
pub fn cell_intervals(runs: &[TargetRun], boot: &Bootstrap, stream: &str) -> (Interval, Interval) {
    let e = ert(runs);
    let hits = runs.iter().filter(|r| r.hit.is_some()).count() as u64;
    let success = wilson(hits, runs.len() as u64, boot.confidence);
    if runs.is_empty() {
        return (success, Interval::exact(e));
    }
    let n = runs.len();
    let mut rng = Rng::new(boot.seed, stream);
    let mut w = vec![0u32; n];
    let mut erts = Vec::with_capacity(boot.resamples);
    for _ in 0..boot.resamples {
        w.fill(0);
        for _ in 0..n {
            w[rng.below(n as u32) as usize] += 1;
        }
        erts.push(rate_and_ert(runs.iter().zip(w.iter().copied())).1);
    }
    (success, boot.interval(e, &mut erts))
}

/// The success rate over every environment's runs pooled, with Wilson's interval over all of
/// them ([`wilson`]).
pub fn pooled_success(envs: &[Vec<TargetRun>], boot: &Bootstrap) -> Interval {
    let runs = envs.iter().map(Vec::len).sum::<usize>() as u64;
    let hits = envs.iter().flatten().filter(|r| r.hit.is_some()).count() as u64;
    wilson(hits, runs, boot.confidence)
}

/// The ECDF of running times over (run, target) pairs: at each evaluation count where some
/// pair reached its target, the fraction of all pairs that had by then. Points ascending in x,
/// one per distinct x; pairs that never reached theirs keep the curve below 1.
pub fn ecdf(hits: &[Option<f64>]) -> Vec<(f64, f64)> {
    let mut xs: Vec<f64> = hits.iter().flatten().copied().collect();
    xs.sort_by(f64::total_cmp);
    let n = hits.len() as f64;
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (i, x) in xs.iter().enumerate() {
        let y = (i + 1) as f64 / n;
        match out.last_mut() {
            Some(last) if last.0 == *x => last.1 = y,
            _ => out.push((*x, y)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(hit: Option<f64>, used: f64) -> TargetRun {
        TargetRun { hit, used }
    }

    #[test]
    fn ert_counts_the_failures_evaluations_against_the_successes() {
        // Two successes after 100 and 300 evals, one failure after its 1000: (100+300+1000)/2.
        let runs = [
            run(Some(100.0), 400.0),
            run(Some(300.0), 300.0),
            run(None, 1000.0),
        ];
        assert_eq!(ert(&runs), 700.0);
        assert!((success_rate(&runs) - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(ert(&[run(None, 10.0)]), f64::INFINITY);
        assert_eq!(success_rate(&[run(None, 10.0)]), 0.0);
    }

    #[test]
    fn cell_intervals_cover_the_estimate_and_reach_infinity_when_successes_are_rare() {
        let boot = Bootstrap::default();
        let runs = [
            run(Some(100.0), 100.0),
            run(None, 1000.0),
            run(None, 1000.0),
        ];
        let (rate, e) = cell_intervals(&runs, &boot, "c");
        assert!(rate.low <= rate.estimate && rate.estimate <= rate.high);
        assert_eq!(e.estimate, 2100.0);
        assert_eq!(e.high, f64::INFINITY);
        let all = [run(Some(50.0), 50.0); 4];
        assert_eq!(cell_intervals(&all, &boot, "c").1, Interval::exact(50.0));
    }

    #[test]
    fn the_ecdf_steps_up_at_each_running_time() {
        let e = ecdf(&[Some(30.0), None, Some(10.0), Some(30.0)]);
        assert_eq!(e, [(10.0, 0.25), (30.0, 0.75)]);
        assert!(ecdf(&[None, None]).is_empty());
    }

    #[test]
    fn success_rates_get_wilson_intervals_that_keep_a_width_at_none_and_all() {
        let close = |i: Interval, e: f64, l: f64, h: f64| {
            assert!(
                (i.estimate - e).abs() < 1e-12
                    && (i.low - l).abs() < 5e-5
                    && (i.high - h).abs() < 5e-5,
                "{i:?}"
            );
        };
        // Wilson's interval at 95 %: 0 of 10, 10 of 10, 5 of 10, 1 of 3.
        close(wilson(0, 10, 0.95), 0.0, 0.0, 0.2775);
        close(wilson(10, 10, 0.95), 1.0, 0.7225, 1.0);
        close(wilson(5, 10, 0.95), 0.5, 0.2366, 0.7634);
        close(wilson(1, 3, 0.95), 1.0 / 3.0, 0.0615, 0.7923);
        assert!(wilson(0, 0, 0.95).estimate.is_nan());
        // A cell's rate, and the pooled rate over environments (3 of 4).
        let boot = Bootstrap::default();
        let all = [run(Some(50.0), 50.0); 4];
        close(cell_intervals(&all, &boot, "c").0, 1.0, 0.5101, 1.0);
        let envs = vec![vec![run(Some(1.0), 1.0); 3], vec![run(None, 5.0); 1]];
        close(pooled_success(&envs, &boot), 0.75, 0.3006, 0.9544);
    }
}
