//! The chart of a study (or of every job): per environment one panel, per method (× swept
//! params) the median over seeds and the interquartile band. Pure: the jobs, the x range of
//! their rows and a way to sample a job's metric on a grid in; a [`Figure`] out. The reading
//! is the caller's (`study_chart` in the parent module), so the logic here is tested without a
//! store.

use super::{PngOptions, XKind};
use crate::error::{Error, RequestError};
use crate::export::plot::{Band, Figure, Panel};
use crate::model::{Job, JobId, JobKind, JobState};
use crate::stats::quantile;

/// Evenly spaced points of a study panel's evaluation grid (over the panel's x range); a method
/// whose data spans less than half of it gets [`GROUP_GRID`] more over its own range.
const GRID: usize = 400;
const GROUP_GRID: usize = 200;
/// Most values sampled for one method of one panel (seeds × grid points), to bound memory.
const MAX_CELLS: usize = 8_000_000;

/// The one metric a study chart draws: the one `opts` names, best_ever by default.
pub(super) fn study_metric(opts: &PngOptions) -> Result<String, Error> {
    if opts.metrics.len() > 1 {
        return Err(Error::Request(RequestError::Invalid(
            "a study chart draws one metric; pass one --metric".into(),
        )));
    }
    Ok(opts
        .metrics
        .first()
        .cloned()
        .unwrap_or_else(|| "best_ever".into()))
}

/// The jobs a study chart can draw: experiments that ran and have rows.
pub(super) fn charted(jobs: &[Job]) -> Vec<&Job> {
    jobs.iter()
        .filter(|j| j.spec.kind() == JobKind::Experiment && j.attempt > 0 && j.progress.rows > 0)
        .collect()
}

/// The x axis of a study chart: evaluations when any job reports them, else generations.
pub(super) fn x_kind(jobs: &[&Job]) -> XKind {
    if jobs.iter().any(|j| j.progress.evals.is_some()) {
        XKind::Evals
    } else {
        XKind::Generation
    }
}

/// One job of a study chart: where it goes and the x range of its rows.
pub(super) struct Member {
    /// The job and the attempt whose rows are drawn.
    pub(super) job: JobId,
    pub(super) attempt: u32,
    /// Its panel (environment) and its line (method × params), as indices.
    env: usize,
    label: usize,
    first: f64,
    last: f64,
    /// Whether its value holds past its last row (see [`holds_final_value`]).
    pub(super) holds: bool,
}

/// The method comparison of a set of jobs: one panel per environment, per method (× swept
/// params) the median over seeds and the interquartile band. `jobs` are the charted jobs (see
/// [`charted`]), each with the x of its first and last row; `sample(member, grid)` gives that
/// job's `metric` on a panel's grid (an [`OnGrid`] fed its rows) and whether any row had the
/// metric. It is called line by line, so only one line's seeds are in memory at a time.
///
/// Each panel has its own evaluation grid over its own x range, from the first row's x to the
/// last: evenly spaced points, more over the range of a method whose data spans less than half
/// the panel, and every method's (and every stopped-short job's) last x, so each line ends on
/// its last row. A job's value at a grid x is that of its last row at or before x; NaN before
/// its first row. Past its last row:
/// - `best_ever` (never decreases within a job) of a job that **finished** (succeeded or
///   timed out) holds its final value: a seed that solved early stays solved, and a median of
///   best-ever never goes down because seeds end. Where only such held values are left (past
///   the method's last row), the median is drawn dashed.
/// - every other metric (mean, sigma, ...: not monotone, a held value would be invented), and
///   a job that is still running or failed, cancelled or was lost, stops at its last row: the
///   median further right is over the seeds that still have rows there.
pub(super) fn study_figure(
    title: &str,
    metric: &str,
    xk: XKind,
    jobs: &[(&Job, (f64, f64))],
    opts: &PngOptions,
    mut sample: impl FnMut(&Member, &[f64]) -> Result<(Vec<f64>, bool), Error>,
) -> Result<Figure, Error> {
    let mut fig = Figure {
        title: format!(
            "{title}: {metric}, median and interquartile range over seeds{}",
            if opts.log_y { " (log scale)" } else { "" }
        ),
        note: String::new(),
        width: opts.width,
        height: opts.height,
        panels: Vec::new(),
    };
    // Environments and labels in order of first appearance; colours by label, the same in
    // every panel.
    let mut envs: Vec<String> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut members: Vec<Member> = Vec::new();
    for &(job, (first, last)) in jobs {
        // Charted jobs are experiments (see `charted`): their env is always known.
        let env = job.spec.env().unwrap_or_default().to_string();
        let mut label = job.spec.method().unwrap_or_default().to_string();
        for (k, v) in &job.spec.params {
            label.push_str(&format!(" {k}={v}"));
        }
        members.push(Member {
            job: job.id,
            attempt: job.attempt,
            env: index_of(&mut envs, env),
            label: index_of(&mut labels, label),
            first,
            last,
            holds: holds_final_value(metric, job.state),
        });
    }
    if members.is_empty() {
        return Ok(fig);
    }
    let mut seen_metric = false;
    for (e, env) in envs.iter().enumerate() {
        let in_panel: Vec<&Member> = members.iter().filter(|m| m.env == e).collect();
        let grid = panel_grid(&in_panel);
        let mut panel = Panel {
            caption: env.clone(),
            x_label: xk.label().into(),
            y_label: metric.to_string(),
            log_y: opts.log_y,
            ..Panel::default()
        };
        for (l, label) in labels.iter().enumerate() {
            let group: Vec<&Member> = in_panel.iter().copied().filter(|m| m.label == l).collect();
            if group.is_empty() {
                continue;
            }
            let mut curves = Vec::with_capacity(group.len());
            for m in &group {
                let (curve, any) = sample(m, &grid)?;
                seen_metric |= any;
                curves.push(curve);
            }
            let label = format!(
                "{label} ({} seed{})",
                group.len(),
                if group.len() == 1 { "" } else { "s" }
            );
            let rows_end = group.iter().map(|m| m.last).fold(f64::MIN, f64::max);
            panel
                .bands
                .push(seeds_band(label, l, &grid, &curves, rows_end));
        }
        fig.panels.push(panel);
    }
    if !seen_metric {
        return Err(Error::Request(RequestError::Invalid(format!(
            "no job here has the metric {metric:?}"
        ))));
    }
    Ok(fig)
}

