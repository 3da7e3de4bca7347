//! Result rows: one generation of one attempt each.

use std::ops::Bound;

use redb::{ReadableTable, TableDefinition};

use super::{Reader, Tx};
use crate::error::StoreError;
use crate::model::{JobId, Row, RowBin, RowRef};
use crate::study::compare::Curve;

/// (job id, attempt, seq) → the row, postcard. A job's rows are one range scan, in seq order.
pub(crate) const ROWS: TableDefinition<(u64, u32, u64), &[u8]> = TableDefinition::new("rows");
/// (job id, attempt, seq / [`BLOCK_ROWS`]) → a summary of those rows (postcard `Bucket`: row
/// count, first and last x columns, min and max of every metric and where they occurred), kept
/// in step with `rows` in the same transaction. A long curve is downsampled from these, 64×
/// fewer entries than rows. Databases written before this table have no blocks for their rows;
/// the row count tells (see [`Reader::downsample_from_blocks`]) and such jobs are scanned.
pub(crate) const ROW_BLOCKS: TableDefinition<(u64, u32, u64), &[u8]> =
    TableDefinition::new("row_blocks");

/// Rows summarised by one entry of `row_blocks`.
pub const BLOCK_ROWS: u64 = 64;

/// Encodes a row into `buf` (cleared first) in its one binary form ([`RowBin`]), reusing the
/// buffer's allocation.
fn encode_into(row: &Row, mut buf: Vec<u8>) -> Vec<u8> {
    buf.clear();
    postcard::to_extend(&RowBin::from(row), buf)
        .expect("postcard encoding of plain data cannot fail")
}

pub(crate) fn encode(row: &Row) -> Vec<u8> {
    encode_into(row, Vec::with_capacity(128))
}

/// A stored row, owned (decoded straight into its owned form: one allocation fewer per row
/// than through [`decode_ref`]).
pub(crate) fn decode(bytes: &[u8]) -> Result<Row, StoreError> {
    postcard::from_bytes::<RowBin>(bytes)
        .map(Row::from)
        .map_err(corrupt)
}

/// A stored row with its metric names borrowed from `bytes` (no copy of them).
pub(crate) fn decode_ref(bytes: &[u8]) -> Result<RowRef<'_>, StoreError> {
    postcard::from_bytes::<RowRef>(bytes).map_err(corrupt)
}

fn corrupt(e: postcard::Error) -> StoreError {
    StoreError::Corrupt {
        what: "row",
        detail: e.to_string(),
    }
}

