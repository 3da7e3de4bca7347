//! What an experiment prints, both ways: [`parse_line`] turns one stdout line into a generation
//! row, an `@gaia {json}` message or a log line (the worker's side), and [`format_gen_line`]
//! writes a stored row back as the GAIA line (`gaia logs`). The grammar is specified in
//! `docs/OUTPUT.md`:
//!
//! - A *gen line* starts, after optional whitespace, with `Gen` and an integer generation, then
//!   `|`-separated fields `Name: value`. Names normalise case-insensitively: Best→best,
//!   Ever→best_ever, Mean→mean, σ / Sigma / σ̄→sigma, Evals→evals; any other name is lowercased
//!   with spaces, tabs and dashes turned into `_`. Values: numbers (sign, decimals, exponent,
//!   thousands separators `3,840`), `nan`, `inf`, `-inf`; free text after a value
//!   (`Mean: -19.9  ← SOLVED`) is ignored. A bare field `14.2s` is the elapsed time; text after
//!   it (`✅ SOLVED!`) is ignored too. Fields that do not parse are skipped.
//! - Over one attempt ([`OutputParser`]): a gen line with `Best` but no `Ever` gets
//!   `best_ever` = the running maximum of Best so far (scores are maximised), so the curves of
//!   experiments that never print Ever are not sparse.
//! - `@gaia {json}` with a JSON object.
//! - Anything else is a log line.
//!
//! The same grammar is implemented in `experiments/gaia_exp/lines.py`; both test suites read
//! `experiments/tests/fixtures/lines.jsonl`. The parser never panics, and the formatter is its
//! inverse: a row written by [`format_gen_line`] parses back to the same row.

use crate::human::{shortest as number, thousands};
use crate::model::Row;

/// What one line is.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A generation: normalised metric names and values, `generation` first.
    Gen(Vec<(String, f64)>),
    /// An `@gaia {json}` message.
    Gaia(serde_json::Map<String, serde_json::Value>),
    /// Anything else.
    Log,
}

/// Classifies one line (a trailing `\r`/`\n` is ignored).
pub fn parse_line(line: &str) -> Line {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(json) = line.strip_prefix("@gaia ") {
        return match serde_json::from_str::<serde_json::Value>(json) {
            Ok(serde_json::Value::Object(map)) => Line::Gaia(map),
            _ => Line::Log,
        };
    }
    let mut fields = line.split('|');
    let Some(first) = fields.next() else {
        return Line::Log;
    };
    let Some(generation) = parse_gen(first) else {
        return Line::Log;
    };
    let mut metrics = vec![("generation".to_string(), generation)];
    for field in fields {
        let f = field.trim();
        if let Some((name, value)) = f.split_once(':') {
            if name.trim().is_empty() {
                continue;
            }
            if let Some(v) = parse_value(value) {
                let key = normalise_key(name);
                match metrics.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = v,
                    None => metrics.push((key, v)),
                }
            }
        } else if let Some(v) = parse_elapsed(f) {
            match metrics.iter_mut().find(|(k, _)| k == "elapsed") {
                Some(slot) => slot.1 = v,
                None => metrics.push(("elapsed".to_string(), v)),
            }
        }
    }
    Line::Gen(metrics)
}

/// The grammar over one attempt's output: [`parse_line`], plus what one line cannot know. A
/// generation line with `Best` but no `Ever` gets `best_ever` = the running maximum of Best
/// (and of any Ever printed before) over the attempt — scores are maximised — so the curves of
/// experiments that print only Best are not sparse. The worker keeps one per job run.
#[derive(Clone, Debug, Default)]
pub struct OutputParser {
    best_so_far: Option<f64>,
}

impl OutputParser {
    /// Classifies the attempt's next stdout line.
    pub fn parse(&mut self, line: &str) -> Line {
        let mut parsed = parse_line(line);
        if let Line::Gen(metrics) = &mut parsed {
            let get = |k: &str| metrics.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
            let (best, ever) = (get("best"), get("best_ever"));
            for v in [best, ever].into_iter().flatten() {
                // NaN never becomes the maximum.
                self.best_so_far = Some(self.best_so_far.map_or(v, |m| m.max(v)));
            }
            if let (Some(_), None, Some(max)) = (best, ever, self.best_so_far)
                && !max.is_nan()
            {
                metrics.push(("best_ever".to_string(), max));
            }
        }
        parsed
    }
}

