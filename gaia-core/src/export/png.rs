//! PNG charts, drawn with plotters into an RGB buffer and encoded in memory.
//!
//! - a job: its learning curve, best-ever and mean (or the metrics asked for) against
//!   evaluations, from rows downsampled first (min and max per bucket, so spikes survive);
//! - a study (or every job): per environment one panel, per method (× swept params) the median
//!   over seeds as a line and the interquartile range as a band, on a common evaluation grid.
//!
//! Text uses DejaVu Sans embedded in the binary (the `dejavu` crate) through plotters'
//! `ab_glyph` feature: nothing here needs fontconfig or freetype, so it renders on a bare
//! machine.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Target, each_row_of_attempt, jobs_of};
use crate::error::{Error, RequestError};
use crate::model::{Job, JobKind, Row};
use crate::store::Reader;
use crate::store::rows::Downsampler;

/// Default image width.
pub const DEFAULT_WIDTH: u32 = 1600;
/// Default image height.
pub const DEFAULT_HEIGHT: u32 = 1000;
/// Smallest and largest side accepted.
pub const MIN_SIDE: u32 = 200;
pub const MAX_SIDE: u32 = 8000;
/// Largest area (12 megapixels, ~36 MB of pixels while drawing): a 300-dpi figure a page wide
/// is about 5 megapixels.
pub const MAX_PIXELS: u64 = 12_000_000;
/// Points of the common evaluation grid of a study chart.
const GRID: usize = 300;

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

// ---- figures -------------------------------------------------------------------------------

/// A line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Index into the palette.
    pub color: usize,
    /// Stroke width at 1600×1000.
    pub width: u32,
}

/// A median line with an interquartile band; NaN where undefined.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub label: String,
    pub color: usize,
    pub x: Vec<f64>,
    pub median: Vec<f64>,
    pub q1: Vec<f64>,
    pub q3: Vec<f64>,
}

/// One chart.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Panel {
    pub caption: String,
    pub x_label: String,
    pub y_label: String,
    pub log_y: bool,
    pub lines: Vec<Line>,
    pub bands: Vec<Band>,
}

/// A whole image: a title over one or more panels.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub title: String,
    pub width: u32,
    pub height: u32,
    pub panels: Vec<Panel>,
}

/// Tableau 10: distinguishable, print-safe.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Registers the embedded font once per process.
fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are valid TrueType fonts shipped in the dejavu crate.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

fn perr<E: std::fmt::Display>(e: E) -> Error {
    Error::Other(format!("draw chart: {e}"))
}

/// Renders a figure to PNG bytes.
pub fn render(fig: &Figure) -> Result<Vec<u8>, Error> {
    fonts();
    let (w, h) = (fig.width, fig.height);
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let s = scale(w, h);
        let title_h = if fig.title.is_empty() { 0 } else { px(s, 76.0) };
        let (top, body) = root.split_vertically(title_h);
        if !fig.title.is_empty() {
            let style = ("sans-serif", px(s, 36.0))
                .into_font()
                .style(FontStyle::Bold)
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center));
            top.draw_text(&fig.title, &style, (w as i32 / 2, title_h as i32 / 2 + 4))
                .map_err(perr)?;
        }
        let n = fig.panels.len().max(1);
        let cols = (n as f64).sqrt().ceil() as usize;
        let rows = n.div_ceil(cols);
        let areas = body.split_evenly((rows, cols));
        if fig.panels.is_empty() {
            no_data(&areas[0], "no data yet", s)?;
        }
        for (panel, area) in fig.panels.iter().zip(areas.iter()) {
            draw_panel(area, panel, s)?;
        }
        root.present().map_err(perr)?;
    }
    encode(&rgb, w, h)
}

/// Encodes an RGB buffer as PNG.
fn encode(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(rgb.len() / 8);
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Default);
        let mut wr = enc.write_header().map_err(perr)?;
        wr.write_image_data(rgb).map_err(perr)?;
        wr.finish().map_err(perr)?;
    }
    Ok(out)
}

