//! Lists: one page of teams or users in the canonical window (`limit` + opaque cursor), over
//! whatever paging the vendor has (pages, a more-flag, or none: teamgate pages itself), with
//! hidden teams removed and the canonical filters applied.

use serde_json::{json, Value};

use super::{bad_answer, item_fields, object, Backend, Ctx};
use crate::canonical::{cursor, CanonicalRequest, CanonicalResponse, Operation, PageRequest};
use crate::error::Error;
use crate::mapping::expr::Expr;
use crate::mapping::fields::USER_FIELDS;
use crate::mapping::{OperationPlan, Paging};

impl Backend {
    pub(super) async fn list(
        &self,
        plan: &OperationPlan,
        req: &CanonicalRequest,
        ctx: &mut Ctx,
        caller: Operation,
    ) -> Result<CanonicalResponse, Error> {
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
                let more =
                    more_to_come(has_more.as_deref(), total.as_deref(), ctx, offset + raw_len)
                        .unwrap_or(false);
                let raw = self.take_items(plan, ctx);
                let items = self.list_items(plan, req, raw, ctx)?;
                (items, more && raw_len > 0)
            }
            Paging::All => {
                self.run_steps(plan, ctx, caller).await?;
                let raw = self.take_items(plan, ctx);
                let all = self.list_items(plan, req, raw, ctx)?;
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
        Ok(CanonicalResponse::ok(object([
            (key, Value::Array(items)),
            (
                "next_cursor",
                next_cursor.map_or(Value::Null, Value::String),
            ),
        ])))
    }

    pub(super) fn items_len(&self, plan: &OperationPlan, ctx: &Ctx) -> usize {
        plan.items
            .as_ref()
            .map(|e| e.select(ctx).len())
            .unwrap_or(0)
    }

    /// The items, moved out of the context (a list's context is not read again).
    pub(super) fn take_items(&self, plan: &OperationPlan, ctx: &mut Ctx) -> Vec<Value> {
        plan.items
            .as_ref()
            .map(|e| e.take_all(ctx))
            .unwrap_or_default()
    }

    pub(super) fn items(&self, plan: &OperationPlan, ctx: &Ctx) -> Vec<Value> {
        plan.items
            .as_ref()
            .map(|e| e.select(ctx).into_iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Canonical list items, hidden teams removed and the canonical filters applied (vendors
    /// filter differently or not at all; the canonical meaning is the same on every backend).
    pub(super) fn list_items(
        &self,
        plan: &OperationPlan,
        req: &CanonicalRequest,
        raw: Vec<Value>,
        ctx: &mut Ctx,
    ) -> Result<Vec<Value>, Error> {
        let (op, query, leftovers) = (req.op, &req.query, req.include_vendor);
        let lower = |k: &str| query.get(k).map(|v| v.to_lowercase());
        let (name, q, email) = (lower("name"), lower("q"), lower("email"));
        let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_lowercase();
        raw.into_iter()
            .filter_map(|item| match op {
                Operation::ListTeams => {
                    if self.is_hidden(&item) {
                        return None;
                    }
                    if let Err(refused) = self.refuse_unknown_roles(&item) {
                        return Some(Err(refused));
                    }
                    let (item, from_steps) = item_fields(plan, ctx, item);
                    let mut team = self.read_team(item, leftovers);
                    for (name, value) in from_steps {
                        team[name] = value;
                    }
                    if !(team["id"].is_string() && team["name"].is_string()) {
                        return Some(Err(bad_answer("a listed team has no id or no name")));
                    }
                    let keep = name.as_ref().is_none_or(|n| text(&team, "name") == *n)
                        && q.as_ref()
                            .is_none_or(|q| text(&team, "name").contains(q.as_str()));
                    keep.then_some(Ok(team))
                }
                _ => {
                    let user = self.mapping.user.read(item, USER_FIELDS, None, leftovers);
                    if !user["id"].is_string() {
                        return Some(Err(bad_answer("a listed user has no id")));
                    }
                    let keep = email.as_ref().is_none_or(|e| text(&user, "email") == *e)
                        && q.as_ref().is_none_or(|q| {
                            ["email", "name", "username"]
                                .iter()
                                .any(|k| text(&user, k).contains(q.as_str()))
                        });
                    keep.then_some(Ok(user))
                }
            })
            .collect()
    }
}

/// Whether the vendor says another page follows once `seen` items are read: its more-flag
/// (`true`, or any other value present, such as a `links.next` URL), or else its total.
/// `None` when the mapping declares neither.
pub(super) fn more_to_come(
    has_more: Option<&Expr>,
    total: Option<&Expr>,
    ctx: &Ctx,
    seen: usize,
) -> Option<bool> {
    let value = |e: &Expr| e.eval(ctx).ok().flatten();
    match (has_more, total) {
        (Some(h), _) => Some(value(h).is_some_and(|v| v != Value::Bool(false))),
        (None, Some(t)) => Some(
            value(t)
                .and_then(|v| v.as_u64())
                .is_some_and(|total| (seen as u64) < total),
        ),
        (None, None) => None,
    }
}
