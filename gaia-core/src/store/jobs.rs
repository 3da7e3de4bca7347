//! Jobs and their indexes.

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{Reader, Tx, from_json, to_json};
use crate::error::StoreError;
use crate::model::{Capabilities, Job, JobBrief, JobId, JobState};

/// job id → the job, JSON.
pub(crate) const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
/// (−priority, job id) → (): the queued jobs in claim order (highest priority, then FIFO).
pub(crate) const QUEUE: TableDefinition<(i64, u64), ()> = TableDefinition::new("queue");
/// job state name → number of jobs in that state.
pub(crate) const COUNTS: TableDefinition<&str, u64> = TableDefinition::new("job_counts");
/// (study name, job id) → (): the jobs of each study.
pub(crate) const STUDY_JOBS: TableDefinition<(&str, u64), ()> = TableDefinition::new("study_jobs");
/// study name → how many of its jobs have not ended, kept by `save_job` (a study is done when
/// it reaches 0). Counted from `study_jobs` the first time a study is touched without one.
pub(crate) const STUDY_OPEN: TableDefinition<&str, u64> = TableDefinition::new("study_open");

pub(crate) fn queue_key(job: &Job) -> (i64, u64) {
    (-(job.spec.priority as i64), job.id)
}

fn decode(bytes: &[u8]) -> Result<Job, StoreError> {
    from_json("job", bytes)
}

