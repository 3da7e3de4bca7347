//! Export: CSV, JSON and PNG of one job, one study or every job; a study's result files as ZIP.
//!
//! An export reads one store snapshot ([`Reader`]) in two passes: [`plan`] finds the jobs, the
//! union of their metric columns and the row count; the writers ([`csv::write`],
//! [`json::write`]) then stream the rows into any `Write`, so a 5,000,000-row export never sits
//! whole in memory. PNGs ([`png`]) are figures of downsampled rows, drawn by the plotting
//! toolkit ([`plot`]: plotters, with a font embedded in the binary, no system font library).
//!
//! One table layout for every target: context columns (study, job, method, env, seed, swept
//! params), then attempt, seq, the core metrics, then every further metric any row has; a CSV
//! ends with the job's owner (last, so the columns before it stay where tools expect them).

pub mod arrow;
pub mod csv;
pub mod json;
pub mod plot;
pub mod png;
pub mod zip;

use crate::error::{Error, RequestError};
use crate::model::{CORE_METRICS, Job, JobId, Row, RowRef, validate_name};
use crate::store::Reader;
use std::collections::BTreeSet;

/// What to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Job(JobId),
    Study(String),
    All,
}

/// How to export it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Png,
    /// An Apache Arrow IPC stream ([`arrow`]): columns for pyarrow, polars, DuckDB.
    Arrow,
}

impl Format {
    /// The file extension (`csv`, `json`, `png`, `arrow`).
    pub fn ext(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Png => "png",
            Format::Arrow => "arrow",
        }
    }

    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8; header=present",
            Format::Json => "application/json",
            Format::Png => "image/png",
            Format::Arrow => arrow::CONTENT_TYPE,
        }
    }

    /// The format of an `export.<ext>` path segment.
    pub fn from_ext(ext: &str) -> Option<Format> {
        match ext {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "png" => Some(Format::Png),
            "arrow" => Some(Format::Arrow),
            _ => None,
        }
    }
}

impl Target {
    /// The default file name without extension: `job-42`, `study-classic-control`, `gaia-all`.
    pub fn file_stem(&self) -> String {
        match self {
            Target::Job(id) => format!("job-{id}"),
            Target::Study(s) => format!("study-{s}"),
            Target::All => "gaia-all".to_string(),
        }
    }

    /// The API path of this export: `/api/v1/jobs/42/export.csv`, ...
    pub fn path(&self, format: Format) -> String {
        let ext = format.ext();
        match self {
            Target::Job(id) => format!("/api/v1/jobs/{id}/export.{ext}"),
            Target::Study(s) => format!("/api/v1/studies/{s}/export.{ext}"),
            Target::All => format!("/api/v1/export.{ext}"),
        }
    }

    /// The path of a study's result files as one ZIP.
    pub fn files_zip_path(study: &str) -> String {
        format!("/api/v1/studies/{study}/files.zip")
    }
}

/// Response header carrying the number of rows an export streams (for progress bars).
pub const ROWS_HEADER: &str = "x-gaia-rows";

/// The jobs and columns of one export, decided by a first pass over the snapshot.
#[derive(Clone, Debug)]
pub struct Plan {
    pub target: Target,
    /// The jobs, ascending id.
    pub jobs: Vec<Job>,
    /// Swept param keys (every key any job's params has), sorted.
    pub params: Vec<String>,
    /// Metric names beyond the core ones that any row has, sorted.
    pub metrics: Vec<String>,
    /// Rows over all jobs and attempts.
    pub rows: u64,
}

/// The jobs of a target, ascending id; an unknown job or study is a not-found error.
pub fn jobs_of(reader: &Reader, target: &Target) -> Result<Vec<Job>, Error> {
    match target {
        Target::Job(id) => {
            Ok(vec![reader.job(*id)?.ok_or_else(|| {
                Error::Request(RequestError::NotFound(format!("job {id}")))
            })?])
        }
        Target::Study(name) => {
            validate_name("study name", name)?;
            if !reader.has_study(name)? {
                return Err(Error::Request(RequestError::NotFound(format!(
                    "study {name:?}"
                ))));
            }
            Ok(reader.study_jobs(name)?)
        }
        Target::All => {
            let mut jobs = Vec::new();
            reader.for_each_job::<Error>(|j| {
                jobs.push(j);
                Ok(())
            })?;
            Ok(jobs)
        }
    }
}

/// First pass: the jobs, the union of their metric columns and params, and the row count.
pub fn plan(reader: &Reader, target: &Target) -> Result<Plan, Error> {
    let jobs = jobs_of(reader, target)?;
    let mut metrics = BTreeSet::new();
    let mut params = BTreeSet::new();
    let mut rows = 0u64;
    for job in &jobs {
        params.extend(job.spec.params.keys().cloned());
        each_row(reader, job.id, |_, row| {
            rows += 1;
            for (k, _) in &row.metrics {
                if !metrics.contains(*k) {
                    metrics.insert(k.to_string());
                }
            }
            Ok(())
        })?;
    }
    Ok(Plan {
        target: target.clone(),
        jobs,
        params: params.into_iter().collect(),
        metrics: metrics.into_iter().collect(),
        rows,
    })
}

