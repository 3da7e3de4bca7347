//! The result store: one redb file holding jobs, the queue indexes, workers, result rows, logs,
//! the activity log, tokens, users and their usage.
//!
//! **Writes** go through one writer thread that commits in groups: every operation queued while
//! the previous commit was being made runs in the next write transaction, and all of them are
//! acknowledged after its single fsync. So each operation's writes are durable before it is
//! answered, and throughput does not pay one fsync per operation.
//!
//! An operation may also ask to be told as soon as its writes are *visible* ([`Tx::on_visible`]),
//! before they are durable: the queue hands a just-submitted job to a waiting worker while the
//! submit's fsync is still under way. A group with such a request is committed in two steps,
//! visible (redb `Durability::None`) then durable (an empty `Immediate` commit, which makes
//! everything before it durable); its operations are still answered only after the second.
//!
//! Invariant: a write operation that returns a [`RequestError`] has written nothing (validate,
//! then write). An operation that returns a storage error aborts its whole group: nothing of the
//! group is committed and every operation in it is answered with the error.
//!
//! **Reads** take a redb read transaction (a consistent snapshot) on the caller's thread.

pub mod adaptive;
pub mod audit;
pub mod events;
pub mod jobs;
pub mod logs;
pub mod maintenance;
pub mod releases;
pub mod repair;
pub mod rows;
pub mod studies;
pub mod telemetry;
pub mod tokens;
pub mod users;
pub mod workers;

use std::borrow::Borrow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use redb::{
    Database, Key, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, Table,
    TableDefinition, Value, WriteTransaction,
};

use crate::error::{Error, StoreError};

/// Schema version of the database file this build writes.
///
/// - 1: first version.
/// - 2: users. Jobs, studies and tokens have an owner (`admin` for those stored before); the
///   per-user queue (`fair_queue`, `pending`), `owner_jobs`, `users`, `usage`, `usage_hours`,
///   `user_counts` and `standings` tables. Opening a version 1 file builds them from its jobs.
pub const SCHEMA_VERSION: u64 = 2;

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "gaia.redb";

/// Counters and the schema version: name → value (`schema_version`, `next_job_id`, ...).
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// How far the lease counter jumps when the database is opened (see `init_schema`): more
/// claims than this between two durable commits cannot happen.
const LEASE_JUMP: u64 = 1 << 32;

/// How many operations at most share one commit.
const MAX_GROUP: usize = 4096;

/// redb's page cache by default (`gaia serve --cache-mib`). It fills as pages are read and
/// written, so an idle server holds little of it; a history read again is served from it
/// (a 1,000,000-row job, ≈ 136 MiB of pages, into Arrow: ≈ 0.3 s of server CPU, most of it
/// decoding, whether its pages come from the cache or from the OS page cache). Bounded so
/// the memory of a busy server stays predictable: under a steady stream of rows it fills.
pub const DEFAULT_CACHE_MIB: u64 = 128;

type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// Told whether the group's commit became visible (true) or the group was aborted (false).
type OnVisible = Box<dyn FnOnce(bool) + Send>;
type RunOp = Box<dyn for<'a> FnOnce(&mut Tx<'a>) -> Finish + Send>;

/// One queued write operation.
struct WriteOp {
    run: RunOp,
    /// Must be on disk before it is answered. A group with no durable operation commits without
    /// an fsync (redb `Durability::None`) and is made durable within [`VOLATILE_WINDOW`]. A crash
    /// inside that window rolls back to the last durable commit, which only undoes claims and
    /// the completions reported with them: those jobs run again (a new attempt), none is lost.
    durable: bool,
    /// Dispatch: a claim, or a submit that may hand its job to a waiting claim. Queued beside
    /// other operations (row batches), it runs first, in a commit of its own made visible
    /// before the others are written, so a worker waits for neither their writes nor their
    /// fsync (see [`writer_loop`]).
    urgent: bool,
}

/// The store. Cheap to clone; all clones share the database and its writer.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    path: PathBuf,
    writer: mpsc::Sender<WriteOp>,
    /// False once the writer thread has ended (it only should when the store is dropped).
    writer_alive: Arc<std::sync::atomic::AtomicBool>,
    /// The writer's group sizes and commit times, for `/metrics`.
    metrics: Arc<WriterMetrics>,
}

/// What the writer measures of itself (exposed on `/metrics`): how many operations share a
/// commit, and how long a commit takes. Recording costs two histogram updates per group.
#[derive(Debug)]
pub struct WriterMetrics {
    /// Operations per write transaction (a group whose dispatch went first is two).
    pub group_size: prometheus_client::metrics::histogram::Histogram,
    /// Seconds from opening a write transaction to its commit returning (fsync included for
    /// durable ones).
    pub commit_seconds: prometheus_client::metrics::histogram::Histogram,
}

impl Default for WriterMetrics {
    fn default() -> Self {
        use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
        WriterMetrics {
            group_size: Histogram::new(exponential_buckets(1.0, 4.0, 7)),
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 4.0, 9)),
        }
    }
}

