//! The activity log and the live event stream (server-sent events).
//!
//! `GET /api/v1/events` with `Accept: text/event-stream` streams; otherwise it answers the
//! stored events after `?after=` as JSON. A stream first replays stored events after
//! `Last-Event-ID` (or `?after=`), then sends live ones: a client that reconnects misses no
//! stored event. Rows, logs, job and worker updates are sent live only (event types `rows`,
//! `logs`, `job`, `worker`), without ids; stored events have type `event` and an id.

use bytes::Bytes;
use hyper::Request;
use hyper::body::Incoming;
use tokio::sync::broadcast::error::RecvError;

use super::App;
use super::http::{HResult, HttpError, Query, ok, stream_response};
use crate::protocol::{EventList, LogsEvent, RowsEvent};
use crate::queue::Live;

fn sse(kind: &str, id: Option<u64>, data: &impl serde::Serialize) -> Bytes {
    let data = serde_json::to_string(data).expect("events serialize");
    let mut s = String::with_capacity(data.len() + 32);
    if let Some(id) = id {
        s.push_str(&format!("id: {id}\n"));
    }
    s.push_str(&format!("event: {kind}\ndata: {data}\n\n"));
    Bytes::from(s)
}

/// A yes/no query parameter: `1`/`true` or `0`/`false`; None when absent or empty. Anything
/// else is a 400, so a typo (`rows=no`) is not silently read as a yes.
fn flag(q: &Query, name: &str) -> Result<Option<bool>, HttpError> {
    match q.get(name) {
        None | Some("") => Ok(None),
        Some("1") | Some("true") => Ok(Some(true)),
        Some("0") | Some("false") => Ok(Some(false)),
        Some(v) => Err(HttpError::bad(format!("{name}={v:?}: use 1 or 0"))),
    }
}

pub(crate) fn events(app: &App, req: &Request<Incoming>, q: &Query) -> HResult {
    let wants_stream = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
        || flag(q, "stream")? == Some(true);
    let last_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // Every parameter is checked, whether this answer uses it or not: a typo is a 400.
    let job_filter = q.parse::<u64>("job")?;
    let want_rows = flag(q, "rows")?.unwrap_or(true);
    let want_logs = flag(q, "logs")?.unwrap_or(job_filter.is_some());
    let after = match last_id {
        Some(id) => Some(id),
        None => q.parse::<u64>("after")?,
    };
    if !wants_stream {
        let limit = q.parse::<usize>("limit")?.unwrap_or(200).clamp(1, 5000);
        let read = app.store.read()?;
        let events = match after {
            Some(a) => read.events_after(a, limit)?,
            None => read.recent_events(limit)?,
        };
        return ok(&EventList { events });
    }
    // Subscribe before reading the backlog so nothing falls between the two.
    let mut live = app.queue.subscribe();
    let store = app.store.clone();
    let stop = app.stopped();
    let keepalive = app.config.event_keepalive;
    let (res, tx) = stream_response(
        "text/event-stream",
        &[("x-accel-buffering", "no".to_string())],
    );
    let backlog = match after {
        Some(a) => store.read()?.events_after(a, 10_000)?,
        None => Vec::new(),
    };
    tokio::spawn(async move {
        let mut last = after.unwrap_or(0);
        // Tell the browser how soon to reconnect.
        if tx
            .send(Bytes::from_static(b"retry: 2000\n\n"))
            .await
            .is_err()
        {
            return;
        }
        for ev in backlog {
            last = ev.id;
            if tx.send(sse("event", Some(ev.id), &ev)).await.is_err() {
                return;
            }
        }
        let mut ping = tokio::time::interval(keepalive);
        tokio::pin!(stop);
        loop {
            let msg = tokio::select! {
                m = live.recv() => m,
                _ = ping.tick() => {
                    if tx.send(Bytes::from_static(b": ping\n\n")).await.is_err() { return; }
                    continue;
                }
                _ = &mut stop => return,
            };
            let bytes = match msg {
                Ok(Live::Event(ev)) => {
                    if ev.id <= last {
                        continue;
                    }
                    last = ev.id;
                    sse("event", Some(ev.id), &ev)
                }
                Ok(Live::Rows { job, attempt, rows }) => {
                    if !want_rows || job_filter.is_some_and(|j| j != job) {
                        continue;
                    }
                    sse(
                        "rows",
                        None,
                        &RowsEvent {
                            job,
                            attempt,
                            rows: std::borrow::Cow::Borrowed(&rows[..]),
                        },
                    )
                }
                Ok(Live::Logs { job, lines }) => {
                    if !want_logs || job_filter.is_some_and(|j| j != job) {
                        continue;
                    }
                    sse(
                        "logs",
                        None,
                        &LogsEvent {
                            job,
                            lines: std::borrow::Cow::Borrowed(&lines[..]),
                        },
                    )
                }
                Ok(Live::Job(j)) => {
                    if job_filter.is_some_and(|f| f != j.id) {
                        continue;
                    }
                    sse("job", None, &*j)
                }
                Ok(Live::Worker(w)) => sse("worker", None, &*w),
                Err(RecvError::Lagged(_)) => {
                    // This client fell behind: catch up on stored events, and tell it to refetch
                    // what is not stored as events.
                    let Ok(read) = store.read() else { return };
                    let Ok(missed) = read.events_after(last, 10_000) else {
                        return;
                    };
                    for ev in missed {
                        last = ev.id;
                        if tx.send(sse("event", Some(ev.id), &ev)).await.is_err() {
                            return;
                        }
                    }
                    sse("resync", None, &serde_json::json!({}))
                }
                Err(RecvError::Closed) => return,
            };
            if tx.send(bytes).await.is_err() {
                return;
            }
        }
    });
    Ok(res)
}
