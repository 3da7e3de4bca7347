//! `gaia`: one binary for the whole farm. Each subcommand parses its flags and calls gaia-core;
//! what it prints is here, what it does is in the library.

mod admin;
mod common;
mod compare;
mod db;
mod demo;
mod export;
mod jobs;
mod ops;
mod release;
mod serve;
mod slurm;
mod study;
mod top;
mod users;
mod work;

use clap::{Parser, Subcommand};

/// Exit codes, in one place.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Any error (the message says which).
    pub const ERROR: i32 = 1;
    /// Bad command line (clap's own code).
    pub const USAGE: i32 = 2;
    /// `--wait`ed job ended in a state other than succeeded.
    pub const JOB_FAILED: i32 = 3;
    /// `gaia db check` found damage.
    pub const DB_DAMAGED: i32 = 4;
}

#[derive(Parser)]
#[command(
    name = "gaia",
    version = gaia_core::VERSION,
    about = "GAIA: a lab's experiment farm — job queue, workers, live results",
    long_about = "GAIA runs experiments across many machines. `gaia serve` keeps the queue and every result; \
`gaia work` runs jobs on any machine that can reach the server; `gaia submit` queues experiments; \
`gaia export` turns results into CSV, JSON and PNG.",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Each subcommand's arguments are built only when that subcommand runs (`defer`): building
/// all forty at every start ran half a MiB of code that then stayed resident in every long-lived
/// `gaia work` and `gaia serve`.
#[derive(Subcommand)]
#[command(defer = true)]
enum Command {
    /// Run everything on this machine: server, a local worker and a small demo study.
    Demo(demo::DemoArgs),
    /// Run the server: queue, registry, result store and dashboard.
    Serve(serve::ServeArgs),
    /// Run a worker: take jobs that fit this machine and run them.
    Work(work::WorkArgs),
    /// Submit a job (an experiment by default).
    Submit(jobs::SubmitArgs),
    /// List jobs, newest first.
    Jobs(jobs::JobsArgs),
    /// Show one job: spec, state, attempts, timings, worker, result, files.
    Show(jobs::ShowArgs),
    /// Cancel a job (queued: at once; running: its worker stops it within seconds).
    Cancel(jobs::CancelArgs),
    /// Print a job's output as the experiment printed it (log and generation lines); -f
    /// follows it while it runs.
    Logs(jobs::LogsArgs),
    /// Download a job's result files.
    Files(jobs::FilesArgs),
    /// One study: per-job state, progress, ETA, best per method × env over seeds (create one
    /// with `gaia submit --study NAME --method a,b --seeds 1..5`); `extend` adds seeds, `retry`
    /// runs failed runs again.
    Study(study::StudyArgs),
    /// All studies with their progress (create one with `gaia submit --study NAME ...`).
    Studies(study::StudiesArgs),
    /// Compare the methods of studies: IQM, median, mean and optimality gap with 95 %
    /// bootstrap intervals, probability of improvement, evaluations to a target, seeds needed.
    Compare(compare::CompareArgs),
    /// Export CSV, JSON or PNG of jobs, a study or everything; a study's files as ZIP.
    Export(export::ExportArgs),
    /// List registered workers (--watch keeps the list up to date).
    Workers(admin::WorkersArgs),
    /// Pause, resume, drain or forget one worker; show it (admin).
    Worker(ops::WorkerArgs),
    /// A terminal dashboard: workers, running jobs, queue, events; keys to steer.
    Top(top::TopArgs),
    /// The activity log, or with --audit the admin actions and who did them.
    Events(ops::EventsArgs),
    /// Save a consistent copy of the server's database while it runs (admin).
    Backup(ops::BackupArgs),
    /// Delete the rows and log lines of jobs that ended long ago (admin).
    Gc(ops::GcArgs),
    /// Job counts per state, workers online, server version.
    Status(admin::StatusArgs),
    /// Publish releases that workers update themselves from.
    Release(release::ReleaseArgs),
    /// Manage API tokens (an admin token manages all; a submit token its own user's).
    Token(admin::TokenArgs),
    /// Workers on a Slurm cluster: an sbatch array script, and autoscaling from the queue.
    Slurm(slurm::SlurmArgs),
    /// Manage users: who shares the farm, with what share and limits (admin only).
    User(users::UserArgs),
    /// Per user: running, queued, worker and GPU hours used, share, effective priority.
    Usage(users::UsageArgs),
    /// Check or repair the server's database file (offline, with the server stopped).
    Db(db::DbArgs),
}

