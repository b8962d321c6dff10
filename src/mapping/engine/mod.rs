//! The mapping engine: runs a canonical request on one backend through its compiled mapping.
//!
//! For each operation it checks the backend's declared limits, builds the operation context,
//! runs the declared steps (HTTP calls) in order, turns vendor errors into canonical ones with
//! the mapping's tables, and reads the canonical answer out of the vendor answers. By concern:
//!
//! - this file: the backend, the operation dispatch, limits and the expression context;
//! - [`auth`]: credentials (configured or forwarded), fingerprints, access tokens;
//! - [`steps`]: building vendor requests from a step, sending them, reading the answers;
//! - [`lists`]: paged lists and the canonical filters;
//! - [`members`]: member changes (direct, checked, read-modify-write) and email lookups;
//! - [`people`]: members' details (email, username) filled in by the `[people]` lookup;
//! - [`teams`]: the canonical team read out of vendor answers;
//! - [`locks`]: the per-team locks of read-modify-write.
//!
//! The context every expression reads:
//!
//! ```text
//! $.path.id / $.path.user      path parameters      $.input.*     validated body
//! $.query.name|q|email         list filters         $.page.number|size|offset
//! $.options.*                  backend options      $.steps.<name>.status|body
//! $.current / $.merged         (update with `read`) $.member_ids  (member styles)
//! ```
//!
//! Read-modify-write operations (`read`, member styles) hold a per-team lock for their whole
//! run, so two writes through this process cannot lose each other's change.

mod auth;
mod lists;
mod locks;
mod members;
mod people;
mod steps;
mod teams;

use std::sync::Arc;

use serde_json::{Map, Value};

use super::expr::ConvertError;
use super::template::encode_component;
use super::{Mapping, OperationPlan};
use crate::call::Secret;
use crate::canonical::{CanonicalRequest, CanonicalResponse, Operation};
use crate::error::{Error, ErrorCode, Origin};
use crate::metrics::Metrics;
use crate::upstream::Upstream;
use auth::Tokens;
use locks::TeamLocks;
pub use steps::with_trace;
use teams::merge;

/// Canonical team members, in output order.
pub const TEAM_FIELDS: &[&str] = &[
    "id",
    "name",
    "description",
    "email",
    "parent_id",
    "member_count",
    "members",
    "created_at",
    "updated_at",
];

/// One configured backend: a mapping, where the vendor is, and how to reach it.
pub struct Backend {
    pub name: String,
    pub mapping: Arc<Mapping>,
    base_url: String,
    credential: Secret,
    options: Value,
    upstream: Upstream,
    metrics: Arc<Metrics>,
    /// Shared with the backend's successors after a mapping reload, so that a read-modify-write
    /// in flight still excludes the next one, and tokens survive the reload.
    locks: Arc<TeamLocks>,
    /// Access tokens of two-step auth, one slot per credential fingerprint.
    tokens: Arc<Tokens>,
    /// Keys credential fingerprints; random per process, so they reveal nothing.
    fingerprints: std::collections::hash_map::RandomState,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name)
            .field("vendor", &self.mapping.vendor)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Whether a step list ended normally or on an `already_done` vendor error.
enum Flow {
    Done,
    AlreadyDone,
}

type Ctx = Value;

impl Backend {
    pub fn new(
        name: String,
        mapping: Arc<Mapping>,
        base_url: &str,
        credential: Secret,
        options: Map<String, Value>,
        upstream: Upstream,
        metrics: Arc<Metrics>,
    ) -> Backend {
        Backend {
            name,
            mapping,
            base_url: base_url.trim_end_matches('/').to_string(),
            credential,
            options: Value::Object(options),
            upstream,
            metrics,
            locks: Arc::new(TeamLocks::default()),
            tokens: Arc::new(Tokens::default()),
            fingerprints: std::collections::hash_map::RandomState::new(),
        }
    }

    /// The same backend (vendor address, credential, transport, locks, tokens) speaking
    /// through another mapping: what a mapping reload swaps in.
    pub fn with_mapping(&self, mapping: Arc<Mapping>) -> Backend {
        Backend {
            name: self.name.clone(),
            mapping,
            base_url: self.base_url.clone(),
            credential: self.credential.clone(),
            options: self.options.clone(),
            upstream: self.upstream.clone(),
            metrics: self.metrics.clone(),
            locks: self.locks.clone(),
            tokens: self.tokens.clone(),
            fingerprints: self.fingerprints.clone(),
        }
    }

    /// Runs one canonical request with the backend's configured credential.
    pub async fn execute(&self, req: &CanonicalRequest) -> Result<CanonicalResponse, Error> {
        self.execute_inner(req)
            .await
            .map_err(|p| p.with_backend(&self.name))
    }