/// Clears the writer's liveness flag however its thread ends.
struct AliveGuard(Arc<std::sync::atomic::AtomicBool>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The tables of one write transaction, for the operations of one group. Each is opened the
/// first time a step uses it ([`TxTable::open`]): opening all thirty for every group cost more
/// than a dispatch's own writes (≈ 30 µs to open them, ≈ 35 µs more to commit them).
pub struct Tx<'a> {
    pub(crate) meta: TxTable<'a, &'static str, u64>,
    pub(crate) jobs: TxTable<'a, u64, &'static [u8]>,
    pub(crate) queue: TxTable<'a, (i64, u64), ()>,
    pub(crate) counts: TxTable<'a, &'static str, u64>,
    pub(crate) study_jobs: TxTable<'a, (&'static str, u64), ()>,
    pub(crate) studies: TxTable<'a, &'static str, &'static [u8]>,
    pub(crate) study_open: TxTable<'a, &'static str, u64>,
    pub(crate) study_rules: TxTable<'a, &'static str, &'static [u8]>,
    pub(crate) study_cells: TxTable<'a, (&'static str, &'static str), &'static [u8]>,
    pub(crate) job_cells: TxTable<'a, u64, &'static str>,
    pub(crate) rung_values: TxTable<'a, (&'static str, u32, &'static str), f64>,
    pub(crate) job_rungs: TxTable<'a, (u64, u32), f64>,
    pub(crate) rows: TxTable<'a, (u64, u32, u64), &'static [u8]>,
    pub(crate) row_blocks: TxTable<'a, (u64, u32, u64), &'static [u8]>,
    pub(crate) logs: TxTable<'a, (u64, u64), &'static [u8]>,
    pub(crate) log_seen: TxTable<'a, (u64, u32), u64>,
    pub(crate) workers: TxTable<'a, &'static str, &'static [u8]>,
    pub(crate) events: TxTable<'a, u64, &'static [u8]>,
    pub(crate) tokens: TxTable<'a, &'static str, &'static [u8]>,
    pub(crate) releases: TxTable<'a, &'static str, &'static [u8]>,
    pub(crate) telemetry: TxTable<'a, (&'static str, u8, u32), &'static [u8]>,
    pub(crate) audit: TxTable<'a, u64, &'static [u8]>,
    pub(crate) fair_queue: TxTable<'a, (&'static str, &'static str, i64, u64), ()>,
    pub(crate) pending: TxTable<'a, (&'static str, &'static str), u64>,
    pub(crate) owner_jobs: TxTable<'a, (&'static str, u64), ()>,
    pub(crate) users: TxTable<'a, &'static str, &'static [u8]>,
    pub(crate) usage: TxTable<'a, &'static str, &'static [u8]>,
    pub(crate) usage_hours: TxTable<'a, (&'static str, u64), (u64, u64)>,
    pub(crate) user_counts: TxTable<'a, (&'static str, &'static str), u64>,
    pub(crate) standings: TxTable<'a, &'static str, users::StandingTuple>,
    /// Set when an operation hit a storage error: the group is aborted.
    poisoned: Option<String>,
    /// A step of this group panicked: the rest of the group is not run on this transaction.
    panicked: bool,
    /// Run once this group's writes are visible, before they are durable ([`Tx::on_visible`]).
    on_visible: Vec<OnVisible>,
}

/// The tables of one read transaction (a consistent snapshot), each opened when first used
/// ([`ReadTable::open`]).
pub struct Reader {
    pub(crate) jobs: ReadTable<u64, &'static [u8]>,
    pub(crate) queue: ReadTable<(i64, u64), ()>,
    pub(crate) counts: ReadTable<&'static str, u64>,
    pub(crate) study_jobs: ReadTable<(&'static str, u64), ()>,
    pub(crate) studies: ReadTable<&'static str, &'static [u8]>,
    pub(crate) study_open: ReadTable<&'static str, u64>,
    pub(crate) study_rules: ReadTable<&'static str, &'static [u8]>,
    pub(crate) study_cells: ReadTable<(&'static str, &'static str), &'static [u8]>,
    pub(crate) rows: ReadTable<(u64, u32, u64), &'static [u8]>,
    pub(crate) row_blocks: ReadTable<(u64, u32, u64), &'static [u8]>,
    pub(crate) logs: ReadTable<(u64, u64), &'static [u8]>,
    pub(crate) workers: ReadTable<&'static str, &'static [u8]>,
    pub(crate) events: ReadTable<u64, &'static [u8]>,
    pub(crate) tokens: ReadTable<&'static str, &'static [u8]>,
    pub(crate) releases: ReadTable<&'static str, &'static [u8]>,
    pub(crate) telemetry: ReadTable<(&'static str, u8, u32), &'static [u8]>,
    pub(crate) audit: ReadTable<u64, &'static [u8]>,
    pub(crate) owner_jobs: ReadTable<(&'static str, u64), ()>,
    pub(crate) users: ReadTable<&'static str, &'static [u8]>,
    pub(crate) usage: ReadTable<&'static str, &'static [u8]>,
    pub(crate) usage_hours: ReadTable<(&'static str, u64), (u64, u64)>,
    pub(crate) user_counts: ReadTable<(&'static str, &'static str), u64>,
    pub(crate) standings: ReadTable<&'static str, users::StandingTuple>,
}

/// One table of a read transaction, opened when first used.
pub(crate) struct ReadTable<K: Key + 'static, V: Value + 'static> {
    txn: Arc<ReadTransaction>,
    def: TableDefinition<'static, K, V>,
    table: std::cell::OnceCell<ReadOnlyTable<K, V>>,
}

impl<K: Key + 'static, V: Value + 'static> ReadTable<K, V> {
    fn new(txn: &Arc<ReadTransaction>, def: TableDefinition<'static, K, V>) -> Self {
        ReadTable {
            txn: txn.clone(),
            def,
            table: std::cell::OnceCell::new(),
        }
    }

    /// The open table (every table is in the file: opening the store creates them all).
    pub(crate) fn open(&self) -> Result<&ReadOnlyTable<K, V>, StoreError> {
        if let Some(t) = self.table.get() {
            return Ok(t);
        }
        let t = self.txn.open_table(self.def)?;
        Ok(self.table.get_or_init(|| t))
    }
}

impl<K: Key + 'static> ReadTable<K, u64> {
    /// The counter stored at `key`, 0 where there is none.
    pub(crate) fn count<'k>(&self, key: impl Borrow<K::SelfType<'k>>) -> Result<u64, StoreError> {
        Ok(self.open()?.get(key)?.map(|v| v.value()).unwrap_or(0))
    }
}

/// One table of a write transaction, opened when first used and kept open for the rest of the
/// group.
pub(crate) struct TxTable<'a, K: Key + 'static, V: Value + 'static> {
    txn: &'a WriteTransaction,
    def: TableDefinition<'static, K, V>,
    table: std::cell::OnceCell<Table<'a, K, V>>,
}

impl<'a, K: Key + 'static, V: Value + 'static> TxTable<'a, K, V> {
    fn new(txn: &'a WriteTransaction, def: TableDefinition<'static, K, V>) -> Self {
        TxTable {
            txn,
            def,
            table: std::cell::OnceCell::new(),
        }
    }

