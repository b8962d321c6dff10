//! Every answer the proxy gives a test, checked against the proxy's own OpenAPI document
//! (`teamgate::openapi::document()`, which `GET /openapi.json` serves; `tests/openapi.rs`
//! checks the two are the same).
//!
//! [`check`] finds the documented operation of the request (method + path template), the
//! response the document lists for the status, and checks the answer against it: the status
//! must be listed, required headers present, present headers and the body valid against their
//! schemas (JSON Schema 2020-12, as OpenAPI 3.1 has it). A failure panics naming the request,
//! the status and the body: the server answered something its API description does not say.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use http::{HeaderMap, Method, StatusCode};
use jsonschema::{Draft, Validator};
use serde_json::{json, Value};
use teamgate::error::ErrorCode;

/// Compiled schemas, by their JSON text: the same schema is compiled once per test binary.
fn validators() -> &'static Mutex<HashMap<String, Arc<Validator>>> {
    static VALIDATORS: OnceLock<Mutex<HashMap<String, Arc<Validator>>>> = OnceLock::new();
    VALIDATORS.get_or_init(Default::default)
}

fn document() -> &'static Value {
    teamgate::openapi::document()
}

/// Checks one answer of the proxy to `method path` against the document; panics if it does
/// not fit.
pub fn check(method: &Method, path: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) {
    if let Err(reason) = check_answer(method, path, status, headers, body) {
        panic!(
            "the answer breaks /openapi.json: {method} {path} → {status}: {reason}\nbody: {}",
            String::from_utf8_lossy(body)
        );
    }
}

fn check_answer(
    method: &Method,
    path: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let verb = method.as_str().to_ascii_lowercase();
    let operation = template_of(path).and_then(|t| document()["paths"][t].get(verb.as_str()));
    let response = match operation {
        Some(operation) => operation["responses"].get(status.as_str()).ok_or_else(|| {
            format!(
                "status {} is not documented for {} (documented: {})",
                status.as_str(),
                operation["operationId"],
                keys(&operation["responses"])
            )
        })?,
        // Outside the API (an unknown path, or a method a path does not have): only the
        // problems any request can get, and 404 or 400 for the route itself.
        None => {
            let generic: Vec<u16> = teamgate::openapi::ANY_REQUEST
                .iter()
                .chain(&[ErrorCode::NotFound, ErrorCode::InvalidRequest])
                .map(|c| c.status())
                .collect();
            if !generic.contains(&status.as_u16()) {
                return Err(format!(
                    "no documented operation, and {status} is not a problem of any request {generic:?}"
                ));
            }
            &document()["components"]["responses"][format!("Problem{}", status.as_str())]
        }
    };
    let response = resolve(response)?;
    check_headers(response, headers)?;
    check_body(response, headers, body)
}

/// The documented path template that `path` matches, segment by segment as the router sees
/// them (one trailing slash ignored, each segment percent-decoded; `{x}` matches any segment).
fn template_of(path: &str) -> Option<&'static str> {
    let segments = |p: &str| -> Vec<String> {
        let p = p.strip_prefix('/').unwrap_or(p);
        let p = p.strip_suffix('/').unwrap_or(p);
        p.split('/')
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect()
    };
    let asked = segments(path);
    document()["paths"]
        .as_object()?
        .keys()
        .find(|template| {
            let parts = segments(template);
            parts.len() == asked.len()
                && parts
                    .iter()
                    .zip(&asked)
                    .all(|(t, a)| (t.starts_with('{') && t.ends_with('}')) || t == a)
        })
        .map(String::as_str)
}

/// Follows a `$ref` to `#/components/...`.
fn resolve(value: &'static Value) -> Result<&'static Value, String> {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .ok_or_else(|| format!("{reference} is not local"))?;
            let target = document()
                .pointer(pointer)
                .ok_or_else(|| format!("{reference} does not resolve"))?;
            resolve(target)
        }
        None => Ok(value),
    }
}

fn check_headers(response: &'static Value, headers: &HeaderMap) -> Result<(), String> {
    let Some(documented) = response.get("headers").and_then(Value::as_object) else {
        return Ok(());
    };
    for (name, header) in documented {
        let header = resolve(header)?;
        let Some(value) = headers.get(name.as_str()) else {
            if header["required"] == true {
                return Err(format!("the required header {name} is missing"));
            }
            continue;
        };
        let text = value
            .to_str()
            .map_err(|_| format!("header {name} is not visible ASCII"))?;
        let schema = &header["schema"];
        let instance = match schema["type"].as_str() {
            Some("integer") => text
                .parse::<u64>()
                .map(Value::from)
                .map_err(|_| format!("header {name}: {text:?} is not an integer"))?,
            _ => Value::String(text.to_string()),
        };
        validate(schema, &instance).map_err(|e| format!("header {name}: {e}"))?;
    }
    Ok(())
}

fn check_body(response: &'static Value, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return match body.is_empty() {
            true => Ok(()),
            false => Err("a body where the document has none".into()),
        };
    };
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or("no Content-Type")?;
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let declared = content.get(&media).ok_or_else(|| {
        format!(
            "Content-Type {content_type} is not documented (documented: {})",
            keys(&Value::Object(content.clone()))
        )
    })?;
    let instance = if media == "application/json" || media.ends_with("+json") {
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?
    } else {
        let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text")?;
        Value::String(text.to_string())
    };
    validate(&declared["schema"], &instance).map_err(|e| format!("body: {e}"))
}

/// Validates `instance` against a schema of the document. The schema is compiled with the
/// document's `components` beside it, so its `#/components/schemas/...` references resolve
/// and nothing is fetched.
fn validate(schema: &Value, instance: &Value) -> Result<(), String> {
    let key = schema.to_string();
    let validator = {
        let mut cache = validators().lock().unwrap();
        match cache.get(&key) {
            Some(v) => v.clone(),
            None => {
                let mut root = match schema {
                    Value::Object(_) => schema.clone(),
                    other => json!({ "allOf": [other] }),
                };
                root["components"] = document()["components"].clone();
                let compiled = jsonschema::options()
                    .with_draft(Draft::Draft202012)
                    .should_validate_formats(true)
                    .build(&root)
                    .map_err(|e| format!("the schema {schema} does not compile: {e}"))?;
                let compiled = Arc::new(compiled);
                cache.insert(key, compiled.clone());
                compiled
            }
        }
    };
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .take(5)
        .map(|e| format!("at `{}`: {e}", e.instance_path()))
        .collect();
    match errors.is_empty() {
        true => Ok(()),
        false => Err(format!("{} (schema {schema})", errors.join("; "))),
    }
}

fn keys(object: &Value) -> String {
    object
        .as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}
