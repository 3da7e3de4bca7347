//! CSV (RFC 4180): a header, then one record per row; CRLF line ends; a field is quoted when it
//! holds a comma, a quote, a line break or edge spaces (quotes doubled). Numbers are plain
//! decimals that read back to the same `f64` (never `1,350`, never an exponent); `NaN`, `inf`
//! and `-inf` stand for non-finite values; a missing value is an empty field.

use std::fmt::Write as _;
use std::io::Write;

use super::{Plan, columns, each_row, write_err};
use crate::error::Error;
use crate::model::{CORE_METRICS, Job, RowRef};
use crate::store::Reader;

/// Writes `plan`'s table; returns the number of rows written.
pub fn write(reader: &Reader, plan: &Plan, out: &mut dyn Write) -> Result<u64, Error> {
    let mut line = String::with_capacity(256);
    for (i, c) in columns(plan).iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        field(&mut line, c);
    }
    line.push_str("\r\n");
    out.write_all(line.as_bytes()).map_err(write_err)?;
    let mut n = 0u64;
    let mut extra: Vec<Option<f64>> = vec![None; plan.metrics.len()];
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    for job in &plan.jobs {
        let prefix = context(job, &plan.params);
        let mut owner = String::from(",");
        field(&mut owner, &job.owner);
        owner.push_str("\r\n");
        each_row(reader, job.id, |attempt, row| {
            line.clear();
            line.push_str(&prefix);
            record(&mut line, attempt, &row, &plan.metrics, &mut extra);
            line.push_str(&owner);
            buf.extend_from_slice(line.as_bytes());
            if buf.len() >= 60 * 1024 {
                out.write_all(&buf).map_err(write_err)?;
                buf.clear();
            }
            n += 1;
            Ok(())
        })?;
    }
    out.write_all(&buf).map_err(write_err)?;
    out.flush().map_err(write_err)?;
    Ok(n)
}

/// The context fields of a job's records, with the trailing comma.
fn context(job: &Job, params: &[String]) -> String {
    let s = &job.spec;
    let mut line = String::new();
    field(&mut line, s.study.as_deref().unwrap_or(""));
    line.push(',');
    let _ = write!(line, "{}", job.id);
    line.push(',');
    field(&mut line, s.method().unwrap_or(""));
    line.push(',');
    field(&mut line, s.env().unwrap_or(""));
    line.push(',');
    if let Some(seed) = s.seed() {
        let _ = write!(line, "{seed}");
    }
    line.push(',');
    for p in params {
        if let Some(v) = s.params.get(p) {
            field(&mut line, &json_value_text(v));
        }
        line.push(',');
    }
    line
}

/// A param value as a CSV field's text: strings as they are, numbers as plain decimals, other
/// values as JSON.
fn json_value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) if n.is_f64() => {
            let mut s = String::new();
            number(&mut s, n.as_f64().unwrap_or(f64::NAN));
            s
        }
        other => other.to_string(),
    }
}

fn record(
    line: &mut String,
    attempt: u32,
    row: &RowRef,
    metrics: &[String],
    extra: &mut [Option<f64>],
) {
    let _ = write!(line, "{attempt},{}", row.seq);
    for name in CORE_METRICS {
        line.push(',');
        match (name, row.generation) {
            ("generation", Some(g)) => {
                let _ = write!(line, "{g}");
            }
            ("generation", None) => {}
            _ => {
                if let Some(v) = row.metric(name) {
                    number(line, v);
                }
            }
        }
    }
    extra.iter_mut().for_each(|e| *e = None);
    for (k, v) in &row.metrics {
        if let Ok(i) = metrics.binary_search_by(|m| m.as_str().cmp(k)) {
            extra[i] = Some(*v);
        }
    }
    for v in extra.iter() {
        line.push(',');
        if let Some(v) = v {
            number(line, *v);
        }
    }
}

/// A number as a plain decimal that parses back to the same `f64`.
fn number(line: &mut String, v: f64) {
    if v.is_nan() {
        line.push_str("NaN");
    } else if v.is_infinite() {
        line.push_str(if v > 0.0 { "inf" } else { "-inf" });
    } else {
        // Rust's Display of f64 is the shortest decimal that round-trips, without exponent.
        let _ = write!(line, "{v}");
    }
}

