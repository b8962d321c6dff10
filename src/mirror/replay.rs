//! Repeating one write of the primary on its mirror, through the mapping engine.
//!
//! Each replay is safe to run again after a failure whose outcome is unknown: a create looks
//! the team up by name first (and adopts it), an add of someone already there and a removal
//! of someone (or a team) already gone count as done, and updates set values.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::metrics::Result as Done;
use super::queue::Job;
use super::Mirror;
use crate::canonical::{CanonicalRequest, CanonicalResponse, Operation, PageRequest};
use crate::error::{Error, ErrorCode};
use crate::migrate::{Holds, MemberState, Side};

/// Why an attempt did not finish.
pub(super) enum Failure {
    /// A vendor or network failure that may pass: try again after a backoff.
    Retry(Error),
    /// A refusal that will not change: not retried.
    Refused(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        if e.retryable() || e.outcome_unknown() {
            Failure::Retry(e)
        } else {
            Failure::Refused(e)
        }
    }
}

type Attempt = std::result::Result<Done, Failure>;

/// Both sides of a mirror, with what the mirror can hold.
pub(super) struct Sides<'a> {
    mirror: &'a Mirror,
    x: Side,
    y: Side,
    holds: Holds,
}

pub(super) async fn replay(mirror: &Mirror, job: &Job) -> Attempt {
    let x = mirror.side(&mirror.primary)?;
    let y = mirror.side(&mirror.settings.target)?;
    let s = Sides::new(mirror, x, y);
    match job.request.op {
        Operation::CreateTeam => s.create(job).await,
        Operation::UpdateTeam => s.update(job).await,
        Operation::DeleteTeam => s.delete(job).await,
        Operation::AddMember => s.add_member(job).await,
        Operation::UpdateMember => s.update_member(job).await,
        Operation::RemoveMember => s.remove_member(job).await,
        _ => Ok(Done::Skipped),
    }
}

