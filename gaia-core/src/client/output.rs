//! A job's output as the experiment printed it, for `gaia logs` and embedders: its log lines
//! and its generation rows, followed across attempts until the job ends.

use std::time::Duration;

use super::Client;
use crate::error::ClientError;
use crate::model::{JobId, LogLine, Row};

/// Log lines asked for per call.
const PAGE: usize = 5000;
/// How long a follower waits before asking again when nothing new came.
const POLL: Duration = Duration::from_millis(300);

/// One piece of a job's output.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// A line the experiment (or the worker, about it) printed that is not a generation.
    Log(LogLine),
    /// A generation of attempt `attempt`: print it with [`crate::grammar::format_gen_line`].
    Gen { attempt: u32, row: Row },
}

/// What [`Client::job_output`] shows.
#[derive(Clone, Debug, Default)]
pub struct OutputOptions {
    /// Keep going until the job ends.
    pub follow: bool,
    /// Generation rows as well as log lines (while following).
    pub gens: bool,
    /// Start with the last `n` log lines.
    pub tail: Option<usize>,
}

impl Client {
    /// Calls `each` with job `id`'s output in order: its log lines, and while following, each
    /// generation of the current attempt as it arrives (from the rows the job had when
    /// following began; a new attempt starts from its first row). Returns when the output so
    /// far is shown, or with `follow`, when the job has ended. An error from `each` (a closed
    /// pipe) stops it.
    pub fn job_output(
        &self,
        id: JobId,
        opts: &OutputOptions,
        each: &mut dyn FnMut(Output) -> std::io::Result<()>,
    ) -> Result<(), ClientError> {
        let mut after = match opts.tail {
            Some(n) => {
                let page = self.log_tail(id, n)?;
                for l in page.lines {
                    each(Output::Log(l))?;
                }
                if !opts.follow {
                    return Ok(());
                }
                page.next
            }
            None => 0,
        };
        // Following: generation rows of the current attempt, from where it is now.
        let mut gens = None;
        if opts.follow && opts.gens {
            let job = self.job(id)?;
            gens = Some((job.attempt, job.progress.rows));
        }
        loop {
            let page = self.logs(id, after, PAGE)?;
            let full = page.lines.len() >= PAGE;
            for l in page.lines {
                each(Output::Log(l))?;
            }
            if let Some((attempt, next)) = &mut gens {
                let job = self.job(id)?;
                if job.attempt != *attempt {
                    *attempt = job.attempt;
                    *next = 0;
                }
                if *attempt > 0 {
                    for row in self.rows_from(id, *attempt, *next)?.rows {
                        *next = row.seq + 1;
                        each(Output::Gen {
                            attempt: *attempt,
                            row,
                        })?;
                    }
                }
            }
            after = page.next;
            if full {
                continue;
            }
            if !opts.follow || page.done {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
    }
}
