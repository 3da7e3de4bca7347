//! Apache Arrow IPC streams of rows: the columnar format that `pyarrow`, polars, DuckDB and R's
//! `arrow` read without parsing (the Python client's `job.rows()` and `study.rows()`).
//!
//! Two tables, both streamed in record batches of at most [`BATCH_ROWS`] rows, so memory stays
//! flat and the answer leaves while the store is still being read:
//! - an attempt's rows ([`RowWriter`], `GET /api/v1/jobs/{id}/rows?format=arrow`): the fields
//!   of a `Row` — `seq`, `generation`, the core metrics — then every further metric, one
//!   column each; the job, attempt and whether it was downsampled ride in the schema's metadata
//!   (`gaia.job`, `gaia.attempt`, `gaia.downsampled`);
//! - an export's table ([`write`], `…/export.arrow`): the CSV export's columns (study, job,
//!   method, env, seed, one per param, attempt, seq, metrics). Text columns are
//!   dictionary-encoded (a study's million rows name a handful of methods; pandas reads them as
//!   categoricals) with one dictionary for the whole stream; a param whose values are all
//!   numbers is a number column.
//!
//! A missing value is null. Unsigned columns (`seq`, `generation`, `job`, `seed`, `attempt`)
//! are `uint64`/`uint32`; every metric is `float64`, NaN and infinities kept as they are.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{ArrayBuilder, Float64Builder, UInt32Builder, UInt64Builder};
use arrow_array::types::UInt32Type;
use arrow_array::{ArrayRef, DictionaryArray, RecordBatch, StringArray};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

use super::{CONTEXT_COLUMNS, OWNER_COLUMN, Plan, each_row, write_err};
use crate::error::Error;
use crate::model::{CORE_METRICS, JobId, Row, RowRef};
use crate::store::Reader;

/// The media type of an Arrow IPC stream (IANA: `application/vnd.apache.arrow.stream`).
pub const CONTENT_TYPE: &str = "application/vnd.apache.arrow.stream";

/// Most rows in one record batch: large enough that per-batch overhead vanishes, small enough
/// that a batch (≈ 5 MB with 8 metrics) is sent while the next is read.
pub const BATCH_ROWS: usize = 65_536;

fn arrow_err(e: ArrowError) -> Error {
    match e {
        ArrowError::IoError(_, io) => write_err(io),
        other => Error::Other(format!("write arrow: {other}")),
    }
}

/// The metric columns of a row: `seq`, `generation`, the six float core metrics, then the
/// extra metrics in `extra`'s order.
struct MetricColumns {
    seq: UInt64Builder,
    generation: UInt64Builder,
    core: [Float64Builder; 6],
    /// Extra metric names, sorted (binary search), and their builders.
    names: Vec<String>,
    extra: Vec<Float64Builder>,
    /// Per extra metric: whether the current row set it.
    set: Vec<bool>,
}

impl MetricColumns {
    fn new(names: &[String]) -> MetricColumns {
        let mut names = names.to_vec();
        names.sort();
        names.dedup();
        MetricColumns {
            seq: UInt64Builder::with_capacity(BATCH_ROWS),
            generation: UInt64Builder::with_capacity(BATCH_ROWS),
            core: std::array::from_fn(|_| Float64Builder::with_capacity(BATCH_ROWS)),
            extra: names
                .iter()
                .map(|_| Float64Builder::with_capacity(BATCH_ROWS))
                .collect(),
            set: vec![false; names.len()],
            names,
        }
    }

    /// The fields, named as the CSV export names them; an extra metric whose name is taken
    /// (`seq`, a context column) gets a `metric_` prefix.
    fn fields(&self, taken: &[String]) -> Vec<Field> {
        let mut fields = vec![
            Field::new("seq", DataType::UInt64, false),
            Field::new("generation", DataType::UInt64, true),
        ];
        for name in &CORE_METRICS[1..] {
            fields.push(Field::new(*name, DataType::Float64, true));
        }
        for m in &self.names {
            let clash =
                m == "seq" || CORE_METRICS.contains(&m.as_str()) || taken.iter().any(|t| t == m);
            let name = if clash {
                format!("metric_{m}")
            } else {
                m.clone()
            };
            fields.push(Field::new(name, DataType::Float64, true));
        }
        fields
    }

