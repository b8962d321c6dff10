//! Second phase of loading: [`file::MappingFile`] → [`Mapping`], collecting every problem.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use http::{HeaderName, Method};
use regex::Regex;
use toml::Spanned;

use super::errors::{ErrorFormat, ErrorRule, Outcome};
use super::expr::Expr;
use super::fields::{Field, FieldMap, Kind, TimeFormat, UnknownRole};
use super::file::{self, FieldFile, MappingFile, StatusFile};
use super::template::{TextTemplate, ValueTemplate};
use super::{
    Auth, CheckError, Limits, Mapping, MemberStyle, OperationPlan, Paging, PeopleLookup,
    RequestOptions, Step, StepPages, TokenPlan,
};
use crate::canonical::validate::{DESCRIPTION_MAX, NAME_MAX, TEAM_WRITABLE};
use crate::canonical::Operation;
use crate::error::ErrorCode;

struct Ctx<'a> {
    path: &'a Path,
    source: &'a str,
    errors: Vec<CheckError>,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.source.len());
        self.source[..end].bytes().filter(|b| *b == b'\n').count() + 1
    }

    /// Records a problem at `offset`, named by the key in force there: `operations.get_team.
    /// steps[1].method`. A reason that already names its table (`[operations.x]: ...`) is
    /// kept as it is; one that names the bare key (`` `name`: ...``) gets the whole path.
    fn error(&mut self, offset: usize, reason: impl Into<String>) {
        let line = self.line(offset);
        let reason = reason.into();
        let reason = match super::file_errors::key_at(self.source, offset) {
            Some(_) if reason.starts_with('[') => reason,
            Some(key) => {
                let last = key.rsplit('.').next().unwrap_or(&key);
                let last = last.split('[').next().unwrap_or(last);
                match reason.strip_prefix(&format!("`{last}`: ")) {
                    Some(rest) => format!("`{key}`: {rest}"),
                    None => format!("`{key}`: {reason}"),
                }
            }
            None => reason,
        };
        self.errors.push(CheckError {
            file: self.path.to_path_buf(),
            line,
            reason,
        });
    }

    fn expr(&mut self, spanned: &Spanned<String>) -> Option<Expr> {
        match Expr::parse(spanned.get_ref()) {
            Ok(e) => Some(e),
            Err(reason) => {
                self.error(spanned.span().start, reason);
                None
            }
        }
    }

    fn opt_expr(&mut self, spanned: &Option<Spanned<String>>) -> Option<Expr> {
        spanned.as_ref().and_then(|s| self.expr(s))
    }

    fn text(&mut self, spanned: &Spanned<String>, allow_credential: bool) -> Option<TextTemplate> {
        match TextTemplate::parse(spanned.get_ref(), allow_credential) {
            Ok(t) => Some(t),
            Err(reason) => {
                self.error(spanned.span().start, reason);
                None
            }
        }
    }

    fn header_name(&mut self, name: &str, offset: usize) -> Option<HeaderName> {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(h) => Some(h),
            Err(_) => {
                self.error(offset, format!("`{name}` is not a valid header name"));
                None
            }
        }
    }

    fn operation(&mut self, spanned: &Spanned<String>) -> Option<Operation> {
        let op = Operation::parse(spanned.get_ref());
        if op.is_none() {
            self.error(
                spanned.span().start,
                format!(
                    "`{}` is not a canonical operation (one of {})",
                    spanned.get_ref(),
                    operation_names()
                ),
            );
        }
        op
    }
}

