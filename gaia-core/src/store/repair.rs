//! `gaia db check` and `gaia db repair`: what is readable in a damaged database, and a new
//! database made of it.
//!
//! redb keeps a B-tree per table. A damaged page makes every read that reaches it fail
//! (`Corrupted`), and a plain scan stops at the first one. Both commands read every table with
//! [`salvage`], which skips a damaged subtree by probing forward in the table's key space:
//! after a failure it tries start keys further and further on (doubling the step) until a
//! range read starts cleanly, then bisects back to the first start that reads, so only the keys
//! that lived in the damaged pages are lost. Every skipped range is reported.
//!
//! `repair` never deletes or rewrites the damaged file: it moves it aside
//! (`gaia.redb.damaged-<unix time>`) and writes a new `gaia.redb` in its place. Primary records
//! (jobs, rows, logs, studies, workers, events, tokens, releases, counters, users and their
//! usage history) are copied after they decode; the derived tables (the queue index, the
//! per-state counts, the study index, the row blocks, each owner's indexes, counts and standing)
//! are rebuilt from them, never copied, so they agree with what survived.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
};

use super::{
    DB_FILE, META, Store, audit, events, jobs, logs, releases, rows, studies, tokens, users,
    workers,
};
use crate::error::{Error, StoreError};
use crate::model::{
    AuditEntry, Event, Job, LogLine, Row, StudyRecord, TokenInfo, UserInfo, Worker,
};

/// A stretch of a table that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Loss {
    /// The last key read before the damage (None: it starts at the table's first key).
    pub after: Option<String>,
    /// The first key from which the table reads again (None: nothing after it was readable).
    pub resumes_at: Option<String>,
    /// What redb said.
    pub error: String,
}

/// What reading one table found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableReport {
    /// The redb table's name.
    pub name: &'static str,
    /// Rebuilt from the primary tables by `repair` (never copied).
    pub derived: bool,
    /// Entries read (whether they decoded or not).
    pub entries: u64,
    /// Entries read whose value does not decode (key, why); at most [`MAX_LISTED`] listed.
    pub undecodable: Vec<(String, String)>,
    /// How many entries did not decode in all.
    pub undecodable_count: u64,
    /// Key ranges that could not be read.
    pub lost: Vec<Loss>,
    /// The table could not be opened at all (its root is damaged).
    pub unopenable: Option<String>,
}

/// Entries listed by name per table; the count says how many there were.
pub const MAX_LISTED: usize = 20;

impl TableReport {
    fn new(name: &'static str, derived: bool) -> TableReport {
        TableReport {
            name,
            derived,
            ..TableReport::default()
        }
    }

    /// Read whole, every entry decoded.
    pub fn is_clean(&self) -> bool {
        self.undecodable_count == 0 && self.lost.is_empty() && self.unopenable.is_none()
    }

    fn undecodable(&mut self, key: &dyn Debug, why: String) {
        self.undecodable_count += 1;
        if self.undecodable.len() < MAX_LISTED {
            self.undecodable.push((format!("{key:?}"), why));
        }
    }
}

/// What `gaia db check` found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckReport {
    /// The file checked.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// redb's own check of every page's checksum (`Database::check_integrity`, run on a copy so
    /// the file itself is never changed): None when it passed, else what it said.
    pub integrity: Option<String>,
    /// The file was not closed cleanly: redb rebuilt its allocator state in memory to read it.
    pub unclean: bool,
    /// One report per table, primary tables first.
    pub tables: Vec<TableReport>,
}

impl CheckReport {
    /// Nothing wrong anywhere.
    pub fn is_clean(&self) -> bool {
        self.integrity.is_none() && self.tables.iter().all(TableReport::is_clean)
    }
}

/// What `gaia db repair` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RepairReport {
    /// Where the damaged file now is (kept, never deleted).
    pub moved_to: PathBuf,
    /// The new database.
    pub path: PathBuf,
    /// What reading the damaged file found (per table: entries read, lost ranges).
    pub read: Vec<TableReport>,
    /// Entries written to the new database, per table (derived tables as rebuilt).
    pub written: Vec<(&'static str, u64)>,
}

// ---------------------------------------------------------------------------------------------
// Key spaces.

/// A point in a table's key space: keys packed into one unsigned 192-bit number in key order
/// (`hi` above `lo`), so the forward search can step and bisect over any integer key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Point {
    hi: u64,
    lo: u128,
}

impl Point {
    const ZERO: Point = Point { hi: 0, lo: 0 };

    fn from_bits(bits: u32) -> Point {
        // The largest point of a `bits`-wide space.
        if bits >= 128 {
            Point {
                hi: if bits - 128 >= 64 {
                    u64::MAX
                } else {
                    (1u64 << (bits - 128)) - 1
                },
                lo: u128::MAX,
            }
        } else {
            Point {
                hi: 0,
                lo: (1u128 << bits) - 1,
            }
        }
    }

