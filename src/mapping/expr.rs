//! Expressions: an RFC 9535 JSONPath (jsonpath-rust) followed by optional pipes.
//!
//! `$.steps.team.body.data.person_ids | ints` selects a value from the operation context and
//! converts it. An expression is parsed once, at load; evaluating it never parses again.
//!
//! Pipes: `int` (a number, or a string of digits, as a JSON integer), `ints` (each element),
//! `str` (a scalar as a string), `strs`, `first`, `count` (length of an array), `lower`,
//! `or(<expression>)` (the fallback when the value is absent or null), `default(<JSON>)`
//! (a literal fallback), `join(<JSON string>)` (the elements of an array as text, with that
//! separator: `join(",")`), `nullable` (last: a `null` that is there is `null`, not absent).

use jsonpath_rust::parser::model::JpQuery;
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
    query: JpQuery,
    /// The first member name after `$` (`path`, `input`, `steps` ...), used to decide what a
    /// conversion failure means.
    root: String,
    /// For plain member paths (`$.a.b`, most of every mapping): the member names, walked
    /// directly. The general JSONPath evaluator costs ~10x more per lookup.
    plain: Option<Vec<String>>,
    /// With `plain`: the path ends in `[*]` (every element of the array there).
    plain_wildcard: bool,
    pipes: Vec<Pipe>,
    /// `| nullable`: a JSON `null` the path selects is the value `null`, not absent (a merge
    /// patch's `"parent_id": null`, sent on as a clear).
    keep_null: bool,
}

#[derive(Debug, Clone)]
enum Pipe {
    Int,
    Ints,
    Str,
    Strs,
    First,
    Count,
    Lower,
    Or(Box<Expr>),
    Default(Value),
    Join(String),
}

/// A value that could not be converted as a pipe asked.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertError {
    /// The root of the expression (`path`, `input` ...).
    pub root: String,
    pub expr: String,
    pub reason: String,
}

