//! Where a panel's legend goes and how it is drawn. The legend takes a corner of the plot
//! area that the data leaves empty (upper right, lower right, upper left, lower left, in that
//! order); when every corner has data, the y range grows upward to make room above it. It
//! never covers a curve or a band: placement measures what each corner would cover, in
//! pixels, before anything is drawn.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::Axis;
use super::{Panel, perr, px};
use crate::error::Error;

/// Legend text size, inner margin and the room each entry's symbol takes (at 1600×1000): one
/// set of numbers for measuring the legend and for drawing it, so placement measures exactly
/// the box that is drawn.
const FONT: f64 = 24.0;
const MARGIN: f64 = 14.0;
const SYMBOL_AREA: f64 = 48.0;

/// A corner of the plot area the legend may take, in the order tried.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Corner {
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
    pub(super) fn origin(self, (w, h): (i32, i32), (pw, ph): (i32, i32)) -> (i32, i32) {
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
    let okx = |v: f64| v.is_finite() && (!p.log_x || v > 0.0);
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
                .path()
                .iter()
                .copied()
                .filter(|&(vx, vy)| okx(vx) && ok(vy)),
        );
    }
    for b in &p.bands {
        hits += polyline(
            &mut b
                .x
                .iter()
                .zip(&b.mid)
                .map(|(vx, vy)| (*vx, *vy))
                .filter(|&(vx, vy)| okx(vx) && ok(vy)),
        );
        for i in 1..b.x.len() {
            let cell = [i - 1, i];
            if !cell
                .iter()
                .all(|&k| okx(b.x[k]) && ok(b.lo[k]) && ok(b.hi[k]))
            {
                continue;
            }
            let (xa, ya) = at((b.x[i - 1], b.hi[i - 1].max(b.hi[i])));
            let (xb, yb) = at((b.x[i], b.lo[i - 1].min(b.lo[i])));
            if xa <= r.2 && xb >= r.0 && ya <= r.3 && yb >= r.1 {
                hits += 1;
            }
        }
    }
    hits
}

/// Entries a legend column holds before the legend takes another column, so a legend of many
/// methods is wide and low, and fits above the data rather than over it.
const ROWS: usize = 5;

/// How a legend's entries are laid out: down each column, then across.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Layout {
    pub cols: usize,
    pub rows: usize,
    /// Width of a column: symbol, text, gap.
    pub col_w: i32,
    pub row_h: i32,
    pub margin: i32,
}

impl Layout {
    /// The box's width and height.
    pub(super) fn size(&self) -> (i32, i32) {
        (
            self.cols as i32 * self.col_w + 2 * self.margin,
            self.rows as i32 * self.row_h + 2 * self.margin,
        )
    }
}

/// The layout of a legend of these labels (None: nothing to list): one column up to six
/// entries, then columns of at most [`ROWS`].
pub(super) fn legend_layout(labels: &[&str], s: f64) -> Result<Option<Layout>, Error> {
    if labels.is_empty() {
        return Ok(None);
    }
    let font = ("sans-serif", px(s, FONT)).into_font();
    let mut text_w = 0;
    for l in labels {
        text_w = text_w.max(font.box_size(l).map_err(perr)?.0 as i32);
    }
    let text_h = font.box_size("Ag").map_err(perr)?.1 as i32;
    let cols = if labels.len() <= 6 {
        1
    } else {
        labels.len().div_ceil(ROWS)
    };
    let gap = if cols > 1 { px(s, 24.0) as i32 } else { 0 };
    Ok(Some(Layout {
        cols,
        rows: labels.len().div_ceil(cols),
        col_w: px(s, SYMBOL_AREA) as i32 + text_w + gap,
        row_h: text_h + px(s, 8.0) as i32,
        margin: px(s, MARGIN) as i32,
    }))
}

/// Width and height of the legend for these labels (None: nothing to list).
pub(super) fn legend_size(labels: &[&str], s: f64) -> Result<Option<(i32, i32)>, Error> {
    Ok(legend_layout(labels, s)?.map(|l| l.size()))
}

