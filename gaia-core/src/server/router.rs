//! Routing: the one table of endpoints ([`ROUTES`]), and the dispatch `match`.
//!
//! Auth happens here, from the table: a route with a scope needs a bearer token whose scope
//! allows it (401 without a valid token, 403 with a token of too small a scope). Beside its
//! scope every endpoint has an ownership decision ([`Endpoint::ownership`]): what a caller
//! below admin may touch through it. The router checks the owner of the job or token a path
//! names (403 naming the owner); the rest is decided where the body is read.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use super::http::{BodyLimit, HttpError, Query, Res, error_response, query_pairs};
use super::{
    App, ServerConfig, auth, dashboard, demand, events, export, files, jobs, maintenance, metrics,
    overview, releases, studies, tokens, users, workers,
};
use crate::export::Target;
use crate::model::{HoldKind, Scope};
use crate::protocol::{PROTOCOL_HEADER, PROTOCOL_VERSION};

pub mod openapi;

/// What an endpoint does (one handler each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Healthz,
    Dashboard,
    SubmitJob,
    SubmitBatch,
    ListJobs,
    GetJob,
    CancelJob,
    GetRows,
    PostRows,
    GetLogs,
    PostLogs,
    Complete,
    Requeue,
    ListFiles,
    GetFile,
    PutFile,
    Register,
    Heartbeat,
    Leave,
    Claim,
    ListWorkers,
    QueueDemand,
    Status,
    Events,
    CreateToken,
    ListTokens,
    RevokeToken,
    Whoami,
    Summary,
    SubmitStudy,
    ListStudies,
    GetStudy,
    StudyFiles,
    CompareStudy,
    CompareFigure,
    StudyScores,
    ExtendStudy,
    RetryStudy,
    ExportJob,
    ExportStudy,
    ExportAll,
    ListReleases,
    GetRelease,
    UploadRelease,
    DownloadRelease,
    PromoteRelease,
    YankRelease,
    UpdateReport,
    Metrics,
    GetWorker,
    WorkerTelemetry,
    PauseWorker,
    ResumeWorker,
    DrainWorker,
    ForgetWorker,
    Gc,
    Backup,
    Audit,
    AddUser,
    ListUsers,
    UpdateUser,
    RemoveUser,
    Usage,
    OpenApi,
}

/// What a caller below admin may touch through an endpoint (an admin token may touch
/// everything): the route table's ownership decision, beside its scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Nothing a user owns: the scope decides alone.
    None,
    /// The job in the path: only its owner's tokens (checked by the router, 403 naming the
    /// owner).
    Job,
    /// The token named in the path: only its user's tokens (checked by the router).
    Token,
    /// The study named in the path: only its owner's tokens (checked in the queue's write,
    /// 403 naming the owner).
    Study,
    /// Decided from the body, inside the operation: a study is extended only by its owner (in
    /// the queue's write), a token made only for the caller's own user and with a scope no
    /// larger than the caller's (in the handler).
    Body,
    /// A listing that shows a caller below admin only what their user owns.
    Own,
}

/// What a route's request body is, which sets its size limit. The router refuses a body
/// declared (`content-length`) over the limit with 413 before the handler runs; the handlers read
/// at most the limit ([`super::http::read_body`], [`super::http::body_to_file`]), so a chunked
/// body without a length is cut off at the same size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// No body is read (a small one, such as `{}`, is accepted and ignored): 64 KiB.
    None,
    /// A JSON request: [`ServerConfig::max_body`] (default 1 MiB).
    Json,
    /// A report that may carry a built-in's result (complete, claim): 4 MiB.
    Report,
    /// A batch submit (up to 100,000 specs) or a batch of log lines: 16 MiB.
    Batch,
    /// A row batch, JSON or postcard: 32 MiB.
    Rows,
    /// A result file, streamed to disk: [`ServerConfig::max_file`] (default 256 MiB).
    File,
    /// A release file, streamed to disk: [`ServerConfig::max_release`] (default 512 MiB).
    Release,
}

