//! The checker's own tests: it must be able to fail. Each test feeds one request to a small
//! inline document (OpenAPI 3.1 or Swagger 2.0) and looks for the reason it should give.

use serde_json::{json, Value};

use super::check::{Checker, Request, Verdict};
use super::spec::Spec;

/// An OpenAPI 3.1 document shaped like the vendors': a literal path beside a templated one,
/// parameters on the path item and the operation, `$ref`s to components, a query credential.
fn openapi() -> Value {
    json!({
        "openapi": "3.1.0",
        "servers": [{ "url": "https://api.example.com/api" }],
        "security": [{ "Key": [] }],
        "paths": {
            "/teams": {
                "post": {
                    "requestBody": {
                        "required": true,
                        "content": { "application/json": {
                            "schema": { "$ref": "#/components/schemas/Team" }
                        } }
                    }
                },
                "get": { "parameters": [{ "$ref": "#/components/parameters/Page" }] }
            },
            "/teams/by-name": {
                "get": { "parameters": [{ "name": "name", "in": "query", "required": true }] }
            },
            "/teams/{teamId}": {
                "parameters": [{ "name": "teamId", "in": "path", "required": true }],
                "get": {},
                "delete": { "security": [] }
            }
        },
        "components": {
            "securitySchemes": { "Key": { "type": "apiKey", "in": "query", "name": "app_key" } },
            "parameters": {
                "Page": { "name": "p", "in": "query", "required": true,
                          "schema": { "type": "integer", "enum": [1, 2] } }
            },
            "schemas": {
                "Team": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": { "type": "string", "maxLength": 5 },
                        "ids": { "type": "array", "items": { "$ref": "#/components/schemas/Id" } }
                    }
                },
                "Id": { "type": "integer" }
            }
        }
    })
}

/// A Swagger 2.0 document shaped like Opsgenie's: `#/parameters` refs, enums, a body param.
fn swagger() -> Value {
    json!({
        "swagger": "2.0",
        "securityDefinitions": { "GenieKey": { "type": "apiKey", "in": "header", "name": "Authorization" } },
        "security": [{ "GenieKey": [] }],
        "parameters": {
            "IdType": { "name": "identifierType", "in": "query", "type": "string", "enum": ["id", "name"] },
            "Needed": { "name": "needed", "in": "query", "required": true, "type": "string" }
        },
        "paths": {
            "/v2/teams/{identifier}": {
                "get": { "parameters": [
                    { "name": "identifier", "in": "path", "required": true, "type": "string" },
                    { "$ref": "#/parameters/IdType" }
                ] },
                "patch": { "parameters": [
                    { "name": "body", "in": "body", "required": true,
                      "schema": { "$ref": "#/definitions/Update" } }
                ] }
            },
            "/v2/logs": { "get": { "parameters": [{ "$ref": "#/parameters/Needed" }] } }
        },
        "definitions": {
            "Update": {
                "type": "object",
                "required": ["name"],
                "properties": { "name": { "type": "string" }, "members": {
                    "type": "array", "items": { "$ref": "#/definitions/Member" } } }
            },
            "Member": { "type": "object", "required": ["user"], "properties": { "user": { "type": "object" } } }
        }
    })
}

fn checker(doc: Value) -> Checker {
    Checker::new(vec![
        Spec::from_value("test.json", doc).expect("test spec reads")
    ])
}

/// Runs one request; `headers` and `body` as the simulator would log them.
fn run(
    doc: Value,
    method: &str,
    path_query: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Verdict {
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_query, None),
    };
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    checker(doc).check(&Request {
        method,
        path,
        query,
        headers: &headers,
        body,
    })
}

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];
const GENIE: &[(&str, &str)] = &[
    ("authorization", "GenieKey k"),
    ("content-type", "application/json"),
];

#[track_caller]
fn assert_reason(verdict: &Verdict, piece: &str) {
    assert!(
        verdict.reasons.iter().any(|r| r.contains(piece)),
        "wanted a reason containing {piece:?}, got {:?}",
        verdict.reasons
    );
}

#[track_caller]
fn assert_accepted(verdict: &Verdict) {
    assert!(
        verdict.reasons.is_empty(),
        "rejected: {:?}",
        verdict.reasons
    );
}

#[test]
fn accepts_a_request_that_fits() {
    let v = run(
        openapi(),
        "POST",
        "/api/teams?app_key=k",
        JSON,
        r#"{"name":"Core","ids":[1,2]}"#,
    );
    assert_accepted(&v);
    assert_eq!(v.template.as_deref(), Some("/teams"));
    let v = run(
        swagger(),
        "PATCH",
        "/v2/teams/abc",
        GENIE,
        r#"{"name":"x","members":[{"user":{}}]}"#,
    );
    assert_accepted(&v);
}

#[test]
fn a_wrong_method_is_reported() {
    let v = run(
        openapi(),
        "PUT",
        "/api/teams?app_key=k",
        JSON,
        r#"{"name":"Core"}"#,
    );
    assert_reason(&v, "method PUT is not in the spec for /teams");
    assert_reason(&v, "GET, POST");
}

#[test]
fn an_unknown_path_is_reported() {
    let v = run(openapi(), "GET", "/api/groups?app_key=k", &[], "");
    assert_reason(&v, "not in the spec");
    // Outside the server's base path nothing matches either.
    let v = run(openapi(), "GET", "/teams/by-name?name=x&app_key=k", &[], "");
    assert_reason(&v, "not in the spec");
    // A literal segment must match exactly, even in case.
    let v = run(
        openapi(),
        "GET",
        "/api/Teams/by-name?name=x&app_key=k",
        &[],
        "",
    );
    assert_reason(&v, "not in the spec");
}

