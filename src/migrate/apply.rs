//! Carrying a [`Plan`] out on the target, through the mapping engine, one canonical write per
//! action.
//!
//! Teams are done one after the other, parents first. A failed action stops its team (what
//! follows may depend on it: members of a team that was not created) and the run goes on with
//! the next team; the failures are returned, and the next run's plan holds exactly what is
//! left. Answers that say the effect already holds (a member already there, a member or a
//! team already gone) count as done, so a write whose answer was lost and that is sent again
//! is harmless.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::plan::{Plan, TeamPlan};
use super::{MemberState, Side};
use crate::canonical::{CanonicalRequest, Operation};
use crate::error::{Error, ErrorCode};

/// What an apply did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Applied {
    pub teams_created: usize,
    pub teams_updated: usize,
    pub members_added: usize,
    pub roles_changed: usize,
    pub members_removed: usize,
    pub teams_deleted: usize,
    /// With `--prune`: members a vendor put into a team it created by itself (its creator),
    /// removed. Not an action of the plan, which could not know them.
    pub vendor_added_removed: usize,
    pub failures: Vec<Failure>,
}

impl Applied {
    pub fn actions(&self) -> usize {
        self.teams_created
            + self.teams_updated
            + self.members_added
            + self.roles_changed
            + self.members_removed
            + self.teams_deleted
    }
}

/// An action that failed; its team's later actions were not tried.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub team: String,
    pub action: String,
    pub code: String,
    pub status: u16,
    pub detail: String,
}

/// Progress of an apply: (actions done or given up, actions in the plan, what is being done).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, &str);

/// Carries `plan` out on `target`. `ids` are the target's team ids by name (every team, for
/// parents); teams created on the way join them.
pub async fn apply(
    target: &Side,
    plan: &Plan,
    mut ids: HashMap<String, String>,
    progress: Progress<'_>,
) -> Applied {
    let total = plan.actions();
    let mut done = 0usize;
    let mut applied = Applied::default();
    for team in &plan.teams {
        let start = done;
        let actions = usize::from(team.creates() || team.updates())
            + team.add.len()
            + team.change_role.len()
            + team.remove.len();
        let result = apply_team(target, plan.prune, team, &mut ids, &mut applied, |what| {
            done += 1;
            progress(done, total, what);
        })
        .await;
        if let Err(failure) = result {
            applied.failures.push(failure);
        }
        // The actions a failure left untried count as given up.
        done = start + actions;
    }
    for team in &plan.delete {
        progress(done + 1, total, &format!("delete {}", team.name));
        let mut req = CanonicalRequest::new(Operation::DeleteTeam);
        req.team_id = Some(team.id.clone());
        match target.call(&req).await {
            Ok(_) => applied.teams_deleted += 1,
            Err(e) if e.code == ErrorCode::NotFound => applied.teams_deleted += 1,
            Err(e) => applied
                .failures
                .push(failure(&team.name, "delete_team", &e)),
        }
        done += 1;
    }
    applied
}

async fn apply_team(
    target: &Side,
    prune: bool,
    team: &TeamPlan,
    ids: &mut HashMap<String, String>,
    applied: &mut Applied,
    mut step: impl FnMut(&str),
) -> Result<(), Failure> {
    let name = team.name.as_str();
    let mut fields: Map<String, Value> = team.set.clone().into_iter().collect();
    if let Some(parent) = &team.parent {
        match ids.get(parent) {
            Some(id) => {
                fields.insert("parent_id".into(), Value::String(id.clone()));
            }
            None => {
                return Err(Failure {
                    team: name.into(),
                    action: "parent".into(),
                    code: ErrorCode::NotFound.as_str().into(),
                    status: 404,
                    detail: format!("the parent team {parent:?} is not in the target"),
                })
            }
        }
    }
    let team_id = match &team.target_id {
        None => {
            step(&format!("create {name}"));
            let mut req = CanonicalRequest::new(Operation::CreateTeam);
            req.input = fields;
            let answer = target
                .call(&req)
                .await
                .map_err(|e| failure(name, "create_team", &e))?;
            let id = answer
                .json()
                .and_then(|b| b["id"].as_str().map(str::to_string))
                .ok_or_else(|| Failure {
                    team: name.into(),
                    action: "create_team".into(),
                    code: ErrorCode::UpstreamError.as_str().into(),
                    status: 502,
                    detail: "the created team has no id".into(),
                })?;
            applied.teams_created += 1;
            ids.insert(name.to_string(), id.clone());
            // Some vendors put people into a team they create (its creator, as an owner).
            let present = target
                .members(&id)
                .await
                .map_err(|e| failure(name, "list_members", &e))?
                .0;
            let mut team = team.clone();
            reconcile_created(target, prune, &mut team, &present, &id, applied, &mut step)
                .await
                .map_err(|(action, e)| failure(name, &action, &e))?;
            return add_members(target, &team, &id, applied, &mut step).await;
        }
        Some(id) => {
            if !fields.is_empty() {
                step(&format!("update {name}"));
                let mut req = CanonicalRequest::new(Operation::UpdateTeam);
                req.team_id = Some(id.clone());
                req.input = fields;
                target
                    .call(&req)
                    .await
                    .map_err(|e| failure(name, "update_team", &e))?;
                applied.teams_updated += 1;
            }
            id.clone()
        }
    };
    add_members(target, team, &team_id, applied, &mut step).await
}