    /// The open table, to read (creating it in the file if it is not there yet).
    pub(crate) fn open(&self) -> Result<&Table<'a, K, V>, StoreError> {
        if let Some(t) = self.table.get() {
            return Ok(t);
        }
        let t = self.txn.open_table(self.def)?;
        Ok(self.table.get_or_init(|| t))
    }

    /// The open table, to write.
    pub(crate) fn open_mut(&mut self) -> Result<&mut Table<'a, K, V>, StoreError> {
        self.open()?;
        Ok(self.table.get_mut().expect("opened just above"))
    }
}

impl<K: Key + 'static> TxTable<'_, K, u64> {
    /// The counter stored at `key`, 0 where there is none.
    pub(crate) fn count<'k>(&self, key: impl Borrow<K::SelfType<'k>>) -> Result<u64, StoreError> {
        Ok(self.open()?.get(key)?.map(|v| v.value()).unwrap_or(0))
    }
}

/// `Tx::new`, `Tx::create_all` and `Tx::each_table` (the backup's list) from one list of the
/// store's tables, so a table added to one cannot be missing from the others.
macro_rules! tx_tables {
    ($($field:ident: $def:expr),* $(,)?) => {
        /// Every table of the store, in this list's order ([`maintenance::each_table`]).
        pub(crate) fn each_table(
            v: &mut impl maintenance::TableVisitor,
        ) -> Result<(), StoreError> {
            $(v.table($def)?;)*
            Ok(())
        }

        fn new(txn: &'a WriteTransaction) -> Tx<'a> {
            Tx {
                $($field: TxTable::new(txn, $def),)*
                poisoned: None,
                panicked: false,
                on_visible: Vec::new(),
            }
        }

        /// Opens every table, creating those not in the file yet, so that read transactions
        /// can open them all.
        fn create_all(&self) -> Result<(), StoreError> {
            $(self.$field.open()?;)*
            Ok(())
        }
    };
}

impl<'a> Tx<'a> {
    tx_tables! {
        meta: META,
        jobs: jobs::JOBS,
        queue: jobs::QUEUE,
        counts: jobs::COUNTS,
        study_jobs: jobs::STUDY_JOBS,
        studies: studies::STUDIES,
        study_open: jobs::STUDY_OPEN,
        study_rules: adaptive::STUDY_RULES,
        study_cells: adaptive::STUDY_CELLS,
        job_cells: adaptive::JOB_CELLS,
        rung_values: adaptive::RUNG_VALUES,
        job_rungs: adaptive::JOB_RUNGS,
        rows: rows::ROWS,
        row_blocks: rows::ROW_BLOCKS,
        logs: logs::LOGS,
        log_seen: logs::LOG_SEEN,
        workers: workers::WORKERS,
        events: events::EVENTS,
        tokens: tokens::TOKENS,
        releases: releases::RELEASES,
        telemetry: telemetry::TELEMETRY,
        audit: audit::AUDIT,
        fair_queue: jobs::FAIR_QUEUE,
        pending: jobs::PENDING,
        owner_jobs: jobs::OWNER_JOBS,
        users: users::USERS,
        usage: users::USAGE,
        usage_hours: users::USAGE_HOURS,
        user_counts: users::USER_COUNTS,
        standings: users::STANDINGS,
    }

    /// Runs `f` on the writer thread as soon as this transaction's writes are committed and
    /// visible to readers — for a durable group, *before* its fsync, while the callers of the
    /// group still wait for it — with `true`; or with `false` if the group is aborted and
    /// nothing of it was committed.
    ///
    /// What `f` releases may be lost in a crash even though it was seen: use it only for what
    /// a crash may undo without harm (a claim: the job runs again as a new attempt, and a
    /// worker holding a lease from before the crash is refused, see `init_schema`). `f` must
    /// be quick and must not write to the store (it runs on the writer thread).
    pub fn on_visible(&mut self, f: impl FnOnce(bool) + Send + 'static) {
        self.on_visible.push(Box::new(f));
    }

    /// Takes the next value of a counter in `meta`, starting at 1.
    pub(crate) fn next_id(&mut self, name: &'static str) -> Result<u64, StoreError> {
        let next = self.meta.open()?.get(name)?.map(|v| v.value()).unwrap_or(1);
        self.meta.open_mut()?.insert(name, next + 1)?;
        Ok(next)
    }
}

impl Reader {
    fn new(txn: ReadTransaction) -> Reader {
        let txn = Arc::new(txn);
        Reader {
            jobs: ReadTable::new(&txn, jobs::JOBS),
            queue: ReadTable::new(&txn, jobs::QUEUE),
            counts: ReadTable::new(&txn, jobs::COUNTS),
            study_jobs: ReadTable::new(&txn, jobs::STUDY_JOBS),
            studies: ReadTable::new(&txn, studies::STUDIES),
            study_open: ReadTable::new(&txn, jobs::STUDY_OPEN),
            study_rules: ReadTable::new(&txn, adaptive::STUDY_RULES),
            study_cells: ReadTable::new(&txn, adaptive::STUDY_CELLS),
            rows: ReadTable::new(&txn, rows::ROWS),
            row_blocks: ReadTable::new(&txn, rows::ROW_BLOCKS),
            logs: ReadTable::new(&txn, logs::LOGS),
            workers: ReadTable::new(&txn, workers::WORKERS),
            events: ReadTable::new(&txn, events::EVENTS),
            tokens: ReadTable::new(&txn, tokens::TOKENS),
            releases: ReadTable::new(&txn, releases::RELEASES),
            telemetry: ReadTable::new(&txn, telemetry::TELEMETRY),
            audit: ReadTable::new(&txn, audit::AUDIT),
            owner_jobs: ReadTable::new(&txn, jobs::OWNER_JOBS),
            users: ReadTable::new(&txn, users::USERS),
            usage: ReadTable::new(&txn, users::USAGE),
            usage_hours: ReadTable::new(&txn, users::USAGE_HOURS),
            user_counts: ReadTable::new(&txn, users::USER_COUNTS),
            standings: ReadTable::new(&txn, users::STANDINGS),
        }
    }
}

/// How [`Store::open_with`] treats what it finds.
#[derive(Clone, Copy, Debug)]
pub struct OpenOptions {
    /// Take a 0-byte `gaia.redb` for a new database. Off by default: an existing empty file is
    /// far more often a truncated copy or a failed restore than a wish to start over, and
    /// opening it would look like every job and row was lost (`gaia serve --allow-empty-db`).
    pub allow_empty: bool,
    /// The page cache's size in MiB ([`DEFAULT_CACHE_MIB`]; `gaia serve --cache-mib`).
    pub cache_mib: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            allow_empty: false,
            cache_mib: DEFAULT_CACHE_MIB,
        }
    }
}

