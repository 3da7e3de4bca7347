//! The database file itself: an empty file is refused, damage is named with the tools that
//! deal with it, and `gaia db check` / `gaia db repair` work on real damaged files.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gaia_core::model::{JobKind, JobSpec, JobState};
use gaia_core::protocol::JobQuery;

use crate::helper::*;

/// Issue 13, item 9: a 0-byte `gaia.redb` (a truncated copy, a failed restore) was silently
/// taken for a new database, which looks exactly like losing every job.
#[test]
fn an_empty_database_file_is_refused_unless_asked() {
    let mut server = Server::start();
    server
        .client()
        .submit(&JobSpec::builtin(JobKind::Upper, "x"))
        .unwrap();
    assert!(server.stop().success());
    let db = server.data_dir().join("gaia.redb");
    std::fs::File::create(&db).unwrap(); // truncates to 0 bytes
    let out = Command::new(gaia_bin())
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(server.data_dir())
        .env("GAIA_TOKEN", &server.token)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it served an empty file: {err}");
    assert!(
        err.contains("empty (0 bytes)") && err.contains("--allow-empty-db"),
        "{err}"
    );
    assert_eq!(
        std::fs::metadata(&db).unwrap().len(),
        0,
        "the file was touched"
    );
    // Asked for: a new, empty database in its place.
    server.extra_args.push("--allow-empty-db".into());
    server.restart();
    let jobs = server.client().jobs(&JobQuery::default()).unwrap();
    assert_eq!(jobs.total, 0);
}

/// A database of `jobs` jobs with `per_job` rows each (attempt 1), written through the
/// library, closed when this returns. Jobs alternate between a study and none; the last one is
/// left queued.
fn fill(dir: &Path, jobs: u64, per_job: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    {
        let store = gaia_core::store::Store::open(dir).unwrap();
        let queue = gaia_core::queue::Queue::new(store.clone(), Default::default()).unwrap();
        let specs: Vec<JobSpec> = (0..jobs)
            .map(|i| JobSpec {
                study: (i % 2 == 0).then(|| "even".to_string()),
                ..JobSpec::builtin(JobKind::Upper, "x")
            })
            .collect();
        let ids = rt.block_on(queue.submit_many(specs)).unwrap();
        for id in ids {
            let rows = gen_rows(0, per_job);
            store
                .write_blocking(move |tx| Ok(tx.insert_rows(id, 1, &rows)?))
                .unwrap();
        }
    }
    // The store's writer closes the file once its last handle is gone.
    let file = std::fs::File::open(dir.join("gaia.redb")).unwrap();
    wait_for("the database to close", Duration::from_secs(10), || {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file this function holds open.
        let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        free.then(|| unsafe {
            libc::flock(file.as_raw_fd(), libc::LOCK_UN);
        })
    });
}

