//! Release metadata (the files themselves live in `<data dir>/releases/<tag>/`).

use redb::{ReadableTable, TableDefinition};

use super::{Reader, Tx, from_json, to_json};
use crate::error::StoreError;
use crate::release::Release;

/// release tag → the release (files, promotion, yanked), JSON.
pub(crate) const RELEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("releases");

impl Tx<'_> {
    /// A release by tag.
    pub fn release(&mut self, tag: &str) -> Result<Option<Release>, StoreError> {
        self.releases
            .open()?
            .get(tag)?
            .map(|v| from_json::<Release>("release", v.value()))
            .transpose()
    }

    /// Stores a release.
    pub fn save_release(&mut self, r: &Release) -> Result<(), StoreError> {
        self.releases
            .open_mut()?
            .insert(r.tag.as_str(), to_json(r).as_slice())?;
        Ok(())
    }
}

impl Reader {
    /// Every release (any order).
    pub fn releases(&self) -> Result<Vec<Release>, StoreError> {
        let mut out = Vec::new();
        for entry in self.releases.open()?.iter()? {
            let (_, v) = entry?;
            out.push(from_json("release", v.value())?);
        }
        Ok(out)
    }

    /// A release by tag.
    pub fn release(&self, tag: &str) -> Result<Option<Release>, StoreError> {
        self.releases
            .open()?
            .get(tag)?
            .map(|v| from_json::<Release>("release", v.value()))
            .transpose()
    }
}

/// The promoted release among `all`: the non-yanked one promoted last.
pub fn promoted(all: &[Release]) -> Option<&Release> {
    all.iter()
        .filter(|r| !r.yanked && r.promoted_seq.is_some())
        .max_by_key(|r| r.promoted_seq)
}