impl Tx<'_> {
    /// Stores the rows not stored yet; returns (stored, skipped).
    ///
    /// An ascending batch (the usual case) is merged with what is stored in one pass of a
    /// cursor, its new rows spliced in as packed leaves (see below): the writer thread is the
    /// ingest bottleneck, and a job's history read is as fast as its pages are few.
    pub fn insert_rows(
        &mut self,
        job: JobId,
        attempt: u32,
        rows: &[Row],
    ) -> Result<(u64, u64), StoreError> {
        let ascending = rows.windows(2).all(|w| w[0].seq < w[1].seq);
        let (Some(first), true) = (rows.first(), ascending) else {
            // Unordered (or empty) batches: look each row up, which also catches a seq that
            // occurs twice in the batch.
            let (mut stored, mut skipped) = (0, 0);
            let mut blocks = self.load_blocks(job, attempt, rows)?;
            for row in rows {
                let key = (job, attempt, row.seq);
                if self.rows.open()?.get(key)?.is_some() {
                    skipped += 1;
                } else {
                    self.rows.open_mut()?.insert(key, encode(row).as_slice())?;
                    add_to_block(&mut blocks, row);
                    stored += 1;
                }
            }
            self.save_blocks(job, attempt, blocks)?;
            return Ok((stored, skipped));
        };
        // One pass with a cursor at the gap where the batch begins: each row either matches the
        // stored entry after the gap (a retried batch: skipped) or goes into the gap. redb
        // buffers a run of inserts at one gap and splices it in as full leaves, so a job's rows
        // pack their pages fully wherever its range sits in the table — `Table::insert`, used
        // per row, splits a full leaf in half unless the key is the table's largest, which left
        // every job but the newest one streaming with half-empty pages (twice the pages to
        // read for its history). The stored key after the gap is looked up again only when the
        // cursor moves past it: while inserts are buffered it cannot change, and a peek then
        // descends the tree from its root.
        let mut blocks = self.load_blocks(job, attempt, rows)?;
        let mut fresh = Vec::with_capacity(rows.len());
        let mut skipped = 0;
        {
            let mut buf = Vec::with_capacity(128);
            let table = self.rows.open_mut()?;
            let mut gap = table.lower_bound_mut(Bound::Included((job, attempt, first.seq)))?;
            let mut next = gap.peek_next()?.map(|(k, _)| k.value());
            for row in rows {
                let key = (job, attempt, row.seq);
                while next.is_some_and(|k| k < key) {
                    gap.next()?;
                    next = gap.peek_next()?.map(|(k, _)| k.value());
                }
                if next == Some(key) {
                    skipped += 1;
                    continue;
                }
                buf = encode_into(row, buf);
                gap.insert_before(key, buf.as_slice())
                    .map_err(redb::Error::from)?;
                fresh.push(row);
            }
            gap.close()?;
        }
        for row in &fresh {
            add_to_block(&mut blocks, row);
        }
        self.save_blocks(job, attempt, blocks)?;
        Ok((fresh.len() as u64, skipped))
    }

    /// The stored summaries of the blocks `rows` fall in, read before any row is written: a
    /// summary that does not decode fails the batch whole instead of after its rows went in
    /// (a `Corrupt` error does not abort the write group).
    fn load_blocks(
        &mut self,
        job: JobId,
        attempt: u32,
        rows: &[Row],
    ) -> Result<Blocks, StoreError> {
        let mut blocks = Blocks::default();
        for row in rows {
            let index = row.seq / BLOCK_ROWS;
            if blocks.0.iter().rev().any(|(i, _)| *i == index) {
                continue;
            }
            let stored = self.row_blocks.open()?.get((job, attempt, index))?;
            let bucket = stored.map(|v| decode_block(v.value())).transpose()?;
            blocks.0.push((index, bucket));
        }
        Ok(blocks)
    }

    fn save_blocks(&mut self, job: JobId, attempt: u32, blocks: Blocks) -> Result<(), StoreError> {
        for (index, bucket) in blocks.0 {
            if let Some(b) = bucket {
                let bytes = postcard::to_stdvec(&b).expect("postcard encoding of plain data");
                self.row_blocks
                    .open_mut()?
                    .insert((job, attempt, index), bytes.as_slice())?;
            }
        }
        Ok(())
    }
}

/// Which column rows are filtered on when a range is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XAxis {
    Seq,
    Generation,
    Evals,
}

impl XAxis {
    fn of(self, row: &RowRef) -> Option<f64> {
        match self {
            XAxis::Seq => Some(row.seq as f64),
            XAxis::Generation => row.generation.map(|g| g as f64),
            XAxis::Evals => row.evals,
        }
    }
}

impl Reader {
    /// Calls `f` on every row of one attempt in seq order (rows with x outside `range` skipped).
    pub fn for_each_row(
        &self,
        job: JobId,
        attempt: u32,
        range: Option<(XAxis, f64, f64)>,
        mut f: impl FnMut(Row),
    ) -> Result<u64, StoreError> {
        self.for_each_row_ref(job, attempt, range, |r| f(Row::from(r)))
    }