/// Sizes are designed at 1600×1000 and scaled with the image.
fn scale(w: u32, h: u32) -> f64 {
    (w as f64 / 1600.0).min(h as f64 / 1000.0).clamp(0.35, 5.0)
}

fn px(s: f64, v: f64) -> u32 {
    (v * s).round().max(1.0) as u32
}

fn no_data<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    s: f64,
) -> Result<(), Error> {
    let (w, h) = area.dim_in_pixel();
    let style = ("sans-serif", px(s, 30.0))
        .into_font()
        .color(&RGBColor(110, 110, 110))
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw_text(text, &style, (w as i32 / 2, h as i32 / 2))
        .map_err(perr)
}

/// Data bounds (x0, x1, y0, y1) over finite points (positive y on a log scale), padded.
fn bounds(p: &Panel) -> Option<(f64, f64, f64, f64)> {
    let ok = |y: f64| y.is_finite() && (!p.log_y || y > 0.0);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    let mut any = false;
    let mut see = |x: f64, y: f64| {
        if x.is_finite() && ok(y) {
            any = true;
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    };
    for l in &p.lines {
        for &(x, y) in &l.points {
            see(x, y);
        }
    }
    for b in &p.bands {
        for (i, &x) in b.x.iter().enumerate() {
            see(x, b.median[i]);
            see(x, b.q1[i]);
            see(x, b.q3[i]);
        }
    }
    if !any {
        return None;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if p.log_y {
        if y1 <= y0 {
            y0 /= 2.0;
            y1 *= 2.0;
        }
        let pad = (y1 / y0).powf(0.05);
        Some((x0, x1, y0 / pad, y1 * pad))
    } else {
        let pad = if y1 > y0 {
            (y1 - y0) * 0.05
        } else {
            (y0.abs() * 0.1).max(1.0)
        };
        Some((x0, x1, y0 - pad, y1 + pad))
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    s: f64,
) -> Result<(), Error> {
    let Some((x0, x1, y0, y1)) = bounds(p) else {
        let text = if p.log_y {
            format!("{}: no positive values to draw on a log scale", p.caption)
        } else if p.caption.is_empty() {
            "no data yet".to_string()
        } else {
            format!("{}: no data yet", p.caption)
        };
        return no_data(area, &text, s);
    };
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(px(s, 24.0))
        .x_label_area_size(px(s, 90.0))
        .y_label_area_size(px(s, 130.0));
    if !p.caption.is_empty() {
        builder.caption(&p.caption, ("sans-serif", px(s, 30.0)));
    }
    if p.log_y {
        let mut chart = builder
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(perr)?;
        draw_series(&mut chart, p, s, (y0, y1))
    } else {
        let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(perr)?;
        draw_series(&mut chart, p, s, (y0, y1))
    }
}

fn draw_series<'a, DB: DrawingBackend + 'a, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
    p: &Panel,
    s: f64,
    (y0, y1): (f64, f64),
) -> Result<(), Error>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let fx = |v: &f64| tick(*v);
    let fy = |v: &f64| tick(*v);
    chart
        .configure_mesh()
        .x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .x_labels(8)
        .y_labels(8)
        .axis_desc_style(("sans-serif", px(s, 28.0)))
        .label_style(("sans-serif", px(s, 22.0)))
        .bold_line_style(RGBColor(200, 200, 200))
        .light_line_style(RGBColor(238, 238, 238))
        .max_light_lines(4)
        .axis_style(RGBColor(60, 60, 60))
        .draw()
        .map_err(perr)?;
    let ok = |y: f64| y.is_finite() && (!p.log_y || y > 0.0);
    let legend_len = px(s, 36.0) as i32;
    let mut ends = Vec::new();
    for band in &p.bands {
        let c = color(band.color);
        // The band, one polygon per stretch where both quartiles are defined.
        let mut stretch: Vec<usize> = Vec::new();
        let mut stretches = Vec::new();
        for i in 0..band.x.len() {
            if band.x[i].is_finite() && ok(band.q1[i]) && ok(band.q3[i]) {
                stretch.push(i);
            } else if !stretch.is_empty() {
                stretches.push(std::mem::take(&mut stretch));
            }
        }
        if !stretch.is_empty() {
            stretches.push(stretch);
        }
        for st in stretches {
            let mut poly: Vec<(f64, f64)> = st.iter().map(|&i| (band.x[i], band.q3[i])).collect();
            poly.extend(st.iter().rev().map(|&i| (band.x[i], band.q1[i])));
            chart
                .draw_series(std::iter::once(Polygon::new(poly, c.mix(0.2).filled())))
                .map_err(perr)?;
        }
        let pts: Vec<(f64, f64)> = band
            .x
            .iter()
            .zip(&band.median)
            .filter(|(x, y)| x.is_finite() && ok(**y))
            .map(|(x, y)| (*x, *y))
            .collect();
        if let Some(last) = pts.last() {
            ends.push(last.1);
        }
        let stroke = px(s, 3.0);
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(stroke)))
            .map_err(perr)?
            .label(band.label.as_str())
            .legend(move |(x, y)| {
                Rectangle::new(
                    [
                        (x, y - stroke as i32 * 2),
                        (x + legend_len, y + stroke as i32 * 2),
                    ],
                    c.mix(0.35).filled(),
                )
            });
    }
    for line in &p.lines {
        let c = color(line.color);
        let pts: Vec<(f64, f64)> = line
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && ok(*y))
            .collect();
        if let Some(last) = pts.last() {
            ends.push(last.1);
        }
        let stroke = px(s, line.width as f64);
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(stroke)))
            .map_err(perr)?
            .label(line.label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + legend_len, y)], c.stroke_width(stroke))
            });
    }
    // The legend goes where the curves do not end: curves that end high get it low.
    let rel = |y: f64| {
        if p.log_y {
            (y.ln() - y0.ln()) / (y1.ln() - y0.ln())
        } else {
            (y - y0) / (y1 - y0)
        }
    };
    let high =
        !ends.is_empty() && ends.iter().map(|y| rel(*y)).sum::<f64>() / ends.len() as f64 > 0.5;
    chart
        .configure_series_labels()
        .position(if high {
            SeriesLabelPosition::LowerRight
        } else {
            SeriesLabelPosition::UpperRight
        })
        .label_font(("sans-serif", px(s, 24.0)))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(150, 150, 150))
        .margin(px(s, 14.0))
        .legend_area_size(px(s, 48.0))
        .draw()
        .map_err(perr)?;
    Ok(())
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