/// A team just created already holds `present`: planned members among them are there (their
/// role set where it differs), and with `--prune` the others go.
async fn reconcile_created(
    target: &Side,
    prune: bool,
    team: &mut TeamPlan,
    present: &[MemberState],
    team_id: &str,
    applied: &mut Applied,
    step: &mut impl FnMut(&str),
) -> Result<(), (String, Error)> {
    let holds = target.holds();
    let wanted: HashSet<String> = team.add.iter().map(|m| m.email.clone()).collect();
    let mut adds = Vec::new();
    for member in std::mem::take(&mut team.add) {
        let Some(there) = present
            .iter()
            .find(|p| p.email.as_deref() == Some(member.email.as_str()))
        else {
            adds.push(member);
            continue;
        };
        if let Some(role) = member.role.as_ref().filter(|r| **r != there.role) {
            if holds.update_member {
                step(&format!("role of {} in {}", member.email, team.name));
                let mut req = CanonicalRequest::new(Operation::UpdateMember);
                req.team_id = Some(team_id.to_string());
                req.user_id = Some(there.user_id.clone());
                req.input.insert("role".into(), Value::String(role.clone()));
                target
                    .call(&req)
                    .await
                    .map_err(|e| (format!("update_member {}", member.email), e))?;
            }
        }
        applied.members_added += 1;
    }
    team.add = adds;
    if !(prune && holds.remove_member) {
        return Ok(());
    }
    // A member without an email cannot be told apart: left alone, as a plan would.
    for member in present {
        let Some(email) = member.email.as_deref() else {
            continue;
        };
        if wanted.contains(email) {
            continue;
        }
        step(&format!("remove {email} from {}", team.name));
        let mut req = CanonicalRequest::new(Operation::RemoveMember);
        req.team_id = Some(team_id.to_string());
        req.user_id = Some(member.user_id.clone());
        match target.call(&req).await {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::NotFound => {}
            Err(e) => return Err((format!("remove_member {email}"), e)),
        }
        applied.vendor_added_removed += 1;
    }
    Ok(())
}

async fn add_members(
    target: &Side,
    team: &TeamPlan,
    team_id: &str,
    applied: &mut Applied,
    step: &mut impl FnMut(&str),
) -> Result<(), Failure> {
    let name = team.name.as_str();
    let team_id = team_id.to_string();
    for member in &team.add {
        step(&format!("add {} to {name}", member.email));
        let mut req = CanonicalRequest::new(Operation::AddMember);
        req.team_id = Some(team_id.clone());
        req.input
            .insert("user_id".into(), Value::String(member.user_id.clone()));
        if let Some(role) = &member.role {
            req.input.insert("role".into(), Value::String(role.clone()));
        }
        target
            .call(&req)
            .await
            .map_err(|e| failure(name, &format!("add_member {}", member.email), &e))?;
        applied.members_added += 1;
    }
    for member in &team.change_role {
        step(&format!("role of {} in {name}", member.email));
        let mut req = CanonicalRequest::new(Operation::UpdateMember);
        req.team_id = Some(team_id.clone());
        req.user_id = Some(member.user_id.clone());
        if let Some(role) = &member.role {
            req.input.insert("role".into(), Value::String(role.clone()));
        }
        target
            .call(&req)
            .await
            .map_err(|e| failure(name, &format!("update_member {}", member.email), &e))?;
        applied.roles_changed += 1;
    }
    for member in &team.remove {
        step(&format!("remove {} from {name}", member.email));
        let mut req = CanonicalRequest::new(Operation::RemoveMember);
        req.team_id = Some(team_id.clone());
        req.user_id = Some(member.user_id.clone());
        match target.call(&req).await {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::NotFound => {}
            Err(e) => {
                return Err(failure(
                    name,
                    &format!("remove_member {}", member.email),
                    &e,
                ))
            }
        }
        applied.members_removed += 1;
    }
    Ok(())
}

fn failure(team: &str, action: &str, e: &Error) -> Failure {
    Failure {
        team: team.into(),
        action: action.into(),
        code: e.code.as_str().into(),
        status: e.code.status(),
        detail: e.detail.clone(),
    }
}
