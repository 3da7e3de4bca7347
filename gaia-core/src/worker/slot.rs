//! One slot: claim a job with a long poll, run it, send its report with the next claim; stop
//! claiming when the worker drains, updates or has been idle long enough.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::config::say;
use super::job::{execute, give_back};
use super::shared::{Shared, lock};
use crate::cluster::allocation::Standing;
use crate::error::ClientError;
use crate::model::{Capabilities, Gpu, JobId};
use crate::protocol::{ClaimRequest, CompleteRequest, Finished};

/// Splits GPUs over slots round-robin: `--slots 2 --gpu 0,1` gives each slot one GPU.
pub(super) fn split_gpus(gpus: &[Gpu], slots: u32) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); slots as usize];
    for (i, g) in gpus.iter().enumerate() {
        out[i % slots as usize].push(g.index);
    }
    out
}

/// Claims and runs jobs until the worker stops claiming; returns how many it ran.
pub(super) fn slot_loop(shared: &Arc<Shared>, caps: Capabilities, gpus: Vec<u32>) -> u64 {
    let mut ran = 0;
    let mut backoff = Duration::from_millis(250);
    // The last job's end, sent with the next claim (one round trip per job).
    let mut pending: Option<Finished> = None;
    let flush = |pending: &mut Option<Finished>| {
        if let Some(f) = pending.take() {
            report(shared, f.job, &f.report);
        }
    };
    loop {
        if shared.shutdown.level() > 0 || shared.update_pending() {
            flush(&mut pending);
            return ran;
        }
        let mut wait = shared.cfg.claim_wait;
        if let Some(idle) = shared.cfg.exit_when_idle {
            let since = lock(&shared.last_activity).elapsed();
            if shared.active.load(Ordering::SeqCst) == 0 && since >= idle {
                flush(&mut pending);
                say(&format!("idle for {idle:?}: exiting (--exit-when-idle)"));
                shared.shutdown.drain();
                return ran;
            }
            wait = wait.min(idle.saturating_sub(since).max(Duration::from_millis(100)));
        }
        // Claims come back at most every few seconds so a stop request is honoured promptly.
        wait = wait.min(Duration::from_secs(5));
        let mut caps_now = caps.clone();
        // Near the allocation's end: only jobs expected to finish in time, and none at all
        // within the end margin (the allocation watcher drains the worker then).
        if let Some(end) = shared.allocation_end() {
            let now = crate::model::now_ms();
            match shared.cfg.end_policy.standing(end, now) {
                Standing::Claim { max_job_secs } => {
                    caps_now.max_job_secs = Some(max_job_secs);
                    let margin_at =
                        end.saturating_sub(shared.cfg.end_policy.end_margin.as_millis() as u64);
                    wait = wait.min(Duration::from_millis(margin_at.saturating_sub(now).max(50)));
                }
                Standing::StopClaiming { .. } | Standing::GiveBack { .. } => {
                    flush(&mut pending);
                    return ran;
                }
            }
        }
        // --max-jobs: this claim counts against it until it turns out empty.
        if !shared.reserve_claim() {
            flush(&mut pending);
            return ran;
        }
        let req = ClaimRequest {
            worker_id: shared.id(),
            capabilities: caps_now,
            wait_ms: wait.as_millis() as u64,
            finished: pending.clone(),
        };
        let answer = shared.client.claim_with(&req);
        if !matches!(&answer, Ok(r) if r.assignment.is_some()) {
            shared.unreserve_claim();
        }
        match answer {
            Ok(resp) => {
                backoff = Duration::from_millis(250);
                if let (Some(e), Some(f)) = (&resp.finished_error, &pending) {
                    say(&format!("job {}: completion refused: {e}", f.job));
                }
                pending = None;
                let Some(a) = resp.assignment else { continue };
                if shared.shutdown.level() > 0 || shared.update_pending() {
                    give_back(shared, &a, "the worker is shutting down or updating");
                    return ran;
                }
                pending = execute(shared, a, &gpus);
                ran += 1;
            }
            Err(ClientError::Status { status: 404, .. }) => {
                // The server forgot us (its data was reset): register again, same id. The
                // report is sent again with the next claim; a repeated report is harmless.
                shared.register_again();
                std::thread::sleep(backoff);
            }
            Err(e) => {
                if !e.is_unreachable() {
                    say(&format!("claim refused: {e}"));
                    // Do not hold a report hostage to a claim the server refuses.
                    flush(&mut pending);
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Sends the completion, retrying through outages until the server takes it (or refuses it).
fn report(shared: &Shared, job: JobId, complete: &CompleteRequest) {
    let mut backoff = Duration::from_millis(250);
    loop {
        match shared.client.complete(job, complete) {
            Ok(_) => return,
            Err(e) if e.is_unreachable() => {
                if shared.shutdown.level() >= 2 {
                    return;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                say(&format!("job {job}: completion refused: {e}"));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_split_over_slots() {
        let g = |i| Gpu {
            index: i,
            ..Gpu::default()
        };
        assert_eq!(split_gpus(&[g(0), g(1)], 2), vec![vec![0], vec![1]]);
        assert_eq!(split_gpus(&[g(0), g(1)], 1), vec![vec![0, 1]]);
        assert_eq!(split_gpus(&[], 2), vec![Vec::<u32>::new(), vec![]]);
    }
}
