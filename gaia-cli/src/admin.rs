//! `gaia workers`, `status`, `token`.

use gaia_core::model::Scope;

use gaia_core::human;

use crate::common::{Conn, print_json, print_table};
use crate::exit;

#[derive(clap::Args)]
pub struct WorkersArgs {
    #[command(flatten)]
    conn: Conn,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Redraw the list every few seconds until Ctrl-C.
    #[arg(long)]
    watch: bool,
    /// Seconds between redraws with --watch.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    interval: f64,
}

pub fn workers(a: WorkersArgs) -> anyhow::Result<i32> {
    let client = a.conn.client()?;
    if a.watch {
        let pause = std::time::Duration::from_secs_f64(a.interval.clamp(0.2, 3600.0));
        loop {
            let list = client.workers()?;
            // Home and clear: the table is drawn over the last one.
            print!("\x1b[H\x1b[2J");
            println!(
                "{}  workers at {}  (Ctrl-C to stop)\n",
                client.base(),
                human::time(gaia_core::model::now_ms())
            );
            print_workers(&list.workers);
            std::thread::sleep(pause);
        }
    }
    let list = client.workers()?;
    if a.json {
        print_json(&list)?;
        return Ok(exit::OK);
    }
    print_workers(&list.workers);
    Ok(exit::OK)
}

fn print_workers(workers: &[gaia_core::model::Worker]) {
    let list = gaia_core::protocol::WorkerList {
        workers: workers.to_vec(),
    };
    let rows: Vec<Vec<String>> = list
        .workers
        .iter()
        .map(|w| {
            let gpus = if w.hardware.gpus.is_empty() {
                "no GPU".to_string()
            } else {
                w.hardware
                    .gpus
                    .iter()
                    .map(|g| g.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            vec![
                w.name.clone(),
                w.id.clone(),
                w.state.as_str().to_string(),
                human::ago(w.last_seen),
                format!(
                    "{} cores, {}, {gpus}",
                    w.hardware.cpu_cores,
                    human::bytes(w.hardware.memory_mb << 20)
                ),
                if w.update_available {
                    format!("{} (update available)", w.version)
                } else {
                    w.version.clone()
                },
                w.running
                    .iter()
                    .map(|j| j.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                crate::ops::hold_text(w),
            ]
        })
        .collect();
    print_table(
        &[
            "name",
            "id",
            "state",
            "last seen",
            "hardware",
            "version",
            "running",
            "hold",
        ],
        &rows,
    );
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    conn: Conn,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn status(a: StatusArgs) -> anyhow::Result<i32> {
    let client = a.conn.client()?;
    let s = client.status()?;
    if a.json {
        print_json(&s)?;
        return Ok(exit::OK);
    }
    println!(
        "server:   {} (gaia {}, protocol {})",
        client.base(),
        s.version,
        s.protocol
    );
    println!("up since: {}", human::time(s.started_at));
    println!(
        "workers:  {} online of {}",
        s.workers_online, s.workers_total
    );
    let counts: Vec<String> = s.jobs.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("jobs:     {}", counts.join(", "));
    Ok(exit::OK)
}

#[derive(clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    cmd: TokenCmd,
}

#[derive(clap::Subcommand)]
enum TokenCmd {
    /// Create a token; its secret is printed once.
    Create {
        #[command(flatten)]
        conn: Conn,
        /// What the token may do: read (look), submit (look, submit, and cancel or extend
        /// what its user owns), worker (run jobs), metrics (read /metrics and nothing else:
        /// for Prometheus), admin (everything). With a submit token you make read and submit
        /// tokens for yourself.
        #[arg(long)]
        scope: Scope,
        /// A unique name for the token.
        #[arg(long)]
        name: Option<String>,
        /// The user the token acts for (admin only; default: the user of the token you call
        /// with). What it submits belongs to that user.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (names, scopes and users; secrets are never stored). A submit token lists
    /// its own user's.
    List {
        #[command(flatten)]
        conn: Conn,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by name (a submit token revokes only its own user's).
    Revoke {
        #[command(flatten)]
        conn: Conn,
        /// Token name.
        name: String,
    },
}

pub fn token(a: TokenArgs) -> anyhow::Result<i32> {
    match a.cmd {
        TokenCmd::Create {
            conn,
            scope,
            name,
            user,
            json,
        } => {
            let client = conn.client()?;
            // A default name unique enough for tokens made in a loop (seconds and micros).
            let name = name.unwrap_or_else(|| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                format!(
                    "{}-{}-{:06}",
                    scope.as_str(),
                    t.as_secs(),
                    t.subsec_micros()
                )
            });
            let t = client.create_token_for(&name, scope, user.as_deref())?;
            if json {
                print_json(&t)?;
            } else {
                eprintln!(
                    "created {} token {:?} for {}; it is shown only now:",
                    t.scope.as_str(),
                    t.name,
                    t.user
                );
                println!("{}", t.token);
            }
        }
        TokenCmd::List { conn, json } => {
            let client = conn.client()?;
            let list = client.tokens()?;
            if json {
                print_json(&list)?;
            } else {
                let rows: Vec<Vec<String>> = list
                    .tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.scope.as_str().into(),
                            t.user.clone(),
                            human::time(t.created_at),
                        ]
                    })
                    .collect();
                print_table(&["name", "scope", "user", "created"], &rows);
            }
        }
        TokenCmd::Revoke { conn, name } => {
            conn.client()?.revoke_token(&name)?;
            println!("revoked token {name:?}");
        }
    }
    Ok(exit::OK)
}
