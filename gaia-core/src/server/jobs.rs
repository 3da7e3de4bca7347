//! Jobs: submit, list, show, cancel; their rows and logs (read, and written by workers); the
//! reports that end or give back an attempt.

use hyper::body::Incoming;
use hyper::{Request, StatusCode, header};

use super::App;
use super::auth::{Caller, actor_of};
use super::export::{ChannelWriter, GONE};
use super::http::{
    HResult, HttpError, Query, blocking, bytes_response, json, ok, parse_json, read_body,
    stream_response,
};
use crate::export::arrow::CONTENT_TYPE as ARROW_CONTENT_TYPE;
use crate::model::{JobState, validate_name};
use crate::protocol::{
    CancelResponse, CompleteRequest, JobList, LogAck, LogBatch, LogsResponse,
    POSTCARD_CONTENT_TYPE, RequeueRequest, RowBatch, RowsResponse, SubmitBatch,
    SubmitBatchResponse, SubmitResponse,
};
use crate::store::rows::{Downsampler, XAxis};

pub(crate) async fn submit(app: &App, caller: Option<&Caller>, req: Request<Incoming>) -> HResult {
    let by = actor_of(caller)?;
    let (_, body) = read_body(req).await?;
    let spec = parse_json(&body)?;
    let id = app.queue.submit_many_as(vec![spec], &by).await?[0];
    Ok(json(StatusCode::CREATED, &SubmitResponse { id }))
}

pub(crate) async fn submit_batch(
    app: &App,
    caller: Option<&Caller>,
    req: Request<Incoming>,
) -> HResult {
    let by = actor_of(caller)?;
    let (_, body) = read_body(req).await?;
    let batch: SubmitBatch = parse_json(&body)?;
    if batch.jobs.len() > 100_000 {
        return Err(HttpError::bad("a batch holds at most 100000 jobs"));
    }
    let ids = app.queue.submit_many_as(batch.jobs, &by).await?;
    Ok(json(StatusCode::CREATED, &SubmitBatchResponse { ids }))
}

pub(crate) fn list_jobs(app: &App, caller: Option<&Caller>, q: &Query) -> HResult {
    let state: Option<JobState> = match q.get("state") {
        None | Some("") => None,
        Some(s) => Some(s.parse().map_err(HttpError::from)?),
    };
    let study = q.get("study").filter(|s| !s.is_empty());
    if let Some(s) = study {
        validate_name("study name", s)?;
    }
    // `mine=1`: the caller's own user's jobs; `owner=NAME`: that user's.
    let mine = match q.get("mine") {
        None | Some("" | "0" | "false") => false,
        Some("1" | "true") => true,
        Some(v) => return Err(HttpError::bad(format!("mine={v:?}: use 1 or 0"))),
    };
    let owner = match (mine, q.get("owner").filter(|s| !s.is_empty())) {
        (true, Some(_)) => {
            return Err(HttpError::bad("give mine=1 or owner=NAME, not both"));
        }
        (true, None) => Some(actor_of(caller)?.user),
        (false, Some(o)) => {
            validate_name("user name", o)?;
            Some(o.to_string())
        }
        (false, None) => None,
    };
    let owner = owner.as_deref();
    let limit = q.parse::<usize>("limit")?.unwrap_or(50).clamp(1, 1000);
    let before = q.parse::<u64>("before")?;
    let read = app.store.read()?;
    let (jobs, next_before) = read.list_jobs(state, study, owner, before, limit)?;
    let total = match (state, study, owner) {
        (None, Some(s), None) => read.study_len(s)?,
        (None, None, Some(o)) => read.owner_len(o)?,
        (Some(s), None, None) => read
            .job_counts()?
            .into_iter()
            .find(|(st, _)| *st == s)
            .map(|(_, n)| n)
            .unwrap_or(0),
        (None, None, None) => read.job_total()?,
        // Two filters: what this page holds (there is no index of both).
        _ => jobs.len() as u64,
    };
    ok(&JobList {
        jobs,
        next_before,
        total,
    })
}

pub(crate) fn get_job(app: &App, id: u64) -> HResult {
    let job = app
        .store
        .read()?
        .job(id)?
        .ok_or_else(|| HttpError::not_found(format!("job {id} not found")))?;
    ok(&job)
}

pub(crate) async fn cancel(app: &App, id: u64, actor: String) -> HResult {
    let job = app.queue.cancel_as(id, Some(actor)).await?;
    ok(&CancelResponse { job })
}

