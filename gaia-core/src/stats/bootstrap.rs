//! Interval estimates: the 95 % percentile stratified bootstrap of Agarwal et al. (2021), as
//! `rliable.library.get_interval_estimates` computes it — resample runs within each environment
//! (independently per method), recompute the statistic, take the 2.5th and 97.5th percentiles
//! of the replicates (numpy's linear interpolation) — with a seeded generator ([`Rng`]), so the
//! same data, seed and resample count give the same interval everywhere.

use serde::{Deserialize, Serialize};

use super::matrix::{Aggregates, PairIndex, ScoreMatrix};
use super::rng::Rng;

/// Default number of bootstrap resamples.
pub const DEFAULT_RESAMPLES: usize = 2000;
/// Most resamples one request may ask for.
pub const MAX_RESAMPLES: usize = 100_000;
/// Default coverage of an interval.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;

/// A point estimate and its confidence interval.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// `null` on the wire where it is not a finite number (an infinite running time, a curve
    /// point no run reached), as the bounds.
    #[serde(with = "finite")]
    #[schemars(with = "Option<f64>")]
    pub estimate: f64,
    #[serde(with = "finite")]
    #[schemars(with = "Option<f64>")]
    pub low: f64,
    #[serde(with = "finite")]
    #[schemars(with = "Option<f64>")]
    pub high: f64,
}

/// Non-finite numbers as JSON `null` and back as NaN (serde_json writes NaN and ∞ as null but
/// cannot read null into an f64).
mod finite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

impl Interval {
    /// An estimate without uncertainty (a single value, all resamples alike).
    pub fn exact(v: f64) -> Interval {
        Interval {
            estimate: v,
            low: v,
            high: v,
        }
    }

    /// Half the interval's width.
    pub fn half_width(&self) -> f64 {
        (self.high - self.low) / 2.0
    }
}

/// How intervals are computed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bootstrap {
    /// Resamples per interval.
    pub resamples: usize,
    /// Coverage, e.g. 0.95.
    pub confidence: f64,
    /// Seeds every stream of resamples.
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            resamples: DEFAULT_RESAMPLES,
            confidence: DEFAULT_CONFIDENCE,
            seed: 0,
        }
    }
}

impl Bootstrap {
    /// The percentile interval of `replicates` (reordered) around `estimate`: the replicates'
    /// (1 − c)/2 and (1 + c)/2 quantiles, linearly interpolated as numpy's `percentile`.
    pub fn interval(&self, estimate: f64, replicates: &mut [f64]) -> Interval {
        if replicates.is_empty() {
            return Interval::exact(estimate);
        }
        replicates.sort_by(f64::total_cmp);
        let alpha = (1.0 - self.confidence) / 2.0;
        Interval {
            estimate,
            low: quantile_of(replicates, alpha),
            high: quantile_of(replicates, 1.0 - alpha),
        }
    }
}

/// numpy's linear-interpolation percentile of sorted values, defined where they are infinite
/// (an interval of running times reaches ∞ when resamples have no success).
pub fn quantile_of(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let (a, b) = (sorted[lo], sorted[hi]);
    let t = h - lo as f64;
    if a == b || t == 0.0 {
        a
    } else if b.is_infinite() {
        b
    } else {
        a + t * (b - a)
    }
}

/// The four aggregates of a method, each with its interval.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct AggregateIntervals {
    pub iqm: Interval,
    pub median: Interval,
    pub mean: Interval,
    pub optimality_gap: Interval,
}

/// What one method's resamples give: its aggregates and its performance profile at each τ,
/// each with an interval (the same resamples serve both, as one `rliable` call with a vector
/// statistic would).
#[derive(Clone, Debug, PartialEq)]
pub struct MethodSummary {
    pub aggregates: AggregateIntervals,
    /// One interval per τ.
    pub profile: Vec<Interval>,
}

/// Resample `r` of a method's matrix, stratified by environment, into `w`: a function of the
/// seed, the method's stream (its label) and `r` alone, so its aggregates and every pair it is
/// in see the same resamples.
fn resample(m: &ScoreMatrix, boot: &Bootstrap, stream: &str, r: usize, w: &mut [u32]) {
    m.resample(&mut Rng::for_resample(boot.seed, stream, r as u64), w);
}

