//! `gaia user` and `gaia usage`.

use gaia_core::human;
use gaia_core::model::now_ms;
use gaia_core::protocol::{UserAdd, UserUpdate};

use crate::common::{Conn, print_json, print_table};
use crate::exit;

#[derive(clap::Args)]
#[command(long_about = "Manage users (admin only).\n\n\
Each researcher gets a user and a token of scope submit: they submit, watch, and cancel or \
extend their own jobs and studies, and make more tokens for themselves; the admin token \
keeps users, releases and other people's tokens. Free workers take the next job of the user \
furthest below their share of recent usage (fair share; see gaia usage).\n\n\
  gaia user add alice --share 2 --max-running 40 --max-queued 20000\n\
  gaia user set alice --max-running 0        (0 removes a limit)\n\
  gaia user list")]
pub struct UserArgs {
    #[command(subcommand)]
    cmd: UserCmd,
}

#[derive(clap::Subcommand)]
enum UserCmd {
    /// Add a user and print their first token (scope submit); it is shown only now.
    Add {
        #[command(flatten)]
        conn: Conn,
        /// The user's name (what `gaia jobs --user` and the dashboard show).
        name: String,
        /// Relative weight in fair share: a user with share 2 gets twice the worker time of
        /// one with share 1 while both have work queued.
        #[arg(long, default_value_t = 1.0)]
        share: f64,
        /// Most jobs of this user running at once; more wait queued.
        #[arg(long, value_name = "N")]
        max_running: Option<u64>,
        /// Most jobs of this user queued at once; a submission past it is refused whole.
        #[arg(long, value_name = "N")]
        max_queued: Option<u64>,
        /// Name of the user's first token (default: the user's name).
        #[arg(long, value_name = "NAME")]
        token_name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a user's share or limits (`--max-running 0` removes that limit).
    Set {
        #[command(flatten)]
        conn: Conn,
        name: String,
        #[arg(long)]
        share: Option<f64>,
        #[arg(long, value_name = "N")]
        max_running: Option<u64>,
        #[arg(long, value_name = "N")]
        max_queued: Option<u64>,
    },
    /// List users with their shares and limits.
    List {
        #[command(flatten)]
        conn: Conn,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user and revoke their tokens (their finished jobs keep their name).
    Remove {
        #[command(flatten)]
        conn: Conn,
        name: String,
    },
}

fn limit(v: Option<u64>) -> String {
    v.map(human::count).unwrap_or_else(|| "-".into())
}

/// A user's limits in words: "at most 4 running, queued unlimited".
fn limits(max_running: Option<u64>, max_queued: Option<u64>) -> String {
    let one = |v: Option<u64>, what: &str| match v {
        Some(n) => format!("at most {} {what}", human::count(n)),
        None => format!("{what} unlimited"),
    };
    format!(
        "{}, {}",
        one(max_running, "running"),
        one(max_queued, "queued")
    )
}

pub fn user(a: UserArgs) -> anyhow::Result<i32> {
    match a.cmd {
        UserCmd::Add {
            conn,
            name,
            share,
            max_running,
            max_queued,
            token_name,
            json,
        } => {
            let added = conn.client()?.add_user(&UserAdd {
                name,
                share: Some(share),
                max_running,
                max_queued,
                token_name,
            })?;
            if json {
                print_json(&added)?;
            } else {
                let u = &added.user;
                eprintln!(
                    "added user {} (share {}, {}); their submit token {:?}, shown only now:",
                    u.name,
                    human::shortest(u.share),
                    limits(u.max_running, u.max_queued),
                    added.token.name
                );
                println!("{}", added.token.token);
            }
        }
        UserCmd::Set {
            conn,
            name,
            share,
            max_running,
            max_queued,
        } => {
            if share.is_none() && max_running.is_none() && max_queued.is_none() {
                anyhow::bail!("nothing to change: give --share, --max-running or --max-queued");
            }
            let u = conn.client()?.update_user(
                &name,
                &UserUpdate {
                    share,
                    max_running,
                    max_queued,
                },
            )?;
            println!(
                "user {}: share {}, {}",
                u.name,
                human::shortest(u.share),
                limits(u.max_running, u.max_queued)
            );
        }
        UserCmd::List { conn, json } => {
            let list = conn.client()?.users()?;
            if json {
                print_json(&list)?;
                return Ok(exit::OK);
            }
            let rows: Vec<Vec<String>> = list
                .users
                .iter()
                .map(|u| {
                    vec![
                        u.name.clone(),
                        human::shortest(u.share),
                        limit(u.max_running),
                        limit(u.max_queued),
                    ]
                })
                .collect();
            print_table(&["user", "share", "max running", "max queued"], &rows);
        }
        UserCmd::Remove { conn, name } => {
            let r = conn.client()?.remove_user(&name)?;
            let revoked = r["revoked_tokens"].as_array().map_or(0, |a| a.len());
            println!(
                "removed user {name}; revoked {}",
                human::plural(revoked as u64, "token")
            );
        }
    }
    Ok(exit::OK)
}

#[derive(clap::Args)]
#[command(
    long_about = "Per user: jobs running and queued, worker and GPU hours used, share, \
and effective priority.\n\n\
Worker hours count the time jobs held a worker slot; GPU hours that time the GPUs they asked \
for. Recent usage decays with the server's half-life (gaia serve --fair-share-half-life, one \
day by default); effective priority is a user's fraction of recent usage over their fraction \
of the shares: 1 is exactly their share, below 1 below it. Free workers take the next job of \
the lowest first (listed first).\n\n\
  gaia usage              all time\n\
  gaia usage --since 7d   the last seven days (hourly resolution)"
)]
pub struct UsageArgs {
    #[command(flatten)]
    conn: Conn,
    /// Only usage in this last span of time: 90m, 12h, 7d, 2w (default: all time).
    #[arg(long, value_name = "SPAN", value_parser = human::parse_span)]
    since: Option<std::time::Duration>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn usage(a: UsageArgs) -> anyhow::Result<i32> {
    let since = a
        .since
        .map(|d| now_ms().saturating_sub(d.as_millis() as u64));
    let r = a.conn.client()?.usage(since)?;
    if a.json {
        print_json(&r)?;
        return Ok(exit::OK);
    }
    let rows: Vec<Vec<String>> = r
        .users
        .iter()
        .map(|u| {
            vec![
                u.user.clone(),
                human::count(u.running),
                human::count(u.queued),
                human::hours(u.worker_secs),
                human::hours(u.gpu_secs),
                human::hours(u.recent_worker_secs),
                format!(
                    "{} ({})",
                    human::shortest(u.share),
                    human::percent(u.share_fraction)
                ),
                format!("{:.2}", u.effective_priority),
            ]
        })
        .collect();
    let window = match r.since {
        Some(s) => format!("since {}", human::time(s)),
        None => "all time".into(),
    };
    print_table(
        &[
            "user",
            "running",
            "queued",
            &format!("worker h ({window})"),
            "GPU h",
            "recent",
            "share",
            "priority",
        ],
        &rows,
    );
    eprintln!(
        "fair share {}; recent usage halves every {}; the lowest priority runs next",
        if r.fair_share { "on" } else { "off" },
        human::seconds(r.half_life_secs)
    );
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_words() {
        assert_eq!(limits(None, None), "running unlimited, queued unlimited");
        assert_eq!(limits(Some(4), None), "at most 4 running, queued unlimited");
        assert_eq!(
            limits(Some(1), Some(1000)),
            "at most 1 running, at most 1,000 queued"
        );
    }
}
