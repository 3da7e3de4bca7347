//! Keeping the file bounded and safe while the server runs: online backups (a consistent copy
//! made from one read snapshot, table by table, while writes go on) and garbage collection of
//! old rows and log lines in bounded batches through the writer, so ingest never waits long.

use std::path::Path;
use std::time::{Duration, Instant};

use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
    Value,
};
use serde::{Deserialize, Serialize};

use super::{Store, Tx};
use crate::error::{Error, StoreError};
use crate::model::{JobId, JobState, Millis, now_ms};

/// Entries copied into a backup per transaction of the new file, so a copy of a large
/// database never holds it whole in memory.
const COPY_CHUNK: u64 = 100_000;

/// What a backup wrote.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct BackupReport {
    /// Entries copied, over all tables.
    pub entries: u64,
    /// Tables copied.
    pub tables: u64,
    /// Size of the copy in bytes.
    pub bytes: u64,
    /// Milliseconds the copy took.
    pub took_ms: u64,
}

/// Copies tables into a new database in chunks of [`COPY_CHUNK`] entries.
struct Copier<'a> {
    read: &'a ReadTransaction,
    out: &'a Database,
    txn: Option<redb::WriteTransaction>,
    in_txn: u64,
    report: BackupReport,
}

impl TableVisitor for Copier<'_> {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<K, V>,
    ) -> Result<(), StoreError> {
        let table = self.read.open_table(def)?;
        self.report.tables += 1;
        let mut iter = table.iter()?;
        loop {
            let txn = match self.txn.take() {
                Some(t) => t,
                None => {
                    let mut t = self.out.begin_write()?;
                    // The copy is durable once, at its last commit.
                    t.set_durability(redb::Durability::None)
                        .map_err(|e| StoreError::Redb(e.to_string()))?;
                    t
                }
            };
            let mut done = false;
            {
                let mut out = txn.open_table(def)?;
                while self.in_txn < COPY_CHUNK {
                    match iter.next() {
                        Some(entry) => {
                            let (k, v) = entry?;
                            out.insert(k.value(), v.value())?;
                            self.in_txn += 1;
                            self.report.entries += 1;
                        }
                        None => {
                            done = true;
                            break;
                        }
                    }
                }
            }
            if done {
                self.txn = Some(txn);
                return Ok(());
            }
            txn.commit()?;
            self.in_txn = 0;
        }
    }
}

/// Something done to every table of the store, each given by its typed definition.
pub(crate) trait TableVisitor {
    /// Called once per table, in [`each_table`]'s order.
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        def: TableDefinition<K, V>,
    ) -> Result<(), StoreError>;
}

/// Every table of the store, named in one place — the write transaction's list
/// (`tx_tables!` in `store/mod.rs`, [`Tx::each_table`]): the backup copies exactly these, a
/// backup refuses a snapshot holding any other, and a test checks this list against the
/// tables a new store creates and every `TableDefinition` in `store/`, so a table added later
/// cannot be left out of backups.
pub(crate) fn each_table(v: &mut impl TableVisitor) -> Result<(), StoreError> {
    Tx::each_table(v)
}

/// The name of every table a backup copies, in the order it copies them ([`each_table`]).
pub fn backed_up() -> Vec<String> {
    struct Names(Vec<String>);
    impl TableVisitor for Names {
        fn table<K: Key + 'static, V: Value + 'static>(
            &mut self,
            def: TableDefinition<K, V>,
        ) -> Result<(), StoreError> {
            self.0.push(def.name().to_string());
            Ok(())
        }
    }
    let mut names = Names(Vec::new());
    // Naming cannot fail.
    let _ = each_table(&mut names);
    names.0
}

