//! Studies and exports through real processes: sweeps submitted with `gaia submit --study`,
//! `gaia study` / `gaia studies`, and every `gaia export` form, with and without a real worker.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use gaia_core::export::csv::read_records;
use gaia_core::model::{Capabilities, JobKind, JobSpec, Row};
use gaia_core::protocol::{ClaimRequest, RegisterRequest, RowBatch};

use crate::helper::*;

#[test]
fn study_sweeps_expand_and_identical_resubmission_is_refused() {
    let server = Server::start();
    let sweep = [
        "submit",
        "--study",
        "classic-control",
        "--method",
        "cma_es,openai_es",
        "--env",
        "CartPole-v1,Acrobot-v1",
        "--seeds",
        "1..5",
        "--max-evals",
        "50000",
    ];
    let table = server.cli_ok(&sweep);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 21, "{table}");
    assert!(lines[0].starts_with("ID"), "{table}");
    assert!(lines[1].contains("cma_es") && lines[1].contains("CartPole-v1"));
    assert!(lines[20].contains("openai_es") && lines[20].contains("Acrobot-v1"));

    // The same definition again is refused, and nothing is added...
    let err = server.cli_err(&sweep);
    assert!(err.contains("--again"), "{err}");
    let client = server.client();
    assert_eq!(client.study("classic-control").unwrap().jobs.len(), 20);
    // ...unless asked for; a different definition adds to the study.
    let mut again = sweep.to_vec();
    again.push("--again");
    server.cli_ok(&again);
    let mut more = sweep.to_vec();
    more[8] = "6,7";
    server.cli_ok(&more);
    let report = client.study("classic-control").unwrap();
    assert_eq!(report.jobs.len(), 20 + 20 + 8);
    assert_eq!(report.record.as_ref().unwrap().submissions.len(), 3);
    assert_eq!(report.groups.len(), 4);
    assert_eq!(report.progress.evals_total, 48.0 * 50_000.0);
    assert_eq!(report.progress.eta_secs, None, "no data: ETA unknown");

    // Param sweeps with ranges; the study view and the list.
    let out = server.cli_ok(&[
        "submit",
        "--study",
        "params",
        "--method",
        "cma_es",
        "--env",
        "sphere",
        "--param",
        "pop_size=8..10",
        "--param",
        "hidden=[4,4],[8]",
        "--seed",
        "1",
    ]);
    assert_eq!(out.lines().count(), 1 + 3 * 2, "{out}");
    assert!(out.contains("[4,4]"), "{out}");
    let shown = server.cli_ok(&["study", "classic-control"]);
    assert!(shown.contains("48 jobs"), "{shown}");
    assert!(shown.contains("ETA:       unknown"), "{shown}");
    let listed = server.cli_ok(&["studies", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["studies"].as_array().unwrap().len(), 2);

    // Malformed sweeps name the bad part; nothing is submitted.
    for (args, needle) in [
        (vec!["--seeds", "1..x"], "\"x\""),
        (vec!["--seeds", "5..1"], "below its start"),
        (vec!["--param", "pop_size=1,,2"], "value 2 is empty"),
        (vec!["--env", "a,,b"], "item 2 is empty"),
        (vec!["--seeds", "1..6000"], "--yes"),
    ] {
        let mut cmd = vec!["submit", "--study", "bad", "--method", "cma_es,openai_es"];
        cmd.extend(args);
        let err = server.cli_err(&cmd);
        assert!(err.contains(needle), "{cmd:?}: {err}");
    }
    assert!(
        client.study("bad").is_err(),
        "a refused study left something behind"
    );
    // A sweep without --study says what is missing; the plain submit still works.
    let err = server.cli_err(&["submit", "--method", "cma_es,openai_es"]);
    assert!(err.contains("--study"), "{err}");
    let id = server.cli_ok(&["submit", "--method", "cma_es", "--max-evals", "10"]);
    assert!(id.trim().parse::<u64>().is_ok(), "{id}");
}

