//! Checking one logged request against a vendor's documents: does the operation exist, are
//! its required query and header parameters (and declared credentials) there, and does the
//! body fit the declared schema.
//!
//! A backend may have several documents (a team extract and the full API for the users
//! endpoints): the first one that declares the operation is the one that judges it.

use std::collections::HashMap;

use jsonschema::{Draft, Validator};
use serde_json::Value;

use super::spec::{escape_token, Flavor, Lookup, Operation, Spec};

/// At most this many schema errors are reported per body; one is enough to reject it.
const MAX_BODY_ERRORS: usize = 5;

/// A request as the simulator logged it.
pub struct Request<'a> {
    pub method: &'a str,
    /// Raw, still percent-encoded.
    pub path: &'a str,
    /// Raw query, if any.
    pub query: Option<&'a str>,
    /// Lower-case names.
    pub headers: &'a [(String, String)],
    pub body: &'a str,
}

/// What the documents say about one request.
#[derive(Debug, Default)]
pub struct Verdict {
    /// The spec path template the request hit, when one did.
    pub template: Option<String>,
    /// Why the vendor would refuse it; empty when the documents accept it.
    pub reasons: Vec<String>,
}

/// A backend's documents plus compiled body validators (compiling is the slow part, and the
/// same few bodies are checked many times).
pub struct Checker {
    specs: Vec<Spec>,
    validators: HashMap<(usize, String), Result<Validator, String>>,
}

impl Checker {
    pub fn new(specs: Vec<Spec>) -> Checker {
        Checker {
            specs,
            validators: HashMap::new(),
        }
    }

    /// Checks one request.
    pub fn check(&mut self, req: &Request) -> Verdict {
        let Some((index, template, reasons)) = self.judge_lookup(req) else {
            return Verdict {
                template: None,
                reasons: vec![self.not_found_reason(req)],
            };
        };
        let mut verdict = Verdict {
            template: Some(template),
            reasons,
        };
        if verdict.reasons.is_empty() {
            verdict.reasons = self.check_operation(index, req);
        }
        verdict
    }

    /// The first document that declares the operation (index, template, no reasons), else
    /// the first whose path matches with another method (index, template, the reason).
    fn judge_lookup(&self, req: &Request) -> Option<(usize, String, Vec<String>)> {
        let mut wrong_method = None;
        for (index, spec) in self.specs.iter().enumerate() {
            match spec.lookup(req.method, req.path) {
                Lookup::Found(op) => return Some((index, op.template.to_string(), Vec::new())),
                Lookup::MethodNotAllowed { template, allowed } if wrong_method.is_none() => {
                    let reason = format!(
                        "method {} is not in the spec for {template} ({}); it declares only {}",
                        req.method,
                        spec.label,
                        allowed.join(", ")
                    );
                    wrong_method = Some((index, template.to_string(), vec![reason]));
                }
                _ => {}
            }
        }
        wrong_method
    }

    fn not_found_reason(&self, req: &Request) -> String {
        let labels: Vec<&str> = self.specs.iter().map(|s| s.label.as_str()).collect();
        format!(
            "not in the spec: no path template matches {} (looked in {})",
            req.path,
            labels.join(", ")
        )
    }

    fn check_operation(&mut self, index: usize, req: &Request) -> Vec<String> {
        let spec = &self.specs[index];
        let Lookup::Found(op) = spec.lookup(req.method, req.path) else {
            return vec!["internal: operation vanished between lookups".to_string()];
        };
        let mut reasons = Vec::new();
        let pairs = query_pairs(req.query);
        match parameters(spec, &op) {
            Ok(params) => {
                for param in &params {
                    check_parameter(spec, param, &pairs, req.headers, &mut reasons);
                }
            }
            Err(e) => reasons.push(format!("spec problem: {e}")),
        }
        if let Err(e) = check_security(spec, &op, &pairs, req.headers) {
            reasons.push(e);
        }
        match body_declaration(spec, &op) {
            Ok(declared) => {
                if let Some(schema) = self.check_body_presence(index, declared, req, &mut reasons) {
                    self.check_body_schema(index, &schema, req.body, &mut reasons);
                }
            }
            Err(e) => reasons.push(format!("spec problem: {e}")),
        }
        reasons
    }