impl Store {
    /// Writes a consistent copy of the database to `dest` (which must not exist) while the
    /// server keeps serving: every table is read from one snapshot (a redb read transaction,
    /// which writers never block or change) and written into a new file. `gaia serve
    /// --data-dir` on a folder holding the copy as `gaia.redb` serves it.
    pub fn backup_to(&self, dest: &Path) -> Result<BackupReport, Error> {
        let started = Instant::now();
        if dest.exists() {
            return Err(Error::Other(format!(
                "{} exists; a backup is written to a new file",
                dest.display()
            )));
        }
        let read = self.db.begin_read().map_err(StoreError::from)?;
        let out = Database::builder()
            .create(dest)
            .map_err(|cause| StoreError::Open {
                path: dest.to_path_buf(),
                cause,
            })?;
        let mut c = Copier {
            read: &read,
            out: &out,
            txn: None,
            in_txn: 0,
            report: BackupReport::default(),
        };
        let result = (|| -> Result<(), StoreError> {
            each_table(&mut c)?;
            // Whatever the snapshot holds that this list does not would be lost: refuse.
            let listed = backed_up();
            for t in read.list_tables()? {
                if !listed.iter().any(|n| n == t.name()) {
                    return Err(StoreError::Redb(format!(
                        "table {:?} is not in the backup's list (store::maintenance::each_table)",
                        t.name()
                    )));
                }
            }
            let mut txn = match c.txn.take() {
                Some(t) => t,
                None => out.begin_write()?,
            };
            txn.set_durability(redb::Durability::Immediate)
                .map_err(|e| StoreError::Redb(e.to_string()))?;
            txn.commit()?;
            Ok(())
        })();
        let Copier {
            mut report, txn, ..
        } = c;
        drop(txn);
        drop(out);
        if let Err(e) = result {
            let _ = std::fs::remove_file(dest);
            return Err(e.into());
        }
        report.bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
        report.took_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }
}

// ---- gc ---------------------------------------------------------------------------------

/// What a gc deletes: the rows and the log lines of jobs that ended before a cutoff. Job
/// records (state, progress, result, attempts) always stay.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GcRequest {
    /// Delete the rows of jobs that ended more than this many seconds ago.
    #[serde(default)]
    pub rows_older_than_secs: Option<u64>,
    /// Delete the log lines of jobs that ended more than this many seconds ago.
    #[serde(default)]
    pub logs_older_than_secs: Option<u64>,
    /// Count what would go, delete nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a gc did (or, dry, would do).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct GcReport {
    /// Nothing was deleted: the counts say what would have been.
    pub dry_run: bool,
    /// Jobs whose rows were (or would be) deleted.
    pub row_jobs: u64,
    /// Rows deleted (or that would be).
    pub rows_deleted: u64,
    /// Jobs whose log lines were (or would be) deleted.
    pub log_jobs: u64,
    /// Log lines deleted (or that would be).
    pub log_lines_deleted: u64,
    /// Write transactions the deletes took (each at most [`GC_BATCH`] entries).
    pub batches: u64,
    /// The database file before and after, in bytes. redb reuses the pages freed for new
    /// data, so the file stops growing; it shrinks only by compaction (`gaia gc --offline`).
    pub file_bytes_before: u64,
    pub file_bytes_after: u64,
    /// Whether the file was compacted (offline only).
    #[serde(default)]
    pub compacted: bool,
    /// Milliseconds the gc took.
    pub took_ms: u64,
}

/// Entries one gc write deletes at most: a batch keeps the writer for milliseconds, so ingest
/// runs between two batches.
pub const GC_BATCH: usize = 2_000;

/// The fields of a stored job a gc looks at.
#[derive(Deserialize)]
struct GcBrief {
    id: JobId,
    state: JobState,
    #[serde(default)]
    finished_at: Option<Millis>,
    #[serde(default)]
    rows_deleted_at: Option<Millis>,
    #[serde(default)]
    logs_deleted_at: Option<Millis>,
}

impl GcRequest {
    /// Checks that it asks for something.
    pub fn validate(&self) -> Result<(), crate::error::RequestError> {
        if self.rows_older_than_secs.is_none() && self.logs_older_than_secs.is_none() {
            return Err(crate::error::RequestError::Invalid(
                "gc needs rows_older_than_secs or logs_older_than_secs (gaia gc --rows-older-than 180d --logs-older-than 30d)".into(),
            ));
        }
        Ok(())
    }
}

