//! Jobs and their indexes: the global queue (claim order with fair share off), the per-user
//! queue that fair share picks from, per-state counts, and the jobs of each study and owner.

use std::collections::HashMap;
use std::time::Duration;

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{Reader, Tx, from_json, to_json};
use crate::error::StoreError;
use crate::fairshare;
use crate::model::{Capabilities, Job, JobBrief, JobId, JobKind, JobState, Millis, Requirements};

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
/// (owner, fit class, −priority, job id) → (): the queued jobs of each user, per fit class, in
/// claim order. Fair share peeks at the head of a user's fitting classes instead of walking
/// the queue.
pub(crate) const FAIR_QUEUE: TableDefinition<(&str, &str, i64, u64), ()> =
    TableDefinition::new("fair_queue");
/// (owner, fit class) → queued jobs in it: which users have work queued, and of what kind.
pub(crate) const PENDING: TableDefinition<(&str, &str), u64> = TableDefinition::new("pending");
/// (owner, job id) → (): every job of each user (`gaia jobs --user`).
pub(crate) const OWNER_JOBS: TableDefinition<(&str, u64), ()> = TableDefinition::new("owner_jobs");

pub(crate) fn queue_key(job: &Job) -> (i64, u64) {
    (-(job.spec.priority as i64), job.id)
}

/// A job's fit class: what a slot must offer to run it (kind, GPUs, memory, tags), as JSON.
/// Jobs of one class fit exactly the same slots, so a claim checks a class once, not each job.
pub(crate) fn fit_class(job: &Job) -> String {
    let mut req = job.spec.requirements.clone();
    req.tags.sort();
    req.tags.dedup();
    serde_json::to_string(&(job.spec.kind(), req)).expect("a fit class serializes")
}

/// Whether a slot with `caps` runs jobs of this fit class (false for one this build cannot read).
fn class_fits(caps: &Capabilities, class: &str) -> bool {
    serde_json::from_str::<(JobKind, Requirements)>(class)
        .is_ok_and(|(kind, req)| caps.fits_needs(kind, &req))
}

fn decode(bytes: &[u8]) -> Result<Job, StoreError> {
    from_json("job", bytes)
}