impl Tx<'_> {
    /// A job, inside the write transaction.
    pub fn job(&mut self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.jobs.get(id)?.map(|v| decode(v.value())).transpose()
    }

    /// Stores a job and keeps the queue index, the per-state counts and the study index in step
    /// with it. `prev` is the job as stored before (None for a new job).
    pub fn save_job(&mut self, prev: Option<&Job>, job: &Job) -> Result<(), StoreError> {
        self.jobs.insert(job.id, to_json(job).as_slice())?;
        let prev_state = prev.map(|p| p.state);
        if prev_state != Some(job.state) {
            if let Some(p) = prev {
                let key = p.state.as_str();
                let n = self.counts.get(key)?.map(|v| v.value()).unwrap_or(0);
                self.counts.insert(key, n.saturating_sub(1))?;
            }
            let key = job.state.as_str();
            let n = self.counts.get(key)?.map(|v| v.value()).unwrap_or(0);
            self.counts.insert(key, n + 1)?;
        }
        if let Some(p) = prev
            && p.state == JobState::Queued
        {
            self.queue.remove(queue_key(p))?;
        }
        if job.state == JobState::Queued {
            self.queue.insert(queue_key(job), ())?;
        }
        if prev.is_none()
            && let Some(study) = &job.spec.study
        {
            self.study_jobs.insert((study.as_str(), job.id), ())?;
        }
        if let Some(study) = &job.spec.study {
            let was_open = prev.is_some_and(|p| !p.state.is_terminal());
            let open = !job.state.is_terminal();
            if was_open != open {
                self.add_study_open(study, job, if open { 1 } else { -1 })?;
            }
        }
        Ok(())
    }

    /// How many jobs of `study` have not ended (0: every one has).
    pub fn study_open(&mut self, study: &str) -> Result<u64, StoreError> {
        let known = self.study_open.get(study)?.map(|v| v.value());
        match known {
            Some(n) => Ok(n),
            None => self.count_study_open(study, None),
        }
    }

    fn add_study_open(&mut self, study: &str, job: &Job, delta: i64) -> Result<(), StoreError> {
        let known = self.study_open.get(study)?.map(|v| v.value());
        let n = match known {
            Some(n) => n,
            // A database from before this count: count once, leaving out the job being saved
            // (its change is the delta), then keep the count up to date.
            None => self.count_study_open(study, Some(job.id))?,
        };
        let n = if delta > 0 {
            n + delta as u64
        } else {
            n.saturating_sub(delta.unsigned_abs())
        };
        self.study_open.insert(study, n)?;
        Ok(())
    }

    /// Counts the open jobs of a study from its index (all but `except`), and stores the count.
    fn count_study_open(&mut self, study: &str, except: Option<JobId>) -> Result<u64, StoreError> {
        let mut ids = Vec::new();
        for e in self.study_jobs.range((study, 0)..=(study, u64::MAX))? {
            ids.push(e?.0.value().1);
        }
        let mut n = 0;
        for id in ids {
            if Some(id) == except {
                continue;
            }
            if let Some(j) = self.job(id)?
                && !j.state.is_terminal()
            {
                n += 1;
            }
        }
        self.study_open.insert(study, n)?;
        Ok(n)
    }

    /// The first queued job (in claim order) that a slot with `caps` may run.
    pub fn first_fitting(&mut self, caps: &Capabilities) -> Result<Option<Job>, StoreError> {
        for entry in self.queue.iter()? {
            let id = entry?.0.value().1;
            if let Some(v) = self.jobs.get(id)? {
                // A job this build cannot read (written by a newer one) is left for others.
                let Ok(job) = decode(v.value()) else { continue };
                if caps.fits(&job.spec) {
                    return Ok(Some(job));
                }
            }
        }
        Ok(None)
    }

    /// The first queued job (in claim order) that a slot with `caps` may run and `keep`
    /// accepts; `keep` may read this transaction (a study's other jobs, say).
    pub fn first_fitting_where(
        &self,
        caps: &Capabilities,
        mut keep: impl FnMut(&Self, &Job) -> Result<bool, StoreError>,
    ) -> Result<Option<Job>, StoreError> {
        for entry in self.queue.iter()? {
            let id = entry?.0.value().1;
            if let Some(v) = self.jobs.get(id)? {
                let Ok(job) = decode(v.value()) else { continue };
                if caps.fits(&job.spec) && keep(self, &job)? {
                    return Ok(Some(job));
                }
            }
        }
        Ok(None)
    }

    /// Every job of a study, in id order.
    pub fn study_jobs(&self, study: &str) -> Result<Vec<Job>, StoreError> {
        let mut out = Vec::new();
        for entry in self.study_jobs.range((study, 0)..=(study, u64::MAX))? {
            let id = entry?.0.value().1;
            if let Some(v) = self.jobs.get(id)?
                && let Ok(job) = decode(v.value())
            {
                out.push(job);
            }
        }
        Ok(out)
    }

    /// Queued job ids in claim order (highest priority first, FIFO within a priority).
    pub fn queued_ids(&mut self) -> Result<Vec<JobId>, StoreError> {
        let mut out = Vec::new();
        for entry in self.queue.iter()? {
            let (k, _) = entry?;
            out.push(k.value().1);
        }
        Ok(out)
    }
}