impl Expr {
    /// Parses `source`; the error is a sentence for `teamgate check`.
    pub fn parse(source: &str) -> Result<Expr, String> {
        let source = source.trim();
        let mut parts = split_pipes(source).into_iter();
        let path = parts.next().unwrap_or_default().trim().to_string();
        if !path.starts_with('$') {
            return Err(format!(
                "`{source}` is not a JSONPath (it must start with `$`, like `\"$.name\"`)"
            ));
        }
        let query =
            parse_json_path(&path).map_err(|e| format!("`{path}` is not a valid JSONPath: {e}"))?;
        let root = path
            .strip_prefix("$.")
            .map(|rest| {
                rest.split(['.', '['])
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .unwrap_or_default();
        let mut pipes = Vec::new();
        let mut keep_null = false;
        for pipe in parts {
            let pipe = pipe.trim();
            if keep_null {
                return Err(format!(
                    "`{source}`: `nullable` must be the last pipe (a null is sent as it is)"
                ));
            }
            if pipe == "nullable" {
                keep_null = true;
                continue;
            }
            pipes.push(match pipe {
                "int" => Pipe::Int,
                "ints" => Pipe::Ints,
                "str" => Pipe::Str,
                "strs" => Pipe::Strs,
                "first" => Pipe::First,
                "count" => Pipe::Count,
                "lower" => Pipe::Lower,
                _ => match (
                    pipe.strip_prefix("or(").and_then(|r| r.strip_suffix(')')),
                    pipe.strip_prefix("default(").and_then(|r| r.strip_suffix(')')),
                    pipe.strip_prefix("join(").and_then(|r| r.strip_suffix(')')),
                ) {
                    (Some(inner), _, _) => Pipe::Or(Box::new(Expr::parse(inner)?)),
                    (_, Some(literal), _) => Pipe::Default(serde_json::from_str(literal).map_err(
                        |e| format!("`{pipe}`: the default must be a JSON literal ({e})"),
                    )?),
                    (_, _, Some(separator)) => Pipe::Join(
                        serde_json::from_str(separator).map_err(|e| {
                            format!("`{pipe}`: the separator must be a JSON string ({e})")
                        })?,
                    ),
                    _ => {
                        return Err(format!(
                            "unknown pipe `{pipe}` (known: int, ints, str, strs, first, count, lower, nullable, or(...), default(...), join(...))"
                        ))
                    }
                },
            });
        }
        let (plain, plain_wildcard) = match path.strip_suffix("[*]") {
            Some(base) => (plain_members(base), true),
            None => (plain_members(&path), false),
        };
        Ok(Expr {
            source: source.to_string(),
            query,
            root,
            plain,
            plain_wildcard,
            pipes,
            keep_null,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    /// The member names of a plain path without wildcard or pipes (`$.a.b` → `a`, `b`).
    pub fn plain_path(&self) -> Option<&[String]> {
        match (
            &self.plain,
            self.plain_wildcard,
            self.pipes.is_empty() && !self.keep_null,
        ) {
            (Some(names), false, true) => Some(names),
            _ => None,
        }
    }

    /// Every node the path selects, without pipes (for lists of items).
    pub fn select<'a>(&self, ctx: &'a Value) -> Vec<&'a Value> {
        if let Some(names) = &self.plain {
            let mut node = ctx;
            for name in names {
                match node.get(name) {
                    Some(next) => node = next,
                    None => return Vec::new(),
                }
            }
            return match (self.plain_wildcard, node) {
                (false, _) => vec![node],
                (true, Value::Array(items)) => items.iter().collect(),
                (true, Value::Object(members)) => members.values().collect(),
                (true, _) => Vec::new(),
            };
        }
        match js_path_process(&self.query, ctx) {
            Ok(refs) => refs.into_iter().map(|r| r.val).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// For a plain member path without pipes (`$.a.b`): `Some` of the value there, borrowed
    /// (`Some(None)` when absent or null). `None` for any other expression: use
    /// [`Expr::eval`].
    pub fn lookup<'a>(&self, ctx: &'a Value) -> Option<Option<&'a Value>> {
        let (Some(names), false, true) = (
            &self.plain,
            self.plain_wildcard,
            self.pipes.is_empty() && !self.keep_null,
        ) else {
            return None;
        };
        let mut node = ctx;
        for name in names {
            match node.get(name) {
                Some(next) => node = next,
                None => return Some(None),
            }
        }
        Some((!node.is_null()).then_some(node))
    }

    /// Like [`Expr::select`], but moves the nodes out of `ctx` where the path is a plain
    /// `$.a.b[*]` (leaving `null` behind); other paths are copied. For answers read once.
    pub fn take_all(&self, ctx: &mut Value) -> Vec<Value> {
        if let (Some(names), true) = (&self.plain, self.plain_wildcard) {
            let mut node = &mut *ctx;
            for name in names {
                match node.get_mut(name) {
                    Some(next) => node = next,
                    None => return Vec::new(),
                }
            }
            return match node.take() {
                Value::Array(items) => items,
                Value::Object(members) => members.into_iter().map(|(_, v)| v).collect(),
                _ => Vec::new(),
            };
        }
        self.select(ctx).into_iter().cloned().collect()
    }

    /// The value: absent (`None`) when the path selects nothing or `null`; one node as itself;
    /// several nodes as an array. Then the pipes, in order.
    pub fn eval(&self, ctx: &Value) -> Result<Option<Value>, ConvertError> {
        let nodes = self.select(ctx);
        let mut value = match nodes.len() {
            0 => None,
            1 => Some(nodes[0].clone()),
            _ => Some(Value::Array(nodes.into_iter().cloned().collect())),
        };
        if value.as_ref().is_some_and(Value::is_null) {
            if self.keep_null {
                return Ok(value);
            }
            value = None;
        }
        for pipe in &self.pipes {
            value = self.apply(pipe, value, ctx)?;
        }
        Ok(value)
    }

    fn apply(
        &self,
        pipe: &Pipe,
        value: Option<Value>,
        ctx: &Value,
    ) -> Result<Option<Value>, ConvertError> {
        let Some(value) = value else {
            return match pipe {
                Pipe::Or(fallback) => fallback.eval(ctx),
                Pipe::Default(literal) => Ok(Some(literal.clone())),
                _ => Ok(None),
            };
        };
        let out = match pipe {
            Pipe::Or(_) | Pipe::Default(_) => value,
            Pipe::Int => self.to_int(&value)?,
            Pipe::Ints => Value::Array(
                self.array(&value)?
                    .iter()
                    .map(|v| self.to_int(v))
                    .collect::<Result<_, _>>()?,
            ),
            Pipe::Str => Value::String(self.to_str(&value)?),
            Pipe::Strs => Value::Array(
                self.array(&value)?
                    .iter()
                    .map(|v| self.to_str(v).map(Value::String))
                    .collect::<Result<_, _>>()?,
            ),
            Pipe::First => match value {
                Value::Array(items) => match items.into_iter().next() {
                    Some(first) => first,
                    None => return Ok(None),
                },
                other => other,
            },
            Pipe::Count => Value::from(self.array(&value)?.len()),
            Pipe::Lower => Value::String(self.to_str(&value)?.to_lowercase()),
            Pipe::Join(separator) => Value::String(
                self.array(&value)?
                    .iter()
                    .map(|v| self.to_str(v))
                    .collect::<Result<Vec<_>, _>>()?
                    .join(separator),
            ),
        };
        Ok(Some(out))
    }

    fn error(&self, reason: impl Into<String>) -> ConvertError {
        ConvertError {
            root: self.root.clone(),
            expr: self.source.clone(),
            reason: reason.into(),
        }
    }

    fn array<'v>(&self, value: &'v Value) -> Result<&'v Vec<Value>, ConvertError> {
        value.as_array().ok_or_else(|| self.error("not an array"))
    }

    fn to_int(&self, value: &Value) -> Result<Value, ConvertError> {
        match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value.clone()),
            Value::String(s) => {
                // Only plain decimal digits: `+1`, ` 1` or `1e3` are not ids.
                if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(self.error(format!("{s:?} is not an integer")));
                }
                s.parse::<u64>()
                    .map(Value::from)
                    .map_err(|_| self.error(format!("{s:?} is out of range")))
            }
            other => Err(self.error(format!("{other} is not an integer"))),
        }
    }

    fn to_str(&self, value: &Value) -> Result<String, ConvertError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(self.error(format!("{other} is not a scalar"))),
        }
    }
}

