//! Unit tests of the queue: order, matching, leases, stale attempts, cancels, idempotent rows,
//! long-poll claims. Each test runs on its own store in a temp dir.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::model::{CellRecord, CellState, JobKind, JobSpec, JobState, Stream, StudyRules};
use crate::protocol::{
    CompleteRequest, HeartbeatRequest, LeaseRef, LogBatch, LogInput, Outcome, RegisterRequest,
    RequeueRequest, RowBatch,
};

/// A queue over a fresh store; the temp dir lives as long as the returned guard.
fn queue_with(lease_timeout: Duration) -> (Arc<Queue>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let config = QueueConfig {
        lease_timeout,
        ..QueueConfig::default()
    };
    (Queue::new(store, config).unwrap(), dir)
}

fn queue() -> (Arc<Queue>, tempfile::TempDir) {
    queue_with(Duration::from_secs(60))
}

fn caps(kinds: &[JobKind]) -> Capabilities {
    Capabilities {
        kinds: kinds.to_vec(),
        ..Capabilities::default()
    }
}

/// A registration of a hash-running worker, as itself (`id`) or new.
fn registration(name: &str, id: Option<&str>) -> RegisterRequest {
    RegisterRequest {
        worker_id: id.map(str::to_string),
        name: name.into(),
        version: "0.1.0".into(),
        hardware: Default::default(),
        kinds: vec![JobKind::Hash],
        tags: Vec::new(),
        slots: 2,
    }
}

async fn register(q: &Queue, name: &str, kinds: &[JobKind]) -> String {
    q.register(RegisterRequest {
        kinds: kinds.to_vec(),
        ..registration(name, None)
    })
    .await
    .unwrap()
    .id
}

fn hash_job(input: &str) -> JobSpec {
    JobSpec::builtin(JobKind::Hash, input)
}

fn with_priority(mut spec: JobSpec, p: i32) -> JobSpec {
    spec.priority = p;
    spec
}

/// Claims without waiting.
async fn claim_now(q: &Queue, worker: &str, c: &Capabilities) -> Option<Assignment> {
    q.claim(worker, c.clone(), Duration::ZERO).await.unwrap()
}

fn job(q: &Queue, id: JobId) -> Job {
    q.store().read().unwrap().job(id).unwrap().unwrap()
}

fn rows(from: u64, to: u64) -> Vec<Row> {
    (from..to)
        .map(|seq| Row {
            seq,
            generation: Some(seq + 1),
            best: Some(seq as f64),
            ..Row::default()
        })
        .collect()
}

fn batch(a: &Assignment, rows: Vec<Row>) -> RowBatch {
    RowBatch {
        attempt: a.attempt,
        lease: a.lease,
        rows,
        fraction: None,
        status: None,
    }
}

fn complete(a: &Assignment, outcome: Outcome) -> CompleteRequest {
    CompleteRequest {
        attempt: a.attempt,
        lease: a.lease,
        outcome,
        exit_code: Some(0),
        duration_ms: 5,
        error: None,
        result: None,
        started_us: None,
    }
}

fn is_stale(e: Error) -> bool {
    matches!(e, Error::Request(RequestError::StaleLease(_)))
}

#[tokio::test]
async fn claims_take_highest_priority_first_then_fifo() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let mut ids = Vec::new();
    for (i, p) in [0, 5, 0, 5, -1, 10].into_iter().enumerate() {
        ids.push(
            q.submit(with_priority(hash_job(&i.to_string()), p))
                .await
                .unwrap(),
        );
    }
    let c = caps(&[JobKind::Hash]);
    let mut order = Vec::new();
    while let Some(a) = claim_now(&q, &w, &c).await {
        order.push(a.job.id);
    }
    // Priority 10, then the two 5s in submit order, the two 0s in submit order, then -1.
    assert_eq!(order, vec![ids[5], ids[1], ids[3], ids[0], ids[2], ids[4]]);
    assert!(
        order
            .iter()
            .all(|id| job(&q, *id).state == JobState::Running)
    );
}

#[tokio::test]
async fn claims_only_jobs_whose_requirements_the_slot_meets() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash, JobKind::Upper]).await;
    let mut gpu = hash_job("gpu");
    gpu.requirements.gpus = 2;
    let mut mem = hash_job("mem");
    mem.requirements.memory_mb = 16_000;
    let mut tagged = hash_job("tagged");
    tagged.requirements.tags = vec!["cuda12".into(), "lab-a".into()];
    let upper = JobSpec::builtin(JobKind::Upper, "x");
    let gpu_id = q.submit(gpu).await.unwrap();
    let mem_id = q.submit(mem).await.unwrap();
    let tagged_id = q.submit(tagged).await.unwrap();
    let upper_id = q.submit(upper).await.unwrap();

    // A plain Hash slot fits none of them, though the queue is not empty.
    assert!(claim_now(&q, &w, &caps(&[JobKind::Hash])).await.is_none());

    // Kind: only the Upper job, skipping the three older Hash jobs.
    let a = claim_now(&q, &w, &caps(&[JobKind::Upper])).await.unwrap();
    assert_eq!(a.job.id, upper_id);

    // One GPU is not two; one of two tags is not enough; 8 GB is not 16.
    let near_miss = Capabilities {
        kinds: vec![JobKind::Hash],
        gpus: 1,
        memory_mb: 8_000,
        tags: vec!["cuda12".into()],
        max_job_secs: None,
    };
    assert!(claim_now(&q, &w, &near_miss).await.is_none());

    let tags_ok = Capabilities {
        tags: vec!["lab-a".into(), "cuda12".into(), "x".into()],
        ..near_miss.clone()
    };
    assert_eq!(claim_now(&q, &w, &tags_ok).await.unwrap().job.id, tagged_id);

    let mem_ok = Capabilities {
        memory_mb: 16_000,
        ..near_miss.clone()
    };
    assert_eq!(claim_now(&q, &w, &mem_ok).await.unwrap().job.id, mem_id);

    let gpu_ok = Capabilities {
        gpus: 2,
        ..near_miss
    };
    assert_eq!(claim_now(&q, &w, &gpu_ok).await.unwrap().job.id, gpu_id);
}

#[tokio::test]
async fn an_unregistered_worker_cannot_claim() {
    let (q, _dir) = queue();
    q.submit(hash_job("x")).await.unwrap();
    let err = q
        .claim("w-nobody", caps(&[JobKind::Hash]), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Request(RequestError::NotFound(_))));
    assert!(err.to_string().contains("register"), "{err}");
}

#[tokio::test]
async fn an_expired_lease_requeues_the_job_with_the_next_attempt() {
    // A zero lease timeout: every lease has expired by the time `reap` looks.
    let (q, _dir) = queue_with(Duration::ZERO);
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    let c = caps(&[JobKind::Hash]);

    let first = claim_now(&q, &w, &c).await.unwrap();
    assert_eq!(first.attempt, 1);
    q.reap().await.unwrap();
    let j = job(&q, id);
    assert_eq!(j.state, JobState::Queued);
    assert_eq!(j.lease, None);
    assert_eq!(
        j.attempts[0].outcome.as_deref(),
        Some("lease expired"),
        "{j:?}"
    );
    assert!(q.lease_of(id).is_none());

    let second = claim_now(&q, &w, &c).await.unwrap();
    assert_eq!(second.job.id, id);
    assert_eq!(second.attempt, 2);
    assert_ne!(second.lease, first.lease);
    assert_eq!(job(&q, id).attempts.len(), 2);
}

#[tokio::test]
async fn a_job_whose_workers_keep_vanishing_ends_lost() {
    let (q, _dir) = queue_with(Duration::ZERO);
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let mut spec = hash_job("x");
    spec.max_attempts = 2;
    let id = q.submit(spec).await.unwrap();
    let c = caps(&[JobKind::Hash]);
    for attempt in 1..=2 {
        let a = claim_now(&q, &w, &c).await.unwrap();
        assert_eq!(a.attempt, attempt);
        q.reap().await.unwrap();
    }
    let j = job(&q, id);
    assert_eq!(j.state, JobState::Lost);
    assert!(j.finished_at.is_some());
    assert!(
        j.error.as_deref().unwrap().contains("lost"),
        "{:?}",
        j.error
    );
    // Lost is final: nothing left to claim, and the counts agree.
    assert!(claim_now(&q, &w, &c).await.is_none());
    assert_eq!(q.counts().unwrap()["lost"], 1);
    assert_eq!(q.counts().unwrap()["queued"], 0);
}