impl Body {
    /// The largest body this kind accepts, in bytes.
    pub fn limit(self, config: &ServerConfig) -> u64 {
        match self {
            Body::None => 64 << 10,
            Body::Json => config.max_body as u64,
            Body::Report => 4 << 20,
            Body::Batch => 16 << 20,
            Body::Rows => 32 << 20,
            Body::File => config.max_file,
            Body::Release => config.max_release,
        }
    }
}

impl Endpoint {
    /// The body this endpoint reads.
    pub const fn body(self) -> Body {
        match self {
            E::SubmitJob
            | E::Requeue
            | E::Register
            | E::Heartbeat
            | E::CreateToken
            | E::SubmitStudy
            | E::ExtendStudy
            | E::RetryStudy
            | E::UpdateReport
            | E::PauseWorker
            | E::DrainWorker
            | E::Gc
            | E::AddUser
            | E::UpdateUser => Body::Json,
            E::Complete | E::Claim => Body::Report,
            E::SubmitBatch | E::PostLogs => Body::Batch,
            E::PostRows => Body::Rows,
            E::PutFile => Body::File,
            E::UploadRelease => Body::Release,
            _ => Body::None,
        }
    }

    /// What a caller below admin may touch through this endpoint.
    pub const fn ownership(self) -> Ownership {
        match self {
            E::CancelJob => Ownership::Job,
            E::RevokeToken => Ownership::Token,
            E::SubmitStudy | E::CreateToken => Ownership::Body,
            E::ExtendStudy | E::RetryStudy => Ownership::Study,
            E::ListTokens => Ownership::Own,
            _ => Ownership::None,
        }
    }
}

/// One route: method, path pattern (`{id}` is a job id, `{name}` any one segment), the scope it
/// needs (None: open), and what it does.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub scope: Option<Scope>,
    pub endpoint: Endpoint,
    pub doc: &'static str,
}

const fn r(
    method: &'static str,
    path: &'static str,
    scope: Option<Scope>,
    endpoint: Endpoint,
    doc: &'static str,
) -> Route {
    Route {
        method,
        path,
        scope,
        endpoint,
        doc,
    }
}

use Endpoint as E;
const ADMIN: Option<Scope> = Some(Scope::Admin);
const WORKER: Option<Scope> = Some(Scope::Worker);
const READ: Option<Scope> = Some(Scope::Read);
const METRICS: Option<Scope> = Some(Scope::Metrics);
const SUBMIT: Option<Scope> = Some(Scope::Submit);