impl Store {
    /// Opens (or creates) the database in `data_dir`, checking and migrating its schema version.
    /// A 0-byte database file is refused ([`OpenOptions::allow_empty`]).
    pub fn open(data_dir: &Path) -> Result<Store, Error> {
        Self::open_with(data_dir, OpenOptions::default())
    }

    /// [`Store::open`] with options.
    pub fn open_with(data_dir: &Path, options: OpenOptions) -> Result<Store, Error> {
        std::fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
        let path = data_dir.join(DB_FILE);
        if !options.allow_empty
            && std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == 0)
        {
            return Err(StoreError::Empty { path }.into());
        }
        let db = Database::builder()
            .set_cache_size(
                usize::try_from(options.cache_mib.max(1).saturating_mul(1 << 20))
                    .unwrap_or(usize::MAX),
            )
            .create(&path)
            .map_err(|cause| StoreError::Open {
                path: path.clone(),
                cause,
            })?;
        Self::init_schema(&db, &path)?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel::<WriteOp>();
        let writer_db = db.clone();
        let writer_alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let guard = AliveGuard(writer_alive.clone());
        let metrics = Arc::new(WriterMetrics::default());
        let writer_metrics = metrics.clone();
        std::thread::Builder::new()
            .name("gaia-store-writer".into())
            .spawn(move || {
                let _guard = guard;
                writer_loop(&writer_db, rx, &writer_metrics)
            })
            .map_err(|e| Error::io(&path, e))?;
        Ok(Store {
            db,
            path,
            writer: tx,
            writer_alive,
            metrics,
        })
    }

    fn init_schema(db: &Database, path: &Path) -> Result<(), StoreError> {
        let txn = db.begin_write()?;
        let migrate_from = {
            let mut meta = txn.open_table(META)?;
            let found = meta.get("schema_version")?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::NewerSchema {
                        path: path.to_path_buf(),
                        found: v,
                        supported: SCHEMA_VERSION,
                    });
                }
                // Migrations from older versions run below, one step per version.
                Some(v) if v < SCHEMA_VERSION => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
                Some(_) => {}
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
            }
            // Claims commit without an fsync (`write_claim`), so a crash can roll back the
            // newest ones and the lease counter with them. Jump the counter at every open: a
            // lease handed out before a crash is never handed out again, and the worker still
            // holding it is refused as stale instead of writing into another worker's attempt.
            let next = meta.get("next_lease_id")?.map(|v| v.value()).unwrap_or(1);
            meta.insert("next_lease_id", next.saturating_add(LEASE_JUMP))?;
            found
        };
        // Create every table so that read transactions can open them; migrate in the same
        // transaction, so a file is either whole at the new version or untouched.
        let mut tx = Tx::new(&txn);
        tx.create_all()?;
        if migrate_from == Some(1) {
            tx.migrate_to_v2()?;
        }
        // Files written before queue depths were counted per kind and requirement class get
        // their counts once, from the queue index.
        if tx.meta.open()?.get("queue_class_counts")?.is_none() {
            tx.rebuild_queue_classes()?;
            tx.meta.open_mut()?.insert("queue_class_counts", 1)?;
        }
        drop(tx);
        txn.commit()?;
        Ok(())
    }

    /// Whether writes can still be made (the writer thread runs). `/healthz` reports it.
    pub fn writable(&self) -> bool {
        self.writer_alive.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The writer's own measurements (group sizes, commit times).
    pub fn writer_metrics(&self) -> &Arc<WriterMetrics> {
        &self.metrics
    }

    /// The database file's size in bytes (0 if it cannot be read).
    pub fn file_size(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    /// Makes `half_life` the one recent usage decays with (see `users::set_usage_half_life`).
    /// Call it before serving; it writes directly, outside the group-committing writer.
    pub fn set_usage_half_life(&self, half_life: Duration) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut tx = Tx::new(&txn);
            tx.set_usage_half_life(half_life)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// A consistent snapshot to read from.
    pub fn read(&self) -> Result<Reader, StoreError> {
        Ok(Reader::new(self.db.begin_read()?))
    }

    /// Runs `op` in the next group commit and answers after the commit is durable.
    pub async fn write<R, F>(&self, op: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&mut Tx<'a>) -> Result<R, Error> + Send + 'static,
    {
        self.queued(op, true, false).await
    }

    /// Like [`Store::write`], for changes that may be lost in a crash without harm (telemetry,
    /// a gc batch): answered after the commit is visible, without waiting for an fsync of its
    /// own.
    pub async fn write_volatile<R, F>(&self, op: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&mut Tx<'a>) -> Result<R, Error> + Send + 'static,
    {
        self.queued(op, false, false).await
    }

    /// A claim (with the report that rides on it): volatile as [`Store::write_volatile`], and
    /// run ahead of the writes queued beside it, as [`Store::write_dispatch`].
    pub async fn write_claim<R, F>(&self, op: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&mut Tx<'a>) -> Result<R, Error> + Send + 'static,
    {
        self.queued(op, false, true).await
    }

    /// Like [`Store::write`] (answered once durable), for a write that dispatches work: it runs
    /// ahead of the other writes queued beside it, and its [`Tx::on_visible`] hooks fire as
    /// soon as its own commit is visible (a submit handing its job to a waiting claim).
    pub async fn write_dispatch<R, F>(&self, op: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&mut Tx<'a>) -> Result<R, Error> + Send + 'static,
    {
        self.queued(op, true, true).await
    }

    /// Like [`Store::write`], for callers outside an async runtime.
    pub fn write_blocking<R, F>(&self, op: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&mut Tx<'a>) -> Result<R, Error> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit_op(op, tx, true, false)?;
        rx.blocking_recv().map_err(|_| StoreError::WriterGone)?
    }

    /// Queues `op` for the writer and waits for its answer.
    async fn queued<R, F>(&self, op: F, durable: bool, urgent: bool) -> Result<R, Error>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&mut Tx<'a>) -> Result<R, Error> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit_op(op, tx, durable, urgent)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    fn submit_op<R, F>(
        &self,
        op: F,
        reply: tokio::sync::oneshot::Sender<Result<R, Error>>,
        durable: bool,
        urgent: bool,
    ) -> Result<(), Error>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&mut Tx<'a>) -> Result<R, Error> + Send + 'static,
    {
        let run: RunOp = Box::new(move |tx: &mut Tx<'_>| {
            // A panicking step (a bug) must not take the writer thread, and with it every later
            // write, down: it becomes an error that rolls back its group.
            let result = if tx.panicked {
                Err(Error::Store(StoreError::Panicked(
                    "not run: another write of its group failed; try again".into(),
                )))
            } else {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op(tx))).unwrap_or_else(
                    |panic| {
                        tx.panicked = true;
                        let msg = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "panic".into());
                        Err(Error::Store(StoreError::Panicked(msg)))
                    },
                )
            };
            // A record that does not decode was only read: nothing to undo.
            if let Err(Error::Store(e)) = &result
                && !matches!(e, StoreError::Corrupt { .. })
            {
                tx.poisoned.get_or_insert_with(|| e.to_string());
            }
            Box::new(move |commit: Result<(), StoreError>| {
                let _ = reply.send(commit.map_err(Error::from).and(result));
            }) as Finish
        });
        self.writer
            .send(WriteOp {
                run,
                durable,
                urgent,
            })
            .map_err(|_| Error::Store(StoreError::WriterGone))
    }
}

