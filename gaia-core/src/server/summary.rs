//! What the dashboard's overview needs in one cheap call, and who the caller is.
//!
//! - `GET /api/v1/whoami`: the presented token's scope and name, so the dashboard can disable
//!   what the token may not do.
//! - `GET /api/v1/summary[?study=S]`: job counts per state, workers per state, and per
//!   (environment, method) the best score and the spread of final scores across seeds.
//!
//! The summary scans the jobs table once, decoding only the few fields it needs (borrowed, no
//! allocation per job beyond the group keys), on a blocking thread: 10,000 jobs take a few
//! milliseconds in a release build.

use std::borrow::Cow;
use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::App;
use super::http::{HResult, HttpError, Query, ok};
use crate::model::{JobKind, JobState, Scope, WorkerState, validate_name};

/// Final scores kept per group for the dashboard's distribution charts (an even sample beyond).
pub const MAX_FINALS: usize = 1000;

/// `GET /api/v1/whoami` answer.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct WhoAmI {
    pub scope: Scope,
    /// The token's name (`admin` for the server's admin token).
    pub name: String,
    /// The server's version.
    pub version: String,
}

/// Scores of one (environment, method) pair.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Group {
    pub env: String,
    pub method: String,
    /// Experiments of this pair, in any state.
    pub jobs: u64,
    pub running: u64,
    pub queued: u64,
    /// Succeeded jobs that reported a score.
    pub finished: u64,
    /// Highest best-ever of any job of the pair (running ones included), and which job.
    pub best: Option<f64>,
    pub best_job: Option<u64>,
    /// Over the finished jobs' final best-ever: mean, sample standard deviation (n − 1, as
    /// `gaia study`; None for a single seed), min, quartiles, max.
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub min: Option<f64>,
    pub q1: Option<f64>,
    pub median: Option<f64>,
    pub q3: Option<f64>,
    pub max: Option<f64>,
    /// The finished jobs' final scores (at most [`MAX_FINALS`], evenly sampled), ascending.
    pub finals: Vec<f64>,
}

/// `GET /api/v1/summary` answer.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Summary {
    /// Jobs per state (every state present), over the whole server or the study.
    pub jobs: BTreeMap<String, u64>,
    pub total: u64,
    /// Workers per state (every state present).
    pub workers: BTreeMap<String, u64>,
    /// Per (environment, method), sorted by environment then method.
    pub groups: Vec<Group>,
    /// Milliseconds the scan took on the server.
    pub took_ms: f64,
}

pub(crate) fn whoami(app: &App, req: Request<Incoming>, q: &Query) -> HResult {
    let (parts, _) = req.into_parts();
    let token = super::auth::presented(&parts, q.get("token"))
        .ok_or_else(|| HttpError::new(StatusCode::UNAUTHORIZED, "missing token"))?;
    let scope = super::auth::scope_of(app, &token)
        .ok_or_else(|| HttpError::new(StatusCode::UNAUTHORIZED, "invalid token"))?;
    let hash = super::auth::hash(&token);
    let name = if hash == app.admin_hash {
        "admin".to_string()
    } else {
        app.store
            .read()?
            .token(&hex::encode(hash))?
            .map(|t| t.name)
            .unwrap_or_default()
    };
    ok(&WhoAmI {
        scope,
        name,
        version: crate::VERSION.to_string(),
    })
}

#[derive(Deserialize)]
struct LiteJob<'a> {
    #[serde(default)]
    id: u64,
    #[serde(borrow)]
    spec: LiteSpec<'a>,
    state: JobState,
    #[serde(default)]
    progress: LiteProgress,
}

#[derive(Deserialize)]
struct LiteSpec<'a> {
    #[serde(default)]
    kind: JobKind,
    #[serde(default, borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    env: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    study: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct LiteProgress {
    #[serde(default)]
    best: Option<f64>,
    #[serde(default)]
    best_ever: Option<f64>,
}

#[derive(Default)]
struct Acc {
    group: Group,
    finals: Vec<f64>,
}

