//! Releases and self-updating workers, with real binaries: the worker replaces itself, restarts
//! under the same id, keeps working; damaged, truncated, wrongly signed or lying releases are
//! refused and the worker stays as it was; yanking rolls it back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gaia_core::model::{JobKind, JobSpec, JobState};

use crate::helper::*;

const NEW_VERSION: &str = "9.9.9";

/// Builds the `gaia` binary again with another version stamp (in its own target dir, so the
/// test's own build is untouched). Cached across runs by cargo.
fn build_new_binary() -> PathBuf {
    let root = repo_root();
    let target = root.join("target").join("release-test");
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "gaia-cli", "--bin", "gaia", "--quiet"])
        .current_dir(&root)
        .env("GAIA_BUILD_VERSION", NEW_VERSION)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the versioned binary failed");
    target.join("debug").join("gaia")
}

fn version_of(bin: &Path) -> String {
    let out = Command::new(bin).arg("--version").output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .trim_start_matches("gaia ")
        .to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn worker_version(server: &Server, name: &str) -> Option<String> {
    let ws = server.client().workers().unwrap().workers;
    ws.into_iter().find(|w| w.name == name).map(|w| w.version)
}

fn wait_refusal(server: &Server, tag: &str) -> String {
    wait_for(
        &format!("the server to show the refusal of {tag}"),
        Duration::from_secs(60),
        || {
            let ws = server.client().workers().unwrap().workers;
            ws.into_iter()
                .find_map(|w| w.update_error.filter(|e| e.starts_with(tag)))
        },
    )
}

#[test]
fn workers_update_themselves_safely_and_roll_back_on_yank() {
    let new_bin = build_new_binary();
    assert_eq!(version_of(&new_bin), NEW_VERSION);
    let old_version = version_of(&gaia_bin());
    let old_tag = format!("v{old_version}");

    let server = Server::start_with(&["--heartbeat", "0.3"]);
    let place = tempfile::tempdir().unwrap();
    // The worker replaces its own binary: give it a copy, never the test's binary.
    let worker_bin = place.path().join("bin").join("gaia");
    std::fs::create_dir_all(worker_bin.parent().unwrap()).unwrap();
    std::fs::copy(gaia_bin(), &worker_bin).unwrap();
    let experiments = place.path().join("experiments");
    copy_dir(&fake_experiments(), &experiments);
    // The new release's experiments carry a marker.
    let new_experiments = place.path().join("new-experiments");
    copy_dir(&fake_experiments(), &new_experiments);
    std::fs::write(new_experiments.join("MARKER"), "from the release\n").unwrap();

    let keys = place.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let trusted = keys.join("trusted");
    let other = keys.join("other");
    server.cli_ok(&["release", "keygen", "--out", trusted.to_str().unwrap()]);
    server.cli_ok(&["release", "keygen", "--out", other.to_str().unwrap()]);
    let sign = |key: &Path, tag: &str, files: &[&Path], exp: Option<&Path>| {
        let mut args = vec![
            "release".to_string(),
            "upload".into(),
            "--tag".into(),
            tag.into(),
            "--sign".into(),
            key.display().to_string(),
        ];
        if let Some(e) = exp {
            args.push("--experiments".into());
            args.push(e.display().to_string());
        }
        args.extend(files.iter().map(|f| f.display().to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        server.cli_ok(&refs);
    };

    // The old version is a release too (the one to roll back to).
    sign(&trusted, &old_tag, &[&gaia_bin()], None);
    server.cli_ok(&["release", "promote", &old_tag]);

    let mut w = Worker::start_bin(
        &server,
        "updater",
        &worker_bin,
        &experiments,
        &[
            "--auto-update",
            "--trust-key",
            &format!("{}.pub", trusted.display()),
        ],
    );
    w.wait_log("registered");
    let id_before = server.client().workers().unwrap().workers[0].id.clone();

    // 1. A damaged file: the stored bytes no longer match the metadata's SHA-256.
    sign(&trusted, "v9.9.1", &[&new_bin], None);
    let stored = server.data_dir().join("releases/v9.9.1/gaia");
    let mut bytes = std::fs::read(&stored).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&stored, &bytes).unwrap();
    server.cli_ok(&["release", "promote", "v9.9.1"]);
    let why = wait_refusal(&server, "v9.9.1");
    assert!(why.contains("SHA-256"), "{why}");
    server.cli_ok(&["release", "yank", "v9.9.1"]);

    // 2. A truncated download.
    sign(&trusted, "v9.9.2", &[&new_bin], None);
    let stored = server.data_dir().join("releases/v9.9.2/gaia");
    let len = std::fs::metadata(&stored).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&stored)
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    server.cli_ok(&["release", "promote", "v9.9.2"]);
    let why = wait_refusal(&server, "v9.9.2");
    assert!(why.contains("bytes"), "{why}");
    server.cli_ok(&["release", "yank", "v9.9.2"]);

    // 3. Signed with a key the worker does not trust.
    sign(&other, "v9.9.3", &[&new_bin], None);
    server.cli_ok(&["release", "promote", "v9.9.3"]);
    let why = wait_refusal(&server, "v9.9.3");
    assert!(why.contains("signature"), "{why}");
    server.cli_ok(&["release", "yank", "v9.9.3"]);

    // 4. A binary that does not report the release's version.
    sign(&trusted, "v9.9.4", &[&new_bin], None);
    server.cli_ok(&["release", "promote", "v9.9.4"]);
    let why = wait_refusal(&server, "v9.9.4");
    assert!(why.contains("expected \"gaia 9.9.4\""), "{why}");
    server.cli_ok(&["release", "yank", "v9.9.4"]);

    // Through all of that the worker ran the old binary and kept working.
    assert_eq!(version_of(&worker_bin), old_version);
    assert!(!gaia_core::release::update::backup_path(&worker_bin).exists());
    let c = server.client();
    let id = c
        .submit(&JobSpec::builtin(JobKind::Upper, "still here"))
        .unwrap();
    assert_eq!(
        wait_done(&c, id, Duration::from_secs(30)).state,
        JobState::Succeeded
    );

    // 5. The real thing: the worker replaces itself, restarts, same id, new version.
    sign(
        &trusted,
        &format!("v{NEW_VERSION}"),
        &[&new_bin],
        Some(&new_experiments),
    );
    server.cli_ok(&["release", "promote", &format!("v{NEW_VERSION}")]);
    wait_for(
        "the worker to run the new version",
        Duration::from_secs(90),
        || (worker_version(&server, "updater").as_deref() == Some(NEW_VERSION)).then_some(()),
    );
    assert_eq!(version_of(&worker_bin), NEW_VERSION);
    assert_eq!(
        version_of(&gaia_core::release::update::backup_path(&worker_bin)),
        old_version,
        ".bak is the old binary"
    );
    assert_eq!(
        std::fs::read_to_string(experiments.join("MARKER")).unwrap(),
        "from the release\n"
    );
    let workers = c.workers().unwrap().workers;
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].id, id_before, "same worker id after the restart");
    assert!(!workers[0].update_available);
    let id = c
        .submit(&JobSpec::builtin(JobKind::Reverse, "abc"))
        .unwrap();
    assert_eq!(
        wait_done(&c, id, Duration::from_secs(30)).result,
        Some(serde_json::json!("cba"))
    );
    let listing = server.cli_ok(&["release", "list"]);
    assert!(
        listing.contains("promoted") && listing.contains("signed"),
        "{listing}"
    );

    // 6. Yank: back to the release promoted before.
    server.cli_ok(&["release", "yank", &format!("v{NEW_VERSION}")]);
    wait_for("the worker to roll back", Duration::from_secs(90), || {
        (worker_version(&server, "updater").as_deref() == Some(old_version.as_str())).then_some(())
    });
    assert_eq!(version_of(&worker_bin), old_version);
    w.kill9();
}

