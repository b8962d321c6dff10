//! Reading one vendor API document (OpenAPI 3.x or Swagger 2.0): local `$ref`s, and finding
//! the operation a logged request hits by method and path template.
//!
//! Nothing here panics on an odd document: every problem is an `Err(String)` that the checker
//! reports against the request, so a broken spec shows up as a failure, never as a pass.

use std::path::Path;

use serde_json::Value;

/// How many `$ref` hops a chain may take before it is reported as a loop.
const MAX_REF_HOPS: usize = 32;

/// The HTTP methods an OpenAPI path item can hold (everything else in it is not an operation).
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Which family of document this is; it decides where parameters, bodies and security live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Swagger2,
    /// OpenAPI 3.0.x: schemas are read as JSON Schema draft 4 (`nullable` is not understood).
    OpenApi30,
    /// OpenAPI 3.1.x: schemas are JSON Schema 2020-12.
    OpenApi31,
}

/// One loaded document.
pub struct Spec {
    /// How reports name this document, e.g. `flashcat/teams-members.openapi.json`.
    pub label: String,
    pub doc: Value,
    pub flavor: Flavor,
    /// Swagger `basePath` or the path of the first OpenAPI server URL, without a trailing `/`;
    /// logged paths start with it, spec paths do not.
    prefix: String,
}

/// The operation a request hits.
pub struct Operation<'a> {
    /// The spec's path key, e.g. `/v3/teams/{teamId}`.
    pub template: &'a str,
    /// The path item (its `parameters` apply to every operation in it).
    pub item: &'a Value,
    pub op: &'a Value,
    /// JSON pointer of the operation object, e.g. `/paths/~1team~1list/post`.
    pub pointer: String,
}

/// What looking a request up found.
pub enum Lookup<'a> {
    Found(Operation<'a>),
    /// A path template matches but declares no operation for the method.
    MethodNotAllowed {
        template: &'a str,
        allowed: Vec<String>,
    },
    NoPath,
}

impl Spec {
    /// Reads and recognises a JSON or (by its `.yaml` / `.yml` ending) YAML document.
    pub fn load(path: &Path, label: &str) -> Result<Spec, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read spec {}: {e}", path.display()))?;
        let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        let doc: Value = if is_yaml {
            serde_norway::from_str(&text)
                .map_err(|e| format!("spec {} is not YAML: {e}", path.display()))?
        } else {
            serde_json::from_str(&text)
                .map_err(|e| format!("spec {} is not JSON: {e}", path.display()))?
        };
        Spec::from_value(label, doc)
    }

    /// Recognises an already parsed document (unit tests build small ones inline).
    pub fn from_value(label: &str, doc: Value) -> Result<Spec, String> {
        let flavor = flavor_of(&doc).ok_or_else(|| {
            format!("{label}: neither `swagger: 2.0` nor `openapi: 3.x`; cannot read it")
        })?;
        if !doc.get("paths").is_some_and(Value::is_object) {
            return Err(format!("{label}: no `paths` object"));
        }
        let prefix = match flavor {
            Flavor::Swagger2 => doc["basePath"].as_str().unwrap_or("").to_string(),
            _ => server_path(&doc),
        };
        Ok(Spec {
            label: label.to_string(),
            prefix: prefix.trim_end_matches('/').to_string(),
            doc,
            flavor,
        })
    }

    /// Follows `$ref` from `value` (found at JSON pointer `at`) to the object it names.
    /// Returns the object and its pointer. Only references inside this document are read.
    pub fn resolve<'a>(
        &'a self,
        value: &'a Value,
        at: &str,
    ) -> Result<(&'a Value, String), String> {
        let mut current = value;
        let mut pointer = at.to_string();
        for _ in 0..MAX_REF_HOPS {
            let Some(reference) = current.get("$ref") else {
                return Ok((current, pointer));
            };
            let reference = reference
                .as_str()
                .ok_or_else(|| format!("{}: `$ref` at {pointer} is not a string", self.label))?;
            pointer = local_pointer(reference).ok_or_else(|| {
                format!(
                    "{}: `$ref` {reference} at {at} points outside the document (not read)",
                    self.label
                )
            })?;
            current = self.doc.pointer(&pointer).ok_or_else(|| {
                format!(
                    "{}: `$ref` {reference} names nothing in the document",
                    self.label
                )
            })?;
        }
        Err(format!(
            "{}: `$ref` chain from {at} is longer than {MAX_REF_HOPS} hops (a loop?)",
            self.label
        ))
    }

    /// Finds the operation for `method` on the raw (percent-encoded) `path`.
    ///
    /// A literal segment must equal the decoded request segment; `{param}` matches any non-empty
    /// segment. Among matching templates the most literal one wins, comparing segment by
    /// segment from the left, as routers do (`/teams/by-name` before `/teams/{id}`).
    pub fn lookup(&self, method: &str, path: &str) -> Lookup<'_> {
        let Some(rest) = path.strip_prefix(self.prefix.as_str()) else {
            return Lookup::NoPath;
        };
        let segments = decoded_segments(rest);
        let method = method.to_ascii_lowercase();
        let Some(paths) = self.doc["paths"].as_object() else {
            return Lookup::NoPath;
        };
        let mut best: Option<(Vec<bool>, &str, &Value)> = None;
        let mut best_any: Option<(Vec<bool>, &str, &Value)> = None;
        for (template, item) in paths {
            let Some(score) = match_template(template, &segments) else {
                continue;
            };
            // A path item may itself be a `$ref` (OpenAPI 3.1 allows it).
            let Ok((item, _)) = self.resolve(item, "") else {
                continue;
            };
            if item.get(&method).is_some_and(Value::is_object)
                && best.as_ref().is_none_or(|(s, _, _)| score > *s)
            {
                best = Some((score.clone(), template, item));
            }
            if best_any.as_ref().is_none_or(|(s, _, _)| score > *s) {
                best_any = Some((score, template, item));
            }
        }
        if let Some((_, template, item)) = best {
            return Lookup::Found(Operation {
                template,
                item,
                op: &item[method.as_str()],
                pointer: format!("/paths/{}/{method}", escape_token(template)),
            });
        }
        match best_any {
            Some((_, template, item)) => Lookup::MethodNotAllowed {
                template,
                allowed: METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some_and(Value::is_object))
                    .map(|m| m.to_ascii_uppercase())
                    .collect(),
            },
            None => Lookup::NoPath,
        }
    }
}

