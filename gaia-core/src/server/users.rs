//! Users: add one (with their first token), list them, change a share or limit, remove one;
//! and the usage report (per user: running, queued, worker and GPU hours, share, priority).

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::App;
use super::http::{HResult, HttpError, Query, blocking, json, ok, parse_json, read_body};
use crate::error::RequestError;
use crate::fairshare::{self, Standing};
use crate::model::{ADMIN_USER, Scope, TokenInfo, UserInfo, now_ms, validate_name};
use crate::protocol::{
    TokenCreated, UsageReport, UserAdd, UserAdded, UserList, UserRemoved, UserUpdate, UserUsage,
};

/// Tells the queue whether running limits exist (it wakes waiting claimers when jobs end).
fn refresh_limits(app: &App) -> Result<(), HttpError> {
    let any = app
        .store
        .read()?
        .users()?
        .iter()
        .any(|u| u.max_running.is_some());
    app.queue.set_running_limits(any);
    Ok(())
}

pub(crate) async fn add(app: &App, req: Request<Incoming>) -> HResult {
    let (_, body) = read_body(req).await?;
    let a: UserAdd = parse_json(&body)?;
    validate_name("user name", &a.name)?;
    if a.name == ADMIN_USER {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            format!(
                "{ADMIN_USER} is the server's own user (its token is the admin token); change \
                 its share with gaia user set {ADMIN_USER} --share N"
            ),
        ));
    }
    let now = now_ms();
    let user = UserInfo {
        share: a.share.unwrap_or(1.0),
        max_running: a.max_running,
        max_queued: a.max_queued,
        ..UserInfo::new(&a.name, now)
    };
    user.validate()?;
    let token_name = a.token_name.clone().unwrap_or_else(|| a.name.clone());
    validate_name("token name", &token_name)?;
    let secret = super::auth::new_token();
    let info = TokenInfo {
        name: token_name.clone(),
        scope: Scope::Submit,
        created_at: now,
        user: a.name.clone(),
    };
    let (u, t) = (user.clone(), secret.clone());
    app.store
        .write(move |tx| {
            if tx.user(&u.name)?.is_some() {
                return Err(RequestError::Conflict(format!(
                    "user {} exists (change them with gaia user set {})",
                    u.name, u.name
                ))
                .into());
            }
            // User and token together, or neither: the token first, as its name may be taken
            // (refused before anything is written); the user's checks come before its write.
            tx.add_token(&t, &info)?;
            tx.save_user(&u)
        })
        .await?;
    refresh_limits(app)?;
    Ok(json(
        StatusCode::CREATED,
        &UserAdded {
            user,
            token: TokenCreated {
                name: token_name,
                scope: Scope::Submit,
                token: secret,
                user: a.name,
            },
        },
    ))
}

pub(crate) fn list(app: &App) -> HResult {
    let mut users = app.store.read()?.users()?;
    if !users.iter().any(|u| u.name == ADMIN_USER) {
        users.push(UserInfo::new(ADMIN_USER, 0));
        users.sort_by(|a, b| a.name.cmp(&b.name));
    }
    ok(&UserList { users })
}

pub(crate) async fn update(app: &App, name: &str, req: Request<Incoming>) -> HResult {
    validate_name("user name", name)?;
    let (_, body) = read_body(req).await?;
    let up: UserUpdate = parse_json(&body)?;
    let name = name.to_string();
    let user = app
        .store
        .write(move |tx| {
            let mut user = match tx.user(&name)? {
                Some(u) => u,
                // The admin user has no record until it is given one.
                None if name == ADMIN_USER => UserInfo::new(ADMIN_USER, now_ms()),
                None => {
                    return Err(RequestError::NotFound(format!(
                        "user {name:?} (add them with gaia user add {name})"
                    ))
                    .into());
                }
            };
            if let Some(s) = up.share {
                user.share = s;
            }
            // 0 removes a limit.
            if let Some(m) = up.max_running {
                user.max_running = (m > 0).then_some(m);
            }
            if let Some(m) = up.max_queued {
                user.max_queued = (m > 0).then_some(m);
            }
            tx.save_user(&user)?;
            Ok(user)
        })
        .await?;
    refresh_limits(app)?;
    ok(&user)
}

