//! An axis of a panel: its range (from the data, padded), linear or log, and its ticks; and
//! how plotters maps values onto it (the [`Ranged`] impl), so plotters draws our ticks rather
//! than choosing its own.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

use super::Panel;
use super::ticks::{Ticks, linear_ticks, log_ticks, tick};

/// Data bounds (x0, x1, y0, y1) over finite points (positive ones on a log scale), padded; a
/// fixed range replaces the data's, a categorical y axis spans its rows.
pub(super) fn bounds(p: &Panel) -> Option<(f64, f64, f64, f64)> {
    let okx = |x: f64| x.is_finite() && (!p.log_x || x > 0.0);
    let oky = |y: f64| y.is_finite() && (!p.log_y || y > 0.0);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    let mut any = false;
    let mut see = |x: f64, y: f64| {
        if okx(x) && oky(y) {
            any = true;
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    };
    for l in &p.lines {
        for &(x, y) in l.path().iter() {
            see(x, y);
        }
    }
    for b in &p.bands {
        for (i, &x) in b.x.iter().enumerate() {
            see(x, b.mid[i]);
            see(x, b.lo[i]);
            see(x, b.hi[i]);
        }
    }
    let rows = p.categories.len() as f64;
    for m in &p.intervals {
        let y = rows - 1.0 - m.category as f64;
        for x in [m.low, m.estimate, m.high] {
            see(x, y);
        }
    }
    if !any {
        return None;
    }
    let (mut xa, mut xb) = if x1 > x0 {
        (x0, x1)
    } else if p.log_x {
        (x0 / 2.0, x1 * 2.0)
    } else {
        (
            x0 - (x0.abs() * 0.1).max(0.5),
            x1 + (x1.abs() * 0.1).max(0.5),
        )
    };
    if !p.intervals.is_empty() && xb > xa {
        // Interval bars end inside the plot, not on its frame.
        let pad = (xb - xa) * 0.05;
        (xa, xb) = (xa - pad, xb + pad);
    }
    let (ya, yb) = if !p.categories.is_empty() {
        (-0.5, rows - 0.5)
    } else if p.log_y {
        if y1 <= y0 {
            y0 /= 2.0;
            y1 *= 2.0;
        }
        let pad = (y1 / y0).powf(0.05);
        (y0 / pad, y1 * pad)
    } else {
        let pad = if y1 > y0 {
            (y1 - y0) * 0.05
        } else {
            (y0.abs() * 0.1).max(1.0)
        };
        (y0 - pad, y1 + pad)
    };
    let (xa, xb) = p.x_range.unwrap_or((xa, xb));
    let (ya, yb) = p.y_range.unwrap_or((ya, yb));
    Some((xa, xb, ya, yb))
}

/// One axis of a panel: its range, linear or log, and the ticks chosen for it.
#[derive(Clone, Debug)]
pub(super) struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    pub(super) ticks: Ticks,
}

impl Axis {
    pub(super) fn new(lo: f64, hi: f64, log: bool, target: usize) -> Axis {
        let ticks = if log {
            log_ticks(lo, hi, target)
        } else {
            linear_ticks(lo, hi, target)
        };
        Axis { lo, hi, log, ticks }
    }

    /// A categorical axis: one row per label, the first at the top (row i at value
    /// `labels.len() − 1 − i`).
    pub(super) fn categorical(labels: &[String]) -> Axis {
        let n = labels.len();
        Axis {
            lo: -0.5,
            hi: n as f64 - 0.5,
            log: false,
            ticks: Ticks {
                major: (0..n).map(|i| i as f64).collect(),
                labels: labels.iter().rev().cloned().collect(),
                minor: Vec::new(),
            },
        }
    }

    /// Where `v` falls: 0 at `lo`, 1 at `hi`.
    pub(super) fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    /// The same axis with its top raised so the data keeps the lower `keep` (0..1) of it.
    pub(super) fn raised(&self, keep: f64, target: usize) -> Axis {
        let hi = if self.log {
            (self.lo.ln() + (self.hi.ln() - self.lo.ln()) / keep).exp()
        } else {
            self.lo + (self.hi - self.lo) / keep
        };
        Axis::new(self.lo, hi, self.log, target)
    }