/// The band of one line: at each grid x the median and quartiles over the seeds that have a
/// value there (NaN where none has), dashed past `rows_end` (the group's last row) when held
/// final values carry it further.
fn seeds_band(
    label: String,
    color: usize,
    grid: &[f64],
    curves: &[Vec<f64>],
    rows_end: f64,
) -> Band {
    let n = grid.len();
    let mut band = Band {
        label,
        color,
        x: grid.to_vec(),
        mid: vec![f64::NAN; n],
        lo: vec![f64::NAN; n],
        hi: vec![f64::NAN; n],
        dashed_after: None,
    };
    let mut at: Vec<f64> = Vec::with_capacity(curves.len());
    for k in 0..n {
        at.clear();
        at.extend(curves.iter().map(|c| c[k]).filter(|v| v.is_finite()));
        if at.is_empty() {
            continue;
        }
        at.sort_by(|a, b| a.total_cmp(b));
        band.lo[k] = quantile(&at, 0.25);
        band.mid[k] = quantile(&at, 0.5);
        band.hi[k] = quantile(&at, 0.75);
    }
    let drawn_end = (0..n)
        .rev()
        .find(|&k| band.mid[k].is_finite())
        .map(|k| grid[k]);
    if drawn_end.is_some_and(|d| d > rows_end) {
        band.dashed_after = Some(rows_end);
    }
    band
}

/// Whether a job's final value of `metric` stands for every x past its last row: for
/// `best_ever` (never decreases within a job) of a job that finished its run (succeeded or
/// timed out). A running job may still change it; a failed, cancelled or lost one did not get
/// to show what it would reach; other metrics go up and down.
fn holds_final_value(metric: &str, state: JobState) -> bool {
    metric == "best_ever" && matches!(state, JobState::Succeeded | JobState::TimedOut)
}

/// `n` evenly spaced points from `lo` to `hi` (both included).
fn evenly(lo: f64, hi: f64, n: usize) -> impl Iterator<Item = f64> {
    let n = n.max(2);
    (0..n).map(move |k| {
        if k + 1 == n {
            hi
        } else {
            lo + (hi - lo) * k as f64 / (n - 1) as f64
        }
    })
}