fn main() {
    // A worker starts this binary again as its reaper (which never returns from here).
    gaia_core::worker::reaper::run_if_asked();
    let cli = Cli::parse();
    // A closed pipe (`gaia jobs | head`) is not an error: a client command just ends. Never for
    // the long-running ones: with SIGPIPE at its default, writing to a connection a client has
    // left (an event stream's keep-alive ping, say) killed `gaia serve` without a word; there
    // the write fails with EPIPE and only that connection ends.
    #[cfg(unix)]
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::Work(_) | Command::Demo(_)
    ) {
        // SAFETY: setting a signal's disposition before any thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Work(a) => work::run(a),
        Command::Submit(a) => jobs::submit(a),
        Command::Jobs(a) => jobs::list(a),
        Command::Show(a) => jobs::show(a),
        Command::Cancel(a) => jobs::cancel(a),
        Command::Logs(a) => jobs::logs(a),
        Command::Files(a) => jobs::files(a),
        Command::Study(a) => study::show(a),
        Command::Studies(a) => study::list(a),
        Command::Compare(a) => compare::run(a),
        Command::Export(a) => export::run(a),
        Command::Workers(a) => admin::workers(a),
        Command::Worker(a) => ops::worker(a),
        Command::Top(a) => top::run(a),
        Command::Events(a) => ops::events(a),
        Command::Backup(a) => ops::backup(a),
        Command::Gc(a) => ops::gc(a),
        Command::Status(a) => admin::status(a),
        Command::Token(a) => admin::token(a),
        Command::Release(a) => release::run(a),
        Command::Slurm(a) => slurm::run(a),
        Command::User(a) => users::user(a),
        Command::Usage(a) => users::usage(a),
        Command::Db(a) => db::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("gaia: error: {e:#}");
            std::process::exit(exit::ERROR);
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Issue 12: `gaia study --help` did not say how to create a study.
    #[test]
    fn study_help_says_how_to_create_a_study() {
        let mut cli = super::Cli::command();
        for name in ["study", "studies"] {
            let help = cli
                .find_subcommand_mut(name)
                .unwrap()
                .render_long_help()
                .to_string();
            assert!(
                help.contains("gaia submit --study NAME --method cma_es,openai_es --seeds 1..5"),
                "{name}: {help}"
            );
        }
        let top = cli.render_help().to_string();
        assert!(top.contains("gaia submit --study"), "{top}");
    }

    /// clap checks a command's definition only when it is parsed (an argument group named like
    /// an argument made `gaia export` panic): check every subcommand's here.
    #[test]
    fn every_command_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    /// Subcommands' arguments are built deferred, after the subcommand's own about is set: a
    /// doc comment on a struct they flatten (`Conn`, the sweep or comparison flags) would then
    /// replace it ("Where the server is and how to authenticate" atop `gaia jobs --help`).
    #[test]
    fn every_subcommand_keeps_its_own_about() {
        let about = |c: &clap::Command| c.get_about().map(|a| a.to_string());
        let listed: Vec<_> = super::Cli::command()
            .get_subcommands()
            .map(|s| (s.get_name().to_string(), about(s)))
            .collect();
        let mut built = super::Cli::command();
        built.build();
        for (name, listed) in listed {
            let sub = built.find_subcommand(&name).unwrap();
            assert!(listed.is_some(), "gaia {name} has no about");
            assert_eq!(about(sub), listed, "gaia {name} --help");
        }
    }
}