    /// [`Reader::for_each_row`] with each row borrowed from the store ([`RowRef`]): no
    /// allocation per metric, for readers that copy the values out (Arrow columns).
    pub fn for_each_row_ref(
        &self,
        job: JobId,
        attempt: u32,
        range: Option<(XAxis, f64, f64)>,
        mut f: impl FnMut(RowRef<'_>),
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        // A range of row numbers is a range of keys: only those rows are read.
        let (first, last) = match range {
            Some((XAxis::Seq, lo, hi)) => {
                // Empty, reversed, NaN or wholly negative: no row numbers.
                if lo.is_nan() || hi.is_nan() || hi < lo || hi < 0.0 {
                    return Ok(0);
                }
                let first = if lo <= 0.0 {
                    0
                } else {
                    lo.ceil().min(u64::MAX as f64) as u64
                };
                let last = if hi >= u64::MAX as f64 {
                    u64::MAX
                } else {
                    hi.floor() as u64
                };
                (first, last)
            }
            _ => (0, u64::MAX),
        };
        if first > last {
            return Ok(0);
        }
        for entry in self
            .rows
            .open()?
            .range((job, attempt, first)..=(job, attempt, last))?
        {
            let (_, v) = entry?;
            let row = decode_ref(v.value())?;
            if let Some((axis, lo, hi)) = range {
                match axis.of(&row) {
                    Some(x) if x >= lo && x <= hi => {}
                    _ => continue,
                }
            }
            n += 1;
            f(row);
        }
        Ok(n)
    }

    /// The names of the extra metrics (beyond the core ones) that any row of one attempt
    /// (with x in `range`, or all) carries, sorted: the columns of a table of those rows. The
    /// rows are read borrowed ([`RowRef`]): no allocation per name.
    pub fn metric_names(
        &self,
        job: JobId,
        attempt: u32,
        range: Option<(XAxis, f64, f64)>,
    ) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = Vec::new();
        let mut last: Vec<String> = Vec::new();
        self.for_each_row_ref(job, attempt, range, |row| {
            // Consecutive rows almost always carry the same names: compare with the last row's
            // before touching the sorted list.
            if row
                .metrics
                .iter()
                .map(|(k, _)| *k)
                .eq(last.iter().map(String::as_str))
            {
                return;
            }
            for (k, _) in &row.metrics {
                if let Err(at) = names.binary_search_by(|n| n.as_str().cmp(k)) {
                    names.insert(at, k.to_string());
                }
            }
            last = row.metrics.iter().map(|(k, _)| k.to_string()).collect();
        })?;
        Ok(names)
    }

    /// The curve of one attempt downsampled to at most `points` points per metric from the
    /// block summaries, when they cover all `total` rows and each bucket spans at least one
    /// block; None when the rows must be scanned instead (short curves, databases written
    /// before blocks were kept).
    pub fn downsample_from_blocks(
        &self,
        job: JobId,
        attempt: u32,
        total: u64,
        points: usize,
    ) -> Result<Option<Vec<Row>>, StoreError> {
        let buckets = (points.max(2) / 2) as u64;
        if total.div_ceil(buckets) < BLOCK_ROWS {
            return Ok(None);
        }
        // Two passes, so that memory holds one bucket's summary, not every block of the
        // attempt: count the blocks (without decoding them), then merge bucket by bucket.
        let range = (job, attempt, 0)..=(job, attempt, u64::MAX);
        let mut count = 0usize;
        for entry in self.row_blocks.open()?.range(range.clone())? {
            entry?;
            count += 1;
        }
        if count == 0 {
            return Ok(None);
        }
        let per = count.div_ceil(buckets as usize);
        let mut d = Downsampler {
            per_bucket: 0,
            current: None,
            out: Vec::with_capacity(points),
        };
        let mut covered = 0;
        let mut merged: Option<Bucket> = None;
        for (i, entry) in self.row_blocks.open()?.range(range)?.enumerate() {
            let b = decode_block(entry?.1.value())?;
            covered += b.rows;
            match &mut merged {
                Some(m) => m.merge(&b),
                None => merged = Some(b),
            }
            if (i + 1) % per == 0 {
                d.current = merged.take();
                d.flush();
            }
        }
        if covered != total {
            return Ok(None);
        }
        d.current = merged.take();
        d.flush();
        Ok(Some(d.out))
    }

    /// The curve of one attempt (rows with x in `range`, or all), `total` rows long, reduced
    /// to at most `points` points per metric (min and max per bucket): merged from the block
    /// summaries when they serve, else from a scan.
    pub fn downsample(
        &self,
        job: JobId,
        attempt: u32,
        range: Option<(XAxis, f64, f64)>,
        total: u64,
        points: usize,
    ) -> Result<Vec<Row>, StoreError> {
        if range.is_none()
            && let Some(rows) = self.downsample_from_blocks(job, attempt, total, points)?
        {
            return Ok(rows);
        }
        let mut d = Downsampler::new(total, points);
        let mut i = 0;
        self.for_each_row(job, attempt, range, |r| {
            d.push(i, r);
            i += 1;
        })?;
        Ok(d.finish())
    }