/// `Gen 12` (with optional whitespace around, a sign allowed) → 12.
fn parse_gen(field: &str) -> Option<f64> {
    let rest = field.trim_start().strip_prefix("Gen")?;
    let rest = rest.trim_matches([' ', '\t']);
    let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse::<f64>().ok()
}

/// Normalises a metric name.
pub fn normalise_key(name: &str) -> String {
    let low = name.trim().to_lowercase();
    match low.as_str() {
        "σ" | "sigma" | "σ\u{304}" => "sigma".into(),
        "best" => "best".into(),
        "ever" => "best_ever".into(),
        "mean" => "mean".into(),
        "evals" => "evals".into(),
        _ => low.replace([' ', '\t', '-'], "_"),
    }
}

/// A field's value: a number, optionally followed by free text after whitespace, which is
/// ignored (`-19.9  ← SOLVED` is -19.9; `12abc` is no value).
pub fn parse_value(text: &str) -> Option<f64> {
    let t = text.trim();
    let head = t.split(char::is_whitespace).next().unwrap_or("");
    parse_number(head)
}

/// A metric value: a number with optional sign, thousands separators, decimals and exponent, or
/// nan / inf / -inf.
pub fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" | "+nan" | "-nan" => return Some(f64::NAN),
        "inf" | "+inf" => return Some(f64::INFINITY),
        "-inf" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    if !is_number(t.as_bytes()) {
        return None;
    }
    t.replace(',', "").parse::<f64>().ok()
}