#[tokio::test]
async fn a_stale_attempt_can_no_longer_write_into_the_job() {
    let (q, _dir) = queue_with(Duration::ZERO);
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    let c = caps(&[JobKind::Hash]);
    let old = claim_now(&q, &w, &c).await.unwrap();
    q.add_rows(id, batch(&old, rows(0, 3))).await.unwrap();
    q.reap().await.unwrap();
    let new = claim_now(&q, &w, &c).await.unwrap();
    assert_eq!(new.attempt, 2);

    // The old attempt, and the new attempt with a wrong lease, are both refused.
    let wrong_lease = Assignment {
        lease: new.lease + 1000,
        ..new.clone()
    };
    for stale in [&old, &wrong_lease] {
        let e = q.add_rows(id, batch(stale, rows(0, 5))).await.unwrap_err();
        assert!(is_stale(e));
        let e = q
            .add_logs(
                id,
                LogBatch {
                    attempt: stale.attempt,
                    lease: stale.lease,
                    first: 0,
                    lines: vec![LogInput {
                        stream: Stream::Stdout,
                        text: "late".into(),
                        at: 0,
                        rows_before: None,
                    }],
                },
            )
            .await
            .unwrap_err();
        assert!(is_stale(e));
        let e = q
            .complete(id, complete(stale, Outcome::Failed))
            .await
            .unwrap_err();
        assert!(is_stale(e));
        let e = q
            .requeue(
                id,
                RequeueRequest {
                    attempt: stale.attempt,
                    lease: stale.lease,
                    reason: None,
                    preempted: false,
                },
            )
            .await
            .unwrap_err();
        assert!(is_stale(e));
    }
    // A heartbeat naming the old lease is told it is stale.
    let hb = q
        .heartbeat(
            &w,
            HeartbeatRequest {
                running: vec![LeaseRef {
                    job: id,
                    attempt: old.attempt,
                    lease: old.lease,
                }],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(hb.stale, vec![id]);

    // Nothing of the stale calls landed: the job runs attempt 2, with no rows and no logs.
    let j = job(&q, id);
    assert_eq!((j.state, j.attempt), (JobState::Running, 2));
    assert_eq!(j.progress.rows, 0);
    assert_eq!(j.log_lines, 0);
    let read = q.store().read().unwrap();
    assert_eq!(
        read.rows(id, 1).unwrap().len(),
        3,
        "attempt 1 keeps its rows"
    );
    assert!(read.rows(id, 2).unwrap().is_empty());

    // The current attempt still works.
    q.add_rows(id, batch(&new, rows(0, 2))).await.unwrap();
    let done = q
        .complete(id, complete(&new, Outcome::Succeeded))
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    // And once it has ended, even the last lease is stale.
    let e = q.add_rows(id, batch(&new, rows(2, 3))).await.unwrap_err();
    assert!(is_stale(e));
}

#[tokio::test]
async fn cancelling_a_queued_job_ends_it_at_once() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    let j = q.cancel(id).await.unwrap();
    assert_eq!(j.state, JobState::Cancelled);
    assert!(j.finished_at.is_some());
    assert!(claim_now(&q, &w, &caps(&[JobKind::Hash])).await.is_none());
    // Cancelling it again is a conflict that names the state; an unknown job is not found.
    let e = q.cancel(id).await.unwrap_err();
    assert!(matches!(e, Error::Request(RequestError::Conflict(_))));
    assert!(e.to_string().contains("cancelled"), "{e}");
    let e = q.cancel(999).await.unwrap_err();
    assert!(matches!(e, Error::Request(RequestError::NotFound(_))));
}

#[tokio::test]
async fn cancelling_a_running_job_reaches_its_worker_through_heartbeat_and_row_acks() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    let a = claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();
    let lease = LeaseRef {
        job: id,
        attempt: a.attempt,
        lease: a.lease,
    };
    let hb = HeartbeatRequest {
        running: vec![lease],
        ..Default::default()
    };
    // Before the cancel, nothing to cancel.
    assert!(q.heartbeat(&w, hb.clone()).unwrap().cancel.is_empty());
    let ack = q.add_rows(id, batch(&a, rows(0, 2))).await.unwrap();
    assert!(!ack.cancel);

    let j = q.cancel(id).await.unwrap();
    assert_eq!(j.state, JobState::Running, "a running job is only flagged");
    assert!(j.cancel_requested);
    // Cancelling twice is harmless.
    assert!(q.cancel(id).await.unwrap().cancel_requested);

    let resp = q.heartbeat(&w, hb).unwrap();
    assert_eq!(resp.cancel, vec![id]);
    assert!(resp.stale.is_empty());
    let ack = q.add_rows(id, batch(&a, rows(2, 4))).await.unwrap();
    assert!(ack.cancel);
    assert_eq!(ack.stored, 2, "rows sent while stopping are still kept");
    let log_cancel = q
        .add_logs(
            id,
            LogBatch {
                attempt: a.attempt,
                lease: a.lease,
                first: 0,
                lines: vec![],
            },
        )
        .await
        .unwrap();
    assert!(log_cancel);

    let done = q
        .complete(id, complete(&a, Outcome::Cancelled))
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Cancelled);
    assert!(!done.cancel_requested);
    assert!(q.lease_of(id).is_none());
}

#[tokio::test]
async fn a_cancelled_job_whose_worker_vanishes_ends_cancelled_not_requeued() {
    let (q, _dir) = queue_with(Duration::ZERO);
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();
    q.cancel(id).await.unwrap();
    q.reap().await.unwrap();
    assert_eq!(job(&q, id).state, JobState::Cancelled);
}

#[tokio::test]
async fn a_row_batch_sent_twice_is_stored_once() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    let a = claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();

    let first = q.add_rows(id, batch(&a, rows(0, 10))).await.unwrap();
    assert_eq!((first.stored, first.skipped), (10, 0));
    let again = q.add_rows(id, batch(&a, rows(0, 10))).await.unwrap();
    assert_eq!((again.stored, again.skipped), (0, 10));
    // A batch that overlaps the stored ones stores only the new rows.
    let overlap = q.add_rows(id, batch(&a, rows(5, 15))).await.unwrap();
    assert_eq!((overlap.stored, overlap.skipped), (5, 5));

    let stored = q.store().read().unwrap().rows(id, a.attempt).unwrap();
    assert_eq!(
        stored.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..15).collect::<Vec<_>>()
    );
    let j = job(&q, id);
    assert_eq!(j.progress.rows, 15);
    assert_eq!(j.progress.generation, Some(15));

    // An unordered batch that names one seq twice and one stored seq: each new row once.
    let mixed: Vec<Row> = [20, 16, 20, 3]
        .into_iter()
        .flat_map(|s| rows(s, s + 1))
        .collect();
    let ack = q.add_rows(id, batch(&a, mixed)).await.unwrap();
    assert_eq!((ack.stored, ack.skipped), (2, 2));
    let stored = q.store().read().unwrap().rows(id, a.attempt).unwrap();
    assert_eq!(stored.len(), 17);
    assert_eq!(job(&q, id).progress.rows, 17);
}

#[tokio::test]
async fn an_attempts_metric_names_are_kept_with_its_progress_as_its_rows_arrive() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    let a = claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();
    let with = |seq: u64, names: &[&str]| Row {
        seq,
        metrics: names.iter().map(|n| (n.to_string(), 1.0)).collect(),
        ..Row::default()
    };
    q.add_rows(id, batch(&a, vec![with(0, &["loss"]), with(1, &["loss"])]))
        .await
        .unwrap();
    assert_eq!(job(&q, id).progress.metrics, Some(vec!["loss".to_string()]));
    // A metric that appears later (and one sent again) joins the list, sorted, once.
    q.add_rows(
        id,
        batch(&a, vec![with(2, &["entropy", "loss"]), with(3, &["loss"])]),
    )
    .await
    .unwrap();
    q.add_rows(id, batch(&a, vec![with(3, &["zeta"])]))
        .await
        .unwrap();
    let names = job(&q, id).progress.metrics.unwrap();
    assert_eq!(names, ["entropy", "loss"], "a skipped row adds nothing");
    // They are the names a pass over the stored rows finds.
    let read = q.store().read().unwrap();
    assert_eq!(read.metric_names(id, a.attempt, None).unwrap(), names);
    // A list that did not start with the attempt's first rows is never started later.
    let mut p = Progress::default();
    p.note_metrics(&[with(9, &["loss"])], false);
    assert_eq!(p.metrics, None);
    // Names without end (a step in each name) are not kept: the list rides on every save.
    let mut p = Progress::default();
    let many: Vec<Row> = (0..300u64)
        .map(|i| Row {
            seq: i,
            metrics: vec![(format!("loss_step_{i}"), 1.0)],
            ..Row::default()
        })
        .collect();
    p.note_metrics(&many[..10], true);
    assert_eq!(p.metrics.as_ref().map(Vec::len), Some(10));
    p.note_metrics(&many[10..], false);
    assert_eq!(
        p.metrics,
        None,
        "given up past {}",
        crate::model::MAX_KEPT_METRICS
    );
    p.note_metrics(&many[..1], false);
    assert_eq!(p.metrics, None, "and not started again");
}

#[tokio::test]
async fn row_and_log_numbers_out_of_range_are_refused_and_the_store_keeps_writing() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    let a = claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();
    // These overflowed `seq + 1` inside the write and, in a debug build, took the writer down.
    let mut far = rows(0, 1);
    far[0].seq = u64::MAX;
    let e = q.add_rows(id, batch(&a, far)).await.unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    let e = q
        .add_logs(
            id,
            LogBatch {
                attempt: a.attempt,
                lease: a.lease,
                first: u64::MAX,
                lines: vec![LogInput {
                    stream: Stream::Stdout,
                    text: "x".into(),
                    at: 0,
                    rows_before: None,
                }],
            },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    let ack = q.add_rows(id, batch(&a, rows(0, 3))).await.unwrap();
    assert_eq!(ack.stored, 3);
    assert!(q.store().writable());
}

