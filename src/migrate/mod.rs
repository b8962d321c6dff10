//! Migrations between backends: `teamgate migrate` and `teamgate diff`, over the canonical
//! model.
//!
//! Everything here speaks to backends through the mapping engine ([`Backend::execute`]) with
//! canonical requests, as the server does, so this module names no vendor: what a backend
//! holds (fields, member lists, roles, limits) is read from its mapping. Teams are matched by
//! name (exact first, then case-insensitive when that is unambiguous), people by email.
//!
//! - this file: one backend's teams and memberships read into a [`Snapshot`], what a backend
//!   can hold ([`Holds`]), the name matching both commands share, and the `--teams` glob;
//! - [`plan`]: what a migration would do, and what it cannot carry (notes);
//! - [`apply`]: carrying a plan out, team by team; a failure stops that team only, and a
//!   second run plans what is left (idempotent, resumable);
//! - [`diff`]: the canonical difference between two backends' teams and memberships;
//! - [`report`]: the text and JSON renderings, the summary table and the exit statuses.

pub mod apply;
pub mod diff;
pub mod plan;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::canonical::{CanonicalRequest, CanonicalResponse, Operation, PageRequest};
use crate::error::Error;
use crate::mapping::engine::Backend;
use crate::App;

/// The team fields a migration carries besides the name (`parent_id` as the parent's name).
pub const CARRIED_FIELDS: &[&str] = &["description", "email", "parent_id"];

/// One configured backend, as the migration commands use it.
#[derive(Clone)]
pub struct Side {
    pub name: String,
    backend: Arc<Backend>,
}

impl Side {
    /// The backend `name` of a built app.
    pub fn new(app: &App, name: &str) -> Result<Side, String> {
        let served = app.backends.get(name).ok_or_else(|| {
            let known: Vec<String> = app.backends.snapshot().keys().cloned().collect();
            format!(
                "no backend `{name}` in the configuration (known: {})",
                known.join(", ")
            )
        })?;
        Ok(Side {
            name: name.to_string(),
            backend: served.backend,
        })
    }

    /// A backend as the migration commands (and mirrors) use it.
    pub fn of(name: &str, backend: Arc<Backend>) -> Side {
        Side {
            name: name.to_string(),
            backend,
        }
    }

    /// Runs one canonical request through the mapping engine.
    pub async fn call(&self, req: &CanonicalRequest) -> Result<CanonicalResponse, Error> {
        self.backend.execute(req).await
    }

    /// What this backend can hold.
    pub fn holds(&self) -> Holds {
        let mapping = &self.backend.mapping;
        Holds {
            fields: CARRIED_FIELDS
                .iter()
                .copied()
                .filter(|f| mapping.team.has(f))
                .collect(),
            members: mapping.plan(Operation::ListMembers).is_some()
                && mapping.plan(Operation::AddMember).is_some(),
            roles: mapping.member.vendor_role("admin").is_some(),
            update_member: mapping.plan(Operation::UpdateMember).is_some(),
            remove_member: mapping.plan(Operation::RemoveMember).is_some(),
            delete_team: mapping.plan(Operation::DeleteTeam).is_some(),
            name_max: mapping.limits.name_max,
            description_max: mapping.limits.description_max,
        }
    }

    /// Every team (that `filter` admits) with its members.
    pub async fn snapshot(&self, filter: &TeamFilter) -> Result<Snapshot, Error> {
        let holds = self.holds();
        let listed = self.all_teams().await?;
        let names: HashMap<String, String> = listed
            .iter()
            .filter_map(|t| Some((t["id"].as_str()?.to_string(), text(&t["name"])?)))
            .collect();
        let mut teams = Vec::new();
        for team in &listed {
            let (Some(id), Some(name)) = (team["id"].as_str(), text(&team["name"])) else {
                continue;
            };
            if !filter.admits(&name) {
                continue;
            }
            let parent = team["parent_id"]
                .as_str()
                .map(|p| names.get(p).cloned().unwrap_or_else(|| format!("#{p}")));
            let (members, partial) = if holds.members {
                self.members(id).await?
            } else {
                (Vec::new(), false)
            };
            teams.push(TeamState {
                id: id.to_string(),
                name,
                description: text(&team["description"]),
                email: text(&team["email"]),
                parent,
                members,
                partial,
            });
        }
        Ok(Snapshot {
            backend: self.name.clone(),
            teams,
        })
    }