impl Reader {
    /// One job.
    pub fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.jobs.get(id)?.map(|v| decode(v.value())).transpose()
    }

    /// Number of jobs in each state.
    pub fn job_counts(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        JobState::ALL
            .into_iter()
            .map(|s| {
                Ok((
                    s,
                    self.counts.get(s.as_str())?.map(|v| v.value()).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// Number of jobs ever submitted.
    pub fn job_total(&self) -> Result<u64, StoreError> {
        Ok(self.jobs.len()?)
    }

    /// Jobs newest first, filtered, one page. Returns the page and the id to continue before.
    pub fn list_jobs(
        &self,
        state: Option<JobState>,
        study: Option<&str>,
        before: Option<JobId>,
        limit: usize,
    ) -> Result<(Vec<Job>, Option<JobId>), StoreError> {
        let upper = before.unwrap_or(u64::MAX);
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut next = None;
        if let Some(study) = study {
            let range = self.study_jobs.range((study, 0)..(study, upper))?;
            for entry in range.rev() {
                let (k, _) = entry?;
                let id = k.value().1;
                let Some(job) = self.job(id)? else { continue };
                if state.is_some_and(|s| s != job.state) {
                    continue;
                }
                if out.len() == limit {
                    next = Some(out.last().map(|j: &Job| j.id).unwrap_or(id));
                    break;
                }
                out.push(job);
            }
            return Ok((out, next));
        }
        if state == Some(JobState::Queued) {
            // The queue index holds exactly the queued jobs: no need to scan the others.
            let mut ids: Vec<JobId> = Vec::new();
            for entry in self.queue.iter()? {
                let id = entry?.0.value().1;
                if id < upper {
                    ids.push(id);
                }
            }
            ids.sort_unstable_by(|a, b| b.cmp(a));
            for id in ids {
                if out.len() == limit {
                    next = out.last().map(|j: &Job| j.id);
                    break;
                }
                if let Some(job) = self.job(id)? {
                    out.push(job);
                }
            }
            return Ok((out, next));
        }
        for entry in self.jobs.range(..upper)?.rev() {
            let (k, v) = entry?;
            if let Some(s) = state {
                // Cheap pre-filter on the JSON before decoding the whole job.
                let needle = format!("\"state\":\"{}\"", s.as_str());
                if !contains(v.value(), needle.as_bytes()) {
                    continue;
                }
            }
            let job = decode(v.value())?;
            if state.is_some_and(|s| s != job.state) {
                continue;
            }
            if out.len() == limit {
                next = out.last().map(|j: &Job| j.id).or(Some(k.value()));
                break;
            }
            out.push(job);
        }
        Ok((out, next))
    }

    /// Number of jobs in a study.
    pub fn study_len(&self, study: &str) -> Result<u64, StoreError> {
        let mut n = 0;
        for entry in self.study_jobs.range((study, 0)..=(study, u64::MAX))? {
            entry?;
            n += 1;
        }
        Ok(n)
    }

    /// All running jobs (to rebuild leases when the server starts).
    pub fn running_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let needle = b"\"state\":\"running\"";
        let mut out = Vec::new();
        for entry in self.jobs.iter()? {
            let (_, v) = entry?;
            if contains(v.value(), needle) {
                let job = decode(v.value())?;
                if job.state == JobState::Running {
                    out.push(job);
                }
            }
        }
        Ok(out)
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

impl Reader {
    /// (queued jobs, those of them a slot with `caps` may run): the demand a scheduler's
    /// autoscaler starts workers for. One pass over the queue index.
    pub fn queued_fitting(&self, caps: &Capabilities) -> Result<(u64, u64), StoreError> {
        let (mut queued, mut fitting) = (0, 0);
        for entry in self.queue.iter()? {
            let id = entry?.0.value().1;
            queued += 1;
            if let Some(v) = self.jobs.get(id)?
                && let Ok(job) = decode(v.value())
                && caps.fits(&job.spec)
            {
                fitting += 1;
            }
        }
        Ok((queued, fitting))
    }

    /// Calls `f` with a brief view of every job (of `study`, if given), ascending id, decoding
    /// only the fields a [`JobBrief`] holds (borrowed, no allocation per job): one pass over the
    /// jobs table. A job whose bytes do not decode as a brief is skipped.
    pub fn for_each_job_brief(
        &self,
        study: Option<&str>,
        mut f: impl FnMut(JobBrief<'_>),
    ) -> Result<(), StoreError> {
        for entry in self.jobs.iter()? {
            let (_, v) = entry?;
            let Ok(job) = serde_json::from_slice::<JobBrief<'_>>(v.value()) else {
                continue;
            };
            if study.is_some() && job.spec.study.as_deref() != study {
                continue;
            }
            f(job);
        }
        Ok(())
    }

    /// Every job, ascending id, one at a time (stops at the first error `f` returns).
    pub fn for_each_job<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(Job) -> Result<(), E>,
    ) -> Result<(), E> {
        for entry in self.jobs.iter().map_err(StoreError::from)? {
            let (_, v) = entry.map_err(StoreError::from)?;
            f(decode(v.value())?)?;
        }
        Ok(())
    }
}
