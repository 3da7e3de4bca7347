//! The admin's upkeep of the store while it serves: `gc` (old rows and log lines, in bounded
//! batches), `backup` (a consistent copy, streamed to the caller) and the audit log.

use hyper::Request;
use hyper::body::Incoming;

use super::App;
use super::http::{HResult, HttpError, Query, blocking, file_response, ok, parse_json, read_body};
use super::workers::actor;
use crate::protocol::AuditList;
use crate::store::maintenance::GcRequest;

pub(crate) async fn gc(app: &App, req: Request<Incoming>) -> HResult {
    let by = actor(&req);
    let (_, body) = read_body(req).await?;
    let r: GcRequest = parse_json(&body)?;
    r.validate()?;
    let report = app.store.gc(&r).await?;
    if !r.dry_run {
        let detail = format!(
            "rows older than {}, logs older than {}: {} rows of {} jobs, {} log lines of {} jobs; file {} -> {} bytes",
            r.rows_older_than_secs
                .map_or("-".into(), |s| format!("{s}s")),
            r.logs_older_than_secs
                .map_or("-".into(), |s| format!("{s}s")),
            report.rows_deleted,
            report.row_jobs,
            report.log_lines_deleted,
            report.log_jobs,
            report.file_bytes_before,
            report.file_bytes_after
        );
        let ev = app
            .store
            .write(move |tx| {
                tx.audit(&by, "gc", "", detail.clone())?;
                Ok(tx.event("gc", None, None, format!("gc by {by}: {detail}"))?)
            })
            .await?;
        app.queue.publish_event(ev);
    }
    ok(&report)
}

/// Streams a consistent copy of the database: made into a temporary file in the data dir
/// (from one read snapshot, while writes go on), opened, unlinked, then sent.
pub(crate) async fn backup(app: &App, req: Request<Incoming>) -> HResult {
    let by = actor(&req);
    let mut name = [0u8; 8];
    getrandom::fill(&mut name).map_err(|e| HttpError::bad(e.to_string()))?;
    let tmp = app
        .data_dir()
        .join(format!(".backup-{}.redb", hex::encode(name)));
    let store = app.store.clone();
    let path = tmp.clone();
    let (report, file) = blocking(move || {
        let report = store.backup_to(&path)?;
        let file = std::fs::File::open(&path).map_err(|e| crate::error::Error::io(&path, e));
        // Unlinked at once: the open file is all that is left, gone when the answer is sent.
        let _ = std::fs::remove_file(&path);
        Ok((report, file?))
    })
    .await
    .inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    let detail = format!(
        "{} entries in {} tables, {} bytes, {} ms",
        report.entries, report.tables, report.bytes, report.took_ms
    );
    app.store
        .write(move |tx| Ok(tx.audit(&by, "backup", "", detail)?))
        .await?;
    Ok(file_response(
        tokio::fs::File::from_std(file),
        "application/octet-stream",
        &[
            ("content-length", report.bytes.to_string()),
            (
                "content-disposition",
                "attachment; filename=\"gaia-backup.redb\"".to_string(),
            ),
            ("x-gaia-backup-entries", report.entries.to_string()),
        ],
    ))
}

pub(crate) fn audit(app: &App, q: &Query) -> HResult {
    let limit = q.parse::<usize>("limit")?.unwrap_or(200).clamp(1, 10_000);
    let after = q.parse::<u64>("after")?;
    ok(&AuditList {
        entries: app.store.read()?.audit(after, limit)?,
    })
}