    fn push(&mut self, row: &RowRef) -> Result<(), Error> {
        self.seq.append_value(row.seq);
        self.generation.append_option(row.generation);
        for (b, v) in self.core.iter_mut().zip(row.core()) {
            b.append_option(v);
        }
        // Rows of one run carry their metrics in the same (name) order: the k-th metric is
        // almost always the k-th column, so try it before searching.
        let mut hint = 0;
        for (name, v) in &row.metrics {
            let i = match self.names.get(hint) {
                Some(n) if n == name => hint,
                _ => self
                    .names
                    .binary_search_by(|n| n.as_str().cmp(name))
                    .map_err(|_| {
                        Error::Other(format!(
                            "row {} has a metric {name:?} its table was not planned with",
                            row.seq
                        ))
                    })?,
            };
            if !self.set[i] {
                self.extra[i].append_value(*v);
                self.set[i] = true;
            }
            hint = i + 1;
        }
        for (b, set) in self.extra.iter_mut().zip(self.set.iter_mut()) {
            if !*set {
                b.append_null();
            }
            *set = false;
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.seq.len()
    }

    /// The finished columns of the rows pushed since the last call.
    fn finish(&mut self, out: &mut Vec<ArrayRef>) {
        out.push(Arc::new(self.seq.finish()));
        out.push(Arc::new(self.generation.finish()));
        for b in &mut self.core {
            out.push(Arc::new(b.finish()));
        }
        for b in &mut self.extra {
            out.push(Arc::new(b.finish()));
        }
    }
}

/// Streams one attempt's rows as an Arrow IPC stream: [`RowWriter::push`] each row, then
/// [`RowWriter::finish`]. Batches are written as they fill.
pub struct RowWriter<W: Write> {
    cols: MetricColumns,
    schema: SchemaRef,
    out: StreamWriter<W>,
    rows: u64,
}

impl<W: Write> RowWriter<W> {
    /// A writer for rows whose extra metrics are among `metrics` (a row with another one is an
    /// error); `meta` goes into the schema's metadata (`gaia.job`, ...).
    pub fn new(out: W, metrics: &[String], meta: &[(&str, String)]) -> Result<RowWriter<W>, Error> {
        let cols = MetricColumns::new(metrics);
        let metadata: std::collections::HashMap<String, String> = meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(cols.fields(&[]), metadata));
        let out = StreamWriter::try_new(out, &schema).map_err(arrow_err)?;
        Ok(RowWriter {
            cols,
            schema,
            out,
            rows: 0,
        })
    }

