//! The mapping engine: runs a canonical request on one backend through its compiled mapping.
//!
//! For each operation it checks the backend's declared limits, builds the operation context,
//! runs the declared steps (HTTP calls) in order, turns vendor errors into canonical ones with
//! the mapping's tables, and reads the canonical answer out of the vendor answers.
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

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Map, Value};

use super::errors::{classify, Outcome, VendorError};
use super::expr::{ConvertError, Expr};
use super::fields::{MEMBER_FIELDS, USER_FIELDS};
use super::template::{encode_component, Escape, Secrets};
use super::{Mapping, MemberStyle, OperationPlan, Paging, Step, TokenPlan};
use crate::canonical::{
    cursor, CanonicalRequest, CanonicalResponse, ErrorCode, Operation, PageRequest, Problem,
    UpstreamDetail,
};
use crate::metrics::{Metrics, UpstreamOutcome};
use crate::upstream::{Transport, UpstreamError, UpstreamRequest, UpstreamResponse};

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

/// A credential that never shows in `Debug` output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One configured backend: a mapping, where the vendor is, and how to reach it.
pub struct Backend {
    pub name: String,
    pub mapping: Arc<Mapping>,
    base_url: String,
    credential: Secret,
    options: Value,
    transport: Arc<dyn Transport>,
    metrics: Arc<Metrics>,
    /// Shared with the backend's successors after a mapping reload, so that a read-modify-write
    /// in flight still excludes the next one, and tokens survive the reload.
    locks: Arc<TeamLocks>,
    /// Access tokens of two-step auth, one per credential fingerprint.
    tokens: Arc<tokio::sync::Mutex<HashMap<u64, CachedToken>>>,
    /// Keys credential fingerprints; random per process, so they reveal nothing.
    fingerprints: std::collections::hash_map::RandomState,
}

/// Most access tokens kept (one per forwarded credential); the oldest go first past it.
const MAX_TOKENS: usize = 1024;

tokio::task_local! {
    /// The credential a caller forwarded, for the request being run. Scoped to the request's
    /// task so that no template can reach it and no other request can see it.
    static FORWARDED_CREDENTIAL: Secret;
}

/// A token is used for at most this long, whatever the vendor says.
const MAX_TOKEN_LIFETIME_SECS: u64 = 24 * 3600;
/// When the vendor does not say how long a token lives.
const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 300;