/// Longest a volatile commit stays volatile: after this the writer makes it durable (with the
/// next group, or with an empty commit if nothing else comes).
const VOLATILE_WINDOW: Duration = Duration::from_millis(100);

fn writer_loop(db: &Database, rx: mpsc::Receiver<WriteOp>, metrics: &WriterMetrics) {
    // When the last volatile commit was made, if it is not yet covered by a durable one.
    let mut volatile_since: Option<Instant> = None;
    loop {
        let first = match volatile_since {
            None => match rx.recv() {
                Ok(op) => op,
                Err(_) => return,
            },
            Some(since) => match rx.recv_timeout(VOLATILE_WINDOW.saturating_sub(since.elapsed())) {
                Ok(op) => op,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // Nothing else came: make what was committed durable.
                    if make_durable(db).is_ok() {
                        volatile_since = None;
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = make_durable(db);
                    return;
                }
            },
        };
        let mut ops = vec![first];
        while ops.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let expired = volatile_since.is_some_and(|t| t.elapsed() >= VOLATILE_WINDOW);
        // Dispatch first: claims and submits queued beside other writes (the rows of hundreds
        // of streaming jobs) are committed on their own and made visible before those are
        // written, so a waiting worker gets its job after one small commit instead of after
        // the whole group and its fsync. Operations of one group were queued concurrently
        // (each caller waits for its answer before its next write), so running some of them
        // first is an order they could have arrived in.
        let (urgent, rest): (Vec<WriteOp>, Vec<WriteOp>) =
            if ops.iter().any(|o| o.urgent) && ops.iter().any(|o| !o.urgent) {
                ops.into_iter().partition(|o| o.urgent)
            } else {
                (Vec::new(), ops)
            };
        // The durable operations of the dispatch commit, answered once the next durable
        // commit has made them durable.
        let mut deferred = Vec::new();
        if !urgent.is_empty() {
            let group = commit_group(db, urgent, false, metrics);
            if group.committed {
                volatile_since.get_or_insert_with(Instant::now);
            }
            for (durable, finish) in group.finishers {
                if durable && group.outcome.is_ok() {
                    deferred.push(finish);
                } else {
                    finish(answer(&group.outcome));
                }
            }
        }
        let durable = !deferred.is_empty() || rest.iter().any(|o| o.durable) || expired;
        let group = commit_group(db, rest, durable, metrics);
        if group.outcome.is_ok() && durable {
            volatile_since = None;
        } else if group.committed {
            // Volatile, or visible but its durable step failed: made durable later.
            volatile_since.get_or_insert_with(Instant::now);
        }
        for (_, finish) in group.finishers {
            finish(answer(&group.outcome));
        }
        if !deferred.is_empty() {
            // The rest's durable commit covered the dispatch commit before it; if the rest
            // failed, an empty durable commit does.
            let made = if group.outcome.is_ok() && durable {
                Ok(())
            } else {
                let made = make_durable(db);
                if made.is_ok() {
                    volatile_since = None;
                }
                made
            };
            for finish in deferred {
                finish(answer(&made));
            }
        }
    }
}

