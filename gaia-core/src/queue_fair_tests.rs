//! Unit tests of users in the queue: owners, fair-share claims, running and queued limits,
//! usage accounting. Each test runs on its own store in a temp dir.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::fairshare::Decayed;
use crate::model::{Actor, JobKind, JobSpec, UserInfo};
use crate::protocol::{Outcome, RegisterRequest, StudySubmit};

fn queue_with(fair_share: bool) -> (Arc<Queue>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let config = QueueConfig {
        fair_share,
        ..QueueConfig::default()
    };
    (Queue::new(store, config).unwrap(), dir)
}

async fn add_user(q: &Queue, user: UserInfo) {
    q.store()
        .write(move |tx| tx.save_user(&user))
        .await
        .unwrap();
    let any = q
        .store()
        .read()
        .unwrap()
        .users()
        .unwrap()
        .iter()
        .any(|u| u.max_running.is_some());
    q.set_running_limits(any);
}

fn user(name: &str) -> UserInfo {
    UserInfo::new(name, 0)
}

async fn register(q: &Queue, kinds: &[JobKind]) -> String {
    q.register(RegisterRequest {
        worker_id: None,
        name: "w".into(),
        version: "0.1.0".into(),
        hardware: Default::default(),
        kinds: kinds.to_vec(),
        tags: Vec::new(),
        slots: 4,
    })
    .await
    .unwrap()
    .id
}

fn caps(kinds: &[JobKind]) -> Capabilities {
    Capabilities {
        kinds: kinds.to_vec(),
        ..Capabilities::default()
    }
}

fn hash(input: &str) -> JobSpec {
    JobSpec::builtin(JobKind::Hash, input)
}

async fn submit(q: &Queue, who: &str, specs: Vec<JobSpec>) -> Vec<JobId> {
    q.submit_many_as(specs, &Actor::user(who)).await.unwrap()
}

async fn claim_now(q: &Queue, w: &str, c: &Capabilities) -> Option<Assignment> {
    q.claim(w, c.clone(), Duration::ZERO).await.unwrap()
}

async fn finish(q: &Queue, a: &Assignment) {
    q.complete(
        a.job.id,
        CompleteRequest {
            attempt: a.attempt,
            lease: a.lease,
            outcome: Outcome::Succeeded,
            exit_code: Some(0),
            duration_ms: 1,
            error: None,
            result: None,
            started_us: None,
        },
    )
    .await
    .unwrap();
}

