//! Job logs: every stdout/stderr line that is not a result row, bounded per job.

use redb::{ReadableTable, TableDefinition};

use super::{Reader, Tx, from_json, to_json};
use crate::error::StoreError;
use crate::model::{JobId, Level, LogLine, Stream};

/// (job id, line seq over all attempts) → the line, JSON.
pub(crate) const LOGS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("logs");
/// (job id, attempt) → how many lines of this attempt's output were received (dedupes retries).
pub(crate) const LOG_SEEN: TableDefinition<(u64, u32), u64> = TableDefinition::new("log_seen");

/// Lines kept per job; older lines are dropped (and counted) past this.
pub const MAX_LINES_PER_JOB: u64 = 20_000;
/// Longest kept line, in bytes; longer lines are cut with a note.
pub const MAX_LINE_BYTES: usize = 4096;

/// Cuts a line to [`MAX_LINE_BYTES`] on a character boundary.
pub fn clip_line(text: &str) -> String {
    if text.len() <= MAX_LINE_BYTES {
        return text.to_string();
    }
    let mut end = MAX_LINE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes cut]", &text[..end], text.len() - end)
}

impl Tx<'_> {
    /// How many lines of this attempt were already received.
    pub fn log_seen(&mut self, job: JobId, attempt: u32) -> Result<u64, StoreError> {
        self.log_seen.count((job, attempt))
    }

    /// Appends lines at `next_seq..`, records `seen` for the attempt, and drops the oldest lines
    /// past the bound. Returns how many old lines were dropped.
    pub fn append_logs(
        &mut self,
        job: JobId,
        attempt: u32,
        seen: u64,
        lines: &[LogLine],
    ) -> Result<u64, StoreError> {
        let mut dropped = 0;
        for line in lines {
            self.logs
                .open_mut()?
                .insert((job, line.seq), to_json(line).as_slice())?;
            if line.seq >= MAX_LINES_PER_JOB {
                let old = line.seq - MAX_LINES_PER_JOB;
                if self.logs.open_mut()?.remove((job, old))?.is_some() {
                    dropped += 1;
                }
            }
        }
        self.log_seen.open_mut()?.insert((job, attempt), seen)?;
        Ok(dropped)
    }

    /// This attempt's plain stderr lines, marked as errors (what an experiment that exited
    /// non-zero wrote to stderr is its error output, whatever words it used), for
    /// [`Tx::save_log_lines`]. Only reads, back from the newest line while they are this
    /// attempt's, so a caller reads them before its first write. A line that does not decode
    /// is left as it is (a job's end must not wait on its log).
    pub fn stderr_as_errors(
        &mut self,
        job: JobId,
        attempt: u32,
    ) -> Result<Vec<LogLine>, StoreError> {
        let mut changed = Vec::new();
        for entry in self.logs.open()?.range((job, 0)..=(job, u64::MAX))?.rev() {
            let (_, v) = entry?;
            let Ok(mut line) = from_json::<LogLine>("log line", v.value()) else {
                continue;
            };
            if line.attempt != attempt {
                break;
            }
            if line.stream == Stream::Stderr && line.level == Level::Info {
                line.level = Level::Error;
                changed.push(line);
            }
        }
        Ok(changed)
    }

    /// Stores log lines of `job` over the ones with the same numbers.
    pub fn save_log_lines(&mut self, job: JobId, lines: &[LogLine]) -> Result<(), StoreError> {
        for line in lines {
            self.logs
                .open_mut()?
                .insert((job, line.seq), to_json(line).as_slice())?;
        }
        Ok(())
    }
}

impl Reader {
    /// Up to `limit` lines of a job with seq ≥ `after`.
    pub fn logs(&self, job: JobId, after: u64, limit: usize) -> Result<Vec<LogLine>, StoreError> {
        let mut out = Vec::new();
        for entry in self.logs.open()?.range((job, after)..=(job, u64::MAX))? {
            let (_, v) = entry?;
            out.push(from_json("log line", v.value())?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The last `n` lines of a job.
    pub fn log_tail(&self, job: JobId, n: usize) -> Result<Vec<LogLine>, StoreError> {
        let mut out = Vec::new();
        for entry in self.logs.open()?.range((job, 0)..=(job, u64::MAX))?.rev() {
            let (_, v) = entry?;
            out.push(from_json("log line", v.value())?);
            if out.len() >= n {
                break;
            }
        }
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_clipped_on_a_char_boundary() {
        let s = "é".repeat(5000);
        let c = clip_line(&s);
        assert!(c.len() < MAX_LINE_BYTES + 40);
        assert!(c.contains("bytes cut"));
        assert_eq!(clip_line("short"), "short");
    }
}
