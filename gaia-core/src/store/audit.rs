//! The audit log: admin actions, who did them (the token's name) and to what. Kept apart from
//! the activity log, which busy farms fill in days, so it reaches back years.

use redb::{ReadableTable, TableDefinition};

use super::{Reader, Tx, from_json, to_json};
use crate::error::StoreError;
use crate::model::{AuditEntry, now_ms};

/// entry id → the entry, JSON. Ids increase.
pub(crate) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

/// Entries kept; the oldest go as new ones come.
pub const MAX_AUDIT: u64 = 100_000;

impl Tx<'_> {
    /// Records an admin action in this transaction, so it is written with the action or not
    /// at all.
    pub fn audit(
        &mut self,
        actor: &str,
        action: &str,
        target: &str,
        detail: String,
    ) -> Result<AuditEntry, StoreError> {
        let id = self.next_id("next_audit_id")?;
        let e = AuditEntry {
            id,
            at: now_ms(),
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            detail,
        };
        self.audit.open_mut()?.insert(id, to_json(&e).as_slice())?;
        if id > MAX_AUDIT {
            self.audit.open_mut()?.remove(id - MAX_AUDIT)?;
        }
        Ok(e)
    }
}

impl Reader {
    /// Up to `limit` entries with id > `after` (oldest first), or the newest `limit`.
    pub fn audit(&self, after: Option<u64>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let mut out = Vec::new();
        match after {
            Some(a) => {
                for entry in self.audit.open()?.range(a.saturating_add(1)..)? {
                    out.push(from_json("audit entry", entry?.1.value())?);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            None => {
                for entry in self.audit.open()?.iter()?.rev() {
                    out.push(from_json("audit entry", entry?.1.value())?);
                    if out.len() >= limit {
                        break;
                    }
                }
                out.reverse();
            }
        }
        Ok(out)
    }
}
