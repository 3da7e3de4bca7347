//! Adaptive studies' running state: each configuration (cell) with its jobs and state, the
//! values recorded at each rung, and the study's rules. Written by the queue as rows stream in
//! and jobs end (`crate::adaptive`); read back after a restart, so a decision once made is never
//! made again.

use redb::{ReadableTable, TableDefinition};

use super::{Reader, Tx, from_json, to_json};
use crate::error::StoreError;
use crate::model::{CellRecord, JobId, StudyRules};

/// study name → its rules (early stopping, `tpe`), JSON: read on every row batch of its jobs.
pub(crate) const STUDY_RULES: TableDefinition<&str, &[u8]> = TableDefinition::new("study_rules");
/// (study name, cell key) → the cell's record, JSON. The cell key is the canonical JSON of
/// (method, environment, params).
pub(crate) const STUDY_CELLS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("study_cells");
/// job id → its cell key (its study is on the job).
pub(crate) const JOB_CELLS: TableDefinition<u64, &str> = TableDefinition::new("job_cells");
/// (study name, rung, cell key) → the cell's value at that rung (its seeds' mean).
pub(crate) const RUNG_VALUES: TableDefinition<(&str, u32, &str), f64> =
    TableDefinition::new("rung_values");
/// (job id, rung) → the job's value when it crossed that rung.
pub(crate) const JOB_RUNGS: TableDefinition<(u64, u32), f64> = TableDefinition::new("job_rungs");

impl Tx<'_> {
    /// A study's rules, if it has any.
    pub fn study_rules(&mut self, study: &str) -> Result<Option<StudyRules>, StoreError> {
        self.study_rules
            .open()?
            .get(study)?
            .map(|v| from_json("study rules", v.value()))
            .transpose()
    }

    /// Stores a study's rules.
    pub fn save_study_rules(&mut self, study: &str, r: &StudyRules) -> Result<(), StoreError> {
        self.study_rules
            .open_mut()?
            .insert(study, to_json(r).as_slice())?;
        Ok(())
    }

    /// A cell of a study.
    pub fn cell(&mut self, study: &str, key: &str) -> Result<Option<CellRecord>, StoreError> {
        self.study_cells
            .open()?
            .get((study, key))?
            .map(|v| from_json("study cell", v.value()))
            .transpose()
    }

    /// Stores a cell (and maps its jobs to it).
    pub fn save_cell(&mut self, study: &str, key: &str, c: &CellRecord) -> Result<(), StoreError> {
        self.study_cells
            .open_mut()?
            .insert((study, key), to_json(c).as_slice())?;
        for &j in &c.jobs {
            self.job_cells.open_mut()?.insert(j, key)?;
        }
        Ok(())
    }

    /// Every cell of a study, by key.
    pub fn cells(&mut self, study: &str) -> Result<Vec<(String, CellRecord)>, StoreError> {
        let mut out = Vec::new();
        for e in self.study_cells.open()?.range((study, "")..)? {
            let (k, v) = e?;
            let (s, key) = k.value();
            if s != study {
                break;
            }
            out.push((key.to_string(), from_json("study cell", v.value())?));
        }
        Ok(out)
    }

    /// The cell key of a job, if it belongs to an adaptive study's cell.
    pub fn job_cell(&mut self, job: JobId) -> Result<Option<String>, StoreError> {
        Ok(self
            .job_cells
            .open()?
            .get(job)?
            .map(|v| v.value().to_string()))
    }

    /// Records a job's value at a rung.
    pub fn set_job_rung(&mut self, job: JobId, rung: u32, value: f64) -> Result<(), StoreError> {
        self.job_rungs.open_mut()?.insert((job, rung), value)?;
        Ok(())
    }

    /// A job's value at a rung, if it reached it.
    pub fn job_rung(&mut self, job: JobId, rung: u32) -> Result<Option<f64>, StoreError> {
        Ok(self.job_rungs.open()?.get((job, rung))?.map(|v| v.value()))
    }

    /// Records a cell's value at a rung.
    pub fn set_rung_value(
        &mut self,
        study: &str,
        rung: u32,
        key: &str,
        value: f64,
    ) -> Result<(), StoreError> {
        self.rung_values
            .open_mut()?
            .insert((study, rung, key), value)?;
        Ok(())
    }

    /// Every cell's value at a rung, by cell key.
    pub fn rung_values(
        &mut self,
        study: &str,
        rung: u32,
    ) -> Result<Vec<(String, f64)>, StoreError> {
        let mut out = Vec::new();
        for e in self.rung_values.open()?.range((study, rung, "")..)? {
            let (k, v) = e?;
            let (s, r, key) = k.value();
            if s != study || r != rung {
                break;
            }
            out.push((key.to_string(), v.value()));
        }
        Ok(out)
    }
}

impl Reader {
    /// Every cell of a study, in order of appearance.
    pub fn cells(&self, study: &str) -> Result<Vec<CellRecord>, StoreError> {
        let mut out: Vec<CellRecord> = Vec::new();
        for e in self.study_cells.open()?.range((study, "")..)? {
            let (k, v) = e?;
            if k.value().0 != study {
                break;
            }
            out.push(from_json("study cell", v.value())?);
        }
        out.sort_by_key(|c| c.id);
        Ok(out)
    }

    /// A study's rules, if it has any.
    pub fn study_rules(&self, study: &str) -> Result<Option<StudyRules>, StoreError> {
        self.study_rules
            .open()?
            .get(study)?
            .map(|v| from_json("study rules", v.value()))
            .transpose()
    }
}
