//! Streams one attempt's rows and log lines to the server in batches (every ~250 ms or 500
//! rows), and never loses one: while the server is unreachable everything is kept — in memory
//! up to a bound, then in a spool file in the worker's state dir — and replayed, with backoff,
//! when it answers again. Rows carry their `seq` and logs their position, and the server skips
//! what it already has, so a retried batch is never stored twice.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::error::ClientError;
use crate::model::{JobId, Row, Stream};
use crate::protocol::{LogBatch, LogInput, RowBatch};

/// Rows per batch.
pub const BATCH_ROWS: usize = 500;
/// Longest a row waits before it is sent.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(250);
/// Rows kept in memory while the server is unreachable, by default; past this they go to the
/// spool file ([`Target::memory_rows`]).
pub const MEMORY_ROWS: usize = 50_000;
/// Log lines kept while the server is unreachable (older ones are dropped past this; the
/// server keeps a bounded log per job anyway).
pub const MEMORY_LINES: usize = 20_000;

/// What the experiment produced.
pub enum Item {
    Row(Row),
    Log(Stream, String),
    Fraction(f64),
    Status(String),
}

/// Where the streamer writes its console lines.
pub type SayFn = Arc<Mutex<dyn FnMut(&str) + Send>>;

/// Flags the streamer raises for the job's controller.
#[derive(Default)]
pub struct Signals {
    /// The server said the job was cancelled.
    pub cancel: AtomicBool,
    /// The server said this attempt's lease is no longer current: stop, report nothing.
    pub stale: AtomicBool,
    /// The worker is stopping now (preempted, or a second Ctrl-C): stop the job, send what it
    /// printed, then give it back to the queue.
    pub give_back: AtomicBool,
    /// The server has been unreachable on the last call.
    pub offline: AtomicBool,
}

/// The sending side of one attempt's stream.
pub struct Streamer {
    tx: Sender<Msg>,
    handle: Option<JoinHandle<()>>,
}

enum Msg {
    Item(Item),
    Finish,
}

/// Where one attempt streams to.
pub struct Target {
    pub client: Client,
    pub job: JobId,
    pub attempt: u32,
    pub lease: u64,
    /// Folder for the spool file.
    pub spool_dir: PathBuf,
    /// Send rows as postcard (else JSON).
    pub postcard: bool,
    /// Rows kept in memory while the server is unreachable before they spill to the spool
    /// file (default [`MEMORY_ROWS`]).
    pub memory_rows: usize,
}

impl Streamer {
    /// Starts the streaming thread.
    pub fn start(target: Target, signals: Arc<Signals>, log: SayFn) -> Streamer {
        let (tx, rx) = channel();
        let handle = std::thread::Builder::new()
            .name(format!("gaia-stream-{}", target.job))
            .spawn(move || {
                let mut s = State::new(target, signals, log);
                s.run(rx);
            })
            .expect("spawn stream thread");
        Streamer {
            tx,
            handle: Some(handle),
        }
    }

    /// Queues an item.
    pub fn send(&self, item: Item) {
        let _ = self.tx.send(Msg::Item(item));
    }

    /// A cloneable handle to queue items from other threads.
    pub fn sender(&self) -> ItemSender {
        ItemSender(self.tx.clone())
    }