/// The aggregates and performance profile of one method's matrix with their intervals, from
/// the resamples of stream `stream` (the method's label).
pub fn summarize(m: &ScoreMatrix, taus: &[f64], boot: &Bootstrap, stream: &str) -> MethodSummary {
    summarize_with(m, taus, boot, stream, None)
}

/// [`summarize`] with the method's resamples drawn beforehand (the same numbers).
pub fn summarize_with(
    m: &ScoreMatrix,
    taus: &[f64],
    boot: &Bootstrap,
    stream: &str,
    kept: Option<&Resamples>,
) -> MethodSummary {
    let point = m.aggregates();
    let profile = m.profile(taus);
    let b = boot.resamples;
    let mut reps: Vec<Vec<f64>> = vec![Vec::with_capacity(b); 4 + taus.len()];
    let mut drawn = m.unit_weights();
    let (mut scratch, mut prof) = (Vec::new(), vec![0.0; taus.len()]);
    for r in 0..b {
        let w = match kept {
            Some(k) => k.get(r),
            None => {
                resample(m, boot, stream, r, &mut drawn);
                &drawn
            }
        };
        let a = m.aggregates_weighted(w, &mut scratch);
        for (k, v) in [a.iqm, a.median, a.mean, a.optimality_gap]
            .into_iter()
            .enumerate()
        {
            reps[k].push(v);
        }
        m.profile_weighted(w, taus, &mut prof);
        for (k, v) in prof.iter().enumerate() {
            reps[4 + k].push(*v);
        }
    }
    let mut it = reps.iter_mut();
    let mut next = |est: f64| boot.interval(est, it.next().expect("one per statistic"));
    let aggregates = AggregateIntervals {
        iqm: next(point.iqm),
        median: next(point.median),
        mean: next(point.mean),
        optimality_gap: next(point.optimality_gap),
    };
    MethodSummary {
        aggregates,
        profile: profile.into_iter().map(next).collect(),
    }
}

/// The bootstrap replicates of the aggregates alone (any quantile of the distribution, not
/// just the interval's).
pub fn aggregate_replicates(m: &ScoreMatrix, boot: &Bootstrap, stream: &str) -> Vec<Aggregates> {
    let mut w = m.unit_weights();
    let mut scratch = Vec::new();
    (0..boot.resamples)
        .map(|r| {
            resample(m, boot, stream, r, &mut w);
            m.aggregates_weighted(&w, &mut scratch)
        })
        .collect()
}

/// A method's resamples, drawn once and kept while every pair it is in is compared (what
/// would otherwise be drawn again for each pair): `resamples × runs` weights. The same
/// numbers as drawing them where needed.
pub struct Resamples {
    runs: usize,
    weights: Vec<u32>,
}

impl Resamples {
    /// Bytes the resamples of a matrix of `runs` runs take.
    pub fn bytes(boot: &Bootstrap, runs: usize) -> usize {
        boot.resamples * runs * std::mem::size_of::<u32>()
    }

    /// Draws every resample of `m` on stream `stream`.
    pub fn draw(m: &ScoreMatrix, boot: &Bootstrap, stream: &str) -> Resamples {
        let runs = m.runs();
        let mut weights = vec![0u32; boot.resamples * runs];
        for (r, w) in weights.chunks_mut(runs.max(1)).enumerate() {
            resample(m, boot, stream, r, w);
        }
        Resamples { runs, weights }
    }

    fn get(&self, r: usize) -> &[u32] {
        &self.weights[r * self.runs..(r + 1) * self.runs]
    }
}

/// One side of a probability of improvement: a method's matrix, its stream, and its resamples
/// if they were drawn beforehand.
pub type Side<'a> = (&'a ScoreMatrix, &'a str, Option<&'a Resamples>);

/// The probability of improvement of X over Y with its interval: X's and Y's runs resampled
/// independently, each stratified by environment (`rliable`'s
/// `StratifiedIndependentBootstrap`), each from its own stream (its label).
pub fn improvement_interval(x: Side, y: Side, boot: &Bootstrap) -> Interval {
    improvement_replicates(x, y, boot, |est, reps| boot.interval(est, reps))
}

