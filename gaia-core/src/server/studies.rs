//! Studies: submit one (a queue operation), list them with their progress, one study's report.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::App;
use super::auth::{Caller, actor_of};
use super::http::{HResult, HttpError, blocking, json, ok, parse_json, read_body};
use crate::model::{now_ms, validate_name};
use crate::protocol::{StudyList, StudySubmit, StudySummary};
use crate::study;

pub(crate) async fn submit_study(
    app: &App,
    caller: Option<&Caller>,
    req: Request<Incoming>,
) -> HResult {
    let by = actor_of(caller)?;
    let (_, body) = read_body(req).await?;
    let s: StudySubmit = parse_json(&body)?;
    let r = app.queue.submit_study_as(s, &by).await?;
    Ok(json(StatusCode::CREATED, &r))
}

pub(crate) async fn list_studies(app: &App) -> HResult {
    let store = app.store.clone();
    let list = blocking(move || {
        let read = store.read()?;
        let now = now_ms();
        let mut studies = Vec::new();
        for name in read.study_names()? {
            let record = read.study(&name)?;
            let jobs = read.study_jobs(&name)?;
            studies.push(StudySummary {
                owner: record.as_ref().map(|r| r.owner.clone()),
                created_at: record
                    .map(|r| r.created_at)
                    .or_else(|| jobs.iter().map(|j| j.submitted_at).min()),
                progress: study::progress(&jobs, now),
                name,
            });
        }
        studies.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(StudyList { studies })
    })
    .await?;
    ok(&list)
}

pub(crate) async fn get_study(app: &App, name: &str) -> HResult {
    validate_name("study name", name)?;
    let store = app.store.clone();
    let name = name.to_string();
    let report = blocking(move || {
        let read = store.read()?;
        let record = read.study(&name)?;
        let jobs = read.study_jobs(&name)?;
        if record.is_none() && jobs.is_empty() {
            return Err(HttpError::not_found(format!("study {name:?} not found")));
        }
        let cells = read.cells(&name)?;
        Ok(study::report(&name, record, &jobs, &cells, now_ms()))
    })
    .await?;
    ok(&report)
}
