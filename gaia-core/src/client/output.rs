//! A job's whole output as the experiment printed it, for `gaia logs` and embedders: its log
//! lines and its generation rows, merged in the order they were printed, attempt after attempt,
//! and followed until the job ends.
//!
//! Rows carry no time; each log line carries `rows_before`, the number of rows of its attempt
//! the worker had read when it read the line. A row goes before a line iff its `seq` is below
//! the line's `rows_before`, which is exactly the order of the experiment's stdout (stderr lines
//! sit where the worker received them). Lines stored before workers sent `rows_before` take the
//! position of the line before them. While following a running job, rows that reach the server
//! before a line printed ahead of them are shown when they arrive.

use std::time::Duration;

use super::Client;
use crate::error::ClientError;
use crate::model::{JobId, LogLine, Row};
use crate::protocol::LogsResponse;

/// Log lines asked for per call.
const LOG_PAGE: usize = 5000;
/// Rows asked for per call.
const ROW_PAGE: u64 = 10_000;
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
#[derive(Clone, Debug)]
pub struct OutputOptions {
    /// Keep going until the job ends.
    pub follow: bool,
    /// Generation rows as well as log lines.
    pub gens: bool,
    /// Only the last `n` pieces of the output so far (log lines, and the current attempt's
    /// generations among them), then what comes next.
    pub tail: Option<usize>,
}

impl Default for OutputOptions {
    fn default() -> Self {
        OutputOptions {
            follow: false,
            gens: true,
            tail: None,
        }
    }
}

impl Client {
    /// Calls `each` with job `id`'s output in the order it was printed: log lines and (with
    /// `gens`) generation rows, from the first attempt to the current one. Returns once the
    /// output so far is shown, or with `follow`, once the job has ended and all of it is. An
    /// error from `each` (a closed pipe) stops it.
    pub fn job_output(
        &self,
        id: JobId,
        opts: &OutputOptions,
        each: &mut dyn FnMut(Output) -> std::io::Result<()>,
    ) -> Result<(), ClientError> {
        run(self, id, opts, each)
    }

    /// Rows of one attempt with `from ≤ seq ≤ to`, whole.
    pub fn rows_between(
        &self,
        id: JobId,
        attempt: u32,
        from: u64,
        to: u64,
    ) -> Result<Vec<Row>, ClientError> {
        let r: crate::protocol::RowsResponse = self.get(&format!(
            "/api/v1/jobs/{id}/rows?attempt={attempt}&x=seq&from={from}&to={to}"
        ))?;
        Ok(r.rows)
    }
}

/// Where the output is read from: the server, or a stand-in in tests.
trait Source {
    /// The job's current attempt and how many rows it has.
    fn attempt(&self, id: JobId) -> Result<(u32, u64), ClientError>;
    fn logs(&self, id: JobId, after: u64, limit: usize) -> Result<LogsResponse, ClientError>;
    fn log_tail(&self, id: JobId, n: usize) -> Result<LogsResponse, ClientError>;
    fn rows(&self, id: JobId, attempt: u32, from: u64, to: u64) -> Result<Vec<Row>, ClientError>;
}

impl Source for Client {
    fn attempt(&self, id: JobId) -> Result<(u32, u64), ClientError> {
        let job = self.job(id)?;
        Ok((job.attempt, job.progress.rows))
    }
    fn logs(&self, id: JobId, after: u64, limit: usize) -> Result<LogsResponse, ClientError> {
        Client::logs(self, id, after, limit)
    }
    fn log_tail(&self, id: JobId, n: usize) -> Result<LogsResponse, ClientError> {
        Client::log_tail(self, id, n)
    }
    fn rows(&self, id: JobId, attempt: u32, from: u64, to: u64) -> Result<Vec<Row>, ClientError> {
        self.rows_between(id, attempt, from, to)
    }
}

type Each<'a> = &'a mut dyn FnMut(Output) -> std::io::Result<()>;

