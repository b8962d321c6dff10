//! Field maps: `[team]`, `[member]`, `[user]` (kinds, role maps, `read_only`), and the team
//! fields an operation reads from its own steps (`fields`).

use super::*;

pub(super) fn field(
    cx: &mut Ctx,
    name: &'static str,
    spanned: &Spanned<FieldFile>,
    default_kind: Kind,
) -> Option<Field> {
    let at = spanned.span().start;
    let (path, table) = match spanned.get_ref() {
        FieldFile::Path(p) => (p.as_str(), None),
        FieldFile::Full(t) => (t.path.as_str(), Some(t)),
    };
    let expr = match Expr::parse(path) {
        Ok(e) => e,
        Err(reason) => {
            cx.error(at, format!("`{name}`: {reason}"));
            return None;
        }
    };
    let mut kind = default_kind;
    if let Some(t) = table {
        match (&kind, &t.format) {
            (Kind::Time(_), Some(f)) => match f.as_str() {
                "rfc3339" => kind = Kind::Time(TimeFormat::Rfc3339),
                "unix" => kind = Kind::Time(TimeFormat::UnixSeconds),
                other => cx.error(
                    at,
                    format!("`{name}`: format must be `rfc3339` or `unix`, not `{other}`"),
                ),
            },
            (_, Some(_)) => cx.error(at, format!("`{name}`: only time fields take a `format`")),
            _ => {}
        }
        match (&kind, &t.values) {
            (Kind::Role { .. }, Some(values)) => {
                let mut pairs = Vec::new();
                for (canonical, vendor) in values {
                    if canonical != "admin" && canonical != "member" {
                        cx.error(
                            at,
                            format!(
                                "`{name}`: role values are `admin` and `member`, not `{canonical}`"
                            ),
                        );
                    }
                    // Several vendor roles may read as one canonical role: the first is what
                    // writes send, all are recognised on reads.
                    let listed = match vendor {
                        toml::Value::Array(many) if many.is_empty() => {
                            cx.error(at, format!("`{name}`: `{canonical}` lists no vendor role"));
                            Vec::new()
                        }
                        toml::Value::Array(many) => many.clone(),
                        one => vec![one.clone()],
                    };
                    for one in listed {
                        match serde_json::to_value(&one) {
                            Ok(v) if pairs.iter().any(|(_, seen)| *seen == v) => cx.error(
                                at,
                                format!("`{name}`: the vendor role {v} is listed twice"),
                            ),
                            Ok(v) => pairs.push((canonical.clone(), v)),
                            Err(e) => cx.error(at, format!("`{name}`: {e}")),
                        }
                    }
                }
                let unknown = match t.unknown.as_deref() {
                    None | Some("member") => UnknownRole::As("member".into()),
                    Some("admin") => UnknownRole::As("admin".into()),
                    Some("refuse") => UnknownRole::Refuse,
                    Some(other) => {
                        cx.error(
                            at,
                            format!(
                                "`{name}`: `unknown` is what a vendor role listed nowhere reads \
                                 as: `member`, `admin` or `refuse`, not `{other}`"
                            ),
                        );
                        UnknownRole::As("member".into())
                    }
                };
                kind = Kind::Role {
                    values: pairs,
                    unknown,
                };
            }
            (_, Some(_)) => cx.error(at, format!("`{name}`: only `role` takes `values`")),
            _ => {}
        }
        if t.unknown.is_some() && !matches!(kind, Kind::Role { .. }) {
            cx.error(at, format!("`{name}`: only `role` takes `unknown`"));
        }
        if t.count {
            match kind {
                Kind::Count { .. } => kind = Kind::Count { count_array: true },
                _ => cx.error(at, format!("`{name}`: only `member_count` takes `count`")),
            }
        }
    }
    if let Kind::Role { values, .. } = &kind {
        if values.is_empty() {
            cx.error(
                at,
                format!("`{name}`: a role needs `values = {{ admin = ..., member = ... }}`"),
            );
        }
    }
    let read_only = table.is_some_and(|t| t.read_only);
    let mut field = Field::new(name, expr, kind);
    field.read_only = read_only;
    Some(field)
}

pub(super) fn push(
    cx: &mut Ctx,
    map: &mut FieldMap,
    name: &'static str,
    raw: &Option<Spanned<FieldFile>>,
    kind: Kind,
) {
    if let Some(spanned) = raw {
        if let Some(f) = field(cx, name, spanned, kind) {
            map.fields.push(f);
        }
    }
}

/// How a canonical team field converts (`None`: not a team field read by a plain field).
pub(super) fn team_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "id" | "parent_id" => Kind::Id,
        "name" | "description" | "email" => Kind::Text,
        "member_count" => Kind::Count { count_array: false },
        "members" => Kind::Members,
        "created_at" | "updated_at" => Kind::Time(TimeFormat::Rfc3339),
        _ => return None,
    })
}

