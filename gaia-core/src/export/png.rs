//! PNG charts, drawn with plotters into an RGB buffer and encoded in memory.
//!
//! - a job: its learning curve, best-ever and mean (or the metrics asked for) against
//!   evaluations, from rows downsampled first (min and max per bucket, so spikes survive; the
//!   last row is always the line's last point);
//! - a study (or every job): per environment one panel, per method (× swept params) the median
//!   over seeds as a line and the interquartile range as a band, on an evaluation grid of that
//!   panel's own x range (see [`study_figure`] for jobs that end at different budgets).
//!
//! Axes carry ticks chosen here ([`Ticks`]): round 1-2-5 steps with an exact zero, and log axes
//! that always have labels (decades, then 1-2-5 and 1…9 per decade, then plain steps inside
//! one decade). The legend goes in a corner the data leaves empty, or the y range grows to
//! make room for it above the data: it never covers a curve.
//!
//! Text uses DejaVu Sans embedded in the binary (the `dejavu` crate) through plotters'
//! `ab_glyph` feature: nothing here needs fontconfig or freetype, so it renders on a bare
//! machine.

use std::ops::Range;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::element::MultiLineText;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Target, each_row_of_attempt, first_and_last_row, jobs_of};
use crate::error::{Error, RequestError};
use crate::model::{Job, JobKind, JobState, Row};
use crate::stats::quantile;
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
/// Evenly spaced points of a study panel's evaluation grid (over the panel's x range); a method
/// whose data spans less than half of it gets [`GROUP_GRID`] more over its own range.
const GRID: usize = 400;
const GROUP_GRID: usize = 200;
/// Most values sampled for one method of one panel (seeds × grid points), to bound memory.
const MAX_CELLS: usize = 8_000_000;

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
    /// Past this x no seed has rows any more: the values are finished seeds' final ones carried
    /// forward, and the median is drawn dashed.
    pub carried_after: Option<f64>,
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
    render_figure(fig, true)
}

/// Renders a figure; without `legends` every panel is laid out as with its legend (the same
/// axes, the same room made for it) but the legend itself is not drawn.
fn render_figure(fig: &Figure, legends: bool) -> Result<Vec<u8>, Error> {
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
            draw_panel(area, panel, s, legends)?;
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

// ---- axes and ticks --------------------------------------------------------------------------

/// The ticks of one axis: labelled ones (each with a major grid line) and the minor grid.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Ticks {
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

/// One axis of a panel: its range, linear or log, and the ticks chosen for it.
#[derive(Clone, Debug)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Ticks,
}

impl Axis {
    fn new(lo: f64, hi: f64, log: bool, target: usize) -> Axis {
        let ticks = if log {
            log_ticks(lo, hi, target)
        } else {
            linear_ticks(lo, hi, target)
        };
        Axis { lo, hi, log, ticks }
    }

    /// Where `v` falls: 0 at `lo`, 1 at `hi`.
    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    /// The same axis with its top raised so the data keeps the lower `keep` (0..1) of it.
    fn raised(&self, keep: f64, target: usize) -> Axis {
        let hi = if self.log {
            (self.lo.ln() + (self.hi.ln() - self.lo.ln()) / keep).exp()
        } else {
            self.lo + (self.hi - self.lo) / keep
        };
        Axis::new(self.lo, hi, self.log, target)
    }

    fn label(&self, v: f64) -> String {
        let tol = (self.hi - self.lo).abs() * 1e-9;
        match self
            .ticks
            .major
            .iter()
            .position(|t| (t - v).abs() <= tol.max(t.abs() * 1e-12))
        {
            Some(i) => self.ticks.labels[i].clone(),
            None if v.abs() <= tol => "0".into(),
            None => tick(v),
        }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = self.frac(*v);
        let t = if t.is_nan() {
            0.0
        } else {
            t.clamp(-100.0, 100.0)
        };
        limit.0 + ((limit.1 - limit.0) as f64 * t).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.ticks.minor.clone()
        } else {
            self.ticks.major.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

// ---- panels ----------------------------------------------------------------------------------

/// A corner of the plot area the legend may take, in the order tried.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Corner {
    UpperRight,
    LowerRight,
    UpperLeft,
    LowerLeft,
}

impl Corner {
    const ALL: [Corner; 4] = [
        Corner::UpperRight,
        Corner::LowerRight,
        Corner::UpperLeft,
        Corner::LowerLeft,
    ];

