//! A lab, not a person: users with their own submit tokens, ownership, quotas, and fair share
//! between users with real workers; usage that survives a restart.

use std::time::{Duration, Instant};

use gaia_core::model::{JobKind, JobSpec, JobState, Scope};
use gaia_core::protocol::{JobQuery, UserAdd};

use crate::helper::*;

#[test]
fn a_researcher_with_a_submit_token_works_on_their_own_and_only_their_own() {
    let server = Server::start();
    // The admin adds two users; each gets a submit token, printed once.
    let alice = server
        .cli_ok(&[
            "user",
            "add",
            "alice",
            "--share",
            "2",
            "--max-running",
            "40",
        ])
        .trim()
        .to_string();
    let bob = server.cli_ok(&["user", "add", "bob"]).trim().to_string();
    assert_eq!(alice.len(), 64, "{alice}");
    let users = server.cli_ok(&["user", "list"]);
    assert!(users.contains("alice") && users.contains("40"), "{users}");

    // Alice makes a token for her laptop with her own token, and works with that.
    let laptop = ok_out(
        cli_as(
            &server,
            &alice,
            &[
                "token",
                "create",
                "--scope",
                "submit",
                "--name",
                "alice-laptop",
            ],
        ),
        "alice's token create",
    )
    .trim()
    .to_string();
    let a1 = ok_out(
        cli_as(
            &server,
            &laptop,
            &["submit", "--kind", "hash", "--input", "x"],
        ),
        "alice's submit",
    );
    let a1: u64 = a1.trim().parse().unwrap();
    let b1: u64 = ok_out(
        cli_as(&server, &bob, &["submit", "--kind", "hash", "--input", "y"]),
        "bob's submit",
    )
    .trim()
    .parse()
    .unwrap();
    let admin_job = server
        .client()
        .submit(&JobSpec::builtin(JobKind::Hash, "z"))
        .unwrap();

    // Owners: the user, not the token.
    let client = server.client();
    assert_eq!(client.job(a1).unwrap().owner, "alice");
    assert_eq!(client.job(b1).unwrap().owner, "bob");
    assert_eq!(client.job(admin_job).unwrap().owner, "admin");
    let shown = server.cli_ok(&["show", &a1.to_string()]);
    assert!(shown.contains("owner:      alice"), "{shown}");
    let listing = server.cli_ok(&["jobs"]);
    assert!(
        listing.contains("OWNER") && listing.contains("bob"),
        "{listing}"
    );

    // Filters: --mine (the token's user) and --user.
    let mine = json(&ok_out(
        cli_as(&server, &laptop, &["jobs", "--mine", "--json"]),
        "jobs --mine",
    ));
    assert_eq!(mine["total"], 1);
    assert_eq!(mine["jobs"][0]["id"], a1);
    let bobs = json(&server.cli_ok(&["jobs", "--user", "bob", "--json"]));
    assert_eq!(bobs["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(bobs["jobs"][0]["owner"], "bob");

    // Alice may not cancel Bob's job (403, naming the owner) but may cancel her own.
    let e = err_out(
        cli_as(&server, &laptop, &["cancel", &b1.to_string()]),
        "alice cancels bob's job",
    );
    assert!(e.contains("403") && e.contains("belongs to bob"), "{e}");
    assert_eq!(client.job(b1).unwrap().state, JobState::Queued);
    ok_out(
        cli_as(&server, &laptop, &["cancel", &a1.to_string()]),
        "alice cancels her job",
    );
    assert_eq!(client.job(a1).unwrap().state, JobState::Cancelled);

    // Her tokens: she sees and revokes her own, not Bob's; she cannot make admin tokens or users.
    let tokens = ok_out(cli_as(&server, &laptop, &["token", "list"]), "token list");
    assert!(
        tokens.contains("alice-laptop") && !tokens.contains("bob"),
        "{tokens}"
    );
    let e = err_out(
        cli_as(&server, &laptop, &["token", "revoke", "bob"]),
        "alice revokes bob's token",
    );
    assert!(e.contains("belongs to bob"), "{e}");
    let e = err_out(
        cli_as(&server, &laptop, &["token", "create", "--scope", "admin"]),
        "alice makes an admin token",
    );
    assert!(e.contains("403") && e.contains("admin token"), "{e}");
    let e = err_out(
        cli_as(
            &server,
            &laptop,
            &["token", "create", "--scope", "submit", "--user", "bob"],
        ),
        "alice makes a token for bob",
    );
    assert!(e.contains("403"), "{e}");
    let e = err_out(
        cli_as(&server, &laptop, &["user", "add", "mallory"]),
        "user add",
    );
    assert!(e.contains("403") && e.contains("admin"), "{e}");
    ok_out(
        cli_as(&server, &alice, &["token", "revoke", "alice-laptop"]),
        "revoke own",
    );
    let e = err_out(cli_as(&server, &laptop, &["jobs"]), "a revoked token");
    assert!(e.contains("401"), "{e}");
    // A revoked token orphans nothing: her job is still hers.
    assert_eq!(client.job(a1).unwrap().owner, "alice");
    let who = server.client_with(&alice).whoami().unwrap();
    assert_eq!((who.scope, who.user.as_str()), (Scope::Submit, "alice"));

    // A token for a user who does not exist is refused (a typo must not own jobs).
    let e = server
        .client()
        .create_token_for("t", Scope::Submit, Some("alcie"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("404") && e.contains("gaia user add alcie"),
        "{e}"
    );
    // Removing a user with queued jobs is refused; once they are gone it revokes their tokens.
    let e = err_out(server.cli(&["user", "remove", "bob"]), "remove bob");
    assert!(e.contains("1 queued"), "{e}");
    server.cli_ok(&["cancel", &b1.to_string()]);
    let out = server.cli_ok(&["user", "remove", "bob"]);
    assert!(out.contains("revoked 1 token"), "{out}");
    assert!(err_out(cli_as(&server, &bob, &["jobs"]), "bob's token").contains("401"));
    assert_eq!(
        client.job(b1).unwrap().owner,
        "bob",
        "his jobs keep his name"
    );
}

#[test]
fn a_submission_over_the_queued_limit_is_refused_with_429_and_a_study_whole() {
    let server = Server::start();
    let carol = server
        .client()
        .add_user(&UserAdd {
            name: "carol".into(),
            max_queued: Some(3),
            ..Default::default()
        })
        .unwrap()
        .token
        .token;
    let t = Some(carol.as_str());
    let base = server.url();
    let (status, body) = post_json(
        &format!("{base}/api/v1/jobs/batch"),
        t,
        r#"{"jobs": [{"kind": "hash", "input": "a"}, {"kind": "hash", "input": "b"}]}"#,
    );
    assert_eq!(status, 201, "{body}");
    let msg = assert_error(
        "a batch over the limit",
        post_json(
            &format!("{base}/api/v1/jobs/batch"),
            t,
            r#"{"jobs": [{"kind": "hash", "input": "c"}, {"kind": "hash", "input": "d"}]}"#,
        ),
        429,
    );
    assert!(
        msg.contains("at most 3") && msg.contains("has 2") && msg.contains("nothing was submitted"),
        "{msg}"
    );
    // A study of 4 jobs would go past it: refused whole, no job and no study.
    let out = cli_as(
        &server,
        &carol,
        &[
            "submit",
            "--study",
            "sweep",
            "--method",
            "cma_es,openai_es",
            "--seeds",
            "1..2",
            "--max-evals",
            "100",
        ],
    );
    let e = err_out(out, "a study over the limit");
    assert!(e.contains("429") && e.contains("at most 3"), "{e}");
    let client = server.client();
    let all = client.jobs(&JobQuery::default()).unwrap();
    assert_eq!(all.total, 2, "nothing of the refused submissions");
    assert!(client.studies().unwrap().studies.is_empty());
    // One more fits exactly.
    let (status, body) = post_json(
        &format!("{base}/api/v1/jobs"),
        t,
        r#"{"kind": "hash", "input": "e"}"#,
    );
    assert_eq!(status, 201, "{body}");
    // The limit can be raised by an admin; usage lists it.
    server.cli_ok(&["user", "set", "carol", "--max-queued", "0"]);
    let (status, _) = post_json(
        &format!("{base}/api/v1/jobs"),
        t,
        r#"{"kind": "hash", "input": "f"}"#,
    );
    assert_eq!(status, 201);
    let usage = json(&server.cli_ok(&["usage", "--json"]));
    let line = usage["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == "carol")
        .unwrap()
        .clone();
    assert_eq!(line["queued"], 4);
    assert!(line["max_queued"].is_null(), "{line}");
}

/// `gaia user add` with a token name already taken is refused whole: no user without a token.
#[test]
fn a_user_whose_token_name_is_taken_is_not_added() {
    let server = Server::start();
    let client = server.client();
    let add = |name: &str, token_name: Option<&str>| UserAdd {
        name: name.into(),
        token_name: token_name.map(str::to_string),
        ..Default::default()
    };
    client.add_user(&add("alice", None)).unwrap();
    let err = client.add_user(&add("bob", Some("alice"))).unwrap_err();
    assert!(
        err.to_string().contains("a token named \"alice\" exists"),
        "{err}"
    );
    assert!(
        !client
            .users()
            .unwrap()
            .users
            .iter()
            .any(|u| u.name == "bob"),
        "bob was added without his token"
    );
    // Nothing half-made stands in the way of adding bob properly.
    let bob = client.add_user(&add("bob", None)).unwrap();
    assert_eq!(bob.token.name, "bob");
}

/// `gaia study extend` over a study of several submissions adds one plan per submission; the
/// owner's queued limit is checked for them all before any is written.
#[test]
fn an_extension_over_the_queued_limit_adds_nothing() {
    let server = Server::start();
    let dave = server
        .client()
        .add_user(&UserAdd {
            name: "dave".into(),
            max_queued: Some(1),
            ..Default::default()
        })
        .unwrap()
        .token
        .token;
    // Two submissions to one study (no worker runs: each is cancelled to make room).
    for method in ["cma_es", "openai_es"] {
        let out = cli_as(
            &server,
            &dave,
            &[
                "submit",
                "--study",
                "two",
                "--method",
                method,
                "--seeds",
                "1",
                "--max-evals",
                "100",
                "--json",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = json(&String::from_utf8_lossy(&out.stdout))["jobs"][0][0]
            .as_u64()
            .unwrap();
        let out = cli_as(&server, &dave, &["cancel", &id.to_string()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Seed 2 of both: 2 jobs, over a limit of 1 — the first plan alone would fit.
    let out = cli_as(&server, &dave, &["study", "extend", "two", "--seeds", "+1"]);
    let e = err_out(out, "an extension over the limit");
    assert!(e.contains("429") && e.contains("at most 1"), "{e}");
    let client = server.client();
    let all = client.jobs(&JobQuery::default()).unwrap();
    assert_eq!(
        all.total, 2,
        "the first plan of the refused extension was written"
    );
    // Raised, the same extension goes in whole.
    server.cli_ok(&["user", "set", "dave", "--max-queued", "2"]);
    let out = cli_as(&server, &dave, &["study", "extend", "two", "--seeds", "+1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(client.jobs(&JobQuery::default()).unwrap().total, 4);
}

#[test]
fn fair_share_and_its_half_life_are_server_settings() {
    let server = Server::start_with(&["--fair-share", "off", "--fair-share-half-life", "2h"]);
    let usage = json(&server.cli_ok(&["usage", "--json"]));
    assert_eq!(usage["fair_share"], false);
    assert_eq!(usage["half_life_secs"], 7200.0);
    let shown = String::from_utf8(server.cli(&["usage"]).stderr).unwrap();
    assert!(
        shown.contains("fair share off") && shown.contains("2h"),
        "{shown}"
    );
    let out = std::process::Command::new(gaia_bin())
        .args(["serve", "--port", "0", "--fair-share", "maybe"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && e.contains("write on or off"),
        "{e}"
    );
}

/// The times each user's attempts held a slot before `t`, in seconds.
fn used_before(jobs: &[gaia_core::model::Job], owner: &str, t: u64) -> f64 {
    jobs.iter()
        .filter(|j| j.owner == owner)
        .flat_map(|j| &j.attempts)
        .map(|a| {
            let end = a.ended_at.unwrap_or(t).min(t);
            end.saturating_sub(a.started_at.min(t)) as f64 / 1000.0
        })
        .sum()
}

#[test]
fn fair_share_two_users_two_workers_and_usage_survives_a_restart() {
    // Jobs of 0.3 s; Alice (share 1) fills the queue with 200 first, Bob (share 3) sends 20
    // once Alice's jobs hold both workers.
    const JOB_S: f64 = 0.3;
    let mut server = Server::start();
    let admin = server.client();
    let user = |name: &str, share: f64| {
        admin
            .add_user(&UserAdd {
                name: name.into(),
                share: Some(share),
                ..Default::default()
            })
            .unwrap()
            .token
            .token
    };
    let alice = server.client_with(&user("alice", 1.0));
    let bob = server.client_with(&user("bob", 3.0));
    let wait = || JobSpec::builtin(JobKind::Wait, &JOB_S.to_string());
    let alices = alice.submit_batch(vec![wait(); 200]).unwrap();
    let w1 = Worker::start(&server, "fs-1", &["--slots", "1", "--kinds", "wait"]);
    let w2 = Worker::start(&server, "fs-2", &["--slots", "1", "--kinds", "wait"]);
    // Alice's head start: her jobs hold both workers.
    wait_for("alice's jobs run", Duration::from_secs(30), || {
        let running = admin
            .jobs(&JobQuery {
                state: Some(JobState::Running),
                ..JobQuery::default()
            })
            .unwrap();
        (running.total >= 2).then_some(())
    });
    let submitted = gaia_core::model::now_ms();
    let bobs = bob.submit_batch(vec![wait(); 20]).unwrap();
    let t0 = Instant::now();
    // Bob's first job starts at the next free slot: within a job length or two.
    let first_start = wait_for("bob's first job starts", Duration::from_secs(30), || {
        admin.job(bobs[0]).unwrap().started_at
    });
    let waited = first_start.saturating_sub(submitted) as f64 / 1000.0;
    eprintln!(
        "fair share: bob's first job started {waited:.3} s after his submit (jobs of {JOB_S} s)"
    );
    assert!(
        waited <= 2.0 * JOB_S + 0.5,
        "bob waited {waited:.3} s for his first job"
    );
    // Every one of Bob's jobs starts before Alice's backlog is done.
    let last_start = wait_for("bob's jobs all start", Duration::from_secs(60), || {
        let list = admin
            .jobs(&JobQuery {
                owner: Some("bob".into()),
                limit: Some(100),
                ..JobQuery::default()
            })
            .unwrap();
        let starts: Option<Vec<u64>> = list.jobs.iter().map(|j| j.started_at).collect();
        starts.map(|s| *s.iter().max().unwrap())
    });
    eprintln!(
        "fair share: bob's 20 jobs all started within {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let all: Vec<_> = admin
        .jobs(&JobQuery {
            limit: Some(1000),
            ..JobQuery::default()
        })
        .unwrap()
        .jobs;
    // The split of worker time up to Bob's last start: what fair share evens out, in
    // proportion to the shares (1 : 3) once Bob has caught up with Alice's head start.
    let (a, b) = (
        used_before(&all, "alice", last_start),
        used_before(&all, "bob", last_start),
    );
    let alice_jobs_started = all
        .iter()
        .filter(|j| j.owner == "alice" && j.started_at.is_some_and(|s| s <= last_start))
        .count();
    eprintln!(
        "fair share: worker time until bob's last start: alice {a:.2} s ({alice_jobs_started} \
         jobs), bob {b:.2} s (20 jobs): bob/alice = {:.2} (shares 3 : 1)",
        b / a
    );
    assert!(
        (2.0..=4.5).contains(&(b / a)),
        "split alice {a:.2} s, bob {b:.2} s does not follow the shares 1 : 3"
    );
    // Alice was not starved meanwhile: once Bob caught up she kept her share of the slots.
    assert!(
        alice_jobs_started > 3,
        "alice started only {alice_jobs_started} jobs"
    );

    // Stop the work: cancel Alice's queued jobs, let the running ones end.
    for id in &alices {
        let _ = admin.cancel(*id);
    }
    wait_for("nothing runs", Duration::from_secs(30), || {
        let s = admin.status().unwrap();
        (s.jobs["running"] == 0).then_some(())
    });
    drop((w1, w2));
    let before = admin.usage(None).unwrap();
    let line = |r: &gaia_core::protocol::UsageReport, u: &str| {
        r.users.iter().find(|l| l.user == u).unwrap().clone()
    };
    let (ab, bb) = (line(&before, "alice"), line(&before, "bob"));
    assert!((bb.worker_secs - 20.0 * JOB_S).abs() < 20.0 * 0.2, "{bb:?}");
    assert!(ab.worker_secs > 4.0 * JOB_S, "{ab:?}");
    assert_eq!((ab.running, ab.queued), (0, 0));
    // `gaia usage` shows the same.
    let shown = server.cli_ok(&["usage", "--since", "1h"]);
    assert!(shown.contains("alice") && shown.contains("bob"), "{shown}");

    assert!(server.stop().success());
    server.restart();
    let after = server.client().usage(None).unwrap();
    for u in ["alice", "bob"] {
        let (x, y) = (line(&before, u), line(&after, u));
        assert_eq!(x.worker_secs, y.worker_secs, "{u}'s usage after a restart");
        assert!(
            (x.recent_worker_secs - y.recent_worker_secs).abs() < 0.01 * x.recent_worker_secs,
            "{u}: recent {} then {}",
            x.recent_worker_secs,
            y.recent_worker_secs
        );
        assert_eq!(x.share, y.share);
    }
}