    pub(super) fn label(&self, v: f64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::plot::{Band, IntervalMark, Line};

    fn line(points: Vec<(f64, f64)>) -> Line {
        Line {
            label: String::new(),
            points,
            color: 0,
            width: 2,
            step: false,
        }
    }

    #[test]
    fn an_axis_labels_near_zero_as_zero() {
        // The axis labels what it was given, and near-zero values read as 0.
        let axis = Axis::new(-0.26, 1.06, false, 8);
        assert_eq!(axis.label(-2.2e-16), "0");
        assert_eq!(axis.label(0.5), "0.5");
    }

    #[test]
    fn bounds_pad_the_data_and_skip_what_the_scale_cannot_show() {
        let mut p = Panel {
            lines: vec![line(vec![(0.0, 0.0), (10.0, 100.0), (f64::NAN, 1e9)])],
            ..Panel::default()
        };
        // 5 % of the y span each side; x exactly the data's.
        assert_eq!(bounds(&p), Some((0.0, 10.0, -5.0, 105.0)));
        // A flat line gets a y range around its value.
        p.lines = vec![line(vec![(0.0, 3.0), (1.0, 3.0)])];
        assert_eq!(bounds(&p), Some((0.0, 1.0, 2.0, 4.0)));
        // On a log scale non-positive values do not count; with none left there are no bounds.
        p.log_y = true;
        p.lines = vec![line(vec![(0.0, -1.0), (1.0, 0.0)])];
        assert_eq!(bounds(&p), None);
        // A band's three series all count.
        p.log_y = false;
        p.lines.clear();
        p.bands = vec![Band {
            label: String::new(),
            color: 0,
            x: vec![1.0, 2.0],
            mid: vec![5.0, 5.0],
            lo: vec![4.0, f64::NAN],
            hi: vec![6.0, 8.0],
            dashed_after: None,
        }];
        let (x0, x1, y0, y1) = bounds(&p).unwrap();
        assert_eq!((x0, x1), (1.0, 2.0));
        assert!(
            (y0 - 3.8).abs() < 1e-12 && (y1 - 8.2).abs() < 1e-12,
            "{y0}..{y1}"
        );
    }

    #[test]
    fn fixed_ranges_log_x_and_categories_set_the_bounds() {
        let mut p = Panel {
            lines: vec![line(vec![(1.0, 0.2), (1000.0, 0.9), (-5.0, 0.5)])],
            log_x: true,
            ..Panel::default()
        };
        // On a log x axis the point at x = -5 does not count.
        let (x0, x1, _, _) = bounds(&p).unwrap();
        assert_eq!((x0, x1), (1.0, 1000.0));
        p.y_range = Some((0.0, 1.0));
        p.x_range = Some((0.5, 2000.0));
        assert_eq!(bounds(&p), Some((0.5, 2000.0, 0.0, 1.0)));
        // Categories: one row each, the bars' ends padded inside the plot.
        let q = Panel {
            categories: vec!["a".into(), "b".into(), "c".into()],
            intervals: vec![IntervalMark {
                category: 0,
                estimate: 0.5,
                low: 0.0,
                high: 1.0,
                color: 0,
            }],
            ..Panel::default()
        };
        let (x0, x1, y0, y1) = bounds(&q).unwrap();
        assert!((x0 + 0.05).abs() < 1e-12 && (x1 - 1.05).abs() < 1e-12);
        assert_eq!((y0, y1), (-0.5, 2.5));
        let axis = Axis::categorical(&q.categories);
        // The first category is the top row.
        assert_eq!(axis.label(2.0), "a");
        assert_eq!(axis.label(0.0), "c");
    }

    #[test]
    fn step_lines_pass_through_their_corners() {
        let mut l = line(vec![(1.0, 0.1), (3.0, 0.5), (4.0, 0.75)]);
        l.step = true;
        assert_eq!(
            l.path().to_vec(),
            [(1.0, 0.1), (3.0, 0.1), (3.0, 0.5), (4.0, 0.5), (4.0, 0.75)]
        );
    }

    #[test]
    fn a_raised_axis_keeps_the_data_in_its_lower_part() {
        let y = Axis::new(0.0, 100.0, false, 5);
        let r = y.raised(0.5, 5);
        assert_eq!(r.frac(100.0), 0.5);
        let log = Axis::new(1.0, 100.0, true, 5);
        let r = log.raised(0.5, 5);
        assert!((r.frac(100.0) - 0.5).abs() < 1e-12);
        assert!(!r.ticks.major.is_empty());
    }
}
