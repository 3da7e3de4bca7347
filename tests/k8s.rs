//! `examples/k8s/`, checked: `kubectl apply --dry-run=client` parses and maps every object (there
//! is no cluster here: a stub answers kubectl's API discovery — which kinds exist — and says no
//! object exists yet, nothing more); then what the objects say is checked against each other
//! and against the real thing: the `gaia` arguments parse, the grace period covers the worker's
//! give-back, the KEDA trigger's URL answers with the number it names on a real server.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use gaia_core::model::Scope;
use serde_json::{Value, json};

use crate::helper::*;

/// The kinds the manifests use, as API discovery lists them: (group version, resource, kind).
const KINDS: &[(&str, &str, &str)] = &[
    ("v1", "services", "Service"),
    ("v1", "secrets", "Secret"),
    ("v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    ("apps/v1", "statefulsets", "StatefulSet"),
    ("apps/v1", "deployments", "Deployment"),
    ("keda.sh/v1alpha1", "scaledobjects", "ScaledObject"),
    (
        "keda.sh/v1alpha1",
        "triggerauthentications",
        "TriggerAuthentication",
    ),
];

/// Answers kubectl's discovery requests (`/api`, `/apis`, `/api/v1`, `/apis/<group>/<v>`,
/// `/version`) for [`KINDS`], and 404 for any object; returns the URL.
fn discovery_stub() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // Skip the headers.
            let mut h = String::new();
            while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                h.clear();
            }
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .split('?')
                .next()
                .unwrap()
                .to_string();
            let (status, body) = discovery(&path);
            let body = body.to_string();
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn discovery(path: &str) -> (&'static str, Value) {
    let versions: Vec<&str> = {
        let mut v: Vec<&str> = KINDS.iter().map(|k| k.0).collect();
        v.dedup();
        v
    };
    let resources = |gv: &str| {
        json!({
            "kind": "APIResourceList",
            "groupVersion": gv,
            "resources": KINDS.iter().filter(|k| k.0 == gv).map(|(_, r, k)| json!({
                "name": r, "singularName": k.to_lowercase(), "namespaced": true, "kind": k,
                "verbs": ["create", "get", "list", "patch", "update", "delete"],
            })).collect::<Vec<_>>(),
        })
    };
    match path {
        "/version" => (
            "200 OK",
            json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0"}),
        ),
        "/api" => ("200 OK", json!({"kind": "APIVersions", "versions": ["v1"]})),
        "/apis" => (
            "200 OK",
            json!({
                "kind": "APIGroupList", "apiVersion": "v1",
                "groups": versions.iter().filter(|v| v.contains('/')).map(|gv| {
                    let (g, v) = gv.split_once('/').unwrap();
                    json!({"name": g, "versions": [{"groupVersion": gv, "version": v}],
                           "preferredVersion": {"groupVersion": gv, "version": v}})
                }).collect::<Vec<_>>(),
            }),
        ),
        "/api/v1" => ("200 OK", resources("v1")),
        p if p.starts_with("/apis/") && p.matches('/').count() == 3 => {
            ("200 OK", resources(&p["/apis/".len()..]))
        }
        _ => (
            "404 Not Found",
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": "NotFound", "code": 404}),
        ),
    }
}

fn kubectl() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("kubectl"))
            .find(|p| p.is_file())
    })
}

fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} expected");
    found[0]
}

/// A container's args as strings.
fn args(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// `--flag=value` or `--flag value` in args.
fn flag(args: &[String], name: &str) -> Option<String> {
    let eq = format!("{name}=");
    args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix(&eq)
            .map(str::to_string)
            .or_else(|| (a == name).then(|| args.get(i + 1).cloned()).flatten())
    })
}