// ---- from the store --------------------------------------------------------------------------

/// Which column is the x axis.
#[derive(Clone, Copy, Debug, PartialEq)]
enum XKind {
    Evals,
    Generation,
    Seq,
}

impl XKind {
    fn of(self, r: &Row) -> Option<f64> {
        match self {
            XKind::Evals => r.evals,
            XKind::Generation => r.generation.map(|g| g as f64),
            XKind::Seq => Some(r.seq as f64),
        }
        .filter(|x| x.is_finite())
    }
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
            job_figure(reader, &job, opts)?
        }
        Target::Study(name) => {
            let jobs = jobs_of(reader, target)?;
            study_figure(reader, &format!("study {name}"), &jobs, opts)?
        }
        Target::All => {
            let jobs = jobs_of(reader, target)?;
            study_figure(reader, "all jobs", &jobs, opts)?
        }
    };
    render(&fig)
}

/// "cma_es on CartPole-v1, seed 3" for an experiment, its description otherwise.
fn job_label(job: &Job) -> String {
    let s = &job.spec;
    if s.kind != JobKind::Experiment {
        return s.describe();
    }
    let mut out = format!(
        "{} on {}",
        s.method.as_deref().unwrap_or("?"),
        s.env.as_deref().unwrap_or(crate::model::DEFAULT_ENV)
    );
    if let Some(seed) = s.seed {
        out.push_str(&format!(", seed {seed}"));
    }
    for (k, v) in &s.params {
        out.push_str(&format!(", {k}={v}"));
    }
    out
}