impl Tx<'_> {
    /// A job, inside the write transaction.
    pub fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.jobs
            .open()?
            .get(id)?
            .map(|v| decode(v.value()))
            .transpose()
    }

    /// Stores a job and keeps the queue index, the per-state counts and the study index in step
    /// with it. `prev` is the job as stored before (None for a new job).
    pub fn save_job(&mut self, prev: Option<&Job>, job: &Job) -> Result<(), StoreError> {
        // First: the owner's accounting reads what can fail to decode before it writes.
        self.account_job(prev, job)?;
        self.jobs
            .open_mut()?
            .insert(job.id, to_json(job).as_slice())?;
        let prev_state = prev.map(|p| p.state);
        if prev_state != Some(job.state) {
            if let Some(p) = prev {
                let key = p.state.as_str();
                let n = self.counts.count(key)?;
                self.counts.open_mut()?.insert(key, n.saturating_sub(1))?;
            }
            let key = job.state.as_str();
            let n = self.counts.count(key)?;
            self.counts.open_mut()?.insert(key, n + 1)?;
        }
        if let Some(p) = prev
            && p.state == JobState::Queued
        {
            self.queue.open_mut()?.remove(queue_key(p))?;
            self.count_queue_class(&p.spec, false)?;
            self.unindex_queued(p)?;
        }
        if job.state == JobState::Queued {
            self.queue.open_mut()?.insert(queue_key(job), ())?;
            self.count_queue_class(&job.spec, true)?;
            self.index_queued(job)?;
        }
        if prev.is_none() {
            self.index_new_job(job)?;
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

    /// The indexes every job is in from its submission on (its study's, its owner's).
    pub(crate) fn index_new_job(&mut self, job: &Job) -> Result<(), StoreError> {
        if let Some(study) = &job.spec.study {
            self.study_jobs
                .open_mut()?
                .insert((study.as_str(), job.id), ())?;
        }
        self.owner_jobs
            .open_mut()?
            .insert((job.owner.as_str(), job.id), ())?;
        Ok(())
    }

    /// Enters a queued job into its owner's queue.
    pub(crate) fn index_queued(&mut self, job: &Job) -> Result<(), StoreError> {
        let class = fit_class(job);
        let (p, id) = queue_key(job);
        self.fair_queue
            .open_mut()?
            .insert((job.owner.as_str(), class.as_str(), p, id), ())?;
        let key = (job.owner.as_str(), class.as_str());
        let n = self.pending.count(key)?;
        self.pending.open_mut()?.insert(key, n + 1)?;
        Ok(())
    }

    fn unindex_queued(&mut self, job: &Job) -> Result<(), StoreError> {
        let class = fit_class(job);
        let (p, id) = queue_key(job);
        self.fair_queue
            .open_mut()?
            .remove((job.owner.as_str(), class.as_str(), p, id))?;
        let key = (job.owner.as_str(), class.as_str());
        let n = self.pending.count(key)?;
        if n <= 1 {
            self.pending.open_mut()?.remove(key)?;
        } else {
            self.pending.open_mut()?.insert(key, n - 1)?;
        }
        Ok(())
    }

    /// How many jobs of `study` have not ended (0: every one has).
    pub fn study_open(&mut self, study: &str) -> Result<u64, StoreError> {
        let known = self.study_open.open()?.get(study)?.map(|v| v.value());
        match known {
            Some(n) => Ok(n),
            None => self.count_study_open(study, None),
        }
    }

    fn add_study_open(&mut self, study: &str, job: &Job, delta: i64) -> Result<(), StoreError> {
        let known = self.study_open.open()?.get(study)?.map(|v| v.value());
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
        self.study_open.open_mut()?.insert(study, n)?;
        Ok(())
    }

    /// Counts the open jobs of a study from its index (all but `except`), and stores the count.
    fn count_study_open(&mut self, study: &str, except: Option<JobId>) -> Result<u64, StoreError> {
        let mut ids = Vec::new();
        for e in self
            .study_jobs
            .open()?
            .range((study, 0)..=(study, u64::MAX))?
        {
            ids.push(e?.0.value().1);
        }
        let mut n = 0;
        for id in ids {
            if Some(id) == except {
                continue;
            }
            // A job that does not decode cannot run: not counted (and it does not fail the
            // save that called this, whose job is already written).
            match self.job(id) {
                Ok(Some(j)) if !j.state.is_terminal() => n += 1,
                Ok(_) | Err(StoreError::Corrupt { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.study_open.open_mut()?.insert(study, n)?;
        Ok(n)
    }

    /// The next job for a slot with `caps`: with `fair_share` (the half-life of recent usage)
    /// the fair-share choice ([`Tx::next_fair`]), without it the first fitting job in global
    /// claim order ([`Tx::first_fitting`]). Either way a user at their running limit waits.
    pub fn next_job(
        &mut self,
        caps: &Capabilities,
        fair_share: Option<Duration>,
        now: Millis,
    ) -> Result<Option<Job>, StoreError> {
        self.next_job_where(caps, fair_share, now, |_, _| Ok(true))
    }

    /// [`Tx::next_job`] among the jobs `keep` accepts; `keep` may read this transaction (a
    /// study's other jobs, say: a worker whose allocation ends takes only jobs expected to
    /// finish in time).
    pub fn next_job_where(
        &mut self,
        caps: &Capabilities,
        fair_share: Option<Duration>,
        now: Millis,
        mut keep: impl FnMut(&Self, &Job) -> Result<bool, StoreError>,
    ) -> Result<Option<Job>, StoreError> {
        match fair_share {
            Some(half_life) => self.next_fair(caps, half_life, now, &mut keep),
            None => self.first_fitting(caps, &mut keep),
        }
    }

    /// The first queued job (in global claim order: priority, then FIFO) that a slot with
    /// `caps` may run and `keep` accepts, skipping users at their running limit. Walks the queue
    /// up to that job.
    pub fn first_fitting(
        &mut self,
        caps: &Capabilities,
        keep: &mut impl FnMut(&Self, &Job) -> Result<bool, StoreError>,
    ) -> Result<Option<Job>, StoreError> {
        let mut at_limit: HashMap<String, bool> = HashMap::new();
        let mut after: Option<(i64, u64)> = None;
        loop {
            // Read in small runs: the first fitting job is usually at the head.
            let mut ids = Vec::with_capacity(64);
            let range = match after {
                None => self.queue.open()?.range::<(i64, u64)>(..)?,
                Some(k) => self.queue.open()?.range::<(i64, u64)>((
                    std::ops::Bound::Excluded(k),
                    std::ops::Bound::Unbounded,
                ))?,
            };
            for entry in range.take(64) {
                let k = entry?.0.value();
                after = Some(k);
                ids.push(k.1);
            }
            if ids.is_empty() {
                return Ok(None);
            }
            if let Some(job) = self.first_runnable(caps, &ids, &mut at_limit, keep)? {
                return Ok(Some(job));
            }
        }
    }

    fn first_runnable(
        &mut self,
        caps: &Capabilities,
        ids: &[JobId],
        at_limit: &mut HashMap<String, bool>,
        keep: &mut impl FnMut(&Self, &Job) -> Result<bool, StoreError>,
    ) -> Result<Option<Job>, StoreError> {
        for &id in ids {
            // A job this build cannot read (written by a newer one) is left for others.
            let Some(Ok(job)) = self.jobs.open()?.get(id)?.map(|v| decode(v.value())) else {
                continue;
            };
            if !caps.fits(&job.spec) {
                continue;
            }
            let limited = match at_limit.get(&job.owner) {
                Some(&l) => l,
                None => {
                    let l = self.at_running_limit(&job.owner)?;
                    at_limit.insert(job.owner.clone(), l);
                    l
                }
            };
            if !limited && keep(self, &job)? {
                return Ok(Some(job));
            }
        }
        Ok(None)
    }

    /// The fair-share choice (see [`crate::fairshare`]): among the users with queued jobs a
    /// slot with `caps` fits and below their running limit, the one with the least recent
    /// usage per share; then that user's first fitting job by priority, then FIFO.
    ///
    /// Cost: one pass over [`PENDING`] (P = users × fit classes with queued jobs), one ordered
    /// pass over those users' fixed-width rows (U, `users::STANDINGS`), the minimum (O(U)),
    /// and one B-tree seek per fitting class of the chosen user: O(P + U + C·log N) for N
    /// queued jobs. It never walks the queue.
    pub fn next_fair(
        &mut self,
        caps: &Capabilities,
        half_life: Duration,
        now: Millis,
        keep: &mut impl FnMut(&Self, &Job) -> Result<bool, StoreError>,
    ) -> Result<Option<Job>, StoreError> {
        // Users with fitting work queued, with their fitting classes (keys sort by owner).
        let mut fits: HashMap<String, bool> = HashMap::new();
        let mut users: Vec<(String, Vec<String>)> = Vec::new();
        for entry in self.pending.open()?.iter()? {
            let (k, n) = entry?;
            let (owner, class) = k.value();
            if n.value() == 0 {
                continue;
            }
            let fit = match fits.get(class) {
                Some(&f) => f,
                None => {
                    let f = class_fits(caps, class);
                    fits.insert(class.to_string(), f);
                    f
                }
            };
            if !fit {
                continue;
            }
            match users.last_mut() {
                Some((u, classes)) if u == owner => classes.push(class.to_string()),
                _ => users.push((owner.to_string(), vec![class.to_string()])),
            }
        }
        let mut standings = Vec::with_capacity(users.len());
        let mut eligible = Vec::with_capacity(users.len());
        // Each user's share, limit, recent usage and running jobs: one ordered pass.
        let names: Vec<&str> = users.iter().map(|(u, _)| u.as_str()).collect();
        let rows = self.standing_rows(&names)?;
        for ((user, classes), row) in users.into_iter().zip(rows) {
            if row.at_running_limit() {
                continue;
            }
            standings.push(row.standing());
            eligible.push((user, classes));
        }
        while !eligible.is_empty() {
            let tied = fairshare::lowest(&standings, now, half_life);
            let mut chosen = tied[0];
            if tied.len() > 1 {
                // An exact tie (nobody used anything yet): the oldest fitting job goes first.
                let mut oldest = u64::MAX;
                for i in tied {
                    let (user, classes) = &eligible[i];
                    for class in classes {
                        if let Some((_, id)) = self.class_head(user, class)?
                            && id < oldest
                        {
                            oldest = id;
                            chosen = i;
                        }
                    }
                }
            }
            let (user, classes) = eligible.swap_remove(chosen);
            standings.swap_remove(chosen);
            if let Some(job) = self.users_next(&user, &classes, caps, keep)? {
                return Ok(Some(job));
            }
        }
        Ok(None)
    }

    /// The first key of one user's fit class in the per-user queue: (−priority, job id).
    fn class_head(&mut self, user: &str, class: &str) -> Result<Option<(i64, u64)>, StoreError> {
        let range = (user, class, i64::MIN, 0)..=(user, class, i64::MAX, u64::MAX);
        Ok(self
            .fair_queue
            .open()?
            .range(range)?
            .next()
            .transpose()?
            .map(|(k, _)| {
                let k = k.value();
                (k.2, k.3)
            }))
    }

    /// A user's first job, by priority then FIFO, among their fit classes that fit `caps`:
    /// one seek per class.
    fn users_next(
        &mut self,
        user: &str,
        classes: &[String],
        caps: &Capabilities,
        keep: &mut impl FnMut(&Self, &Job) -> Result<bool, StoreError>,
    ) -> Result<Option<Job>, StoreError> {
        let mut best: Option<Job> = None;
        for class in classes {
            let range =
                (user, class.as_str(), i64::MIN, 0)..=(user, class.as_str(), i64::MAX, u64::MAX);
            for entry in self.fair_queue.open()?.range(range)? {
                let id = entry?.0.value().3;
                let Some(v) = self.jobs.open()?.get(id)? else {
                    continue;
                };
                // A job this build cannot read (written by a newer one) is left for others.
                let Ok(job) = decode(v.value()) else { continue };
                if !caps.fits(&job.spec) || !keep(self, &job)? {
                    continue;
                }
                if best.as_ref().is_none_or(|b| queue_key(&job) < queue_key(b)) {
                    best = Some(job);
                }
                break;
            }
        }
        Ok(best)
    }

    /// Queued job ids in claim order (highest priority first, FIFO within a priority).
    pub fn queued_ids(&mut self) -> Result<Vec<JobId>, StoreError> {
        let mut out = Vec::new();
        for entry in self.queue.open()?.iter()? {
            let (k, _) = entry?;
            out.push(k.value().1);
        }
        Ok(out)
    }
}

impl Reader {
    /// One job.
    pub fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.jobs
            .open()?
            .get(id)?
            .map(|v| decode(v.value()))
            .transpose()
    }

    /// Number of jobs in each state.
    pub fn job_counts(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        JobState::ALL
            .into_iter()
            .map(|s| Ok((s, self.counts.count(s.as_str())?)))
            .collect()
    }

    /// Number of jobs ever submitted.
    pub fn job_total(&self) -> Result<u64, StoreError> {
        Ok(self.jobs.open()?.len()?)
    }

    /// Jobs newest first, filtered (by state, study, owner), one page. Returns the page and the
    /// id to continue before.
    pub fn list_jobs(
        &self,
        state: Option<JobState>,
        study: Option<&str>,
        owner: Option<&str>,
        before: Option<JobId>,
        limit: usize,
    ) -> Result<(Vec<Job>, Option<JobId>), StoreError> {
        let upper = before.unwrap_or(u64::MAX);
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut next = None;
        // A study or an owner has its own index: walk that (the study's, the smaller one
        // usually) and filter the rest.
        let indexed = match (study, owner) {
            (Some(s), _) => Some(self.study_jobs.open()?.range((s, 0)..(s, upper))?),
            (None, Some(o)) => Some(self.owner_jobs.open()?.range((o, 0)..(o, upper))?),
            (None, None) => None,
        };
        if let Some(range) = indexed {
            for entry in range.rev() {
                let (k, _) = entry?;
                let id = k.value().1;
                let Some(job) = self.job(id)? else { continue };
                if state.is_some_and(|s| s != job.state) || owner.is_some_and(|o| o != job.owner) {
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
            for entry in self.queue.open()?.iter()? {
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
        for entry in self.jobs.open()?.range(..upper)?.rev() {
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

    /// Number of jobs of a user.
    pub fn owner_len(&self, owner: &str) -> Result<u64, StoreError> {
        let mut n = 0;
        for entry in self
            .owner_jobs
            .open()?
            .range((owner, 0)..=(owner, u64::MAX))?
        {
            entry?;
            n += 1;
        }
        Ok(n)
    }

    /// Number of jobs in a study.
    pub fn study_len(&self, study: &str) -> Result<u64, StoreError> {
        let mut n = 0;
        for entry in self
            .study_jobs
            .open()?
            .range((study, 0)..=(study, u64::MAX))?
        {
            entry?;
            n += 1;
        }
        Ok(n)
    }

    /// All running jobs (to rebuild leases when the server starts).
    pub fn running_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let needle = b"\"state\":\"running\"";
        let mut out = Vec::new();
        for entry in self.jobs.open()?.iter()? {
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
        for entry in self.queue.open()?.iter()? {
            let id = entry?.0.value().1;
            queued += 1;
            if let Some(v) = self.jobs.open()?.get(id)?
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
        for entry in self.jobs.open()?.iter()? {
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
        for entry in self.jobs.open()?.iter().map_err(StoreError::from)? {
            let (_, v) = entry.map_err(StoreError::from)?;
            f(decode(v.value())?)?;
        }
        Ok(())
    }
}

/// Prefix of the `job_counts` keys that count queued jobs per kind and requirement class.
const QUEUE_CLASS_PREFIX: &str = "queued|";

/// A job's requirement class for queue depths: `cpu`, or `gpuN` for N GPUs.
pub fn requirement_class(spec: &crate::model::Spec) -> String {
    match spec.requirements.gpus {
        0 => "cpu".to_string(),
        n => format!("gpu{n}"),
    }
}

fn queue_class_key(spec: &crate::model::Spec) -> String {
    format!(
        "{QUEUE_CLASS_PREFIX}{}|{}",
        spec.kind(),
        requirement_class(spec)
    )
}

impl Tx<'_> {
    /// Keeps the queued count of a spec's (kind, class) in step as a job enters or leaves the
    /// queue, in the same transaction: `/metrics` reads queue depths without scanning.
    fn count_queue_class(
        &mut self,
        spec: &crate::model::Spec,
        entering: bool,
    ) -> Result<(), StoreError> {
        let key = queue_class_key(spec);
        let n = self.counts.count(key.as_str())?;
        let n = if entering { n + 1 } else { n.saturating_sub(1) };
        self.counts.open_mut()?.insert(key.as_str(), n)?;
        Ok(())
    }

    /// Counts the queued jobs per (kind, class) from the queue index (a file from before
    /// these counts were kept).
    pub(crate) fn rebuild_queue_classes(&mut self) -> Result<(), StoreError> {
        let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
        for id in self.queued_ids()? {
            if let Some(job) = self.job(id)? {
                *counts.entry(queue_class_key(&job.spec)).or_default() += 1;
            }
        }
        for (k, n) in counts {
            self.counts.open_mut()?.insert(k.as_str(), n)?;
        }
        Ok(())
    }
}

impl Reader {
    /// Queued jobs per (kind, requirement class), from counts kept with every save.
    pub fn queue_depths(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.counts.open()?.range(QUEUE_CLASS_PREFIX..)? {
            let (k, v) = entry?;
            let Some(rest) = k.value().strip_prefix(QUEUE_CLASS_PREFIX) else {
                break;
            };
            if let Some((kind, class)) = rest.split_once('|') {
                out.push((kind.to_string(), class.to_string(), v.value()));
            }
        }
        Ok(out)
    }
}