    fn pow2(bit: u32) -> Point {
        if bit < 128 {
            Point {
                hi: 0,
                lo: 1 << bit,
            }
        } else {
            Point {
                hi: 1 << (bit - 128),
                lo: 0,
            }
        }
    }

    fn checked_add(self, o: Point) -> Option<Point> {
        let (lo, carry) = self.lo.overflowing_add(o.lo);
        let hi = self.hi.checked_add(o.hi)?.checked_add(carry as u64)?;
        Some(Point { hi, lo })
    }

    /// `self - o`, for `self >= o`.
    fn sub(self, o: Point) -> Point {
        let (lo, borrow) = self.lo.overflowing_sub(o.lo);
        Point {
            hi: self.hi - o.hi - borrow as u64,
            lo,
        }
    }

    fn half(self) -> Point {
        Point {
            hi: self.hi >> 1,
            lo: (self.lo >> 1) | ((self.hi as u128 & 1) << 127),
        }
    }
}

/// Searches forward from `lo` (a start that does not read) for the first start that does:
/// doubling steps until one reads (or the space ends), then bisection back. `ok` probes a
/// start. Returns None when nothing after `lo` reads.
fn search_points(lo: Point, max: Point, mut ok: impl FnMut(Point) -> bool) -> Option<Point> {
    let mut fail = lo;
    let mut bit = 0;
    let good = loop {
        let cand = match lo.checked_add(Point::pow2(bit)) {
            Some(c) if c <= max => c,
            _ => max,
        };
        if ok(cand) {
            break cand;
        }
        if cand == max {
            return None;
        }
        fail = cand;
        bit += 1;
    };
    let mut good = good;
    let one = Point { hi: 0, lo: 1 };
    while good.sub(fail) > one {
        let mid = fail.checked_add(good.sub(fail).half())?;
        if ok(mid) {
            good = mid;
        } else {
            fail = mid;
        }
    }
    Some(good)
}

/// A key type [`salvage`] can step through.
trait Probe: redb::Key + 'static {
    type Owned: Clone + Debug;
    fn own(k: Self::SelfType<'_>) -> Self::Owned;
    fn borrow(o: &Self::Owned) -> Self::SelfType<'_>;
    fn min() -> Self::Owned;
    /// The smallest key after `k`, if any.
    fn succ(k: &Self::Owned) -> Option<Self::Owned>;
    /// The first start after `lo` (which does not read) that reads, by `ok`.
    fn skip(lo: &Self::Owned, ok: &mut dyn FnMut(&Self::Owned) -> bool) -> Option<Self::Owned>;
}

/// Integer keys, packed into a [`Point`] of `BITS` bits.
trait IntKey: Sized {
    const BITS: u32;
    fn to_point(&self) -> Point;
    fn from_point(p: Point) -> Self;
}

impl IntKey for u64 {
    const BITS: u32 = 64;
    fn to_point(&self) -> Point {
        Point {
            hi: 0,
            lo: *self as u128,
        }
    }
    fn from_point(p: Point) -> u64 {
        p.lo as u64
    }
}

impl IntKey for (u64, u64) {
    const BITS: u32 = 128;
    fn to_point(&self) -> Point {
        Point {
            hi: 0,
            lo: ((self.0 as u128) << 64) | self.1 as u128,
        }
    }
    fn from_point(p: Point) -> (u64, u64) {
        ((p.lo >> 64) as u64, p.lo as u64)
    }
}

impl IntKey for (i64, u64) {
    const BITS: u32 = 128;
    fn to_point(&self) -> Point {
        // Flipping the sign bit maps i64 onto u64 in order.
        let a = (self.0 as u64) ^ (1 << 63);
        Point {
            hi: 0,
            lo: ((a as u128) << 64) | self.1 as u128,
        }
    }
    fn from_point(p: Point) -> (i64, u64) {
        ((((p.lo >> 64) as u64) ^ (1 << 63)) as i64, p.lo as u64)
    }
}

impl IntKey for (u64, u32) {
    const BITS: u32 = 96;
    fn to_point(&self) -> Point {
        Point {
            hi: 0,
            lo: ((self.0 as u128) << 32) | self.1 as u128,
        }
    }
    fn from_point(p: Point) -> (u64, u32) {
        ((p.lo >> 32) as u64, p.lo as u32)
    }
}

