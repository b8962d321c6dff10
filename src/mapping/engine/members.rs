//! Members: adding, changing and removing a member, in the vendor's style (a direct call, a
//! call after checking the current list, or a read-modify-write of the whole list), email →
//! user id lookups, and canonical members read out of vendor answers.

use serde_json::{json, Value};

use super::{bad_answer, item_fields, Backend, Ctx, Flow};
use crate::canonical::{CanonicalRequest, CanonicalResponse, Operation, PageRequest};
use crate::error::{Error, ErrorCode, Origin};
use crate::mapping::fields::MEMBER_FIELDS;
use crate::mapping::{MemberStyle, OperationPlan};

impl Backend {
    pub(super) async fn change_member(
        &self,
        plan: &OperationPlan,
        req: &CanonicalRequest,
        ctx: &mut Ctx,
    ) -> Result<CanonicalResponse, Error> {
        let caller = req.op;
        let user_id = match (
            &req.user_id,
            req.input.get("user_id").and_then(Value::as_str),
        ) {
            (Some(path_user), _) => path_user.clone(),
            (None, Some(id)) => id.to_string(),
            (None, None) => self.resolve_email(plan, req).await?,
        };
        ctx["input"]["user_id"] = Value::String(user_id.clone());
        let _guard = self.lock_team(req).await;
        let mut already = false;
        // A canonical role that stands for several vendor roles (member = responder or
        // observer): setting it on someone who already holds one of them must not rewrite
        // their vendor role, so the current list is read first.
        let requested_role = req.input.get("role").and_then(Value::as_str);
        let role_is_shared = req.op == Operation::UpdateMember
            && requested_role.is_some_and(|r| self.mapping.member.vendor_roles(r).len() > 1);
        let current = match plan.style {
            MemberStyle::Direct if !role_is_shared => None,
            _ => Some(self.current_members(ctx, caller).await?),
        };
        let found = current
            .as_ref()
            .map(|members| members.iter().find(|m| m["user_id"] == user_id.as_str()));
        let present = found.map(|m| m.is_some());
        if req.op == Operation::UpdateMember && present == Some(false) {
            return Err(not_a_member(&user_id, req));
        }
        let holds_role = found
            .flatten()
            .is_some_and(|m| requested_role.is_some_and(|r| m["role"] == r));
        if (req.op == Operation::AddMember && present == Some(true))
            || (req.op == Operation::UpdateMember && holds_role)
        {
            already = true;
        } else {
            if let (MemberStyle::MemberSet, Some(members)) = (plan.style, &current) {
                let mut ids: Vec<Value> = members.iter().map(|m| m["user_id"].clone()).collect();
                if present == Some(false) {
                    ids.push(Value::String(user_id.clone()));
                }
                ctx["member_ids"] = Value::Array(ids);
            }
            if let Flow::AlreadyDone = self.run_steps(plan, ctx, caller).await? {
                already = true;
            }
        }
        let mut member = self.member_after_change(req, &user_id).await?;
        // The change is made: a failed people lookup makes the answer partial, not an error.
        let partial = self
            .fill_people(vec![&mut member], caller)
            .await
            .unwrap_or(true);
        let status = if already || req.op == Operation::UpdateMember {
            200
        } else {
            201
        };
        let mut answer = CanonicalResponse::with_status(status, member);
        answer.partial = partial;
        Ok(answer)
    }

    pub(super) async fn remove_member(
        &self,
        plan: &OperationPlan,
        req: &CanonicalRequest,
        ctx: &mut Ctx,
    ) -> Result<CanonicalResponse, Error> {
        let caller = req.op;
        let user_id = req.user_id.clone().unwrap_or_default();
        let _guard = self.lock_team(req).await;
        if plan.style != MemberStyle::Direct {
            let current = self.current_members(ctx, caller).await?;
            if !current.iter().any(|m| m["user_id"] == user_id.as_str()) {
                return Err(not_a_member(&user_id, req));
            }
            let ids: Vec<Value> = current
                .iter()
                .map(|m| m["user_id"].clone())
                .filter(|id| *id != user_id.as_str())
                .collect();
            ctx["member_ids"] = Value::Array(ids);
        }
        self.run_steps(plan, ctx, caller).await?;
        Ok(CanonicalResponse::no_content())
    }

