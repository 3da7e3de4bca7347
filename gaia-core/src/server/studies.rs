//! Studies: submit one (a queue operation), list them with their progress, one study's report;
//! compare their methods (JSON, figures, the per-run scores); add seeds or retry failed runs
//! (queue operations, through the study's record).

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::App;
use super::auth::{Caller, actor_of};
use super::http::{
    HResult, HttpError, Query, blocking, bytes_response, json, ok, parse_json, read_body,
};
use crate::export::png::compare::CompareFigure;
use crate::model::{now_ms, validate_name};
use crate::protocol::{Comparison, StudyExtend, StudyList, StudyRetry, StudySubmit, StudySummary};
use crate::study;
use crate::study::compare::{CompareOptions, StudyRuns};
use crate::study::more::More;

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

/// Reads the studies a comparison names (the path's, then `with=`) from one snapshot.
async fn compare_input(
    app: &App,
    name: &str,
    opts: &CompareOptions,
) -> Result<Vec<StudyRuns>, HttpError> {
    validate_name("study name", name)?;
    let mut names = vec![name.to_string()];
    names.extend(opts.with.iter().filter(|w| *w != name).cloned());
    let store = app.store.clone();
    let curves = opts.needs_curves();
    blocking(move || {
        let read = store.read()?;
        for n in &names {
            if !read.has_study(n)? {
                return Err(HttpError::not_found(format!("study {n:?} not found")));
            }
        }
        Ok(read.compare_input(&names, curves)?)
    })
    .await
}

/// Compares on a blocking thread (the bootstrap keeps a core busy for a while).
async fn comparison(app: &App, name: &str, opts: CompareOptions) -> Result<Comparison, HttpError> {
    let input = compare_input(app, name, &opts).await?;
    blocking(move || Ok(study::compare::compare(&input, &opts)?)).await
}

/// `GET /api/v1/studies/{name}/compare`.
pub(crate) async fn compare(app: &App, name: &str, q: &Query) -> HResult {
    let opts = CompareOptions::from_query(|k| q.get(k))?;
    ok(&comparison(app, name, opts).await?)
}

/// `GET /api/v1/studies/{name}/compare.png?figure=...`.
pub(crate) async fn compare_figure(app: &App, name: &str, q: &Query) -> HResult {
    let kind: CompareFigure = q
        .get("figure")
        .ok_or_else(|| {
            HttpError::bad("figure=aggregate|profile|improvement|curves|ecdf is required")
        })?
        .parse()?;
    let mut opts = CompareOptions::from_query(|k| q.get(k))?;
    kind.require(&mut opts);
    let png = super::export::png_options(q)?;
    let c = comparison(app, name, opts).await?;
    // One render at a time: each holds its whole canvas in memory and keeps a core busy.
    let _turn = app.png_renders.acquire().await;
    let bytes =
        blocking(move || Ok(crate::export::png::render_comparison(&c, kind, &png)?)).await?;
    let mut res = bytes_response(StatusCode::OK, "image/png", bytes);
    if let Ok(v) = format!(
        "attachment; filename=\"study-{name}-{}.png\"",
        kind.as_str()
    )
    .parse()
    {
        res.headers_mut()
            .insert(hyper::header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// `GET /api/v1/studies/{name}/scores.json`: every scored run.
pub(crate) async fn scores(app: &App, name: &str, q: &Query) -> HResult {
    let opts = CompareOptions::from_query(|k| q.get(k))?;
    let input = compare_input(app, name, &opts).await?;
    let out = blocking(move || Ok(study::compare::scores(&input, &opts))).await?;
    ok(&out)
}

/// `POST /api/v1/studies/{name}/extend`: more seeds on the study's grid.
pub(crate) async fn extend(
    app: &App,
    caller: Option<&Caller>,
    name: &str,
    req: Request<Incoming>,
) -> HResult {
    let by = actor_of(caller)?;
    let (_, body) = read_body(req).await?;
    let r: StudyExtend = parse_json(&body)?;
    let more = More::Extend {
        seeds: r.seeds.parse()?,
        confirm_large: r.confirm_large,
    };
    let done = app.queue.study_more_as(name, more, r.dry_run, &by).await?;
    let status = if done.dry_run {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json(status, &done))
}

/// `POST /api/v1/studies/{name}/retry`: the study's failed runs again.
pub(crate) async fn retry(
    app: &App,
    caller: Option<&Caller>,
    name: &str,
    req: Request<Incoming>,
) -> HResult {
    let by = actor_of(caller)?;
    let (_, body) = read_body(req).await?;
    let r: StudyRetry = if body.iter().all(u8::is_ascii_whitespace) {
        StudyRetry::default()
    } else {
        parse_json(&body)?
    };
    let more = More::Retry {
        cancelled: r.cancelled,
    };
    let done = app.queue.study_more_as(name, more, r.dry_run, &by).await?;
    let status = if done.dry_run {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json(status, &done))
}

#[cfg(test)]
mod tests {
    use super::super::http::query_pairs;
    use crate::stats::Bootstrap;
    use crate::study::compare::{CompareOptions, ScoreKind};

    #[test]
    fn options_go_through_the_query_and_back() {
        let o = CompareOptions {
            with: vec!["other".into()],
            score: ScoreKind::Auc,
            norms: vec!["CartPole-v1=22:500".parse().unwrap()],
            by_env: true,
            target: Some("0.5,sphere=-1e-3".parse().unwrap()),
            seeds_needed: Some(0.05),
            profile: true,
            curves: true,
            boot: Bootstrap {
                resamples: 500,
                confidence: 0.95,
                seed: 3,
            },
        };
        let q = o.query();
        let pairs = query_pairs(Some(&q));
        let back = CompareOptions::from_query(|k| {
            pairs
                .iter()
                .find(|(pk, _)| pk == k)
                .map(|(_, v)| v.as_str())
        })
        .unwrap();
        assert_eq!(back, o);
        assert_eq!(CompareOptions::default().query(), "");
        for bad in [
            "score=x",
            "by=method",
            "resamples=0",
            "seeds_needed=-1",
            "norm=a=1",
            "target=x",
        ] {
            let pairs = query_pairs(Some(bad));
            let r = CompareOptions::from_query(|k| {
                pairs
                    .iter()
                    .find(|(pk, _)| pk == k)
                    .map(|(_, v)| v.as_str())
            });
            assert!(r.is_err(), "{bad}");
        }
    }
}