impl IntKey for (u64, u32, u64) {
    const BITS: u32 = 160;
    fn to_point(&self) -> Point {
        // job in bits 96..160, attempt in 64..96, seq in 0..64.
        Point {
            hi: self.0 >> 32,
            lo: ((self.0 as u128) << 96) | ((self.1 as u128) << 64) | self.2 as u128,
        }
    }
    fn from_point(p: Point) -> (u64, u32, u64) {
        (
            (p.hi << 32) | (p.lo >> 96) as u64,
            (p.lo >> 64) as u32,
            p.lo as u64,
        )
    }
}

macro_rules! int_probe {
    ($($t:ty),*) => {$(
        impl Probe for $t {
            type Owned = $t;
            fn own(k: $t) -> $t { k }
            fn borrow(o: &$t) -> $t { *o }
            fn min() -> $t { <$t>::from_point(Point::ZERO) }
            fn succ(k: &$t) -> Option<$t> {
                let p = k.to_point().checked_add(Point { hi: 0, lo: 1 })?;
                (p <= Point::from_bits(<$t>::BITS)).then(|| <$t>::from_point(p))
            }
            fn skip(lo: &$t, ok: &mut dyn FnMut(&$t) -> bool) -> Option<$t> {
                search_points(lo.to_point(), Point::from_bits(<$t>::BITS), |p| {
                    ok(&<$t>::from_point(p))
                })
                .map(<$t>::from_point)
            }
        }
    )*};
}
int_probe!(u64, (u64, u64), (i64, u64), (u64, u32), (u64, u32, u64));

/// Starts after `s` for a string key, fine to coarse: each prefix of `s` (longest first) with
/// its last character moved to the next one.
fn string_skips(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    for len in (1..=chars.len()).rev() {
        let last = chars[len - 1] as u32;
        let next = (last + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            let mut p: String = chars[..len - 1].iter().collect();
            p.push(next);
            out.push(p);
        }
    }
    out
}

impl Probe for &'static str {
    type Owned = String;
    fn own(k: &str) -> String {
        k.to_string()
    }
    fn borrow(o: &String) -> &str {
        o.as_str()
    }
    fn min() -> String {
        String::new()
    }
    fn succ(k: &String) -> Option<String> {
        Some(format!("{k}\0"))
    }
    fn skip(lo: &String, ok: &mut dyn FnMut(&String) -> bool) -> Option<String> {
        string_skips(lo).into_iter().find(|c| ok(c))
    }
}

impl Probe for (&'static str, u64) {
    type Owned = (String, u64);
    fn own(k: (&str, u64)) -> (String, u64) {
        (k.0.to_string(), k.1)
    }
    fn borrow(o: &(String, u64)) -> (&str, u64) {
        (o.0.as_str(), o.1)
    }
    fn min() -> (String, u64) {
        (String::new(), 0)
    }
    fn succ(k: &(String, u64)) -> Option<(String, u64)> {
        Some(match k.1.checked_add(1) {
            Some(n) => (k.0.clone(), n),
            None => (format!("{}\0", k.0), 0),
        })
    }
    fn skip(
        lo: &(String, u64),
        ok: &mut dyn FnMut(&(String, u64)) -> bool,
    ) -> Option<(String, u64)> {
        // Within the same name first, then on to the next names.
        let name = lo.0.clone();
        if let Some(n) = search_points(lo.1.to_point(), Point::from_bits(64), |p| {
            ok(&(name.clone(), u64::from_point(p)))
        }) {
            return Some((name, u64::from_point(n)));
        }
        string_skips(&lo.0)
            .into_iter()
            .map(|s| (s, 0))
            .find(|c| ok(c))
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a table past its damage.

/// Reads every readable entry of `table` in key order, calling `f` with each; `f` answers
/// whether the value decodes (Err: why not). Damage is skipped and recorded in `report`.
fn salvage<K: Probe, V: redb::Value + 'static>(
    table: &ReadOnlyTable<K, V>,
    report: &mut TableReport,
    mut f: impl FnMut(&K::Owned, V::SelfType<'_>) -> Result<(), String>,
) {
    // A start reads if the first entry at or after it reads (or there is none).
    let probe = |p: &K::Owned| -> bool {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            match table.range(K::borrow(p)..) {
                Ok(mut r) => r.next().is_none_or(|e| e.is_ok()),
                Err(_) => false,
            }
        }))
        .unwrap_or(false)
    };
    let mut start = Some(K::min());
    while let Some(from) = start.take() {
        let mut last: Option<K::Owned> = None;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let range = table.range(K::borrow(&from)..).map_err(|e| e.to_string())?;
            for entry in range {
                let (k, v) = entry.map_err(|e| e.to_string())?;
                let key = K::own(k.value());
                report.entries += 1;
                if let Err(why) = f(&key, v.value()) {
                    report.undecodable(&key, why);
                }
                last = Some(key);
            }
            Ok::<(), String>(())
        }))
        .unwrap_or_else(|panic| {
            Err(panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic while reading".into()))
        });
        let Err(error) = outcome else { break };
        // The first start known not to read: just after the last key read.
        let lo = match &last {
            Some(k) => match K::succ(k) {
                Some(n) => n,
                None => break,
            },
            None => from.clone(),
        };
        let resume = if last.is_some() && probe(&lo) {
            Some(lo.clone())
        } else {
            K::skip(&lo, &mut |p| probe(p))
        };
        report.lost.push(Loss {
            after: last.as_ref().map(|k| format!("{k:?}")),
            resumes_at: resume.as_ref().map(|k| format!("{k:?}")),
            error,
        });
        start = resume;
    }
}

