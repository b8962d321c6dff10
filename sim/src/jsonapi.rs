//! The JSON:API team service simulator, modelled on Papershift **Pulse**.
//!
//! This file owns everything the `jsonapi` vendor kind does: teams (a hierarchy under one default
//! team, soft-deleted), team memberships (their own resource, carrying role ids) and the read-only
//! users (the people of [`super::people`]). State lives in memory; every request sees what the
//! previous one left.
//!
//! # Sources, in order of precedence
//!
//! 1. Pulse's own pages as recorded in `shared/VENDORS.md` (section "4. JSON:API team API" and the
//!    "Second look" section "4. Papershift Pulse") and seed `004_6eb831c26651bffd.txt` (the teams
//!    page): routes, attributes and their rules ("Cannot be set", "Must be set, Must be unique
//!    within account", "Must be set on all non-default teams"), `Content-Type:
//!    application/vnd.api+json` on *every* request, the filter syntax
//!    `filter[<attr>]=<op>:<value>` and `filter[discarded_at_blank]=1`, a `DELETE` that answers the
//!    deleted team, a membership create that answers `{"data":[<user>]}`, and the organization
//!    guide's "a team cannot be its own parent team".
//! 2. Where Pulse's documents are silent, the JSON:API 1.1 specification (jsonapi.org/format/1.1):
//!    - error objects `{"errors":[{"status","title","detail","source":{"pointer"|"parameter"}}]}`;
//!      `source.pointer` names the attribute at fault, `source.parameter` the query parameter;
//!    - `201 Created` plus `Location` for a created resource (Pulse does not state its code);
//!    - `409 Conflict` for a body whose `type` (or `id` on update) does not match the endpoint;
//!    - `403 Forbidden` for a client-generated id on create (Pulse does not support them);
//!    - `400 Bad Request` for a body that is not a JSON:API document, for an `include` path the
//!      endpoint does not support, and for `sort` (Pulse sorts, but the page that describes the
//!      syntax is cut off, so the simulator supports no sorting, which JSON:API answers with 400);
//!    - `415` for a `Content-Type` with media type parameters other than `profile` (and for
//!      `ext`, since no extension is supported);
//!    - pagination with `page[number]` (default 1) and `page[size]` (default 25, at most 100),
//!      `meta.total_count` and `links.self` / `links.next` (Pulse's pagination page is cut off);
//!    - `204 No Content` for `DELETE /api/v1/team_memberships/:id` (Pulse documents only the
//!      create of memberships; list, show, update and delete of memberships follow JSON:API);
//!    - `PATCH` is accepted wherever Pulse documents `PUT`.
//! 3. Choices of the simulator itself, where neither says anything:
//!    - error texts are Rails validation messages in English (`can't be blank`, `has already been
//!      taken`); `Accept-Language` is ignored;
//!    - filter operators `eq !eq ct !ct pre suf` are simulated (`ct`/`!ct` ignore case, email and
//!      id comparisons ignore case); Pulse's other operators, unknown filter attributes and
//!      filters on associations answer 400 so a client relying on them notices;
//!    - ids are compared case-insensitively (they are UUIDs); unknown attributes in a write
//!      answer 422 "is not a known attribute" so a client sending fields Pulse lacks notices;
//!    - `relationships` in a write body are ignored: Pulse documents `parent_team_id` as an
//!      attribute;
//!    - a membership's create answers the documented user list; the membership's own id is
//!      given in `Location: /api/v1/team_memberships/<id>`;
//!    - memberships of a discarded team are kept and still listed; they no longer matter, and a
//!      discarded team accepts no new members;
//!    - links and `Location` are path-absolute (`/api/v1/...`): the simulator does not know the
//!      host it is reached by;
//!    - a method the path does not support answers 405 with `Allow` (RFC 9110);
//!    - query parameters outside the `filter`, `page`, `include` and `sort` families are ignored,
//!      and `Accept` is not checked (no 406): neither is documented by Pulse;
//!    - name uniqueness is exact and among non-discarded teams (a discarded team's name is free
//!      again); the default team and a team with non-discarded child teams cannot be deleted
//!      (422), since every non-default team needs a live parent;
//!    - names are at most 255 characters, teams at most 100,000 (discarded ones count), beyond
//!      which create answers 500: a simulator must stay bounded.

use std::collections::{BTreeMap, HashMap, HashSet};

use http::Method;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use super::people::{jsonapi_user_id, PEOPLE};
use super::{SimRequest, SimResponse, Vendor};

/// The JSON:API media type: required on every request, sent on every answer with a body.
const JSONAPI: &str = "application/vnd.api+json";

/// The one account every team belongs to.
pub const ACCOUNT_ID: &str = "a11c0a57-0000-4000-8000-000000000001";
/// The account's default (root) team, named [`DEFAULT_TEAM_NAME`]; it has no parent and cannot be
/// deleted.
pub const DEFAULT_TEAM_ID: &str = "7ea70000-0000-4000-8000-000000000001";
/// The default team's name.
pub const DEFAULT_TEAM_NAME: &str = "Company";
/// The system role "team admin", valid in a membership's `role_ids`.
pub const ROLE_TEAM_ADMIN: &str = "401e0000-0000-4000-8000-00000000ad01";
/// The system role "team member", valid in a membership's `role_ids`.
pub const ROLE_TEAM_MEMBER: &str = "401e0000-0000-4000-8000-00000000ae02";
/// The only roles a membership may carry.
const ROLES: &[&str] = &[ROLE_TEAM_ADMIN, ROLE_TEAM_MEMBER];

/// Teams kept at most, discarded ones included (they are never removed).
pub const MAX_TEAMS: usize = 100_000;
/// Longest team name, in characters.
const MAX_NAME_CHARS: usize = 255;
/// `page[size]` when none is given, and its largest accepted value.
const DEFAULT_PAGE_SIZE: usize = 25;
const MAX_PAGE_SIZE: usize = 100;
/// Creation time of the default team and of every user: fixed, so tests can name it.
const EPOCH: &str = "2024-01-01T00:00:00Z";

/// Characters kept unescaped when the simulator writes a query into a link.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One team. Teams are never removed: delete sets `discarded_at` (the Rails "discard" gem).
#[derive(Debug, Clone)]
struct Team {
    id: String,
    name: String,
    parent_team_id: Option<String>,
    created_at: String,
    updated_at: String,
    discarded_at: Option<String>,
    /// Ids of this team's memberships, oldest first (at most one per person).
    memberships: Vec<String>,
}

/// One user's membership in one team.
#[derive(Debug, Clone)]
struct Membership {
    id: String,
    team_id: String,
    user_id: String,
    role_ids: Vec<String>,
    created_at: String,
}

/// The simulator: one account, its teams, memberships and users.
pub struct JsonApi {
    credential: String,
    /// Every team in creation order, which is also the list order.
    teams: Vec<Team>,
    /// Team id → index in `teams`.
    team_index: HashMap<String, usize>,
    /// Name → index of the non-discarded team holding it: names are unique among those only.
    active_names: HashMap<String, usize>,
    /// Memberships by creation sequence, so lists keep creation order after deletes.
    memberships: BTreeMap<u64, Membership>,
    /// Membership id → sequence in `memberships`.
    membership_index: HashMap<String, u64>,
    next_seq: u64,
    /// [`MAX_TEAMS`], lowered by unit tests to reach the limit quickly.
    team_limit: usize,
}

impl JsonApi {
    /// A fresh account holding only the default team, accepting `credential` as the only token.
    pub fn new(credential: &str) -> Self {
        let default = Team {
            id: DEFAULT_TEAM_ID.to_string(),
            name: DEFAULT_TEAM_NAME.to_string(),
            parent_team_id: None,
            created_at: EPOCH.to_string(),
            updated_at: EPOCH.to_string(),
            discarded_at: None,
            memberships: Vec::new(),
        };
        JsonApi {
            credential: credential.to_string(),
            team_index: HashMap::from([(default.id.clone(), 0)]),
            active_names: HashMap::from([(default.name.clone(), 0)]),
            teams: vec![default],
            memberships: BTreeMap::new(),
            membership_index: HashMap::new(),
            next_seq: 0,
            team_limit: MAX_TEAMS,
        }
    }
}

impl Vendor for JsonApi {
    fn kind(&self) -> &'static str {
        "jsonapi"
    }

    fn handle(&mut self, req: &SimRequest) -> SimResponse {
        self.dispatch(req).unwrap_or_else(Failure::into_response)
    }

    /// One JSON:API error object: `{"errors":[{"status","title","detail"}]}`.
    fn error_body(&self, status: u16, message: &str) -> SimResponse {
        Failure::from(error(status, message)).into_response()
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// One JSON:API error object.
#[derive(Debug)]
struct ApiError {
    status: u16,
    detail: String,
    /// `("pointer", "/data/attributes/name")` or `("parameter", "page[size]")`.
    source: Option<(&'static str, String)>,
}

/// A failed request: one or more errors of the same status (validation collects them all, as
/// Rails does, so a client sees every fault at once).
#[derive(Debug)]
struct Failure(Vec<ApiError>);

type Reply = Result<SimResponse, Failure>;

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure(vec![e])
    }
}

impl Failure {
    fn into_response(self) -> SimResponse {
        let status = self.0.first().map_or(500, |e| e.status);
        let errors: Vec<Value> = self
            .0
            .into_iter()
            .map(|e| {
                let mut obj = json!({
                    "status": e.status.to_string(),
                    "title": title(e.status),
                    "detail": e.detail,
                });
                if let Some((kind, at)) = e.source {
                    obj["source"] = json!({ kind: at });
                }
                obj
            })
            .collect();
        let response = SimResponse::typed(status, JSONAPI, json!({ "errors": errors }));
        if status == 401 {
            // RFC 6750: a 401 names the scheme the client must use.
            response.with_header("www-authenticate", "Bearer")
        } else {
            response
        }
    }
}

fn title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        // Only injected faults answer other statuses: their HTTP reason phrase.
        _ => http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Internal Server Error"),
    }
}

fn error(status: u16, detail: impl Into<String>) -> ApiError {
    ApiError {
        status,
        detail: detail.into(),
        source: None,
    }
}

/// A 422 on one attribute of the request body.
fn field_error(attribute: &str, detail: impl Into<String>) -> ApiError {
    pointer_error(
        422,
        &format!("/data/attributes/{}", escape_pointer(attribute)),
        detail,
    )
}

fn pointer_error(status: u16, pointer: &str, detail: impl Into<String>) -> ApiError {
    ApiError {
        status,
        detail: detail.into(),
        source: Some(("pointer", pointer.to_string())),
    }
}

/// A 400 on one query parameter.
fn param_error(parameter: &str, detail: impl Into<String>) -> ApiError {
    ApiError {
        status: 400,
        detail: detail.into(),
        source: Some(("parameter", parameter.to_string())),
    }
}

fn not_found(what: &str) -> ApiError {
    error(404, format!("{what} not found"))
}

/// RFC 6901: an attribute name inside a JSON pointer escapes `~` and `/`.
fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn method_not_allowed(allow: &'static str) -> Reply {
    Ok(
        Failure::from(error(405, format!("allowed methods: {allow}")))
            .into_response()
            .with_header("allow", allow),
    )
}

// ---------------------------------------------------------------------------------------------
// Request checks and routing
// ---------------------------------------------------------------------------------------------

impl JsonApi {
    fn dispatch(&mut self, req: &SimRequest) -> Reply {
        // Order matters and is part of the contract: 401, then 415, then routing (404).
        self.check_auth(req)?;
        check_content_type(req)?;
        let m = &req.method;
        match req.segs().as_slice() {
            ["api", "v1", "teams"] => match *m {
                Method::GET => self.list_teams(req),
                Method::POST => self.create_team(req),
                _ => method_not_allowed("GET, POST"),
            },
            ["api", "v1", "teams", id] if !id.is_empty() => match *m {
                Method::GET => self.show_team(req, id),
                Method::PUT | Method::PATCH => self.update_team(req, id),
                Method::DELETE => self.delete_team(id),
                _ => method_not_allowed("GET, PUT, PATCH, DELETE"),
            },
            ["api", "v1", "team_memberships"] => match *m {
                Method::GET => self.list_memberships(req),
                Method::POST => self.create_membership(req),
                _ => method_not_allowed("GET, POST"),
            },
            ["api", "v1", "team_memberships", id] if !id.is_empty() => match *m {
                Method::GET => self.show_membership(req, id),
                Method::PUT | Method::PATCH => self.update_membership(req, id),
                Method::DELETE => self.delete_membership(id),
                _ => method_not_allowed("GET, PUT, PATCH, DELETE"),
            },
            ["api", "v1", "users"] => match *m {
                Method::GET => self.list_users(req),
                _ => method_not_allowed("GET"),
            },
            ["api", "v1", "users", id] if !id.is_empty() => match *m {
                Method::GET => show_user(req, id),
                _ => method_not_allowed("GET"),
            },
            _ => Err(error(404, "no route matches this path").into()),
        }
    }