    /// Top-left of a `(w, h)` legend in this corner of a `(pw, ph)` plot area (as plotters
    /// lays out its own corner positions: 5 px in).
    fn origin(self, (w, h): (i32, i32), (pw, ph): (i32, i32)) -> (i32, i32) {
        let x = match self {
            Corner::UpperRight | Corner::LowerRight => pw - w - 5,
            _ => 5,
        };
        let y = match self {
            Corner::UpperRight | Corner::UpperLeft => 5,
            _ => ph - h - 5,
        };
        (x, y)
    }
}

/// Whether the segment a–b touches the rectangle `(x0, y0, x1, y1)` (Liang–Barsky).
fn segment_hits(a: (f64, f64), b: (f64, f64), (x0, y0, x1, y1): (f64, f64, f64, f64)) -> bool {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - x0),
        (dx, x1 - a.0),
        (-dy, a.1 - y0),
        (dy, y1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return false;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                if t > t1 {
                    return false;
                }
                t0 = t0.max(t);
            } else {
                if t < t0 {
                    return false;
                }
                t1 = t1.min(t);
            }
        }
    }
    true
}

/// How much of the panel's data a legend at `origin` of size `size` would cover, in pixels of a
/// `plot`-sized area: segments of lines and cells of bands it touches (0 = covers nothing).
fn covered(
    p: &Panel,
    (x, y): (&Axis, &Axis),
    plot: (i32, i32),
    origin: (i32, i32),
    size: (i32, i32),
    pad: f64,
) -> usize {
    let ok = |v: f64| v.is_finite() && (!p.log_y || v > 0.0);
    let (pw, ph) = (plot.0 as f64, plot.1 as f64);
    let at = |(vx, vy): (f64, f64)| (x.frac(vx) * pw, (1.0 - y.frac(vy)) * ph);
    let r = (
        origin.0 as f64 - pad,
        origin.1 as f64 - pad,
        (origin.0 + size.0) as f64 + pad,
        (origin.1 + size.1) as f64 + pad,
    );
    let inside = |(px, py): (f64, f64)| px >= r.0 && px <= r.2 && py >= r.1 && py <= r.3;
    let polyline = |pts: &mut dyn Iterator<Item = (f64, f64)>| {
        let mut hits = 0;
        let mut prev: Option<(f64, f64)> = None;
        for q in pts {
            let q = at(q);
            let hit = match prev {
                None => inside(q),
                Some(a) => segment_hits(a, q, r),
            };
            hits += usize::from(hit);
            prev = Some(q);
        }
        hits
    };
    let mut hits = 0;
    for l in &p.lines {
        hits += polyline(
            &mut l
                .points
                .iter()
                .copied()
                .filter(|&(vx, vy)| vx.is_finite() && ok(vy)),
        );
    }
    for b in &p.bands {
        hits += polyline(
            &mut b
                .x
                .iter()
                .zip(&b.median)
                .map(|(vx, vy)| (*vx, *vy))
                .filter(|&(vx, vy)| vx.is_finite() && ok(vy)),
        );
        for i in 1..b.x.len() {
            let cell = [i - 1, i];
            if !cell
                .iter()
                .all(|&k| b.x[k].is_finite() && ok(b.q1[k]) && ok(b.q3[k]))
            {
                continue;
            }
            let (xa, ya) = at((b.x[i - 1], b.q3[i - 1].max(b.q3[i])));
            let (xb, yb) = at((b.x[i], b.q1[i - 1].min(b.q1[i])));
            if xa <= r.2 && xb >= r.0 && ya <= r.3 && yb >= r.1 {
                hits += 1;
            }
        }
    }
    hits
}

/// Width and height of the legend plotters draws for these labels (None: nothing to list).
fn legend_size(labels: &[&str], s: f64) -> Result<Option<(i32, i32)>, Error> {
    if labels.is_empty() {
        return Ok(None);
    }
    let font: TextStyle = ("sans-serif", px(s, 24.0)).into_font().into();
    let mut text = MultiLineText::<_, &str>::new((0, 0), &font);
    for l in labels {
        text.push_line(*l);
    }
    let (w, h) = text.estimate_dimension().map_err(perr)?;
    let margin = px(s, 14.0) as i32;
    Ok(Some((w + px(s, 48.0) as i32 + 2 * margin, h + 2 * margin)))
}