/// The probability of improvement's estimate and replicates, handed to `finish`.
pub fn improvement_replicates<R>(
    (x, sx, rx): Side,
    (y, sy, ry): Side,
    boot: &Bootstrap,
    finish: impl FnOnce(f64, &mut [f64]) -> R,
) -> R {
    let index = PairIndex::new(x, y);
    let mut prefix = Vec::new();
    let est = index.improvement(&x.unit_weights(), &y.unit_weights(), &mut prefix);
    let (mut wx, mut wy) = (x.unit_weights(), y.unit_weights());
    let mut reps: Vec<f64> = (0..boot.resamples)
        .map(|r| {
            let a = match rx {
                Some(c) => c.get(r),
                None => {
                    resample(x, boot, sx, r, &mut wx);
                    &wx
                }
            };
            let b = match ry {
                Some(c) => c.get(r),
                None => {
                    resample(y, boot, sy, r, &mut wy);
                    &wy
                }
            };
            index.improvement(a, b, &mut prefix)
        })
        .collect();
    finish(est, &mut reps)
}

/// Runs' values at the points of a common grid (a sample-efficiency curve): per environment,
/// per run, one value per grid point, NaN where the run has none (it had not started there, or
/// is still running past it).
#[derive(Clone, Debug)]
pub struct CurveMatrix {
    /// Per grid point, the runs' values there, run after run in environment order (NaN kept).
    at: Vec<Vec<f64>>,
    /// Per grid point, the indices of the runs with a finite value, ascending by value.
    order: Vec<Vec<u32>>,
    /// Where each environment's runs start; one more entry, the end.
    offsets: Vec<usize>,
}

impl CurveMatrix {
    /// `envs[e][r][k]`: run `r` of environment `e` at grid point `k` (all runs the same
    /// length). None when there is no run or no grid.
    pub fn new(envs: &[Vec<Vec<f64>>]) -> Option<CurveMatrix> {
        let points = envs.iter().flatten().map(Vec::len).next()?;
        if points == 0 || envs.iter().any(Vec::is_empty) {
            return None;
        }
        let mut offsets = vec![0];
        let mut runs: Vec<&Vec<f64>> = Vec::new();
        for e in envs {
            runs.extend(e.iter());
            offsets.push(runs.len());
        }
        let mut at = Vec::with_capacity(points);
        let mut order = Vec::with_capacity(points);
        for k in 0..points {
            let col: Vec<f64> = runs
                .iter()
                .map(|r| r.get(k).copied().unwrap_or(f64::NAN))
                .collect();
            let mut idx: Vec<u32> = (0..col.len() as u32)
                .filter(|&i| col[i as usize].is_finite())
                .collect();
            idx.sort_by(|&a, &b| col[a as usize].total_cmp(&col[b as usize]));
            at.push(col);
            order.push(idx);
        }
        Some(CurveMatrix { at, order, offsets })
    }

    fn iqm_at(&self, k: usize, w: &[u32]) -> f64 {
        let total: u64 = self.order[k]
            .iter()
            .map(|&i| u64::from(w[i as usize]))
            .sum();
        if total == 0 {
            return f64::NAN;
        }
        let cut = total / 4;
        let (lo, hi) = (cut, total - cut);
        let (mut pos, mut sum) = (0u64, 0.0);
        for &i in &self.order[k] {
            let c = u64::from(w[i as usize]);
            let (a, b) = (pos.max(lo), (pos + c).min(hi));
            if b > a {
                sum += self.at[k][i as usize] * (b - a) as f64;
            }
            pos += c;
            if pos >= hi {
                break;
            }
        }
        sum / (hi - lo) as f64
    }

    /// The IQM over all runs with a value at each grid point, with intervals from stratified
    /// resamples of whole runs (a resample keeps a run's whole curve, as `rliable` does for
    /// its sample-efficiency curves). NaN where no run has a value.
    pub fn iqm_intervals(&self, boot: &Bootstrap, stream: &str) -> Vec<Interval> {
        let n = *self.offsets.last().unwrap_or(&0);
        let ones = vec![1u32; n];
        let points = self.at.len();
        let mut reps: Vec<Vec<f64>> = vec![Vec::with_capacity(boot.resamples); points];
        let mut rng = Rng::new(boot.seed, stream);
        let mut w = vec![0u32; n];
        for _ in 0..boot.resamples {
            w.fill(0);
            for e in 0..self.offsets.len() - 1 {
                let (start, len) = (self.offsets[e], self.offsets[e + 1] - self.offsets[e]);
                for _ in 0..len {
                    w[start + rng.below(len as u32) as usize] += 1;
                }
            }
            for (k, r) in reps.iter_mut().enumerate() {
                let v = self.iqm_at(k, &w);
                if v.is_finite() {
                    r.push(v);
                }
            }
        }
        reps.iter_mut()
            .enumerate()
            .map(|(k, r)| {
                let est = self.iqm_at(k, &ones);
                if est.is_finite() {
                    boot.interval(est, r)
                } else {
                    Interval {
                        estimate: f64::NAN,
                        low: f64::NAN,
                        high: f64::NAN,
                    }
                }
            })
            .collect()
    }
}

