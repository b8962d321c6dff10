//! Validation of canonical input, before any upstream call (DESIGN §1 "Names").
//!
//! Canonical rules only: names trimmed, 1..=100 characters and free of control characters;
//! descriptions up to 10,000 characters; no unknown or read-only fields. A backend's stricter
//! limits are declared in its mapping and checked by the engine.

use serde_json::{Map, Value};

use crate::error::Error;

pub const NAME_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 10_000;
const EMAIL_MAX: usize = 254;
const ID_MAX: usize = 256;

/// Team fields a caller may write. `members` is the whole member list (PATCH replaces it).
pub const TEAM_WRITABLE: &[&str] = &["name", "description", "email", "parent_id", "members"];
/// Most members a team body may list.
pub const MEMBERS_MAX: usize = 1000;
/// Team fields only the backend sets.
const TEAM_READ_ONLY: &[&str] = &[
    "id",
    "member_count",
    "created_at",
    "updated_at",
    "backend",
    "vendor",
];

/// Whether a create or a partial update is being validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamWrite {
    Create,
    Patch,
}

/// Validates a team body and returns the canonical input (name trimmed).
/// In a patch, `null` clears an optional field and is kept as `null`.
pub fn team_input(body: &Value, mode: TeamWrite) -> Result<Map<String, Value>, Error> {
    let object = body
        .as_object()
        .ok_or_else(|| Error::invalid("the body must be a JSON object"))?;
    let mut input = Map::new();
    for (key, value) in object {
        if TEAM_READ_ONLY.contains(&key.as_str()) {
            return Err(Error::invalid(format!("field `{key}` is read-only")));
        }
        if !TEAM_WRITABLE.contains(&key.as_str()) {
            return Err(Error::invalid(format!("unknown field `{key}`")));
        }
        let clean = match (key.as_str(), value) {
            ("name", Value::String(s)) => Value::String(name(s)?),
            ("name", _) => return Err(Error::invalid("`name` must be a string")),
            (_, Value::Null) if mode == TeamWrite::Patch => Value::Null,
            ("description", Value::String(s)) => {
                if s.chars().count() > DESCRIPTION_MAX {
                    return Err(Error::invalid(format!(
                        "`description` is longer than {DESCRIPTION_MAX} characters"
                    )));
                }
                Value::String(s.clone())
            }
            ("email", Value::String(s)) => Value::String(email(s, "email")?),
            ("parent_id", Value::String(s)) => Value::String(id(s, "parent_id")?),
            ("members", Value::Array(list)) => members(list)?,
            (_, Value::Null) => continue,
            (key, _) => return Err(Error::invalid(format!("`{key}` must be a string"))),
        };
        input.insert(key.clone(), clean);
    }
    if mode == TeamWrite::Create && !input.contains_key("name") {
        return Err(Error::invalid("`name` is required"));
    }
    Ok(input)
}

