//! The HTTP API and the CLI over it, through real processes: jobs submitted, listed, shown and
//! cancelled; every route's scope and body limit from the one route table; bad input; tokens;
//! HTTPS through a TLS proxy.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use gaia_core::client::Client;
use gaia_core::model::{JobKind, JobSpec, JobState, Scope};
use gaia_core::protocol::{PROTOCOL_HEADER, UserAdd};
use gaia_core::server::router::{Ownership, ROUTES, Route};

use crate::helper::*;

// ---- jobs through the CLI and HTTP -----------------------------------------------------------

#[test]
fn submit_list_show_cancel_through_the_cli() {
    let server = Server::start();
    let id = server.cli_ok(&["submit", "--method", "cma_es", "--max-evals", "1000"]);
    assert_eq!(id.trim(), "1");
    let second = server.cli_ok(&[
        "submit",
        "--kind",
        "hash",
        "--input",
        "hello",
        "--priority",
        "5",
    ]);
    assert_eq!(second.trim(), "2");

    let listing = server.cli_ok(&["jobs"]);
    assert!(listing.contains("cma_es"), "{listing}");
    assert!(listing.contains("hash"), "{listing}");
    let page = json(&server.cli_ok(&["jobs", "--json"]));
    assert_eq!(page["total"], 2);
    assert_eq!(page["jobs"][0]["id"], 2, "newest first: {page}");

    let shown = server.cli_ok(&["show", "1"]);
    assert!(shown.contains("queued"), "{shown}");
    assert!(
        shown.contains("CartPole-v1"),
        "the default env is shown: {shown}"
    );
    let shown = json(&server.cli_ok(&["show", "1", "--json"]));
    assert_eq!(shown["spec"]["max_evals"], 1000);

    let cancelled = server.cli_ok(&["cancel", "1"]);
    assert!(cancelled.contains("cancelled"), "{cancelled}");
    assert!(server.cli_ok(&["show", "1"]).contains("cancelled"));
    let queued = json(&server.cli_ok(&["jobs", "--state", "queued", "--json"]));
    assert_eq!(queued["total"], 1);

    // A job that does not exist is an error with a message, not a crash.
    let out = server.cli(&["show", "99"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("99") && err.contains("not found"), "{err}");
}

#[test]
fn submit_list_show_cancel_through_http() {
    let server = Server::start();
    let t = Some(server.token.as_str());
    let base = server.url();
    let (status, body) = post_json(
        &format!("{base}/api/v1/jobs"),
        t,
        r#"{"method": "openai_es", "env": "sphere", "max_evals": 500, "seed": 7, "params": {"pop_size": 64}}"#,
    );
    assert_eq!(status, 201, "{body}");
    let id = json(&body)["id"].as_u64().unwrap();

    let (status, body) = post_json(
        &format!("{base}/api/v1/jobs/batch"),
        t,
        r#"{"jobs": [{"kind": "upper", "input": "a"}, {"kind": "reverse", "input": "b"}]}"#,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(json(&body)["ids"], serde_json::json!([id + 1, id + 2]));

    let (status, body) = http("GET", &format!("{base}/api/v1/jobs?limit=2"), t, None);
    assert_eq!(status, 200);
    let page = json(&body);
    assert_eq!(page["total"], 3);
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2);
    let next = page["next_before"].as_u64().expect("a next page");
    let (_, body) = http(
        "GET",
        &format!("{base}/api/v1/jobs?limit=2&before={next}"),
        t,
        None,
    );
    assert_eq!(json(&body)["jobs"][0]["id"], id);

    let (status, body) = http("GET", &format!("{base}/api/v1/jobs/{id}"), t, None);
    assert_eq!(status, 200);
    let job = json(&body);
    assert_eq!(job["state"], "queued");
    assert_eq!(job["spec"]["params"]["pop_size"], 64);
    assert_eq!(job["spec"]["seed"], 7);

    let (status, body) = post_json(&format!("{base}/api/v1/jobs/{id}/cancel"), t, "{}");
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["job"]["state"], "cancelled");
    let msg = assert_error(
        "cancel twice",
        post_json(&format!("{base}/api/v1/jobs/{id}/cancel"), t, "{}"),
        409,
    );
    assert!(msg.contains("already ended"), "{msg}");

    let (_, body) = http("GET", &format!("{base}/api/v1/status"), t, None);
    let status = json(&body);
    assert_eq!(status["jobs"]["cancelled"], 1);
    assert_eq!(status["jobs"]["queued"], 2);
    assert_eq!(
        status["jobs"]["lost"], 0,
        "every state is present: {status}"
    );
}