/// The interval of the mean of one cell's runs (one method on one environment).
pub fn mean_interval(values: &[f64], boot: &Bootstrap, stream: &str) -> Option<Interval> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    let est = values.iter().sum::<f64>() / n as f64;
    let mut rng = Rng::new(boot.seed, stream);
    let mut reps: Vec<f64> = (0..boot.resamples)
        .map(|_| {
            let s: f64 = (0..n).map(|_| values[rng.below(n as u32) as usize]).sum();
            s / n as f64
        })
        .collect();
    Some(boot.interval(est, &mut reps))
}

/// How many more runs a cell needs for its interval's half-width to fall under a target.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct SeedsNeeded {
    /// Runs the cell has.
    pub runs: u64,
    /// The half-width of the bootstrap interval of the cell's mean now; None without runs.
    pub half_width: Option<f64>,
    /// Further runs needed; None when it cannot be estimated yet (fewer than 2 runs).
    pub more: Option<u64>,
}

/// Further runs for a cell's interval half-width to fall to `target`, estimated from the
/// bootstrap interval of the mean of its `values`: a half-width h from n runs shrinks as
/// 1/√n, so n' = ⌈n · (h / target)²⌉ runs reach `target` (at least n; None below 2 runs,
/// whose spread says nothing).
pub fn seeds_needed(values: &[f64], target: f64, boot: &Bootstrap, stream: &str) -> SeedsNeeded {
    let n = values.len() as u64;
    let half = mean_interval(values, boot, stream).map_or(f64::NAN, |i| i.half_width());
    let more = (n >= 2 && target > 0.0 && half.is_finite()).then(|| {
        let need = (n as f64 * (half / target).powi(2)).ceil();
        (need as u64).saturating_sub(n)
    });
    SeedsNeeded {
        runs: n,
        half_width: half.is_finite().then_some(half),
        more,
    }
}

