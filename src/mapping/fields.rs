//! Field correspondences: canonical field ↔ vendor JSONPath, declared once per resource.
//!
//! A [`FieldMap`] turns a vendor object (a team, a member, a user) into the canonical one.
//! Every vendor member that no field consumed is kept, untouched, under `vendor`: nothing a
//! vendor returns is lost. Only plain member paths (`$.a.b`) can be consumed; a field read
//! through a filter or wildcard leaves the vendor object as it was.

use std::borrow::Cow;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::expr::Expr;

/// How a vendor value becomes the canonical one.
#[derive(Debug, Clone)]
pub enum Kind {
    /// Any scalar, as a string (ids are always strings in the canonical form).
    Id,
    /// A string, as it is.
    Text,
    /// An integer, or the length of the array at the path.
    Count { count_array: bool },
    /// A timestamp, normalized to RFC 3339 UTC.
    Time(TimeFormat),
    /// A role: canonical value ↔ vendor values (the first of a canonical role is what writes
    /// send), and what a vendor role listed nowhere reads as.
    Role {
        values: Vec<(String, Value)>,
        unknown: UnknownRole,
    },
    /// The inline member list of a team, each element read with the member map.
    Members,
}

/// What a vendor role that the role map does not list reads as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownRole {
    /// This canonical role (`member` unless the mapping says otherwise); the vendor's own
    /// value stays under `vendor`.
    As(String),
    /// The answer is an upstream error that names the role: for mappings that would rather
    /// fail than show a permission they cannot name.
    Refuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    Rfc3339,
    UnixSeconds,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub path: Expr,
    pub kind: Kind,
    /// Shown but never written by this backend: writing it is refused (`read_only = true`).
    pub read_only: bool,
    /// The member names of a plain path, for removing it from the `vendor` leftovers.
    plain: Option<Vec<String>>,
}

impl Field {
    pub fn new(name: &'static str, path: Expr, kind: Kind) -> Field {
        let plain = plain_members(path.source());
        Field {
            name,
            path,
            kind,
            read_only: false,
            plain,
        }
    }

    /// The canonical value of this field in `source` (`null` when absent or unconvertible).
    pub fn read_value(&self, source: &Value) -> Value {
        match self.path.eval(source).ok().flatten() {
            Some(raw) => convert(&self.kind, &raw).unwrap_or(Value::Null),
            None => Value::Null,
        }
    }
}

/// The fields of one resource, in canonical order.
#[derive(Debug, Clone, Default)]
pub struct FieldMap {
    pub fields: Vec<Field>,
}