/// Gives `user` this much recent usage (worker-seconds), as if they had run that long just now.
async fn set_usage(q: &Queue, user: &str, worker_s: f64) {
    let user = user.to_string();
    q.store()
        .write(move |tx| {
            let recent = Decayed {
                worker_s,
                gpu_s: 0.0,
                at: now_ms(),
            };
            Ok(tx.set_recent_usage(&user, recent)?)
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn jobs_and_studies_belong_to_the_user_who_submitted_them() {
    let (q, _dir) = queue_with(true);
    add_user(&q, user("alice")).await;
    let ids = submit(&q, "alice", vec![hash("a")]).await;
    let admin = q.submit(hash("b")).await.unwrap();
    let read = q.store().read().unwrap();
    assert_eq!(read.job(ids[0]).unwrap().unwrap().owner, "alice");
    assert_eq!(read.job(admin).unwrap().unwrap().owner, "admin");
    let (mine, _) = read.list_jobs(None, None, Some("alice"), None, 10).unwrap();
    assert_eq!(mine.iter().map(|j| j.id).collect::<Vec<_>>(), ids);
    assert_eq!(read.owner_len("alice").unwrap(), 1);

    let study = |again: bool| -> StudySubmit {
        serde_json::from_value(serde_json::json!({
            "name": "sweep",
            "template": {"max_evals": 100},
            "sweep": {"methods": "cma_es,openai_es"},
            "again": again,
        }))
        .unwrap()
    };
    let r = q
        .submit_study_as(study(false), &Actor::user("alice"))
        .await
        .unwrap();
    let read = q.store().read().unwrap();
    assert_eq!(read.study("sweep").unwrap().unwrap().owner, "alice");
    for (id, _) in &r.jobs {
        assert_eq!(read.job(*id).unwrap().unwrap().owner, "alice");
    }
    // Bob may not add to Alice's study; an admin may.
    let e = q
        .submit_study_as(study(true), &Actor::user("bob"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Request(RequestError::Forbidden(m)) if m.contains("belongs to alice")),
        "{e}"
    );
    q.submit_study_as(study(true), &Actor::admin())
        .await
        .unwrap();
    assert_eq!(
        q.store()
            .read()
            .unwrap()
            .study("sweep")
            .unwrap()
            .unwrap()
            .owner,
        "alice",
        "extending a study keeps its owner"
    );
}

#[tokio::test]
async fn a_submission_over_the_queued_limit_is_refused_whole() {
    let (q, _dir) = queue_with(true);
    add_user(
        &q,
        UserInfo {
            max_queued: Some(5),
            ..user("alice")
        },
    )
    .await;
    submit(&q, "alice", (0..3).map(|i| hash(&i.to_string())).collect()).await;
    let e = q
        .submit_many_as(
            (0..3).map(|i| hash(&i.to_string())).collect(),
            &Actor::user("alice"),
        )
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Request(RequestError::Quota(_))), "{msg}");
    assert!(
        msg.contains("at most 5") && msg.contains("has 3") && msg.contains("would make 6"),
        "{msg}"
    );
    // A study that would go past it is refused whole: no job, no record.
    let e = q
        .submit_study_as(
            serde_json::from_value(serde_json::json!({
                "name": "big",
                "template": {"max_evals": 100},
                "sweep": {"methods": "cma_es,openai_es,random_search"},
            }))
            .unwrap(),
            &Actor::user("alice"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Request(RequestError::Quota(_))), "{e}");
    let read = q.store().read().unwrap();
    assert_eq!(read.job_total().unwrap(), 3, "nothing of the refused ones");
    assert!(read.study("big").unwrap().is_none());
    // Two more fit; other users are not limited by Alice's limit.
    submit(&q, "alice", vec![hash("4"), hash("5")]).await;
    submit(&q, "bob", (0..10).map(|i| hash(&i.to_string())).collect()).await;
    // Once some start, there is room again.
    let w = register(&q, &[JobKind::Hash]).await;
    let c = caps(&[JobKind::Hash]);
    let mut alices = 0;
    while alices < 2 {
        let a = claim_now(&q, &w, &c).await.unwrap();
        alices += (a.job.owner == "alice") as u32;
    }
    submit(&q, "alice", vec![hash("6"), hash("7")]).await;
}

#[tokio::test]
async fn a_user_at_their_running_limit_waits_while_others_run() {
    for fair in [true, false] {
        let (q, _dir) = queue_with(fair);
        add_user(
            &q,
            UserInfo {
                max_running: Some(1),
                ..user("alice")
            },
        )
        .await;
        let a = submit(&q, "alice", vec![hash("1"), hash("2"), hash("3")]).await;
        let b = submit(&q, "bob", vec![hash("b")]).await;
        let w = register(&q, &[JobKind::Hash]).await;
        let c = caps(&[JobKind::Hash]);
        let first = claim_now(&q, &w, &c).await.unwrap();
        assert_eq!(first.job.id, a[0], "fair share {fair}");
        let second = claim_now(&q, &w, &c).await.unwrap();
        assert_eq!(
            second.job.id, b[0],
            "alice is at her limit (fair share {fair})"
        );
        assert!(claim_now(&q, &w, &c).await.is_none(), "fair share {fair}");
        // A waiting claim gets Alice's next job as soon as her first one ends.
        let waiting = {
            let (q, w, c) = (q.clone(), w.clone(), c.clone());
            tokio::spawn(async move { q.claim(&w, c, Duration::from_secs(20)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        finish(&q, &first).await;
        let next = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken when alice's job ended")
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(next.job.id, a[1]);
    }
}

#[tokio::test]
async fn the_user_furthest_below_their_share_goes_first() {
    let (q, _dir) = queue_with(true);
    add_user(&q, user("alice")).await;
    add_user(&q, user("bob")).await;
    // Alice's jobs are older and of higher priority; she has used more.
    let a = submit(
        &q,
        "alice",
        vec![
            JobSpec {
                priority: 9,
                ..hash("a1")
            },
            hash("a2"),
        ],
    )
    .await;
    let b = submit(&q, "bob", vec![hash("b1"), hash("b2")]).await;
    set_usage(&q, "alice", 100.0).await;
    set_usage(&q, "bob", 10.0).await;
    let w = register(&q, &[JobKind::Hash]).await;
    let c = caps(&[JobKind::Hash]);
    assert_eq!(claim_now(&q, &w, &c).await.unwrap().job.id, b[0]);
    // Bob's share is tiny: 10 s on share 0.05 is more than 100 s on share 1.
    add_user(
        &q,
        UserInfo {
            share: 0.05,
            ..user("bob")
        },
    )
    .await;
    // Within a user: priority, then FIFO.
    assert_eq!(claim_now(&q, &w, &c).await.unwrap().job.id, a[0]);
    assert_eq!(claim_now(&q, &w, &c).await.unwrap().job.id, a[1]);
    assert_eq!(claim_now(&q, &w, &c).await.unwrap().job.id, b[1]);
}

#[tokio::test]
async fn with_fair_share_off_claims_follow_priority_whoever_submitted() {
    let (q, _dir) = queue_with(false);
    let b = submit(&q, "bob", vec![hash("b")]).await;
    let a = submit(
        &q,
        "alice",
        vec![JobSpec {
            priority: 5,
            ..hash("a")
        }],
    )
    .await;
    set_usage(&q, "alice", 1000.0).await;
    let w = register(&q, &[JobKind::Hash]).await;
    let c = caps(&[JobKind::Hash]);
    assert_eq!(claim_now(&q, &w, &c).await.unwrap().job.id, a[0]);
    assert_eq!(claim_now(&q, &w, &c).await.unwrap().job.id, b[0]);
}

#[tokio::test]
async fn on_a_tie_the_oldest_job_goes_first_and_slots_take_only_what_fits() {
    let (q, _dir) = queue_with(true);
    // Bob's GPU job is the oldest, but a CPU slot cannot run it.
    let gpu = JobSpec {
        requirements: crate::model::Requirements {
            gpus: 1,
            ..Default::default()
        },
        ..hash("g")
    };
    let b = submit(&q, "bob", vec![gpu]).await;
    let a = submit(&q, "alice", vec![hash("a")]).await;
    let c2 = submit(&q, "carol", vec![hash("c")]).await;
    let w = register(&q, &[JobKind::Hash]).await;
    let cpu = caps(&[JobKind::Hash]);
    // Nobody used anything: Alice's job is the oldest that fits.
    assert_eq!(claim_now(&q, &w, &cpu).await.unwrap().job.id, a[0]);
    // Alice now runs one: Carol (nothing used) goes next.
    assert_eq!(claim_now(&q, &w, &cpu).await.unwrap().job.id, c2[0]);
    assert!(claim_now(&q, &w, &cpu).await.is_none(), "the GPU job waits");
    let gpu_slot = Capabilities {
        gpus: 1,
        ..cpu.clone()
    };
    assert_eq!(claim_now(&q, &w, &gpu_slot).await.unwrap().job.id, b[0]);
}

#[tokio::test]
async fn usage_is_charged_when_an_attempt_ends_and_outlives_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    {
        let q = Queue::new(Store::open(dir.path()).unwrap(), QueueConfig::default()).unwrap();
        let gpu = JobSpec {
            requirements: crate::model::Requirements {
                gpus: 2,
                ..Default::default()
            },
            ..hash("g")
        };
        submit(&q, "alice", vec![gpu]).await;
        let w = register(&q, &[JobKind::Hash]).await;
        let slot = Capabilities {
            gpus: 2,
            ..caps(&[JobKind::Hash])
        };
        let a = claim_now(&q, &w, &slot).await.unwrap();
        let counts = q.store().read().unwrap().user_counts("alice").unwrap();
        assert_eq!(
            (counts.queued, counts.running, counts.running_gpus),
            (0, 1, 2)
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
        finish(&q, &a).await;
        let read = q.store().read().unwrap();
        let rec = read.usage_record("alice").unwrap();
        assert!(rec.total_worker_ms >= 120, "{rec:?}");
        assert_eq!(rec.total_gpu_ms, 2 * rec.total_worker_ms);
        assert!((rec.recent.worker_s * 1000.0 - rec.total_worker_ms as f64).abs() < 5.0);
        assert_eq!(rec.attempts, 1);
        let hours = read.usage_since("alice", now_ms() - 3_600_000).unwrap();
        assert_eq!(hours, (rec.total_worker_ms, rec.total_gpu_ms));
        assert_eq!(read.user_counts("alice").unwrap(), Default::default());
    }
    // The writer thread holds the file until it has stopped.
    let store = loop {
        match Store::open(dir.path()) {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    let before = store.read().unwrap().usage_record("alice").unwrap();
    assert!(before.total_worker_ms >= 120);
    // An hour of Alice's five hours ago, in the history only (as an old attempt would be).
    let old_hour = now_ms() / crate::fairshare::HOUR_MS - 5;
    store
        .set_usage_half_life(crate::fairshare::DEFAULT_HALF_LIFE)
        .unwrap();
    store
        .write(move |tx| {
            tx.usage_hours
                .open_mut()?
                .insert(("alice", old_hour), (3_600_000, 0))
                .map_err(StoreError::from)?;
            Ok(())
        })
        .await
        .unwrap();
    // A half-life of one hour rebuilds recent usage from the hourly history with it: the old
    // hour counts about 2^-5, the new attempt about whole.
    let q = Queue::new(
        store,
        QueueConfig {
            usage_half_life: Duration::from_secs(3600),
            ..QueueConfig::default()
        },
    )
    .unwrap();
    let after = q.store().read().unwrap().usage_record("alice").unwrap();
    assert_eq!(after.total_worker_ms, before.total_worker_ms);
    let old = after.recent.worker_s - before.total_worker_ms as f64 / 1000.0;
    assert!(
        old > 3600.0 * 0.5f64.powf(5.6) && old < 3600.0 * 0.5f64.powf(4.4),
        "{after:?}"
    );
}
