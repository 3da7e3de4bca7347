//! The API's description and its columnar answers, through a real server: the OpenAPI
//! document served and kept in docs/, docs/API.md checked against it, rows as Apache Arrow
//! (read back with the arrow crates, equal to the JSON rows), and the regressions Schemathesis
//! found (python/tests/test_schemathesis.py runs it).

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use gaia_core::model::{JobKind, JobSpec, Row, Scope};
use gaia_core::server::router::ROUTES;

use crate::helper::*;

/// A GET with optional headers: (status, headers as `name: value` lines, body bytes).
fn get(url: &str, token: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent
        .get(url)
        .header("authorization", format!("Bearer {token}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.call().unwrap();
    let status = resp.status().as_u16();
    let head = resp
        .headers()
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("\n");
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    (status, head, body)
}

fn read_arrow(bytes: &[u8]) -> (Arc<arrow_schema::Schema>, Vec<RecordBatch>) {
    let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .expect("an Arrow IPC stream");
    let schema = reader.schema();
    let batches = reader.map(|b| b.unwrap()).collect();
    (schema, batches)
}

fn f64_col(batches: &[RecordBatch], name: &str) -> Vec<Option<f64>> {
    batches
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name(name).unwrap_or_else(|| panic!("{name}"));
            let a = c.as_primitive::<Float64Type>();
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i)))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn u64_col(batches: &[RecordBatch], name: &str) -> Vec<Option<u64>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column_by_name(name).unwrap().as_primitive::<UInt64Type>();
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i)))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_served_document_is_the_one_in_docs_and_needs_a_token() {
    let server = Server::start();
    let read = server
        .client()
        .create_token("doc-reader", Scope::Read)
        .unwrap();
    let url = format!("{}/api/v1/openapi.json", server.url());
    let (status, head, body) = get(&url, &read.token, &[]);
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/json"), "{head}");
    let kept = std::fs::read(repo_root().join("docs/openapi.json")).unwrap();
    assert!(
        body == kept,
        "the server serves another document than docs/openapi.json"
    );
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_error("no token", http("GET", &url, None, None), 401);
}

/// docs/API.md is for people, the document for programs: they describe the same routes.
#[test]
fn api_md_describes_the_documents_operations_and_no_others() {
    let md = std::fs::read_to_string(repo_root().join("docs/API.md")).unwrap();
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo_root().join("docs/openapi.json")).unwrap())
            .unwrap();
    // Every operation of the document, in the route table's spelling (`{name}` segments).
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let generic: Vec<&str> = path
            .split('/')
            .map(|s| match s {
                "{id}" => "{id}",
                s if s.starts_with('{') => "{name}",
                s => s,
            })
            .collect();
        for method in item.as_object().unwrap().keys() {
            ops.insert(format!("{} {}", method.to_uppercase(), generic.join("/")));
        }
    }
    let missing: Vec<&String> = ops
        .iter()
        .filter(|op| !md.contains(&format!("{op}`")))
        .collect();
    assert!(missing.is_empty(), "docs/API.md lacks {missing:?}");
    // Every route docs/API.md names (`METHOD /path`) is one the server has.
    let mut named = Vec::new();
    for piece in md.split('`').skip(1).step_by(2) {
        if let Some((method, path)) = piece.split_once(' ')
            && ["GET", "POST", "PUT", "DELETE"].contains(&method)
            && path.starts_with('/')
            && !path.contains(' ')
        {
            let path = path.split('?').next().unwrap();
            let known = ROUTES.iter().any(|r| {
                r.method == method
                    && (r.path == path
                        || r.path.split('/').count() == path.split('/').count()
                            && r.path
                                .split('/')
                                .zip(path.split('/'))
                                .all(|(a, b)| a == b || (a.starts_with('{') && b.starts_with('{'))))
            });
            if !known {
                named.push(piece.to_string());
            }
        }
    }
    assert!(
        named.is_empty(),
        "docs/API.md names routes the server does not have: {named:?}"
    );
    assert_eq!(ops.len(), ROUTES.len());
}

/// Schemathesis: a 405 must say which methods the resource takes (RFC 9110 §15.5.6).
#[test]
fn a_405_names_the_methods_allowed() {
    let server = Server::start();
    let request = format!(
        "DELETE /api/v1/jobs/1 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\nconnection: close\r\n\r\n",
        server.token
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nallow: get, head\r\n"),
        "{answer}"
    );
    assert!(answer.contains("it takes GET, HEAD"), "{answer}");
}

