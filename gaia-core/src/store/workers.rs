//! The worker registry's durable part: who registered, with what hardware. Heartbeat-level
//! state (last seen, utilisation) lives in memory in the queue and is written here only on
//! registration and state changes.

use redb::{ReadableTable, TableDefinition};

use super::{Reader, Tx, from_json, to_json};
use crate::error::StoreError;
use crate::model::Worker;

/// worker id → the worker, JSON.
pub(crate) const WORKERS: TableDefinition<&str, &[u8]> = TableDefinition::new("workers");

impl Tx<'_> {
    /// Stores a worker.
    pub fn save_worker(&mut self, w: &Worker) -> Result<(), StoreError> {
        self.workers
            .open_mut()?
            .insert(w.id.as_str(), to_json(w).as_slice())?;
        Ok(())
    }

    /// Forgets a worker.
    pub fn delete_worker(&mut self, id: &str) -> Result<(), StoreError> {
        self.workers.open_mut()?.remove(id)?;
        Ok(())
    }

    /// A worker by id.
    pub fn worker(&mut self, id: &str) -> Result<Option<Worker>, StoreError> {
        self.workers
            .open()?
            .get(id)?
            .map(|v| from_json::<Worker>("worker", v.value()))
            .transpose()
    }
}

impl Reader {
    /// Every registered worker.
    pub fn workers(&self) -> Result<Vec<Worker>, StoreError> {
        let mut out = Vec::new();
        for entry in self.workers.open()?.iter()? {
            let (_, v) = entry?;
            out.push(from_json("worker", v.value())?);
        }
        Ok(out)
    }
}
