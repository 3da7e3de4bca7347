//! GAIA on a real Slurm: Debian's `slurm-wlm` and `munge` (installed by the test where missing
//! and it runs as root, as CI does), one node with this machine's CPUs, every daemon started
//! in a temp dir and stopped again — by a marker in their environment, so the jobs' processes
//! go too — whether the test passes or fails. Also `gaia slurm script`'s golden output, which
//! needs no Slurm.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gaia_core::client::Client;
use gaia_core::model::{Job, JobSpec, JobState, Scope};
use serde_json::json;

use crate::helper::*;

/// Every process of a test cluster carries this variable (daemons, job steps, workers,
/// experiments), with the cluster's temp dir as its value: that is how they are all found
/// and stopped.
const MARK: &str = "GAIA_TEST_SLURM";

/// The golden script (`@VERSION@` stands for the build's version).
const GOLDEN: &str = "tests/fixtures/slurm/gaia-workers.sbatch";

/// `gaia slurm script` writes exactly the script a reader expects; it is what the real-Slurm
/// test below submits, so this pins the text and that test its meaning.
#[test]
fn slurm_script_matches_the_golden_file() {
    let out = Command::new(gaia_bin())
        .args([
            "slurm",
            "script",
            "--workers",
            "8",
            "--gpus-per-worker",
            "1",
            "--time",
            "04:00:00",
            "--partition",
            "gpu",
            "--mem",
            "32G",
            "--cpus-per-worker",
            "8",
            "--server",
            "https://gaia.lab.example:7434",
            "--gaia",
            "/opt/gaia/bin/gaia",
            "--token-file",
            "/home/ana/.config/gaia/worker.token",
            "--tag",
            "a100",
            "--sbatch-arg=--constraint=a100",
            "--",
            "--python",
            "/opt/envs/rl/bin/python",
            "--experiments-dir",
            "/home/ana/lab experiments",
        ])
        .env_remove("GAIA_SERVER")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = String::from_utf8(out.stdout).unwrap();
    let want = std::fs::read_to_string(repo_root().join(GOLDEN))
        .unwrap()
        .replace("@VERSION@", gaia_core::VERSION);
    if got != want && std::env::var_os("GAIA_BLESS").is_some() {
        std::fs::write(
            repo_root().join(GOLDEN),
            got.replace(gaia_core::VERSION, "@VERSION@"),
        )
        .unwrap();
        return;
    }
    assert_eq!(
        got, want,
        "gaia slurm script changed; if on purpose, run with GAIA_BLESS=1 to rewrite {GOLDEN}"
    );
    // A time limit the warning signal does not fit in is refused, saying why.
    let out = Command::new(gaia_bin())
        .args(["slurm", "script", "--time", "1", "--gaia", "/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--signal-lead"));
}

/// A one-node Slurm cluster in a temp dir; stopped (every marked process) when dropped.
struct Slurm {
    dir: tempfile::TempDir,
    conf: PathBuf,
    user: String,
}