/// Issue 13, item 2: the old binary was copied over `<exe>.bak` before the experiments archive
/// was checked, so after A→B a refused C replaced `.bak` (A) with B and `--rollback` could no
/// longer reach A.
#[test]
fn a_refused_update_keeps_the_bak_of_the_update_before() {
    let new_bin = build_new_binary();
    let old_version = version_of(&gaia_bin());
    let server = Server::start_with(&["--heartbeat", "0.3"]);
    let place = tempfile::tempdir().unwrap();
    let worker_bin = worker_copy(place.path());
    let experiments = place.path().join("experiments");
    copy_dir(&fake_experiments(), &experiments);
    let mut w = Worker::start_bin(
        &server,
        "bak",
        &worker_bin,
        &experiments,
        &["--auto-update"],
    );
    w.wait_log("registered");

    // A → B.
    let b = format!("v{NEW_VERSION}");
    server.cli_ok(&["release", "upload", "--tag", &b, new_bin.to_str().unwrap()]);
    server.cli_ok(&["release", "promote", &b]);
    wait_for("the worker to run B", Duration::from_secs(120), || {
        (worker_version(&server, "bak").as_deref() == Some(NEW_VERSION)).then_some(())
    });
    let bak = gaia_core::release::update::backup_path(&worker_bin);
    assert_eq!(version_of(&bak), old_version, ".bak is A");

    // C: a binary that passes every check (it is A's, under A's version), with an experiments
    // archive damaged on the server, so the refusal comes after the binary was checked.
    let c_tag = format!("v{old_version}");
    server.cli_ok(&[
        "release",
        "upload",
        "--tag",
        &c_tag,
        "--experiments",
        fake_experiments().to_str().unwrap(),
        gaia_bin().to_str().unwrap(),
    ]);
    let stored = server.data_dir().join(format!(
        "releases/{c_tag}/{}",
        gaia_core::release::EXPERIMENTS_ARCHIVE
    ));
    let mut bytes = std::fs::read(&stored).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&stored, &bytes).unwrap();
    server.cli_ok(&["release", "promote", &c_tag]);
    let why = wait_refusal(&server, &c_tag);
    assert!(why.contains("SHA-256"), "{why}");

    // The worker is exactly as it was: B runs, `.bak` is still A, nothing staged is left.
    assert_eq!(version_of(&worker_bin), NEW_VERSION);
    assert_eq!(
        version_of(&bak),
        old_version,
        "the refused update replaced .bak"
    );
    let left: Vec<String> = std::fs::read_dir(worker_bin.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".gaia-update"))
        .collect();
    assert!(left.is_empty(), "left beside the binary: {left:?}");
    w.kill9();

    // `--rollback` still reaches A.
    let out = Command::new(&worker_bin)
        .args(["work", "--rollback"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(version_of(&worker_bin), old_version);
}

#[test]
fn a_worker_token_cannot_publish() {
    let server = Server::start();
    let c = server.client();
    let worker_token = c
        .create_token("w", gaia_core::model::Scope::Worker)
        .unwrap()
        .token;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("gaia");
    std::fs::copy(gaia_bin(), &f).unwrap();
    let wc = server.client_with(&worker_token);
    let err = wc
        .upload_release_file("v1.0.0", "gaia", &f, None, None)
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    c.upload_release_file("v1.0.0", "gaia", &f, None, None)
        .unwrap();
    assert_eq!(wc.promote("v1.0.0").unwrap_err().status(), Some(403));
    assert_eq!(wc.yank("v1.0.0").unwrap_err().status(), Some(403));
    // Workers may read and download.
    assert_eq!(wc.release("v1.0.0").unwrap().files.len(), 1);
    // Bad names never reach the disk.
    let (status, body) = http(
        "PUT",
        &format!("{}/api/v1/releases/v1.0.0/files/..%2Fescape", server.url()),
        Some(&server.token),
        Some(("application/octet-stream", b"x".to_vec())),
    );
    assert_eq!(status, 400, "{body}");
    let (status, _) = http(
        "PUT",
        &format!("{}/api/v1/releases/..%2F..%2Fetc/files/x", server.url()),
        Some(&server.token),
        Some(("application/octet-stream", b"x".to_vec())),
    );
    assert_eq!(status, 400);
    assert!(!server.data_dir().join("escape").exists());
}

/// A worker's own copy of the binary (it replaces it) in `place/bin`.
fn worker_copy(place: &Path) -> PathBuf {
    let bin = place.join("bin").join("gaia");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(gaia_bin(), &bin).unwrap();
    bin
}

/// Every file and folder under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
                out.push(format!("{rel}/"));
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

fn worker_named(server: &Server, name: &str) -> gaia_core::model::Worker {
    let ws = server.client().workers().unwrap().workers;
    ws.into_iter()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("no worker {name}"))
}