/// Stores `rows` for a new job through the worker API; returns the job id.
fn job_with_rows(server: &Server, spec: JobSpec, rows: Vec<Row>) -> u64 {
    let client = server.client();
    let worker = client
        .register(&RegisterRequest {
            worker_id: None,
            name: "exporter".into(),
            version: gaia_core::VERSION.into(),
            hardware: Default::default(),
            kinds: vec![JobKind::Experiment],
            tags: vec![],
            slots: 8,
        })
        .unwrap()
        .worker_id;
    let id = client.submit(&spec).unwrap();
    let a = client
        .claim(&ClaimRequest {
            worker_id: worker,
            capabilities: Capabilities {
                kinds: vec![JobKind::Experiment],
                ..Default::default()
            },
            wait_ms: 0,
            finished: None,
            watch_study: None,
        })
        .unwrap()
        .unwrap();
    assert_eq!(a.job.id, id);
    for chunk in rows.chunks(5000) {
        client
            .post_rows(
                id,
                &RowBatch {
                    attempt: a.attempt,
                    lease: a.lease,
                    rows: chunk.to_vec(),
                    fraction: None,
                    status: None,
                },
                true,
            )
            .unwrap();
    }
    id
}

#[test]
fn export_round_trip_csv_json_png_through_server_and_cli() {
    let server = Server::start();
    let rows: Vec<Row> = (0..3000u64)
        .map(|i| Row {
            seq: i,
            generation: Some(i + 1),
            evals: Some((i + 1) as f64 * 1350.0),
            best: Some((i as f64).sin() * 1e6),
            best_ever: Some(i as f64 / 3.0),
            mean: Some(-0.1 - i as f64),
            sigma: Some(0.5 * (-(i as f64) / 500.0).exp()),
            elapsed: Some(i as f64 * 0.01),
            metrics: if i % 2 == 0 {
                vec![("entropy".into(), 1.0 / (1.0 + i as f64))]
            } else {
                vec![("kl".into(), i as f64 * 1e-9)]
            },
        })
        .collect();
    let mut spec = JobSpec::experiment("cma_es", 5_000_000);
    spec.env = Some("sphere".into());
    spec.seed = Some(7);
    spec.params
        .insert("label".into(), serde_json::json!("commas, and \"quotes\""));
    let id = job_with_rows(&server, spec, rows.clone());
    let dir = tempfile::tempdir().unwrap();
    let sid = id.to_string();

    // CSV → parsed back equal, with the union of metric columns.
    let printed = server.cli_in(dir.path(), &["export", "--job", &sid, "--csv"]);
    assert_eq!(printed.trim(), format!("job-{id}.csv"));
    let text = std::fs::read_to_string(dir.path().join(format!("job-{id}.csv"))).unwrap();
    let recs = read_records(&text).unwrap();
    let header = &recs[0];
    for c in ["job", "param_label", "best_ever", "entropy", "kl"] {
        assert!(header.iter().any(|h| h == c), "{c} missing from {header:?}");
    }
    assert_eq!(recs.len(), 3001);
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let num = |s: &str| -> Option<f64> { (!s.is_empty()).then(|| s.parse().unwrap()) };
    for (rec, r) in recs[1..].iter().zip(&rows) {
        assert_eq!(rec[col("param_label")], "commas, and \"quotes\"");
        assert_eq!(rec[col("seq")].parse::<u64>().unwrap(), r.seq);
        for m in ["evals", "best", "best_ever", "mean", "sigma", "elapsed"] {
            assert_eq!(num(&rec[col(m)]), r.metric(m), "{m} of row {}", r.seq);
        }
        assert_eq!(num(&rec[col("entropy")]), r.metric("entropy"));
        assert_eq!(num(&rec[col("kl")]), r.metric("kl"));
        assert!(!rec[col("evals")].contains(','), "grouped digits");
    }

    // JSON: full precision and nulls.
    server.cli_in(dir.path(), &["export", "--job", &sid, "--json"]);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(format!("job-{id}.json"))).unwrap())
            .unwrap();
    let jrows = doc["jobs"][0]["rows"].as_array().unwrap();
    assert_eq!(jrows.len(), 3000);
    assert_eq!(jrows[5]["best"].as_f64().unwrap(), rows[5].best.unwrap());
    assert!(jrows[1]["entropy"].is_null() && jrows[0]["kl"].is_null());
    // Evaluations are counts: integers in JSON (`1350`, not `1350.0`) and in `gaia show`
    // (`4,050,000`, not `4.050e6`).
    assert!(jrows[0]["evals"].is_u64(), "{}", jrows[0]);
    let shown = server.cli_ok(&["show", &sid]);
    assert!(shown.contains("evals 4,050,000,"), "{shown}");
    assert!(shown.contains("3,000 rows, generation 3,000,"), "{shown}");

    // PNG of the requested size, default and custom; log-y of a metric.
    server.cli_in(dir.path(), &["export", "--job", &sid, "--png"]);
    let png = std::fs::read(dir.path().join(format!("job-{id}.png"))).unwrap();
    assert_eq!(png_size(&png), (1600, 1000));
    server.cli_in(
        dir.path(),
        &[
            "export",
            "--job",
            &sid,
            "--png",
            "--metric",
            "sigma",
            "--log-y",
            "--size",
            "800x600",
            "--out",
            "sigma.png",
        ],
    );
    assert_eq!(
        png_size(&std::fs::read(dir.path().join("sigma.png")).unwrap()),
        (800, 600)
    );
    // An unknown metric is a clear error and leaves no file.
    let _ = std::fs::remove_file("/tmp/never.png");
    let err = server.cli_err(&[
        "export",
        "--job",
        &sid,
        "--png",
        "--metric",
        "nope",
        "--out",
        "/tmp/never.png",
    ]);
    assert!(
        err.contains("no metric \"nope\"") && err.contains("entropy"),
        "{err}"
    );
    assert!(!Path::new("/tmp/never.png").exists());
    // A built-in job has a result, not a learning curve: a 400 that says so, and no file.
    let hash = server.cli_ok(&["submit", "--kind", "hash", "--input", "hello"]);
    let hash = hash.trim();
    let out = dir.path().join("hash.png");
    let err = server.cli_err(&[
        "export",
        "--job",
        hash,
        "--png",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("400")
            && err.contains(&format!(
                "job {hash} is a hash job: it has a result, not a learning curve"
            )),
        "{err}"
    );
    assert!(!out.exists());
    let err = server.cli_err(&["export", "--job", "999", "--csv", "--out", "-"]);
    assert!(err.contains("404") && err.contains("job 999"), "{err}");

    // The same exports over HTTP, as the dashboard's buttons fetch them (token in the query).
    let (status, body) = http(
        "GET",
        &format!(
            "{}/api/v1/jobs/{id}/export.csv?token={}",
            server.url(),
            server.token
        ),
        None,
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(body, text);
    let (status, _) = http(
        "GET",
        &format!("{}/api/v1/export.json", server.url()),
        Some(&server.token),
        None,
    );
    assert_eq!(status, 200);
    let (status, body) = http(
        "GET",
        &format!("{}/api/v1/jobs/{id}/export.png?width=10", server.url()),
        Some(&server.token),
        None,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("width"), "{body}");
}

/// A writer that kills the server at its first byte: the export is cut mid-stream.
struct KillAtFirstByte<'a, W: std::io::Write> {
    inner: W,
    server: &'a mut Server,
}