/// Schemathesis: `rows=null` was read as "yes" (anything but `0` was); a flag is now `1`/`0`
/// (or `true`/`false`) and anything else is a 400, on the JSON answer as on the stream.
#[test]
fn event_flags_that_are_not_flags_are_refused() {
    let server = Server::start();
    for query in ["rows=null", "logs=yes", "stream=2", "job=x"] {
        let url = format!("{}/api/v1/events?{query}", server.url());
        let msg = assert_error(query, http("GET", &url, Some(&server.token), None), 400);
        assert!(msg.contains(query.split('=').next().unwrap()), "{msg}");
    }
    for query in ["rows=0", "rows=true", "logs=1&rows=false", "limit=0"] {
        let url = format!("{}/api/v1/events?{query}", server.url());
        let (status, body) = http("GET", &url, Some(&server.token), None);
        assert_eq!(status, 200, "{query}: {body}");
    }
}

/// Schemathesis: `height=&height=x` was read as its first, empty value (no height); a
/// parameter given twice has no one meaning and is refused.
#[test]
fn a_query_parameter_given_twice_is_refused() {
    let server = Server::start();
    for path in [
        "/api/v1/export.png?height=&height=300",
        "/api/v1/jobs?limit=5&limit=6",
        "/healthz?x=1&x=2",
    ] {
        let url = format!("{}{path}", server.url());
        let msg = assert_error(path, http("GET", &url, Some(&server.token), None), 400);
        assert!(msg.contains("given more than once"), "{msg}");
    }
    let url = format!("{}/api/v1/jobs?limit=5&state=queued", server.url());
    assert_eq!(http("GET", &url, Some(&server.token), None).0, 200);
}

#[test]
fn rows_as_arrow_are_the_rows_as_json() {
    let server = Server::start();
    let client = server.client();
    let worker = register(&client, "arrow-w", &[JobKind::Experiment]);
    let id = client.submit(&JobSpec::experiment("cma_es", 1000)).unwrap();
    let a = claim(&client, &worker, &[JobKind::Experiment], 0).unwrap();
    // More rows than one record batch, a second metric on some rows only, a NaN.
    let mut rows: Vec<Row> = gen_rows(0, 70_000);
    rows[5].metrics.push(("loss".into(), 0.25));
    rows[6].best = Some(f64::NAN);
    rows[7].generation = None;
    // A metric first reported in a later batch joins the columns too.
    rows[45_000].metrics.push(("zeta".into(), -1.0));
    for chunk in rows.chunks(20_000) {
        client
            .post_rows(id, &row_batch(&a, chunk.to_vec()), true)
            .unwrap();
    }
    let url = format!("{}/api/v1/jobs/{id}/rows", server.url());

    for (how, url, headers) in [
        ("?format=arrow", format!("{url}?format=arrow"), vec![]),
        (
            "Accept",
            url.clone(),
            vec![("accept", "application/vnd.apache.arrow.stream")],
        ),
    ] {
        let (status, head, body) = get(&url, &server.token, &headers);
        assert_eq!(status, 200, "{how}");
        assert!(
            head.contains("content-type: application/vnd.apache.arrow.stream"),
            "{how}: {head}"
        );
        let (schema, batches) = read_arrow(&body);
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "seq",
                "generation",
                "evals",
                "best",
                "best_ever",
                "mean",
                "sigma",
                "elapsed",
                "entropy",
                "loss",
                "zeta"
            ],
            "{how}"
        );
        // The row count comes first, so a client can size its columns (the Python client's
        // pandas frame is filled batch by batch).
        assert!(head.contains("x-gaia-rows: 70000"), "{how}: {head}");
        assert_eq!(f64_col(&batches, "zeta")[45_000], Some(-1.0));
        assert_eq!(schema.metadata()["gaia.job"], id.to_string());
        assert_eq!(schema.metadata()["gaia.attempt"], "1");
        assert!(batches.len() >= 2, "{how}: streamed in batches");
        let seq = u64_col(&batches, "seq");
        assert_eq!(seq.len(), 70_000);
        assert!(seq.iter().enumerate().all(|(i, s)| *s == Some(i as u64)));
        let generation = u64_col(&batches, "generation");
        assert_eq!(generation[7], None, "a missing value is null");
        assert_eq!(generation[8], Some(9));
        let best = f64_col(&batches, "best");
        assert!(best[6].unwrap().is_nan(), "NaN stays NaN");
        assert_eq!(best[9], rows[9].best);
        let loss = f64_col(&batches, "loss");
        assert_eq!(loss[5], Some(0.25));
        assert_eq!(loss.iter().filter(|v| v.is_some()).count(), 1);
        assert_eq!(
            f64_col(&batches, "entropy")[69_999],
            rows[69_999].metric("entropy")
        );
    }

    // Downsampled and ranged answers come as Arrow too.
    let (_, _, body) = get(
        &format!("{url}?format=arrow&points=100"),
        &server.token,
        &[],
    );
    let (schema, batches) = read_arrow(&body);
    assert_eq!(schema.metadata()["gaia.downsampled"], "true");
    assert!(batches.iter().map(|b| b.num_rows()).sum::<usize>() <= 100);
    let (_, _, body) = get(
        &format!("{url}?format=arrow&x=generation&from=10&to=19"),
        &server.token,
        &[],
    );
    let (_, batches) = read_arrow(&body);
    assert_eq!(
        u64_col(&batches, "generation"),
        (10..=19).map(Some).collect::<Vec<_>>()
    );
    let msg = assert_error(
        "format=xml",
        http(
            "GET",
            &format!("{url}?format=xml"),
            Some(&server.token),
            None,
        ),
        400,
    );
    assert!(msg.contains("json or arrow"), "{msg}");
}