/// The row of `gaia workers` for a worker.
fn workers_row(server: &Server, name: &str) -> String {
    let out = server.cli_ok(&["workers"]);
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row for {name} in:\n{out}"))
        .to_string()
}

/// A `command` job running `sh -c script`.
fn shell_job(script: &str) -> JobSpec {
    JobSpec {
        kind: JobKind::Command,
        argv: vec!["sh".into(), "-c".into(), script.into()],
        max_attempts: 3,
        ..JobSpec::default()
    }
}

fn position(log: &str, needle: &str) -> usize {
    log.find(needle)
        .unwrap_or_else(|| panic!("the worker never said {needle:?}:\n{log}"))
}

#[test]
fn a_running_job_ends_before_the_update_and_rollback_restores_the_old_binary() {
    let new_bin = build_new_binary();
    let old_version = version_of(&gaia_bin());
    let tag = format!("v{NEW_VERSION}");
    let server = Server::start_with(&["--heartbeat", "0.3"]);
    let c = server.client();
    let place = tempfile::tempdir().unwrap();
    let worker_bin = worker_copy(place.path());
    // The experiments the worker starts with, and the release's: another requirements.txt, a
    // file that is gone, one that is new.
    let experiments = place.path().join("experiments");
    std::fs::create_dir_all(experiments.join("sub")).unwrap();
    std::fs::copy(
        fake_experiments().join("run_all.py"),
        experiments.join("run_all.py"),
    )
    .unwrap();
    std::fs::write(experiments.join("requirements.txt"), "# v1\n").unwrap();
    std::fs::write(experiments.join("old_only.txt"), "old\n").unwrap();
    std::fs::write(experiments.join("sub/old.py"), "x = 1\n").unwrap();
    let release_exp = place.path().join("release-experiments");
    std::fs::create_dir_all(release_exp.join("sub")).unwrap();
    std::fs::copy(
        fake_experiments().join("run_all.py"),
        release_exp.join("run_all.py"),
    )
    .unwrap();
    std::fs::write(release_exp.join("requirements.txt"), "# v2: changed\n").unwrap();
    std::fs::write(release_exp.join("new_only.txt"), "new\n").unwrap();
    std::fs::write(release_exp.join("sub/new.py"), "y = 2\n").unwrap();

    let w = Worker::start_bin(
        &server,
        "busy",
        &worker_bin,
        &experiments,
        &["--auto-update", "--allow-commands", "--python=venv"],
    );
    // A worker without --auto-update: it is told an update is available, and never updates.
    let _plain = Worker::start(&server, "plain", &["--kinds", "upper"]);
    w.wait_log("Python environment ready");
    wait_for("both workers", Duration::from_secs(60), || {
        (c.workers().unwrap().workers.len() == 2).then_some(())
    });
    server.cli_ok(&[
        "release",
        "upload",
        "--tag",
        &tag,
        "--experiments",
        release_exp.to_str().unwrap(),
        new_bin.to_str().unwrap(),
    ]);
    // Uploaded, not promoted: nothing to update to.
    assert!(!worker_named(&server, "busy").update_available);

    // A job that runs until the test lets it end.
    let go = place.path().join("go");
    let id = c
        .submit(&shell_job(&format!(
            "while [ ! -e '{}' ]; do sleep 0.05; done; echo finished",
            go.display()
        )))
        .unwrap();
    wait_for("the job to run", Duration::from_secs(30), || {
        (c.job(id).unwrap().state == JobState::Running).then_some(())
    });
    server.cli_ok(&["release", "promote", &tag]);
    w.wait_log("updating once running jobs finish");
    // The mark, on both workers: the API and `gaia workers` show the old version and it.
    wait_for("the update-available mark", Duration::from_secs(30), || {
        let ws = c.workers().unwrap().workers;
        ws.iter().all(|w| w.update_available).then_some(())
    });
    let busy = worker_named(&server, "busy");
    assert_eq!(busy.version, old_version);
    assert_eq!(busy.running, vec![id]);
    for name in ["busy", "plain"] {
        let row = workers_row(&server, name);
        assert!(
            row.contains(&format!("{old_version} (update available)")),
            "{row}"
        );
    }
    // Still running, nothing replaced yet.
    assert_eq!(c.job(id).unwrap().state, JobState::Running);
    assert_eq!(version_of(&worker_bin), old_version);
    assert!(!gaia_core::release::update::backup_path(&worker_bin).exists());

    // The job ends by itself, as its first attempt; only then does the worker update.
    std::fs::write(&go, "").unwrap();
    let job = wait_done(&c, id, Duration::from_secs(30));
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempt, 1);
    assert_eq!(job.attempts.len(), 1);
    wait_for(
        "the worker to run the new version",
        Duration::from_secs(120),
        || (worker_version(&server, "busy").as_deref() == Some(NEW_VERSION)).then_some(()),
    );
    let log = w.log.lock().unwrap().clone();
    assert!(
        position(&log, &format!("job {id} succeeded"))
            < position(&log, &format!("updating to {tag}: downloading")),
        "the worker updated before its job ended:\n{log}"
    );
    // The mark is gone on the updated worker, and stays on the other one.
    wait_for("the mark to go", Duration::from_secs(30), || {
        (!worker_named(&server, "busy").update_available).then_some(())
    });
    let row = workers_row(&server, "busy");
    assert!(
        row.contains(NEW_VERSION) && !row.contains("update available"),
        "{row}"
    );
    assert!(worker_named(&server, "plain").update_available);

    // The experiments folder is the release's, whole: the old files are gone, nothing is left
    // beside it, and the Python environment was rebuilt for the new requirements.txt.
    assert_eq!(
        files_under(&experiments),
        files_under(&release_exp),
        "the experiments are not exactly the release's"
    );
    let beside: Vec<String> = std::fs::read_dir(place.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".experiments"))
        .collect();
    assert!(beside.is_empty(), "left beside the experiments: {beside:?}");
    let log = w.log.lock().unwrap().clone();
    assert!(
        position(&log, "restarting as") < position(&log, "requirements.txt changed: rebuilding"),
        "{log}"
    );
    let stamp = std::fs::read_to_string(w.state_dir.join("venv/gaia-requirements.sha256")).unwrap();
    let (want, _) = gaia_core::release::sha256_file(&release_exp.join("requirements.txt")).unwrap();
    assert_eq!(
        stamp.trim(),
        want,
        "the venv was not built from the new requirements"
    );
    let id = submit_fake(&c, serde_json::json!({"gens": 2}));
    let job = wait_done(&c, id, Duration::from_secs(60));
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.worker_name.as_deref(), Some("busy"));

    // `gaia work --rollback` puts the old binary back.
    let mut w = w;
    w.kill9();
    assert_eq!(version_of(&worker_bin), NEW_VERSION);
    let out = Command::new(&worker_bin)
        .args(["work", "--rollback"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("rolled back"));
    assert_eq!(version_of(&worker_bin), old_version);
    assert!(!gaia_core::release::update::backup_path(&worker_bin).exists());
    // Nothing left to roll back to: a clear refusal, the binary untouched.
    let out = Command::new(&worker_bin)
        .args(["work", "--rollback"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("to roll back to"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(version_of(&worker_bin), old_version);
}

#[test]
fn update_now_gives_the_running_job_back_and_updates_at_once() {
    let new_bin = build_new_binary();
    let tag = format!("v{NEW_VERSION}");
    let server = Server::start_with(&["--heartbeat", "0.3"]);
    let c = server.client();
    let place = tempfile::tempdir().unwrap();
    let worker_bin = worker_copy(place.path());
    let w = Worker::start_bin(
        &server,
        "eager",
        &worker_bin,
        &fake_experiments(),
        &["--auto-update", "--update-now", "--allow-commands"],
    );
    w.wait_log("registered");
    server.cli_ok(&[
        "release",
        "upload",
        "--tag",
        &tag,
        new_bin.to_str().unwrap(),
    ]);
    // The first attempt would run for two minutes; a later one ends at once.
    let id = c
        .submit(&shell_job(
            r#"if [ "$GAIA_ATTEMPT" = 1 ]; then sleep 120; fi; echo "attempt $GAIA_ATTEMPT""#,
        ))
        .unwrap();
    wait_for("the job to run", Duration::from_secs(30), || {
        (c.job(id).unwrap().state == JobState::Running).then_some(())
    });
    server.cli_ok(&["release", "promote", &tag]);
    let job = wait_done(&c, id, Duration::from_secs(100));
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempt, 2, "{:?}", job.attempts);
    let first = &job.attempts[0];
    assert!(
        first
            .outcome
            .as_deref()
            .is_some_and(|o| o.starts_with("requeued")),
        "{first:?}"
    );
    assert!(
        first.ended_at.unwrap() - first.started_at < 60_000,
        "the first attempt ran on instead of being given back"
    );
    assert_eq!(job.attempts[1].worker, first.worker, "the same worker id");
    assert_eq!(
        worker_version(&server, "eager").as_deref(),
        Some(NEW_VERSION)
    );
    assert_eq!(version_of(&worker_bin), NEW_VERSION);
    let log = w.log.lock().unwrap().clone();
    let given_back = position(&log, &format!("job {id} given back to the queue"));
    let restarted = position(&log, &format!("restarting as {tag}"));
    let second = position(&log, &format!("job {id} attempt 2"));
    assert!(given_back < restarted && restarted < second, "{log}");
}

#[test]
fn a_release_with_missing_metadata_is_refused() {
    let old_version = version_of(&gaia_bin());
    let mut server = Server::start_with(&["--heartbeat", "0.3"]);
    let place = tempfile::tempdir().unwrap();
    let worker_bin = worker_copy(place.path());
    let w = Worker::start_bin(
        &server,
        "picky",
        &worker_bin,
        &fake_experiments(),
        &["--auto-update"],
    );
    w.wait_log("registered");
    // Stand-in files: the worker must refuse them before it downloads anything.
    let stand_in = place.path().join("gaia-stand-in");
    std::fs::write(&stand_in, "not a gaia binary\n").unwrap();
    let here = gaia_core::release::this_platform();
    let elsewhere = if here == "linux-aarch64" {
        "linux-x86_64"
    } else {
        "linux-aarch64"
    };

    // 1. No binary for the worker's platform.
    server.cli_ok(&[
        "release",
        "upload",
        "--tag",
        "v9.9.7",
        "--platform",
        elsewhere,
        stand_in.to_str().unwrap(),
    ]);
    server.cli_ok(&["release", "promote", "v9.9.7"]);
    let why = wait_refusal(&server, "v9.9.7");
    assert!(why.contains(&format!("no gaia binary for {here}")), "{why}");
    server.cli_ok(&["release", "yank", "v9.9.7"]);

    // 2. A binary whose metadata has no SHA-256 (written into the store while the server is
    // down: the server itself always records one).
    server.cli_ok(&[
        "release",
        "upload",
        "--tag",
        "v9.9.8",
        "--platform",
        &here,
        stand_in.to_str().unwrap(),
    ]);
    server.stop();
    {
        let store = gaia_core::store::Store::open(&server.data_dir()).unwrap();
        store
            .write_blocking(|tx| {
                let mut r = tx.release("v9.9.8")?.expect("the release was stored");
                for f in &mut r.files {
                    f.sha256.clear();
                }
                tx.save_release(&r)?;
                Ok(())
            })
            .unwrap();
    }
    server.restart();
    server.cli_ok(&["release", "promote", "v9.9.8"]);
    let why = wait_refusal(&server, "v9.9.8");
    assert!(why.contains("no SHA-256"), "{why}");

    // The worker kept its binary, downloaded nothing, and keeps working.
    assert_eq!(version_of(&worker_bin), old_version);
    assert_eq!(
        files_under(worker_bin.parent().unwrap()),
        vec!["gaia".to_string()]
    );
    assert_eq!(
        worker_version(&server, "picky").as_deref(),
        Some(old_version.as_str())
    );
    let c = server.client();
    let id = c
        .submit(&JobSpec::builtin(JobKind::Upper, "still here"))
        .unwrap();
    assert_eq!(
        wait_done(&c, id, Duration::from_secs(30)).result,
        Some(serde_json::json!("STILL HERE"))
    );
}

#[test]
fn an_oversized_release_upload_is_refused_and_leaves_nothing() {
    let server = Server::start_with(&["--max-release-mib", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("gaia");
    std::fs::write(&big, vec![7u8; 2 << 20]).unwrap();
    let out = server.cli(&[
        "release",
        "upload",
        "--tag",
        "v1.0.0",
        "--platform",
        "linux-x86_64",
        big.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an oversized upload was accepted");
    assert!(
        stderr.contains("too large")
            && stderr.contains("413")
            && stderr.contains("--max-release-mib"),
        "not a clear error: {stderr}"
    );
    // Sent chunked (no declared length), the same upload is cut off at the limit, and leaves
    // nothing either.
    assert_eq!(chunked_put(&server, "v1.0.2", 2 << 20), Some(413));
    let releases = server.data_dir().join("releases");
    if releases.exists() {
        assert_eq!(files_under(&releases), Vec::<String>::new(), "left on disk");
    }
    let list = server.cli_ok(&["release", "list"]);
    assert!(!list.contains("v1.0"), "{list}");
    let json: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["release", "list", "--json"])).unwrap();
    assert_eq!(json["releases"], serde_json::json!([]), "{json}");
    // Under the limit is fine.
    let small = dir.path().join("small");
    std::fs::write(&small, vec![7u8; 512 << 10]).unwrap();
    server.cli_ok(&[
        "release",
        "upload",
        "--tag",
        "v1.0.1",
        "--platform",
        "linux-x86_64",
        small.to_str().unwrap(),
    ]);
    assert!(server.cli_ok(&["release", "list"]).contains("v1.0.1"));
}

/// PUTs `len` bytes as a release file with chunked encoding, so the server learns the size only
/// as it reads. Returns the status, if the server answered before closing.
fn chunked_put(server: &Server, tag: &str, len: usize) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "PUT /api/v1/releases/{tag}/files/gaia?platform=linux-x86_64 HTTP/1.1\r\n\
         host: 127.0.0.1\r\nauthorization: Bearer {}\r\n\
         content-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        server.token
    );
    s.write_all(head.as_bytes()).unwrap();
    let chunk = vec![7u8; 64 << 10];
    let mut sent = 0;
    // The server may stop reading (and close) once past its limit: write errors are expected.
    while sent < len {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if s.write_all(&frame).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
}