/// Calls `f(attempt, row)` for every row of every attempt of a job, in (attempt, seq) order;
/// stops at the first error.
pub fn each_row(
    reader: &Reader,
    job: JobId,
    mut f: impl FnMut(u32, RowRef<'_>) -> Result<(), Error>,
) -> Result<(), Error> {
    for entry in reader
        .rows
        .open()?
        .range((job, 0, 0)..=(job, u32::MAX, u64::MAX))
        .map_err(crate::error::StoreError::from)?
    {
        let (k, v) = entry.map_err(crate::error::StoreError::from)?;
        let row = crate::store::rows::decode_ref(v.value())?;
        f(k.value().1, row)?;
    }
    Ok(())
}

/// Calls `f(row)` for every row of one attempt, in seq order.
pub fn each_row_of_attempt(
    reader: &Reader,
    job: JobId,
    attempt: u32,
    mut f: impl FnMut(Row) -> Result<(), Error>,
) -> Result<(), Error> {
    for entry in reader
        .rows
        .open()?
        .range((job, attempt, 0)..=(job, attempt, u64::MAX))
        .map_err(crate::error::StoreError::from)?
    {
        let (_, v) = entry.map_err(crate::error::StoreError::from)?;
        f(crate::store::rows::decode(v.value())?)?;
    }
    Ok(())
}

/// The first and the last row of one attempt (by seq), None when it has no rows; reads two
/// rows, whatever the attempt's size.
pub fn first_and_last_row(
    reader: &Reader,
    job: JobId,
    attempt: u32,
) -> Result<Option<(Row, Row)>, Error> {
    let mut range = reader
        .rows
        .open()?
        .range((job, attempt, 0)..=(job, attempt, u64::MAX))
        .map_err(crate::error::StoreError::from)?;
    let Some(entry) = range.next() else {
        return Ok(None);
    };
    let (_, v) = entry.map_err(crate::error::StoreError::from)?;
    let first = crate::store::rows::decode(v.value())?;
    let last = match range.next_back() {
        Some(entry) => {
            let (_, v) = entry.map_err(crate::error::StoreError::from)?;
            crate::store::rows::decode(v.value())?
        }
        None => first.clone(),
    };
    Ok(Some((first, last)))
}

/// The row columns after the context ones: attempt, seq, the core metrics, then `extra`.
pub(crate) fn row_columns(extra: &[String]) -> Vec<String> {
    let mut cols = vec!["attempt".to_string(), "seq".to_string()];
    cols.extend(CORE_METRICS.iter().map(|s| s.to_string()));
    // A metric named like a row column keeps its value under a prefixed name.
    cols.extend(extra.iter().map(|m| {
        if m == "attempt" || m == "seq" {
            format!("metric_{m}")
        } else {
            m.clone()
        }
    }));
    cols
}

/// The context columns of every row: study, job, method, env, seed and one per param.
pub(crate) const CONTEXT_COLUMNS: [&str; 5] = ["study", "job", "method", "env", "seed"];

/// The last column of a CSV: the user who submitted the row's job. Last, not among the
/// context columns, so that adding it moved no column a reader finds by position.
pub(crate) const OWNER_COLUMN: &str = "owner";

/// Column names of `plan`'s table, each unique: a metric or param whose name collides with
/// another column gets a `metric_` / `param_` prefix.
pub fn columns(plan: &Plan) -> Vec<String> {
    let mut cols: Vec<String> = CONTEXT_COLUMNS.iter().map(|s| s.to_string()).collect();
    for p in &plan.params {
        cols.push(format!("param_{p}"));
    }
    for c in row_columns(&[]) {
        cols.push(c);
    }
    for m in &plan.metrics {
        if m == OWNER_COLUMN || cols.iter().any(|c| c == m) {
            cols.push(format!("metric_{m}"));
        } else {
            cols.push(m.clone());
        }
    }
    cols.push(OWNER_COLUMN.to_string());
    cols
}

/// Wraps an io error of an export writer.
pub(crate) fn write_err(e: std::io::Error) -> Error {
    Error::Other(format!("write export: {e}"))
}

#[cfg(test)]
pub(crate) mod testutil {
    use crate::model::{JobSpec, Row};
    use crate::protocol::{RegisterRequest, RowBatch};
    use crate::queue::{Queue, QueueConfig};
    use crate::store::Store;

    /// A store with jobs that have rows, made through the queue as a worker would.
    pub struct Fixture {
        pub _dir: tempfile::TempDir,
        pub store: Store,
        pub queue: std::sync::Arc<Queue>,
        pub rt: tokio::runtime::Runtime,
        worker: String,
    }

    impl Fixture {
        pub fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let queue = Queue::new(store.clone(), QueueConfig::default()).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let worker = rt
                .block_on(queue.register(RegisterRequest {
                    worker_id: None,
                    name: "w".into(),
                    version: "0".into(),
                    hardware: Default::default(),
                    kinds: vec![crate::model::JobKind::Experiment],
                    tags: vec![],
                    slots: 1,
                }))
                .unwrap()
                .id;
            Fixture {
                _dir: dir,
                store,
                queue,
                rt,
                worker,
            }
        }

        /// Submits a job, runs it as the worker and stores `rows`; returns its id.
        pub fn job_with_rows(&self, spec: JobSpec, rows: Vec<Row>) -> u64 {
            let id = self.rt.block_on(self.queue.submit(spec)).unwrap();
            let a = self
                .rt
                .block_on(self.queue.claim(
                    &self.worker,
                    crate::model::Capabilities {
                        kinds: vec![crate::model::JobKind::Experiment],
                        ..Default::default()
                    },
                    std::time::Duration::ZERO,
                ))
                .unwrap()
                .expect("claimed");
            assert_eq!(a.job.id, id);
            for chunk in rows.chunks(10_000) {
                self.rt
                    .block_on(self.queue.add_rows(
                        id,
                        RowBatch {
                            attempt: a.attempt,
                            lease: a.lease,
                            rows: chunk.to_vec(),
                            fraction: None,
                            status: None,
                        },
                    ))
                    .unwrap();
            }
            id
        }
    }
}