    /// The best-ever of one attempt against evaluations, at the rows where it rose (a
    /// comparison's curve), `total` rows long. From the block summaries: only the rows of
    /// blocks whose best-ever maximum beats the best so far are read, so a long run costs
    /// O(rows / 64) plus its few improving blocks; a scan of every row where the blocks do
    /// not cover the rows. A row without `best_ever` counts its `best` (the running maximum);
    /// None when no row has both evaluations and a score.
    pub fn best_ever_curve(
        &self,
        job: JobId,
        attempt: u32,
        total: u64,
    ) -> Result<Option<Curve>, StoreError> {
        let mut c = CurveBuilder::default();
        let mut covered = 0u64;
        for entry in self
            .row_blocks
            .open()?
            .range((job, attempt, 0)..=(job, attempt, u64::MAX))?
        {
            let (k, v) = entry?;
            let index = k.value().2;
            let b = decode_block(v.value())?;
            covered += b.rows;
            let top = ["best_ever", "best"]
                .iter()
                .find_map(|m| b.metrics.iter().find(|(n, _)| n == m))
                .map(|(_, e)| e.max.0);
            if !c.started || top.is_none_or(|t| t > c.best) {
                let (lo, hi) = (index * BLOCK_ROWS, index * BLOCK_ROWS + BLOCK_ROWS - 1);
                self.for_each_row(
                    job,
                    attempt,
                    Some((XAxis::Seq, lo as f64, hi as f64)),
                    |r| c.push(&r),
                )?;
            } else if let Some(x) = b.last.evals {
                c.end = Some(x);
            }
        }
        if covered != total {
            c = CurveBuilder::default();
            self.for_each_row(job, attempt, None, |r| c.push(&r))?;
        }
        Ok(c.finish())
    }

    /// Every row of one attempt.
    pub fn rows(&self, job: JobId, attempt: u32) -> Result<Vec<Row>, StoreError> {
        let mut out = Vec::new();
        self.for_each_row(job, attempt, None, |r| out.push(r))?;
        Ok(out)
    }

    /// The attempts of a job that have rows, ascending.
    pub fn row_attempts(&self, job: JobId) -> Result<Vec<u32>, StoreError> {
        let mut out = Vec::new();
        let mut attempt = 0u32;
        loop {
            let mut range = self
                .rows
                .open()?
                .range((job, attempt, 0)..=(job, u32::MAX, u64::MAX))?;
            match range.next() {
                Some(entry) => {
                    let a = entry?.0.value().1;
                    out.push(a);
                    match a.checked_add(1) {
                        Some(next) => attempt = next,
                        None => break,
                    }
                }
                None => break,
            }
        }
        Ok(out)
    }
}

/// Collects a best-ever curve from rows in seq order.
#[derive(Default)]
struct CurveBuilder {
    steps: Vec<(f64, f64)>,
    best: f64,
    end: Option<f64>,
    started: bool,
}

impl CurveBuilder {
    fn push(&mut self, r: &Row) {
        let Some(x) = r.evals.filter(|x| x.is_finite()) else {
            return;
        };
        self.end = Some(x);
        let y = match (r.best_ever, r.best) {
            (Some(v), _) => v,
            (None, Some(b)) if self.started => b.max(self.best),
            (None, Some(b)) => b,
            (None, None) => return,
        };
        if !y.is_finite() {
            return;
        }
        if !self.started || y > self.best {
            self.steps.push((x, y));
            self.best = y;
            self.started = true;
        }
    }

    fn finish(self) -> Option<Curve> {
        let end = self.end?;
        (!self.steps.is_empty()).then_some(Curve {
            steps: self.steps,
            end,
        })
    }
}

/// Downsamples rows to at most `points` values per metric: the rows are cut into `points / 2`
/// buckets of consecutive rows, and each bucket contributes its minimum and its maximum of every
/// metric, in the order they occurred — so a one-generation spike survives any zoom level.
///
/// The two rows a bucket yields carry the x columns (seq, generation, evals, elapsed) of the
/// bucket's first and last row.
pub struct Downsampler {
    per_bucket: u64,
    current: Option<Bucket>,
    out: Vec<Row>,
}

/// Blocks touched by one insert: (block index, its summary so far).
#[derive(Default)]
struct Blocks(Vec<(u64, Option<Bucket>)>);