    /// Runs `list_members` into this context (its step answers stay readable) and returns the
    /// canonical members.
    pub(super) async fn current_members(
        &self,
        ctx: &mut Ctx,
        caller: Operation,
    ) -> Result<Vec<Value>, Error> {
        let list = self.plan(Operation::ListMembers)?;
        self.run_steps(list, ctx, caller).await?;
        self.members_from(list, ctx, false)
    }

    /// The member as the vendor now has it, read back from a fresh member list.
    pub(super) async fn member_after_change(
        &self,
        req: &CanonicalRequest,
        user_id: &str,
    ) -> Result<Value, Error> {
        let caller = req.op;
        let mut list_req = CanonicalRequest::new(Operation::ListMembers);
        list_req.team_id = req.team_id.clone();
        let mut ctx = self.context(&list_req);
        let list = self.plan(Operation::ListMembers)?;
        self.run_steps(list, &mut ctx, caller).await?;
        let members = self.members_from(list, &mut ctx, req.include_vendor)?;
        members
            .into_iter()
            .find(|m| m["user_id"] == user_id)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::UpstreamError,
                    format!("the backend accepted the change but does not list user {user_id:?} in the team"),
                )
            })
    }

    pub(super) async fn resolve_email(
        &self,
        plan: &OperationPlan,
        req: &CanonicalRequest,
    ) -> Result<String, Error> {
        let email = req
            .input
            .get("email")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let caller = req.op;
        let Some(via) = plan.resolve_user else {
            return Err(Error::invalid(format!(
                "backend `{}` cannot look users up by email; give `user_id`",
                self.name
            )));
        };
        let mut lookup = CanonicalRequest::new(via);
        lookup.query.insert("email".into(), email.to_string());
        lookup.page = Some(PageRequest {
            limit: self.mapping.limits.page_size_max,
            offset: 0,
        });
        let mut ctx = self.context(&lookup);
        let answer = self
            .list(self.plan(via)?, &lookup, &mut ctx, caller)
            .await?;
        answer
            .json()
            .as_ref()
            .and_then(|b| b["users"].as_array())
            .and_then(|users| users.first())
            .and_then(|u| u["id"].as_str())
            .map(str::to_string)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "no user with email {email:?} on backend `{}`",
                    self.name
                ))
            })
    }

    /// The canonical members of a member list answer; with `leftovers`, each with `vendor`.
    pub(super) fn members_from(
        &self,
        plan: &OperationPlan,
        ctx: &mut Ctx,
        leftovers: bool,
    ) -> Result<Vec<Value>, Error> {
        self.items(plan, ctx)
            .into_iter()
            .map(|item| {
                self.refuse_unknown_role(&item)?;
                let (item, from_steps) = item_fields(plan, ctx, item);
                let mut member = self
                    .mapping
                    .member
                    .read(item, MEMBER_FIELDS, None, leftovers);
                for (name, value) in from_steps {
                    member[name] = value;
                }
                Ok(member)
            })
            .map(|m: Result<Value, Error>| {
                let mut m = m?;
                if !m["user_id"].is_string() {
                    return Err(bad_answer("a listed member has no user id"));
                }
                if m["role"].is_null() {
                    m["role"] = json!("member");
                }
                Ok(m)
            })
            .collect()
    }
}

pub(super) fn not_a_member(user_id: &str, req: &CanonicalRequest) -> Error {
    Error::not_found(format!(
        "user {user_id:?} is not a member of team {:?}",
        req.team_id.as_deref().unwrap_or_default()
    ))
    .from_origin(Origin::Vendor)
}
