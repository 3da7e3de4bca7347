//! The OpenAPI 3.1 description of the HTTP API, generated from the code: one operation per
//! [`ROUTES`] entry (method, path, scope and summary from the table) and the bodies from the
//! wire types' own JSON Schemas (schemars derives on `protocol.rs` and `model.rs`, which read
//! the same serde attributes the JSON does).
//!
//! [`operation`] says, for every [`Endpoint`], what it reads and answers; its `match` has no
//! catch-all, so a new endpoint does not compile until it is described. Served at
//! `GET /api/v1/openapi.json`; `docs/openapi.json` is a copy a test keeps current
//! (`GAIA_UPDATE_DOCS=1 cargo test -p gaia-core --lib openapi` rewrites it).

use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use super::super::http::{Res, bytes_response};
use super::{Body, Endpoint, ROUTES, Route};
use crate::export::Format;
use crate::model::{Job, JobSpec, JobState, UserInfo, Worker};
use crate::protocol::*;
use crate::release::{Release, ReleaseFile, ReleaseList, UpdateReport};
use crate::store::maintenance::{GcReport, GcRequest};

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T`, as a reference into `components/schemas`.
fn schema<T: JsonSchema + ?Sized>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// What a request carries.
enum Req {
    None,
    Json(SchemaFn),
    /// A row batch: JSON, or postcard ([`POSTCARD_CONTENT_TYPE`]).
    Rows,
    /// Raw bytes (a file).
    Bytes,
}

/// One media type an answer may have.
enum Media {
    Json(SchemaFn),
    /// Any JSON object (an export document, this document).
    Object,
    /// Bytes of this type.
    Binary(&'static str),
    /// Text of this type.
    Text(&'static str),
}

/// A query parameter.
struct Param {
    name: &'static str,
    schema: Value,
    doc: &'static str,
    required: bool,
}

fn q(name: &'static str, schema: Value, doc: &'static str) -> Param {
    Param {
        name,
        schema,
        doc,
        required: false,
    }
}

/// An integer query parameter. An empty value (`?after=`) is read as if it were left out, as
/// the server reads every query parameter, so the document allows it too.
fn int(min: i64) -> Value {
    json!({"anyOf": [{"type": "integer", "minimum": min}, {"const": ""}]})
}

/// What one endpoint reads and answers.
struct Op {
    req: Req,
    query: Vec<Param>,
    /// The success status.
    ok: u16,
    /// A second success status: a dry run's (200, nothing written) beside a write's 201.
    dry_run_ok: bool,
    answer: Vec<Media>,
    /// Error statuses beyond those every route may answer (400 and 413; 408 with a body; 401
    /// and 403 with a scope; 404 with a path parameter).
    errors: &'static [u16],
    /// Names of the path parameters, in the order of the pattern's `{…}` segments.
    names: &'static [&'static str],
}

impl Op {
    fn new(req: Req, ok: u16, answer: Vec<Media>) -> Op {
        Op {
            req,
            query: Vec::new(),
            ok,
            dry_run_ok: false,
            answer,
            errors: &[],
            names: &[],
        }
    }
    fn query(mut self, query: Vec<Param>) -> Op {
        self.query = query;
        self
    }
    fn dry_run(mut self) -> Op {
        self.dry_run_ok = true;
        self
    }
    fn errors(mut self, errors: &'static [u16]) -> Op {
        self.errors = errors;
        self
    }
    fn names(mut self, names: &'static [&'static str]) -> Op {
        self.names = names;
        self
    }
}

fn ok_json(f: SchemaFn) -> Op {
    Op::new(Req::None, 200, vec![Media::Json(f)])
}

fn post(req: SchemaFn, ok: u16, answer: SchemaFn) -> Op {
    Op::new(Req::Json(req), ok, vec![Media::Json(answer)])
}

const ARROW: &str = crate::export::arrow::CONTENT_TYPE;

/// What `endpoint`, at `route`, reads and answers.
/// The query of a study's comparison (`…/compare`, `compare.png`, `scores.json`); `figure`
/// adds the figure and its size.
fn compare_query(figure: bool) -> Vec<Param> {
    let s = || json!({"type": "string"});
    let mut v = Vec::new();
    if figure {
        v.push(Param {
            required: true,
            ..q(
                "figure",
                json!({"type": "string", "enum": ["aggregate", "profile", "improvement", "curves", "ecdf"]}),
                "which figure",
            )
        });
        v.push(q("width", int(1), "width in pixels"));
        v.push(q("height", int(1), "height in pixels"));
    }
    v.extend([
        q("with", s(), "further studies, comma-separated"),
        q(
            "score",
            json!({"type": "string", "enum": ["final", "best_ever", "auc", ""]}),
            "a run's score (default final)",
        ),
        q(
            "norm",
            s(),
            "ENV=LOW:HIGH items, comma-separated: what normalises to 0 and 1",
        ),
        q(
            "by",
            json!({"type": "string", "enum": ["env", ""]}),
            "env: also each environment's aggregates",
        ),
        q(
            "target",
            s(),
            "solved, a normalised level (0.5), or ENV=SCORE items: the fixed-target view",
        ),
        q(
            "seeds_needed",
            json!({"type": "number", "exclusiveMinimum": 0}),
            "an interval half-width in normalised units: the seeds each cell needs",
        ),
        q(
            "profile",
            json!({"type": "boolean"}),
            "true: performance profiles",
        ),
        q(
            "curves",
            json!({"type": "boolean"}),
            "true: sample-efficiency curves",
        ),
        q(
            "resamples",
            int(1),
            "bootstrap resamples (default 2000, at most 100000)",
        ),
        q("seed", int(0), "the bootstrap's seed (default 0)"),
    ]);
    v
}

fn operation(endpoint: Endpoint, route: &Route) -> Op {
    use Endpoint as E;
    let rows_query = || {
        vec![
            q(
                "attempt",
                int(0),
                "which attempt (default: the current one)",
            ),
            q(
                "points",
                int(2),
                "at most this many points per metric: min and max per bucket",
            ),
            q(
                "x",
                json!({"enum": ["seq", "generation", "evals", ""]}),
                "the column `from` and `to` filter on (default seq)",
            ),
            q("from", json!({"type": "number"}), "keep rows with x ≥ from"),
            q("to", json!({"type": "number"}), "keep rows with x ≤ to"),
            q(
                "format",
                json!({"enum": ["json", "arrow"]}),
                "`arrow`: an Apache Arrow IPC stream instead of JSON (so does `Accept: application/vnd.apache.arrow.stream`)",
            ),
        ]
    };
    match endpoint {
        E::Healthz => ok_json(schema::<Health>).errors(&[503]),
        E::Dashboard if route.path == "/" => {
            Op::new(Req::None, 200, vec![Media::Text("text/html")])
        }
        E::Dashboard => Op::new(Req::None, 200, vec![Media::Binary("*/*")]).names(&["asset"]),
        E::SubmitJob => post(schema::<JobSpec>, 201, schema::<SubmitResponse>).errors(&[429]),
        E::SubmitBatch => {
            post(schema::<SubmitBatch>, 201, schema::<SubmitBatchResponse>).errors(&[429])
        }
        E::ListJobs => ok_json(schema::<JobList>).query(vec![
            q("state", state_enum(), "only jobs in this state"),
            q("study", name_schema(), "only the jobs of this study"),
            q(
                "limit",
                int(0),
                "jobs per page (default 50; clamped to 1–1000)",
            ),
            q(
                "before",
                int(0),
                "only jobs with a smaller id: the next page",
            ),
            q(
                "mine",
                flag_schema(),
                "1: only the jobs of the caller's own user",
            ),
            q(
                "owner",
                name_schema(),
                "only the jobs of this user (not with `mine`)",
            ),
        ]),
        E::GetJob => ok_json(schema::<Job>),
        E::CancelJob => ok_json(schema::<CancelResponse>).errors(&[409]),
        E::GetRows => Op::new(
            Req::None,
            200,
            vec![Media::Json(schema::<RowsResponse>), Media::Binary(ARROW)],
        )
        .query(rows_query()),
        E::PostRows => Op::new(Req::Rows, 200, vec![Media::Json(schema::<RowAck>)]).errors(&[409]),
        E::GetLogs => ok_json(schema::<LogsResponse>).query(vec![
            q("after", int(0), "the position of the first line wanted"),
            q("limit", int(0), "lines (default 1000; clamped to 1–10000)"),
            q(
                "tail",
                int(0),
                "the last N lines instead (clamped to 1–10000)",
            ),
        ]),
        E::PostLogs => post(schema::<LogBatch>, 200, schema::<LogAck>).errors(&[409]),
        E::Complete => post(schema::<CompleteRequest>, 200, schema::<Job>).errors(&[409]),
        E::Requeue => post(schema::<RequeueRequest>, 200, schema::<Job>).errors(&[409]),
        E::ListFiles => ok_json(schema::<FileList>),
        E::GetFile => Op::new(Req::None, 200, vec![Media::Binary("*/*")]).names(&["id", "file"]),
        E::PutFile => Op::new(
            Req::Bytes,
            200,
            vec![Media::Json(schema::<crate::model::FileInfo>)],
        )
        .query(vec![
            Param {
                required: true,
                ..q("attempt", int(0), "the attempt the worker holds")
            },
            Param {
                required: true,
                ..q("lease", int(0), "the lease the worker holds")
            },
        ])
        .errors(&[409])
        .names(&["id", "file"]),
        E::Register => {
            post(schema::<RegisterRequest>, 200, schema::<RegisterResponse>).errors(&[409])
        }
        E::Heartbeat => {
            post(schema::<HeartbeatRequest>, 200, schema::<HeartbeatResponse>).names(&["worker_id"])
        }
        E::Leave => ok_json(schema::<Worker>).names(&["worker_id"]),
        E::Claim => post(schema::<ClaimRequest>, 200, schema::<ClaimResponse>).errors(&[404, 409]),
        E::ListWorkers => ok_json(schema::<WorkerList>),
        E::QueueDemand => ok_json(schema::<crate::protocol::QueueDemand>).query(vec![
            q(
                "kinds",
                json!({"type": "string"}),
                "comma-separated job kinds the worker runs (default every kind)",
            ),
            q("gpus", int(0), "the worker's GPUs (default 0)"),
            q(
                "memory_mb",
                int(0),
                "the worker's memory in MB (default no limit)",
            ),
            q(
                "tags",
                json!({"type": "string"}),
                "comma-separated tags the worker has",
            ),
        ]),
        E::Status => ok_json(schema::<StatusResponse>),
        E::Events => Op::new(
            Req::None,
            200,
            vec![
                Media::Json(schema::<EventList>),
                Media::Text("text/event-stream"),
            ],
        )
        .query(vec![
            q("after", int(0), "only events after this id"),
            q("limit", int(0), "events (default 200; clamped to 1–5000)"),
            q(
                "stream",
                flag_schema(),
                "1: stream server-sent events (as `Accept: text/event-stream`)",
            ),
            q("job", int(0), "stream: only this job's updates"),
            q("rows", flag_schema(), "stream: 0 leaves rows out"),
            q(
                "logs",
                flag_schema(),
                "stream: 1 adds log lines (the default with `job`)",
            ),
        ]),
        E::CreateToken => post(schema::<TokenCreate>, 201, schema::<TokenCreated>).errors(&[404, 409]),
        E::ListTokens => ok_json(schema::<TokenList>),
        E::RevokeToken => ok_json(schema::<Revoked>),
        E::Whoami => ok_json(schema::<WhoAmI>),
        E::Summary => ok_json(schema::<Summary>)
            .query(vec![q("study", name_schema(), "only this study")])
            .errors(&[404]),
        E::SubmitStudy => {
            post(schema::<StudySubmit>, 201, schema::<StudySubmitted>).errors(&[409, 429])
        }
        E::ListStudies => ok_json(schema::<StudyList>),
        E::GetStudy => ok_json(schema::<StudyReport>),
        E::StudyFiles => Op::new(Req::None, 200, vec![Media::Binary("application/zip")]),
        E::CompareStudy => ok_json(schema::<Comparison>)
            .query(compare_query(false))
            .errors(&[404]),
        E::CompareFigure => Op::new(Req::None, 200, vec![Media::Binary("image/png")])
            .query(compare_query(true))
            .errors(&[404]),
        E::StudyScores => ok_json(schema::<ScoresExport>)
            .query(compare_query(false))
            .errors(&[404]),
        E::ExtendStudy => {
            post(schema::<StudyExtend>, 201, schema::<StudySubmitted>)
                .dry_run()
                .errors(&[404, 409])
        }
        E::RetryStudy => {
            post(schema::<StudyRetry>, 201, schema::<StudySubmitted>)
                .dry_run()
                .errors(&[404, 409])
        }
        E::ExportJob | E::ExportStudy | E::ExportAll => {
            let format = super::super::export::format_of(route.path);
            let media = match format {
                Format::Csv => Media::Text("text/csv"),
                Format::Json => Media::Object,
                Format::Png => Media::Binary("image/png"),
                Format::Arrow => Media::Binary(ARROW),
            };
            let op = Op::new(Req::None, 200, vec![media]);
            let op = if endpoint == E::ExportAll {
                op
            } else {
                op.errors(&[404])
            };
            if format == Format::Png {
                op.query(vec![
                    q("width", int(0), "pixels (320–4096)"),
                    q("height", int(0), "pixels (240–4096)"),
                    q(
                        "metric",
                        json!({"type": "string"}),
                        "metrics, comma-separated",
                    ),
                    q("log_y", flag_schema(), "a log-scale y axis"),
                ])
            } else {
                op
            }
        }
        E::ListReleases => ok_json(schema::<ReleaseList>),
        E::GetRelease => ok_json(schema::<Release>).names(&["tag"]),
        E::UploadRelease => Op::new(Req::Bytes, 201, vec![Media::Json(schema::<ReleaseFile>)])
            .query(vec![
                q(
                    "platform",
                    json!({"type": "string"}),
                    "`<os>-<arch>` (linux-x86_64, ...); read from the file when left out",
                ),
                q(
                    "sha256",
                    json!({"type": "string"}),
                    "the file's SHA-256 (hex), checked against what arrived",
                ),
                q(
                    "signature",
                    json!({"type": "string"}),
                    "ed25519 signature, hex",
                ),
            ])
            .errors(&[409])
            .names(&["tag", "file"]),
        E::DownloadRelease => Op::new(
            Req::None,
            200,
            vec![Media::Binary("application/octet-stream")],
        )
        .names(&["tag", "file"]),
        E::PromoteRelease => ok_json(schema::<Release>).names(&["tag"]),
        E::YankRelease => ok_json(schema::<Release>).names(&["tag"]),
        E::UpdateReport => post(schema::<UpdateReport>, 200, schema::<Ack>).names(&["worker_id"]),
        E::OpenApi => Op::new(Req::None, 200, vec![Media::Object]),
        // Prometheus text unless the client asks for OpenMetrics (`Accept`), as Prometheus does.
        E::Metrics => Op::new(
            Req::None,
            200,
            vec![
                Media::Text("text/plain"),
                Media::Text("application/openmetrics-text"),
            ],
        ),
        // A worker is named by its id or its name; a name several workers share is a 409.
        E::GetWorker => ok_json(schema::<Worker>).errors(&[409]).names(&["worker"]),
        E::WorkerTelemetry => ok_json(schema::<TelemetryResponse>)
            .query(vec![q(
                "span",
                json!({"enum": ["", "hour", "1h", "day", "1d", "24h", "week", "7d", "month", "30d"]}),
                "how far back: hour (the default, also when empty), day, week or month",
            )])
            .errors(&[409])
            .names(&["worker"]),
        E::PauseWorker | E::DrainWorker => post(schema::<HoldRequest>, 200, schema::<Worker>)
            .errors(&[409])
            .names(&["worker"]),
        E::ResumeWorker => ok_json(schema::<Worker>).errors(&[409]).names(&["worker"]),
        E::ForgetWorker => ok_json(schema::<Worker>).errors(&[409]).names(&["worker"]),
        E::Gc => post(schema::<GcRequest>, 200, schema::<GcReport>),
        E::Backup => Op::new(
            Req::None,
            200,
            vec![Media::Binary("application/octet-stream")],
        ),
        E::Audit => ok_json(schema::<AuditList>).query(vec![
            q("after", int(0), "only entries after this id"),
            q("limit", int(0), "entries (default 200; clamped to 1–10000)"),
        ]),
        E::AddUser => post(schema::<UserAdd>, 201, schema::<UserAdded>).errors(&[409]),
        E::ListUsers => ok_json(schema::<UserList>),
        E::UpdateUser => post(schema::<UserUpdate>, 200, schema::<UserInfo>).names(&["user"]),
        E::RemoveUser => ok_json(schema::<UserRemoved>)
            .errors(&[409])
            .names(&["user"]),
        E::Usage => ok_json(schema::<UsageReport>).query(vec![q(
            "since",
            int(0),
            "worker and GPU seconds from this time on (milliseconds since the epoch; default: all time)",
        )]),
    }
}

fn state_enum() -> Value {
    json!({"enum": JobState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()})
}

/// A yes/no query parameter, as the server reads it (`1`, `0`, `true`, `false`: on the wire
/// the numbers are the same text as strings would be; empty is the same as left out).
fn flag_schema() -> Value {
    json!({"enum": [1, 0, "true", "false", ""]})
}

/// A name filter in a query: a name, or empty (the same as leaving it out).
fn name_schema() -> Value {
    json!({"type": "string", "pattern": "^([A-Za-z0-9_][A-Za-z0-9_.-]{0,63})?$"})
}

/// The path of `route` as the document writes it: each `{…}` named (`{id}`, `{tag}`, ...).
pub fn document_path(route: &Route) -> String {
    let op = operation(route.endpoint, route);
    let mut names = op.names.iter();
    route
        .path
        .split('/')
        .map(|seg| match seg {
            "{id}" => {
                names.next();
                "{id}".to_string()
            }
            "{name}" => format!("{{{}}}", names.next().copied().unwrap_or("name")),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A unique, stable name of each route's operation: the endpoint in snake case, and for an
/// endpoint with several routes the path's last segment (`export_job_csv`).
fn operation_id(route: &Route) -> String {
    let mut id = String::new();
    for (i, c) in format!("{:?}", route.endpoint).chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                id.push('_');
            }
            id.push(c.to_ascii_lowercase());
        } else {
            id.push(c);
        }
    }
    let shared = ROUTES
        .iter()
        .filter(|r| r.endpoint == route.endpoint)
        .count()
        > 1;
    if shared {
        let last = route.path.rsplit('/').next().unwrap_or("");
        let suffix = match last {
            "" => "index".to_string(),
            "{name}" => "asset".to_string(),
            other => other.rsplit('.').next().unwrap_or(other).to_string(),
        };
        id.push('_');
        id.push_str(&suffix);
    }
    id
}

fn media_object(g: &mut SchemaGenerator, media: &Media) -> (String, Value) {
    match media {
        Media::Json(f) => ("application/json".into(), json!({"schema": f(g)})),
        Media::Object => (
            "application/json".into(),
            json!({"schema": {"type": "object"}}),
        ),
        Media::Binary(t) => (
            t.to_string(),
            json!({"schema": {"type": "string", "contentMediaType": t}}),
        ),
        Media::Text(t) => (t.to_string(), json!({"schema": {"type": "string"}})),
    }
}

fn error_response(code: u16) -> Value {
    let why = match code {
        400 => "malformed request: bad JSON, fields, names, query parameters or protocol version",
        401 => "missing or invalid token",
        403 => {
            "the token's scope does not allow this route, or what it names belongs to another user"
        }
        404 => "no such job, worker, study, token, file or release",
        408 => "the request body stalled or came too slowly",
        409 => "a conflict: a stale lease, a job that has ended, a name that exists",
        413 => "the body is over the route's size limit",
        429 => "over the user's limit of queued jobs: the message says the limit and the count",
        503 => "the server is shutting down or can no longer write",
        _ => "an error",
    };
    json!({
        "description": why,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn path_item(g: &mut SchemaGenerator, route: &Route) -> (String, Value) {
    let op = operation(route.endpoint, route);
    let mut params = Vec::new();
    let mut names = op.names.iter();
    for seg in route.path.split('/') {
        let (name, schema) = match seg {
            "{id}" => {
                names.next();
                (
                    "id",
                    json!({"type": "integer", "format": "uint64", "minimum": 0}),
                )
            }
            "{name}" => (
                names.next().copied().unwrap_or("name"),
                json!({"type": "string", "minLength": 1}),
            ),
            _ => continue,
        };
        params.push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
    }
    for p in &op.query {
        params.push(json!({
            "name": p.name, "in": "query", "required": p.required,
            "schema": p.schema, "description": p.doc,
        }));
    }
    if route.scope.is_some() && matches!(route.method, "GET" | "HEAD") {
        params.push(json!({
            "name": "token", "in": "query", "required": false,
            "schema": {"type": "string"},
            "description": "the token, for what cannot set a header (EventSource, links); the header wins",
        }));
    }

    let mut content = Map::new();
    for m in &op.answer {
        let (k, v) = media_object(g, m);
        content.insert(k, v);
    }
    let mut responses = Map::new();
    if op.dry_run_ok {
        responses.insert(
            "200".into(),
            json!({"description": "a dry run: what would be added; nothing is written",
                   "content": content.clone()}),
        );
    }
    responses.insert(
        op.ok.to_string(),
        json!({"description": route.doc, "content": content}),
    );
    let mut errors = vec![400, 413];
    if route.endpoint.body() != Body::None {
        errors.push(408);
    }
    if route.scope.is_some() {
        errors.extend([401, 403]);
    }
    if route.path.contains('{') {
        errors.push(404);
    }
    errors.extend(op.errors);
    errors.sort_unstable();
    errors.dedup();
    for code in errors {
        let r = if code == 503 && route.endpoint == Endpoint::Healthz {
            json!({"description": "the store can no longer write",
                   "content": {"application/json": {"schema": schema::<Health>(g)}}})
        } else {
            error_response(code)
        };
        responses.insert(code.to_string(), r);
    }

    let mut o = json!({
        "operationId": operation_id(route),
        "summary": route.doc,
        "parameters": params,
        "responses": responses,
        "x-gaia-scope": route.scope.map(|s| s.as_str()),
    });
    o["security"] = match (route.scope, route.method) {
        (None, _) => json!([]),
        (Some(_), "GET") => json!([{"bearer": []}, {"query_token": []}]),
        _ => json!([{"bearer": []}]),
    };
    let body = match op.req {
        Req::None => None,
        Req::Json(f) => Some(json!({"application/json": {"schema": f(g)}})),
        Req::Rows => Some(json!({
            "application/json": {"schema": schema::<RowBatch>(g)},
            POSTCARD_CONTENT_TYPE: {"schema": {"type": "string", "contentMediaType": POSTCARD_CONTENT_TYPE}},
        })),
        Req::Bytes => Some(json!({
            "application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
        })),
    };
    if let Some(content) = body {
        o["requestBody"] = json!({"required": true, "content": content});
    }
    if route.endpoint == Endpoint::Events {
        o["x-gaia-events"] = json!({
            "event": schema::<crate::model::Event>(g),
            "rows": schema::<RowsEvent>(g),
            "logs": schema::<LogsEvent>(g),
            "job": schema::<Job>(g),
            "worker": schema::<Worker>(g),
            "resync": {"type": "object"},
        });
    }
    (route.method.to_ascii_lowercase(), o)
}

/// The whole document.
pub fn document() -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    schema::<ErrorBody>(&mut g);
    let mut paths = Map::new();
    for route in ROUTES {
        let (method, op) = path_item(&mut g, route);
        let item = paths
            .entry(document_path(route))
            .or_insert_with(|| json!({}));
        item[method] = op;
    }
    let schemas = g.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "GAIA HTTP API",
            "version": crate::VERSION,
            "description": "The API of a GAIA server: the CLI, the dashboard, `gaia work` and the Python client all speak it. docs/API.md explains each route for people; this document is generated from the server's route table and wire types. Every operation takes the optional header `x-gaia-protocol` (components/parameters/Protocol): a client's protocol version, refused with 400 when it is not the server's.",
            "x-gaia-protocol": PROTOCOL_VERSION,
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": {
                "Protocol": {
                    "name": PROTOCOL_HEADER, "in": "header", "required": false,
                    "schema": {"type": "integer", "const": PROTOCOL_VERSION},
                    "description": "the client's protocol version; another one is refused with 400 saying which side to upgrade",
                }
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "query_token": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
    })
}

/// The document as JSON text, pretty-printed, with a final newline (as `docs/openapi.json`).
pub fn document_text() -> String {
    let mut s = serde_json::to_string_pretty(&document()).expect("the document is plain JSON");
    s.push('\n');
    s
}

/// `GET /api/v1/openapi.json`: the document, made once.
pub(crate) fn answer() -> Res {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(document_text);
    bytes_response(
        hyper::StatusCode::OK,
        "application/json",
        bytes::Bytes::from_static(text.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn repo() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn every_route_is_an_operation_of_the_document() {
        let doc = document();
        let mut seen = BTreeSet::new();
        for route in ROUTES {
            let path = document_path(route);
            let op = &doc["paths"][&path][route.method.to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} is missing", route.method, route.path);
            assert_eq!(op["summary"], route.doc);
            assert_eq!(
                op["x-gaia-scope"],
                json!(route.scope.map(|s| s.as_str())),
                "{path}"
            );
            // The document's path is the route's pattern with its segments named.
            let generic: Vec<&str> = path
                .split('/')
                .map(|s| match s {
                    "{id}" => "{id}",
                    s if s.starts_with('{') => "{name}",
                    s => s,
                })
                .collect();
            assert_eq!(generic.join("/"), route.path);
            assert!(
                seen.insert(op["operationId"].to_string()),
                "{path}: duplicate id"
            );
        }
        let ops: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(ops, ROUTES.len(), "an operation without a route");
    }

    /// Every wire type of `protocol.rs` (every `pub struct`/`pub enum` there that derives
    /// `Serialize`) has its schema in the document, and every `$ref` resolves.
    #[test]
    fn every_wire_type_is_in_the_document() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let src = std::fs::read_to_string(repo().join("gaia-core/src/protocol.rs")).unwrap();
        let src = &src[..src.find("#[cfg(test)]").unwrap_or(src.len())];
        let mut missing = Vec::new();
        let mut derive_serialize = false;
        for line in src.lines() {
            let line = line.trim();
            if line.starts_with("#[derive(") {
                derive_serialize = line.contains("Serialize");
            }
            for kw in ["pub struct ", "pub enum "] {
                if let Some(rest) = line.strip_prefix(kw) {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    // Generic wire types appear under their instances' names (`Axis_for_…`).
                    let present = schemas.keys().any(|k| k == &name || k.starts_with(&name));
                    // `JobQuery` is the client's form of `GET /api/v1/jobs`'s query
                    // parameters, which the document lists as parameters.
                    if derive_serialize && !present && name != "JobQuery" {
                        missing.push(name);
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "wire types missing from the document: {missing:?}"
        );

        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in all {
            let pointer = r.trim_start_matches('#');
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
        }
        // Component names are what OpenAPI allows.
        for k in schemas.keys() {
            assert!(
                k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')),
                "schema name {k:?} is not a valid component name"
            );
        }
    }

    /// `docs/openapi.json` is the document the server serves.
    #[test]
    fn the_copy_in_docs_is_current() {
        let path = repo().join("docs/openapi.json");
        let now = document_text();
        if std::env::var("GAIA_UPDATE_DOCS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &now).unwrap();
        }
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            kept == now,
            "docs/openapi.json is out of date: run GAIA_UPDATE_DOCS=1 cargo test -p gaia-core --lib openapi"
        );
    }

    /// Request types refuse unknown fields, and the document says so (a misspelt field is a
    /// 400, not an ignored option).
    #[test]
    fn request_schemas_refuse_unknown_fields() {
        let doc = document();
        let s = &doc["components"]["schemas"];
        for name in [
            "JobSpec",
            "RowBatch",
            "ClaimRequest",
            "StudySubmit",
            "TokenCreate",
            "HoldRequest",
            "GcRequest",
        ] {
            assert_eq!(s[name]["additionalProperties"], json!(false), "{name}");
        }
        // A stored `Spec` is written as the `JobSpec` it stands for.
        assert_eq!(
            s["Job"]["properties"]["spec"]["$ref"],
            json!("#/components/schemas/JobSpec")
        );
    }
}
