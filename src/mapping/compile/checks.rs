//! Checks of the whole file: references between operations land on declared ones, and every
//! declared writable team field is written by the team writes.

use super::*;

/// A writable team field the mapping declares must be written by every team write it
/// declares (create_team: `$.input.<field>`; update_team: `$.input` or `$.merged`), or be
/// marked `read_only`: otherwise a caller's value would be dropped with a 2xx.
pub(super) fn unwritten_fields(cx: &mut Ctx, raw: &MappingFile, team: &FieldMap) {
    let reads =
        Regex::new(r"(?:\$\.|\{)(input|merged)(?:\.([A-Za-z0-9_]+))?").expect("a valid regex");
    for (op_name, roots) in [
        ("create_team", &["input"][..]),
        ("update_team", &["input", "merged"][..]),
    ] {
        let Some(spanned) = raw.operations.get(op_name) else {
            continue;
        };
        // Every template of every step, as text: what the steps can send.
        let mut text = String::new();
        for step in &spanned.get_ref().steps {
            let step = step.get_ref();
            text.push_str(step.path.get_ref());
            for value in step.query.values().chain(step.headers.values()) {
                text.push(' ');
                text.push_str(value.get_ref());
            }
            if let Some(body) = &step.body {
                text.push_str(&format!(" {:?}", body.get_ref()));
            }
        }
        let mut written: HashSet<&str> = HashSet::new();
        let mut everything = false;
        for used in reads.captures_iter(&text) {
            if !roots.contains(&&used[1]) {
                continue;
            }
            match used.get(2) {
                Some(member) => {
                    written.insert(match member.as_str() {
                        "member_ids" => "members",
                        other => other,
                    });
                }
                None => everything = true,
            }
        }
        if everything {
            continue;
        }
        for field in &team.fields {
            if field.read_only
                || !TEAM_WRITABLE.contains(&field.name)
                || written.contains(field.name)
            {
                continue;
            }
            let at = team_declared(raw.team.get_ref())
                .into_iter()
                .find(|(name, _)| *name == field.name)
                .and_then(|(_, s)| s)
                .map_or(raw.team.span().start, |s| s.span().start);
            let fix = if field.name == "name" {
                "every team has a name".to_string()
            } else {
                format!(
                    "or declare it `{name} = {{ path = \"...\", read_only = true }}` to answer \
                     400 when it is written",
                    name = field.name
                )
            };
            cx.error(
                at,
                format!(
                    "[team] `{name}` is declared but no step of [operations.{op_name}] writes it \
                     (a caller's `{name}` would be dropped): send `$.{root}.{name}` in a step; {fix}",
                    name = field.name,
                    root = roots[roots.len() - 1],
                ),
            );
        }
    }
}

/// References between operations must land on operations the file declares.
pub(super) fn cross_check(
    cx: &mut Ctx,
    raw: &MappingFile,
    ops: &BTreeMap<Operation, OperationPlan>,
) {
    for (name, spanned) in &raw.operations {
        let at = spanned.span().start;
        let Some(plan) = Operation::parse(name).and_then(|op| ops.get(&op)) else {
            continue;
        };
        let refs = [
            ("read", plan.read),
            ("then", plan.then),
            ("resolve_user", plan.resolve_user),
        ];
        for (key, target) in refs {
            if let Some(target) = target {
                if !ops.contains_key(&target) {
                    cx.error(at, format!("[operations.{name}]: {key} = \"{}\" but that operation is not declared", target.name()));
                }
                if target == plan.op {
                    cx.error(at, format!("[operations.{name}]: {key} refers to itself"));
                }
            }
        }
        if plan.style != MemberStyle::Direct && !ops.contains_key(&Operation::ListMembers) {
            cx.error(
                at,
                format!("[operations.{name}]: a member style needs [operations.list_members]"),
            );
        }
        if plan.resolve_user.is_some() && raw.user.is_none() {
            cx.error(
                at,
                format!("[operations.{name}]: `resolve_user` needs a [user] table"),
            );
        }
        if matches!(plan.op, Operation::ListMembers | Operation::AddMember) && raw.member.is_none()
        {
            cx.error(at, format!("[operations.{name}] needs a [member] table"));
        }
    }
    if let (Some(list_users), None) = (raw.operations.get("list_users"), &raw.user) {
        cx.error(
            list_users.span().start,
            "[operations.list_users] needs a [user] table",
        );
    }
}