/// `1234567` → `1,234,567` (for captions, never for data).
fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The learning curve of a job's current attempt.
pub fn job_figure(reader: &Reader, job: &Job, opts: &PngOptions) -> Result<Figure, Error> {
    let metrics: Vec<String> = if opts.metrics.is_empty() {
        vec!["best_ever".into(), "mean".into()]
    } else {
        opts.metrics.clone()
    };
    let attempt = job.attempt.max(1);
    let total = if attempt == job.attempt {
        job.progress.rows
    } else {
        0
    };
    let points = (opts.width as usize * 2).max(1000);
    let mut rows: Vec<Row> = Vec::new();
    if Downsampler::needed(total, points) {
        let mut d = Downsampler::new(total, points);
        let mut i = 0;
        each_row_of_attempt(reader, job.id, attempt, |r| {
            d.push(i, r);
            i += 1;
            Ok(())
        })?;
        rows = d.finish();
    } else {
        each_row_of_attempt(reader, job.id, attempt, |r| {
            rows.push(r);
            Ok(())
        })?;
    }
    let xk = if rows.iter().any(|r| r.evals.is_some()) {
        XKind::Evals
    } else if rows.iter().any(|r| r.generation.is_some()) {
        XKind::Generation
    } else {
        XKind::Seq
    };
    let mut panel = Panel {
        caption: format!(
            "{}, {} rows{}",
            job.state,
            grouped(total.max(rows.len() as u64)),
            if job.attempt > 1 {
                format!(" of attempt {}", job.attempt)
            } else {
                String::new()
            }
        ),
        x_label: xk.label().into(),
        y_label: metrics.join(" / ") + if opts.log_y { " (log scale)" } else { "" },
        log_y: opts.log_y,
        lines: Vec::new(),
        bands: Vec::new(),
    };
    for (i, m) in metrics.iter().enumerate() {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| Some((xk.of(r)?, r.metric(m)?)))
            .collect();
        if points.is_empty() && !rows.is_empty() {
            let mut known: Vec<String> = crate::model::CORE_METRICS
                .iter()
                .filter(|c| rows.iter().any(|r| r.metric(c).is_some()))
                .map(|c| c.to_string())
                .collect();
            for r in &rows {
                for (k, _) in &r.metrics {
                    if !known.contains(k) {
                        known.push(k.clone());
                    }
                }
            }
            return Err(Error::Request(RequestError::Invalid(format!(
                "job {} has no metric {m:?}; its metrics: {}",
                job.id,
                known.join(", ")
            ))));
        }
        panel.lines.push(Line {
            label: m.clone(),
            points,
            color: i,
            width: if i == 0 { 3 } else { 2 },
        });
    }
    Ok(Figure {
        title: format!("job {}: {}{}", job.id, job_label(job), study_suffix(job)),
        width: opts.width,
        height: opts.height,
        panels: if rows.is_empty() {
            Vec::new()
        } else {
            vec![panel]
        },
    })
}

fn study_suffix(job: &Job) -> String {
    match &job.spec.study {
        Some(s) => format!(" (study {s})"),
        None => String::new(),
    }
}

