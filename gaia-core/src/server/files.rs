//! Result files: workers upload what an experiment left in `GAIA_OUTPUT_DIR`; users list and
//! download them. Bytes live in `<data dir>/files/<job>/<name>`, metadata on the job.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hyper::Request;
use hyper::body::Incoming;

use super::App;
use super::http::{HResult, HttpError, Query, body_to_file, file_response, ok};
use crate::error::Error;
use crate::model::{FileInfo, validate_file_name};
use crate::protocol::FileList;
use crate::queue::MAX_FILES;

pub(crate) fn list(app: &App, id: u64) -> HResult {
    let job = app
        .store
        .read()?
        .job(id)?
        .ok_or_else(|| HttpError::not_found(format!("job {id} not found")))?;
    ok(&FileList { files: job.files })
}

pub(crate) async fn download(app: &App, id: u64, name: &str) -> HResult {
    validate_file_name(name)?;
    let job = app
        .store
        .read()?
        .job(id)?
        .ok_or_else(|| HttpError::not_found(format!("job {id} not found")))?;
    if !job.files.iter().any(|f| f.name == name) {
        return Err(HttpError::not_found(format!(
            "job {id} has no file {name:?}"
        )));
    }
    let path = app.data_dir().join("files").join(id.to_string()).join(name);
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        HttpError::not_found(format!(
            "file {name:?} of job {id} is missing on the server: {e}"
        ))
    })?;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    Ok(file_response(
        file,
        content_type(name),
        &[
            (
                "content-disposition",
                format!("attachment; filename=\"job-{id}-{name}\""),
            ),
            ("content-length", len.to_string()),
        ],
    ))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "json" => "application/json",
        "csv" => "text/csv",
        "png" => "image/png",
        "txt" | "log" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

pub(crate) async fn upload(
    app: &App,
    id: u64,
    name: &str,
    q: &Query,
    req: Request<Incoming>,
) -> HResult {
    validate_file_name(name)?;
    let attempt = q
        .parse::<u32>("attempt")?
        .ok_or_else(|| HttpError::bad("attempt is required"))?;
    let lease = q
        .parse::<u64>("lease")?
        .ok_or_else(|| HttpError::bad("lease is required"))?;
    let stale = || {
        HttpError::from(Error::Request(crate::error::RequestError::StaleLease(
            format!("job {id} attempt {attempt}: this lease is no longer current"),
        )))
    };
    match app.queue.lease_of(id) {
        Some((a, l, _)) if a == attempt && l == lease => {}
        _ => return Err(stale()),
    }
    // Refused before a byte is streamed when the job already has all the files it may keep.
    if let Some(job) = app.store.read()?.job(id)?
        && job.files.len() >= MAX_FILES
        && !job.files.iter().any(|f| f.name == name)
    {
        return Err(HttpError::bad(format!(
            "job {id} already keeps the most files allowed ({MAX_FILES})"
        )));
    }
    let dir = app.data_dir().join("files").join(id.to_string());
    std::fs::create_dir_all(&dir).map_err(|e| HttpError::from(Error::io(&dir, e)))?;
    let tmp = dir.join(format!(".{name}.upload-{lease}"));
    let dest = dir.join(name);
    let stored = body_to_file(req, &tmp, &format!("file {name:?}")).await?;
    let info = FileInfo {
        name: name.to_string(),
        size: stored.size,
        sha256: stored.sha256,
    };
    // The bytes a same-named earlier upload left are set aside, not overwritten, until the
    // write that records the new file has committed: if that write fails after the file took
    // its place, the old bytes go back under the record that still describes them.
    let prev = dir.join(format!(".{name}.prev-{lease}"));
    let moved = Arc::new(AtomicBool::new(false));
    let place = {
        let (staged, dest, prev, moved) = (tmp.clone(), dest.clone(), prev.clone(), moved.clone());
        move || {
            if dest.exists() {
                std::fs::rename(&dest, &prev).map_err(|e| Error::io(&dest, e))?;
            }
            moved.store(true, Ordering::SeqCst);
            std::fs::rename(&staged, &dest).map_err(|e| Error::io(&dest, e))
        }
    };
    let placed = app
        .queue
        .add_file(id, attempt, lease, info.clone(), place)
        .await;
    if let Err(e) = placed {
        // Refused (a stale lease, too many files) or failed: nothing of it stays on disk.
        if moved.load(Ordering::SeqCst) {
            if prev.exists() {
                let _ = std::fs::rename(&prev, &dest);
            } else {
                let _ = std::fs::remove_file(&dest);
            }
        }
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    let _ = std::fs::remove_file(&prev);
    ok(&info)
}