    /// Every team's id by name (the first of a name, should a backend hold two).
    pub async fn team_ids(&self) -> Result<HashMap<String, String>, Error> {
        let mut ids = HashMap::new();
        for team in self.all_teams().await? {
            if let (Some(name), Some(id)) = (text(&team["name"]), team["id"].as_str()) {
                ids.entry(name).or_insert_with(|| id.to_string());
            }
        }
        Ok(ids)
    }

    /// Every team of the backend, page after page.
    async fn all_teams(&self) -> Result<Vec<Value>, Error> {
        let size = self.backend.mapping.limits.page_size_max.min(100);
        let mut teams = Vec::new();
        // Bounded: 10,000 pages of at least one team.
        for page in 0..10_000 {
            let mut req = CanonicalRequest::new(Operation::ListTeams);
            req.page = Some(PageRequest {
                limit: size,
                offset: page * size,
            });
            let body = self.call(&req).await?.json().unwrap_or_default();
            if let Some(items) = body["teams"].as_array() {
                teams.extend(items.iter().cloned());
            }
            if body["next_cursor"].is_null() {
                break;
            }
        }
        Ok(teams)
    }

    /// A team's members (emails lower-cased) and whether some lack their details.
    pub async fn members(&self, team_id: &str) -> Result<(Vec<MemberState>, bool), Error> {
        let mut req = CanonicalRequest::new(Operation::ListMembers);
        req.team_id = Some(team_id.to_string());
        let answer = self.call(&req).await?;
        let body = answer.json().unwrap_or_default();
        let members = body["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                Some(MemberState {
                    user_id: m["user_id"].as_str()?.to_string(),
                    email: text(&m["email"]).map(|e| e.to_lowercase()),
                    role: m["role"].as_str().unwrap_or("member").to_string(),
                })
            })
            .collect();
        Ok((members, answer.partial))
    }

    /// Every person the backend knows: lower-cased email → the backend's user id.
    pub async fn people(&self) -> Result<HashMap<String, String>, Error> {
        let size = self.backend.mapping.limits.page_size_max.min(100);
        let mut people = HashMap::new();
        if self.backend.mapping.plan(Operation::ListUsers).is_none() {
            return Ok(people);
        }
        for page in 0..10_000 {
            let mut req = CanonicalRequest::new(Operation::ListUsers);
            req.page = Some(PageRequest {
                limit: size,
                offset: page * size,
            });
            let body = self.call(&req).await?.json().unwrap_or_default();
            for user in body["users"].as_array().into_iter().flatten() {
                if let (Some(email), Some(id)) = (text(&user["email"]), user["id"].as_str()) {
                    people.entry(email.to_lowercase()).or_insert(id.to_string());
                }
            }
            if body["next_cursor"].is_null() {
                break;
            }
        }
        Ok(people)
    }
}

/// What `migrate` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    /// Carry the plan out (otherwise only make it).
    pub apply: bool,
    /// Remove target members and teams the source does not have.
    pub prune: bool,
    /// Only teams whose name matches this glob (on both sides).
    pub teams: Option<String>,
}

/// `teamgate migrate`: reads both backends, plans, and with `apply` carries the plan out.
/// An error is a backend that cannot be read (nothing was changed).
pub async fn migrate(
    app: &App,
    from: &str,
    to: &str,
    options: &MigrateOptions,
    progress: apply::Progress<'_>,
) -> Result<report::MigrateReport, String> {
    if from == to {
        return Err(format!("--from and --to are the same backend `{from}`"));
    }
    let (source, target) = (Side::new(app, from)?, Side::new(app, to)?);
    let filter = TeamFilter::new(options.teams.as_deref());
    let source_snapshot = source.snapshot(&filter).await.map_err(read_error(from))?;
    let target_snapshot = target.snapshot(&filter).await.map_err(read_error(to))?;
    let target_ids = target.team_ids().await.map_err(read_error(to))?;
    let people = target.people().await.map_err(read_error(to))?;
    let plan = plan::plan(
        &source_snapshot,
        &source.holds(),
        &target_snapshot,
        &target_ids,
        &target.holds(),
        &people,
        options.prune,
    );
    let applied = if options.apply {
        Some(apply::apply(&target, &plan, target_ids, progress).await)
    } else {
        None
    };
    Ok(report::MigrateReport { plan, applied })
}

