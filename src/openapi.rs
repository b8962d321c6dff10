//! The OpenAPI 3.1 description of the canonical API, served at `GET /openapi.json`.
//!
//! This module owns the document and nothing else. Wherever the server has a definition, the
//! document is built from it rather than written a second time:
//!
//! - operations: [`Operation::ALL`], their names (`operationId`) and [`endpoint`], an
//!   exhaustive `match` next to the other per-operation facts here, so a new operation does not
//!   compile until it is described; the unit tests check that `canonical::route` routes every
//!   documented method + path to that very operation and refuses the methods not documented;
//! - problems: [`ErrorCode::ALL`] (code, status, title), one schema per code;
//! - the team, member and user schemas: one property per name of `TEAM_FIELDS`,
//!   `MEMBER_FIELDS` and `USER_FIELDS` (plus `backend` and `vendor`), checked by the tests;
//! - limits: `NAME_MAX`, `DESCRIPTION_MAX`, `MEMBERS_MAX` (`canonical::validate`) and
//!   `LIMIT_DEFAULT`, `LIMIT_MAX` (`canonical::route`).
//!
//! What no type says (the shape and nullability of each field, summaries) is written here.
//! `tests/support` validates every answer of the test suites against this document, so a
//! server answer the document does not describe fails a test.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use crate::canonical::route::{LIMIT_DEFAULT, LIMIT_MAX};
use crate::canonical::validate::{DESCRIPTION_MAX, MEMBERS_MAX, NAME_MAX, TEAM_WRITABLE};
use crate::canonical::Operation;
use crate::error::ErrorCode;
use crate::mapping::engine::TEAM_FIELDS;
use crate::mapping::fields::{MEMBER_FIELDS, USER_FIELDS};

/// The canonical member roles (`canonical::validate` accepts exactly these; a unit test checks).
pub const ROLES: [&str; 2] = ["admin", "member"];

/// The `Cache-Status` values the read cache answers with (RFC 9211).
const CACHE_STATUSES: [&str; 5] = [
    "teamgate; hit",
    "teamgate; fwd=miss",
    "teamgate; fwd=miss; collapsed",
    "teamgate; fwd=bypass",
    "teamgate; hit; stale",
];

/// Problems any request can get before routing, whatever its path: the body stage (413, 415,
/// 408), load shedding (503), the request timeout (504) and a failure of teamgate itself (500).
pub const ANY_REQUEST: [ErrorCode; 6] = [
    ErrorCode::PayloadTooLarge,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::RequestTimeout,
    ErrorCode::Internal,
    ErrorCode::UpstreamUnavailable,
    ErrorCode::UpstreamTimeout,
];

/// The document, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn build() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "teamgate canonical Team API",
            "version": "1",
            "summary": "One canonical Team API in front of vendor team APIs, through declarative mapping files.",
            "description": "Every error is an RFC 9457 `application/problem+json` answer. \
                Any request, whatever its path, may also answer 413 and 415 (the body stage), \
                503 (load shedding), 504 (the request timeout) and 500; a path outside this \
                document answers 404, a method not listed on a `/v1/` path 400.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "tags": [
            { "name": "teams" },
            { "name": "members" },
            { "name": "users" },
            { "name": "admin", "description": "Health, readiness, metrics and descriptions; never cached." },
        ],
        "paths": paths(),
        "components": {
            "schemas": schemas(),
            "parameters": parameters(),
            "headers": response_headers(),
            "responses": problem_responses(),
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Operations

/// Where each canonical operation is served: (method, path template). The router
/// (`canonical::route`) is the authority; the unit tests check this table against it.
pub fn endpoint(op: Operation) -> (&'static str, &'static str) {
    match op {
        Operation::ListTeams => ("get", "/v1/teams"),
        Operation::GetTeam => ("get", "/v1/teams/{id}"),
        Operation::CreateTeam => ("post", "/v1/teams"),
        Operation::UpdateTeam => ("patch", "/v1/teams/{id}"),
        Operation::DeleteTeam => ("delete", "/v1/teams/{id}"),
        Operation::ListMembers => ("get", "/v1/teams/{id}/members"),
        Operation::AddMember => ("post", "/v1/teams/{id}/members"),
        Operation::RemoveMember => ("delete", "/v1/teams/{id}/members/{user_id}"),
        Operation::UpdateMember => ("patch", "/v1/teams/{id}/members/{user_id}"),
        Operation::ListUsers => ("get", "/v1/users"),
    }
}

fn summary(op: Operation) -> &'static str {
    match op {
        Operation::ListTeams => "List teams, paged",
        Operation::GetTeam => "Get a team",
        Operation::CreateTeam => "Create a team",
        Operation::UpdateTeam => "Update a team (merge: absent = unchanged, null = cleared)",
        Operation::DeleteTeam => "Delete a team",
        Operation::ListMembers => "List a team's members",
        Operation::AddMember => "Add a member, by user id or by email",
        Operation::RemoveMember => "Remove a member",
        Operation::UpdateMember => "Change a member's role (where the vendor has roles)",
        Operation::ListUsers => "List users, paged (email is the key that crosses vendors)",
    }
}

