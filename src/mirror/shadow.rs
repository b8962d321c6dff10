//! Shadow reads: a read the primary answered, done again on the mirror in the background and
//! compared on the canonical fields both hold.
//!
//! Compared: `get_team` — `name`, the carried fields both backends hold (`description`,
//! `email`, `parent_id` as the mirror's id of the paired parent), and the inline member lists
//! where both answers have one; `list_members` — the members by email (`members`) and, where
//! both backends have roles, their roles (`role`). Empty text and null are the same. A team
//! with no counterpart on the mirror is a mismatch of field `team`. Answers with members whose
//! details are missing (`partial`) and teams with mirror jobs still waiting are not compared.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde_json::Value;

use super::{describe, Mirror, LOG_FIRST};
use crate::canonical::{CanonicalRequest, CanonicalResponse, Operation};
use crate::error::ErrorCode;
use crate::migrate::CARRIED_FIELDS;

/// Does `request` again on the mirror and counts how its answer differs from `answer`.
pub(super) async fn compare(
    mirror: &Mirror,
    request: &CanonicalRequest,
    answer: &CanonicalResponse,
) {
    let backend = mirror.primary.as_str();
    let op = request.op;
    let Some(x_id) = request.team_id.as_deref() else {
        return mirror.metrics.shadow(backend, "skipped");
    };
    if answer.partial || mirror.queue.pending_for(x_id) {
        return mirror.metrics.shadow(backend, "skipped");
    }
    let x_body = answer.json().unwrap_or_default();
    let (x, y) = match (
        mirror.side(&mirror.primary),
        mirror.side(&mirror.settings.target),
    ) {
        (Ok(x), Ok(y)) => (x, y),
        _ => return mirror.metrics.shadow(backend, "failed"),
    };
    let y_id = match mirror.pair(x_id) {
        Some(id) => Some(id),
        None => {
            // Not remembered: by name, as a replay would pair it.
            let name = x_body["name"].as_str();
            let sides = super::replay::Sides::new(mirror, x.clone(), y.clone());
            match sides.counterpart(x_id, name).await {
                Ok(found) => found,
                Err(_) => return mirror.metrics.shadow(backend, "failed"),
            }
        }
    };
    let mut differ: Vec<(&'static str, Value, Value)> = Vec::new();
    let y_body = match y_id {
        None => None,
        Some(y_id) => {
            let mut again = request.clone();
            again.team_id = Some(y_id);
            again.include_vendor = false;
            match mirror.call(&y.name, &again).await {
                Ok(y_answer) if y_answer.partial => {
                    return mirror.metrics.shadow(backend, "skipped")
                }
                Ok(y_answer) => Some(y_answer.json().unwrap_or_default()),
                Err(e) if e.code == ErrorCode::NotFound => None,
                Err(e) => {
                    tracing::debug!(backend, reason = %describe(&e), "Mirror: shadow read failed");
                    return mirror.metrics.shadow(backend, "failed");
                }
            }
        }
    };
    match y_body {
        None => differ.push(("team", Value::String(x_id.into()), Value::Null)),
        Some(y_body) => {
            let (x_holds, y_holds) = (x.holds(), y.holds());
            let roles = x_holds.roles && y_holds.roles;
            match op {
                Operation::GetTeam => {
                    if text(&x_body["name"]) != text(&y_body["name"]) {
                        differ.push(("name", x_body["name"].clone(), y_body["name"].clone()));
                    }
                    for field in CARRIED_FIELDS {
                        if !(x_holds.has(field) && y_holds.has(field)) {
                            continue;
                        }
                        let (a, b) = (&x_body[*field], &y_body[*field]);
                        let same = if *field == "parent_id" {
                            match text(a) {
                                None => text(b).is_none(),
                                Some(x_parent) => match mirror.pair(&x_parent) {
                                    Some(y_parent) => text(b) == Some(y_parent),
                                    // The parent is not paired: cannot be told.
                                    None => true,
                                },
                            }
                        } else {
                            text(a) == text(b)
                        };
                        if !same {
                            differ.push((field, a.clone(), b.clone()));
                        }
                    }
                    if let (Some(a), Some(b)) =
                        (x_body["members"].as_array(), y_body["members"].as_array())
                    {
                        members(a, b, roles, &mut differ);
                    }
                }
                Operation::ListMembers => {
                    let a = x_body["members"].as_array().cloned().unwrap_or_default();
                    let b = y_body["members"].as_array().cloned().unwrap_or_default();
                    members(&a, &b, roles, &mut differ);
                }
                _ => return mirror.metrics.shadow(backend, "skipped"),
            }
        }
    }
    if differ.is_empty() {
        return mirror.metrics.shadow(backend, "match");
    }
    mirror.metrics.shadow(backend, "mismatch");
    for (field, a, b) in differ {
        mirror.metrics.mismatch(backend, op.name(), field);
        if mirror.mismatches_logged.fetch_add(1, Ordering::Relaxed) < LOG_FIRST {
            tracing::warn!(
                backend,
                mirror = %mirror.settings.target,
                operation = op.name(),
                field,
                team_id = %clip(x_id),
                primary = %clip(&a.to_string()),
                mirrored = %clip(&b.to_string()),
                "Mirror: a shadow read differs (only the first few are logged; all are counted)"
            );
        }
    }
}

/// Members compared by email (lower-cased): who is there, and roles where both have them.
fn members(a: &[Value], b: &[Value], roles: bool, differ: &mut Vec<(&'static str, Value, Value)>) {
    let by_email = |list: &[Value]| -> BTreeMap<String, String> {
        list.iter()
            .filter_map(|m| {
                Some((
                    m["email"].as_str()?.to_lowercase(),
                    m["role"].as_str().unwrap_or("member").to_string(),
                ))
            })
            .collect()
    };
    let (a, b) = (by_email(a), by_email(b));
    let emails = |m: &BTreeMap<String, String>| {
        Value::Array(m.keys().map(|e| Value::String(e.clone())).collect())
    };
    if a.keys().ne(b.keys()) {
        differ.push(("members", emails(&a), emails(&b)));
    }
    if roles {
        let changed: Vec<&String> = a
            .iter()
            .filter(|(email, role)| b.get(*email).is_some_and(|r| r != *role))
            .map(|(email, _)| email)
            .collect();
        if !changed.is_empty() {
            let list = Value::Array(
                changed
                    .iter()
                    .map(|e| Value::String((*e).clone()))
                    .collect(),
            );
            differ.push(("role", list, Value::Null));
        }
    }
}

/// A string value, `None` for null and the empty string.
fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// A value for a log line: redacted (it comes from a vendor) and cut to 80 characters.
fn clip(s: &str) -> String {
    let masked = crate::redact::redact(s, &[]);
    let mut out: String = masked.chars().take(80).collect();
    if masked.chars().count() > 80 {
        out.push('…');
    }
    out
}