fn flavor_of(doc: &Value) -> Option<Flavor> {
    if doc["swagger"].as_str() == Some("2.0") {
        return Some(Flavor::Swagger2);
    }
    let version = doc["openapi"].as_str()?;
    if version.starts_with("3.0") {
        Some(Flavor::OpenApi30)
    } else if version.starts_with("3.") {
        Some(Flavor::OpenApi31)
    } else {
        None
    }
}

/// The path part of the first server URL (`https://h/api/v1` → `/api/v1`). A URL with
/// `{variables}` gives no prefix: its path cannot be known without the variables' values.
fn server_path(doc: &Value) -> String {
    let Some(url) = doc["servers"][0]["url"].as_str() else {
        return String::new();
    };
    if url.contains('{') {
        return String::new();
    }
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = if url.contains("://") {
        after_scheme.find('/').map_or("", |i| &after_scheme[i..])
    } else {
        after_scheme
    };
    path.to_string()
}

/// `#/components/schemas/X` → `/components/schemas/X` (percent-decoded, still `~`-escaped).
fn local_pointer(reference: &str) -> Option<String> {
    let fragment = reference.strip_prefix('#')?;
    Some(
        percent_encoding::percent_decode_str(fragment)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// Escapes one JSON pointer token (RFC 6901).
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// `/a/b%20c` → `["a", "b c"]`; a trailing `/` gives a final empty segment, as routers see it.
fn decoded_segments(path: &str) -> Vec<String> {
    path.strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// Whether `template` matches `segments`; if so, which segments matched literally.
fn match_template(template: &str, segments: &[String]) -> Option<Vec<bool>> {
    let parts: Vec<&str> = template
        .strip_prefix('/')
        .unwrap_or(template)
        .split('/')
        .collect();
    if parts.len() != segments.len() {
        return None;
    }
    parts
        .iter()
        .zip(segments)
        .map(|(part, segment)| match_segment(part, segment))
        .collect()
}

/// `Some(true)` for a literal match, `Some(false)` for a templated one. A segment with one
/// `{param}` between literal text (`{id}.json`) needs the text around it and a non-empty value.
fn match_segment(part: &str, segment: &str) -> Option<bool> {
    let Some(open) = part.find('{') else {
        return (part == segment).then_some(true);
    };
    let close = part[open..].find('}')? + open;
    let (before, after) = (&part[..open], &part[close + 1..]);
    let fits = segment.len() > before.len() + after.len()
        && segment.starts_with(before)
        && segment.ends_with(after);
    fits.then_some(false)
}
