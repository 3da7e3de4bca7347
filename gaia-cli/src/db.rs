//! `gaia db check` and `gaia db repair`: the server's database file, offline.

use std::path::PathBuf;

use gaia_core::store::repair::{self, TableReport};

use crate::common::{print_json, print_table};
use crate::exit;

#[derive(clap::Args)]
pub struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(clap::Subcommand)]
enum DbCommand {
    /// Check <data-dir>/gaia.redb: redb's page checksums (on a temporary copy: the file itself
    /// is never changed) and every entry of every table read and decoded, with a report per
    /// table. Exits 4 when anything is damaged. Stop `gaia serve` first.
    Check(PlaceArgs),
    /// Rebuild <data-dir>/gaia.redb from everything readable in it. The damaged file is moved
    /// aside as gaia.redb.damaged-<time> (never deleted); the new one holds every job, row,
    /// log line, study, worker, event, token and release that could be read, with its indexes
    /// rebuilt, and every lost range is reported. Stop `gaia serve` first.
    Repair(PlaceArgs),
}

#[derive(clap::Args)]
struct PlaceArgs {
    /// The server's data directory (holds gaia.redb).
    #[arg(long, env = "GAIA_DATA_DIR", default_value = "./gaia-data")]
    data_dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: DbArgs) -> anyhow::Result<i32> {
    match a.command {
        DbCommand::Check(p) => check(p),
        DbCommand::Repair(p) => repair(p),
    }
}

fn table_rows(tables: &[TableReport]) -> Vec<Vec<String>> {
    tables
        .iter()
        .map(|t| {
            let state = if let Some(e) = &t.unopenable {
                format!("cannot open: {e}")
            } else if t.is_clean() {
                "ok".to_string()
            } else {
                let mut parts = Vec::new();
                if !t.lost.is_empty() {
                    parts.push(format!("{} damaged range(s)", t.lost.len()));
                }
                if t.undecodable_count > 0 {
                    parts.push(format!("{} undecodable", t.undecodable_count));
                }
                parts.join(", ")
            };
            vec![
                t.name.to_string(),
                if t.derived { "derived" } else { "primary" }.to_string(),
                t.entries.to_string(),
                state,
            ]
        })
        .collect()
}

fn print_losses(tables: &[TableReport]) {
    for t in tables {
        for l in &t.lost {
            println!(
                "  {}: unreadable after {} up to {}: {}",
                t.name,
                l.after.as_deref().unwrap_or("the first key"),
                l.resumes_at.as_deref().unwrap_or("the end of the table"),
                l.error
            );
        }
        for (k, why) in &t.undecodable {
            println!("  {}: entry {k} does not decode: {why}", t.name);
        }
        if t.undecodable_count > t.undecodable.len() as u64 {
            println!(
                "  {}: … and {} more that do not decode",
                t.name,
                t.undecodable_count - t.undecodable.len() as u64
            );
        }
    }
}

fn check(p: PlaceArgs) -> anyhow::Result<i32> {
    let report = repair::check(&p.data_dir)?;
    let code = if report.is_clean() {
        exit::OK
    } else {
        exit::DB_DAMAGED
    };
    if p.json {
        print_json(&report)?;
        return Ok(code);
    }
    println!(
        "{} ({} bytes){}",
        report.path.display(),
        report.bytes,
        if report.unclean {
            ", not closed cleanly (redb recovered it in memory to read it)"
        } else {
            ""
        }
    );
    match &report.integrity {
        None => println!("page checksums: ok"),
        Some(e) => println!("page checksums: {e}"),
    }
    print_table(
        &["TABLE", "KIND", "ENTRIES READ", "STATE"],
        &table_rows(&report.tables),
    );
    print_losses(&report.tables);
    if report.is_clean() {
        println!("the database is whole");
    } else {
        println!(
            "the database is damaged: `gaia db repair --data-dir {}` moves it aside and rebuilds \
             it from everything readable (derived tables marked above are rebuilt, not lost)",
            p.data_dir.display()
        );
    }
    Ok(code)
}

fn repair(p: PlaceArgs) -> anyhow::Result<i32> {
    let report = repair::repair(&p.data_dir)?;
    if p.json {
        print_json(&report)?;
        return Ok(exit::OK);
    }
    println!("the damaged file is kept as {}", report.moved_to.display());
    print_table(
        &["TABLE", "KIND", "ENTRIES READ", "STATE"],
        &table_rows(&report.read),
    );
    print_losses(&report.read);
    let lost: usize = report
        .read
        .iter()
        .filter(|t| !t.derived)
        .map(|t| t.lost.len())
        .sum();
    let bad: u64 = report
        .read
        .iter()
        .filter(|t| !t.derived)
        .map(|t| t.undecodable_count)
        .sum();
    let written: Vec<String> = report
        .written
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    println!("wrote {}: {}", report.path.display(), written.join(", "));
    if lost == 0 && bad == 0 {
        println!("nothing was lost");
    } else {
        println!(
            "lost: {lost} unreadable range(s) and {bad} undecodable entr{} of primary data (listed above)",
            if bad == 1 { "y" } else { "ies" }
        );
    }
    Ok(exit::OK)
}
