//! Opsgenie Team API v2 simulator: an in-memory, stateful stand-in for `api.opsgenie.com`'s
//! team, team-member and (read-only) user routes.
//!
//! This file owns the Opsgenie wire behaviour teamgate's conformance tests trust:
//!
//! - `POST /v2/teams`, `GET /v2/teams`, `GET|DELETE /v2/teams/:identifier?identifierType=id|name`,
//!   `PATCH /v2/teams/:teamId`;
//! - `POST /v2/teams/:teamIdentifier/members?teamIdentifierType=id|name`,
//!   `DELETE /v2/teams/:teamIdentifier/members/:memberIdentifier?teamIdentifierType=id|name`;
//! - `GET /v2/users` (limit/offset paging, sorting, query) and `GET /v2/users/:identifier`,
//!   over the shared [`PEOPLE`] (ids from [`opsgenie_user_id`], username = email, index 0 the
//!   account owner with the `Admin` role).
//!
//! Sources, in order of weight: seed `003_9a14846c193e5e3e.txt` (the team-api page), the
//! Opsgenie section and the "Second look" section of `shared/VENDORS.md` (which cites the Go SDK
//! and the Terraform provider), and `shared/specs/opsgenie/{team-swagger,swagger}.json`.
//!
//! Documented and reproduced: `GenieKey` auth; the envelope (`took`, `requestId`, `result`,
//! `data`, `expandable`; headers `X-Request-ID`, `X-Response-Time`); 201 on create and 200 on
//! every other write; the 100 / 10000 character limits (seed 003; the current docs page says
//! 200 for descriptions, the seed wins); PATCH replacing the whole member list; the different
//! query-parameter names `identifierType` (team routes) and `teamIdentifierType` (member routes);
//! no pagination on the team list; the 409 text `There is already one Team with same name`
//! (Terraform issue 353); the 422 envelope with an `errors` map (Alertmanager issue 1223); the
//! 429 headers and body of the SDK's own mock; `No handler found` for an unknown route.
//!
//! Inferences, where the documents are silent (each marked again where it is implemented):
//!
//! - the 401 text `Could not authenticate`, the 404 texts for a missing team, member or user,
//!   the 415 / 400 / 405 texts and the `errors` field texts of a 422;
//! - `X-RateLimit-State: OK` on successful answers (the SDK refuses a response without the
//!   header; the value `OK` was never seen) and `X-Response-Time` as seconds like `took`
//!   (the SDK parses it as a float);
//! - remove-member answers `{"result":"Removed","data":{"id","name"}}`;
//! - adding a user who is already a member succeeds and only updates the role when one is given;
//! - roles are only `user` and `admin` (the swagger allows custom team roles; the simulator has
//!   none, so any other role is a 422);
//! - usernames (emails) compare case-insensitively, team names exactly;
//! - the user list defaults to `insertedAt` order, clamps `limit` above 500, accepts the SDK's
//!   `sort` as an alias of `sortField`, and builds `paging` links on `https://api.opsgenie.com`.
//!
//! Out of scope (answered `No handler found`): team logs, team roles, routing rules, and every
//! user write. The simulator never panics on request data and holds at most [`MAX_TEAMS`] teams.

use std::collections::{BTreeMap, HashMap};

use http::Method;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::people::{opsgenie_user_id, PEOPLE};
use super::{SimRequest, SimResponse, Vendor};

/// Most teams the simulator keeps; a create beyond it answers 500 so a runaway test or bench
/// cannot grow memory without bound.
pub const MAX_TEAMS: usize = 100_000;
/// `name` limit on create and update [S: seed 003].
const MAX_NAME_CHARS: usize = 100;
/// `description` limit [S: seed 003; the current docs page says 200, the seed is followed].
const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// `GET /v2/users` page size default [S: swagger `UserLimitParam`].
const USERS_DEFAULT_LIMIT: usize = 100;
/// `GET /v2/users` page size maximum [S: brief / user-api docs]; larger values are clamped [I].
const USERS_MAX_LIMIT: usize = 500;
/// `took` of every answer, in seconds; a small constant keeps answers reproducible.
const TOOK: f64 = 0.002;
/// The same value as text for `X-Response-Time`, which the SDK parses as a float [I].
const TOOK_TEXT: &str = "0.002";
const API_BASE: &str = "https://api.opsgenie.com";
const WEB_BASE: &str = "https://app.opsgenie.com";
/// The 422 message [S: Alertmanager issue 1223, same envelope on every Opsgenie API].
const UNPROCESSABLE: &str = "Request body is not processable. Please check the errors.";
/// The duplicate-name message [S: Terraform provider issue 353].
const NAME_TAKEN: &str = "There is already one Team with same name";

/// A member's team role. Opsgenie also allows custom team roles [S: swagger `TeamMember.role`];
/// the simulator has none, so only the two built-in ones exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    User,
    Admin,
}

impl Role {
    fn parse(text: &str) -> Option<Role> {
        // Exact lower case as documented (`user`, `admin`); other spellings are refused so a
        // mapping that sends `Admin` is caught by the tests [I].
        match text {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Member {
    /// Index into [`PEOPLE`].
    user: usize,
    role: Role,
}

#[derive(Debug, Clone)]
struct Team {
    id: String,
    name: String,
    description: String,
    /// In the order they were added (the docs' examples keep request order).
    members: Vec<Member>,
}

/// How a team route names its team: `identifierType` / `teamIdentifierType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdKind {
    Id,
    Name,
}

/// The Opsgenie simulator. Teams live in creation order (`seq`), with indexes by id and name.
pub struct Opsgenie {
    credential: String,
    teams: BTreeMap<u64, Team>,
    by_id: HashMap<String, u64>,
    by_name: HashMap<String, u64>,
    next_seq: u64,
    /// [`MAX_TEAMS`], lowered by unit tests to test the bound cheaply.
    team_limit: usize,
    /// The `rate_limited` switch: every request answers 429.
    rate_limited: bool,
}

/// An answer before the envelope (`took`, `requestId`, the common headers) is added.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Map<String, Value>,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// A success; `body` is a JSON object literal.
    fn ok(status: u16, body: Value) -> Reply {
        let body = match body {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Reply {
            status,
            body,
            headers: Vec::new(),
        }
    }

    /// An error in Opsgenie's `ErrorResponse` shape: `message` (+ `took`, `requestId`).
    fn error(status: u16, message: impl Into<String>) -> Reply {
        let mut body = Map::new();
        body.insert("message".into(), Value::String(message.into()));
        Reply {
            status,
            body,
            headers: Vec::new(),
        }
    }

    /// A 422 with the documented `errors` map of field → text.
    fn unprocessable(errors: Map<String, Value>) -> Reply {
        let mut reply = Reply::error(422, UNPROCESSABLE);
        reply.body.insert("errors".into(), Value::Object(errors));
        reply
    }

    /// A 422 naming one field.
    fn field_error(field: &str, text: impl Into<String>) -> Reply {
        let mut errors = Map::new();
        errors.insert(field.to_string(), Value::String(text.into()));
        Reply::unprocessable(errors)
    }

    fn with_header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }

    fn no_handler() -> Reply {
        // [S: Terraform provider issue 303, observed for a bad route]
        Reply::error(404, "No handler found")
    }

    fn method_not_allowed(method: &Method, allow: &str) -> Reply {
        // Status documented (405); the text is Spring's usual one [I].
        Reply::error(405, format!("Request method '{method}' is not supported"))
            .with_header("allow", allow)
    }
}

/// One field problem of a request body: (field, text) for the 422 `errors` map.
type FieldError = (String, String);

/// Keeps a field's value, or records its problem for the 422.
fn collect<T>(errors: &mut Map<String, Value>, result: Result<T, FieldError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err((field, text)) => {
            errors.insert(field, Value::String(text));
            None
        }
    }
}

impl Opsgenie {
    pub fn new(credential: &str) -> Self {
        Opsgenie {
            credential: credential.to_string(),
            teams: BTreeMap::new(),
            by_id: HashMap::new(),
            by_name: HashMap::new(),
            next_seq: 0,
            team_limit: MAX_TEAMS,
            rate_limited: false,
        }
    }

    /// Routes an authenticated request. Query and body checks happen before entity look-ups,
    /// so a 422 wins over a 404 [I: the docs do not order them].
    fn route(&mut self, req: &SimRequest) -> Reply {
        let segs = req.segs();
        let method = &req.method;
        let result = match segs.as_slice() {
            ["v2", "teams"] => match *method {
                Method::GET => Ok(self.list_teams(req)),
                Method::POST => self.create_team(req),
                _ => Ok(Reply::method_not_allowed(method, "GET, POST")),
            },
            ["v2", "teams", team] if !team.is_empty() => match *method {
                Method::GET => self.get_team(req, team),
                Method::PATCH => self.update_team(req, team),
                Method::DELETE => self.delete_team(req, team),
                _ => Ok(Reply::method_not_allowed(method, "GET, PATCH, DELETE")),
            },
            ["v2", "teams", team, "members"] if !team.is_empty() => match *method {
                Method::POST => self.add_member(req, team),
                _ => Ok(Reply::method_not_allowed(method, "POST")),
            },
            ["v2", "teams", team, "members", member] if !team.is_empty() && !member.is_empty() => {
                match *method {
                    Method::DELETE => self.remove_member(req, team, member),
                    _ => Ok(Reply::method_not_allowed(method, "DELETE")),
                }
            }
            // User writes exist on the real API but are out of scope: 405 rather than 404,
            // since the path itself is known.
            ["v2", "users"] => match *method {
                Method::GET => list_users(req),
                _ => Ok(Reply::method_not_allowed(method, "GET")),
            },
            ["v2", "users", user] if !user.is_empty() => match *method {
                Method::GET => get_user(req, user),
                _ => Ok(Reply::method_not_allowed(method, "GET")),
            },
            _ => Ok(Reply::no_handler()),
        };
        result.unwrap_or_else(|error| error)
    }

