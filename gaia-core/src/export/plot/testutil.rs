//! Test helpers shared by the toolkit's tests and the figures' tests: decode a PNG, count
//! pixels in a region, a one-line sample figure.

use super::{Figure, Line, Panel};

/// Width, height and RGB pixels of a PNG the toolkit wrote.
pub(crate) fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let dec = ::png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, ::png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// A one-panel figure of a rising curve (its end high, so the legend goes lower right).
pub(crate) fn figure(title: &str, w: u32, h: u32) -> Figure {
    let pts: Vec<(f64, f64)> = (0..500)
        .map(|i| (i as f64 * 100.0, -(100.0 / (1.0 + i as f64))))
        .collect();
    Figure {
        title: title.into(),
        note: String::new(),
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
                step: false,
            }],
            ..Panel::default()
        }],
    }
}

/// Non-white pixels in rows `y0..y1`.
pub(crate) fn ink(rgb: &[u8], w: u32, y0: u32, y1: u32) -> usize {
    let row = w as usize * 3;
    rgb[y0 as usize * row..y1 as usize * row]
        .chunks(3)
        .filter(|p| p != &[255, 255, 255])
        .count()
}
/// Pixels of exactly `rgb` in the rectangle `x0..x1 × y0..y1`.
pub(crate) fn count(
    img: &[u8],
    w: u32,
    (x0, x1, y0, y1): (u32, u32, u32, u32),
    rgb: [u8; 3],
) -> usize {
    (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| ((y * w + x) * 3) as usize))
        .filter(|&i| img[i..i + 3] == rgb)
        .count()
}

/// Non-white pixels in the rectangle.
pub(crate) fn ink_in(img: &[u8], w: u32, (x0, x1, y0, y1): (u32, u32, u32, u32)) -> usize {
    (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| ((y * w + x) * 3) as usize))
        .filter(|&i| img[i..i + 3] != [255, 255, 255])
        .count()
}
/// The legend's box: the rows and columns of its grey border.
pub(crate) fn legend_box(img: &[u8], w: u32, h: u32) -> Option<(u32, u32, u32, u32)> {
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
pub(crate) fn coloured(img: &[u8], w: u32, (x0, x1, y0, y1): (u32, u32, u32, u32)) -> usize {
    (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| ((y * w + x) * 3) as usize))
        .filter(|&i| {
            let p = &img[i..i + 3];
            p.iter().max().unwrap() - p.iter().min().unwrap() > 12
        })
        .count()
}
