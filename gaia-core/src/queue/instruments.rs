//! What the queue counts as it works, for `/metrics`: claims, completions by outcome, rows
//! and bytes ingested, lease expiries, requeues, quarantines, and the latency of claims and
//! row batches. Each is a lock-free counter or one histogram update per operation, so
//! counting never slows the work it counts.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// One label: `[(name, value)]`.
pub type Label = [(&'static str, &'static str); 1];

/// The queue's counters and histograms (clones share their values).
#[derive(Debug, Clone)]
pub struct QueueMetrics {
    /// Jobs handed to a worker slot.
    pub claims: Counter,
    /// Attempts ended by their worker's report, by outcome (`succeeded`, `failed`, ...).
    pub completions: Family<Label, Counter>,
    /// Seconds a successful claim's write took (the store's commit included).
    pub claim_seconds: Histogram,
    /// Seconds from a row batch's arrival in the queue to its commit.
    pub ingest_seconds: Histogram,
    /// Rows stored (retried rows that were already stored are not counted).
    pub rows: Counter,
    /// Bytes of row batches received (as sent: postcard or JSON).
    pub row_bytes: Counter,
    /// Leases that ran out (the worker went silent).
    pub lease_expiries: Counter,
    /// Jobs put back in the queue, by why (`lease_expired`, `given_back`, `preempted`).
    pub requeues: Family<Label, Counter>,
    /// Workers the server quarantined.
    pub quarantines: Counter,
}

impl Default for QueueMetrics {
    /// Every outcome and requeue reason starts at 0, so their series exist from the first
    /// scrape (a rate over a series that appears late misses its first increments).
    fn default() -> Self {
        let m = QueueMetrics {
            claims: Counter::default(),
            completions: Family::default(),
            claim_seconds: Histogram::new(exponential_buckets(0.0001, 4.0, 9)),
            ingest_seconds: Histogram::new(exponential_buckets(0.0001, 4.0, 9)),
            rows: Counter::default(),
            row_bytes: Counter::default(),
            lease_expiries: Counter::default(),
            requeues: Family::default(),
            quarantines: Counter::default(),
        };
        for o in crate::protocol::Outcome::ALL {
            let _ = m
                .completions
                .get_or_create(&[("outcome", o.state().as_str())]);
        }
        for r in ["lease_expired", "given_back", "preempted"] {
            let _ = m.requeues.get_or_create(&[("reason", r)]);
        }
        m
    }
}