/// Matches `[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d*)?([eE][+-]?\d+)?` or `[+-]?\.\d+([eE][+-]?\d+)?`.
fn is_number(b: &[u8]) -> bool {
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - s
    };
    let int_start = i;
    let n = digits(&mut i);
    if n > 0 {
        if i < b.len() && b[i] == b',' {
            // Thousands groups: the first group has 1-3 digits, then ",ddd" groups.
            if n > 3 {
                return false;
            }
            while i < b.len() && b[i] == b',' {
                i += 1;
                let g = digits(&mut i);
                if g != 3 {
                    return false;
                }
            }
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    } else {
        // `.5` form.
        if i >= b.len() || b[i] != b'.' {
            return false;
        }
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    let _ = int_start;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// `14.2s` or `14.2s ✅ SOLVED!` → 14.2.
fn parse_elapsed(field: &str) -> Option<f64> {
    let (head, _) = match field.find(char::is_whitespace) {
        Some(i) => field.split_at(i),
        None => (field, ""),
    };
    let num = head.strip_suffix('s')?;
    if !is_number(num.as_bytes()) {
        return None;
    }
    num.replace(',', "").parse().ok()
}

/// A row as the GAIA line an experiment prints:
/// `Gen   12 | Best: 187.3 | Ever: 201.0 | Mean: 95.4 | σ: 0.4123 | Evals: 3,840 | 14.2s`.
///
/// Every value is written as the shortest text that reads back as the same number
/// ([`crate::human::shortest`]: `-1285`, `-1304.7`, `0.4123`, `1e-7`), evals that are whole
/// numbers with thousands
/// separators, the elapsed time last as a bare `14.2s`; absent values are left out and further
/// metrics follow Evals under their stored names. A row without a generation (one from an
/// `@gaia {"metrics": ...}` message) is numbered by its position, `seq + 1`. [`parse_line`] gives
/// the row back (metric names as the parser normalises them).
pub fn format_gen_line(row: &Row) -> String {
    use std::fmt::Write;
    let generation = row.generation.unwrap_or(row.seq + 1);
    let mut s = format!("Gen {generation:>4}");
    for (label, v) in [
        ("Best", row.best),
        ("Ever", row.best_ever),
        ("Mean", row.mean),
        ("σ", row.sigma),
    ] {
        if let Some(v) = v {
            let _ = write!(s, " | {label}: {}", number(v));
        }
    }
    if let Some(e) = row.evals {
        let _ = write!(s, " | Evals: {}", whole_or_number(e));
    }
    for (k, v) in &row.metrics {
        let _ = write!(s, " | {k}: {}", number(*v));
    }
    match row.elapsed {
        Some(e) if e.is_finite() => {
            let _ = write!(s, " | {}s", number(e));
        }
        // `nans` is no elapsed field: a named field keeps the value.
        Some(e) => {
            let _ = write!(s, " | Elapsed: {}", number(e));
        }
        None => {}
    }
    s
}

/// A whole number with thousands separators (`3,840`), anything else as [`number`].
fn whole_or_number(v: f64) -> String {
    // Below 2^53 every whole f64 is exact, so the digits read back as the same value.
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        thousands(v as i64)
    } else {
        number(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen_line(line: &str) -> Vec<(String, f64)> {
        match parse_line(line) {
            Line::Gen(m) => m,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    fn get(m: &[(String, f64)], k: &str) -> Option<f64> {
        m.iter().find(|(n, _)| n == k).map(|(_, v)| *v)
    }

    #[test]
    fn the_original_gaia_line() {
        let m = gen_line("Gen  1 | Best: -130.5 | Ever: -130.5 | Mean: -399.8 | σ: 0.498");
        assert_eq!(get(&m, "generation"), Some(1.0));
        assert_eq!(get(&m, "best"), Some(-130.5));
        assert_eq!(get(&m, "best_ever"), Some(-130.5));
        assert_eq!(get(&m, "mean"), Some(-399.8));
        assert_eq!(get(&m, "sigma"), Some(0.498));
    }

    #[test]
    fn evals_time_and_solved() {
        let m = gen_line(
            "Gen   12 | Best:   187.3 | Ever:   201.0 | Mean:    95.4 | σ̄: 0.4123 | Evals:    1,350 |   14.2s ✅ SOLVED!",
        );
        assert_eq!(get(&m, "evals"), Some(1350.0));
        assert_eq!(get(&m, "elapsed"), Some(14.2));
        assert_eq!(get(&m, "sigma"), Some(0.4123));
    }

    #[test]
    fn extra_metrics_nan_inf_and_junk_fields() {
        let m = gen_line(
            "Gen 3 | Best: nan | Ever: inf | Mean: -inf | Entropy: 0.3 | Step Size: 1e-3 | bad: x | : 4",
        );
        assert!(get(&m, "best").unwrap().is_nan());
        assert_eq!(get(&m, "best_ever"), Some(f64::INFINITY));
        assert_eq!(get(&m, "mean"), Some(f64::NEG_INFINITY));
        assert_eq!(get(&m, "entropy"), Some(0.3));
        assert_eq!(get(&m, "step_size"), Some(0.001));
        assert_eq!(get(&m, "bad"), None);
    }

    #[test]
    fn gaia_json_and_logs() {
        assert!(matches!(
            parse_line(r#"@gaia {"progress": 0.5}"#),
            Line::Gaia(_)
        ));
        assert_eq!(parse_line("@gaia {broken"), Line::Log);
        assert_eq!(parse_line("@gaia [1,2]"), Line::Log);
        for l in [
            "",
            "Generation 5 done",
            "Gene | Best: 3",
            "Traceback (most recent call last):",
            "Gen x | Best: 1",
            "  Gen",
        ] {
            assert_eq!(parse_line(l), Line::Log, "{l:?}");
        }
    }

    /// Issue 12: the original system's experiments annotate values (`← SOLVED`); the value
    /// before the annotation is kept.
    #[test]
    fn a_number_followed_by_free_text_is_that_number() {
        let m = gen_line("Gen 40 | Best: -19.9 | Mean: -19.9  ← SOLVED | σ: 0.1");
        assert_eq!(get(&m, "mean"), Some(-19.9));
        assert_eq!(get(&m, "sigma"), Some(0.1));
        let m = gen_line("Gen 41 | Difficulty: 1.00  ← SOLVED (full difficulty)");
        assert_eq!(get(&m, "difficulty"), Some(1.0));
        let m = gen_line("Gen 42 | Best: 12abc | Mean: nan (diverged) | Evals: 1,350 evals");
        assert_eq!(get(&m, "best"), None, "12abc is not a number");
        assert!(get(&m, "mean").unwrap().is_nan());
        assert_eq!(get(&m, "evals"), Some(1350.0));
        assert_eq!(parse_value("  7  "), Some(7.0));
        assert_eq!(parse_value(""), None);
    }

    /// Issue 12: an experiment that prints Best but never Ever still gets a best-ever curve:
    /// the running maximum of Best over the attempt.
    #[test]
    fn best_ever_is_the_running_maximum_of_best_when_ever_is_missing() {
        let mut p = OutputParser::default();
        let mut ever = |line: &str| match p.parse(line) {
            Line::Gen(m) => get(&m, "best_ever"),
            other => panic!("{other:?}"),
        };
        assert_eq!(ever("Gen 1 | Mean: 3"), None, "no Best yet");
        assert_eq!(ever("Gen 2 | Best: nan"), None, "NaN is no maximum");
        assert_eq!(ever("Gen 3 | Best: -5"), Some(-5.0));
        assert_eq!(ever("Gen 4 | Best: -7"), Some(-5.0));
        assert_eq!(
            ever("Gen 5 | Best: -2 | Ever: 10"),
            Some(10.0),
            "Ever printed wins"
        );
        assert_eq!(
            ever("Gen 6 | Best: -1"),
            Some(10.0),
            "and counts afterwards"
        );
        assert_eq!(ever("Gen 7 | Best: nan"), Some(10.0));
        assert_eq!(ever("Gen 8 | Best: 11"), Some(11.0));
        // Log lines and @gaia lines pass through; a fresh attempt starts afresh.
        assert_eq!(p.parse("hello"), Line::Log);
        let mut fresh = OutputParser::default();
        assert!(
            matches!(fresh.parse("Gen 1 | Best: 1"), Line::Gen(m) if get(&m, "best_ever") == Some(1.0))
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("3,840"), Some(3840.0));
        assert_eq!(parse_number("1,234,567.5"), Some(1234567.5));
        assert_eq!(parse_number("1,35"), None);
        assert_eq!(parse_number("1234,567"), None);
        assert_eq!(parse_number(".5"), Some(0.5));
        assert_eq!(parse_number("5."), Some(5.0));
        assert_eq!(parse_number("-2e3"), Some(-2000.0));
        assert_eq!(parse_number("e3"), None);
        assert_eq!(parse_number("1e"), None);
        assert_eq!(parse_number(""), None);
    }

    /// The fixture shared with the Python experiments' tests.
    #[test]
    fn shared_fixture_lines() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../experiments/tests/fixtures/lines.jsonl"
        );
        let text =
            std::fs::read_to_string(path).expect("experiments/tests/fixtures/lines.jsonl exists");
        let mut n = 0;
        for (i, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let case: serde_json::Value = serde_json::from_str(raw).unwrap();
            let line = case["line"].as_str().unwrap();
            let kind = case["kind"].as_str().unwrap();
            let got = parse_line(line);
            match kind {
                "log" => assert_eq!(got, Line::Log, "fixture line {}: {line:?}", i + 1),
                "gaia" => match got {
                    Line::Gaia(map) => assert_eq!(
                        serde_json::Value::Object(map),
                        case["json"],
                        "fixture line {}",
                        i + 1
                    ),
                    other => panic!("fixture line {}: {line:?} parsed as {other:?}", i + 1),
                },
                "gen" => {
                    let Line::Gen(m) = got else {
                        panic!("fixture line {}: {line:?} is not a gen line", i + 1)
                    };
                    let want = case["metrics"].as_object().unwrap();
                    assert_eq!(
                        m.len(),
                        want.len(),
                        "fixture line {}: {line:?}: got {m:?}, want {want:?}",
                        i + 1
                    );
                    for (k, v) in want {
                        let g = get(&m, k)
                            .unwrap_or_else(|| panic!("fixture line {}: missing {k}", i + 1));
                        match v {
                            serde_json::Value::Null => {
                                assert!(g.is_nan(), "fixture line {}: {k}", i + 1)
                            }
                            serde_json::Value::String(s) if s == "inf" => {
                                assert_eq!(g, f64::INFINITY)
                            }
                            serde_json::Value::String(s) if s == "-inf" => {
                                assert_eq!(g, f64::NEG_INFINITY)
                            }
                            v => assert_eq!(g, v.as_f64().unwrap(), "fixture line {}: {k}", i + 1),
                        }
                    }
                }
                other => panic!("unknown fixture kind {other}"),
            }
            n += 1;
        }
        assert!(n >= 20, "the fixture holds only {n} lines");
    }

    /// A row back from its line, the way the worker builds one.
    fn row_of(line: &str) -> Row {
        let mut row = Row::default();
        for (k, v) in gen_line(line) {
            row.set_metric(&k, v);
        }
        row
    }

    /// Equal as rows, with NaN equal to NaN.
    fn same_row(a: &Row, b: &Row) -> bool {
        let same = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
            (x, y) => x.is_none() && y.is_none(),
        };
        a.generation == b.generation
            && ["evals", "best", "best_ever", "mean", "sigma", "elapsed"]
                .iter()
                .all(|m| same(a.metric(m), b.metric(m)))
            && a.metrics.len() == b.metrics.len()
            && a.metrics
                .iter()
                .zip(&b.metrics)
                .all(|((k, x), (l, y))| k == l && same(Some(*x), Some(*y)))
    }

    #[test]
    fn rows_are_written_as_the_experiments_print_them() {
        let row = row_of(
            "Gen   12 | Best:   187.3 | Ever:   201.0 | Mean:    95.4 | σ: 0.4123 | Evals:    3,840 |   14.2s",
        );
        assert_eq!(
            format_gen_line(&row),
            "Gen   12 | Best: 187.3 | Ever: 201 | Mean: 95.4 | σ: 0.4123 | Evals: 3,840 | 14.2s"
        );
        let row = Row {
            seq: 4,
            best: Some(-1285.0),
            mean: Some(f64::NAN),
            evals: Some(1234567.5),
            elapsed: Some(f64::INFINITY),
            metrics: vec![("entropy".into(), 1e-7)],
            ..Row::default()
        };
        assert_eq!(
            format_gen_line(&row),
            "Gen    5 | Best: -1285 | Mean: nan | Evals: 1234567.5 | entropy: 1e-7 | Elapsed: inf"
        );
        assert!(same_row(
            &row_of(&format_gen_line(&row)),
            &Row {
                generation: Some(5),
                ..row
            }
        ));
    }

    /// Any value a row may hold: ordinary, tiny, huge, whole, non-finite.
    fn value() -> impl proptest::strategy::Strategy<Value = f64> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::num::f64::ANY,
            (-1_000_000i64..1_000_000).prop_map(|v| v as f64),
            (-100_000i64..100_000).prop_map(|v| v as f64 / 10.0),
        ]
    }

    proptest::proptest! {
        /// The formatter is the parser's inverse: a row written as a GAIA line parses back to
        /// itself.
        #[test]
        fn format_then_parse_gives_the_row_back(
            generation in 0u64..100_000,
            values in proptest::collection::vec(proptest::option::of(value()), 6),
            metrics in proptest::collection::btree_map("[a-z][a-z0-9_]{0,11}", value(), 0..4),
        ) {
            let core = ["best", "ever", "mean", "sigma", "evals", "elapsed", "best_ever", "generation"];
            let mut row = Row { seq: generation.saturating_sub(1), generation: Some(generation), ..Row::default() };
            for (name, v) in ["best", "best_ever", "mean", "sigma", "evals", "elapsed"].iter().zip(&values) {
                if let Some(v) = v {
                    row.set_metric(name, *v);
                }
            }
            row.metrics = metrics.into_iter().filter(|(k, _)| !core.contains(&k.as_str())).collect();
            let line = format_gen_line(&row);
            let back = row_of(&line);
            proptest::prop_assert!(same_row(&back, &row), "{line:?} parsed as {back:?}, wrote {row:?}");
        }

        #[test]
        fn never_panics_on_any_string(s in "\\PC*") {
            let _ = parse_line(&s);
        }

        #[test]
        fn never_panics_on_gen_like_lines(s in "Gen [0-9]{0,3}( \\| [A-Za-zσ̄ ]{0,6}:? ?[-+0-9,.eEnaif ]{0,12}s?){0,8}") {
            let _ = parse_line(&s);
        }

        #[test]
        fn numbers_round_trip(v in proptest::num::f64::NORMAL) {
            let s = format!("{v}");
            proptest::prop_assert_eq!(parse_number(&s), Some(v));
        }
    }
}