    // ---- teams -------------------------------------------------------------------------

    /// `POST /v2/teams` → 201 `{"result":"Created","data":{"id","name"}}`.
    fn create_team(&mut self, req: &SimRequest) -> Result<Reply, Reply> {
        let body = json_object(req)?;
        let mut errors = Map::new();
        let name = match body.get("name") {
            None | Some(Value::Null) => {
                errors.insert("name".into(), json!("Name should be provided"));
                None
            }
            Some(value) => collect(&mut errors, team_name(value)),
        };
        let description = collect(&mut errors, optional_description(body.get("description")));
        let members = collect(&mut errors, optional_members(body.get("members")));
        if !errors.is_empty() {
            return Err(Reply::unprocessable(errors));
        }
        let (Some(name), Some(description), Some(members)) = (name, description, members) else {
            // Unreachable: every `None` above recorded an error. Kept as a 500, not a panic.
            return Err(Reply::error(500, "Internal server error"));
        };
        if self.by_name.contains_key(&name) {
            return Err(Reply::error(409, NAME_TAKEN));
        }
        if self.teams.len() >= self.team_limit {
            // Not an Opsgenie behaviour: the simulator's own bound.
            return Err(Reply::error(500, "Simulator team limit reached"));
        }
        let team = Team {
            id: Uuid::new_v4().to_string(),
            name,
            description: description.unwrap_or_default(),
            members: members.unwrap_or_default(),
        };
        let reply = Reply::ok(
            201,
            json!({"result": "Created", "data": {"id": team.id, "name": team.name}}),
        );
        self.insert(team);
        Ok(reply)
    }

    /// `GET /v2/teams[?expand=member]`: the whole list in creation order, no pagination
    /// [S: seed 003, swagger].
    fn list_teams(&self, req: &SimRequest) -> Reply {
        // `expand` is a comma-separated list on Opsgenie; unknown values are ignored [I].
        let with_members = req
            .query_param("expand")
            .is_some_and(|e| e.split(',').any(|part| part.trim() == "member"));
        let data: Vec<Value> = self
            .teams
            .values()
            .map(|team| team_json(team, with_members))
            .collect();
        Reply::ok(200, json!({"data": data, "expandable": ["member"]}))
    }

    /// `GET /v2/teams/:identifier?identifierType=id|name` → the team with members and links.
    fn get_team(&self, req: &SimRequest, identifier: &str) -> Result<Reply, Reply> {
        let kind = id_kind(req, "identifierType")?;
        let team = self.team(identifier, kind)?;
        let mut data = team_json(team, true);
        if let Value::Object(map) = &mut data {
            // `links` are not in the docs' sample; the web/api URL shapes are inferred [I].
            map.insert(
                "links".into(),
                json!({
                    "web": format!("{WEB_BASE}/teams/dashboard/{}/main", team.id),
                    "api": format!("{API_BASE}/v2/teams/{}", team.id),
                }),
            );
        }
        Ok(Reply::ok(200, json!({"data": data})))
    }

    /// `PATCH /v2/teams/:teamId`: id only — `identifierType` is not a parameter of this route
    /// and is ignored like any unknown parameter [S: seed 003, swagger]. `members`, when present,
    /// replaces the whole list: "It is not append them as new members" [S: seed 003].
    fn update_team(&mut self, req: &SimRequest, team_id: &str) -> Result<Reply, Reply> {
        let body = json_object(req)?;
        let mut errors = Map::new();
        let name = match body.get("name") {
            None | Some(Value::Null) => Some(None),
            Some(value) => collect(&mut errors, team_name(value)).map(Some),
        };
        let description = collect(&mut errors, optional_description(body.get("description")));
        let members = collect(&mut errors, optional_members(body.get("members")));
        if !errors.is_empty() {
            return Err(Reply::unprocessable(errors));
        }
        let (Some(name), Some(description), Some(members)) = (name, description, members) else {
            // Unreachable: every `None` above recorded an error. Kept as a 500, not a panic.
            return Err(Reply::error(500, "Internal server error"));
        };
        let seq = self.seq_of(team_id, IdKind::Id)?;
        if let Some(new_name) = &name {
            if self
                .by_name
                .get(new_name)
                .is_some_and(|&other| other != seq)
            {
                return Err(Reply::error(409, NAME_TAKEN));
            }
        }
        let Some(team) = self.teams.get_mut(&seq) else {
            return Err(not_found_team(team_id, IdKind::Id));
        };
        if let Some(new_name) = name {
            self.by_name.remove(&team.name);
            self.by_name.insert(new_name.clone(), seq);
            team.name = new_name;
        }
        if let Some(description) = description {
            team.description = description;
        }
        if let Some(members) = members {
            team.members = members;
        }
        Ok(Reply::ok(
            200,
            json!({"result": "Updated", "data": {"id": team.id, "name": team.name}}),
        ))
    }

    /// `DELETE /v2/teams/:identifier?identifierType=id|name` → `{"result":"Deleted"}`.
    fn delete_team(&mut self, req: &SimRequest, identifier: &str) -> Result<Reply, Reply> {
        let kind = id_kind(req, "identifierType")?;
        let seq = self.seq_of(identifier, kind)?;
        if let Some(team) = self.teams.remove(&seq) {
            self.by_id.remove(&team.id);
            self.by_name.remove(&team.name);
        }
        Ok(Reply::ok(200, json!({"result": "Deleted"})))
    }

    // ---- members -----------------------------------------------------------------------

    /// `POST /v2/teams/:teamIdentifier/members?teamIdentifierType=` with `{user, role?}`.
    /// Note the parameter name: `teamIdentifierType`; a stray `identifierType` is ignored
    /// [S: swagger `TeamIdentifierType2`].
    fn add_member(&mut self, req: &SimRequest, identifier: &str) -> Result<Reply, Reply> {
        let kind = id_kind(req, "teamIdentifierType")?;
        let body = json_object(req)?;
        let user = match body.get("user") {
            None | Some(Value::Null) => {
                return Err(Reply::field_error(
                    "user",
                    "id or username should be provided",
                ))
            }
            Some(meta) => resolve_user(meta, "user").map_err(|(f, t)| Reply::field_error(&f, t))?,
        };
        let role =
            optional_role(body.get("role"), "role").map_err(|(f, t)| Reply::field_error(&f, t))?;
        let seq = self.seq_of(identifier, kind)?;
        let Some(team) = self.teams.get_mut(&seq) else {
            return Err(not_found_team(identifier, kind));
        };
        // Adding a present member succeeds (idempotent) and only changes the role when one is
        // given [I: the docs are silent; an error here would make retries unsafe].
        match team.members.iter_mut().find(|m| m.user == user) {
            Some(member) => {
                if let Some(role) = role {
                    member.role = role;
                }
            }
            None => team.members.push(Member {
                user,
                role: role.unwrap_or(Role::User),
            }),
        }
        Ok(Reply::ok(
            200,
            json!({"result": "Added", "data": {"id": team.id, "name": team.name}}),
        ))
    }

    /// `DELETE /v2/teams/:teamIdentifier/members/:memberIdentifier?teamIdentifierType=`;
    /// `memberIdentifier` is a user id or a username [S: swagger `MemberIdentifier`].
    fn remove_member(
        &mut self,
        req: &SimRequest,
        identifier: &str,
        member: &str,
    ) -> Result<Reply, Reply> {
        let kind = id_kind(req, "teamIdentifierType")?;
        let seq = self.seq_of(identifier, kind)?;
        let Some(team) = self.teams.get_mut(&seq) else {
            return Err(not_found_team(identifier, kind));
        };
        let position = user_by_identifier(member)
            .and_then(|user| team.members.iter().position(|m| m.user == user));
        let Some(position) = position else {
            // Text inferred: the real one was never seen.
            return Err(Reply::error(
                404,
                format!("No member exists with identifier [{member}] in team"),
            ));
        };
        team.members.remove(position);
        // `result` text inferred ("Removed"); the SDK does not read it.
        Ok(Reply::ok(
            200,
            json!({"result": "Removed", "data": {"id": team.id, "name": team.name}}),
        ))
    }

    // ---- state helpers -----------------------------------------------------------------

