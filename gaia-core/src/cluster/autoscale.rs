//! How many scheduler tasks to start or cancel so that every queued job that fits has a worker
//! coming for it, and no more ([`plan`]; pure). `gaia slurm autoscale` runs it every interval
//! with the queue's depth from the server and the tasks from `squeue`.
//!
//! The rules:
//! - capacity already on its way counts against the demand: every pending task, and every free
//!   slot of a running task (one whose worker has not registered yet counts all its slots:
//!   it is starting) — so work that already has a pending task never gets a second one;
//! - new tasks cover the rest, `slots` jobs each, up to `max_workers` tasks pending and running;
//! - pending tasks beyond what the queue needs are cancelled, newest first (running ones never:
//!   their workers exit by themselves once idle, and a cancel would preempt their jobs).

use crate::model::{Worker, WorkerState};

use super::slurm::{SlurmTask, TaskState, worker_name};

/// What one round decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Tasks to submit now.
    pub submit: u32,
    /// Pending tasks to cancel (their ids).
    pub cancel: Vec<String>,
    /// Queued jobs that fit these workers.
    pub fitting: u64,
    /// Tasks waiting and running before this round.
    pub pending: u32,
    pub running: u32,
    /// Job slots already on their way (pending tasks, free slots of running ones).
    pub coming: u64,
}

/// Decides one round: `fitting` queued jobs fit the workers these tasks start (`slots` jobs at
/// once each); `tasks` are this autoscaler's tasks as the scheduler lists them; `workers` the
/// server's registry (matched to running tasks by name).
pub fn plan(
    fitting: u64,
    slots: u32,
    tasks: &[SlurmTask],
    workers: &[Worker],
    max_workers: u32,
) -> Plan {
    let slots = u64::from(slots.max(1));
    let pending: Vec<&SlurmTask> = tasks
        .iter()
        .filter(|t| t.state == TaskState::Pending)
        .collect();
    let running: Vec<&SlurmTask> = tasks
        .iter()
        .filter(|t| t.state == TaskState::Running)
        .collect();
    let free_running: u64 = running
        .iter()
        .map(|t| {
            let name = worker_name(&t.id);
            // The newest registration under this name (a restarted worker registers again).
            let w = workers
                .iter()
                .filter(|w| w.name == name)
                .max_by_key(|w| w.registered_at);
            match w {
                // Starting: its worker has not registered yet.
                None => slots,
                Some(w) => match w.state {
                    WorkerState::Idle | WorkerState::Busy => {
                        slots.saturating_sub(w.running.len() as u64)
                    }
                    // Leaving, stopped or gone: it takes nothing more.
                    _ => 0,
                },
            }
        })
        .sum();
    let coming = pending.len() as u64 * slots + free_running;
    let mut out = Plan {
        fitting,
        pending: pending.len() as u32,
        running: running.len() as u32,
        coming,
        ..Plan::default()
    };
    let total = (pending.len() + running.len()) as u64;
    if fitting > coming {
        let wanted = (fitting - coming).div_ceil(slots);
        let room = u64::from(max_workers).saturating_sub(total);
        out.submit = wanted.min(room) as u32;
    } else {
        // More on its way than the queue needs: cancel the pending tasks it does not need,
        // newest first (the last listed).
        let spare_slots = coming - fitting;
        let spare = (spare_slots / slots).min(pending.len() as u64) as usize;
        out.cancel = pending
            .iter()
            .rev()
            .take(spare)
            .map(|t| t.id.clone())
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, state: TaskState) -> SlurmTask {
        SlurmTask {
            id: id.into(),
            state,
        }
    }

    fn worker(name: &str, state: WorkerState, running: usize) -> Worker {
        let mut w: Worker = serde_json::from_value(serde_json::json!({
            "id": format!("w-{name}"), "name": name, "registered_at": 0, "last_seen": 0,
            "state": "idle",
        }))
        .unwrap();
        w.state = state;
        w.running = (0..running as u64).collect();
        w
    }

    #[test]
    fn an_empty_queue_starts_nothing() {
        let p = plan(0, 1, &[], &[], 32);
        assert_eq!(p.submit, 0);
        assert!(p.cancel.is_empty());
    }

    #[test]
    fn queued_jobs_start_tasks_up_to_the_cap() {
        assert_eq!(plan(5, 1, &[], &[], 32).submit, 5);
        // Two slots per worker: 3 tasks for 5 jobs.
        assert_eq!(plan(5, 2, &[], &[], 32).submit, 3);
        assert_eq!(plan(100, 1, &[], &[], 32).submit, 32);
        // Already 30 tasks: room for 2.
        let tasks: Vec<SlurmTask> = (0..30)
            .map(|i| task(&format!("1_{i}"), TaskState::Running))
            .collect();
        let busy: Vec<Worker> = (0..30)
            .map(|i| worker(&format!("slurm-1_{i}"), WorkerState::Busy, 1))
            .collect();
        assert_eq!(plan(100, 1, &tasks, &busy, 32).submit, 2);
    }

    #[test]
    fn work_that_already_has_a_pending_or_starting_task_gets_no_second_one() {
        let tasks = [
            task("7_0", TaskState::Pending),
            task("7_1", TaskState::Pending),
            task("7_2", TaskState::Running),
        ];
        // 7_2 has not registered yet: it counts as coming.
        let p = plan(3, 1, &tasks, &[], 32);
        assert_eq!((p.submit, p.coming), (0, 3));
        assert!(p.cancel.is_empty());
        // 7_2's worker is busy: one more job needs one more task.
        let busy = [worker("slurm-7_2", WorkerState::Busy, 1)];
        assert_eq!(plan(3, 1, &tasks, &busy, 32).submit, 1);
        // An idle worker takes a job soon: counts as coming.
        let idle = [worker("slurm-7_2", WorkerState::Idle, 0)];
        assert_eq!(plan(3, 1, &tasks, &idle, 32).submit, 0);
        // A draining one does not.
        let draining = [worker("slurm-7_2", WorkerState::Draining, 0)];
        assert_eq!(plan(3, 1, &tasks, &draining, 32).submit, 1);
        // Other tasks (completing) count for nothing.
        let p = plan(1, 1, &[task("7_9", TaskState::Other)], &[], 32);
        assert_eq!(p.submit, 1);
    }

    #[test]
    fn pending_tasks_the_queue_no_longer_needs_are_cancelled_newest_first() {
        let tasks = [
            task("7_0", TaskState::Running),
            task("7_1", TaskState::Pending),
            task("8_0", TaskState::Pending),
            task("8_1", TaskState::Pending),
        ];
        let busy = [worker("slurm-7_0", WorkerState::Busy, 1)];
        let p = plan(1, 1, &tasks, &busy, 32);
        assert_eq!(p.submit, 0);
        assert_eq!(p.cancel, vec!["8_1".to_string(), "8_0".to_string()]);
        // Nothing queued: every pending task goes; the running one is left to exit when idle.
        let p = plan(0, 1, &tasks, &busy, 32);
        assert_eq!(p.cancel.len(), 3);
    }
}