pub fn compile(path: &Path, source: &str) -> Result<Mapping, Vec<CheckError>> {
    let raw: MappingFile = match toml::from_str(source) {
        Ok(raw) => raw,
        Err(e) => {
            let (line, reason) = super::file_errors::explain(source, e.span(), e.message());
            return Err(vec![CheckError {
                file: path.to_path_buf(),
                line,
                reason,
            }]);
        }
    };
    let mut cx = Ctx {
        path,
        source,
        errors: Vec::new(),
    };
    let auth = auth(&mut cx, &raw.auth);
    let request = request(&mut cx, &raw.request);
    let limits = limits(&mut cx, &raw.limits);
    let (error_format, error_rules) = errors(&mut cx, &raw.errors);
    let team_raw = raw.team.get_ref();
    let team = team_map(&mut cx, team_raw);
    let team_hidden_if = cx.opt_expr(&team_raw.hidden_if);
    let member = match &raw.member {
        Some(m) => member_map(&mut cx, m.get_ref()),
        None => FieldMap::default(),
    };
    let user = match &raw.user {
        Some(u) => user_map(&mut cx, u.get_ref()),
        None => FieldMap::default(),
    };
    let people = raw.people.as_ref().and_then(|p| people(&mut cx, p));
    if let (Some(p), None) = (&raw.people, &raw.member) {
        cx.error(
            p.span().start,
            "[people] fills in members' details but there is no [member] table",
        );
    }
    if team.has("members") && raw.member.is_none() {
        cx.error(
            raw.team.span().start,
            "[team] has `members` but there is no [member] table",
        );
    }
    let mut operations = BTreeMap::new();
    for (name, spanned) in &raw.operations {
        let Some(op) = Operation::parse(name) else {
            cx.error(
                spanned.span().start,
                format!(
                    "[operations.{name}]: `{name}` is not a canonical operation (one of {})",
                    operation_names()
                ),
            );
            continue;
        };
        if let Some(plan) = operation(&mut cx, op, spanned) {
            operations.insert(op, plan);
        }
    }
    cross_check(&mut cx, &raw, &operations);
    unwritten_fields(&mut cx, &raw, &team);
    if !cx.errors.is_empty() {
        cx.errors.sort_by_key(|e| e.line);
        return Err(cx.errors);
    }
    Ok(Mapping {
        file: path.to_path_buf(),
        vendor: raw.vendor.into_inner(),
        about: raw.about,
        auth,
        request,
        limits,
        error_format,
        error_rules,
        team,
        team_hidden_if,
        member,
        user,
        people,
        operations,
    })
}