impl Tx<'_> {
    /// Deletes up to `max` rows (and their block summaries) of `job`; returns how many rows
    /// went and whether the job has none left (then its record notes when).
    fn gc_rows(&mut self, job: JobId, max: usize) -> Result<(u64, bool), Error> {
        let lo = (job, 0u32, 0u64);
        let hi = (job, u32::MAX, u64::MAX);
        let mut keys = Vec::with_capacity(max.min(4096));
        for entry in self.rows.open()?.range(lo..=hi).map_err(StoreError::from)? {
            keys.push(entry.map_err(StoreError::from)?.0.value());
            if keys.len() >= max {
                break;
            }
        }
        for k in &keys {
            self.rows.open_mut()?.remove(*k).map_err(StoreError::from)?;
        }
        let done = keys.len() < max;
        if done {
            let blocks: Vec<_> = self
                .row_blocks
                .open()?
                .range(lo..=hi)
                .map_err(StoreError::from)?
                .map(|e| e.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()
                .map_err(StoreError::from)?;
            for k in blocks {
                self.row_blocks
                    .open_mut()?
                    .remove(k)
                    .map_err(StoreError::from)?;
            }
            if let Some(prev) = self.job(job)? {
                let mut j = prev.clone();
                j.rows_deleted_at = Some(now_ms());
                self.save_job(Some(&prev), &j)?;
            }
        }
        Ok((keys.len() as u64, done))
    }

    /// Deletes up to `max` log lines of `job`, like [`Tx::gc_rows`].
    fn gc_logs(&mut self, job: JobId, max: usize) -> Result<(u64, bool), Error> {
        let mut keys = Vec::with_capacity(max.min(4096));
        for entry in self
            .logs
            .open()?
            .range((job, 0)..=(job, u64::MAX))
            .map_err(StoreError::from)?
        {
            keys.push(entry.map_err(StoreError::from)?.0.value());
            if keys.len() >= max {
                break;
            }
        }
        for k in &keys {
            self.logs.open_mut()?.remove(*k).map_err(StoreError::from)?;
        }
        let done = keys.len() < max;
        if done && let Some(prev) = self.job(job)? {
            let mut j = prev.clone();
            j.logs_deleted_at = Some(now_ms());
            self.save_job(Some(&prev), &j)?;
        }
        Ok((keys.len() as u64, done))
    }
}

