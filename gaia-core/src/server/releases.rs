//! Releases over HTTP: upload (admin, streamed to disk), list, metadata and download (workers),
//! promote and yank (admin), and workers' update reports.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::App;
use super::auth::Caller;
use super::http::{
    HResult, HttpError, Query, Stored, body_to_file, file_response, json, ok, parse_json, read_body,
};
use crate::error::Error;
use crate::model::{now_ms, validate_file_name};
use crate::release::{
    ANY_PLATFORM, EXPERIMENTS_ARCHIVE, Release, ReleaseFile, ReleaseList, ReleaseSummary,
    UpdateReport, detect_platform, validate_platform, validate_tag,
};
use crate::store::releases::promoted;

fn release_dir(app: &App, tag: &str) -> std::path::PathBuf {
    app.data_dir().join("releases").join(tag)
}

/// Sets the queue's promoted version from the store (at start and after promote / yank).
pub(crate) fn refresh_promoted(
    app_store: &crate::store::Store,
    queue: &crate::queue::Queue,
) -> Result<(), Error> {
    let all = app_store.read()?.releases()?;
    queue.set_latest_release(promoted(&all).map(|r| r.tag.clone()));
    Ok(())
}

pub(crate) fn list(app: &App) -> HResult {
    let mut all = app.store.read()?.releases()?;
    all.sort_by(|a, b| {
        let va = validate_tag(&a.tag).ok();
        let vb = validate_tag(&b.tag).ok();
        vb.cmp(&va)
    });
    let current = promoted(&all).map(|r| r.tag.clone());
    let workers = app.queue.workers();
    let releases = all
        .into_iter()
        .map(|r| ReleaseSummary {
            promoted: current.as_deref() == Some(r.tag.as_str()),
            workers: workers
                .iter()
                .filter(|w| {
                    w.state != crate::model::WorkerState::Offline
                        && !crate::release::differs(&r.tag, &w.version)
                })
                .count() as u64,
            release: r,
        })
        .collect();
    ok(&ReleaseList {
        releases,
        promoted: current,
    })
}

pub(crate) fn get(app: &App, tag: &str) -> HResult {
    validate_tag(tag)?;
    let r = app
        .store
        .read()?
        .release(tag)?
        .ok_or_else(|| HttpError::not_found(format!("release {tag} not found")))?;
    ok(&r)
}

pub(crate) async fn upload(
    app: &App,
    tag: &str,
    name: &str,
    q: &Query,
    req: Request<Incoming>,
) -> HResult {
    validate_tag(tag)?;
    validate_file_name(name)?;
    let platform_arg = q
        .get("platform")
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    if let Some(p) = &platform_arg {
        validate_platform(p)?;
    }
    let want_sha = q
        .get("sha256")
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase);
    let signature = q
        .get("signature")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if let Some(sig) = &signature
        && (sig.len() != 128 || !sig.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(HttpError::bad("signature must be 64 bytes of hex"));
    }
    let uploaded_by = req
        .extensions()
        .get::<Caller>()
        .map(|c| c.name.clone())
        .unwrap_or_else(|| "admin".into());
    let dir = release_dir(app, tag);
    std::fs::create_dir_all(&dir).map_err(|e| HttpError::from(Error::io(&dir, e)))?;
    let tmp = dir.join(format!(".{name}.upload-{}", now_ms()));
    // A refused upload leaves nothing: its temp file, and the release's folder if it was the
    // folder's only file (`remove_dir` only removes an empty folder).
    let fail = |e: HttpError| {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_dir(&dir);
        Err(e)
    };
    let Stored { size, sha256, head } =
        match body_to_file(req, &tmp, &format!("release file {name:?}")).await {
            Ok(stored) => stored,
            Err(e) => return fail(e),
        };
    if let Some(want) = &want_sha
        && *want != sha256
    {
        return fail(HttpError::bad(format!(
            "the upload of {name:?} arrived with SHA-256 {sha256}, the client sent {want}: it was damaged on the way"
        )));
    }
    let platform = match platform_arg {
        Some(p) => p,
        None if name == EXPERIMENTS_ARCHIVE => ANY_PLATFORM.to_string(),
        None => match detect_platform(&head) {
            Some(p) => p,
            None => {
                return fail(HttpError::bad(format!(
                    "cannot tell the platform of {name:?} from its contents; pass platform (e.g. --platform linux-x86_64)"
                )));
            }
        },
    };
    let dest = dir.join(name);
    if let Err(e) = std::fs::rename(&tmp, &dest) {
        return fail(HttpError::from(Error::io(&dest, e)));
    }
    let file = ReleaseFile {
        name: name.to_string(),
        platform,
        size,
        sha256,
        signature,
        uploaded_at: now_ms(),
        uploaded_by,
    };
    let t = tag.to_string();
    let f2 = file.clone();
    let ev = app
        .store
        .write(move |tx| {
            let mut r = tx.release(&t)?.unwrap_or_else(|| Release {
                tag: t.clone(),
                created_at: now_ms(),
                files: Vec::new(),
                promoted_seq: None,
                yanked: false,
            });
            r.files.retain(|x| x.name != f2.name);
            r.files.push(f2.clone());
            r.files.sort_by(|a, b| a.name.cmp(&b.name));
            tx.save_release(&r)?;
            Ok(tx.event(
                "release_uploaded",
                None,
                None,
                format!(
                    "release {t}: {} ({}, {} bytes) uploaded by {}",
                    f2.name, f2.platform, f2.size, f2.uploaded_by
                ),
            )?)
        })
        .await?;
    app.queue.publish_event(ev);
    Ok(json(StatusCode::CREATED, &file))
}

