//! `teamgate migrate` and `teamgate diff`: seeded teams carried between every ordered pair of
//! the five simulators through the library, a migration interrupted by vendor faults and
//! completed by the next run, and the built binary against `base_url` simulators.
//!
//! What each backend holds (fields, roles, limits) is read from the proxy's own description of
//! it, never hard-coded per vendor; what a seed could not create on the source is not expected
//! anywhere.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use support::{repo_root, CREDENTIAL};
use teamgate::canonical::{CanonicalRequest, Operation};
use teamgate::migrate::plan::Note;
use teamgate::migrate::{self, MigrateOptions, Side};
use teamgate::App;
use teamgate_sim::{Fault, FaultPlan, SimHandle};

const KINDS: [&str; 6] = [
    "grafana",
    "flashcat",
    "jsonapi",
    "opsgenie",
    "squadcast",
    "pagerduty",
];
/// Every seeded team's name matches it (the JSON:API account's default team does not).
const GLOB: &str = "t-*";
/// A person the target forgets, where its simulator can (people one vendor knows and the
/// other does not).
const LEAVER: &str = "frank@example.com";

/// Simulators by backend name, and an app with one backend per simulator.
struct World {
    app: App,
    sims: BTreeMap<String, SimHandle>,
}

/// Backends given as (name, simulator kind).
async fn world(backends: &[(&str, &str)]) -> World {
    let mut sims = BTreeMap::new();
    let mut config = format!(
        "listen = \"127.0.0.1:0\"\ndefault_backend = \"{}\"\n",
        backends[0].0
    );
    for (name, kind) in backends {
        let sim = teamgate_sim::spawn_local(teamgate_sim::new_vendor(kind, CREDENTIAL).unwrap())
            .await
            .unwrap();
        let var = format!("TEAMGATE_MIGRATE_TEST_{}", name.to_uppercase());
        std::env::set_var(&var, CREDENTIAL);
        config.push_str(&format!(
            "[backends.{name}]\nmapping = \"mappings/{kind}.toml\"\nbase_url = \"{}\"\ncredential_env = \"{var}\"\ntimeout_ms = 5000\n",
            sim.base_url()
        ));
        sims.insert(name.to_string(), sim);
    }
    let checked =
        teamgate::config::check_source(&repo_root().join("test-config.toml"), &config, &[])
            .unwrap_or_else(|e| panic!("config does not check: {e:?}"));
    World {
        app: App::build(checked).await.expect("app builds"),
        sims,
    }
}

impl World {
    fn side(&self, name: &str) -> Side {
        Side::new(&self.app, name).unwrap()
    }

    async fn call(&self, backend: &str, req: CanonicalRequest) -> Result<Value, String> {
        self.side(backend)
            .call(&req)
            .await
            .map(|a| a.json().unwrap_or(Value::Null))
            .map_err(|e| format!("{} {}", e.code.as_str(), e.detail))
    }

    async fn migrate(&self, from: &str, to: &str, apply: bool) -> migrate::report::MigrateReport {
        let options = MigrateOptions {
            apply,
            prune: true,
            teams: Some(GLOB.into()),
        };
        migrate::migrate(&self.app, from, to, &options, &mut |_, _, _| {})
            .await
            .unwrap_or_else(|e| panic!("{from} -> {to}: {e}"))
    }

    async fn diff(&self, a: &str, b: &str) -> migrate::diff::Diff {
        migrate::compare(&self.app, a, b, Some(GLOB))
            .await
            .unwrap_or_else(|e| panic!("diff {a} {b}: {e}"))
    }
}

/// What a seed made on its source.
#[derive(Debug, Default)]
struct Seeded {
    teams: BTreeSet<String>,
    /// Teams holding the leaver.
    with_leaver: BTreeSet<String>,
    /// The name longer than every limit but the canonical one, if the source took it.
    long: Option<String>,
    /// Names that fold to the same lower case, if the source took both.
    clash: Vec<String>,
    /// Teams whose parent the seed did not make (a vendor's default parent team), which a
    /// migration of the seeded teams cannot carry.
    parent_outside: BTreeSet<String>,
}