impl Store {
    /// Deletes the rows and log lines of jobs that ended before the request's cutoffs, in
    /// batches of at most [`GC_BATCH`] entries, each its own write, paced so the gc takes at
    /// most about half of the writer's time: ingest and claims go on between batches. Only ended jobs are touched; a running or queued job keeps everything.
    pub async fn gc(&self, req: &GcRequest) -> Result<GcReport, Error> {
        req.validate()?;
        let started = Instant::now();
        let now = now_ms();
        let cutoff = |secs: Option<u64>| secs.map(|s| now.saturating_sub(s.saturating_mul(1000)));
        let (rows_before, logs_before) = (
            cutoff(req.rows_older_than_secs),
            cutoff(req.logs_older_than_secs),
        );
        let mut report = GcReport {
            dry_run: req.dry_run,
            file_bytes_before: self.file_size(),
            ..GcReport::default()
        };
        // The jobs to clean, from one pass over a snapshot; each is checked again in its write.
        let (row_jobs, log_jobs) = {
            let read = self.read()?;
            let mut r = Vec::new();
            let mut l = Vec::new();
            for entry in read.jobs.open()?.iter().map_err(StoreError::from)? {
                let (_, v) = entry.map_err(StoreError::from)?;
                let Ok(b) = serde_json::from_slice::<GcBrief>(v.value()) else {
                    continue;
                };
                if !b.state.is_terminal() {
                    continue;
                }
                let Some(end) = b.finished_at else { continue };
                if rows_before.is_some_and(|c| end < c) && b.rows_deleted_at.is_none() {
                    r.push(b.id);
                }
                if logs_before.is_some_and(|c| end < c) && b.logs_deleted_at.is_none() {
                    l.push(b.id);
                }
            }
            (r, l)
        };
        if req.dry_run {
            let read = self.read()?;
            for &job in &row_jobs {
                let n = read
                    .rows
                    .open()?
                    .range((job, 0u32, 0u64)..=(job, u32::MAX, u64::MAX))
                    .map_err(StoreError::from)?
                    .count() as u64;
                report.rows_deleted += n;
                report.row_jobs += 1;
            }
            for &job in &log_jobs {
                let n = read
                    .logs
                    .open()?
                    .range((job, 0)..=(job, u64::MAX))
                    .map_err(StoreError::from)?
                    .count() as u64;
                report.log_lines_deleted += n;
                report.log_jobs += 1;
            }
        } else {
            for (jobs, rows) in [(row_jobs, true), (log_jobs, false)] {
                for job in jobs {
                    loop {
                        let began = Instant::now();
                        let (n, done) = self
                            .write_volatile(move |tx| {
                                // Checked again: a job still ended (nothing resets that).
                                match tx.job(job)? {
                                    Some(j) if j.state.is_terminal() => {}
                                    _ => return Ok((0, true)),
                                }
                                if rows {
                                    tx.gc_rows(job, GC_BATCH)
                                } else {
                                    tx.gc_logs(job, GC_BATCH)
                                }
                            })
                            .await?;
                        report.batches += 1;
                        if rows {
                            report.rows_deleted += n;
                        } else {
                            report.log_lines_deleted += n;
                        }
                        if done {
                            break;
                        }
                        // Paced: after each batch the gc waits as long as the batch took, so
                        // it has at most about half of the writer's time and ingest the rest.
                        tokio::time::sleep(began.elapsed().max(Duration::from_millis(1))).await;
                    }
                    if rows {
                        report.row_jobs += 1;
                    } else {
                        report.log_jobs += 1;
                    }
                }
            }
            // Durable before it is reported.
            self.write(|_| Ok(())).await?;
        }
        report.file_bytes_after = self.file_size();
        report.took_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }
}