    fn check_auth(&self, req: &SimRequest) -> Result<(), Failure> {
        match req.bearer() {
            Some(token) if token == self.credential => Ok(()),
            Some(_) => Err(error(401, "invalid bearer token").into()),
            None => Err(error(401, "missing Authorization: Bearer <token> header").into()),
        }
    }
}

/// Pulse: "Content-Type: application/vnd.api+json" on every request, GET and DELETE included.
/// JSON:API 1.1: parameters other than `profile` (and `ext` naming an unsupported extension, which
/// is any here) are refused with 415 too.
fn check_content_type(req: &SimRequest) -> Result<(), Failure> {
    let refuse = |detail: &str| Err(error(415, detail).into());
    let Some(value) = req.header("content-type") else {
        return refuse("Content-Type must be application/vnd.api+json");
    };
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case(JSONAPI) {
        return refuse("Content-Type must be application/vnd.api+json");
    }
    for param in parts {
        let name = param.split('=').next().unwrap_or("").trim();
        if !name.eq_ignore_ascii_case("profile") {
            return refuse("media type parameters other than profile are not supported");
        }
    }
    Ok(())
}

/// A JSON:API document with the primary data of a write.
struct WriteBody {
    id: Option<String>,
    attributes: Map<String, Value>,
}

/// Reads `{"data":{"type":..,"id"?:..,"attributes"?:{..}}}` and checks its `type`.
fn parse_write(req: &SimRequest, expected_type: &str) -> Result<WriteBody, Failure> {
    let Some(doc) = req.json() else {
        return Err(pointer_error(400, "", "request body must be a JSON:API document").into());
    };
    let Some(data) = doc.get("data").and_then(Value::as_object) else {
        return Err(pointer_error(400, "/data", "must be a resource object").into());
    };
    match data.get("type") {
        Some(Value::String(t)) if t == expected_type => {}
        Some(Value::String(t)) => {
            // JSON:API: a type the endpoint does not hold is a conflict, not a bad request.
            return Err(pointer_error(
                409,
                "/data/type",
                format!("type `{t}` does not match this endpoint (`{expected_type}`)"),
            )
            .into());
        }
        _ => return Err(pointer_error(400, "/data/type", "must be a string").into()),
    }
    let id = match data.get("id") {
        None => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => return Err(pointer_error(400, "/data/id", "must be a string").into()),
    };
    let attributes = match data.get("attributes") {
        None => Map::new(),
        Some(Value::Object(a)) => a.clone(),
        Some(_) => return Err(pointer_error(400, "/data/attributes", "must be an object").into()),
    };
    Ok(WriteBody { id, attributes })
}

/// JSON:API: a server that does not accept client-generated ids answers 403.
fn refuse_client_id(body: &WriteBody) -> Result<(), Failure> {
    match body.id {
        Some(_) => {
            Err(pointer_error(403, "/data/id", "client-generated ids are not supported").into())
        }
        None => Ok(()),
    }
}

/// JSON:API: on update, an `id` in the body must be the one in the URL. Pulse's own example
/// sends none, so none is fine.
fn check_body_id(body: &WriteBody, id: &str) -> Result<(), Failure> {
    match &body.id {
        Some(given) if !given.eq_ignore_ascii_case(id) => {
            Err(pointer_error(409, "/data/id", "does not match the id in the URL").into())
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Query parameters: filters, include, pagination
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Op {
    Eq,
    NotEq,
    Ct,
    NotCt,
    Pre,
    Suf,
    /// `in:a,b,c`: one of the comma-separated values [I: Pulse lists `in` and `!in` among its
    /// operators without saying how the values are written; a comma list is the usual form].
    In,
    NotIn,
}

/// One `filter[attr]=op:value`.
#[derive(Debug)]
struct Filter {
    attr: String,
    op: Op,
    value: String,
}

impl Filter {
    fn parse(attr: &str, raw: &str) -> Result<Filter, Failure> {
        let parameter = format!("filter[{attr}]");
        let Some((op, value)) = raw.split_once(':') else {
            return Err(
                param_error(&parameter, "must be <operator>:<value>, e.g. eq:Company").into(),
            );
        };
        let op = match op {
            "eq" => Op::Eq,
            "!eq" => Op::NotEq,
            "ct" => Op::Ct,
            "!ct" => Op::NotCt,
            "pre" => Op::Pre,
            "suf" => Op::Suf,
            "in" => Op::In,
            "!in" => Op::NotIn,
            other => {
                return Err(param_error(
                    &parameter,
                    format!(
                        "unsupported operator `{other}` (supported: eq, !eq, ct, !ct, pre, suf, in, !in)"
                    ),
                )
                .into())
            }
        };
        Ok(Filter {
            attr: attr.to_string(),
            op,
            value: value.to_string(),
        })
    }

    /// Whether `candidate` passes; `ignore_case` for emails and ids. `ct`/`!ct` always ignore
    /// case (a search), the other operators compare exactly.
    fn matches(&self, candidate: &str, ignore_case: bool) -> bool {
        let fold = ignore_case || matches!(self.op, Op::Ct | Op::NotCt);
        let (c, v) = if fold {
            (candidate.to_lowercase(), self.value.to_lowercase())
        } else {
            (candidate.to_string(), self.value.clone())
        };
        match self.op {
            Op::Eq => c == v,
            Op::NotEq => c != v,
            Op::Ct => c.contains(&v),
            Op::NotCt => !c.contains(&v),
            Op::Pre => c.starts_with(&v),
            Op::Suf => c.ends_with(&v),
            Op::In => v.split(',').any(|one| one == c),
            Op::NotIn => v.split(',').all(|one| one != c),
        }
    }
}

/// Every `filter[<attr>]` parameter as `(attr, raw value)`; a malformed filter key is a 400.
fn filter_params(req: &SimRequest) -> Result<Vec<(String, String)>, Failure> {
    let mut out = Vec::new();
    for (key, value) in &req.query {
        if key != "filter" && !key.starts_with("filter[") {
            continue;
        }
        let attr = key
            .strip_prefix("filter[")
            .and_then(|rest| rest.strip_suffix(']'))
            .filter(|a| !a.is_empty() && !a.contains(['[', ']']));
        match attr {
            Some(attr) => out.push((attr.to_string(), value.clone())),
            // Includes Pulse's association filters (`filter[users][name]`), not simulated.
            None => return Err(param_error(key, "is not a supported filter").into()),
        }
    }
    Ok(out)
}

/// Parses the filters of a list whose filterable attributes are `allowed`.
fn attribute_filters(
    params: Vec<(String, String)>,
    allowed: &[&str],
) -> Result<Vec<Filter>, Failure> {
    params
        .into_iter()
        .map(|(attr, raw)| {
            if allowed.contains(&attr.as_str()) {
                Filter::parse(&attr, &raw)
            } else {
                Err(param_error(&format!("filter[{attr}]"), "is not a supported filter").into())
            }
        })
        .collect()
}

/// The relationship paths of `include=`; JSON:API: an unsupported path is a 400.
fn parse_include(req: &SimRequest, allowed: &[&str]) -> Result<Vec<String>, Failure> {
    let Some(raw) = req.query_param("include") else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|path| {
            if allowed.contains(&path) {
                Ok(path.to_string())
            } else {
                Err(param_error(
                    "include",
                    format!("relationship `{path}` cannot be included"),
                )
                .into())
            }
        })
        .collect()
}

/// JSON:API: a server that cannot sort as asked answers 400. Pulse's sort syntax is unknown.
fn refuse_sort(req: &SimRequest) -> Result<(), Failure> {
    match req.query_param("sort") {
        Some(_) => Err(param_error("sort", "sorting is not supported").into()),
        None => Ok(()),
    }
}

/// `page[number]` / `page[size]`, the JSON:API "page-based" convention.
#[derive(Debug, Clone, Copy)]
struct Page {
    number: usize,
    size: usize,
}

impl Page {
    fn from_request(req: &SimRequest) -> Result<Page, Failure> {
        let mut page = Page {
            number: 1,
            size: DEFAULT_PAGE_SIZE,
        };
        for (key, value) in &req.query {
            match key.as_str() {
                "page[number]" => {
                    page.number = value
                        .trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| param_error(key, "must be an integer of at least 1"))?;
                }
                "page[size]" => {
                    page.size = value
                        .trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                        .ok_or_else(|| {
                            param_error(
                                key,
                                format!("must be an integer from 1 to {MAX_PAGE_SIZE}"),
                            )
                        })?;
                }
                k if k == "page" || k.starts_with("page[") => {
                    return Err(param_error(k, "is not a supported page parameter").into())
                }
                _ => {}
            }
        }
        Ok(page)
    }

    /// This page of `items`, and whether another page follows.
    fn slice<'a, T>(&self, items: &'a [T]) -> (&'a [T], bool) {
        let start = (self.number - 1).saturating_mul(self.size);
        if start >= items.len() {
            return (&[], false);
        }
        let end = start.saturating_add(self.size).min(items.len());
        (&items[start..end], end < items.len())
    }

    /// `links` of a list: `self`, and `next` only when another page exists. The other query
    /// parameters (filters, include) are carried over so following `next` continues this list.
    fn links(&self, path: &str, req: &SimRequest, has_next: bool) -> Value {
        let kept: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| k != "page" && !k.starts_with("page["))
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let url = |number: usize| {
            let mut parts = kept.clone();
            parts.push(format!("{}={number}", encode("page[number]")));
            parts.push(format!("{}={}", encode("page[size]"), self.size));
            format!("{path}?{}", parts.join("&"))
        };
        let mut links = json!({ "self": url(self.number) });
        if has_next {
            links["next"] = json!(url(self.number.saturating_add(1)));
        }
        links
    }
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// A whole list answer: `data`, `meta.total_count` (before paging) and `links`.
fn list_document<T>(
    req: &SimRequest,
    path: &str,
    page: Page,
    items: &[T],
    render: impl Fn(&T) -> Value,
) -> (Value, usize, usize) {
    let (slice, has_next) = page.slice(items);
    let start = (page.number - 1).saturating_mul(page.size).min(items.len());
    let doc = json!({
        "data": slice.iter().map(render).collect::<Vec<_>>(),
        "meta": { "total_count": items.len() },
        "links": page.links(path, req, has_next),
    });
    (doc, start, start + slice.len())
}

/// The value of `filter[discarded_at_blank]`: `1`/`true` hides discarded teams, `0`/`false` does not.
fn parse_flag(raw: &str) -> Option<bool> {
    match raw.trim() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| EPOCH.to_string())
}

// ---------------------------------------------------------------------------------------------
// Resources as JSON
// ---------------------------------------------------------------------------------------------

fn user_json(index: usize) -> Value {
    let person = PEOPLE[index];
    json!({
        "id": jsonapi_user_id(index),
        "type": "user",
        "attributes": {
            "name": person.name,
            "email": person.email,
            "username": person.login,
            "created_at": EPOCH,
        },
    })
}

fn membership_json(m: &Membership) -> Value {
    json!({
        "id": m.id,
        "type": "team_membership",
        "attributes": {
            "team_id": m.team_id,
            "user_id": m.user_id,
            "role_ids": m.role_ids,
            "created_at": m.created_at,
        },
    })
}

fn team_json(t: &Team) -> Value {
    let is_default = t.id == DEFAULT_TEAM_ID;
    json!({
        "id": t.id,
        "type": "team",
        "attributes": {
            "account_id": ACCOUNT_ID,
            "discarded_at": t.discarded_at,
            "name": t.name,
            "parent_team_id": t.parent_team_id,
            "created_at": t.created_at,
            "updated_at": t.updated_at,
        },
        "relationships": {
            "parent_team": {
                "data": t.parent_team_id.as_ref().map(|p| json!({ "type": "team", "id": p })),
            },
            "team_memberships": {
                "data": t.memberships.iter()
                    .map(|m| json!({ "type": "team_membership", "id": m }))
                    .collect::<Vec<_>>(),
            },
        },
        "meta": {
            "permissions": {
                "actions": { "edit": true, "delete": !is_default },
                "team_memberships": { "create": true, "edit": true, "delete": true },
            },
        },
    })
}

