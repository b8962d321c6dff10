//! Mirror mode (`[backends.X] mirror = "Y"`): writes answered by X are repeated on Y in the
//! background, through faults on Y; shadow reads count drift; a stalled mirror costs the
//! callers of X nothing; the configuration check refuses mirrors that cannot work.
//!
//! X is the Squadcast simulator and Y the Opsgenie one: both hold descriptions, member lists
//! and roles, and a new Squadcast team holds its creator, which the mirror must carry too.

mod support;

use std::time::{Duration, Instant};

use http::Method;
use serde_json::json;
use support::{repo_root, start_configured, Harness, CREDENTIAL};
use teamgate::App;
use teamgate_sim::{Fault, FaultPlan, SimRequest};

const PRIMARY: &str = "squadcast";
const MIRROR: &str = "opsgenie";
/// People every simulator knows (the account owner, `ada`, is left alone: a new team on the
/// primary holds her as its creator).
const PEOPLE: [&str; 5] = [
    "bob@example.com",
    "carol@example.com",
    "dan@example.com",
    "eve@example.com",
    "frank@example.com",
];

/// The primary, mirrored (with short backoffs), and the mirror; `extra` adds primary settings.
async fn mirrored(extra: &str) -> Harness {
    mirrored_pair(PRIMARY, MIRROR, extra).await
}

/// Backend `primary` (simulator and mapping of that kind) mirrored to backend `mirror`.
async fn mirrored_pair(primary: &str, mirror: &str, extra: &str) -> Harness {
    let settings = format!(
        "mirror = \"{mirror}\"\nmirror_retry_ms = 5\nmirror_retry_max_ms = 200\nmirror_attempts = 40\n{extra}"
    );
    let (pm, mm) = (
        format!("mappings/{primary}.toml"),
        format!("mappings/{mirror}.toml"),
    );
    start_configured(
        &[
            (primary, primary, &pm, &settings),
            (mirror, mirror, &mm, ""),
        ],
        "",
    )
    .await
}