/// Where a panel's legend goes: the first corner (upper right, lower right, upper left, lower
/// left) that covers no data; if none is free, the y axis grows upward to make room above the
/// data (when the legend takes less than about half the height); else the corner covering
/// least. Returns the (maybe raised) y axis and the corner.
pub(super) fn place_legend(
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
pub(super) fn legend_labels(p: &Panel) -> Vec<&str> {
    p.bands
        .iter()
        .map(|b| b.label.as_str())
        .chain(p.lines.iter().map(|l| l.label.as_str()))
        .filter(|l| !l.is_empty())
        .collect()
}

/// Draws the legend of the panel's labelled series in `corner`: a white box with a grey
/// border, each entry its series' symbol (a band's shade, a line's stroke) and label.
pub(super) fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<Axis, Axis>>,
    p: &Panel,
    (corner, size): (Corner, (i32, i32)),
    s: f64,
) -> Result<(), Error> {
    let labels = legend_labels(p);
    let Some(layout) = legend_layout(&labels, s)? else {
        return Ok(());
    };
    let area = chart.plotting_area().strip_coord_spec();
    let (pw, ph) = area.dim_in_pixel();
    let (lx, ly) = corner.origin(size, (pw as i32, ph as i32));
    area.draw(&Rectangle::new(
        [(lx, ly), (lx + size.0, ly + size.1)],
        WHITE.filled(),
    ))
    .map_err(perr)?;
    area.draw(&Rectangle::new(
        [(lx, ly), (lx + size.0, ly + size.1)],
        RGBColor(150, 150, 150),
    ))
    .map_err(perr)?;
    let symbols = p
        .bands
        .iter()
        .filter(|b| !b.label.is_empty())
        .map(|b| (b.color, None))
        .chain(
            p.lines
                .iter()
                .filter(|l| !l.label.is_empty())
                .map(|l| (l.color, Some(l.width))),
        );
    let font = ("sans-serif", px(s, FONT))
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let len = px(s, 36.0) as i32;
    for (i, (label, (color, width))) in labels.iter().zip(symbols).enumerate() {
        let (col, row) = ((i / layout.rows) as i32, (i % layout.rows) as i32);
        let x = lx + layout.margin + col * layout.col_w;
        let y = ly + layout.margin + row * layout.row_h + layout.row_h / 2;
        let c = super::color(color);
        match width {
            None => {
                let half = px(s, 6.0) as i32;
                area.draw(&Rectangle::new(
                    [(x, y - half), (x + len, y + half)],
                    c.mix(0.35).filled(),
                ))
                .map_err(perr)?;
                area.draw(&PathElement::new(
                    vec![(x, y), (x + len, y)],
                    c.stroke_width(px(s, 3.0)),
                ))
                .map_err(perr)?;
            }
            Some(w) => {
                area.draw(&PathElement::new(
                    vec![(x, y), (x + len, y)],
                    c.stroke_width(px(s, w as f64)),
                ))
                .map_err(perr)?;
            }
        }
        area.draw_text(label, &font, (x + px(s, SYMBOL_AREA) as i32, y))
            .map_err(perr)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::plot::draw::render_figure;
    use crate::export::plot::testutil::{coloured, decode, figure, legend_box};
    use crate::export::plot::{Band, Figure, Line, render};

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
                step: false,
            },
            Line {
                label: "mean".into(),
                points: mean,
                color: 1,
                width: 2,
                step: false,
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
                step: false,
            },
            Line {
                label: "down".into(),
                points: vec![(0.0, 1.0), (100.0, 0.0)],
                color: 1,
                width: 3,
                step: false,
            },
        ];
        legend_clear(&x);
        // Bands whose ends fill the right side, as the --all chart's do.
        let xs: Vec<f64> = (0..200).map(|i| i as f64).collect();
        let mk = |label: &str, color, f: &dyn Fn(f64) -> f64| Band {
            label: label.into(),
            color,
            x: xs.clone(),
            mid: xs.iter().map(|&x| f(x)).collect(),
            lo: xs.iter().map(|&x| f(x) - 5.0).collect(),
            hi: xs.iter().map(|&x| f(x) + 5.0).collect(),
            dashed_after: Some(150.0),
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
    fn a_legend_of_twelve_methods_takes_columns_and_keeps_off_the_data() {
        let xs: Vec<f64> = (0..100).map(f64::from).collect();
        let mut fig = figure("twelve", 1600, 1000);
        fig.panels[0].lines = (0..12)
            .map(|k| Line {
                label: format!("method_{k:02} (15 runs)"),
                points: xs
                    .iter()
                    .map(|&x| (x, (x / 100.0) * (1.0 - k as f64 / 13.0)))
                    .collect(),
                color: k,
                width: 3,
                step: k % 2 == 0,
            })
            .collect();
        let labels = legend_labels(&fig.panels[0]);
        let l = legend_layout(&labels, 1.0).unwrap().unwrap();
        assert_eq!((l.cols, l.rows), (3, 4));
        legend_clear(&fig);
        // Few entries: one column, as before.
        let l = legend_layout(&labels[..3], 1.0).unwrap().unwrap();
        assert_eq!((l.cols, l.rows), (1, 3));
    }

    #[test]
    fn segments_touch_a_rectangle_only_where_they_reach_it() {
        let r = (10.0, 10.0, 20.0, 20.0);
        assert!(segment_hits((0.0, 15.0), (30.0, 15.0), r), "through");
        assert!(segment_hits((12.0, 12.0), (13.0, 13.0), r), "inside");
        assert!(segment_hits((0.0, 30.0), (30.0, 0.0), r), "across a corner");
        assert!(!segment_hits((0.0, 0.0), (30.0, 5.0), r), "above it");
        assert!(!segment_hits((0.0, 0.0), (9.0, 30.0), r), "left of it");
        assert!(!segment_hits((25.0, 0.0), (25.0, 30.0), r), "right of it");
    }

    #[test]
    fn corners_sit_five_pixels_in() {
        let (size, plot) = ((100, 50), (1000, 600));
        assert_eq!(Corner::UpperRight.origin(size, plot), (895, 5));
        assert_eq!(Corner::LowerRight.origin(size, plot), (895, 545));
        assert_eq!(Corner::UpperLeft.origin(size, plot), (5, 5));
        assert_eq!(Corner::LowerLeft.origin(size, plot), (5, 545));
    }

    #[test]
    fn the_legend_takes_the_first_free_corner_else_room_above_the_data() {
        let line = |points| Line {
            label: "a".into(),
            points,
            color: 0,
            width: 2,
            step: false,
        };
        let (plot, size, s) = ((1000, 600), (200, 80), (1.0, 5));
        let x = Axis::new(0.0, 100.0, false, 5);
        let y = Axis::new(0.0, 100.0, false, 5);
        // A line rising to the upper right leaves the lower right free.
        let mut p = Panel {
            lines: vec![line(vec![(0.0, 0.0), (100.0, 100.0)])],
            ..Panel::default()
        };
        let (kept, corner) = place_legend(&p, &x, y.clone(), plot, size, s);
        assert_eq!(corner, Corner::LowerRight);
        assert_eq!(kept.frac(100.0), 1.0, "the y axis is unchanged");
        // An X takes every corner: the y axis grows, the legend goes above the data.
        p.lines.push(line(vec![(0.0, 100.0), (100.0, 0.0)]));
        let (raised, corner) = place_legend(&p, &x, y, plot, size, s);
        assert!(raised.frac(100.0) < 0.9, "{}", raised.frac(100.0));
        let at = corner.origin(size, plot);
        assert_eq!(covered(&p, (&x, &raised), plot, at, size, 6.0), 0);
        // Labels in drawing order (bands first), unlabelled series left out.
        p.lines[1].label.clear();
        p.bands.push(Band {
            label: "b".into(),
            color: 1,
            x: vec![],
            mid: vec![],
            lo: vec![],
            hi: vec![],
            dashed_after: None,
        });
        assert_eq!(legend_labels(&p), ["b", "a"]);
    }
}
