//! A typed, blocking HTTP(S) client for every route (HTTPS through rustls with the webpki
//! roots, so workers reach a server behind Caddy).
//!
//! The server URL comes from `--server` / `GAIA_SERVER` (default `http://127.0.0.1:7434`), the
//! token from `--token` / `GAIA_TOKEN` or, on the server's own machine, the data dir's
//! `admin.token`.

mod output;
mod resolve;

pub use output::{Output, OutputOptions};

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ClientError;
use crate::model::{Job, JobId, JobSpec, JobState, Millis};
use crate::protocol::*;

/// Default server URL.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7434";

/// Largest JSON answer the client reads (row queries of big jobs are large).
const MAX_ANSWER: u64 = 1 << 30;
/// How long a file download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long an export may take (a whole farm's rows, or a study's result files).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Each pooled connection's read buffer. ureq's default is 128 KiB each way, zero-filled when a
/// connection first carries a request: 264 KiB of resident memory per connection (twice that
/// over HTTPS, where the TCP and the TLS layer each have a pair), which was a third of an idle
/// worker's anonymous memory (a heartbeat connection and one per slot). Our requests and
/// answers are small; a large download or upload streams through the buffer in more, smaller
/// reads and writes.
const INPUT_BUFFER: usize = 32 * 1024;
/// Each pooled connection's write buffer (request head and body chunks).
const OUTPUT_BUFFER: usize = 16 * 1024;
/// An answer's head must fit in the read buffer with room to spare, so that an oversized one is
/// refused by its size (ureq's `LargeResponseHeader`) before it fills the buffer, where ureq
/// would fail with a misleading "no progress" disconnect instead.
const MAX_RESPONSE_HEAD: usize = INPUT_BUFFER / 2;