pub(crate) async fn remove(app: &App, name: &str) -> HResult {
    validate_name("user name", name)?;
    if name == ADMIN_USER {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            format!("{ADMIN_USER} is the server's own user and cannot be removed"),
        ));
    }
    let n = name.to_string();
    let revoked = app
        .store
        .write(move |tx| {
            if tx.user(&n)?.is_none() {
                return Err(RequestError::NotFound(format!("user {n:?}")).into());
            }
            let counts = tx.user_counts(&n)?;
            if counts.queued + counts.running > 0 {
                return Err(RequestError::Conflict(format!(
                    "user {n} has {} queued and {} running jobs: cancel them (or let them \
                     end) first",
                    counts.queued, counts.running
                ))
                .into());
            }
            let mut revoked = Vec::new();
            for t in tx.tokens_of(&n)? {
                tx.revoke_token(&t)?;
                revoked.push(t);
            }
            tx.delete_user(&n)?;
            Ok(revoked)
        })
        .await?;
    refresh_limits(app)?;
    ok(&UserRemoved {
        removed: name.to_string(),
        revoked_tokens: revoked,
    })
}

pub(crate) async fn usage(app: &App, q: &Query) -> HResult {
    let since = q.parse::<u64>("since")?;
    let store = app.store.clone();
    let config = app.config.queue.clone();
    let report = blocking(move || -> Result<UsageReport, HttpError> {
        let read = store.read()?;
        let now = now_ms();
        let half_life = config.usage_half_life;
        let mut lines = Vec::new();
        for name in read.known_users()? {
            let user = read.user_or_default(&name)?;
            let counts = read.user_counts(&name)?;
            let rec = read.usage_record(&name)?;
            // Running jobs count from their start, or from the window's start if later.
            let from = since.unwrap_or(0);
            let running_secs = |n: u64, sum: u64| {
                let clipped = fairshare::in_progress_secs(n, sum, now);
                clipped.min(n as f64 * now.saturating_sub(from) as f64 / 1000.0)
            };
            let (worker_ms, gpu_ms) = match since {
                Some(s) => read.usage_since(&name, s)?,
                None => (rec.total_worker_ms, rec.total_gpu_ms),
            };
            let standing = Standing {
                share: user.share,
                recent: rec.recent,
                running: counts.running,
                running_since_sum: counts.running_since,
            };
            lines.push(UserUsage {
                user: name,
                share: user.share,
                max_running: user.max_running,
                max_queued: user.max_queued,
                running: counts.running,
                queued: counts.queued,
                worker_secs: worker_ms as f64 / 1000.0
                    + running_secs(counts.running, counts.running_since),
                gpu_secs: gpu_ms as f64 / 1000.0
                    + running_secs(counts.running_gpus, counts.running_gpu_since),
                recent_worker_secs: standing.usage(now, half_life),
                usage_fraction: 0.0,
                share_fraction: 0.0,
                effective_priority: 0.0,
            });
        }
        let pairs: Vec<(f64, f64)> = lines
            .iter()
            .map(|l| (l.recent_worker_secs, l.share))
            .collect();
        let priorities = fairshare::effective_priorities(&pairs);
        let total_usage: f64 = pairs.iter().map(|p| p.0).sum();
        let total_share: f64 = pairs.iter().map(|p| p.1).sum();
        for (l, p) in lines.iter_mut().zip(priorities) {
            l.effective_priority = p;
            l.usage_fraction = if total_usage > 0.0 {
                l.recent_worker_secs / total_usage
            } else {
                0.0
            };
            l.share_fraction = if total_share > 0.0 {
                l.share / total_share
            } else {
                0.0
            };
        }
        // Served next first: lowest recent usage per share.
        lines.sort_by(|a, b| {
            (a.recent_worker_secs / a.share)
                .total_cmp(&(b.recent_worker_secs / b.share))
                .then_with(|| a.user.cmp(&b.user))
        });
        Ok(UsageReport {
            since,
            now,
            fair_share: config.fair_share,
            half_life_secs: half_life.as_secs_f64(),
            users: lines,
        })
    })
    .await?;
    ok(&report)
}
