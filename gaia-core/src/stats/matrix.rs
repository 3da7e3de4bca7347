//! A method's score matrix and the statistics of it that the comparison reports: the four
//! aggregates of Agarwal et al. (2021) as `rliable` 1.2 computes them, the run-score
//! distribution (performance profile), and the probability of improvement of one method over
//! another.
//!
//! Every statistic is computed for the matrix as it is and for a bootstrap resample of it. A
//! resample is a vector of weights, one per run: how often the run was drawn (see
//! [`ScoreMatrix::resample`]). Weighted, each statistic walks the runs once in an order sorted
//! beforehand, so a resample costs O(runs), never a sort.

use super::rng::Rng;

/// One method's scores, grouped by environment (the strata of the bootstrap). The environments
/// are the caller's, in the same order for every method compared; an environment may hold any
/// number of runs (at least one), so methods and environments with unequal run counts are fine.
#[derive(Clone, Debug)]
pub struct ScoreMatrix {
    /// Scores, environment after environment, ascending within each (a run is known by its
    /// place here: weights and resamples index this order).
    values: Vec<f64>,
    /// Where each environment's scores start in `values`; one more entry, the end.
    offsets: Vec<usize>,
    /// Every run's index by ascending score.
    order: Vec<u32>,
    /// Every run's score in that order (`values[order[k]]`, read in sequence).
    sorted: Vec<f64>,
}

/// The four aggregates of a score matrix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aggregates {
    /// Interquartile mean: the mean of the middle 50 % of all runs of all environments (the
    /// 25 %-trimmed mean, `scipy.stats.trim_mean(scores, 0.25, axis=None)`: ⌊N/4⌋ runs cut at
    /// each end).
    pub iqm: f64,
    /// The median over environments of each environment's mean score.
    pub median: f64,
    /// The mean over environments of each environment's mean score.
    pub mean: f64,
    /// How far the runs fall short of a normalised score of 1 on average: 1 − mean(min(s, 1))
    /// over all runs.
    pub optimality_gap: f64,
}

/// Why scores cannot form a matrix.
#[derive(Clone, Debug, PartialEq)]
pub enum MatrixError {
    /// No environment at all.
    NoEnvs,
    /// An environment (its index) without a finite score.
    EmptyEnv(usize),
}

impl std::fmt::Display for MatrixError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MatrixError::NoEnvs => f.write_str("no environment has scores"),
            MatrixError::EmptyEnv(e) => write!(f, "environment {e} has no finite score"),
        }
    }
}

fn sorted_indices(values: &[f64], range: std::ops::Range<usize>) -> impl Iterator<Item = u32> {
    let mut idx: Vec<u32> = range.map(|i| i as u32).collect();
    idx.sort_by(|&a, &b| values[a as usize].total_cmp(&values[b as usize]));
    idx.into_iter()
}

impl ScoreMatrix {
    /// The matrix of per-environment scores. Every score must be finite (leave NaN runs out
    /// and count them before) and every environment needs at least one.
    pub fn new(envs: &[Vec<f64>]) -> Result<ScoreMatrix, MatrixError> {
        if envs.is_empty() {
            return Err(MatrixError::NoEnvs);
        }
        let mut values = Vec::with_capacity(envs.iter().map(Vec::len).sum());
        let mut offsets = vec![0];
        for (e, runs) in envs.iter().enumerate() {
            if runs.is_empty() || runs.iter().any(|v| !v.is_finite()) {
                return Err(MatrixError::EmptyEnv(e));
            }
            let start = values.len();
            values.extend_from_slice(runs);
            values[start..].sort_by(f64::total_cmp);
            offsets.push(values.len());
        }
        let order: Vec<u32> = sorted_indices(&values, 0..values.len()).collect();
        let sorted = order.iter().map(|&i| values[i as usize]).collect();
        Ok(ScoreMatrix {
            values,
            offsets,
            order,
            sorted,
        })
    }

