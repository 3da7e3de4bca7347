//! The worker's standing with the server: who it is (the id kept in the state file), registering
//! (and registering again when the server has forgotten it), the heartbeat loop that renews its
//! leases and brings cancels back, and moving to a promoted release.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::config::{Shutdown, say};
use super::hardware;
use super::shared::{Shared, lock};
use crate::client::Client;
use crate::error::{ClientError, WorkerError};
use crate::protocol::{HeartbeatRequest, LeaseRef, RegisterRequest, RegisterResponse};

/// The state file: which worker id this is, on which server.
#[derive(Serialize, Deserialize)]
struct StateFile {
    worker_id: String,
    server: String,
    name: String,
}

const STATE_FILE: &str = "worker.json";

/// The id this worker had on `server` under `name`, from its state dir.
pub(super) fn previous_id(dir: &Path, server: &str, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(STATE_FILE)).ok()?;
    let s: StateFile = serde_json::from_str(&text).ok()?;
    (s.server == server && s.name == name).then_some(s.worker_id)
}

/// Keeps the id the server gave, so the next start is the same worker.
pub(super) fn save_id(dir: &Path, worker_id: &str, server: &str, name: &str) {
    let s = StateFile {
        worker_id: worker_id.into(),
        server: server.into(),
        name: name.into(),
    };
    let write = || -> std::io::Result<()> {
        let tmp = dir.join(".worker.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&s)?)?;
        std::fs::rename(tmp, dir.join(STATE_FILE))
    };
    let _ = write();
}

/// Checks the server's address and this worker's token with the cheapest call a worker token
/// may make, one that changes nothing (this version's release record; "no such release" is a
/// fine answer). A refused token is an error. An unreachable server is not (it may be
/// starting): that is said now, and registering waits for it; returns whether it answered.
pub(super) fn check_access(client: &Client, server: &str) -> Result<bool, WorkerError> {
    match client.release(&format!("v{}", crate::VERSION)) {
        Err(ClientError::Status {
            status: status @ (401 | 403),
            message,
            ..
        }) => Err(WorkerError::Setup(format!(
            "the server at {server} refused this worker's token ({status}: {message})"
        ))),
        Err(e) if e.is_unreachable() => {
            let why = match e {
                ClientError::Unreachable { detail, .. } => detail,
                e => e.to_string(),
            };
            say(&format!(
                "the server at {server} does not answer yet ({why}); going on, and registering once it does"
            ));
            Ok(false)
        }
        _ => Ok(true),
    }
}

/// Registers, retrying while the server is unreachable (said once, unless `warned` says it
/// was); None when a stop came first.
pub(super) fn register_until(
    client: &Client,
    req: &RegisterRequest,
    shutdown: &Shutdown,
    mut warned: bool,
) -> Result<Option<RegisterResponse>, WorkerError> {
    let mut backoff = Duration::from_millis(250);
    loop {
        match client.register(req) {
            Ok(r) => return Ok(Some(r)),
            Err(e) if e.is_unreachable() => {
                if !warned {
                    say(&format!("{e}; retrying until it answers"));
                    warned = true;
                }
            }
            Err(e) => return Err(e.into()),
        }
        if shutdown.level() > 0 {
            return Ok(None);
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Heartbeats until the worker stops: renews the running jobs' leases, passes cancels and
/// lost leases to their jobs, says at once when the worker starts draining, and notes
/// promoted releases.
pub(super) fn heartbeat_loop(shared: &Shared) {
    let mut probe = hardware::UsageProbe::new(
        shared
            .register
            .hardware
            .gpus
            .iter()
            .map(|g| g.index)
            .collect(),
    );
    let mut next = Instant::now();
    let mut warned = false;
    let mut sent_level = 0;
    loop {
        // A stop request is told at once: while running, sleep to the next beat unless the
        // worker is told to stop; once stopping, look every 50 ms for the last job's end.
        while Instant::now() < next {
            if shared.shutdown.level() >= 2 && shared.active.load(Ordering::SeqCst) == 0 {
                return;
            }
            if shared.shutdown.level() != sent_level {
                break;
            }
            let left = next.saturating_duration_since(Instant::now());
            if sent_level == 0 {
                shared.shutdown.wait_for_rise(0, left);
            } else {
                std::thread::sleep(Duration::from_millis(50).min(left));
            }
        }
        next = Instant::now() + shared.heartbeat;
        sent_level = shared.shutdown.level();
        let running: Vec<LeaseRef> = lock(&shared.running)
            .iter()
            .map(|(job, r)| LeaseRef {
                job: *job,
                attempt: r.attempt,
                lease: r.lease,
            })
            .collect();
        let req = HeartbeatRequest {
            running,
            usage: probe.sample(),
            draining: shared.shutdown.level() > 0,
        };
        match shared.client.heartbeat(&shared.id(), &req) {
            Ok(resp) => {
                if warned {
                    say("server reachable again");
                    warned = false;
                }
                let running = lock(&shared.running);
                for j in &resp.cancel {
                    if let Some(r) = running.get(j) {
                        r.signals.cancel.store(true, Ordering::SeqCst);
                    }
                }
                for j in &resp.stale {
                    if let Some(r) = running.get(j) {
                        say(&format!(
                            "job {j}: the server no longer holds this lease; stopping it"
                        ));
                        r.signals.stale.store(true, Ordering::SeqCst);
                    }
                }
                drop(running);
                note_hold(shared, resp.hold);
                if shared.cfg.auto_update {
                    consider_update(shared, resp.latest_version.as_deref());
                }
                *shared
                    .latest_version
                    .write()
                    .unwrap_or_else(|p| p.into_inner()) = resp.latest_version;
            }
            Err(ClientError::Status { status: 404, .. }) => {
                say("the server does not know this worker any more; registering again");
                shared.register_again();
            }
            Err(e) if e.is_unreachable() => {
                if !warned {
                    say(&format!("heartbeat: {e}; jobs keep running, retrying"));
                    warned = true;
                }
            }
            Err(e) => say(&format!("heartbeat refused: {e}")),
        }
        if shared.shutdown.level() >= 2 && shared.active.load(Ordering::SeqCst) == 0 {
            return;
        }
    }
}

/// Takes the server's word on holding this worker: says when it changes, and ends the worker
/// (after its running jobs) when a drain asks it to exit.
fn note_hold(shared: &Shared, hold: Option<crate::model::Hold>) {
    use crate::model::HoldKind;
    let mut cur = shared.hold.write().unwrap_or_else(|p| p.into_inner());
    if *cur == hold {
        return;
    }
    match &hold {
        None => say("resumed: claiming jobs again"),
        Some(h) => {
            let by = if h.by.is_empty() { "the server" } else { &h.by };
            let why = if h.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", h.reason)
            };
            match (h.kind, h.exit) {
                (HoldKind::Draining, true) => say(&format!(
                    "drained by {by}{why}; finishing running jobs, then exiting"
                )),
                (HoldKind::Quarantined, _) => say(&format!(
                    "quarantined{why}; claiming nothing until an admin runs gaia worker resume {}",
                    shared.cfg.name
                )),
                (kind, _) => say(&format!(
                    "{kind} by {by}{why}; running jobs finish, no new ones are claimed"
                )),
            }
        }
    }
    if let Some(h) = &hold
        && h.kind == HoldKind::Draining
        && h.exit
    {
        shared.shutdown.drain();
    }
    *cur = hold;
}

/// Notes a promoted release this worker should move to (between jobs).
fn consider_update(shared: &Shared, latest: Option<&str>) {
    let Some(tag) = latest else { return };
    if !crate::release::differs(tag, crate::VERSION) {
        return;
    }
    let mut refused = lock(&shared.refused);
    if refused.contains(tag) {
        return;
    }
    // The tag names files and folders during the update: a server that sends a bad one is
    // ignored (said once), and nothing stops claiming for it.
    if let Err(e) = crate::release::validate_tag(tag) {
        say(&format!("the server promotes {e}; not updating"));
        refused.insert(tag.to_string());
        return;
    }
    drop(refused);
    let mut target = lock(&shared.update_target);
    if target.as_deref() != Some(tag) {
        say(&format!(
            "release {tag} is promoted (this is {}): {}",
            crate::VERSION,
            if shared.cfg.update_now {
                "giving running jobs back and updating now"
            } else {
                "updating once running jobs finish"
            }
        ));
        *target = Some(tag.to_string());
        if shared.cfg.update_now {
            shared.abandon_all.store(true, Ordering::SeqCst);
        }
    }
}

/// Moves to release `tag` while no job runs, and tells the server how it went. Ok: the binary
/// and experiments are replaced (the caller restarts). Err: nothing changed; the release is
/// not tried again and the worker carries on as it was.
pub(super) fn install_update(
    shared: &Shared,
    tag: &str,
    paths: &crate::release::update::UpdatePaths,
) -> Result<(), String> {
    match crate::release::update::update_to(&shared.client, tag, paths, &say) {
        Ok(()) => {
            let _ = shared.client.update_report(
                &shared.id(),
                &crate::release::UpdateReport {
                    tag: tag.to_string(),
                    ok: true,
                    message: format!("replaced {} with {tag}; restarting", crate::VERSION),
                },
            );
            Ok(())
        }
        Err(msg) => {
            say(&format!(
                "update to {tag} refused: {msg}; staying on {}",
                crate::VERSION
            ));
            let _ = shared.client.update_report(
                &shared.id(),
                &crate::release::UpdateReport {
                    tag: tag.to_string(),
                    ok: false,
                    message: msg.clone(),
                },
            );
            lock(&shared.refused).insert(tag.to_string());
            *lock(&shared.update_target) = None;
            shared.abandon_all.store(false, Ordering::SeqCst);
            Err(msg)
        }
    }
}
