//! `GET /metrics`: the farm in the Prometheus text exposition format, encoded by
//! `prometheus-client` (OpenMetrics text, which Prometheus and `promtool` read).
//!
//! Counters and histograms are kept where the work happens and only read here: the queue's
//! (`queue::QueueMetrics`: claims, completions, rows, bytes, expiries, requeues, claim and
//! ingest latency), the store writer's (group size, commit latency) and the router's (requests
//! by route and status, latency by route). Gauges are computed at scrape time from what is
//! already counted: jobs by state and queue depths from the store's count table, workers by
//! state from the registry in memory, the file size from the file system. A scrape reads
//! nothing per job and takes no lock the hot paths wait on for longer than a copy.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::App;
use super::http::{HResult, HttpError, blocking, bytes_response};
use crate::queue::Queue;

/// Route and method labels of an HTTP request.
type RouteLabels = [(&'static str, &'static str); 2];
/// The answer's status label.
type StatusLabel = [(&'static str, u16); 1];

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

/// What the router counts of every request.
#[derive(Debug)]
pub(crate) struct HttpMetrics {
    requests: Family<(RouteLabels, StatusLabel), Counter>,
    seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            requests: Family::default(),
            seconds: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl HttpMetrics {
    /// Counts one answered request: `route` is the matched pattern (`/api/v1/jobs/{id}`, so
    /// the label set stays small), or `unmatched`; the time is until the answer's head.
    pub fn observe(&self, route: &'static str, method: &'static str, status: u16, began: Instant) {
        let labels = [("route", route), ("method", method)];
        self.requests
            .get_or_create(&(labels, [("status", status)]))
            .inc();
        self.seconds
            .get_or_create(&labels)
            .observe(began.elapsed().as_secs_f64());
    }
}

/// The gauges computed at each scrape.
struct Gauges {
    queue: Arc<Queue>,
}

impl std::fmt::Debug for Gauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gauges")
    }
}

impl Collector for Gauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let store = self.queue.store();
        // A store that cannot be read leaves these families out of the scrape (the other
        // families still answer): `gaia_up`-style absence is what alerting looks for.
        if let Ok(read) = store.read() {
            if let Ok(counts) = read.job_counts() {
                let mut fam = encoder.encode_descriptor(
                    "gaia_jobs",
                    "Jobs by state",
                    None,
                    MetricType::Gauge,
                )?;
                for (state, n) in counts {
                    let labels = [("state", state.as_str())];
                    ConstGauge::new(n as i64).encode(fam.encode_family(&labels)?)?;
                }
            }
            if let Ok(depths) = read.queue_depths() {
                let mut fam = encoder.encode_descriptor(
                    "gaia_queue_depth",
                    "Queued jobs by kind and requirement class (cpu, gpuN)",
                    None,
                    MetricType::Gauge,
                )?;
                for (kind, class, n) in depths {
                    let labels = [("kind", kind.as_str()), ("class", class.as_str())];
                    ConstGauge::new(n as i64).encode(fam.encode_family(&labels)?)?;
                }
            }
        }
        let by_state = self.queue.worker_state_counts();
        let mut fam = encoder.encode_descriptor(
            "gaia_workers",
            "Registered workers by state",
            None,
            MetricType::Gauge,
        )?;
        for (state, n) in by_state {
            let labels = [("state", state.as_str())];
            ConstGauge::new(n as i64).encode(fam.encode_family(&labels)?)?;
        }
        let size = encoder.encode_descriptor(
            "gaia_db_file_bytes",
            "Size of the redb database file",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(store.file_size() as i64).encode(size)?;
        Ok(())
    }
}