/// The index of the person whose JSON:API user id is `id`.
fn user_index(id: &str) -> Option<usize> {
    (0..PEOPLE.len()).find(|i| jsonapi_user_id(*i).eq_ignore_ascii_case(id))
}

// ---------------------------------------------------------------------------------------------
// Teams
// ---------------------------------------------------------------------------------------------

/// Validated attribute changes of a team write.
#[derive(Debug, Default)]
struct TeamChanges {
    name: Option<String>,
    /// `Some(None)` only for the default team, which has no parent.
    parent: Option<Option<String>>,
}

impl JsonApi {
    fn team_idx(&self, id: &str) -> Option<usize> {
        self.team_index.get(&id.to_ascii_lowercase()).copied()
    }

    /// A team that exists and is not discarded.
    fn live_team_idx(&self, id: &str) -> Option<usize> {
        self.team_idx(id)
            .filter(|i| self.teams[*i].discarded_at.is_none())
    }

    fn membership(&self, id: &str) -> Option<&Membership> {
        let seq = self.membership_index.get(&id.to_ascii_lowercase())?;
        self.memberships.get(seq)
    }

    fn list_teams(&self, req: &SimRequest) -> Reply {
        let include = parse_include(req, &["team_memberships", "parent_team"])?;
        refuse_sort(req)?;
        let page = Page::from_request(req)?;
        let mut hide_discarded = false;
        let mut params = filter_params(req)?;
        // Pulse: discarded teams are listed unless `filter[discarded_at_blank]=1`.
        if let Some(pos) = params.iter().position(|(a, _)| a == "discarded_at_blank") {
            let (_, raw) = params.remove(pos);
            hide_discarded = parse_flag(&raw)
                .ok_or_else(|| param_error("filter[discarded_at_blank]", "must be 1 (or 0)"))?;
        }
        let filters = attribute_filters(params, &["name", "parent_team_id"])?;
        let matching: Vec<&Team> = self
            .teams
            .iter()
            .filter(|t| !(hide_discarded && t.discarded_at.is_some()))
            .filter(|t| {
                filters
                    .iter()
                    // Ids are UUIDs: compared ignoring case, like the id routes.
                    .all(|f| f.matches(team_attr(t, &f.attr), f.attr == "parent_team_id"))
            })
            .collect();
        let (mut doc, start, end) =
            list_document(req, "/api/v1/teams", page, &matching, |t| team_json(t));
        if !include.is_empty() {
            doc["included"] = json!(self.included(&matching[start..end], &include));
        }
        Ok(SimResponse::typed(200, JSONAPI, doc))
    }