/// `teamgate diff`: both backends read, compared.
pub async fn compare(
    app: &App,
    a: &str,
    b: &str,
    teams: Option<&str>,
) -> Result<diff::Diff, String> {
    let (side_a, side_b) = (Side::new(app, a)?, Side::new(app, b)?);
    let filter = TeamFilter::new(teams);
    let snap_a = side_a.snapshot(&filter).await.map_err(read_error(a))?;
    let snap_b = side_b.snapshot(&filter).await.map_err(read_error(b))?;
    Ok(diff::diff(
        &snap_a,
        &side_a.holds(),
        &snap_b,
        &side_b.holds(),
    ))
}

fn read_error(backend: &str) -> impl Fn(Error) -> String + '_ {
    move |e| {
        format!(
            "cannot read backend `{backend}`: {} ({} {})",
            e.detail,
            e.code.status(),
            e.code.as_str()
        )
    }
}

/// What a backend can hold, read from its mapping.
#[derive(Debug, Clone, Serialize)]
pub struct Holds {
    /// Which of [`CARRIED_FIELDS`] it has.
    pub fields: Vec<&'static str>,
    /// Whether it has member lists (list and add).
    pub members: bool,
    /// Whether its members have the `admin` role.
    pub roles: bool,
    pub update_member: bool,
    pub remove_member: bool,
    pub delete_team: bool,
    pub name_max: usize,
    pub description_max: usize,
}

impl Holds {
    pub fn has(&self, field: &str) -> bool {
        self.fields.contains(&field)
    }
}

/// One backend's teams and memberships, canonical.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub backend: String,
    pub teams: Vec<TeamState>,
}

/// A team as the migration compares it.
#[derive(Debug, Clone, Serialize)]
pub struct TeamState {
    pub id: String,
    pub name: String,
    /// An empty description is no description.
    pub description: Option<String>,
    pub email: Option<String>,
    /// The parent team's name (`#<id>` when the parent is not listed).
    pub parent: Option<String>,
    pub members: Vec<MemberState>,
    /// Some member's details are missing (the backend's people lookup did not know them).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

impl TeamState {
    /// A carried field's value as text (`parent_id` as the parent's name).
    pub fn field(&self, field: &str) -> Option<&str> {
        match field {
            "description" => self.description.as_deref(),
            "email" => self.email.as_deref(),
            "parent_id" => self.parent.as_deref(),
            _ => None,
        }
    }

