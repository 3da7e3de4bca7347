//! Drawing with plotters: a figure's layout (title, a grid of panels), each panel's chart
//! (axes, grid, bands, lines, legend) into an RGB buffer, and that buffer encoded as PNG.
//!
//! Text uses DejaVu Sans embedded in the binary (the `dejavu` crate) through plotters'
//! `ab_glyph` feature: nothing here needs fontconfig or freetype, so it renders on a bare
//! machine.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{Axis, bounds};
use super::legend::{Corner, draw_legend, legend_labels, legend_size, place_legend};
use super::{Figure, Panel, color, perr, px};
use crate::error::Error;

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

/// Renders a figure; without `legends` every panel is laid out as with its legend (the same
/// axes, the same room made for it) but the legend itself is not drawn.
pub(super) fn render_figure(fig: &Figure, legends: bool) -> Result<Vec<u8>, Error> {
    fonts();
    let (w, h) = (fig.width, fig.height);
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let s = scale(w, h);
        let title_h = if fig.title.is_empty() { 0 } else { px(s, 76.0) };
        let (top, body) = root.split_vertically(title_h);
        let note_font = ("sans-serif", px(s, 22.0))
            .into_font()
            .color(&RGBColor(80, 80, 80));
        let note = wrap(&body, &fig.note, &note_font, w as f64 * 0.94)?;
        let line_h = px(s, 30.0);
        let note_h = if note.is_empty() {
            0
        } else {
            line_h * note.len() as u32 + px(s, 16.0)
        };
        let (body, foot) = body.split_vertically(h.saturating_sub(title_h + note_h));
        for (i, text) in note.iter().enumerate() {
            let style = note_font.pos(Pos::new(HPos::Center, VPos::Top));
            foot.draw_text(
                text,
                &style,
                (w as i32 / 2, px(s, 6.0) as i32 + (i as u32 * line_h) as i32),
            )
            .map_err(perr)?;
        }
        if !fig.title.is_empty() {
            // A long title is set smaller until it fits the width (down to 60 %).
            let mut size = 36.0;
            loop {
                let font = ("sans-serif", px(s, size))
                    .into_font()
                    .style(FontStyle::Bold);
                let (tw, _) = font.box_size(&fig.title).map_err(perr)?;
                if f64::from(tw) <= f64::from(w) * 0.97 || size <= 22.0 {
                    break;
                }
                size -= 2.0;
            }
            let style = ("sans-serif", px(s, size))
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

/// `text` broken at spaces into lines no wider than `width` pixels in `font` (at most four; a
/// word wider than the line stands alone).
fn wrap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    font: &TextStyle,
    width: f64,
) -> Result<Vec<String>, Error> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let candidate = if cur.is_empty() {
            word.to_string()
        } else {
            format!("{cur} {word}")
        };
        let (tw, _) = area.estimate_text_size(&candidate, font).map_err(perr)?;
        if tw as f64 > width && !cur.is_empty() {
            lines.push(std::mem::replace(&mut cur, word.to_string()));
        } else {
            cur = candidate;
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines.truncate(4);
    Ok(lines)
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

/// One panel in its area: the caption, axes over the data's bounds with room made for the
/// legend, then the series (see [`draw_series`]); a panel without drawable data says so.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    s: f64,
    legends: bool,
) -> Result<(), Error> {
    let Some((x0, x1, y0, y1)) = bounds(p) else {
        let text = if p.log_y || p.log_x {
            format!("{}: no positive values to draw on a log scale", p.caption)
        } else if p.caption.is_empty() {
            "no data yet".to_string()
        } else {
            format!("{}: no data yet", p.caption)
        };
        return no_data(area, &text, s);
    };
    // The caption is drawn here rather than by plotters, so laying the chart out draws nothing.
    let (margin, x_area) = (px(s, 24.0), px(s, 90.0));
    // A categorical axis's labels are names: the label area grows to hold the longest.
    let mut y_area = px(s, 130.0);
    let label_font: TextStyle = ("sans-serif", px(s, 22.0)).into_font().into();
    for c in &p.categories {
        let (tw, _) = area.estimate_text_size(c, &label_font).map_err(perr)?;
        y_area = y_area.max(tw + px(s, 40.0));
    }
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
    let x = Axis::new(x0, x1, p.log_x, x_target);
    let mut y = if p.categories.is_empty() {
        Axis::new(y0, y1, p.log_y, y_target)
    } else {
        Axis::categorical(&p.categories)
    };
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

/// The grid, ticks and axis descriptions, the bands under the lines, each series' legend entry,
/// and the legend itself where `legend` places it.
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
    let okx = |x: f64| x.is_finite() && (!p.log_x || x > 0.0);
    let (xr, yr) = (x.range(), y.range());
    for &rx in &p.x_rules {
        if okx(rx) {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(rx, yr.start), (rx, yr.end)],
                    px(s, 10.0),
                    px(s, 7.0),
                    RGBColor(120, 120, 120).stroke_width(px(s, 2.0)),
                ))
                .map_err(perr)?;
        }
    }
    let rows = p.categories.len() as f64;
    // A bar is at most 40 px thick (at 1600×1000), however few the rows.
    let row_px = f64::from(chart.plotting_area().dim_in_pixel().1) / (yr.end - yr.start);
    let half = 0.28f64.min(px(s, 20.0) as f64 / row_px.max(1.0));
    for m in &p.intervals {
        let c = color(m.color);
        let row = rows - 1.0 - m.category as f64;
        let clamp = |v: f64, edge: f64| {
            if v.is_finite() {
                v.clamp(xr.start, xr.end)
            } else {
                edge
            }
        };
        let lo = clamp(m.low, xr.start);
        let hi = clamp(m.high, xr.end);
        if lo.is_nan() || hi.is_nan() {
            continue;
        }
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(lo, row - half), (hi.max(lo), row + half)],
                c.mix(0.6).filled(),
            )))
            .map_err(perr)?;
        if m.estimate.is_finite() {
            let e = m.estimate.clamp(xr.start, xr.end);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(e, row - half * 1.3), (e, row + half * 1.3)],
                    RGBColor(20, 20, 20).stroke_width(px(s, 4.0)),
                )))
                .map_err(perr)?;
        }
    }
    for band in &p.bands {
        let c = color(band.color);
        // The band, one polygon per stretch where both ends of the range are defined.
        let mut stretch: Vec<usize> = Vec::new();
        let mut stretches = Vec::new();
        for i in 0..band.x.len() {
            if okx(band.x[i]) && ok(band.lo[i]) && ok(band.hi[i]) {
                stretch.push(i);
            } else if !stretch.is_empty() {
                stretches.push(std::mem::take(&mut stretch));
            }
        }
        if !stretch.is_empty() {
            stretches.push(stretch);
        }
        for st in stretches {
            let mut poly: Vec<(f64, f64)> = st.iter().map(|&i| (band.x[i], band.hi[i])).collect();
            poly.extend(st.iter().rev().map(|&i| (band.x[i], band.lo[i])));
            chart
                .draw_series(std::iter::once(Polygon::new(poly, c.mix(0.2).filled())))
                .map_err(perr)?;
        }
        let pts: Vec<(f64, f64)> = band
            .x
            .iter()
            .zip(&band.mid)
            .filter(|(x, y)| okx(**x) && ok(**y))
            .map(|(x, y)| (*x, *y))
            .collect();
        let stroke = px(s, 3.0);
        curve(chart, &pts, c.stroke_width(stroke), band.dashed_after, s)?;
    }
    for line in &p.lines {
        let c = color(line.color);
        let pts: Vec<(f64, f64)> = line
            .path()
            .iter()
            .copied()
            .filter(|(x, y)| okx(*x) && ok(*y))
            .collect();
        let stroke = px(s, line.width as f64);
        curve(chart, &pts, c.stroke_width(stroke), None, s)?;
    }
    match legend {
        Some(placed) => draw_legend(chart, p, placed, s),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::plot::testutil::{coloured, count, decode, figure, ink, ink_in};
    use crate::export::plot::{Band, Line, render};

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
            note: String::new(),
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
                        mid: median,
                        lo: q1,
                        hi: q3,
                        dashed_after: None,
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
                        step: false,
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
            step: false,
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