#[test]
fn the_kubernetes_example_applies_and_its_parts_fit_together() {
    let Some(kubectl) = kubectl() else {
        prerequisites(
            "the Kubernetes manifests' check",
            &["kubectl (.ci/install)".into()],
        );
        return;
    };
    let dir = repo_root().join("examples/k8s");
    let out = Command::new(&kubectl)
        .args(["--server", &discovery_stub(), "apply", "--dry-run=client"])
        .args(["--validate=false", "-o", "json", "-f"])
        .arg(&dir)
        .env("KUBECONFIG", "/dev/null")
        .env("HOME", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl apply --dry-run=client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let objects = list["items"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![list]);
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    for k in [
        "Service",
        "StatefulSet",
        "Deployment",
        "ScaledObject",
        "TriggerAuthentication",
    ] {
        assert!(kinds.contains(&k), "{k} missing: {kinds:?}");
    }

    // No token is written into any manifest: every GAIA_TOKEN comes from a Secret.
    let text = serde_json::to_string(&objects).unwrap();
    for o in &objects {
        for c in o["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for e in c["env"].as_array().into_iter().flatten() {
                if e["name"] == "GAIA_TOKEN" {
                    assert!(e["value"].is_null(), "a literal token: {e}");
                    assert!(e["valueFrom"]["secretKeyRef"]["name"].is_string(), "{e}");
                }
            }
        }
    }
    assert!(!text.contains("Bearer "), "a literal token");

    // The server: a StatefulSet with a claim for its data, behind the Service.
    let svc = one(&objects, "Service");
    let sts = one(&objects, "StatefulSet");
    let name = svc["metadata"]["name"].as_str().unwrap();
    assert_eq!(sts["spec"]["serviceName"], name);
    assert_eq!(sts["spec"]["replicas"], 1, "one server per redb file");
    let pod_labels = &sts["spec"]["template"]["metadata"]["labels"];
    for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&pod_labels[k], v, "the Service selects the server's pods");
    }
    let claim = &sts["spec"]["volumeClaimTemplates"][0];
    let server = &sts["spec"]["template"]["spec"]["containers"][0];
    let mounted = server["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == claim["metadata"]["name"])
        .expect("the data claim is mounted");
    let serve_args = args(server);
    assert_eq!(serve_args[0], "serve");
    assert_eq!(
        flag(&serve_args, "--data-dir").as_deref(),
        mounted["mountPath"].as_str(),
        "the data dir is on the claim"
    );
    let port = svc["spec"]["ports"][0]["port"].as_u64().unwrap();
    assert_eq!(flag(&serve_args, "--port"), Some(port.to_string()));

    // The workers: their grace covers the kill grace and the time to send their output.
    let dep = one(&objects, "Deployment");
    let pod = &dep["spec"]["template"]["spec"];
    let worker = &pod["containers"][0];
    let work_args = args(worker);
    assert_eq!(work_args[0], "work");
    let kill_grace: u64 = flag(&work_args, "--kill-grace").unwrap().parse().unwrap();
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        grace >= kill_grace + 15,
        "terminationGracePeriodSeconds {grace} < --kill-grace {kill_grace} + 15 s to send the output"
    );
    assert_eq!(flag(&work_args, "--on-sigterm").as_deref(), Some("preempt"));
    let server_env = worker["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "GAIA_SERVER")
        .unwrap();
    assert_eq!(
        server_env["value"].as_str().unwrap(),
        format!("http://{name}:{port}")
    );

    // The arguments are ones this gaia takes (clap checks them before it prints help).
    for a in [&serve_args, &work_args] {
        let out = Command::new(gaia_bin())
            .args(a.iter())
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gaia {a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // KEDA scales the Deployment on a number a real server gives.
    let so = one(&objects, "ScaledObject");
    let ta = one(&objects, "TriggerAuthentication");
    assert_eq!(
        so["spec"]["scaleTargetRef"]["name"],
        dep["metadata"]["name"]
    );
    let trigger = &so["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "metrics-api");
    assert_eq!(trigger["authenticationRef"]["name"], ta["metadata"]["name"]);
    let meta = &trigger["metadata"];
    assert_eq!(meta["authMode"], "bearer");
    let url = meta["url"].as_str().unwrap();
    let prefix = format!("http://{name}:{port}");
    let path = url
        .strip_prefix(&prefix)
        .expect("the trigger reaches the Service");
    let live = Server::start();
    let read = live
        .client()
        .create_token("keda", Scope::Read)
        .unwrap()
        .token;
    let (status, body) = http("GET", &format!("{}{path}", live.url()), Some(&read), None);
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let location = meta["valueLocation"].as_str().unwrap();
    assert!(
        answer[location].is_u64(),
        "{location} is not a number in {body}"
    );
}