impl<W: std::io::Write> std::io::Write for KillAtFirstByte<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.server.kill9();
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn an_export_the_server_cuts_short_is_an_error_and_leaves_no_file() {
    // Some 20 MB of CSV: more than the pipes and socket buffers between the server and the
    // reader hold, so the server is still sending when it dies.
    let rows: Vec<Row> = (0..150_000u64)
        .map(|i| Row {
            seq: i,
            generation: Some(i + 1),
            evals: Some((i + 1) as f64 * 64.0),
            best: Some((i as f64).sin()),
            best_ever: Some((i as f64).cos()),
            mean: Some((i as f64).sqrt() / 7.0),
            sigma: Some(1.0 / (1.0 + i as f64)),
            elapsed: Some(i as f64 / 3.0),
            metrics: vec![],
        })
        .collect();

    // The client: an error that says the answer was cut, and no file (nor .part) left.
    let mut server = Server::start();
    let id = job_with_rows(
        &server,
        JobSpec::experiment("cma_es", 10_000_000),
        rows.clone(),
    );
    let client = server.client();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("job.csv");
    let err = gaia_core::client::save_to_file(&dest, |out| {
        client.export(
            &gaia_core::export::Target::Job(id),
            gaia_core::export::Format::Csv,
            &Default::default(),
            &mut KillAtFirstByte {
                inner: out,
                server: &mut server,
            },
            &mut |_| {},
        )
    })
    .unwrap_err();
    assert!(
        matches!(err, gaia_core::error::ClientError::Interrupted { .. }),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a file was left"
    );

    // The CLI: reads the head of the export, the server dies, the rest is an error, not a
    // short export taken for a whole one.
    let mut server = Server::start();
    let id = job_with_rows(&server, JobSpec::experiment("cma_es", 10_000_000), rows);
    let mut child = Command::new(gaia_bin())
        .args(["export", "--job", &id.to_string(), "--csv", "--out", "-"])
        .env("GAIA_SERVER", server.url())
        .env("GAIA_TOKEN", &server.token)
        .env_remove("GAIA_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut header = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut header).unwrap();
    assert!(header.starts_with("study,job,"), "{header}");
    server.kill9();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a cut export succeeded: {stderr}");
    assert!(stderr.contains("was cut off after"), "{stderr}");
    let lines = rest.iter().filter(|b| **b == b'\n').count();
    assert!(lines < 150_000, "the whole export arrived before the kill");
}

/// The Python of the experiments' virtualenv (scripts/test builds it).
fn experiments_python() -> std::path::PathBuf {
    let py = repo_root().join("experiments/.venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: build it with python3 -m venv experiments/.venv && \
         experiments/.venv/bin/pip install -r experiments/requirements.txt (scripts/test does)",
        py.display()
    );
    py
}

#[test]
fn a_small_study_through_server_and_worker_exports_every_format() {
    let server = Server::start();
    let python = experiments_python();
    let client = server.client();
    server.cli_ok(&[
        "submit",
        "--study",
        "spheres",
        "--method",
        "cma_es,openai_es",
        "--env",
        "sphere",
        "--seeds",
        "1..2",
        "--max-evals",
        "3000",
    ]);
    let state = tempfile::tempdir().unwrap();
    let mut worker = Command::new(gaia_bin())
        .args([
            "work",
            "--name",
            "study-worker",
            "--gpu",
            "none",
            "--slots",
            "2",
        ])
        .arg("--experiments-dir")
        .arg(repo_root().join("experiments"))
        .arg("--python")
        .arg(&python)
        .arg("--state-dir")
        .arg(state.path())
        .env("GAIA_SERVER", server.url())
        .env("GAIA_TOKEN", &server.token)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let report = wait_for("the study to finish", Duration::from_secs(240), || {
        let r = client.study("spheres").unwrap();
        (r.progress.states.get("succeeded") == Some(&4)).then_some(r)
    });
    let _ = worker.kill();
    let _ = worker.wait();
    assert_eq!(report.progress.fraction, 1.0);
    assert_eq!(report.progress.eta_note.as_deref(), Some("done"));
    assert_eq!(report.groups.len(), 2);
    for g in &report.groups {
        let b = g.best.expect("best over seeds");
        assert_eq!(b.n, 2);
        assert!(b.std.is_some() && b.mean.is_finite());
    }
    let shown = server.cli_ok(&["study", "spheres"]);
    assert!(shown.contains("±") && shown.contains("done"), "{shown}");

    let dir = tempfile::tempdir().unwrap();
    let job = report.jobs[0].id.to_string();
    let runs: Vec<(Vec<&str>, String)> = vec![
        (vec!["--job", &job, "--png"], format!("job-{job}.png")),
        (vec!["--job", &job, "--csv"], format!("job-{job}.csv")),
        (vec!["--job", &job, "--json"], format!("job-{job}.json")),
        (
            vec!["--job", &job, "--png", "--metric", "sigma", "--log-y"],
            "sigma.png".into(),
        ),
        (
            vec!["--study", "spheres", "--png"],
            "study-spheres.png".into(),
        ),
        (
            vec!["--study", "spheres", "--csv"],
            "study-spheres.csv".into(),
        ),
        (
            vec!["--study", "spheres", "--json"],
            "study-spheres.json".into(),
        ),
        (
            vec!["--study", "spheres", "--files"],
            "study-spheres-files.zip".into(),
        ),
        (
            vec!["--all", "--json", "--out", "all.json"],
            "all.json".into(),
        ),
    ];
    for (args, file) in runs {
        let mut cmd = vec!["export"];
        cmd.extend(args.iter().copied());
        if file == "sigma.png" {
            cmd.extend(["--out", "sigma.png"]);
        }
        server.cli_in(dir.path(), &cmd);
        let bytes = std::fs::read(dir.path().join(&file))
            .unwrap_or_else(|e| panic!("{cmd:?} wrote no {file}: {e}"));
        match file.rsplit('.').next().unwrap() {
            "png" => assert_eq!(png_size(&bytes), (1600, 1000), "{file}"),
            "csv" => {
                let recs = read_records(std::str::from_utf8(&bytes).unwrap()).unwrap();
                assert!(recs.len() > 10, "{file}: {} records", recs.len());
                assert!(recs[1..].iter().all(|r| r.len() == recs[0].len()));
            }
            "json" => {
                let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert!(!doc["jobs"].as_array().unwrap().is_empty(), "{file}");
            }
            "zip" => {
                assert_eq!(&bytes[..4], b"PK\x03\x04", "{file}");
                let listing = Command::new(&python)
                    .args([
                        "-c",
                        "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
                               assert z.testzip() is None; print('\\n'.join(z.namelist()))",
                    ])
                    .arg(dir.path().join(&file))
                    .output()
                    .unwrap();
                assert!(listing.status.success(), "{listing:?}");
                let names = String::from_utf8(listing.stdout).unwrap();
                assert!(names.contains("spheres/job-"), "{names}");
                assert!(names.contains("result.json"), "{names}");
            }
            _ => unreachable!(),
        }
    }
    let study_csv = std::fs::read_to_string(dir.path().join("study-spheres.csv")).unwrap();
    let recs = read_records(&study_csv).unwrap();
    assert_eq!(
        &recs[0][..9],
        [
            "study",
            "job",
            "method",
            "env",
            "seed",
            "attempt",
            "seq",
            "generation",
            "evals"
        ]
    );
    let methods: std::collections::BTreeSet<&str> =
        recs[1..].iter().map(|r| r[2].as_str()).collect();
    assert_eq!(methods.len(), 2);
}

#[test]
fn build_pulls_in_no_system_font_library() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "gaia-core",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    assert!(
        tree.contains("plotters"),
        "plotters is not in the tree:\n{tree}"
    );
    for bad in [
        "yeslogic-fontconfig-sys",
        "freetype-sys",
        "servo-fontconfig",
    ] {
        assert!(
            !tree.lines().any(|l| l.starts_with(bad)),
            "{bad} is in gaia-core's dependency tree: text rendering would need system libraries"
        );
    }
}