/// The method comparison of a set of jobs: one panel per environment, per method (× swept
/// params) the median over seeds and the interquartile band.
pub fn study_figure(
    reader: &Reader,
    title: &str,
    jobs: &[Job],
    opts: &PngOptions,
) -> Result<Figure, Error> {
    if opts.metrics.len() > 1 {
        return Err(Error::Request(RequestError::Invalid(
            "a study chart draws one metric; pass one --metric".into(),
        )));
    }
    let metric = opts
        .metrics
        .first()
        .cloned()
        .unwrap_or_else(|| "best_ever".into());
    let jobs: Vec<&Job> = jobs
        .iter()
        .filter(|j| j.spec.kind == JobKind::Experiment && j.attempt > 0 && j.progress.rows > 0)
        .collect();
    let xk = if jobs.iter().any(|j| j.progress.evals.is_some()) {
        XKind::Evals
    } else {
        XKind::Generation
    };
    let x_max = jobs
        .iter()
        .filter_map(|j| match xk {
            XKind::Evals => j.progress.evals,
            _ => j.progress.generation.map(|g| g as f64),
        })
        .filter(|x| x.is_finite())
        .fold(0.0f64, f64::max);
    let mut fig = Figure {
        title: format!(
            "{title}: {metric}, median and interquartile range over seeds{}",
            if opts.log_y { " (log scale)" } else { "" }
        ),
        width: opts.width,
        height: opts.height,
        panels: Vec::new(),
    };
    if jobs.is_empty() || x_max <= 0.0 {
        return Ok(fig);
    }
    let grid: Vec<f64> = (0..GRID)
        .map(|k| x_max * k as f64 / (GRID - 1) as f64)
        .collect();
    // (env, label) → sampled curves; colours by label, the same in every panel.
    let mut envs: Vec<String> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut curves: Vec<Curves> = Vec::new();
    let mut seen_metric = false;
    for job in jobs {
        let env = job
            .spec
            .env
            .clone()
            .unwrap_or_else(|| crate::model::DEFAULT_ENV.into());
        let mut label = job.spec.method.clone().unwrap_or_default();
        for (k, v) in &job.spec.params {
            label.push_str(&format!(" {k}={v}"));
        }
        let e = index_of(&mut envs, env);
        let l = index_of(&mut labels, label);
        let (curve, any) = sample(reader, job, &metric, xk, &grid)?;
        seen_metric |= any;
        match curves.iter_mut().find(|(k, _)| *k == (e, l)) {
            Some((_, v)) => v.push(curve),
            None => curves.push(((e, l), vec![curve])),
        }
    }
    if !seen_metric {
        return Err(Error::Request(RequestError::Invalid(format!(
            "no job here has the metric {metric:?}"
        ))));
    }
    for (e, env) in envs.iter().enumerate() {
        let mut panel = Panel {
            caption: env.clone(),
            x_label: xk.label().into(),
            y_label: metric.clone(),
            log_y: opts.log_y,
            ..Panel::default()
        };
        for (l, label) in labels.iter().enumerate() {
            let Some((_, cs)) = curves.iter().find(|(k, _)| *k == (e, l)) else {
                continue;
            };
            let mut band = Band {
                label: format!(
                    "{label} ({} seed{})",
                    cs.len(),
                    if cs.len() == 1 { "" } else { "s" }
                ),
                color: l,
                x: grid.clone(),
                median: vec![f64::NAN; GRID],
                q1: vec![f64::NAN; GRID],
                q3: vec![f64::NAN; GRID],
            };
            let mut at: Vec<f64> = Vec::with_capacity(cs.len());
            for k in 0..GRID {
                at.clear();
                at.extend(cs.iter().map(|c| c[k]).filter(|v| v.is_finite()));
                if at.is_empty() {
                    continue;
                }
                at.sort_by(|a, b| a.total_cmp(b));
                band.q1[k] = quantile(&at, 0.25);
                band.median[k] = quantile(&at, 0.5);
                band.q3[k] = quantile(&at, 0.75);
            }
            panel.bands.push(band);
        }
        fig.panels.push(panel);
    }
    Ok(fig)
}

