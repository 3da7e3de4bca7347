//! PNG charts of a job, a study or every job: the store's data read here, turned into a
//! [`Figure`] by pure functions, and drawn by the plotting toolkit ([`crate::export::plot`]).
//!
//! - a job (`job.rs`): its learning curve, best-ever and mean (or the metrics asked for) against
//!   evaluations, from rows downsampled first (min and max per bucket, so spikes survive; the
//!   last row is always the line's last point);
//! - a study or every job (`study.rs`): per environment one panel, per method (× swept params)
//!   the median over seeds as a line and the interquartile range as a band, on an evaluation
//!   grid of that panel's own x range (see `study_figure` there for jobs that end at
//!   different budgets).
//!
//! This file is the one place that reads the store for a chart: the job list, a job's rows
//! (whole, or merged from block summaries when long), each study job's row extent, and a study
//! job's rows, which stream through a sampler onto its panel's grid when its line is computed
//! (one line's seeds in memory at a time, however long the jobs). `job.rs` and `study.rs`
//! never see the store: they build the figure from rows, extents and sampled values, and their
//! tests need none.

pub mod compare;
mod job;
mod study;

use super::{Target, each_row_of_attempt, first_and_last_row, jobs_of};
use crate::error::{Error, RequestError};
use crate::export::plot::{Figure, render};
use crate::model::{Job, Row};
use crate::store::Reader;
use crate::store::rows::Downsampler;

/// Default image width.
pub const DEFAULT_WIDTH: u32 = 1600;
/// Default image height.
pub const DEFAULT_HEIGHT: u32 = 1000;
/// Smallest side accepted.
pub const MIN_SIDE: u32 = 200;
/// Largest side accepted.
pub const MAX_SIDE: u32 = 8000;
/// Largest area (12 megapixels, ~36 MB of pixels while drawing): a 300-dpi figure a page wide
/// is about 5 megapixels.
pub const MAX_PIXELS: u64 = 12_000_000;

/// What a PNG shows and how big it is.
#[derive(Clone, Debug, PartialEq)]
pub struct PngOptions {
    pub width: u32,
    pub height: u32,
    /// Metrics to draw; empty: best_ever and mean for a job, best_ever for a study.
    pub metrics: Vec<String>,
    pub log_y: bool,
}

impl Default for PngOptions {
    fn default() -> Self {
        PngOptions {
            width: DEFAULT_WIDTH,
            height: DEFAULT_HEIGHT,
            metrics: Vec::new(),
            log_y: false,
        }
    }
}

impl PngOptions {
    /// Checks the size and metric names.
    pub fn validate(&self) -> Result<(), RequestError> {
        for (what, v) in [("width", self.width), ("height", self.height)] {
            if !(MIN_SIDE..=MAX_SIDE).contains(&v) {
                return Err(RequestError::Invalid(format!(
                    "{what} must be between {MIN_SIDE} and {MAX_SIDE} pixels, got {v}"
                )));
            }
        }
        let area = u64::from(self.width) * u64::from(self.height);
        if area > MAX_PIXELS {
            return Err(RequestError::Invalid(format!(
                "{}x{} is {area} pixels; at most {MAX_PIXELS} (e.g. 4000x3000)",
                self.width, self.height
            )));
        }
        if self.metrics.len() > 8 {
            return Err(RequestError::Invalid(
                "at most 8 metrics in one chart".into(),
            ));
        }
        for m in &self.metrics {
            crate::model::validate_name("metric name", m)?;
        }
        Ok(())
    }

    /// The query string of these options (empty for the defaults), starting with `?`.
    pub fn query(&self) -> String {
        let mut q = Vec::new();
        if self.width != DEFAULT_WIDTH || self.height != DEFAULT_HEIGHT {
            q.push(format!("width={}&height={}", self.width, self.height));
        }
        if !self.metrics.is_empty() {
            q.push(format!("metric={}", self.metrics.join(",")));
        }
        if self.log_y {
            q.push("log_y=true".into());
        }
        if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        }
    }
}