// ---- auth over the one route table -----------------------------------------------------------

/// The path of a route with its parameters filled for a caller: the job and token it names
/// are `job` and `token`.
fn fill_for(path: &str, job: u64, worker: &str, token: &str) -> String {
    let filled = fill(path, job, worker);
    if path.starts_with("/api/v1/tokens/") {
        format!("/api/v1/tokens/{token}")
    } else {
        filled
    }
}

#[test]
fn every_route_enforces_its_scope() {
    let server = Server::start();
    let admin = server.client();
    let job = admin.submit(&JobSpec::experiment("cma_es", 100)).unwrap();
    let worker_id = register(&admin, "authw", &[JobKind::Hash]);
    let worker_token = admin.create_token("w1", Scope::Worker).unwrap().token;
    let read_token = admin.create_token("r1", Scope::Read).unwrap().token;
    let metrics_token = admin.create_token("m1", Scope::Metrics).unwrap().token;
    // Two users with submit tokens; Alice owns a job, a study and a spare token.
    let add = |name: &str| {
        admin
            .add_user(&UserAdd {
                name: name.into(),
                ..Default::default()
            })
            .unwrap()
            .token
            .token
    };
    let (alice_token, bob_token) = (add("alice"), add("bob"));
    let alice = server.client_with(&alice_token);
    let alice_job = alice.submit(&JobSpec::experiment("cma_es", 100)).unwrap();
    alice.create_token("alice-spare", Scope::Read).unwrap();
    let tokens = [
        (Scope::Admin, server.token.clone()),
        (Scope::Worker, worker_token),
        (Scope::Read, read_token),
        (Scope::Metrics, metrics_token),
        (Scope::Submit, alice_token.clone()),
    ];
    // The issue's spec of the scopes, spelled out: submit sits between read and admin.
    let allowed = |have: Scope, need: Scope| {
        have == Scope::Admin || have == need || (have == Scope::Submit && need == Scope::Read)
    };
    for have in Scope::ALL {
        for need in Scope::ALL {
            assert_eq!(have.allows(need), allowed(have, need), "{have} → {need}");
        }
    }
    // What each caller's paths name: a submit token its own job and token; others the admin's.
    let path_for = |route: &Route, have: Scope| {
        let (j, t) = if have == Scope::Submit {
            (alice_job, "alice-spare")
        } else {
            (job, "no-such-token")
        };
        format!("{}{}", server.url(), fill_for(route.path, j, &worker_id, t))
    };

    let mut checked = 0;
    for route in ROUTES {
        let url = format!("{}{}", server.url(), fill(route.path, job, &worker_id));
        let what = format!("{} {} ({})", route.method, route.path, route.doc);
        let Some(need) = route.scope else {
            let (status, body) = http(route.method, &url, None, None);
            assert!(
                (200..300).contains(&status),
                "{what} is open but answered {status}: {body}"
            );
            assert_eq!(route.endpoint.ownership(), Ownership::None, "{what}");
            continue;
        };
        let msg = assert_error(&what, http(route.method, &url, None, None), 401);
        assert!(msg.contains("token"), "{what}: {msg}");
        assert_error(
            &what,
            http(route.method, &url, Some("not-a-real-token"), None),
            401,
        );
        for (have, token) in &tokens {
            if !allowed(*have, need) {
                let msg = assert_error(
                    &format!("{what} with a {} token", have.as_str()),
                    http(route.method, &path_for(route, *have), Some(token), None),
                    403,
                );
                assert!(msg.contains(need.as_str()), "{what}: {msg}");
            }
        }
        // The spec of the issue, spelled out: read tokens never mutate, worker tokens never
        // administer, submit tokens never keep users, releases or workers.
        if route.method != "GET" {
            assert!(!allowed(Scope::Read, need), "{what} is writable by read");
        }
        if need == Scope::Admin {
            assert!(!allowed(Scope::Worker, need), "{what} is open to workers");
        }
        // A metrics token (what a Prometheus server holds) reads /metrics and nothing else.
        assert_eq!(
            allowed(Scope::Metrics, need),
            route.path == "/metrics",
            "{what} and the metrics scope"
        );
        if route.method != "GET"
            && ["/api/v1/users", "/api/v1/releases", "/api/v1/workers"]
                .iter()
                .any(|p| route.path.starts_with(p))
        {
            assert!(
                !allowed(Scope::Submit, need),
                "{what} is open to submit tokens"
            );
        }
        // A submit route that names a thing in its path decides whose it may touch.
        if need == Scope::Submit && route.path.contains('{') {
            assert_ne!(route.endpoint.ownership(), Ownership::None, "{what}");
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} scoped routes");

    // Ownership: a submit token touches only its own user's job and tokens (403 naming the
    // owner); an admin token touches everyone's.
    let bob_url = |route: &Route| {
        format!(
            "{}{}",
            server.url(),
            fill_for(route.path, alice_job, &worker_id, "alice-spare")
        )
    };
    let mut owned = 0;
    for route in ROUTES.iter().filter(|r| r.scope.is_some()) {
        let what = format!("{} {}", route.method, route.path);
        match route.endpoint.ownership() {
            Ownership::Job => {
                // Alice on the admin's job, Bob on Alice's.
                let msg = assert_error(
                    &what,
                    http(
                        route.method,
                        &format!("{}{}", server.url(), fill(route.path, job, &worker_id)),
                        Some(&alice_token),
                        None,
                    ),
                    403,
                );
                assert!(msg.contains("belongs to admin"), "{what}: {msg}");
                let msg = assert_error(
                    &what,
                    http(route.method, &bob_url(route), Some(&bob_token), None),
                    403,
                );
                assert!(msg.contains("belongs to alice"), "{what}: {msg}");
            }
            Ownership::Token => {
                let msg = assert_error(
                    &what,
                    http(route.method, &bob_url(route), Some(&bob_token), None),
                    403,
                );
                assert!(msg.contains("belongs to alice"), "{what}: {msg}");
            }
            Ownership::Body | Ownership::Study | Ownership::Own | Ownership::None => continue,
        }
        owned += 1;
    }
    assert!(
        owned >= 2,
        "only {owned} routes check the owner in the path"
    );
    // Decided from the body: a study of another user, a token for another user or of a
    // larger scope.
    let base = server.url();
    let study =
        r#"{"name": "alices", "template": {"max_evals": 100}, "sweep": {"methods": "cma_es"}}"#;
    let (status, body) = post_json(&format!("{base}/api/v1/studies"), Some(&alice_token), study);
    assert_eq!(status, 201, "{body}");
    let again = study.replace("}}", r#"}, "again": true}"#);
    let msg = assert_error(
        "bob extends alice's study",
        post_json(&format!("{base}/api/v1/studies"), Some(&bob_token), &again),
        403,
    );
    assert!(msg.contains("belongs to alice"), "{msg}");
    let (status, body) = post_json(
        &format!("{base}/api/v1/studies"),
        Some(&server.token),
        &again,
    );
    assert_eq!(status, 201, "an admin extends anyone's study: {body}");
    // The study in the path: more seeds or a retry only by its owner (or an admin).
    for (action, body) in [("extend", r#"{"seeds": "+1"}"#), ("retry", "{}")] {
        let url = format!("{base}/api/v1/studies/alices/{action}");
        let msg = assert_error(
            &format!("bob {action}s alice's study"),
            post_json(&url, Some(&bob_token), body),
            403,
        );
        assert!(msg.contains("belongs to alice"), "{msg}");
    }
    let (status, body) = post_json(
        &format!("{base}/api/v1/studies/alices/extend"),
        Some(&alice_token),
        r#"{"seeds": "+1"}"#,
    );
    assert_eq!(status, 201, "alice adds a seed to her own study: {body}");
    let added: serde_json::Value = serde_json::from_str(&body).unwrap();
    for j in added["jobs"].as_array().unwrap() {
        let id = j[0].as_u64().unwrap();
        assert_eq!(
            admin.job(id).unwrap().owner,
            "alice",
            "the new seed's job is alice's"
        );
    }
    for body in [
        r#"{"name": "x1", "scope": "submit", "user": "alice"}"#,
        r#"{"name": "x2", "scope": "worker"}"#,
        r#"{"name": "x3", "scope": "admin"}"#,
    ] {
        assert_error(
            body,
            post_json(&format!("{base}/api/v1/tokens"), Some(&bob_token), body),
            403,
        );
    }
    // Listed: a submit token sees its own user's tokens, an admin everyone's.
    let names = |token: &str| -> Vec<String> {
        let (_, body) = http("GET", &format!("{base}/api/v1/tokens"), Some(token), None);
        json(&body)["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&alice_token), vec!["alice", "alice-spare"]);
    assert!(names(&server.token).len() >= 5);

    // Tokens that may call a route get past auth and ownership (whatever the handler then
    // says about the empty body). Done last: these calls change state.
    for route in ROUTES.iter().filter(|r| r.scope.is_some()) {
        for (have, token) in &tokens {
            if allowed(*have, route.scope.unwrap()) {
                let (status, body) = http(route.method, &path_for(route, *have), Some(token), None);
                assert!(
                    status != 401 && status != 403,
                    "{} {} with a {} token: {status} {body}",
                    route.method,
                    route.path,
                    have.as_str()
                );
            }
        }
    }
}

#[test]
fn every_route_refuses_a_body_over_its_limit() {
    let server = Server::start();
    let admin = server.client();
    let job = admin.submit(&JobSpec::experiment("cma_es", 100)).unwrap();
    let worker_id = register(&admin, "limitw", &[JobKind::Hash]);
    let config = gaia_core::server::ServerConfig::new("unused", "unused");
    for route in ROUTES {
        let limit = route.endpoint.body().limit(&config);
        let path = fill(route.path, job, &worker_id);
        // Declared, not sent: the router must refuse it from the header alone.
        let request = format!(
            "{} {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            route.method,
            server.token,
            limit + 1
        );
        let msg = assert_error(
            &format!("{} {} with {} bytes", route.method, route.path, limit + 1),
            raw_http(server.port, request.as_bytes()),
            413,
        );
        assert!(msg.contains(&limit.to_string()), "{msg}");
    }
    // A chunked body with no declared length is cut off at the same limit.
    let body = "x".repeat((1 << 20) + 10);
    let request = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        server.token,
        body.len()
    );
    assert_error(
        "chunked submit",
        raw_http(server.port, request.as_bytes()),
        413,
    );
    assert_eq!(admin.job(job).unwrap().id, job, "still serving");
}

#[test]
fn api_doc_lists_every_route() {
    let doc = std::fs::read_to_string(repo_root().join("docs/API.md")).unwrap();
    let missing: Vec<String> = ROUTES
        .iter()
        .map(|r| format!("{} {}`", r.method, r.path))
        .filter(|needle| !doc.contains(needle.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/API.md does not document these routes (write them as `METHOD /path`): {missing:?}"
    );
}

#[test]
fn links_may_carry_the_token_in_the_query() {
    let server = Server::start();
    let read = server.client().create_token("viewer", Scope::Read).unwrap();
    let (status, body) = http(
        "GET",
        &format!("{}/api/v1/jobs?token={}", server.url(), read.token),
        None,
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_error(
        "wrong query token",
        http(
            "GET",
            &format!("{}/api/v1/jobs?token=wrong", server.url()),
            None,
            None,
        ),
        401,
    );
    // Only reads: a URL that would change something does not carry a token.
    let job = server
        .client()
        .submit(&JobSpec::builtin(JobKind::Hash, "x"))
        .unwrap();
    for (method, path) in [
        ("POST", format!("/api/v1/jobs/{job}/cancel")),
        ("POST", "/api/v1/tokens".to_string()),
    ] {
        let msg = assert_error(
            &format!("{method} {path} with ?token="),
            http(
                method,
                &format!("{}{path}?token={}", server.url(), server.token),
                None,
                None,
            ),
            401,
        );
        assert!(msg.contains("Authorization"), "{msg}");
    }
    assert_eq!(server.client().job(job).unwrap().state, JobState::Queued);
}

#[test]
fn open_routes_answer_without_a_token() {
    let server = Server::start();
    let (status, body) = http("GET", &format!("{}/healthz", server.url()), None, None);
    assert_eq!(status, 200);
    let v = json(&body);
    assert_eq!(v["ok"], true);
    assert_eq!(v["version"], gaia_core::VERSION);
    let (status, body) = http("GET", &format!("{}/", server.url()), None, None);
    assert_eq!(status, 200);
    assert!(body.contains("<html") || body.contains("<!doctype") || body.contains("<!DOCTYPE"));
    let msg = assert_error(
        "unknown page",
        http("GET", &format!("{}/nope.html", server.url()), None, None),
        404,
    );
    assert!(msg.contains("nope.html"), "{msg}");
}

// ---- bad input -------------------------------------------------------------------------------

#[test]
fn bad_input_gets_a_clear_4xx_and_the_server_keeps_serving() {
    let server = Server::start();
    let base = server.url();
    let t = Some(server.token.as_str());
    let jobs = format!("{base}/api/v1/jobs");

    // Oversized bodies: refused from the announced length before a byte is read, and when
    // sent without a length (chunked) as soon as the limit is passed; the limit is named. Raw
    // sockets, because the server answers before reading the rest of the body and an HTTP
    // client still writing it may see the connection close instead of the answer.
    let auth = format!("authorization: Bearer {}\r\n", server.token);
    let announced = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nhost: x\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{{",
        2 << 20
    );
    let msg = assert_error(
        "oversized",
        raw_http(server.port, announced.as_bytes()),
        413,
    );
    assert!(msg.contains("limit"), "{msg}");
    let size = (1 << 20) + 100;
    let mut chunked = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nhost: x\r\n{auth}content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{size:x}\r\n"
    )
    .into_bytes();
    chunked.extend(std::iter::repeat_n(b' ', size));
    chunked.extend(b"\r\n0\r\n\r\n");
    let msg = assert_error("oversized, chunked", raw_http(server.port, &chunked), 413);
    assert!(msg.contains("limit"), "{msg}");

    let cases: &[(&str, &str, &str)] = &[
        ("malformed JSON", r#"{"method": "cma_es""#, "invalid JSON"),
        ("empty body", "", "JSON body"),
        ("wrong type", r#"{"method": 5}"#, "invalid type"),
        (
            "negative max-evals",
            r#"{"method": "cma_es", "max_evals": -5}"#,
            "-5",
        ),
        (
            "zero max-evals",
            r#"{"method": "cma_es", "max_evals": 0}"#,
            "max_evals",
        ),
        (
            "unknown field",
            r#"{"method": "cma_es", "colour": "red"}"#,
            "colour",
        ),
        ("bad method name", r#"{"method": "../x"}"#, "method"),
        (
            "bad env name",
            r#"{"method": "cma_es", "env": "a/b"}"#,
            "environment",
        ),
        (
            "unknown kind",
            r#"{"kind": "nuclear", "input": "x"}"#,
            "nuclear",
        ),
        ("no method", r#"{}"#, "method"),
        (
            "bad tag",
            r#"{"method": "cma_es", "requirements": {"tags": ["a b"]}}"#,
            "tag",
        ),
        (
            "wait job with a non-number",
            r#"{"kind": "wait", "input": "soon"}"#,
            "wait",
        ),
    ];
    for (what, body, needle) in cases {
        let msg = assert_error(what, post_json(&jobs, t, body), 400);
        assert!(msg.contains(needle), "{what}: {msg:?} lacks {needle:?}");
    }
    let msg = assert_error(
        "not UTF-8",
        http(
            "POST",
            &jobs,
            t,
            Some(("application/json", vec![b'{', 0xff, 0xfe, b'}'])),
        ),
        400,
    );
    assert!(msg.contains("JSON"), "{msg}");

    // Unknown jobs, routes and methods.
    let msg = assert_error(
        "unknown job",
        http("GET", &format!("{jobs}/999999"), t, None),
        404,
    );
    assert!(msg.contains("999999"), "{msg}");
    assert_error(
        "cancel unknown job",
        post_json(&format!("{jobs}/999999/cancel"), t, "{}"),
        404,
    );
    assert_error(
        "rows of unknown job",
        http("GET", &format!("{jobs}/999999/rows"), t, None),
        404,
    );
    assert_error(
        "non-numeric id",
        http("GET", &format!("{jobs}/abc"), t, None),
        404,
    );
    assert_error(
        "no such route",
        http("GET", &format!("{base}/api/v1/nothing"), t, None),
        404,
    );
    assert_error("wrong method", http("DELETE", &jobs, t, None), 405);

    // Bad query parameters.
    for q in ["state=bogus", "limit=abc", "before=-1"] {
        assert_error(q, http("GET", &format!("{jobs}?{q}"), t, None), 400);
    }

    // A worker's calls: garbage postcard, a stale lease, an unknown worker.
    let client = server.client();
    let worker = register(&client, "badw", &[JobKind::Hash]);
    let id = client
        .submit(&JobSpec::builtin(JobKind::Hash, "x"))
        .unwrap();
    let a = claim(&client, &worker, &[JobKind::Hash], 0).unwrap();
    let msg = assert_error(
        "garbage postcard",
        http(
            "POST",
            &format!("{jobs}/{id}/rows"),
            t,
            Some((gaia_core::protocol::POSTCARD_CONTENT_TYPE, vec![0xff; 10])),
        ),
        400,
    );
    assert!(msg.contains("postcard"), "{msg}");
    let stale = format!(
        r#"{{"attempt": {}, "lease": {}, "rows": [{{"seq": 0}}]}}"#,
        a.attempt,
        a.lease + 1
    );
    let msg = assert_error(
        "stale lease",
        post_json(&format!("{jobs}/{id}/rows"), t, &stale),
        409,
    );
    assert!(msg.contains("no longer current"), "{msg}");
    let msg = assert_error(
        "bad metric name",
        post_json(
            &format!("{jobs}/{id}/rows"),
            t,
            &format!(
                r#"{{"attempt": {}, "lease": {}, "rows": [{{"seq": 0, "metrics": [["../x", 1.0]]}}]}}"#,
                a.attempt, a.lease
            ),
        ),
        400,
    );
    assert!(msg.contains("metric"), "{msg}");
    assert_error(
        "bad file name",
        http(
            "PUT",
            &format!(
                "{jobs}/{id}/files/..%2Fescape?attempt={}&lease={}",
                a.attempt, a.lease
            ),
            t,
            Some(("application/octet-stream", b"x".to_vec())),
        ),
        400,
    );
    assert_error(
        "heartbeat of an unknown worker",
        post_json(
            &format!("{base}/api/v1/workers/w-nobody/heartbeat"),
            t,
            "{}",
        ),
        404,
    );
    assert_error(
        "bad worker name",
        post_json(
            &format!("{base}/api/v1/workers/register"),
            t,
            r#"{"name": "../x", "version": "1", "kinds": ["hash"], "slots": 1}"#,
        ),
        400,
    );
    assert_error(
        "bad token name",
        post_json(
            &format!("{base}/api/v1/tokens"),
            t,
            r#"{"name": "a b", "scope": "read"}"#,
        ),
        400,
    );
    assert_error(
        "bad scope",
        post_json(
            &format!("{base}/api/v1/tokens"),
            t,
            r#"{"name": "ok", "scope": "root"}"#,
        ),
        400,
    );

    // Nothing of the above was stored, and the server still serves.
    let (status, _) = http("GET", &format!("{base}/healthz"), None, None);
    assert_eq!(status, 200);
    let (status, body) = post_json(&jobs, t, r#"{"method": "cma_es"}"#);
    assert_eq!(status, 201, "{body}");
    assert_eq!(json(&body)["id"], id + 1);
    assert!(client.rows(id, None, None).unwrap().rows.is_empty());
}

#[test]
fn a_protocol_mismatch_says_which_side_to_upgrade() {
    let server = Server::start();
    let call = |version: &str| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .get(format!("{}/api/v1/jobs", server.url()))
            .header("authorization", format!("Bearer {}", server.token))
            .header(PROTOCOL_HEADER, version)
            .call()
            .unwrap();
        (
            resp.status().as_u16(),
            resp.body_mut().read_to_string().unwrap(),
        )
    };
    let current = gaia_core::protocol::PROTOCOL_VERSION;
    assert_eq!(call(&current.to_string()).0, 200);
    let msg = assert_error("newer client", call(&(current + 1).to_string()), 400);
    assert!(msg.contains("upgrade the server"), "{msg}");
    let msg = assert_error("older client", call(&(current - 1).to_string()), 400);
    assert!(msg.contains("upgrade the client"), "{msg}");
    assert_error("garbage", call("one"), 400);
}

// ---- tokens ----------------------------------------------------------------------------------

#[test]
fn a_read_token_reads_cannot_write_and_is_refused_once_revoked() {
    let server = Server::start();
    server.cli_ok(&["submit", "--method", "cma_es"]);
    let token = server.cli_ok(&["token", "create", "--scope", "read", "--name", "viewer"]);
    let token = token.trim();
    assert_eq!(token.len(), 64, "{token:?}");
    assert!(server.cli_ok(&["token", "list"]).contains("viewer"));

    let out = cli_as(&server, token, &["jobs"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("cma_es"));
    let out = cli_as(&server, token, &["submit", "--method", "cma_es"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("403") && err.contains("read token"), "{err}");

    server.cli_ok(&["token", "revoke", "viewer"]);
    assert!(!server.cli_ok(&["token", "list"]).contains("viewer"));
    let out = cli_as(&server, token, &["jobs"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("401") && err.contains("invalid token"),
        "{err}"
    );
    assert_error(
        "revoked token",
        http(
            "GET",
            &format!("{}/api/v1/jobs", server.url()),
            Some(token),
            None,
        ),
        401,
    );
    // Names are unique while they live, and free again once revoked.
    server.cli_ok(&["token", "create", "--scope", "worker", "--name", "viewer"]);
    let out = server.cli(&["token", "create", "--scope", "read", "--name", "viewer"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));
}

// ---- HTTPS -----------------------------------------------------------------------------------

/// A TLS-terminating proxy in front of `backend` (what Caddy is in production), with the test
/// certificate for localhost / 127.0.0.1; returns its port.
fn tls_proxy(backend: u16) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = repo_root().join("tests/data/tls");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().map_while(Result::ok) {
            let config = config.clone();
            std::thread::spawn(move || {
                let pause = Some(Duration::from_millis(5));
                let Ok(mut up) = TcpStream::connect(("127.0.0.1", backend)) else {
                    return;
                };
                tcp.set_read_timeout(pause).unwrap();
                up.set_read_timeout(pause).unwrap();
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut buf = vec![0u8; 64 * 1024];
                let idle = |e: &std::io::Error| {
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                };
                loop {
                    match tls.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            if up.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                        Err(e) if idle(&e) => {}
                        Err(_) => return,
                    }
                    match up.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            if tls.write_all(&buf[..n]).and_then(|()| tls.flush()).is_err() {
                                return;
                            }
                        }
                        Err(e) if idle(&e) => {}
                        Err(_) => return,
                    }
                }
            });
        }
    });
    port
}

#[test]
fn the_client_speaks_https_through_a_tls_proxy() {
    let server = Server::start();
    let port = tls_proxy(server.port);
    let url = format!("https://127.0.0.1:{port}");
    let ca = repo_root().join("tests/data/tls/ca.pem");
    let ca_pem = std::fs::read(&ca).unwrap();

    // The library client, trusting the lab's CA.
    let c = Client::with_ca(&url, Some(server.token.clone()), &ca_pem).unwrap();
    assert_eq!(c.healthz().unwrap()["ok"], true);
    let id = c.submit(&JobSpec::builtin(JobKind::Hash, "hello")).unwrap();

    // A worker over HTTPS: register, long-poll claim, report.
    let _w = Worker::start_via(&server, &url, "tlsw", &["--ca-cert", ca.to_str().unwrap()]);
    let job = wait_done(&c, id, Duration::from_secs(60));
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.worker_name.as_deref(), Some("tlsw"));

    // The CLI, with --ca-cert; without it the certificate is refused, saying so.
    let out = Command::new(gaia_bin())
        .args(["status", "--server", &url, "--ca-cert"])
        .arg(&ca)
        .env("GAIA_TOKEN", &server.token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("succeeded"));
    let out = Command::new(gaia_bin())
        .args(["status", "--server", &url])
        .env("GAIA_TOKEN", &server.token)
        .env_remove("GAIA_CA_CERT")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("certificate") || err.contains("issuer"),
        "{err}"
    );
}