    /// Members by lower-cased email; members without one are left out.
    pub fn by_email(&self) -> BTreeMap<&str, &MemberState> {
        self.members
            .iter()
            .filter_map(|m| Some((m.email.as_deref()?, m)))
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MemberState {
    pub user_id: String,
    /// Lower-cased.
    pub email: Option<String>,
    pub role: String,
}

/// How a team of one side pairs with the other side's teams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pairing {
    /// This team of the other side (index), by exact or case-insensitive name.
    Matched(usize),
    /// No team of that name on the other side.
    Unmatched,
    /// The name is not unambiguous: these names (of either side) fold to it too.
    Clash(Vec<String>),
}

/// Pairs each of `from` with at most one of `to`: the exact name first; then, for those
/// left, the case-insensitive name when exactly one team of `to` still free has it and no
/// other team of `from` folds to it too.
pub fn pair(from: &[TeamState], to: &[TeamState]) -> Vec<Pairing> {
    let mut exact: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, t) in to.iter().enumerate() {
        exact.entry(t.name.as_str()).or_default().push(i);
    }
    let mut folded_from: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, t) in from.iter().enumerate() {
        folded_from
            .entry(t.name.to_lowercase())
            .or_default()
            .push(i);
    }
    let mut pairing = vec![Pairing::Unmatched; from.len()];
    let mut claimed = vec![false; to.len()];
    for (i, team) in from.iter().enumerate() {
        match exact.get(team.name.as_str()).map(Vec::as_slice) {
            Some([one]) => {
                pairing[i] = Pairing::Matched(*one);
                claimed[*one] = true;
            }
            Some(several) if several.len() > 1 => {
                pairing[i] = Pairing::Clash(several.iter().map(|j| to[*j].name.clone()).collect())
            }
            _ => {}
        }
    }
    for (i, team) in from.iter().enumerate() {
        if pairing[i] != Pairing::Unmatched {
            continue;
        }
        let folded = team.name.to_lowercase();
        let rivals: Vec<String> = folded_from[&folded]
            .iter()
            .filter(|j| **j != i)
            .map(|j| from[*j].name.clone())
            .collect();
        let free: Vec<usize> = (0..to.len())
            .filter(|j| !claimed[*j] && to[*j].name.to_lowercase() == folded)
            .collect();
        pairing[i] = match (free.as_slice(), rivals.is_empty()) {
            ([], true) => Pairing::Unmatched,
            ([one], true) => {
                claimed[*one] = true;
                Pairing::Matched(*one)
            }
            _ => Pairing::Clash(
                rivals
                    .into_iter()
                    .chain(free.iter().map(|j| to[*j].name.clone()))
                    .collect(),
            ),
        };
    }
    pairing
}

/// `--teams <glob>`: `*` any run of characters, `?` one, case-insensitive; no glob admits
/// every team.
#[derive(Debug, Clone, Default)]
pub struct TeamFilter(Option<Vec<char>>);

impl TeamFilter {
    pub fn new(glob: Option<&str>) -> TeamFilter {
        TeamFilter(glob.map(|g| g.to_lowercase().chars().collect()))
    }

    pub fn admits(&self, name: &str) -> bool {
        let Some(glob) = &self.0 else {
            return true;
        };
        let name: Vec<char> = name.to_lowercase().chars().collect();
        // The classic two-pointer wildcard match (linear backtracking on the last `*`).
        let (mut g, mut n) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            if g < glob.len() && (glob[g] == '?' || glob[g] == name[n]) {
                g += 1;
                n += 1;
            } else if g < glob.len() && glob[g] == '*' {
                star = Some((g, n));
                g += 1;
            } else if let Some((sg, sn)) = star {
                g = sg + 1;
                n = sn + 1;
                star = Some((sg, sn + 1));
            } else {
                return false;
            }
        }
        glob[g..].iter().all(|c| *c == '*')
    }
}

/// A string value, `None` for null and for the empty string.
fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(name: &str) -> TeamState {
        TeamState {
            id: name.into(),
            name: name.into(),
            description: None,
            email: None,
            parent: None,
            members: Vec::new(),
            partial: false,
        }
    }

    #[test]
    fn globs_match_case_insensitively() {
        let f = TeamFilter::new(Some("mig-*"));
        assert!(f.admits("MIG-ops") && f.admits("mig-") && !f.admits("ops-mig-"));
        let f = TeamFilter::new(Some("a?c*d"));
        assert!(f.admits("abcxxd") && f.admits("aXcd") && !f.admits("acd"));
        assert!(TeamFilter::new(None).admits("anything"));
    }

    #[test]
    fn names_pair_exactly_first_then_folded_when_unambiguous() {
        let from: Vec<_> = ["Ops", "OPS", "Dev", "QA", "Web"]
            .into_iter()
            .map(team)
            .collect();
        let to: Vec<_> = ["Ops", "dev", "qa", "QA ", "web", "WEB"]
            .into_iter()
            .map(team)
            .collect();
        let p = pair(&from, &to);
        assert_eq!(p[0], Pairing::Matched(0), "exact");
        assert!(matches!(&p[1], Pairing::Clash(n) if n == &["Ops".to_string()]));
        assert_eq!(p[2], Pairing::Matched(1), "folded, unambiguous");
        assert_eq!(p[3], Pairing::Matched(2), "`QA ` is another name");
        assert!(matches!(&p[4], Pairing::Clash(n) if n.len() == 2), "{p:?}");
    }
}