/// Appends one field, quoted if it must be.
pub fn field(line: &mut String, s: &str) {
    let needs = s.contains([',', '"', '\r', '\n'])
        || s.starts_with([' ', '\t'])
        || s.ends_with([' ', '\t']);
    if needs {
        line.push('"');
        line.push_str(&s.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(s);
    }
}

/// Reads RFC 4180 text into records of fields (for tests and tools that check an export).
pub fn read_records(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => {
                    quoted = false;
                    match chars.peek() {
                        None | Some(',') | Some('\r') | Some('\n') => {}
                        Some(other) => {
                            return Err(format!("character {other:?} after a closing quote"));
                        }
                    }
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                at_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                at_start = true;
            }
            c => {
                field.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("unclosed quote at the end".into());
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::testutil::Fixture;
    use crate::export::{Target, plan};
    use crate::model::JobSpec;
    use crate::model::Row;

    fn row(seq: u64, extra: &[(&str, f64)]) -> Row {
        Row {
            seq,
            generation: Some(seq + 1),
            evals: Some((seq + 1) as f64 * 1350.0),
            best: Some(-(seq as f64) * 0.1 + 1e-17),
            best_ever: Some(1.0 / 3.0 + seq as f64),
            mean: Some(-1234567.891),
            sigma: Some(1e-9 / (seq + 1) as f64),
            elapsed: None,
            metrics: extra.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    fn parse_num(s: &str) -> Option<f64> {
        if s.is_empty() {
            None
        } else {
            Some(
                s.parse::<f64>()
                    .unwrap_or_else(|_| panic!("{s:?} is not a number")),
            )
        }
    }

    #[test]
    fn rows_round_trip_through_csv_with_the_union_of_columns() {
        let fx = Fixture::new();
        let rows_a: Vec<Row> = (0..50)
            .map(|i| {
                if i < 10 {
                    row(i, &[])
                } else {
                    row(i, &[("entropy", i as f64 / 7.0)])
                }
            })
            .collect();
        let mut spec = JobSpec::experiment("cma_es", 1000);
        spec.env = Some("sphere".into());
        spec.seed = Some(3);
        spec.study = Some("s1".into());
        spec.params
            .insert("note".into(), serde_json::json!("a, \"quoted\" value"));
        spec.params.insert("lr".into(), serde_json::json!(1e-7));
        let a = fx.job_with_rows(spec, rows_a.clone());
        let mut rows_b: Vec<Row> = (0..5)
            .map(|i| row(i, &[("kl", f64::NAN), ("zeta", 1e300)]))
            .collect();
        rows_b[2].best = Some(f64::INFINITY);
        rows_b[3].mean = None;
        let mut spec_b = JobSpec::experiment("openai_es", 1000);
        spec_b.study = Some("s1".into());
        let b = fx.job_with_rows(spec_b, rows_b.clone());

        let read = fx.store.read().unwrap();
        let p = plan(&read, &Target::Study("s1".into())).unwrap();
        assert_eq!(p.rows, 55);
        assert_eq!(p.metrics, ["entropy", "kl", "zeta"]);
        let mut out = Vec::new();
        assert_eq!(write(&read, &p, &mut out).unwrap(), 55);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\r\n"));
        let recs = read_records(&text).unwrap();
        let header = &recs[0];
        assert_eq!(
            header.join(","),
            "study,job,method,env,seed,param_lr,param_note,attempt,seq,generation,evals,best,\
             best_ever,mean,sigma,elapsed,entropy,kl,zeta,owner"
        );
        assert_eq!(recs.len(), 56);
        assert!(recs.iter().all(|r| r.len() == header.len()));
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        for rec in &recs[1..] {
            for f in &rec[col("attempt")..] {
                assert!(
                    !f.contains(['e', 'E', ',']) || f == "NaN" || f.ends_with("inf"),
                    "{f:?} is not a plain decimal"
                );
            }
        }
        for (rec, (id, r)) in recs[1..].iter().zip(
            rows_a
                .iter()
                .map(|r| (a, r))
                .chain(rows_b.iter().map(|r| (b, r))),
        ) {
            assert_eq!(rec[col("job")], id.to_string());
            assert_eq!(rec[col("owner")], "admin", "jobs submitted with no user");
            assert_eq!(rec[col("attempt")], "1");
            let back = Row {
                seq: rec[col("seq")].parse().unwrap(),
                generation: parse_num(&rec[col("generation")]).map(|g| g as u64),
                evals: parse_num(&rec[col("evals")]),
                best: parse_num(&rec[col("best")]),
                best_ever: parse_num(&rec[col("best_ever")]),
                mean: parse_num(&rec[col("mean")]),
                sigma: parse_num(&rec[col("sigma")]),
                elapsed: parse_num(&rec[col("elapsed")]),
                metrics: ["entropy", "kl", "zeta"]
                    .iter()
                    .filter_map(|m| parse_num(&rec[col(m)]).map(|v| (m.to_string(), v)))
                    .collect(),
            };
            // NaN != NaN: compare through the bit patterns' text.
            assert_eq!(format!("{back:?}"), format!("{r:?}"));
        }
        // Job a's quoted param and its tiny float, as plain text.
        assert_eq!(recs[1][col("param_note")], "a, \"quoted\" value");
        assert_eq!(recs[1][col("param_lr")], "0.0000001");
        assert_eq!(recs[1][col("method")], "cma_es");
        assert_eq!(recs[1][col("seed")], "3");
        assert_eq!(recs[51][col("param_note")], "");
        // Numbers are never grouped with commas: 1350 stays one field.
        assert_eq!(recs[1][col("evals")], "1350");
    }

    #[test]
    fn fields_with_commas_quotes_and_line_breaks_are_quoted() {
        for s in [
            "plain",
            "a,b",
            "say \"hi\"",
            "two\nlines",
            "cr\r\nlf",
            " edge ",
            "",
            "\"",
        ] {
            let mut line = String::new();
            field(&mut line, s);
            line.push(',');
            field(&mut line, "x");
            line.push_str("\r\n");
            let recs = read_records(&line).unwrap();
            assert_eq!(recs, vec![vec![s.to_string(), "x".to_string()]], "{line:?}");
        }
        let mut line = String::new();
        field(&mut line, "plain");
        assert_eq!(line, "plain");
        assert!(read_records("\"open").is_err());
    }

    #[test]
    fn numbers_are_plain_decimals_that_round_trip() {
        for v in [
            0.0,
            -0.0,
            1350.0,
            1.0 / 3.0,
            1e-9,
            123456789012345.67,
            1e21,
            f64::MIN_POSITIVE,
            -2.5e-300,
        ] {
            let mut s = String::new();
            number(&mut s, v);
            assert!(!s.contains(['e', 'E', ',']), "{s}");
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{s}");
        }
        for (v, text) in [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
            (-f64::INFINITY, "-inf"),
        ] {
            let mut s = String::new();
            number(&mut s, v);
            assert_eq!(s, text);
        }
    }
}
