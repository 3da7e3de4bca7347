//! Exports: CSV / JSON / PNG of a job, a study or everything; a study's result files as one
//! ZIP.
//!
//! CSV and JSON are planned (jobs, columns, row count) on one store snapshot before the answer
//! starts, so a bad target is a clean 404; the rows then stream from that same snapshot through
//! a bounded channel: memory stays flat whatever the size. The row count goes out in the
//! `x-gaia-rows` header for progress bars.

use std::io::Write;

use bytes::Bytes;
use hyper::{StatusCode, header};

use super::App;
use super::http::{HResult, HttpError, Query, blocking, bytes_response};
use super::http::{Res, StreamTx, stream_response};
use crate::export::png::PngOptions;
use crate::export::zip::ZipWriter;
use crate::export::{Format, ROWS_HEADER, Target};
use crate::model::validate_name;

fn attachment(res: &mut Res, file: &str) {
    if let Ok(v) = format!("attachment; filename=\"{file}\"").parse() {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
}

/// The format of a path ending in `export.<ext>`.
pub(crate) fn format_of(path: &str) -> Format {
    path.rsplit('.')
        .next()
        .and_then(Format::from_ext)
        .unwrap_or(Format::Json)
}

/// PNG options from `width`, `height`, `metric` (comma-separated) and `log_y`.
fn png_options(q: &Query) -> Result<PngOptions, HttpError> {
    let mut o = PngOptions::default();
    if let Some(w) = q.parse::<u32>("width")? {
        o.width = w;
    }
    if let Some(h) = q.parse::<u32>("height")? {
        o.height = h;
    }
    if let Some(m) = q.get("metric").filter(|m| !m.is_empty()) {
        o.metrics = m.split(',').map(|s| s.trim().to_string()).collect();
    }
    o.log_y = match q.get("log_y") {
        None | Some("") | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(v) => return Err(HttpError::bad(format!("log_y={v:?}: use true or false"))),
    };
    o.validate()?;
    Ok(o)
}

pub(crate) async fn export(app: &App, target: Target, format: Format, q: &Query) -> HResult {
    if let Target::Study(s) = &target {
        validate_name("study name", s)?;
    }
    let file = format!("{}.{}", target.file_stem(), format.ext());
    let store = app.store.clone();
    if format == Format::Png {
        let opts = png_options(q)?;
        // One render at a time: each holds its whole canvas in memory and keeps a core busy.
        let _turn = app.png_renders.acquire().await;
        let bytes = blocking(move || {
            let read = store.read()?;
            Ok(crate::export::png::render_target(&read, &target, &opts)?)
        })
        .await?;
        let mut res = bytes_response(StatusCode::OK, format.content_type(), bytes);
        attachment(&mut res, &file);
        return Ok(res);
    }
    let (read, plan) = blocking(move || {
        let read = store.read()?;
        let plan = crate::export::plan(&read, &target)?;
        Ok((read, plan))
    })
    .await?;
    let (res, tx) = stream_response(
        format.content_type(),
        &[
            (
                "content-disposition",
                format!("attachment; filename=\"{file}\""),
            ),
            (ROWS_HEADER, plan.rows.to_string()),
        ],
    );
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter { tx };
        let r = match format {
            Format::Csv => crate::export::csv::write(&read, &plan, &mut out),
            Format::Arrow => crate::export::arrow::write(&read, &plan, &mut out),
            _ => crate::export::json::write(&read, &plan, &mut out),
        };
        if let Err(e) = r {
            // The client must not take a cut-off export for a whole one.
            out.tx.fail();
            if !e.to_string().contains(GONE) {
                eprintln!("gaia serve: export of {:?} failed: {e}", plan.target);
            }
        }
    });
    Ok(res)
}