struct CachedToken {
    value: Secret,
    refresh_at: tokio::time::Instant,
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
        transport: Arc<dyn Transport>,
        metrics: Arc<Metrics>,
    ) -> Backend {
        Backend {
            name,
            mapping,
            base_url: base_url.trim_end_matches('/').to_string(),
            credential,
            options: Value::Object(options),
            transport,
            metrics,
            locks: Arc::new(TeamLocks::default()),
            tokens: Arc::new(tokio::sync::Mutex::new(HashMap::new())),
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
            transport: self.transport.clone(),
            metrics: self.metrics.clone(),
            locks: self.locks.clone(),
            tokens: self.tokens.clone(),
            fingerprints: self.fingerprints.clone(),
        }
    }

    /// Runs one canonical request with the backend's configured credential.
    pub async fn execute(&self, req: &CanonicalRequest) -> Result<CanonicalResponse, Problem> {
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
    ) -> Result<CanonicalResponse, Problem> {
        let result = FORWARDED_CREDENTIAL
            .scope(credential, self.execute_inner(req))
            .await;
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

    /// The credential of the request being run: the forwarded one, else the configured one.
    fn credential(&self) -> Secret {
        FORWARDED_CREDENTIAL
            .try_with(Secret::clone)
            .unwrap_or_else(|_| self.credential.clone())
    }

    /// A stable, non-reversible fingerprint of a credential (for cache keys and token slots).
    pub fn fingerprint(&self, credential: &Secret) -> u64 {
        self.fingerprints.hash_one(credential.expose())
    }

    /// The fingerprint of the configured credential.
    pub fn configured_fingerprint(&self) -> u64 {
        self.fingerprint(&self.credential)
    }

    async fn execute_inner(&self, req: &CanonicalRequest) -> Result<CanonicalResponse, Problem> {
        let plan = self.plan(req.op)?;
        self.check_limits(req)?;
        let mut ctx = self.context(req);
        let caller = req.op;
        match req.op {
            Operation::ListTeams | Operation::ListUsers => {
                self.list(plan, req, &mut ctx, caller).await
            }
            Operation::GetTeam => {
                self.run_steps(plan, &mut ctx, caller).await?;
                Ok(CanonicalResponse::ok(self.team_from(plan, &ctx)?))
            }
            Operation::CreateTeam => {
                self.run_steps(plan, &mut ctx, caller).await?;
                let team = self.team_result(plan, &ctx, caller).await?;
                let location = team["id"]
                    .as_str()
                    .map(|id| format!("/v1/teams/{}", encode_component(id)));
                Ok(CanonicalResponse {
                    status: 201,
                    body: Some(team),
                    location,
                })
            }
            Operation::UpdateTeam => {
                let _guard = self.lock_team(req).await;
                if let Some(read) = plan.read {
                    let read_plan = self.plan(read)?;
                    self.run_steps(read_plan, &mut ctx, caller).await?;
                    let current = self.team_from(read_plan, &ctx)?;
                    let merged = merge(&current, &req.input);
                    ctx["current"] = current;
                    ctx["merged"] = merged;
                }
                self.run_steps(plan, &mut ctx, caller).await?;
                Ok(CanonicalResponse::ok(
                    self.team_result(plan, &ctx, caller).await?,
                ))
            }
            Operation::DeleteTeam => {
                self.run_steps(plan, &mut ctx, caller).await?;
                Ok(CanonicalResponse::no_content())
            }
            Operation::ListMembers => {
                self.run_steps(plan, &mut ctx, caller).await?;
                let members = self.members_from(plan, &ctx)?;
                Ok(CanonicalResponse::ok(json!({ "members": members })))
            }
            Operation::AddMember | Operation::UpdateMember => {
                self.change_member(plan, req, &mut ctx).await
            }
            Operation::RemoveMember => self.remove_member(plan, req, &mut ctx).await,
        }
    }

    fn plan(&self, op: Operation) -> Result<&OperationPlan, Problem> {
        self.mapping.plan(op).ok_or_else(|| {
            Problem::new(
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
    fn check_limits(&self, req: &CanonicalRequest) -> Result<(), Problem> {
        let limits = &self.mapping.limits;
        if let (Some(pattern), Some(id)) = (&limits.team_id_pattern, &req.team_id) {
            if !pattern.is_match(id) {
                return Err(Problem::not_found(format!("no team with id {id:?}")));
            }
        }
        if matches!(req.op, Operation::CreateTeam | Operation::UpdateTeam) {
            for key in req.input.keys() {
                if !self.mapping.team.has(key) {
                    return Err(Problem::invalid(format!(
                        "field `{key}` is not supported by backend `{}` ({})",
                        self.name, self.mapping.vendor
                    )));
                }
            }
            if let Some(name) = req.input.get("name").and_then(Value::as_str) {
                let length = name.chars().count();
                if length > limits.name_max {
                    return Err(Problem::invalid(format!(
                        "`name` is longer than {} characters, the limit of backend `{}` ({length})",
                        limits.name_max, self.name
                    )));
                }
            }
            if let Some(d) = req.input.get("description").and_then(Value::as_str) {
                if d.chars().count() > limits.description_max {
                    return Err(Problem::invalid(format!(
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
                return Err(Problem::invalid(format!(
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
        json!({
            "path": { "id": req.team_id, "user": req.user_id },
            "query": req.query,
            "input": input,
            "options": self.options,
            "steps": {},
        })
    }

    async fn lock_team(&self, req: &CanonicalRequest) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let id = req.team_id.as_ref()?;
        Some(self.locks.get(id).lock_owned().await)
    }

    // ---- lists ---------------------------------------------------------------------------

    async fn list(
        &self,
        plan: &OperationPlan,
        req: &CanonicalRequest,
        ctx: &mut Ctx,
        caller: Operation,
    ) -> Result<CanonicalResponse, Problem> {
        let requested = req.page.unwrap_or(PageRequest {
            limit: crate::canonical::route::LIMIT_DEFAULT,
            offset: 0,
        });
        let size = requested.limit.min(self.mapping.limits.page_size_max);
        let offset = requested.offset;
        let (items, next) = match &plan.paging {
            Paging::Pages { total, has_more } => {
                // Offsets from our own cursors are multiples of the page size.
                ctx["page"] =
                    json!({ "number": offset / size + 1, "size": size, "offset": offset });
                self.run_steps(plan, ctx, caller).await?;
                let raw_len = self.items_len(plan, ctx);
                let more = match (has_more, total) {
                    // `true`, or any other value present (a `links.next` URL): more to come.
                    (Some(h), _) => h
                        .eval(ctx)
                        .ok()
                        .flatten()
                        .is_some_and(|v| v != Value::Bool(false)),
                    (None, Some(t)) => t
                        .eval(ctx)
                        .ok()
                        .flatten()
                        .and_then(|v| v.as_u64())
                        .is_some_and(|t| (offset + raw_len) < t as usize),
                    (None, None) => false,
                };
                let raw = self.take_items(plan, ctx);
                let items = self.list_items(req.op, raw, &req.query);
                (items, more && raw_len > 0)
            }
            Paging::All => {
                self.run_steps(plan, ctx, caller).await?;
                let raw = self.take_items(plan, ctx);
                let all = self.list_items(req.op, raw, &req.query);
                let more = all.len() > offset + size;
                let page = all.into_iter().skip(offset).take(size).collect();
                (page, more)
            }
        };
        let next_cursor = next.then(|| {
            cursor::encode(PageRequest {
                limit: size,
                offset: offset + size,
            })
        });
        let key = if req.op == Operation::ListTeams {
            "teams"
        } else {
            "users"
        };
        Ok(CanonicalResponse::ok(
            json!({ key: items, "next_cursor": next_cursor }),
        ))
    }

    fn items_len(&self, plan: &OperationPlan, ctx: &Ctx) -> usize {
        plan.items
            .as_ref()
            .map(|e| e.select(ctx).len())
            .unwrap_or(0)
    }

    /// The items, moved out of the context (a list's context is not read again).
    fn take_items(&self, plan: &OperationPlan, ctx: &mut Ctx) -> Vec<Value> {
        plan.items
            .as_ref()
            .map(|e| e.take_all(ctx))
            .unwrap_or_default()
    }

    fn items(&self, plan: &OperationPlan, ctx: &Ctx) -> Vec<Value> {
        plan.items
            .as_ref()
            .map(|e| e.select(ctx).into_iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Canonical list items, hidden teams removed and the canonical filters applied (vendors
    /// filter differently or not at all; the canonical meaning is the same on every backend).
    fn list_items(
        &self,
        op: Operation,
        raw: Vec<Value>,
        query: &std::collections::BTreeMap<String, String>,
    ) -> Vec<Value> {
        let lower = |k: &str| query.get(k).map(|v| v.to_lowercase());
        let (name, q, email) = (lower("name"), lower("q"), lower("email"));
        let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_lowercase();
        raw.into_iter()
            .filter_map(|item| match op {
                Operation::ListTeams => {
                    if self.is_hidden(&item) {
                        return None;
                    }
                    let team = self.read_team(item);
                    let keep = name.as_ref().is_none_or(|n| text(&team, "name") == *n)
                        && q.as_ref()
                            .is_none_or(|q| text(&team, "name").contains(q.as_str()));
                    keep.then_some(team)
                }
                _ => {
                    let user = self.mapping.user.read(item, USER_FIELDS, None);
                    let keep = email.as_ref().is_none_or(|e| text(&user, "email") == *e)
                        && q.as_ref().is_none_or(|q| {
                            ["email", "name", "username"]
                                .iter()
                                .any(|k| text(&user, k).contains(q.as_str()))
                        });
                    keep.then_some(user)
                }
            })
            .collect()
    }

    // ---- members -------------------------------------------------------------------------

    async fn change_member(
        &self,
        plan: &OperationPlan,
        req: &CanonicalRequest,
        ctx: &mut Ctx,
    ) -> Result<CanonicalResponse, Problem> {
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
        let current = match plan.style {
            MemberStyle::Direct => None,
            MemberStyle::Checked | MemberStyle::MemberSet => {
                Some(self.current_members(ctx, caller).await?)
            }
        };
        let present = current
            .as_ref()
            .map(|members| members.iter().any(|m| m["user_id"] == user_id.as_str()));
        if req.op == Operation::UpdateMember && present == Some(false) {
            return Err(not_a_member(&user_id, req));
        }
        if req.op == Operation::AddMember && present == Some(true) {
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
        let member = self.member_after_change(req, &user_id).await?;
        let status = if already || req.op == Operation::UpdateMember {
            200
        } else {
            201
        };
        Ok(CanonicalResponse {
            status,
            body: Some(member),
            location: None,
        })
    }

    async fn remove_member(
        &self,
        plan: &OperationPlan,
        req: &CanonicalRequest,
        ctx: &mut Ctx,
    ) -> Result<CanonicalResponse, Problem> {
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
    async fn current_members(
        &self,
        ctx: &mut Ctx,
        caller: Operation,
    ) -> Result<Vec<Value>, Problem> {
        let list = self.plan(Operation::ListMembers)?;
        self.run_steps(list, ctx, caller).await?;
        self.members_from(list, ctx)
    }

    /// The member as the vendor now has it, read back from a fresh member list.
    async fn member_after_change(
        &self,
        req: &CanonicalRequest,
        user_id: &str,
    ) -> Result<Value, Problem> {
        let caller = req.op;
        let mut list_req = CanonicalRequest::new(Operation::ListMembers);
        list_req.team_id = req.team_id.clone();
        let mut ctx = self.context(&list_req);
        let list = self.plan(Operation::ListMembers)?;
        self.run_steps(list, &mut ctx, caller).await?;
        let members = self.members_from(list, &ctx)?;
        members
            .into_iter()
            .find(|m| m["user_id"] == user_id)
            .ok_or_else(|| {
                Problem::new(
                    ErrorCode::UpstreamError,
                    format!("the backend accepted the change but does not list user {user_id:?} in the team"),
                )
            })
    }

    async fn resolve_email(
        &self,
        plan: &OperationPlan,
        req: &CanonicalRequest,
    ) -> Result<String, Problem> {
        let email = req
            .input
            .get("email")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let caller = req.op;
        let Some(via) = plan.resolve_user else {
            return Err(Problem::invalid(format!(
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
            .body
            .as_ref()
            .and_then(|b| b["users"].as_array())
            .and_then(|users| users.first())
            .and_then(|u| u["id"].as_str())
            .map(str::to_string)
            .ok_or_else(|| {
                Problem::invalid(format!(
                    "no user with email {email:?} on backend `{}`",
                    self.name
                ))
            })
    }

    fn members_from(&self, plan: &OperationPlan, ctx: &Ctx) -> Result<Vec<Value>, Problem> {
        Ok(self
            .items(plan, ctx)
            .into_iter()
            .map(|item| self.mapping.member.read(item, MEMBER_FIELDS, None))
            .map(|mut m| {
                if m["role"].is_null() {
                    m["role"] = json!("member");
                }
                m
            })
            .collect())
    }

    // ---- teams ---------------------------------------------------------------------------

    /// The answer of a create or update: the follow-up operation's team, or the team in the
    /// vendor's own answer.
    async fn team_result(
        &self,
        plan: &OperationPlan,
        ctx: &Ctx,
        caller: Operation,
    ) -> Result<Value, Problem> {
        match (plan.then, &plan.id) {
            (Some(Operation::GetTeam), Some(id_expr)) => {
                let id = id_expr
                    .eval(ctx)
                    .ok()
                    .flatten()
                    .and_then(|v| match v {
                        Value::String(s) => Some(s),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .ok_or_else(|| bad_answer("the answer has no team id"))?;
                let mut get = CanonicalRequest::new(Operation::GetTeam);
                get.team_id = Some(id);
                let get_plan = self.plan(Operation::GetTeam)?;
                let mut get_ctx = self.context(&get);
                self.run_steps(get_plan, &mut get_ctx, caller).await?;
                self.team_from(get_plan, &get_ctx)
            }
            _ => self.team_from(plan, ctx),
        }
    }

    fn team_from(&self, plan: &OperationPlan, ctx: &Ctx) -> Result<Value, Problem> {
        let object = plan
            .team
            .as_ref()
            .and_then(|e| e.eval(ctx).ok().flatten())
            .filter(Value::is_object)
            .ok_or_else(|| bad_answer("the answer has no team object"))?;
        if self.is_hidden(&object) {
            return Err(Problem::not_found(
                "the team does not exist (it was deleted)",
            ));
        }
        Ok(self.read_team(object))
    }

    fn read_team(&self, object: Value) -> Value {
        let member_map = Some(&self.mapping.member);
        let mut team = self.mapping.team.read(object, TEAM_FIELDS, member_map);
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
            let vendor = map.remove("vendor").unwrap_or(Value::Null);
            map.insert("backend".into(), Value::String(self.name.clone()));
            map.insert("vendor".into(), vendor);
        }
        team
    }

    fn is_hidden(&self, team: &Value) -> bool {
        self.mapping
            .team_hidden_if
            .as_ref()
            .and_then(|e| e.eval(team).ok().flatten())
            .is_some_and(|v| v != Value::Bool(false))
    }

    // ---- steps ---------------------------------------------------------------------------

    /// Runs the plan's steps; `caller` is the canonical operation the caller asked for, which
    /// labels the upstream metrics (a follow-up read counts for the create that needed it).
    async fn run_steps(
        &self,
        plan: &OperationPlan,
        ctx: &mut Ctx,
        caller: Operation,
    ) -> Result<Flow, Problem> {
        for step in &plan.steps {
            if let Some(when) = &step.when {
                if present(when, ctx)? != Some(true) {
                    continue;
                }
            }
            if let Some(unless) = &step.unless {
                if present(unless, ctx)? == Some(true) {
                    continue;
                }
            }
            let answer = self.call_step(step, ctx, caller).await?;
            let body = parse_body(&answer);
            let retry_after = answer
                .headers
                .get(self.mapping.error_format.retry_after_header.as_str())
                .and_then(|v| v.to_str().ok());
            let vendor_error = self.mapping.error_format.detect(
                answer.status,
                body.as_ref().and_then(|b| b.as_ref().ok()),
                retry_after,
            );
            match (vendor_error, body) {
                (Some(err), _) => {
                    self.metrics
                        .upstream(&self.name, caller.name(), UpstreamOutcome::VendorError);
                    match classify(&plan.errors, &self.mapping.error_rules, plan.op, &err) {
                        Outcome::AlreadyDone => return Ok(Flow::AlreadyDone),
                        Outcome::Code(code) => return Err(vendor_problem(code, err, &step.name)),
                    }
                }
                (None, Some(Err(()))) => {
                    self.metrics
                        .upstream(&self.name, caller.name(), UpstreamOutcome::BadAnswer);
                    return Err(bad_answer(&format!(
                        "the answer to step `{}` (HTTP {}) is not valid JSON",
                        step.name, answer.status
                    )));
                }
                (None, body) => {
                    self.metrics
                        .upstream(&self.name, caller.name(), UpstreamOutcome::Ok);
                    let body = body.and_then(Result::ok).unwrap_or(Value::Null);
                    ctx["steps"][step.name.as_str()] =
                        json!({ "status": answer.status, "body": body });
                }
            }
            for required in &step.require {
                if required.eval(ctx).map_err(convert_problem)?.is_none() {
                    return Err(Problem::not_found(format!(
                        "the backend has no such resource (step `{}` found nothing)",
                        step.name
                    )));
                }
            }
            if let Some(visible) = &step.visible_team {
                match visible.eval(ctx).map_err(convert_problem)? {
                    Some(team) if !self.is_hidden(&team) => {}
                    _ => return Err(Problem::not_found("the team does not exist")),
                }
            }
        }
        Ok(Flow::Done)
    }

    /// `base_url` + an already encoded path + the query, each key and value encoded as one
    /// component (so no value can add a parameter).
    fn vendor_url(&self, path: &str, pairs: &[(&str, String)]) -> String {
        let mut url = format!("{}{}", self.base_url, path);
        for (i, (key, value)) in pairs.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode_component(key));
            url.push('=');
            url.push_str(&encode_component(value));
        }
        url
    }

    /// Sends one step. With two-step auth, a 401 means the access token was refused
    /// (expired or revoked early): a new one is fetched once and the step sent again. The
    /// vendor did not act on a request it refused, so this cannot duplicate a write.
    async fn call_step(
        &self,
        step: &Step,
        ctx: &Ctx,
        caller: Operation,
    ) -> Result<UpstreamResponse, Problem> {
        let Some(plan) = &self.mapping.auth.token else {
            return self.send(caller, self.build(step, ctx, "")?).await;
        };
        let token = self.access_token(plan, None, caller).await?;
        let answer = self
            .send(caller, self.build(step, ctx, token.expose())?)
            .await?;
        if answer.status != 401 {
            return Ok(answer);
        }
        self.metrics
            .upstream(&self.name, caller.name(), UpstreamOutcome::VendorError);
        tracing::info!(backend = %self.name, "Access token refused; fetching a new one");
        let token = self.access_token(plan, Some(&token), caller).await?;
        self.send(caller, self.build(step, ctx, token.expose())?)
            .await
    }

    /// The cached access token, or a new one when there is none, it is due for refresh, or it
    /// is the one the vendor just refused. The lock makes concurrent refreshes one fetch.
    async fn access_token(
        &self,
        plan: &TokenPlan,
        refused: Option<&Secret>,
        caller: Operation,
    ) -> Result<Secret, Problem> {
        let credential = self.credential();
        let slot = self.fingerprint(&credential);
        let mut tokens = self.tokens.lock().await;
        if let Some(current) = tokens.get(&slot) {
            let is_refused = refused.is_some_and(|r| r.expose() == current.value.expose());
            if !is_refused && tokio::time::Instant::now() < current.refresh_at {
                return Ok(current.value.clone());
            }
        }
        let fresh = self.fetch_token(plan, &credential, caller).await?;
        let value = fresh.value.clone();
        if tokens.len() >= MAX_TOKENS && !tokens.contains_key(&slot) {
            let oldest = tokens
                .iter()
                .min_by_key(|(_, t)| t.refresh_at)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                tokens.remove(&oldest);
            }
        }
        tokens.insert(slot, fresh);
        Ok(value)
    }

    async fn fetch_token(
        &self,
        plan: &TokenPlan,
        credential: &Secret,
        caller: Operation,
    ) -> Result<CachedToken, Problem> {
        let secrets = Secrets {
            credential: credential.expose(),
            token: "",
        };
        let render =
            |t: &super::template::TextTemplate, escape| -> Result<Option<String>, Problem> {
                t.render(&Value::Null, secrets, escape)
                    .map_err(convert_problem)
            };
        let path = render(&plan.path, Escape::PathSegment)?.unwrap_or_default();
        let mut pairs = Vec::new();
        for (key, template) in &plan.query {
            if let Some(v) = render(template, Escape::None)? {
                pairs.push((key.as_str(), v));
            }
        }
        let url = self.vendor_url(&path, &pairs);
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static("teamgate"),
        );
        for (name, template) in &plan.headers {
            if let Some(v) = render(template, Escape::None)? {
                let mut value = HeaderValue::from_str(&v)
                    .map_err(|_| Problem::internal("the credential cannot be sent in a header"))?;
                value.set_sensitive(true);
                headers.insert(name.clone(), value);
            }
        }
        let body = match &plan.body {
            Some(t) => t
                .render(&Value::Null)
                .map_err(convert_problem)?
                .map(|v| Bytes::from(v.to_string())),
            None => None,
        };
        if body.is_some() {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let request = UpstreamRequest {
            method: plan.method.clone(),
            url,
            headers,
            body,
        };
        let answer = self.send(caller, request).await?;
        // Neither the token nor the vendor's message is repeated: only the status.
        if !(200..300).contains(&answer.status) {
            self.metrics
                .upstream(&self.name, caller.name(), UpstreamOutcome::VendorError);
            let (code, detail) = match answer.status {
                401 | 403 => (
                    ErrorCode::UpstreamError,
                    format!("the backend refused its credential when asked for an access token (HTTP {})", answer.status),
                ),
                status => (
                    ErrorCode::from_upstream_status(status),
                    format!("the backend's access-token endpoint answered HTTP {status}"),
                ),
            };
            let mut problem = Problem::new(code, detail);
            problem.upstream = Some(Box::new(UpstreamDetail {
                status: answer.status,
                code: None,
                message: None,
            }));
            return Err(problem);
        }
        let parsed: Value = match serde_json::from_slice(&answer.body) {
            Ok(v) => v,
            Err(_) => {
                self.metrics
                    .upstream(&self.name, caller.name(), UpstreamOutcome::BadAnswer);
                return Err(bad_answer("the access-token answer is not valid JSON"));
            }
        };
        let Some(Value::String(token)) = plan.token.eval(&parsed).ok().flatten() else {
            self.metrics
                .upstream(&self.name, caller.name(), UpstreamOutcome::BadAnswer);
            return Err(bad_answer("the access-token answer has no token"));
        };
        self.metrics
            .upstream(&self.name, caller.name(), UpstreamOutcome::Ok);
        let number = |e: &Option<Expr>| {
            e.as_ref()
                .and_then(|e| e.eval(&parsed).ok().flatten())
                .and_then(|v| v.as_u64())
        };
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // Prefer a lifetime (expires_at - issued_at, or expires_in) over comparing the
        // vendor's clock with ours.
        let lifetime = match (
            number(&plan.expires_at),
            number(&plan.issued_at),
            number(&plan.expires_in),
        ) {
            (Some(expires), Some(issued), _) => expires.saturating_sub(issued),
            (_, _, Some(secs)) => secs,
            (Some(expires), None, None) => expires.saturating_sub(now_unix),
            _ => DEFAULT_TOKEN_LIFETIME_SECS,
        };
        let usable = lifetime
            .saturating_sub(plan.refresh_before_secs)
            .min(MAX_TOKEN_LIFETIME_SECS);
        Ok(CachedToken {
            value: Secret::new(token),
            refresh_at: tokio::time::Instant::now() + std::time::Duration::from_secs(usable),
        })
    }

    fn build(&self, step: &Step, ctx: &Ctx, token: &str) -> Result<UpstreamRequest, Problem> {
        let credential = self.credential();
        let secret = Secrets {
            credential: credential.expose(),
            token,
        };
        let path = step
            .path
            .render(ctx, Secrets::NONE, Escape::PathSegment)
            .map_err(convert_problem)?
            .ok_or_else(|| {
                Problem::internal(format!("step `{}`: a path parameter is missing", step.name))
            })?;
        let auth_query = self.mapping.auth.query.iter().map(|(k, t)| (k, t, secret));
        let step_query = step.query.iter().map(|(k, t)| (k, t, Secrets::NONE));
        let mut pairs = Vec::new();
        for (key, template, secrets) in auth_query.chain(step_query) {
            if let Some(v) = template
                .render(ctx, secrets, Escape::None)
                .map_err(convert_problem)?
            {
                pairs.push((key.as_str(), v));
            }
        }
        let url = self.vendor_url(&path, &pairs);
        let mut headers = HeaderMap::new();
        let header_value = |text: String| {
            HeaderValue::from_str(&text)
                .map_err(|_| Problem::invalid("a value cannot be sent in a header"))
        };
        headers.insert(
            http::header::ACCEPT,
            header_value(self.mapping.request.accept.clone())?,
        );
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static("teamgate"),
        );
        for (name, template) in &self.mapping.auth.headers {
            if let Some(v) = template
                .render(ctx, secret, Escape::None)
                .map_err(convert_problem)?
            {
                let mut value = header_value(v)?;
                value.set_sensitive(true);
                headers.insert(name.clone(), value);
            }
        }
        for (name, template) in &step.headers {
            if let Some(v) = template
                .render(ctx, Secrets::NONE, Escape::None)
                .map_err(convert_problem)?
            {
                headers.insert(name.clone(), header_value(v)?);
            }
        }
        let body = match &step.body {
            Some(template) => template
                .render(ctx)
                .map_err(convert_problem)?
                .map(|v| Bytes::from(v.to_string())),
            None => None,
        };
        if body.is_some() || self.mapping.request.content_type_always {
            headers.insert(
                http::header::CONTENT_TYPE,
                header_value(self.mapping.request.content_type.clone())?,
            );
        }
        Ok(UpstreamRequest {
            method: step.method.clone(),
            url,
            headers,
            body,
        })
    }

    async fn send(
        &self,
        op: Operation,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, Problem> {
        tracing::debug!(backend = %self.name, operation = op.name(), method = %request.method, "Sending upstream request");
        self.transport.send(request).await.map_err(|e| {
            let outcome = match e {
                UpstreamError::Timeout => UpstreamOutcome::Timeout,
                UpstreamError::Connect => UpstreamOutcome::ConnectError,
                UpstreamError::TooLarge => UpstreamOutcome::BadAnswer,
                UpstreamError::Transport => UpstreamOutcome::TransportError,
            };
            self.metrics.upstream(&self.name, op.name(), outcome);
            let code = match e {
                UpstreamError::Timeout => ErrorCode::UpstreamTimeout,
                UpstreamError::Connect => ErrorCode::UpstreamUnavailable,
                UpstreamError::TooLarge | UpstreamError::Transport => ErrorCode::UpstreamError,
            };
            Problem::new(code, e.to_string())
        })
    }
}

fn parse_body(answer: &UpstreamResponse) -> Option<Result<Value, ()>> {
    if answer.body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(serde_json::from_slice(&answer.body).map_err(|_| ()))
}

/// `Some(true)` when the expression selects something that is not `false`.
fn present(expr: &Expr, ctx: &Ctx) -> Result<Option<bool>, Problem> {
    Ok(Some(
        expr.eval(ctx)
            .map_err(convert_problem)?
            .is_some_and(|v| v != Value::Bool(false)),
    ))
}

/// The input merged into the current team (JSON merge patch: `null` removes).
fn merge(current: &Value, input: &Map<String, Value>) -> Value {
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

/// A value that does not convert for this vendor: from the path it names nothing there
/// (`abc` is no team id on a vendor with integer ids); from the body it is invalid here.
fn convert_problem(e: ConvertError) -> Problem {
    if e.root == "path" {
        Problem::not_found("no resource with that id on this backend")
    } else {
        Problem::invalid(format!(
            "a value cannot be sent to this backend: {}",
            e.reason
        ))
    }
}

fn bad_answer(detail: &str) -> Problem {
    Problem::new(ErrorCode::UpstreamError, detail.to_string())
}

fn not_a_member(user_id: &str, req: &CanonicalRequest) -> Problem {
    Problem::not_found(format!(
        "user {user_id:?} is not a member of team {:?}",
        req.team_id.as_deref().unwrap_or_default()
    ))
}

fn vendor_problem(code: ErrorCode, err: VendorError, step: &str) -> Problem {
    let detail = match &err.message {
        Some(m) => format!(
            "the backend answered HTTP {} to step `{step}`: {m}",
            err.status
        ),
        None => format!("the backend answered HTTP {} to step `{step}`", err.status),
    };
    let mut problem = Problem::new(code, detail);
    problem.retry_after = err
        .retry_after
        .or((code == ErrorCode::RateLimited).then_some(1));
    problem.upstream = Some(Box::new(UpstreamDetail {
        status: err.status,
        code: err.code,
        message: err.message,
    }));
    problem
}

/// Per-team locks for read-modify-write; entries die with their last holder.
#[derive(Default)]
struct TeamLocks {
    map: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl TeamLocks {
    fn get(&self, team: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.map.lock().expect("team lock map");
        if let Some(lock) = map.get(team).and_then(Weak::upgrade) {
            return lock;
        }
        if map.len() >= 1024 {
            map.retain(|_, weak| weak.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(team.to_string(), Arc::downgrade(&lock));
        lock
    }
}