    fn insert(&mut self, team: Team) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_id.insert(team.id.clone(), seq);
        self.by_name.insert(team.name.clone(), seq);
        self.teams.insert(seq, team);
    }

    /// The creation sequence number of a team, or the 404.
    fn seq_of(&self, identifier: &str, kind: IdKind) -> Result<u64, Reply> {
        let index = match kind {
            IdKind::Id => &self.by_id,
            IdKind::Name => &self.by_name,
        };
        index
            .get(identifier)
            .copied()
            .ok_or_else(|| not_found_team(identifier, kind))
    }

    fn team(&self, identifier: &str, kind: IdKind) -> Result<&Team, Reply> {
        let seq = self.seq_of(identifier, kind)?;
        self.teams
            .get(&seq)
            .ok_or_else(|| not_found_team(identifier, kind))
    }

    /// Checks the `GenieKey` header [S: swagger `securityDefinitions.GenieKey`, seed 003].
    fn authenticated(&self, req: &SimRequest) -> bool {
        req.header("authorization")
            .and_then(|value| value.strip_prefix("GenieKey "))
            .is_some_and(|key| !key.is_empty() && key == self.credential)
    }
}

impl Vendor for Opsgenie {
    fn kind(&self) -> &'static str {
        "opsgenie"
    }

    fn handle(&mut self, req: &SimRequest) -> SimResponse {
        let reply = if self.rate_limited {
            // Body and headers of the SDK's own 429 mock [S: SDK client_test.go].
            Reply::error(429, "TooManyRequests")
                .with_header("x-ratelimit-state", "THROTTLED")
                .with_header("x-ratelimit-reason", "ACCOUNT")
                .with_header("x-ratelimit-period-in-sec", "60")
        } else if !self.authenticated(req) {
            // 401 documented ("apiKey is invalid or integration is disabled"); text inferred.
            Reply::error(401, "Could not authenticate")
        } else {
            self.route(req)
        };
        finish(reply)
    }

    fn set_switch(&mut self, name: &str, on: bool) -> bool {
        match name {
            "rate_limited" => {
                self.rate_limited = on;
                true
            }
            _ => false,
        }
    }

    /// `ErrorResponse`: `{"message","took","requestId"}` with the envelope's headers.
    fn error_body(&self, status: u16, message: &str) -> SimResponse {
        finish(Reply::error(status, message))
    }
}

/// Adds the envelope every Opsgenie answer carries: `took` and `requestId` in the body,
/// `X-Request-ID` and `X-Response-Time` as headers, and `X-RateLimit-State: OK` on success.
fn finish(reply: Reply) -> SimResponse {
    let request_id = Uuid::new_v4().to_string();
    let mut body = reply.body;
    body.insert("took".into(), json!(TOOK));
    body.insert("requestId".into(), Value::String(request_id.clone()));
    let mut response = SimResponse::json(reply.status, Value::Object(body))
        .with_header("x-request-id", &request_id)
        .with_header("x-response-time", TOOK_TEXT);
    if reply.status < 400 {
        // The SDK fails without this header; the value `OK` is an inference.
        response = response.with_header("x-ratelimit-state", "OK");
    }
    for (name, value) in reply.headers {
        response = response.with_header(name, &value);
    }
    response
}

// ---- request parsing ---------------------------------------------------------------------

/// The body of a write as a JSON object: 415 without `Content-Type: application/json`, 400 when
/// it is not JSON [S: docs "400 Invalid JSON body"], 422 when it is JSON but not an object [I].
fn json_object(req: &SimRequest) -> Result<Map<String, Value>, Reply> {
    if req.body.is_empty() {
        // Both write bodies are `required` in the swagger; an empty one cannot be parsed.
        return Err(Reply::error(400, "Invalid JSON body"));
    }
    let is_json = req.header("content-type").is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
    });
    if !is_json {
        return Err(Reply::error(415, "Content-Type is not supported"));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Reply::field_error("body", "should be a JSON object")),
        Err(_) => Err(Reply::error(400, "Invalid JSON body")),
    }
}

/// `identifierType` / `teamIdentifierType`: absent → id; `id` or `name`; anything else is a 422
/// (the swagger declares an enum) [I: the status for a bad enum value].
fn id_kind(req: &SimRequest, param: &str) -> Result<IdKind, Reply> {
    match req.query_param(param) {
        None | Some("id") => Ok(IdKind::Id),
        Some("name") => Ok(IdKind::Name),
        Some(other) => Err(Reply::field_error(
            param,
            format!("Invalid {param} [{other}]; possible values are id and name"),
        )),
    }
}

/// A team `name`: a non-blank string of at most 100 characters [S: seed 003]. Stored as given,
/// not trimmed [I]; the Terraform character rule is client-side only [S: VENDORS.md].
fn team_name(value: &Value) -> Result<String, FieldError> {
    let Value::String(name) = value else {
        return Err(("name".into(), "Name should be a string".into()));
    };
    if name.trim().is_empty() {
        return Err(("name".into(), "Name should be provided".into()));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err((
            "name".into(),
            format!("Name can not be longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name.clone())
}

/// An optional `description` of at most 10000 characters [S: seed 003]; `null` = absent [I].
fn optional_description(value: Option<&Value>) -> Result<Option<String>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.chars().count() > MAX_DESCRIPTION_CHARS => Err((
            "description".into(),
            format!("Description can not be longer than {MAX_DESCRIPTION_CHARS} characters"),
        )),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err((
            "description".into(),
            "Description should be a string".into(),
        )),
    }
}

/// An optional `members` array of `{user:{id?,username?}, role?}`. A user listed twice keeps
/// one entry with the later role [I].
fn optional_members(value: Option<&Value>) -> Result<Option<Vec<Member>>, FieldError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(("members".into(), "Members should be a list".into())),
    };
    let mut members: Vec<Member> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let field = format!("members[{index}]");
        let Value::Object(entry) = item else {
            return Err((field, "Member should be an object".into()));
        };
        let user = match entry.get("user") {
            None | Some(Value::Null) => {
                return Err((
                    format!("{field}.user"),
                    "id or username should be provided".into(),
                ))
            }
            Some(meta) => resolve_user(meta, &format!("{field}.user"))?,
        };
        let role =
            optional_role(entry.get("role"), &format!("{field}.role"))?.unwrap_or(Role::User);
        match members.iter_mut().find(|m| m.user == user) {
            Some(existing) => existing.role = role,
            None => members.push(Member { user, role }),
        }
    }
    Ok(Some(members))
}

/// An optional member `role`: `user` or `admin`; `null` = absent.
fn optional_role(value: Option<&Value>, field: &str) -> Result<Option<Role>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Role::parse(text).map(Some).ok_or_else(|| {
            (
                field.to_string(),
                format!("Invalid member role [{text}]; possible values are user and admin"),
            )
        }),
        Some(_) => Err((field.to_string(), "Role should be a string".into())),
    }
}

/// A `{id?, username?}` user reference → the person's index. With both given they must name
/// the same user [I]. Unknown users are a 422 on the field [S: brief; text inferred].
fn resolve_user(meta: &Value, field: &str) -> Result<usize, FieldError> {
    let err = |text: String| (field.to_string(), text);
    let Value::Object(meta) = meta else {
        return Err(err("id or username should be provided".into()));
    };
    let text_of = |key: &str| match meta.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(err(format!("{key} should be a string"))),
    };
    let id = text_of("id")?;
    let username = text_of("username")?;
    let by_id = match id {
        Some(id) => {
            Some(user_by_id(id).ok_or_else(|| err(format!("No user exists with id [{id}]")))?)
        }
        None => None,
    };
    let by_username = match username {
        Some(name) => Some(
            user_by_username(name)
                .ok_or_else(|| err(format!("No user exists with username [{name}]")))?,
        ),
        None => None,
    };
    match (by_id, by_username) {
        (Some(a), Some(b)) if a != b => {
            Err(err("id and username belong to different users".into()))
        }
        (Some(user), _) | (None, Some(user)) => Ok(user),
        (None, None) => Err(err("id or username should be provided".into())),
    }
}

// ---- users -------------------------------------------------------------------------------

fn user_by_id(id: &str) -> Option<usize> {
    (0..PEOPLE.len()).find(|&index| opsgenie_user_id(index) == id)
}

/// Usernames are emails, so they compare case-insensitively [I].
fn user_by_username(username: &str) -> Option<usize> {
    PEOPLE
        .iter()
        .position(|person| person.email.eq_ignore_ascii_case(username))
}

/// A user id or a username, as `GET /v2/users/:identifier` and remove-member accept.
fn user_by_identifier(identifier: &str) -> Option<usize> {
    user_by_id(identifier).or_else(|| user_by_username(identifier))
}

/// The user role of person `index`: the owner is `Admin`, everyone else `User`.
fn user_role(index: usize) -> &'static str {
    if index == 0 {
        "Admin"
    } else {
        "User"
    }
}

/// `createdAt` of person `index`: fixed, distinct and in `insertedAt` order.
fn user_created_at(index: usize) -> String {
    format!(
        "2017-05-{:02}T07:{:02}:00.000Z",
        1 + index % 28,
        (index * 7) % 60
    )
}

/// The swagger `User` shape (without contacts unless expanded).
fn user_json(index: usize) -> Value {
    let Some(person) = PEOPLE.get(index) else {
        return Value::Null;
    };
    let role = user_role(index);
    json!({
        "id": opsgenie_user_id(index),
        "username": person.email,
        "fullName": person.name,
        "role": {"id": role, "name": role},
        "blocked": false,
        "verified": true,
        "timeZone": "Europe/Istanbul",
        "locale": "en_US",
        "userAddress": {"country": "", "state": "", "city": "", "line": "", "zipCode": ""},
        "tags": [],
        "details": {},
        "createdAt": user_created_at(index),
    })
}