#[tokio::test]
async fn a_log_batch_sent_twice_is_stored_once() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    let a = claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();
    let lines = |texts: &[&str]| -> Vec<LogInput> {
        texts
            .iter()
            .map(|t| LogInput {
                stream: Stream::Stderr,
                text: t.to_string(),
                at: 0,
                rows_before: None,
            })
            .collect()
    };
    let send = |first: u64, l: Vec<LogInput>| LogBatch {
        attempt: a.attempt,
        lease: a.lease,
        first,
        lines: l,
    };
    q.add_logs(id, send(0, lines(&["a", "WARN b"])))
        .await
        .unwrap();
    q.add_logs(id, send(0, lines(&["a", "WARN b"])))
        .await
        .unwrap();
    q.add_logs(id, send(1, lines(&["WARN b", "Traceback c"])))
        .await
        .unwrap();
    let stored = q.store().read().unwrap().logs(id, 0, 100).unwrap();
    let texts: Vec<_> = stored.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, vec!["a", "WARN b", "Traceback c"]);
    let j = job(&q, id);
    assert_eq!((j.log_lines, j.warnings, j.errors), (3, 1, 1));
}

#[tokio::test]
async fn a_waiting_claim_is_woken_by_a_submit() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let claimer = {
        let q = q.clone();
        let w = w.clone();
        tokio::spawn(async move {
            let a = q
                .claim(&w, caps(&[JobKind::Hash]), Duration::from_secs(30))
                .await;
            (a, Instant::now())
        })
    };
    wait_for_waiters(&q, 1).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    // Measured from the submit's commit, so the store's fsync is not counted: a woken waiter
    // answers within microseconds, a polling one would take its poll interval.
    let committed = Instant::now();
    let (a, at) = tokio::time::timeout(Duration::from_secs(10), claimer)
        .await
        .expect("the claim answered")
        .unwrap();
    assert_eq!(a.unwrap().unwrap().job.id, id);
    let latency = at.saturating_duration_since(committed);
    assert!(
        latency < Duration::from_millis(100),
        "woken {latency:?} after the commit"
    );
    assert!(q.lock().waiters.is_empty(), "the waiter was removed");
}

#[tokio::test]
async fn a_waiting_claim_that_does_not_fit_is_not_given_the_job() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash, JobKind::Upper]).await;
    let gpu_slot = Capabilities {
        kinds: vec![JobKind::Hash],
        gpus: 1,
        ..Capabilities::default()
    };
    let misfit = {
        let q = q.clone();
        let w = w.clone();
        // A Upper-only slot: it must time out even though a job arrives while it waits.
        tokio::spawn(async move {
            q.claim(&w, caps(&[JobKind::Upper]), Duration::from_millis(300))
                .await
        })
    };
    let fit = {
        let q = q.clone();
        let w = w.clone();
        tokio::spawn(async move { q.claim(&w, gpu_slot, Duration::from_secs(30)).await })
    };
    wait_for_waiters(&q, 2).await;
    let mut spec = hash_job("x");
    spec.requirements.gpus = 1;
    let id = q.submit(spec).await.unwrap();
    assert_eq!(fit.await.unwrap().unwrap().unwrap().job.id, id);
    assert!(misfit.await.unwrap().unwrap().is_none());
    assert_eq!(job(&q, id).attempt, 1);
}

#[tokio::test]
async fn two_waiting_claims_and_one_job_give_it_to_exactly_one() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let spawn_claim = |wait: Duration| {
        let q = q.clone();
        let w = w.clone();
        tokio::spawn(async move { q.claim(&w, caps(&[JobKind::Hash]), wait).await.unwrap() })
    };
    let a = spawn_claim(Duration::from_millis(500));
    let b = spawn_claim(Duration::from_millis(500));
    wait_for_waiters(&q, 2).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    let got: Vec<_> = [a.await.unwrap(), b.await.unwrap()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].job.id, id);
}

#[tokio::test]
async fn a_requeued_job_goes_back_without_using_an_attempt_and_wakes_a_waiter() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let mut spec = hash_job("x");
    spec.max_attempts = 1;
    let id = q.submit(spec).await.unwrap();
    let c = caps(&[JobKind::Hash]);
    let a = claim_now(&q, &w, &c).await.unwrap();
    let waiter = {
        let q = q.clone();
        let w = w.clone();
        let c = c.clone();
        tokio::spawn(async move { q.claim(&w, c, Duration::from_secs(30)).await.unwrap() })
    };
    wait_for_waiters(&q, 1).await;
    let j = q
        .requeue(
            id,
            RequeueRequest {
                attempt: a.attempt,
                lease: a.lease,
                reason: Some("worker shutting down".into()),
                preempted: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(j.state, JobState::Queued);
    let again = waiter.await.unwrap().unwrap();
    assert_eq!((again.job.id, again.attempt), (id, 2));
}

#[tokio::test]
async fn a_worker_that_registers_again_gives_back_the_jobs_it_held() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();
    let again = q.register(registration("w1", Some(&w))).await.unwrap();
    assert_eq!(again.id, w);
    assert_eq!(job(&q, id).state, JobState::Queued);
    assert_eq!(q.workers().len(), 1);

    // The restart counts as an attempt: a job that keeps taking its worker down ends lost.
    let mut one = hash_job("y");
    one.max_attempts = 1;
    let id = q.submit(one).await.unwrap();
    loop {
        let a = claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();
        if a.job.id == id {
            break;
        }
    }
    q.register(registration("w1", Some(&w))).await.unwrap();
    assert_eq!(job(&q, id).state, JobState::Lost);
}

#[tokio::test]
async fn leases_survive_a_restart_of_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (id, a, w) = {
        let store = Store::open(dir.path()).unwrap();
        let q = Queue::new(store, QueueConfig::default()).unwrap();
        let w = register(&q, "w1", &[JobKind::Hash]).await;
        let id = q.submit(hash_job("x")).await.unwrap();
        let a = claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();
        (id, a, w)
    };
    // The writer thread holds the file until its channel closes; wait for it to let go.
    let store = loop {
        match Store::open(dir.path()) {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    let q = Queue::new(store, QueueConfig::default()).unwrap();
    assert_eq!(q.lease_of(id), Some((a.attempt, a.lease, w.clone())));
    let ack = q.add_rows(id, batch(&a, rows(0, 3))).await.unwrap();
    assert_eq!(ack.stored, 3);
    assert_eq!(q.workers().len(), 1);
}

/// Regression: claims commit without an fsync, so a crash can roll a claim back together
/// with the lease counter; the next claim after the restart then got the same (attempt,
/// lease) and the first worker's calls were taken as the new worker's.
#[tokio::test]
async fn a_lease_handed_out_before_a_crash_is_never_handed_out_again() {
    let dir = tempfile::tempdir().unwrap();
    let (id, old, w) = {
        let store = Store::open(dir.path()).unwrap();
        let q = Queue::new(store, QueueConfig::default()).unwrap();
        let w = register(&q, "w1", &[JobKind::Hash]).await;
        let id = q.submit(hash_job("x")).await.unwrap();
        let old = claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();
        // What a crash before the claim became durable leaves: the job queued as before the
        // claim, the lease counter where it was.
        q.store()
            .write(move |tx| {
                let prev = tx.job(id)?.unwrap();
                let mut job = prev.clone();
                job.state = JobState::Queued;
                job.attempt = 0;
                job.lease = None;
                job.worker = None;
                job.attempts.clear();
                tx.save_job(Some(&prev), &job)?;
                tx.meta
                    .open_mut()?
                    .insert("next_lease_id", old.lease)
                    .map_err(StoreError::from)?;
                Ok(())
            })
            .await
            .unwrap();
        (id, old, w)
    };
    let store = loop {
        match Store::open(dir.path()) {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    let q = Queue::new(store, QueueConfig::default()).unwrap();
    let new = claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();
    assert_eq!((new.job.id, new.attempt), (id, old.attempt));
    assert_ne!(new.lease, old.lease, "the lease was handed out twice");
    let e = q.add_rows(id, batch(&old, rows(0, 3))).await.unwrap_err();
    assert!(is_stale(e));
    q.add_rows(id, batch(&new, rows(0, 3))).await.unwrap();
}

/// Waits until `n` claims have looked at the queue, found nothing and parked (a submit may
/// then hand them a job in its own write).
async fn wait_for_parked(q: &Queue, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while q.lock().waiters.iter().filter(|w| w.parked).count() < n {
        assert!(Instant::now() < deadline, "claims never parked");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn a_parked_claim_is_handed_the_job_by_the_submits_own_write() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let mut live = q.subscribe();
    let claim = |wait| {
        let (q, w) = (q.clone(), w.clone());
        tokio::spawn(async move { q.claim(&w, caps(&[JobKind::Hash]), wait).await.unwrap() })
    };
    let (a, b) = (
        claim(Duration::from_secs(30)),
        claim(Duration::from_millis(300)),
    );
    wait_for_parked(&q, 2).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    // The oldest parked claim gets it; the other is neither given it nor woken for nothing.
    let got = a.await.unwrap().unwrap();
    assert_eq!(
        (got.job.id, got.attempt, got.job.state),
        (id, 1, JobState::Running)
    );
    assert_eq!(job(&q, id).lease, Some(got.lease));
    assert!(b.await.unwrap().is_none());
    assert!(q.lock().waiters.is_empty());
    assert_eq!(q.workers()[0].running, vec![id]);
    assert_eq!(q.lease_of(id), Some((1, got.lease, w.clone())));
    // Live events in their order: submitted, then started.
    let mut kinds = Vec::new();
    while let Ok(l) = live.try_recv() {
        if let Live::Event(e) = l {
            kinds.push(e.kind);
        }
    }
    assert_eq!(kinds, ["job_submitted", "job_started"]);
    // The job runs as any claimed job: its rows and report are taken.
    q.add_rows(id, batch(&got, rows(0, 2))).await.unwrap();
    q.complete(id, complete(&got, Outcome::Succeeded))
        .await
        .unwrap();
    assert_eq!(job(&q, id).state, JobState::Succeeded);
}

#[tokio::test]
async fn a_batch_hands_one_job_to_each_parked_claim_that_fits() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash, JobKind::Upper]).await;
    let claim = |kinds: &'static [JobKind]| {
        let (q, w) = (q.clone(), w.clone());
        tokio::spawn(async move {
            q.claim(&w, caps(kinds), Duration::from_millis(500))
                .await
                .unwrap()
        })
    };
    let hash = [claim(&[JobKind::Hash]), claim(&[JobKind::Hash])];
    let upper = claim(&[JobKind::Upper]);
    wait_for_parked(&q, 3).await;
    let ids = q
        .submit_many(vec![hash_job("a"), JobSpec::builtin(JobKind::Upper, "b")])
        .await
        .unwrap();
    let mut got = Vec::new();
    for h in hash {
        got.extend(h.await.unwrap().map(|a| a.job.id));
    }
    assert_eq!(got, vec![ids[0]], "one hash job, to the oldest hash claim");
    assert_eq!(upper.await.unwrap().unwrap().job.id, ids[1]);
}