/// Builds the registry of every family `/metrics` shows.
pub(crate) fn registry(queue: &Arc<Queue>, http: &Arc<HttpMetrics>) -> Registry {
    let mut r = Registry::default();
    let q = queue.metrics().clone();
    r.register("gaia_claims", "Jobs handed to worker slots", q.claims);
    r.register(
        "gaia_completions",
        "Attempts ended by their worker's report, by outcome",
        q.completions,
    );
    r.register(
        "gaia_claim_seconds",
        "Time a successful claim's write took, commit included",
        q.claim_seconds,
    );
    r.register(
        "gaia_ingest_seconds",
        "Time from a row batch reaching the queue to its commit",
        q.ingest_seconds,
    );
    r.register("gaia_rows_ingested", "Result rows stored", q.rows);
    r.register(
        "gaia_row_bytes_ingested",
        "Bytes of row batches received, as sent (postcard or JSON)",
        q.row_bytes,
    );
    r.register(
        "gaia_lease_expiries",
        "Leases that ran out because their worker went silent",
        q.lease_expiries,
    );
    r.register(
        "gaia_requeues",
        "Jobs put back in the queue, by reason",
        q.requeues,
    );
    r.register(
        "gaia_quarantines",
        "Workers quarantined for failing at setup",
        q.quarantines,
    );
    let w = queue.store().writer_metrics();
    r.register(
        "gaia_writer_group_size",
        "Write operations committed together in one transaction",
        w.group_size.clone(),
    );
    r.register(
        "gaia_writer_commit_seconds",
        "Time of one write transaction, opened to committed (fsync included when durable)",
        w.commit_seconds.clone(),
    );
    r.register(
        "gaia_http_requests",
        "HTTP requests by route pattern, method and status",
        http.requests.clone(),
    );
    r.register(
        "gaia_http_request_seconds",
        "Time until the answer's head, by route pattern and method",
        http.seconds.clone(),
    );
    r.register_collector(Box::new(Gauges {
        queue: queue.clone(),
    }));
    r
}

/// Content type of the OpenMetrics answer (what Prometheus asks for first).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the Prometheus text format (0.0.4), for every other client.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The OpenMetrics text `prometheus-client` writes, as the Prometheus text format 0.0.4 that
/// older scrapers and `promtool check metrics` read. The two differ, for what this server
/// exposes, only in that a counter family's `# HELP`/`# TYPE` lines name it without its
/// `_total` suffix in OpenMetrics and with it in the Prometheus format, and in the `# EOF`
/// and `# UNIT` lines, which the Prometheus format does not have.
pub fn openmetrics_to_prometheus(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut help: Option<&str> = None;
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if line.starts_with("# HELP ") {
            // Held until the family's TYPE says whether it is a counter.
            if let Some(h) = help.take() {
                out.push_str(h);
                out.push('\n');
            }
            help = Some(line);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some(name) = rest.strip_suffix(" counter")
        {
            if let Some(h) = help.take() {
                let text = h.strip_prefix("# HELP ").and_then(|r| r.strip_prefix(name));
                match text {
                    Some(t) => out.push_str(&format!("# HELP {name}_total{t}\n")),
                    None => {
                        out.push_str(h);
                        out.push('\n');
                    }
                }
            }
            out.push_str(&format!("# TYPE {name}_total counter\n"));
            continue;
        }
        if let Some(h) = help.take() {
            out.push_str(h);
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    if let Some(h) = help {
        out.push_str(h);
        out.push('\n');
    }
    out
}

/// `GET /metrics`: OpenMetrics when the client asks for it (Prometheus does), the Prometheus
/// text format otherwise (curl, promtool).
pub(crate) async fn metrics(app: &Arc<App>, accept: Option<String>) -> HResult {
    let app = app.clone();
    let open = accept.is_some_and(|a| a.contains("application/openmetrics-text"));
    let text = blocking(move || {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &app.registry).map_err(|e| {
            HttpError::new(
                hyper::StatusCode::INTERNAL_SERVER_ERROR,
                format!("encode metrics: {e}"),
            )
        })?;
        Ok(if open {
            out
        } else {
            openmetrics_to_prometheus(&out)
        })
    })
    .await?;
    let ct = if open { OPENMETRICS } else { PROMETHEUS_TEXT };
    Ok(bytes_response(hyper::StatusCode::OK, ct, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_with_total_in_the_prometheus_format() {
        let om = "# HELP a_claims Jobs handed out.\n# TYPE a_claims counter\na_claims_total 3\n\
                  # HELP a_jobs Jobs.\n# TYPE a_jobs gauge\na_jobs{state=\"queued\"} 1\n\
                  # HELP a_s Time.\n# UNIT a_s seconds\n# TYPE a_s histogram\na_s_sum 0.0\n# EOF\n";
        let p = openmetrics_to_prometheus(om);
        assert_eq!(
            p,
            "# HELP a_claims_total Jobs handed out.\n# TYPE a_claims_total counter\na_claims_total 3\n\
             # HELP a_jobs Jobs.\n# TYPE a_jobs gauge\na_jobs{state=\"queued\"} 1\n\
             # HELP a_s Time.\n# TYPE a_s histogram\na_s_sum 0.0\n"
        );
    }
}