/// Seeds ≥ 20 teams with members of both roles (where the source has roles) on `backend`.
async fn seed(w: &World, backend: &str) -> Seeded {
    let holds = w.side(backend).holds();
    let people = [
        "ada@example.com",
        "bob@example.com",
        "carol@example.com",
        "dan@example.com",
        "eve@example.com",
        LEAVER,
    ];
    let mut seeded = Seeded::default();
    let long = format!("t-{}", "long-name-".repeat(5));
    let mut names: Vec<String> = (1..=22).map(|i| format!("t-team-{i:02}")).collect();
    names.extend(["t-Ops".to_string(), "t-OPS".to_string(), long.clone()]);
    for (i, name) in names.iter().enumerate() {
        let mut req = CanonicalRequest::new(Operation::CreateTeam);
        req.input.insert("name".into(), json!(name));
        if holds.has("description") {
            req.input
                .insert("description".into(), json!(format!("Team number {i}")));
        }
        if holds.has("email") {
            req.input
                .insert("email".into(), json!(format!("team{i}@example.com")));
        }
        let Ok(team) = w.call(backend, req).await else {
            // The source's own limits (a long name, a name taken case-insensitively).
            assert!(
                *name == long || name == "t-OPS",
                "{backend}: seeding {name} failed"
            );
            continue;
        };
        let id = team["id"].as_str().unwrap().to_string();
        if team["parent_id"].is_string() {
            seeded.parent_outside.insert(name.clone());
        }
        seeded.teams.insert(name.clone());
        if *name == long {
            seeded.long = Some(name.clone());
        }
        if name.to_lowercase() == "t-ops" {
            seeded.clash.push(name.clone());
        }
        // Two to four people, rotating; the first an admin where the source has roles.
        for k in 0..(2 + i % 3) {
            let email = people[(i + k) % people.len()];
            let mut add = CanonicalRequest::new(Operation::AddMember);
            add.team_id = Some(id.clone());
            add.input.insert("email".into(), json!(email));
            if holds.roles && k == 0 {
                add.input.insert("role".into(), json!("admin"));
            }
            w.call(backend, add)
                .await
                .unwrap_or_else(|e| panic!("{backend}: {email} into {name}: {e}"));
            if email == LEAVER {
                seeded.with_leaver.insert(name.clone());
            }
        }
    }
    if seeded.clash.len() < 2 {
        seeded.clash.clear();
    }
    assert!(seeded.teams.len() >= 22, "{backend}: {seeded:?}");
    seeded
}

fn notes<'a>(notes: &'a [Note], kind: &str) -> Vec<&'a Note> {
    notes
        .iter()
        .filter(|n| serde_json::to_value(n).unwrap()["kind"] == kind)
        .collect()
}

