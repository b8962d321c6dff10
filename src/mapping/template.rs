//! Templates: how a mapping builds vendor paths, query values, headers and JSON bodies.
//!
//! - [`TextTemplate`]: text with `{expression}` placeholders (`/api/teams/{path.id}`; the `$.`
//!   may be left out). Rendered as a path, each placeholder is percent-encoded as ONE path
//!   segment, so no value can add a segment, a query or a fragment. A placeholder that is
//!   absent makes the whole text absent (a query parameter is then left out).
//! - [`ValueTemplate`]: a JSON body. A string starting with `$` is an [`Expr`]; any other value
//!   is literal; object members whose expression is absent are left out, and so is a nested
//!   object whose expressions are all absent (its literals alone do not keep it).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};

use super::expr::{ConvertError, Expr};

/// Everything but RFC 3986 unreserved characters is encoded, in path segments and queries.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query component.
pub fn encode_component(raw: &str) -> String {
    utf8_percent_encode(raw, COMPONENT).to_string()
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Expr(Expr),
    /// `{credential}`: only allowed in the auth section.
    Credential,
    /// `{token}`: the access token of `[auth.token]`; only allowed in the auth section.
    Token,
}

/// The secrets a template may put in a request: only auth templates ever get real ones.
#[derive(Clone, Copy)]
pub struct Secrets<'a> {
    pub credential: &'a str,
    pub token: &'a str,
}

impl Secrets<'static> {
    /// For templates that may not use secrets (they cannot: parsing refused them).
    pub const NONE: Secrets<'static> = Secrets {
        credential: "",
        token: "",
    };
}

/// Text with placeholders.
#[derive(Debug, Clone)]
pub struct TextTemplate {
    parts: Vec<Part>,
}

/// How rendered placeholder values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Each value percent-encoded as one path segment.
    PathSegment,
    /// Values as they are (query values and headers are encoded or checked by their caller).
    None,
}

impl TextTemplate {
    /// Parses `source`. `allow_secrets` admits the `{credential}` and `{token}` placeholders.
    pub fn parse(source: &str, allow_secrets: bool) -> Result<TextTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` in `{source}`"))?;
            let inner = after[..close].trim();
            if inner == "credential" || inner == "token" {
                if !allow_secrets {
                    return Err(format!(
                        "`{{{inner}}}` may only be used in the [auth] section (`headers = {{ Authorization = \"Bearer {{credential}}\" }}`)"
                    ));
                }
                parts.push(if inner == "token" {
                    Part::Token
                } else {
                    Part::Credential
                });
            } else {
                let full = if inner.starts_with('$') {
                    inner.to_string()
                } else {
                    format!("$.{inner}")
                };
                parts.push(Part::Expr(Expr::parse(&full)?));
            }
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("stray `}}` in `{source}`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(TextTemplate { parts })
    }

    /// Renders the text; `Ok(None)` when a placeholder is absent.
    pub fn render(
        &self,
        ctx: &Value,
        secrets: Secrets<'_>,
        escape: Escape,
    ) -> Result<Option<String>, ConvertError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Credential => out.push_str(secrets.credential),
                Part::Token => out.push_str(secrets.token),
                Part::Expr(expr) => {
                    let Some(value) = expr.eval(ctx)? else {
                        return Ok(None);
                    };
                    let text = match value {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        other => other.to_string(),
                    };
                    match escape {
                        Escape::PathSegment => out.push_str(&encode_component(&text)),
                        Escape::None => out.push_str(&text),
                    }
                }
            }
        }
        Ok(Some(out))
    }

    /// Whether the template uses `{token}`.
    pub fn uses_token(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Token))
    }
}

/// A JSON body template.
#[derive(Debug, Clone)]
pub enum ValueTemplate {
    Literal(Value),
    Expr(Expr),
    Object(Vec<(String, ValueTemplate)>),
    Array(Vec<ValueTemplate>),
    /// `{ "$each" = "<expression of an array>", "$as" = <template> }`: the template once per
    /// element, which it reads as `$.item` (and nothing else).
    Each(Expr, Box<ValueTemplate>),
}

