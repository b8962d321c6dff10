//! The spec check: every request a mapping sends to a vendor is judged against that vendor's
//! own OpenAPI / Swagger document, so we know the real vendor would accept it, not only our
//! simulator.
//!
//! This file owns the table of checked backends ([`BACKENDS`]), the list of known deviations
//! ([`KNOWN_DEVIATIONS`]) and the test that ties them together. The checker lives in
//! `spec_check/spec.rs` (reading a document, finding the operation) and `spec_check/check.rs`
//! (parameters, credentials, body schema); the traffic comes from `spec_check/scenario.rs`;
//! the checker's own tests are in `spec_check/checker_tests.rs`.
//!
//! # Where the spec and the documented vendor behaviour disagree
//!
//! The check follows the spec, always; `shared/VENDORS.md` tells what vendors do in practice.
//!
//! - Flashcat `POST /team/upsert`, field `description`: seed 000 and the older Apifox export
//!   (`flashduty.openapi-v3.en.json`) mark it required; the current spec
//!   (`teams-members.openapi.json`, from `platform.openapi.en.json`) requires only
//!   `team_name`. The check uses the current spec, so a missing `description` would pass; the
//!   mapping sends `description` on every upsert anyway (`""` when none), which both accept.
//! - Squadcast `POST /v3/teams`, field `member_ids`: the spec requires it; the Terraform
//!   provider sends only `{name, description}` and VENDORS.md infers it is not required in
//!   practice. The check follows the spec: a create without `member_ids` is reported. If the
//!   Squadcast mapping deliberately leaves it out, list that request in
//!   [`KNOWN_DEVIATIONS`] with the reason, do not weaken the check.
//! - Squadcast `PUT /v3/teams/{teamId}`: the spec requires `members` with `user_id` and
//!   `role_ids` for each. `PATCH /v3/teams/{teamId}/meta` and `GET /v3/teams/by-name` (used by
//!   the Terraform provider) are not in the spec: `/meta` is reported, but `by-name` fits the
//!   template `/v3/teams/{teamId}` and is judged (and accepted) as a read of that team, a
//!   limit of matching by path template that this check cannot see past.
//! - Squadcast users (`GET /v3/users`) are in the full spec only, which is YAML
//!   (`squadcast/out.openapi.yaml`); the entry reads it after the team extract.
//! - Squadcast's token exchange (`GET /v3/oauth/access-token`) is in no spec: it is documented
//!   on the API reference page and used by the Terraform provider (VENDORS.md §3 "Auth"). It
//!   is a known deviation below.
//! - Opsgenie users (`GET /v2/users`, `GET /v2/users/{identifier}`) are not in the team
//!   extract; the entry also reads the full `opsgenie/swagger.json` for them.

mod support;

#[path = "spec_check/check.rs"]
mod check;
#[cfg(test)]
#[path = "spec_check/checker_tests.rs"]
mod checker_tests;
#[path = "spec_check/scenario.rs"]
mod scenario;
#[path = "spec_check/spec.rs"]
mod spec;

use std::path::{Path, PathBuf};

use check::{Checker, Request};
use spec::Spec;
use teamgate_sim::LoggedRequest;

/// One backend whose traffic is checked.
struct Backend {
    /// The backend (and simulator, and `mappings/<name>.toml`) name.
    name: &'static str,
    /// Documents under `shared/specs/` (or, starting with `sim/specs/`, in this repository),
    /// most specific first: the first that declares an operation judges it. Paths in them
    /// are relative to the server root.
    specs: &'static [&'static str],
}