/// Which column is the x axis.
#[derive(Clone, Copy, Debug, PartialEq)]
enum XKind {
    Evals,
    Generation,
    Seq,
}

impl XKind {
    /// A row's x, if it has a finite one.
    fn of(self, r: &Row) -> Option<f64> {
        match self {
            XKind::Evals => r.evals,
            XKind::Generation => r.generation.map(|g| g as f64),
            XKind::Seq => Some(r.seq as f64),
        }
        .filter(|x| x.is_finite())
    }

    /// The x axis's description.
    fn label(self) -> &'static str {
        match self {
            XKind::Evals => "evaluations",
            XKind::Generation => "generation",
            XKind::Seq => "row",
        }
    }
}

/// Renders the PNG of a target.
pub fn render_target(
    reader: &Reader,
    target: &Target,
    opts: &PngOptions,
) -> Result<Vec<u8>, Error> {
    opts.validate()?;
    let fig = match target {
        Target::Job(_) => {
            let job = jobs_of(reader, target)?.remove(0);
            job_chart(reader, &job, opts)?
        }
        Target::Study(name) => {
            let jobs = jobs_of(reader, target)?;
            study_chart(reader, &format!("study {name}"), &jobs, opts)?
        }
        Target::All => {
            let jobs = jobs_of(reader, target)?;
            study_chart(reader, "all jobs", &jobs, opts)?
        }
    };
    render(&fig)
}

/// Renders figure `kind` of a comparison (computed by `study::compare::compare` with the
/// options `kind` requires, see [`compare::CompareFigure::require`]).
pub fn render_comparison(
    c: &crate::protocol::Comparison,
    kind: compare::CompareFigure,
    opts: &PngOptions,
) -> Result<Vec<u8>, Error> {
    opts.validate()?;
    render(&compare::compare_figure(c, kind, opts)?)
}

/// A job's chart: its curve's rows read, then drawn by [`job::job_figure`].
fn job_chart(reader: &Reader, job: &Job, opts: &PngOptions) -> Result<Figure, Error> {
    // Said before reading: a built-in job has a result, no rows.
    job::has_curve(job)?;
    let rows = job_rows(reader, job, opts.width)?;
    job::job_figure(job, &rows, opts)
}

/// The rows of a job's curve ([`job::shown_attempt`]'s): every row when they are few, else
/// about two per pixel of `width` merged from the store's block summaries (min and max per
/// bucket, so spikes survive), then the last row.
fn job_rows(reader: &Reader, job: &Job, width: u32) -> Result<Vec<Row>, Error> {
    let (attempt, total) = job::shown_attempt(job);
    let points = (width as usize * 2).max(1000);
    let mut rows: Vec<Row> = Vec::new();
    if Downsampler::needed(total, points) {
        // A bucket keeps its min and max, the later one at the bucket's last x: the line must
        // still end at the last row's own values.
        rows = reader.downsample(job.id, attempt, None, total, points)?;
        if let Some((_, last)) = first_and_last_row(reader, job.id, attempt)? {
            rows.push(last);
        }
    } else {
        each_row_of_attempt(reader, job.id, attempt, |r| {
            rows.push(r);
            Ok(())
        })?;
    }
    Ok(rows)
}

/// A study's (or every job's) chart, drawn by [`study::study_figure`]: reads each job's row
/// extent first (two rows a job), then a job's rows when its line asks for them, sampled onto
/// the panel's grid as they stream by; only one line's seeds are in memory at a time.
fn study_chart(
    reader: &Reader,
    title: &str,
    jobs: &[Job],
    opts: &PngOptions,
) -> Result<Figure, Error> {
    let metric = study::study_metric(opts)?;
    let jobs = study::charted(jobs);
    let xk = study::x_kind(&jobs);
    let mut extents = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Some(extent) = x_extent(reader, job, xk)? {
            extents.push((job, extent));
        }
    }
    let sample = |m: &study::Member, grid: &[f64]| {
        let mut on = study::OnGrid::new(grid);
        each_row_of_attempt(reader, m.job, m.attempt, |r| {
            if let (Some(x), Some(y)) = (xk.of(&r), r.metric(&metric)) {
                on.push(x, y);
            }
            Ok(())
        })?;
        Ok(on.finish(m.holds))
    };
    study::study_figure(title, &metric, xk, &extents, opts, sample)
}