/// Opens one table for reading, recording a table whose root cannot be read.
fn open_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    def: TableDefinition<K, V>,
    report: &mut TableReport,
) -> Option<ReadOnlyTable<K, V>> {
    match txn.open_table(def) {
        Ok(t) => Some(t),
        // A table never created is simply empty.
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => {
            report.unopenable = Some(e.to_string());
            None
        }
    }
}

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// What the scan keeps for `repair` (nothing for `check`).
#[derive(Default)]
struct Sink {
    keep: bool,
    meta: Vec<(String, u64)>,
    jobs: Vec<Job>,
    studies: Vec<(String, Vec<u8>)>,
    logs: Vec<((u64, u64), Vec<u8>)>,
    log_seen: Vec<((u64, u32), u64)>,
    workers: Vec<(String, Vec<u8>)>,
    events: Vec<(u64, Vec<u8>)>,
    tokens: Vec<(String, Vec<u8>)>,
    releases: Vec<(String, Vec<u8>)>,
    audit: Vec<(u64, Vec<u8>)>,
    users: Vec<UserInfo>,
    usage: Vec<(String, Vec<u8>)>,
    usage_hours: Vec<((String, u64), (u64, u64))>,
}

/// The tables `repair` does not carry over, and why. Every table of the store is either read
/// by [`scan`] or named here (a test checks it against `maintenance::each_table`), so a table
/// added later is a decision, not an oversight.
#[cfg(test)]
const NOT_SALVAGED: &[(&str, &str)] = &[
    (
        "study_open",
        "derived: the open jobs of each study, counted again as every job is saved",
    ),
    // Fair share's indexes: rebuilt as repair saves every job again (`Tx::save_job`).
    (
        "fair_queue",
        "derived: each user's queue, entered again as every queued job is saved",
    ),
    (
        "pending",
        "derived: queued jobs per user and fit class, counted again as jobs are saved",
    ),
    (
        "user_counts",
        "derived: each user's jobs per state, counted again as jobs are saved",
    ),
    (
        "telemetry",
        "workers' CPU/RAM/GPU history: bounded rings that refill from heartbeats",
    ),
    // Adaptive studies' running state (issue 15): their keys need a damage probe of their
    // own ((&str, &str), (&str, u32, &str)) before `salvage` can read past damage.
    ("study_rules", "adaptive studies' state: not salvaged yet"),
    ("study_cells", "adaptive studies' state: not salvaged yet"),
    ("job_cells", "adaptive studies' state: not salvaged yet"),
    ("rung_values", "adaptive studies' state: not salvaged yet"),
    ("job_rungs", "adaptive studies' state: not salvaged yet"),
];

