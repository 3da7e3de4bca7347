//! `gaia worker`, `events`, `backup`, `gc`: running the farm day to day.

use std::path::PathBuf;

use anyhow::Context;
use gaia_core::human;
use gaia_core::model::{HoldKind, Worker};
use gaia_core::store::maintenance::{GcReport, GcRequest};

use crate::common::{Conn, print_json, print_table};
use crate::exit;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  gaia worker pause rtx5070 --reason \"driver update\"   # running jobs finish, no new ones
  gaia worker resume rtx5070                           # also lifts a quarantine
  gaia worker drain rtx5070 --exit                     # finish running jobs, then the process ends (0)
  gaia worker forget old-box                           # an offline worker: registration and telemetry
  gaia worker show rtx5070

A worker is named by its name (if only one has it) or its id (gaia workers lists both). Pausing
and draining survive a restart of the server and of the worker. The server quarantines a worker
whose last jobs all failed at setup (see `gaia serve --quarantine-after`); resume lifts it.")]
pub struct WorkerArgs {
    #[command(subcommand)]
    cmd: WorkerCmd,
}

#[derive(clap::Subcommand)]
enum WorkerCmd {
    /// Pause a worker: it finishes its running jobs and claims no new ones until resumed.
    Pause {
        #[command(flatten)]
        conn: Conn,
        /// Worker name or id.
        worker: String,
        /// Why (shown with the worker).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a paused, draining or quarantined worker.
    Resume {
        #[command(flatten)]
        conn: Conn,
        /// Worker name or id.
        worker: String,
    },
    /// Drain a worker: it finishes its running jobs and claims no more; with --exit its
    /// process then ends with status 0.
    Drain {
        #[command(flatten)]
        conn: Conn,
        /// Worker name or id.
        worker: String,
        /// End the worker process once its jobs are done.
        #[arg(long)]
        exit: bool,
        /// Why (shown with the worker).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Forget an offline worker: its registration and its telemetry.
    Forget {
        #[command(flatten)]
        conn: Conn,
        /// Worker name or id.
        worker: String,
    },
    /// Show one worker: state, hold and its reason, hardware, usage.
    Show {
        #[command(flatten)]
        conn: Conn,
        /// Worker name or id.
        worker: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// One line on what a hold means, for people.
pub fn hold_text(w: &Worker) -> String {
    match &w.hold {
        None => String::new(),
        Some(h) => {
            let what = match (h.kind, h.exit) {
                (HoldKind::Draining, true) => "draining, then exiting".to_string(),
                (kind, _) => kind.to_string(),
            };
            let by = if h.by.is_empty() { "server" } else { &h.by };
            let why = if h.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", h.reason)
            };
            format!("{what} by {by} {}{why}", human::ago(h.since))
        }
    }
}

pub fn worker(a: WorkerArgs) -> anyhow::Result<i32> {
    match a.cmd {
        WorkerCmd::Pause {
            conn,
            worker,
            reason,
        } => {
            let w = conn.client()?.pause_worker(&worker, reason)?;
            println!(
                "paused {} ({}): running jobs finish, no new ones are claimed; gaia worker resume {} lifts it",
                w.name, w.id, w.name
            );
        }
        WorkerCmd::Resume { conn, worker } => {
            let w = conn.client()?.resume_worker(&worker)?;
            println!(
                "resumed {} ({}): it claims jobs again from its next heartbeat",
                w.name, w.id
            );
        }
        WorkerCmd::Drain {
            conn,
            worker,
            exit,
            reason,
        } => {
            let w = conn.client()?.drain_worker(&worker, reason, exit)?;
            println!(
                "draining {} ({}): {} running job(s) finish{}",
                w.name,
                w.id,
                w.running.len(),
                if exit {
                    ", then the worker process exits"
                } else {
                    "; it claims no new ones until resumed"
                }
            );
        }
        WorkerCmd::Forget { conn, worker } => {
            let w = conn.client()?.forget_worker(&worker)?;
            println!("forgot {} ({})", w.name, w.id);
        }
        WorkerCmd::Show { conn, worker, json } => {
            let w = conn.client()?.worker(&worker)?;
            if json {
                print_json(&w)?;
                return Ok(exit::OK);
            }
            println!("{} ({})", w.name, w.id);
            println!("state:     {}", w.state);
            if w.hold.is_some() {
                println!("hold:      {}", hold_text(&w));
            }
            println!("last seen: {}", human::ago(w.last_seen));
            println!(
                "hardware:  {} cores, {}, {}",
                w.hardware.cpu_cores,
                human::bytes(w.hardware.memory_mb << 20),
                if w.hardware.gpus.is_empty() {
                    "no GPU".to_string()
                } else {
                    w.hardware
                        .gpus
                        .iter()
                        .map(|g| format!("GPU{} {}", g.index, g.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            println!(
                "usage:     CPU {:.0}%, RAM {:.0}%",
                w.usage.cpu_percent, w.usage.memory_percent
            );
            for g in &w.usage.gpus {
                let pct = |v: Option<f32>| v.map_or("-".into(), |v| format!("{v:.0}%"));
                let mem = match (g.memory_used_mb, g.memory_total_mb) {
                    (Some(u), Some(t)) => format!("{u}/{t} MiB"),
                    _ => "-".into(),
                };
                println!(
                    "  GPU{}:    {} util, {mem}, {}{}",
                    g.index,
                    pct(g.utilization),
                    g.temperature_c.map_or("-".into(), |t| format!("{t:.0}°C")),
                    g.error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                );
            }
            println!(
                "running:   {}",
                if w.running.is_empty() {
                    "nothing".to_string()
                } else {
                    w.running
                        .iter()
                        .map(|j| j.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
        }
    }
    Ok(exit::OK)
}

#[derive(clap::Args)]
pub struct EventsArgs {
    #[command(flatten)]
    conn: Conn,
    /// The audit log instead: admin actions with the name of the token that did them (an
    /// admin token).
    #[arg(long)]
    audit: bool,
    /// Only entries after this id.
    #[arg(long)]
    after: Option<u64>,
    /// How many (the newest, unless --after).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn events(a: EventsArgs) -> anyhow::Result<i32> {
    let client = a.conn.client()?;
    if a.audit {
        let list = client.audit(a.after, a.limit)?;
        if a.json {
            print_json(&list)?;
            return Ok(exit::OK);
        }
        let rows: Vec<Vec<String>> = list
            .entries
            .iter()
            .map(|e| {
                vec![
                    e.id.to_string(),
                    human::time(e.at),
                    e.actor.clone(),
                    e.action.clone(),
                    e.target.clone(),
                    e.detail.clone(),
                ]
            })
            .collect();
        print_table(&["id", "at", "by", "action", "target", "detail"], &rows);
        return Ok(exit::OK);
    }
    let list = client.events(a.after, a.limit)?;
    if a.json {
        print_json(&list)?;
        return Ok(exit::OK);
    }
    let rows: Vec<Vec<String>> = list
        .events
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                human::time(e.at),
                e.kind.clone(),
                e.message.clone(),
            ]
        })
        .collect();
    print_table(&["id", "at", "kind", "message"], &rows);
    Ok(exit::OK)
}

#[derive(clap::Args)]
#[command(
    after_help = "The copy is made from one consistent snapshot while the server keeps \
serving and ingesting. To restore: put it as gaia.redb in an empty folder and run
  gaia serve --data-dir FOLDER
Result files and releases live beside the database in the data dir (files/, releases/): copy
those with rsync; they never change once written."
)]
pub struct BackupArgs {
    #[command(flatten)]
    conn: Conn,
    /// Where to write the copy (written whole or not at all).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn backup(a: BackupArgs) -> anyhow::Result<i32> {
    if a.out.exists() {
        anyhow::bail!("{} exists; give a new file name", a.out.display());
    }
    let client = a.conn.client()?;
    let started = std::time::Instant::now();
    let bytes = client
        .backup(&a.out)
        .with_context(|| format!("backup to {}", a.out.display()))?;
    println!(
        "wrote {} ({}) in {:.1}s; restore with: gaia serve --data-dir DIR (holding it as gaia.redb)",
        a.out.display(),
        human::bytes(bytes),
        started.elapsed().as_secs_f64()
    );
    Ok(exit::OK)
}

#[derive(clap::Args)]
#[command(after_help = "Examples:
  gaia gc --rows-older-than 180d --logs-older-than 30d --dry-run
  gaia gc --rows-older-than 180d
  gaia gc --logs-older-than 30d --offline --data-dir ./gaia-data    # server stopped: also compacts

Only jobs that ended before the cutoff lose their rows or log lines; their records (state,
progress, result, attempts) stay. Deletes go in small batches, so ingest carries on. The file
stops growing and its freed pages are reused; it shrinks only when compacted (--offline).
`gaia serve --gc-rows-older-than/--gc-logs-older-than` runs the same every hour.")]
pub struct GcArgs {
    #[command(flatten)]
    conn: Conn,
    /// Delete the rows of jobs that ended longer ago than this (180d, 12h, 90m).
    #[arg(long, value_name = "AGE", value_parser = gaia_core::human::parse_span_secs)]
    rows_older_than: Option<u64>,
    /// Delete the log lines of jobs that ended longer ago than this.
    #[arg(long, value_name = "AGE", value_parser = gaia_core::human::parse_span_secs)]
    logs_older_than: Option<u64>,
    /// Count what would go; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Work on --data-dir directly, with the server stopped, and compact the file afterwards.
    #[arg(long)]
    offline: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn gc(a: GcArgs) -> anyhow::Result<i32> {
    let req = GcRequest {
        rows_older_than_secs: a.rows_older_than,
        logs_older_than_secs: a.logs_older_than,
        dry_run: a.dry_run,
    };
    req.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = if a.offline {
        let dir = a.conn.data_dir.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut report = rt.block_on(async {
            let store = gaia_core::store::Store::open(&dir).with_context(|| {
                format!("open {} (is the server still running?)", dir.display())
            })?;
            let r = store.gc(&req).await?;
            anyhow::Ok(r)
        })?;
        drop(rt);
        if !a.dry_run {
            // The store's writer lets go of the file when its last handle is gone.
            let mut tries = 0;
            let (_, after) = loop {
                match gaia_core::store::maintenance::compact_offline(&dir) {
                    Ok(x) => break x,
                    Err(_) if tries < 50 => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            report.file_bytes_after = after;
            report.compacted = true;
        }
        report
    } else {
        a.conn.client()?.gc(&req)?
    };
    if a.json {
        print_json(&report)?;
    } else {
        print_gc(&report);
    }
    Ok(exit::OK)
}

fn print_gc(r: &GcReport) {
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    println!(
        "{verb} {} rows of {} jobs and {} log lines of {} jobs{}",
        r.rows_deleted,
        r.row_jobs,
        r.log_lines_deleted,
        r.log_jobs,
        if r.dry_run {
            String::new()
        } else {
            format!(
                " in {} batches, {:.1}s",
                r.batches,
                r.took_ms as f64 / 1000.0
            )
        }
    );
    println!(
        "database file: {} before, {} after{}",
        human::bytes(r.file_bytes_before),
        human::bytes(r.file_bytes_after),
        if r.compacted {
            " (compacted)"
        } else if r.dry_run {
            ""
        } else {
            " (freed pages are reused; gaia gc --offline compacts)"
        }
    );
}