/// Adds a newly stored row to its block's summary (loaded by [`Tx::load_blocks`]).
fn add_to_block(blocks: &mut Blocks, row: &Row) {
    let index = row.seq / BLOCK_ROWS;
    let Some(at) = blocks.0.iter().rposition(|(i, _)| *i == index) else {
        debug_assert!(false, "block {index} was not loaded");
        return;
    };
    match &mut blocks.0[at].1 {
        Some(b) => b.add(row),
        slot => *slot = Some(Bucket::of(row)),
    }
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug)]
struct Extreme {
    min: (f64, u64),
    max: (f64, u64),
}

/// The x columns of a row.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug)]
struct XCols {
    seq: u64,
    generation: Option<u64>,
    evals: Option<f64>,
    elapsed: Option<f64>,
}

impl XCols {
    fn of(r: &Row) -> XCols {
        XCols {
            seq: r.seq,
            generation: r.generation,
            evals: r.evals,
            elapsed: r.elapsed,
        }
    }

    fn row(&self) -> Row {
        Row {
            seq: self.seq,
            generation: self.generation,
            evals: self.evals,
            elapsed: self.elapsed,
            ..Row::default()
        }
    }
}

/// A run of rows of one attempt, summarised: how many, the x columns of the first and the last
/// (by seq), and per metric the min and max with the seq where each occurred. Also the stored
/// form of a block summary (postcard: append fields only).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
struct Bucket {
    rows: u64,
    first: XCols,
    last: XCols,
    metrics: Vec<(String, Extreme)>,
}

fn decode_block(bytes: &[u8]) -> Result<Bucket, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        what: "row block",
        detail: e.to_string(),
    })
}

const Y_CORE: [&str; 4] = ["best", "best_ever", "mean", "sigma"];

impl Downsampler {
    /// A downsampler for `total` rows into at most `points` points per metric (`points` ≥ 2).
    pub fn new(total: u64, points: usize) -> Downsampler {
        let buckets = (points.max(2) / 2) as u64;
        Downsampler {
            per_bucket: total.div_ceil(buckets).max(1),
            current: None,
            out: Vec::with_capacity(points),
        }
    }

    /// Whether `total` rows need downsampling at all for `points`.
    pub fn needed(total: u64, points: usize) -> bool {
        total > points as u64
    }

    /// Feeds the next row (rows must come in order).
    pub fn push(&mut self, index: u64, row: Row) {
        if index.is_multiple_of(self.per_bucket) {
            self.flush();
        }
        match &mut self.current {
            None => self.current = Some(Bucket::of(&row)),
            Some(b) => b.add(&row),
        }
    }

    fn flush(&mut self) {
        let Some(b) = self.current.take() else { return };
        let mut lo = b.first.row();
        let mut hi = b.last.row();
        let single = b.first.seq == b.last.seq;
        for (name, e) in &b.metrics {
            let (a, z) = if e.min.1 <= e.max.1 {
                (e.min, e.max)
            } else {
                (e.max, e.min)
            };
            lo.set_metric(name, a.0);
            if !single {
                hi.set_metric(name, z.0);
            }
        }
        self.out.push(lo);
        if !single {
            self.out.push(hi);
        }
    }

    /// The downsampled rows.
    pub fn finish(mut self) -> Vec<Row> {
        self.flush();
        self.out
    }
}

impl Bucket {
    fn of(row: &Row) -> Bucket {
        let mut b = Bucket {
            rows: 0,
            first: XCols::of(row),
            last: XCols::of(row),
            metrics: Vec::new(),
        };
        b.add(row);
        b
    }

    /// Merges another run of rows of the same attempt into this one.
    fn merge(&mut self, other: &Bucket) {
        self.rows += other.rows;
        if other.first.seq < self.first.seq {
            self.first = other.first;
        }
        if other.last.seq > self.last.seq {
            self.last = other.last;
        }
        for (name, e) in &other.metrics {
            self.note(name, e.min.0, e.min.1);
            self.note(name, e.max.0, e.max.1);
        }
    }

    fn add(&mut self, row: &Row) {
        self.rows += 1;
        if row.seq < self.first.seq {
            self.first = XCols::of(row);
        }
        if row.seq > self.last.seq {
            self.last = XCols::of(row);
        }
        // Rows of a run carry the same metrics in the same order, so the k-th metric noted is
        // almost always at slot k: try it before searching (this runs once per stored row).
        let core = [row.best, row.best_ever, row.mean, row.sigma];
        let mut k = 0;
        for (name, v) in Y_CORE.iter().zip(core) {
            if let Some(v) = v {
                k = self.note_at(k, name, v, row.seq) + 1;
            }
        }
        for (name, v) in &row.metrics {
            k = self.note_at(k, name, *v, row.seq) + 1;
        }
    }