#[test]
fn literal_segments_win_over_templates() {
    let v = run(openapi(), "GET", "/api/teams/by-name?app_key=k", &[], "");
    assert_eq!(v.template.as_deref(), Some("/teams/by-name"));
    assert_reason(&v, "required query parameter `name` is missing");
    let v = run(openapi(), "GET", "/api/teams/abc%2Fdef?app_key=k", &[], "");
    assert_eq!(v.template.as_deref(), Some("/teams/{teamId}"));
    assert_accepted(&v);
}

#[test]
fn a_missing_required_query_parameter_is_reported() {
    // OpenAPI 3: through `#/components/parameters`.
    let v = run(openapi(), "GET", "/api/teams?app_key=k", &[], "");
    assert_reason(&v, "required query parameter `p` is missing");
    // Swagger 2.0: through `#/parameters`.
    let v = run(swagger(), "GET", "/v2/logs", GENIE, "");
    assert_reason(&v, "required query parameter `needed` is missing");
    let v = run(swagger(), "GET", "/v2/logs?needed=", GENIE, "");
    assert_accepted(&v);
}

#[test]
fn a_query_value_outside_its_enum_is_reported() {
    let v = run(
        swagger(),
        "GET",
        "/v2/teams/abc?identifierType=email",
        GENIE,
        "",
    );
    assert_reason(&v, "`identifierType=email` is not one of");
    let v = run(
        swagger(),
        "GET",
        "/v2/teams/abc?identifierType=name",
        GENIE,
        "",
    );
    assert_accepted(&v);
    let v = run(openapi(), "GET", "/api/teams?p=3&app_key=k", &[], "");
    assert_reason(&v, "`p=3` is not one of");
}

#[test]
fn a_missing_credential_is_reported_only_where_the_spec_wants_one() {
    let v = run(openapi(), "GET", "/api/teams/7", &[], "");
    assert_reason(&v, "`app_key` in query");
    // `security: []` on the operation: no credential needed.
    let v = run(openapi(), "DELETE", "/api/teams/7", &[], "");
    assert_accepted(&v);
    let v = run(swagger(), "GET", "/v2/teams/abc", &[], "");
    assert_reason(&v, "`Authorization` in header");
}

#[test]
fn a_body_of_the_wrong_type_is_reported() {
    let v = run(
        openapi(),
        "POST",
        "/api/teams?app_key=k",
        JSON,
        r#"{"name":42}"#,
    );
    assert_reason(&v, "body/name does not fit the schema");
    // Through a second `$ref` (array items).
    let v = run(
        openapi(),
        "POST",
        "/api/teams?app_key=k",
        JSON,
        r#"{"name":"a","ids":["1"]}"#,
    );
    assert_reason(&v, "body/ids/0 does not fit");
    let v = run(
        openapi(),
        "POST",
        "/api/teams?app_key=k",
        JSON,
        r#"{"name":"toolong"}"#,
    );
    assert_reason(&v, "body/name does not fit");
    let v = run(openapi(), "POST", "/api/teams?app_key=k", JSON, "not json");
    assert_reason(&v, "not JSON");
}

#[test]
fn a_body_missing_a_required_property_is_reported() {
    let v = run(
        openapi(),
        "POST",
        "/api/teams?app_key=k",
        JSON,
        r#"{"ids":[]}"#,
    );
    assert_reason(&v, "\"name\" is a required property");
    let v = run(
        swagger(),
        "PATCH",
        "/v2/teams/abc",
        GENIE,
        r#"{"members":[{}]}"#,
    );
    assert_reason(&v, "\"name\" is a required property");
    assert_reason(&v, "\"user\" is a required property");
}

#[test]
fn a_body_where_none_is_declared_or_none_where_one_is_required_is_reported() {
    let v = run(
        openapi(),
        "GET",
        "/api/teams/7?app_key=k",
        JSON,
        r#"{"x":1}"#,
    );
    assert_reason(&v, "declares none");
    let v = run(openapi(), "POST", "/api/teams?app_key=k", JSON, "");
    assert_reason(&v, "requires a request body");
    let v = run(swagger(), "PATCH", "/v2/teams/abc", GENIE, "");
    assert_reason(&v, "requires a request body");
    let v = run(
        openapi(),
        "POST",
        "/api/teams?app_key=k",
        &[("content-type", "text/plain")],
        "x",
    );
    assert_reason(&v, "not a declared body type");
}

#[test]
fn odd_documents_are_reported_not_panicked_on() {
    let mut looped = openapi();
    looped["components"]["parameters"]["Page"] = json!({ "$ref": "#/components/parameters/Page" });
    let v = run(looped, "GET", "/api/teams?app_key=k", &[], "");
    assert_reason(&v, "spec problem");
    let mut external = openapi();
    external["paths"]["/teams"]["post"]["requestBody"] = json!({ "$ref": "other.json#/x" });
    let v = run(external, "POST", "/api/teams?app_key=k", JSON, "{}");
    assert_reason(&v, "outside the document");
    let mut dangling = openapi();
    dangling["components"]["schemas"]["Team"] = json!({ "$ref": "#/components/schemas/Nope" });
    let v = run(dangling, "POST", "/api/teams?app_key=k", JSON, "{}");
    assert_reason(&v, "spec problem");
    assert!(Spec::from_value("x", json!({ "openapi": "2.5" })).is_err());
    assert!(Spec::from_value("x", json!([1, 2])).is_err());
}