/// Run as a child process by the test below: a claim is handed a job by a submit, and the
/// process dies (`_exit`) after the claim was answered but before the submit's fsync.
async fn hand_off_then_crash(dir: &std::path::Path) {
    use std::io::Write;
    let store = Store::open(dir).unwrap();
    let q = Queue::new(store.clone(), QueueConfig::default()).unwrap();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    // Acknowledged: durable before its answer.
    let acked = q
        .submit(JobSpec::builtin(JobKind::Upper, "kept"))
        .await
        .unwrap();
    let claimer = {
        let (q, w) = (q.clone(), w.clone());
        tokio::spawn(async move {
            q.claim(&w, caps(&[JobKind::Hash]), Duration::from_secs(30))
                .await
        })
    };
    wait_for_parked(&q, 1).await;
    // Hold the writer so the submit and a hook that never returns share the next group: the
    // group's fsync comes only after that hook.
    let slow = store.clone();
    tokio::spawn(async move {
        slow.write(|_| {
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let submitter = q.clone();
    tokio::spawn(async move { submitter.submit(hash_job("lost")).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    tokio::spawn(async move {
        store
            .write(|tx| {
                tx.on_visible(|_| std::thread::sleep(Duration::from_secs(60)));
                Ok(())
            })
            .await
    });
    let a = claimer.await.unwrap().unwrap().unwrap();
    println!("ACKED {acked}");
    println!("HANDED {} {} {}", a.job.id, a.attempt, a.lease);
    let _ = std::io::stdout().flush();
    // SAFETY: ends this (child) process at once, as a crash would.
    unsafe { libc::_exit(0) }
}

/// A claim may be answered before the submit that made its job is durable (the hand-off goes
/// out while the fsync runs). A crash in between must lose nothing acknowledged and must not
/// let the worker holding that claim write into anything.
#[tokio::test]
async fn a_crash_after_a_hand_off_before_the_submits_fsync_loses_nothing_acknowledged() {
    if let Some(dir) = std::env::var_os("GAIA_QUEUE_CRASH_DIR") {
        hand_off_then_crash(std::path::Path::new(&dir)).await;
        unreachable!("the child ends inside");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "queue::tests::a_crash_after_a_hand_off_before_the_submits_fsync_loses_nothing_acknowledged",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GAIA_QUEUE_CRASH_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let field = |tag: &str, i: usize| -> u64 {
        let line = stdout
            .lines()
            .find_map(|l| l.find(tag).map(|i| &l[i + tag.len()..]))
            .unwrap_or_else(|| {
                panic!(
                    "no {tag} in {stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        line.split_whitespace().nth(i).unwrap().parse().unwrap()
    };
    let acked = field("ACKED ", 0);
    let (id, attempt, lease) = (
        field("HANDED ", 0),
        field("HANDED ", 1) as u32,
        field("HANDED ", 2),
    );
    let q = Queue::new(Store::open(dir.path()).unwrap(), QueueConfig::default()).unwrap();
    // The acknowledged submit survived; the one never answered is gone, with its claim.
    assert_eq!(job(&q, acked).state, JobState::Queued);
    assert!(q.store().read().unwrap().job(id).unwrap().is_none());
    // Its id is given again, but never its lease: the worker that held it is refused.
    assert_eq!(q.submit(hash_job("again")).await.unwrap(), id);
    let w = register(&q, "w2", &[JobKind::Hash]).await;
    let new = claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();
    assert_eq!((new.job.id, new.attempt), (id, attempt));
    assert_ne!(new.lease, lease);
    let old = Assignment {
        attempt,
        lease,
        job: new.job.clone(),
    };
    assert!(is_stale(
        q.add_rows(id, batch(&old, rows(0, 1))).await.unwrap_err()
    ));
    assert!(is_stale(
        q.complete(id, complete(&old, Outcome::Succeeded))
            .await
            .unwrap_err()
    ));
    q.add_rows(id, batch(&new, rows(0, 1))).await.unwrap();
}

#[tokio::test]
async fn invalid_batches_are_refused_before_anything_is_written() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    let a = claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();
    let mut bad = rows(0, 3);
    bad[2].metrics.push(("../etc".into(), 1.0));
    let e = q.add_rows(id, batch(&a, bad)).await.unwrap_err();
    assert!(matches!(e, Error::Request(RequestError::Invalid(_))), "{e}");
    let e = q
        .add_rows(id, batch(&a, rows(0, MAX_ROWS_PER_BATCH as u64 + 1)))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("at most"), "{e}");
    assert!(q.store().read().unwrap().rows(id, 1).unwrap().is_empty());
}

/// Waits (yielding, no fixed sleep) until `n` claims are parked in the queue.
async fn wait_for_waiters(q: &Queue, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while q.lock().waiters.len() < n {
        assert!(Instant::now() < deadline, "claims never started waiting");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn done(a: &Assignment) -> crate::protocol::Finished {
    crate::protocol::Finished {
        job: a.job.id,
        report: CompleteRequest {
            attempt: a.attempt,
            lease: a.lease,
            outcome: Outcome::Succeeded,
            exit_code: None,
            duration_ms: 1,
            error: None,
            result: Some(serde_json::json!("ok")),
            started_us: None,
        },
    }
}

#[tokio::test]
async fn a_report_and_the_next_claim_share_one_call() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let first = q.submit(hash_job("1")).await.unwrap();
    let second = q.submit(hash_job("2")).await.unwrap();
    let c = caps(&[JobKind::Hash]);
    let a = claim_now(&q, &w, &c).await.unwrap();
    assert_eq!(a.job.id, first);
    let (refused, next) = q
        .complete_and_claim(&w, done(&a), c.clone(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(refused, None);
    assert_eq!(job(&q, first).state, JobState::Succeeded);
    assert_eq!(job(&q, first).result, Some(serde_json::json!("ok")));
    let b = next.expect("the second job is claimed in the same call");
    assert_eq!(b.job.id, second);
    assert_eq!(q.lease_of(second).map(|l| l.0), Some(1));
    assert!(q.lease_of(first).is_none());

    // The same report again (its answer was lost): accepted as it was, nothing changes.
    let (refused, next) = q
        .complete_and_claim(&w, done(&a), c.clone(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(refused, None);
    assert!(next.is_none());
    assert_eq!(job(&q, first).state, JobState::Succeeded);

    // A report of a lease that is not ours is refused, and the claim still happens.
    let third = q.submit(hash_job("3")).await.unwrap();
    let mut stale = done(&b);
    stale.report.lease += 1000;
    let (refused, next) = q
        .complete_and_claim(&w, stale, c, Duration::ZERO)
        .await
        .unwrap();
    assert!(refused.is_some_and(|e| e.contains("no longer current")));
    assert_eq!(next.map(|n| n.job.id), Some(third));
    assert_eq!(job(&q, second).state, JobState::Running);
}

#[tokio::test]
async fn a_report_sent_again_before_its_lease_is_forgotten_is_no_error() {
    // Between a report's commit and the queue dropping its lease from memory, the same report
    // again passes the in-memory check and meets the ended job in the write: not "refused".
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let first = q.submit(hash_job("1")).await.unwrap();
    let c = caps(&[JobKind::Hash]);
    let a = claim_now(&q, &w, &c).await.unwrap();
    let (attempt, lease, worker) = q.lease_of(first).unwrap();
    let (refused, _) = q
        .complete_and_claim(&w, done(&a), c.clone(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(refused, None);
    q.lock().leases.insert(
        first,
        super::LeaseState {
            lease,
            attempt,
            worker,
            deadline: std::time::Instant::now() + Duration::from_secs(60),
        },
    );
    let (refused, next) = q
        .complete_and_claim(&w, done(&a), c.clone(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(refused, None, "a repeat is not refused");
    assert!(next.is_none());
    assert_eq!(job(&q, first).state, JobState::Succeeded);
    // A report of another lease in that window is still refused.
    q.lock().leases.get_mut(&first).unwrap().lease += 7;
    let mut other = done(&a);
    other.report.lease += 7;
    let (refused, _) = q
        .complete_and_claim(&w, other, c, Duration::ZERO)
        .await
        .unwrap();
    assert!(refused.is_some_and(|e| e.contains("no longer current")));
}

#[tokio::test]
async fn worker_reports_are_bounded_in_size() {
    let (q, _dir) = queue();
    let mut req = RegisterRequest {
        worker_id: None,
        name: "big".into(),
        version: "0.1.0".into(),
        hardware: crate::model::Hardware {
            cpu_model: "x".repeat(1 << 20),
            ..Default::default()
        },
        kinds: vec![JobKind::Hash],
        tags: Vec::new(),
        slots: 1,
    };
    let e = q.register(req.clone()).await.unwrap_err();
    assert!(e.to_string().contains("cpu_model"), "{e}");
    req.hardware.cpu_model = "EPYC".into();
    req.kinds = vec![JobKind::Hash; 1000];
    assert!(q.register(req.clone()).await.is_err());
    req.kinds = vec![JobKind::Hash];
    let w = q.register(req).await.unwrap().id;
    let hb = HeartbeatRequest {
        usage: crate::model::Usage {
            gpu_percent: vec![1.0; 100_000],
            ..Default::default()
        },
        ..Default::default()
    };
    let e = q.heartbeat(&w, hb).unwrap_err();
    assert!(e.to_string().contains("GPU"), "{e}");
    assert!(q.workers().iter().all(|w| w.usage.gpu_percent.is_empty()));
}

#[tokio::test]
async fn a_full_registry_makes_room_by_dropping_the_longest_offline_worker() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let q = Queue::new(
        store,
        QueueConfig {
            lease_timeout: Duration::from_millis(100),
            heartbeat_interval: Duration::from_millis(20),
            max_workers: 2,
            forget_offline_after: Duration::from_secs(3600),
            ..QueueConfig::default()
        },
    )
    .unwrap();
    let a = register(&q, "a", &[JobKind::Hash]).await;
    let b = register(&q, "b", &[JobKind::Hash]).await;
    // Full, and both online: a third is refused.
    let e = q.register(registration("c", None)).await.unwrap_err();
    assert!(e.to_string().contains("2 workers"), "{e}");
    // `a` goes silent and offline; the next new worker takes its place.
    tokio::time::sleep(Duration::from_millis(60)).await;
    q.heartbeat(&b, HeartbeatRequest::default()).unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    q.heartbeat(&b, HeartbeatRequest::default()).unwrap();
    q.reap().await.unwrap();
    let c = register(&q, "c", &[JobKind::Hash]).await;
    let ids: Vec<String> = q.workers().into_iter().map(|w| w.id).collect();
    assert!(
        ids.contains(&b) && ids.contains(&c) && !ids.contains(&a),
        "{ids:?}"
    );
    assert!(
        q.store()
            .read()
            .unwrap()
            .workers()
            .unwrap()
            .iter()
            .all(|w| w.id != a)
    );
}

#[tokio::test]
async fn a_worker_offline_past_the_forget_time_leaves_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let q = Queue::new(
        store,
        QueueConfig {
            lease_timeout: Duration::from_millis(50),
            heartbeat_interval: Duration::from_millis(10),
            forget_offline_after: Duration::from_millis(100),
            ..QueueConfig::default()
        },
    )
    .unwrap();
    let w = register(&q, "cloud", &[JobKind::Hash]).await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    q.reap().await.unwrap();
    assert_eq!(q.workers()[0].state, WorkerState::Offline, "offline first");
    tokio::time::sleep(Duration::from_millis(150)).await;
    q.reap().await.unwrap();
    assert!(q.workers().is_empty());
    assert!(q.store().read().unwrap().workers().unwrap().is_empty());
    // It may come back: it registers again as itself.
    let again = q.register(registration("cloud", Some(&w))).await.unwrap();
    assert_eq!(again.id, w);
}

#[tokio::test]
async fn a_stall_of_the_server_is_not_counted_against_leases() {
    let (q, _dir) = queue_with(Duration::from_millis(300));
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    let a = claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();
    q.reap().await.unwrap();
    // The server could not run for 3 s: far past the lease timeout, but no heartbeat could
    // have been heard meanwhile.
    q.lock().last_reap = Some(Instant::now() - Duration::from_secs(3));
    for l in q.lock().leases.values_mut() {
        l.deadline = Instant::now() - Duration::from_secs(2);
    }
    q.reap().await.unwrap();
    assert_eq!(
        job(&q, id).state,
        JobState::Running,
        "the stall expired the lease"
    );
    assert_eq!(job(&q, id).attempt, a.attempt);
    assert_eq!(q.workers()[0].state, WorkerState::Busy);
    let events = q.store().read().unwrap().events_after(0, 100).unwrap();
    assert!(events.iter().any(|e| e.kind == "server_stalled"));
    // Silence after the server resumed still counts.
    tokio::time::sleep(Duration::from_millis(700)).await;
    q.reap().await.unwrap();
    assert_eq!(
        job(&q, id).state,
        JobState::Queued,
        "a real silence expires the lease"
    );
}

#[tokio::test]
async fn progress_fractions_outside_0_to_1_are_refused() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let id = q.submit(hash_job("x")).await.unwrap();
    let a = claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();
    for f in [5.0, -1e308, f64::NAN, f64::INFINITY] {
        let mut b = batch(&a, rows(0, 1));
        b.fraction = Some(f);
        let e = q.add_rows(id, b).await.unwrap_err().to_string();
        assert!(e.contains("fraction"), "{f}: {e}");
    }
    let mut b = batch(&a, rows(0, 1));
    b.fraction = Some(0.25);
    q.add_rows(id, b).await.unwrap();
    assert_eq!(job(&q, id).progress.fraction, Some(0.25));
}

#[tokio::test]
async fn preempted_vs_lost_vs_failed() {
    let (q, _dir) = queue_with(Duration::ZERO);
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let c = caps(&[JobKind::Hash]);
    let mut spec = hash_job("x");
    spec.max_attempts = 1;
    // Preempted: queued again at once, no attempt spent (max_attempts is 1, yet it runs again).
    let id = q.submit(spec.clone()).await.unwrap();
    let a = claim_now(&q, &w, &c).await.unwrap();
    let preempt = |a: &Assignment| RequeueRequest {
        attempt: a.attempt,
        lease: a.lease,
        reason: Some("slurm time limit".into()),
        preempted: true,
    };
    let j = q.requeue(id, preempt(&a)).await.unwrap();
    assert_eq!(j.state, JobState::Queued);
    assert_eq!(
        j.attempts[0].outcome.as_deref(),
        Some("preempted: slurm time limit")
    );
    let events = q.store().read().unwrap().events_after(0, 100).unwrap();
    assert!(events.iter().any(|e| e.kind == "job_preempted"));
    let b = claim_now(&q, &w, &c).await.unwrap();
    assert_eq!(b.attempt, 2);
    // Failed: the experiment's own failure ends it, whatever attempts are left.
    let j = q.complete(id, complete(&b, Outcome::Failed)).await.unwrap();
    assert_eq!(j.state, JobState::Failed);
    // Lost: a lease expiry spends the only attempt.
    let id2 = q.submit(spec.clone()).await.unwrap();
    let _ = claim_now(&q, &w, &c).await.unwrap();
    q.reap().await.unwrap();
    assert_eq!(job(&q, id2).state, JobState::Lost);
    // A worker that preempts the same job over and over: lost after max_give_backs.
    let id3 = q.submit(spec).await.unwrap();
    let max = q.config().max_give_backs;
    for n in 1..=max + 1 {
        let a = claim_now(&q, &w, &c).await.unwrap();
        assert_eq!(a.job.id, id3);
        let j = q.requeue(id3, preempt(&a)).await.unwrap();
        if n <= max {
            assert_eq!(j.state, JobState::Queued, "give-back {n}");
        } else {
            assert_eq!(j.state, JobState::Lost);
            assert!(j.error.unwrap().contains("gave it back"));
        }
    }
}

// ---- adaptive studies ---------------------------------------------------------------------

/// A study of experiments on `sphere` with params `params` (command-line text), `seeds`, and
/// the given sampler settings and early-stopping rule.
fn study_req(
    name: &str,
    params: &[&str],
    seeds: &str,
    sampler: Option<(&str, u64, Option<u32>)>,
    rule: Option<&str>,
) -> crate::protocol::StudySubmit {
    use crate::protocol::{Axis, ParamInput, RuleInput, StudySubmit, SweepInput};
    StudySubmit {
        name: name.into(),
        template: JobSpec::experiment("cma_es", 1000),
        sweep: SweepInput {
            methods: Axis::List(Vec::new()),
            envs: Axis::Text("sphere".into()),
            seeds: Axis::Text(seeds.into()),
            params: params
                .iter()
                .map(|p| ParamInput::Text(p.to_string()))
                .collect(),
        },
        again: false,
        confirm_large: false,
        dry_run: false,
        sampler: sampler.map(|s| s.0.parse().unwrap()),
        samples: sampler.map(|s| s.1),
        sample_seed: sampler.map(|_| 7),
        parallel: sampler.and_then(|s| s.2),
        early_stop: rule.map(|r| RuleInput::Text(r.into())),
    }
}

/// Rows reaching `evals` evaluations with best-ever `value`.
fn evals_rows(from_seq: u64, evals: f64, value: f64) -> Vec<Row> {
    vec![Row {
        seq: from_seq,
        generation: Some(from_seq + 1),
        evals: Some(evals),
        best_ever: Some(value),
        ..Row::default()
    }]
}

/// Claims every queued experiment, keyed by its param `x` (and seed).
async fn claim_all(q: &Queue, w: &str) -> Vec<Assignment> {
    let c = caps(&[JobKind::Experiment]);
    let mut out = Vec::new();
    while let Some(a) = claim_now(q, w, &c).await {
        out.push(a);
    }
    out
}

fn x_of(a: &Assignment) -> i64 {
    a.job.spec.params["x"].as_i64().unwrap()
}

fn events_of(q: &Queue, kind: &str) -> Vec<crate::model::Event> {
    q.store()
        .read()
        .unwrap()
        .events_after(0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

#[tokio::test]
async fn asha_prunes_a_configuration_that_falls_behind_at_its_rung() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Experiment]).await;
    let sub = study_req(
        "tune",
        &["x=1,2,3"],
        "",
        None,
        Some("asha(min_evals=100, eta=3)"),
    );
    q.submit_study(sub).await.unwrap();
    let mut a = claim_all(&q, &w).await;
    a.sort_by_key(x_of);
    assert_eq!(a.len(), 3);
    // x=1 reaches rung 0 (100 evals) first: alone there, it goes on.
    let ack = q
        .add_rows(a[0].job.id, batch(&a[0], evals_rows(0, 120.0, -10.0)))
        .await
        .unwrap();
    assert!(!ack.cancel);
    // x=2 better: goes on. x=3 far worse than the top third: stopped at once.
    let ack = q
        .add_rows(a[1].job.id, batch(&a[1], evals_rows(0, 100.0, -1.0)))
        .await
        .unwrap();
    assert!(!ack.cancel);
    let ack = q
        .add_rows(a[2].job.id, batch(&a[2], evals_rows(0, 150.0, -20.0)))
        .await
        .unwrap();
    assert!(ack.cancel, "the pruned job's worker is told at once");
    let j3 = job(&q, a[2].job.id);
    assert!(
        j3.prune_reason.as_deref().unwrap().contains("rung 0"),
        "{j3:?}"
    );
    assert_eq!(events_of(&q, "config_pruned").len(), 1);
    // Its heartbeat says so too.
    let hb = HeartbeatRequest {
        running: vec![LeaseRef {
            job: a[2].job.id,
            attempt: a[2].attempt,
            lease: a[2].lease,
        }],
        ..Default::default()
    };
    assert_eq!(q.heartbeat(&w, hb).unwrap().cancel, vec![a[2].job.id]);
    // The worker stops it and reports it cancelled: it ends pruned, rows kept.
    let j = q
        .complete(a[2].job.id, complete(&a[2], Outcome::Cancelled))
        .await
        .unwrap();
    assert_eq!(j.state, JobState::Pruned);
    assert_eq!(q.counts().unwrap()["pruned"], 1);
    // A later crossing never judges it again, and the others are judged once.
    let ack = q
        .add_rows(a[1].job.id, batch(&a[1], evals_rows(1, 200.0, -0.5)))
        .await
        .unwrap();
    assert!(!ack.cancel);
    // The study is done when its last job ends (once).
    for x in &a[..2] {
        q.complete(x.job.id, complete(x, Outcome::Succeeded))
            .await
            .unwrap();
    }
    assert_eq!(events_of(&q, "study_done").len(), 1);
    let cells = q.store().read().unwrap().cells("tune").unwrap();
    assert_eq!(cells.len(), 3);
    assert!(
        matches!(cells[2].state, CellState::Pruned { rung: 0, .. }),
        "{cells:?}"
    );
    assert_eq!(cells[0].state, CellState::Done);
}

#[tokio::test]
async fn a_configuration_is_judged_once_all_its_seeds_reach_the_rung_and_the_decision_survives_a_restart()
 {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::new(Store::open(dir.path()).unwrap(), QueueConfig::default()).unwrap();
    let w = register(&q, "w1", &[JobKind::Experiment]).await;
    let sub = study_req(
        "seeds",
        &["x=1,2"],
        "1..2",
        None,
        Some("asha(min_evals=100, eta=2)"),
    );
    q.submit_study(sub).await.unwrap();
    let mut a = claim_all(&q, &w).await;
    a.sort_by_key(|a| (x_of(a), a.job.spec.seed()));
    // x=1: both seeds reach the rung (mean -5): judged alone → on.
    q.add_rows(a[0].job.id, batch(&a[0], evals_rows(0, 100.0, -4.0)))
        .await
        .unwrap();
    let cells = q.store().read().unwrap().cells("seeds").unwrap();
    assert_eq!(cells[0].rung, None, "one seed of two: not judged yet");
    q.add_rows(a[1].job.id, batch(&a[1], evals_rows(0, 100.0, -6.0)))
        .await
        .unwrap();
    let cells = q.store().read().unwrap().cells("seeds").unwrap();
    assert_eq!(cells[0].rung, Some(0));
    // x=2: one seed far ahead, but its mean with the other (-30) is below x=1's: pruned only
    // once the second seed reaches the rung, and then both stop.
    let ack = q
        .add_rows(a[2].job.id, batch(&a[2], evals_rows(0, 100.0, -1.0)))
        .await
        .unwrap();
    assert!(!ack.cancel);
    drop(q);
    // A restart in the middle: what was recorded stays, nothing is decided twice. (The writer
    // thread holds the file until its channel closes.)
    let store = loop {
        match Store::open(dir.path()) {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    let q = Queue::new(store, QueueConfig::default()).unwrap();
    let ack = q
        .add_rows(a[3].job.id, batch(&a[3], evals_rows(0, 100.0, -59.0)))
        .await
        .unwrap();
    assert!(ack.cancel);
    assert!(
        job(&q, a[2].job.id).cancel_requested,
        "its sibling seed stops too"
    );
    assert_eq!(events_of(&q, "config_pruned").len(), 1);
    // Crossing again after the restart changes nothing.
    let ack = q
        .add_rows(a[0].job.id, batch(&a[0], evals_rows(1, 150.0, -3.0)))
        .await
        .unwrap();
    assert!(!ack.cancel);
    assert_eq!(events_of(&q, "config_pruned").len(), 1);
}

#[tokio::test]
async fn tpe_proposes_the_next_configuration_as_one_ends_until_its_samples_are_used() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Experiment]).await;
    let sub = study_req("tpe", &["x=int(1,50)"], "", Some(("tpe", 5, Some(2))), None);
    let done = q.submit_study(sub).await.unwrap();
    assert_eq!(
        done.jobs.len(),
        2,
        "parallel 2: two configurations in flight"
    );
    let mut seen = std::collections::BTreeSet::new();
    let mut ended = 0;
    while let Some(a) = claim_now(&q, &w, &caps(&[JobKind::Experiment])).await {
        assert!(seen.insert(x_of(&a)), "a configuration proposed twice");
        q.add_rows(
            a.job.id,
            batch(&a, evals_rows(0, 1000.0, -(x_of(&a) as f64))),
        )
        .await
        .unwrap();
        q.complete(a.job.id, complete(&a, Outcome::Succeeded))
            .await
            .unwrap();
        ended += 1;
        assert!(ended <= 5, "more configurations than samples");
    }
    assert_eq!(ended, 5);
    assert_eq!(events_of(&q, "config_proposed").len(), 3);
    assert_eq!(events_of(&q, "study_done").len(), 1);
    let rec = q.store().read().unwrap().study("tpe").unwrap().unwrap();
    assert_eq!(rec.job_count(), 5, "the record holds every proposed job");
}

#[tokio::test]
async fn samplers_never_repeat_a_configuration_in_a_study() {
    let (q, _dir) = queue();
    let sub = study_req("rand", &["x=1,2,3,4"], "", Some(("random", 3, None)), None);
    let first = q.submit_study(sub).await.unwrap();
    assert_eq!(first.jobs.len(), 3);
    // Another seed draws again: only the one configuration left.
    let mut again = study_req("rand", &["x=1,2,3,4"], "", Some(("random", 2, None)), None);
    again.sample_seed = Some(8);
    let e = q.submit_study(again).await.unwrap_err().to_string();
    assert!(e.contains("1 not tried yet"), "{e}");
    let mut last = study_req("rand", &["x=1,2,3,4"], "", Some(("random", 1, None)), None);
    last.sample_seed = Some(9);
    let done = q.submit_study(last).await.unwrap();
    let mut xs: Vec<i64> = first
        .jobs
        .iter()
        .chain(done.jobs.iter())
        .map(|(_, s)| s.params["x"].as_i64().unwrap())
        .collect();
    xs.sort();
    assert_eq!(xs, [1, 2, 3, 4]);
}

/// Issue 17: a worker whose allocation ends soon claims with `max_job_secs`; jobs its study has
/// measured as longer wait for another worker, jobs of unknown length still go.
#[tokio::test]
async fn a_worker_near_its_end_gets_only_jobs_expected_to_finish_in_time() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Experiment]).await;
    let c = caps(&[JobKind::Experiment]);
    let in_study = |seed| {
        let mut s = JobSpec::experiment("cma_es", 10_000);
        s.study = Some("measured".into());
        s.seed = Some(seed);
        s
    };
    // The study's first job ran 1,000 evaluations in 10 s: 100 evals/s, so a 10,000-eval job
    // of it takes 100 s.
    let first = q.submit(in_study(1)).await.unwrap();
    let a = claim_now(&q, &w, &c).await.unwrap();
    assert_eq!(a.job.id, first);
    let mut row = rows(0, 1);
    row[0].evals = Some(1000.0);
    q.add_rows(first, batch(&a, row)).await.unwrap();
    q.complete(first, complete(&a, Outcome::Succeeded))
        .await
        .unwrap();
    q.store()
        .write(move |tx| {
            let prev = tx.job(first)?.unwrap();
            let mut j = prev.clone();
            j.started_at = Some(j.finished_at.unwrap() - 10_000);
            tx.save_job(Some(&prev), &j)?;
            Ok(())
        })
        .await
        .unwrap();
    let long = q.submit(in_study(2)).await.unwrap();
    let unknown = q
        .submit(JobSpec::experiment("cma_es", 10_000))
        .await
        .unwrap();
    let mut short = JobSpec::experiment("cma_es", 10_000);
    short.timeout_secs = Some(30);
    let short = q.submit(short).await.unwrap();

    // 50 s left: the study's job (100 s) is skipped; the unknown one goes first.
    let near = Capabilities {
        max_job_secs: Some(50.0),
        ..c.clone()
    };
    let a = claim_now(&q, &w, &near).await.unwrap();
    assert_eq!(a.job.id, unknown);
    // Then the one whose timeout bounds it at 30 s.
    let b = claim_now(&q, &w, &near).await.unwrap();
    assert_eq!(b.job.id, short);
    // Nothing else fits in 50 s.
    assert!(claim_now(&q, &w, &near).await.is_none());
    assert_eq!(job(&q, long).state, JobState::Queued);
    // 150 s left: it fits.
    let far = Capabilities {
        max_job_secs: Some(150.0),
        ..c.clone()
    };
    assert_eq!(claim_now(&q, &w, &far).await.unwrap().job.id, long);
}

/// Issue 17 (5,000 waiting workers): a submitted job wakes one waiting claim, not every one
/// it fits — each woken claim is a write transaction, and waking all of them for every job made
/// a fleet's idle workers race for it. Ten jobs for a hundred waiters: ten wake, ten jobs go.
#[tokio::test]
async fn a_job_wakes_one_waiting_claim_not_all_of_them() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let claims: Vec<_> = (0..100)
        .map(|_| {
            let q = q.clone();
            let w = w.clone();
            tokio::spawn(async move {
                q.claim(&w, caps(&[JobKind::Hash]), Duration::from_secs(30))
                    .await
                    .unwrap()
            })
        })
        .collect();
    wait_for_waiters(&q, 100).await;
    let ids = q
        .submit_many((0..10).map(|i| hash_job(&i.to_string())).collect())
        .await
        .unwrap();
    let woken = q
        .lock()
        .waiters
        .iter()
        .filter(|w| w.woken_for.is_some())
        .count();
    assert!(woken <= 10, "{woken} claims woken for 10 jobs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while ids.iter().any(|&id| job(&q, id).state == JobState::Queued) {
        assert!(
            Instant::now() < deadline,
            "jobs left queued with claims waiting"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(q.lock().waiters.len(), 90, "the other claims still wait");
    for c in claims {
        c.abort();
    }
}

/// A claim woken for one job that takes another (of higher priority, woken for a claim that
/// cannot run the first) passes its wake on: the first job is not left queued while a claim
/// that could run it waits.
#[tokio::test]
async fn a_wake_the_claim_did_not_use_goes_to_another_claim() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash, JobKind::Sum]).await;
    let spawn = |kinds: &'static [JobKind]| {
        let q = q.clone();
        let w = w.clone();
        tokio::spawn(async move {
            q.claim(&w, caps(kinds), Duration::from_secs(20))
                .await
                .unwrap()
        })
    };
    // Waiting longest first: A runs both kinds, B only sums, C only hashes.
    let a = spawn(&[JobKind::Hash, JobKind::Sum]);
    wait_for_waiters(&q, 1).await;
    let b = spawn(&[JobKind::Sum]);
    wait_for_waiters(&q, 2).await;
    let c = spawn(&[JobKind::Hash]);
    wait_for_waiters(&q, 3).await;
    // The hash job wakes A; the sum job (first in claim order) wakes B. A takes the sum job.
    let ids = q
        .submit_many(vec![
            hash_job("x"),
            with_priority(JobSpec::builtin(JobKind::Sum, "1 2"), 10),
        ])
        .await
        .unwrap();
    let t = Instant::now();
    let got_a = a.await.unwrap().unwrap();
    assert_eq!(got_a.job.id, ids[1]);
    // The hash job reaches C through A's passed-on wake, long before C's wait ends.
    let got_c = c.await.unwrap().unwrap();
    assert_eq!(got_c.job.id, ids[0]);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    b.abort();
}

/// Polls opened at the same instant that find no job end spread over the last fifth of their
/// wait, not together: a fleet that connected at once would otherwise answer and re-open every
/// poll at the same instant, round after round.
#[tokio::test]
async fn polls_opened_together_do_not_all_end_together() {
    let (q, _dir) = queue_with(Duration::from_secs(60));
    let mut polls = Vec::new();
    for i in 0..40 {
        let w = register(&q, &format!("w{i}"), &[JobKind::Hash]).await;
        let q = q.clone();
        polls.push(tokio::spawn(async move {
            let t = Instant::now();
            let got = q
                .claim(&w, caps(&[JobKind::Hash]), Duration::from_secs(1))
                .await
                .unwrap();
            assert!(got.is_none());
            t.elapsed()
        }));
    }
    let mut ends = Vec::new();
    for p in polls {
        ends.push(p.await.unwrap());
    }
    ends.sort();
    let (first, last) = (ends[0], ends[ends.len() - 1]);
    assert!(
        first >= Duration::from_millis(790),
        "ended early: {first:?}"
    );
    assert!(last <= Duration::from_millis(1500), "ended late: {last:?}");
    assert!(
        last - first >= Duration::from_millis(50),
        "40 polls ended within {:?} of each other",
        last - first
    );
    // Short waits are kept as asked.
    assert_eq!(
        spread_wait(Duration::from_millis(999), 7),
        Duration::from_millis(999)
    );
    let spread: Vec<Duration> = (0..1000)
        .map(|n| spread_wait(Duration::from_secs(30), n))
        .collect();
    assert!(
        spread
            .iter()
            .all(|w| *w > Duration::from_secs(24) && *w <= Duration::from_secs(30))
    );
    for second in 24..30 {
        let n = spread.iter().filter(|w| w.as_secs() == second).count();
        assert!(
            (120..=220).contains(&n),
            "{n} of 1000 polls end in second {second}"
        );
    }
}

/// Writes undecodable bytes over a record of a JSON table.
async fn damage(q: &Queue, table: &'static str, key: &str) {
    let key = key.to_string();
    q.store()
        .write(move |tx| {
            let garbage: &[u8] = &[0xff, 0x00, 0x7b];
            match table {
                "study_rules" => tx.study_rules.open_mut()?.insert(key.as_str(), garbage),
                "usage" => tx.usage.open_mut()?.insert(key.as_str(), garbage),
                "users" => tx.users.open_mut()?.insert(key.as_str(), garbage),
                // `key` is "study/configuration".
                "study_cells" => {
                    let (study, cell) = key.split_once('/').unwrap();
                    tx.study_cells.open_mut()?.insert((study, cell), garbage)
                }
                other => unreachable!("no table {other} here"),
            }
            .map_err(StoreError::from)?;
            Ok(())
        })
        .await
        .unwrap();
}

/// A study whose rules record does not decode must not stop its jobs: their rows go in and
/// they end; the study's step is skipped, and the end says so in an event. (Before, a row
/// batch was refused after its rows were written, and a job's end answered an error after the
/// end was written.)
#[tokio::test]
async fn a_damaged_study_rules_record_skips_the_study_step_not_the_job() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Experiment]).await;
    let sub = study_req(
        "tune",
        &["x=1,2"],
        "",
        None,
        Some("asha(min_evals=100, eta=3)"),
    );
    q.submit_study(sub).await.unwrap();
    let a = claim_all(&q, &w).await;
    assert_eq!(a.len(), 2);
    damage(&q, "study_rules", "tune").await;
    let ack = q
        .add_rows(a[0].job.id, batch(&a[0], evals_rows(0, 120.0, -10.0)))
        .await
        .unwrap();
    assert_eq!(ack.stored, 1);
    let read = q.store().read().unwrap();
    assert_eq!(read.rows(a[0].job.id, a[0].attempt).unwrap().len(), 1);
    drop(read);
    let done = q
        .complete(a[0].job.id, complete(&a[0], Outcome::Succeeded))
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    let skipped = events_of(&q, "study_step_skipped");
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(
        skipped[0].message.contains("study rules") && skipped[0].message.contains("tune"),
        "{}",
        skipped[0].message
    );
    // The other job ends too (a second event: one per end).
    q.complete(a[1].job.id, complete(&a[1], Outcome::Failed))
        .await
        .unwrap();
    assert_eq!(job(&q, a[1].job.id).state, JobState::Failed);
    assert_eq!(events_of(&q, "study_step_skipped").len(), 2);
}

/// The cell (configuration record) a job belongs to, and its value at rung `k`, read inside a
/// write (where the study tables' accessors are).
async fn cell_of(q: &Queue, job: JobId, k: u32) -> (String, Option<f64>) {
    q.store()
        .write(move |tx| {
            let key = tx
                .job_cell(job)?
                .expect("a job of an adaptive study has a cell");
            Ok((key, tx.job_rung(job, k)?))
        })
        .await
        .unwrap()
}

/// What a `tpe` end's step skipped whole leaves: one `study_step_skipped` event, the
/// configuration's score not written, no sample spent (of the two the study began with).
async fn assert_tpe_end_skipped_whole(q: &Queue, key: &str) {
    assert_eq!(events_of(q, "study_step_skipped").len(), 1);
    let (cell, rules) = cell_and_rules(q, "tpe", key).await;
    assert_eq!(cell.unwrap().score, None, "its score is not written");
    assert_eq!(rules.unwrap().tpe, Some((0, 2)), "no sample is spent");
}

/// A configuration's cell and its study's rules, read inside a write.
async fn cell_and_rules(
    q: &Queue,
    study: &'static str,
    key: &str,
) -> (Option<CellRecord>, Option<StudyRules>) {
    let key = key.to_string();
    q.store()
        .write(move |tx| Ok((tx.cell(study, &key)?, tx.study_rules(study)?)))
        .await
        .unwrap()
}

/// A row batch whose study step meets a damaged cell record keeps its rows and writes nothing
/// of the step: the record is read before the step's first write. (Before, the job's value at
/// the rung it crossed was written, then the step was skipped half-done.)
#[tokio::test]
async fn a_damaged_cell_record_skips_the_whole_step_of_a_row_batch() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Experiment]).await;
    let sub = study_req(
        "tune",
        &["x=1,2"],
        "",
        None,
        Some("asha(min_evals=100, eta=3)"),
    );
    q.submit_study(sub).await.unwrap();
    let a = claim_all(&q, &w).await;
    let (key, rung) = cell_of(&q, a[0].job.id, 0).await;
    assert_eq!(rung, None);
    damage(&q, "study_cells", &format!("tune/{key}")).await;
    let ack = q
        .add_rows(a[0].job.id, batch(&a[0], evals_rows(0, 120.0, -10.0)))
        .await
        .unwrap();
    assert_eq!(ack.stored, 1, "the rows go in");
    assert_eq!(
        cell_of(&q, a[0].job.id, 0).await.1,
        None,
        "nothing of the skipped step is written"
    );
    // The job ends, and its end says the step was skipped.
    q.complete(a[0].job.id, complete(&a[0], Outcome::Succeeded))
        .await
        .unwrap();
    assert_eq!(job(&q, a[0].job.id).state, JobState::Succeeded);
    assert_eq!(events_of(&q, "study_step_skipped").len(), 1);
}