/// A metric's value from the proxy's exposition (0 when the series is absent).
fn metric(h: &Harness, series: &str) -> f64 {
    h.metrics
        .render()
        .lines()
        .find_map(|line| {
            line.strip_prefix(series)
                .filter(|rest| rest.starts_with(' '))
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

fn writes(h: &Harness, result: &str) -> f64 {
    writes_of(h, PRIMARY, MIRROR, result)
}

fn writes_of(h: &Harness, primary: &str, mirror: &str, result: &str) -> f64 {
    metric(
        h,
        &format!(
            "teamgate_mirror_writes_total{{backend=\"{primary}\",mirror=\"{mirror}\",result=\"{result}\"}}"
        ),
    )
}

fn depth(h: &Harness) -> f64 {
    depth_of(h, PRIMARY)
}

fn depth_of(h: &Harness, primary: &str) -> f64 {
    metric(
        h,
        &format!("teamgate_mirror_queue_depth{{backend=\"{primary}\"}}"),
    )
}

async fn drained(h: &Harness, jobs: usize, within: Duration) {
    drained_pair(h, PRIMARY, MIRROR, jobs, within).await
}

/// Waits (bounded) until the mirror's queue is empty and `jobs` jobs have an outcome.
async fn drained_pair(h: &Harness, primary: &str, mirror: &str, jobs: usize, within: Duration) {
    let start = Instant::now();
    let results = ["ok", "skipped", "unmatched", "failed", "gave_up", "dropped"];
    loop {
        let done: f64 = results
            .iter()
            .map(|r| writes_of(h, primary, mirror, r))
            .sum();
        if depth_of(h, primary) == 0.0 && done as usize >= jobs {
            return;
        }
        assert!(
            start.elapsed() < within,
            "the mirror did not drain in {within:?}: depth {}, {done} of {jobs} done",
            depth_of(h, primary)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn diff(h: &Harness, glob: &str) -> teamgate::migrate::diff::Diff {
    diff_pair(h, PRIMARY, MIRROR, glob).await
}

/// `teamgate diff` between the primary and the mirror (teams matching `glob`), through a
/// second app on the same simulators.
async fn diff_pair(
    h: &Harness,
    primary: &str,
    mirror: &str,
    glob: &str,
) -> teamgate::migrate::diff::Diff {
    let mut config = format!("listen = \"127.0.0.1:0\"\ndefault_backend = \"{primary}\"\n");
    for name in [primary, mirror] {
        config.push_str(&format!(
            "[backends.{name}]\nmapping = \"mappings/{name}.toml\"\nbase_url = \"{}\"\ncredential_env = \"TEAMGATE_TEST_{}_CREDENTIAL\"\n",
            h.sim(name).base_url(),
            name.to_uppercase()
        ));
    }
    let checked = teamgate::config::check_source(&repo_root().join("diff.toml"), &config, &[])
        .expect("the diff config checks");
    let app = App::build(checked).await.expect("app builds");
    teamgate::migrate::compare(&app, primary, mirror, Some(glob))
        .await
        .expect("both backends read")
}

/// A small deterministic generator (tests must repeat).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

struct Team {
    id: String,
    /// Members the test added (email, role).
    members: Vec<(String, String)>,
}

#[tokio::test]
async fn five_hundred_writes_reach_a_faulty_mirror_and_the_diff_is_empty() {
    let h = mirrored("").await;
    writes_through_faults(&h, PRIMARY, MIRROR, 500, 12).await;
    assert_eq!(writes(&h, "ok"), 500.0, "every write repeated");
    // And the diff can see a difference: one the mirror does not repeat.
    let a = h
        .post(MIRROR, "/v1/teams", json!({"name": "m-only-on-the-mirror"}))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let d = diff(&h, "m-*").await;
    assert_eq!(d.only_in_b, vec!["m-only-on-the-mirror".to_string()]);
}

/// Other pairs, where the mirror holds less than the primary (no description, no roles, a
/// parent) or more: what it cannot hold is skipped, the rest arrives.
#[tokio::test]
async fn writes_reach_mirrors_that_hold_other_fields_and_roles() {
    for (primary, mirror, seed) in [
        ("opsgenie", "jsonapi", 3),
        ("grafana", "flashcat", 5),
        ("flashcat", "squadcast", 7),
        ("jsonapi", "grafana", 11),
    ] {
        let h = mirrored_pair(primary, mirror, "").await;
        writes_through_faults(&h, primary, mirror, 150, seed).await;
    }
}

/// `n` mixed writes on `primary` (all must succeed there) while `mirror`'s simulator injects
/// faults; then the mirror drains, nothing was lost or refused, and `teamgate diff` is empty.
async fn writes_through_faults(
    h: &Harness,
    primary: &str,
    mirror_name: &str,
    writes_sent: usize,
    seed: u64,
) {
    let mirror = h.sim(mirror_name);
    let about = h.describe(primary).await;
    let has = |key: &str, value: &str| {
        about[key]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == value))
    };
    let description = has("team_fields", "description");
    let roles = has("member_roles", "admin");
    let update_member = has("operations", "update_member");
    // The primary's user ids by email (the API answers members by id).
    let mut ids = std::collections::HashMap::new();
    for email in PEOPLE {
        ids.insert(email, h.user_id(primary, email).await);
    }
    // Faults on the mirror, a new plan every 20 writes: failures the vendor did not act on,
    // lost answers of writes it did, unreadable answers, rate limits, slowness.
    let plans = [
        FaultPlan::times(Fault::Status(503), 3),
        FaultPlan::times(Fault::ResetAfterRead, 2).only(Method::POST),
        FaultPlan::times(Fault::Reset, 3),
        FaultPlan::times(Fault::TruncatedJson, 2).only(Method::POST),
        FaultPlan::times(Fault::RateLimitedNoRetryAfter, 3),
        FaultPlan::times(Fault::ResetAfterRead, 2).only(Method::PATCH),
        FaultPlan::times(Fault::Status(500), 2).only(Method::DELETE),
        FaultPlan::times(Fault::Latency(Duration::from_millis(30)), 5),
        FaultPlan::times(Fault::MalformedJson, 2).only(Method::GET),
    ];

    let mut rng = Lcg(seed);
    let mut teams: Vec<Team> = Vec::new();
    let mut created = 0usize;
    let mut deleted = 0usize;
    let mut faults_set = 0usize;
    for n in 0..writes_sent {
        if n % 20 == 0 {
            mirror.set_fault_plan(Some(plans[(n / 20) % plans.len()].clone()));
            faults_set += 1;
        }
        let choice = if teams.len() < 8 { 0 } else { rng.below(20) };
        let answer = match choice {
            // Create a team.
            0 | 1 => {
                let name = format!("m-{created:03}");
                created += 1;
                let team = match description {
                    true => json!({"name": name, "description": format!("team {name}")}),
                    false => json!({"name": name}),
                };
                let a = h.post(primary, "/v1/teams", team).await;
                teams.push(Team {
                    id: a.body["id"].as_str().unwrap_or_default().to_string(),
                    members: Vec::new(),
                });
                a
            }
            // Delete one.
            2 if teams.len() > 8 => {
                let team = teams.remove(rng.below(teams.len()));
                deleted += 1;
                h.delete(primary, &format!("/v1/teams/{}", team.id)).await
            }
            // Change a description (or the name, where there is none).
            2..=5 => {
                let team = &teams[rng.below(teams.len())];
                let change = match description {
                    true => json!({"description": format!("write {n}")}),
                    false => json!({"name": format!("m-renamed-{n}")}),
                };
                h.patch(primary, &format!("/v1/teams/{}", team.id), change)
                    .await
            }
            // Change a member's role.
            6..=8 if update_member && teams.iter().any(|t| !t.members.is_empty()) => {
                let with: Vec<usize> = (0..teams.len())
                    .filter(|i| !teams[*i].members.is_empty())
                    .collect();
                let team = &mut teams[with[rng.below(with.len())]];
                let m = rng.below(team.members.len());
                let role = if team.members[m].1 == "admin" {
                    "member"
                } else {
                    "admin"
                };
                team.members[m].1 = role.to_string();
                let user = &ids[team.members[m].0.as_str()];
                h.patch(
                    primary,
                    &format!("/v1/teams/{}/members/{user}", team.id),
                    json!({"role": role}),
                )
                .await
            }
            // Remove a member.
            9..=11 if teams.iter().any(|t| !t.members.is_empty()) => {
                let with: Vec<usize> = (0..teams.len())
                    .filter(|i| !teams[*i].members.is_empty())
                    .collect();
                let team = &mut teams[with[rng.below(with.len())]];
                let (email, _) = team.members.remove(rng.below(team.members.len()));
                let user = &ids[email.as_str()];
                h.delete(primary, &format!("/v1/teams/{}/members/{user}", team.id))
                    .await
            }
            // Add a member, by email or by id, with either role.
            _ => {
                let pick = rng.below(teams.len());
                let team = &mut teams[pick];
                let free: Vec<&str> = PEOPLE
                    .iter()
                    .copied()
                    .filter(|p| !team.members.iter().any(|(e, _)| e == p))
                    .collect();
                if free.is_empty() {
                    // Everyone is in: one leaves.
                    let (email, _) = team.members.remove(0);
                    let user = &ids[email.as_str()];
                    h.delete(primary, &format!("/v1/teams/{}/members/{user}", team.id))
                        .await
                } else {
                    let email = free[rng.below(free.len())];
                    let role = if roles && rng.below(3) == 0 {
                        "admin"
                    } else {
                        "member"
                    };
                    team.members.push((email.to_string(), role.to_string()));
                    let body = if rng.below(2) == 0 {
                        json!({"email": email, "role": role})
                    } else {
                        json!({"user_id": ids[email], "role": role})
                    };
                    h.post(primary, &format!("/v1/teams/{}/members", team.id), body)
                        .await
                }
            }
        };
        assert!(
            answer.status.is_success(),
            "write {n} on the primary: {} {}",
            answer.status,
            answer.text
        );
    }
    mirror.set_fault_plan(None);
    assert!(
        created >= writes_sent / 12 && deleted >= writes_sent / 100,
        "{created} created, {deleted} deleted"
    );
    assert_eq!(faults_set, writes_sent.div_ceil(20));

    drained_pair(
        h,
        primary,
        mirror_name,
        writes_sent,
        Duration::from_secs(40),
    )
    .await;
    let mirror_lines: Vec<String> = h
        .metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("teamgate_mirror"))
        .map(str::to_string)
        .collect();
    let count = |result: &str| writes_of(h, primary, mirror_name, result);
    assert_eq!(
        count("ok") + count("skipped"),
        writes_sent as f64,
        "{primary} -> {mirror_name}: every write repeated or, where the mirror cannot hold it, skipped: {mirror_lines:#?}"
    );
    for bad in ["failed", "gave_up", "dropped", "unmatched"] {
        assert_eq!(
            count(bad),
            0.0,
            "{primary} -> {mirror_name}: {bad}: {mirror_lines:#?}"
        );
    }
    let retries = metric(
        h,
        &format!("teamgate_mirror_retries_total{{backend=\"{primary}\",mirror=\"{mirror_name}\"}}"),
    );
    // How many faults land on a retried call depends on timing (latency faults need no
    // retry); that some did shows the faults were there and the retries drained them.
    assert!(retries >= 1.0, "the faults were met and retried: {retries}");

    let d = diff_pair(h, primary, mirror_name, "m-*").await;
    assert!(d.members, "{d:?}");
    assert!(
        d.is_empty(),
        "{primary} -> {mirror_name}: primary and mirror differ: {d:#?}"
    );
}

/// The mirror's team id of a primary team, by name, through the proxy.
async fn mirror_id(h: &Harness, name: &str) -> String {
    let a = h.get(MIRROR, &format!("/v1/teams?name={name}")).await;
    let teams = a.body["teams"].as_array().expect("teams");
    assert_eq!(teams.len(), 1, "{}", a.text);
    teams[0]["id"].as_str().unwrap().to_string()
}

fn mismatches(h: &Harness, operation: &str, field: &str) -> f64 {
    metric(
        h,
        &format!(
            "teamgate_mirror_mismatches_total{{backend=\"{PRIMARY}\",field=\"{field}\",operation=\"{operation}\"}}"
        ),
    )
}

fn shadow(h: &Harness, result: &str) -> f64 {
    metric(
        h,
        &format!("teamgate_mirror_shadow_reads_total{{backend=\"{PRIMARY}\",result=\"{result}\"}}"),
    )
}

/// Waits (bounded) until `n` shadow reads have a result.
async fn shadowed(h: &Harness, n: f64) {
    let start = Instant::now();
    let results = ["match", "mismatch", "skipped", "failed"];
    while results.iter().map(|r| shadow(h, r)).sum::<f64>() < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "shadow reads do not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn shadow_reads_count_a_drift_made_on_the_mirror_by_field() {
    let h = mirrored("mirror_shadow_reads = true\n").await;
    let a = h
        .post(
            PRIMARY,
            "/v1/teams",
            json!({"name": "drift", "description": "same"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_string();
    let a = h
        .post(
            PRIMARY,
            &format!("/v1/teams/{id}/members"),
            json!({"email": "bob@example.com"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    drained(&h, 2, Duration::from_secs(10)).await;
    assert_eq!(writes(&h, "ok"), 2.0);

    // In step: the reads compare equal.
    let fresh = [("cache-control", "no-cache")];
    let a = h
        .get_with(PRIMARY, &format!("/v1/teams/{id}"), &fresh)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = h
        .get_with(PRIMARY, &format!("/v1/teams/{id}/members"), &fresh)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    shadowed(&h, 2.0).await;
    assert_eq!(shadow(&h, "match"), 2.0, "{}", h.metrics.render());
    assert_eq!(shadow(&h, "mismatch"), 0.0);

    // The description changed on the mirror's vendor itself, behind teamgate's back.
    let y_id = mirror_id(&h, "drift").await;
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("GenieKey {CREDENTIAL}").parse().unwrap(),
    );
    headers.insert("content-type", "application/json".parse().unwrap());
    let changed = h.sim(MIRROR).direct(&SimRequest::new(
        Method::PATCH,
        &format!("/v2/teams/{y_id}"),
        headers,
        bytes::Bytes::from(json!({"description": "drifted"}).to_string()),
    ));
    assert_eq!(changed.status, 200, "{:?}", changed.json_body());
    // And someone added to the mirror's team, through the mirror's own backend.
    let a = h
        .post(
            MIRROR,
            &format!("/v1/teams/{y_id}/members"),
            json!({"email": "eve@example.com"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);

    let a = h
        .get_with(PRIMARY, &format!("/v1/teams/{id}"), &fresh)
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.body["description"], "same",
        "the caller gets the primary's answer"
    );
    let a = h
        .get_with(PRIMARY, &format!("/v1/teams/{id}/members"), &fresh)
        .await;
    assert_eq!(a.status, 200);
    shadowed(&h, 4.0).await;
    assert_eq!(shadow(&h, "mismatch"), 2.0, "{}", h.metrics.render());
    assert_eq!(mismatches(&h, "get_team", "description"), 1.0);
    assert_eq!(
        mismatches(&h, "get_team", "members"),
        1.0,
        "inline members differ too"
    );
    assert_eq!(mismatches(&h, "list_members", "members"), 1.0);
    assert_eq!(mismatches(&h, "get_team", "name"), 0.0);
    assert_eq!(mismatches(&h, "list_members", "role"), 0.0);

    // A read answered from the cache is not the vendor's: not compared again.
    let a = h.get(PRIMARY, &format!("/v1/teams/{id}")).await;
    assert_eq!(a.status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(shadow(&h, "mismatch"), 2.0);
    let rendered = h.metrics.render();
    assert!(
        !rendered.contains("drifted") && !rendered.contains(&y_id),
        "no values in labels"
    );
}

#[tokio::test]
async fn a_stalled_mirror_does_not_slow_the_primary() {
    let stall = Duration::from_secs(3);
    let h = mirrored("").await;
    let id = h.create_team(PRIMARY, "m-stalled").await;
    drained(&h, 1, Duration::from_secs(10)).await;

    h.sim(MIRROR).set_fault(Some(Fault::Latency(stall)));
    let mut slowest = Duration::ZERO;
    let mut writes_sent = 1;
    for (n, email) in PEOPLE.iter().enumerate() {
        for (path, method, body) in [
            (
                format!("/v1/teams/{id}/members"),
                Method::POST,
                json!({"email": email}),
            ),
            (
                format!("/v1/teams/{id}"),
                Method::PATCH,
                json!({"description": format!("d{n}")}),
            ),
        ] {
            let start = Instant::now();
            let a = h.call(PRIMARY, method, &path, Some(body)).await;
            slowest = slowest.max(start.elapsed());
            assert!(a.status.is_success(), "{}", a.text);
            writes_sent += 1;
        }
    }
    assert!(
        slowest < stall / 4,
        "a write on the primary took {slowest:?} with the mirror stalled for {stall:?}"
    );
    assert!(
        depth(&h) >= 5.0,
        "the mirror lags behind: depth {}",
        depth(&h)
    );
    assert!(
        h.sim(MIRROR).request_count() > 0,
        "the mirror's vendor was being called"
    );

    h.sim(MIRROR).set_fault(None);
    drained(&h, writes_sent, Duration::from_secs(30)).await;
    assert_eq!(writes(&h, "ok"), writes_sent as f64);
    let d = diff(&h, "m-stalled").await;
    assert!(d.is_empty(), "{d:#?}");
}

fn check(backends: &str) -> Result<String, Vec<String>> {
    std::env::set_var("TEAMGATE_MIRROR_CHECK_CREDENTIAL", "x");
    let mut config = String::from("default_backend = \"a\"\n");
    for name in ["a", "b", "c"] {
        config.push_str(&format!(
            "[backends.{name}]\nmapping = \"mappings/opsgenie.toml\"\nbase_url = \"http://127.0.0.1:9\"\ncredential_env = \"TEAMGATE_MIRROR_CHECK_CREDENTIAL\"\n{}\n",
            backends
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{name}: ")))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    teamgate::config::check_source(&repo_root().join("mirror-check.toml"), &config, &[])
        .map(|c| c.effective_toml())
        .map_err(|e| e.into_iter().map(|e| e.reason).collect())
}

#[test]
fn the_check_refuses_mirrors_that_cannot_work_and_prints_the_good_ones() {
    let printed = check("a: mirror = \"b\"\na: mirror_shadow_reads = 0.25").unwrap();
    assert!(
        printed.contains("mirror = \"b\"\nmirror_shadow_reads = 0.25\nmirror_queue = 10000"),
        "{printed}"
    );
    for (config, reason) in [
        ("a: mirror = \"z\"", "`z` is not a configured backend"),
        ("a: mirror = \"a\"", "cannot mirror itself"),
        (
            "a: mirror = \"b\"\nb: mirror = \"c\"",
            "mirrors do not chain",
        ),
        (
            "a: mirror = \"b\"\nb: mirror = \"a\"",
            "mirrors do not chain",
        ),
        (
            "a: mirror = \"b\"\nb: forward_credential = true",
            "forward_credential",
        ),
        ("a: mirror_shadow_reads = true", "needs `mirror`"),
        (
            "a: mirror = \"b\"\na: mirror_shadow_reads = 1.5",
            "a fraction from 0 to 1",
        ),
    ] {
        let problems = check(config).expect_err(config);
        assert!(
            problems.iter().any(|p| p.contains(reason)),
            "{config}: {problems:?}"
        );
    }
}

#[tokio::test]
async fn a_full_queue_drops_the_newest_writes_and_counts_them() {
    let h = mirrored("mirror_queue = 2\n").await;
    let id = h.create_team(PRIMARY, "m-full").await;
    drained(&h, 1, Duration::from_secs(10)).await;
    h.sim(MIRROR)
        .set_fault(Some(Fault::Latency(Duration::from_millis(800))));
    for n in 0..6 {
        let a = h
            .patch(
                PRIMARY,
                &format!("/v1/teams/{id}"),
                json!({"description": format!("d{n}")}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    // One job being replayed, two waiting: the newest writes were refused.
    let dropped = writes(&h, "dropped");
    assert!((3.0..=4.0).contains(&dropped), "dropped {dropped}");
    h.sim(MIRROR).set_fault(None);
    drained(&h, 7, Duration::from_secs(20)).await;
    assert_eq!(writes(&h, "ok") + dropped, 7.0);
    // What was dropped is missing on the mirror: the diff says so.
    let d = diff(&h, "m-full").await;
    assert_eq!(d.teams.len(), 1, "{d:#?}");
    assert_eq!(d.teams[0].fields[0].field, "description");
    assert_eq!(d.teams[0].fields[0].a, "d5");
}

/// Sends one request to a proxy at `base`.
async fn send(
    base: &str,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(match body.is_null() {
            true => bytes::Bytes::new(),
            false => bytes::Bytes::from(body.to_string()),
        }))
        .unwrap();
    let response = client.request(request).await.expect("proxy answers");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn shutdown_waits_for_the_mirror_queue_within_the_shutdown_timeout() {
    for (timeout_ms, all_done) in [(4_000u64, true), (300, false)] {
        let primary =
            teamgate_sim::spawn_local(teamgate_sim::new_vendor("squadcast", CREDENTIAL).unwrap())
                .await
                .unwrap();
        let mirror =
            teamgate_sim::spawn_local(teamgate_sim::new_vendor("opsgenie", CREDENTIAL).unwrap())
                .await
                .unwrap();
        std::env::set_var("TEAMGATE_MIRROR_SHUTDOWN_CREDENTIAL", CREDENTIAL);
        let config = format!(
            "default_backend = \"p\"\n[server]\ndrain_grace_ms = 0\nshutdown_timeout_ms = {timeout_ms}\n\
             [backends.p]\nmapping = \"mappings/squadcast.toml\"\nbase_url = \"{}\"\ncredential_env = \"TEAMGATE_MIRROR_SHUTDOWN_CREDENTIAL\"\nmirror = \"m\"\n\
             [backends.m]\nmapping = \"mappings/opsgenie.toml\"\nbase_url = \"{}\"\ncredential_env = \"TEAMGATE_MIRROR_SHUTDOWN_CREDENTIAL\"\n",
            primary.base_url(),
            mirror.base_url()
        );
        let checked =
            teamgate::config::check_source(&repo_root().join("shutdown.toml"), &config, &[])
                .expect("checks");
        let app = App::build(checked).await.unwrap();
        let mirrors = app.mirrors.clone();
        let metrics = app.metrics.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(app.serve(listener, async {
            let _ = stopped.await;
        }));

        // Each create is one job of its own team; the mirror answers every call 400 ms late.
        mirror.set_fault(Some(Fault::Latency(Duration::from_millis(400))));
        for n in 0..3 {
            let (status, body) = send(
                &base,
                Method::POST,
                "/v1/teams",
                json!({"name": format!("m-shut-{n}")}),
            )
            .await;
            assert_eq!(status, 201, "{body}");
        }
        assert!(mirrors.pending() > 0, "the mirror lags");
        let start = Instant::now();
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), served)
            .await
            .expect("serve returns")
            .unwrap();
        let took = start.elapsed();
        let rendered = metrics.render();
        let count = |result: &str| {
            rendered
                .lines()
                .find_map(|l| {
                    l.strip_prefix(&format!(
                        "teamgate_mirror_writes_total{{backend=\"p\",mirror=\"m\",result=\"{result}\"}} "
                    ))
                })
                .map_or(0.0, |v| v.parse::<f64>().unwrap())
        };
        if all_done {
            assert_eq!(count("ok"), 3.0, "drained before exit: {rendered}");
            assert_eq!(mirrors.pending(), 0);
            assert!(took >= Duration::from_millis(400), "it waited: {took:?}");
        } else {
            // A job still being replayed then is not counted twice when it ends.
            tokio::time::sleep(Duration::from_millis(900)).await;
            let rendered = metrics.render();
            let count = |result: &str| {
                rendered
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix(&format!(
                            "teamgate_mirror_writes_total{{backend=\"p\",mirror=\"m\",result=\"{result}\"}} "
                        ))
                    })
                    .map_or(0.0, |v| v.parse::<f64>().unwrap())
            };
            assert!(count("abandoned") >= 1.0, "{rendered}");
            assert_eq!(count("ok") + count("abandoned"), 3.0, "{rendered}");
            assert!(
                took < Duration::from_millis(1_500),
                "bounded by the timeout: {took:?}"
            );
        }
    }
}

#[tokio::test]
async fn teams_existing_at_start_pair_by_name_and_parents_are_translated() {
    // Two accounts of the same kind of vendor: the one kind that holds a parent team.
    let a = teamgate_sim::spawn_local(teamgate_sim::new_vendor("jsonapi", CREDENTIAL).unwrap())
        .await
        .unwrap();
    let b = teamgate_sim::spawn_local(teamgate_sim::new_vendor("jsonapi", CREDENTIAL).unwrap())
        .await
        .unwrap();
    std::env::set_var("TEAMGATE_MIRROR_PAIRS_CREDENTIAL", CREDENTIAL);
    let config = |mirror: &str| {
        format!(
            "default_backend = \"a\"\n\
             [backends.a]\nmapping = \"mappings/jsonapi.toml\"\nbase_url = \"{}\"\ncredential_env = \"TEAMGATE_MIRROR_PAIRS_CREDENTIAL\"\n{mirror}\n\
             [backends.b]\nmapping = \"mappings/jsonapi.toml\"\nbase_url = \"{}\"\ncredential_env = \"TEAMGATE_MIRROR_PAIRS_CREDENTIAL\"\n",
            a.base_url(),
            b.base_url()
        )
    };
    let build = |text: String| async move {
        let checked = teamgate::config::check_source(&repo_root().join("pairs.toml"), &text, &[])
            .expect("checks");
        App::build(checked).await.unwrap()
    };
    // Before the mirror: the same team on both (as a migration leaves them).
    let plain = build(config("")).await;
    for side in ["a", "b"] {
        let mut req =
            teamgate::canonical::CanonicalRequest::new(teamgate::canonical::Operation::CreateTeam);
        req.input.insert("name".into(), json!("m-pre"));
        teamgate::migrate::Side::new(&plain, side)
            .unwrap()
            .call(&req)
            .await
            .expect("created");
    }
    let pre = teamgate::migrate::Side::new(&plain, "a")
        .unwrap()
        .team_ids()
        .await
        .unwrap()["m-pre"]
        .clone();

    let app = build(config("mirror = \"b\"\nmirror_retry_ms = 5")).await;
    let (mirrors, metrics) = (app.mirrors.clone(), app.metrics.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));
    let (status, parent) = send(
        &base,
        Method::POST,
        "/v1/teams",
        json!({"name": "m-parent"}),
    )
    .await;
    assert_eq!(status, 201, "{parent}");
    let (status, child) = send(
        &base,
        Method::POST,
        "/v1/teams",
        json!({"name": "m-child", "parent_id": parent["id"]}),
    )
    .await;
    assert_eq!(status, 201, "{child}");
    assert_eq!(child["parent_id"], parent["id"]);
    let (status, body) = send(
        &base,
        Method::DELETE,
        &format!("/v1/teams/{pre}"),
        json!(null),
    )
    .await;
    assert_eq!(status, 204, "{body}");

    let start = Instant::now();
    let ok = "teamgate_mirror_writes_total{backend=\"a\",mirror=\"b\",result=\"ok\"} 3";
    while mirrors.pending() > 0 || !metrics.render().contains(ok) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}",
            metrics.render()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let on_b = teamgate::migrate::Side::new(&plain, "b")
        .unwrap()
        .team_ids()
        .await
        .unwrap();
    assert!(
        !on_b.contains_key("m-pre"),
        "the team paired at start was deleted: {on_b:?}"
    );
    let mut req =
        teamgate::canonical::CanonicalRequest::new(teamgate::canonical::Operation::GetTeam);
    req.team_id = Some(on_b["m-child"].clone());
    let mirrored_child = teamgate::migrate::Side::new(&plain, "b")
        .unwrap()
        .call(&req)
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        mirrored_child["parent_id"].as_str(),
        Some(on_b["m-parent"].as_str()),
        "the parent is the mirror's own parent team"
    );
    assert_ne!(
        mirrored_child["parent_id"], parent["id"],
        "ids differ between accounts"
    );
    let d = teamgate::migrate::compare(&plain, "a", "b", Some("m-*"))
        .await
        .unwrap();
    assert!(d.fields.contains(&"parent_id") && d.is_empty(), "{d:#?}");
}

#[tokio::test]
async fn a_mirror_whose_circuit_opens_keeps_its_jobs_until_it_closes() {
    // Two vendor failures in a row open the mirror's circuit for 300 ms; each job may fail
    // at the vendor 3 times. Refusals by the open circuit reach no vendor and use none up.
    let h = start_configured(
        &[
            (
                PRIMARY,
                "squadcast",
                "mappings/squadcast.toml",
                &format!("mirror = \"{MIRROR}\"\nmirror_retry_ms = 5\nmirror_retry_max_ms = 50\nmirror_attempts = 3\n"),
            ),
            (
                MIRROR,
                "opsgenie",
                "mappings/opsgenie.toml",
                "breaker_failures = 2\nbreaker_open_ms = 300\n",
            ),
        ],
        "",
    )
    .await;
    h.create_team(PRIMARY, "m-warm").await;
    drained(&h, 1, Duration::from_secs(10)).await;
    // Not retried inside the upstream client (a 503 to a GET would be).
    h.sim(MIRROR).set_fault_for(Fault::Status(500), 2);
    let start = Instant::now();
    h.create_team(PRIMARY, "m-circuit").await;
    drained(&h, 2, Duration::from_secs(10)).await;
    assert_eq!(writes(&h, "ok"), 2.0, "{}", h.metrics.render());
    assert!(
        metric(
            &h,
            &format!("teamgate_circuit_refused_total{{backend=\"{MIRROR}\"}}")
        ) >= 1.0,
        "the mirror's circuit opened and turned the mirror's calls away"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "it waited for the circuit"
    );
    let d = diff(&h, "m-*").await;
    assert!(d.is_empty(), "{d:#?}");
}
