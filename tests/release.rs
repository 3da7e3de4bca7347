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
