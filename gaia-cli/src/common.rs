//! Flags every client subcommand shares, and small output helpers (numbers and times are
//! written by `gaia_core::human`, one format per kind of value).

use std::path::PathBuf;

use anyhow::Context;
use gaia_core::client::{Client, DEFAULT_SERVER};
use gaia_core::server::ADMIN_TOKEN_FILE;

// Where the server is and how to authenticate (a plain comment: a doc comment would become the
// about of every subcommand that flattens it, whose arguments are built deferred).
#[derive(clap::Args, Clone, Debug)]
pub struct Conn {
    /// Server URL.
    #[arg(long, env = "GAIA_SERVER", default_value = DEFAULT_SERVER, global = true)]
    pub server: String,
    /// API token. Without one, the admin token of a server on this machine is used
    /// (read from <data-dir>/admin.token).
    #[arg(long, env = "GAIA_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Data directory of a server on this machine, to find its admin token.
    #[arg(
        long,
        env = "GAIA_DATA_DIR",
        default_value = "./gaia-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// CA certificate(s), PEM, to trust for an https:// server instead of the public roots
    /// (a lab CA, or Caddy's `tls internal` root).
    #[arg(long, env = "GAIA_CA_CERT", value_name = "FILE", global = true)]
    pub ca_cert: Option<PathBuf>,
}

impl Conn {
    /// A client, with the token from the flag, the environment, or the local data dir.
    pub fn client(&self) -> anyhow::Result<Client> {
        let token = match &self.token {
            Some(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            _ => std::fs::read_to_string(self.data_dir.join(ADMIN_TOKEN_FILE))
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        };
        if token.is_none() {
            anyhow::bail!(
                "no token: pass --token or set GAIA_TOKEN (gaia serve printed the admin token; \
                 `gaia token create` makes others), or, on the server's machine, point \
                 --data-dir / GAIA_DATA_DIR at its data dir (looked in {})",
                self.data_dir.join(ADMIN_TOKEN_FILE).display()
            );
        }
        Client::connect(&self.server, token, self.ca_cert.as_deref())
            .context("bad --server or --ca-cert")
    }
}

/// Warns about experiment methods the shipped experiments do not know (most likely a typo:
/// `cma-es`); they are still submitted, since a worker's own experiments may know them.
pub fn warn_unknown_methods<'a>(methods: impl IntoIterator<Item = &'a str>) {
    for m in methods {
        if !gaia_core::model::SHIPPED_METHODS.contains(&m) {
            eprintln!(
                "warning: method {m:?} is not one the shipped experiments know ({}); it fails unless the workers' experiments define it",
                gaia_core::model::SHIPPED_METHODS.join(", ")
            );
        }
    }
}

/// Says on stderr when no online worker could take a job like `spec`, so a job that will wait
/// in the queue does not wait silently. Quiet when the token may not list workers.
pub fn note_if_unrunnable(client: &Client, spec: &gaia_core::model::JobSpec) {
    // A spec the server would refuse gets its refusal, not this note.
    let Ok(spec) = spec.clone().normalize() else {
        return;
    };
    if let Ok(list) = client.workers()
        && let Some(why) = gaia_core::model::unrunnable_reason(&list.workers, &spec)
    {
        eprintln!("note: it waits in the queue: {why}");
    }
}

/// A number of seconds on the command line (`30`, `0.5`), for clap's `value_parser`. Which
/// values make sense is the settings' own check (e.g. `ServerConfig::validate`).
pub fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    std::time::Duration::try_from_secs_f64(v)
        .map_err(|_| format!("{s:?}: give a finite number of seconds, 0 or more"))
}

/// Prints rows as an aligned table with a header.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.iter().map(|h| h.to_uppercase()).collect());
    for r in rows {
        line(r.clone());
    }
}

/// Prints JSON, pretty.
pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