/// The value of a `query` field for person `index`, for the `field:value` form.
fn user_field(index: usize, field: &str) -> Option<String> {
    let person = PEOPLE.get(index)?;
    Some(match field {
        "username" => person.email.to_string(),
        "fullName" => person.name.to_string(),
        "role" => user_role(index).to_string(),
        "blocked" => "false".into(),
        "verified" => "true".into(),
        "locale" => "en_US".into(),
        "timeZone" => "Europe/Istanbul".into(),
        _ => return None,
    })
}

/// The `query` filter. The swagger documents `field:value` pairs; the simulator supports one
/// pair with an exact, case-insensitive match (`username:ada@example.com`), and treats any
/// other text as a case-insensitive substring of username or full name [I].
fn user_matches(index: usize, query: &str) -> bool {
    let query = query.trim();
    if query.is_empty() {
        return true;
    }
    if let Some((field, value)) = query.split_once(':') {
        if let Some(actual) = user_field(index, field.trim()) {
            return actual.to_lowercase() == value.trim().to_lowercase();
        }
    }
    let Some(person) = PEOPLE.get(index) else {
        return false;
    };
    let needle = query.to_lowercase();
    person.email.to_lowercase().contains(&needle) || person.name.to_lowercase().contains(&needle)
}

/// A non-negative integer query parameter, or a 422 naming it.
fn usize_param(req: &SimRequest, name: &str, default: usize) -> Result<usize, Reply> {
    match req.query_param(name) {
        None => Ok(default),
        Some(text) => text.trim().parse::<usize>().map_err(|_| {
            Reply::field_error(name, format!("{name} should be a non-negative integer"))
        }),
    }
}

/// `GET /v2/users?limit&offset&sortField&order&query` [S: swagger `User*Param`].
fn list_users(req: &SimRequest) -> Result<Reply, Reply> {
    let limit = usize_param(req, "limit", USERS_DEFAULT_LIMIT)?;
    if limit == 0 {
        return Err(Reply::field_error(
            "limit",
            "limit should be a positive integer",
        ));
    }
    let limit = limit.min(USERS_MAX_LIMIT);
    let offset = usize_param(req, "offset", 0)?;
    // The SDK sends `sort` where the swagger says `sortField`; both are accepted [I].
    let sort_field = req
        .query_param("sortField")
        .or_else(|| req.query_param("sort"))
        .unwrap_or("insertedAt");
    if !matches!(sort_field, "username" | "fullName" | "insertedAt") {
        return Err(Reply::field_error(
            "sortField",
            "sortField should be one of username, fullName and insertedAt",
        ));
    }
    let order = req.query_param("order").unwrap_or("asc");
    if !matches!(order, "asc" | "desc") {
        return Err(Reply::field_error(
            "order",
            "order should be one of asc and desc",
        ));
    }
    let query = req.query_param("query").unwrap_or("");

    let mut users: Vec<usize> = (0..PEOPLE.len())
        .filter(|&index| user_matches(index, query))
        .collect();
    users.sort_by_key(|&index| {
        let person = &PEOPLE[index];
        let key = match sort_field {
            "username" => person.email.to_lowercase(),
            "fullName" => person.name.to_lowercase(),
            _ => String::new(),
        };
        (key, index)
    });
    if order == "desc" {
        users.reverse();
    }
    let total = users.len();
    let data: Vec<Value> = users
        .iter()
        .skip(offset)
        .take(limit)
        .map(|&index| user_json(index))
        .collect();
    let paging = users_paging(total, limit, offset, sort_field, order, query);
    Ok(Reply::ok(
        200,
        json!({"data": data, "totalCount": total, "paging": paging}),
    ))
}

/// `paging` links: `first` and `last` always, `next` / `prev` when such a page exists. The
/// documents give only the field names; the link shape is inferred.
fn users_paging(
    total: usize,
    limit: usize,
    offset: usize,
    sort_field: &str,
    order: &str,
    query: &str,
) -> Value {
    let link = |at: usize| {
        let mut url = format!(
            "{API_BASE}/v2/users?limit={limit}&offset={at}&sortField={sort_field}&order={order}"
        );
        if !query.is_empty() {
            url.push_str("&query=");
            url.push_str(&utf8_percent_encode(query, NON_ALPHANUMERIC).to_string());
        }
        url
    };
    let last = if total == 0 {
        0
    } else {
        (total - 1) / limit * limit
    };
    let mut paging = Map::new();
    paging.insert("first".into(), Value::String(link(0)));
    paging.insert("last".into(), Value::String(link(last)));
    if offset.saturating_add(limit) < total {
        paging.insert("next".into(), Value::String(link(offset + limit)));
    }
    if offset > 0 {
        paging.insert(
            "prev".into(),
            Value::String(link(offset.saturating_sub(limit))),
        );
    }
    Value::Object(paging)
}

/// `GET /v2/users/:identifier` (id or username) [S: swagger]; 404 text inferred.
fn get_user(req: &SimRequest, identifier: &str) -> Result<Reply, Reply> {
    let Some(index) = user_by_identifier(identifier) else {
        return Err(Reply::error(
            404,
            format!("No user exists with identifier [{identifier}]"),
        ));
    };
    let mut data = user_json(index);
    let expand_contact = req
        .query_param("expand")
        .is_some_and(|e| e.split(',').any(|part| part.trim() == "contact"));
    if let (true, Value::Object(map)) = (expand_contact, &mut data) {
        // The simulated people have no contact methods.
        map.insert("userContacts".into(), json!([]));
    }
    Ok(Reply::ok(
        200,
        json!({"data": data, "expandable": ["contact"]}),
    ))
}

// ---- rendering ---------------------------------------------------------------------------

/// A team as the swagger's `Team`: `id, name, description` and, when asked, `members`.
fn team_json(team: &Team, with_members: bool) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), Value::String(team.id.clone()));
    map.insert("name".into(), Value::String(team.name.clone()));
    map.insert(
        "description".into(),
        Value::String(team.description.clone()),
    );
    if with_members {
        let members: Vec<Value> = team.members.iter().map(|m| member_json(*m)).collect();
        map.insert("members".into(), Value::Array(members));
    }
    Value::Object(map)
}

fn member_json(member: Member) -> Value {
    let username = PEOPLE.get(member.user).map(|p| p.email).unwrap_or_default();
    json!({
        "user": {"id": opsgenie_user_id(member.user), "username": username},
        "role": member.role.as_str(),
    })
}