/// Every endpoint of the server.
pub const ROUTES: &[Route] = &[
    r("GET", "/healthz", None, E::Healthz, "liveness and version"),
    r("GET", "/", None, E::Dashboard, "the dashboard"),
    r(
        "GET",
        "/metrics",
        METRICS,
        E::Metrics,
        "Prometheus metrics (text exposition)",
    ),
    r("GET", "/{name}", None, E::Dashboard, "dashboard assets"),
    r("POST", "/api/v1/jobs", SUBMIT, E::SubmitJob, "submit a job"),
    r(
        "POST",
        "/api/v1/jobs/batch",
        SUBMIT,
        E::SubmitBatch,
        "submit several jobs at once",
    ),
    r(
        "GET",
        "/api/v1/jobs",
        READ,
        E::ListJobs,
        "list jobs, newest first",
    ),
    r("GET", "/api/v1/jobs/{id}", READ, E::GetJob, "one job"),
    r(
        "POST",
        "/api/v1/jobs/{id}/cancel",
        SUBMIT,
        E::CancelJob,
        "cancel a job",
    ),
    r(
        "GET",
        "/api/v1/jobs/{id}/rows",
        READ,
        E::GetRows,
        "a job's rows, whole or downsampled",
    ),
    r(
        "POST",
        "/api/v1/jobs/{id}/rows",
        WORKER,
        E::PostRows,
        "a worker stores a batch of rows",
    ),
    r(
        "GET",
        "/api/v1/jobs/{id}/logs",
        READ,
        E::GetLogs,
        "a job's log lines",
    ),
    r(
        "POST",
        "/api/v1/jobs/{id}/logs",
        WORKER,
        E::PostLogs,
        "a worker stores log lines",
    ),
    r(
        "POST",
        "/api/v1/jobs/{id}/complete",
        WORKER,
        E::Complete,
        "a worker ends an attempt",
    ),
    r(
        "POST",
        "/api/v1/jobs/{id}/requeue",
        WORKER,
        E::Requeue,
        "a worker gives a job back",
    ),
    r(
        "GET",
        "/api/v1/jobs/{id}/files",
        READ,
        E::ListFiles,
        "a job's result files",
    ),
    r(
        "GET",
        "/api/v1/jobs/{id}/files/{name}",
        READ,
        E::GetFile,
        "download a result file",
    ),
    r(
        "PUT",
        "/api/v1/jobs/{id}/files/{name}",
        WORKER,
        E::PutFile,
        "a worker uploads a result file",
    ),
    r(
        "POST",
        "/api/v1/workers/register",
        WORKER,
        E::Register,
        "a worker registers",
    ),
    r(
        "POST",
        "/api/v1/workers/{name}/heartbeat",
        WORKER,
        E::Heartbeat,
        "a worker heartbeats",
    ),
    r(
        "POST",
        "/api/v1/workers/{name}/leave",
        WORKER,
        E::Leave,
        "a worker says it is stopping",
    ),
    r(
        "POST",
        "/api/v1/claim",
        WORKER,
        E::Claim,
        "a worker slot claims a job (long poll)",
    ),
    r(
        "GET",
        "/api/v1/workers",
        READ,
        E::ListWorkers,
        "registered workers",
    ),
    r(
        "GET",
        "/api/v1/queue/demand",
        READ,
        E::QueueDemand,
        "queued jobs a worker with given capabilities could run (autoscaling)",
    ),
    r(
        "GET",
        "/api/v1/status",
        READ,
        E::Status,
        "counts per state, workers, version",
    ),
    r(
        "GET",
        "/api/v1/events",
        READ,
        E::Events,
        "activity log; live server-sent events",
    ),
    r(
        "POST",
        "/api/v1/tokens",
        SUBMIT,
        E::CreateToken,
        "create a token",
    ),
    r(
        "GET",
        "/api/v1/tokens",
        SUBMIT,
        E::ListTokens,
        "list tokens",
    ),
    r(
        "GET",
        "/api/v1/whoami",
        READ,
        E::Whoami,
        "the token's scope and name",
    ),
    r(
        "GET",
        "/api/v1/summary",
        READ,
        E::Summary,
        "counts and best scores per env and method",
    ),
    r(
        "DELETE",
        "/api/v1/tokens/{name}",
        SUBMIT,
        E::RevokeToken,
        "revoke a token",
    ),
    r(
        "POST",
        "/api/v1/studies",
        SUBMIT,
        E::SubmitStudy,
        "submit a study (a sweep of jobs)",
    ),
    r(
        "GET",
        "/api/v1/studies",
        READ,
        E::ListStudies,
        "studies with progress",
    ),
    r(
        "GET",
        "/api/v1/studies/{name}",
        READ,
        E::GetStudy,
        "a study: jobs, progress, ETA, best per method and env",
    ),
    r(
        "GET",
        "/api/v1/studies/{name}/files.zip",
        READ,
        E::StudyFiles,
        "a study's result files as one ZIP",
    ),
    r(
        "GET",
        "/api/v1/studies/{name}/compare",
        READ,
        E::CompareStudy,
        "compare a study's methods: aggregates with intervals, profiles, targets",
    ),
    r(
        "GET",
        "/api/v1/studies/{name}/compare.png",
        READ,
        E::CompareFigure,
        "a figure of the method comparison as PNG",
    ),
    r(
        "GET",
        "/api/v1/studies/{name}/scores.json",
        READ,
        E::StudyScores,
        "every scored run of a study (normalised), for rliable and pandas",
    ),
    r(
        "POST",
        "/api/v1/studies/{name}/extend",
        SUBMIT,
        E::ExtendStudy,
        "more seeds on a study's grid",
    ),
    r(
        "POST",
        "/api/v1/studies/{name}/retry",
        SUBMIT,
        E::RetryStudy,
        "run a study's failed runs again",
    ),
    r(
        "GET",
        "/api/v1/studies/{name}/export.csv",
        READ,
        E::ExportStudy,
        "a study's rows as CSV",
    ),
    r(
        "GET",
        "/api/v1/studies/{name}/export.json",
        READ,
        E::ExportStudy,
        "a study's rows as JSON",
    ),
    r(
        "GET",
        "/api/v1/studies/{name}/export.png",
        READ,
        E::ExportStudy,
        "a study's method comparison as PNG",
    ),
    r(
        "GET",
        "/api/v1/jobs/{id}/export.csv",
        READ,
        E::ExportJob,
        "a job's rows as CSV",
    ),
    r(
        "GET",
        "/api/v1/jobs/{id}/export.json",
        READ,
        E::ExportJob,
        "a job's rows as JSON",
    ),
    r(
        "GET",
        "/api/v1/jobs/{id}/export.png",
        READ,
        E::ExportJob,
        "a job's learning curve as PNG",
    ),
    r(
        "GET",
        "/api/v1/export.csv",
        READ,
        E::ExportAll,
        "every job's rows as CSV",
    ),
    r(
        "GET",
        "/api/v1/export.json",
        READ,
        E::ExportAll,
        "every job's rows as JSON",
    ),
    r(
        "GET",
        "/api/v1/export.png",
        READ,
        E::ExportAll,
        "every job compared as PNG",
    ),
    r(
        "GET",
        "/api/v1/releases",
        READ,
        E::ListReleases,
        "list releases",
    ),
    r(
        "GET",
        "/api/v1/releases/{name}",
        WORKER,
        E::GetRelease,
        "a release's metadata",
    ),
    r(
        "PUT",
        "/api/v1/releases/{name}/files/{name}",
        ADMIN,
        E::UploadRelease,
        "upload a release file",
    ),
    r(
        "GET",
        "/api/v1/releases/{name}/files/{name}",
        WORKER,
        E::DownloadRelease,
        "download a release file",
    ),
    r(
        "POST",
        "/api/v1/releases/{name}/promote",
        ADMIN,
        E::PromoteRelease,
        "promote a release",
    ),
    r(
        "POST",
        "/api/v1/releases/{name}/yank",
        ADMIN,
        E::YankRelease,
        "yank a release",
    ),
    r(
        "POST",
        "/api/v1/workers/{name}/report",
        WORKER,
        E::UpdateReport,
        "a worker reports an update",
    ),
    r(
        "POST",
        "/api/v1/users",
        ADMIN,
        E::AddUser,
        "add a user (answers their first token)",
    ),
    r(
        "GET",
        "/api/v1/users",
        READ,
        E::ListUsers,
        "users: shares and limits",
    ),
    r(
        "POST",
        "/api/v1/users/{name}",
        ADMIN,
        E::UpdateUser,
        "change a user's share or limits",
    ),
    r(
        "DELETE",
        "/api/v1/users/{name}",
        ADMIN,
        E::RemoveUser,
        "remove a user and revoke their tokens",
    ),
    r(
        "GET",
        "/api/v1/usage",
        READ,
        E::Usage,
        "per user: running, queued, worker and GPU hours, share, priority",
    ),
    r(
        "GET",
        "/api/v1/workers/{name}",
        READ,
        E::GetWorker,
        "one worker",
    ),
    r(
        "GET",
        "/api/v1/workers/{name}/telemetry",
        READ,
        E::WorkerTelemetry,
        "a worker's CPU, RAM and GPU readings over time",
    ),
    r(
        "POST",
        "/api/v1/workers/{name}/pause",
        ADMIN,
        E::PauseWorker,
        "pause a worker: it claims no new jobs",
    ),
    r(
        "POST",
        "/api/v1/workers/{name}/resume",
        ADMIN,
        E::ResumeWorker,
        "lift a pause, drain or quarantine",
    ),
    r(
        "POST",
        "/api/v1/workers/{name}/drain",
        ADMIN,
        E::DrainWorker,
        "drain a worker: finish running jobs (and exit)",
    ),
    r(
        "DELETE",
        "/api/v1/workers/{name}",
        ADMIN,
        E::ForgetWorker,
        "forget an offline worker",
    ),
    r(
        "POST",
        "/api/v1/gc",
        ADMIN,
        E::Gc,
        "delete old rows and log lines in batches",
    ),
    r(
        "GET",
        "/api/v1/backup",
        ADMIN,
        E::Backup,
        "a consistent copy of the database",
    ),
    r(
        "GET",
        "/api/v1/audit",
        ADMIN,
        E::Audit,
        "the audit log of admin actions",
    ),
    r(
        "GET",
        "/api/v1/jobs/{id}/export.arrow",
        READ,
        E::ExportJob,
        "a job's rows as an Apache Arrow stream",
    ),
    r(
        "GET",
        "/api/v1/studies/{name}/export.arrow",
        READ,
        E::ExportStudy,
        "a study's rows as an Apache Arrow stream",
    ),
    r(
        "GET",
        "/api/v1/export.arrow",
        READ,
        E::ExportAll,
        "every job's rows as an Apache Arrow stream",
    ),
    r(
        "GET",
        "/api/v1/openapi.json",
        READ,
        E::OpenApi,
        "this API described as OpenAPI 3.1",
    ),
];