/// The `[team]` keys, in canonical order, with what each declares.
pub(super) fn team_declared(
    raw: &file::TeamFile,
) -> [(&'static str, Option<&Spanned<FieldFile>>); 9] {
    [
        ("id", Some(&raw.id)),
        ("name", Some(&raw.name)),
        ("description", raw.description.as_ref()),
        ("email", raw.email.as_ref()),
        ("parent_id", raw.parent_id.as_ref()),
        ("member_count", raw.member_count.as_ref()),
        ("members", raw.members.as_ref()),
        ("created_at", raw.created_at.as_ref()),
        ("updated_at", raw.updated_at.as_ref()),
    ]
}

pub(super) fn team_map(cx: &mut Ctx, raw: &file::TeamFile) -> FieldMap {
    let mut map = FieldMap::default();
    for (name, spanned) in team_declared(raw) {
        let Some(spanned) = spanned else { continue };
        let kind = team_kind(name).expect("every [team] key is a team field");
        if let Some(f) = field(cx, name, spanned, kind) {
            if f.read_only && (!TEAM_WRITABLE.contains(&name) || name == "name") {
                cx.error(
                    spanned.span().start,
                    format!(
                        "`{name}`: only the optional writable fields (description, email, \
                         parent_id, members) can be `read_only`; `{name}` is {}",
                        if name == "name" {
                            "always written"
                        } else {
                            "never written"
                        }
                    ),
                );
            }
            map.fields.push(f);
        }
    }
    map
}

/// `read_only` is for team fields only.
pub(super) fn no_read_only(
    cx: &mut Ctx,
    table: &str,
    fields: &[(&str, Option<&Spanned<FieldFile>>)],
) {
    for (name, spanned) in fields {
        if let Some(spanned) = spanned {
            if let FieldFile::Full(t) = spanned.get_ref() {
                if t.read_only {
                    cx.error(
                        spanned.span().start,
                        format!("[{table}] `{name}`: only [team] fields can be `read_only`"),
                    );
                }
            }
        }
    }
}

pub(super) fn member_map(cx: &mut Ctx, raw: &file::MemberFile) -> FieldMap {
    no_read_only(
        cx,
        "member",
        &[
            ("user_id", Some(&raw.user_id)),
            ("email", raw.email.as_ref()),
            ("username", raw.username.as_ref()),
            ("role", raw.role.as_ref()),
        ],
    );
    let mut map = FieldMap::default();
    if let Some(f) = field(cx, "user_id", &raw.user_id, Kind::Id) {
        map.fields.push(f);
    }
    push(cx, &mut map, "email", &raw.email, Kind::Text);
    push(cx, &mut map, "username", &raw.username, Kind::Text);
    push(
        cx,
        &mut map,
        "role",
        &raw.role,
        Kind::Role {
            values: Vec::new(),
            unknown: UnknownRole::As("member".into()),
        },
    );
    map
}

pub(super) fn user_map(cx: &mut Ctx, raw: &file::UserFile) -> FieldMap {
    no_read_only(
        cx,
        "user",
        &[
            ("id", Some(&raw.id)),
            ("email", raw.email.as_ref()),
            ("username", raw.username.as_ref()),
            ("name", raw.name.as_ref()),
        ],
    );
    let mut map = FieldMap::default();
    if let Some(f) = field(cx, "id", &raw.id, Kind::Id) {
        map.fields.push(f);
    }
    push(cx, &mut map, "email", &raw.email, Kind::Text);
    push(cx, &mut map, "username", &raw.username, Kind::Text);
    push(cx, &mut map, "name", &raw.name, Kind::Text);
    map
}

/// An operation's `fields`: fields of the resource it answers, read from its context rather
/// than the vendor object: team fields for get/create/update_team and list_teams, member
/// fields (`email`, `username`) for list_members. In a list, `$.item` is the vendor object
/// being read. Each expression may read only steps the operation has.
pub(super) fn context_fields(
    cx: &mut Ctx,
    op: Operation,
    raw: &file::OperationFile,
    steps: &[Step],
) -> FieldMap {
    let mut map = FieldMap::default();
    if raw.fields.is_empty() {
        return map;
    }
    let name = op.name();
    let members = op == Operation::ListMembers;
    if !members
        && !matches!(
            op,
            Operation::GetTeam
                | Operation::CreateTeam
                | Operation::UpdateTeam
                | Operation::ListTeams
        )
    {
        let at = raw.fields.values().next().map_or(0, |f| f.span().start);
        cx.error(
            at,
            format!(
                "[operations.{name}]: `fields` is for operations that answer teams or members \
                 (get_team, create_team, update_team, list_teams, list_members)"
            ),
        );
        return map;
    }
    let step_names = Regex::new(r"\$\.steps\.([A-Za-z0-9_-]+)").expect("a valid regex");
    for (key, spanned) in &raw.fields {
        let at = spanned.span().start;
        let known = if members {
            MEMBER_CONTEXT_FIELDS
                .iter()
                .copied()
                .find(|f| *f == key)
                .map(|f| (f, Kind::Text))
        } else {
            engine_team_field(key)
                .filter(|k| !matches!(*k, "id" | "members"))
                .zip(team_kind(key))
        };
        let Some((field_name, kind)) = known else {
            let readable = if members {
                "a member field read from steps (email, username)"
            } else {
                "a team field read from steps (name, description, email, parent_id, \
                 member_count, created_at, updated_at)"
            };
            cx.error(
                at,
                format!("[operations.{name}.fields]: `{key}` is not {readable}"),
            );
            continue;
        };
        let Some(field) = field(cx, field_name, spanned, kind) else {
            continue;
        };
        for used in step_names.captures_iter(field.path.source()) {
            let step = &used[1];
            if !steps.iter().any(|s| s.name == step) {
                cx.error(
                    at,
                    format!(
                        "[operations.{name}.fields] `{key}` reads step `{step}`, which \
                         [operations.{name}] does not have"
                    ),
                );
            }
        }
        map.fields.push(field);
    }
    map
}

/// Member fields an operation may read from its steps (`user_id` and `role` come from the
/// member object, the role through its map).
const MEMBER_CONTEXT_FIELDS: &[&str] = &["email", "username"];

/// The canonical (static) name of a team field.
pub(super) fn engine_team_field(key: &str) -> Option<&'static str> {
    crate::mapping::engine::TEAM_FIELDS
        .iter()
        .copied()
        .find(|f| *f == key)
}