/// Where a panel's legend goes: the first corner (upper right, lower right, upper left, lower
/// left) that covers no data; if none is free, the y axis grows upward to make room above the
/// data (when the legend takes less than about half the height); else the corner covering
/// least. Returns the (maybe raised) y axis and the corner.
fn place_legend(
    p: &Panel,
    x: &Axis,
    y: Axis,
    plot: (i32, i32),
    size: (i32, i32),
    (s, target): (f64, usize),
) -> (Axis, Corner) {
    let pad = px(s, 6.0) as f64;
    let best = |y: &Axis| {
        Corner::ALL
            .iter()
            .map(|&c| (c, covered(p, (x, y), plot, c.origin(size, plot), size, pad)))
            .min_by_key(|(_, n)| *n)
            .expect("four corners")
    };
    let (corner, hits) = best(&y);
    if hits == 0 {
        return (y, corner);
    }
    let keep = (plot.1 as f64 - (size.1 as f64 + 10.0 + 2.0 * pad)) / plot.1 as f64;
    if keep >= 0.45 {
        let raised = y.raised(keep, target);
        let (c, n) = best(&raised);
        if n < hits {
            return (raised, c);
        }
    }
    (y, corner)
}

/// The labels of a panel's legend, in drawing order.
fn legend_labels(p: &Panel) -> Vec<&str> {
    p.bands
        .iter()
        .map(|b| b.label.as_str())
        .chain(p.lines.iter().map(|l| l.label.as_str()))
        .filter(|l| !l.is_empty())
        .collect()
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    s: f64,
    legends: bool,
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
    // The caption is drawn here rather than by plotters, so laying the chart out draws nothing.
    let (margin, x_area, y_area) = (px(s, 24.0), px(s, 90.0), px(s, 130.0));
    let (area, top_margin) = if p.caption.is_empty() {
        (area.clone(), margin)
    } else {
        // As plotters' own caption: 5 px below the margin, the chart 10 px below the text.
        let font = ("sans-serif", px(s, 30.0)).into_font().color(&BLACK);
        let (tw, th) = area.estimate_text_size(&p.caption, &font).map_err(perr)?;
        let (w, _) = area.dim_in_pixel();
        let (top, rest) = area.split_vertically(margin + th + 10);
        let style = font.pos(Pos::new(HPos::Left, VPos::Top));
        let left = (w.saturating_sub(tw) / 2) as i32;
        top.draw_text(&p.caption, &style, (left, margin as i32 + 5))
            .map_err(perr)?;
        (rest, 0)
    };
    let (aw, ah) = area.dim_in_pixel();
    let plot = (
        aw.saturating_sub(2 * margin + y_area).max(1) as i32,
        ah.saturating_sub(margin + top_margin + x_area).max(1) as i32,
    );
    let x_target = ((plot.0 as f64 / (150.0 * s)) as usize).clamp(4, 10);
    let y_target = ((plot.1 as f64 / (90.0 * s)) as usize).clamp(4, 10);
    let x = Axis::new(x0, x1, false, x_target);
    let mut y = Axis::new(y0, y1, p.log_y, y_target);
    let labels = legend_labels(p);
    let legend = legend_size(&labels, s)?;
    let mut corner = Corner::UpperRight;
    if let Some(size) = legend {
        (y, corner) = place_legend(p, &x, y, plot, size, (s, y_target));
    }
    let mut builder = ChartBuilder::on(&area);
    builder
        .margin(margin)
        .margin_top(top_margin)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area);
    let mut chart = builder
        .build_cartesian_2d(x.clone(), y.clone())
        .map_err(perr)?;
    draw_series(
        &mut chart,
        p,
        s,
        (&x, &y),
        legend.filter(|_| legends).map(|size| (corner, size)),
    )
}