/// The checked backends. Add a row to check another vendor; an entry whose mapping does not
/// exist yet is skipped with a printed notice.
const BACKENDS: &[Backend] = &[
    Backend {
        name: "flashcat",
        specs: &["flashcat/teams-members.openapi.json"],
    },
    Backend {
        name: "opsgenie",
        // The extract has no users endpoints; the full document has `/v2/users*`.
        specs: &["opsgenie/team-swagger.json", "opsgenie/swagger.json"],
    },
    Backend {
        name: "squadcast",
        // The extract has no users endpoints; the full (YAML) document has `/v3/users`.
        specs: &["squadcast/teams.openapi.json", "squadcast/out.openapi.yaml"],
    },
    Backend {
        name: "pagerduty",
        // Kept with the simulator (`sim/specs/SOURCES.md`): teams and users of api-schema.
        specs: &["sim/specs/pagerduty/teams-users.openapi.json"],
    },
];

/// A request the spec rejects that we send on purpose. Each one must still be observed (so
/// the list cannot go stale), and it must say why we accept it.
struct KnownDeviation {
    backend: &'static str,
    method: &'static str,
    /// The spec's path template if the request hit one, else the raw path.
    path: &'static str,
    /// A piece of the rejection's reason.
    reason: &'static str,
    #[allow(dead_code)] // documentation for the reader of this table
    why: &'static str,
}

/// Requests a spec rejects that we send on purpose; see the module docs for the fields where
/// the spec and the vendor's documented behaviour disagree.
const KNOWN_DEVIATIONS: &[KnownDeviation] = &[KnownDeviation {
    backend: "squadcast",
    method: "GET",
    path: "/v3/oauth/access-token",
    reason: "not in the spec",
    why: "the refresh → access token exchange is documented outside the OpenAPI spec (API reference overview, Terraform provider auth.go)",
}];

/// One request the spec rejects.
struct Rejection {
    method: String,
    path: String,
    template: Option<String>,
    reason: String,
}

impl Rejection {
    fn is(&self, known: &KnownDeviation) -> bool {
        self.method.eq_ignore_ascii_case(known.method)
            && (self.template.as_deref() == Some(known.path) || self.path == known.path)
            && self.reason.contains(known.reason)
    }
}

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/specs")
}