/// `$` → `[]`, `$.a.b` → `["a", "b"]`; `None` for anything else (brackets, filters ...).
fn plain_members(path: &str) -> Option<Vec<String>> {
    if path == "$" {
        return Some(Vec::new());
    }
    let names: Vec<String> = path
        .strip_prefix("$.")?
        .split('.')
        .map(str::to_string)
        .collect();
    names
        .iter()
        .all(|n| {
            n.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .then_some(names)
}

/// Splits on ` | ` pipes, leaving `||` (a JSONPath logical or) and brackets alone.
fn split_pipes(source: &str) -> Vec<&str> {
    let bytes = source.as_bytes();
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(b),
            (None, b'(' | b'[') => depth += 1,
            (None, b')' | b']') => depth -= 1,
            (None, b'|') if depth == 0 => {
                let doubled = bytes.get(i + 1) == Some(&b'|') || (i > 0 && bytes[i - 1] == b'|');
                if !doubled {
                    parts.push(&source[start..i]);
                    start = i + 1;
                }
            }
            _ => {}
        }
    }
    parts.push(&source[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(src: &str, ctx: &Value) -> Option<Value> {
        Expr::parse(src).unwrap().eval(ctx).unwrap()
    }

    #[test]
    fn selects_single_values_and_treats_null_as_absent() {
        let ctx = json!({"a": {"b": 1, "n": null}, "l": [1, 2]});
        assert_eq!(eval("$.a.b", &ctx), Some(json!(1)));
        assert_eq!(eval("$.a.n", &ctx), None);
        assert_eq!(eval("$.a.missing", &ctx), None);
        assert_eq!(eval("$.l[*]", &ctx), Some(json!([1, 2])));
        assert_eq!(eval("$.l", &ctx), Some(json!([1, 2])));
    }

    #[test]
    fn pipes_convert_and_fall_back() {
        let ctx = json!({"id": "42", "ids": ["1", 2], "x": null, "y": "Y", "bad": "../x"});
        assert_eq!(eval("$.id | int", &ctx), Some(json!(42)));
        assert_eq!(eval("$.ids | ints", &ctx), Some(json!([1, 2])));
        assert_eq!(eval("$.ids | strs", &ctx), Some(json!(["1", "2"])));
        assert_eq!(eval("$.ids | count", &ctx), Some(json!(2)));
        assert_eq!(eval("$.x | or($.y) | lower", &ctx), Some(json!("y")));
        assert_eq!(eval("$.ids | first | str", &ctx), Some(json!("1")));
        assert_eq!(eval("$.x | default(\"\")", &ctx), Some(json!("")));
        assert_eq!(eval("$.x | default([])", &ctx), Some(json!([])));
        assert_eq!(eval("$.ids | join(\",\")", &ctx), Some(json!("1,2")));
        assert_eq!(eval("$.x | join(\",\")", &ctx), None);
        assert!(Expr::parse("$.ids | join(,)").is_err());
        let err = Expr::parse("$.bad | int").unwrap().eval(&ctx).unwrap_err();
        assert_eq!(err.root, "bad");
    }

    #[test]
    fn plain_paths_agree_with_the_general_evaluator() {
        let ctx = json!({"a": {"b": [1, {"c": null}], "d": "x"}, "e": 0});
        for path in [
            "$", "$.a", "$.a.b", "$.a.d", "$.e", "$.nope", "$.a.d.x", "$.a.b.c",
        ] {
            let fast = Expr::parse(path).unwrap();
            assert!(fast.plain.is_some(), "{path}");
            let slow: Vec<&Value> = js_path_process(&fast.query, &ctx)
                .unwrap()
                .into_iter()
                .map(|r| r.val)
                .collect();
            assert_eq!(fast.select(&ctx), slow, "{path}");
        }
    }

    #[test]
    fn take_all_moves_plain_wildcards_and_copies_the_rest() {
        let mut ctx = json!({"a": {"l": [1, 2]}, "t": [{"x": 1}, {"x": 2}]});
        assert_eq!(
            Expr::parse("$.a.l[*]").unwrap().take_all(&mut ctx),
            vec![json!(1), json!(2)]
        );
        assert_eq!(ctx["a"]["l"], Value::Null);
        assert_eq!(
            Expr::parse("$.t[?@.x == 2]").unwrap().take_all(&mut ctx),
            vec![json!({"x": 2})]
        );
        assert_eq!(ctx["t"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn filters_with_logical_or_are_not_pipes() {
        let ctx = json!({"t": [{"a": 1}, {"a": 2}, {"a": 3}]});
        assert_eq!(
            eval("$.t[?@.a == 1 || @.a == 3].a", &ctx),
            Some(json!([1, 3]))
        );
        assert_eq!(eval("$.t[?@.a == 2] | first", &ctx), Some(json!({"a": 2})));
    }

    #[test]
    fn nullable_sends_a_null_that_is_there_and_nothing_for_one_that_is_not() {
        let e = Expr::parse("$.input.parent_id | nullable").unwrap();
        assert_eq!(
            e.eval(&json!({"input": {"parent_id": null}})).unwrap(),
            Some(Value::Null)
        );
        assert_eq!(e.eval(&json!({"input": {}})).unwrap(), None);
        assert_eq!(
            e.eval(&json!({"input": {"parent_id": "7"}})).unwrap(),
            Some(json!("7"))
        );
        // Without it, a null is absent, as everywhere else.
        let plain = Expr::parse("$.input.parent_id").unwrap();
        assert_eq!(
            plain.eval(&json!({"input": {"parent_id": null}})).unwrap(),
            None
        );
        assert!(Expr::parse("$.a | nullable | int").is_err());
    }

    #[test]
    fn bad_expressions_are_refused_at_parse() {
        assert!(Expr::parse("data.id").is_err());
        assert!(Expr::parse("$.a[").is_err());
        assert!(Expr::parse("$.a | nope").is_err());
    }
}
