//! How to talk to the vendor: `[auth]` (and its token exchange), `[request]`, `[limits]`,
//! `[errors]` and error rules.

use super::*;

pub(super) fn auth(cx: &mut Ctx, raw: &file::AuthFile) -> Auth {
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

pub(super) fn token_plan(cx: &mut Ctx, spanned: &Spanned<file::TokenFile>) -> Option<TokenPlan> {
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
    let body = cx.body(&raw.body, "auth.token.body");
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

pub(super) fn request(cx: &mut Ctx, raw: &file::RequestFile) -> RequestOptions {
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

pub(super) fn limits(cx: &mut Ctx, raw: &file::LimitsFile) -> Limits {
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
pub(super) fn rate(cx: &mut Ctx, value: &Option<Spanned<i64>>, key: &str) -> Option<u32> {
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

pub(super) fn errors(cx: &mut Ctx, raw: &file::ErrorsFile) -> (ErrorFormat, Vec<ErrorRule>) {
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

pub(super) fn rule(
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