/// The evaluation grid of one panel (see [`study_figure`]), ascending, without duplicates.
fn panel_grid(members: &[&Member]) -> Vec<f64> {
    let lo = members.iter().map(|m| m.first).fold(f64::MAX, f64::min);
    let hi = members.iter().map(|m| m.last).fold(f64::MIN, f64::max);
    if hi <= lo {
        return vec![lo];
    }
    let mut by_label: Vec<(usize, f64, f64, usize)> = Vec::new();
    for m in members {
        match by_label.iter_mut().find(|g| g.0 == m.label) {
            Some(g) => {
                g.1 = g.1.min(m.first);
                g.2 = g.2.max(m.last);
                g.3 += 1;
            }
            None => by_label.push((m.label, m.first, m.last, 1)),
        }
    }
    let seeds = by_label.iter().map(|g| g.3).max().unwrap_or(1);
    let cap = (MAX_CELLS / seeds).clamp(GRID, 50_000);
    let mut grid: Vec<f64> = evenly(lo, hi, GRID).collect();
    grid.extend(by_label.iter().map(|g| g.2));
    let narrow: Vec<f64> = by_label
        .iter()
        .filter(|g| g.2 - g.1 < 0.5 * (hi - lo))
        .flat_map(|g| evenly(g.1, g.2, GROUP_GRID))
        .collect();
    if grid.len() + narrow.len() <= cap {
        grid.extend(narrow);
    }
    let stops: Vec<f64> = members
        .iter()
        .filter(|m| !m.holds)
        .map(|m| m.last)
        .collect();
    if grid.len() + stops.len() <= cap {
        grid.extend(stops);
    }
    grid.sort_by(f64::total_cmp);
    let tol = (hi - lo) * 1e-12;
    grid.dedup_by(|a, b| (*a - *b).abs() <= tol);
    grid
}

/// A job's metric sampled on a grid as its points stream by in x order: at each grid x the
/// value of the last point at or before it; NaN before the first point, and after the last
/// unless the value holds. Holds one value per grid point, whatever the job's length.
pub(super) struct OnGrid<'g> {
    grid: &'g [f64],
    out: Vec<f64>,
    /// The next grid point not yet given a value.
    k: usize,
    last: Option<(f64, f64)>,
}