pub(crate) async fn study_files(app: &App, name: &str) -> HResult {
    validate_name("study name", name)?;
    let store = app.store.clone();
    let study = name.to_string();
    let entries = blocking(move || {
        let read = store.read()?;
        if !read.has_study(&study)? {
            return Err(HttpError::not_found(format!("study {study:?} not found")));
        }
        let jobs = read.study_jobs(&study)?;
        let mut entries = Vec::new();
        for job in &jobs {
            let s = &job.spec;
            let mut dir = format!(
                "job-{}-{}-{}",
                job.id,
                s.method().unwrap_or("job"),
                s.env().unwrap_or("-")
            );
            if let Some(seed) = s.seed() {
                dir.push_str(&format!("-seed{seed}"));
            }
            for f in &job.files {
                entries.push((
                    job.id,
                    f.name.clone(),
                    format!("{study}/{dir}/{}", f.name),
                    job.finished_at.unwrap_or(job.submitted_at),
                ));
            }
        }
        Ok(entries)
    })
    .await?;
    if entries.is_empty() {
        return Err(HttpError::not_found(format!(
            "study {name:?} has no result files yet"
        )));
    }
    let files_dir = app.data_dir().join("files");
    let (res, tx) = stream_response(
        "application/zip",
        &[(
            "content-disposition",
            format!("attachment; filename=\"study-{name}-files.zip\""),
        )],
    );
    let name = name.to_string();
    let failed = tx.clone();
    tokio::task::spawn_blocking(move || {
        let mut zip = ZipWriter::new(std::io::BufWriter::with_capacity(
            64 * 1024,
            ChannelWriter { tx },
        ));
        for (job, file, entry, mtime) in entries {
            let path = files_dir.join(job.to_string()).join(&file);
            let mut f = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!(
                        "gaia serve: study {name} zip: skipping {}: {e}",
                        path.display()
                    );
                    continue;
                }
            };
            if let Err(e) = zip.add_file(&entry, mtime, &mut f) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    eprintln!("gaia serve: study {name} zip failed at {entry}: {e}");
                }
                failed.fail();
                return;
            }
        }
        let _ = zip.finish();
    });
    Ok(res)
}

pub(crate) const GONE: &str = "the client went away";

/// Feeds a streamed answer from a blocking task; a closed answer is a broken pipe.
pub(crate) struct ChannelWriter {
    pub tx: StreamTx,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.tx
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, GONE))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::router::{Endpoint, find};
    use super::*;
    use crate::model::Scope;

    #[test]
    fn export_and_study_routes_resolve_with_their_scopes() {
        for (method, path, endpoint, scope) in [
            (
                "POST",
                "/api/v1/studies",
                Endpoint::SubmitStudy,
                Scope::Admin,
            ),
            ("GET", "/api/v1/studies", Endpoint::ListStudies, Scope::Read),
            ("GET", "/api/v1/studies/cc", Endpoint::GetStudy, Scope::Read),
            (
                "GET",
                "/api/v1/studies/cc/files.zip",
                Endpoint::StudyFiles,
                Scope::Read,
            ),
            (
                "GET",
                "/api/v1/studies/cc/export.csv",
                Endpoint::ExportStudy,
                Scope::Read,
            ),
            (
                "GET",
                "/api/v1/studies/cc/export.png",
                Endpoint::ExportStudy,
                Scope::Read,
            ),
            (
                "GET",
                "/api/v1/jobs/42/export.json",
                Endpoint::ExportJob,
                Scope::Read,
            ),
            (
                "GET",
                "/api/v1/jobs/42/export.png",
                Endpoint::ExportJob,
                Scope::Read,
            ),
            (
                "GET",
                "/api/v1/export.csv",
                Endpoint::ExportAll,
                Scope::Read,
            ),
        ] {
            let (route, params) = find(method, path).unwrap();
            assert_eq!(route.endpoint, endpoint, "{path}");
            assert_eq!(route.scope, Some(scope), "{path}");
            if path.contains("/cc") {
                assert_eq!(params[0], "cc");
            }
        }
        assert!(find("GET", "/api/v1/jobs/42/export.xlsx").is_err());
        assert_eq!(format_of("/api/v1/jobs/42/export.csv"), Format::Csv);
        assert_eq!(format_of("/api/v1/export.png"), Format::Png);
    }
}