fn tag(op: Operation) -> &'static str {
    match op {
        Operation::ListTeams
        | Operation::GetTeam
        | Operation::CreateTeam
        | Operation::UpdateTeam
        | Operation::DeleteTeam => "teams",
        Operation::ListMembers
        | Operation::AddMember
        | Operation::RemoveMember
        | Operation::UpdateMember => "members",
        Operation::ListUsers => "users",
    }
}

/// The query parameters the router accepts (any other is a 400), as `components/parameters`
/// names. There is no `expand`: `members` come whenever the backend holds them inline.
fn query_parameters(op: Operation) -> &'static [&'static str] {
    match op {
        Operation::ListTeams => &["name", "teams_q", "limit", "cursor", "include"],
        Operation::ListUsers => &["email", "users_q", "limit", "cursor", "include"],
        Operation::GetTeam
        | Operation::CreateTeam
        | Operation::UpdateTeam
        | Operation::ListMembers
        | Operation::AddMember
        | Operation::UpdateMember => &["include"],
        Operation::DeleteTeam | Operation::RemoveMember => &[],
    }
}

/// The request body schema, for the operations that take one (the others refuse a body).
fn request_body(op: Operation) -> Option<&'static str> {
    match op {
        Operation::CreateTeam => Some("TeamCreate"),
        Operation::UpdateTeam => Some("TeamPatch"),
        Operation::AddMember => Some("MemberAdd"),
        Operation::UpdateMember => Some("MemberRole"),
        Operation::ListTeams
        | Operation::GetTeam
        | Operation::DeleteTeam
        | Operation::ListMembers
        | Operation::RemoveMember
        | Operation::ListUsers => None,
    }
}

/// The success answers: status → (description, body schema).
fn successes(op: Operation) -> Vec<(u16, &'static str, Option<&'static str>)> {
    match op {
        Operation::ListTeams => vec![(200, "A page of teams", Some("TeamList"))],
        Operation::GetTeam => vec![(200, "The team", Some("Team"))],
        Operation::CreateTeam => vec![(201, "The team created", Some("Team"))],
        Operation::UpdateTeam => vec![(200, "The team as it is now", Some("Team"))],
        Operation::DeleteTeam | Operation::RemoveMember => vec![(204, "Done", None)],
        Operation::ListMembers => vec![(200, "The team's members", Some("MemberList"))],
        Operation::AddMember => vec![
            (201, "The member added", Some("Member")),
            (200, "The user was a member already", Some("Member")),
        ],
        Operation::UpdateMember => vec![(200, "The member as it is now", Some("Member"))],
        Operation::ListUsers => vec![(200, "A page of users", Some("UserList"))],
    }
}

/// Reads go through the read cache (`Cache-Status`, `Age`, `ETag`, 304); writes never do.
fn cached(op: Operation) -> bool {
    !op.is_write()
}

/// The path item of every documented path: canonical operations, then the admin routes.
fn paths() -> Value {
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for op in Operation::ALL {
        let (method, path) = endpoint(op);
        paths
            .entry(path)
            .or_default()
            .insert(method.into(), operation(op, path));
    }
    for (path, item) in admin_paths() {
        paths.entry(path).or_default().insert("get".into(), item);
    }
    let mut out = Map::new();
    for (path, item) in paths {
        out.insert(path.to_string(), Value::Object(item));
    }
    Value::Object(out)
}