    /// Adds a row, writing a batch when one is full.
    pub fn push(&mut self, row: &RowRef) -> Result<(), Error> {
        self.cols.push(row)?;
        self.rows += 1;
        if self.cols.len() >= BATCH_ROWS {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<(), Error> {
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        self.cols.finish(&mut columns);
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(arrow_err)?;
        self.out.write(&batch).map_err(arrow_err)
    }

    /// Writes the last batch and the end-of-stream marker; returns the rows written and the
    /// underlying writer.
    pub fn finish(mut self) -> Result<(u64, W), Error> {
        if self.cols.len() > 0 {
            self.flush_batch()?;
        }
        self.out.finish().map_err(arrow_err)?;
        let rows = self.rows;
        Ok((rows, self.out.into_inner().map_err(arrow_err)?))
    }
}

/// One attempt's rows (already read, e.g. downsampled) as a whole Arrow IPC stream.
pub fn rows_to_vec(
    rows: &[Row],
    job: JobId,
    attempt: u32,
    downsampled: bool,
) -> Result<Vec<u8>, Error> {
    let mut names: Vec<String> = Vec::new();
    for r in rows {
        for (k, _) in &r.metrics {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let mut w = RowWriter::new(Vec::new(), &names, &row_meta(job, attempt, downsampled))?;
    for r in rows {
        w.push(&RowRef::from(r))?;
    }
    Ok(w.finish()?.1)
}

/// The schema metadata of an attempt's rows.
pub fn row_meta(job: JobId, attempt: u32, downsampled: bool) -> Vec<(&'static str, String)> {
    vec![
        ("gaia.job", job.to_string()),
        ("gaia.attempt", attempt.to_string()),
        ("gaia.downsampled", downsampled.to_string()),
    ]
}

/// A text column with one dictionary for the whole stream: each batch holds only keys.
struct DictColumn {
    values: ArrayRef,
    index: BTreeMap<String, u32>,
    keys: UInt32Builder,
}

impl DictColumn {
    fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> DictColumn {
        let mut index = BTreeMap::new();
        let mut values = Vec::new();
        for t in texts {
            if !index.contains_key(t) {
                index.insert(t.to_string(), values.len() as u32);
                values.push(t.to_string());
            }
        }
        DictColumn {
            values: Arc::new(StringArray::from(values)),
            index,
            keys: UInt32Builder::with_capacity(BATCH_ROWS),
        }
    }

    fn field(name: &str) -> Field {
        Field::new(
            name,
            DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8)),
            true,
        )
    }

    fn key(&self, text: Option<&str>) -> Option<u32> {
        text.and_then(|t| self.index.get(t).copied())
    }

    fn finish(&mut self) -> Result<ArrayRef, Error> {
        let keys = self.keys.finish();
        Ok(Arc::new(
            DictionaryArray::<UInt32Type>::try_new(keys, self.values.clone()).map_err(arrow_err)?,
        ))
    }
}

/// A param's column: numbers when every job's value is a number, else text.
enum ParamColumn {
    Number(Float64Builder),
    Text(DictColumn),
}

/// A param value as text: strings as they are, other values as JSON (as the CSV export).
fn param_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The columns of an export's table, filled row by row.
struct ExportColumns {
    study: DictColumn,
    job: UInt64Builder,
    method: DictColumn,
    env: DictColumn,
    seed: UInt64Builder,
    params: Vec<ParamColumn>,
    attempt: UInt32Builder,
    metrics: MetricColumns,
    /// Last, as in the CSV: the user who submitted the row's job.
    owner: DictColumn,
}

impl ExportColumns {
    fn new(plan: &Plan) -> ExportColumns {
        let specs: Vec<_> = plan.jobs.iter().map(|j| &j.spec).collect();
        let params = plan
            .params
            .iter()
            .map(|p| {
                let values: Vec<&serde_json::Value> =
                    specs.iter().filter_map(|s| s.params.get(p)).collect();
                if values.iter().all(|v| v.is_number()) {
                    ParamColumn::Number(Float64Builder::with_capacity(BATCH_ROWS))
                } else {
                    let texts: Vec<String> = values.iter().map(|v| param_text(v)).collect();
                    ParamColumn::Text(DictColumn::new(texts.iter().map(String::as_str)))
                }
            })
            .collect();
        ExportColumns {
            study: DictColumn::new(specs.iter().filter_map(|s| s.study.as_deref())),
            job: UInt64Builder::with_capacity(BATCH_ROWS),
            method: DictColumn::new(specs.iter().filter_map(|s| s.method())),
            env: DictColumn::new(specs.iter().filter_map(|s| s.env())),
            seed: UInt64Builder::with_capacity(BATCH_ROWS),
            params,
            attempt: UInt32Builder::with_capacity(BATCH_ROWS),
            metrics: MetricColumns::new(&plan.metrics),
            owner: DictColumn::new(plan.jobs.iter().map(|j| j.owner.as_str())),
        }
    }

    fn schema(&self, plan: &Plan) -> SchemaRef {
        let mut fields = vec![
            DictColumn::field("study"),
            Field::new("job", DataType::UInt64, false),
            DictColumn::field("method"),
            DictColumn::field("env"),
            Field::new("seed", DataType::UInt64, true),
        ];
        for (p, col) in plan.params.iter().zip(&self.params) {
            let name = format!("param_{p}");
            fields.push(match col {
                ParamColumn::Number(_) => Field::new(name, DataType::Float64, true),
                ParamColumn::Text(_) => DictColumn::field(&name),
            });
        }
        fields.push(Field::new("attempt", DataType::UInt32, false));
        let mut taken: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
        taken.extend(CONTEXT_COLUMNS.iter().map(|s| s.to_string()));
        taken.push(OWNER_COLUMN.to_string());
        fields.extend(self.metrics.fields(&taken));
        fields.push(DictColumn::field(OWNER_COLUMN));
        Arc::new(Schema::new(fields))
    }

    /// Adds one row of `job` (whose context is `ctx`).
    fn push(&mut self, ctx: &JobContext, attempt: u32, row: &RowRef) -> Result<(), Error> {
        self.study.keys.append_option(ctx.study);
        self.job.append_value(ctx.job);
        self.method.keys.append_option(ctx.method);
        self.env.keys.append_option(ctx.env);
        self.seed.append_option(ctx.seed);
        for (col, v) in self.params.iter_mut().zip(&ctx.params) {
            match (col, v) {
                (ParamColumn::Number(b), v) => b.append_option(v.as_ref().and_then(|v| v.0)),
                (ParamColumn::Text(d), v) => d.keys.append_option(v.as_ref().and_then(|v| v.1)),
            }
        }
        self.attempt.append_value(attempt);
        self.owner.keys.append_option(ctx.owner);
        self.metrics.push(row)
    }

    fn len(&self) -> usize {
        self.job.len()
    }

    fn batch(&mut self, schema: &SchemaRef) -> Result<RecordBatch, Error> {
        let mut cols: Vec<ArrayRef> = vec![
            self.study.finish()?,
            Arc::new(self.job.finish()),
            self.method.finish()?,
            self.env.finish()?,
            Arc::new(self.seed.finish()),
        ];
        for p in &mut self.params {
            cols.push(match p {
                ParamColumn::Number(b) => Arc::new(b.finish()),
                ParamColumn::Text(d) => d.finish()?,
            });
        }
        cols.push(Arc::new(self.attempt.finish()));
        self.metrics.finish(&mut cols);
        cols.push(self.owner.finish()?);
        RecordBatch::try_new(schema.clone(), cols).map_err(arrow_err)
    }
}

/// What every row of one job repeats: its id, dictionary keys and param values (as a number,
/// and as a text key).
struct JobContext {
    job: JobId,
    study: Option<u32>,
    method: Option<u32>,
    env: Option<u32>,
    seed: Option<u64>,
    params: Vec<Option<(Option<f64>, Option<u32>)>>,
    owner: Option<u32>,
}

/// Writes `plan`'s table (the CSV export's columns) as an Arrow IPC stream; returns the number
/// of rows written.
pub fn write(reader: &Reader, plan: &Plan, out: &mut dyn Write) -> Result<u64, Error> {
    let mut cols = ExportColumns::new(plan);
    let schema = cols.schema(plan);
    let mut w = StreamWriter::try_new(std::io::BufWriter::with_capacity(256 << 10, out), &schema)
        .map_err(arrow_err)?;
    let mut n = 0u64;
    for job in &plan.jobs {
        let s = &job.spec;
        let ctx = JobContext {
            job: job.id,
            study: cols.study.key(s.study.as_deref()),
            method: cols.method.key(s.method()),
            env: cols.env.key(s.env()),
            seed: s.seed(),
            owner: cols.owner.key(Some(&job.owner)),
            params: plan
                .params
                .iter()
                .zip(&cols.params)
                .map(|(p, col)| {
                    let v = s.params.get(p)?;
                    Some(match col {
                        ParamColumn::Number(_) => (v.as_f64(), None),
                        ParamColumn::Text(d) => (None, d.key(Some(&param_text(v)))),
                    })
                })
                .collect(),
        };
        each_row(reader, job.id, |attempt, row| {
            cols.push(&ctx, attempt, &row)?;
            n += 1;
            if cols.len() >= BATCH_ROWS {
                w.write(&cols.batch(&schema)?).map_err(arrow_err)?;
            }
            Ok(())
        })?;
    }
    if cols.len() > 0 {
        w.write(&cols.batch(&schema)?).map_err(arrow_err)?;
    }
    w.finish().map_err(arrow_err)?;
    w.into_inner()
        .map_err(arrow_err)?
        .flush()
        .map_err(write_err)?;
    Ok(n)
}
