//! The activity log: submits, starts, completions, failures, workers joining and leaving.

use redb::{ReadableTable, TableDefinition};

use super::{Reader, Tx, from_json, to_json};
use crate::error::StoreError;
use crate::model::{Event, JobId, now_ms};

/// event id → the event, JSON. Ids increase; SSE clients resume after an id.
pub(crate) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

/// Events kept; older ones are pruned as new ones arrive.
pub const MAX_EVENTS: u64 = 100_000;

impl Tx<'_> {
    /// Appends an event in this transaction and returns it (to broadcast after the commit).
    pub fn event(
        &mut self,
        kind: &str,
        job: Option<JobId>,
        worker: Option<&str>,
        message: String,
    ) -> Result<Event, StoreError> {
        let id = self.next_id("next_event_id")?;
        let ev = Event {
            id,
            at: now_ms(),
            kind: kind.to_string(),
            job,
            worker: worker.map(str::to_string),
            message,
        };
        self.events
            .open_mut()?
            .insert(id, to_json(&ev).as_slice())?;
        if id > MAX_EVENTS {
            self.events.open_mut()?.remove(id - MAX_EVENTS)?;
        }
        Ok(ev)
    }
}

impl Reader {
    /// Up to `limit` events with id > `after`, oldest first.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        for entry in self.events.open()?.range(after.saturating_add(1)..)? {
            let (_, v) = entry?;
            out.push(from_json("event", v.value())?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The newest `n` events, oldest first.
    pub fn recent_events(&self, n: usize) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        for entry in self.events.open()?.iter()?.rev() {
            let (_, v) = entry?;
            out.push(from_json("event", v.value())?);
            if out.len() >= n {
                break;
            }
        }
        out.reverse();
        Ok(out)
    }
}
