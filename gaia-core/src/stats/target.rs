//! Fixed-target statistics (the anytime view of COCO and IOHprofiler): how many evaluations
//! each run needed to reach a target, and what that says per method — success rate, expected
//! running time (ERT) and the empirical cumulative distribution (ECDF) of running times. They
//! separate methods that all end solved ("500 ± 0") by how soon they got there.

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

/// Success rate and ERT of one cell's runs, each with a bootstrap interval (runs resampled
/// with replacement; an ERT interval reaches ∞ when resamples without a success are common).
pub fn cell_intervals(runs: &[TargetRun], boot: &Bootstrap, stream: &str) -> (Interval, Interval) {
    let (rate, e) = rate_and_ert(runs.iter().map(|r| (r, 1)));
    if runs.is_empty() {
        return (Interval::exact(rate), Interval::exact(e));
    }
    let n = runs.len();
    let mut rng = Rng::new(boot.seed, stream);
    let mut w = vec![0u32; n];
    let (mut rates, mut erts) = (
        Vec::with_capacity(boot.resamples),
        Vec::with_capacity(boot.resamples),
    );
    for _ in 0..boot.resamples {
        w.fill(0);
        for _ in 0..n {
            w[rng.below(n as u32) as usize] += 1;
        }
        let (r, t) = rate_and_ert(runs.iter().zip(w.iter().copied()));
        rates.push(r);
        erts.push(t);
    }
    (boot.interval(rate, &mut rates), boot.interval(e, &mut erts))
}

/// The success rate over every environment's runs pooled, with a stratified bootstrap
/// interval (runs resampled within each environment).
pub fn pooled_success(envs: &[Vec<TargetRun>], boot: &Bootstrap, stream: &str) -> Interval {
    let all = || envs.iter().flatten().map(|r| (r, 1));
    let est = rate_and_ert(all()).0;
    let total: usize = envs.iter().map(Vec::len).sum();
    if total == 0 {
        return Interval::exact(est);
    }
    let mut rng = Rng::new(boot.seed, stream);
    let mut w = vec![0u32; total];
    let mut reps = Vec::with_capacity(boot.resamples);
    for _ in 0..boot.resamples {
        w.fill(0);
        let mut start = 0;
        for e in envs {
            for _ in 0..e.len() {
                w[start + rng.below(e.len() as u32) as usize] += 1;
            }
            start += e.len();
        }
        reps.push(rate_and_ert(envs.iter().flatten().zip(w.iter().copied())).0);
    }
    boot.interval(est, &mut reps)
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
    fn pooled_success_is_stratified() {
        let boot = Bootstrap::default();
        let envs = vec![vec![run(Some(1.0), 1.0); 3], vec![run(None, 5.0); 1]];
        let i = pooled_success(&envs, &boot, "m");
        // The strata never mix: every resample has 3 successes of 4.
        assert_eq!(i, Interval::exact(0.75));
    }
}