impl<'g> OnGrid<'g> {
    /// An empty sampling of `grid` (ascending).
    pub(super) fn new(grid: &'g [f64]) -> OnGrid<'g> {
        OnGrid {
            grid,
            out: vec![f64::NAN; grid.len()],
            k: 0,
            last: None,
        }
    }

    /// The job's next point (x ascending).
    pub(super) fn push(&mut self, x: f64, y: f64) {
        while self.k < self.grid.len() && self.grid[self.k] < x {
            if let Some((_, v)) = self.last {
                self.out[self.k] = v;
            }
            self.k += 1;
        }
        self.last = Some((x, y));
    }

    /// The values on the grid, the last one carried to the grid's end when it `holds`; and
    /// whether any point came.
    pub(super) fn finish(mut self, holds: bool) -> (Vec<f64>, bool) {
        let Some((lx, v)) = self.last else {
            return (self.out, false);
        };
        while self.k < self.grid.len() && (holds || self.grid[self.k] <= lx) {
            self.out[self.k] = v;
            self.k += 1;
        }
        (self.out, true)
    }
}

/// The index of `s` in `v`, appending it when new.
fn index_of(v: &mut Vec<String>, s: String) -> usize {
    match v.iter().position(|x| *x == s) {
        Some(i) => i,
        None => {
            v.push(s);
            v.len() - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::png::stored_job;
    use crate::model::{JobSpec, Progress};

    fn member(label: usize, (first, last): (f64, f64), holds: bool) -> Member {
        Member {
            job: 1,
            attempt: 1,
            env: 0,
            label,
            first,
            last,
            holds,
        }
    }

    #[test]
    fn sampling_takes_the_last_value_at_or_before_each_x() {
        let grid = [0.0, 10.0, 20.0, 30.0, 40.0];
        let feed = |holds| {
            let mut on = OnGrid::new(&grid);
            for (x, y) in [(5.0, 1.0), (10.0, 2.0), (25.0, 3.0)] {
                on.push(x, y);
            }
            on.finish(holds)
        };
        let (v, any) = feed(false);
        assert!(any);
        assert!(v[0].is_nan(), "before the first point");
        assert_eq!(&v[1..3], [2.0, 2.0]);
        // Past the last point: NaN unless the value holds.
        assert!(v[3].is_nan() && v[4].is_nan(), "{v:?}");
        let (v, _) = feed(true);
        assert_eq!(&v[1..], [2.0, 2.0, 3.0, 3.0]);
        let (v, any) = OnGrid::new(&grid).finish(true);
        assert!(!any && v.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn a_panel_grid_reaches_every_line_end_and_is_finer_over_short_lines() {
        // One long line over 0..10,000, one that stopped at 500 (and does not hold its value).
        let long = member(0, (0.0, 10_000.0), true);
        let short = member(1, (0.0, 500.0), false);
        let early_stop = member(0, (0.0, 1234.5), false);
        let grid = panel_grid(&[&long, &short, &early_stop]);
        assert!(
            grid.windows(2).all(|w| w[0] < w[1]),
            "ascending, no duplicates"
        );
        assert_eq!((grid[0], *grid.last().unwrap()), (0.0, 10_000.0));
        assert!(grid.contains(&500.0) && grid.contains(&1234.5));
        let under_500 = grid.iter().filter(|x| **x <= 500.0).count();
        assert!(
            under_500 >= GROUP_GRID,
            "{under_500} points over the short line"
        );
        // A panel whose jobs all have one x: that x alone.
        assert_eq!(panel_grid(&[&member(0, (7.0, 7.0), true)]), [7.0]);
    }

    #[test]
    fn a_band_is_the_median_and_quartiles_of_the_seeds_present() {
        let grid = [1.0, 2.0, 3.0];
        let nan = f64::NAN;
        let curves = vec![
            vec![1.0, 1.0, 4.0],
            vec![2.0, 5.0, nan],
            vec![3.0, nan, nan],
            vec![4.0, nan, nan],
            vec![5.0, nan, nan],
        ];
        let band = seeds_band("m (5 seeds)".into(), 3, &grid, &curves, 3.0);
        assert_eq!((band.color, band.x.as_slice()), (3, grid.as_slice()));
        assert_eq!((band.lo[0], band.mid[0], band.hi[0]), (2.0, 3.0, 4.0));
        assert_eq!((band.lo[1], band.mid[1], band.hi[1]), (2.0, 3.0, 4.0));
        assert_eq!(band.mid[2], 4.0);
        assert_eq!(band.dashed_after, None);
        // Drawn past the group's last row (held values): dashed from there.
        let band = seeds_band(String::new(), 0, &grid, &curves, 2.0);
        assert_eq!(band.dashed_after, Some(2.0));
    }

    #[test]
    fn a_study_figure_is_built_without_a_store() {
        let job = |id, method: &str, env: &str, state| {
            let spec = JobSpec {
                env: Some(env.into()),
                ..JobSpec::experiment(method, 1000)
            };
            let progress = Progress {
                rows: 10,
                evals: Some(100.0),
                ..Progress::default()
            };
            stored_job(id, spec, state, 1, progress)
        };
        let jobs = [
            job(1, "cma_es", "sphere", JobState::Succeeded),
            job(2, "cma_es", "sphere", JobState::Succeeded),
            job(3, "openai_es", "rastrigin", JobState::Running),
            stored_job(
                4,
                JobSpec::experiment("random", 1000),
                JobState::Queued,
                0,
                Progress::default(),
            ),
        ];
        let charted = charted(&jobs);
        assert_eq!(x_kind(&charted), XKind::Evals);
        let extents: Vec<(&Job, (f64, f64))> =
            charted.iter().map(|&j| (j, (10.0, 100.0))).collect();
        // Every job's metric is its id, from x = 10 on.
        let sample = |m: &Member, grid: &[f64]| {
            let mut on = OnGrid::new(grid);
            on.push(10.0, m.job as f64);
            on.push(100.0, m.job as f64);
            Ok(on.finish(m.holds))
        };
        let opts = PngOptions::default();
        let fig = study_figure(
            "study s",
            "best_ever",
            XKind::Evals,
            &extents,
            &opts,
            sample,
        )
        .unwrap();
        assert_eq!(
            fig.title,
            "study s: best_ever, median and interquartile range over seeds"
        );
        let panels: Vec<(&str, Vec<(&str, usize)>)> = fig
            .panels
            .iter()
            .map(|p| {
                let bands = p
                    .bands
                    .iter()
                    .map(|b| (b.label.as_str(), b.color))
                    .collect();
                (p.caption.as_str(), bands)
            })
            .collect();
        // The same method keeps its colour in every panel; a job without rows is not drawn.
        assert_eq!(
            panels,
            [
                ("sphere", vec![("cma_es (2 seeds)", 0)]),
                ("rastrigin", vec![("openai_es (1 seed)", 1)]),
            ]
        );
        let cma = &fig.panels[0].bands[0];
        assert_eq!(cma.mid[0], 1.5);
        assert_eq!(fig.panels[1].x_label, "evaluations");

        // A metric no row has is an error; no job with rows is an empty figure.
        let none = |_: &Member, grid: &[f64]| Ok(OnGrid::new(grid).finish(false));
        let e = study_figure("s", "fitness", XKind::Evals, &extents, &opts, none).unwrap_err();
        assert_eq!(e.to_string(), "no job here has the metric \"fitness\"");
        let empty = study_figure("s", "fitness", XKind::Evals, &[], &opts, none).unwrap();
        assert!(empty.panels.is_empty());
        let two = PngOptions {
            metrics: vec!["a".into(), "b".into()],
            ..PngOptions::default()
        };
        assert!(study_metric(&two).is_err());
        assert_eq!(study_metric(&opts).unwrap(), "best_ever");
    }
}