    /// Runs one canonical request with a credential the caller forwarded (multi-tenant use).
    /// A vendor's 401/403 is then the caller's: `unauthenticated` / `forbidden`.
    pub async fn execute_as(
        &self,
        req: &CanonicalRequest,
        credential: Secret,
    ) -> Result<CanonicalResponse, Error> {
        let result = auth::with_forwarded(credential, self.execute_inner(req)).await;
        result.map_err(|mut p| {
            let vendor_status = p.upstream.as_ref().map(|u| u.status);
            if p.code == ErrorCode::UpstreamError {
                match vendor_status {
                    Some(401) => p.code = ErrorCode::Unauthenticated,
                    Some(403) => p.code = ErrorCode::Forbidden,
                    _ => {}
                }
            }
            p.with_backend(&self.name)
        })
    }

    async fn execute_inner(&self, req: &CanonicalRequest) -> Result<CanonicalResponse, Error> {
        let response = self.run_operation(req).await?;
        Ok(self.mask_secrets(response))
    }

    async fn run_operation(&self, req: &CanonicalRequest) -> Result<CanonicalResponse, Error> {
        let plan = self.plan(req.op)?;
        self.check_limits(req)?;
        let mut ctx = self.context(req);
        let caller = req.op;
        match req.op {
            Operation::ListTeams if self.looks_people_up() => {
                let page = self.list(plan, req, &mut ctx, caller).await?;
                self.fill_listed_people(page, caller).await
            }
            Operation::ListTeams | Operation::ListUsers => {
                self.list(plan, req, &mut ctx, caller).await
            }
            Operation::GetTeam => {
                self.run_steps(plan, &mut ctx, caller).await?;
                let mut team = self.team_from(plan, &ctx, req.include_vendor)?;
                let partial = self.fill_team_people(&mut team, caller).await?;
                let mut answer = CanonicalResponse::ok(team);
                answer.partial = partial;
                Ok(answer)
            }
            Operation::CreateTeam => {
                self.run_steps(plan, &mut ctx, caller).await?;
                let (mut team, mut partial) = self.created_team(plan, &ctx, req).await?;
                // The team exists now: a failed lookup makes the answer partial, not an error.
                partial |= self
                    .fill_team_people(&mut team, caller)
                    .await
                    .unwrap_or(true);
                let location = team["id"]
                    .as_str()
                    .map(|id| format!("/v1/teams/{}", encode_component(id)));
                let mut created = CanonicalResponse::with_status(201, team);
                created.location = location;
                created.partial = partial;
                Ok(created)
            }
            Operation::UpdateTeam => {
                let _guard = self.lock_team(req).await;
                if let Some(read) = plan.read {
                    let read_plan = self.plan(read)?;
                    self.run_steps(read_plan, &mut ctx, caller).await?;
                    // The whole team, leftovers too: the update's templates may need them.
                    let current = self.team_from(read_plan, &ctx, true)?;
                    let merged = merge(&current, &req.input);
                    ctx["current"] = current;
                    ctx["merged"] = merged;
                }
                self.run_steps(plan, &mut ctx, caller).await?;
                let mut team = self
                    .team_result(plan, &ctx, caller, req.include_vendor)
                    .await?;
                let partial = self
                    .fill_team_people(&mut team, caller)
                    .await
                    .unwrap_or(true);
                let mut answer = CanonicalResponse::ok(team);
                answer.partial = partial;
                Ok(answer)
            }
            Operation::DeleteTeam => {
                self.run_steps(plan, &mut ctx, caller).await?;
                Ok(CanonicalResponse::no_content())
            }
            Operation::ListMembers => {
                self.run_steps(plan, &mut ctx, caller).await?;
                let mut members = self.members_from(plan, &mut ctx, req.include_vendor)?;
                let partial = self
                    .fill_people(members.iter_mut().collect(), caller)
                    .await?;
                let mut answer =
                    CanonicalResponse::ok(object([("members", Value::Array(members))]));
                answer.partial = partial;
                Ok(answer)
            }
            Operation::AddMember | Operation::UpdateMember => {
                self.change_member(plan, req, &mut ctx).await
            }
            Operation::RemoveMember => self.remove_member(plan, req, &mut ctx).await,
        }
    }

    fn plan(&self, op: Operation) -> Result<&OperationPlan, Error> {
        self.mapping.plan(op).ok_or_else(|| {
            Error::new(
                ErrorCode::UnsupportedOperation,
                format!(
                    "backend `{}` ({}) cannot do {}",
                    self.name,
                    self.mapping.vendor,
                    op.name()
                ),
            )
        })
    }