/// The sampled curves of the jobs of one (environment, label) pair.
type Curves = ((usize, usize), Vec<Vec<f64>>);

fn index_of(v: &mut Vec<String>, s: String) -> usize {
    match v.iter().position(|x| *x == s) {
        Some(i) => i,
        None => {
            v.push(s);
            v.len() - 1
        }
    }
}

/// A job's metric on the grid: at each grid x the value of the last row at or before it;
/// NaN before the first row and after the last. Also says whether any row had the metric.
fn sample(
    reader: &Reader,
    job: &Job,
    metric: &str,
    xk: XKind,
    grid: &[f64],
) -> Result<(Vec<f64>, bool), Error> {
    let mut out = vec![f64::NAN; grid.len()];
    let mut k = 0;
    let mut last: Option<(f64, f64)> = None;
    let mut any = false;
    each_row_of_attempt(reader, job.id, job.attempt, |r| {
        let (Some(x), Some(y)) = (xk.of(&r), r.metric(metric)) else {
            return Ok(());
        };
        any = true;
        while k < grid.len() && grid[k] < x {
            if let Some((_, v)) = last {
                out[k] = v;
            }
            k += 1;
        }
        last = Some((x, y));
        Ok(())
    })?;
    if let Some((lx, v)) = last {
        while k < grid.len() && grid[k] <= lx {
            out[k] = v;
            k += 1;
        }
    }
    Ok((out, any))
}