/// `f` over `items` on up to as many threads as the machine has cores, results in order.
/// Each item's work is seeded by its own stream, so results do not depend on the threads.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    let mut out: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..items.len())
                        .step_by(threads)
                        .map(|i| (i, f(&items[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (i, r) in h.join().expect("a statistics thread panicked") {
                out[i] = Some(r);
            }
        }
    });
    out.into_iter().map(|r| r.expect("every item")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(envs: &[&[f64]]) -> ScoreMatrix {
        ScoreMatrix::new(&envs.iter().map(|e| e.to_vec()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn percentiles_interpolate_as_numpy() {
        let boot = Bootstrap::default();
        let mut reps: Vec<f64> = (0..=100).rev().map(f64::from).collect();
        let i = boot.interval(50.0, &mut reps);
        assert!(
            (i.low - 2.5).abs() < 1e-12 && (i.high - 97.5).abs() < 1e-12,
            "{i:?}"
        );
        assert_eq!(quantile_of(&[1.0, f64::INFINITY], 0.975), f64::INFINITY);
        assert_eq!(quantile_of(&[1.0, f64::INFINITY], 0.0), 1.0);
        assert_eq!(quantile_of(&[f64::INFINITY; 3], 0.5), f64::INFINITY);
    }

    #[test]
    fn the_same_seed_gives_the_same_interval() {
        let m = matrix(&[&[0.1, 0.4, 0.35, 0.8, 0.9], &[0.2, 0.25, 0.7]]);
        let boot = Bootstrap {
            resamples: 500,
            ..Bootstrap::default()
        };
        let a = summarize(&m, &[0.0, 0.5], &boot, "cma_es");
        assert_eq!(a, summarize(&m, &[0.0, 0.5], &boot, "cma_es"));
        let other = Bootstrap { seed: 1, ..boot };
        assert_ne!(a, summarize(&m, &[0.0, 0.5], &other, "cma_es"));
        let i = a.aggregates.iqm;
        assert!(i.low < i.estimate && i.estimate < i.high, "{i:?}");
        // Profiles: 0.0 is below every score.
        assert_eq!(a.profile[0], Interval::exact(1.0));
    }

    #[test]
    fn drawn_resamples_give_the_same_interval_as_drawing_them_where_needed() {
        let boot = Bootstrap {
            resamples: 300,
            ..Bootstrap::default()
        };
        let x = matrix(&[&[0.1, 0.4, 0.35, 0.8], &[0.2, 0.9]]);
        let y = matrix(&[&[0.3, 0.5, 0.2], &[0.6, 0.1, 0.4]]);
        let (cx, cy) = (
            Resamples::draw(&x, &boot, "x"),
            Resamples::draw(&y, &boot, "y"),
        );
        let fresh = improvement_interval((&x, "x", None), (&y, "y", None), &boot);
        let kept = improvement_interval((&x, "x", Some(&cx)), (&y, "y", Some(&cy)), &boot);
        assert_eq!(fresh, kept);
        assert!(
            fresh.low < fresh.estimate && fresh.estimate < fresh.high,
            "{fresh:?}"
        );
        assert_eq!(Resamples::bytes(&boot, 6), 300 * 6 * 4);
    }

    #[test]
    fn one_run_or_equal_scores_give_a_point_interval() {
        let boot = Bootstrap::default();
        let one = summarize(&matrix(&[&[0.7]]), &[], &boot, "a");
        assert_eq!(one.aggregates.iqm, Interval::exact(0.7));
        assert_eq!(one.aggregates.optimality_gap, Interval::exact(1.0 - 0.7));
        let same = summarize(&matrix(&[&[0.5; 6], &[0.5; 3]]), &[], &boot, "a");
        assert_eq!(same.aggregates.median, Interval::exact(0.5));
        let x = matrix(&[&[1.0; 4]]);
        assert_eq!(
            improvement_interval((&x, "x", None), (&x, "y", None), &boot),
            Interval::exact(0.5)
        );
    }

    #[test]
    fn curves_take_the_iqm_of_the_runs_present_at_each_point() {
        let nan = f64::NAN;
        let c = CurveMatrix::new(&[
            vec![vec![0.0, 1.0, 2.0], vec![0.0, 3.0, nan]],
            vec![vec![nan, 5.0, 5.0]],
        ])
        .unwrap();
        let boot = Bootstrap {
            resamples: 200,
            ..Bootstrap::default()
        };
        let iv = c.iqm_intervals(&boot, "m");
        assert_eq!(iv[0].estimate, 0.0);
        assert_eq!(iv[1].estimate, 3.0);
        assert_eq!(iv[2].estimate, 3.5);
        assert!(iv[1].low <= 3.0 && iv[1].high >= 3.0);
        assert!(CurveMatrix::new(&[]).is_none());
    }

    #[test]
    fn seeds_needed_scale_with_the_square_of_the_width() {
        let boot = Bootstrap::default();
        let values = [0.1, 0.9, 0.3, 0.7, 0.5];
        let now = seeds_needed(&values, 1.0, &boot, "c");
        assert_eq!(now.runs, 5);
        assert_eq!(now.more, Some(0));
        let half = now.half_width.unwrap();
        let target = half / 2.0;
        // Half the width needs four times the runs.
        let s = seeds_needed(&values, target, &boot, "c");
        assert_eq!(s.more, Some(15));
        assert_eq!(seeds_needed(&[0.5], 0.1, &boot, "c").more, None);
        // No runs: no interval (null in JSON, as the OpenAPI document says).
        assert_eq!(seeds_needed(&[], 0.1, &boot, "c").half_width, None);
    }

    #[test]
    fn par_map_keeps_order() {
        let v: Vec<u64> = (0..37).collect();
        assert_eq!(
            par_map(&v, |x| x * 2),
            v.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
    }

    #[test]
    fn intervals_write_infinity_as_null() {
        let i = Interval {
            estimate: 3.0,
            low: 2.0,
            high: f64::INFINITY,
        };
        let j = serde_json::to_string(&i).unwrap();
        assert_eq!(j, r#"{"estimate":3.0,"low":2.0,"high":null}"#);
        let back: Interval = serde_json::from_str(&j).unwrap();
        assert!(back.high.is_nan());
    }
}