/// `[people]`: steps like an operation's, items, and the fields of a person.
fn people(cx: &mut Ctx, spanned: &Spanned<file::PeopleFile>) -> Option<PeopleLookup> {
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

fn auth(cx: &mut Ctx, raw: &file::AuthFile) -> Auth {
    let mut auth = Auth {
        token: raw.token.as_ref().and_then(|t| token_plan(cx, t)),
        ..Auth::default()
    };
    for (name, value) in &raw.headers {
        let header = cx.header_name(name, value.span().start);
        let template = cx.text(value, true);
        if let (Some(h), Some(t)) = (header, template) {
            auth.headers.push((h, t));
        }
    }
    for (name, value) in &raw.query {
        if let Some(t) = cx.text(value, true) {
            auth.query.push((name.clone(), t));
        }
    }
    let uses_token = auth
        .headers
        .iter()
        .map(|(_, t)| t)
        .chain(auth.query.iter().map(|(_, t)| t))
        .any(TextTemplate::uses_token);
    if uses_token && raw.token.is_none() {
        let at = raw
            .headers
            .values()
            .chain(raw.query.values())
            .map(|v| v.span().start)
            .next()
            .unwrap_or(0);
        cx.error(
            at,
            "`{token}` needs an [auth.token] section that says how to get it",
        );
    }
    auth
}

fn token_plan(cx: &mut Ctx, spanned: &Spanned<file::TokenFile>) -> Option<TokenPlan> {
    let raw = spanned.get_ref();
    let method = match Method::from_bytes(raw.method.get_ref().to_ascii_uppercase().as_bytes()) {
        Ok(m) if ["GET", "POST"].contains(&m.as_str()) => Some(m),
        _ => {
            cx.error(
                raw.method.span().start,
                "auth.token.method must be GET or POST",
            );
            None
        }
    };
    // The token request may use the credential, not the token it is fetching.
    let path = cx.text(&raw.path, false);
    let mut headers = Vec::new();
    for (name, value) in &raw.headers {
        if value.get_ref().contains("{token}") {
            cx.error(value.span().start, "the token request cannot use `{token}`");
            continue;
        }
        let h = cx.header_name(name, value.span().start);
        if let (Some(h), Some(t)) = (h, cx.text(value, true)) {
            headers.push((h, t));
        }
    }
    let mut query = Vec::new();
    for (name, value) in &raw.query {
        if let Some(t) = cx.text(value, true) {
            query.push((name.clone(), t));
        }
    }
    let body = raw
        .body
        .as_ref()
        .and_then(|b| match ValueTemplate::compile(b.get_ref()) {
            Ok(t) => Some(t),
            Err(reason) => {
                cx.error(b.span().start, format!("auth.token.body: {reason}"));
                None
            }
        });
    let token = cx.expr(&raw.token);
    let plan = TokenPlan {
        method: method?,
        path: path?,
        headers,
        query,
        body,
        token: token?,
        expires_at: cx.opt_expr(&raw.expires_at),
        issued_at: cx.opt_expr(&raw.issued_at),
        expires_in: cx.opt_expr(&raw.expires_in),
        refresh_before_secs: raw.refresh_before_secs.unwrap_or(60),
    };
    Some(plan)
}

fn request(cx: &mut Ctx, raw: &file::RequestFile) -> RequestOptions {
    let content_type_always = match raw
        .send_content_type
        .as_ref()
        .map(|s| (s.get_ref().as_str(), s.span().start))
    {
        None | Some(("with_body", _)) => false,
        Some(("always", _)) => true,
        Some((other, at)) => {
            cx.error(
                at,
                format!("send_content_type must be `with_body` or `always`, not `{other}`"),
            );
            false
        }
    };
    RequestOptions {
        content_type: raw
            .content_type
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_else(|| "application/json".into()),
        content_type_always,
        accept: raw
            .accept
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_else(|| "application/json".into()),
    }
}

fn limits(cx: &mut Ctx, raw: &file::LimitsFile) -> Limits {
    let mut bounded =
        |value: &Option<Spanned<i64>>, key: &str, default: usize, max: usize| match value {
            None => default,
            Some(v) if *v.get_ref() >= 1 && *v.get_ref() as usize <= max => *v.get_ref() as usize,
            Some(v) => {
                cx.error(
                    v.span().start,
                    format!("must be a whole number from 1 to {max} (`{key} = {max}`)"),
                );
                default
            }
        };
    let name_max = bounded(&raw.name_max, "name_max", NAME_MAX, NAME_MAX);
    let description_max = bounded(
        &raw.description_max,
        "description_max",
        DESCRIPTION_MAX,
        DESCRIPTION_MAX,
    );
    let page_size_max = bounded(&raw.page_size_max, "page_size_max", 100, 10_000);
    let team_id_pattern = raw.team_id_pattern.as_ref().and_then(|p| {
        match Regex::new(&format!("^(?:{})$", p.get_ref())) {
            Ok(r) => Some(r),
            Err(e) => {
                cx.error(
                    p.span().start,
                    format!(
                        "not a regular expression (`team_id_pattern = \"[0-9]{{1,19}}\"`): {e}"
                    ),
                );
                None
            }
        }
    });
    let budget = crate::fleet::config::BudgetLimits {
        per_second: rate(cx, &raw.requests_per_second, "requests_per_second"),
        per_minute: rate(cx, &raw.requests_per_minute, "requests_per_minute"),
    };
    Limits {
        name_max,
        description_max,
        page_size_max,
        team_id_pattern,
        budget,
    }
}

/// A documented request limit: 1 to 1,000,000.
fn rate(cx: &mut Ctx, value: &Option<Spanned<i64>>, key: &str) -> Option<u32> {
    let v = value.as_ref()?;
    match u32::try_from(*v.get_ref()) {
        Ok(n) if (1..=1_000_000).contains(&n) => Some(n),
        _ => {
            cx.error(
                v.span().start,
                format!("must be a whole number from 1 to 1000000 (`{key} = 100`)"),
            );
            None
        }
    }
}

fn errors(cx: &mut Ctx, raw: &file::ErrorsFile) -> (ErrorFormat, Vec<ErrorRule>) {
    let format = ErrorFormat {
        message: cx.opt_expr(&raw.message),
        code: cx.opt_expr(&raw.code),
        present: cx.opt_expr(&raw.present),
        ok_codes: raw.ok_codes.clone(),
        retry_after_header: raw
            .retry_after_header
            .as_ref()
            .map(|h| h.get_ref().to_ascii_lowercase())
            .unwrap_or_else(|| "retry-after".into()),
    };
    if raw.present.is_some() && raw.code.is_none() {
        if let Some(p) = &raw.present {
            cx.error(
                p.span().start,
                "errors.present needs errors.code to tell errors from `ok_codes`",
            );
        }
    }
    let rules = raw.rules.iter().filter_map(|r| rule(cx, r, None)).collect();
    (format, rules)
}

fn rule(
    cx: &mut Ctx,
    spanned: &Spanned<file::ErrorRuleFile>,
    op: Option<Operation>,
) -> Option<ErrorRule> {
    let raw = spanned.get_ref();
    let at = spanned.span().start;
    let outcome = match raw.code.get_ref().as_str() {
        "already_done" => Outcome::AlreadyDone,
        code => match ErrorCode::parse(code) {
            Some(c) => Outcome::Code(c),
            None => {
                cx.error(
                    raw.code.span().start,
                    format!(
                        "`{code}` is not a canonical error code (one of {}, or `already_done`)",
                        ErrorCode::ALL
                            .iter()
                            .map(|c| format!("`{}`", c.as_str()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                return None;
            }
        },
    };
    let operations = match &raw.operations {
        None => None,
        Some(names) => {
            let mut ops = Vec::new();
            for name in names {
                match Operation::parse(name) {
                    Some(o) => ops.push(o),
                    None => cx.error(
                        at,
                        format!(
                            "`{name}` is not a canonical operation (one of {})",
                            operation_names()
                        ),
                    ),
                }
            }
            Some(ops)
        }
    };
    if outcome == Outcome::AlreadyDone {
        let only_add = match (&operations, op) {
            (_, Some(Operation::AddMember)) => true,
            (Some(ops), _) => ops.iter().all(|o| *o == Operation::AddMember),
            _ => false,
        };
        if !only_add {
            cx.error(
                raw.code.span().start,
                "`already_done` is only meaningful for add_member",
            );
        }
    }
    if raw.status.is_none() && raw.vendor_code.is_none() && raw.message_contains.is_none() {
        cx.error(
            at,
            "an error rule needs `status`, `vendor_code` or `message_contains`",
        );
    }
    Some(ErrorRule {
        statuses: match &raw.status {
            None => Vec::new(),
            Some(StatusFile::One(s)) => vec![*s],
            Some(StatusFile::Many(s)) => s.clone(),
        },
        vendor_codes: raw
            .vendor_code
            .as_ref()
            .map(|codes| codes.0.clone())
            .unwrap_or_default(),
        message_contains: raw.message_contains.as_ref().map(|m| m.to_lowercase()),
        operations,
        outcome,
    })
}

fn field(
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

fn push(
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
fn team_kind(name: &str) -> Option<Kind> {
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
fn team_declared(raw: &file::TeamFile) -> [(&'static str, Option<&Spanned<FieldFile>>); 9] {
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

fn team_map(cx: &mut Ctx, raw: &file::TeamFile) -> FieldMap {
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
fn no_read_only(cx: &mut Ctx, table: &str, fields: &[(&str, Option<&Spanned<FieldFile>>)]) {
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

fn member_map(cx: &mut Ctx, raw: &file::MemberFile) -> FieldMap {
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

fn user_map(cx: &mut Ctx, raw: &file::UserFile) -> FieldMap {
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

fn operation(
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
fn operation_names() -> String {
    Operation::ALL
        .iter()
        .map(|op| format!("`{}`", op.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An operation's `fields`: team fields read from its context, each expression reading only
/// steps that the operation has.
fn context_fields(
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
    if !matches!(
        op,
        Operation::GetTeam | Operation::CreateTeam | Operation::UpdateTeam
    ) {
        let at = raw.fields.values().next().map_or(0, |f| f.span().start);
        cx.error(
            at,
            format!(
                "[operations.{name}]: `fields` is for operations that answer a team \
                 (get_team, create_team, update_team)"
            ),
        );
        return map;
    }
    let step_names = Regex::new(r"\$\.steps\.([A-Za-z0-9_-]+)").expect("a valid regex");
    for (key, spanned) in &raw.fields {
        let at = spanned.span().start;
        let field_name = engine_team_field(key).filter(|k| !matches!(*k, "id" | "members"));
        let (Some(field_name), Some(kind)) = (field_name, team_kind(key)) else {
            cx.error(
                at,
                format!(
                    "[operations.{name}.fields]: `{key}` is not a team field read from steps \
                     (name, description, email, parent_id, member_count, created_at, updated_at)"
                ),
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

/// The canonical (static) name of a team field.
fn engine_team_field(key: &str) -> Option<&'static str> {
    super::engine::TEAM_FIELDS
        .iter()
        .copied()
        .find(|f| *f == key)
}

/// The steps of an operation or a lookup (`table` names it in errors), each name used once.
fn steps_of(cx: &mut Ctx, raw: &[Spanned<file::StepFile>], table: &str) -> Vec<Step> {
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

fn step(cx: &mut Ctx, index: usize, spanned: &Spanned<file::StepFile>) -> Option<Step> {
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
    let body = raw
        .body
        .as_ref()
        .and_then(|b| match ValueTemplate::compile(b.get_ref()) {
            Ok(t) => Some(t),
            Err(reason) => {
                cx.error(b.span().start, format!("body: {reason}"));
                None
            }
        });
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
fn step_pages(
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

/// A writable team field the mapping declares must be written by every team write it
/// declares (create_team: `$.input.<field>`; update_team: `$.input` or `$.merged`), or be
/// marked `read_only`: otherwise a caller's value would be dropped with a 2xx.
fn unwritten_fields(cx: &mut Ctx, raw: &MappingFile, team: &FieldMap) {
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
fn cross_check(cx: &mut Ctx, raw: &MappingFile, ops: &BTreeMap<Operation, OperationPlan>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(source: &str) -> Vec<(usize, String)> {
        match compile(Path::new("t.toml"), source) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| (e.line, e.reason)).collect(),
        }
    }

    const MINIMAL: &str = r#"vendor = "x"
[team]
id = "$.id"
name = "$.name"
[operations.get_team]
team = "$.steps.get.body"
[[operations.get_team.steps]]
name = "get"
method = "GET"
path = "/teams/{path.id}"
"#;

    #[test]
    fn a_minimal_mapping_compiles() {
        assert_eq!(check(MINIMAL), Vec::<(usize, String)>::new());
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let broken = MINIMAL
            .replace("team = \"$.steps.get.body\"", "team = \"steps.get.body\"")
            .replace("method = \"GET\"", "method = \"FETCH\"");
        let errors = check(&broken);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].0, 6);
        assert!(errors[0].1.contains("not a JSONPath"));
        assert_eq!(errors[1].0, 9);
    }

    #[test]
    fn a_canonical_role_may_stand_for_several_vendor_roles() {
        let with_roles = |values: &str| {
            format!(
                "{MINIMAL}[member]\nuser_id = \"$.id\"\nrole = {{ path = \"$.role\", values = {values} }}\n"
            )
        };
        let mapping = compile(
            Path::new("t.toml"),
            &with_roles("{ admin = \"manager\", member = [\"responder\", \"observer\"] }"),
        )
        .unwrap();
        let members = &mapping.member;
        assert_eq!(
            members.vendor_role("member"),
            Some(serde_json::json!("responder"))
        );
        for (vendor, canonical) in [
            ("manager", "admin"),
            ("responder", "member"),
            ("observer", "member"),
        ] {
            let read = members.read(
                serde_json::json!({"id": "u", "role": vendor}),
                &["role"],
                None,
                false,
            );
            assert_eq!(read["role"], canonical, "{vendor}");
        }
        for bad in [
            "{ admin = \"manager\", member = [] }",
            "{ admin = \"manager\", member = [\"responder\", \"manager\"] }",
        ] {
            let errors = check(&with_roles(bad));
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        }
    }

    #[test]
    fn vendor_codes_may_be_numbers_and_a_wrong_one_is_explained() {
        let rules = |codes: &str| {
            format!("{MINIMAL}[[errors.rules]]\nvendor_code = {codes}\ncode = \"not_found\"\n")
        };
        for ok in ["2001", "\"InvalidParameter\"", "[\"Unauthorized\", 4010]"] {
            let compiled = compile(Path::new("t.toml"), &rules(ok));
            assert!(compiled.is_ok(), "{ok}: {:?}", compiled.err());
        }
        let mapping = compile(Path::new("t.toml"), &rules("[\"Unauthorized\", 4010]")).unwrap();
        assert_eq!(
            mapping.error_rules[0].vendor_codes,
            ["Unauthorized", "4010"]
        );
        for bad in ["1.5", "true", "[[1]]"] {
            let errors = check(&rules(bad));
            assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
            let (line, reason) = &errors[0];
            assert_eq!(*line, 12, "{bad}: {reason}");
            assert!(
                reason.contains("a vendor error code: a string or an integer")
                    && !reason.contains("untagged"),
                "{bad}: {reason}"
            );
        }
    }

    /// The one error of a file that does not deserialize.
    fn one(source: &str) -> (usize, String) {
        let errors = check(source);
        assert_eq!(errors.len(), 1, "{source}\n{errors:?}");
        errors.into_iter().next().unwrap()
    }

    #[test]
    fn a_wrong_value_names_its_key_and_the_form_expected() {
        let head = "vendor = \"x\"\n[team]\nid = \"$.id\"\n";
        let named = format!("{head}name = \"$.name\"\n");
        for (source, line, wanted) in [
            (
                format!("{head}name = 5\n"),
                4,
                "`team.name`: expected a JSONPath in quotes (`name = \"$.name\"`) or a table",
            ),
            (
                format!("{head}name = {{ format = \"unix\" }}\n"),
                4,
                "`team.name` needs `path` (`name = { path = \"$.name\" }`)",
            ),
            (
                format!("{head}[team.name]\nformat = \"unix\"\n"),
                4,
                "`team.name` needs `path`",
            ),
            (
                format!("{named}[[errors.rules]]\ncode = \"x\"\n[[errors.rules]]\nstatus = []\ncode = \"x\"\n"),
                8,
                "`errors.rules[2].status`: expected an HTTP status from 100 to 599, one number or a list (`status = 404` or `status = [400, 422]`), found an empty list",
            ),
            (
                format!("{named}[[errors.rules]]\nstatus = 4040\ncode = \"x\"\n"),
                6,
                "`errors.rules[1].status`: expected an HTTP status from 100 to 599",
            ),
            (
                format!("{named}[limits]\nrequests_per_minute = 1.5\n"),
                6,
                "`limits.requests_per_minute`: expected a whole number (`requests_per_minute = 600`), found the number `1.5`",
            ),
            (
                format!("{named}[[operations.get_team.steps]]\nmethod = \"GET\"\npath = \"/t\"\nrequire = \"$.x\"\n"),
                8,
                "`operations.get_team.steps[1].require`: expected a list (`require = [\"$.steps.get.body.id\"]`), found the text \"$.x\"",
            ),
            (
                format!("{named}[operations.get_team]\nsteps = 3\n"),
                6,
                "`operations.get_team.steps`: expected a list of tables, each under its own `[[operations.get_team.steps]]` header",
            ),
            (
                format!("{named}[operations.get_team]\nread = 1\n"),
                6,
                "`operations.get_team.read`: expected text in quotes (`read = \"get_team\"`), found the number `1`",
            ),
            (
                format!("{named}[people]\nitems = \"$.x\"\nuser_id = \"$.id\"\n[[people.steps]]\nmethod = 1\n"),
                9,
                "`people.steps[1].method`: expected text in quotes (`method = \"GET\"`)",
            ),
            (
                "vendor = \"x\"\n[team]\nid = \"$.id\"\n".to_string(),
                2,
                "`team` needs `name` (`name = \"$.name\"`)",
            ),
            (
                "[team]\nid = \"$.id\"\nname = \"$.name\"\n".to_string(),
                1,
                "the mapping needs `vendor` (`vendor = \"acme\"`)",
            ),
        ] {
            let (got_line, reason) = one(&source);
            assert_eq!(got_line, line, "{source}\n{reason}");
            assert!(reason.starts_with(wanted), "{source}\n{reason:?}\nlacks {wanted:?}");
        }
    }

    #[test]
    fn the_key_path_survives_awkward_sources() {
        // CRLF line endings, no final newline, a key on the last line.
        let crlf = "vendor = \"x\"\r\n[team]\r\nid = \"$.id\"\r\nname = 5";
        assert_eq!(one(crlf).0, 4);
        assert!(
            one(crlf).1.starts_with("`team.name`: expected a JSONPath"),
            "{:?}",
            one(crlf)
        );
        // Quoted and unicode keys are named as written, a dot inside quotes is no separator.
        let quoted = "vendor = \"x\"\n\"a.b\" = 1\n[team]\nid = \"$.id\"\nname = \"$.name\"\n";
        assert!(
            one(quoted).1.starts_with("`\"a.b\"`: unknown key"),
            "{:?}",
            one(quoted)
        );
        let unicode = "vendor = \"x\"\n[team]\nid = \"$.id\"\nname = \"$.name\"\n\"équipe\" = 1\n";
        assert!(
            one(unicode).1.starts_with("`team.\"équipe\"`: unknown key"),
            "{:?}",
            one(unicode)
        );
        // A header-like line inside a multi-line string or array is not a header.
        let hidden = "vendor = \"x\"\nabout = \"\"\"\n[limits]\n\"\"\"\n[team]\nid = \"$.id\"\nname = \"$.name\"\n[[operations.get_team.steps]]\nmethod = \"GET\"\npath = \"/t\"\nbody = [\n[1],\n]\nwhen = 1\n";
        assert_eq!(
            one(hidden),
            (
                14,
                "`operations.get_team.steps[1].when`: expected text in quotes (`when = \"$.steps.get.body\"`), found the number `1`".to_string()
            )
        );
        // An inline table is named by its outer key.
        let inline = "vendor = \"x\"\n[team]\nid = \"$.id\"\nname = \"$.name\"\n[[operations.get_team.steps]]\nmethod = \"GET\"\npath = \"/t\"\nquery = { a = 1 }\n";
        assert!(
            one(inline)
                .1
                .starts_with("`operations.get_team.steps[1].query`"),
            "{:?}",
            one(inline)
        );
    }

    #[test]
    fn no_prefix_of_a_broken_file_panics() {
        let broken = "vendor = \"x\"\r\n[team]\nid = { path = \"$.id\", fromat = 1 }\n\"n.m\" = '''\n[x]\n'''\n[[errors.rules]]\nstatus = [400, \"é\"]\n# [[not.a.header]]\n[[operations.get_team.steps]]\nrequire = [\n  1]\n";
        for (at, _) in broken.char_indices() {
            let _ = check(&broken[..at]);
        }
    }
}