fn operation(op: Operation, path: &str) -> Value {
    let mut parameters: Vec<Value> = path_parameters(path)
        .into_iter()
        .chain(query_parameters(op).iter().copied())
        .chain([
            "Teamgate-Backend",
            "Teamgate-Upstream-Credential",
            "X-Request-Id",
        ])
        .map(parameter_ref)
        .collect();
    if cached(op) {
        parameters.push(parameter_ref("If-None-Match"));
        parameters.push(parameter_ref("Cache-Control"));
    }
    if matches!(op, Operation::CreateTeam | Operation::AddMember) {
        parameters.push(parameter_ref("Idempotency-Key"));
    }
    let mut responses = Map::new();
    for (status, description, schema) in successes(op) {
        let mut headers = Map::new();
        headers.insert("X-Request-Id".into(), header_ref("X-Request-Id"));
        if op == Operation::CreateTeam {
            headers.insert("Location".into(), header_ref("Location"));
            headers.insert("Teamgate-Partial".into(), header_ref("Teamgate-Partial"));
        }
        if cached(op) {
            for name in ["Cache-Status", "Age", "ETag"] {
                headers.insert(name.into(), header_ref(name));
            }
        }
        let mut response = json!({ "description": description, "headers": headers });
        if let Some(schema) = schema {
            response["content"] = json!({ "application/json": { "schema": schema_ref(schema) } });
        }
        responses.insert(status.to_string(), response);
    }
    if cached(op) {
        responses.insert(
            "304".into(),
            json!({
                "description": "Not modified: `If-None-Match` matched the cached answer (no vendor call)",
                "headers": {
                    "X-Request-Id": header_ref("X-Request-Id"),
                    "Cache-Status": header_ref("Cache-Status"),
                    "Age": header_ref("Age"),
                    "ETag": header_ref("ETag"),
                },
            }),
        );
    }
    // Every code, for every operation: a mapping's error tables may turn any vendor error into
    // any canonical code, and every operation reaches a vendor.
    for status in problem_statuses(&ErrorCode::ALL) {
        responses.insert(status.to_string(), problem_ref(status));
    }
    let mut operation = json!({
        "operationId": op.name(),
        "summary": summary(op),
        "tags": [tag(op)],
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(schema) = request_body(op) {
        operation["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": schema_ref(schema) } },
        });
    }
    operation
}

/// `/v1/teams/{id}/members/{user_id}` → `["id", "user_id"]`.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Admin routes: answered by the router itself, never cached, no backend.