/// Path parameters of a matched route, in order.
pub(crate) struct Params(pub Vec<String>);

impl Params {
    pub fn id(&self) -> u64 {
        // Only `{id}` segments that parsed as u64 match, and `{id}` always comes first.
        self.0.first().and_then(|s| s.parse().ok()).unwrap_or(0)
    }
    pub fn first(&self) -> &str {
        self.0.first().map(String::as_str).unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.0.last().map(String::as_str).unwrap_or("")
    }
}

fn match_path(pattern: &str, segs: &[&str]) -> Option<Params> {
    let mut params = Vec::new();
    let mut p = pattern.split('/');
    let mut s = segs.iter();
    loop {
        match (p.next(), s.next()) {
            (None, None) => return Some(Params(params)),
            (Some("{id}"), Some(seg)) => {
                seg.parse::<u64>().ok()?;
                params.push(seg.to_string());
            }
            (Some("{name}"), Some(seg)) if !seg.is_empty() => {
                params.push(super::http::percent_decode(seg));
            }
            (Some(a), Some(b)) if a == *b => {}
            _ => return None,
        }
    }
}

/// The routes whose pattern matches `path`, the most specific only: where a pattern with fewer
/// `{…}` segments matches (`/api/v1/workers/register`), those with more
/// (`/api/v1/workers/{name}`) do not, so a path names one resource whatever the method, and a
/// 405's `Allow` lists what that resource takes.
fn matching(path: &str) -> Vec<(&'static Route, Params)> {
    // The path is split once, and a pattern with another number of segments is passed over
    // without being split (a request is matched against every route).
    let segs: Vec<&str> = path.split('/').collect();
    let all: Vec<(&'static Route, Params)> = ROUTES
        .iter()
        .filter(|r| r.path.bytes().filter(|&b| b == b'/').count() + 1 == segs.len())
        .filter_map(|r| match_path(r.path, &segs).map(|p| (r, p)))
        .collect();
    let fewest = all.iter().map(|(_, p)| p.0.len()).min().unwrap_or(0);
    all.into_iter()
        .filter(|(_, p)| p.0.len() == fewest)
        .collect()
}

/// Finds the route for a method and path: Ok(route), or Err(status) — 404 or 405.
pub fn find(method: &str, path: &str) -> Result<(&'static Route, Vec<String>), StatusCode> {
    let routes = matching(path);
    if routes.is_empty() {
        return Err(StatusCode::NOT_FOUND);
    }
    routes
        .into_iter()
        .find(|(route, _)| route.method == method || (method == "HEAD" && route.method == "GET"))
        .map(|(route, params)| (route, params.0))
        .ok_or(StatusCode::METHOD_NOT_ALLOWED)
}

/// The methods the routes at `path` answer (HEAD wherever GET is), for a 405's `Allow` header.
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for (route, _) in matching(path) {
        let also_head = route.method == "GET";
        for m in [Some(route.method), also_head.then_some("HEAD")]
            .into_iter()
            .flatten()
        {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    out
}

/// Handles one request; never panics on input, always answers. Counts it for `/metrics` by
/// its route pattern.
pub(crate) async fn handle(app: Arc<App>, req: Request<Incoming>, _peer: SocketAddr) -> Res {
    let began = std::time::Instant::now();
    let mut matched = None;
    let res = match route(app.clone(), req, &mut matched).await {
        Ok(res) => res,
        Err(e) => error_response(e),
    };
    let (pattern, method) = matched.map_or(("unmatched", "-"), |r: &Route| (r.path, r.method));
    app.http_metrics
        .observe(pattern, method, res.status().as_u16(), began);
    res
}

async fn route(
    app: Arc<App>,
    req: Request<Incoming>,
    matched: &mut Option<&'static Route>,
) -> Result<Res, HttpError> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let (route, params) = match find(method.as_str(), &path) {
        Ok(x) => {
            *matched = Some(x.0);
            x
        }
        Err(StatusCode::METHOD_NOT_ALLOWED) => {
            let allowed = allowed_methods(&path).join(", ");
            let mut res = error_response(HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {path} (it takes {allowed})"),
            ));
            // RFC 9110 §15.5.6: a 405 names the methods the resource supports.
            if let Ok(v) = allowed.parse() {
                res.headers_mut().insert(hyper::header::ALLOW, v);
            }
            return Ok(res);
        }
        Err(_) => {
            return Err(HttpError::not_found(format!(
                "no such route: {method} {path}"
            )));
        }
    };
    let params = Params(params);
    let query = Query(query_pairs(req.uri().query()));
    // A parameter given twice has no one meaning (handlers read one value): refuse it rather
    // than pick one silently.
    if let Some(twice) = query
        .0
        .iter()
        .enumerate()
        .find(|(i, (k, _))| query.0[..*i].iter().any(|(seen, _)| seen == k))
    {
        return Err(HttpError::bad(format!(
            "query parameter {} is given more than once",
            twice.1.0
        )));
    }

    if let Some(v) = req.headers().get(PROTOCOL_HEADER) {
        let theirs = v.to_str().ok().and_then(|s| s.trim().parse::<u32>().ok());
        match theirs {
            Some(v) if v == PROTOCOL_VERSION => {}
            Some(v) if v < PROTOCOL_VERSION => {
                return Err(HttpError::bad(format!(
                    "this client speaks GAIA protocol {v} and the server speaks {PROTOCOL_VERSION}: upgrade the client (gaia {})",
                    crate::VERSION
                )));
            }
            Some(v) => {
                return Err(HttpError::bad(format!(
                    "this client speaks GAIA protocol {v} and the server speaks {PROTOCOL_VERSION}: upgrade the server (it runs gaia {})",
                    crate::VERSION
                )));
            }
            None => {
                return Err(HttpError::bad(format!(
                    "malformed {PROTOCOL_HEADER} header"
                )));
            }
        }
    }

    if let Some(need) = route.scope {
        let (parts, body) = req.into_parts();
        // `?token=` is for what cannot set a header (EventSource, download links), and only
        // reads: a URL that changes something must not work by being opened or logged.
        let query_token = match parts.method {
            Method::GET | Method::HEAD => query.get("token"),
            _ => None,
        };
        let token = auth::presented(&parts, query_token);
        let Some(token) = token else {
            return Err(HttpError::new(
                StatusCode::UNAUTHORIZED,
                "missing token: send Authorization: Bearer <token>",
            ));
        };
        let Some(caller) = auth::identify(&app, &token) else {
            return Err(HttpError::new(StatusCode::UNAUTHORIZED, "invalid token"));
        };
        let have = caller.scope;
        if !auth::allows(have, need) {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{} {} token may not call {} {} ({}): this needs {} {} token",
                    article(have.as_str()),
                    have.as_str(),
                    route.method,
                    route.path,
                    route.doc,
                    article(need.as_str()),
                    need.as_str()
                ),
            ));
        }
        if have != Scope::Admin {
            check_owner(&app, route.endpoint.ownership(), &params, &caller)?;
        }
        let mut req = Request::from_parts(parts, body);
        req.extensions_mut().insert(caller);
        limited(app, route, req, params, query).await
    } else {
        limited(app, route, req, params, query).await
    }
}