#[test]
fn a_studys_rows_as_arrow_carry_their_context() {
    let server = Server::start();
    let client = server.client();
    let worker = register(&client, "arrow-s", &[JobKind::Experiment]);
    let body = r#"{"name": "arrow-study", "template": {"max_evals": 100, "params": {"tag": "x"}},
        "sweep": {"methods": ["cma_es", "openai_es"], "seeds": [1, 2],
                  "params": [{"key": "lr", "values": [0.1, 0.2]}]}}"#;
    let (status, text) = post_json(
        &format!("{}/api/v1/studies", server.url()),
        Some(&server.token),
        body,
    );
    assert_eq!(status, 201, "{text}");
    for _ in 0..8 {
        let a = claim(&client, &worker, &[JobKind::Experiment], 0).unwrap();
        client
            .post_rows(a.job.id, &row_batch(&a, gen_rows(0, 10)), true)
            .unwrap();
    }
    let (status, head, body) = get(
        &format!("{}/api/v1/studies/arrow-study/export.arrow", server.url()),
        &server.token,
        &[],
    );
    assert_eq!(status, 200);
    assert!(head.contains("x-gaia-rows: 80"), "{head}");
    let (schema, batches) = read_arrow(&body);
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        &names[..9],
        [
            "study",
            "job",
            "method",
            "env",
            "seed",
            "param_lr",
            "param_tag",
            "attempt",
            "seq"
        ]
    );
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(total, 80);
    let b = &batches[0];
    let method = b
        .column_by_name("method")
        .unwrap()
        .as_dictionary::<UInt32Type>();
    let values = method.values().as_string::<i32>();
    let mut methods: Vec<&str> = (0..values.len()).map(|i| values.value(i)).collect();
    methods.sort();
    assert_eq!(
        methods,
        ["cma_es", "openai_es"],
        "one dictionary for the stream"
    );
    let lr = f64_col(&batches, "param_lr");
    assert!(
        lr.iter()
            .all(|v| matches!(v, Some(x) if *x == 0.1 || *x == 0.2))
    );
    let tag = b
        .column_by_name("param_tag")
        .unwrap()
        .as_dictionary::<UInt32Type>();
    assert_eq!(tag.values().as_string::<i32>().value(0), "x");
    let attempt = b
        .column_by_name("attempt")
        .unwrap()
        .as_primitive::<UInt32Type>();
    assert!((0..attempt.len()).all(|i| attempt.value(i) == 1));
    // A job's and every job's export have the same layout.
    for path in ["/api/v1/jobs/1/export.arrow", "/api/v1/export.arrow"] {
        let (status, _, body) = get(&format!("{}{path}", server.url()), &server.token, &[]);
        assert_eq!(status, 200, "{path}");
        let (schema, _) = read_arrow(&body);
        assert_eq!(schema.field(0).name(), "study", "{path}");
    }
}