/// Serves `dir`, reads every job's rows, stops; returns what the server wrote to stderr.
fn serve_and_read_every_job(dir: &Path, jobs: u64) -> String {
    use std::io::{BufRead, Read};
    let token = "test-admin-token-0123456789";
    let mut child = Command::new(gaia_bin())
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(dir)
        .env("GAIA_TOKEN", token)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = lines
        .by_ref()
        .find_map(|l| {
            l.ok()?
                .split("listening on http://")
                .nth(1)?
                .rsplit(':')
                .next()?
                .trim()
                .parse()
                .ok()
        })
        .expect("gaia serve printed its address");
    std::thread::spawn(move || for _ in lines {});
    let c = gaia_core::client::Client::new(&format!("http://127.0.0.1:{port}"), Some(token.into()))
        .unwrap();
    let failed = (1..=jobs)
        .filter(|&id| c.rows(id, None, None).is_err())
        .count();
    assert!(failed > 0, "no read met the damage");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

fn gaia(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(gaia_bin())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

/// Issue 13, item 9: 16 KiB of damage in a big database made it unusable with no hint.
#[test]
fn a_damaged_database_names_the_repair_and_repair_keeps_everything_readable() {
    const JOBS: u64 = 40;
    const PER_JOB: u64 = 2_500;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fill(&dir, JOBS, PER_JOB);
    let db = dir.join("gaia.redb");
    let len = std::fs::metadata(&db).unwrap().len();
    assert!(
        len > 4 << 20,
        "{len} bytes: too small to damage in the middle"
    );

    // A healthy file checks clean.
    let out = gaia(&["db", "check"], &dir);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("the database is whole"), "{said}");

    // 16 KiB of 0xA5 in the middle, page-aligned.
    let at = (len / 2) & !4095;
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&[0xA5; 16 << 10]).unwrap();
    }
    let damaged = std::fs::read(&db).unwrap();

    // The server meets the damage and says what to do: the read fails (a cut answer, for a
    // streamed one) and the server's log names the tools.
    // (On a copy: a server writes to the file it opens.)
    let copy = tmp.path().join("served");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(&db, copy.join("gaia.redb")).unwrap();
    let hint = serve_and_read_every_job(&copy, JOBS);
    assert!(
        hint.contains("gaia db check") && hint.contains("gaia db repair"),
        "{hint}"
    );

    // check: not whole, the rows table says where; exit code 4; the file is unchanged.
    let out = gaia(&["db", "check"], &dir);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("damaged") && said.contains("gaia db repair"),
        "{said}"
    );
    assert!(said.contains("rows: unreadable after"), "{said}");
    println!("{said}");
    assert!(
        std::fs::read(&db).unwrap() == damaged,
        "check changed the file"
    );
    let out = gaia(&["db", "check", "--json"], &dir);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "rows")
        .unwrap();
    let read = rows["entries"].as_u64().unwrap();
    assert!(read < JOBS * PER_JOB, "every row read: the damage missed");
    // Only about the damaged pages are lost, not everything after them.
    assert!(read > JOBS * PER_JOB * 9 / 10, "read only {read} rows");

    // repair: the damaged file is kept byte for byte; the new one holds every job, every
    // readable row, rebuilt indexes; it serves.
    let out = gaia(&["db", "repair"], &dir);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("the damaged file is kept as"), "{said}");
    assert!(said.contains("lost:"), "{said}");
    println!("{said}");
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("gaia.redb.damaged-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        std::fs::read(&kept[0]).unwrap() == damaged,
        "repair changed the damaged file"
    );
    let out = gaia(&["db", "check", "--json"], &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let count = |name: &str| {
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["entries"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        count("rows"),
        read,
        "rows read from the damaged file, all written"
    );
    assert_eq!(count("jobs"), JOBS);

    let mut server = Server::start();
    assert!(server.stop().success());
    std::fs::remove_dir_all(server.data_dir()).unwrap();
    std::fs::create_dir_all(server.data_dir()).unwrap();
    std::fs::copy(dir.join("gaia.redb"), server.data_dir().join("gaia.redb")).unwrap();
    server.restart();
    let c = server.client();
    let want = gen_rows(0, PER_JOB);
    let mut total = 0;
    for id in 1..=JOBS {
        let got = c.rows(id, None, None).unwrap().rows;
        // Each row that survived is the row that was written.
        for r in &got {
            let w = &want[r.seq as usize];
            // (JSON answers carry floats to about 15 digits.)
            let close = |a: Option<f64>, b: Option<f64>| {
                a.zip(b)
                    .is_some_and(|(a, b)| (a - b).abs() <= 1e-12 * b.abs().max(1.0))
            };
            assert!(
                r.generation == w.generation
                    && close(r.best, w.best)
                    && close(r.mean, w.mean)
                    && close(r.evals, w.evals),
                "job {id}: {r:?} is not {w:?}"
            );
        }
        total += got.len() as u64;
    }
    assert_eq!(total, read);
    // The derived tables were rebuilt: the study index, the per-state counts, the queue.
    assert_eq!(
        c.jobs(&JobQuery {
            study: Some("even".into()),
            ..JobQuery::default()
        })
        .unwrap()
        .total,
        JOBS / 2
    );
    let status = c.status().unwrap();
    assert_eq!(status.jobs.get("queued").copied().unwrap_or(0), JOBS);
    // Downsampled curves come from the rebuilt row blocks.
    let curve = c.rows(1, Some(100), None).unwrap();
    assert!(!curve.rows.is_empty());
    // The queue works: a worker takes a job.
    let _w = Worker::start(&server, "after-repair", &["--kinds", "upper"]);
    let done = wait_done(&c, 1, Duration::from_secs(30));
    assert_eq!(done.state, JobState::Succeeded);
}