/// Refuses (403, naming the owner) a caller below admin who names a job or token of another
/// user in the path. What does not exist passes: its handler answers 404.
fn check_owner(
    app: &App,
    ownership: Ownership,
    params: &Params,
    caller: &auth::Caller,
) -> Result<(), HttpError> {
    let forbidden = |what: String, owner: &str| {
        HttpError::new(
            hyper::StatusCode::FORBIDDEN,
            format!(
                "{what} belongs to {owner}; a {} token of {} acts only on {}'s own (an admin \
                 token acts on everyone's)",
                caller.scope, caller.user, caller.user
            ),
        )
    };
    match ownership {
        Ownership::Job => {
            let id = params.id();
            if let Some(job) = app.store.read()?.job(id)?
                && job.owner != caller.user
            {
                return Err(forbidden(format!("job {id}"), &job.owner));
            }
        }
        Ownership::Token => {
            let name = params.name();
            if let Some(t) = app
                .store
                .read()?
                .tokens()?
                .into_iter()
                .find(|t| t.name == name)
                && t.user != caller.user
            {
                return Err(forbidden(format!("token {name:?}"), &t.user));
            }
        }
        Ownership::None | Ownership::Body | Ownership::Study | Ownership::Own => {}
    }
    Ok(())
}

/// "a" or "an" before a scope name.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// Refuses a body declared larger than the route takes, then dispatches with the limit attached.
async fn limited(
    app: Arc<App>,
    route: &Route,
    mut req: Request<Incoming>,
    params: Params,
    query: Query,
) -> Result<Res, HttpError> {
    let limit = route.endpoint.body().limit(&app.config);
    if let Some(len) = super::http::declared_length(&req)
        && len > limit
    {
        return Err(super::http::too_large(limit));
    }
    req.extensions_mut().insert(BodyLimit {
        limit,
        idle: app.config.request_timeout,
    });
    dispatch(app, route.endpoint, req, params, query).await
}

