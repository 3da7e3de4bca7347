//! Studies: the record of each named study (its submissions' definitions and job ids). The jobs
//! of a study are also indexed by `jobs::STUDY_JOBS`, kept by `save_job`.

use std::ops::Bound;

use redb::{ReadableTable, TableDefinition};

use super::{Reader, Tx, from_json, to_json};
use crate::error::StoreError;
use crate::model::StudyRecord;
use crate::model::{Job, JobKind, JobState};
use crate::study::compare::StudyRuns;

/// study name → the study record, JSON.
pub(crate) const STUDIES: TableDefinition<&str, &[u8]> = TableDefinition::new("studies");

fn decode(bytes: &[u8]) -> Result<StudyRecord, StoreError> {
    from_json("study", bytes)
}

impl Tx<'_> {
    /// A study's record, inside the write transaction.
    pub fn study(&mut self, name: &str) -> Result<Option<StudyRecord>, StoreError> {
        self.studies
            .open()?
            .get(name)?
            .map(|v| decode(v.value()))
            .transpose()
    }

    /// The jobs of a study, ascending id, inside the write transaction.
    pub fn study_jobs(&self, name: &str) -> Result<Vec<Job>, StoreError> {
        let mut ids = Vec::new();
        for entry in self
            .study_jobs
            .open()?
            .range((name, 0)..=(name, u64::MAX))?
        {
            ids.push(entry?.0.value().1);
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(job) = self.job(id)? {
                out.push(job);
            }
        }
        Ok(out)
    }

    /// Stores a study's record (replacing the previous one).
    pub fn save_study(&mut self, record: &StudyRecord) -> Result<(), StoreError> {
        self.studies
            .open_mut()?
            .insert(record.name.as_str(), to_json(record).as_slice())?;
        Ok(())
    }
}

impl Reader {
    /// A study's record.
    pub fn study(&self, name: &str) -> Result<Option<StudyRecord>, StoreError> {
        self.studies
            .open()?
            .get(name)?
            .map(|v| decode(v.value()))
            .transpose()
    }

    /// Every study name: those with a record and those only named by jobs, sorted.
    pub fn study_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        for entry in self.studies.open()?.iter()? {
            names.push(entry?.0.value().to_string());
        }
        // Distinct names of the (study, job) index: jump past each name's keys.
        let mut next = self
            .study_jobs
            .open()?
            .first()?
            .map(|(k, _)| k.value().0.to_string());
        while let Some(name) = next {
            let after = (Bound::Excluded((name.as_str(), u64::MAX)), Bound::Unbounded);
            next = match self.study_jobs.open()?.range::<(&str, u64)>(after)?.next() {
                Some(e) => Some(e?.0.value().0.to_string()),
                None => None,
            };
            names.push(name);
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Whether a study of this name was submitted: it has a record or any job (two lookups).
    pub fn has_study(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.study(name)?.is_some()
            || self
                .study_jobs
                .open()?
                .range((name, 0)..=(name, u64::MAX))?
                .next()
                .is_some())
    }

    /// Whether a submitted study is done: it exists and every job of it has ended. False for a
    /// study not (yet) submitted. Reads the kept count of open jobs; a database from before
    /// that count is counted from the study's index.
    pub fn study_done(&self, name: &str) -> Result<bool, StoreError> {
        if !self.has_study(name)? {
            return Ok(false);
        }
        if let Some(open) = self.study_open.open()?.get(name)? {
            return Ok(open.value() == 0);
        }
        for entry in self
            .study_jobs
            .open()?
            .range((name, 0)..=(name, u64::MAX))?
        {
            let id = entry?.0.value().1;
            if let Some(job) = self.job(id)?
                && !job.state.is_terminal()
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The jobs of a study, ascending id.
    pub fn study_jobs(&self, name: &str) -> Result<Vec<Job>, StoreError> {
        let mut out = Vec::new();
        for entry in self
            .study_jobs
            .open()?
            .range((name, 0)..=(name, u64::MAX))?
        {
            let id = entry?.0.value().1;
            if let Some(job) = self.job(id)? {
                out.push(job);
            }
        }
        Ok(out)
    }

    /// What a comparison of these studies reads, from this one snapshot: each study's jobs
    /// and, with `curves`, the best-ever curve of each of its succeeded experiments (see
    /// [`Reader::best_ever_curve`]: block summaries, not every row).
    pub fn compare_input(
        &self,
        names: &[String],
        curves: bool,
    ) -> Result<Vec<StudyRuns>, StoreError> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let jobs = self.study_jobs(name)?;
            let mut runs = StudyRuns {
                name: name.clone(),
                curves: Default::default(),
                jobs: Vec::new(),
            };
            if curves {
                for j in &jobs {
                    if j.spec.kind() == JobKind::Experiment
                        && j.state == JobState::Succeeded
                        && j.attempt > 0
                        && let Some(c) = self.best_ever_curve(j.id, j.attempt, j.progress.rows)?
                    {
                        runs.curves.insert(j.id, c);
                    }
                }
            }
            runs.jobs = jobs;
            out.push(runs);
        }
        Ok(out)
    }
}