/// Linear-interpolation quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn figure(title: &str, w: u32, h: u32) -> Figure {
        let pts: Vec<(f64, f64)> = (0..500)
            .map(|i| (i as f64 * 100.0, -(100.0 / (1.0 + i as f64))))
            .collect();
        Figure {
            title: title.into(),
            width: w,
            height: h,
            panels: vec![Panel {
                caption: "succeeded, 500 rows".into(),
                x_label: "evaluations".into(),
                y_label: "best_ever / mean".into(),
                log_y: false,
                lines: vec![Line {
                    label: "best_ever".into(),
                    points: pts,
                    color: 0,
                    width: 3,
                }],
                bands: vec![],
            }],
        }
    }

    /// Non-white pixels in rows `y0..y1`.
    fn ink(rgb: &[u8], w: u32, y0: u32, y1: u32) -> usize {
        let row = w as usize * 3;
        rgb[y0 as usize * row..y1 as usize * row]
            .chunks(3)
            .filter(|p| p != &[255, 255, 255])
            .count()
    }

    #[test]
    fn png_has_the_requested_size_and_draws_its_title() {
        for (w, h) in [(1600, 1000), (800, 500), (1000, 1000)] {
            let with = render(&figure("job 42: cma_es on CartPole-v1", w, h)).unwrap();
            assert_eq!(&with[..8], b"\x89PNG\r\n\x1a\n");
            let (dw, dh, rgb) = decode(&with);
            assert_eq!((dw, dh), (w, h));
            // The title band (top 4 % of the image) has ink with a title and none without.
            let band = (h as f64 * 0.04) as u32;
            let inked = ink(&rgb, w, 0, band);
            assert!(inked > 200, "{w}x{h}: only {inked} title pixels");
            let without = render(&figure("", w, h)).unwrap();
            let (_, _, rgb0) = decode(&without);
            let bare = ink(&rgb0, w, 0, band);
            assert!(
                inked > bare + 200,
                "{w}x{h}: {inked} title pixels, {bare} without"
            );
            assert_ne!(rgb, rgb0);
        }
    }

    /// Pixels of exactly `rgb` in the rectangle `x0..x1 × y0..y1`.
    fn count(img: &[u8], w: u32, (x0, x1, y0, y1): (u32, u32, u32, u32), rgb: [u8; 3]) -> usize {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| ((y * w + x) * 3) as usize))
            .filter(|&i| img[i..i + 3] == rgb)
            .count()
    }

    /// Non-white pixels in the rectangle.
    fn ink_in(img: &[u8], w: u32, (x0, x1, y0, y1): (u32, u32, u32, u32)) -> usize {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| ((y * w + x) * 3) as usize))
            .filter(|&i| img[i..i + 3] != [255, 255, 255])
            .count()
    }

    #[test]
    fn axis_descriptions_grid_and_legend_are_drawn() {
        let (w, h) = (1600, 1000);
        let full = figure("job 42", w, h);
        let (_, _, img) = decode(&render(&full).unwrap());
        let mut bare = full.clone();
        bare.panels[0].x_label.clear();
        bare.panels[0].y_label.clear();
        let (_, _, bare_img) = decode(&render(&bare).unwrap());
        // The x description sits under the tick labels, the y description left of them.
        let bottom = (0, w, h - h / 20, h);
        let left = (0, w / 40, 0, h);
        assert!(
            ink_in(&img, w, bottom) > ink_in(&bare_img, w, bottom) + 200,
            "no x axis description"
        );
        assert!(
            ink_in(&img, w, left) > ink_in(&bare_img, w, left) + 200,
            "no y axis description"
        );
        // Grid lines in their two greys across the plot.
        let plot = (w / 5, w - w / 10, h / 5, h - h / 5);
        assert!(
            count(&img, w, plot, [200, 200, 200]) > 2000,
            "no major grid"
        );
        assert!(
            count(&img, w, plot, [238, 238, 238]) > 2000,
            "no minor grid"
        );
        // The curve ends high, so its legend (a box with a grey border) sits lower right.
        let lower_right = (w / 2, w, h / 2, h);
        let upper_right = (w / 2, w, 0, h / 2);
        let border = [150, 150, 150];
        assert!(count(&img, w, lower_right, border) > 300, "no legend box");
        assert!(
            count(&img, w, upper_right, border) < 50,
            "legend in the wrong place"
        );
        let mut unlabeled = full.clone();
        unlabeled.panels[0].lines[0].label = "x".into();
        let (_, _, short) = decode(&render(&unlabeled).unwrap());
        assert!(
            ink_in(&img, w, lower_right) > ink_in(&short, w, lower_right) + 200,
            "the legend's text is drawn"
        );
    }

    #[test]
    fn log_scale_bands_and_empty_figures_render() {
        let x: Vec<f64> = (0..50).map(|i| i as f64 * 10.0).collect();
        let median: Vec<f64> = x.iter().map(|x| 1.0 / (1.0 + x)).collect();
        let mut q1: Vec<f64> = median.iter().map(|m| m * 0.5).collect();
        q1[10] = f64::NAN;
        let q3 = median.iter().map(|m| m * 2.0).collect();
        let fig = Figure {
            title: "study s: sigma".into(),
            width: 900,
            height: 600,
            panels: vec![
                Panel {
                    caption: "sphere".into(),
                    log_y: true,
                    bands: vec![Band {
                        label: "cma_es (5 seeds)".into(),
                        color: 0,
                        x: x.clone(),
                        median,
                        q1,
                        q3,
                    }],
                    ..Panel::default()
                },
                Panel {
                    caption: "negative on a log scale".into(),
                    log_y: true,
                    lines: vec![Line {
                        label: "x".into(),
                        points: vec![(0.0, -1.0)],
                        color: 1,
                        width: 2,
                    }],
                    ..Panel::default()
                },
            ],
        };
        let (w, h, _) = decode(&render(&fig).unwrap());
        assert_eq!((w, h), (900, 600));
        let empty = Figure {
            panels: vec![],
            ..fig
        };
        assert_eq!(decode(&render(&empty).unwrap()).0, 900);
    }

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
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(12), "12");
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.5), 3.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.25), 2.0);
        assert_eq!(quantile(&[1.0, 2.0], 0.5), 1.5);
        assert_eq!(quantile(&[7.0], 0.75), 7.0);
    }
}