/// A job's end whose `tpe` step would meet another configuration's damaged cell (read to
/// propose the next one) writes nothing of the step: not its own configuration's score, not a
/// spent sample. (Before, the score was written and then the step skipped half-done.)
#[tokio::test]
async fn a_damaged_cell_record_skips_the_whole_step_of_a_tpe_study_s_end() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Experiment]).await;
    let sub = study_req("tpe", &["x=int(1,50)"], "", Some(("tpe", 5, Some(2))), None);
    let done = q.submit_study(sub).await.unwrap();
    assert_eq!(done.jobs.len(), 2);
    let a = claim_now(&q, &w, &caps(&[JobKind::Experiment]))
        .await
        .unwrap();
    let other = done
        .jobs
        .iter()
        .map(|(id, _)| *id)
        .find(|&id| id != a.job.id)
        .unwrap();
    let (mine, _) = cell_of(&q, a.job.id, 0).await;
    let (theirs, _) = cell_of(&q, other, 0).await;
    damage(&q, "study_cells", &format!("tpe/{theirs}")).await;
    q.add_rows(a.job.id, batch(&a, evals_rows(0, 1000.0, -3.0)))
        .await
        .unwrap();
    let ended = q
        .complete(a.job.id, complete(&a, Outcome::Succeeded))
        .await
        .unwrap();
    assert_eq!(ended.state, JobState::Succeeded);
    assert!(events_of(&q, "config_proposed").is_empty());
    assert_tpe_end_skipped_whole(&q, &mine).await;
}