impl FieldMap {
    pub fn get(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Reads a vendor object into canonical members `names` (in that order, `null` when the
    /// vendor has no value), plus, with `leftovers`, `vendor` with everything not consumed.
    /// `members` reads the inline member list with `member_map`. The object is taken, not
    /// copied: what no field consumed becomes `vendor` as it is.
    pub fn read(
        &self,
        object: Value,
        names: &[&str],
        member_map: Option<&FieldMap>,
        leftovers: bool,
    ) -> Value {
        // The canonical names, plus `backend` and `vendor` added by the callers.
        let mut out = Map::with_capacity(names.len() + 2);
        let mut consumed: Vec<&[String]> = Vec::new();
        for name in names {
            let Some(field) = self.get(name) else {
                if *name != "members" {
                    out.insert((*name).to_string(), Value::Null);
                }
                continue;
            };
            // Most fields are plain paths: read in place, copied once, by `convert`.
            let raw = match field.path.lookup(&object) {
                Some(found) => found.map(Cow::Borrowed),
                None => field.path.eval(&object).ok().flatten().map(Cow::Owned),
            };
            let converted = match (&field.kind, raw) {
                (_, None) => Some(Value::Null),
                (Kind::Members, Some(raw)) => match (member_map, raw.as_ref()) {
                    (Some(m), Value::Array(items)) => Some(Value::Array(
                        items
                            .iter()
                            .map(|item| m.read(item.clone(), MEMBER_FIELDS, None, leftovers))
                            .collect(),
                    )),
                    _ => None,
                },
                (Kind::Role { values, unknown }, Some(raw)) => {
                    match convert(&field.kind, &raw) {
                        // A canonical role that stands for several vendor roles does not say
                        // which: the vendor's own stays under `vendor`.
                        Some(role)
                            if values.iter().filter(|(c, _)| role == c.as_str()).count() > 1 =>
                        {
                            out.insert((*name).to_string(), role);
                            continue;
                        }
                        Some(role) => Some(role),
                        // Not consumed: the vendor's own role stays visible under `vendor`.
                        None => {
                            let fallback = match unknown {
                                UnknownRole::As(role) if !values.is_empty() => {
                                    Value::String(role.clone())
                                }
                                _ => Value::Null,
                            };
                            out.insert((*name).to_string(), fallback);
                            continue;
                        }
                    }
                }
                (kind, Some(raw)) => convert(kind, &raw),
            };
            match converted {
                Some(value) => {
                    if let (true, Some(plain)) = (leftovers, &field.plain) {
                        consumed.push(plain);
                    }
                    out.insert((*name).to_string(), value);
                }
                // A value that does not convert stays under `vendor`, where it can be seen.
                None => {
                    out.insert((*name).to_string(), Value::Null);
                }
            }
        }
        if !leftovers {
            return Value::Object(out);
        }
        let mut rest = object;
        for plain in consumed {
            remove_plain(&mut rest, plain);
        }
        let vendor = match rest {
            Value::Null => Value::Object(Map::new()),
            Value::Object(_) => rest,
            other => serde_json::json!({ "value": other }),
        };
        out.insert("vendor".into(), vendor);
        Value::Object(out)
    }

    /// The vendor value of a canonical role, if the map declares roles.
    pub fn vendor_role(&self, canonical: &str) -> Option<Value> {
        self.vendor_roles(canonical).first().cloned()
    }

    /// Every vendor value that reads as this canonical role (the first is what writes send).
    pub fn vendor_roles(&self, canonical: &str) -> Vec<Value> {
        match self.get("role").map(|f| &f.kind) {
            Some(Kind::Role { values, .. }) => values
                .iter()
                .filter(|(c, _)| c == canonical)
                .map(|(_, v)| v.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// With `unknown = "refuse"`: the vendor role of `object` that the role map does not list.
    pub fn refused_role(&self, object: &Value) -> Option<Value> {
        let field = self.get("role")?;
        let Kind::Role {
            unknown: UnknownRole::Refuse,
            ..
        } = &field.kind
        else {
            return None;
        };
        let raw = field.path.eval(object).ok().flatten()?;
        convert(&field.kind, &raw).is_none().then_some(raw)
    }

    /// Whether the backend holds this field and accepts writes of it.
    pub fn writable(&self, name: &str) -> bool {
        self.get(name).is_some_and(|f| !f.read_only)
    }
}

/// Canonical member fields, in output order.
pub const MEMBER_FIELDS: &[&str] = &["user_id", "email", "username", "role"];
/// Canonical user fields, in output order.
pub const USER_FIELDS: &[&str] = &["id", "email", "username", "name"];

fn convert(kind: &Kind, raw: &Value) -> Option<Value> {
    match kind {
        Kind::Id => match raw {
            Value::String(s) => Some(Value::String(s.clone())),
            Value::Number(n) => Some(Value::String(n.to_string())),
            _ => None,
        },
        Kind::Text => match raw {
            Value::String(s) => Some(Value::String(s.clone())),
            Value::Number(n) => Some(Value::String(n.to_string())),
            _ => None,
        },
        Kind::Count { count_array: true } => raw.as_array().map(|a| Value::from(a.len())),
        Kind::Count { count_array: false } => raw.as_u64().map(Value::from),
        Kind::Time(format) => time_to_rfc3339(raw, *format).map(Value::String),
        Kind::Role { values, .. } => values
            .iter()
            .find(|(_, vendor)| loose_eq(vendor, raw))
            .map(|(canonical, _)| Value::String(canonical.clone())),
        // Handled by the caller (needs the member map).
        Kind::Members => None,
    }
}

/// Vendor values compare loosely: `4` and `"4"` are the same role.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::Number(n)) | (Value::Number(n), Value::String(x)) => {
            *x == n.to_string()
        }
        _ => a == b,
    }
}

fn time_to_rfc3339(raw: &Value, format: TimeFormat) -> Option<String> {
    let instant = match format {
        TimeFormat::UnixSeconds => OffsetDateTime::from_unix_timestamp(raw.as_i64()?).ok()?,
        TimeFormat::Rfc3339 => OffsetDateTime::parse(raw.as_str()?, &Rfc3339).ok()?,
    };
    instant
        .to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .ok()
}

/// `$.a.b` → `["a", "b"]`, `$` → `[]` (the whole value); `None` for anything else.
fn plain_members(source: &str) -> Option<Vec<String>> {
    if source == "$" {
        return Some(Vec::new());
    }
    let rest = source.strip_prefix("$.")?;
    let names: Vec<String> = rest.split('.').map(str::to_string).collect();
    let plain = names.iter().all(|n| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    (plain && !source.contains('|')).then_some(names)
}

fn remove_plain(value: &mut Value, names: &[String]) {
    let Some((last, parents)) = names.split_last() else {
        // `$` consumed the whole value: nothing is left for `vendor`.
        *value = Value::Object(Map::new());
        return;
    };
    let mut cursor = value;
    for name in parents {
        match cursor.get_mut(name) {
            Some(next) => cursor = next,
            None => return,
        }
    }
    if let Some(object) = cursor.as_object_mut() {
        object.shift_remove(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(name: &'static str, path: &str, kind: Kind) -> Field {
        Field::new(name, Expr::parse(path).unwrap(), kind)
    }

    #[test]
    fn reads_fields_and_keeps_the_rest_under_vendor() {
        let map = FieldMap {
            fields: vec![
                field("id", "$.id", Kind::Id),
                field("name", "$.attributes.name", Kind::Text),
                field(
                    "created_at",
                    "$.attributes.created",
                    Kind::Time(TimeFormat::UnixSeconds),
                ),
            ],
        };
        let vendor =
            json!({"id": 5, "type": "team", "attributes": {"name": "A", "created": 0, "x": 1}});
        let names = &["id", "name", "description", "created_at"];
        let plain = map.read(vendor.clone(), names, None, false);
        assert_eq!(plain.get("vendor"), None, "leftovers only when asked");
        let team = map.read(vendor, names, None, true);
        assert_eq!(team.as_object().unwrap().len(), 5);
        assert_eq!(plain.as_object().unwrap().len(), 4);
        assert_eq!(team["id"], "5");
        assert_eq!(team["name"], "A");
        assert_eq!(team["description"], Value::Null);
        assert_eq!(team["created_at"], "1970-01-01T00:00:00Z");
        assert_eq!(
            team["vendor"],
            json!({"type": "team", "attributes": {"x": 1}})
        );
    }

    #[test]
    fn roles_map_both_ways_and_times_normalize_to_utc() {
        let map = FieldMap {
            fields: vec![field(
                "role",
                "$.permission",
                Kind::Role {
                    values: vec![("admin".into(), json!(4)), ("member".into(), json!(0))],
                    unknown: UnknownRole::As("member".into()),
                },
            )],
        };
        assert_eq!(
            map.read(json!({"permission": 4}), &["role"], None, false)["role"],
            "admin"
        );
        assert_eq!(map.vendor_role("member"), Some(json!(0)));
        assert_eq!(
            time_to_rfc3339(&json!("2024-01-02T03:04:05+02:00"), TimeFormat::Rfc3339).unwrap(),
            "2024-01-02T01:04:05Z"
        );
    }
}
