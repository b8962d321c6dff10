//! Teams: the canonical team read out of a vendor answer (or out of the follow-up read a
//! create or update declares), hidden (soft-deleted) teams, and the merge of a PATCH into
//! the current team for read-modify-write updates.

use serde_json::{json, Map, Value};

use super::{bad_answer, Backend, Ctx, TEAM_FIELDS};
use crate::canonical::{CanonicalRequest, Operation};
use crate::error::{Error, Origin};
use crate::mapping::OperationPlan;

impl Backend {
    /// The answer of a create or update: the follow-up operation's team, or the team in the
    /// vendor's own answer.
    /// The team a create made. The vendor has committed it by now: when only the follow-up
    /// read fails, the answer is still the created team — its id and the fields the caller
    /// sent, the rest null — marked partial, never an error a client would retry.
    pub(super) async fn created_team(
        &self,
        plan: &OperationPlan,
        ctx: &Ctx,
        req: &CanonicalRequest,
    ) -> Result<(Value, bool), Error> {
        let Some(id) = self.new_team_id(plan, ctx) else {
            return Ok((
                self.team_result(plan, ctx, req.op, req.include_vendor)
                    .await?,
                false,
            ));
        };
        match self
            .team_result(plan, ctx, req.op, req.include_vendor)
            .await
        {
            Ok(team) => Ok((team, false)),
            Err(error) => {
                tracing::warn!(
                    backend = %self.name,
                    code = error.code.as_str(),
                    "A team was created but reading it back failed; answering what is known"
                );
                let mut team = Map::new();
                for field in TEAM_FIELDS {
                    let known = match *field {
                        "id" => Value::String(id.clone()),
                        _ => req.input.get(*field).cloned().unwrap_or(Value::Null),
                    };
                    team.insert((*field).to_string(), known);
                }
                team.remove("members");
                team.insert("backend".into(), Value::String(self.name.clone()));
                if req.include_vendor {
                    team.insert("vendor".into(), Value::Object(Map::new()));
                }
                Ok((Value::Object(team), true))
            }
        }
    }

    /// The id in the vendor's answer to a create that declares a follow-up read.
    fn new_team_id(&self, plan: &OperationPlan, ctx: &Ctx) -> Option<String> {
        if plan.then != Some(Operation::GetTeam) {
            return None;
        }
        plan.id
            .as_ref()?
            .eval(ctx)
            .ok()
            .flatten()
            .and_then(|v| match v {
                Value::String(s) => Some(s),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    }

    pub(super) async fn team_result(
        &self,
        plan: &OperationPlan,
        ctx: &Ctx,
        caller: Operation,
        leftovers: bool,
    ) -> Result<Value, Error> {
        match (plan.then, &plan.id) {
            (Some(Operation::GetTeam), Some(_)) => {
                let id = self
                    .new_team_id(plan, ctx)
                    .ok_or_else(|| bad_answer("the answer has no team id"))?;
                let mut get = CanonicalRequest::new(Operation::GetTeam);
                get.team_id = Some(id);
                let get_plan = self.plan(Operation::GetTeam)?;
                let mut get_ctx = self.context(&get);
                self.run_steps(get_plan, &mut get_ctx, caller).await?;
                self.team_from(get_plan, &get_ctx, leftovers)
            }
            _ => self.team_from(plan, ctx, leftovers),
        }
    }

    pub(super) fn team_from(
        &self,
        plan: &OperationPlan,
        ctx: &Ctx,
        leftovers: bool,
    ) -> Result<Value, Error> {
        let object = plan
            .team
            .as_ref()
            .and_then(|e| e.eval(ctx).ok().flatten())
            .filter(Value::is_object)
            .ok_or_else(|| bad_answer("the answer has no team object"))?;
        if self.is_hidden(&object) {
            return Err(Error::not_found("the team does not exist (it was deleted)")
                .from_origin(Origin::Vendor));
        }
        self.refuse_unknown_roles(&object)?;
        let mut team = self.read_team(object, leftovers);
        // Fields read from the operation's other steps (a member count from a members call).
        for field in &plan.fields.fields {
            team[field.name] = field.read_value(ctx);
        }
        // A team without an id or a name is not a team: an error in words this mapping does
        // not know (inside HTTP 200, say), not an answer to pass on.
        if !(team["id"].is_string() && team["name"].is_string()) {
            return Err(bad_answer("the answer's team has no id or no name"));
        }
        Ok(team)
    }

    /// The canonical team of a vendor team object; with `leftovers`, its `vendor` object too.
    pub(super) fn read_team(&self, object: Value, leftovers: bool) -> Value {
        let member_map = Some(&self.mapping.member);
        let mut team = self
            .mapping
            .team
            .read(object, TEAM_FIELDS, member_map, leftovers);
        if team["member_count"].is_null() {
            if let Some(members) = team.get("members").and_then(Value::as_array) {
                team["member_count"] = json!(members.len());
            }
        }
        if let Some(members) = team.get_mut("members").and_then(Value::as_array_mut) {
            for m in members {
                if m["role"].is_null() {
                    m["role"] = json!("member");
                }
            }
        }
        if let Some(map) = team.as_object_mut() {
            let vendor = map.remove("vendor");
            map.insert("backend".into(), Value::String(self.name.clone()));
            if let Some(vendor) = vendor {
                map.insert("vendor".into(), vendor);
            }
        }
        team
    }

    /// With `unknown = "refuse"` on the member role: an inline member whose vendor role the
    /// mapping does not list makes the answer an upstream error naming the role.
    pub(super) fn refuse_unknown_roles(&self, team: &Value) -> Result<(), Error> {
        let Some(members) = self.mapping.team.get("members") else {
            return Ok(());
        };
        for list in members.path.select(team) {
            for member in list.as_array().into_iter().flatten() {
                self.refuse_unknown_role(member)?;
            }
        }
        Ok(())
    }

    /// The same for one vendor member.
    pub(super) fn refuse_unknown_role(&self, member: &Value) -> Result<(), Error> {
        match self.mapping.member.refused_role(member) {
            None => Ok(()),
            Some(role) => Err(bad_answer(&format!(
                "a member has the vendor role {role}, which this backend's mapping does not \
                 list (its role map says `unknown = \"refuse\"`)"
            ))),
        }
    }

    pub(super) fn is_hidden(&self, team: &Value) -> bool {
        self.mapping
            .team_hidden_if
            .as_ref()
            .and_then(|e| e.eval(team).ok().flatten())
            .is_some_and(|v| v != Value::Bool(false))
    }
}

/// The input merged into the current team (JSON merge patch: `null` removes).
pub(super) fn merge(current: &Value, input: &Map<String, Value>) -> Value {
    let mut merged = current.clone();
    if let Some(map) = merged.as_object_mut() {
        for (key, value) in input {
            if value.is_null() {
                map.remove(key);
            } else {
                map.insert(key.clone(), value.clone());
            }
        }
    }
    merged
}
