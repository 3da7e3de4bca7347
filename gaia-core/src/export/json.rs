//! JSON: one document, streamed a row per line.
//!
//! ```text
//! {"gaia_export":1,"target":{"job":42},"columns":["attempt","seq","generation",...,"entropy"],"jobs":[
//! {"id":42,"study":null,"method":"cma_es","env":"CartPole-v1","seed":3,"owner":"alice","params":{},
//!  "state":"succeeded","max_evals":100000,"rows":[
//! {"attempt":1,"seq":0,"generation":1,"evals":64,...,"entropy":null},
//! ...
//! ]}
//! ]}
//! ```
//!
//! Every row has every column of `columns` (the union over the export); a missing value is
//! `null`. Numbers keep full precision (shortest text that reads back to the same `f64`);
//! evaluations that are whole are integers (`10`, not `10.0`); JSON has no NaN or infinity, so
//! those are `null` too.

use std::io::Write;

use serde_json::json;

use super::{Plan, Target, each_row, row_columns, write_err};
use crate::error::Error;
use crate::model::{CORE_METRICS, RowRef};
use crate::store::Reader;

/// Version of this document's layout.
pub const EXPORT_VERSION: u32 = 1;

/// Writes `plan`'s document; returns the number of rows written.
pub fn write(reader: &Reader, plan: &Plan, out: &mut dyn Write) -> Result<u64, Error> {
    let target = match &plan.target {
        Target::Job(id) => json!({ "job": id }),
        Target::Study(s) => json!({ "study": s }),
        Target::All => json!("all"),
    };
    let cols: Vec<String> = row_columns(&plan.metrics);
    let head = json!({ "gaia_export": EXPORT_VERSION, "target": target, "columns": cols });
    let head = serde_json::to_string(&head).expect("plain JSON");
    // Open the object: everything but its closing brace, then the jobs array.
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    buf.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    buf.extend_from_slice(b",\"jobs\":[");
    let mut n = 0u64;
    let mut extra: Vec<Option<f64>> = vec![None; plan.metrics.len()];
    // Keys of the row objects, escaped once.
    let keys: Vec<String> = cols[cols.len() - plan.metrics.len()..]
        .iter()
        .map(|m| serde_json::to_string(m).expect("plain JSON"))
        .collect();
    for (j, job) in plan.jobs.iter().enumerate() {
        let s = &job.spec;
        let meta = json!({
            "id": job.id,
            "study": s.study,
            "method": s.method(),
            "env": s.env(),
            "seed": s.seed(),
            "owner": job.owner,
            "params": s.params,
            "state": job.state,
            "max_evals": s.max_evals(),
        });
        let meta = serde_json::to_string(&meta).expect("plain JSON");
        if j > 0 {
            buf.push(b',');
        }
        buf.push(b'\n');
        buf.extend_from_slice(&meta.as_bytes()[..meta.len() - 1]);
        buf.extend_from_slice(b",\"rows\":[");
        let mut first = true;
        each_row(reader, job.id, |attempt, row| {
            if !first {
                buf.push(b',');
            }
            first = false;
            buf.push(b'\n');
            row_object(&mut buf, attempt, &row, &plan.metrics, &keys, &mut extra);
            if buf.len() >= 60 * 1024 {
                out.write_all(&buf).map_err(write_err)?;
                buf.clear();
            }
            n += 1;
            Ok(())
        })?;
        buf.extend_from_slice(b"\n]}");
    }
    buf.extend_from_slice(b"\n]}\n");
    out.write_all(&buf).map_err(write_err)?;
    out.flush().map_err(write_err)?;
    Ok(n)
}

fn row_object(
    buf: &mut Vec<u8>,
    attempt: u32,
    row: &RowRef,
    metrics: &[String],
    keys: &[String],
    extra: &mut [Option<f64>],
) {
    use std::io::Write as _;
    let _ = write!(buf, "{{\"attempt\":{attempt},\"seq\":{}", row.seq);
    for name in CORE_METRICS {
        let _ = write!(buf, ",\"{name}\":");
        if name == "generation" {
            match row.generation {
                Some(g) => {
                    let _ = write!(buf, "{g}");
                }
                None => buf.extend_from_slice(b"null"),
            }
        } else if name == "evals" {
            count(buf, row.evals);
        } else {
            number(buf, row.metric(name));
        }
    }
    extra.iter_mut().for_each(|e| *e = None);
    for (k, v) in &row.metrics {
        if let Ok(i) = metrics.binary_search_by(|m| m.as_str().cmp(k)) {
            extra[i] = Some(*v);
        }
    }
    for (key, v) in keys.iter().zip(extra.iter()) {
        buf.push(b',');
        buf.extend_from_slice(key.as_bytes());
        buf.push(b':');
        number(buf, *v);
    }
    buf.push(b'}');
}