    /// Number of environments.
    pub fn envs(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Number of runs over all environments.
    pub fn runs(&self) -> usize {
        self.values.len()
    }

    /// The scores of environment `e`, ascending.
    pub fn env(&self, e: usize) -> &[f64] {
        &self.values[self.offsets[e]..self.offsets[e + 1]]
    }

    /// Weights of the matrix itself: every run once.
    pub fn unit_weights(&self) -> Vec<u32> {
        vec![1; self.values.len()]
    }

    /// A stratified bootstrap resample into `w`: in each environment, as many runs as it has,
    /// drawn with replacement from its own runs (`w[i]`: how often run `i` was drawn). The
    /// weights of an environment always add up to its run count.
    pub fn resample(&self, rng: &mut Rng, w: &mut [u32]) {
        w.fill(0);
        for e in 0..self.envs() {
            let (start, n) = (self.offsets[e], self.offsets[e + 1] - self.offsets[e]);
            for _ in 0..n {
                w[start + rng.below(n as u32) as usize] += 1;
            }
        }
    }

    /// The aggregates of the matrix.
    pub fn aggregates(&self) -> Aggregates {
        self.aggregates_weighted(&self.unit_weights(), &mut Vec::new())
    }

    /// The aggregates of a resample (`scratch` is reused between calls).
    pub fn aggregates_weighted(&self, w: &[u32], scratch: &mut Vec<f64>) -> Aggregates {
        let means = scratch;
        means.clear();
        let (mut total, mut clipped) = (0u64, 0.0);
        for e in 0..self.envs() {
            let (a, b) = (self.offsets[e], self.offsets[e + 1]);
            let (mut n, mut sum) = (0u64, 0.0);
            // Without a branch on the weight: most runs of a resample are drawn 0 or 1 times.
            for (v, &c) in self.values[a..b].iter().zip(&w[a..b]) {
                n += u64::from(c);
                let c = f64::from(c);
                sum += v * c;
                clipped += v.min(1.0) * c;
            }
            total += n;
            means.push(sum / n as f64);
        }
        let mean = means.iter().sum::<f64>() / means.len() as f64;
        means.sort_by(f64::total_cmp);
        let k = means.len();
        let median = if k % 2 == 1 {
            means[k / 2]
        } else {
            (means[k / 2 - 1] + means[k / 2]) / 2.0
        };
        Aggregates {
            iqm: self.trimmed_mean(w, total),
            median,
            mean,
            optimality_gap: 1.0 - clipped / total as f64,
        }
    }

    /// The mean of the sorted pooled runs from position ⌊N/4⌋ to N − ⌊N/4⌋ (as scipy's
    /// `trim_mean` with 0.25), with run `i` counted `w[i]` times.
    fn trimmed_mean(&self, w: &[u32], total: u64) -> f64 {
        let cut = total / 4;
        let (lo, hi) = (cut, total - cut);
        let (mut pos, mut sum) = (0u64, 0.0);
        for (&i, &v) in self.order.iter().zip(&self.sorted) {
            let c = u64::from(w[i as usize]);
            // The part of this run's copies that falls inside [lo, hi).
            let inside = (pos + c).min(hi).saturating_sub(pos.max(lo));
            sum += v * inside as f64;
            pos += c;
            if pos >= hi {
                break;
            }
        }
        sum / (hi - lo) as f64
    }

    /// The performance profile at each τ of `taus` (ascending): the fraction of all runs whose
    /// score is greater than τ (rliable's run-score distribution).
    pub fn profile(&self, taus: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; taus.len()];
        self.profile_weighted(&self.unit_weights(), taus, &mut out);
        out
    }