/// Draws a polyline: solid up to `dashed_after`, dashed beyond; a lone point as a dot.
fn curve<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<Axis, Axis>>,
    pts: &[(f64, f64)],
    style: ShapeStyle,
    dashed_after: Option<f64>,
    s: f64,
) -> Result<(), Error> {
    if pts.len() == 1 {
        chart
            .draw_series(std::iter::once(Circle::new(
                pts[0],
                px(s, 5.0),
                style.filled(),
            )))
            .map_err(perr)?;
        return Ok(());
    }
    let split = dashed_after
        .and_then(|d| pts.iter().position(|&(x, _)| x > d))
        .unwrap_or(pts.len());
    let (solid, rest) = pts.split_at(split);
    if solid.len() >= 2 {
        // Segment by segment, with a dot of the line's width at each joint, instead of one
        // polyline: plotters mitres a wide polyline's joints, and where a downsampled curve
        // turns back on itself (a bucket's min, then its max) the mitre is a spike that runs
        // far past the data, out of the plot (plotters-rs/plotters#549).
        chart
            .draw_series(
                solid
                    .windows(2)
                    .map(|w| PathElement::new(vec![w[0], w[1]], style)),
            )
            .map_err(perr)?;
        let r = style.stroke_width / 2;
        if r >= 1 {
            chart
                .draw_series(
                    solid[1..solid.len() - 1]
                        .iter()
                        .map(|&p| Circle::new(p, r, style.filled())),
                )
                .map_err(perr)?;
        }
    }
    if !rest.is_empty() {
        // Only where the value changes, so the dashes run evenly along flat stretches.
        let mut tail: Vec<(f64, f64)> = solid.last().copied().into_iter().collect();
        for (i, &pt) in rest.iter().enumerate() {
            let changes = tail.last().is_none_or(|l| l.1 != pt.1);
            if changes || i + 1 == rest.len() {
                tail.push(pt);
            }
        }
        if tail.len() >= 2 {
            chart
                .draw_series(DashedLineSeries::new(tail, px(s, 12.0), px(s, 8.0), style))
                .map_err(perr)?;
        }
    }
    Ok(())
}

fn draw_series<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<Axis, Axis>>,
    p: &Panel,
    s: f64,
    (x, y): (&Axis, &Axis),
    legend: Option<(Corner, (i32, i32))>,
) -> Result<(), Error> {
    let fx = |v: &f64| x.label(*v);
    let fy = |v: &f64| y.label(*v);
    chart
        .configure_mesh()
        .x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .x_labels(x.ticks.major.len().max(1))
        .y_labels(y.ticks.major.len().max(1))
        .axis_desc_style(("sans-serif", px(s, 28.0)))
        .label_style(("sans-serif", px(s, 22.0)))
        .bold_line_style(RGBColor(200, 200, 200))
        .light_line_style(RGBColor(238, 238, 238))
        .axis_style(RGBColor(60, 60, 60))
        .draw()
        .map_err(perr)?;
    let ok = |y: f64| y.is_finite() && (!p.log_y || y > 0.0);
    let legend_len = px(s, 36.0) as i32;
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
        let stroke = px(s, 3.0);
        curve(chart, &pts, c.stroke_width(stroke), band.carried_after, s)?;
        if !band.label.is_empty() {
            chart
                .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
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
    }
    for line in &p.lines {
        let c = color(line.color);
        let pts: Vec<(f64, f64)> = line
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && ok(*y))
            .collect();
        let stroke = px(s, line.width as f64);
        curve(chart, &pts, c.stroke_width(stroke), None, s)?;
        if !line.label.is_empty() {
            chart
                .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
                .map_err(perr)?
                .label(line.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + legend_len, y)], c.stroke_width(stroke))
                });
        }
    }
    let Some((corner, size)) = legend else {
        return Ok(());
    };
    let (pw, ph) = chart.plotting_area().dim_in_pixel();
    let (lx, ly) = corner.origin(size, (pw as i32, ph as i32));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::Coordinate(lx, ly))
        .label_font(("sans-serif", px(s, 24.0)))
        .background_style(WHITE)
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