/// A count (evaluations): a whole value as a JSON integer (`10`, not `10.0`), so readers get
/// an integer type; anything else as [`number`].
fn count(buf: &mut Vec<u8>, v: Option<f64>) {
    use std::io::Write as _;
    match v {
        // Below 2^53 every whole f64 is exact.
        Some(v) if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 => {
            let _ = write!(buf, "{}", v as i64);
        }
        v => number(buf, v),
    }
}

fn number(buf: &mut Vec<u8>, v: Option<f64>) {
    use std::io::Write as _;
    match v.and_then(serde_json::Number::from_f64) {
        Some(n) => {
            let _ = write!(buf, "{n}");
        }
        None => buf.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::testutil::Fixture;
    use crate::export::{Target, plan};
    use crate::model::JobSpec;
    use crate::model::Row;

    #[test]
    fn json_keeps_full_precision_and_nulls_for_missing_values() {
        let fx = Fixture::new();
        let rows: Vec<Row> = (0..3u64)
            .map(|i| Row {
                seq: i,
                generation: Some(i + 1),
                evals: Some(0.1 + 0.2 * i as f64),
                best: Some(1.0 / 3.0),
                best_ever: if i == 1 { None } else { Some(f64::NAN) },
                metrics: if i == 2 {
                    vec![("entropy".into(), 2.0f64.sqrt())]
                } else {
                    vec![]
                },
                ..Row::default()
            })
            .collect();
        let id = fx.job_with_rows(JobSpec::experiment("cma_es", 10), rows.clone());
        let read = fx.store.read().unwrap();
        let p = plan(&read, &Target::Job(id)).unwrap();
        let mut out = Vec::new();
        assert_eq!(write(&read, &p, &mut out).unwrap(), 3);
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["gaia_export"], 1);
        assert_eq!(doc["target"]["job"], id);
        assert_eq!(doc["columns"][9], "entropy");
        let job = &doc["jobs"][0];
        assert_eq!(job["method"], "cma_es");
        assert_eq!(job["state"], "running");
        let back = job["rows"].as_array().unwrap();
        assert_eq!(back.len(), 3);
        for (b, r) in back.iter().zip(&rows) {
            assert_eq!(b["attempt"], 1);
            assert_eq!(
                b["evals"].as_f64().unwrap().to_bits(),
                r.evals.unwrap().to_bits()
            );
            assert_eq!(
                b["best"].as_f64().unwrap().to_bits(),
                (1.0f64 / 3.0).to_bits()
            );
            assert!(b["best_ever"].is_null());
            assert!(b["sigma"].is_null());
            assert_eq!(b.as_object().unwrap().len(), 2 + 7 + 1);
        }
        assert!(back[0]["entropy"].is_null());
        assert_eq!(back[2]["entropy"].as_f64().unwrap(), 2.0f64.sqrt());
    }

    /// Issue 12: evaluations are counts; whole ones are written as integers (`10`, not `10.0`).
    #[test]
    fn whole_evals_are_integers() {
        let fx = Fixture::new();
        let rows: Vec<Row> = [10.0, 1_234_567.0, 2.5]
            .iter()
            .enumerate()
            .map(|(i, e)| Row {
                seq: i as u64,
                evals: Some(*e),
                best: Some(500.0),
                ..Row::default()
            })
            .collect();
        let id = fx.job_with_rows(JobSpec::experiment("cma_es", 10), rows);
        let read = fx.store.read().unwrap();
        let mut out = Vec::new();
        write(&read, &plan(&read, &Target::Job(id)).unwrap(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"evals\":10,"), "{text}");
        assert!(text.contains("\"evals\":1234567,"), "{text}");
        assert!(text.contains("\"evals\":2.5,"), "{text}");
        // A score stays a number with its fraction, whole or not.
        assert!(text.contains("\"best\":500.0,"), "{text}");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(doc["jobs"][0]["rows"][0]["evals"].is_u64());
    }
}