    fn note(&mut self, name: &str, v: f64, seq: u64) {
        self.note_at(0, name, v, seq);
    }

    /// Notes a value, looking for the metric at slot `hint` first; returns the slot used.
    fn note_at(&mut self, hint: usize, name: &str, v: f64, seq: u64) -> usize {
        let slot = match self.metrics.get(hint) {
            Some((n, _)) if n == name => Some(hint),
            _ => self.metrics.iter().position(|(n, _)| n == name),
        };
        if v.is_nan() {
            return slot.unwrap_or(hint);
        }
        match slot.map(|i| (i, &mut self.metrics[i].1)) {
            Some((i, e)) => {
                if v < e.min.0 {
                    e.min = (v, seq);
                }
                if v > e.max.0 {
                    e.max = (v, seq);
                }
                i
            }
            None => {
                self.metrics.push((
                    name.to_string(),
                    Extreme {
                        min: (v, seq),
                        max: (v, seq),
                    },
                ));
                self.metrics.len() - 1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: u64, best: f64) -> Row {
        Row {
            seq,
            generation: Some(seq + 1),
            best: Some(best),
            mean: Some(best / 2.0),
            metrics: vec![("entropy".into(), seq as f64)],
            ..Row::default()
        }
    }

    #[test]
    fn the_stored_form_is_the_wire_form_of_a_row() {
        let mut r = row(7, -1.5);
        r.sigma = Some(f64::NAN);
        r.metrics.push(("loss".into(), f64::INFINITY));
        // The store's bytes are the row's bytes inside a postcard row batch.
        let batch = crate::protocol::RowBatch {
            attempt: 1,
            lease: 1,
            rows: vec![r.clone()],
            fraction: None,
            status: None,
        };
        let wire = crate::protocol::encode_postcard(&batch);
        let reference = postcard::to_stdvec(&RowBin::from(&r)).unwrap();
        assert!(
            wire.windows(reference.len())
                .any(|w| w == reference.as_slice())
        );
        assert_eq!(encode(&r), reference);
        assert_eq!(encode_into(&r, vec![1, 2, 3]), reference);
        let back = decode(&reference).unwrap();
        assert_eq!(back.seq, 7);
        assert!(back.sigma.unwrap().is_nan());
        assert_eq!(back.metrics, r.metrics);
        // The borrowed reading of the same bytes is the same row, names pointing into them.
        let borrowed = decode_ref(&reference).unwrap();
        assert_eq!(
            borrowed.metrics,
            [("entropy", 7.0), ("loss", f64::INFINITY)]
        );
        assert!(borrowed.sigma.unwrap().is_nan());
        let mut again = Row::from(borrowed.clone());
        again.sigma = None;
        r.sigma = None;
        assert_eq!(again, r);
        assert_eq!(borrowed.metric("loss"), Some(f64::INFINITY));
        assert_eq!(borrowed.metric("best"), Some(-1.5));
        assert_eq!(RowRef::from(&r).metrics, borrowed.metrics);
    }

    /// Stores `rows` for job 1 attempt 1 in batches of 500, the way workers send them.
    fn store_with(rows: &[Row]) -> (crate::store::Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        for chunk in rows.chunks(500) {
            let chunk = chunk.to_vec();
            store
                .write_blocking(move |tx| Ok(tx.insert_rows(1, 1, &chunk)?))
                .unwrap();
        }
        (store, dir)
    }

    fn spiky(total: u64) -> Vec<Row> {
        (0..total)
            .map(|i| {
                let best = match i {
                    _ if i == total / 3 => 1e9,
                    _ if i == total / 2 => -1e9,
                    _ => (i % 7) as f64,
                };
                row(i, best)
            })
            .collect()
    }

    /// Two jobs streaming side by side, as on a farm: each batch is merged with what is stored
    /// (retried rows skipped, gaps filled), and the job whose range is not at the table's end
    /// still packs its pages — per-row inserts there split leaves in half, and its history
    /// took twice the pages to read.
    #[test]
    fn rows_merge_with_what_is_stored_and_pack_their_pages() {
        use redb::ReadableTableMetadata;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let total = 20_000u64;
        for start in (0..total).step_by(500) {
            for job in [1, 2] {
                let batch: Vec<Row> = (start..start + 500).map(|i| row(i, i as f64)).collect();
                let n = store
                    .write_blocking(move |tx| Ok(tx.insert_rows(job, 1, &batch)?))
                    .unwrap();
                assert_eq!(n, (500, 0));
            }
        }
        // A batch overlapping the stored end, and one around stored rows with gaps between.
        let overlap: Vec<Row> = (total - 200..total + 300).map(|i| row(i, 0.0)).collect();
        let sparse: Vec<Row> = [total + 1000, total + 1002]
            .iter()
            .map(|&i| row(i, i as f64))
            .collect();
        let around: Vec<Row> = (total + 999..total + 1004).map(|i| row(i, 0.0)).collect();
        store
            .write_blocking(move |tx| {
                assert_eq!(tx.insert_rows(1, 1, &overlap)?, (300, 200));
                assert_eq!(tx.insert_rows(1, 1, &sparse)?, (2, 0));
                assert_eq!(tx.insert_rows(1, 1, &around)?, (3, 2));
                Ok(())
            })
            .unwrap();
        let read = store.read().unwrap();
        let mut seqs = Vec::new();
        read.for_each_row(1, 1, None, |r| {
            // A stored row is never replaced by a retried one.
            if r.seq < total || r.seq == total + 1000 || r.seq == total + 1002 {
                assert_eq!(r.best, Some(r.seq as f64), "row {} replaced", r.seq);
            }
            seqs.push(r.seq);
        })
        .unwrap();
        let want: Vec<u64> = (0..total + 300).chain(total + 999..total + 1004).collect();
        assert_eq!(seqs, want);
        assert_eq!(read.rows(2, 1).unwrap().len() as u64, total);
        // The block summaries count exactly the rows stored, merges included.
        let stored = seqs.len() as u64;
        assert!(
            read.downsample_from_blocks(1, 1, stored, 100)
                .unwrap()
                .is_some()
        );
        assert!(
            read.downsample_from_blocks(2, 1, total, 100)
                .unwrap()
                .is_some()
        );
        let stats = read.rows.open().unwrap().stats().unwrap();
        assert!(
            stats.fragmented_bytes() * 5 < stats.stored_bytes(),
            "leaves not packed: {} bytes stored, {} bytes unused in {} leaf pages",
            stats.stored_bytes(),
            stats.fragmented_bytes(),
            stats.leaf_pages()
        );
    }

    /// A batch whose block summary does not decode is refused before any of its rows is
    /// written (a `Corrupt` error does not abort the write group, so nothing may be half done).
    #[test]
    fn a_damaged_block_summary_refuses_the_batch_whole() {
        let (store, _dir) = store_with(&spiky(100));
        let batch: Vec<Row> = (100..200).map(|i| row(i, 0.0)).collect();
        let err = store
            .write_blocking(move |tx| {
                let garbage: &[u8] = &[0xff; 3];
                tx.row_blocks
                    .open_mut()?
                    .insert((1, 1, 150 / BLOCK_ROWS), garbage)
                    .map_err(StoreError::from)?;
                Ok(tx.insert_rows(1, 1, &batch)?)
            })
            .unwrap_err();
        assert!(err.to_string().contains("row block"), "{err}");
        let read = store.read().unwrap();
        assert_eq!(
            read.rows(1, 1).unwrap().len(),
            100,
            "rows of the refused batch went in"
        );
    }

    #[test]
    fn block_summaries_downsample_like_the_rows() {
        let total = 20_000u64;
        let rows = spiky(total);
        let (store, _dir) = store_with(&rows);
        // A retried batch and an unordered batch with a duplicate change nothing.
        let again = rows[500..1000].to_vec();
        let mixed = vec![rows[7].clone(), rows[3].clone(), rows[7].clone()];
        store
            .write_blocking(move |tx| {
                assert_eq!(tx.insert_rows(1, 1, &again)?, (0, 500));
                assert_eq!(tx.insert_rows(1, 1, &mixed)?, (0, 3));
                Ok(())
            })
            .unwrap();
        let read = store.read().unwrap();
        for points in [100usize, 300, 2] {
            let out = read
                .downsample_from_blocks(1, 1, total, points)
                .unwrap()
                .expect("the blocks cover every row");
            for metric in ["best", "mean", "entropy"] {
                let n = out.iter().filter(|r| r.metric(metric).is_some()).count();
                assert!(n <= points, "{metric}: {n} points for {points}");
            }
            let best: Vec<f64> = out.iter().filter_map(|r| r.best).collect();
            assert!(best.contains(&1e9) && best.contains(&-1e9), "spikes lost");
            assert!(out.windows(2).all(|w| w[0].seq < w[1].seq));
            assert_eq!(out[0].seq, 0);
            assert_eq!(out.last().unwrap().seq, total - 1);
            // The extremes agree with a scan of the rows.
            let entropy_max = out
                .iter()
                .filter_map(|r| r.metric("entropy"))
                .fold(0.0, f64::max);
            assert_eq!(entropy_max, (total - 1) as f64);
        }
        // Too short a curve for blocks, or a count the blocks do not cover: scan instead.
        assert!(
            read.downsample_from_blocks(1, 1, total, 2000)
                .unwrap()
                .is_none()
        );
        assert!(
            read.downsample_from_blocks(1, 1, total + 1, 100)
                .unwrap()
                .is_none()
        );
        assert!(
            read.downsample_from_blocks(1, 2, total, 100)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_range_of_row_numbers_reads_just_those_rows() {
        let rows: Vec<Row> = (0..1000).map(|i| row(i, i as f64)).collect();
        let (store, _dir) = store_with(&rows);
        let read = store.read().unwrap();
        let seqs = |lo: f64, hi: f64| {
            let mut out = Vec::new();
            read.for_each_row(1, 1, Some((XAxis::Seq, lo, hi)), |r| out.push(r.seq))
                .unwrap();
            out
        };
        assert_eq!(seqs(990.0, f64::INFINITY), (990..1000).collect::<Vec<_>>());
        assert_eq!(seqs(f64::NEG_INFINITY, 2.0), vec![0, 1, 2]);
        assert_eq!(seqs(10.5, 12.5), vec![11, 12]);
        assert!(seqs(2000.0, f64::INFINITY).is_empty());
        assert!(seqs(5.0, 4.0).is_empty());
        assert!(seqs(f64::NAN, 4.0).is_empty());
        assert!(seqs(-10.0, -1.0).is_empty());
        // Other axes still filter by value.
        let mut g = Vec::new();
        read.for_each_row(1, 1, Some((XAxis::Generation, 5.0, 6.0)), |r| g.push(r.seq))
            .unwrap();
        assert_eq!(g, vec![4, 5]);
    }

    #[test]
    fn rows_without_block_summaries_are_detected() {
        // As in a database written before blocks were kept: rows, no blocks.
        let (store, _dir) = store_with(&spiky(10_000));
        store
            .write_blocking(|tx| {
                for i in 0..10_000 / BLOCK_ROWS + 1 {
                    tx.row_blocks
                        .open_mut()?
                        .remove((1, 1, i))
                        .map_err(crate::error::StoreError::from)?;
                }
                Ok(())
            })
            .unwrap();
        let read = store.read().unwrap();
        assert!(
            read.downsample_from_blocks(1, 1, 10_000, 100)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn downsampling_keeps_spikes_and_bounds_points() {
        for (total, points) in [(10_000u64, 100usize), (1_001, 10), (7, 2), (100, 3)] {
            let mut d = Downsampler::new(total, points);
            for i in 0..total {
                let best = if i == total / 3 {
                    1e9
                } else if i == total / 2 {
                    -1e9
                } else {
                    (i % 7) as f64
                };
                d.push(i, row(i, best));
            }
            let out = d.finish();
            for metric in ["best", "mean", "entropy"] {
                let n = out.iter().filter(|r| r.metric(metric).is_some()).count();
                assert!(
                    n <= points.max(2),
                    "{metric}: {n} points for {points} asked ({total} rows)"
                );
            }
            let max = out.iter().filter_map(|r| r.best).fold(f64::MIN, f64::max);
            let min = out.iter().filter_map(|r| r.best).fold(f64::MAX, f64::min);
            assert_eq!(max, 1e9, "high spike lost ({total} rows, {points} points)");
            assert_eq!(min, -1e9, "low spike lost ({total} rows, {points} points)");
            // x columns stay in order.
            assert!(out.windows(2).all(|w| w[0].seq <= w[1].seq));
        }
    }
}