    /// The `included` resources of `teams`: each at most once, and none that is already
    /// primary data (JSON:API compound documents).
    fn included(&self, teams: &[&Team], include: &[String]) -> Vec<Value> {
        let mut seen: HashSet<String> = teams.iter().map(|t| t.id.clone()).collect();
        let mut out = Vec::new();
        for team in teams {
            for path in include {
                match path.as_str() {
                    "parent_team" => {
                        let parent = team
                            .parent_team_id
                            .as_deref()
                            .and_then(|p| self.team_idx(p));
                        if let Some(p) = parent {
                            if seen.insert(self.teams[p].id.clone()) {
                                out.push(team_json(&self.teams[p]));
                            }
                        }
                    }
                    _ => {
                        for mid in &team.memberships {
                            if let Some(m) = self.membership(mid) {
                                if seen.insert(m.id.clone()) {
                                    out.push(membership_json(m));
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// Pulse returns a discarded team too, with `discarded_at` set.
    fn show_team(&self, req: &SimRequest, id: &str) -> Reply {
        let include = parse_include(req, &["team_memberships", "parent_team"])?;
        let idx = self.team_idx(id).ok_or_else(|| not_found("team"))?;
        let team = &self.teams[idx];
        let mut doc = json!({ "data": team_json(team) });
        if !include.is_empty() {
            doc["included"] = json!(self.included(&[team], &include));
        }
        Ok(SimResponse::typed(200, JSONAPI, doc))
    }

    fn create_team(&mut self, req: &SimRequest) -> Reply {
        let body = parse_write(req, "team")?;
        refuse_client_id(&body)?;
        let changes = self.team_changes(&body.attributes, None)?;
        if self.teams.len() >= self.team_limit {
            return Err(error(
                500,
                format!("the simulator holds at most {} teams", self.team_limit),
            )
            .into());
        }
        let (Some(name), Some(parent)) = (changes.name, changes.parent) else {
            // team_changes guarantees both on create; answer rather than panic if it ever did not.
            return Err(error(500, "validation left a required attribute unset").into());
        };
        let stamp = now();
        let team = Team {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            parent_team_id: parent,
            created_at: stamp.clone(),
            updated_at: stamp,
            discarded_at: None,
            memberships: Vec::new(),
        };
        let idx = self.teams.len();
        self.team_index.insert(team.id.clone(), idx);
        self.active_names.insert(team.name.clone(), idx);
        let location = format!("/api/v1/teams/{}", team.id);
        let doc = json!({ "data": team_json(&team) });
        self.teams.push(team);
        Ok(SimResponse::typed(201, JSONAPI, doc).with_header("location", &location))
    }

    fn update_team(&mut self, req: &SimRequest, id: &str) -> Reply {
        // A discarded team cannot be changed any more: to a client it is gone.
        let idx = self.live_team_idx(id).ok_or_else(|| not_found("team"))?;
        let body = parse_write(req, "team")?;
        check_body_id(&body, &self.teams[idx].id)?;
        let changes = self.team_changes(&body.attributes, Some(idx))?;
        let mut changed = false;
        if let Some(name) = changes.name {
            if name != self.teams[idx].name {
                self.active_names.remove(&self.teams[idx].name);
                self.active_names.insert(name.clone(), idx);
                self.teams[idx].name = name;
                changed = true;
            }
        }
        if let Some(parent) = changes.parent {
            if parent != self.teams[idx].parent_team_id {
                self.teams[idx].parent_team_id = parent;
                changed = true;
            }
        }
        // Rails touches updated_at only when something changed.
        if changed {
            self.teams[idx].updated_at = now();
        }
        Ok(SimResponse::typed(
            200,
            JSONAPI,
            json!({ "data": team_json(&self.teams[idx]) }),
        ))
    }

    /// Soft delete: Pulse answers the deleted team (with `discarded_at`), not 204.
    fn delete_team(&mut self, id: &str) -> Reply {
        let idx = self.live_team_idx(id).ok_or_else(|| not_found("team"))?;
        let team_id = self.teams[idx].id.clone();
        if team_id == DEFAULT_TEAM_ID {
            return Err(error(422, "cannot delete the default team").into());
        }
        // Deleting a parent would orphan its children (every non-default team needs a live one).
        let has_children = self
            .teams
            .iter()
            .any(|t| t.discarded_at.is_none() && t.parent_team_id.as_deref() == Some(&team_id));
        if has_children {
            return Err(error(
                422,
                "cannot delete a team that has child teams; move or delete them first",
            )
            .into());
        }
        let stamp = now();
        let team = &mut self.teams[idx];
        team.discarded_at = Some(stamp.clone());
        team.updated_at = stamp;
        self.active_names.remove(&team.name);
        Ok(SimResponse::typed(
            200,
            JSONAPI,
            json!({ "data": team_json(team) }),
        ))
    }

    /// Validates the attributes of a team create (`target` None) or update; collects every
    /// error so the client sees all of them in one 422.
    fn team_changes(
        &self,
        attrs: &Map<String, Value>,
        target: Option<usize>,
    ) -> Result<TeamChanges, Failure> {
        let mut errors = Vec::new();
        let mut changes = TeamChanges::default();
        for (key, value) in attrs {
            match key.as_str() {
                "name" => match self.check_name(value, target) {
                    Ok(name) => changes.name = Some(name),
                    Err(detail) => errors.push(field_error(key, detail)),
                },
                "parent_team_id" => match self.check_parent(value, target) {
                    Ok(parent) => changes.parent = Some(parent),
                    Err(detail) => errors.push(field_error(key, detail)),
                },
                // Pulse: account_id and discarded_at "Cannot be set"; the rest are server-owned.
                "account_id" | "discarded_at" | "created_at" | "updated_at" | "id" | "type" => {
                    errors.push(field_error(key, "cannot be set"))
                }
                _ => errors.push(field_error(key, "is not a known attribute")),
            }
        }
        if target.is_none() {
            if !attrs.contains_key("name") {
                errors.push(field_error("name", "can't be blank"));
            }
            if !attrs.contains_key("parent_team_id") {
                errors.push(field_error(
                    "parent_team_id",
                    "must be set on all non-default teams",
                ));
            }
        }
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(Failure(errors))
        }
    }

    /// Pulse: "Must be set, Must be unique within account". Uniqueness is among non-discarded
    /// teams (a discarded team's name is free again) and exact (Rails' default).
    fn check_name(&self, value: &Value, target: Option<usize>) -> Result<String, String> {
        let name = match value {
            Value::String(s) => s,
            Value::Null => return Err("can't be blank".into()),
            _ => return Err("must be a string".into()),
        };
        if name.trim().is_empty() {
            return Err("can't be blank".into());
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(format!(
                "is too long (maximum is {MAX_NAME_CHARS} characters)"
            ));
        }
        match self.active_names.get(name) {
            Some(holder) if Some(*holder) != target => Err("has already been taken".into()),
            _ => Ok(name.clone()),
        }
    }

    /// Pulse: `parent_team_id` "Must be set on all non-default teams"; the organization guide:
    /// "a team cannot be its own parent team" (nor, therefore, a child of its own descendant).
    fn check_parent(&self, value: &Value, target: Option<usize>) -> Result<Option<String>, String> {
        let is_default = target.is_some_and(|t| self.teams[t].id == DEFAULT_TEAM_ID);
        if is_default {
            return match value {
                Value::Null => Ok(None),
                _ => Err("cannot be set on the default team".into()),
            };
        }
        let id = match value {
            Value::String(s) => s,
            Value::Null => return Err("must be set on all non-default teams".into()),
            _ => return Err("does not exist".into()),
        };
        let parent = self.live_team_idx(id).ok_or("does not exist")?;
        if let Some(target) = target {
            if self.is_ancestor_or_self(target, parent) {
                return Err("a team cannot be its own parent team".into());
            }
        }
        Ok(Some(self.teams[parent].id.clone()))
    }

    /// Whether `team` is `start` or one of its ancestors. The walk is bounded by the number of
    /// teams, so even corrupted links cannot loop forever.
    fn is_ancestor_or_self(&self, team: usize, start: usize) -> bool {
        let mut current = Some(start);
        for _ in 0..=self.teams.len() {
            match current {
                Some(c) if c == team => return true,
                Some(c) => {
                    current = self.teams[c]
                        .parent_team_id
                        .as_deref()
                        .and_then(|p| self.team_idx(p));
                }
                None => return false,
            }
        }
        true
    }
}

fn team_attr<'a>(team: &'a Team, attr: &str) -> &'a str {
    match attr {
        "name" => &team.name,
        // A null parent compares as the empty string.
        _ => team.parent_team_id.as_deref().unwrap_or(""),
    }
}

// ---------------------------------------------------------------------------------------------
// Team memberships
// ---------------------------------------------------------------------------------------------

/// `role_ids`: an array (possibly empty) of the fixed role ids; duplicates are dropped.
fn check_roles(value: &Value) -> Result<Vec<String>, String> {
    let items = match value {
        Value::Array(items) => items,
        Value::Null => return Err("must be present".into()),
        _ => return Err("must be an array of role ids".into()),
    };
    let mut roles: Vec<String> = Vec::new();
    for item in items {
        let role = item
            .as_str()
            .and_then(|r| ROLES.iter().find(|known| known.eq_ignore_ascii_case(r)))
            .ok_or("contains a role that does not exist")?;
        if !roles.iter().any(|r| r == role) {
            roles.push(role.to_string());
        }
    }
    Ok(roles)
}

impl JsonApi {
    /// Pulse documents the request and the answer: the user, as a one-element list. The new
    /// membership's id, which a client needs to update or delete it, is in `Location`.
    fn create_membership(&mut self, req: &SimRequest) -> Reply {
        let body = parse_write(req, "team_membership")?;
        refuse_client_id(&body)?;
        let mut errors = Vec::new();
        let (mut team, mut user, mut roles) = (None, None, None);
        for (key, value) in &body.attributes {
            match key.as_str() {
                "team_id" => match value {
                    Value::Null => errors.push(field_error(key, "must be provided")),
                    // A discarded team takes no new members: to a client it is gone.
                    _ => match value.as_str().and_then(|id| self.live_team_idx(id)) {
                        Some(idx) => team = Some(idx),
                        None => errors.push(field_error(key, "does not exist")),
                    },
                },
                "user_id" => match value {
                    Value::Null => errors.push(field_error(key, "must be provided")),
                    _ => match value.as_str().and_then(user_index) {
                        Some(idx) => user = Some(idx),
                        None => errors.push(field_error(key, "does not exist")),
                    },
                },
                "role_ids" => match check_roles(value) {
                    Ok(r) => roles = Some(r),
                    Err(detail) => errors.push(field_error(key, detail)),
                },
                "id" | "type" | "created_at" => errors.push(field_error(key, "cannot be set")),
                _ => errors.push(field_error(key, "is not a known attribute")),
            }
        }
        for (key, detail) in [
            ("team_id", "must be provided"),
            ("user_id", "must be provided"),
            ("role_ids", "must be present"),
        ] {
            if !body.attributes.contains_key(key) {
                errors.push(field_error(key, detail));
            }
        }
        if let (Some(t), Some(u)) = (team, user) {
            if self.member_of(t, u).is_some() {
                errors.push(field_error("user_id", "has already been taken"));
            }
        }
        let (Some(team), Some(user), Some(role_ids), true) = (team, user, roles, errors.is_empty())
        else {
            return Err(Failure(errors));
        };
        let membership = Membership {
            id: uuid::Uuid::new_v4().to_string(),
            team_id: self.teams[team].id.clone(),
            user_id: jsonapi_user_id(user),
            role_ids,
            created_at: now(),
        };
        // Bounded without a separate limit: one membership per person per team, and teams
        // are bounded by MAX_TEAMS.
        let location = format!("/api/v1/team_memberships/{}", membership.id);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.teams[team].memberships.push(membership.id.clone());
        self.membership_index.insert(membership.id.clone(), seq);
        self.memberships.insert(seq, membership);
        Ok(
            SimResponse::typed(201, JSONAPI, json!({ "data": [user_json(user)] }))
                .with_header("location", &location),
        )
    }

    /// The membership of person `user` in team `team`, if any.
    fn member_of(&self, team: usize, user: usize) -> Option<&Membership> {
        let user_id = jsonapi_user_id(user);
        self.teams[team]
            .memberships
            .iter()
            .filter_map(|m| self.membership(m))
            .find(|m| m.user_id == user_id)
    }

    /// Not documented by Pulse; JSON:API list with `filter[team_id]` / `filter[user_id]`.
    /// Memberships of discarded teams are kept and listed like any other.
    fn list_memberships(&self, req: &SimRequest) -> Reply {
        parse_include(req, &[])?;
        refuse_sort(req)?;
        let page = Page::from_request(req)?;
        let filters = attribute_filters(filter_params(req)?, &["team_id", "user_id"])?;
        let matching: Vec<&Membership> = self
            .memberships
            .values()
            .filter(|m| {
                filters.iter().all(|f| {
                    let value = if f.attr == "team_id" {
                        &m.team_id
                    } else {
                        &m.user_id
                    };
                    f.matches(value, true)
                })
            })
            .collect();
        let (doc, _, _) = list_document(req, "/api/v1/team_memberships", page, &matching, |m| {
            membership_json(m)
        });
        Ok(SimResponse::typed(200, JSONAPI, doc))
    }

    fn show_membership(&self, req: &SimRequest, id: &str) -> Reply {
        parse_include(req, &[])?;
        let m = self
            .membership(id)
            .ok_or_else(|| not_found("team membership"))?;
        Ok(SimResponse::typed(
            200,
            JSONAPI,
            json!({ "data": membership_json(m) }),
        ))
    }

    /// Only `role_ids` can change; team and user are the membership's identity.
    fn update_membership(&mut self, req: &SimRequest, id: &str) -> Reply {
        let seq = *self
            .membership_index
            .get(&id.to_ascii_lowercase())
            .ok_or_else(|| not_found("team membership"))?;
        let body = parse_write(req, "team_membership")?;
        check_body_id(&body, &id.to_ascii_lowercase())?;
        let mut errors = Vec::new();
        let mut roles = None;
        for (key, value) in &body.attributes {
            match key.as_str() {
                "role_ids" => match check_roles(value) {
                    Ok(r) => roles = Some(r),
                    Err(detail) => errors.push(field_error(key, detail)),
                },
                "team_id" | "user_id" => errors.push(field_error(key, "cannot be changed")),
                "id" | "type" | "created_at" => errors.push(field_error(key, "cannot be set")),
                _ => errors.push(field_error(key, "is not a known attribute")),
            }
        }
        if !errors.is_empty() {
            return Err(Failure(errors));
        }
        let m = self
            .memberships
            .get_mut(&seq)
            .ok_or_else(|| not_found("team membership"))?;
        if let Some(roles) = roles {
            m.role_ids = roles;
        }
        Ok(SimResponse::typed(
            200,
            JSONAPI,
            json!({ "data": membership_json(m) }),
        ))
    }

    /// Not documented by Pulse: JSON:API's 204 No Content, and the membership is really gone.
    fn delete_membership(&mut self, id: &str) -> Reply {
        let seq = self
            .membership_index
            .remove(&id.to_ascii_lowercase())
            .ok_or_else(|| not_found("team membership"))?;
        if let Some(m) = self.memberships.remove(&seq) {
            if let Some(t) = self.team_idx(&m.team_id) {
                self.teams[t].memberships.retain(|mid| *mid != m.id);
            }
        }
        Ok(SimResponse::empty(204))
    }
}

// ---------------------------------------------------------------------------------------------
// Users (read-only: the people every simulator starts with)
// ---------------------------------------------------------------------------------------------

impl JsonApi {
    fn list_users(&self, req: &SimRequest) -> Reply {
        parse_include(req, &[])?;
        refuse_sort(req)?;
        let page = Page::from_request(req)?;
        let filters = attribute_filters(filter_params(req)?, &["id", "name", "email", "username"])?;
        let matching: Vec<usize> = (0..PEOPLE.len())
            .filter(|i| {
                let p = PEOPLE[*i];
                filters.iter().all(|f| match f.attr.as_str() {
                    // Emails are case-insensitive addresses, ids UUIDs.
                    "email" => f.matches(p.email, true),
                    "id" => f.matches(&jsonapi_user_id(*i), true),
                    "name" => f.matches(p.name, false),
                    _ => f.matches(p.login, false),
                })
            })
            .collect();
        let (doc, _, _) = list_document(req, "/api/v1/users", page, &matching, |i| user_json(*i));
        Ok(SimResponse::typed(200, JSONAPI, doc))
    }
}

fn show_user(req: &SimRequest, id: &str) -> Reply {
    parse_include(req, &[])?;
    let idx = user_index(id).ok_or_else(|| not_found("user"))?;
    Ok(SimResponse::typed(
        200,
        JSONAPI,
        json!({ "data": user_json(idx) }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::header::{AUTHORIZATION, CONTENT_TYPE};
    use http::{HeaderMap, HeaderValue};

    const TOKEN: &str = "secret-token";

    fn sim() -> JsonApi {
        JsonApi::new(TOKEN)
    }

    fn headers(auth: Option<&str>, content_type: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        if let Some(c) = content_type {
            h.insert(CONTENT_TYPE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    fn raw(
        sim: &mut JsonApi,
        method: Method,
        path: &str,
        h: HeaderMap,
        body: &[u8],
    ) -> SimResponse {
        sim.handle(&SimRequest::new(
            method,
            path,
            h,
            Bytes::copy_from_slice(body),
        ))
    }

    /// A well-formed request: bearer token and the JSON:API content type.
    fn call(sim: &mut JsonApi, method: Method, path: &str, body: Option<Value>) -> SimResponse {
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        raw(
            sim,
            method,
            path,
            headers(Some(&format!("Bearer {TOKEN}")), Some(JSONAPI)),
            bytes.as_bytes(),
        )
    }

    fn get(sim: &mut JsonApi, path: &str) -> SimResponse {
        call(sim, Method::GET, path, None)
    }

    fn team_body(attributes: Value) -> Value {
        json!({ "data": { "type": "team", "attributes": attributes } })
    }

    fn create(sim: &mut JsonApi, name: &str, parent: &str) -> String {
        let r = call(
            sim,
            Method::POST,
            "/api/v1/teams",
            Some(team_body(json!({"name": name, "parent_team_id": parent}))),
        );
        assert_eq!(r.status, 201, "{:?}", r.json_body());
        r.json_body()["data"]["id"].as_str().unwrap().to_string()
    }

    fn add_member(sim: &mut JsonApi, team: &str, user: usize) -> String {
        let r = call(
            sim,
            Method::POST,
            "/api/v1/team_memberships",
            Some(membership_body(team, &jsonapi_user_id(user))),
        );
        assert_eq!(r.status, 201, "{:?}", r.json_body());
        location(&r).rsplit('/').next().unwrap().to_string()
    }

    fn membership_body(team: &str, user: &str) -> Value {
        json!({ "data": { "type": "team_membership", "attributes": {
            "team_id": team, "user_id": user, "role_ids": [ROLE_TEAM_MEMBER] } } })
    }

    fn header<'a>(r: &'a SimResponse, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .and_then(|(_, v)| v.to_str().ok())
    }

    fn location(r: &SimResponse) -> String {
        header(r, "location").expect("Location header").to_string()
    }

    /// Asserts a JSON:API error answer: status, the first error's status text, detail and source.
    fn assert_error(r: &SimResponse, status: u16, detail: &str, pointer: Option<&str>) {
        assert_eq!(r.status.as_u16(), status, "{:?}", r.json_body());
        assert_eq!(header(r, "content-type"), Some(JSONAPI));
        let body = r.json_body();
        let errors = body["errors"].as_array().expect("errors array");
        let e = errors
            .iter()
            .find(|e| e["detail"].as_str().is_some_and(|d| d.contains(detail)))
            .unwrap_or_else(|| panic!("no error with `{detail}` in {body}"));
        assert_eq!(e["status"], json!(status.to_string()));
        assert!(e["title"].as_str().is_some_and(|t| !t.is_empty()));
        match pointer {
            Some(p) => assert_eq!(e["source"]["pointer"], json!(p), "{body}"),
            None => assert!(
                e.get("source").is_none() || e["source"].get("pointer").is_none(),
                "{body}"
            ),
        }
    }

    fn names(r: &SimResponse) -> Vec<String> {
        r.json_body()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["attributes"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    fn is_rfc3339(s: &str) -> bool {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
            && s.ends_with('Z')
    }

    // ----- protocol checks ------------------------------------------------------------------

    #[test]
    fn kind_and_switches() {
        let mut s = sim();
        assert_eq!(s.kind(), "jsonapi");
        assert!(!s.set_switch("anything", true));
    }

    #[test]
    fn missing_or_wrong_token_is_401_before_content_type() {
        let mut s = sim();
        let r = raw(
            &mut s,
            Method::GET,
            "/api/v1/teams",
            headers(None, None),
            b"",
        );
        assert_error(&r, 401, "missing", None);
        assert_eq!(header(&r, "www-authenticate"), Some("Bearer"));
        let r = raw(
            &mut s,
            Method::GET,
            "/api/v1/teams",
            headers(Some("Bearer nope"), Some(JSONAPI)),
            b"",
        );
        assert_error(&r, 401, "invalid", None);
        let r = raw(
            &mut s,
            Method::GET,
            "/api/v1/teams",
            headers(Some(TOKEN), Some(JSONAPI)),
            b"",
        );
        assert_error(&r, 401, "missing", None);
        // 401 comes before 404 too.
        let r = raw(
            &mut s,
            Method::GET,
            "/nowhere",
            headers(None, Some(JSONAPI)),
            b"",
        );
        assert_eq!(r.status, 401);
    }

    #[test]
    fn content_type_is_required_on_every_request() {
        let mut s = sim();
        let auth = format!("Bearer {TOKEN}");
        for method in [Method::GET, Method::DELETE, Method::POST, Method::PUT] {
            let r = raw(
                &mut s,
                method,
                "/api/v1/teams",
                headers(Some(&auth), None),
                b"",
            );
            assert_error(&r, 415, "application/vnd.api+json", None);
        }
        for ct in [
            "application/json",
            "application/vnd.api+json; charset=utf-8",
            "application/vnd.api+json; ext=\"https://x\"",
        ] {
            let r = raw(
                &mut s,
                Method::GET,
                "/api/v1/teams",
                headers(Some(&auth), Some(ct)),
                b"",
            );
            assert_eq!(r.status, 415, "{ct}");
        }
        // 415 comes before 404.
        let r = raw(
            &mut s,
            Method::GET,
            "/nowhere",
            headers(Some(&auth), None),
            b"",
        );
        assert_eq!(r.status, 415);
        // The profile parameter is allowed, and the media type is case-insensitive.
        for ct in [
            "application/vnd.api+json; profile=\"https://example.com/p\"",
            "Application/VND.API+JSON",
        ] {
            let r = raw(
                &mut s,
                Method::GET,
                "/api/v1/teams",
                headers(Some(&auth), Some(ct)),
                b"",
            );
            assert_eq!(r.status, 200, "{ct}");
        }
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        let mut s = sim();
        for path in [
            "/",
            "/api",
            "/api/v1",
            "/api/v2/teams",
            "/api/v1/nope",
            "/api/v1/teams/",
            "/api/v1/teams/x/y",
            "/api/v1/teams/../x",
            "/api/v1/teams/..%2Fx",
            "/api/v1/teams/%F0%9F%A6%80",
            "/api/v1/users/%00",
            "/api/v1/team_memberships/nope",
        ] {
            assert_eq!(get(&mut s, path).status, 404, "{path}");
        }
        let r = get(&mut s, "/api/v1/nope");
        assert_error(&r, 404, "no route", None);
        let r = call(&mut s, Method::DELETE, "/api/v1/teams", None);
        assert_error(&r, 405, "allowed methods", None);
        assert_eq!(header(&r, "allow"), Some("GET, POST"));
        assert_eq!(
            call(&mut s, Method::POST, "/api/v1/users", None).status,
            405
        );
        assert_eq!(
            call(&mut s, Method::DELETE, "/api/v1/users/x", None).status,
            405
        );
        assert_eq!(
            call(
                &mut s,
                Method::POST,
                &format!("/api/v1/teams/{DEFAULT_TEAM_ID}"),
                None
            )
            .status,
            405
        );
        assert_eq!(
            call(&mut s, Method::DELETE, "/api/v1/team_memberships", None).status,
            405
        );
        assert_eq!(
            call(&mut s, Method::POST, "/api/v1/team_memberships/x", None).status,
            405
        );
    }

    // ----- teams: read ----------------------------------------------------------------------

    #[test]
    fn starts_with_the_default_team() {
        let mut s = sim();
        let r = get(&mut s, "/api/v1/teams");
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "content-type"), Some(JSONAPI));
        let body = r.json_body();
        assert_eq!(body["meta"]["total_count"], 1);
        let team = &body["data"][0];
        assert_eq!(team["id"], DEFAULT_TEAM_ID);
        assert_eq!(team["type"], "team");
        assert_eq!(team["attributes"]["name"], "Company");
        assert_eq!(team["attributes"]["account_id"], ACCOUNT_ID);
        assert_eq!(team["attributes"]["parent_team_id"], Value::Null);
        assert_eq!(team["attributes"]["discarded_at"], Value::Null);
        assert!(is_rfc3339(
            team["attributes"]["created_at"].as_str().unwrap()
        ));
        assert!(is_rfc3339(
            team["attributes"]["updated_at"].as_str().unwrap()
        ));
        assert_eq!(team["relationships"]["parent_team"]["data"], Value::Null);
        assert_eq!(team["relationships"]["team_memberships"]["data"], json!([]));
        assert_eq!(
            team["meta"]["permissions"]["actions"],
            json!({"edit": true, "delete": false})
        );
        assert_eq!(
            team["meta"]["permissions"]["team_memberships"],
            json!({"create": true, "edit": true, "delete": true})
        );
        assert!(body["links"]["self"]
            .as_str()
            .unwrap()
            .starts_with("/api/v1/teams?"));
        assert!(body["links"].get("next").is_none());
    }

    #[test]
    fn show_team_and_unknown_team() {
        let mut s = sim();
        let id = create(&mut s, "Ops", DEFAULT_TEAM_ID);
        let r = get(&mut s, &format!("/api/v1/teams/{id}"));
        assert_eq!(r.status, 200);
        let team = r.json_body()["data"].clone();
        assert_eq!(team["id"], json!(id));
        assert_eq!(team["attributes"]["parent_team_id"], DEFAULT_TEAM_ID);
        assert_eq!(
            team["relationships"]["parent_team"]["data"],
            json!({"type": "team", "id": DEFAULT_TEAM_ID})
        );
        assert_eq!(team["meta"]["permissions"]["actions"]["delete"], true);
        assert!(r.json_body().get("included").is_none());
        // Ids are UUIDs: upper case finds the same team.
        assert_eq!(
            get(&mut s, &format!("/api/v1/teams/{}", id.to_uppercase())).status,
            200
        );
        let r = get(&mut s, "/api/v1/teams/3aab0a84-8ed3-4ddf-8572-f1799bb60e0a");
        assert_error(&r, 404, "team not found", None);
    }

    #[test]
    fn show_team_includes_memberships_and_parent() {
        let mut s = sim();
        let id = create(&mut s, "Ops", DEFAULT_TEAM_ID);
        let m0 = add_member(&mut s, &id, 0);
        let m1 = add_member(&mut s, &id, 1);
        let r = get(
            &mut s,
            &format!("/api/v1/teams/{id}?include=team_memberships"),
        );
        assert_eq!(r.status, 200);
        let body = r.json_body();
        assert_eq!(
            body["data"]["relationships"]["team_memberships"]["data"],
            json!([{"type": "team_membership", "id": m0}, {"type": "team_membership", "id": m1}])
        );
        let included = body["included"].as_array().unwrap();
        assert_eq!(included.len(), 2);
        assert_eq!(included[0]["type"], "team_membership");
        assert_eq!(included[0]["id"], json!(m0));
        assert_eq!(
            included[0]["attributes"]["user_id"],
            json!(jsonapi_user_id(0))
        );
        assert_eq!(included[1]["attributes"]["team_id"], json!(id));
        let r = get(
            &mut s,
            &format!("/api/v1/teams/{id}?include=parent_team,team_memberships"),
        );
        let included = r.json_body()["included"].as_array().unwrap().clone();
        assert_eq!(included.len(), 3);
        assert_eq!(included[0]["id"], DEFAULT_TEAM_ID);
        let r = get(&mut s, &format!("/api/v1/teams/{id}?include=users"));
        assert_eq!(r.status, 400);
        assert_eq!(r.json_body()["errors"][0]["source"]["parameter"], "include");
    }

    #[test]
    fn list_include_does_not_repeat_primary_data() {
        let mut s = sim();
        let id = create(&mut s, "Ops", DEFAULT_TEAM_ID);
        add_member(&mut s, &id, 2);
        let r = get(&mut s, "/api/v1/teams?include=parent_team,team_memberships");
        assert_eq!(r.status, 200);
        let included = r.json_body()["included"].as_array().unwrap().clone();
        // The default team is primary data already; only the membership is included.
        assert_eq!(included.len(), 1);
        assert_eq!(included[0]["type"], "team_membership");
    }

    #[test]
    fn list_filters() {
        let mut s = sim();
        let ops = create(&mut s, "Ops Team", DEFAULT_TEAM_ID);
        create(&mut s, "Dev Team", DEFAULT_TEAM_ID);
        create(&mut s, "Night Ops", &ops);
        let cases: &[(&str, &[&str])] = &[
            ("filter[name]=eq:Company", &["Company"]),
            ("filter%5Bname%5D=eq%3ACompany", &["Company"]),
            ("filter[name]=eq:company", &[]),
            (
                "filter[name]=!eq:Company",
                &["Ops Team", "Dev Team", "Night Ops"],
            ),
            ("filter[name]=ct:OPS", &["Ops Team", "Night Ops"]),
            ("filter[name]=!ct:ops", &["Company", "Dev Team"]),
            ("filter[name]=pre:Ops", &["Ops Team"]),
            ("filter[name]=suf:Team", &["Ops Team", "Dev Team"]),
            ("filter[name]=ct:Team&filter[name]=pre:Dev", &["Dev Team"]),
            ("filter[name]=eq:a:b", &[]),
        ];
        for (query, expected) in cases {
            let r = get(&mut s, &format!("/api/v1/teams?{query}"));
            assert_eq!(r.status, 200, "{query}");
            assert_eq!(names(&r), *expected, "{query}");
            assert_eq!(
                r.json_body()["meta"]["total_count"],
                expected.len(),
                "{query}"
            );
        }
        let r = get(
            &mut s,
            &format!(
                "/api/v1/teams?filter[parent_team_id]=eq:{}",
                ops.to_uppercase()
            ),
        );
        assert_eq!(names(&r), ["Night Ops"]);
        let r = get(
            &mut s,
            &format!("/api/v1/teams?filter[parent_team_id]=eq:{DEFAULT_TEAM_ID}"),
        );
        assert_eq!(names(&r), ["Ops Team", "Dev Team"]);
    }

    #[test]
    fn bad_filters_are_400() {
        let mut s = sim();
        for (query, parameter) in [
            ("filter[name]=gt:a", "filter[name]"),
            ("filter[name]=like:a", "filter[name]"),
            ("filter[name]=Company", "filter[name]"),
            ("filter[color]=eq:red", "filter[color]"),
            ("filter[users][name]=ct:Peter", "filter[users][name]"),
            ("filter=x", "filter"),
            (
                "filter[discarded_at_blank]=yes",
                "filter[discarded_at_blank]",
            ),
            ("sort=name", "sort"),
        ] {
            let r = get(&mut s, &format!("/api/v1/teams?{query}"));
            assert_eq!(r.status, 400, "{query}");
            assert_eq!(
                r.json_body()["errors"][0]["source"]["parameter"],
                json!(parameter),
                "{query}"
            );
            assert_eq!(r.json_body()["errors"][0]["status"], "400");
        }
    }

    #[test]
    fn pagination() {
        let mut s = sim();
        for i in 0..4 {
            create(&mut s, &format!("T{i}"), DEFAULT_TEAM_ID);
        }
        // Brackets percent-encoded or raw: both work.
        for query in [
            "page%5Bsize%5D=2",
            "page[size]=2",
            "page[size]=2&page[number]=1",
        ] {
            let r = get(&mut s, &format!("/api/v1/teams?{query}"));
            assert_eq!(r.status, 200, "{query}");
            assert_eq!(names(&r), ["Company", "T0"], "{query}");
            let body = r.json_body();
            assert_eq!(body["meta"]["total_count"], 5);
            assert_eq!(
                body["links"]["self"],
                "/api/v1/teams?page%5Bnumber%5D=1&page%5Bsize%5D=2"
            );
            assert_eq!(
                body["links"]["next"],
                "/api/v1/teams?page%5Bnumber%5D=2&page%5Bsize%5D=2"
            );
        }
        // Following next works, and the last page has no next.
        let next = get(&mut s, "/api/v1/teams?page[size]=2").json_body()["links"]["next"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(names(&get(&mut s, &next)), ["T1", "T2"]);
        let r = get(&mut s, "/api/v1/teams?page[size]=2&page[number]=3");
        assert_eq!(names(&r), ["T3"]);
        assert!(r.json_body()["links"].get("next").is_none());
        let r = get(&mut s, "/api/v1/teams?page[size]=2&page[number]=99");
        assert_eq!(r.status, 200);
        assert_eq!(r.json_body()["data"], json!([]));
        assert_eq!(r.json_body()["meta"]["total_count"], 5);
        // Filters are kept in the links.
        let r = get(&mut s, "/api/v1/teams?filter[name]=pre:T&page[size]=1");
        assert_eq!(r.json_body()["meta"]["total_count"], 4);
        assert_eq!(
            r.json_body()["links"]["next"],
            "/api/v1/teams?filter%5Bname%5D=pre%3AT&page%5Bnumber%5D=2&page%5Bsize%5D=1"
        );
        // Default size 25, maximum 100.
        for i in 4..30 {
            create(&mut s, &format!("T{i}"), DEFAULT_TEAM_ID);
        }
        assert_eq!(names(&get(&mut s, "/api/v1/teams")).len(), 25);
        assert_eq!(
            names(&get(&mut s, "/api/v1/teams?page[size]=100")).len(),
            31
        );
        for query in [
            "page[size]=0",
            "page[size]=101",
            "page[size]=abc",
            "page[size]=-1",
            "page[size]=",
            "page[number]=0",
            "page[number]=x",
            "page[number]=99999999999999999999999",
            "page[offset]=1",
            "page=2",
        ] {
            let r = get(&mut s, &format!("/api/v1/teams?{query}"));
            assert_eq!(r.status, 400, "{query}");
            assert!(r.json_body()["errors"][0]["source"]["parameter"]
                .as_str()
                .unwrap()
                .starts_with("page"));
        }
        // A huge but valid page number is simply empty.
        let r = get(
            &mut s,
            &format!("/api/v1/teams?page[number]={}", usize::MAX),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.json_body()["data"], json!([]));
    }

    // ----- teams: create --------------------------------------------------------------------

    #[test]
    fn create_team_answers_201_with_location() {
        let mut s = sim();
        let r = call(
            &mut s,
            Method::POST,
            "/api/v1/teams",
            Some(team_body(
                json!({"name": "Ops", "parent_team_id": DEFAULT_TEAM_ID}),
            )),
        );
        assert_eq!(r.status, 201);
        assert_eq!(header(&r, "content-type"), Some(JSONAPI));
        let team = r.json_body()["data"].clone();
        let id = team["id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok());
        assert_eq!(location(&r), format!("/api/v1/teams/{id}"));
        assert_eq!(team["type"], "team");
        assert_eq!(team["attributes"]["name"], "Ops");
        assert_eq!(team["attributes"]["account_id"], ACCOUNT_ID);
        assert_eq!(team["attributes"]["discarded_at"], Value::Null);
        assert!(is_rfc3339(
            team["attributes"]["created_at"].as_str().unwrap()
        ));
        assert_eq!(
            get(&mut s, "/api/v1/teams").json_body()["meta"]["total_count"],
            2
        );
    }

    #[test]
    fn create_team_with_odd_unicode_round_trips() {
        let mut s = sim();
        for name in [
            "Ekström Ó Fiach",
            "🦀 team",
            "\u{202e}evil",
            "a\u{0}b",
            "../x",
            "名前",
        ] {
            let id = create(&mut s, name, DEFAULT_TEAM_ID);
            let r = get(&mut s, &format!("/api/v1/teams/{id}"));
            assert_eq!(r.json_body()["data"]["attributes"]["name"], json!(name));
        }
    }

    #[test]
    fn create_team_validation() {
        let mut s = sim();
        let post = |s: &mut JsonApi, attrs: Value| {
            call(s, Method::POST, "/api/v1/teams", Some(team_body(attrs)))
        };
        let p = DEFAULT_TEAM_ID;
        assert_error(
            &post(&mut s, json!({"parent_team_id": p})),
            422,
            "can't be blank",
            Some("/data/attributes/name"),
        );
        assert_error(
            &post(&mut s, json!({"name": "  ", "parent_team_id": p})),
            422,
            "can't be blank",
            Some("/data/attributes/name"),
        );
        assert_error(
            &post(&mut s, json!({"name": null, "parent_team_id": p})),
            422,
            "can't be blank",
            Some("/data/attributes/name"),
        );
        assert_error(
            &post(&mut s, json!({"name": 7, "parent_team_id": p})),
            422,
            "must be a string",
            Some("/data/attributes/name"),
        );
        assert_error(
            &post(
                &mut s,
                json!({"name": "x".repeat(256), "parent_team_id": p}),
            ),
            422,
            "too long",
            Some("/data/attributes/name"),
        );
        assert_error(
            &post(&mut s, json!({"name": "Company", "parent_team_id": p})),
            422,
            "has already been taken",
            Some("/data/attributes/name"),
        );
        assert_error(
            &post(&mut s, json!({"name": "Ops"})),
            422,
            "must be set on all non-default teams",
            Some("/data/attributes/parent_team_id"),
        );
        assert_error(
            &post(&mut s, json!({"name": "Ops", "parent_team_id": null})),
            422,
            "must be set on all non-default teams",
            Some("/data/attributes/parent_team_id"),
        );
        assert_error(
            &post(
                &mut s,
                json!({"name": "Ops", "parent_team_id": "3aab0a84-8ed3-4ddf-8572-f1799bb60e0a"}),
            ),
            422,
            "does not exist",
            Some("/data/attributes/parent_team_id"),
        );
        assert_error(
            &post(&mut s, json!({"name": "Ops", "parent_team_id": 12})),
            422,
            "does not exist",
            Some("/data/attributes/parent_team_id"),
        );
        assert_error(
            &post(
                &mut s,
                json!({"name": "Ops", "parent_team_id": p, "account_id": ACCOUNT_ID}),
            ),
            422,
            "cannot be set",
            Some("/data/attributes/account_id"),
        );
        assert_error(
            &post(
                &mut s,
                json!({"name": "Ops", "parent_team_id": p, "discarded_at": null}),
            ),
            422,
            "cannot be set",
            Some("/data/attributes/discarded_at"),
        );
        assert_error(
            &post(
                &mut s,
                json!({"name": "Ops", "parent_team_id": p, "description": "x"}),
            ),
            422,
            "is not a known attribute",
            Some("/data/attributes/description"),
        );
        assert_error(
            &post(
                &mut s,
                json!({"name": "Ops", "parent_team_id": p, "a/b~c": 1}),
            ),
            422,
            "is not a known attribute",
            Some("/data/attributes/a~1b~0c"),
        );
        // Every fault is reported at once.
        let r = post(&mut s, json!({}));
        assert_eq!(r.status, 422);
        assert_eq!(r.json_body()["errors"].as_array().unwrap().len(), 2);
        // Nothing was created.
        assert_eq!(
            get(&mut s, "/api/v1/teams").json_body()["meta"]["total_count"],
            1
        );
    }

    #[test]
    fn create_team_with_discarded_parent_or_name() {
        let mut s = sim();
        let old = create(&mut s, "Old", DEFAULT_TEAM_ID);
        assert_eq!(
            call(
                &mut s,
                Method::DELETE,
                &format!("/api/v1/teams/{old}"),
                None
            )
            .status,
            200
        );
        let r = call(
            &mut s,
            Method::POST,
            "/api/v1/teams",
            Some(team_body(json!({"name": "Kid", "parent_team_id": old}))),
        );
        assert_error(
            &r,
            422,
            "does not exist",
            Some("/data/attributes/parent_team_id"),
        );
        // A discarded team's name is free again.
        create(&mut s, "Old", DEFAULT_TEAM_ID);
    }

    #[test]
    fn create_team_body_errors() {
        let mut s = sim();
        let post = |s: &mut JsonApi, body: &[u8]| {
            raw(
                s,
                Method::POST,
                "/api/v1/teams",
                headers(Some(&format!("Bearer {TOKEN}")), Some(JSONAPI)),
                body,
            )
        };
        for body in [
            &b""[..],
            b"not json",
            b"[]",
            b"42",
            b"null",
            b"{}",
            b"{\"data\":null}",
            b"{\"data\":[]}",
            b"{\"name\":\"Ops\"}",
            b"{\"data\":{\"attributes\":{\"name\":\"x\"}}}",
            b"{\"data\":{\"type\":5}}",
            b"{\"data\":{\"type\":\"team\",\"attributes\":[]}}",
            b"{\"data\":{\"type\":\"team\",\"id\":5}}",
            b"\xff\xfe\x00",
            b"{\"data\":{\"type\":\"team\"",
            &[b'['; 4096][..],
        ] {
            let r = post(&mut s, body);
            assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(body));
            assert_eq!(r.json_body()["errors"][0]["status"], "400");
        }
        let r = call(
            &mut s,
            Method::POST,
            "/api/v1/teams",
            Some(json!({"data": {"type": "teams", "attributes": {"name": "x"}}})),
        );
        assert_error(&r, 409, "does not match", Some("/data/type"));
        let r = call(
            &mut s,
            Method::POST,
            "/api/v1/teams",
            Some(
                json!({"data": {"type": "team", "id": "abc", "attributes": {"name": "x", "parent_team_id": DEFAULT_TEAM_ID}}}),
            ),
        );
        assert_error(&r, 403, "client-generated", Some("/data/id"));
    }

    #[test]
    fn team_limit_answers_500() {
        let mut s = sim();
        s.team_limit = 3;
        create(&mut s, "A", DEFAULT_TEAM_ID);
        create(&mut s, "B", DEFAULT_TEAM_ID);
        let r = call(
            &mut s,
            Method::POST,
            "/api/v1/teams",
            Some(team_body(
                json!({"name": "C", "parent_team_id": DEFAULT_TEAM_ID}),
            )),
        );
        assert_error(&r, 500, "at most 3 teams", None);
        assert_eq!(MAX_TEAMS, 100_000);
        assert_eq!(JsonApi::new("x").team_limit, MAX_TEAMS);
    }

    // ----- teams: update --------------------------------------------------------------------

    #[test]
    fn update_team_with_put_and_patch() {
        let mut s = sim();
        let a = create(&mut s, "A", DEFAULT_TEAM_ID);
        let b = create(&mut s, "B", DEFAULT_TEAM_ID);
        let r = call(
            &mut s,
            Method::PUT,
            &format!("/api/v1/teams/{a}"),
            Some(team_body(json!({"name": "A2"}))),
        );
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "content-type"), Some(JSONAPI));
        let team = r.json_body()["data"].clone();
        assert_eq!(team["attributes"]["name"], "A2");
        assert_eq!(team["attributes"]["parent_team_id"], DEFAULT_TEAM_ID);
        // The old name is free, the new one taken.
        create(&mut s, "A", DEFAULT_TEAM_ID);
        let r = call(
            &mut s,
            Method::PATCH,
            &format!("/api/v1/teams/{b}"),
            Some(json!({"data": {"type": "team", "id": b, "attributes": {"parent_team_id": a}}})),
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json_body()["data"]["attributes"]["parent_team_id"],
            json!(a)
        );
        assert_eq!(
            r.json_body()["data"]["relationships"]["parent_team"]["data"]["id"],
            json!(a)
        );
        assert_eq!(r.json_body()["data"]["attributes"]["name"], "B");
        // Empty attributes change nothing; the own name is not "taken".
        let r = call(
            &mut s,
            Method::PUT,
            &format!("/api/v1/teams/{b}"),
            Some(team_body(json!({}))),
        );
        assert_eq!(r.status, 200);
        let r = call(
            &mut s,
            Method::PUT,
            &format!("/api/v1/teams/{b}"),
            Some(team_body(json!({"name": "B"}))),
        );
        assert_eq!(r.status, 200);
        // Persisted.
        let r = get(&mut s, &format!("/api/v1/teams/{b}"));
        assert_eq!(
            r.json_body()["data"]["attributes"]["parent_team_id"],
            json!(a)
        );
    }

    #[test]
    fn update_team_validation() {
        let mut s = sim();
        let a = create(&mut s, "A", DEFAULT_TEAM_ID);
        let b = create(&mut s, "B", &a);
        let c = create(&mut s, "C", &b);
        let put = |s: &mut JsonApi, id: &str, attrs: Value| {
            call(
                s,
                Method::PUT,
                &format!("/api/v1/teams/{id}"),
                Some(team_body(attrs)),
            )
        };
        assert_error(
            &put(&mut s, &a, json!({"name": "B"})),
            422,
            "has already been taken",
            Some("/data/attributes/name"),
        );
        assert_error(
            &put(&mut s, &a, json!({"name": ""})),
            422,
            "can't be blank",
            Some("/data/attributes/name"),
        );
        assert_error(
            &put(&mut s, &a, json!({"parent_team_id": a})),
            422,
            "a team cannot be its own parent team",
            Some("/data/attributes/parent_team_id"),
        );
        assert_error(
            &put(&mut s, &a, json!({"parent_team_id": c})),
            422,
            "a team cannot be its own parent team",
            Some("/data/attributes/parent_team_id"),
        );
        assert_error(
            &put(&mut s, &a, json!({"parent_team_id": null})),
            422,
            "must be set on all non-default teams",
            Some("/data/attributes/parent_team_id"),
        );
        assert_error(
            &put(&mut s, &a, json!({"parent_team_id": "nope"})),
            422,
            "does not exist",
            Some("/data/attributes/parent_team_id"),
        );
        assert_error(
            &put(&mut s, &a, json!({"account_id": "x"})),
            422,
            "cannot be set",
            Some("/data/attributes/account_id"),
        );
        assert_error(
            &put(&mut s, &a, json!({"discarded_at": "2024-01-01T00:00:00Z"})),
            422,
            "cannot be set",
            Some("/data/attributes/discarded_at"),
        );
        // Moving C under A is fine (not circular).
        assert_eq!(put(&mut s, &c, json!({"parent_team_id": a})).status, 200);
        let r = call(
            &mut s,
            Method::PUT,
            &format!("/api/v1/teams/{a}"),
            Some(json!({"data": {"type": "team", "id": b, "attributes": {}}})),
        );
        assert_error(&r, 409, "does not match the id", Some("/data/id"));
        let r = call(
            &mut s,
            Method::PUT,
            &format!("/api/v1/teams/{a}"),
            Some(json!({"data": {"type": "user", "attributes": {}}})),
        );
        assert_eq!(r.status, 409);
        let r = raw(
            &mut s,
            Method::PUT,
            &format!("/api/v1/teams/{a}"),
            headers(Some(&format!("Bearer {TOKEN}")), Some(JSONAPI)),
            b"garbage",
        );
        assert_eq!(r.status, 400);
        assert_error(
            &put(
                &mut s,
                "3aab0a84-8ed3-4ddf-8572-f1799bb60e0a",
                json!({"name": "Z"}),
            ),
            404,
            "team not found",
            None,
        );
        // Nothing above changed A.
        let r = get(&mut s, &format!("/api/v1/teams/{a}"));
        assert_eq!(r.json_body()["data"]["attributes"]["name"], "A");
        assert_eq!(
            r.json_body()["data"]["attributes"]["parent_team_id"],
            DEFAULT_TEAM_ID
        );
    }

    #[test]
    fn default_team_can_be_renamed_but_gets_no_parent() {
        let mut s = sim();
        let a = create(&mut s, "A", DEFAULT_TEAM_ID);
        let path = format!("/api/v1/teams/{DEFAULT_TEAM_ID}");
        let r = call(
            &mut s,
            Method::PUT,
            &path,
            Some(team_body(json!({"parent_team_id": a}))),
        );
        assert_error(
            &r,
            422,
            "cannot be set on the default team",
            Some("/data/attributes/parent_team_id"),
        );
        let r = call(
            &mut s,
            Method::PUT,
            &path,
            Some(team_body(json!({"name": "Acme", "parent_team_id": null}))),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.json_body()["data"]["attributes"]["name"], "Acme");
        assert_eq!(
            r.json_body()["data"]["attributes"]["parent_team_id"],
            Value::Null
        );
    }

    #[test]
    fn discarded_team_cannot_be_updated() {
        let mut s = sim();
        let a = create(&mut s, "A", DEFAULT_TEAM_ID);
        call(&mut s, Method::DELETE, &format!("/api/v1/teams/{a}"), None);
        let r = call(
            &mut s,
            Method::PUT,
            &format!("/api/v1/teams/{a}"),
            Some(team_body(json!({"name": "A2"}))),
        );
        assert_error(&r, 404, "team not found", None);
        let b = create(&mut s, "B", DEFAULT_TEAM_ID);
        let r = call(
            &mut s,
            Method::PUT,
            &format!("/api/v1/teams/{b}"),
            Some(team_body(json!({"parent_team_id": a}))),
        );
        assert_error(
            &r,
            422,
            "does not exist",
            Some("/data/attributes/parent_team_id"),
        );
    }

    // ----- teams: delete --------------------------------------------------------------------

    #[test]
    fn delete_is_a_soft_delete_answering_the_team() {
        let mut s = sim();
        let a = create(&mut s, "A", DEFAULT_TEAM_ID);
        let r = call(&mut s, Method::DELETE, &format!("/api/v1/teams/{a}"), None);
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "content-type"), Some(JSONAPI));
        let team = r.json_body()["data"].clone();
        assert_eq!(team["id"], json!(a));
        let discarded = team["attributes"]["discarded_at"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(is_rfc3339(&discarded), "{discarded}");
        // Still shown and listed, unless discarded_at_blank.
        let r = get(&mut s, &format!("/api/v1/teams/{a}"));
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json_body()["data"]["attributes"]["discarded_at"],
            json!(discarded)
        );
        assert_eq!(names(&get(&mut s, "/api/v1/teams")), ["Company", "A"]);
        assert_eq!(
            names(&get(&mut s, "/api/v1/teams?filter[discarded_at_blank]=1")),
            ["Company"]
        );
        assert_eq!(
            names(&get(
                &mut s,
                "/api/v1/teams?filter%5Bdiscarded_at_blank%5D=1"
            )),
            ["Company"]
        );
        assert_eq!(
            names(&get(&mut s, "/api/v1/teams?filter[discarded_at_blank]=0")),
            ["Company", "A"]
        );
        let r = get(
            &mut s,
            "/api/v1/teams?filter[discarded_at_blank]=1&filter[name]=eq:A",
        );
        assert_eq!(r.json_body()["meta"]["total_count"], 0);
        // Deleting again, or an unknown team, is 404.
        assert_error(
            &call(&mut s, Method::DELETE, &format!("/api/v1/teams/{a}"), None),
            404,
            "team not found",
            None,
        );
        assert_error(
            &call(&mut s, Method::DELETE, "/api/v1/teams/nope", None),
            404,
            "team not found",
            None,
        );
    }

    #[test]
    fn delete_refuses_default_team_and_parents() {
        let mut s = sim();
        let r = call(
            &mut s,
            Method::DELETE,
            &format!("/api/v1/teams/{DEFAULT_TEAM_ID}"),
            None,
        );
        assert_error(&r, 422, "cannot delete the default team", None);
        let a = create(&mut s, "A", DEFAULT_TEAM_ID);
        let b = create(&mut s, "B", &a);
        let r = call(&mut s, Method::DELETE, &format!("/api/v1/teams/{a}"), None);
        assert_error(&r, 422, "child teams", None);
        assert_eq!(
            call(&mut s, Method::DELETE, &format!("/api/v1/teams/{b}"), None).status,
            200
        );
        // A discarded child no longer blocks its parent.
        assert_eq!(
            call(&mut s, Method::DELETE, &format!("/api/v1/teams/{a}"), None).status,
            200
        );
        assert_eq!(
            names(&get(&mut s, "/api/v1/teams?filter[discarded_at_blank]=1")),
            ["Company"]
        );
    }

    // ----- memberships ----------------------------------------------------------------------

    #[test]
    fn create_membership_answers_the_user() {
        let mut s = sim();
        let team = create(&mut s, "Ops", DEFAULT_TEAM_ID);
        let body = json!({ "data": { "type": "team_membership", "attributes": {
            "team_id": team, "user_id": jsonapi_user_id(4), "role_ids": [ROLE_TEAM_ADMIN, ROLE_TEAM_MEMBER, ROLE_TEAM_ADMIN] } } });
        let r = call(&mut s, Method::POST, "/api/v1/team_memberships", Some(body));
        assert_eq!(r.status, 201);
        assert_eq!(header(&r, "content-type"), Some(JSONAPI));
        assert_eq!(
            r.json_body(),
            json!({"data": [{"id": jsonapi_user_id(4), "type": "user", "attributes": {
                "name": "Eve Ekström", "email": "eve@example.com", "username": "eve", "created_at": EPOCH}}]})
        );
        let loc = location(&r);
        assert!(loc.starts_with("/api/v1/team_memberships/"));
        let r = get(&mut s, &loc);
        assert_eq!(r.status, 200);
        let m = r.json_body()["data"].clone();
        assert_eq!(m["type"], "team_membership");
        assert_eq!(m["attributes"]["team_id"], json!(team));
        assert_eq!(m["attributes"]["user_id"], json!(jsonapi_user_id(4)));
        assert_eq!(
            m["attributes"]["role_ids"],
            json!([ROLE_TEAM_ADMIN, ROLE_TEAM_MEMBER])
        );
        assert!(is_rfc3339(m["attributes"]["created_at"].as_str().unwrap()));
        // Empty role_ids are fine.
        let body = json!({ "data": { "type": "team_membership", "attributes": {
            "team_id": team, "user_id": jsonapi_user_id(0), "role_ids": [] } } });
        assert_eq!(
            call(&mut s, Method::POST, "/api/v1/team_memberships", Some(body)).status,
            201
        );
    }

    #[test]
    fn create_membership_validation() {
        let mut s = sim();
        let team = create(&mut s, "Ops", DEFAULT_TEAM_ID);
        let gone = create(&mut s, "Gone", DEFAULT_TEAM_ID);
        call(
            &mut s,
            Method::DELETE,
            &format!("/api/v1/teams/{gone}"),
            None,
        );
        let user = jsonapi_user_id(1);
        let post = |s: &mut JsonApi, attrs: Value| {
            call(
                s,
                Method::POST,
                "/api/v1/team_memberships",
                Some(json!({"data": {"type": "team_membership", "attributes": attrs}})),
            )
        };
        let ptr = |f: &str| format!("/data/attributes/{f}");
        let cases = [
            (
                json!({"user_id": user, "role_ids": []}),
                "must be provided",
                ptr("team_id"),
            ),
            (
                json!({"team_id": null, "user_id": user, "role_ids": []}),
                "must be provided",
                ptr("team_id"),
            ),
            (
                json!({"team_id": team, "role_ids": []}),
                "must be provided",
                ptr("user_id"),
            ),
            (
                json!({"team_id": team, "user_id": user}),
                "must be present",
                ptr("role_ids"),
            ),
            (
                json!({"team_id": team, "user_id": user, "role_ids": null}),
                "must be present",
                ptr("role_ids"),
            ),
            (
                json!({"team_id": team, "user_id": user, "role_ids": "admin"}),
                "must be an array",
                ptr("role_ids"),
            ),
            (
                json!({"team_id": team, "user_id": user, "role_ids": ["3aab0a84-8ed3-4ddf-8572-f1799bb60e0a"]}),
                "does not exist",
                ptr("role_ids"),
            ),
            (
                json!({"team_id": team, "user_id": user, "role_ids": [7]}),
                "does not exist",
                ptr("role_ids"),
            ),
            (
                json!({"team_id": "nope", "user_id": user, "role_ids": []}),
                "does not exist",
                ptr("team_id"),
            ),
            (
                json!({"team_id": 3, "user_id": user, "role_ids": []}),
                "does not exist",
                ptr("team_id"),
            ),
            (
                json!({"team_id": gone, "user_id": user, "role_ids": []}),
                "does not exist",
                ptr("team_id"),
            ),
            (
                json!({"team_id": team, "user_id": "../x", "role_ids": []}),
                "does not exist",
                ptr("user_id"),
            ),
            (
                json!({"team_id": team, "user_id": user, "role_ids": [], "admin": true}),
                "is not a known attribute",
                ptr("admin"),
            ),
            (
                json!({"team_id": team, "user_id": user, "role_ids": [], "created_at": "x"}),
                "cannot be set",
                ptr("created_at"),
            ),
        ];
        for (attrs, detail, pointer) in cases {
            assert_error(&post(&mut s, attrs.clone()), 422, detail, Some(&pointer));
        }
        assert_eq!(
            post(&mut s, json!({})).json_body()["errors"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            post(
                &mut s,
                json!({"team_id": team, "user_id": user, "role_ids": []})
            )
            .status,
            201
        );
        let r = post(
            &mut s,
            json!({"team_id": team, "user_id": user.to_uppercase(), "role_ids": []}),
        );
        assert_error(
            &r,
            422,
            "has already been taken",
            Some("/data/attributes/user_id"),
        );
        let r = call(
            &mut s,
            Method::POST,
            "/api/v1/team_memberships",
            Some(team_body(json!({"team_id": team}))),
        );
        assert_error(&r, 409, "does not match", Some("/data/type"));
        let r = call(
            &mut s,
            Method::POST,
            "/api/v1/team_memberships",
            Some(json!({"data": {"type": "team_membership", "id": "x", "attributes": {}}})),
        );
        assert_eq!(r.status, 403);
        let r = raw(
            &mut s,
            Method::POST,
            "/api/v1/team_memberships",
            headers(Some(&format!("Bearer {TOKEN}")), Some(JSONAPI)),
            b"[1,2]",
        );
        assert_eq!(r.status, 400);
        // Only the one valid membership exists.
        assert_eq!(
            get(&mut s, "/api/v1/team_memberships").json_body()["meta"]["total_count"],
            1
        );
    }

    #[test]
    fn list_memberships_with_filters_and_pages() {
        let mut s = sim();
        let a = create(&mut s, "A", DEFAULT_TEAM_ID);
        let b = create(&mut s, "B", DEFAULT_TEAM_ID);
        let ma0 = add_member(&mut s, &a, 0);
        let ma1 = add_member(&mut s, &a, 1);
        let mb0 = add_member(&mut s, &b, 0);
        let ids = |r: &SimResponse| -> Vec<String> {
            r.json_body()["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect()
        };
        let r = get(&mut s, "/api/v1/team_memberships");
        assert_eq!(r.status, 200);
        assert_eq!(ids(&r), [ma0.as_str(), ma1.as_str(), mb0.as_str()]);
        assert_eq!(r.json_body()["meta"]["total_count"], 3);
        let r = get(
            &mut s,
            &format!("/api/v1/team_memberships?filter[team_id]=eq:{a}"),
        );
        assert_eq!(ids(&r), [ma0.as_str(), ma1.as_str()]);
        let r = get(
            &mut s,
            &format!(
                "/api/v1/team_memberships?filter[user_id]=eq:{}",
                jsonapi_user_id(0)
            ),
        );
        assert_eq!(ids(&r), [ma0.as_str(), mb0.as_str()]);
        let r = get(
            &mut s,
            &format!(
                "/api/v1/team_memberships?filter%5Bteam_id%5D=eq:{}&filter%5Buser_id%5D=eq:{}",
                b.to_uppercase(),
                jsonapi_user_id(0)
            ),
        );
        assert_eq!(ids(&r), [mb0.as_str()]);
        assert_eq!(r.json_body()["meta"]["total_count"], 1);
        let r = get(
            &mut s,
            "/api/v1/team_memberships?page[size]=2&page[number]=2",
        );
        assert_eq!(ids(&r), [mb0.as_str()]);
        assert!(r.json_body()["links"].get("next").is_none());
        let r = get(&mut s, "/api/v1/team_memberships?page[size]=2");
        assert!(r.json_body()["links"]["next"].is_string());
        // Memberships of a discarded team are kept (and listed).
        call(&mut s, Method::DELETE, &format!("/api/v1/teams/{b}"), None);
        let r = get(
            &mut s,
            &format!("/api/v1/team_memberships?filter[team_id]=eq:{b}"),
        );
        assert_eq!(ids(&r), [mb0.as_str()]);
        for query in [
            "filter[role_ids]=eq:x",
            "filter[team_id]=gte:1",
            "page[size]=500",
            "include=team",
            "sort=created_at",
        ] {
            assert_eq!(
                get(&mut s, &format!("/api/v1/team_memberships?{query}")).status,
                400,
                "{query}"
            );
        }
    }

    #[test]
    fn update_membership_roles() {
        let mut s = sim();
        let a = create(&mut s, "A", DEFAULT_TEAM_ID);
        let m = add_member(&mut s, &a, 2);
        let path = format!("/api/v1/team_memberships/{m}");
        let body = |attrs: Value| json!({"data": {"type": "team_membership", "attributes": attrs}});
        let r = call(
            &mut s,
            Method::PUT,
            &path,
            Some(body(json!({"role_ids": [ROLE_TEAM_ADMIN]}))),
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json_body()["data"]["attributes"]["role_ids"],
            json!([ROLE_TEAM_ADMIN])
        );
        let r = call(
            &mut s,
            Method::PATCH,
            &path,
            Some(
                json!({"data": {"type": "team_membership", "id": m, "attributes": {"role_ids": []}}}),
            ),
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            get(&mut s, &path).json_body()["data"]["attributes"]["role_ids"],
            json!([])
        );
        assert_error(
            &call(
                &mut s,
                Method::PUT,
                &path,
                Some(body(json!({"role_ids": ["x"]}))),
            ),
            422,
            "does not exist",
            Some("/data/attributes/role_ids"),
        );
        assert_error(
            &call(
                &mut s,
                Method::PUT,
                &path,
                Some(body(json!({"role_ids": null}))),
            ),
            422,
            "must be present",
            Some("/data/attributes/role_ids"),
        );
        assert_error(
            &call(
                &mut s,
                Method::PUT,
                &path,
                Some(body(json!({"team_id": a}))),
            ),
            422,
            "cannot be changed",
            Some("/data/attributes/team_id"),
        );
        assert_error(
            &call(
                &mut s,
                Method::PUT,
                &path,
                Some(body(json!({"user_id": "x"}))),
            ),
            422,
            "cannot be changed",
            Some("/data/attributes/user_id"),
        );
        assert_error(
            &call(
                &mut s,
                Method::PUT,
                &path,
                Some(body(json!({"colour": "x"}))),
            ),
            422,
            "is not a known attribute",
            Some("/data/attributes/colour"),
        );
        assert_eq!(
            call(&mut s, Method::PUT, &path, Some(team_body(json!({})))).status,
            409
        );
        let r = call(
            &mut s,
            Method::PUT,
            &path,
            Some(json!({"data": {"type": "team_membership", "id": "other", "attributes": {}}})),
        );
        assert_eq!(r.status, 409);
        assert_eq!(
            call(&mut s, Method::PUT, &path, Some(json!({"data": 1}))).status,
            400
        );
        assert_error(
            &call(
                &mut s,
                Method::PUT,
                "/api/v1/team_memberships/nope",
                Some(body(json!({"role_ids": []}))),
            ),
            404,
            "team membership not found",
            None,
        );
    }

    #[test]
    fn delete_membership_is_204_and_final() {
        let mut s = sim();
        let a = create(&mut s, "A", DEFAULT_TEAM_ID);
        let m0 = add_member(&mut s, &a, 0);
        let m1 = add_member(&mut s, &a, 1);
        let r = call(
            &mut s,
            Method::DELETE,
            &format!("/api/v1/team_memberships/{m0}"),
            None,
        );
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());
        assert_error(
            &get(&mut s, &format!("/api/v1/team_memberships/{m0}")),
            404,
            "team membership not found",
            None,
        );
        assert_error(
            &call(
                &mut s,
                Method::DELETE,
                &format!("/api/v1/team_memberships/{m0}"),
                None,
            ),
            404,
            "not found",
            None,
        );
        let team = get(&mut s, &format!("/api/v1/teams/{a}")).json_body();
        assert_eq!(
            team["data"]["relationships"]["team_memberships"]["data"],
            json!([{"type": "team_membership", "id": m1}])
        );
        // The person can join again.
        add_member(&mut s, &a, 0);
        assert_eq!(
            get(&mut s, "/api/v1/team_memberships").json_body()["meta"]["total_count"],
            2
        );
    }

    // ----- users ----------------------------------------------------------------------------

    #[test]
    fn users_list_show_and_filters() {
        let mut s = sim();
        let r = get(&mut s, "/api/v1/users");
        assert_eq!(r.status, 200);
        let body = r.json_body();
        assert_eq!(body["meta"]["total_count"], PEOPLE.len());
        assert_eq!(
            body["data"][0],
            json!({"id": jsonapi_user_id(0), "type": "user", "attributes": {
                "name": "Ada Admin", "email": "ada@example.com", "username": "ada", "created_at": EPOCH}})
        );
        let r = get(&mut s, "/api/v1/users?filter[email]=eq:BOB@Example.com");
        assert_eq!(names(&r), ["Bob Builder"]);
        let r = get(&mut s, "/api/v1/users?filter%5Bname%5D=ct%3Ao");
        assert_eq!(names(&r), ["Bob Builder", "Carol Chen"]);
        let r = get(&mut s, "/api/v1/users?filter[name]=ct:ó");
        assert_eq!(names(&r), ["Frank Ó Fiach"]);
        let r = get(&mut s, "/api/v1/users?filter[username]=eq:dan");
        assert_eq!(names(&r), ["Dan Dietrich"]);
        let r = get(&mut s, "/api/v1/users?page[size]=4&page[number]=2");
        assert_eq!(names(&r), ["Eve Ekström", "Frank Ó Fiach"]);
        let r = get(
            &mut s,
            &format!(
                "/api/v1/users?filter[id]=in:{},{},nobody",
                jsonapi_user_id(4),
                jsonapi_user_id(1).to_uppercase()
            ),
        );
        assert_eq!(names(&r), ["Bob Builder", "Eve Ekström"]);
        let r = get(
            &mut s,
            "/api/v1/users?filter[email]=!in:ada@example.com,bob@example.com",
        );
        assert_eq!(names(&r).len(), PEOPLE.len() - 2);
        for query in [
            "filter[email]=gt:a",
            "filter[phone]=eq:1",
            "page[size]=0",
            "include=teams",
        ] {
            assert_eq!(
                get(&mut s, &format!("/api/v1/users?{query}")).status,
                400,
                "{query}"
            );
        }
        let r = get(&mut s, &format!("/api/v1/users/{}", jsonapi_user_id(3)));
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json_body()["data"]["attributes"]["email"],
            "dan@example.com"
        );
        assert_error(
            &get(&mut s, "/api/v1/users/3aab0a84-8ed3-4ddf-8572-f1799bb60e0a"),
            404,
            "user not found",
            None,
        );
        assert_eq!(get(&mut s, "/api/v1/users/..%2F..%2Fetc").status, 404);
    }

    // ----- robustness -----------------------------------------------------------------------

    #[test]
    fn odd_input_never_panics() {
        let mut s = sim();
        let team = create(&mut s, "A", DEFAULT_TEAM_ID);
        let bodies: Vec<Vec<u8>> = vec![
            vec![], b"\x00\x01".to_vec(), b"{\"data\":{\"type\":\"team\",\"attributes\":{\"name\":{\"a\":1},\"parent_team_id\":[1]}}}".to_vec(),
            b"{\"data\":{\"type\":\"team_membership\",\"attributes\":{\"team_id\":[],\"user_id\":{},\"role_ids\":[[],{}]}}}".to_vec(),
            "{\"data\":{\"type\":\"team\",\"attributes\":{\"name\":\"\u{fffd}\u{200b}\"}}}".as_bytes().to_vec(),
            format!("{}{}", "{\"a\":".repeat(200), "}".repeat(200)).into_bytes(),
        ];
        let paths = [
            "/api/v1/teams",
            &format!("/api/v1/teams/{team}"),
            "/api/v1/teams/%ZZ",
            "/api/v1/teams/%C3%28",
            "/api/v1/team_memberships",
            "/api/v1/team_memberships/%00",
            "/api/v1/users",
            "/api/v1/users/%E2%80%AE",
            "/api/v1/teams?filter[name]=eq:%FF&page[size]=%00",
            "/api/v1/teams?include=,,,&filter[name]=ct:",
            "/api/v1/teams?&&=&page[number]=1",
            "//api//v1//teams",
            "/api/v1/teams?filter[]=eq:x",
        ];
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
        ] {
            for path in paths {
                for body in &bodies {
                    let r = raw(
                        &mut s,
                        method.clone(),
                        path,
                        headers(Some(&format!("Bearer {TOKEN}")), Some(JSONAPI)),
                        body,
                    );
                    assert!(r.status.as_u16() < 500, "{method} {path} -> {}", r.status);
                    if r.status != 204 {
                        assert_eq!(header(&r, "content-type"), Some(JSONAPI), "{method} {path}");
                        assert!(r.json_body().is_object(), "{method} {path}");
                    }
                }
            }
        }
        // The default team survived every attempt.
        let r = get(&mut s, &format!("/api/v1/teams/{DEFAULT_TEAM_ID}"));
        assert_eq!(
            r.json_body()["data"]["attributes"]["discarded_at"],
            Value::Null
        );
    }
}
