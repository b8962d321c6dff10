//! `[operations.*]`: plans, their steps (with `pages`, inner lists read whole), and the
//! `[people]` lookup, which is steps too.

use super::*;

/// `[people]`: steps like an operation's, items, and the fields of a person.
pub(super) fn people(cx: &mut Ctx, spanned: &Spanned<file::PeopleFile>) -> Option<PeopleLookup> {
    let raw = spanned.get_ref();
    let at = spanned.span().start;
    let steps = steps_of(cx, &raw.steps, "[people]");
    if raw.steps.is_empty() {
        cx.error(at, "[people] has no steps");
    }
    let mut fields = FieldMap::default();
    if let Some(f) = field(cx, "user_id", &raw.user_id, Kind::Id) {
        fields.fields.push(f);
    }
    push(cx, &mut fields, "email", &raw.email, Kind::Text);
    push(cx, &mut fields, "username", &raw.username, Kind::Text);
    if raw.email.is_none() && raw.username.is_none() {
        cx.error(
            at,
            "[people] needs `email` or `username` (the details it fills in)",
        );
    }
    let items = cx.expr(&raw.items);
    let batch_max = match &raw.batch_max {
        None => usize::MAX,
        Some(n) if *n.get_ref() >= 1 => *n.get_ref() as usize,
        Some(n) => {
            cx.error(n.span().start, "people.batch_max must be at least 1");
            usize::MAX
        }
    };
    let errors = raw
        .errors
        .iter()
        .filter_map(|r| rule(cx, r, Some(Operation::ListUsers)))
        .collect();
    Some(PeopleLookup {
        plan: OperationPlan {
            op: Operation::ListUsers,
            read: None,
            style: MemberStyle::Direct,
            resolve_user: None,
            steps,
            then: None,
            id: None,
            team: None,
            items: Some(items?),
            paging: Paging::All,
            fields: FieldMap::default(),
            errors,
        },
        fields,
        batch_max,
    })
}

pub(super) fn operation(
    cx: &mut Ctx,
    op: Operation,
    spanned: &Spanned<file::OperationFile>,
) -> Option<OperationPlan> {
    let raw = spanned.get_ref();
    let at = spanned.span().start;
    let name = op.name();
    let steps = steps_of(cx, &raw.steps, &format!("[operations.{name}]"));
    let read = raw.read.as_ref().and_then(|r| cx.operation(r));
    if read.is_some() && op != Operation::UpdateTeam {
        cx.error(
            at,
            format!("[operations.{name}]: `read` is only for update_team"),
        );
    }
    let style = match raw.style.as_ref() {
        None => MemberStyle::Direct,
        Some(s) => {
            let style = match s.get_ref().as_str() {
                "member_set" => Some(MemberStyle::MemberSet),
                "checked" => Some(MemberStyle::Checked),
                _ => None,
            };
            let is_member_op = matches!(
                op,
                Operation::AddMember | Operation::RemoveMember | Operation::UpdateMember
            );
            match style {
                Some(style) if is_member_op => style,
                Some(_) => {
                    cx.error(
                        s.span().start,
                        format!("[operations.{name}]: a style is only for member changes"),
                    );
                    MemberStyle::Direct
                }
                None => {
                    cx.error(
                        s.span().start,
                        format!(
                            "[operations.{name}]: unknown style `{}` (known: member_set, checked)",
                            s.get_ref()
                        ),
                    );
                    MemberStyle::Direct
                }
            }
        }
    };
    let resolve_user = raw.resolve_user.as_ref().and_then(|r| cx.operation(r));
    if resolve_user.is_some_and(|r| r != Operation::ListUsers)
        || (resolve_user.is_some() && op != Operation::AddMember)
    {
        cx.error(
            at,
            format!("[operations.{name}]: `resolve_user` is only for add_member, with list_users"),
        );
    }
    let then = raw.then.as_ref().and_then(|t| cx.operation(t));
    let paging = match raw
        .paging
        .as_ref()
        .map(|p| (p.get_ref().as_str(), p.span().start))
    {
        None | Some(("all", _)) => Paging::All,
        Some(("pages", _)) => Paging::Pages {
            total: cx.opt_expr(&raw.total).map(Box::new),
            has_more: cx.opt_expr(&raw.has_more).map(Box::new),
        },
        Some((other, at)) => {
            cx.error(
                at,
                format!("[operations.{name}]: paging must be `pages` or `all`, not `{other}`"),
            );
            Paging::All
        }
    };
    if let Paging::Pages {
        total: None,
        has_more: None,
    } = paging
    {
        cx.error(
            at,
            format!("[operations.{name}]: paging `pages` needs `total` or `has_more`"),
        );
    }
    if (raw.paging.is_some() || raw.total.is_some() || raw.has_more.is_some()) && !op.is_list() {
        cx.error(
            at,
            format!("[operations.{name}]: paging is only for list_teams and list_users"),
        );
    }
    let errors = raw
        .errors
        .iter()
        .filter_map(|r| rule(cx, r, Some(op)))
        .collect();
    let fields = context_fields(cx, op, raw, &steps);
    let plan = OperationPlan {
        op,
        read,
        style,
        resolve_user,
        steps,
        then,
        id: cx.opt_expr(&raw.id),
        team: cx.opt_expr(&raw.team),
        items: cx.opt_expr(&raw.items),
        paging,
        fields,
        errors,
    };
    // What each operation must produce (judged on what was written, so that one bad
    // expression is reported once, not again as a missing key).
    let missing = match op {
        Operation::ListTeams | Operation::ListUsers | Operation::ListMembers
            if raw.items.is_none() =>
        {
            Some("`items`")
        }
        Operation::GetTeam if raw.team.is_none() => Some("`team`"),
        Operation::CreateTeam | Operation::UpdateTeam
            if raw.team.is_none() && raw.then.is_none() =>
        {
            Some("`team` or `then`")
        }
        _ => None,
    };
    if let Some(what) = missing {
        cx.error(at, format!("[operations.{name}] needs {what}"));
    }
    if raw.steps.is_empty() {
        cx.error(at, format!("[operations.{name}] has no steps"));
    }
    if plan.then == Some(Operation::GetTeam) && plan.id.is_none() {
        cx.error(
            at,
            format!("[operations.{name}]: `then = \"get_team\"` needs `id`"),
        );
    }
    Some(plan)
}