    /// The performance profile of a resample into `out`.
    pub fn profile_weighted(&self, w: &[u32], taus: &[f64], out: &mut [f64]) {
        let total: u64 = w.iter().map(|&c| u64::from(c)).sum();
        let mut at_most = 0u64;
        let mut next = self.order.iter().peekable();
        for (k, &tau) in taus.iter().enumerate() {
            while let Some(&&i) = next.peek() {
                if self.values[i as usize] > tau {
                    break;
                }
                at_most += u64::from(w[i as usize]);
                next.next();
            }
            out[k] = (total - at_most) as f64 / total as f64;
        }
    }
}

/// The probability of improvement of X over Y: per environment, P(X > Y) of a run of X and a
/// run of Y drawn at random, ties counting one half (the Mann–Whitney U statistic over
/// `n_x · n_y`); then the mean over environments. Both matrices must hold the same
/// environments, in the same order.
pub fn improvement(x: &ScoreMatrix, y: &ScoreMatrix) -> f64 {
    improvement_weighted(x, &x.unit_weights(), y, &y.unit_weights())
}

/// The probability of improvement of resamples of X and Y.
pub fn improvement_weighted(x: &ScoreMatrix, wx: &[u32], y: &ScoreMatrix, wy: &[u32]) -> f64 {
    PairIndex::new(x, y).improvement(wx, wy, &mut Vec::new())
}

/// Where each run of Y falls among the runs of X in its environment, found once per pair: the
/// X runs below it and equal to it are index ranges of X's ascending scores, the same in every
/// resample (a resample only changes the weights). A resample's P(X > Y) is then a prefix sum
/// of X's weights per environment and one lookup per run of Y, with no comparisons.
pub struct PairIndex {
    /// Per environment: X's and Y's first run and run count.
    envs: Vec<(usize, usize, usize, usize)>,
    /// Per run of Y (Y's order): the X runs of its environment below it end at `.0`, those
    /// equal to it at `.1` (indices into the environment's X runs).
    bounds: Vec<(u32, u32)>,
}

impl PairIndex {
    /// The index of X against Y (the same environments, in the same order).
    pub fn new(x: &ScoreMatrix, y: &ScoreMatrix) -> PairIndex {
        assert_eq!(x.envs(), y.envs(), "the same environments on both sides");
        let mut envs = Vec::with_capacity(x.envs());
        let mut bounds = Vec::with_capacity(y.runs());
        for e in 0..x.envs() {
            let (xa, xb) = (x.offsets[e], x.offsets[e + 1]);
            let (ya, yb) = (y.offsets[e], y.offsets[e + 1]);
            let xv = &x.values[xa..xb];
            for &v in &y.values[ya..yb] {
                let lo = xv.partition_point(|&u| u < v);
                let hi = xv.partition_point(|&u| u <= v);
                bounds.push((lo as u32, hi as u32));
            }
            envs.push((xa, xb - xa, ya, yb - ya));
        }
        PairIndex { envs, bounds }
    }