/// A client of one server with one token.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client for `server` (`http://host:port` or `https://...`); HTTPS servers are checked
    /// against the Mozilla (webpki) roots, as a public certificate from Caddy is.
    pub fn new(server: &str, token: Option<String>) -> Result<Client, ClientError> {
        Client::build(server, token, None)
    }

    /// Like [`Client::new`], trusting only the CA certificates in `ca_pem` for HTTPS (a lab's
    /// own CA, or Caddy's `tls internal` root).
    pub fn with_ca(
        server: &str,
        token: Option<String>,
        ca_pem: &[u8],
    ) -> Result<Client, ClientError> {
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(ca_pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                Ok(_) => {}
                Err(e) => {
                    return Err(ClientError::Config(format!(
                        "cannot read the CA certificate: {e}"
                    )));
                }
            }
        }
        if certs.is_empty() {
            return Err(ClientError::Config(
                "the CA file holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        Client::build(
            server,
            token,
            Some(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs))),
        )
    }

    /// [`Client::new`] or [`Client::with_ca`], from an optional CA file.
    pub fn connect(
        server: &str,
        token: Option<String>,
        ca_file: Option<&Path>,
    ) -> Result<Client, ClientError> {
        match ca_file {
            None => Client::new(server, token),
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    ClientError::Config(format!("cannot read CA file {}: {e}", path.display()))
                })?;
                Client::with_ca(server, token, &pem)
            }
        }
    }

    fn build(
        server: &str,
        token: Option<String>,
        roots: Option<ureq::tls::RootCerts>,
    ) -> Result<Client, ClientError> {
        let base = server.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Config(format!(
                "server URL {server:?} must start with http:// or https://"
            )));
        }
        let mut config = ureq::Agent::config_builder();
        if let Some(roots) = roots {
            config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
        }
        let config = config
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(120)))
            .max_idle_connections_per_host(16)
            .input_buffer_size(INPUT_BUFFER)
            .output_buffer_size(OUTPUT_BUFFER)
            .max_response_header_size(MAX_RESPONSE_HEAD)
            .user_agent(format!("gaia/{}", crate::VERSION))
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::default(),
            resolve::Resolve::default(),
        );
        Ok(Client { base, token, agent })
    }

    /// The server URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        timeout: Option<Duration>,
    ) -> Result<ureq::http::Response<ureq::Body>, ClientError> {
        match body {
            Some((ct, bytes)) => self.run(method, path, &[("content-type", ct)], bytes, timeout),
            None => self.run(method, path, &[], (), timeout),
        }
    }

    /// Sends one request (a body of any kind ureq can send, streamed) and turns an error
    /// answer into [`ClientError::Status`] with the server's message.
    fn run(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl ureq::AsSendBody,
        timeout: Option<Duration>,
    ) -> Result<ureq::http::Response<ureq::Body>, ClientError> {
        let url = self.url(path);
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string());
        if let Some(t) = &self.token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let unreachable = |e: ureq::Error| ClientError::Unreachable {
            url: url.clone(),
            detail: e.to_string(),
        };
        let mut cfg = self.agent.configure_request(
            b.body(body)
                .map_err(|e| ClientError::Config(format!("bad request to {url}: {e}")))?,
        );
        if let Some(t) = timeout {
            cfg = cfg.timeout_global(Some(t));
        }
        let req = cfg.build();
        let resp = self.agent.run(req).map_err(unreachable)?;
        let status = resp.status().as_u16();
        if status >= 400 {
            let mut resp = resp;
            let text = resp
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_string()
                .unwrap_or_default();
            let message = serde_json::from_str::<ErrorBody>(&text)
                .map(|e| e.error)
                .unwrap_or_else(|_| text.trim().chars().take(500).collect());
            let message = if status == 401 {
                format!("{message} (check --token / GAIA_TOKEN)")
            } else {
                message
            };
            return Err(ClientError::Status {
                url,
                status,
                message,
            });
        }
        Ok(resp)
    }

    /// PUTs a file, streamed from disk (never whole in memory).
    fn put_file<T: DeserializeOwned>(&self, path: &str, file: &Path) -> Result<T, ClientError> {
        let f = std::fs::File::open(file)?;
        let resp = self.run(
            "PUT",
            path,
            &[
                ("content-type", "application/octet-stream"),
                // A refusal (403, 409, 413, ...) then arrives before the body is sent.
                ("expect", "100-continue"),
            ],
            f,
            Some(Duration::from_secs(3600)),
        )?;
        self.decode(path, resp)
    }

    fn decode<T: DeserializeOwned>(
        &self,
        path: &str,
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> Result<T, ClientError> {
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| ClientError::Unreachable {
                url: self.url(path),
                detail: e.to_string(),
            })?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            url: self.url(path),
            detail: e.to_string(),
        })
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let resp = self.call("GET", path, None, None)?;
        self.decode(path, resp)
    }

    fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &B,
        timeout: Option<Duration>,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).expect("requests serialize");
        let resp = self.call(method, path, Some(("application/json", bytes)), timeout)?;
        self.decode(path, resp)
    }

    /// `GET /healthz`.
    pub fn healthz(&self) -> Result<serde_json::Value, ClientError> {
        self.get("/healthz")
    }

    /// Submits a job; returns its id.
    pub fn submit(&self, spec: &JobSpec) -> Result<JobId, ClientError> {
        let r: SubmitResponse = self.send("POST", "/api/v1/jobs", spec, None)?;
        Ok(r.id)
    }

    /// Submits several jobs in one transaction.
    pub fn submit_batch(&self, jobs: Vec<JobSpec>) -> Result<Vec<JobId>, ClientError> {
        let r: SubmitBatchResponse =
            self.send("POST", "/api/v1/jobs/batch", &SubmitBatch { jobs }, None)?;
        Ok(r.ids)
    }

    /// One page of jobs, newest first.
    pub fn jobs(&self, q: &JobQuery) -> Result<JobList, ClientError> {
        let mut path = String::from("/api/v1/jobs?");
        if let Some(s) = q.state {
            path.push_str(&format!("state={}&", s.as_str()));
        }
        if let Some(s) = &q.study {
            path.push_str(&format!("study={}&", path_segment(s)));
        }
        if let Some(o) = &q.owner {
            path.push_str(&format!("owner={}&", path_segment(o)));
        }
        if q.mine {
            path.push_str("mine=1&");
        }
        if let Some(b) = q.before {
            path.push_str(&format!("before={b}&"));
        }
        if let Some(l) = q.limit {
            path.push_str(&format!("limit={l}&"));
        }
        self.get(path.trim_end_matches(['&', '?']))
    }

    /// One job.
    pub fn job(&self, id: JobId) -> Result<Job, ClientError> {
        self.get(&format!("/api/v1/jobs/{id}"))
    }

    /// Cancels a job.
    pub fn cancel(&self, id: JobId) -> Result<Job, ClientError> {
        let r: CancelResponse = self.send(
            "POST",
            &format!("/api/v1/jobs/{id}/cancel"),
            &serde_json::json!({}),
            None,
        )?;
        Ok(r.job)
    }

    /// A job's rows (one attempt; default the current one), downsampled to `points` if given.
    pub fn rows(
        &self,
        id: JobId,
        points: Option<usize>,
        attempt: Option<u32>,
    ) -> Result<RowsResponse, ClientError> {
        let mut path = format!("/api/v1/jobs/{id}/rows?");
        if let Some(p) = points {
            path.push_str(&format!("points={p}&"));
        }
        if let Some(a) = attempt {
            path.push_str(&format!("attempt={a}&"));
        }
        self.get(path.trim_end_matches(['&', '?']))
    }

    /// Rows of one attempt from row number `from_seq` on, whole (for following a job).
    pub fn rows_from(
        &self,
        id: JobId,
        attempt: u32,
        from_seq: u64,
    ) -> Result<RowsResponse, ClientError> {
        self.get(&format!(
            "/api/v1/jobs/{id}/rows?attempt={attempt}&x=seq&from={from_seq}"
        ))
    }

    /// Log lines of a job after position `after`.
    pub fn logs(&self, id: JobId, after: u64, limit: usize) -> Result<LogsResponse, ClientError> {
        self.get(&format!(
            "/api/v1/jobs/{id}/logs?after={after}&limit={limit}"
        ))
    }

    /// The last `n` log lines of a job.
    pub fn log_tail(&self, id: JobId, n: usize) -> Result<LogsResponse, ClientError> {
        self.get(&format!("/api/v1/jobs/{id}/logs?tail={n}"))
    }

    /// Registered workers.
    pub fn workers(&self) -> Result<WorkerList, ClientError> {
        self.get("/api/v1/workers")
    }

    /// How many queued jobs a worker slot with `caps` could run (an empty `kinds` list means
    /// any kind; `memory_mb` 0 means no memory limit).
    pub fn queue_demand(
        &self,
        caps: &crate::model::Capabilities,
    ) -> Result<crate::protocol::QueueDemand, ClientError> {
        let kinds: Vec<&str> = caps.kinds.iter().map(|k| k.as_str()).collect();
        let mut path = format!(
            "/api/v1/queue/demand?kinds={}&gpus={}&tags={}",
            kinds.join(","),
            caps.gpus,
            caps.tags
                .iter()
                .map(|t| path_segment(t))
                .collect::<Vec<_>>()
                .join(",")
        );
        if caps.memory_mb > 0 {
            path.push_str(&format!("&memory_mb={}", caps.memory_mb));
        }
        self.get(&path)
    }

    /// Server status.
    pub fn status(&self) -> Result<StatusResponse, ClientError> {
        self.get("/api/v1/status")
    }

    /// Stored events after an id (or the newest ones).
    pub fn events(&self, after: Option<u64>, limit: usize) -> Result<EventList, ClientError> {
        match after {
            Some(a) => self.get(&format!("/api/v1/events?after={a}&limit={limit}")),
            None => self.get(&format!("/api/v1/events?limit={limit}")),
        }
    }

    /// Creates a token for the caller's own user; the answer holds the secret.
    pub fn create_token(
        &self,
        name: &str,
        scope: crate::model::Scope,
    ) -> Result<TokenCreated, ClientError> {
        self.create_token_for(name, scope, None)
    }

    /// Creates a token acting for `user` (None: the caller's own user; only an admin may name
    /// another); the answer holds the secret.
    pub fn create_token_for(
        &self,
        name: &str,
        scope: crate::model::Scope,
        user: Option<&str>,
    ) -> Result<TokenCreated, ClientError> {
        self.send(
            "POST",
            "/api/v1/tokens",
            &TokenCreate {
                name: name.into(),
                scope,
                user: user.map(str::to_string),
            },
            None,
        )
    }

    /// Who this client's token is: scope, name, and the user it acts for.
    pub fn whoami(&self) -> Result<crate::protocol::WhoAmI, ClientError> {
        self.get("/api/v1/whoami")
    }

    /// Adds a user (admin); the answer holds their first token's secret.
    pub fn add_user(
        &self,
        req: &crate::protocol::UserAdd,
    ) -> Result<crate::protocol::UserAdded, ClientError> {
        self.send("POST", "/api/v1/users", req, None)
    }

    /// Users with their shares and limits.
    pub fn users(&self) -> Result<crate::protocol::UserList, ClientError> {
        self.get("/api/v1/users")
    }

    /// Changes a user's share or limits (admin).
    pub fn update_user(
        &self,
        name: &str,
        up: &crate::protocol::UserUpdate,
    ) -> Result<crate::model::UserInfo, ClientError> {
        self.send(
            "POST",
            &format!("/api/v1/users/{}", path_segment(name)),
            up,
            None,
        )
    }

    /// Removes a user and revokes their tokens (admin); their jobs keep their owner.
    pub fn remove_user(&self, name: &str) -> Result<serde_json::Value, ClientError> {
        self.send(
            "DELETE",
            &format!("/api/v1/users/{}", path_segment(name)),
            &serde_json::json!({}),
            None,
        )
    }

    /// Per-user usage: worker and GPU seconds since `since` (None: all time), running, queued,
    /// share, effective priority.
    pub fn usage(
        &self,
        since: Option<Millis>,
    ) -> Result<crate::protocol::UsageReport, ClientError> {
        match since {
            Some(s) => self.get(&format!("/api/v1/usage?since={s}")),
            None => self.get("/api/v1/usage"),
        }
    }

    /// Stored tokens (a submit token sees its own user's).
    pub fn tokens(&self) -> Result<TokenList, ClientError> {
        self.get("/api/v1/tokens")
    }

    /// Revokes a token by name.
    pub fn revoke_token(&self, name: &str) -> Result<(), ClientError> {
        let _: serde_json::Value = self.send(
            "DELETE",
            &format!("/api/v1/tokens/{}", path_segment(name)),
            &serde_json::json!({}),
            None,
        )?;
        Ok(())
    }

    // ---- operating the farm ----------------------------------------------------------------

    /// `GET /metrics`: the Prometheus text exposition (a `metrics` or `admin` token).
    pub fn metrics(&self) -> Result<String, ClientError> {
        let mut out = Vec::new();
        self.download("/metrics", &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// One worker, by id or unique name.
    pub fn worker(&self, who: &str) -> Result<crate::model::Worker, ClientError> {
        self.get(&format!("/api/v1/workers/{}", path_segment(who)))
    }

    /// A worker's telemetry over a span (`hour`, `day`, `week`, `month`).
    pub fn worker_telemetry(
        &self,
        who: &str,
        span: &str,
    ) -> Result<TelemetryResponse, ClientError> {
        self.get(&format!(
            "/api/v1/workers/{}/telemetry?span={}",
            path_segment(who),
            path_segment(span)
        ))
    }

    fn worker_action(
        &self,
        who: &str,
        action: &str,
        body: &HoldRequest,
    ) -> Result<crate::model::Worker, ClientError> {
        self.send(
            "POST",
            &format!("/api/v1/workers/{}/{action}", path_segment(who)),
            body,
            None,
        )
    }

    /// Pauses a worker: it finishes its running jobs and claims no new ones.
    pub fn pause_worker(
        &self,
        who: &str,
        reason: Option<String>,
    ) -> Result<crate::model::Worker, ClientError> {
        self.worker_action(
            who,
            "pause",
            &HoldRequest {
                reason,
                exit: false,
            },
        )
    }

    /// Drains a worker: it finishes its running jobs, claims none, and with `exit` ends.
    pub fn drain_worker(
        &self,
        who: &str,
        reason: Option<String>,
        exit: bool,
    ) -> Result<crate::model::Worker, ClientError> {
        self.worker_action(who, "drain", &HoldRequest { reason, exit })
    }

    /// Lifts a worker's pause, drain or quarantine.
    pub fn resume_worker(&self, who: &str) -> Result<crate::model::Worker, ClientError> {
        self.worker_action(who, "resume", &HoldRequest::default())
    }

    /// Forgets an offline worker (its registration and telemetry).
    pub fn forget_worker(&self, who: &str) -> Result<crate::model::Worker, ClientError> {
        self.send(
            "DELETE",
            &format!("/api/v1/workers/{}", path_segment(who)),
            &serde_json::json!({}),
            None,
        )
    }

    /// Deletes old rows and log lines on the server (in batches; may take minutes).
    pub fn gc(
        &self,
        req: &crate::store::maintenance::GcRequest,
    ) -> Result<crate::store::maintenance::GcReport, ClientError> {
        self.send("POST", "/api/v1/gc", req, Some(EXPORT_TIMEOUT))
    }

    /// Saves a consistent copy of the server's database to `dest`, whole or not at all;
    /// returns its size in bytes.
    pub fn backup(&self, dest: &Path) -> Result<u64, ClientError> {
        save_to_file(dest, |out| {
            self.stream("/api/v1/backup", out, u64::MAX, EXPORT_TIMEOUT, &mut |_| {})
        })
    }

    /// The audit log: entries after an id (oldest first), or the newest ones.
    pub fn audit(&self, after: Option<u64>, limit: usize) -> Result<AuditList, ClientError> {
        match after {
            Some(a) => self.get(&format!("/api/v1/audit?after={a}&limit={limit}")),
            None => self.get(&format!("/api/v1/audit?limit={limit}")),
        }
    }

    // ---- worker calls ------------------------------------------------------------------

    /// Registers a worker.
    pub fn register(&self, req: &RegisterRequest) -> Result<RegisterResponse, ClientError> {
        self.send("POST", "/api/v1/workers/register", req, None)
    }

    /// Heartbeats.
    pub fn heartbeat(
        &self,
        worker_id: &str,
        req: &HeartbeatRequest,
    ) -> Result<HeartbeatResponse, ClientError> {
        self.send(
            "POST",
            &format!("/api/v1/workers/{}/heartbeat", path_segment(worker_id)),
            req,
            Some(Duration::from_secs(20)),
        )
    }

    /// Tells the server this worker is stopping (it shows offline at once).
    pub fn leave(&self, worker_id: &str) -> Result<crate::model::Worker, ClientError> {
        self.send(
            "POST",
            &format!("/api/v1/workers/{}/leave", path_segment(worker_id)),
            &serde_json::json!({}),
            // A courtesy on the way out: a server that is down must not hold the exit up.
            Some(Duration::from_secs(3)),
        )
    }

    /// Claims a job for one slot, waiting up to `req.wait_ms` on the server.
    pub fn claim(&self, req: &ClaimRequest) -> Result<Option<Assignment>, ClientError> {
        Ok(self.claim_with(req)?.assignment)
    }

    /// Claims a job and returns the whole answer (with the verdict on `req.finished`).
    pub fn claim_with(&self, req: &ClaimRequest) -> Result<ClaimResponse, ClientError> {
        let timeout = Duration::from_millis(req.wait_ms) + Duration::from_secs(15);
        self.send("POST", "/api/v1/claim", req, Some(timeout))
    }

    /// Sends a batch of rows (postcard when `binary`, else JSON).
    pub fn post_rows(
        &self,
        job: JobId,
        batch: &RowBatch,
        binary: bool,
    ) -> Result<RowAck, ClientError> {
        let path = format!("/api/v1/jobs/{job}/rows");
        if binary {
            let resp = self.call(
                "POST",
                &path,
                Some((POSTCARD_CONTENT_TYPE, encode_postcard(batch))),
                Some(Duration::from_secs(60)),
            )?;
            self.decode(&path, resp)
        } else {
            self.send("POST", &path, batch, Some(Duration::from_secs(60)))
        }
    }

    /// Sends log lines.
    pub fn post_logs(&self, job: JobId, batch: &LogBatch) -> Result<LogAck, ClientError> {
        self.send(
            "POST",
            &format!("/api/v1/jobs/{job}/logs"),
            batch,
            Some(Duration::from_secs(60)),
        )
    }

    /// Ends an attempt.
    pub fn complete(&self, job: JobId, req: &CompleteRequest) -> Result<Job, ClientError> {
        self.send("POST", &format!("/api/v1/jobs/{job}/complete"), req, None)
    }

    /// Gives a job back to the queue.
    pub fn requeue(&self, job: JobId, req: &RequeueRequest) -> Result<Job, ClientError> {
        self.send("POST", &format!("/api/v1/jobs/{job}/requeue"), req, None)
    }

    /// Uploads a result file of an attempt.
    pub fn upload_file(
        &self,
        job: JobId,
        attempt: u32,
        lease: u64,
        name: &str,
        path: &Path,
    ) -> Result<crate::model::FileInfo, ClientError> {
        let p = format!(
            "/api/v1/jobs/{job}/files/{}?attempt={attempt}&lease={lease}",
            path_segment(name)
        );
        self.put_file(&p, path)
    }

    /// A job's result files.
    pub fn files(&self, job: JobId) -> Result<FileList, ClientError> {
        self.get(&format!("/api/v1/jobs/{job}/files"))
    }

    /// Streams a GET answer into `out` (downloads, exports); returns the bytes written.
    pub fn download(&self, path: &str, out: &mut dyn Write) -> Result<u64, ClientError> {
        self.stream(path, out, u64::MAX, DOWNLOAD_TIMEOUT, &mut |_| {})
    }

    /// Like [`Client::download`], but reads at most `limit + 1` bytes: an answer longer than
    /// `limit` is refused with [`ClientError::TooLarge`] after at most `limit` bytes were
    /// written, so a hostile server cannot fill the disk.
    pub fn download_at_most(
        &self,
        path: &str,
        out: &mut dyn Write,
        limit: u64,
    ) -> Result<u64, ClientError> {
        self.stream(path, out, limit, DOWNLOAD_TIMEOUT, &mut |_| {})
    }

    /// Downloads result file `name` of `job` into the folder `dir`, whole or not at all (see
    /// [`save_to_file`]); returns where it went. A name that is no valid file name
    /// ([`crate::model::validate_file_name`]) is refused, so a server cannot write outside `dir`.
    pub fn download_job_file(
        &self,
        job: JobId,
        name: &str,
        dir: &Path,
    ) -> Result<PathBuf, ClientError> {
        if let Err(e) = crate::model::validate_file_name(name) {
            return Err(ClientError::Config(format!(
                "job {job}'s file: {e}; not writing it"
            )));
        }
        let dest = dir.join(name);
        let path = format!("/api/v1/jobs/{job}/files/{}", path_segment(name));
        save_to_file(&dest, |out| self.download(&path, out))?;
        Ok(dest)
    }

    /// The one loop every download and export is read through: the answer's body into `out`,
    /// at most `limit` bytes, `on_start` told the rows the answer announces
    /// ([`crate::export::ROWS_HEADER`]) before the first byte.
    ///
    /// The end of the stream is HTTP/1.1's own framing: a streamed answer is chunked and ends
    /// with a zero-length chunk, a whole one has a `content-length`; ureq reports a connection
    /// that closes before either as an error. The server cuts the connection when it fails
    /// mid-answer (`server::http::StreamTx::fail`), so such an answer is
    /// [`ClientError::Interrupted`], never a short body taken for a whole one.
    fn stream(
        &self,
        path: &str,
        out: &mut dyn Write,
        limit: u64,
        timeout: Duration,
        on_start: &mut dyn FnMut(Option<u64>),
    ) -> Result<u64, ClientError> {
        let resp = self.call("GET", path, None, Some(timeout))?;
        let too_large = || ClientError::TooLarge {
            url: self.url(path),
            limit,
        };
        if resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|len| len > limit)
        {
            return Err(too_large());
        }
        let rows = resp
            .headers()
            .get(crate::export::ROWS_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        on_start(rows);
        let mut reader = resp.into_body().into_with_config().limit(u64::MAX).reader();
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0u64;
        loop {
            // Never ask for more than one byte past the limit.
            let want = (buf.len() as u64).min(limit.saturating_sub(n).saturating_add(1)) as usize;
            let k = match reader.read(&mut buf[..want]) {
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ClientError::Interrupted {
                        url: self.url(path),
                        bytes: n,
                        detail: e.to_string(),
                    });
                }
            };
            if k == 0 {
                break;
            }
            if n.saturating_add(k as u64) > limit {
                return Err(too_large());
            }
            out.write_all(&buf[..k])?;
            n += k as u64;
        }
        Ok(n)
    }

    // ---- studies and exports ---------------------------------------------------------------

    /// Submits a study: its sweep expands on the server into jobs stored with the study's
    /// record in one transaction.
    pub fn submit_study(
        &self,
        req: &crate::protocol::StudySubmit,
    ) -> Result<crate::protocol::StudySubmitted, ClientError> {
        self.send("POST", "/api/v1/studies", req, None)
    }

    /// Every study with its progress, newest first.
    pub fn studies(&self) -> Result<crate::protocol::StudyList, ClientError> {
        self.get("/api/v1/studies")
    }

    /// One study: jobs, progress, ETA, best per method × environment.
    pub fn study(&self, name: &str) -> Result<crate::protocol::StudyReport, ClientError> {
        self.get(&format!("/api/v1/studies/{}", path_segment(name)))
    }

    /// Streams an export into `out`. `on_start` is called once the answer starts, with the
    /// number of rows it will carry (CSV and JSON). Returns the bytes written.
    pub fn export(
        &self,
        target: &crate::export::Target,
        format: crate::export::Format,
        png: &crate::export::png::PngOptions,
        out: &mut dyn Write,
        on_start: &mut dyn FnMut(Option<u64>),
    ) -> Result<u64, ClientError> {
        let target = match target {
            crate::export::Target::Study(s) => crate::export::Target::Study(path_segment(s)),
            t => t.clone(),
        };
        let mut path = target.path(format);
        if format == crate::export::Format::Png {
            path.push_str(&png.query());
        }
        self.stream(&path, out, u64::MAX, EXPORT_TIMEOUT, on_start)
    }

    /// Streams a study's result files, as one ZIP, into `out`; returns the bytes written.
    pub fn study_files_zip(&self, name: &str, out: &mut dyn Write) -> Result<u64, ClientError> {
        let path = crate::export::Target::files_zip_path(&path_segment(name));
        self.stream(&path, out, u64::MAX, EXPORT_TIMEOUT, &mut |_| {})
    }

    // ---- method comparison and more of a study ---------------------------------------------

    /// `path` with the comparison's query (and `extra`, `k=v&...`) appended.
    fn compare_path(
        name: &str,
        what: &str,
        opts: &crate::study::compare::CompareOptions,
        extra: &str,
    ) -> String {
        let q: Vec<String> = [opts.query(), extra.to_string()]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        let mut path = format!("/api/v1/studies/{}/{what}", path_segment(name));
        if !q.is_empty() {
            path.push('?');
            path.push_str(&q.join("&"));
        }
        path
    }

    /// Compares the methods of study `name` (and of the studies in `opts.with`) on the server.
    pub fn compare(
        &self,
        name: &str,
        opts: &crate::study::compare::CompareOptions,
    ) -> Result<crate::protocol::Comparison, ClientError> {
        self.get(&Self::compare_path(name, "compare", opts, ""))
    }

    /// Streams figure `figure` of the comparison, a PNG, into `out`; returns the bytes written.
    pub fn compare_figure(
        &self,
        name: &str,
        opts: &crate::study::compare::CompareOptions,
        figure: crate::export::png::compare::CompareFigure,
        png: &crate::export::png::PngOptions,
        out: &mut dyn Write,
    ) -> Result<u64, ClientError> {
        let mut extra = format!("figure={}", figure.as_str());
        let size = png.query();
        if let Some(q) = size.strip_prefix('?') {
            extra.push('&');
            extra.push_str(q);
        }
        let path = Self::compare_path(name, "compare.png", opts, &extra);
        self.stream(&path, out, u64::MAX, EXPORT_TIMEOUT, &mut |_| {})
    }

    /// Streams every scored run of the study (`scores.json`) into `out`.
    pub fn study_scores(
        &self,
        name: &str,
        opts: &crate::study::compare::CompareOptions,
        out: &mut dyn Write,
    ) -> Result<u64, ClientError> {
        let path = Self::compare_path(name, "scores.json", opts, "");
        self.stream(&path, out, u64::MAX, EXPORT_TIMEOUT, &mut |_| {})
    }

    /// Adds seeds to a study's grid (`gaia study extend`).
    pub fn extend_study(
        &self,
        name: &str,
        req: &crate::protocol::StudyExtend,
    ) -> Result<crate::protocol::StudySubmitted, ClientError> {
        let path = format!("/api/v1/studies/{}/extend", path_segment(name));
        self.send("POST", &path, req, None)
    }

    /// Runs a study's failed runs again (`gaia study retry`).
    pub fn retry_study(
        &self,
        name: &str,
        req: &crate::protocol::StudyRetry,
    ) -> Result<crate::protocol::StudySubmitted, ClientError> {
        let path = format!("/api/v1/studies/{}/retry", path_segment(name));
        self.send("POST", &path, req, None)
    }

    // ---- releases ----------------------------------------------------------------------

    /// Every release, newest first, with the promoted one.
    pub fn releases(&self) -> Result<crate::release::ReleaseList, ClientError> {
        self.get("/api/v1/releases")
    }

    /// One release's metadata.
    pub fn release(&self, tag: &str) -> Result<crate::release::Release, ClientError> {
        self.get(&format!("/api/v1/releases/{}", path_segment(tag)))
    }

    /// Uploads one release file, streamed from disk, with its SHA-256 (the server checks it)
    /// and optional platform and signature.
    pub fn upload_release_file(
        &self,
        tag: &str,
        name: &str,
        path: &Path,
        platform: Option<&str>,
        signature: Option<&str>,
    ) -> Result<crate::release::ReleaseFile, ClientError> {
        let (sha, _) = crate::release::sha256_file(path)?;
        let mut p = format!(
            "/api/v1/releases/{}/files/{}?sha256={sha}",
            path_segment(tag),
            path_segment(name)
        );
        if let Some(pl) = platform {
            p.push_str(&format!("&platform={}", path_segment(pl)));
        }
        if let Some(sig) = signature {
            p.push_str(&format!("&signature={sig}"));
        }
        self.put_file(&p, path)
    }

    /// Promotes a release: workers with --auto-update move to it.
    pub fn promote(&self, tag: &str) -> Result<crate::release::Release, ClientError> {
        self.send(
            "POST",
            &format!("/api/v1/releases/{}/promote", path_segment(tag)),
            &serde_json::json!({}),
            None,
        )
    }

    /// Yanks a release: workers go back to the release promoted before it.
    pub fn yank(&self, tag: &str) -> Result<crate::release::Release, ClientError> {
        self.send(
            "POST",
            &format!("/api/v1/releases/{}/yank", path_segment(tag)),
            &serde_json::json!({}),
            None,
        )
    }

    /// A worker reports how an update went.
    pub fn update_report(
        &self,
        worker_id: &str,
        report: &crate::release::UpdateReport,
    ) -> Result<(), ClientError> {
        let _: serde_json::Value = self.send(
            "POST",
            &format!("/api/v1/workers/{}/report", path_segment(worker_id)),
            report,
            None,
        )?;
        Ok(())
    }

    /// Waits until every job of study `name` has ended (none queued or running), calling
    /// `progress` with each new look at it; returns the last look.
    pub fn wait_study(
        &self,
        name: &str,
        mut progress: impl FnMut(&crate::protocol::StudyReport),
    ) -> Result<crate::protocol::StudyReport, ClientError> {
        loop {
            let report = self.study(name)?;
            progress(&report);
            let open: u64 = [JobState::Queued, JobState::Running]
                .iter()
                .filter_map(|s| report.progress.states.get(s.as_str()))
                .sum();
            if report.progress.jobs > 0 && open == 0 {
                return Ok(report);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Waits until a job ends, calling `progress` with each new look at it.
    pub fn wait(&self, id: JobId, mut progress: impl FnMut(&Job)) -> Result<Job, ClientError> {
        loop {
            let job = self.job(id)?;
            progress(&job);
            if job.state.is_terminal() {
                return Ok(job);
            }
            std::thread::sleep(Duration::from_millis(if job.state == JobState::Queued {
                500
            } else {
                250
            }));
        }
    }
}

/// Writes `dest` whole or not at all: `fill` writes into `.<name>.part` beside it, which is
/// synced and renamed over `dest` only when `fill` succeeds, and removed when it fails. A reader
/// of `dest` never sees half a download, and a failed one leaves nothing behind.
pub fn save_to_file<T>(
    dest: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<T, ClientError>,
) -> Result<T, ClientError> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    let part = dest.with_file_name(format!(".{name}.part"));
    let file = std::fs::File::create(&part).map_err(|e| ClientError::File {
        path: part.clone(),
        cause: e,
    })?;
    let mut out = PartFile {
        inner: std::io::BufWriter::with_capacity(256 * 1024, file),
        path: &part,
    };
    let result = fill(&mut out).and_then(|t| {
        let file = out.inner.into_inner().map_err(|e| ClientError::File {
            path: part.clone(),
            cause: e.into_error(),
        })?;
        file.sync_all()
            .and_then(|()| std::fs::rename(&part, dest))
            .map_err(|e| ClientError::File {
                path: dest.to_path_buf(),
                cause: e,
            })?;
        Ok(t)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

/// A `.part` file whose write errors name it.
struct PartFile<'a> {
    inner: std::io::BufWriter<std::fs::File>,
    path: &'a Path,
}

impl Write for PartFile<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf).map_err(|e| self.named(e))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().map_err(|e| self.named(e))
    }
}

