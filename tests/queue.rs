//! The queue through real processes: acknowledged rows survive kill -9, long polls wake at
//! once, stale attempts cannot write, leases move silent workers' jobs on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gaia_core::model::{JobKind, JobSpec, JobState};
use gaia_core::protocol::{CompleteRequest, Outcome};

use crate::helper::*;

// ---- crash safety ----------------------------------------------------------------------------

#[test]
fn acknowledged_row_batches_survive_kill_9() {
    const BATCH: u64 = 500;
    let mut server = Server::start();
    let client = server.client();
    let others: Vec<u64> = (0..3)
        .map(|i| {
            client
                .submit(&JobSpec::builtin(JobKind::Upper, &format!("queued {i}")))
                .unwrap()
        })
        .collect();
    let worker = register(&client, "crashw", &[JobKind::Experiment]);
    let id = client
        .submit(&JobSpec::experiment("cma_es", 1_000_000))
        .unwrap();
    let a = claim(&client, &worker, &[JobKind::Experiment], 0).expect("the job is claimed");
    assert_eq!(a.job.id, id);

    // One client inserts batches back to back, counting what the server acknowledged.
    let acked = Arc::new(AtomicU64::new(0));
    let inserter = {
        let (client, acked, a) = (client.clone(), acked.clone(), a.clone());
        std::thread::spawn(move || {
            for b in 0.. {
                let batch = row_batch(&a, gen_rows(b * BATCH, (b + 1) * BATCH));
                match client.post_rows(id, &batch, true) {
                    Ok(ack) => {
                        assert_eq!((ack.stored, ack.skipped), (BATCH, 0));
                        acked.store((b + 1) * BATCH, Ordering::SeqCst);
                    }
                    Err(_) => return,
                }
            }
        })
    };
    wait_for("20 acknowledged batches", Duration::from_secs(120), || {
        (acked.load(Ordering::SeqCst) >= 20 * BATCH).then_some(())
    });
    server.kill9();
    inserter.join().unwrap();
    let acked = acked.load(Ordering::SeqCst);

    server.restart();
    let client = server.client();
    let got = client.rows(id, None, Some(a.attempt)).unwrap();
    let n = got.rows.len() as u64;
    assert!(n >= acked, "{n} rows stored but {acked} were acknowledged");
    assert!(
        n <= acked + BATCH,
        "{n} rows for {acked} acknowledged and one batch in flight"
    );
    assert_eq!(n % BATCH, 0, "a partial batch was stored: {n} rows");
    for (i, r) in got.rows.iter().enumerate() {
        assert_eq!(r.seq, i as u64, "rows are not a contiguous prefix");
    }
    assert_eq!(
        got.rows[7],
        gen_rows(7, 8)[0],
        "a row reads back as written"
    );

    let job = client.job(id).unwrap();
    assert_eq!(job.state, JobState::Running);
    assert_eq!((job.attempt, job.lease), (a.attempt, Some(a.lease)));
    assert_eq!(job.progress.rows, n, "progress agrees with the rows");
    for other in others {
        assert_eq!(client.job(other).unwrap().state, JobState::Queued);
    }

    // The worker carries on where it was: a retried batch is skipped, the next one stored.
    let ack = client
        .post_rows(id, &row_batch(&a, gen_rows(n - BATCH, n)), true)
        .unwrap();
    assert_eq!((ack.stored, ack.skipped), (0, BATCH));
    let ack = client
        .post_rows(id, &row_batch(&a, gen_rows(n, n + BATCH)), false)
        .unwrap();
    assert_eq!((ack.stored, ack.skipped), (BATCH, 0));
}

#[test]
fn rows_read_back_whole_by_range_and_downsampled() {
    let server = Server::start();
    let client = server.client();
    let worker = register(&client, "roww", &[JobKind::Experiment]);
    let id = client
        .submit(&JobSpec::experiment("cma_es", 100_000))
        .unwrap();
    let a = claim(&client, &worker, &[JobKind::Experiment], 0).unwrap();
    for b in 0..20 {
        let batch = row_batch(&a, gen_rows(b * 500, (b + 1) * 500));
        client.post_rows(id, &batch, b % 2 == 0).unwrap();
    }
    let whole = client.rows(id, None, None).unwrap();
    assert_eq!((whole.total, whole.downsampled), (10_000, false));
    assert_same_rows(&whole.rows, &gen_rows(0, 10_000));

    let (status, body) = http(
        "GET",
        &format!(
            "{}/api/v1/jobs/{id}/rows?x=generation&from=10&to=19",
            server.url()
        ),
        Some(&server.token),
        None,
    );
    assert_eq!(status, 200);
    let part: gaia_core::protocol::RowsResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(part.total, 10);
    assert_same_rows(&part.rows, &gen_rows(9, 19));

    let curve = client.rows(id, Some(100), None).unwrap();
    assert!(curve.downsampled);
    assert_eq!(curve.total, 10_000);
    assert!(curve.rows.len() <= 100);
    let lowest = curve.rows.iter().filter_map(|r| r.mean).fold(0.0, f64::min);
    assert_eq!(lowest, -9_999.0, "the extreme survives downsampling");

    assert_error(
        "whole rows of an unknown job",
        http(
            "GET",
            &format!("{}/api/v1/jobs/999/rows", server.url()),
            Some(&server.token),
            None,
        ),
        404,
    );
}

// ---- long poll -------------------------------------------------------------------------------