    /// Flushes everything (retrying until the server takes it or the lease turns stale) and
    /// stops.
    pub fn finish(mut self) {
        let _ = self.tx.send(Msg::Finish);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Queues items into a streamer from any thread.
#[derive(Clone)]
pub struct ItemSender(Sender<Msg>);

impl ItemSender {
    /// Queues an item.
    pub fn send(&self, item: Item) {
        let _ = self.0.send(Msg::Item(item));
    }

    /// A sender with no streamer behind it, and a function that returns what was sent to it
    /// since that function's last call (for tests).
    #[cfg(test)]
    pub(crate) fn collecting() -> (ItemSender, impl Fn() -> Vec<Item>) {
        let (tx, rx) = channel();
        let sent = move || {
            rx.try_iter()
                .filter_map(|m| match m {
                    Msg::Item(i) => Some(i),
                    Msg::Finish => None,
                })
                .collect()
        };
        (ItemSender(tx), sent)
    }
}

struct State {
    t: Target,
    signals: Arc<Signals>,
    log: SayFn,
    rows: VecDeque<Row>,
    spool: Option<(PathBuf, File, usize)>,
    lines: VecDeque<LogInput>,
    /// Position (in this attempt's output) of the first line in `lines`.
    lines_first: u64,
    next_seq: u64,
    fraction: Option<f64>,
    status: Option<String>,
    progress_dirty: bool,
    backoff: Duration,
    retry_at: Option<Instant>,
    warned_offline: bool,
}

impl State {
    fn new(t: Target, signals: Arc<Signals>, log: SayFn) -> State {
        State {
            t,
            signals,
            log,
            rows: VecDeque::new(),
            spool: None,
            lines: VecDeque::new(),
            lines_first: 0,
            next_seq: 0,
            fraction: None,
            status: None,
            progress_dirty: false,
            backoff: Duration::from_millis(250),
            retry_at: None,
            warned_offline: false,
        }
    }

    fn say(&self, msg: &str) {
        if let Ok(mut f) = self.log.lock() {
            f(msg);
        }
    }

    fn run(&mut self, rx: Receiver<Msg>) {
        let mut last_send = Instant::now();
        loop {
            let timeout = BATCH_INTERVAL.saturating_sub(last_send.elapsed());
            match rx.recv_timeout(timeout) {
                Ok(Msg::Item(item)) => {
                    self.take(item);
                    // Drain whatever else is waiting before deciding to send.
                    while let Ok(m) = rx.try_recv() {
                        match m {
                            Msg::Item(i) => self.take(i),
                            Msg::Finish => {
                                self.drain_all();
                                return;
                            }
                        }
                    }
                    if self.pending_rows() >= BATCH_ROWS {
                        self.flush_once();
                        last_send = Instant::now();
                    }
                }
                Ok(Msg::Finish) | Err(RecvTimeoutError::Disconnected) => {
                    self.drain_all();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.flush_once();
                    last_send = Instant::now();
                }
            }
            if self.signals.stale.load(Ordering::Relaxed) {
                // Keep receiving (so senders never block) but drop everything.
                self.rows.clear();
                self.lines.clear();
            }
        }
    }

    fn take(&mut self, item: Item) {
        match item {
            Item::Row(mut r) => {
                r.seq = self.next_seq;
                self.next_seq += 1;
                self.rows.push_back(r);
                if self.rows.len() > self.t.memory_rows.max(2) {
                    self.spill();
                }
            }
            Item::Log(stream, text) => {
                self.lines.push_back(LogInput {
                    stream,
                    text,
                    at: crate::model::now_ms(),
                    rows_before: Some(self.next_seq),
                });
                if self.lines.len() > MEMORY_LINES {
                    self.lines.pop_front();
                    self.lines_first += 1;
                }
            }
            Item::Fraction(f) => {
                self.fraction = Some(f);
                self.progress_dirty = true;
            }
            Item::Status(s) => {
                self.status = Some(s);
                self.progress_dirty = true;
            }
        }
    }

    fn pending_rows(&self) -> usize {
        self.rows.len() + self.spool.as_ref().map(|s| s.2).unwrap_or(0)
    }

    /// Moves the oldest in-memory rows to the spool file.
    fn spill(&mut self) {
        if self.spool.is_none() {
            let path = self
                .t
                .spool_dir
                .join(format!("spool-{}-{}.jsonl", self.t.job, self.t.attempt));
            let _ = std::fs::create_dir_all(&self.t.spool_dir);
            match OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&path)
            {
                Ok(f) => {
                    self.say(&format!(
                        "server unreachable: spooling rows of job {} to {}",
                        self.t.job,
                        path.display()
                    ));
                    self.spool = Some((path, f, 0));
                }
                Err(e) => {
                    self.say(&format!(
                        "cannot open spool file {}: {e}; keeping rows in memory",
                        path.display()
                    ));
                    return;
                }
            }
        }
        let (_, f, n) = self.spool.as_mut().expect("spool opened");
        let half = self.rows.len() / 2;
        let mut buf = Vec::new();
        for r in self.rows.iter().take(half) {
            buf.extend(serde_json::to_vec(r).expect("rows serialize"));
            buf.push(b'\n');
        }
        // Rows leave memory only once they are in the file.
        if f.write_all(&buf).and_then(|()| f.flush()).is_ok() {
            self.rows.drain(..half);
            *n += half;
        }
    }

    /// One attempt to send what is pending (respecting the backoff). Returns true when nothing
    /// is left.
    fn flush_once(&mut self) -> bool {
        if self.signals.stale.load(Ordering::Relaxed) {
            return true;
        }
        if let Some(at) = self.retry_at
            && Instant::now() < at
        {
            return false;
        }
        match self.try_send_all() {
            Ok(()) => {
                self.retry_at = None;
                self.backoff = Duration::from_millis(250);
                if self.warned_offline {
                    self.say(&format!(
                        "server reachable again; job {} stream caught up",
                        self.t.job
                    ));
                    self.warned_offline = false;
                }
                self.signals.offline.store(false, Ordering::Relaxed);
                true
            }
            Err(e) if e.is_unreachable() => {
                if !self.warned_offline {
                    self.say(&format!(
                        "server unreachable ({e}); buffering job {}'s output and retrying",
                        self.t.job
                    ));
                    self.warned_offline = true;
                }
                self.signals.offline.store(true, Ordering::Relaxed);
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
                false
            }
            Err(e) if e.status() == Some(409) || e.status() == Some(404) => {
                // This attempt is over: its spooled rows must never reach another.
                if let Some((path, _, _)) = self.spool.take() {
                    let _ = std::fs::remove_file(path);
                }
                self.say(&format!(
                    "job {} attempt {}: {e}; stopping it",
                    self.t.job, self.t.attempt
                ));
                self.signals.stale.store(true, Ordering::Relaxed);
                true
            }
            Err(e) => {
                // The server refused the batch itself (a bug, or a limit): drop it rather than
                // retry forever, and say so.
                self.say(&format!(
                    "job {}: the server refused a batch: {e}",
                    self.t.job
                ));
                true
            }
        }
    }

    fn try_send_all(&mut self) -> Result<(), ClientError> {
        // Spooled rows first (they are the oldest).
        if let Some((path, _, n)) = &self.spool
            && *n > 0
        {
            let path = path.clone();
            let file = File::open(&path)?;
            let mut batch = Vec::with_capacity(BATCH_ROWS);
            for line in BufReader::new(file).lines() {
                let line = line?;
                if let Ok(r) = serde_json::from_str::<Row>(&line) {
                    batch.push(r);
                }
                if batch.len() == BATCH_ROWS {
                    let b = std::mem::take(&mut batch);
                    self.refusable(|s| s.post_rows(b))?;
                }
            }
            if !batch.is_empty() {
                self.refusable(|s| s.post_rows(batch))?;
            }
            let _ = std::fs::remove_file(&path);
            self.spool = None;
        }
        while !self.rows.is_empty() || self.progress_dirty {
            let n = self.rows.len().min(BATCH_ROWS);
            let batch: Vec<Row> = self.rows.iter().take(n).cloned().collect();
            self.refusable(|s| s.post_rows(batch))?;
            self.rows.drain(..n);
            self.progress_dirty = false;
        }
        while !self.lines.is_empty() {
            let n = self.lines.len().min(2000);
            let batch = LogBatch {
                attempt: self.t.attempt,
                lease: self.t.lease,
                first: self.lines_first,
                lines: self.lines.iter().take(n).cloned().collect(),
            };
            self.refusable(|s| {
                let ack = s.t.client.post_logs(s.t.job, &batch)?;
                if ack.cancel {
                    s.signals.cancel.store(true, Ordering::Relaxed);
                }
                Ok(())
            })?;
            self.lines.drain(..n);
            self.lines_first += n as u64;
        }
        Ok(())
    }

    /// Runs one send; a batch the server refuses for good (a 4xx other than a stale lease) is
    /// dropped with a console line instead of being retried for ever.
    fn refusable(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        match f(self) {
            Err(e)
                if !e.is_unreachable()
                    && e.status()
                        .is_some_and(|c| (400..500).contains(&c) && c != 404 && c != 409) =>
            {
                self.say(&format!(
                    "job {}: the server refused a batch, dropping it: {e}",
                    self.t.job
                ));
                Ok(())
            }
            r => r,
        }
    }

    fn post_rows(&mut self, rows: Vec<Row>) -> Result<(), ClientError> {
        let batch = RowBatch {
            attempt: self.t.attempt,
            lease: self.t.lease,
            rows,
            fraction: self.fraction,
            status: self.status.clone(),
        };
        let ack = self
            .t
            .client
            .post_rows(self.t.job, &batch, self.t.postcard)?;
        if ack.cancel {
            self.signals.cancel.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Sends everything, retrying through outages, until done or the lease is stale.
    fn drain_all(&mut self) {
        loop {
            if self.flush_once()
                && self.rows.is_empty()
                && self.lines.is_empty()
                && self.spool.is_none()
            {
                return;
            }
            if self.signals.stale.load(Ordering::Relaxed) {
                return;
            }
            let wait = self
                .retry_at
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_millis(10));
            std::thread::sleep(wait.max(Duration::from_millis(10)));
        }
    }
}