/// An empty durable commit: everything committed before it is on disk after it.
fn make_durable(db: &Database) -> Result<(), StoreError> {
    db.begin_write()?.commit()?;
    Ok(())
}

/// A group's outcome as each of its operations is told it (without a second "database:"
/// prefix).
fn answer(outcome: &Result<(), StoreError>) -> Result<(), StoreError> {
    outcome.as_ref().map(|_| ()).map_err(|e| match e {
        StoreError::Redb(m) => StoreError::Redb(m.clone()),
        other => StoreError::Redb(other.to_string()),
    })
}

/// What committing one group came to: its outcome, whether it became visible, and each
/// operation's answer (with whether the operation asked for durability), not yet given.
struct Group {
    outcome: Result<(), StoreError>,
    committed: bool,
    finishers: Vec<(bool, Finish)>,
}

/// Runs `ops` in one write transaction and commits it, durably or not; runs the group's
/// [`Tx::on_visible`] hooks as soon as it is visible (a durable group with hooks commits
/// visible first, then makes that durable with an empty durable commit).
fn commit_group(
    db: &Database,
    mut ops: Vec<WriteOp>,
    durable: bool,
    metrics: &WriterMetrics,
) -> Group {
    let mut finishers = Vec::with_capacity(ops.len());
    metrics.group_size.observe(ops.len() as f64);
    let began = Instant::now();
    let mut on_visible = Vec::new();
    let mut committed = false;
    let outcome = (|| -> Result<(), StoreError> {
        let mut txn = db.begin_write()?;
        let poisoned = {
            let mut tx = Tx::new(&txn);
            for op in ops.drain(..) {
                let wants_durable = op.durable;
                finishers.push((wants_durable, (op.run)(&mut tx)));
            }
            on_visible = std::mem::take(&mut tx.on_visible);
            tx.poisoned.take()
        };
        if let Some(reason) = poisoned {
            txn.abort()?;
            return Err(StoreError::Redb(format!(
                "write group aborted after a storage error: {reason}"
            )));
        }
        // Visible first when someone waits for visibility and the group is durable: the
        // fsync then follows as an empty durable commit (which makes this one durable too).
        let split = durable && !on_visible.is_empty();
        if !durable || split {
            txn.set_durability(redb::Durability::None)
                .map_err(|e| StoreError::Redb(e.to_string()))?;
        }
        txn.commit()?;
        committed = true;
        for f in on_visible.drain(..) {
            run_hook(f, true);
        }
        if split {
            make_durable(db)?;
        }
        Ok(())
    })();
    metrics
        .commit_seconds
        .observe(began.elapsed().as_secs_f64());
    // Aborted (or failed before its commit): nothing became visible.
    for f in on_visible {
        run_hook(f, false);
    }
    // Operations that never ran (opening the transaction failed) are dropped with their
    // reply channel, which their callers see as an error.
    Group {
        outcome,
        committed,
        finishers,
    }
}