impl Slurm {
    /// Installs Slurm if it is missing and this runs as root, starts munged, slurmctld and
    /// slurmd, and waits for the node to be idle. None (skipped) where that cannot be done.
    fn start() -> Option<Slurm> {
        let root = unsafe { libc::geteuid() } == 0;
        let tools = [
            "slurmctld",
            "slurmd",
            "sbatch",
            "squeue",
            "scancel",
            "sinfo",
            "munged",
            "mungekey",
        ];
        let missing = |tools: &[&str]| -> Vec<String> {
            tools
                .iter()
                .filter(|t| !on_path(t))
                .map(|t| t.to_string())
                .collect()
        };
        if !missing(&tools).is_empty() && root && on_path("apt-get") {
            eprintln!("installing slurm-wlm and munge (apt-get)");
            let install = || {
                Command::new("apt-get")
                    .args([
                        "install",
                        "-y",
                        "-qq",
                        "--no-install-recommends",
                        "slurm-wlm",
                        "munge",
                    ])
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .status()
                    .is_ok_and(|s| s.success())
            };
            if !install() {
                let _ = Command::new("apt-get").args(["update", "-qq"]).status();
                install();
            }
        }
        let mut need = missing(&tools);
        if !root {
            need.push("root (slurmd runs jobs as their users)".into());
        }
        if !prerequisites("the real-Slurm test", &need) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("gaia-slurm-")
            .tempdir()
            .unwrap();
        let d = dir.path().to_path_buf();
        for sub in ["state", "spool", "log", "munge", "tmp"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("munge"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let host = hostname();
        let (ctl_port, d_port) = (free_port(), free_port());
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let p = |s: &str| d.join(s).display().to_string();
        let conf = d.join("slurm.conf");
        std::fs::write(
            &conf,
            format!(
                "ClusterName=gaiatest\n\
                 SlurmctldHost={host}(127.0.0.1)\n\
                 SlurmctldPort={ctl_port}\n\
                 SlurmdPort={d_port}\n\
                 AuthType=auth/munge\n\
                 AuthInfo=socket={munge}\n\
                 CredType=cred/munge\n\
                 SlurmUser={user}\n\
                 SlurmdUser=root\n\
                 StateSaveLocation={state}\n\
                 SlurmdSpoolDir={spool}\n\
                 SlurmctldPidFile={ctlpid}\n\
                 SlurmdPidFile={dpid}\n\
                 SlurmctldLogFile={ctllog}\n\
                 SlurmdLogFile={dlog}\n\
                 ProctrackType=proctrack/linuxproc\n\
                 TaskPlugin=task/none\n\
                 JobAcctGatherType=jobacct_gather/none\n\
                 SelectType=select/cons_tres\n\
                 SelectTypeParameters=CR_Core\n\
                 MpiDefault=none\n\
                 ReturnToService=2\n\
                 KillWait=10\n\
                 SchedulerType=sched/backfill\n\
                 NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN\n\
                 PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8\n",
                munge = p("munge/sock"),
                state = p("state"),
                spool = p("spool"),
                ctlpid = p("slurmctld.pid"),
                dpid = p("slurmd.pid"),
                ctllog = p("log/slurmctld.log"),
                dlog = p("log/slurmd.log"),
            ),
        )
        .unwrap();
        let s = Slurm { dir, conf, user };
        // From here on, Drop stops whatever was started, even if a step below fails.
        s.run(
            "mungekey",
            &["--create", "--keyfile", &p("munge/munge.key")],
        );
        s.run(
            "munged",
            &[
                "--force",
                &format!("--socket={}", p("munge/sock")),
                &format!("--key-file={}", p("munge/munge.key")),
                &format!("--pid-file={}", p("munge/munged.pid")),
                &format!("--log-file={}", p("log/munged.log")),
                &format!("--seed-file={}", p("munge/seed")),
            ],
        );
        s.run("slurmctld", &["-f", &s.conf.display().to_string(), "-i"]);
        s.run(
            "slurmd",
            &["-f", &s.conf.display().to_string(), "-N", &host],
        );
        wait_for("the Slurm node to be idle", Duration::from_secs(60), || {
            let out = s.cmd("sinfo").args(["-h", "-o", "%t"]).output().ok()?;
            (String::from_utf8_lossy(&out.stdout).trim() == "idle").then_some(())
        });
        Some(s)
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A Slurm command for this cluster (its config, the marker, a temp dir for the jobs).
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf)
            .env(MARK, self.dir.path())
            .env("TMPDIR", self.path("tmp"))
            .env_remove("SLURM_JOB_ID")
            .env_remove("GAIA_TOKEN")
            .current_dir(self.dir.path());
        c
    }

    /// Runs a command to success; its stdout.
    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.cmd(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sbatch --parsable` of a script; the job id.
    fn sbatch(&self, script: &str) -> String {
        let mut child = self
            .cmd("sbatch")
            .arg("--parsable")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "sbatch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        gaia_core::cluster::slurm::parse_sbatch_parsable(&String::from_utf8_lossy(&out.stdout))
            .unwrap()
    }

    /// Our tasks `squeue` lists: (id, state, name).
    fn tasks(&self) -> Vec<(String, String, String)> {
        self.run("squeue", &["-h", "-r", "-o", "%i|%T|%j"])
            .lines()
            .filter_map(|l| {
                let mut p = l.split('|');
                Some((
                    p.next()?.to_string(),
                    p.next()?.to_string(),
                    p.next()?.to_string(),
                ))
            })
            .collect()
    }

    /// Every live process carrying this cluster's marker.
    fn marked(&self) -> Vec<i32> {
        let needle = format!("{MARK}={}\0", self.dir.path().display()).into_bytes();
        let me = std::process::id() as i32;
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if pid == me || !process_alive(pid) {
                continue;
            }
            if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ"))
                && env.windows(needle.len()).any(|w| w == needle)
            {
                out.push(pid);
            }
        }
        out
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for log in ["log/slurmctld.log", "log/slurmd.log"] {
                let text = std::fs::read_to_string(self.path(log)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("---- {log} (last lines) ----");
                for l in tail.into_iter().rev() {
                    eprintln!("{l}");
                }
            }
            for e in std::fs::read_dir(self.dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".log") {
                    eprintln!("---- task output {name} ----");
                    eprintln!("{}", std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        let _ = self
            .cmd("scancel")
            .args(["--user", &self.user])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for sig in [libc::SIGTERM, libc::SIGKILL] {
            for pid in self.marked() {
                unsafe { libc::kill(pid, sig) };
            }
            let until = Instant::now() + Duration::from_secs(5);
            while !self.marked().is_empty() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let left = self.marked();
        if !left.is_empty() && !std::thread::panicking() {
            panic!("processes of the test cluster outlived it: {left:?}");
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .any(|d| d.join(program).is_file())
    })
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let full = String::from_utf8_lossy(&buf[..end]).into_owned();
    full.split('.').next().unwrap_or("localhost").to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One attempt's generations, checked to be numbered 0, 1, 2, … by seq with no gap or repeat.
fn generations(c: &Client, job: u64, attempt: u32) -> Vec<u64> {
    let rows = c.rows(job, None, Some(attempt)).unwrap().rows;
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.seq, i as u64, "job {job} attempt {attempt}: {rows:?}");
    }
    rows.iter().map(|r| r.generation.unwrap()).collect()
}

fn outcome(job: &Job, attempt: usize) -> String {
    job.attempts[attempt - 1]
        .outcome
        .clone()
        .unwrap_or_default()
}

/// A preempted job: its first attempt ended `preempted: <why>` with the rows it printed kept
/// (1, 2, 3, … with none missing or twice), and another worker ran it whole.
fn assert_preempted_then_finished(c: &Client, id: u64, why: &str, gens: u64) {
    let job = c.job(id).unwrap();
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let first = outcome(&job, 1);
    assert!(first.starts_with(&format!("preempted: {why}")), "{first}");
    let kept = generations(c, id, 1);
    assert!(
        !kept.is_empty(),
        "job {id}: the preempted attempt's rows were dropped"
    );
    assert_eq!(kept, (1..=kept.len() as u64).collect::<Vec<_>>());
    let last = job.attempts.last().unwrap();
    assert_eq!(last.outcome.as_deref(), Some("succeeded"), "{job:?}");
    assert_ne!(last.worker_name, job.attempts[0].worker_name, "{job:?}");
    assert_eq!(
        generations(c, id, job.attempt),
        (1..=gens).collect::<Vec<_>>()
    );
}

/// The issue's scenario on a real Slurm (about 100 s, the longest test: Slurm's shortest time
/// limit is a minute, and it acts on it up to 30 s late):
/// - a 4-task array from `gaia slurm script` drains a 12-job study; `scancel --signal=USR1` of
///   one task mid-job gets that job `preempted` and finished by another task, no row lost or
///   duplicated;
/// - two 1-minute tasks each run a long job: one gives it back before its end, which it learnt
///   from squeue (Slurm 22.05 sets no SLURM_JOB_END_TIME); the other waits for Slurm's SIGTERM
///   at the time limit; both jobs are `preempted` and finished elsewhere;
/// - `gaia slurm autoscale` starts no task while nothing it could run is queued, starts tasks
///   for the two preempted jobs, and none once the queue is empty again.
#[test]
fn workers_on_a_real_slurm_drain_a_study_and_survive_preemption_and_time_limits() {
    let Some(slurm) = Slurm::start() else { return };
    let started = Instant::now();
    let server = Server::start();
    let c = server.client();
    let token_file = slurm.path("worker.token");
    std::fs::write(
        &token_file,
        c.create_token("slurm", Scope::Worker).unwrap().token,
    )
    .unwrap();
    let read_token = c.create_token("autoscale", Scope::Read).unwrap().token;
    let experiments = fake_experiments().display().to_string();
    let script = |flags: &[&str], work: &[&str]| -> String {
        let out = Command::new(gaia_bin())
            .args(["slurm", "script", "--server", &server.url(), "--token-file"])
            .arg(&token_file)
            .args(["--output", "%x-%A_%a.log"])
            .args(flags)
            .args([
                "--",
                "--python",
                "python3",
                "--experiments-dir",
                &experiments,
            ])
            .args(["--kill-grace", "2"])
            .args(work)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    // Two long jobs (a slow first attempt, a quick second), each for one 1-minute task.
    let long = |tag: &str| {
        let mut s = JobSpec::experiment("cma_es", 1000);
        s.params = serde_json::from_value(json!({"gens": 200, "delay": 0.01, "first_delay": 0.5}))
            .unwrap();
        s.requirements.tags = vec![tag.to_string()];
        s.max_attempts = 1;
        c.submit(&s).unwrap()
    };
    let by_deadline = long("tl-self");
    let by_sigterm = long("tl-term");
    slurm.sbatch(&script(
        &[
            "--job-name",
            "tl",
            "--time",
            "1",
            "--signal-lead",
            "0",
            "--tag",
            "tl-self",
        ],
        &["--end-margin", "30", "--preempt-before", "15"],
    ));
    slurm.sbatch(&script(
        &[
            "--job-name",
            "tl",
            "--time",
            "1",
            "--signal-lead",
            "0",
            "--tag",
            "tl-term",
        ],
        &["--end-margin", "30", "--preempt-before", "0"],
    ));
    wait_for("the two long jobs to run", Duration::from_secs(60), || {
        [by_deadline, by_sigterm]
            .iter()
            .all(|&id| c.job(id).unwrap().state == JobState::Running)
            .then_some(())
    });

    // The autoscaler for tagged work: nothing it could run is queued now.
    let autoscale_out = Arc::new(Mutex::new(String::new()));
    let mut autoscale: Child = {
        let mut cmd = slurm.cmd(gaia_bin().to_str().unwrap());
        cmd.args([
            "slurm",
            "autoscale",
            "--server",
            &server.url(),
            "--token-file",
        ])
        .arg(&token_file)
        .args(["--interval", "1", "--max-workers", "2", "--job-name", "as"])
        .args([
            "--time",
            "5",
            "--idle-exit",
            "3",
            "--tag",
            "tl-self",
            "--tag",
            "tl-term",
        ])
        .args(["--user", &slurm.user, "--output", "%x-%A_%a.log"])
        .args([
            "--",
            "--python",
            "python3",
            "--experiments-dir",
            &experiments,
        ])
        .args(["--kill-grace", "2"])
        .env("GAIA_TOKEN", &read_token)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let out = autoscale_out.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("[autoscale] {line}");
                let mut o = out.lock().unwrap();
                o.push_str(&line);
                o.push('\n');
            }
        });
        child
    };
    let submitted = || autoscale_out.lock().unwrap().matches("submitted").count();

    // The study, for a 4-task array of workers offering the tag its jobs need.
    let gens = 16;
    let study: Vec<JobSpec> = (0..12)
        .map(|seed| {
            let mut s = JobSpec::experiment("cma_es", 1000);
            s.seed = Some(seed);
            s.study = Some("on-slurm".into());
            s.requirements.tags = vec!["study".into()];
            s.params = serde_json::from_value(json!({"gens": gens, "delay": 0.25})).unwrap();
            s
        })
        .collect();
    let ids = c.submit_batch(study).unwrap();
    let array = slurm.sbatch(&script(
        &[
            "--workers",
            "4",
            "--job-name",
            "drain",
            "--time",
            "5",
            "--idle-exit",
            "5",
            "--tag",
            "study",
        ],
        &[],
    ));
    // One task preempted mid-job, as Slurm's warning signal would.
    let (victim, task) = wait_for(
        "a study job streaming on a task",
        Duration::from_secs(60),
        || {
            ids.iter().find_map(|&id| {
                let j = c.job(id).unwrap();
                let name = j.worker_name.clone()?;
                (j.state == JobState::Running && j.progress.rows >= 3)
                    .then(|| (id, name.strip_prefix("slurm-").unwrap().to_string()))
            })
        },
    );
    assert!(task.starts_with(&format!("{array}_")), "{task}");
    slurm.run("scancel", &["--signal=USR1", "--batch", &task]);
    for &id in &ids {
        let j = wait_done(&c, id, Duration::from_secs(120));
        assert_eq!(j.state, JobState::Succeeded, "{j:?}");
        assert_eq!(
            generations(&c, id, j.attempt),
            (1..=gens).collect::<Vec<_>>()
        );
    }
    assert_preempted_then_finished(&c, victim, "SIGUSR1 from the scheduler", gens);
    assert_eq!(
        submitted(),
        0,
        "autoscale started tasks with nothing it could run queued"
    );

    // The 1-minute tasks: one gives its job back before its end, the other on Slurm's
    // SIGTERM at the limit; the autoscaler starts tasks that finish both.
    for id in [by_deadline, by_sigterm] {
        wait_done(&c, id, Duration::from_secs(180));
    }
    assert_preempted_then_finished(&c, by_deadline, "its worker's allocation ends in", 200);
    assert_preempted_then_finished(&c, by_sigterm, "SIGTERM from the scheduler", 200);
    let started_tasks = submitted();
    assert!(started_tasks >= 1, "{}", autoscale_out.lock().unwrap());
    for id in [by_deadline, by_sigterm] {
        let j = c.job(id).unwrap();
        let last = &j.attempts.last().unwrap().worker_name;
        assert!(last.starts_with("slurm-"), "{j:?}");
    }

    // Everything done: the workers exit by themselves (idle), and the autoscaler, with an
    // empty queue, starts nothing more.
    wait_for("every task to end", Duration::from_secs(90), || {
        slurm.tasks().is_empty().then_some(())
    });
    std::thread::sleep(Duration::from_secs(4));
    assert!(slurm.tasks().is_empty(), "{:?}", slurm.tasks());
    assert_eq!(
        submitted(),
        started_tasks,
        "{}",
        autoscale_out.lock().unwrap()
    );
    unsafe { libc::kill(autoscale.id() as i32, libc::SIGTERM) };
    assert!(autoscale.wait().unwrap().success());
    // Every task of the array exited 0: the three that ran out of work, and the one that was
    // preempted.
    let log = std::fs::read_to_string(slurm.path("log/slurmctld.log")).unwrap();
    for t in 0..4 {
        let needle = format!("JobId={array}_{t}(");
        let line = log
            .lines()
            .find(|l| l.contains("_job_complete") && l.contains(&needle))
            .unwrap_or_else(|| panic!("no completion of {array}_{t} in slurmctld.log"));
        assert!(line.contains("WEXITSTATUS 0"), "{line}");
    }
    eprintln!("the real-Slurm test took {:.0?}", started.elapsed());
}