    /// Body presence and media type; returns the schema pointer to validate against, if any.
    fn check_body_presence(
        &self,
        index: usize,
        declared: Option<BodyDecl>,
        req: &Request,
        reasons: &mut Vec<String>,
    ) -> Option<String> {
        let has_body = !req.body.trim().is_empty();
        let content_type = header(req.headers, "content-type").map(media_type);
        match (declared, has_body) {
            (None, false) => None,
            (None, true) => {
                reasons.push(format!(
                    "sends a body but the spec ({}) declares none for this operation",
                    self.specs[index].label
                ));
                None
            }
            (Some(decl), false) => {
                if decl.required {
                    reasons.push("the spec requires a request body; none was sent".to_string());
                }
                None
            }
            (Some(decl), true) => decl.choose(content_type.as_deref(), reasons),
        }
    }

    fn check_body_schema(
        &mut self,
        index: usize,
        schema: &str,
        body: &str,
        reasons: &mut Vec<String>,
    ) {
        let instance: Value = match serde_json::from_str(body) {
            Ok(v) => v,
            Err(e) => {
                reasons.push(format!("the body is not JSON: {e}"));
                return;
            }
        };
        let spec = &self.specs[index];
        let validator = self
            .validators
            .entry((index, schema.to_string()))
            .or_insert_with(|| compile(spec, schema));
        let validator = match validator {
            Ok(v) => v,
            Err(e) => {
                reasons.push(format!("spec problem: {e}"));
                return;
            }
        };
        for error in validator.iter_errors(&instance).take(MAX_BODY_ERRORS) {
            reasons.push(format!(
                "body{} does not fit the schema ({schema}): {error}",
                error.instance_path()
            ));
        }
    }
}

/// A request body as an operation declares it.
struct BodyDecl {
    required: bool,
    /// Media type → JSON pointer of its schema (None: declared without a schema).
    media: Vec<(String, Option<String>)>,
    /// Swagger 2.0 `consumes` (may be empty: anything goes).
    consumes: Vec<String>,
}

impl BodyDecl {
    /// Checks the request's content type against the declaration and picks the schema.
    fn choose(self, content_type: Option<&str>, reasons: &mut Vec<String>) -> Option<String> {
        if !self.consumes.is_empty() {
            // Swagger 2.0: one schema, the content type is checked against `consumes`.
            if let Some(ct) = content_type {
                if !self.consumes.iter().any(|c| media_matches(c, ct)) {
                    reasons.push(format!(
                        "Content-Type {ct} is not among the spec's consumes: {}",
                        self.consumes.join(", ")
                    ));
                }
            }
        }
        let Some(ct) = content_type else {
            if self.media.len() == 1 && self.consumes.is_empty() && self.media[0].0 == "*" {
                return self.media[0].1.clone();
            }
            reasons.push("sends a body without a Content-Type".to_string());
            return None;
        };
        let found = self
            .media
            .iter()
            .find(|(m, _)| m == "*" || media_matches(m, ct));
        match found {
            // Only JSON bodies are validated; another declared type is accepted unchecked.
            Some((_, schema)) if is_json(ct) => schema.clone(),
            Some(_) => None,
            None => {
                let declared: Vec<&str> = self.media.iter().map(|(m, _)| m.as_str()).collect();
                reasons.push(format!(
                    "Content-Type {ct} is not a declared body type ({})",
                    declared.join(", ")
                ));
                None
            }
        }
    }
}

/// What the operation declares as its body, `None` when it declares none.
fn body_declaration(spec: &Spec, op: &Operation) -> Result<Option<BodyDecl>, String> {
    match spec.flavor {
        Flavor::Swagger2 => swagger_body(spec, op),
        Flavor::OpenApi30 | Flavor::OpenApi31 => openapi_body(spec, op),
    }
}

fn openapi_body(spec: &Spec, op: &Operation) -> Result<Option<BodyDecl>, String> {
    let Some(raw) = op.op.get("requestBody") else {
        return Ok(None);
    };
    let (body, at) = spec.resolve(raw, &format!("{}/requestBody", op.pointer))?;
    let Some(content) = body.get("content").and_then(Value::as_object) else {
        return Err(format!(
            "{}: requestBody at {at} has no `content`",
            spec.label
        ));
    };
    let media = content
        .iter()
        .map(|(media_type, entry)| {
            let schema = entry
                .get("schema")
                .map(|_| format!("{at}/content/{}/schema", escape_token(media_type)));
            (media_type.to_ascii_lowercase(), schema)
        })
        .collect();
    Ok(Some(BodyDecl {
        required: body["required"].as_bool().unwrap_or(false),
        media,
        consumes: Vec::new(),
    }))
}