/// Reads every table of `txn`; rows are handed to `on_rows` a run of one (job, attempt) at a
/// time (so a big table never sits in memory), everything else is kept in `sink` if asked.
fn scan(
    txn: &ReadTransaction,
    sink: &mut Sink,
    mut on_rows: impl FnMut(u64, u32, Vec<Row>),
) -> Vec<TableReport> {
    let mut out = Vec::new();
    let keep = sink.keep;

    macro_rules! table {
        ($name:expr, $def:expr, $derived:expr, |$k:ident, $v:ident| $body:expr) => {{
            let mut report = TableReport::new($name, $derived);
            if let Some(t) = open_table(txn, $def, &mut report) {
                salvage(&t, &mut report, |$k, $v| $body);
            }
            out.push(report);
        }};
    }

    table!("meta", META, false, |k, v| {
        if keep {
            sink.meta.push((k.clone(), v));
        }
        Ok(())
    });
    table!("jobs", jobs::JOBS, false, |k, v| {
        let job: Job = json(v)?;
        if job.id != *k {
            return Err(format!("stored under id {k} but says it is job {}", job.id));
        }
        if keep {
            sink.jobs.push(job);
        }
        Ok(())
    });
    table!("studies", studies::STUDIES, false, |k, v| {
        json::<StudyRecord>(v)?;
        if keep {
            sink.studies.push((k.clone(), v.to_vec()));
        }
        Ok(())
    });
    {
        // Rows: runs of one attempt go to `on_rows` as they complete.
        let mut run: Option<(u64, u32, Vec<Row>)> = None;
        let mut report = TableReport::new("rows", false);
        if let Some(t) = open_table(txn, rows::ROWS, &mut report) {
            salvage(&t, &mut report, |k, v| {
                let row = rows::decode(v).map_err(|e| e.to_string())?;
                if row.seq != k.2 {
                    return Err(format!(
                        "stored as row {} but says it is row {}",
                        k.2, row.seq
                    ));
                }
                match &mut run {
                    Some((j, a, batch)) if *j == k.0 && *a == k.1 && batch.len() < 10_000 => {
                        batch.push(row)
                    }
                    _ => {
                        if let Some((j, a, batch)) = run.take() {
                            on_rows(j, a, batch);
                        }
                        run = Some((k.0, k.1, vec![row]));
                    }
                }
                Ok(())
            });
        }
        if let Some((j, a, batch)) = run.take() {
            on_rows(j, a, batch);
        }
        out.push(report);
    }
    table!("logs", logs::LOGS, false, |k, v| {
        json::<LogLine>(v)?;
        if keep {
            sink.logs.push((*k, v.to_vec()));
        }
        Ok(())
    });
    table!("log_seen", logs::LOG_SEEN, false, |k, v| {
        if keep {
            sink.log_seen.push((*k, v));
        }
        Ok(())
    });
    table!("workers", workers::WORKERS, false, |k, v| {
        json::<Worker>(v)?;
        if keep {
            sink.workers.push((k.clone(), v.to_vec()));
        }
        Ok(())
    });
    table!("events", events::EVENTS, false, |k, v| {
        json::<Event>(v)?;
        if keep {
            sink.events.push((*k, v.to_vec()));
        }
        Ok(())
    });
    table!("tokens", tokens::TOKENS, false, |k, v| {
        json::<TokenInfo>(v)?;
        if keep {
            sink.tokens.push((k.clone(), v.to_vec()));
        }
        Ok(())
    });
    table!("releases", releases::RELEASES, false, |k, v| {
        json::<crate::release::Release>(v)?;
        if keep {
            sink.releases.push((k.clone(), v.to_vec()));
        }
        Ok(())
    });
    table!("audit", audit::AUDIT, false, |k, v| {
        json::<AuditEntry>(v)?;
        if keep {
            sink.audit.push((*k, v.to_vec()));
        }
        Ok(())
    });
    table!("users", users::USERS, false, |k, v| {
        let user: UserInfo = json(v)?;
        if user.name != *k {
            return Err(format!(
                "stored as {k:?} but says it is user {:?}",
                user.name
            ));
        }
        if keep {
            sink.users.push(user);
        }
        Ok(())
    });
    table!("usage", users::USAGE, false, |k, v| {
        json::<users::UsageRecord>(v)?;
        if keep {
            sink.usage.push((k.clone(), v.to_vec()));
        }
        Ok(())
    });
    table!("usage_hours", users::USAGE_HOURS, false, |k, v| {
        if keep {
            sink.usage_hours.push((k.clone(), v));
        }
        Ok(())
    });
    // The derived tables: read for the report, rebuilt by repair.
    table!("queue", jobs::QUEUE, true, |_k, _v| Ok(()));
    table!("job_counts", jobs::COUNTS, true, |_k, _v| Ok(()));
    table!("study_jobs", jobs::STUDY_JOBS, true, |_k, _v| Ok(()));
    table!("row_blocks", rows::ROW_BLOCKS, true, |_k, _v| Ok(()));
    table!("owner_jobs", jobs::OWNER_JOBS, true, |_k, _v| Ok(()));
    table!("standings", users::STANDINGS, true, |_k, _v| Ok(()));
    out
}

// ---------------------------------------------------------------------------------------------
// Opening a file that may be damaged, without changing it.

/// A database opened for reading: read-only when it was closed cleanly, else through redb's
/// recovery (what `gaia serve` would do on open).
enum Opened {
    ReadOnly(redb::ReadOnlyDatabase),
    Recovered(Database),
}

impl Opened {
    fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(match self {
            Opened::ReadOnly(db) => db.begin_read()?,
            Opened::Recovered(db) => db.begin_read()?,
        })
    }
}