#[test]
fn a_waiting_claim_gets_a_new_job_at_once() {
    let server = Server::start();
    let client = server.client();
    let worker = register(&client, "pollw", &[JobKind::Reverse]);

    // With nothing queued, a claim waits out its time and answers "no job".
    let t0 = Instant::now();
    assert!(claim(&client, &worker, &[JobKind::Reverse], 300).is_none());
    assert!(t0.elapsed() >= Duration::from_millis(300));

    let claimer = {
        let (client, worker) = (client.clone(), worker.clone());
        std::thread::spawn(move || {
            let a = claim(&client, &worker, &[JobKind::Reverse], 20_000);
            (a, Instant::now())
        })
    };
    // The claim must be parked on the server before the submit; nothing outside the server can
    // observe that, so give it a moment (the assertion below holds either way).
    std::thread::sleep(Duration::from_millis(300));
    let id = client
        .submit(&JobSpec::builtin(JobKind::Reverse, "abc"))
        .unwrap();
    // From the submit's answer (its commit is done): the issue's 100 ms, asserted generously for
    // a debug build on a loaded 2-core machine; a server that polled its queue would miss it.
    let submitted = Instant::now();
    let (a, answered) = claimer.join().unwrap();
    let a = a.expect("the waiting claim got the job");
    assert_eq!(a.job.id, id);
    let latency = answered.saturating_duration_since(submitted);
    assert!(
        latency < Duration::from_millis(250),
        "answered {latency:?} after the submit"
    );
}

#[test]
fn a_stale_attempt_s_upload_cannot_replace_the_current_attempt_s_file() {
    let server = Server::start();
    let c = server.client();
    let w = register(&c, "filesw", &[JobKind::Hash]);
    let id = c.submit(&JobSpec::builtin(JobKind::Hash, "x")).unwrap();
    let a1 = claim(&c, &w, &[JobKind::Hash], 5000).unwrap();

    // Attempt 1 starts uploading while its lease is current, and stalls half way.
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        slow,
        "PUT /api/v1/jobs/{id}/files/result.txt?attempt={}&lease={} HTTP/1.1\r\nhost: x\r\n\
         authorization: Bearer {}\r\ncontent-length: 20\r\nconnection: close\r\n\r\nOLD-stale-",
        a1.attempt, a1.lease, server.token
    )
    .unwrap();
    slow.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    // Meanwhile the job moves on to attempt 2, which uploads its own file.
    c.requeue(
        id,
        &gaia_core::protocol::RequeueRequest {
            attempt: a1.attempt,
            lease: a1.lease,
            reason: None,
            preempted: false,
        },
    )
    .unwrap();
    let a2 = claim(&c, &w, &[JobKind::Hash], 5000).unwrap();
    assert_eq!(a2.job.id, id);
    assert!(a2.attempt > a1.attempt);
    let new = server.dir.path().join("new.txt");
    std::fs::write(&new, "NEW-attempt-2").unwrap();
    c.upload_file(id, a2.attempt, a2.lease, "result.txt", &new)
        .unwrap();

    // Attempt 1's upload ends now: refused, and it changes nothing.
    slow.write_all(b"0123456789").unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 409"), "{answer}");
    let mut got = Vec::new();
    c.download(&format!("/api/v1/jobs/{id}/files/result.txt"), &mut got)
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&got), "NEW-attempt-2");
    let on_disk: Vec<String> =
        std::fs::read_dir(server.data_dir().join("files").join(id.to_string()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    assert_eq!(
        on_disk,
        vec!["result.txt".to_string()],
        "no staged leftovers"
    );
    let files = c.files(id).unwrap().files;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].size, 13);
}

#[test]
fn a_claim_abandoned_by_its_client_does_not_take_the_next_job() {
    let server = Server::start();
    let client = server.client();
    let gone = register(&client, "gonew", &[JobKind::Upper]);
    let alive = register(&client, "alivew", &[JobKind::Upper]);

    // A worker asks for work, then dies while its claim waits.
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let body = format!(
        r#"{{"worker_id": "{gone}", "capabilities": {{"kinds": ["upper"]}}, "wait_ms": 30000}}"#
    );
    write!(
        s,
        "POST /api/v1/claim HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        server.token,
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(s);
    std::thread::sleep(Duration::from_millis(300));

    let id = client
        .submit(&JobSpec::builtin(JobKind::Upper, "abc"))
        .unwrap();
    let a = claim(&client, &alive, &[JobKind::Upper], 5_000)
        .expect("the live worker gets the job, not the dead claim");
    assert_eq!(a.job.id, id);
    assert_eq!(a.attempt, 1);
}

// ---- leases end to end -----------------------------------------------------------------------

#[test]
fn a_silent_worker_loses_its_job_to_the_next_attempt() {
    let server = Server::start_with(&["--lease-timeout", "1", "--heartbeat", "0.5"]);
    let client = server.client();
    let w1 = register(&client, "silent", &[JobKind::Sum]);
    let w2 = register(&client, "diligent", &[JobKind::Sum]);
    let id = client
        .submit(&JobSpec::builtin(JobKind::Sum, "1 2"))
        .unwrap();
    let first = claim(&client, &w1, &[JobKind::Sum], 0).unwrap();
    // w1 never heartbeats: its lease expires and the job comes back to w2's waiting claim.
    let second = claim(&client, &w2, &[JobKind::Sum], 20_000).expect("requeued in time");
    assert_eq!((second.job.id, second.attempt), (id, 2));
    let err = client
        .complete(
            id,
            &CompleteRequest {
                attempt: first.attempt,
                lease: first.lease,
                outcome: Outcome::Succeeded,
                exit_code: Some(0),
                duration_ms: 1,
                error: None,
                result: Some(serde_json::json!(3)),
                started_us: None,
            },
        )
        .unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    let workers = client.workers().unwrap().workers;
    let silent = workers.iter().find(|w| w.id == w1).unwrap();
    assert_eq!(silent.state.as_str(), "offline");
}