/// (path, operation) of each admin route; each is a GET. The `operationId` is the operation
/// label the server's metrics use for it.
fn admin_paths() -> Vec<(&'static str, Value)> {
    let ok = |description: &str, media: &str, schema: Value| {
        json!({
            "description": description,
            "headers": { "X-Request-Id": header_ref("X-Request-Id") },
            "content": { media: { "schema": schema } },
        })
    };
    let with_problems = |mut responses: Map<String, Value>| {
        for status in problem_statuses(&ANY_REQUEST) {
            responses
                .entry(status.to_string())
                .or_insert_with(|| problem_ref(status));
        }
        Value::Object(responses)
    };
    let get = |id: &str, summary: &str, responses: Map<String, Value>| {
        json!({
            "operationId": id,
            "summary": summary,
            "tags": ["admin"],
            "parameters": [parameter_ref("X-Request-Id")],
            "responses": with_problems(responses),
        })
    };
    let one = |status: u16, response: Value| {
        let mut map = Map::new();
        map.insert(status.to_string(), response);
        map
    };
    let mut ready = one(
        200,
        ok("Ready for traffic", "application/json", schema_ref("Ready")),
    );
    // Draining is an answer of /readyz, not a problem; load shedding still is one.
    ready.insert(
        "503".into(),
        json!({
            "description": "Draining (SIGTERM or SIGINT arrived), or shed at the concurrency limit",
            "headers": { "X-Request-Id": header_ref("X-Request-Id") },
            "content": {
                "application/json": { "schema": schema_ref("Ready") },
                "application/problem+json": { "schema": problem_schema(503) },
            },
        }),
    );
    vec![
        (
            "/healthz",
            get(
                "health",
                "Alive",
                one(200, ok("Alive", "application/json", schema_ref("Health"))),
            ),
        ),
        (
            "/readyz",
            get("ready", "Ready for traffic (503 while draining)", ready),
        ),
        (
            "/metrics",
            get(
                "metrics",
                "Prometheus metrics",
                one(
                    200,
                    ok(
                        "Prometheus text exposition format 0.0.4",
                        "text/plain",
                        json!({ "type": "string" }),
                    ),
                ),
            ),
        ),
        (
            "/v1/backends",
            get(
                "list_backends",
                "What each configured backend is, can do, and its limits",
                one(
                    200,
                    ok(
                        "The configured backends",
                        "application/json",
                        schema_ref("BackendList"),
                    ),
                ),
            ),
        ),
        (
            "/openapi.json",
            get(
                "openapi",
                "This document",
                one(
                    200,
                    ok(
                        "The OpenAPI 3.1 description of the canonical API",
                        "application/json",
                        json!({
                            "type": "object",
                            "required": ["openapi", "info", "paths"],
                            "properties": { "openapi": { "const": "3.1.0" } },
                        }),
                    ),
                ),
            ),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Problems

/// The distinct statuses of `codes`, ascending.
fn problem_statuses(codes: &[ErrorCode]) -> Vec<u16> {
    let mut statuses: Vec<u16> = codes.iter().map(|c| c.status()).collect();
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

/// The `components/responses` entry of a problem status: `Problem409`.
fn problem_response_name(status: u16) -> String {
    format!("Problem{status}")
}

/// The `components/schemas` entry of a code's problem: `Problem_name_taken`.
fn problem_schema_name(code: ErrorCode) -> String {
    format!("Problem_{}", code.as_str())
}

fn problem_ref(status: u16) -> Value {
    json!({ "$ref": format!("#/components/responses/{}", problem_response_name(status)) })
}

/// The problem of any code with `status` (409 is `name_taken` or `conflict`).
fn problem_schema(status: u16) -> Value {
    let of_status: Vec<Value> = ErrorCode::ALL
        .into_iter()
        .filter(|c| c.status() == status)
        .map(|c| schema_ref(&problem_schema_name(c)))
        .collect();
    match <[Value; 1]>::try_from(of_status) {
        Ok([single]) => single,
        Err(several) => json!({ "oneOf": several }),
    }
}

/// One response per problem status, with the problem schemas of its codes.
fn problem_responses() -> Value {
    let mut responses = Map::new();
    for status in problem_statuses(&ErrorCode::ALL) {
        let codes: Vec<&str> = ErrorCode::ALL
            .into_iter()
            .filter(|c| c.status() == status)
            .map(|c| c.as_str())
            .collect();
        let mut headers = Map::new();
        headers.insert("X-Request-Id".into(), header_ref("X-Request-Id"));
        if status == ErrorCode::RateLimited.status() {
            // Always sent with rate_limited: the vendor's value, or 1 (`engine::steps`).
            let mut always = response_headers()["Retry-After"].clone();
            always["required"] = json!(true);
            headers.insert("Retry-After".into(), always);
        }
        if status == ErrorCode::UpstreamUnavailable.status() {
            headers.insert("Retry-After".into(), header_ref("Retry-After"));
        }
        responses.insert(
            problem_response_name(status),
            json!({
                "description": format!("Problem: {}", codes.join(" or ")),
                "headers": headers,
                "content": {
                    "application/problem+json": { "schema": problem_schema(status) },
                },
            }),
        );
    }
    Value::Object(responses)
}

// ---------------------------------------------------------------------------------------------
// Parameters and headers

fn parameter_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/parameters/{name}") })
}

fn header_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/headers/{name}") })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "description": description, "schema": schema })
}

fn header(name: &str, description: &str) -> Value {
    json!({
        "name": name, "in": "header", "description": description,
        "schema": { "type": "string" },
    })
}

fn path(name: &str, description: &str) -> Value {
    json!({
        "name": name, "in": "path", "required": true, "description": description,
        "schema": { "type": "string", "minLength": 1 },
    })
}

/// `components/parameters`: path ids, list queries and request headers.
fn parameters() -> Value {
    json!({
        "id": path("id", "The team id (a string on every backend). An id no team can have answers 404."),
        "user_id": path("user_id", "The user id of the member (from `/v1/users` or a member list)."),
        "name": query("name", "Only the team with exactly this name (case-insensitive).", json!({ "type": "string" })),
        "teams_q": query("q", "Only teams whose name contains this text (case-insensitive).", json!({ "type": "string" })),
        "email": query("email", "Only the user with exactly this email (case-insensitive).", json!({ "type": "string" })),
        "users_q": query(
            "q",
            "Only users whose email, name or username contains this text (case-insensitive).",
            json!({ "type": "string" }),
        ),
        "limit": query(
            "limit",
            "Page size (a backend may cap it lower). Ignored with `cursor`: a cursor fixes the page size of the walk.",
            json!({ "type": "integer", "minimum": 1, "maximum": LIMIT_MAX, "default": LIMIT_DEFAULT }),
        ),
        "cursor": query("cursor", "The `next_cursor` of the previous page; opaque.", json!({ "type": "string" })),
        "include": query(
            "include",
            "`vendor`: each team, member or user in the answer also carries `vendor`, every field \
             the vendor returned that has no canonical home (the unified-API convention, as \
             Merge's `include_remote_data`). Without it the answer holds the canonical fields only.",
            json!({ "type": "string", "enum": ["vendor"] }),
        ),
        "Teamgate-Backend": header(
            "Teamgate-Backend",
            "The configured backend to serve the request; the default backend when absent. \
             An unknown name is a 400 listing the configured ones (`backends`).",
        ),
        "Teamgate-Upstream-Credential": header(
            "Teamgate-Upstream-Credential",
            "The caller's own vendor credential, required by backends configured with \
             `forward_credential = true` (401 without it) and ignored by the others. \
             Never logged or echoed.",
        ),
        "X-Request-Id": header(
            "X-Request-Id",
            "The caller's request id: kept when it is 1 to 64 visible ASCII characters, otherwise a new one is made.",
        ),
        "Idempotency-Key": header(
            "Idempotency-Key",
            "1 to 255 visible ASCII characters. The same key with the same request, within the \
             idempotency window, answers the first result without a second vendor write; with \
             another request, 409 `conflict`.",
        ),
        "If-None-Match": header(
            "If-None-Match",
            "Entity tags (`ETag` of an earlier answer, `W/` prefixes, lists, `*`): 304 when the cached answer matches.",
        ),
        "Cache-Control": header(
            "Cache-Control",
            "`no-cache`, `max-age=0` or `no-store` go to the vendor and refresh the cached answer.",
        ),
    })
}

fn response_headers() -> Value {
    json!({
        "X-Request-Id": {
            "description": "The request id: the caller's when sane, otherwise made here. Also the problem's `request_id`.",
            "required": true,
            "schema": { "type": "string", "minLength": 1 },
        },
        "Cache-Status": {
            "description": "What the read cache did (RFC 9211). Absent when the cache is disabled.",
            "schema": { "type": "string", "enum": CACHE_STATUSES },
        },
        "Age": {
            "description": "Seconds since the answer was fetched from the vendor.",
            "schema": { "type": "integer", "minimum": 0 },
        },
        "ETag": {
            "description": "Entity tag of the answer's body, the same in every replica.",
            "schema": { "type": "string", "pattern": "^\"[^\"]*\"$" },
        },
        "Location": {
            "description": "The created team: `/v1/teams/{id}`.",
            "required": true,
            "schema": { "type": "string", "format": "uri-reference" },
        },
        "Teamgate-Partial": {
            "description": "The team was created but reading it back failed: the answer holds its id and the fields sent, the rest null.",
            "schema": { "type": "string" },
        },
        "Retry-After": {
            "description": "Seconds to wait before trying again, when the vendor said (RFC 9110).",
            "schema": { "type": "integer", "minimum": 0 },
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Schemas

/// A JSON Schema type that may also be `null`.
fn nullable(schema_type: &str) -> Value {
    json!({ "type": [schema_type, "null"] })
}

fn object(properties: Map<String, Value>, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": false,
    })
}

/// `vendor`: everything the vendor returned that has no canonical home, untouched.
fn vendor_object() -> Value {
    json!({
        "type": "object",
        "description": "With `?include=vendor` only: every field the vendor returned that has no canonical home, untouched.",
    })
}

/// The schema of each canonical team field. The tests check that its names are `TEAM_FIELDS`.
pub(crate) fn team_field(name: &str) -> Option<Value> {
    let time = json!({
        "type": ["string", "null"],
        "format": "date-time",
        "description": "RFC 3339, UTC; null where the vendor does not say.",
    });
    Some(match name {
        "id" => {
            json!({ "type": "string", "description": "Always a string, whatever the vendor uses." })
        }
        "name" => json!({ "type": "string" }),
        "description" => nullable("string"),
        "email" => nullable("string"),
        "parent_id" => nullable("string"),
        "member_count" => json!({ "type": ["integer", "null"], "minimum": 0 }),
        "members" => json!({
            "type": ["array", "null"],
            "items": schema_ref("Member"),
            "description": "Present on backends that hold a team's members inline.",
        }),
        "created_at" | "updated_at" => time,
        _ => return None,
    })
}

/// Team fields every answer carries (all but `members`, which only backends that hold the
/// member list inline have), plus `backend` and `vendor`.
fn team_schema() -> Value {
    let mut properties = Map::new();
    for name in TEAM_FIELDS {
        if let Some(schema) = team_field(name) {
            properties.insert((*name).to_string(), schema);
        }
    }
    properties.insert(
        "backend".into(),
        json!({ "type": "string", "description": "The backend that answered." }),
    );
    properties.insert("vendor".into(), vendor_object());
    let required: Vec<&str> = properties
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "members" && *k != "vendor")
        .collect();
    let mut schema = object(properties.clone(), &required);
    schema["description"] =
        json!("A canonical field the vendor does not have is null; ids are strings.");
    schema
}

pub(crate) fn member_field(name: &str) -> Option<Value> {
    Some(match name {
        "user_id" => json!({ "type": "string" }),
        "email" | "username" => nullable("string"),
        "role" => json!({ "type": "string", "enum": ROLES }),
        _ => return None,
    })
}

pub(crate) fn user_field(name: &str) -> Option<Value> {
    Some(match name {
        "id" => json!({ "type": "string" }),
        "email" | "username" | "name" => nullable("string"),
        _ => return None,
    })
}

/// A resource read with a field map: its canonical fields, all present, and `vendor` when
/// asked for.
fn read_schema(names: &[&str], field: fn(&str) -> Option<Value>) -> Value {
    let mut properties = Map::new();
    for name in names {
        if let Some(schema) = field(name) {
            properties.insert((*name).to_string(), schema);
        }
    }
    let required: Vec<String> = properties.keys().cloned().collect();
    properties.insert("vendor".into(), vendor_object());
    let required: Vec<&str> = required.iter().map(String::as_str).collect();
    object(properties, &required)
}

fn page(key: &str, item: &str) -> Value {
    let mut properties = Map::new();
    properties.insert(
        key.into(),
        json!({ "type": "array", "items": schema_ref(item) }),
    );
    properties.insert(
        "next_cursor".into(),
        json!({ "type": ["string", "null"], "description": "The next page's `cursor`; null on the last page." }),
    );
    object(properties, &[key, "next_cursor"])
}

/// The writable team fields (`TEAM_WRITABLE`) with their canonical limits. `null` is accepted
/// for all but the name: on a create it is ignored, in a patch it clears the field.
fn team_input_schema(required: &[&str]) -> Value {
    let mut properties = Map::new();
    for name in TEAM_WRITABLE {
        let schema = match *name {
            "name" => json!({
                "type": "string",
                "minLength": 1,
                "maxLength": NAME_MAX,
                "pattern": "\\S",
                "description": format!(
                    "Trimmed, then 1..={NAME_MAX} characters, no control characters; \
                     a backend may allow fewer (`/v1/backends` limits)."
                ),
            }),
            "description" => json!({
                "type": ["string", "null"],
                "maxLength": DESCRIPTION_MAX,
                "description": "A backend may allow fewer characters; one that holds no description refuses the field (400).",
            }),
            "email" => json!({ "type": ["string", "null"], "pattern": "^[^@\\s]+@[^@\\s]+$" }),
            "parent_id" => json!({ "type": ["string", "null"], "minLength": 1 }),
            "members" => json!({
                "type": ["array", "null"],
                "maxItems": MEMBERS_MAX,
                "items": schema_ref("MemberEntry"),
                "description": "The whole member list, replacing the vendor's, each user once; \
                    only on backends that hold a team's members (400 elsewhere).",
            }),
            _ => continue,
        };
        properties.insert((*name).to_string(), schema);
    }
    object(properties, required)
}

fn schemas() -> Value {
    let mut schemas = Map::new();
    let mut add = |name: &str, schema: Value| {
        schemas.insert(name.to_string(), schema);
    };
    add("Team", team_schema());
    add("TeamList", page("teams", "Team"));
    add("Member", read_schema(MEMBER_FIELDS, member_field));
    add(
        "MemberList",
        object(
            Map::from_iter([(
                "members".to_string(),
                json!({ "type": "array", "items": schema_ref("Member") }),
            )]),
            &["members"],
        ),
    );
    add("User", read_schema(USER_FIELDS, user_field));
    add("UserList", page("users", "User"));
    add("TeamCreate", team_input_schema(&["name"]));
    add("TeamPatch", team_input_schema(&[]));
    add(
        "MemberEntry",
        json!({
            "type": "object",
            "required": ["user_id"],
            "properties": {
                "user_id": { "type": "string", "minLength": 1 },
                "role": { "type": ["string", "null"], "enum": [ROLES[0], ROLES[1], null] },
            },
            "additionalProperties": false,
        }),
    );
    add(
        "MemberAdd",
        json!({
            "type": "object",
            "description": "`user_id`, or `email` (resolved through the vendor's user lookup); `role` defaults to member.",
            "properties": {
                "user_id": { "type": ["string", "null"], "minLength": 1 },
                "email": { "type": ["string", "null"], "pattern": "^[^@\\s]+@[^@\\s]+$" },
                "role": { "type": ["string", "null"], "enum": [ROLES[0], ROLES[1], null] },
            },
            "anyOf": [
                { "required": ["user_id"], "properties": { "user_id": { "type": "string" } } },
                { "required": ["email"], "properties": { "email": { "type": "string" } } },
            ],
            "additionalProperties": false,
        }),
    );
    add(
        "MemberRole",
        json!({
            "type": "object",
            "required": ["role"],
            "properties": { "role": { "type": "string", "enum": ROLES } },
            "additionalProperties": false,
        }),
    );
    add("Problem", problem_base());
    add(
        "UpstreamDetail",
        json!({
            "type": "object",
            "description": "What the vendor answered.",
            "required": ["status", "code", "message"],
            "properties": {
                "status": { "type": "integer" },
                "code": { "type": ["string", "null"] },
                "message": { "type": ["string", "null"] },
            },
            "additionalProperties": false,
        }),
    );
    for code in ErrorCode::ALL {
        add(&problem_schema_name(code), problem_of(code));
    }
    add("Backend", backend_schema());
    add(
        "BackendList",
        object(
            Map::from_iter([(
                "backends".to_string(),
                json!({ "type": "array", "items": schema_ref("Backend") }),
            )]),
            &["backends"],
        ),
    );
    add(
        "Health",
        json!({
            "type": "object",
            "required": ["status"],
            "properties": { "status": { "const": "ok" } },
            "additionalProperties": false,
        }),
    );
    add(
        "Ready",
        json!({
            "type": "object",
            "required": ["status", "config_hash", "backends"],
            "properties": {
                "status": { "enum": ["ready", "draining"] },
                "config_hash": { "type": "string" },
                "backends": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["state", "mapping_digest"],
                        "properties": {
                            "state": { "enum": ["ready", "draining"] },
                            "mapping_digest": { "type": "string" },
                        },
                        "additionalProperties": false,
                    },
                },
            },
            "additionalProperties": false,
        }),
    );
    Value::Object(schemas)
}

/// The RFC 9457 members every problem has (`server::problem`), with the canonical code.
fn problem_base() -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    json!({
        "type": "object",
        "description": "An RFC 9457 problem with the canonical code, the backend and what the vendor said.",
        "required": ["type", "title", "status", "code", "detail", "backend", "upstream", "request_id"],
        "properties": {
            "type": { "type": "string", "format": "uri-reference" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "code": { "type": "string", "enum": codes },
            "detail": { "type": "string" },
            "backend": { "type": ["string", "null"], "description": "The backend, once the request had one." },
            "upstream": {
                "oneOf": [schema_ref("UpstreamDetail"), { "type": "null" }],
                "description": "The vendor's status, code and message; null when the vendor did not answer with an error.",
            },
            "request_id": { "type": "string" },
            "backends": {
                "type": "array",
                "items": { "type": "string" },
                "description": "On an unknown `Teamgate-Backend`: the configured backends.",
            },
        },
        "additionalProperties": false,
    })
}

/// The problem of one code: its type, title, status and code are fixed.
fn problem_of(code: ErrorCode) -> Value {
    json!({
        "title": code.title(),
        "allOf": [
            schema_ref("Problem"),
            {
                "properties": {
                    "type": { "const": format!("/problems/{}", code.as_str()) },
                    "title": { "const": code.title() },
                    "status": { "const": code.status() },
                    "code": { "const": code.as_str() },
                },
            },
        ],
    })
}

fn backend_schema() -> Value {
    let operations: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
    let count = json!({ "type": "integer", "minimum": 0 });
    json!({
        "type": "object",
        "required": [
            "name", "vendor", "default", "operations", "team_fields", "member_roles",
            "forward_credential", "cache", "limits",
        ],
        "properties": {
            "name": { "type": "string" },
            "vendor": { "type": "string" },
            "default": { "type": "boolean" },
            "operations": {
                "type": "array",
                "items": { "enum": operations },
                "description": "The operations the backend can do; the others answer 501.",
            },
            "team_fields": {
                "type": "array",
                "items": { "enum": TEAM_FIELDS },
                "description": "The team fields the backend holds; writing another is a 400.",
            },
            "member_roles": { "type": "array", "items": { "enum": ROLES } },
            "forward_credential": { "type": "boolean" },
            "cache": {
                "type": "object",
                "required": ["ttl_ms", "stale_if_error_ms"],
                "properties": { "ttl_ms": count, "stale_if_error_ms": count },
                "additionalProperties": false,
            },
            "limits": {
                "type": "object",
                "required": ["name_max", "description_max", "page_size_max"],
                "properties": { "name_max": count, "description_max": count, "page_size_max": count },
                "additionalProperties": false,
            },
        },
        "additionalProperties": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::route::{route, Route};
    use crate::canonical::validate;
    use http::Method;

    const METHODS: [&str; 5] = ["get", "post", "patch", "delete", "put"];

    fn method(name: &str) -> Method {
        Method::from_bytes(name.to_ascii_uppercase().as_bytes()).unwrap()
    }

    /// A documented path with sample ids in place of its parameters.
    fn sample(path: &str) -> String {
        path.replace("{id}", "team-7")
            .replace("{user_id}", "user-9")
    }

    fn operations() -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in document()["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
        out
    }

    #[test]
    fn every_operation_is_documented_once_where_the_router_routes_it() {
        let documented = operations();
        for op in Operation::ALL {
            let mut found = documented
                .iter()
                .filter(|(_, _, o)| o["operationId"] == op.name());
            let Some((path, verb, _)) = found.next() else {
                panic!("{} is not documented", op.name());
            };
            assert!(found.next().is_none(), "{} documented twice", op.name());
            match route(&method(verb), &sample(path), None) {
                Ok(Route::Operation(request)) => assert_eq!(request.op, op, "{verb} {path}"),
                other => panic!("{verb} {path} routes to {other:?}, not {}", op.name()),
            }
        }
    }

    #[test]
    fn the_router_serves_every_documented_method_and_refuses_the_others() {
        // The admin stage answers these (GET only) before the router sees them.
        let admin = crate::server::admin::ROUTES;
        for (path, item) in document()["paths"].as_object().unwrap() {
            if let Some((_, label)) = admin.iter().find(|(p, _)| p == path) {
                let ids: Vec<&str> = METHODS
                    .iter()
                    .filter_map(|verb| item.get(*verb))
                    .filter_map(|op| op["operationId"].as_str())
                    .collect();
                assert_eq!(
                    ids,
                    [*label],
                    "{path}: GET only, labelled as the server does"
                );
                assert!(item.get("get").is_some(), "{path}");
                continue;
            }
            for verb in METHODS {
                let routed = route(&method(verb), &sample(path), None);
                match item.get(verb) {
                    Some(op) => {
                        let id = op["operationId"].as_str().unwrap();
                        match routed {
                            Ok(Route::Operation(r)) => assert_eq!(r.op.name(), id),
                            Ok(Route::Backends) => assert_eq!(*path, "/v1/backends"),
                            Err(e) => panic!("{verb} {path} ({id}) is refused: {e}"),
                        }
                    }
                    None => assert!(routed.is_err(), "{verb} {path} is routed, not documented"),
                }
            }
        }
        // Five canonical paths, `/v1/backends`, the admin ones, nothing else.
        assert_eq!(
            document()["paths"].as_object().unwrap().len(),
            5 + 1 + admin.len()
        );
    }

    #[test]
    fn documented_query_parameters_are_the_ones_the_router_accepts() {
        let components = &document()["components"]["parameters"];
        let cursor = crate::canonical::cursor::encode(crate::canonical::PageRequest {
            limit: 2,
            offset: 2,
        });
        for (path, verb, op) in operations() {
            let mut names = Vec::new();
            for p in op["parameters"].as_array().unwrap() {
                let key = p["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
                let parameter = &components[key];
                assert!(parameter.is_object(), "{key} is not a component");
                if parameter["in"] == "query" {
                    names.push(parameter["name"].as_str().unwrap().to_string());
                }
            }
            if !path.starts_with("/v1/") || path == "/v1/backends" {
                continue; // the admin routes read no query
            }
            for name in &names {
                let value = match name.as_str() {
                    "limit" => "2",
                    "cursor" => &cursor,
                    "include" => "vendor",
                    _ => "x",
                };
                let query = format!("{name}={value}");
                let routed = route(&method(&verb), &sample(&path), Some(&query));
                assert!(routed.is_ok(), "{verb} {path}?{query}: {routed:?}");
            }
            // Not documented, so refused: DESIGN's `expand=members` too.
            let mut refused = vec!["expand=members", "colour=red", "include=remote"];
            if !names.iter().any(|n| n == "include") {
                refused.push("include=vendor");
            }
            for query in refused {
                let routed = route(&method(&verb), &sample(&path), Some(query));
                assert!(routed.is_err(), "{verb} {path}?{query} is accepted");
            }
        }
        let limit = &components["limit"]["schema"];
        assert_eq!(limit["maximum"], LIMIT_MAX);
        assert_eq!(limit["default"], LIMIT_DEFAULT);
    }

    #[test]
    fn every_error_code_is_a_problem_type_with_its_status_and_title() {
        let doc = document();
        for code in ErrorCode::ALL {
            let schema = &doc["components"]["schemas"][problem_schema_name(code)];
            let fixed = &schema["allOf"][1]["properties"];
            assert_eq!(
                fixed["type"]["const"],
                format!("/problems/{}", code.as_str())
            );
            assert_eq!(fixed["status"]["const"], code.status());
            assert_eq!(fixed["title"]["const"], code.title());
            let response = &doc["components"]["responses"][problem_response_name(code.status())];
            assert!(response.to_string().contains(&problem_schema_name(code)));
        }
    }

    #[test]
    fn resource_schemas_have_exactly_the_canonical_fields() {
        let schemas = &document()["components"]["schemas"];
        let keys = |name: &str| -> Vec<String> {
            schemas[name]["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        let with = |fields: &[&str], extra: &[&str]| -> Vec<String> {
            fields.iter().chain(extra).map(|s| s.to_string()).collect()
        };
        assert_eq!(keys("Team"), with(TEAM_FIELDS, &["backend", "vendor"]));
        assert_eq!(keys("Member"), with(MEMBER_FIELDS, &["vendor"]));
        assert_eq!(keys("User"), with(USER_FIELDS, &["vendor"]));
        assert_eq!(keys("TeamCreate"), with(TEAM_WRITABLE, &[]));
        assert_eq!(keys("TeamPatch"), with(TEAM_WRITABLE, &[]));
        let name = &schemas["TeamCreate"]["properties"]["name"];
        assert_eq!(name["maxLength"], NAME_MAX);
        let description = &schemas["TeamCreate"]["properties"]["description"];
        assert_eq!(description["maxLength"], DESCRIPTION_MAX);
    }

    #[test]
    fn the_documented_roles_are_the_ones_validation_accepts() {
        for role in ROLES {
            assert!(validate::member_role_input(&json!({ "role": role })).is_ok());
        }
        for role in ["owner", "user", "Admin", ""] {
            assert!(validate::member_role_input(&json!({ "role": role })).is_err());
        }
    }
}