fn open_damaged(path: &Path) -> Result<Opened, StoreError> {
    if !path.exists() {
        return Err(StoreError::Io {
            path: path.to_path_buf(),
            cause: std::io::Error::new(std::io::ErrorKind::NotFound, "no database here"),
        });
    }
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Err(StoreError::Empty {
            path: path.to_path_buf(),
        });
    }
    let open = |p: &Path| {
        std::panic::catch_unwind(|| Database::builder().open_read_only(p)).unwrap_or_else(|_| {
            Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(
                "redb panicked opening the file".into(),
            )))
        })
    };
    match open(path) {
        Ok(db) => Ok(Opened::ReadOnly(db)),
        Err(redb::DatabaseError::RepairAborted) => {
            let db = Database::builder()
                .open(path)
                .map_err(|cause| StoreError::Open {
                    path: path.to_path_buf(),
                    cause,
                })?;
            Ok(Opened::Recovered(db))
        }
        Err(cause) => Err(StoreError::Open {
            path: path.to_path_buf(),
            cause,
        }),
    }
}

/// redb's page checks, on a copy beside the file (they may repair what they check, and the
/// file being checked must not change). None: passed.
fn integrity_of_copy(path: &Path) -> Option<String> {
    let copy = path.with_extension("redb.check-copy");
    let result = (|| {
        std::fs::copy(path, &copy)
            .map_err(|e| format!("not checked: cannot copy the file: {e}"))?;
        let mut db = std::panic::catch_unwind(|| Database::builder().open(&copy))
            .map_err(|_| "redb panicked opening a copy of the file".to_string())?
            .map_err(|e| e.to_string())?;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.check_integrity())) {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(
                "damaged, and redb could repair it only by going back to an earlier commit"
                    .to_string(),
            ),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("redb panicked checking the file".to_string()),
        }
    })();
    let _ = std::fs::remove_file(&copy);
    result.err()
}

/// `gaia db check`: redb's page checks (on a copy) and every entry of every table read and
/// decoded, with a report per table. The file is never changed. Fails if no server may hold
/// the file: stop `gaia serve` first.
pub fn check(data_dir: &Path) -> Result<CheckReport, Error> {
    let path = data_dir.join(DB_FILE);
    let opened = open_damaged(&path)?;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let unclean = matches!(opened, Opened::Recovered(_));
    let tables = {
        let txn = opened.begin_read()?;
        scan(&txn, &mut Sink::default(), |_, _, _| {})
    };
    drop(opened);
    let integrity = integrity_of_copy(&path);
    Ok(CheckReport {
        path,
        bytes,
        integrity,
        unclean,
        tables,
    })
}

/// `gaia db repair`: moves the database aside (`gaia.redb.damaged-<unix time>`, never
/// deleted) and writes a new one from everything readable in it; derived tables are rebuilt.
/// Stop `gaia serve` first (a held file is refused).
pub fn repair(data_dir: &Path) -> Result<RepairReport, Error> {
    let path = data_dir.join(DB_FILE);
    // Opening first proves no server holds it; the open file reads on after the rename.
    let opened = open_damaged(&path)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut moved_to = data_dir.join(format!("{DB_FILE}.damaged-{stamp}"));
    let mut n = 1;
    while moved_to.exists() {
        moved_to = data_dir.join(format!("{DB_FILE}.damaged-{stamp}-{n}"));
        n += 1;
    }
    std::fs::rename(&path, &moved_to).map_err(|e| Error::io(&path, e))?;
    let result = rebuild(data_dir, &opened);
    drop(opened);
    match result {
        Ok((read, written)) => Ok(RepairReport {
            moved_to,
            path,
            read,
            written,
        }),
        Err(e) => {
            // Nothing half-made stays in its place: the damaged file goes back.
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::rename(&moved_to, &path);
            Err(e)
        }
    }
}