/// Loads a backend's documents; a missing or unreadable one fails the test, naming the path.
fn load_checker(backend: &Backend) -> Checker {
    let specs = backend
        .specs
        .iter()
        .map(|relative| {
            let path = match relative.strip_prefix("sim/specs/") {
                Some(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join(relative),
                None => specs_dir().join(relative),
            };
            assert!(
                path.is_file(),
                "spec for {} not found at {} (CI expects `shared/` beside the clone)",
                backend.name,
                path.display()
            );
            Spec::load(&path, relative).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    Checker::new(specs)
}

/// Every rejection among `log`.
fn judge(checker: &mut Checker, log: &[LoggedRequest]) -> Vec<Rejection> {
    let mut out = Vec::new();
    for logged in log {
        let verdict = checker.check(&Request {
            method: &logged.method,
            path: &logged.path,
            query: logged.query.as_deref(),
            headers: &logged.headers,
            body: &logged.body,
        });
        for reason in verdict.reasons {
            out.push(Rejection {
                method: logged.method.clone(),
                path: logged.path.clone(),
                template: verdict.template.clone(),
                reason,
            });
        }
    }
    out
}

/// Runs one backend: its failures as lines (empty: all is well).
async fn check_backend(backend: &Backend) -> Vec<String> {
    let mut checker = load_checker(backend);
    let h = support::start(&[backend.name]).await;
    let walk = scenario::walk(&h, backend.name).await;
    let log = h.sim(backend.name).requests();
    let rejections = judge(&mut checker, &log);
    println!(
        "spec_check: {}: {} requests checked against {}",
        backend.name,
        log.len(),
        backend.specs.join(" + ")
    );

    let known: Vec<&KnownDeviation> = KNOWN_DEVIATIONS
        .iter()
        .filter(|k| k.backend == backend.name)
        .collect();
    let mut failures = unexcused(&rejections, &known);
    failures.extend(walk.problems.iter().map(|p| format!("scenario: {p}")));
    failures.extend(walk.uncovered.iter().map(|op| {
        format!("scenario: declared operation {op} sent no request, so it was not checked")
    }));
    failures
}

/// The rejections no known deviation excuses, plus every known deviation that no longer
/// happens (so the list cannot go stale), as report lines.
fn unexcused(rejections: &[Rejection], known: &[&KnownDeviation]) -> Vec<String> {
    let mut failures: Vec<String> = rejections
        .iter()
        .filter(|r| !known.iter().any(|k| r.is(k)))
        .map(|r| format!("{} {}: {}", r.method, r.path, r.reason))
        .collect();
    for k in known {
        if !rejections.iter().any(|r| r.is(k)) {
            failures.push(format!(
                "known deviation no longer observed, remove it from KNOWN_DEVIATIONS: {} {} ({})",
                k.method, k.path, k.reason
            ));
        }
    }
    failures
}

/// The mapping file of a backend; its absence means the backend is not written yet.
fn mapping_path(backend: &Backend) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("mappings")
        .join(format!("{}.toml", backend.name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_vendor_request_is_one_the_vendor_spec_accepts() {
    let mut report = Vec::new();
    let mut checked = 0;
    for backend in BACKENDS {
        let mapping = mapping_path(backend);
        if !mapping.is_file() {
            // Not a silent pass: say which entry did not run and why.
            println!(
                "spec_check: SKIPPED {}: {} does not exist yet",
                backend.name,
                mapping.display()
            );
            continue;
        }
        checked += 1;
        for failure in check_backend(backend).await {
            report.push(format!("{}: {failure}", backend.name));
        }
    }
    assert!(checked > 0, "no backend of the table was checked");
    assert!(
        report.is_empty(),
        "{} request(s) or scenario step(s) the vendor specs would reject:\n  {}",
        report.len(),
        report.join("\n  ")
    );
}

/// Finds a table entry by name.
fn backend(name: &str) -> &'static Backend {
    BACKENDS
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("{name} is not in BACKENDS"))
}

/// Judges one hand-made request; `path_query` as sent, headers lower-case.
fn verdict(
    checker: &mut Checker,
    method: &str,
    path_query: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> check::Verdict {
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_query, None),
    };
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    checker.check(&Request {
        method,
        path,
        query,
        headers: &headers,
        body,
    })
}

#[track_caller]
fn assert_verdict(v: &check::Verdict, piece: Option<&str>) {
    match piece {
        None => assert!(v.reasons.is_empty(), "rejected: {:?}", v.reasons),
        Some(piece) => assert!(
            v.reasons.iter().any(|r| r.contains(piece)),
            "wanted a reason containing {piece:?}, got {:?}",
            v.reasons
        ),
    }
}

/// The real Flashcat document can fail too: requests shaped like the mapping's, each broken
/// one way, are rejected for that reason. This proves the `$ref`s into its components
/// resolve, so the scenario's clean pass above is not a vacuous one.
#[test]
fn the_flashcat_spec_rejects_broken_requests() {
    let mut c = load_checker(backend("flashcat"));
    let json = &[("content-type", "application/json")];
    let upsert = "/team/upsert?app_key=k";
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        (
            "POST",
            upsert,
            r#"{"team_name":"A","description":"","person_ids":[1]}"#,
            None,
        ),
        (
            "POST",
            upsert,
            r#"{"description":"","person_ids":[]}"#,
            Some("\"team_name\" is a required property"),
        ),
        (
            "POST",
            upsert,
            &format!(r#"{{"team_name":"{}"}}"#, "x".repeat(40)),
            Some("body/team_name"),
        ),
        (
            "POST",
            upsert,
            r#"{"team_name":"A","person_ids":["1"]}"#,
            Some("body/person_ids/0"),
        ),
        (
            "POST",
            "/team/list?app_key=k",
            r#"{"p":1,"limit":101}"#,
            Some("body/limit"),
        ),
        (
            "POST",
            "/team/info",
            r#"{"team_id":1}"#,
            Some("`app_key` in query"),
        ),
        (
            "POST",
            "/team/info?app_key=k",
            "",
            Some("requires a request body"),
        ),
        (
            "GET",
            "/team/info?app_key=k",
            "",
            Some("method GET is not in the spec"),
        ),
        (
            "POST",
            "/team/members?app_key=k",
            "{}",
            Some("not in the spec"),
        ),
    ];
    for (method, path, body, wanted) in cases {
        let v = verdict(&mut c, method, path, json, body);
        assert_verdict(&v, *wanted);
    }
}

/// The pending entries' documents read and judge today, before their mappings exist; the
/// Squadcast case pins the spec-vs-Terraform disagreement on `member_ids` (module docs).
#[test]
fn the_pending_entries_documents_read_and_judge() {
    let mut c = load_checker(backend("opsgenie"));
    let genie = &[
        ("authorization", "GenieKey k"),
        ("content-type", "application/json"),
    ];
    assert_verdict(
        &verdict(&mut c, "POST", "/v2/teams", genie, r#"{"name":"A"}"#),
        None,
    );
    // `/v2/users` comes from the second document, the full swagger.json.
    let v = verdict(
        &mut c,
        "GET",
        "/v2/users?query=email%3Abob%40example.com",
        genie,
        "",
    );
    assert_verdict(&v, None);
    assert_eq!(v.template.as_deref(), Some("/v2/users"));
    let v = verdict(&mut c, "GET", "/v2/teams/x?identifierType=slug", genie, "");
    assert_verdict(&v, Some("`identifierType=slug` is not one of"));
    let v = verdict(
        &mut c,
        "POST",
        "/v2/teams/x/members",
        genie,
        r#"{"role":"admin"}"#,
    );
    assert_verdict(&v, Some("\"user\" is a required property"));

    let mut c = load_checker(backend("squadcast"));
    let bearer = &[
        ("authorization", "Bearer t"),
        ("content-type", "application/json;charset=UTF-8"),
    ];
    let create = r#"{"name":"A","member_ids":[]}"#;
    assert_verdict(&verdict(&mut c, "POST", "/v3/teams", bearer, create), None);
    let terraform_create = r#"{"name":"A","description":"d"}"#;
    let v = verdict(&mut c, "POST", "/v3/teams", bearer, terraform_create);
    assert_verdict(&v, Some("\"member_ids\" is a required property"));
    let v = verdict(
        &mut c,
        "PATCH",
        "/v3/teams/abc/meta",
        bearer,
        r#"{"name":"A"}"#,
    );
    assert_verdict(&v, Some("not in the spec"));
    // A limit of path matching: `by-name` is not in the spec, but it fits `{teamId}`, so the
    // request is judged as a read of a team whose id is "by-name" (and accepted).
    let v = verdict(&mut c, "GET", "/v3/teams/by-name?name=A", bearer, "");
    assert_eq!(v.template.as_deref(), Some("/v3/teams/{teamId}"));
}

/// A known deviation excuses exactly its rejection (by template or raw path), and one that
/// is no longer observed is itself a failure.
#[test]
fn known_deviations_excuse_only_their_rejection_and_cannot_go_stale() {
    let rejection = |path: &str, reason: &str| Rejection {
        method: "POST".to_string(),
        path: path.to_string(),
        template: Some("/v3/teams".to_string()),
        reason: reason.to_string(),
    };
    let known = KnownDeviation {
        backend: "squadcast",
        method: "POST",
        path: "/v3/teams",
        reason: "\"member_ids\" is a required property",
        why: "test",
    };
    let excused = rejection(
        "/v3/teams",
        "body does not fit: \"member_ids\" is a required property",
    );
    let other = rejection("/v3/teams", "body/name does not fit");
    assert!(unexcused(&[excused], &[&known]).is_empty());
    let lines = unexcused(&[other], &[&known]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("body/name"), "{lines:?}");
    assert!(lines[1].contains("no longer observed"), "{lines:?}");
}