    /// The backend's own limits, checked before any upstream call.
    fn check_limits(&self, req: &CanonicalRequest) -> Result<(), Error> {
        let limits = &self.mapping.limits;
        if let (Some(pattern), Some(id)) = (&limits.team_id_pattern, &req.team_id) {
            if !pattern.is_match(id) {
                return Err(Error::not_found(format!("no team with id {id:?}")));
            }
        }
        if matches!(req.op, Operation::CreateTeam | Operation::UpdateTeam) {
            for key in req.input.keys() {
                if !self.mapping.team.has(key) {
                    return Err(Error::invalid(format!(
                        "field `{key}` is not supported by backend `{}` ({})",
                        self.name, self.mapping.vendor
                    )));
                }
                if !self.mapping.team.writable(key) {
                    return Err(Error::invalid(format!(
                        "field `{key}` is read-only on backend `{}` ({}): it is shown, but \
                         the vendor's API cannot set it",
                        self.name, self.mapping.vendor
                    )));
                }
            }
            if let Some(name) = req.input.get("name").and_then(Value::as_str) {
                let length = name.chars().count();
                if length > limits.name_max {
                    return Err(Error::invalid(format!(
                        "`name` is longer than {} characters, the limit of backend `{}` ({length})",
                        limits.name_max, self.name
                    )));
                }
            }
            if let Some(d) = req.input.get("description").and_then(Value::as_str) {
                if d.chars().count() > limits.description_max {
                    return Err(Error::invalid(format!(
                        "`description` is longer than {} characters, the limit of backend `{}`",
                        limits.description_max, self.name
                    )));
                }
            }
        }
        let listed_roles = req
            .input
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("role").and_then(Value::as_str));
        for role in req
            .input
            .get("role")
            .and_then(Value::as_str)
            .into_iter()
            .chain(listed_roles)
        {
            let can = self.mapping.member.vendor_role(role).is_some();
            if !can && (role != "member" || req.op == Operation::UpdateMember) {
                return Err(Error::invalid(format!(
                    "backend `{}` ({}) has no member role `{role}`",
                    self.name, self.mapping.vendor
                )));
            }
        }
        Ok(())
    }

    fn context(&self, req: &CanonicalRequest) -> Ctx {
        let mut input = Value::Object(req.input.clone());
        if let Some(role) = req.input.get("role").and_then(Value::as_str) {
            if let Some(vendor) = self.mapping.member.vendor_role(role) {
                input["vendor_role"] = vendor;
            }
        } else if let Some(vendor) = self.mapping.member.vendor_role("member") {
            input["vendor_role"] = vendor;
        }
        // A full member list: each entry gets its role in the vendor's terms, and the ids
        // come as a plain list too (`$.input.member_ids`).
        if let Some(members) = input.get_mut("members").and_then(Value::as_array_mut) {
            let mut ids = Vec::with_capacity(members.len());
            for member in members.iter_mut() {
                let role = member
                    .get("role")
                    .and_then(Value::as_str)
                    .unwrap_or("member");
                if let Some(vendor) = self.mapping.member.vendor_role(role) {
                    member["vendor_role"] = vendor;
                }
                ids.push(member["user_id"].clone());
            }
            input["member_ids"] = Value::Array(ids);
        }
        let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
        let query = req
            .query
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        object([
            (
                "path",
                object([("id", text(&req.team_id)), ("user", text(&req.user_id))]),
            ),
            ("query", Value::Object(query)),
            ("input", input),
            ("options", self.options.clone()),
            ("steps", Value::Object(Map::new())),
        ])
    }
}

/// A JSON object of these members, moved in. (`json!` would serialise every value it is
/// given into a new tree: a deep copy of a whole vendor answer.)
pub(super) fn object<const N: usize>(members: [(&str, Value); N]) -> Value {
    let mut map = Map::with_capacity(N);
    for (key, value) in members {
        map.insert(key.to_string(), value);
    }
    Value::Object(map)
}

/// The plan's `fields` of one listed vendor object, read with it in the context as `$.item`
/// (moved in and out, not copied). The object comes back with them.
pub(super) fn item_fields(
    plan: &OperationPlan,
    ctx: &mut Ctx,
    item: Value,
) -> (Value, Vec<(&'static str, Value)>) {
    if plan.fields.fields.is_empty() {
        return (item, Vec::new());
    }
    ctx["item"] = item;
    let values = plan
        .fields
        .fields
        .iter()
        .map(|f| (f.name, f.read_value(ctx)))
        .collect();
    let item = ctx
        .as_object_mut()
        .and_then(|c| c.remove("item"))
        .unwrap_or(Value::Null);
    (item, values)
}

/// A value that does not convert for this vendor: from the path it names nothing there
/// (`abc` is no team id on a vendor with integer ids); from the body it is invalid here.
fn convert_problem(e: ConvertError) -> Error {
    if e.root == "path" {
        Error::not_found("no resource with that id on this backend")
    } else {
        Error::invalid(format!(
            "a value cannot be sent to this backend: {}",
            e.reason
        ))
    }
}

/// The vendor answered something teamgate cannot read.
fn bad_answer(detail: &str) -> Error {
    Error::new(ErrorCode::UpstreamError, detail.to_string()).from_origin(Origin::Vendor)
}