type Written = Vec<(&'static str, u64)>;

fn rebuild(data_dir: &Path, old: &Opened) -> Result<(Vec<TableReport>, Written), Error> {
    let store = Store::open(data_dir)?;
    let txn = old.begin_read()?;
    let mut sink = Sink {
        keep: true,
        ..Sink::default()
    };
    // Rows stream into the new store in commits of about 50,000.
    let mut pending: Vec<(u64, u32, Vec<Row>)> = Vec::new();
    let mut pending_rows = 0usize;
    let mut rows_written = 0u64;
    let mut write_error: Option<Error> = None;
    let flush =
        |pending: &mut Vec<(u64, u32, Vec<Row>)>, written: &mut u64, err: &mut Option<Error>| {
            if pending.is_empty() || err.is_some() {
                pending.clear();
                return;
            }
            let batch = std::mem::take(pending);
            match store.write_blocking(move |tx| {
                let mut n = 0;
                for (job, attempt, rows) in &batch {
                    n += tx.insert_rows(*job, *attempt, rows)?.0;
                }
                Ok(n)
            }) {
                Ok(n) => *written += n,
                Err(e) => *err = Some(e),
            }
        };
    let read = scan(&txn, &mut sink, |job, attempt, rows| {
        pending_rows += rows.len();
        pending.push((job, attempt, rows));
        if pending_rows >= 50_000 {
            flush(&mut pending, &mut rows_written, &mut write_error);
            pending_rows = 0;
        }
    });
    flush(&mut pending, &mut rows_written, &mut write_error);
    if let Some(e) = write_error {
        return Err(e);
    }
    drop(txn);

    let mut written: Written = Vec::new();
    let Sink {
        meta,
        jobs,
        studies,
        logs,
        log_seen,
        workers,
        events,
        tokens,
        releases,
        audit,
        users,
        usage,
        usage_hours,
        ..
    } = sink;
    // Counters may not go back below what survived (an id handed out twice would merge two
    // records); the lease counter also jumps at the next open.
    let max_job = jobs.iter().map(|j| j.id).max().unwrap_or(0);
    let max_lease = jobs.iter().filter_map(|j| j.lease).max().unwrap_or(0);
    let max_event = events.iter().map(|e| e.0).max().unwrap_or(0);
    let max_audit = audit.iter().map(|e| e.0).max().unwrap_or(0);
    let mut max_promotion = 0;
    for (_, r) in &releases {
        if let Ok(r) = serde_json::from_slice::<crate::release::Release>(r) {
            max_promotion = max_promotion.max(r.promoted_seq.unwrap_or(0));
        }
    }
    let n_meta = meta.len() as u64;
    let (n_jobs, n_studies, n_logs, n_seen) = (
        jobs.len() as u64,
        studies.len() as u64,
        logs.len() as u64,
        log_seen.len() as u64,
    );
    let (n_workers, n_events, n_tokens, n_releases) = (
        workers.len() as u64,
        events.len() as u64,
        tokens.len() as u64,
        releases.len() as u64,
    );
    let n_audit = audit.len() as u64;
    store.write_blocking(move |tx| {
        for (k, v) in &meta {
            if k != "schema_version" {
                tx.meta
                    .open_mut()?
                    .insert(k.as_str(), *v)
                    .map_err(StoreError::from)?;
            }
        }
        for (name, floor) in [
            ("next_job_id", max_job + 1),
            ("next_lease_id", max_lease + 1),
            ("next_event_id", max_event + 1),
            ("next_promotion", max_promotion + 1),
            ("next_audit_id", max_audit + 1),
        ] {
            let now = tx
                .meta
                .open()?
                .get(name)
                .map_err(StoreError::from)?
                .map(|v| v.value());
            if now.is_none_or(|v| v < floor) {
                tx.meta
                    .open_mut()?
                    .insert(name, floor)
                    .map_err(StoreError::from)?;
            }
        }
        Ok(())
    })?;
    written.push(("meta", n_meta));
    // Users and their usage before the jobs, so that each owner's standing starts from their
    // share and limit and the jobs' counts are added to it.
    let (n_users, n_usage, n_hours) = (
        users.len() as u64,
        usage.len() as u64,
        usage_hours.len() as u64,
    );
    store.write_blocking(move |tx| {
        for user in &users {
            // A record that no longer validates is kept out rather than failing the repair:
            // its jobs keep their owner, who gets the defaults.
            if let Err(e) = tx.save_user(user) {
                if matches!(e, Error::Request(_)) {
                    continue;
                }
                return Err(e);
            }
        }
        Ok(())
    })?;
    written.push(("users", n_users));
    for chunk in usage.chunks(20_000) {
        let chunk = chunk.to_vec();
        store.write_blocking(move |tx| {
            for (k, v) in &chunk {
                tx.usage
                    .open_mut()?
                    .insert(k.as_str(), v.as_slice())
                    .map_err(StoreError::from)?;
            }
            Ok(())
        })?;
    }
    written.push(("usage", n_usage));
    for chunk in usage_hours.chunks(20_000) {
        let chunk = chunk.to_vec();
        store.write_blocking(move |tx| {
            for ((user, hour), v) in &chunk {
                tx.usage_hours
                    .open_mut()?
                    .insert((user.as_str(), *hour), *v)
                    .map_err(StoreError::from)?;
            }
            // Recent usage, as fair share compares it, follows from the history.
            tx.rebuild_recent_usage()?;
            Ok(())
        })?;
    }
    written.push(("usage_hours", n_hours));
    for chunk in jobs.chunks(5_000) {
        let chunk = chunk.to_vec();
        store.write_blocking(move |tx| {
            for job in &chunk {
                // The queue index, counts and study index are written in step with the job.
                tx.save_job(None, job)?;
            }
            Ok(())
        })?;
    }
    written.push(("jobs", n_jobs));
    written.push(("rows", rows_written));
    macro_rules! copy {
        ($name:expr, $items:expr, $n:expr, |$tx:ident, $k:ident, $v:ident| $ins:expr) => {{
            for chunk in $items.chunks(20_000) {
                let chunk = chunk.to_vec();
                store.write_blocking(move |$tx| {
                    for ($k, $v) in &chunk {
                        $ins.map_err(StoreError::from)?;
                    }
                    Ok(())
                })?;
            }
            written.push(($name, $n));
        }};
    }
    copy!("studies", studies, n_studies, |tx, k, v| tx
        .studies
        .open_mut()?
        .insert(k.as_str(), v.as_slice()));
    copy!("logs", logs, n_logs, |tx, k, v| tx
        .logs
        .open_mut()?
        .insert(*k, v.as_slice()));
    copy!("log_seen", log_seen, n_seen, |tx, k, v| tx
        .log_seen
        .open_mut()?
        .insert(*k, *v));
    copy!("workers", workers, n_workers, |tx, k, v| tx
        .workers
        .open_mut()?
        .insert(k.as_str(), v.as_slice()));
    copy!("events", events, n_events, |tx, k, v| tx
        .events
        .open_mut()?
        .insert(*k, v.as_slice()));
    copy!("tokens", tokens, n_tokens, |tx, k, v| tx
        .tokens
        .open_mut()?
        .insert(k.as_str(), v.as_slice()));
    copy!("releases", releases, n_releases, |tx, k, v| tx
        .releases
        .open_mut()?
        .insert(k.as_str(), v.as_slice()));
    copy!("audit", audit, n_audit, |tx, k, v| tx
        .audit
        .open_mut()?
        .insert(*k, v.as_slice()));
    // What the derived tables hold now, rebuilt.
    let r = store.read()?;
    use redb::ReadableTableMetadata;
    for (name, n) in [
        ("queue", r.queue.open()?.len()),
        ("job_counts", r.counts.open()?.len()),
        ("study_jobs", r.study_jobs.open()?.len()),
        ("row_blocks", r.row_blocks.open()?.len()),
        ("owner_jobs", r.owner_jobs.open()?.len()),
        ("standings", r.standings.open()?.len()),
    ] {
        written.push((name, n.map_err(StoreError::from)?));
    }
    Ok((read, written))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table of the store is read by `check`/`repair` or named in [`NOT_SALVAGED`]: a
    /// new table cannot be dropped by a repair without anyone deciding it.
    #[test]
    fn every_table_is_salvaged_or_named_as_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let txn = store.db.begin_read().unwrap();
        let mut covered: Vec<String> = scan(&txn, &mut Sink::default(), |_, _, _| {})
            .iter()
            .map(|r| r.name.to_string())
            .chain(NOT_SALVAGED.iter().map(|(n, _)| n.to_string()))
            .collect();
        covered.sort();
        let mut all = super::super::maintenance::backed_up();
        all.sort();
        assert_eq!(covered, all);
    }

    #[test]
    fn points_pack_keys_in_key_order_and_back() {
        let keys = [
            (0u64, 0u32, 0u64),
            (0, 0, u64::MAX),
            (0, 1, 0),
            (0, u32::MAX, u64::MAX),
            (1, 0, 0),
            (u64::MAX >> 1, 7, 9),
            (u64::MAX, u32::MAX, u64::MAX),
        ];
        for w in keys.windows(2) {
            assert!(w[0].to_point() < w[1].to_point(), "{w:?}");
        }
        for k in keys {
            assert_eq!(<(u64, u32, u64)>::from_point(k.to_point()), k);
        }
        assert_eq!(
            (u64::MAX, u32::MAX, u64::MAX).to_point(),
            Point::from_bits(160)
        );
        for k in [(i64::MIN, 0u64), (-1, 5), (0, 0), (i64::MAX, u64::MAX)] {
            assert_eq!(<(i64, u64)>::from_point(k.to_point()), k);
        }
        assert!((-1i64, 0u64).to_point() < (0i64, 0u64).to_point());
    }

    #[test]
    fn the_search_finds_the_first_start_that_reads() {
        // Starts from 1,000 to 1,999 fail (a damaged page); the search must land on 2,000.
        for (lo, bad_end) in [(1_000u64, 2_000u64), (5, 6), (0, u64::MAX / 3)] {
            let mut probes = 0;
            let got = search_points(lo.to_point(), Point::from_bits(64), |p| {
                probes += 1;
                u64::from_point(p) >= bad_end
            });
            assert_eq!(got.map(u64::from_point), Some(bad_end));
            assert!(probes <= 2 * 64 + 2, "{probes} probes");
        }
        // Nothing reads after: None.
        assert_eq!(
            search_points(Point::ZERO, Point::from_bits(64), |_| false),
            None
        );
    }

    #[test]
    fn string_skips_go_from_fine_to_coarse() {
        assert_eq!(string_skips("ab"), vec!["ac".to_string(), "b".to_string()]);
        assert!(string_skips("").is_empty());
    }
}