    /// P(X > Y) of resamples `wx` and `wy` (`prefix` is scratch, reused between calls).
    pub fn improvement(&self, wx: &[u32], wy: &[u32], prefix: &mut Vec<u64>) -> f64 {
        let mut sum = 0.0;
        for &(xa, nx, ya, ny) in &self.envs {
            prefix.clear();
            prefix.push(0);
            let mut acc = 0u64;
            for &c in &wx[xa..xa + nx] {
                acc += u64::from(c);
                prefix.push(acc);
            }
            // A resample keeps each environment's run count: X's weights add up to nx.
            let total = acc;
            let mut u2 = 0u64;
            for (j, &(lo, hi)) in self.bounds[ya..ya + ny].iter().enumerate() {
                let below = prefix[lo as usize];
                let equal = prefix[hi as usize] - below;
                // Twice the U contribution, kept whole: 2·greater + equal.
                u2 += u64::from(wy[ya + j]) * (2 * (total - below - equal) + equal);
            }
            sum += u2 as f64 / (2 * nx as u64 * ny as u64) as f64;
        }
        sum / self.envs.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(envs: &[&[f64]]) -> ScoreMatrix {
        ScoreMatrix::new(&envs.iter().map(|e| e.to_vec()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn aggregates_follow_rliable() {
        // Two envs × 4 runs. Per-env means 2.5 and 0.45; pooled sorted:
        // 0.1 0.2 0.5 1 1 2 3 4 → cut 2 each end → mean(0.5, 1, 1, 2) = 1.125.
        let s = m(&[&[1.0, 2.0, 3.0, 4.0], &[0.1, 0.5, 0.2, 1.0]]);
        let a = s.aggregates();
        assert!((a.iqm - 1.125).abs() < 1e-12, "{a:?}");
        assert!((a.mean - (2.5 + 0.45) / 2.0).abs() < 1e-12);
        assert!((a.median - (2.5 + 0.45) / 2.0).abs() < 1e-12);
        // min(s, 1): 1 1 1 1 0.1 0.5 0.2 1 → mean 0.725 → gap 0.275.
        assert!((a.optimality_gap - 0.275).abs() < 1e-12);
        // Three envs: the median is the middle env mean.
        let s = m(&[&[3.0], &[1.0, 1.0], &[2.0, 4.0]]);
        assert_eq!(s.aggregates().median, 3.0);
    }

    #[test]
    fn few_runs_are_not_trimmed_and_weights_count_runs_again() {
        // Fewer than 4 runs: ⌊N/4⌋ = 0, the IQM is the mean.
        let s = m(&[&[1.0, 5.0, 9.0]]);
        assert_eq!(s.aggregates().iqm, 5.0);
        assert_eq!(m(&[&[7.0]]).aggregates().iqm, 7.0);
        // Weights: run 9.0 drawn three times, 1.0 never: 5 9 9 9 → cut 1 each end → 9.
        let a = s.aggregates_weighted(&[0, 1, 3], &mut Vec::new());
        assert_eq!(a.iqm, 9.0);
        assert_eq!(a.mean, 8.0);
    }

    #[test]
    fn profiles_count_runs_strictly_above_tau() {
        let s = m(&[&[0.0, 0.5, 1.0], &[0.5]]);
        assert_eq!(
            s.profile(&[-1.0, 0.0, 0.5, 0.75, 1.0]),
            [1.0, 0.75, 0.25, 0.25, 0.0]
        );
    }

    #[test]
    fn improvement_is_mann_whitney_with_half_ties() {
        let x = m(&[&[1.0, 2.0, 3.0]]);
        let y = m(&[&[2.0, 2.0]]);
        // Pairs (x > y): 3 twice; ties: 2 twice → (2 + 0.5·2) / 6.
        assert!((improvement(&x, &y) - 0.5).abs() < 1e-15);
        assert!((improvement(&y, &x) - 0.5).abs() < 1e-15);
        let a = m(&[&[5.0, 6.0], &[0.0]]);
        let b = m(&[&[1.0, 2.0], &[0.0]]);
        assert_eq!(improvement(&a, &b), (1.0 + 0.5) / 2.0);
        assert_eq!(improvement(&a, &a), 0.5);
    }

    #[test]
    fn a_matrix_needs_finite_scores_in_every_env() {
        assert_eq!(ScoreMatrix::new(&[]).unwrap_err(), MatrixError::NoEnvs);
        assert_eq!(
            ScoreMatrix::new(&[vec![1.0], vec![]]).unwrap_err(),
            MatrixError::EmptyEnv(1)
        );
        assert!(ScoreMatrix::new(&[vec![f64::NAN]]).is_err());
    }

    #[test]
    fn a_resample_keeps_each_env_s_run_count() {
        let s = m(&[&[1.0, 2.0, 3.0], &[4.0, 5.0]]);
        let mut rng = Rng::new(3, "t");
        let mut w = s.unit_weights();
        for _ in 0..100 {
            s.resample(&mut rng, &mut w);
            assert_eq!(w[..3].iter().sum::<u32>(), 3);
            assert_eq!(w[3..].iter().sum::<u32>(), 2);
        }
    }
}