pub(crate) async fn download(app: &App, tag: &str, name: &str) -> HResult {
    validate_tag(tag)?;
    validate_file_name(name)?;
    let r = app
        .store
        .read()?
        .release(tag)?
        .ok_or_else(|| HttpError::not_found(format!("release {tag} not found")))?;
    let f = r
        .files
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| HttpError::not_found(format!("release {tag} has no file {name:?}")))?;
    let path = release_dir(app, tag).join(name);
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        HttpError::not_found(format!(
            "release file {name:?} is missing on the server: {e}"
        ))
    })?;
    // The length of what is on disk, not of the metadata: a damaged file then arrives whole and
    // the worker's size and hash checks say what is wrong.
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(f.size);
    Ok(file_response(
        file,
        "application/octet-stream",
        &[
            ("content-length", len.to_string()),
            ("x-gaia-sha256", f.sha256.clone()),
        ],
    ))
}

pub(crate) async fn promote(app: &App, tag: &str) -> HResult {
    validate_tag(tag)?;
    let t = tag.to_string();
    let (r, ev) = app
        .store
        .write(move |tx| {
            let Some(mut r) = tx.release(&t)? else {
                return Err(Error::Request(crate::error::RequestError::NotFound(
                    format!("release {t}"),
                )));
            };
            if r.yanked {
                return Err(Error::Request(crate::error::RequestError::Conflict(
                    format!("release {t} is yanked; upload a new tag instead"),
                )));
            }
            if !r.files.iter().any(|f| f.name != EXPERIMENTS_ARCHIVE) {
                return Err(Error::Request(crate::error::RequestError::Conflict(
                    format!("release {t} has no gaia binary yet; upload one first"),
                )));
            }
            r.promoted_seq = Some(tx.next_id("next_promotion")?);
            tx.save_release(&r)?;
            let ev = tx.event(
                "release_promoted",
                None,
                None,
                format!("release {t} promoted: workers with --auto-update move to it"),
            )?;
            Ok((r, ev))
        })
        .await?;
    refresh_promoted(&app.store, &app.queue)?;
    app.queue.publish_event(ev);
    ok(&r)
}

pub(crate) async fn yank(app: &App, tag: &str) -> HResult {
    validate_tag(tag)?;
    let t = tag.to_string();
    let (r, ev) = app
        .store
        .write(move |tx| {
            let Some(mut r) = tx.release(&t)? else {
                return Err(Error::Request(crate::error::RequestError::NotFound(
                    format!("release {t}"),
                )));
            };
            r.yanked = true;
            tx.save_release(&r)?;
            let ev = tx.event(
                "release_yanked",
                None,
                None,
                format!("release {t} yanked: workers return to the release promoted before it"),
            )?;
            Ok((r, ev))
        })
        .await?;
    refresh_promoted(&app.store, &app.queue)?;
    app.queue.publish_event(ev);
    ok(&r)
}

pub(crate) async fn report(app: &App, worker: &str, req: Request<Incoming>) -> HResult {
    let (_, body) = read_body(req).await?;
    let r: UpdateReport = parse_json(&body)?;
    validate_tag(&r.tag)?;
    app.queue.update_report(worker, r).await?;
    ok(&crate::protocol::Ack { ok: true })
}