/// A `tpe` study's job end reads every configuration only when its own configuration may end
/// with it (that is when `tpe` proposes): with a seed of it still running, another
/// configuration's damaged record does not touch the step; the last seed's end reads them all,
/// finds it, and skips that step whole.
#[tokio::test]
async fn a_tpe_job_end_reads_the_other_configurations_only_when_its_own_may_end() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Experiment]).await;
    let sub = study_req(
        "tpe",
        &["x=int(1,50)"],
        "1..2",
        Some(("tpe", 5, Some(2))),
        None,
    );
    let done = q.submit_study(sub).await.unwrap();
    assert_eq!(done.jobs.len(), 4, "two configurations of two seeds");
    let mut claimed = Vec::new();
    while let Some(a) = claim_now(&q, &w, &caps(&[JobKind::Experiment])).await {
        claimed.push(a);
    }
    assert_eq!(claimed.len(), 4);
    let mut keys = Vec::new();
    for a in &claimed {
        keys.push(cell_of(&q, a.job.id, 0).await.0);
    }
    let mine = keys[0].clone();
    let theirs = keys.iter().find(|k| **k != mine).unwrap().clone();
    let seeds: Vec<&Assignment> = claimed
        .iter()
        .zip(&keys)
        .filter(|(_, k)| **k == mine)
        .map(|(a, _)| a)
        .collect();
    assert_eq!(seeds.len(), 2);
    damage(&q, "study_cells", &format!("tpe/{theirs}")).await;
    let first = seeds[0];
    q.complete(first.job.id, complete(first, Outcome::Succeeded))
        .await
        .unwrap();
    assert!(
        events_of(&q, "study_step_skipped").is_empty(),
        "a seed still runs: the other configurations are not read"
    );
    let last = seeds[1];
    let ended = q
        .complete(last.job.id, complete(last, Outcome::Succeeded))
        .await
        .unwrap();
    assert_eq!(ended.state, JobState::Succeeded);
    assert_tpe_end_skipped_whole(&q, &mine).await;
}