impl ValueTemplate {
    /// Compiles a TOML value into a template; errors name the member at fault.
    pub fn compile(value: &toml::Value) -> Result<ValueTemplate, String> {
        Ok(match value {
            toml::Value::String(s) if s.starts_with("$$") => {
                ValueTemplate::Literal(Value::String(s[1..].to_string()))
            }
            toml::Value::String(s) if s.starts_with('$') => ValueTemplate::Expr(Expr::parse(s)?),
            toml::Value::String(s) => ValueTemplate::Literal(Value::String(s.clone())),
            toml::Value::Integer(i) => ValueTemplate::Literal(Value::from(*i)),
            toml::Value::Float(f) => ValueTemplate::Literal(
                serde_json::Number::from_f64(*f)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{f} is not a JSON number"))?,
            ),
            toml::Value::Boolean(b) => ValueTemplate::Literal(Value::Bool(*b)),
            toml::Value::Datetime(d) => ValueTemplate::Literal(Value::String(d.to_string())),
            toml::Value::Array(items) => ValueTemplate::Array(
                items
                    .iter()
                    .map(ValueTemplate::compile)
                    .collect::<Result<_, _>>()?,
            ),
            toml::Value::Table(table) if table.contains_key("$each") => {
                let (Some(toml::Value::String(source)), Some(each), 2) =
                    (table.get("$each"), table.get("$as"), table.len())
                else {
                    return Err(
                        "`$each` takes a string expression and a `$as` template, and nothing else"
                            .into(),
                    );
                };
                ValueTemplate::Each(
                    Expr::parse(source)?,
                    Box::new(ValueTemplate::compile(each)?),
                )
            }
            toml::Value::Table(table) => ValueTemplate::Object(
                table
                    .iter()
                    .map(|(k, v)| {
                        ValueTemplate::compile(v)
                            .map(|t| (k.clone(), t))
                            .map_err(|e| format!("in `{k}`: {e}"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// Renders the body; `Ok(None)` when the whole value is absent. The body itself is always
    /// an object (or array) when it is one; a nested object whose expressions are all absent is
    /// left out, whatever literals it holds (`parent = { id = "$.input.parent_id", type =
    /// "team_reference" }` sends no `parent` for a team without one).
    pub fn render(&self, ctx: &Value) -> Result<Option<Value>, ConvertError> {
        self.render_at(ctx, false)
    }

    /// Whether any expression is inside: only literals is a constant, always sent.
    fn reads(&self) -> bool {
        match self {
            ValueTemplate::Literal(_) => false,
            ValueTemplate::Expr(_) | ValueTemplate::Each(..) => true,
            ValueTemplate::Object(members) => members.iter().any(|(_, t)| t.reads()),
            ValueTemplate::Array(items) => items.iter().any(ValueTemplate::reads),
        }
    }

    fn render_at(&self, ctx: &Value, nested: bool) -> Result<Option<Value>, ConvertError> {
        Ok(match self {
            ValueTemplate::Literal(v) => Some(v.clone()),
            ValueTemplate::Expr(e) => e.eval(ctx)?,
            ValueTemplate::Object(members) => {
                let mut map = Map::new();
                let mut read_something = false;
                for (key, template) in members {
                    if let Some(v) = template.render_at(ctx, true)? {
                        read_something |= template.reads();
                        map.insert(key.clone(), v);
                    }
                }
                if nested && !read_something && self.reads() {
                    return Ok(None);
                }
                Some(Value::Object(map))
            }
            ValueTemplate::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(v) = item.render_at(ctx, true)? {
                        out.push(v);
                    }
                }
                Some(Value::Array(out))
            }
            ValueTemplate::Each(source, template) => match source.eval(ctx)? {
                None => None,
                Some(Value::Array(elements)) => {
                    let mut out = Vec::with_capacity(elements.len());
                    for element in elements {
                        let item_ctx = serde_json::json!({ "item": element });
                        if let Some(v) = template.render_at(&item_ctx, true)? {
                            out.push(v);
                        }
                    }
                    Some(Value::Array(out))
                }
                Some(_) => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn path_placeholders_are_one_encoded_segment() {
        let t = TextTemplate::parse("/api/teams/{path.id}/members", false).unwrap();
        for (id, want) in [
            ("7", "/api/teams/7/members"),
            ("../x", "/api/teams/..%2Fx/members"),
            ("1?a=b", "/api/teams/1%3Fa%3Db/members"),
            ("%2F..", "/api/teams/%252F../members"),
            ("ü", "/api/teams/%C3%BC/members"),
            ("a#b c", "/api/teams/a%23b%20c/members"),
        ] {
            let ctx = json!({"path": {"id": id}});
            let got = t
                .render(&ctx, Secrets::NONE, Escape::PathSegment)
                .unwrap()
                .unwrap();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn absent_placeholder_makes_the_text_absent() {
        let t = TextTemplate::parse("eq:{query.name}", false).unwrap();
        assert_eq!(
            t.render(&json!({}), Secrets::NONE, Escape::None).unwrap(),
            None
        );
    }

    #[test]
    fn credential_only_where_allowed() {
        assert!(TextTemplate::parse("Bearer {credential}", false).is_err());
        let t = TextTemplate::parse("Bearer {credential}", true).unwrap();
        let secrets = Secrets {
            credential: "s3cret",
            token: "t0k",
        };
        assert_eq!(
            t.render(&json!({}), secrets, Escape::None)
                .unwrap()
                .unwrap(),
            "Bearer s3cret"
        );
        assert!(TextTemplate::parse("Bearer {token}", false).is_err());
        let t = TextTemplate::parse("Bearer {token}", true).unwrap();
        assert!(t.uses_token());
        assert_eq!(
            t.render(&json!({}), secrets, Escape::None)
                .unwrap()
                .unwrap(),
            "Bearer t0k"
        );
    }

    #[test]
    fn each_renders_one_element_per_item() {
        let toml: toml::Value = toml::from_str(
            "members = { \"$each\" = \"$.input.members\", \"$as\" = { user = { id = \"$.item.user_id\" }, role = \"$.item.vendor_role\" } }",
        )
        .unwrap();
        let t = ValueTemplate::compile(&toml).unwrap();
        let ctx = json!({"input": {"members": [{"user_id": "a", "vendor_role": "admin"}, {"user_id": "b"}]}});
        assert_eq!(
            t.render(&ctx).unwrap().unwrap(),
            json!({"members": [{"user": {"id": "a"}, "role": "admin"}, {"user": {"id": "b"}}]})
        );
        let bad: toml::Value = toml::from_str("m = { \"$each\" = \"$.x\" }").unwrap();
        assert!(ValueTemplate::compile(&bad).is_err());
    }

    #[test]
    fn bodies_drop_absent_members_and_keep_literals() {
        let toml: toml::Value = toml::from_str(
            "data = { type = \"team\", attributes = { name = \"$.input.name\", parent = \"$.input.parent_id\" } }\nn = 1\ndollar = \"$$x\"",
        )
        .unwrap();
        let t = ValueTemplate::compile(&toml).unwrap();
        let body = t.render(&json!({"input": {"name": "A"}})).unwrap().unwrap();
        assert_eq!(
            body,
            json!({"data": {"type": "team", "attributes": {"name": "A"}}, "n": 1, "dollar": "$x"})
        );
    }

    #[test]
    fn a_nested_object_with_every_expression_absent_is_left_out() {
        let toml: toml::Value = toml::from_str(
            "name = \"$.input.name\"\nparent = { id = \"$.input.parent_id\", type = \"team_reference\" }\nkind = { type = \"team\" }\nrefs = [{ id = \"$.input.parent_id\", type = \"t\" }, \"$.input.name\"]",
        )
        .unwrap();
        let t = ValueTemplate::compile(&toml).unwrap();
        assert_eq!(
            t.render(&json!({"input": {"name": "A"}})).unwrap().unwrap(),
            json!({"name": "A", "kind": {"type": "team"}, "refs": ["A"]}),
            "no parent: no `parent` object; a constant object is kept"
        );
        assert_eq!(
            t.render(&json!({"input": {"name": "A", "parent_id": "P"}}))
                .unwrap()
                .unwrap(),
            json!({"name": "A", "parent": {"id": "P", "type": "team_reference"}, "kind": {"type": "team"}, "refs": [{"id": "P", "type": "t"}, "A"]})
        );
        // `null` is sent only when asked for.
        let null: toml::Value =
            toml::from_str("parent_id = \"$.input.parent_id | default(null)\"").unwrap();
        let t = ValueTemplate::compile(&null).unwrap();
        assert_eq!(
            t.render(&json!({"input": {}})).unwrap().unwrap(),
            json!({"parent_id": null})
        );
        // The body itself stays, empty, when nothing in it is present.
        let only: toml::Value = toml::from_str("name = \"$.input.name\"").unwrap();
        let t = ValueTemplate::compile(&only).unwrap();
        assert_eq!(t.render(&json!({"input": {}})).unwrap().unwrap(), json!({}));
    }
}