/// The x of a job's first and last row (of its current attempt), None when no row has an x.
fn x_extent(reader: &Reader, job: &Job, xk: XKind) -> Result<Option<(f64, f64)>, Error> {
    if let Some((first, last)) = first_and_last_row(reader, job.id, job.attempt)?
        && let (Some(a), Some(b)) = (xk.of(&first), xk.of(&last))
    {
        return Ok(Some((a.min(b), a.max(b))));
    }
    // Rows without an x at either end: look at all of them.
    let mut range: Option<(f64, f64)> = None;
    each_row_of_attempt(reader, job.id, job.attempt, |r| {
        if let Some(x) = xk.of(&r) {
            range = Some(range.map_or((x, x), |(a, b)| (a.min(x), b.max(x))));
        }
        Ok(())
    })?;
    Ok(range)
}

/// A job as the store would hold it, made without a store: the figures' pure tests build their
/// jobs with it.
#[cfg(test)]
fn stored_job(
    id: crate::model::JobId,
    spec: crate::model::JobSpec,
    state: crate::model::JobState,
    attempt: u32,
    progress: crate::model::Progress,
) -> Job {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "spec": spec,
        "state": state,
        "attempt": attempt,
        "submitted_at": 0,
        "progress": progress,
    }))
    .expect("a job")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::plot::Band;
    use crate::export::plot::testutil::{count, decode};
    use crate::export::testutil::Fixture;
    use crate::model::{JobKind, JobSpec, JobState};

    #[test]
    fn sizes_are_bounded_by_side_and_by_area() {
        let with = |width, height| PngOptions {
            width,
            height,
            ..PngOptions::default()
        };
        assert!(with(1600, 1000).validate().is_ok());
        assert!(with(4000, 3000).validate().is_ok());
        assert!(with(8000, 1000).validate().is_ok());
        assert!(with(100, 1000).validate().is_err());
        assert!(with(9000, 1000).validate().is_err());
        // Each side allowed, the area not: 192 MB of pixels a request.
        let e = with(8000, 8000).validate().unwrap_err().to_string();
        assert!(e.contains("64000000 pixels"), "{e}");
    }

    // ---- study grids, held values, last points ------------------------------------------

    /// Rows at `evals` with best_ever (and mean) from `f`.
    fn rows(evals: impl Iterator<Item = f64>, f: impl Fn(f64) -> f64) -> Vec<Row> {
        evals
            .enumerate()
            .map(|(i, x)| Row {
                seq: i as u64,
                generation: Some(i as u64 + 1),
                evals: Some(x),
                best_ever: Some(f(x)),
                mean: Some(x),
                ..Row::default()
            })
            .collect()
    }

    fn steps(from: u64, to: u64, step: u64) -> impl Iterator<Item = f64> {
        (from..=to).step_by(step as usize).map(|x| x as f64)
    }

    fn spec(method: &str, env: &str, seed: u64) -> JobSpec {
        JobSpec {
            env: Some(env.into()),
            seed: Some(seed),
            ..JobSpec::experiment(method, 100_000)
        }
    }

    /// The jobs of the fixture as stored, with the given states.
    fn jobs_in(fx: &Fixture, states: &[(u64, JobState)]) -> Vec<Job> {
        let read = fx.store.read().unwrap();
        states
            .iter()
            .map(|&(id, state)| {
                let mut j = read.job(id).unwrap().unwrap();
                j.state = state;
                j
            })
            .collect()
    }

    fn band_of<'a>(fig: &'a Figure, env: &str, label: &str) -> &'a Band {
        let panel = fig
            .panels
            .iter()
            .find(|p| p.caption == env)
            .unwrap_or_else(|| panic!("no panel {env}"));
        panel
            .bands
            .iter()
            .find(|b| b.label.starts_with(label))
            .unwrap_or_else(|| panic!("no band {label} in {env}"))
    }

    fn finite(b: &Band) -> Vec<(f64, f64)> {
        b.x.iter()
            .zip(&b.mid)
            .filter(|(_, m)| m.is_finite())
            .map(|(x, m)| (*x, *m))
            .collect()
    }

    fn median_at(b: &Band, x: f64) -> f64 {
        let k = b.x.iter().position(|v| *v == x).expect("x on the grid");
        b.mid[k]
    }

    #[test]
    fn finished_seeds_hold_best_ever_and_running_ones_stop_at_their_last_row() {
        let fx = Fixture::new();
        // Seed 1 solved at 400 evals; seed 2 ran its whole 2000; seed 3 is still running at 1000.
        let a = fx.job_with_rows(
            spec("cma_es", "sphere", 1),
            rows(steps(10, 400, 10), |x| 100.0 + x),
        );
        let b = fx.job_with_rows(
            spec("cma_es", "sphere", 2),
            rows(steps(10, 2000, 10), |x| x / 10.0),
        );
        let c = fx.job_with_rows(
            spec("cma_es", "sphere", 3),
            rows(steps(10, 1000, 10), |x| x / 20.0),
        );
        let jobs = jobs_in(
            &fx,
            &[
                (a, JobState::Succeeded),
                (b, JobState::Succeeded),
                (c, JobState::Running),
            ],
        );
        let read = fx.store.read().unwrap();
        let fig = study_chart(&read, "study s", &jobs, &PngOptions::default()).unwrap();
        let band = band_of(&fig, "sphere", "cma_es (3 seeds)");
        let pts = finite(band);
        // Best-ever never decreases within a job, so neither does its median over seeds.
        for w in pts.windows(2) {
            assert!(
                w[1].1 >= w[0].1,
                "median went down: {:?} → {:?}",
                w[0],
                w[1]
            );
        }
        // Past 1000 the running seed 3 is not extended: median of seed 1's held 500 and seed 2.
        assert_eq!(median_at(band, 1000.0), 100.0, "all three seeds at 1000");
        let (x, m) = *pts.iter().find(|(x, _)| *x > 1400.0).unwrap();
        assert_eq!(m, (500.0 + (x / 10.0).floor()) / 2.0, "at {x}");
        // The line ends on the last row: seed 2's 200 with seed 1's 500.
        assert_eq!(*pts.last().unwrap(), (2000.0, 350.0));
        assert_eq!(band.dashed_after, None);

        // A metric that goes up and down (mean) is not held: past 1000 only seed 2 is left.
        let opts = PngOptions {
            metrics: vec!["mean".into()],
            ..PngOptions::default()
        };
        let fig = study_chart(&read, "study s", &jobs, &opts).unwrap();
        let band = band_of(&fig, "sphere", "cma_es");
        assert_eq!(median_at(band, 400.0), 400.0);
        let (x, m) = *finite(band).iter().find(|(x, _)| *x > 1400.0).unwrap();
        assert_eq!(m, (x / 10.0).floor() * 10.0, "only seed 2 has rows at {x}");
    }

    #[test]
    fn each_panel_has_its_own_grid_and_every_line_ends_on_its_last_row() {
        let fx = Fixture::new();
        // Both cma_es seeds solve CartPole at 396 evals; openai_es needs 2900; a Pendulum job of
        // 100k evals in another panel must not coarsen CartPole's grid.
        let solve = |x: f64| if x >= 396.0 { 500.0 } else { x };
        let c1 = fx.job_with_rows(
            spec("cma_es", "CartPole-v1", 1),
            rows(steps(18, 396, 18), solve),
        );
        let c2 = fx.job_with_rows(
            spec("cma_es", "CartPole-v1", 2),
            rows(steps(18, 396, 18), solve),
        );
        let o1 = fx.job_with_rows(
            spec("openai_es", "CartPole-v1", 1),
            rows(steps(50, 2900, 50), |x| (x / 5.8).min(500.0)),
        );
        let p1 = fx.job_with_rows(
            spec("openai_es", "Pendulum-v1", 1),
            rows(steps(1000, 100_000, 1000), |x| -1500.0 + x / 100.0),
        );
        // The --all example: the last row is evals 320, best_ever 500.
        let mut last = rows(steps(5, 315, 5), |x| x * 0.6);
        last.push(Row {
            seq: last.len() as u64,
            evals: Some(320.0),
            best_ever: Some(500.0),
            ..Row::default()
        });
        let s1 = fx.job_with_rows(spec("random_search", "sphere", 1), last);
        let jobs = jobs_in(
            &fx,
            &[
                (c1, JobState::Succeeded),
                (c2, JobState::Succeeded),
                (o1, JobState::Succeeded),
                (p1, JobState::Running),
                (s1, JobState::Succeeded),
            ],
        );
        let read = fx.store.read().unwrap();
        let fig = study_chart(&read, "all jobs", &jobs, &PngOptions::default()).unwrap();
        assert_eq!(fig.panels.len(), 3);

        let cma = band_of(&fig, "CartPole-v1", "cma_es (2 seeds)");
        // The grid starts at the panel's first x and is fine where cma_es has data...
        assert_eq!(cma.x[0], 18.0);
        assert_eq!(*cma.x.last().unwrap(), 2900.0);
        let before: Vec<(f64, f64)> = finite(cma).into_iter().filter(|p| p.0 <= 396.0).collect();
        assert!(before.len() >= 50, "cma_es has {} points", before.len());
        assert_eq!(before[0], (18.0, 18.0));
        // ...its line ends on the last row, then holds (dashed) to the end of the panel.
        assert_eq!(*before.last().unwrap(), (396.0, 500.0));
        assert_eq!(cma.dashed_after, Some(396.0));
        assert_eq!(*finite(cma).last().unwrap(), (2900.0, 500.0));
        let oes = band_of(&fig, "CartPole-v1", "openai_es");
        assert_eq!(*finite(oes).last().unwrap(), (2900.0, 500.0));
        assert_eq!(oes.dashed_after, None);

        let pend = band_of(&fig, "Pendulum-v1", "openai_es");
        assert_eq!((pend.x[0], *pend.x.last().unwrap()), (1000.0, 100_000.0));
        assert_eq!(*finite(pend).last().unwrap(), (100_000.0, -500.0));

        let sphere = band_of(&fig, "sphere", "random_search (1 seed)");
        let pts = finite(sphere);
        assert!(pts.len() >= 50, "sphere has {} points", pts.len());
        assert_eq!(*pts.last().unwrap(), (320.0, 500.0));

        // Drawn: the cma_es median (palette colour 0) has pixels in the CartPole panel (top
        // left of a 2×2 layout).
        let (w, h, img) = decode(&render(&fig).unwrap());
        let panel = (0, w / 2, 0, h / 2);
        assert!(
            count(&img, w, panel, [31, 119, 180]) > 200,
            "no cma_es line in the CartPole panel"
        );
        // And through the real --all path.
        let all = render_target(&read, &Target::All, &PngOptions::default()).unwrap();
        assert_eq!(decode(&all).0, 1600);
    }

    #[test]
    fn a_downsampled_job_curve_ends_on_its_last_row() {
        let fx = Fixture::new();
        let n = 10_000u64;
        let rows: Vec<Row> = (0..n)
            .map(|i| Row {
                seq: i,
                evals: Some((i + 1) as f64 * 10.0),
                best_ever: Some(i as f64),
                // Swings between -1 and 1; the last row is 0.25, an extreme of nothing.
                mean: Some(if i + 1 == n { 0.25 } else { (i as f64).sin() }),
                ..Row::default()
            })
            .collect();
        let id = fx.job_with_rows(spec("cma_es", "sphere", 1), rows);
        let read = fx.store.read().unwrap();
        let job = read.job(id).unwrap().unwrap();
        let fig = job_chart(&read, &job, &PngOptions::default()).unwrap();
        let lines = &fig.panels[0].lines;
        assert!(lines[0].points.len() < 4000, "downsampled");
        assert_eq!(*lines[0].points.last().unwrap(), (100_000.0, 9999.0));
        assert_eq!(*lines[1].points.last().unwrap(), (100_000.0, 0.25));
    }

    #[test]
    fn a_long_job_curve_comes_from_block_summaries_with_its_spikes_and_last_row() {
        // Past 64 rows per bucket the curve is merged from the store's block summaries (as the
        // dashboard's is) instead of reading every row: spikes and the last row must survive.
        let fx = Fixture::new();
        let n = 300_000u64;
        let rows: Vec<Row> = (0..n)
            .map(|i| Row {
                seq: i,
                evals: Some((i + 1) as f64),
                best_ever: Some(i as f64),
                mean: Some(match i {
                    123_457 => 1e6,
                    222_223 => -1e6,
                    _ if i + 1 == n => 0.25,
                    _ => (i as f64).sin(),
                }),
                ..Row::default()
            })
            .collect();
        let id = fx.job_with_rows(spec("cma_es", "sphere", 1), rows);
        let read = fx.store.read().unwrap();
        let job = read.job(id).unwrap().unwrap();
        let points = PngOptions::default().width as usize * 2;
        let from_blocks = read
            .downsample_from_blocks(id, 1, n, points)
            .unwrap()
            .expect("the test must take the block path");
        let fig = job_chart(&read, &job, &PngOptions::default()).unwrap();
        let lines = &fig.panels[0].lines;
        let mean = &lines[1].points;
        // Exactly the blocks' curve (a scan buckets by rows, not blocks, and differs), then
        // the last row.
        let expected: Vec<(f64, f64)> = from_blocks
            .iter()
            .map(|r| (r.evals.unwrap(), r.mean.unwrap()))
            .chain([(n as f64, 0.25)])
            .collect();
        assert_eq!(*mean, expected);
        assert!(mean.len() <= points + 1, "{} points", mean.len());
        assert!(mean.windows(2).all(|w| w[0].0 <= w[1].0), "x ascends");
        // A bucket draws its min and max at its own first and last x (the scan does the
        // same), so a spike lands within one bucket (3 blocks, 192 rows) of where it was.
        let near = |x: f64, y: f64| mean.iter().any(|p| p.1 == y && (p.0 - x).abs() <= 192.0);
        assert!(near(123_458.0, 1e6), "the spike up survives");
        assert!(near(222_224.0, -1e6), "the spike down survives");
        assert_eq!(*mean.last().unwrap(), (n as f64, 0.25));
        assert_eq!(*lines[0].points.last().unwrap(), (n as f64, (n - 1) as f64));
    }

    #[test]
    fn a_builtin_job_has_a_result_not_a_curve() {
        let fx = Fixture::new();
        let id = fx.job_with_rows(spec("cma_es", "sphere", 1), vec![]);
        let read = fx.store.read().unwrap();
        let mut job = read.job(id).unwrap().unwrap();
        job.spec = JobSpec::builtin(JobKind::Hash, "hello").into();
        job.state = JobState::Succeeded;
        let e = job_chart(&read, &job, &PngOptions::default()).unwrap_err();
        assert!(
            matches!(e, Error::Request(RequestError::Invalid(_))),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "job {id} is a hash job: it has a result, not a learning curve \
                 (see it with `gaia show {id}`)"
            )
        );
        // An experiment without rows yet is still a chart that says so.
        let queued = read.job(id).unwrap().unwrap();
        assert!(job_chart(&read, &queued, &PngOptions::default()).is_ok());
    }
}