impl PartFile<'_> {
    fn named(&self, e: std::io::Error) -> std::io::Error {
        std::io::Error::new(e.kind(), format!("write {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_file_is_whole_or_absent() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("export.csv");
        let n = save_to_file(&dest, |out| {
            out.write_all(b"a,b\r\n")?;
            Ok(5)
        })
        .unwrap();
        assert_eq!(n, 5);
        assert_eq!(std::fs::read(&dest).unwrap(), b"a,b\r\n");
        // A failure half-way leaves the earlier file as it was and no .part behind.
        let err = save_to_file(&dest, |out| -> Result<(), ClientError> {
            out.write_all(b"half")?;
            Err(ClientError::Interrupted {
                url: "u".into(),
                bytes: 4,
                detail: "cut".into(),
            })
        })
        .unwrap_err();
        assert!(matches!(err, ClientError::Interrupted { .. }), "{err}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"a,b\r\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["export.csv"]);
        // A folder that is not there is an error naming the file.
        let err = save_to_file(&dir.path().join("no/x.csv"), |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains(".x.csv.part"), "{err}");
    }

    #[test]
    fn result_files_cannot_escape_their_folder() {
        let dir = tempfile::tempdir().unwrap();
        let c = Client::new("http://127.0.0.1:9", None).unwrap();
        for bad in ["../x", "/etc/passwd", "a/b", "..", ".", ""] {
            let err = c.download_job_file(1, bad, dir.path()).unwrap_err();
            assert!(
                err.to_string().contains("invalid file name"),
                "{bad}: {err}"
            );
        }
    }
}