/// The learning curve of a job's current attempt. A job of a built-in kind (hash, sum, ...)
/// has a result and no rows: asking for its curve is a request error that says so.
pub fn job_figure(reader: &Reader, job: &Job, opts: &PngOptions) -> Result<Figure, Error> {
    if job.spec.kind.is_builtin() {
        return Err(Error::Request(RequestError::Invalid(format!(
            "job {id} is a {kind} job: it has a result, not a learning curve \
             (see it with `gaia show {id}`)",
            id = job.id,
            kind = job.spec.kind
        ))));
    }
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
    let mut fig = Figure {
        title: format!(
            "{title}: {metric}, median and interquartile range over seeds{}",
            if opts.log_y { " (log scale)" } else { "" }
        ),
        width: opts.width,
        height: opts.height,
        panels: Vec::new(),
    };
    // Environments and labels in order of first appearance; colours by label, the same in
    // every panel.
    let mut envs: Vec<String> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut members: Vec<Member> = Vec::new();
    for job in jobs {
        let Some((first, last)) = x_extent(reader, job, xk)? else {
            continue;
        };
        let env = job
            .spec
            .env
            .clone()
            .unwrap_or_else(|| crate::model::DEFAULT_ENV.into());
        let mut label = job.spec.method.clone().unwrap_or_default();
        for (k, v) in &job.spec.params {
            label.push_str(&format!(" {k}={v}"));
        }
        members.push(Member {
            job,
            env: index_of(&mut envs, env),
            label: index_of(&mut labels, label),
            first,
            last,
            holds: holds_final_value(&metric, job.state),
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
            y_label: metric.clone(),
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
                let (curve, any) = sample(reader, m, &metric, xk, &grid)?;
                seen_metric |= any;
                curves.push(curve);
            }
            let n = grid.len();
            let mut band = Band {
                label: format!(
                    "{label} ({} seed{})",
                    group.len(),
                    if group.len() == 1 { "" } else { "s" }
                ),
                color: l,
                x: grid.clone(),
                median: vec![f64::NAN; n],
                q1: vec![f64::NAN; n],
                q3: vec![f64::NAN; n],
                carried_after: None,
            };
            let mut at: Vec<f64> = Vec::with_capacity(curves.len());
            for k in 0..n {
                at.clear();
                at.extend(curves.iter().map(|c| c[k]).filter(|v| v.is_finite()));
                if at.is_empty() {
                    continue;
                }
                at.sort_by(|a, b| a.total_cmp(b));
                band.q1[k] = quantile(&at, 0.25);
                band.median[k] = quantile(&at, 0.5);
                band.q3[k] = quantile(&at, 0.75);
            }
            let rows_end = group.iter().map(|m| m.last).fold(f64::MIN, f64::max);
            let drawn_end = (0..n)
                .rev()
                .find(|&k| band.median[k].is_finite())
                .map(|k| grid[k]);
            if drawn_end.is_some_and(|d| d > rows_end) {
                band.carried_after = Some(rows_end);
            }
            panel.bands.push(band);
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

/// One job of a study chart: where it goes and the x range of its rows.
struct Member<'a> {
    job: &'a Job,
    env: usize,
    label: usize,
    first: f64,
    last: f64,
    /// Whether its value holds past its last row (see [`holds_final_value`]).
    holds: bool,
}

/// Whether a job's final value of `metric` stands for every x past its last row: for
/// `best_ever` (never decreases within a job) of a job that finished its run (succeeded or
/// timed out). A running job may still change it; a failed, cancelled or lost one did not get
/// to show what it would reach; other metrics go up and down.
fn holds_final_value(metric: &str, state: JobState) -> bool {
    metric == "best_ever" && matches!(state, JobState::Succeeded | JobState::TimedOut)
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

/// A job's metric on the grid: at each grid x the value of the last row at or before it; NaN
/// before the first row, and after the last unless the value holds (`member.holds`). Also says
/// whether any row had the metric.
fn sample(
    reader: &Reader,
    member: &Member,
    metric: &str,
    xk: XKind,
    grid: &[f64],
) -> Result<(Vec<f64>, bool), Error> {
    let job = member.job;
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
        while k < grid.len() && (member.holds || grid[k] <= lx) {
            out[k] = v;
            k += 1;
        }
    }
    Ok((out, any))
}

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
                        carried_after: None,
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

    // ---- study grids, held values, last points ------------------------------------------

    use crate::export::testutil::Fixture;
    use crate::model::JobSpec;

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
            .zip(&b.median)
            .filter(|(_, m)| m.is_finite())
            .map(|(x, m)| (*x, *m))
            .collect()
    }

    fn median_at(b: &Band, x: f64) -> f64 {
        let k = b.x.iter().position(|v| *v == x).expect("x on the grid");
        b.median[k]
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
        let fig = study_figure(&read, "study s", &jobs, &PngOptions::default()).unwrap();
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
        assert_eq!(band.carried_after, None);

        // A metric that goes up and down (mean) is not held: past 1000 only seed 2 is left.
        let opts = PngOptions {
            metrics: vec!["mean".into()],
            ..PngOptions::default()
        };
        let fig = study_figure(&read, "study s", &jobs, &opts).unwrap();
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
        let fig = study_figure(&read, "all jobs", &jobs, &PngOptions::default()).unwrap();
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
        assert_eq!(cma.carried_after, Some(396.0));
        assert_eq!(*finite(cma).last().unwrap(), (2900.0, 500.0));
        let oes = band_of(&fig, "CartPole-v1", "openai_es");
        assert_eq!(*finite(oes).last().unwrap(), (2900.0, 500.0));
        assert_eq!(oes.carried_after, None);

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
        let fig = job_figure(&read, &job, &PngOptions::default()).unwrap();
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
        let fig = job_figure(&read, &job, &PngOptions::default()).unwrap();
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
        job.spec = JobSpec::builtin(JobKind::Hash, "hello");
        job.state = JobState::Succeeded;
        let e = job_figure(&read, &job, &PngOptions::default()).unwrap_err();
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
        assert!(job_figure(&read, &queued, &PngOptions::default()).is_ok());
    }

    // ---- ticks ---------------------------------------------------------------------------

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
        // The axis labels what it was given, and near-zero values read as 0.
        let axis = Axis::new(-0.26, 1.06, false, 8);
        assert_eq!(axis.label(-2.2e-16), "0");
    }

    /// A one-panel figure of a sigma between 0.394 and 0.479 on a log scale.
    fn sigma_figure() -> Figure {
        let pts: Vec<(f64, f64)> = (0..22)
            .map(|i| {
                (
                    18.0 * (i + 1) as f64,
                    0.479 - 0.085 * (i as f64 / 21.0).sqrt(),
                )
            })
            .collect();
        let mut fig = figure("job 1: sigma", 1600, 1000);
        fig.panels[0].log_y = true;
        fig.panels[0].lines[0] = Line {
            label: "sigma".into(),
            points: pts,
            color: 0,
            width: 3,
        };
        fig
    }

    #[test]
    fn a_log_axis_inside_one_decade_draws_tick_labels() {
        let (w, h) = (1600, 1000);
        let (_, _, img) = decode(&render(&sigma_figure()).unwrap());
        // Tick labels sit right of the y description and left of the plot.
        let labels = (60, 150, h / 8, h - h / 6);
        let inked = ink_in(&img, w, labels);
        assert!(inked > 400, "only {inked} pixels of y tick labels");
    }

    // ---- legend --------------------------------------------------------------------------

    /// The legend's box: the rows and columns of its grey border.
    fn legend_box(img: &[u8], w: u32, h: u32) -> Option<(u32, u32, u32, u32)> {
        let grey = |x: u32, y: u32| {
            let i = ((y * w + x) * 3) as usize;
            img[i..i + 3] == [150, 150, 150]
        };
        let rows: Vec<u32> = (0..h)
            .filter(|&y| (0..w).filter(|&x| grey(x, y)).count() >= 40)
            .collect();
        let (y0, y1) = (*rows.first()?, *rows.last()?);
        let xs: Vec<u32> = (0..w).filter(|&x| grey(x, y0)).collect();
        Some((xs[0], *xs.last().unwrap() + 1, y0, y1 + 1))
    }

    /// Coloured (data) pixels: lines and bands, not the greys of grid, axes and text.
    fn coloured(img: &[u8], w: u32, (x0, x1, y0, y1): (u32, u32, u32, u32)) -> usize {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| ((y * w + x) * 3) as usize))
            .filter(|&i| {
                let p = &img[i..i + 3];
                p.iter().max().unwrap() - p.iter().min().unwrap() > 12
            })
            .count()
    }

    #[test]
    fn a_curve_that_turns_back_on_itself_stays_inside_the_plot() {
        // A downsampled curve: a steep start, then each bucket's min and max one pixel apart.
        // Drawn as one wide polyline, plotters mitred those joints into spikes that ran out of
        // the plot, down to the image's bottom edge.
        let mut pts = vec![(64.0, -897.0)];
        for k in 1..1600u32 {
            let x = f64::from(k) * 40_960.0;
            let y = -900.0 / (f64::from(k) * 640.0).sqrt();
            pts.push((x, y + 3.0));
            pts.push((x + 64.0, y - 3.0));
        }
        let mut fig = figure("job 1: zigzag", 1600, 1000);
        fig.panels[0].lines[0].points = pts;
        fig.panels[0].lines[0].width = 3;
        let (w, h, img) = decode(&render_figure(&fig, false).unwrap());
        // Below the x axis there are tick labels and the axis description only (greys).
        let below = coloured(&img, w, (0, w, h - h / 7, h));
        assert_eq!(below, 0, "{below} data pixels below the plot");
        let left = coloured(&img, w, (0, 100, 0, h));
        assert_eq!(left, 0, "{left} data pixels left of the plot");
    }

    /// The legend is drawn and no data is under it.
    fn legend_clear(fig: &Figure) {
        let (w, h, img) = decode(&render(fig).unwrap());
        let b = legend_box(&img, w, h).expect("a legend");
        assert!(b.1 - b.0 > 60 && b.3 - b.2 > 30, "{b:?}");
        let (_, _, without) = decode(&render_figure(fig, false).unwrap());
        assert!(legend_box(&without, w, h).is_none());
        let under = coloured(&without, w, b);
        assert_eq!(under, 0, "the legend {b:?} covers {under} data pixels");
    }

    #[test]
    fn the_legend_never_covers_data() {
        // A job: best-ever ends at the top right, the mean in the lower right.
        let best: Vec<(f64, f64)> = (0..300)
            .map(|i| (i as f64 * 10.0, (i as f64).sqrt() * 29.0))
            .collect();
        let mean: Vec<(f64, f64)> = (0..300)
            .map(|i| (i as f64 * 10.0, 40.0 + (i as f64 * 0.3).sin() * 30.0))
            .collect();
        let mut job = figure("job 3", 1600, 1000);
        job.panels[0].lines = vec![
            Line {
                label: "best_ever".into(),
                points: best,
                color: 0,
                width: 3,
            },
            Line {
                label: "mean".into(),
                points: mean,
                color: 1,
                width: 2,
            },
        ];
        legend_clear(&job);
        // Data in all four corners (an X): the y range makes room above it.
        let mut x = job.clone();
        x.title = "job x".into();
        x.panels[0].lines = vec![
            Line {
                label: "up".into(),
                points: vec![(0.0, 0.0), (100.0, 1.0)],
                color: 0,
                width: 3,
            },
            Line {
                label: "down".into(),
                points: vec![(0.0, 1.0), (100.0, 0.0)],
                color: 1,
                width: 3,
            },
        ];
        legend_clear(&x);
        // Bands whose ends fill the right side, as the --all chart's do.
        let xs: Vec<f64> = (0..200).map(|i| i as f64).collect();
        let mk = |label: &str, color, f: &dyn Fn(f64) -> f64| Band {
            label: label.into(),
            color,
            x: xs.clone(),
            median: xs.iter().map(|&x| f(x)).collect(),
            q1: xs.iter().map(|&x| f(x) - 5.0).collect(),
            q3: xs.iter().map(|&x| f(x) + 5.0).collect(),
            carried_after: Some(150.0),
        };
        let mut bands = figure("all jobs", 1600, 1000);
        bands.panels[0].lines.clear();
        bands.panels[0].bands = vec![
            mk("cma_es (4 seeds)", 0, &|x| 100.0 - 80.0 * (-x / 20.0).exp()),
            mk("openai_es (3 seeds)", 1, &|x| x / 2.0),
            mk("random_search (1 seed)", 2, &|x| 50.0 + x / 10.0),
        ];
        legend_clear(&bands);
    }

    #[test]
    fn panels_with_a_single_point_still_show_it() {
        let mut fig = figure("study s", 800, 500);
        fig.panels[0].lines[0].points = vec![(396.0, 500.0)];
        let (w, h, img) = decode(&render(&fig).unwrap());
        let plot = (w / 6, w - 20, h / 8, h - h / 6);
        assert!(
            count(&img, w, plot, [31, 119, 180]) > 20,
            "the lone point is not drawn"
        );
    }
}