impl<'a> Sides<'a> {
    pub(super) fn new(mirror: &'a Mirror, x: Side, y: Side) -> Sides<'a> {
        let holds = y.holds();
        Sides {
            mirror,
            x,
            y,
            holds,
        }
    }

    /// Runs a request on `side`, through its circuit and bulkhead, within the request
    /// timeout.
    async fn call(&self, side: &Side, req: &CanonicalRequest) -> Result<CanonicalResponse, Error> {
        self.mirror.call(&side.name, req).await
    }

    /// A team's members on `side` (emails lower-cased).
    async fn members(&self, side: &Side, team_id: &str) -> Result<Vec<MemberState>, Error> {
        let mut req = CanonicalRequest::new(Operation::ListMembers);
        req.team_id = Some(team_id.to_string());
        let body = self.call(side, &req).await?.json().unwrap_or_default();
        Ok(body["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                Some(MemberState {
                    user_id: m["user_id"].as_str()?.to_string(),
                    email: m["email"]
                        .as_str()
                        .filter(|e| !e.is_empty())
                        .map(str::to_lowercase),
                    role: m["role"].as_str().unwrap_or("member").to_string(),
                })
            })
            .collect())
    }

    /// A write on the mirror; its cached reads of the team (and lists) are made stale
    /// whatever the outcome, as the read cache does for writes that may have happened.
    async fn write(&self, req: &CanonicalRequest) -> Result<CanonicalResponse, Error> {
        let result = self.call(&self.y, req).await;
        self.mirror
            .cache
            .invalidate(&self.y.name, req.op, req.team_id.as_deref());
        result
    }

    async fn create(&self, job: &Job) -> Attempt {
        let Some(name) = job.request.input.get("name").and_then(Value::as_str) else {
            return Ok(Done::Skipped);
        };
        let fields = self.fields(&job.request.input).await?;
        let y_id = match self.find_by_name(name).await? {
            Some(y_id) => {
                // Already there (made by a migration, or by an attempt whose answer was lost).
                let mut set = fields.clone();
                set.remove("name");
                if !set.is_empty() {
                    self.write(&update(&y_id, set)).await?;
                }
                y_id
            }
            None => {
                let mut req = CanonicalRequest::new(Operation::CreateTeam);
                req.input = fields;
                let answer = self.write(&req).await?;
                answer
                    .json()
                    .and_then(|b| b["id"].as_str().map(str::to_string))
                    .ok_or_else(|| {
                        Failure::Retry(Error::new(
                            ErrorCode::UpstreamError,
                            "the mirror's created team has no id",
                        ))
                    })?
            }
        };
        self.mirror.remember(&job.key, &y_id);
        self.sync_members(&job.key, &y_id).await?;
        Ok(Done::Ok)
    }

    async fn update(&self, job: &Job) -> Attempt {
        let team = job.answer.json().unwrap_or_default();
        let Some(y_id) = self.counterpart(&job.key, team["name"].as_str()).await? else {
            return Ok(Done::Unmatched);
        };
        let fields = self.fields(&job.request.input).await?;
        let replaces_members = job.request.input.contains_key("members");
        if fields.is_empty() && !replaces_members {
            return Ok(Done::Skipped);
        }
        if !fields.is_empty() {
            self.write(&update(&y_id, fields)).await?;
        }
        if replaces_members {
            self.sync_members(&job.key, &y_id).await?;
        }
        Ok(Done::Ok)
    }

    async fn delete(&self, job: &Job) -> Attempt {
        if !self.holds.delete_team {
            return Ok(Done::Skipped);
        }
        // The team is gone from the primary: only a remembered pair names it.
        let Some(y_id) = self.mirror.pair(&job.key) else {
            if !self
                .mirror
                .paired_at_start
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                return Err(Failure::Retry(Error::new(
                    ErrorCode::UpstreamUnavailable,
                    "existing teams are not paired yet",
                )));
            }
            return Ok(Done::Unmatched);
        };
        let mut req = CanonicalRequest::new(Operation::DeleteTeam);
        req.team_id = Some(y_id);
        match self.write(&req).await {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        self.mirror.forget(&job.key);
        Ok(Done::Ok)
    }

    async fn add_member(&self, job: &Job) -> Attempt {
        if !self.holds.members {
            return Ok(Done::Skipped);
        }
        let Some(y_id) = self.counterpart(&job.key, None).await? else {
            return Ok(Done::Unmatched);
        };
        let member = job.answer.json().unwrap_or_default();
        let Some(email) = self.email_of(&member, job).await? else {
            return Ok(Done::Unmatched);
        };
        let role = member["role"]
            .as_str()
            .or_else(|| job.request.input.get("role").and_then(Value::as_str))
            .unwrap_or("member");
        self.add(&y_id, &email, role).await?;
        Ok(Done::Ok)
    }

    async fn update_member(&self, job: &Job) -> Attempt {
        if !(self.holds.roles && self.holds.update_member) {
            return Ok(Done::Skipped);
        }
        let Some(y_id) = self.counterpart(&job.key, None).await? else {
            return Ok(Done::Unmatched);
        };
        let member = job.answer.json().unwrap_or_default();
        let Some(email) = self.email_of(&member, job).await? else {
            return Ok(Done::Unmatched);
        };
        let Some(role) = member["role"]
            .as_str()
            .or_else(|| job.request.input.get("role").and_then(Value::as_str))
        else {
            return Ok(Done::Skipped);
        };
        let present = self.members(&self.y, &y_id).await?;
        let Some(there) = present.iter().find(|m| m.email.as_deref() == Some(&email)) else {
            return Ok(Done::Unmatched);
        };
        if there.role != role {
            self.write(&member_request(
                Operation::UpdateMember,
                &y_id,
                &there.user_id,
                Some(role),
            ))
            .await?;
        }
        Ok(Done::Ok)
    }

    async fn remove_member(&self, job: &Job) -> Attempt {
        if !(self.holds.members && self.holds.remove_member) {
            return Ok(Done::Skipped);
        }
        let Some(y_id) = self.counterpart(&job.key, None).await? else {
            return Ok(Done::Unmatched);
        };
        let user = job.request.user_id.as_deref().unwrap_or_default();
        let Some(email) = self.mirror.primary_email(user).await? else {
            return Ok(Done::Unmatched);
        };
        let present = self.members(&self.y, &y_id).await?;
        let Some(there) = present.iter().find(|m| m.email.as_deref() == Some(&email)) else {
            return Ok(Done::Ok);
        };
        self.remove(&y_id, &there.user_id).await?;
        Ok(Done::Ok)
    }

    /// Adds `email` to the mirror's team `y_id` with `role` (where the mirror has roles),
    /// fixing the role of someone already there.
    async fn add(&self, y_id: &str, email: &str, role: &str) -> Result<(), Failure> {
        let mut req = CanonicalRequest::new(Operation::AddMember);
        req.team_id = Some(y_id.to_string());
        req.input
            .insert("email".into(), Value::String(email.into()));
        if self.holds.roles {
            req.input.insert("role".into(), Value::String(role.into()));
        }
        let added = match self.write(&req).await {
            Ok(answer) => answer.json().unwrap_or_default(),
            // Refused, yet perhaps because an earlier attempt whose answer was lost added them
            // (a vendor's "already there" can come back unreadable too): look before failing.
            Err(e) if !(e.retryable() || e.outcome_unknown()) => {
                let present = self.members(&self.y, y_id).await?;
                match present.iter().find(|m| m.email.as_deref() == Some(email)) {
                    Some(there) => {
                        serde_json::json!({"user_id": there.user_id, "role": there.role})
                    }
                    None => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let now = added["role"].as_str().unwrap_or(role);
        if self.holds.roles && self.holds.update_member && now != role {
            if let Some(user) = added["user_id"].as_str() {
                self.write(&member_request(
                    Operation::UpdateMember,
                    y_id,
                    user,
                    Some(role),
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn remove(&self, y_id: &str, user_id: &str) -> Result<(), Failure> {
        let req = member_request(Operation::RemoveMember, y_id, user_id, None);
        match self.write(&req).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes the mirror's members of `y_id` those of the primary's team `x_id`, by email
    /// (roles where the mirror has them). Members without an email are left alone.
    async fn sync_members(&self, x_id: &str, y_id: &str) -> Result<(), Failure> {
        if !(self.holds.members && self.x.holds().members) {
            return Ok(());
        }
        let want = match self.members(&self.x, x_id).await {
            Ok(want) => want,
            // Deleted on the primary since: its deletion is the team's next job.
            Err(e) if e.code == ErrorCode::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let have = self.members(&self.y, y_id).await?;
        let have_by: BTreeMap<&str, _> = have
            .iter()
            .filter_map(|m| Some((m.email.as_deref()?, m)))
            .collect();
        let want_by: BTreeMap<&str, _> = want
            .iter()
            .filter_map(|m| Some((m.email.as_deref()?, m)))
            .collect();
        for (email, member) in &want_by {
            match have_by.get(email) {
                None => self.add(y_id, email, &member.role).await?,
                Some(there)
                    if self.holds.roles
                        && self.holds.update_member
                        && there.role != member.role =>
                {
                    self.write(&member_request(
                        Operation::UpdateMember,
                        y_id,
                        &there.user_id,
                        Some(&member.role),
                    ))
                    .await?;
                }
                Some(_) => {}
            }
        }
        if self.holds.remove_member {
            for (email, there) in &have_by {
                if !want_by.contains_key(email) {
                    self.remove(y_id, &there.user_id).await?;
                }
            }
        }
        Ok(())
    }

    /// The team fields of a create or update the mirror can hold: `name`, and the carried
    /// fields it has, the parent as the mirror's id of the parent team.
    async fn fields(&self, input: &Map<String, Value>) -> Result<Map<String, Value>, Failure> {
        let mut out = Map::new();
        for (field, value) in input {
            let carried = field == "name" || self.holds.has(field);
            if !carried || field == "members" {
                continue;
            }
            if field == "parent_id" {
                let parent = match value.as_str() {
                    None => Value::Null,
                    Some(x_parent) => match self.counterpart(x_parent, None).await? {
                        Some(y_parent) => Value::String(y_parent),
                        None => {
                            return Err(Failure::Retry(Error::new(
                                ErrorCode::NotFound,
                                "the parent team is not on the mirror (yet)",
                            )))
                        }
                    },
                };
                out.insert(field.clone(), parent);
            } else {
                out.insert(field.clone(), value.clone());
            }
        }
        Ok(out)
    }

    /// The mirror's team paired with the primary's team `x_id`: remembered, else found by
    /// name (`name`, or the primary's team's name, read from the primary).
    pub(super) async fn counterpart(
        &self,
        x_id: &str,
        name: Option<&str>,
    ) -> Result<Option<String>, Failure> {
        if let Some(y_id) = self.mirror.pair(x_id) {
            return Ok(Some(y_id));
        }
        let name = match name {
            Some(name) => name.to_string(),
            None => {
                let mut req = CanonicalRequest::new(Operation::GetTeam);
                req.team_id = Some(x_id.to_string());
                match self.call(&self.x, &req).await {
                    Ok(answer) => match answer
                        .json()
                        .and_then(|b| b["name"].as_str().map(str::to_string))
                    {
                        Some(name) => name,
                        None => return Ok(None),
                    },
                    Err(e) if e.code == ErrorCode::NotFound => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let found = self.find_by_name(&name).await?;
        if let Some(y_id) = &found {
            self.mirror.remember(x_id, y_id);
        }
        Ok(found)
    }

    /// The mirror's team named exactly `name`. Not the case-insensitive fallback of
    /// `migrate`: one team at a time, the mirror cannot tell whether another team of the
    /// primary folds to the same name, and two teams of the primary must never share one.
    async fn find_by_name(&self, name: &str) -> Result<Option<String>, Error> {
        let mut req = CanonicalRequest::new(Operation::ListTeams);
        req.query.insert("name".into(), name.to_string());
        req.page = Some(PageRequest {
            limit: self.y_page_size(),
            offset: 0,
        });
        let body = self.call(&self.y, &req).await?.json().unwrap_or_default();
        let teams: Vec<(&str, &str)> = body["teams"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| Some((t["name"].as_str()?, t["id"].as_str()?)))
            .collect();
        Ok(teams
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| id.to_string()))
    }

    fn y_page_size(&self) -> usize {
        self.mirror
            .backends
            .get(&self.y.name)
            .map_or(50, |s| s.backend.mapping.limits.page_size_max.min(100))
    }

    /// The email of the member a job's answer names (lower-cased): in the answer, else by the
    /// primary's people lookup.
    async fn email_of(&self, member: &Value, job: &Job) -> Result<Option<String>, Failure> {
        if let Some(email) = member["email"].as_str().filter(|e| !e.is_empty()) {
            return Ok(Some(email.to_lowercase()));
        }
        if let Some(email) = job.request.input.get("email").and_then(Value::as_str) {
            return Ok(Some(email.to_lowercase()));
        }
        let user = member["user_id"]
            .as_str()
            .or(job.request.user_id.as_deref())
            .or_else(|| job.request.input.get("user_id").and_then(Value::as_str));
        match user {
            Some(user) => Ok(self.mirror.primary_email(user).await?),
            None => Ok(None),
        }
    }
}

fn update(y_id: &str, fields: Map<String, Value>) -> CanonicalRequest {
    let mut req = CanonicalRequest::new(Operation::UpdateTeam);
    req.team_id = Some(y_id.to_string());
    req.input = fields;
    req
}

fn member_request(op: Operation, team: &str, user: &str, role: Option<&str>) -> CanonicalRequest {
    let mut req = CanonicalRequest::new(op);
    req.team_id = Some(team.to_string());
    req.user_id = Some(user.to_string());
    if let Some(role) = role {
        req.input.insert("role".into(), Value::String(role.into()));
    }
    req
}
