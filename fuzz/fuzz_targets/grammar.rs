#![no_main]
//! What an experiment prints: any line parses without a panic (`parse_line`, and the per-attempt
//! `OutputParser` over a run of lines), and a generation line formatted from a parsed
//! generation parses back to the same numbers (`parse_line(format_gen_line(row))`).
use gaia_core::grammar::{Line, OutputParser, format_gen_line, parse_line};
use gaia_core::model::Row;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parser = OutputParser::default();
    for line in text.split('\n') {
        let _ = parser.parse(line);
    }
    if let Line::Gen(metrics) = parse_line(&text) {
        let row = row_of(&metrics);
        if row.generation.is_none() {
            return;
        }
        let again = format_gen_line(&row);
        match parse_line(&again) {
            Line::Gen(back) => {
                let back = row_of(&back);
                assert!(same(&row, &back), "{text:?} -> {again:?} -> {back:?}");
            }
            other => panic!("{again:?} (from {text:?}) no longer parses: {other:?}"),
        }
    }
});

/// A parsed generation as the worker turns it into a row (names the server refuses dropped).
fn row_of(metrics: &[(String, f64)]) -> Row {
    let mut row = Row::default();
    for (k, v) in metrics {
        if gaia_core::model::validate_name("metric", k).is_ok() {
            row.set_metric(k, *v);
        }
    }
    row
}

/// Equal, NaN included.
fn same(a: &Row, b: &Row) -> bool {
    let eq = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
        (x, y) => x.is_none() && y.is_none(),
    };
    a.generation == b.generation
        && eq(a.evals, b.evals)
        && eq(a.best, b.best)
        && eq(a.best_ever, b.best_ever)
        && eq(a.mean, b.mean)
        && eq(a.sigma, b.sigma)
        && eq(a.elapsed, b.elapsed)
        && a.metrics.len() == b.metrics.len()
        && a.metrics
            .iter()
            .zip(&b.metrics)
            .all(|((n, x), (m, y))| n == m && eq(Some(*x), Some(*y)))
}