/// A `tpe` proposal that the study's stored definition no longer makes valid jobs of (a later
/// server's checks) is dropped with an event saying why, and the next sample is tried in its
/// place, here until none is left (the definition makes no valid job); the end and the
/// configuration's score stand. (Before, the step failed after writing them, as if the study
/// were damaged.)
#[tokio::test]
async fn a_tpe_proposal_that_no_longer_validates_is_dropped_with_an_event() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Experiment]).await;
    let sub = study_req("tpe", &["x=int(1,50)"], "", Some(("tpe", 5, Some(2))), None);
    q.submit_study(sub).await.unwrap();
    q.store()
        .write(|tx| {
            let mut r = tx.study("tpe")?.unwrap();
            r.submissions[0].template.max_attempts = 0;
            tx.save_study(&r)?;
            Ok(())
        })
        .await
        .unwrap();
    let a = claim_now(&q, &w, &caps(&[JobKind::Experiment]))
        .await
        .unwrap();
    let (mine, _) = cell_of(&q, a.job.id, 0).await;
    q.add_rows(a.job.id, batch(&a, evals_rows(0, 1000.0, -3.0)))
        .await
        .unwrap();
    q.complete(a.job.id, complete(&a, Outcome::Succeeded))
        .await
        .unwrap();
    // Samples 3, 4 and 5 of 5 were tried in turn.
    let skipped = events_of(&q, "study_step_skipped");
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    for e in &skipped {
        assert!(
            e.message.contains("was not submitted") && e.message.contains("max_attempts"),
            "{}",
            e.message
        );
    }
    assert!(events_of(&q, "config_proposed").is_empty());
    let (cell, rules) = cell_and_rules(&q, "tpe", &mine).await;
    assert_eq!(cell.unwrap().score, Some(-3.0));
    assert_eq!(
        rules.unwrap().tpe,
        Some((0, 5)),
        "every sample left was tried"
    );
}