/// A full member list: `[{"user_id", "role"?}]`, each user once.
fn members(list: &[Value]) -> Result<Value, Error> {
    if list.len() > MEMBERS_MAX {
        return Err(Error::invalid(format!(
            "`members` lists more than {MEMBERS_MAX} members"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for entry in list {
        let object = entry
            .as_object()
            .ok_or_else(|| Error::invalid("each of `members` must be an object with `user_id`"))?;
        let mut member = Map::new();
        for (key, value) in object {
            match (key.as_str(), value) {
                ("user_id", Value::String(s)) => {
                    member.insert("user_id".into(), Value::String(id(s, "members[].user_id")?));
                }
                ("role", Value::String(s)) => {
                    member.insert("role".into(), Value::String(role(s)?));
                }
                ("role", Value::Null) => {}
                _ => {
                    return Err(Error::invalid(format!(
                        "`members[].{key}` is not a member field"
                    )))
                }
            }
        }
        let Some(user) = member.get("user_id").and_then(Value::as_str) else {
            return Err(Error::invalid("each of `members` needs `user_id`"));
        };
        if !seen.insert(user.to_string()) {
            return Err(Error::invalid(format!(
                "user {user:?} is listed twice in `members`"
            )));
        }
        out.push(Value::Object(member));
    }
    Ok(Value::Array(out))
}

/// Validates an add-member body: `user_id` or `email`, and an optional `role`.
pub fn member_input(body: &Value) -> Result<Map<String, Value>, Error> {
    let object = body
        .as_object()
        .ok_or_else(|| Error::invalid("the body must be a JSON object"))?;
    let mut input = Map::new();
    for (key, value) in object {
        let clean = match (key.as_str(), value) {
            (_, Value::Null) => continue,
            ("user_id", Value::String(s)) => Value::String(id(s, "user_id")?),
            ("email", Value::String(s)) => Value::String(email(s, "email")?),
            ("role", Value::String(s)) => Value::String(role(s)?),
            ("user_id" | "email" | "role", _) => {
                return Err(Error::invalid(format!("`{key}` must be a string")))
            }
            ("username", _) => return Err(Error::invalid("field `username` is read-only")),
            _ => return Err(Error::invalid(format!("unknown field `{key}`"))),
        };
        input.insert(key.clone(), clean);
    }
    if !input.contains_key("user_id") && !input.contains_key("email") {
        return Err(Error::invalid("either `user_id` or `email` is required"));
    }
    Ok(input)
}

/// Validates an update-member body: `{"role"}`.
pub fn member_role_input(body: &Value) -> Result<Map<String, Value>, Error> {
    let object = body
        .as_object()
        .ok_or_else(|| Error::invalid("the body must be a JSON object"))?;
    let mut input = Map::new();
    for (key, value) in object {
        match (key.as_str(), value) {
            ("role", Value::String(s)) => {
                input.insert("role".into(), Value::String(role(s)?));
            }
            ("role", _) => return Err(Error::invalid("`role` must be a string")),
            _ => return Err(Error::invalid(format!("unknown field `{key}`"))),
        }
    }
    if !input.contains_key("role") {
        return Err(Error::invalid("`role` is required"));
    }
    Ok(input)
}

/// A team name: trimmed, 1..=100 characters, no control characters.
pub fn name(raw: &str) -> Result<String, Error> {
    let trimmed = raw.trim();
    let length = trimmed.chars().count();
    if length == 0 {
        return Err(Error::invalid("`name` must not be empty"));
    }
    if length > NAME_MAX {
        return Err(Error::invalid(format!(
            "`name` is longer than {NAME_MAX} characters ({length})"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::invalid("`name` must not contain control characters"));
    }
    Ok(trimmed.to_string())
}

fn email(raw: &str, field: &str) -> Result<String, Error> {
    let trimmed = raw.trim();
    let valid = trimmed.len() <= EMAIL_MAX
        && !trimmed.chars().any(|c| c.is_control() || c.is_whitespace())
        && matches!(trimmed.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        Ok(trimmed.to_string())
    } else {
        Err(Error::invalid(format!("`{field}` is not an email address")))
    }
}

fn role(raw: &str) -> Result<String, Error> {
    match raw {
        "admin" | "member" => Ok(raw.to_string()),
        _ => Err(Error::invalid("`role` must be `admin` or `member`")),
    }
}

/// An id given in a body: non-empty, bounded, no control characters.
pub fn id(raw: &str, field: &str) -> Result<String, Error> {
    if raw.is_empty() || raw.len() > ID_MAX || raw.chars().any(char::is_control) {
        return Err(Error::invalid(format!("`{field}` is not a valid id")));
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_trimmed_and_bounded_in_characters() {
        assert_eq!(name("  a b  ").unwrap(), "a b");
        assert!(name("   ").is_err());
        assert!(name(&"x".repeat(101)).is_err());
        assert_eq!(name(&"ü".repeat(100)).unwrap().chars().count(), 100);
        assert!(name("a\u{0}b").is_err());
    }

    #[test]
    fn create_needs_a_name_and_refuses_unknown_and_read_only_fields() {
        assert!(team_input(&json!({}), TeamWrite::Create).is_err());
        assert!(team_input(&json!({"name": "a", "colour": "red"}), TeamWrite::Create).is_err());
        assert!(team_input(&json!({"name": "a", "id": "1"}), TeamWrite::Create).is_err());
        assert!(team_input(&json!([1]), TeamWrite::Create).is_err());
        let ok = team_input(
            &json!({"name": " a ", "description": "d"}),
            TeamWrite::Create,
        )
        .unwrap();
        assert_eq!(ok["name"], "a");
    }

    #[test]
    fn patch_keeps_null_to_clear_but_not_for_name() {
        let ok = team_input(&json!({"description": null}), TeamWrite::Patch).unwrap();
        assert_eq!(ok["description"], Value::Null);
        assert!(team_input(&json!({"name": null}), TeamWrite::Patch).is_err());
    }

    #[test]
    fn member_lists_are_checked_entry_by_entry() {
        let ok = team_input(
            &json!({"members": [{"user_id": "1", "role": "admin"}, {"user_id": "2"}]}),
            TeamWrite::Patch,
        )
        .unwrap();
        assert_eq!(ok["members"][1], json!({"user_id": "2"}));
        for bad in [
            json!({"members": [{"user_id": "1"}, {"user_id": "1"}]}),
            json!({"members": [{"email": "a@b.c"}]}),
            json!({"members": [{"user_id": "1", "role": "owner"}]}),
            json!({"members": ["1"]}),
            json!({"members": "1"}),
        ] {
            assert!(team_input(&bad, TeamWrite::Patch).is_err(), "{bad}");
        }
    }

    #[test]
    fn members_need_a_user_id_or_an_email_and_a_known_role() {
        assert!(member_input(&json!({})).is_err());
        assert!(member_input(&json!({"email": "nope"})).is_err());
        assert!(member_input(&json!({"user_id": "1", "role": "owner"})).is_err());
        assert!(member_input(&json!({"user_id": 1})).is_err());
        assert!(member_input(&json!({"email": "a@b.c", "role": "admin"})).is_ok());
    }
}