fn run(src: &dyn Source, id: JobId, opts: &OutputOptions, each: Each) -> Result<(), ClientError> {
    let mut m = Merge {
        src,
        id,
        gens: opts.gens,
        attempt: 0,
        next_seq: 0,
        last_pos: 0,
    };
    let mut after = 0;
    if let Some(n) = opts.tail {
        after = m.tail(n, each)?;
        if !opts.follow {
            return Ok(());
        }
    }
    loop {
        let page = src.logs(id, after, LOG_PAGE)?;
        let full = page.lines.len() >= LOG_PAGE;
        after = page.next;
        for line in page.lines {
            m.line(line, each)?;
        }
        if full {
            continue;
        }
        // Every line logged so far is shown: now the rows that came after the last of them.
        let (attempt, _) = src.attempt(id)?;
        m.enter_attempt(attempt, each)?;
        m.rows_until(None, each)?;
        if !opts.follow || page.done {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
}

/// Where the merge stands: the attempt whose rows are being shown and its next row.
struct Merge<'a> {
    src: &'a dyn Source,
    id: JobId,
    gens: bool,
    attempt: u32,
    next_seq: u64,
    /// `rows_before` of this attempt's last line (for a line stored without one).
    last_pos: u64,
}

impl Merge<'_> {
    /// Shows a log line, after the rows of its attempt printed before it.
    fn line(&mut self, line: LogLine, each: Each) -> Result<(), ClientError> {
        self.enter_attempt(line.attempt, each)?;
        let pos = line.rows_before.unwrap_or(self.last_pos).max(self.last_pos);
        self.last_pos = pos;
        self.rows_until(Some(pos), each)?;
        each(Output::Log(line))?;
        Ok(())
    }

    /// Moves on to attempt `to`, first showing the rest of every attempt before it.
    fn enter_attempt(&mut self, to: u32, each: Each) -> Result<(), ClientError> {
        while self.attempt < to {
            self.rows_until(None, each)?;
            self.attempt += 1;
            self.next_seq = 0;
            self.last_pos = 0;
        }
        Ok(())
    }

    /// Shows the current attempt's rows below `until` (all there are now, for None).
    fn rows_until(&mut self, until: Option<u64>, each: Each) -> Result<(), ClientError> {
        if !self.gens || self.attempt == 0 {
            return Ok(());
        }
        loop {
            let from = self.next_seq;
            let end = match until {
                Some(u) if u <= from => return Ok(()),
                Some(u) => u.min(from + ROW_PAGE),
                None => from + ROW_PAGE,
            };
            let rows = self.src.rows(self.id, self.attempt, from, end - 1)?;
            let n = rows.len() as u64;
            for row in rows {
                self.next_seq = self.next_seq.max(row.seq + 1);
                each(Output::Gen {
                    attempt: self.attempt,
                    row,
                })?;
            }
            // A short page: the rest has not arrived (yet).
            if n < end - from {
                return Ok(());
            }
        }
    }

    /// Shows the last `n` pieces of the output so far — log lines and the current attempt's
    /// rows, merged — and leaves the merge after them. Returns the log position to go on from.
    fn tail(&mut self, n: usize, each: Each) -> Result<u64, ClientError> {
        let (attempt, rows) = self.src.attempt(self.id)?;
        let page = self.src.log_tail(self.id, n)?;
        let mut pieces = Vec::new();
        let mut collect = |o: Output| {
            pieces.push(o);
            Ok(())
        };
        self.attempt = attempt;
        self.next_seq = rows.saturating_sub(n as u64);
        for line in page.lines {
            if line.attempt < attempt {
                // Earlier attempts' lines come first; their rows are not part of a tail.
                collect(Output::Log(line))?;
            } else {
                self.line(line, &mut collect)?;
            }
        }
        self.rows_until(None, &mut collect)?;
        let skip = pieces.len().saturating_sub(n);
        for piece in pieces.into_iter().skip(skip) {
            each(piece)?;
        }
        Ok(page.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Level, Stream};

    /// A job's stored output: log lines and rows per attempt.
    struct Stored {
        lines: Vec<LogLine>,
        rows: Vec<Vec<Row>>,
        done: bool,
    }

    impl Source for Stored {
        fn attempt(&self, _: JobId) -> Result<(u32, u64), ClientError> {
            let a = self.rows.len() as u32;
            Ok((a, self.rows.last().map_or(0, |r| r.len() as u64)))
        }
        fn logs(&self, _: JobId, after: u64, limit: usize) -> Result<LogsResponse, ClientError> {
            let lines: Vec<LogLine> = self
                .lines
                .iter()
                .filter(|l| l.seq >= after)
                .take(limit)
                .cloned()
                .collect();
            let next = lines.last().map_or(after, |l| l.seq + 1);
            Ok(LogsResponse {
                lines,
                next,
                done: self.done,
            })
        }
        fn log_tail(&self, _: JobId, n: usize) -> Result<LogsResponse, ClientError> {
            let skip = self.lines.len().saturating_sub(n);
            Ok(LogsResponse {
                lines: self.lines[skip..].to_vec(),
                next: self.lines.len() as u64,
                done: self.done,
            })
        }
        fn rows(
            &self,
            _: JobId,
            attempt: u32,
            from: u64,
            to: u64,
        ) -> Result<Vec<Row>, ClientError> {
            Ok(self.rows[attempt as usize - 1]
                .iter()
                .filter(|r| (from..=to).contains(&r.seq))
                .cloned()
                .collect())
        }
    }

    /// `"a1:text@3"`: a line of attempt 1 printed after 3 rows (`@-` for none).
    fn stored(lines: &[&str], rows_per_attempt: &[u64]) -> Stored {
        Stored {
            lines: lines
                .iter()
                .enumerate()
                .map(|(i, spec)| {
                    let (head, pos) = spec.rsplit_once('@').unwrap();
                    let (a, text) = head.split_once(':').unwrap();
                    LogLine {
                        seq: i as u64,
                        attempt: a[1..].parse().unwrap(),
                        at: 0,
                        stream: Stream::Stdout,
                        level: Level::Info,
                        text: text.into(),
                        rows_before: pos.parse().ok(),
                    }
                })
                .collect(),
            rows: rows_per_attempt
                .iter()
                .map(|&n| {
                    (0..n)
                        .map(|seq| Row {
                            seq,
                            generation: Some(seq + 1),
                            ..Row::default()
                        })
                        .collect()
                })
                .collect(),
            done: true,
        }
    }

    /// The output as `text` for lines and `a<attempt>g<generation>` for rows.
    fn shown(src: &Stored, opts: OutputOptions) -> Vec<String> {
        let mut out = Vec::new();
        run(src, 1, &opts, &mut |o| {
            out.push(match o {
                Output::Log(l) => l.text,
                Output::Gen { attempt, row } => format!("a{attempt}g{}", row.generation.unwrap()),
            });
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn lines_and_generations_come_in_the_order_they_were_printed() {
        let src = stored(
            &[
                "a1:start@0",
                "a1:mid@2",
                "a1:warn@2",
                "a1:end@3",
                "a2:again@0",
                "a2:bye@1",
            ],
            &[4, 2],
        );
        assert_eq!(
            shown(&src, OutputOptions::default()),
            [
                "start", "a1g1", "a1g2", "mid", "warn", "a1g3", "end", "a1g4", "again", "a2g1",
                "bye", "a2g2"
            ]
        );
        let no_gens = OutputOptions {
            gens: false,
            ..OutputOptions::default()
        };
        assert_eq!(
            shown(&src, no_gens),
            ["start", "mid", "warn", "end", "again", "bye"]
        );
    }

    #[test]
    fn lines_stored_without_a_position_keep_the_one_before() {
        let src = stored(&["a1:start@-", "a1:mid@2", "a1:old@-", "a1:end@3"], &[3]);
        assert_eq!(
            shown(&src, OutputOptions::default()),
            ["start", "a1g1", "a1g2", "mid", "old", "a1g3", "end"]
        );
        // No positions at all: the lines, then the rows.
        let src = stored(&["a1:x@-", "a1:y@-"], &[2]);
        assert_eq!(
            shown(&src, OutputOptions::default()),
            ["x", "y", "a1g1", "a1g2"]
        );
    }

    #[test]
    fn an_attempt_with_no_lines_still_shows_its_rows() {
        let src = stored(&["a1:one@1", "a3:three@0"], &[2, 2, 1]);
        assert_eq!(
            shown(&src, OutputOptions::default()),
            ["a1g1", "one", "a1g2", "a2g1", "a2g2", "three", "a3g1"]
        );
    }

    #[test]
    fn a_tail_is_the_last_pieces_of_the_merged_output() {
        let src = stored(&["a1:old@1", "a2:start@0", "a2:mid@3", "a2:end@5"], &[1, 6]);
        let tail = |n| OutputOptions {
            tail: Some(n),
            ..OutputOptions::default()
        };
        assert_eq!(shown(&src, tail(3)), ["a2g5", "end", "a2g6"]);
        assert_eq!(
            shown(&src, tail(6)),
            ["a2g3", "mid", "a2g4", "a2g5", "end", "a2g6"]
        );
        assert_eq!(shown(&src, tail(100)).first().unwrap(), "old");
    }

    #[test]
    fn long_outputs_are_read_in_pages() {
        let n = ROW_PAGE * 2 + 5;
        let src = stored(&["a1:start@0", &format!("a1:end@{n}")], &[n]);
        let out = shown(&src, OutputOptions::default());
        assert_eq!(out.len() as u64, n + 2);
        assert_eq!(out[0], "start");
        assert_eq!(out[n as usize], format!("a1g{n}"));
        assert_eq!(out.last().unwrap(), "end");
    }
}