/// An owner's usage record that does not decode must not stop their job from ending: the job
/// ends, the owner's running count goes down, the record is left for `gaia db check`, and an
/// event says the attempt was not added. (Before, the end was written and then answered an
/// error, so the worker took it as refused.)
#[tokio::test]
async fn a_damaged_usage_record_does_not_stop_a_job_from_ending() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    q.submit(hash_job("x")).await.unwrap();
    let a = claim_now(&q, &w, &caps(&[JobKind::Hash])).await.unwrap();
    let owner = a.job.owner.clone();
    let running = |q: &Queue| {
        q.store()
            .read()
            .unwrap()
            .user_counts(&owner)
            .unwrap()
            .running
    };
    assert_eq!(running(&q), 1);
    damage(&q, "usage", &owner).await;
    let done = q
        .complete(a.job.id, complete(&a, Outcome::Succeeded))
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(job(&q, a.job.id).state, JobState::Succeeded);
    assert_eq!(running(&q), 0);
    let ev = events_of(&q, "usage_not_recorded");
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(ev[0].message.contains("usage"), "{}", ev[0].message);
    let err = q.store().read().unwrap().usage_record(&owner).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

/// A report whose next claim meets a damaged record (the next job's owner's record, read for
/// their limits) keeps its written end whole: the end is followed up in memory (its lease
/// forgotten) and the claim alone fails, so the worker's retried report is answered as done.
#[tokio::test]
async fn a_claim_that_meets_a_damaged_record_does_not_fail_the_report_before_it() {
    let (q, _dir) = queue();
    let w = register(&q, "w1", &[JobKind::Hash]).await;
    let c = caps(&[JobKind::Hash]);
    let first = q.submit(hash_job("1")).await.unwrap();
    let a = claim_now(&q, &w, &c).await.unwrap();
    assert_eq!(a.job.id, first);
    let bob = crate::model::Actor {
        user: "bob".into(),
        admin: false,
    };
    q.submit_many_as(vec![hash_job("2")], &bob).await.unwrap();
    damage(&q, "users", "bob").await;
    let _ = q
        .complete_and_claim(&w, done(&a), c.clone(), Duration::ZERO)
        .await;
    assert_eq!(job(&q, first).state, JobState::Succeeded);
    assert!(q.lease_of(first).is_none(), "the end was not followed up");
    q.complete(first, done(&a).report).await.unwrap();
}
