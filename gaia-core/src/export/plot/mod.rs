//! A small plotting toolkit: a [`Figure`] of plain numbers and labels in, PNG bytes out.
//!
//! It knows nothing of jobs, rows, the store or HTTP: the figures of [`crate::export::png`]
//! read their data first, then describe what to draw with these types, and [`render`] draws it.
//! A new kind of figure is a function that builds a `Figure`; it needs nothing new here unless
//! it needs a new kind of mark.
//!
//! - [`Figure`]: a title over panels laid out in a near-square grid.
//! - [`Panel`]: one chart with its caption, axis descriptions and linear or log y axis; it draws
//!   [`Band`]s (a line with a shaded range around it) under [`Line`]s.
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

/// A line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Its legend entry; empty: not listed.
    pub label: String,
    /// (x, y) in drawing order; points with a non-finite coordinate (or y ≤ 0 on a log axis)
    /// are left out.
    pub points: Vec<(f64, f64)>,
    /// Index into the palette.
    pub color: usize,
    /// Stroke width at 1600×1000.
    pub width: u32,
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
    pub lines: Vec<Line>,
    pub bands: Vec<Band>,
}

/// A whole image: a title over one or more panels.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Empty: no title band, the panels take the whole height.
    pub title: String,
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

/// `v` pixels at scale `s`, at least one.
fn px(s: f64, v: f64) -> u32 {
    (v * s).round().max(1.0) as u32
}