/// The canonical operation names, for errors.
pub(super) fn operation_names() -> String {
    Operation::ALL
        .iter()
        .map(|op| format!("`{}`", op.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The steps of an operation or a lookup (`table` names it in errors), each name used once.
pub(super) fn steps_of(cx: &mut Ctx, raw: &[Spanned<file::StepFile>], table: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut names = HashSet::new();
    for (i, s) in raw.iter().enumerate() {
        if let Some(step) = step(cx, i, s) {
            if !names.insert(step.name.clone()) {
                cx.error(
                    s.span().start,
                    format!("{table}: two steps are named `{}`", step.name),
                );
            }
            steps.push(step);
        }
    }
    steps
}

pub(super) fn step(cx: &mut Ctx, index: usize, spanned: &Spanned<file::StepFile>) -> Option<Step> {
    let raw = spanned.get_ref();
    let method = match Method::from_bytes(raw.method.get_ref().to_ascii_uppercase().as_bytes()) {
        Ok(m) if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()) => Some(m),
        _ => {
            cx.error(
                raw.method.span().start,
                format!(
                    "`{}` is not an HTTP method teamgate sends (GET, POST, PUT, PATCH or DELETE: `method = \"GET\"`)",
                    raw.method.get_ref()
                ),
            );
            None
        }
    };
    if !raw.path.get_ref().starts_with('/') {
        cx.error(
            raw.path.span().start,
            "a step path must start with `/` (`path = \"/teams/{path.id}\"`)",
        );
    }
    if raw.path.get_ref().contains('?') {
        cx.error(
            raw.path.span().start,
            "put query parameters in `query`, not in the path",
        );
    }
    let path = cx.text(&raw.path, false);
    let mut query = Vec::new();
    for (k, v) in &raw.query {
        if let Some(t) = cx.text(v, false) {
            query.push((k.clone(), t));
        }
    }
    let mut headers = Vec::new();
    for (k, v) in &raw.headers {
        let h = cx.header_name(k, v.span().start);
        if let (Some(h), Some(t)) = (h, cx.text(v, false)) {
            headers.push((h, t));
        }
    }
    let body = cx.body(&raw.body, "body");
    let require = raw.require.iter().filter_map(|r| cx.expr(r)).collect();
    let name = raw
        .name
        .clone()
        .unwrap_or_else(|| format!("step{}", index + 1));
    let pages = raw.pages.as_ref().and_then(|p| step_pages(cx, &name, p));
    let step = Step {
        name,
        method: method?,
        path: path?,
        query,
        headers,
        body,
        when: cx.opt_expr(&raw.when),
        unless: cx.opt_expr(&raw.unless),
        require,
        visible_team: cx.opt_expr(&raw.visible_team),
        pages,
    };
    Some(step)
}

/// A step's `pages`: a page size, a plain path to the items in this step's answer, how to
/// tell the last page, and the declared maximum.
pub(super) fn step_pages(
    cx: &mut Ctx,
    step: &str,
    spanned: &Spanned<file::StepPagesFile>,
) -> Option<StepPages> {
    let raw = spanned.get_ref();
    let at = spanned.span().start;
    let positive =
        |cx: &mut Ctx, value: &Spanned<i64>, key: &str| match usize::try_from(*value.get_ref()) {
            Ok(n) if n > 0 => Some(n),
            _ => {
                cx.error(
                    value.span().start,
                    format!(
                        "step `{step}`: `pages.{key}` must be a positive integer (`{key} = 100`)"
                    ),
                );
                None
            }
        };
    let size = positive(cx, &raw.size, "size");
    let max_items = positive(cx, &raw.max_items, "max_items");
    let items_at = raw.items.span().start;
    let items = cx.expr(&raw.items).and_then(|e| {
        let names = e.plain_path().map(<[String]>::to_vec);
        let inside = names
            .as_deref()
            .is_some_and(|n| n.len() >= 3 && n[0] == "steps" && n[1] == step && n[2] == "body");
        if !inside {
            cx.error(
                items_at,
                format!(
                    "step `{step}`: `pages.items` must be a plain path to the array in this \
                     step's answer, like `$.steps.{step}.body.items` (no `[*]`, no pipes)"
                ),
            );
        }
        names.filter(|_| inside)
    });
    let has_more = cx.opt_expr(&raw.has_more);
    let total = cx.opt_expr(&raw.total);
    if let (Some(size), Some(max)) = (size, max_items) {
        if max < size {
            cx.error(
                at,
                format!("step `{step}`: `pages.max_items` ({max}) is less than one page ({size})"),
            );
        }
    }
    Some(StepPages {
        size: size?,
        items: items?,
        has_more,
        total,
        max_items: max_items?,
    })
}