/// Compacts the database file in `data_dir` (the server must be stopped: redb compacts only a
/// database nobody else has open). Returns the file size before and after.
pub fn compact_offline(data_dir: &Path) -> Result<(u64, u64), Error> {
    let path = data_dir.join(super::DB_FILE);
    let before = std::fs::metadata(&path)
        .map_err(|e| Error::io(&path, e))?
        .len();
    let mut db = Database::builder()
        .create(&path)
        .map_err(|cause| StoreError::Open {
            path: path.clone(),
            cause,
        })?;
    db.compact()
        .map_err(|e| StoreError::Redb(format!("compact {}: {e}", path.display())))?;
    drop(db);
    let after = std::fs::metadata(&path)
        .map_err(|e| Error::io(&path, e))?
        .len();
    Ok((before, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table added to the store without being added to the backup's list would be lost by
    /// every backup: this catches it at once, from the tables a new store creates.
    #[test]
    fn the_backup_copies_every_table_the_store_has() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let read = store.db.begin_read().unwrap();
        let mut have: Vec<String> = read
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_string())
            .collect();
        have.sort();
        let mut listed = backed_up();
        listed.sort();
        let n = listed.len();
        listed.dedup();
        assert_eq!(listed.len(), n, "a table is listed twice");
        assert_eq!(have, listed);
        drop(read);
        let dest = dir.path().join("copy.redb");
        let r = store.backup_to(&dest).unwrap();
        assert_eq!(r.tables, n as u64);
        assert!(r.bytes > 0);
        assert!(store.backup_to(&dest).is_err(), "an existing file is kept");
    }

    /// The same from the source: every table definition (a `TableDefinition::new` of a name)
    /// under `store/` is in the backup's list, even one that `Store::open` does not create.
    #[test]
    fn the_backup_lists_every_table_the_store_defines() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
        let listed = backed_up();
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let src = std::fs::read_to_string(&path).unwrap();
            for (at, _) in src.match_indices("TableDefinition::new(\"") {
                let rest = &src[at + "TableDefinition::new(\"".len()..];
                let name = &rest[..rest.find('"').unwrap()];
                assert!(
                    listed.iter().any(|n| n == name),
                    "table {name:?} ({}) is not in store::maintenance::each_table",
                    path.display()
                );
                seen += 1;
            }
        }
        assert!(seen >= listed.len(), "found only {seen} table definitions");
    }

    /// Every table's entries reach the copy: a store with a job, its rows, a worker and an
    /// event is backed up and the copy holds as many entries in each table as the original.
    #[test]
    fn a_backup_holds_every_entry() {
        use redb::ReadableTableMetadata;
        struct Count<'a>(&'a ReadTransaction, Vec<(String, u64)>);
        impl TableVisitor for Count<'_> {
            fn table<K: Key + 'static, V: Value + 'static>(
                &mut self,
                def: TableDefinition<K, V>,
            ) -> Result<(), StoreError> {
                let n = self.0.open_table(def)?.len()?;
                self.1.push((def.name().to_string(), n));
                Ok(())
            }
        }
        fn counts(db: &Database) -> Vec<(String, u64)> {
            let read = db.begin_read().unwrap();
            let mut c = Count(&read, Vec::new());
            each_table(&mut c).unwrap();
            c.1
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write_blocking(|tx| {
                let fill = |tx: &mut Tx<'_>| -> Result<(), StoreError> {
                    let b: &[u8] = b"{}";
                    tx.jobs.open_mut()?.insert(1, b)?;
                    tx.queue.open_mut()?.insert((0, 1), ())?;
                    tx.counts.open_mut()?.insert("queued", 1)?;
                    tx.study_jobs.open_mut()?.insert(("s", 1), ())?;
                    tx.study_open.open_mut()?.insert("s", 1)?;
                    tx.studies.open_mut()?.insert("s", b)?;
                    tx.study_rules.open_mut()?.insert("s", b)?;
                    tx.study_cells.open_mut()?.insert(("s", "c"), b)?;
                    tx.job_cells.open_mut()?.insert(1, "c")?;
                    tx.rung_values.open_mut()?.insert(("s", 1, "c"), 0.5)?;
                    tx.job_rungs.open_mut()?.insert((1, 1), 0.5)?;
                    tx.rows.open_mut()?.insert((1, 1, 0), b)?;
                    tx.row_blocks.open_mut()?.insert((1, 1, 0), b)?;
                    tx.logs.open_mut()?.insert((1, 0), b)?;
                    tx.log_seen.open_mut()?.insert((1, 1), 0)?;
                    tx.workers.open_mut()?.insert("w", b)?;
                    tx.events.open_mut()?.insert(1, b)?;
                    tx.tokens.open_mut()?.insert("t", b)?;
                    tx.releases.open_mut()?.insert("r", b)?;
                    tx.telemetry.open_mut()?.insert(("w", 0, 0), b)?;
                    tx.audit.open_mut()?.insert(1, b)?;
                    tx.fair_queue.open_mut()?.insert(("u", "c", 0, 1), ())?;
                    tx.pending.open_mut()?.insert(("u", "c"), 1)?;
                    tx.owner_jobs.open_mut()?.insert(("u", 1), ())?;
                    tx.users.open_mut()?.insert("u", b)?;
                    tx.usage.open_mut()?.insert("u", b)?;
                    tx.usage_hours.open_mut()?.insert(("u", 1), (1, 1))?;
                    tx.user_counts.open_mut()?.insert(("u", "queued"), 1)?;
                    tx.standings
                        .open_mut()?
                        .insert("u", (1.0, 0, 0.0, 0.0, 0, 0, 0))?;
                    Ok(())
                };
                fill(tx).map_err(Error::from)
            })
            .unwrap();
        let original = counts(&store.db);
        for (table, n) in &original {
            assert!(*n > 0, "the test puts nothing in {table}: add it above");
        }
        let dest = dir.path().join("copy.redb");
        store.backup_to(&dest).unwrap();
        let copy = Database::builder().open(&dest).unwrap();
        assert_eq!(original, counts(&copy));
    }
}