async fn dispatch(
    app: Arc<App>,
    endpoint: Endpoint,
    req: Request<Incoming>,
    params: Params,
    query: Query,
) -> Result<Res, HttpError> {
    // Who calls, for the handlers that record an owner or show a caller their own.
    let caller = req.extensions().get::<auth::Caller>().cloned();
    let caller = caller.as_ref();
    match endpoint {
        E::Healthz => overview::healthz(&app),
        E::Dashboard => dashboard::asset(params.first()),
        E::SubmitJob => jobs::submit(&app, caller, req).await,
        E::SubmitBatch => jobs::submit_batch(&app, caller, req).await,
        E::ListJobs => jobs::list_jobs(&app, caller, &query),
        E::GetJob => jobs::get_job(&app, params.id()),
        E::CancelJob => jobs::cancel(&app, params.id(), workers::actor(&req)).await,
        E::GetRows => jobs::get_rows(&app, params.id(), &query, req.headers()).await,
        E::PostRows => jobs::post_rows(&app, params.id(), req).await,
        E::GetLogs => jobs::get_logs(&app, params.id(), &query),
        E::PostLogs => jobs::post_logs(&app, params.id(), req).await,
        E::Complete => jobs::complete(&app, params.id(), req).await,
        E::Requeue => jobs::requeue(&app, params.id(), req).await,
        E::ListFiles => files::list(&app, params.id()),
        E::GetFile => files::download(&app, params.id(), params.name()).await,
        E::PutFile => files::upload(&app, params.id(), params.name(), &query, req).await,
        E::Register => workers::register(&app, req).await,
        E::Heartbeat => workers::heartbeat(&app, params.name(), req).await,
        E::Leave => workers::leave(&app, params.name()).await,
        E::Claim => workers::claim(&app, req).await,
        E::ListWorkers => workers::list_workers(&app),
        E::QueueDemand => demand::demand(&app, &query).await,
        E::Status => overview::status(&app),
        E::Events => events::events(&app, &req, &query),
        E::CreateToken => tokens::create_token(&app, caller, req).await,
        E::ListTokens => tokens::list_tokens(&app, caller),
        E::RevokeToken => tokens::revoke_token(&app, params.name(), caller).await,
        E::Whoami => tokens::whoami(&app, req, &query),
        E::Summary => overview::summary(&app, &query).await,
        E::SubmitStudy => studies::submit_study(&app, caller, req).await,
        E::ListStudies => studies::list_studies(&app).await,
        E::GetStudy => studies::get_study(&app, params.name()).await,
        E::StudyFiles => export::study_files(&app, &params.0[0]).await,
        E::CompareStudy => studies::compare(&app, params.first(), &query).await,
        E::CompareFigure => studies::compare_figure(&app, params.first(), &query).await,
        E::StudyScores => studies::scores(&app, params.first(), &query).await,
        E::ExtendStudy => studies::extend(&app, caller, params.first(), req).await,
        E::RetryStudy => studies::retry(&app, caller, params.first(), req).await,
        E::ExportJob | E::ExportStudy | E::ExportAll => {
            let format = export::format_of(req.uri().path());
            let target = match endpoint {
                E::ExportJob => Target::Job(params.id()),
                E::ExportStudy => Target::Study(params.0[0].clone()),
                _ => Target::All,
            };
            export::export(&app, target, format, &query).await
        }
        E::ListReleases => releases::list(&app),
        E::GetRelease => releases::get(&app, params.first()),
        E::UploadRelease => {
            releases::upload(&app, params.first(), params.name(), &query, req).await
        }
        E::DownloadRelease => releases::download(&app, params.first(), params.name()).await,
        E::PromoteRelease => releases::promote(&app, params.first(), &workers::actor(&req)).await,
        E::YankRelease => releases::yank(&app, params.first(), &workers::actor(&req)).await,
        E::UpdateReport => releases::report(&app, params.first(), req).await,
        E::Metrics => {
            let accept = req
                .headers()
                .get(hyper::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            metrics::metrics(&app, accept).await
        }
        E::GetWorker => workers::get_worker(&app, params.first()),
        E::WorkerTelemetry => workers::telemetry(&app, params.first(), &query),
        E::PauseWorker => workers::hold(&app, params.first(), HoldKind::Paused, req).await,
        E::DrainWorker => workers::hold(&app, params.first(), HoldKind::Draining, req).await,
        E::ResumeWorker => workers::resume(&app, params.first(), req).await,
        E::ForgetWorker => workers::forget(&app, params.first(), req).await,
        E::Gc => maintenance::gc(&app, req).await,
        E::Backup => maintenance::backup(&app, req).await,
        E::Audit => maintenance::audit(&app, &query),
        E::AddUser => users::add(&app, req).await,
        E::ListUsers => users::list(&app),
        E::UpdateUser => users::update(&app, params.first(), req).await,
        E::RemoveUser => users::remove(&app, params.first()).await,
        E::Usage => users::usage(&app, &query).await,
        E::OpenApi => Ok(openapi::answer()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_and_specific_paths_win() {
        assert_eq!(
            find("POST", "/api/v1/jobs/batch").unwrap().0.endpoint,
            E::SubmitBatch
        );
        assert_eq!(
            find("GET", "/api/v1/jobs/42").unwrap().0.endpoint,
            E::GetJob
        );
        assert_eq!(
            find("GET", "/api/v1/jobs/x").unwrap_err(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            find("DELETE", "/api/v1/jobs/42").unwrap_err(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(allowed_methods("/api/v1/jobs/42"), ["GET", "HEAD"]);
        assert_eq!(
            allowed_methods("/api/v1/tokens"),
            ["POST", "GET", "HEAD"],
            "every method of the path, in table order"
        );
        assert_eq!(find("GET", "/app.js").unwrap().0.endpoint, E::Dashboard);
        assert_eq!(find("GET", "/metrics").unwrap().0.endpoint, E::Metrics);
        assert_eq!(
            find("POST", "/api/v1/workers/register").unwrap().0.endpoint,
            E::Register
        );
        // The literal route is the resource: GET on it is not a lookup of a worker named
        // "register", and the 405 says so.
        assert_eq!(
            find("GET", "/api/v1/workers/register").unwrap_err(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(allowed_methods("/api/v1/workers/register"), ["POST"]);
        assert_eq!(
            allowed_methods("/api/v1/workers/w-1"),
            ["GET", "HEAD", "DELETE"]
        );
        assert_eq!(
            find("GET", "/api/v1/workers/w-1").unwrap().0.endpoint,
            E::GetWorker
        );
        let (r, p) = find("GET", "/api/v1/jobs/7/files/result.json").unwrap();
        assert_eq!(r.endpoint, E::GetFile);
        assert_eq!(p, vec!["7".to_string(), "result.json".to_string()]);
    }
}
