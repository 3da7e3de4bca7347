//! The allocation's end, watched: asks `squeue` again now and then (an administrator may move
//! a time limit), drains the worker once too little time is left to start a job of unknown
//! length, and gives running jobs back as preempted before the scheduler's SIGKILL (see
//! [`crate::cluster::allocation`]).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::config::say;
use super::shared::Shared;
use crate::cluster::allocation::Standing;
use crate::human;

/// How often a Slurm end time is asked again.
const REFRESH: Duration = Duration::from_secs(120);

/// Finds the end before the first claim and says what the worker will do about it.
pub(super) fn first_look(shared: &Shared) {
    let a = &shared.cfg.allocation;
    match a.end() {
        Ok(Some(end)) => {
            shared.alloc_end.store(end, Ordering::SeqCst);
            let p = &shared.cfg.end_policy;
            let left = end.saturating_sub(crate::model::now_ms());
            say(&format!(
                "the allocation ends at {} UTC, in {} (from {}): no job of unknown length starts in its last {}{}",
                crate::time::UtcTime::from_millis(end),
                human::seconds(left as f64 / 1000.0),
                a.source(),
                human::seconds(p.end_margin.as_secs_f64()),
                if p.preempt_before.is_zero() {
                    "; running jobs are given back on the scheduler's signal".to_string()
                } else {
                    format!(
                        "; running jobs are given back {} before it",
                        human::seconds(p.preempt_before.as_secs_f64())
                    )
                }
            ));
        }
        Ok(None) => {
            if a.refreshes() {
                say(&format!(
                    "the allocation has no time limit ({})",
                    a.source()
                ));
            }
        }
        Err(e) => say(&format!(
            "cannot tell when the allocation ends ({e}); trying again in {}",
            human::seconds(REFRESH.as_secs_f64())
        )),
    }
}

/// Runs until the worker stops: drains it, then preempts it, as the end nears.
pub(super) fn watch(shared: &Shared) {
    let a = &shared.cfg.allocation;
    let mut next_refresh = Instant::now() + REFRESH;
    let mut warned = false;
    loop {
        if shared.shutdown.level() >= 2 && shared.active.load(Ordering::SeqCst) == 0 {
            return;
        }
        if a.refreshes() && Instant::now() >= next_refresh {
            next_refresh = Instant::now() + REFRESH;
            match a.end() {
                Ok(end) => {
                    let end = end.unwrap_or(0);
                    let before = shared.alloc_end.swap(end, Ordering::SeqCst);
                    if before != end && end != 0 {
                        say(&format!(
                            "the allocation now ends at {} UTC",
                            crate::time::UtcTime::from_millis(end)
                        ));
                    }
                    warned = false;
                }
                Err(e) if !warned => {
                    say(&format!("cannot tell when the allocation ends: {e}"));
                    warned = true;
                }
                Err(_) => {}
            }
        }
        if let Some(end) = shared.allocation_end() {
            let running = shared.active.load(Ordering::SeqCst);
            match shared.cfg.end_policy.standing(end, crate::model::now_ms()) {
                Standing::GiveBack { left_secs } if running > 0 && !shared.shutdown.preempted() => {
                    let why = format!(
                        "its worker's allocation ends in {}",
                        human::seconds(left_secs.max(0.0))
                    );
                    say(&format!(
                        "the allocation ends in {}: giving the running jobs back (preempted)",
                        human::seconds(left_secs.max(0.0))
                    ));
                    shared.shutdown.preempt_because(&why);
                }
                Standing::StopClaiming { left_secs } | Standing::GiveBack { left_secs }
                    if shared.shutdown.level() == 0 =>
                {
                    say(&format!(
                        "the allocation ends in {}: no new jobs; exiting once running jobs end",
                        human::seconds(left_secs.max(0.0))
                    ));
                    shared.shutdown.drain();
                }
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