/// Runs an [`Tx::on_visible`] hook; a panicking one (a bug) must not take the writer down.
fn run_hook(f: OnVisible, visible: bool) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(visible)));
}

/// Encodes a value stored as JSON.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("stored types serialize to JSON")
}

/// Decodes a value stored as JSON.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_write_is_rolled_back_and_the_writer_carries_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = store
            .write_blocking(|tx| -> Result<(), Error> {
                tx.meta
                    .open_mut()?
                    .insert("half_written", 1)
                    .map_err(StoreError::from)?;
                panic!("a bug in a write step");
            })
            .unwrap_err();
        assert!(err.to_string().contains("a bug in a write step"), "{err}");
        assert!(store.writable());
        store
            .write_blocking(|tx| {
                tx.meta
                    .open_mut()?
                    .insert("after", 2)
                    .map_err(StoreError::from)?;
                Ok(())
            })
            .unwrap();
        let txn = store.db.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        assert!(meta.get("half_written").unwrap().is_none(), "rolled back");
        assert_eq!(meta.get("after").unwrap().unwrap().value(), 2);
    }

    #[test]
    fn the_rest_of_a_group_with_a_panicking_step_is_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // A slow step holds the writer, so the next two are queued and run as one group.
        let slow = {
            let store = store.clone();
            std::thread::spawn(move || {
                store.write_blocking(|_| {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    Ok(())
                })
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        let bad = {
            let store = store.clone();
            std::thread::spawn(move || {
                store.write_blocking(|_| -> Result<(), Error> { panic!("bug") })
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let after = {
            let (store, ran) = (store.clone(), ran.clone());
            std::thread::spawn(move || {
                store.write_blocking(move |tx| {
                    ran.store(true, std::sync::atomic::Ordering::SeqCst);
                    tx.meta
                        .open_mut()?
                        .insert("b", 1)
                        .map_err(StoreError::from)?;
                    Ok(())
                })
            })
        };
        slow.join().unwrap().unwrap();
        assert!(bad.join().unwrap().is_err());
        // It is answered with the group's failure, which names the bug.
        let e = after.join().unwrap().unwrap_err().to_string();
        assert!(
            e.contains("write group aborted") && e.contains("bug"),
            "{e}"
        );
        assert!(!e.contains("database: database:"), "{e}");
        assert!(
            !ran.load(std::sync::atomic::Ordering::SeqCst),
            "it ran on the broken transaction"
        );
        // The next group is whole again.
        store
            .write_blocking(|tx| {
                tx.meta
                    .open_mut()?
                    .insert("c", 1)
                    .map_err(StoreError::from)?;
                Ok(())
            })
            .unwrap();
    }

    /// Queues `op` as [`Store::write_blocking`] does, urgent or not, without waiting.
    fn queue_op(
        store: &Store,
        durable: bool,
        urgent: bool,
        op: impl for<'a> FnOnce(&mut Tx<'a>) -> Result<(), Error> + Send + 'static,
    ) -> tokio::sync::oneshot::Receiver<Result<(), Error>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        store.submit_op(op, tx, durable, urgent).unwrap();
        rx
    }

    /// Run as a child process by the test below: queues row-like writes (one of them failing)
    /// and two dispatch writes behind a slow one, prints what it saw, and ends at once (as a
    /// crash would) when the durable dispatch write has been answered.
    fn dispatch_then_die(dir: &Path) -> ! {
        let store = Store::open(dir).unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        // A slow write holds the writer until the next ones have queued up as one group. They
        // are queued once it runs (on a loaded machine the writer may take a while to pick it
        // up, and a group holding it and the failing write below would fail it too), and it
        // ends once they all are (however long the machine keeps this thread from queueing).
        let (running_tx, running_rx) = std::sync::mpsc::channel();
        let (queued_tx, queued_rx) = std::sync::mpsc::channel::<()>();
        let slow = queue_op(&store, true, false, move |_| {
            running_tx.send(()).unwrap();
            let _ = queued_rx.recv_timeout(Duration::from_secs(30));
            Ok(())
        });
        running_rx.recv().unwrap();
        let note = |name: &'static str| {
            let order = order.clone();
            move |tx: &mut Tx<'_>| -> Result<(), Error> {
                order.lock().unwrap().push(name);
                tx.meta
                    .open_mut()?
                    .insert(name, 1)
                    .map_err(StoreError::from)?;
                Ok(())
            }
        };
        let rows = queue_op(&store, true, false, note("rows"));
        // A failing write beside them aborts the non-dispatch part only.
        let broken = queue_op(&store, true, false, |_| {
            Err(Error::Store(StoreError::Redb("disk on fire".into())))
        });
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let submit = {
            let note = note("submit");
            let order = order.clone();
            queue_op(&store, true, true, move |tx| {
                note(tx)?;
                tx.on_visible(move |v| seen_tx.send((v, order.lock().unwrap().clone())).unwrap());
                Ok(())
            })
        };
        let claim = queue_op(&store, false, true, note("claim"));
        queued_tx.send(()).unwrap();
        slow.blocking_recv().unwrap().unwrap();
        claim.blocking_recv().unwrap().unwrap();
        submit.blocking_recv().unwrap().unwrap();
        // Visible before the rows queued ahead of it were even written.
        println!("HOOK {:?}", seen_rx.recv().unwrap());
        println!("ROWS {}", rows.blocking_recv().unwrap().is_err());
        println!("BROKEN {}", broken.blocking_recv().unwrap().is_err());
        println!("ORDER {:?}", order.lock().unwrap());
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: ends this (child) process at once, as a crash would.
        unsafe { libc::_exit(0) }
    }

    #[test]
    fn dispatch_runs_ahead_of_the_writes_queued_beside_it_and_is_durable_when_answered() {
        if let Some(dir) = std::env::var_os("GAIA_STORE_DISPATCH_DIR") {
            dispatch_then_die(Path::new(&dir));
        }
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "store::tests::dispatch_runs_ahead_of_the_writes_queued_beside_it_and_is_durable_when_answered",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("GAIA_STORE_DISPATCH_DIR", dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        for line in [
            r#"HOOK (true, ["submit", "claim"])"#,
            "ROWS true",
            "BROKEN true",
            r#"ORDER ["submit", "claim", "rows"]"#,
        ] {
            assert!(
                stdout.contains(line),
                "{line} missing:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The dispatch commit was durable when answered, although the group queued beside it
        // failed; nothing of that group is there.
        let store = Store::open(dir.path()).unwrap();
        let txn = store.db.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        assert!(meta.get("submit").unwrap().is_some());
        assert!(meta.get("claim").unwrap().is_some());
        assert!(meta.get("rows").unwrap().is_none());
    }

    #[test]
    fn a_hook_sees_its_write_before_the_write_is_answered_and_hears_of_an_abort() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = store.clone();
        store
            .write_blocking(move |t| {
                t.meta
                    .open_mut()?
                    .insert("seen", 7)
                    .map_err(StoreError::from)?;
                t.on_visible(move |visible| {
                    // Runs on the writer thread, before the fsync and before the answer.
                    let txn = reader.db.begin_read().unwrap();
                    let meta = txn.open_table(META).unwrap();
                    let v = meta.get("seen").unwrap().map(|v| v.value());
                    tx.send((visible, v)).unwrap();
                });
                Ok(())
            })
            .unwrap();
        assert_eq!(
            rx.try_recv().unwrap(),
            (true, Some(7)),
            "run before the answer"
        );

        let (tx, rx) = std::sync::mpsc::channel();
        let err = store
            .write_blocking(move |t| -> Result<(), Error> {
                t.on_visible(move |visible| tx.send(visible).unwrap());
                Err(Error::Store(StoreError::Redb("disk on fire".into())))
            })
            .unwrap_err();
        assert!(err.to_string().contains("disk on fire"), "{err}");
        assert!(!rx.try_recv().unwrap(), "an aborted group is not visible");
    }

    /// Run as a child process by the test below: writes, and dies (`_exit`, no destructor, no
    /// flush) inside an `on_visible` hook, that is after the write was visible and before it
    /// was durable or answered.
    fn die_between_visible_and_durable(dir: &Path) -> ! {
        let store = Store::open(dir).unwrap();
        store
            .write_blocking(|t| {
                t.meta
                    .open_mut()?
                    .insert("acknowledged", 1)
                    .map_err(StoreError::from)?;
                Ok(())
            })
            .unwrap();
        println!("ACKNOWLEDGED");
        let _ = store.write_blocking(|t| {
            t.meta
                .open_mut()?
                .insert("visible_only", 1)
                .map_err(StoreError::from)?;
            t.on_visible(|_| {
                use std::io::Write;
                println!("VISIBLE");
                let _ = std::io::stdout().flush();
                // SAFETY: ends this (child) process at once, as a crash would.
                unsafe { libc::_exit(0) }
            });
            Ok(())
        });
        unreachable!("the hook ends the process");
    }

    #[test]
    fn a_crash_after_a_hook_ran_keeps_what_was_acknowledged_and_loses_what_was_not() {
        if let Some(dir) = std::env::var_os("GAIA_STORE_CRASH_DIR") {
            die_between_visible_and_durable(Path::new(&dir));
        }
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "store::tests::a_crash_after_a_hook_ran_keeps_what_was_acknowledged_and_loses_what_was_not",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("GAIA_STORE_CRASH_DIR", dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("ACKNOWLEDGED") && stdout.contains("VISIBLE"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let store = Store::open(dir.path()).unwrap();
        let txn = store.db.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        assert_eq!(meta.get("acknowledged").unwrap().unwrap().value(), 1);
        assert!(
            meta.get("visible_only").unwrap().is_none(),
            "a write that was never durable survived the crash"
        );
    }

    #[test]
    fn newer_schema_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .write_blocking(|tx| {
                    tx.meta
                        .open_mut()?
                        .insert("schema_version", SCHEMA_VERSION + 1)
                        .map_err(StoreError::from)?;
                    Ok(())
                })
                .unwrap();
        }
        // The writer thread holds the database until its channel closes; wait for it.
        let err = loop {
            match Store::open(dir.path()) {
                Err(Error::Store(StoreError::Open { .. })) => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => break e,
                Ok(_) => panic!("opened a newer schema"),
            }
        };
        let msg = err.to_string();
        assert!(msg.contains("newer GAIA"), "{msg}");
        assert!(msg.contains("upgrade"), "{msg}");
    }
}