/// Swagger 2.0: the `in: body` parameter; its schema is checked whatever JSON type is sent.
fn swagger_body(spec: &Spec, op: &Operation) -> Result<Option<BodyDecl>, String> {
    let params = parameters(spec, op)?;
    let Some(param) = params.iter().find(|p| p.value["in"] == "body") else {
        return Ok(None);
    };
    let consumes = op
        .op
        .get("consumes")
        .or_else(|| spec.doc.get("consumes"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();
    let schema = param
        .value
        .get("schema")
        .map(|_| format!("{}/schema", param.pointer));
    Ok(Some(BodyDecl {
        required: param.value["required"].as_bool().unwrap_or(false),
        // Without `consumes` the type is not constrained: "*" accepts any.
        media: vec![("*".to_string(), schema)],
        consumes,
    }))
}

/// A resolved parameter object and where it lives in the document.
struct Param<'a> {
    value: &'a Value,
    pointer: String,
}

/// The path item's parameters overridden by the operation's, keyed by (`name`, `in`).
fn parameters<'a>(spec: &'a Spec, op: &Operation<'a>) -> Result<Vec<Param<'a>>, String> {
    let item_pointer = op
        .pointer
        .rsplit_once('/')
        .map_or("", |(item, _)| item)
        .to_string();
    let mut out: Vec<Param> = Vec::new();
    let levels = [(op.item, item_pointer), (op.op, op.pointer.clone())];
    for (owner, pointer) in levels {
        let Some(list) = owner.get("parameters") else {
            continue;
        };
        let list = list
            .as_array()
            .ok_or_else(|| format!("{}: `parameters` at {pointer} is not a list", spec.label))?;
        for (i, raw) in list.iter().enumerate() {
            let (value, at) = spec.resolve(raw, &format!("{pointer}/parameters/{i}"))?;
            let key = (&value["name"], &value["in"]);
            out.retain(|p| (&p.value["name"], &p.value["in"]) != key);
            out.push(Param { value, pointer: at });
        }
    }
    Ok(out)
}

/// Required query/header parameters, and enum values of query parameters.
fn check_parameter(
    spec: &Spec,
    param: &Param,
    query: &[(String, String)],
    headers: &[(String, String)],
    reasons: &mut Vec<String>,
) {
    let name = param.value["name"].as_str().unwrap_or("");
    let required = param.value["required"].as_bool().unwrap_or(false);
    match param.value["in"].as_str() {
        Some("query") => {
            let values: Vec<&str> = query
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect();
            if required && values.is_empty() {
                reasons.push(format!("required query parameter `{name}` is missing"));
            }
            if let Some(allowed) = query_enum(spec, param.value) {
                for value in values {
                    if !allowed.iter().any(|a| a == value) {
                        reasons.push(format!(
                            "query parameter `{name}={value}` is not one of the spec's values {allowed:?}"
                        ));
                    }
                }
            }
        }
        Some("header") if required && header(headers, name).is_none() => {
            reasons.push(format!("required header `{name}` is missing"));
        }
        _ => {}
    }
}

/// The enum of a query parameter as text: Swagger 2.0 puts it on the parameter, OpenAPI 3
/// on its `schema`.
fn query_enum(spec: &Spec, param: &Value) -> Option<Vec<String>> {
    let values = match spec.flavor {
        Flavor::Swagger2 => param.get("enum"),
        _ => param.get("schema").and_then(|s| s.get("enum")),
    }?;
    let values = values.as_array()?;
    Some(
        values
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
    )
}

/// The operation's security (or the document's): at least one alternative must be met.
/// Only presence is checked: the credential's value is the simulator's business.
fn check_security(
    spec: &Spec,
    op: &Operation,
    query: &[(String, String)],
    headers: &[(String, String)],
) -> Result<(), String> {
    let Some(alternatives) = op
        .op
        .get("security")
        .or_else(|| spec.doc.get("security"))
        .and_then(Value::as_array)
    else {
        return Ok(());
    };
    if alternatives.is_empty() {
        return Ok(());
    }
    let mut wanted = Vec::new();
    for alternative in alternatives {
        let Some(schemes) = alternative.as_object() else {
            continue;
        };
        let mut met = true;
        for name in schemes.keys() {
            match credential_present(spec, name, query, headers) {
                Ok(()) => {}
                Err(want) => {
                    met = false;
                    wanted.push(want);
                }
            }
        }
        if met {
            return Ok(());
        }
    }
    Err(format!(
        "no credential the spec accepts: wants {}",
        wanted.join(" or ")
    ))
}

/// Whether the request carries the credential of security scheme `name`; if not, what it wants.
fn credential_present(
    spec: &Spec,
    name: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
) -> Result<(), String> {
    let schemes = match spec.flavor {
        Flavor::Swagger2 => &spec.doc["securityDefinitions"],
        _ => &spec.doc["components"]["securitySchemes"],
    };
    let Some(raw) = schemes.get(name) else {
        return Err(format!("scheme `{name}` (not defined in the spec)"));
    };
    let (scheme, _) = spec
        .resolve(raw, "")
        .map_err(|e| format!("scheme `{name}` ({e})"))?;
    let key = scheme["name"].as_str().unwrap_or("");
    let kind = scheme["type"].as_str().unwrap_or("");
    let auth = header(headers, "authorization").unwrap_or("");
    let ok = match (kind, scheme["in"].as_str()) {
        ("apiKey", Some("query")) => query.iter().any(|(k, _)| k == key),
        ("apiKey", Some("header")) => header(headers, key).is_some(),
        ("apiKey", Some("cookie")) => header(headers, "cookie").is_some_and(|c| c.contains(key)),
        ("http", _) => {
            let wanted = scheme["scheme"].as_str().unwrap_or("");
            auth.split_once(' ')
                .is_some_and(|(s, _)| s.eq_ignore_ascii_case(wanted))
        }
        ("basic", _) => auth
            .split_once(' ')
            .is_some_and(|(s, _)| s.eq_ignore_ascii_case("basic")),
        // oauth2 / openIdConnect: a token in Authorization is all a request can show.
        _ => !auth.is_empty(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("`{name}` ({kind} {})", describe_location(scheme)))
    }
}

fn describe_location(scheme: &Value) -> String {
    match (scheme["in"].as_str(), scheme["name"].as_str()) {
        (Some(place), Some(key)) => format!("`{key}` in {place}"),
        _ => format!(
            "{} in Authorization",
            scheme["scheme"].as_str().unwrap_or("token")
        ),
    }
}

/// Builds a validator for the schema at `pointer`: the whole document is the root schema with
/// a `$ref` to that pointer, so every `#/components/...` or `#/definitions/...` reference
/// inside the schema resolves against the same document and nothing is fetched.
fn compile(spec: &Spec, pointer: &str) -> Result<Validator, String> {
    let mut root = spec.doc.clone();
    let Some(object) = root.as_object_mut() else {
        return Err(format!("{}: the document is not an object", spec.label));
    };
    object.insert(
        "$ref".to_string(),
        Value::String(format!("#{}", fragment_encode(pointer))),
    );
    let draft = match spec.flavor {
        Flavor::OpenApi31 => Draft::Draft202012,
        Flavor::OpenApi30 | Flavor::Swagger2 => Draft::Draft4,
    };
    jsonschema::options()
        .with_draft(draft)
        // A value that breaks its declared `format` (email, date-time…) is one a vendor may
        // refuse; formats the crate does not know (uint64, int32) are ignored.
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| format!("{}: schema at {pointer} does not compile: {e}", spec.label))
}

/// Percent-encodes a JSON pointer for a URI fragment (`{teamId}` → `%7BteamId%7D`).
fn fragment_encode(pointer: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'~')
        .remove(b'-')
        .remove(b'.')
        .remove(b'_');
    percent_encoding::utf8_percent_encode(pointer, KEEP).to_string()
}

/// A raw query as `application/x-www-form-urlencoded` pairs.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `application/json; charset=utf-8` → `application/json`.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

/// Whether declared media range `declared` (`application/json`, `application/*`, `*/*`)
/// covers the request's `actual` type.
fn media_matches(declared: &str, actual: &str) -> bool {
    let declared = media_type(declared);
    if declared == "*/*" || declared == actual {
        return true;
    }
    declared
        .strip_suffix("/*")
        .is_some_and(|kind| actual.split('/').next() == Some(kind))
}