async fn pair(from_kind: &str, to_kind: &str) {
    let w = world(&[("source", from_kind), ("target", to_kind)]).await;
    let target_holds = w.side("target").holds();
    let leaver_gone = w.sims["target"].remove_person(LEAVER);
    let seeded = seed(&w, "source").await;

    // What cannot be carried, and nothing else.
    let long_skipped = seeded
        .long
        .clone()
        .filter(|n| n.chars().count() > target_holds.name_max);
    let mut skipped: BTreeSet<String> = seeded.clash.iter().cloned().collect();
    skipped.extend(long_skipped.clone());

    let planned = w.migrate("source", "target", false).await;
    let plan = &planned.plan;
    assert!(planned.applied.is_none());
    assert_eq!(planned.exit_code(), 0);
    let created: BTreeSet<String> = plan
        .teams
        .iter()
        .filter(|t| t.creates())
        .map(|t| t.name.clone())
        .collect();
    let expected: BTreeSet<String> = seeded.teams.difference(&skipped).cloned().collect();
    assert_eq!(
        created, expected,
        "{from_kind} -> {to_kind}: teams to create"
    );
    assert_eq!(
        notes(&plan.notes, "name_too_long").len(),
        usize::from(long_skipped.is_some()),
        "{from_kind} -> {to_kind}: {:?}",
        plan.notes
    );
    assert_eq!(
        notes(&plan.notes, "name_clash").len(),
        seeded.clash.len(),
        "{from_kind} -> {to_kind}: {:?}",
        plan.notes
    );
    let not_found: BTreeSet<String> = plan
        .notes
        .iter()
        .filter_map(|n| match n {
            Note::PersonNotFound { team, email } if email == LEAVER => Some(team.clone()),
            Note::PersonNotFound { email, .. } => panic!("{email} not found"),
            _ => None,
        })
        .collect();
    let expected_missing: BTreeSet<String> = if leaver_gone {
        seeded.with_leaver.difference(&skipped).cloned().collect()
    } else {
        BTreeSet::new()
    };
    assert_eq!(not_found, expected_missing, "{from_kind} -> {to_kind}");
    // A default parent the source gave its teams is not among the migrated teams.
    let source_holds = w.side("source").holds();
    let parents_carried = source_holds.has("parent_id") && target_holds.has("parent_id");
    let parent_lost: BTreeSet<String> = if parents_carried {
        seeded
            .parent_outside
            .difference(&skipped)
            .cloned()
            .collect()
    } else {
        BTreeSet::new()
    };
    let parent_notes: BTreeSet<String> = plan
        .notes
        .iter()
        .filter_map(|n| match n {
            Note::ParentNotFound { team, .. } => Some(team.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(parent_notes, parent_lost, "{from_kind} -> {to_kind}");
    for kind in [
        "member_without_email",
        "unidentified_member",
        "description_too_long",
        "members_not_held",
        "cannot_prune",
    ] {
        assert!(
            notes(&plan.notes, kind).is_empty(),
            "{from_kind} -> {to_kind}: {kind}: {:?}",
            plan.notes
        );
    }
    let adds: usize = plan.teams.iter().map(|t| t.add.len()).sum();
    assert!(
        adds >= 2 * expected.len() - expected_missing.len(),
        "{adds}"
    );

    // Apply: every action done.
    let applied = w.migrate("source", "target", true).await;
    let result = applied.applied.as_ref().unwrap();
    assert!(
        result.failures.is_empty(),
        "{from_kind} -> {to_kind}: {:?}",
        result.failures
    );
    assert_eq!(result.teams_created, expected.len());
    assert_eq!(result.actions(), applied.plan.actions());
    let left_behind = applied.plan.notes.iter().any(Note::is_skip);
    assert_eq!(applied.exit_code(), if left_behind { 3 } else { 0 });

    // The two agree on what both hold, but for what the plan said it could not carry.
    let diff = w.diff("source", "target").await;
    let only_in_source: BTreeSet<String> = diff.only_in_a.iter().cloned().collect();
    let long: BTreeSet<String> = long_skipped.iter().cloned().collect();
    assert_eq!(only_in_source, long, "{from_kind} -> {to_kind}: {diff:?}");
    let ambiguous: BTreeSet<&String> = diff.ambiguous.iter().collect();
    assert_eq!(
        ambiguous,
        seeded.clash.iter().collect(),
        "the clashing names are still ambiguous: {diff:?}"
    );
    assert!(diff.only_in_b.is_empty(), "{diff:?}");
    // A parent neither side's seed made (the source's default parent, not carried; or the
    // target's, given to teams created without one) is the only field that may differ.
    let default_parent_only = |team: &migrate::diff::TeamDiff| {
        parents_carried
            && team.fields.iter().all(|f| {
                f.field == "parent_id"
                    && [&f.a, &f.b]
                        .iter()
                        .all(|p| p.as_str().is_none_or(|name| !seeded.teams.contains(name)))
            })
    };
    let diff_teams: Vec<_> = diff
        .teams
        .iter()
        .filter(|t| !(default_parent_only(t) && t.members_only_in_a.is_empty()))
        .collect();
    for team in &diff_teams {
        assert!(
            (team.fields.is_empty() || default_parent_only(team))
                && team.roles.is_empty()
                && team.members_only_in_b.is_empty()
                && team.unidentified.is_empty(),
            "{from_kind} -> {to_kind}: {team:?}"
        );
        assert_eq!(team.members_only_in_a, [LEAVER], "{team:?}");
        assert!(expected_missing.contains(&team.name), "{team:?}");
    }
    assert_eq!(diff_teams.len(), expected_missing.len(), "{diff:?}");
    if target_holds.roles && w.side("source").holds().roles {
        assert!(diff.roles, "roles are compared");
    }

    // A second run has nothing to do.
    let again = w.migrate("source", "target", false).await;
    assert!(
        again.plan.is_empty(),
        "{from_kind} -> {to_kind}: {:?}",
        again.plan.teams
    );
    let again = w.migrate("source", "target", true).await;
    assert_eq!(again.applied.as_ref().unwrap().actions(), 0);
}

macro_rules! pairs {
    ($($name:ident: $from:literal -> $to:literal,)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() { pair($from, $to).await }
    )*};
}

pairs! {
    grafana_to_flashcat: "grafana" -> "flashcat",
    grafana_to_jsonapi: "grafana" -> "jsonapi",
    grafana_to_opsgenie: "grafana" -> "opsgenie",
    grafana_to_squadcast: "grafana" -> "squadcast",
    flashcat_to_grafana: "flashcat" -> "grafana",
    flashcat_to_jsonapi: "flashcat" -> "jsonapi",
    flashcat_to_opsgenie: "flashcat" -> "opsgenie",
    flashcat_to_squadcast: "flashcat" -> "squadcast",
    jsonapi_to_grafana: "jsonapi" -> "grafana",
    jsonapi_to_flashcat: "jsonapi" -> "flashcat",
    jsonapi_to_opsgenie: "jsonapi" -> "opsgenie",
    jsonapi_to_squadcast: "jsonapi" -> "squadcast",
    opsgenie_to_grafana: "opsgenie" -> "grafana",
    opsgenie_to_flashcat: "opsgenie" -> "flashcat",
    opsgenie_to_jsonapi: "opsgenie" -> "jsonapi",
    opsgenie_to_squadcast: "opsgenie" -> "squadcast",
    squadcast_to_grafana: "squadcast" -> "grafana",
    squadcast_to_flashcat: "squadcast" -> "flashcat",
    squadcast_to_jsonapi: "squadcast" -> "jsonapi",
    squadcast_to_opsgenie: "squadcast" -> "opsgenie",
    grafana_to_pagerduty: "grafana" -> "pagerduty",
    flashcat_to_pagerduty: "flashcat" -> "pagerduty",
    jsonapi_to_pagerduty: "jsonapi" -> "pagerduty",
    opsgenie_to_pagerduty: "opsgenie" -> "pagerduty",
    squadcast_to_pagerduty: "squadcast" -> "pagerduty",
    pagerduty_to_grafana: "pagerduty" -> "grafana",
    pagerduty_to_flashcat: "pagerduty" -> "flashcat",
    pagerduty_to_jsonapi: "pagerduty" -> "jsonapi",
    pagerduty_to_opsgenie: "pagerduty" -> "opsgenie",
    pagerduty_to_squadcast: "pagerduty" -> "squadcast",
}

#[test]
fn the_pairs_are_every_ordered_pair() {
    let source = include_str!("migrate.rs");
    for from in KINDS {
        for to in KINDS.iter().filter(|t| **t != from) {
            assert!(
                source.contains(&format!("\"{from}\" -> \"{to}\"")),
                "{from} -> {to} is missing"
            );
        }
    }
}

/// A migration cut off halfway by vendor faults (failing answers, and answers lost after the
/// vendor acted) completes on the next run, with the result of an uninterrupted one.
async fn interrupted(from_kind: &str, to_kind: &str, fault: Fault) {
    let w = world(&[
        ("source", from_kind),
        ("reference", to_kind),
        ("target", to_kind),
    ])
    .await;
    seed(&w, "source").await;
    let reference = w.migrate("source", "reference", true).await;
    assert!(reference.applied.as_ref().unwrap().failures.is_empty());
    let requests = w.sims["reference"].request_count() as u32;

    let target = &w.sims["target"];
    target.set_fault_plan(Some(FaultPlan::always(fault.clone()).after(requests / 2)));
    let cut = w.migrate("source", "target", true).await;
    let failures = &cut.applied.as_ref().unwrap().failures;
    assert!(!failures.is_empty(), "{fault:?}: the run was interrupted");
    assert_eq!(cut.exit_code(), 1);

    target.set_fault_plan(None);
    assert!(!w.diff("reference", "target").await.is_empty(), "half done");
    let resumed = w.migrate("source", "target", true).await;
    let result = resumed.applied.as_ref().unwrap();
    assert!(result.failures.is_empty(), "{:?}", result.failures);
    assert!(result.actions() > 0);
    assert!(result.actions() < reference.plan.actions());
    let diff = w.diff("reference", "target").await;
    assert!(diff.is_empty(), "{fault:?}: {diff:?}");
    assert!(w.migrate("source", "target", false).await.plan.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_migration_completes_on_the_next_run() {
    interrupted("opsgenie", "flashcat", Fault::Status(503)).await;
    interrupted("grafana", "squadcast", Fault::Status(503)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_whose_answers_were_lost_are_not_made_twice() {
    interrupted("squadcast", "jsonapi", Fault::ResetAfterRead).await;
    interrupted("flashcat", "opsgenie", Fault::ResetAfterRead).await;
}

/// Without `--prune`, what the target has beyond the source stays, and the plan says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_prune_the_target_keeps_what_the_source_lacks() {
    let w = world(&[("source", "opsgenie"), ("target", "grafana")]).await;
    seed(&w, "source").await;
    let mut extra = CanonicalRequest::new(Operation::CreateTeam);
    extra.input.insert("name".into(), json!("t-only-in-target"));
    w.call("target", extra).await.unwrap();
    let options = MigrateOptions {
        apply: true,
        prune: false,
        teams: Some(GLOB.into()),
    };
    let report = migrate::migrate(&w.app, "source", "target", &options, &mut |_, _, _| {})
        .await
        .unwrap();
    assert!(report.plan.delete.is_empty());
    assert_eq!(
        notes(&report.plan.notes, "team_kept").len(),
        1,
        "{:?}",
        report.plan.notes
    );
    let diff = w.diff("source", "target").await;
    assert_eq!(diff.only_in_b, ["t-only-in-target"]);
    let options = MigrateOptions {
        prune: true,
        ..options
    };
    let pruned = migrate::migrate(&w.app, "source", "target", &options, &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(pruned.plan.delete.len(), 1);
    assert_eq!(pruned.applied.unwrap().teams_deleted, 1);
    assert!(w.diff("source", "target").await.only_in_b.is_empty());
}

/// The built binary against simulators it reaches at their `base_url`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_migrates_and_diffs() {
    let w = world(&[("source", "opsgenie"), ("target", "squadcast")]).await;
    seed(&w, "source").await;
    let dir = std::env::temp_dir().join(format!("teamgate-migrate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    let mut text = "listen = \"127.0.0.1:0\"\ndefault_backend = \"source\"\n".to_string();
    for (name, kind) in [("source", "opsgenie"), ("target", "squadcast")] {
        text.push_str(&format!(
            "[backends.{name}]\nmapping = \"{}\"\nbase_url = \"{}\"\ncredential_env = \"TEAMGATE_BIN_TEST_CREDENTIAL\"\n",
            repo_root().join(format!("mappings/{kind}.toml")).display(),
            w.sims[name].base_url()
        ));
    }
    std::fs::write(&config, text).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_teamgate"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("TEAMGATE_BIN_TEST_CREDENTIAL", CREDENTIAL)
            .env("TEAMGATE_LOG", "warn")
            .output()
            .unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (
            out.status.code(),
            json,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let migrate_args = |extra: &[&'static str]| {
        let mut args = vec![
            "migrate", "--from", "source", "--to", "target", "--prune", "--teams", "t-team-*",
            "--output", "json",
        ];
        args.extend_from_slice(extra);
        args
    };

    let (code, before, err) = tokio::task::block_in_place(|| {
        run(&[
            "diff", "source", "target", "--teams", "t-team-*", "--output", "json",
        ])
    });
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(before["equal"], false);
    let (code, dry, err) = tokio::task::block_in_place(|| run(&migrate_args(&[])));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(dry["status"], "planned");
    let to_create = dry["plan"]["teams"].as_array().unwrap().len();
    assert_eq!(to_create, 22, "{dry}");
    assert_eq!(
        w.sims["target"]
            .requests()
            .iter()
            .filter(|r| r.method != "GET")
            .count(),
        0,
        "a dry run writes nothing"
    );
    let (code, done, err) = tokio::task::block_in_place(|| run(&migrate_args(&["--apply"])));
    assert_eq!(code, Some(0), "{err}: {done}");
    assert_eq!(done["status"], "applied");
    assert_eq!(done["result"]["teams_created"], to_create);
    assert_eq!(done["result"]["failures"], json!([]));
    let (code, after, err) = tokio::task::block_in_place(|| {
        run(&[
            "diff", "source", "target", "--teams", "t-team-*", "--output", "json",
        ])
    });
    assert_eq!(code, Some(0), "{err}: {after}");
    assert_eq!(after["equal"], true);
    let (code, again, _) = tokio::task::block_in_place(|| run(&migrate_args(&["--apply"])));
    assert_eq!(code, Some(0));
    assert_eq!(again["plan"]["teams"], json!([]));
    assert_eq!(again["result"]["teams_created"], 0);
    // A backend that is not configured is an error, not a plan.
    let (code, _, err) =
        tokio::task::block_in_place(|| run(&["migrate", "--from", "source", "--to", "nowhere"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("nowhere"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