/// The 404 for a missing team. Status confirmed (Terraform test); the text is not documented
/// anywhere found, so this wording is an inference.
fn not_found_team(identifier: &str, kind: IdKind) -> Reply {
    let by = match kind {
        IdKind::Id => "id",
        IdKind::Name => "name",
    };
    Reply::error(404, format!("No Team exists with {by} [{identifier}]"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderName, HeaderValue};

    const KEY: &str = "test-genie-key";

    fn sim() -> Opsgenie {
        Opsgenie::new(KEY)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        map
    }

    /// An authenticated request with a JSON body (or none when `body` is empty).
    fn call(sim: &mut Opsgenie, method: Method, path: &str, body: &str) -> SimResponse {
        let auth = format!("GenieKey {KEY}");
        let map = if body.is_empty() {
            headers(&[("authorization", &auth)])
        } else {
            headers(&[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ])
        };
        raw(sim, method, path, map, body)
    }

    fn raw(
        sim: &mut Opsgenie,
        method: Method,
        path: &str,
        map: HeaderMap,
        body: &str,
    ) -> SimResponse {
        let req = SimRequest::new(method, path, map, Bytes::from(body.to_string()));
        sim.handle(&req)
    }

    fn header(resp: &SimResponse, name: &str) -> Option<String> {
        resp.headers
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .and_then(|(_, v)| v.to_str().ok())
            .map(str::to_string)
    }

    fn create(sim: &mut Opsgenie, body: Value) -> String {
        let resp = call(sim, Method::POST, "/v2/teams", &body.to_string());
        assert_eq!(resp.status, 201, "{:?}", resp.json_body());
        resp.json_body()["data"]["id"]
            .as_str()
            .expect("team id")
            .to_string()
    }

    fn get(sim: &mut Opsgenie, path: &str) -> (u16, Value) {
        let resp = call(sim, Method::GET, path, "");
        (resp.status.as_u16(), resp.json_body())
    }

    fn uid(index: usize) -> String {
        opsgenie_user_id(index)
    }

    /// Asserts the envelope every answer carries.
    fn assert_envelope(resp: &SimResponse) {
        let body = resp.json_body();
        assert!(body["took"].is_f64(), "took in {body}");
        let rid = body["requestId"].as_str().expect("requestId");
        assert!(Uuid::parse_str(rid).is_ok());
        assert_eq!(header(resp, "x-request-id").as_deref(), Some(rid));
        let time = header(resp, "x-response-time").expect("x-response-time");
        assert!(time.parse::<f64>().is_ok());
        assert_eq!(
            header(resp, "content-type").as_deref(),
            Some("application/json")
        );
    }

    fn assert_error(resp: &SimResponse, status: u16, message: &str) {
        assert_eq!(resp.status, status, "{}", resp.json_body());
        assert_eq!(resp.json_body()["message"], message);
        assert_envelope(resp);
        assert_eq!(header(resp, "x-ratelimit-state"), None);
    }

    #[test]
    fn kind_is_opsgenie() {
        assert_eq!(sim().kind(), "opsgenie");
    }

    #[test]
    fn auth_requires_genie_key() {
        let mut s = sim();
        for auth in [
            None,
            Some(format!("Bearer {KEY}")),
            Some("GenieKey wrong".to_string()),
            Some("GenieKey ".to_string()),
            Some(format!("geniekey{KEY}")),
        ] {
            let map = match &auth {
                Some(value) => headers(&[("authorization", value)]),
                None => HeaderMap::new(),
            };
            let resp = raw(&mut s, Method::GET, "/v2/teams", map, "");
            assert_error(&resp, 401, "Could not authenticate");
        }
        let (status, _) = get(&mut s, "/v2/teams");
        assert_eq!(status, 200);
    }

    #[test]
    fn create_team_answers_201_with_id_and_name() {
        let mut s = sim();
        let body = json!({
            "name": "TeamName",
            "description": "Team Description",
            "members": [
                {"user": {"username": "bob@example.com"}, "role": "admin"},
                {"user": {"id": uid(2)}},
                {"user": {"username": "DAN@example.com", "id": uid(3)}, "role": "user"}
            ]
        });
        let resp = call(&mut s, Method::POST, "/v2/teams", &body.to_string());
        assert_eq!(resp.status, 201);
        assert_envelope(&resp);
        assert_eq!(header(&resp, "x-ratelimit-state").as_deref(), Some("OK"));
        let json = resp.json_body();
        assert_eq!(json["result"], "Created");
        assert_eq!(json["data"]["name"], "TeamName");
        let id = json["data"]["id"].as_str().expect("id");
        assert_eq!(
            Uuid::parse_str(id).map(|u| u.get_version_num()).ok(),
            Some(4)
        );

        let (status, team) = get(&mut s, &format!("/v2/teams/{id}"));
        assert_eq!(status, 200);
        assert_eq!(
            team["data"]["members"],
            json!([
                {"user": {"id": uid(1), "username": "bob@example.com"}, "role": "admin"},
                {"user": {"id": uid(2), "username": "carol@example.com"}, "role": "user"},
                {"user": {"id": uid(3), "username": "dan@example.com"}, "role": "user"}
            ])
        );
    }

    #[test]
    fn duplicate_team_name_is_409_exact_compare() {
        let mut s = sim();
        create(&mut s, json!({"name": "ops"}));
        let resp = call(&mut s, Method::POST, "/v2/teams", r#"{"name":"ops"}"#);
        assert_error(&resp, 409, "There is already one Team with same name");
        // Exact comparison: a different case is another name.
        create(&mut s, json!({"name": "Ops"}));
        let (_, list) = get(&mut s, "/v2/teams");
        assert_eq!(list["data"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn create_validation_errors_are_422() {
        let mut s = sim();
        let long_name = "x".repeat(101);
        let long_description = "d".repeat(10_001);
        let cases: Vec<(Value, &str)> = vec![
            (json!({}), "name"),
            (json!({"name": null}), "name"),
            (json!({"name": "   "}), "name"),
            (json!({"name": 5}), "name"),
            (json!({"name": long_name}), "name"),
            (
                json!({"name": "a", "description": long_description}),
                "description",
            ),
            (json!({"name": "a", "description": ["x"]}), "description"),
            (json!({"name": "a", "members": {}}), "members"),
            (json!({"name": "a", "members": [5]}), "members[0]"),
            (json!({"name": "a", "members": [{}]}), "members[0].user"),
            (
                json!({"name": "a", "members": [{"user": {}}]}),
                "members[0].user",
            ),
            (
                json!({"name": "a", "members": [{"user": "bob"}]}),
                "members[0].user",
            ),
            (
                json!({"name": "a", "members": [{"user": {"id": 7}}]}),
                "members[0].user",
            ),
            (
                json!({"name": "a", "members": [{"user": {"username": "bob@example.com"}}, {"user": {"username": "nobody@example.com"}}]}),
                "members[1].user",
            ),
            (
                json!({"name": "a", "members": [{"user": {"id": "b5a1e8f2-0000-4000-9000-000000000999"}}]}),
                "members[0].user",
            ),
            (
                json!({"name": "a", "members": [{"user": {"id": uid(0), "username": "bob@example.com"}}]}),
                "members[0].user",
            ),
            (
                json!({"name": "a", "members": [{"user": {"id": uid(0)}, "role": "owner"}]}),
                "members[0].role",
            ),
            (
                json!({"name": "a", "members": [{"user": {"id": uid(0)}, "role": "Admin"}]}),
                "members[0].role",
            ),
            (
                json!({"name": "a", "members": [{"user": {"id": uid(0)}, "role": 1}]}),
                "members[0].role",
            ),
        ];
        for (body, field) in cases {
            let resp = call(&mut s, Method::POST, "/v2/teams", &body.to_string());
            assert_error(&resp, 422, UNPROCESSABLE);
            assert!(
                resp.json_body()["errors"][field].is_string(),
                "{body} → {}",
                resp.json_body()
            );
        }
        // Several problems are reported together.
        let resp = call(
            &mut s,
            Method::POST,
            "/v2/teams",
            r#"{"name":7,"description":false}"#,
        );
        let errors = resp.json_body()["errors"].clone();
        assert!(errors["name"].is_string() && errors["description"].is_string());
        // Nothing was created.
        let (_, list) = get(&mut s, "/v2/teams");
        assert_eq!(list["data"], json!([]));
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        let mut s = sim();
        let name: String = "ö".repeat(100);
        let description: String = "🙂".repeat(10_000);
        let id = create(&mut s, json!({"name": name, "description": description}));
        let (_, team) = get(&mut s, &format!("/v2/teams/{id}"));
        assert_eq!(team["data"]["name"], name.as_str());
        assert_eq!(team["data"]["description"], description.as_str());
    }

    #[test]
    fn content_type_and_json_syntax() {
        let mut s = sim();
        let auth = format!("GenieKey {KEY}");
        let no_type = headers(&[("authorization", &auth)]);
        let resp = raw(
            &mut s,
            Method::POST,
            "/v2/teams",
            no_type,
            r#"{"name":"a"}"#,
        );
        assert_error(&resp, 415, "Content-Type is not supported");
        let text = headers(&[("authorization", &auth), ("content-type", "text/plain")]);
        let resp = raw(&mut s, Method::POST, "/v2/teams", text, r#"{"name":"a"}"#);
        assert_error(&resp, 415, "Content-Type is not supported");
        // Parameters on the media type are fine.
        let charset = headers(&[
            ("authorization", &auth),
            ("content-type", "application/json; charset=utf-8"),
        ]);
        let resp = raw(
            &mut s,
            Method::POST,
            "/v2/teams",
            charset,
            r#"{"name":"a"}"#,
        );
        assert_eq!(resp.status, 201);

        let resp = call(&mut s, Method::POST, "/v2/teams", r#"{"name":"#);
        assert_error(&resp, 400, "Invalid JSON body");
        let resp = call(&mut s, Method::POST, "/v2/teams", "");
        assert_error(&resp, 400, "Invalid JSON body");
        let resp = call(&mut s, Method::POST, "/v2/teams", "[1,2]");
        assert_error(&resp, 422, UNPROCESSABLE);
        assert!(resp.json_body()["errors"]["body"].is_string());
    }

    #[test]
    fn get_team_by_id_and_by_name() {
        let mut s = sim();
        let id = create(
            &mut s,
            json!({"name": "Team A", "description": "desc",
                   "members": [{"user": {"id": uid(0)}, "role": "admin"}]}),
        );
        let expected = json!({
            "id": id,
            "name": "Team A",
            "description": "desc",
            "members": [{"user": {"id": uid(0), "username": "ada@example.com"}, "role": "admin"}],
            "links": {
                "web": format!("https://app.opsgenie.com/teams/dashboard/{id}/main"),
                "api": format!("https://api.opsgenie.com/v2/teams/{id}"),
            }
        });
        let resp = call(&mut s, Method::GET, &format!("/v2/teams/{id}"), "");
        assert_eq!(resp.status, 200);
        assert_envelope(&resp);
        assert_eq!(resp.json_body()["data"], expected);
        let (status, body) = get(&mut s, &format!("/v2/teams/{id}?identifierType=id"));
        assert_eq!((status, &body["data"]), (200, &expected));
        let (status, body) = get(&mut s, "/v2/teams/Team%20A?identifierType=name");
        assert_eq!((status, &body["data"]), (200, &expected));
        // Without identifierType the name is taken as an id.
        let resp = call(&mut s, Method::GET, "/v2/teams/Team%20A", "");
        assert_error(&resp, 404, "No Team exists with id [Team A]");
    }

    #[test]
    fn get_team_errors() {
        let mut s = sim();
        let id = create(&mut s, json!({"name": "a"}));
        let resp = call(&mut s, Method::GET, "/v2/teams/nope", "");
        assert_error(&resp, 404, "No Team exists with id [nope]");
        let resp = call(
            &mut s,
            Method::GET,
            "/v2/teams/nope?identifierType=name",
            "",
        );
        assert_error(&resp, 404, "No Team exists with name [nope]");
        for bad in ["username", "ID", ""] {
            let resp = call(
                &mut s,
                Method::GET,
                &format!("/v2/teams/{id}?identifierType={bad}"),
                "",
            );
            assert_error(&resp, 422, UNPROCESSABLE);
            assert!(resp.json_body()["errors"]["identifierType"].is_string());
        }
        let resp = call(&mut s, Method::GET, "/v2/teams/..%2Fx", "");
        assert_error(&resp, 404, "No Team exists with id [../x]");
    }

    #[test]
    fn patch_replaces_members_and_keeps_other_fields() {
        let mut s = sim();
        let id = create(
            &mut s,
            json!({"name": "a", "description": "old",
                   "members": [{"user": {"id": uid(0)}, "role": "admin"}, {"user": {"id": uid(1)}}]}),
        );
        let body = json!({"members": [{"user": {"username": "carol@example.com"}}]});
        let resp = call(
            &mut s,
            Method::PATCH,
            &format!("/v2/teams/{id}"),
            &body.to_string(),
        );
        assert_eq!(resp.status, 200);
        assert_envelope(&resp);
        assert_eq!(header(&resp, "x-ratelimit-state").as_deref(), Some("OK"));
        let json = resp.json_body();
        assert_eq!(json["result"], "Updated");
        assert_eq!(json["data"], json!({"id": id, "name": "a"}));
        let (_, team) = get(&mut s, &format!("/v2/teams/{id}"));
        assert_eq!(
            team["data"]["members"],
            json!([{"user": {"id": uid(2), "username": "carol@example.com"}, "role": "user"}])
        );
        assert_eq!(team["data"]["description"], "old");

        // Name and description only: members stay.
        let resp = call(
            &mut s,
            Method::PATCH,
            &format!("/v2/teams/{id}"),
            r#"{"name":"b","description":"new"}"#,
        );
        assert_eq!(resp.json_body()["data"]["name"], "b");
        let (_, team) = get(&mut s, &format!("/v2/teams/{id}"));
        assert_eq!(team["data"]["name"], "b");
        assert_eq!(team["data"]["description"], "new");
        assert_eq!(team["data"]["members"].as_array().map(Vec::len), Some(1));
        // The old name is free, the new one resolves.
        let (status, _) = get(&mut s, "/v2/teams/a?identifierType=name");
        assert_eq!(status, 404);
        let (status, _) = get(&mut s, "/v2/teams/b?identifierType=name");
        assert_eq!(status, 200);

        // An empty list empties the team.
        let resp = call(
            &mut s,
            Method::PATCH,
            &format!("/v2/teams/{id}"),
            r#"{"members":[]}"#,
        );
        assert_eq!(resp.status, 200);
        let (_, team) = get(&mut s, &format!("/v2/teams/{id}"));
        assert_eq!(team["data"]["members"], json!([]));
    }

    #[test]
    fn patch_errors() {
        let mut s = sim();
        let a = create(&mut s, json!({"name": "a"}));
        create(&mut s, json!({"name": "b"}));
        let resp = call(
            &mut s,
            Method::PATCH,
            &format!("/v2/teams/{a}"),
            r#"{"name":"b"}"#,
        );
        assert_error(&resp, 409, "There is already one Team with same name");
        // Renaming to its own name is not a conflict.
        let resp = call(
            &mut s,
            Method::PATCH,
            &format!("/v2/teams/{a}"),
            r#"{"name":"a"}"#,
        );
        assert_eq!(resp.status, 200);
        let resp = call(
            &mut s,
            Method::PATCH,
            "/v2/teams/missing",
            r#"{"name":"z"}"#,
        );
        assert_error(&resp, 404, "No Team exists with id [missing]");
        let resp = call(
            &mut s,
            Method::PATCH,
            &format!("/v2/teams/{a}"),
            &json!({"name": "n".repeat(101)}).to_string(),
        );
        assert_error(&resp, 422, UNPROCESSABLE);
        let resp = call(
            &mut s,
            Method::PATCH,
            &format!("/v2/teams/{a}"),
            r#"{"members":[{"user":{"username":"ghost@example.com"}}]}"#,
        );
        assert_error(&resp, 422, UNPROCESSABLE);
        assert!(resp.json_body()["errors"]["members[0].user"].is_string());
        let resp = call(&mut s, Method::PATCH, &format!("/v2/teams/{a}"), "{");
        assert_error(&resp, 400, "Invalid JSON body");
    }

    #[test]
    fn patch_takes_an_id_only_and_ignores_identifier_type() {
        let mut s = sim();
        let id = create(&mut s, json!({"name": "a"}));
        // A name with identifierType=name is still looked up as an id.
        let resp = call(
            &mut s,
            Method::PATCH,
            "/v2/teams/a?identifierType=name",
            r#"{"description":"x"}"#,
        );
        assert_error(&resp, 404, "No Team exists with id [a]");
        // An id with an (ignored, even invalid) identifierType works.
        for param in ["name", "bogus"] {
            let resp = call(
                &mut s,
                Method::PATCH,
                &format!("/v2/teams/{id}?identifierType={param}"),
                r#"{"description":"x"}"#,
            );
            assert_eq!(resp.status, 200);
        }
    }

    #[test]
    fn delete_team_by_id_and_name() {
        let mut s = sim();
        let a = create(&mut s, json!({"name": "a"}));
        create(&mut s, json!({"name": "b"}));
        let resp = call(&mut s, Method::DELETE, &format!("/v2/teams/{a}"), "");
        assert_eq!(resp.status, 200);
        assert_envelope(&resp);
        let json = resp.json_body();
        assert_eq!(json["result"], "Deleted");
        assert!(json.get("data").is_none());
        let resp = call(&mut s, Method::GET, &format!("/v2/teams/{a}"), "");
        assert_error(&resp, 404, &format!("No Team exists with id [{a}]"));
        let resp = call(&mut s, Method::DELETE, &format!("/v2/teams/{a}"), "");
        assert_error(&resp, 404, &format!("No Team exists with id [{a}]"));

        let resp = call(
            &mut s,
            Method::DELETE,
            "/v2/teams/b?identifierType=name",
            "",
        );
        assert_eq!(resp.status, 200);
        let resp = call(
            &mut s,
            Method::DELETE,
            "/v2/teams/b?identifierType=name",
            "",
        );
        assert_error(&resp, 404, "No Team exists with name [b]");
        let resp = call(&mut s, Method::DELETE, "/v2/teams/b?identifierType=x", "");
        assert_error(&resp, 422, UNPROCESSABLE);
        // Names are free again.
        create(&mut s, json!({"name": "a"}));
    }

    #[test]
    fn list_teams_in_creation_order_without_pagination() {
        let mut s = sim();
        let (status, body) = get(&mut s, "/v2/teams");
        assert_eq!(status, 200);
        assert_eq!(body["data"], json!([]));
        let names = ["zeta", "alpha", "mid"];
        let ids: Vec<String> = names
            .iter()
            .map(|n| {
                create(
                    &mut s,
                    json!({"name": n, "members": [{"user": {"id": uid(1)}}]}),
                )
            })
            .collect();
        let resp = call(&mut s, Method::GET, "/v2/teams", "");
        assert_envelope(&resp);
        assert_eq!(header(&resp, "x-ratelimit-state").as_deref(), Some("OK"));
        let body = resp.json_body();
        assert_eq!(body["expandable"], json!(["member"]));
        assert!(body.get("paging").is_none() && body.get("totalCount").is_none());
        let expected: Vec<Value> = ids
            .iter()
            .zip(names)
            .map(|(id, n)| json!({"id": id, "name": n, "description": ""}))
            .collect();
        assert_eq!(body["data"], Value::Array(expected));

        let (_, body) = get(&mut s, "/v2/teams?expand=member");
        for item in body["data"].as_array().expect("data") {
            assert_eq!(
                item["members"],
                json!([{"user": {"id": uid(1), "username": "bob@example.com"}, "role": "user"}])
            );
        }
        // An unknown expand value is ignored.
        let (status, body) = get(&mut s, "/v2/teams?expand=nothing");
        assert_eq!(status, 200);
        assert!(body["data"][0].get("members").is_none());
    }

    #[test]
    fn add_member_by_id_and_username_with_roles() {
        let mut s = sim();
        let id = create(&mut s, json!({"name": "a"}));
        let path = format!("/v2/teams/{id}/members");
        let resp = call(
            &mut s,
            Method::POST,
            &path,
            &json!({"user": {"id": uid(1)}}).to_string(),
        );
        assert_eq!(resp.status, 200);
        assert_envelope(&resp);
        assert_eq!(header(&resp, "x-ratelimit-state").as_deref(), Some("OK"));
        let json = resp.json_body();
        assert_eq!(json["result"], "Added");
        assert_eq!(json["data"], json!({"id": id, "name": "a"}));
        let resp = call(
            &mut s,
            Method::POST,
            "/v2/teams/a/members?teamIdentifierType=name",
            r#"{"user":{"username":"Carol@Example.com"},"role":"admin"}"#,
        );
        assert_eq!(resp.status, 200);
        let (_, team) = get(&mut s, &format!("/v2/teams/{id}"));
        assert_eq!(
            team["data"]["members"],
            json!([
                {"user": {"id": uid(1), "username": "bob@example.com"}, "role": "user"},
                {"user": {"id": uid(2), "username": "carol@example.com"}, "role": "admin"}
            ])
        );
    }

    #[test]
    fn add_existing_member_is_idempotent_and_updates_role() {
        let mut s = sim();
        let id = create(
            &mut s,
            json!({"name": "a", "members": [{"user": {"id": uid(1)}, "role": "admin"}]}),
        );
        let path = format!("/v2/teams/{id}/members");
        // No role given: the role stays.
        let resp = call(
            &mut s,
            Method::POST,
            &path,
            &json!({"user": {"id": uid(1)}}).to_string(),
        );
        assert_eq!(resp.status, 200);
        let (_, team) = get(&mut s, &format!("/v2/teams/{id}"));
        assert_eq!(team["data"]["members"][0]["role"], "admin");
        assert_eq!(team["data"]["members"].as_array().map(Vec::len), Some(1));
        // A role given: it is updated.
        let body = json!({"user": {"username": "bob@example.com"}, "role": "user"});
        let resp = call(&mut s, Method::POST, &path, &body.to_string());
        assert_eq!(resp.status, 200);
        let (_, team) = get(&mut s, &format!("/v2/teams/{id}"));
        assert_eq!(team["data"]["members"][0]["role"], "user");
        assert_eq!(team["data"]["members"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn add_member_errors() {
        let mut s = sim();
        let id = create(&mut s, json!({"name": "a"}));
        let path = format!("/v2/teams/{id}/members");
        for (body, field) in [
            (json!({}), "user"),
            (json!({"user": {}}), "user"),
            (json!({"user": {"id": "unknown"}}), "user"),
            (json!({"user": {"username": "ghost@example.com"}}), "user"),
            (json!({"user": ["x"]}), "user"),
            (json!({"user": {"id": uid(1)}, "role": "owner"}), "role"),
            (json!({"user": {"id": uid(1)}, "role": true}), "role"),
        ] {
            let resp = call(&mut s, Method::POST, &path, &body.to_string());
            assert_error(&resp, 422, UNPROCESSABLE);
            assert!(resp.json_body()["errors"][field].is_string(), "{body}");
        }
        let ok_body = json!({"user": {"id": uid(1)}}).to_string();
        let resp = call(&mut s, Method::POST, "/v2/teams/missing/members", &ok_body);
        assert_error(&resp, 404, "No Team exists with id [missing]");
        let resp = call(
            &mut s,
            Method::POST,
            "/v2/teams/missing/members?teamIdentifierType=name",
            &ok_body,
        );
        assert_error(&resp, 404, "No Team exists with name [missing]");
        let resp = call(
            &mut s,
            Method::POST,
            &format!("{path}?teamIdentifierType=email"),
            &ok_body,
        );
        assert_error(&resp, 422, UNPROCESSABLE);
        assert!(resp.json_body()["errors"]["teamIdentifierType"].is_string());
        let resp = call(&mut s, Method::POST, &path, "not json");
        assert_error(&resp, 400, "Invalid JSON body");
        let auth = format!("GenieKey {KEY}");
        let resp = raw(
            &mut s,
            Method::POST,
            &path,
            headers(&[("authorization", &auth)]),
            &ok_body,
        );
        assert_error(&resp, 415, "Content-Type is not supported");
        let (_, team) = get(&mut s, &format!("/v2/teams/{id}"));
        assert_eq!(team["data"]["members"], json!([]));
    }

    #[test]
    fn member_routes_use_team_identifier_type_not_identifier_type() {
        let mut s = sim();
        let id = create(&mut s, json!({"name": "a"}));
        let body = json!({"user": {"id": uid(1)}}).to_string();
        // `identifierType` is unknown on member routes: the name is taken as an id.
        let resp = call(
            &mut s,
            Method::POST,
            "/v2/teams/a/members?identifierType=name",
            &body,
        );
        assert_error(&resp, 404, "No Team exists with id [a]");
        let resp = call(
            &mut s,
            Method::POST,
            &format!("/v2/teams/{id}/members?identifierType=bogus"),
            &body,
        );
        assert_eq!(resp.status, 200);
        let resp = call(
            &mut s,
            Method::DELETE,
            &format!("/v2/teams/a/members/{}?identifierType=name", uid(1)),
            "",
        );
        assert_error(&resp, 404, "No Team exists with id [a]");
        // And `teamIdentifierType` is unknown on team routes.
        let resp = call(
            &mut s,
            Method::GET,
            "/v2/teams/a?teamIdentifierType=name",
            "",
        );
        assert_error(&resp, 404, "No Team exists with id [a]");
        let resp = call(
            &mut s,
            Method::DELETE,
            &format!("/v2/teams/a/members/{}?teamIdentifierType=name", uid(1)),
            "",
        );
        assert_eq!(resp.status, 200);
    }

    #[test]
    fn remove_member_by_id_and_username() {
        let mut s = sim();
        let id = create(
            &mut s,
            json!({"name": "a", "members": [
                {"user": {"id": uid(1)}}, {"user": {"id": uid(2)}}, {"user": {"id": uid(3)}}
            ]}),
        );
        let resp = call(
            &mut s,
            Method::DELETE,
            &format!("/v2/teams/{id}/members/{}", uid(1)),
            "",
        );
        assert_eq!(resp.status, 200);
        assert_envelope(&resp);
        assert_eq!(header(&resp, "x-ratelimit-state").as_deref(), Some("OK"));
        let json = resp.json_body();
        assert_eq!(json["result"], "Removed");
        assert_eq!(json["data"], json!({"id": id, "name": "a"}));
        let resp = call(
            &mut s,
            Method::DELETE,
            &format!("/v2/teams/{id}/members/carol@example.com"),
            "",
        );
        assert_eq!(resp.status, 200);
        let resp = call(
            &mut s,
            Method::DELETE,
            "/v2/teams/a/members/dan%40example.com?teamIdentifierType=name",
            "",
        );
        assert_eq!(resp.status, 200);
        let (_, team) = get(&mut s, &format!("/v2/teams/{id}"));
        assert_eq!(team["data"]["members"], json!([]));
    }

    #[test]
    fn remove_member_errors() {
        let mut s = sim();
        let id = create(
            &mut s,
            json!({"name": "a", "members": [{"user": {"id": uid(1)}}]}),
        );
        let resp = call(
            &mut s,
            Method::DELETE,
            &format!("/v2/teams/{id}/members/{}", uid(2)),
            "",
        );
        assert_error(
            &resp,
            404,
            &format!("No member exists with identifier [{}] in team", uid(2)),
        );
        let resp = call(
            &mut s,
            Method::DELETE,
            &format!("/v2/teams/{id}/members/ghost@example.com"),
            "",
        );
        assert_error(
            &resp,
            404,
            "No member exists with identifier [ghost@example.com] in team",
        );
        let resp = call(
            &mut s,
            Method::DELETE,
            &format!("/v2/teams/missing/members/{}", uid(1)),
            "",
        );
        assert_error(&resp, 404, "No Team exists with id [missing]");
        let resp = call(
            &mut s,
            Method::DELETE,
            &format!("/v2/teams/{id}/members/{}?teamIdentifierType=x", uid(1)),
            "",
        );
        assert_error(&resp, 422, UNPROCESSABLE);
        // The member is still there.
        let (_, team) = get(&mut s, &format!("/v2/teams/{id}"));
        assert_eq!(team["data"]["members"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn list_users_defaults() {
        let mut s = sim();
        let resp = call(&mut s, Method::GET, "/v2/users", "");
        assert_eq!(resp.status, 200);
        assert_envelope(&resp);
        assert_eq!(header(&resp, "x-ratelimit-state").as_deref(), Some("OK"));
        let body = resp.json_body();
        assert_eq!(body["totalCount"], PEOPLE.len());
        let data = body["data"].as_array().expect("data");
        assert_eq!(data.len(), PEOPLE.len());
        let owner = &data[0];
        assert_eq!(owner["id"], uid(0));
        assert_eq!(owner["username"], "ada@example.com");
        assert_eq!(owner["fullName"], "Ada Admin");
        assert_eq!(owner["role"], json!({"id": "Admin", "name": "Admin"}));
        assert_eq!(owner["blocked"], false);
        assert_eq!(owner["verified"], true);
        assert_eq!(owner["timeZone"], "Europe/Istanbul");
        assert_eq!(owner["locale"], "en_US");
        let created = owner["createdAt"].as_str().expect("createdAt");
        assert!(time::OffsetDateTime::parse(
            created,
            &time::format_description::well_known::Rfc3339
        )
        .is_ok());
        assert_eq!(data[1]["role"]["id"], "User");
        assert_eq!(data[4]["fullName"], "Eve Ekström");
        let paging = &body["paging"];
        assert_eq!(
            paging["first"],
            "https://api.opsgenie.com/v2/users?limit=100&offset=0&sortField=insertedAt&order=asc"
        );
        assert_eq!(paging["last"], paging["first"]);
        assert!(paging.get("next").is_none() && paging.get("prev").is_none());
    }

    #[test]
    fn list_users_paging_sorting_and_query() {
        let mut s = sim();
        let (status, body) = get(&mut s, "/v2/users?limit=2&offset=2");
        assert_eq!(status, 200);
        assert_eq!(body["totalCount"], 6);
        let ids: Vec<&str> = body["data"]
            .as_array()
            .expect("data")
            .iter()
            .filter_map(|u| u["id"].as_str())
            .collect();
        assert_eq!(ids, [uid(2), uid(3)]);
        let paging = &body["paging"];
        assert!(paging["next"]
            .as_str()
            .is_some_and(|l| l.contains("offset=4")));
        assert!(paging["prev"]
            .as_str()
            .is_some_and(|l| l.contains("offset=0")));
        assert!(paging["last"]
            .as_str()
            .is_some_and(|l| l.contains("offset=4")));

        let (_, body) = get(&mut s, "/v2/users?offset=10");
        assert_eq!(body["data"], json!([]));
        assert_eq!(body["totalCount"], 6);

        let (_, body) = get(&mut s, "/v2/users?sortField=fullName&order=desc");
        let names: Vec<&str> = body["data"]
            .as_array()
            .expect("data")
            .iter()
            .filter_map(|u| u["fullName"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "Frank Ó Fiach",
                "Eve Ekström",
                "Dan Dietrich",
                "Carol Chen",
                "Bob Builder",
                "Ada Admin"
            ]
        );
        let (_, body) = get(&mut s, "/v2/users?sort=username&order=desc&limit=1");
        assert_eq!(body["data"][0]["username"], "frank@example.com");

        // Free text: substring of username or full name, case-insensitive.
        let (_, body) = get(&mut s, "/v2/users?query=BUILD");
        assert_eq!(body["totalCount"], 1);
        assert_eq!(body["data"][0]["id"], uid(1));
        let (_, body) = get(&mut s, "/v2/users?query=example.com");
        assert_eq!(body["totalCount"], 6);
        // Field form: exact username.
        let (_, body) = get(&mut s, "/v2/users?query=username%3ACAROL%40example.com");
        assert_eq!(body["totalCount"], 1);
        assert_eq!(body["data"][0]["id"], uid(2));
        assert!(body["paging"]["first"]
            .as_str()
            .is_some_and(|l| l.contains("query=username%3ACAROL%40example%2Ecom")));
        let (_, body) = get(&mut s, "/v2/users?query=username:carol");
        assert_eq!(body["totalCount"], 0);
        assert!(body["paging"].get("next").is_none());
        let (_, body) = get(&mut s, "/v2/users?query=role:admin");
        assert_eq!(body["totalCount"], 1);

        // limit above 500 is clamped.
        let (status, body) = get(&mut s, "/v2/users?limit=100000");
        assert_eq!(status, 200);
        assert!(body["paging"]["first"]
            .as_str()
            .is_some_and(|l| l.contains("limit=500")));
    }

    #[test]
    fn list_users_bad_parameters_are_422() {
        let mut s = sim();
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=-1", "limit"),
            ("limit=ten", "limit"),
            ("offset=-5", "offset"),
            ("offset=99999999999999999999999", "offset"),
            ("sortField=email", "sortField"),
            ("order=up", "order"),
        ] {
            let resp = call(&mut s, Method::GET, &format!("/v2/users?{query}"), "");
            assert_error(&resp, 422, UNPROCESSABLE);
            assert!(resp.json_body()["errors"][field].is_string(), "{query}");
        }
    }

    #[test]
    fn get_user_by_id_or_username() {
        let mut s = sim();
        let resp = call(&mut s, Method::GET, &format!("/v2/users/{}", uid(3)), "");
        assert_eq!(resp.status, 200);
        assert_envelope(&resp);
        let body = resp.json_body();
        assert_eq!(body["data"]["username"], "dan@example.com");
        assert_eq!(body["expandable"], json!(["contact"]));
        assert!(body["data"].get("userContacts").is_none());
        let (status, body) = get(&mut s, "/v2/users/frank@example.com?expand=contact");
        assert_eq!(status, 200);
        assert_eq!(body["data"]["id"], uid(5));
        assert_eq!(body["data"]["userContacts"], json!([]));
        let resp = call(&mut s, Method::GET, "/v2/users/ghost@example.com", "");
        assert_error(
            &resp,
            404,
            "No user exists with identifier [ghost@example.com]",
        );
    }

    #[test]
    fn rate_limited_switch_answers_429_everywhere() {
        let mut s = sim();
        assert!(s.set_switch("rate_limited", true));
        for (method, path) in [
            (Method::GET, "/v2/teams"),
            (Method::POST, "/v2/teams"),
            (Method::GET, "/v2/users"),
            (Method::GET, "/nowhere"),
        ] {
            let resp = call(&mut s, method, path, r#"{"name":"a"}"#);
            assert_eq!(resp.status, 429);
            assert_eq!(resp.json_body()["message"], "TooManyRequests");
            assert_envelope(&resp);
            assert_eq!(
                header(&resp, "x-ratelimit-state").as_deref(),
                Some("THROTTLED")
            );
            assert_eq!(
                header(&resp, "x-ratelimit-reason").as_deref(),
                Some("ACCOUNT")
            );
            assert_eq!(
                header(&resp, "x-ratelimit-period-in-sec").as_deref(),
                Some("60")
            );
        }
        // Even without credentials, and the state is not touched.
        let resp = raw(&mut s, Method::GET, "/v2/teams", HeaderMap::new(), "");
        assert_eq!(resp.status, 429);
        assert!(s.set_switch("rate_limited", false));
        let (status, body) = get(&mut s, "/v2/teams");
        assert_eq!((status, body["data"].clone()), (200, json!([])));
        assert!(!s.set_switch("errors_in_200", true));
    }

    #[test]
    fn unknown_routes_and_wrong_methods() {
        let mut s = sim();
        for path in [
            "/",
            "/v1/teams",
            "/v2/team",
            "/v2/teams/",
            "/v2/teams/x/logs",
            "/v2/teams/x/members/y/z",
            "/v2/teams//members",
            "/v2/users/x/teams",
        ] {
            let resp = call(&mut s, Method::GET, path, "");
            assert_error(&resp, 404, "No handler found");
        }
        for (method, path) in [
            (Method::PUT, "/v2/teams"),
            (Method::DELETE, "/v2/teams"),
            (Method::POST, "/v2/teams/x"),
            (Method::PUT, "/v2/teams/x"),
            (Method::GET, "/v2/teams/x/members"),
            (Method::GET, "/v2/teams/x/members/y"),
            (Method::POST, "/v2/users"),
            (Method::DELETE, "/v2/users/x"),
        ] {
            let resp = call(&mut s, method.clone(), path, "");
            assert_eq!(resp.status, 405, "{method} {path}");
            assert!(resp.json_body()["message"].is_string());
            assert!(header(&resp, "allow").is_some());
            assert_envelope(&resp);
        }
    }

    #[test]
    fn team_count_is_bounded() {
        let mut s = sim();
        assert_eq!(s.team_limit, MAX_TEAMS);
        s.team_limit = 2;
        create(&mut s, json!({"name": "a"}));
        create(&mut s, json!({"name": "b"}));
        let resp = call(&mut s, Method::POST, "/v2/teams", r#"{"name":"c"}"#);
        assert_eq!(resp.status, 500);
        assert_envelope(&resp);
        // Deleting frees a slot.
        let resp = call(
            &mut s,
            Method::DELETE,
            "/v2/teams/a?identifierType=name",
            "",
        );
        assert_eq!(resp.status, 200);
        create(&mut s, json!({"name": "c"}));
    }

    #[test]
    fn odd_input_never_panics() {
        let mut s = sim();
        let id = create(&mut s, json!({"name": "名前 🙂 \u{202e}"}));
        let bodies = [
            "null",
            "true",
            "\"x\"",
            "{\"name\":{\"a\":1}}",
            "{\"name\":[]}",
            "{\"members\":null,\"name\":\"\\u0000\"}",
            "{\"user\":{\"id\":null,\"username\":null}}",
            "{\"user\":{\"id\":\"../x\"},\"role\":null}",
            "{\"members\":[{\"user\":{\"id\":[1]},\"role\":{}}]}",
            "\u{feff}{}",
            &"[".repeat(10_000),
        ];
        let paths = [
            "/v2/teams".to_string(),
            format!("/v2/teams/{id}"),
            format!("/v2/teams/{id}/members"),
            format!("/v2/teams/{id}/members/..%2F..%2Fetc"),
            "/v2/teams/%E5%90%8D%E5%89%8D%20%F0%9F%99%82%20%E2%80%AE?identifierType=name"
                .to_string(),
            "/v2/teams/%FF%FE?identifierType=name".to_string(),
            "/v2/users?limit=&offset=&order=&query=%00".to_string(),
            "/v2/users/%F0%9F%99%82".to_string(),
        ];
        for method in [Method::GET, Method::POST, Method::PATCH, Method::DELETE] {
            for path in &paths {
                for body in bodies {
                    let resp = call(&mut s, method.clone(), path, body);
                    assert!(resp.status.as_u16() >= 200 && resp.status.as_u16() < 600);
                    assert!(resp.json_body().is_object());
                }
            }
        }
        let (status, body) = get(
            &mut s,
            "/v2/teams/%E5%90%8D%E5%89%8D%20%F0%9F%99%82%20%E2%80%AE?identifierType=name",
        );
        // It may have been deleted by the loop above; either way the answer is well formed.
        assert!(status == 200 || status == 404, "{body}");
    }
}