pub(crate) async fn summary(app: &App, q: &Query) -> HResult {
    let study = q.get("study").filter(|s| !s.is_empty()).map(str::to_string);
    if let Some(s) = &study {
        validate_name("study name", s)?;
    }
    let store = app.store.clone();
    let workers = app.queue.workers();
    let mut summary = tokio::task::spawn_blocking(move || -> Result<Summary, HttpError> {
        let started = std::time::Instant::now();
        let read = store.read()?;
        // A study nobody submitted is a mistyped name, not an empty study.
        if let Some(s) = &study
            && !read.has_study(s)?
        {
            return Err(HttpError::not_found(format!("study {s:?} not found")));
        }
        let mut counts: BTreeMap<String, u64> = JobState::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect();
        // env → method → scores; looked up by &str, so only a new group allocates.
        let mut groups: BTreeMap<String, BTreeMap<String, Acc>> = BTreeMap::new();
        let mut total = 0;
        for entry in read.jobs.iter().map_err(crate::error::StoreError::from)? {
            let (_, v) = entry.map_err(crate::error::StoreError::from)?;
            let Ok(job) = serde_json::from_slice::<LiteJob<'_>>(v.value()) else {
                continue;
            };
            if study.is_some() && job.spec.study.as_deref() != study.as_deref() {
                continue;
            }
            total += 1;
            *counts.entry(job.state.as_str().to_string()).or_default() += 1;
            if job.spec.kind != JobKind::Experiment {
                continue;
            }
            let env = job.spec.env.as_deref().unwrap_or(crate::model::DEFAULT_ENV);
            let method = job.spec.method.as_deref().unwrap_or("?");
            if !groups.contains_key(env) {
                groups.insert(env.to_string(), BTreeMap::new());
            }
            let by_method = groups.get_mut(env).expect("inserted above");
            if !by_method.contains_key(method) {
                let group = Group {
                    env: env.to_string(),
                    method: method.to_string(),
                    ..Group::default()
                };
                by_method.insert(
                    method.to_string(),
                    Acc {
                        group,
                        finals: Vec::new(),
                    },
                );
            }
            let acc = by_method.get_mut(method).expect("inserted above");
            let g = &mut acc.group;
            g.jobs += 1;
            match job.state {
                JobState::Running => g.running += 1,
                JobState::Queued => g.queued += 1,
                _ => {}
            }
            let score = job
                .progress
                .best_ever
                .or(job.progress.best)
                .filter(|s| s.is_finite());
            if let Some(s) = score {
                if g.best.is_none_or(|b| s > b) {
                    g.best = Some(s);
                    g.best_job = Some(job.id);
                }
                if job.state == JobState::Succeeded {
                    acc.finals.push(s);
                }
            }
        }
        let groups = groups
            .into_values()
            .flat_map(BTreeMap::into_values)
            .map(|Acc { mut group, finals }| {
                describe(&mut group, finals);
                group
            })
            .collect();
        Ok(Summary {
            jobs: counts,
            total,
            workers: BTreeMap::new(),
            groups,
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    })
    .await
    .map_err(|e| {
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("summary failed: {e}"),
        )
    })??;
    for s in [
        WorkerState::Idle,
        WorkerState::Busy,
        WorkerState::Draining,
        WorkerState::Offline,
    ] {
        summary.workers.insert(s.as_str().to_string(), 0);
    }
    for w in workers {
        *summary
            .workers
            .entry(w.state.as_str().to_string())
            .or_default() += 1;
    }
    ok(&summary)
}

/// Fills a group's statistics from its final scores.
fn describe(g: &mut Group, mut finals: Vec<f64>) {
    g.finished = finals.len() as u64;
    if finals.is_empty() {
        return;
    }
    finals.sort_by(f64::total_cmp);
    // The same mean ± std as `gaia study`: sample standard deviation (n − 1), none for one seed.
    let stats = crate::stats::mean_std(&finals);
    let five = crate::stats::five_numbers(&finals);
    g.mean = stats.map(|m| m.mean);
    g.std = stats.and_then(|m| m.std);
    g.min = five.map(|f| f.min);
    g.q1 = five.map(|f| f.q1);
    g.median = five.map(|f| f.median);
    g.q3 = five.map(|f| f.q3);
    g.max = five.map(|f| f.max);
    g.finals = if finals.len() <= MAX_FINALS {
        finals
    } else {
        let step = finals.len() as f64 / MAX_FINALS as f64;
        (0..MAX_FINALS)
            .map(|i| finals[(i as f64 * step) as usize])
            .collect()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_final_scores() {
        let mut g = Group::default();
        describe(&mut g, vec![4.0, 1.0, 3.0, 2.0, 5.0]);
        assert_eq!(g.finished, 5);
        assert_eq!(g.min, Some(1.0));
        assert_eq!(g.max, Some(5.0));
        assert_eq!(g.median, Some(3.0));
        assert_eq!(g.q1, Some(2.0));
        assert_eq!(g.q3, Some(4.0));
        assert_eq!(g.mean, Some(3.0));
        // Sample std (n − 1): sqrt(10 / 4), as `gaia study` says.
        assert!((g.std.unwrap() - 2.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(g.finals, vec![1.0, 2.0, 3.0, 4.0, 5.0]);

        let mut many = Group::default();
        describe(&mut many, (0..5000).map(f64::from).collect());
        assert_eq!(many.finals.len(), MAX_FINALS);
        assert_eq!(many.finished, 5000);
        assert!(many.finals.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn std_over_seeds_is_the_one_gaia_study_shows() {
        // `gaia study` sees the seeds in job order, the summary sorted: the same numbers.
        for finals in [
            vec![300.0, 100.0, 200.0],
            vec![500.0, 500.0],
            vec![-9.6e-9, -7.8e-9, -6.8e-9, -0.12],
            vec![42.0],
        ] {
            let mut g = Group::default();
            describe(&mut g, finals.clone());
            let study = crate::stats::mean_std(&finals).unwrap();
            assert_eq!(g.mean, Some(study.mean), "{finals:?}");
            assert_eq!(g.std, study.std, "{finals:?}");
        }
        // One seed: no spread to speak of, in both.
        let mut one = Group::default();
        describe(&mut one, vec![42.0]);
        assert_eq!((one.mean, one.std), (Some(42.0), None));
        assert_eq!(crate::stats::mean_std(&[42.0]).unwrap().std, None);
        // 100, 200, 300: sample std 100 (population std would be 81.6).
        let mut g = Group::default();
        describe(&mut g, vec![300.0, 100.0, 200.0]);
        assert_eq!(g.std, Some(100.0));
    }
}