/// Whether a rows request asks for Apache Arrow: `?format=arrow`, or an `Accept` header that
/// names the Arrow stream type (and not JSON first).
fn wants_arrow(q: &Query, headers: &hyper::HeaderMap) -> Result<bool, HttpError> {
    match q.get("format") {
        Some("arrow") => return Ok(true),
        Some("json") => return Ok(false),
        None | Some("") => {}
        Some(other) => {
            return Err(HttpError::bad(format!(
                "format={other:?}: use json or arrow"
            )));
        }
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(accept
        .split(',')
        .next()
        .is_some_and(|first| first.trim().starts_with(ARROW_CONTENT_TYPE)))
}

pub(crate) async fn get_rows(app: &App, id: u64, q: &Query, headers: &hyper::HeaderMap) -> HResult {
    let arrow = wants_arrow(q, headers)?;
    let points = q.parse::<usize>("points")?;
    if points.is_some_and(|p| p < 2) {
        return Err(HttpError::bad("points must be at least 2"));
    }
    let attempt = q.parse::<u32>("attempt")?;
    let axis = match q.get("x") {
        None | Some("") | Some("seq") => XAxis::Seq,
        Some("generation") => XAxis::Generation,
        Some("evals") => XAxis::Evals,
        Some(other) => {
            return Err(HttpError::bad(format!(
                "x={other:?}: use seq, generation or evals"
            )));
        }
    };
    let from = q.parse::<f64>("from")?;
    let to = q.parse::<f64>("to")?;
    let range = match (from, to) {
        (None, None) => None,
        (f, t) => Some((
            axis,
            f.unwrap_or(f64::NEG_INFINITY),
            t.unwrap_or(f64::INFINITY),
        )),
    };
    let Some(points) = points else {
        return if arrow {
            stream_rows_arrow(app, id, attempt, range).await
        } else {
            stream_rows(app, id, attempt, range).await
        };
    };
    let store = app.store.clone();
    let resp = blocking(move || -> Result<RowsResponse, HttpError> {
        let read = store.read()?;
        let job = read
            .job(id)?
            .ok_or_else(|| HttpError::not_found(format!("job {id} not found")))?;
        let attempt = attempt.unwrap_or(job.attempt.max(1));
        // Count first (cheap: keys only would be cheaper still, but decode is shared).
        let total = if range.is_none() && attempt == job.attempt {
            job.progress.rows
        } else {
            read.for_each_row(id, attempt, range, |_| {})?
        };
        if Downsampler::needed(total, points) {
            return Ok(RowsResponse {
                job: id,
                attempt,
                total,
                downsampled: true,
                rows: read.downsample(id, attempt, range, total, points)?,
            });
        }
        let mut rows = Vec::new();
        read.for_each_row(id, attempt, range, |r| rows.push(r))?;
        Ok(RowsResponse {
            job: id,
            attempt,
            total: rows.len() as u64,
            downsampled: false,
            rows,
        })
    })
    .await?;
    if arrow {
        let bytes = blocking(move || {
            Ok(crate::export::arrow::rows_to_vec(
                &resp.rows,
                resp.job,
                resp.attempt,
                resp.downsampled,
            )?)
        })
        .await?;
        return Ok(bytes_response(StatusCode::OK, ARROW_CONTENT_TYPE, bytes));
    }
    ok(&resp)
}

/// A whole history (or a range of it) as an Apache Arrow IPC stream: the metric names are
/// collected first (a light pass over the stored rows), then the rows are read once more and
/// sent in record batches as they fill, so the transfer overlaps the reading and memory holds
/// one batch. As with JSON, a storage error mid-way cuts the connection.
async fn stream_rows_arrow(
    app: &App,
    id: u64,
    attempt: Option<u32>,
    range: Option<(XAxis, f64, f64)>,
) -> HResult {
    let store = app.store.clone();
    let (read, attempt, names, rows) = blocking(move || -> Result<_, HttpError> {
        let read = store.read()?;
        let job = read
            .job(id)?
            .ok_or_else(|| HttpError::not_found(format!("job {id} not found")))?;
        let attempt = attempt.unwrap_or(job.attempt.max(1));
        // The current attempt's columns are kept with its progress; otherwise (an earlier
        // attempt, a range, rows stored before the list was kept) a light pass finds them.
        // Its row count too, so a client can size its columns before the first batch.
        let (names, rows) = match (&job.progress.metrics, range) {
            (Some(names), None) if attempt == job.attempt => {
                (names.clone(), Some(job.progress.rows))
            }
            _ => (read.metric_names(id, attempt, range)?, None),
        };
        Ok((read, attempt, names, rows))
    })
    .await?;
    let mut headers = vec![("x-gaia-attempt", attempt.to_string())];
    if let Some(n) = rows {
        headers.push((crate::export::ROWS_HEADER, n.to_string()));
    }
    let (res, tx) = stream_response(ARROW_CONTENT_TYPE, &headers);
    tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(ROWS_CHUNK, ChannelWriter { tx: tx.clone() });
        let meta = crate::export::arrow::row_meta(id, attempt, false);
        let result = (|| -> Result<(), crate::error::Error> {
            let mut w = crate::export::arrow::RowWriter::new(out, &names, &meta)?;
            let mut failed = None;
            read.for_each_row_ref(id, attempt, range, |row| {
                if failed.is_none()
                    && let Err(e) = w.push(&row)
                {
                    failed = Some(e);
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            let (_, mut out) = w.finish()?;
            std::io::Write::flush(&mut out).map_err(crate::export::write_err)?;
            Ok(())
        })();
        if let Err(e) = result {
            tx.fail();
            if !e.to_string().contains(GONE) {
                eprintln!("gaia serve: the Arrow rows of job {id} failed: {e}");
            }
        }
    });
    Ok(res)
}

/// Bytes of JSON per chunk of a streamed row answer.
const ROWS_CHUNK: usize = 256 << 10;

/// A whole history (or a range of it) as JSON, written while the rows are read and sent in
/// chunks: no `Vec<Row>` of the whole job, and the transfer overlaps the reading. `total` comes
/// last, once counted; field order does not matter to JSON readers. A storage error after the
/// answer has started cuts the connection, so no client takes a short answer for a whole one.
async fn stream_rows(
    app: &App,
    id: u64,
    attempt: Option<u32>,
    range: Option<(XAxis, f64, f64)>,
) -> HResult {
    let store = app.store.clone();
    let (read, attempt) = blocking(move || -> Result<_, HttpError> {
        let read = store.read()?;
        let job = read
            .job(id)?
            .ok_or_else(|| HttpError::not_found(format!("job {id} not found")))?;
        let attempt = attempt.unwrap_or(job.attempt.max(1));
        Ok((read, attempt))
    })
    .await?;
    let (res, tx) = stream_response("application/json", &[]);
    tokio::task::spawn_blocking(move || {
        let fresh = || Vec::with_capacity(ROWS_CHUNK + 4096);
        let mut buf = fresh();
        buf.extend_from_slice(
            format!(r#"{{"job":{id},"attempt":{attempt},"downsampled":false,"rows":["#).as_bytes(),
        );
        let mut n = 0u64;
        let mut gone = false;
        // redb panics on some damaged pages: that is a failed read too, not a dead thread.
        let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            read.for_each_row(id, attempt, range, |row| {
                if gone {
                    return;
                }
                if n > 0 {
                    buf.push(b',');
                }
                serde_json::to_writer(&mut buf, &row).expect("rows serialize to JSON");
                n += 1;
                if buf.len() >= ROWS_CHUNK {
                    let chunk = std::mem::replace(&mut buf, fresh());
                    gone = tx.blocking_send(chunk.into()).is_err();
                }
            })
        }))
        .unwrap_or_else(|p| Err(crate::error::StoreError::from_panic(p.as_ref())));
        if let Err(e) = scanned {
            eprintln!("gaia serve: reading the rows of job {id} failed: {e}");
            tx.fail();
            return;
        }
        if !gone {
            buf.extend_from_slice(format!(r#"],"total":{n}}}"#).as_bytes());
            let _ = tx.blocking_send(buf.into());
        }
    });
    Ok(res)
}

pub(crate) async fn post_rows(app: &App, id: u64, req: Request<Incoming>) -> HResult {
    let postcard = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(POSTCARD_CONTENT_TYPE));
    let (_, body) = read_body(req).await?;
    let batch: RowBatch = if postcard {
        crate::protocol::decode_postcard(&body).map_err(HttpError::bad)?
    } else {
        parse_json(&body)?
    };
    let ack = app.queue.add_rows(id, batch).await?;
    app.queue.metrics().row_bytes.inc_by(body.len() as u64);
    ok(&ack)
}

pub(crate) fn get_logs(app: &App, id: u64, q: &Query) -> HResult {
    let read = app.store.read()?;
    let job = read
        .job(id)?
        .ok_or_else(|| HttpError::not_found(format!("job {id} not found")))?;
    let limit = q.parse::<usize>("limit")?.unwrap_or(1000).clamp(1, 10_000);
    let lines = match (q.parse::<u64>("after")?, q.parse::<usize>("tail")?) {
        (_, Some(n)) => read.log_tail(id, n.clamp(1, 10_000))?,
        (after, None) => read.logs(id, after.unwrap_or(0), limit)?,
    };
    let next = lines
        .last()
        .map(|l| l.seq + 1)
        .unwrap_or(q.parse::<u64>("after")?.unwrap_or(job.log_lines));
    ok(&LogsResponse {
        lines,
        next,
        done: job.state.is_terminal(),
    })
}

pub(crate) async fn post_logs(app: &App, id: u64, req: Request<Incoming>) -> HResult {
    let (_, body) = read_body(req).await?;
    let batch: LogBatch = parse_json(&body)?;
    let cancel = app.queue.add_logs(id, batch).await?;
    ok(&LogAck { cancel })
}

pub(crate) async fn complete(app: &App, id: u64, req: Request<Incoming>) -> HResult {
    let (_, body) = read_body(req).await?;
    let c: CompleteRequest = parse_json(&body)?;
    ok(&app.queue.complete(id, c).await?)
}

pub(crate) async fn requeue(app: &App, id: u64, req: Request<Incoming>) -> HResult {
    let (_, body) = read_body(req).await?;
    let r: RequeueRequest = parse_json(&body)?;
    ok(&app.queue.requeue(id, r).await?)
}
