//! A small plotting toolkit: a [`Figure`] of plain numbers and labels in, PNG bytes out.
//!
//! It knows nothing of jobs, rows, the store or HTTP: the figures of [`crate::export::png`]
//! read their data first, then describe what to draw with these types, and [`render`] draws it.
//! A new kind of figure is a function that builds a `Figure`; it needs nothing new here unless
//! it needs a new kind of mark.
//!
//! - [`Figure`]: a title over panels laid out in a near-square grid.
//! - [`Panel`]: one chart with its caption, axis descriptions, linear or log x and y axes (each
//!   from the data or fixed), or a categorical y axis; it draws [`Band`]s (a line with a shaded
//!   range around it) under [`Line`]s (straight or as steps), and [`IntervalMark`]s (a point
//!   estimate with its interval, one per category) over reference lines ([`Panel::x_rules`]).
//! - `ticks`: round 1-2-5 ticks with an exact zero; log axes that always have labels.
//! - `axis`: an axis's range from the data, and how plotters maps values onto it.
//! - `legend`: the legend goes in a corner the data leaves empty, or the y range grows to make
//!   room for it above the data: it never covers a curve.
//! - `draw`: plotters into an RGB buffer (embedded DejaVu font, no system libraries), then PNG.

mod axis;
mod draw;
mod legend;
mod ticks;

#[cfg(test)]
pub(crate) mod testutil;

use crate::error::Error;
use plotters::style::RGBColor;

/// A line of a chart.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Line {
    /// Its legend entry; empty: not listed.
    pub label: String,
    /// (x, y) in drawing order; points with a non-finite coordinate (or ≤ 0 on a log axis)
    /// are left out.
    pub points: Vec<(f64, f64)>,
    /// Index into the palette.
    pub color: usize,
    /// Stroke width at 1600×1000.
    pub width: u32,
    /// Drawn as a step function (an ECDF): each point's y holds until the next point's x.
    pub step: bool,
}

impl Line {
    /// The points the line passes through: its own, or for a step line the corners too.
    pub fn path(&self) -> std::borrow::Cow<'_, [(f64, f64)]> {
        if !self.step || self.points.len() < 2 {
            return std::borrow::Cow::Borrowed(&self.points);
        }
        let mut out = Vec::with_capacity(self.points.len() * 2);
        for w in self.points.windows(2) {
            out.push(w[0]);
            out.push((w[1].0, w[0].1));
        }
        out.push(*self.points.last().expect("two points"));
        std::borrow::Cow::Owned(out)
    }
}

/// A point estimate with its interval, drawn on a categorical panel as a shaded bar from `low`
/// to `high` across its category's row and a dark tick at `estimate` (rliable's interval
/// plots). Non-finite bounds are drawn to the edge of the axis.
#[derive(Clone, Debug, PartialEq)]
pub struct IntervalMark {
    /// Index into [`Panel::categories`].
    pub category: usize,
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// Index into the palette.
    pub color: usize,
}

/// A line with a shaded range around it (a median and the interquartile range over seeds; an
/// estimate and its confidence interval): `mid`, `lo` and `hi` at each `x`, NaN where
/// undefined. The range is shaded where both `lo` and `hi` are defined.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    /// Its legend entry; empty: not listed.
    pub label: String,
    /// Index into the palette.
    pub color: usize,
    pub x: Vec<f64>,
    pub mid: Vec<f64>,
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
    /// Past this x the line is drawn dashed: its values there are not measured but carried
    /// forward (a study's finished seeds holding their final best).
    pub dashed_after: Option<f64>,
}

/// One chart.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Panel {
    /// The text over the chart; also what an empty panel's "no data yet" names.
    pub caption: String,
    pub x_label: String,
    pub y_label: String,
    pub log_y: bool,
    /// A logarithmic x axis (evaluations spanning decades).
    pub log_x: bool,
    /// The x axis's range, fixed; None: the data's.
    pub x_range: Option<(f64, f64)>,
    /// The y axis's range, fixed (fractions: 0 to 1); None: the data's.
    pub y_range: Option<(f64, f64)>,
    /// A categorical y axis: these labels from top to bottom, one row each, for
    /// [`IntervalMark`]s (empty: a numeric y axis).
    pub categories: Vec<String>,
    pub lines: Vec<Line>,
    pub bands: Vec<Band>,
    pub intervals: Vec<IntervalMark>,
    /// Vertical reference lines (dashed grey) at these x (a probability of 0.5).
    pub x_rules: Vec<f64>,
}

/// A whole image: a title over one or more panels.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Empty: no title band, the panels take the whole height.
    pub title: String,
    /// A line under the panels saying how the figure was made (score, normalisation, runs,
    /// resamples); empty: none.
    pub note: String,
    pub width: u32,
    pub height: u32,
    /// No panels: the image says "no data yet".
    pub panels: Vec<Panel>,
}

/// Renders a figure to PNG bytes.
pub fn render(fig: &Figure) -> Result<Vec<u8>, Error> {
    draw::render_figure(fig, true)
}

/// A drawing error of plotters, as ours.
fn perr<E: std::fmt::Display>(e: E) -> Error {
    Error::Other(format!("draw chart: {e}"))
}

/// Tableau 10 (distinguishable, print-safe), then six darker colours so twelve to sixteen
/// methods still differ.
const PALETTE: [RGBColor; 16] = [
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
    RGBColor(0, 0, 0),
    RGBColor(0, 0, 128),
    RGBColor(0, 128, 128),
    RGBColor(128, 0, 0),
    RGBColor(128, 128, 0),
    RGBColor(139, 0, 139),
];

pub(super) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// `v` pixels at scale `s`, at least one.
fn px(s: f64, v: f64) -> u32 {
    (v * s).round().max(1.0) as u32
}
