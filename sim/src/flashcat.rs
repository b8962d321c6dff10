//! Flashcat / Flashduty Open API simulator: the team routes and the two member look-ups.
//!
//! This file owns the in-memory Flashcat account that teamgate's Flashcat mapping talks to:
//! `POST /team/list`, `/team/info`, `/team/infos`, `/team/upsert`, `/team/delete`,
//! `/member/list` and `/person/infos`, with the RPC envelope, the `?app_key=` auth and the
//! error codes of the vendor. Its people are [`super::people::PEOPLE`] with ids
//! [`flashcat_person_id`]; person index 0 is the account owner and the user the app key acts as.
//!
//! Sources, in the order they win:
//! - `shared/specs/flashcat/platform.openapi.en.json` (flashduty-docs @ 57fd7ad2): paths, request
//!   and item schemas (`TeamItem`, `MemberItem`, `PersonItem`), `SuccessEnvelope`,
//!   `ErrorResponse` / `DutyError`, the `ErrorCode` table (HTTP status per code, `ResourceNotFound`
//!   = 400) and its example messages;
//! - `shared/VENDORS.md` §5 and "Second look" §5: pagination (`p × limit ≤ 10000`, `total` capped at
//!   1000, `has_next_page`), rate limits (50/s, 1000/min per account), `no team found by ref_id`,
//!   success bodies carrying `"error":{"code":"OK"}` in the CLI stubs, errors drawn inside HTTP 200;
//! - seed `000_cf6eb4d7a14fa476.txt` (older Apifox rendering): `reset_if_name_exist` wording, the
//!   merge of `person_ids` / `emails` / `phones`, and `data.refs[]` on `ReferenceExist`.
//!
//! Choices where the documents are silent (each is marked "Choice:" where it is made):
//! - Duplicate team name: no dedicated code is documented, the seed only says "rejected with
//!   duplicate name error". We answer 400 `InvalidParameter` / `The team name already exists.`
//! - Invitations: `emails` / `phones` of unknown people would invite them (a side effect the
//!   simulator cannot model), so they are refused with 400 `InvalidParameter` /
//!   `invitation is not supported by the simulator`. Known emails (case-insensitive) and known
//!   phones (exact E.164, see `full_phone`) add that person, merged after `person_ids`.
//! - Upsert is a full replace, as the vendor's handler binds the whole request: on update an
//!   absent `description`, `ref_id` or member list becomes empty. `reset_if_name_exist` on a create
//!   whose name is taken updates that team the same way (the seed says "will be updated").
//! - `ref_id` is unique per account when non-empty (lookups by it return one team); a clash is
//!   400 `InvalidParameter` / `The ref_id already exists.`; at most 128 characters.
//! - Zero values mean "not given", as the vendor's Go binding reads them: `team_id: 0`,
//!   `team_name: ""`, `ref_id: ""`, `person_id: 0`, `role_id: 0`, and `null` for any field. An
//!   explicit `p: 0` or `limit: 0` is still refused, since the schema says `minimum: 1`.
//! - Lists sort descending unless `asc: true` (JSON's default `false`), ties broken by id.
//! - Messages the spec gives no example for (RouteNotFound, MethodNotAllowed,
//!   InvalidContentType, ReferenceExist) are ours; see `Code::default_message`.
//! - `Flashcat-Request-Id` is sent on error answers too, and no `Retry-After` on 429 (the docs
//!   never mention one).
//! - Codes no request can reach in a fresh account are behind extra switches, off by default:
//!   `"rate_limit"` enforces the documented 50 requests/s and 1000/min (real clock);
//!   `"read_only_key"` makes the key lack "Teams Manage" (writes → 403 `AccessDenied`);
//!   `"teams_referenced"` makes every team referenced by a schedule (delete → 400
//!   `ReferenceExist`). `InternalError` answers a create beyond 100,000 teams.
//! - Timestamps are a logical clock: a fixed start plus one second per write, so they are
//!   monotonic and tests are deterministic.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{json, Map, Value};

use super::people::{flashcat_person_id, PEOPLE};
use super::{SimRequest, SimResponse, Vendor};

/// The simulated account; the spec's example account id.
const ACCOUNT_ID: u64 = 2_451_002_751_131;
/// First team id handed out; ids count up from here and are never reused.
const FIRST_TEAM_ID: u64 = 4_211_000_000_001;
/// Logical clock start (Unix seconds, mid-2025).
const START_TIME: i64 = 1_750_000_000;
/// Teams the account may hold; more is refused with `InternalError` so memory stays bounded.
const MAX_TEAMS: usize = 100_000;
const MAX_NAME_CHARS: usize = 39;
const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_REF_ID_CHARS: usize = 128;
/// `/team/infos` accepts at most this many ids.
const MAX_TEAM_IDS: usize = 100;
const DEFAULT_LIMIT: u64 = 20;
const MAX_LIMIT: u64 = 100;
/// `p × limit` may not exceed this (pagination docs).
const MAX_PAGE_WINDOW: u64 = 10_000;
/// `total` is exact below this and reported as this above it (pagination docs).
const TOTAL_CAP: usize = 1_000;
/// Documented per-account rate limits.
const PER_SECOND: usize = 50;
const PER_MINUTE: usize = 1_000;

const HEADER_REQUEST_ID: &str = "flashcat-request-id";
const DUPLICATE_NAME: &str = "The team name already exists.";
const DUPLICATE_REF_ID: &str = "The ref_id already exists.";
const NO_INVITATIONS: &str = "invitation is not supported by the simulator";

/// The error codes this simulator can answer (a subset of the spec's `ErrorCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    InvalidParameter,
    InvalidContentType,
    ResourceNotFound,
    ReferenceExist,
    Unauthorized,
    AccessDenied,
    RouteNotFound,
    MethodNotAllowed,
    RequestTooFrequently,
    InternalError,
}

impl Code {
    fn as_str(self) -> &'static str {
        match self {
            Code::InvalidParameter => "InvalidParameter",
            Code::InvalidContentType => "InvalidContentType",
            Code::ResourceNotFound => "ResourceNotFound",
            Code::ReferenceExist => "ReferenceExist",
            Code::Unauthorized => "Unauthorized",
            Code::AccessDenied => "AccessDenied",
            Code::RouteNotFound => "RouteNotFound",
            Code::MethodNotAllowed => "MethodNotAllowed",
            Code::RequestTooFrequently => "RequestTooFrequently",
            Code::InternalError => "InternalError",
        }
    }

    /// The HTTP status of the spec's `ErrorCode` table (ResourceNotFound is 400, not 404).
    fn status(self) -> u16 {
        match self {
            Code::InvalidParameter
            | Code::InvalidContentType
            | Code::ResourceNotFound
            | Code::ReferenceExist => 400,
            Code::Unauthorized => 401,
            Code::AccessDenied => 403,
            Code::RouteNotFound => 404,
            Code::MethodNotAllowed => 405,
            Code::RequestTooFrequently => 429,
            Code::InternalError => 500,
        }
    }

    /// The spec's example message where it has one; ours otherwise.
    fn default_message(self) -> &'static str {
        match self {
            Code::InvalidParameter => "The specified parameter is not valid.",
            Code::InvalidContentType => "The Content-Type must be application/json.",
            Code::ResourceNotFound => "The resource you request is not found",
            Code::ReferenceExist => "The resource is still referenced by other resources.",
            Code::Unauthorized => "You are unauthorized.",
            Code::AccessDenied => "Access Denied.",
            Code::RouteNotFound => "The route you request is not found.",
            Code::MethodNotAllowed => "The request method is not allowed.",
            Code::RequestTooFrequently => "Request too frequently.",
            Code::InternalError => {
                "We encountered an internal error, and it has been reported. Please try again later."
            }
        }
    }
}

/// An error answer: `error.code`, `error.message` and, for `ReferenceExist` only, `data`.
#[derive(Debug)]
struct DutyError {
    code: Code,
    message: String,
    data: Option<Value>,
}

impl DutyError {
    fn new(code: Code) -> Self {
        Self::with_message(code, code.default_message())
    }

    fn with_message(code: Code, message: impl Into<String>) -> Self {
        DutyError {
            code,
            message: message.into(),
            data: None,
        }
    }
}

/// `InvalidParameter` naming the field, in the shape of the spec's `DutyError` example
/// (`The specified parameter template_id is not valid.`).
fn invalid(field: &str) -> DutyError {
    DutyError::with_message(
        Code::InvalidParameter,
        format!("The specified parameter {field} is not valid."),
    )
}

fn not_found() -> DutyError {
    DutyError::new(Code::ResourceNotFound)
}

/// A route's result: the `data` object or an error.
type Outcome = Result<Value, DutyError>;

/// The routes; anything else is `RouteNotFound`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    TeamList,
    TeamInfo,
    TeamInfos,
    TeamUpsert,
    TeamDelete,
    MemberList,
    PersonInfos,
}

impl Route {
    fn parse(segments: &[&str]) -> Option<Route> {
        Some(match segments {
            ["team", "list"] => Route::TeamList,
            ["team", "info"] => Route::TeamInfo,
            ["team", "infos"] => Route::TeamInfos,
            ["team", "upsert"] => Route::TeamUpsert,
            ["team", "delete"] => Route::TeamDelete,
            ["member", "list"] => Route::MemberList,
            ["person", "infos"] => Route::PersonInfos,
            _ => return None,
        })
    }

    /// Writes need the "Teams Manage" permission; reads are open to any valid key (spec x-mint).
    fn is_write(self) -> bool {
        matches!(self, Route::TeamUpsert | Route::TeamDelete)
    }
}

/// One team as stored.
#[derive(Debug, Clone)]
struct Team {
    id: u64,
    name: String,
    description: String,
    person_ids: Vec<u64>,
    ref_id: String,
    created_at: i64,
    updated_at: i64,
    /// Person index of the last editor (always the key's user, index 0, here).
    updated_by: usize,
}

/// Behaviours that are off by default; see the module doc.
#[derive(Debug, Default, Clone, Copy)]
struct Switches {
    errors_in_200: bool,
    ok_error_on_success: bool,
    rate_limit: bool,
    read_only_key: bool,
    teams_referenced: bool,
}

/// The Flashcat simulator: one account, its teams and the documented people.
pub struct Flashcat {
    credential: String,
    /// Teams by id; ids grow, so id order is creation order.
    teams: BTreeMap<u64, Team>,
    /// Exact team name → id (names are unique per account).
    names: HashMap<String, u64>,
    /// Non-empty ref_id → id.
    ref_ids: HashMap<String, u64>,
    next_team_id: u64,
    /// Logical clock, Unix seconds; advanced by every write.
    clock: i64,
    max_teams: usize,
    switches: Switches,
    /// Accepted requests of the last minute, oldest first (only with `rate_limit`).
    recent: VecDeque<Instant>,
}

impl Flashcat {
    pub fn new(credential: &str) -> Self {
        Flashcat {
            credential: credential.to_string(),
            teams: BTreeMap::new(),
            names: HashMap::new(),
            ref_ids: HashMap::new(),
            next_team_id: FIRST_TEAM_ID,
            clock: START_TIME,
            max_teams: MAX_TEAMS,
            switches: Switches::default(),
            recent: VecDeque::new(),
        }
    }

    /// Runs the checks in the vendor's order, then the route.
    fn dispatch(&mut self, req: &SimRequest) -> Outcome {
        let route = Route::parse(&req.segs()).ok_or_else(|| DutyError::new(Code::RouteNotFound))?;
        if req.method != Method::POST {
            return Err(DutyError::new(Code::MethodNotAllowed));
        }
        self.authorize(req)?;
        self.throttle()?;
        if route.is_write() && self.switches.read_only_key {
            return Err(DutyError::new(Code::AccessDenied));
        }
        check_content_type(req)?;
        let body = parse_body(req)?;
        match route {
            Route::TeamList => self.team_list(&body),
            Route::TeamInfo => self.team_info(&body),
            Route::TeamInfos => self.team_infos(&body),
            Route::TeamUpsert => self.team_upsert(&body),
            Route::TeamDelete => self.team_delete(&body),
            Route::MemberList => member_list(&body),
            Route::PersonInfos => person_infos(&body),
        }
    }

    /// Auth is only the `app_key` query parameter; an `Authorization` header counts for nothing.
    fn authorize(&self, req: &SimRequest) -> Result<(), DutyError> {
        match req.query_param("app_key") {
            Some(key) if !key.is_empty() && key == self.credential => Ok(()),
            _ => Err(DutyError::new(Code::Unauthorized)),
        }
    }

    /// The documented per-account limits over sliding windows, when `rate_limit` is on.
    /// Refused requests do not count, so a client that backs off gets through again.
    fn throttle(&mut self) -> Result<(), DutyError> {
        if !self.switches.rate_limit {
            return Ok(());
        }
        let now = Instant::now();
        while let Some(&oldest) = self.recent.front() {
            if now.duration_since(oldest) >= Duration::from_secs(60) {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        let last_second = self
            .recent
            .iter()
            .rev()
            .take_while(|t| now.duration_since(**t) < Duration::from_secs(1))
            .count();
        if last_second >= PER_SECOND || self.recent.len() >= PER_MINUTE {
            return Err(DutyError::new(Code::RequestTooFrequently));
        }
        self.recent.push_back(now);
        Ok(())
    }

    /// Advances the logical clock; every write gets a strictly later second.
    fn tick(&mut self) -> i64 {
        self.clock += 1;
        self.clock
    }

    // ----- /team/list -----

    fn team_list(&self, body: &Map<String, Value>) -> Outcome {
        let page = Page::parse(body)?;
        let orderby = opt_str(body, "orderby")?.unwrap_or("created_at");
        if !matches!(orderby, "created_at" | "updated_at" | "team_name") {
            return Err(invalid("orderby"));
        }
        let asc = opt_bool(body, "asc")?.unwrap_or(false);
        let query = opt_str(body, "query")?.unwrap_or("").to_lowercase();
        let person_id = opt_u64(body, "person_id")?.filter(|id| *id != 0);

        let mut teams: Vec<&Team> = self
            .teams
            .values()
            .filter(|t| query.is_empty() || t.name.to_lowercase().contains(&query))
            .filter(|t| person_id.is_none_or(|p| t.person_ids.contains(&p)))
            .collect();
        teams.sort_by(|a, b| {
            let primary = match orderby {
                "updated_at" => a.updated_at.cmp(&b.updated_at),
                "team_name" => a.name.cmp(&b.name),
                _ => a.created_at.cmp(&b.created_at),
            };
            primary.then(a.id.cmp(&b.id))
        });
        if !asc {
            teams.reverse();
        }
        let (items, total, has_next) = page.slice(&teams);
        Ok(json!({
            "p": page.p,
            "limit": page.limit,
            "total": total,
            "has_next_page": has_next,
            "items": items.iter().map(|t| team_item(t)).collect::<Vec<_>>(),
        }))
    }

    // ----- /team/info, /team/infos -----

    fn team_info(&self, body: &Map<String, Value>) -> Outcome {
        let id = self.find_team(body)?;
        self.teams.get(&id).map(team_item).ok_or_else(not_found)
    }

    fn team_infos(&self, body: &Map<String, Value>) -> Outcome {
        let ids = opt_u64_array(body, "team_ids")?.ok_or_else(|| invalid("team_ids"))?;
        if ids.len() > MAX_TEAM_IDS {
            return Err(invalid("team_ids"));
        }
        // Unknown ids are skipped; repeated ids answered once, in request order.
        let items: Vec<Value> = dedup(ids)
            .into_iter()
            .filter_map(|id| self.teams.get(&id))
            .map(|t| json!({"team_id": t.id, "team_name": t.name, "person_ids": t.person_ids}))
            .collect();
        Ok(json!({ "items": items }))
    }

    /// Finds the team named by `team_id`, else `team_name`, else `ref_id` (first one given wins).
    fn find_team(&self, body: &Map<String, Value>) -> Result<u64, DutyError> {
        let team_id = opt_u64(body, "team_id")?.filter(|id| *id != 0);
        let team_name = opt_str(body, "team_name")?.filter(|s| !s.is_empty());
        let ref_id = opt_str(body, "ref_id")?.filter(|s| !s.is_empty());
        if let Some(id) = team_id {
            return self
                .teams
                .contains_key(&id)
                .then_some(id)
                .ok_or_else(not_found);
        }
        if let Some(name) = team_name {
            return self.names.get(name).copied().ok_or_else(not_found);
        }
        if let Some(ref_id) = ref_id {
            // Nightingale matches on this text (VENDORS.md, second look).
            return self.ref_ids.get(ref_id).copied().ok_or_else(|| {
                DutyError::with_message(
                    Code::ResourceNotFound,
                    format!("no team found by ref_id {ref_id}"),
                )
            });
        }
        Err(DutyError::with_message(
            Code::InvalidParameter,
            "The specified parameter team_id, team_name or ref_id is required.",
        ))
    }

    // ----- /team/upsert -----

    fn team_upsert(&mut self, body: &Map<String, Value>) -> Outcome {
        let input = UpsertInput::parse(body)?;
        let person_ids = resolve_members(&input)?;

        let target = match input.team_id {
            Some(id) => {
                if !self.teams.contains_key(&id) {
                    return Err(not_found());
                }
                if self
                    .names
                    .get(&input.name)
                    .is_some_and(|owner| *owner != id)
                {
                    return Err(invalid_name_taken());
                }
                Some(id)
            }
            None => match self.names.get(&input.name) {
                Some(&existing) if input.reset_if_name_exist => Some(existing),
                Some(_) => return Err(invalid_name_taken()),
                None => None,
            },
        };
        if !input.ref_id.is_empty()
            && self
                .ref_ids
                .get(&input.ref_id)
                .is_some_and(|owner| Some(*owner) != target)
        {
            return Err(DutyError::with_message(
                Code::InvalidParameter,
                DUPLICATE_REF_ID,
            ));
        }

        let id = match target {
            Some(id) => self.update_team(id, input, person_ids),
            None => self.create_team(input, person_ids)?,
        };
        let name = self
            .teams
            .get(&id)
            .map(|t| t.name.clone())
            .unwrap_or_default();
        Ok(json!({ "team_id": id, "team_name": name }))
    }

    fn create_team(&mut self, input: UpsertInput, person_ids: Vec<u64>) -> Result<u64, DutyError> {
        if self.teams.len() >= self.max_teams {
            return Err(DutyError::new(Code::InternalError));
        }
        let id = self.next_team_id;
        self.next_team_id += 1;
        let now = self.tick();
        let team = Team {
            id,
            name: input.name,
            description: input.description,
            person_ids,
            ref_id: input.ref_id,
            created_at: now,
            updated_at: now,
            updated_by: 0,
        };
        self.index(&team);
        self.teams.insert(id, team);
        Ok(id)
    }

    /// Full replace of everything but id and creation time (see the module doc).
    fn update_team(&mut self, id: u64, input: UpsertInput, person_ids: Vec<u64>) -> u64 {
        let now = self.tick();
        let Some(old) = self.teams.remove(&id) else {
            return id;
        };
        self.unindex(&old);
        let team = Team {
            name: input.name,
            description: input.description,
            person_ids,
            ref_id: input.ref_id,
            updated_at: now,
            updated_by: 0,
            ..old
        };
        self.index(&team);
        self.teams.insert(id, team);
        id
    }

    fn index(&mut self, team: &Team) {
        self.names.insert(team.name.clone(), team.id);
        if !team.ref_id.is_empty() {
            self.ref_ids.insert(team.ref_id.clone(), team.id);
        }
    }

    fn unindex(&mut self, team: &Team) {
        self.names.remove(&team.name);
        self.ref_ids.remove(&team.ref_id);
    }

    // ----- /team/delete -----

    fn team_delete(&mut self, body: &Map<String, Value>) -> Outcome {
        let id = self.find_team(body)?;
        if self.switches.teams_referenced {
            return Err(reference_exist(id));
        }
        if let Some(team) = self.teams.remove(&id) {
            self.unindex(&team);
            self.tick();
        }
        Ok(json!({}))
    }
}

fn invalid_name_taken() -> DutyError {
    DutyError::with_message(Code::InvalidParameter, DUPLICATE_NAME)
}

/// `ReferenceExist` with the old spec's `data.refs[]` (kind, href, name) naming a schedule.
fn reference_exist(team_id: u64) -> DutyError {
    DutyError {
        data: Some(json!({
            "refs": [{
                "kind": "schedule",
                "href": format!("/schedule/detail?team_id={team_id}"),
                "name": "Primary on-call",
            }]
        })),
        ..DutyError::new(Code::ReferenceExist)
    }
}

/// The validated fields of a `/team/upsert` body.
#[derive(Debug)]
struct UpsertInput {
    team_id: Option<u64>,
    name: String,
    description: String,
    person_ids: Vec<u64>,
    emails: Vec<String>,
    phones: Vec<String>,
    ref_id: String,
    reset_if_name_exist: bool,
}

impl UpsertInput {
    fn parse(body: &Map<String, Value>) -> Result<Self, DutyError> {
        let team_id = opt_u64(body, "team_id")?.filter(|id| *id != 0);
        // Taken as given: not trimmed, counted in Unicode scalar values.
        let name = opt_str(body, "team_name")?.ok_or_else(|| invalid("team_name"))?;
        if !(1..=MAX_NAME_CHARS).contains(&name.chars().count()) {
            return Err(invalid("team_name"));
        }
        let description = opt_str(body, "description")?.unwrap_or("");
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(invalid("description"));
        }
        let ref_id = opt_str(body, "ref_id")?.unwrap_or("");
        if ref_id.chars().count() > MAX_REF_ID_CHARS {
            return Err(invalid("ref_id"));
        }
        // Accepted for shape only: it would apply to invited phones, which we refuse anyway.
        opt_str(body, "countryCode")?;
        Ok(UpsertInput {
            team_id,
            name: name.to_string(),
            description: description.to_string(),
            person_ids: opt_u64_array(body, "person_ids")?.unwrap_or_default(),
            emails: opt_str_array(body, "emails")?.unwrap_or_default(),
            phones: opt_str_array(body, "phones")?.unwrap_or_default(),
            ref_id: ref_id.to_string(),
            reset_if_name_exist: opt_bool(body, "reset_if_name_exist")?.unwrap_or(false),
        })
    }
}

/// Merges `person_ids`, then `emails`, then `phones` into one list, first occurrence kept.
/// Every id must be a known person; an unknown email or phone would be an invitation.
fn resolve_members(input: &UpsertInput) -> Result<Vec<u64>, DutyError> {
    let mut ids = Vec::new();
    for &id in &input.person_ids {
        if person_index(id).is_none() {
            return Err(DutyError::with_message(
                Code::InvalidParameter,
                format!(
                    "The specified parameter person_ids is not valid: person {id} does not exist."
                ),
            ));
        }
        ids.push(id);
    }
    for email in &input.emails {
        let index = PEOPLE
            .iter()
            .position(|p| p.email.eq_ignore_ascii_case(email))
            .ok_or_else(|| DutyError::with_message(Code::InvalidParameter, NO_INVITATIONS))?;
        ids.push(flashcat_person_id(index));
    }
    for phone in &input.phones {
        let index = (0..PEOPLE.len())
            .find(|i| full_phone(*i) == *phone)
            .ok_or_else(|| DutyError::with_message(Code::InvalidParameter, NO_INVITATIONS))?;
        ids.push(flashcat_person_id(index));
    }
    Ok(dedup(ids))
}

// ----- /member/list, /person/infos -----

fn member_list(body: &Map<String, Value>) -> Outcome {
    let page = Page::parse(body)?;
    // The member schema sorts only by time; team_name is a team-list field.
    let orderby = opt_str(body, "orderby")?.unwrap_or("created_at");
    if !matches!(orderby, "created_at" | "updated_at") {
        return Err(invalid("orderby"));
    }
    let asc = opt_bool(body, "asc")?.unwrap_or(false);
    let query = opt_str(body, "query")?.unwrap_or("").to_lowercase();
    let role_id = opt_u64(body, "role_id")?.filter(|id| *id != 0);

    let mut indexes: Vec<usize> = (0..PEOPLE.len())
        .filter(|&i| {
            query.is_empty()
                || PEOPLE[i].name.to_lowercase().contains(&query)
                || PEOPLE[i].email.to_lowercase().contains(&query)
        })
        .filter(|&i| role_id.is_none_or(|r| role_ids(i).contains(&r)))
        .collect();
    // Creation and update times grow with the index, so both orders are index order.
    if !asc {
        indexes.reverse();
    }
    let (items, total, has_next) = page.slice(&indexes);
    Ok(json!({
        "p": page.p,
        "limit": page.limit,
        "total": total,
        "has_next_page": has_next,
        "items": items.iter().map(|&i| member_item(i)).collect::<Vec<_>>(),
    }))
}

fn person_infos(body: &Map<String, Value>) -> Outcome {
    let ids = opt_u64_array(body, "person_ids")?.ok_or_else(|| invalid("person_ids"))?;
    // Unknown ids are skipped, like /team/infos; the output is bounded by the people list.
    let items: Vec<Value> = dedup(ids)
        .into_iter()
        .filter_map(person_index)
        .map(person_item)
        .collect();
    Ok(json!({ "items": items }))
}

// ----- items -----

fn team_item(t: &Team) -> Value {
    let editor = PEOPLE.get(t.updated_by).map(|p| p.name).unwrap_or_default();
    json!({
        "account_id": ACCOUNT_ID,
        "team_id": t.id,
        "team_name": t.name,
        "description": t.description,
        "status": "enabled",
        "updated_by_name": editor,
        "updated_by": flashcat_person_id(t.updated_by),
        "creator_id": flashcat_person_id(0),
        "creator_name": PEOPLE.first().map(|p| p.name).unwrap_or_default(),
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "person_ids": t.person_ids,
        "ref_id": t.ref_id,
    })
}

fn member_item(index: usize) -> Value {
    let person = &PEOPLE[index];
    json!({
        "account_id": ACCOUNT_ID,
        "member_id": flashcat_person_id(index),
        "member_name": person.name,
        "country_code": "CN",
        "phone": masked_phone(index),
        "email": person.email,
        "locale": "en-US",
        "time_zone": "Asia/Shanghai",
        "phone_verified": true,
        "email_verified": true,
        "avatar": "",
        "status": "enabled",
        "account_role_ids": role_ids(index),
        "is_external": false,
        "ref_id": "",
        "created_at": member_created_at(index),
        "updated_at": member_created_at(index) + 3_600,
    })
}

fn person_item(index: usize) -> Value {
    let person = &PEOPLE[index];
    json!({
        "account_id": ACCOUNT_ID,
        "person_id": flashcat_person_id(index),
        "person_name": person.name,
        "avatar": "",
        "locale": "en-US",
        "time_zone": "Asia/Shanghai",
        "email": person.email,
        "phone": masked_phone(index),
        "phone_verified": true,
        "email_verified": true,
        // The owner logs in as the account itself; everyone else is a member.
        "as": if index == 0 { "account" } else { "member" },
        "status": "enabled",
    })
}

/// The index in [`PEOPLE`] of a Flashcat person id.
fn person_index(id: u64) -> Option<usize> {
    (0..PEOPLE.len()).find(|&i| flashcat_person_id(i) == id)
}

/// A person's full phone in E.164, the form `/team/upsert` `phones` must use to match.
fn full_phone(index: usize) -> String {
    format!("+86138{:04}{:04}", 1_000 + index, 6_500 + index)
}

/// The phone as the API shows it, masked like the spec's `+86151****6519`.
fn masked_phone(index: usize) -> String {
    let full = full_phone(index);
    let tail = full.get(full.len().saturating_sub(4)..).unwrap_or("");
    format!("+86138****{tail}")
}

/// Account roles: the owner holds the admin role too (ids as in the spec example, `[2, 6]`).
fn role_ids(index: usize) -> Vec<u64> {
    if index == 0 {
        vec![2, 6]
    } else {
        vec![6]
    }
}

/// People joined a day apart, long before any team.
fn member_created_at(index: usize) -> i64 {
    1_700_000_000 + 86_400 * index as i64
}

// ----- paging -----

/// `p` and `limit` after validation.
#[derive(Debug, Clone, Copy)]
struct Page {
    p: u64,
    limit: u64,
}

impl Page {
    fn parse(body: &Map<String, Value>) -> Result<Page, DutyError> {
        let p = opt_u64(body, "p")?.unwrap_or(1);
        let limit = opt_u64(body, "limit")?.unwrap_or(DEFAULT_LIMIT);
        if p < 1 {
            return Err(invalid("p"));
        }
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid("limit"));
        }
        // Deep paging is refused by the vendor; checked_mul guards against huge `p`.
        if p.checked_mul(limit)
            .is_none_or(|window| window > MAX_PAGE_WINDOW)
        {
            return Err(DutyError::with_message(
                Code::InvalidParameter,
                "The specified parameter p is not valid: p × limit must not exceed 10000.",
            ));
        }
        Ok(Page { p, limit })
    }

    /// This page of `all`, the reported total (capped) and whether more follow (exact).
    fn slice<'a, T>(&self, all: &'a [T]) -> (&'a [T], usize, bool) {
        // Both bounded by MAX_PAGE_WINDOW, so the casts cannot truncate.
        let start = ((self.p - 1) * self.limit) as usize;
        let end = (self.p * self.limit) as usize;
        let items = all
            .get(start.min(all.len())..end.min(all.len()))
            .unwrap_or(&[]);
        (items, all.len().min(TOTAL_CAP), end < all.len())
    }
}

// ----- request parsing -----

/// `application/json`, parameters such as `; charset=utf-8` allowed, any letter case.
fn check_content_type(req: &SimRequest) -> Result<(), DutyError> {
    let media = req
        .header("content-type")
        .and_then(|ct| ct.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    if media.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(DutyError::new(Code::InvalidContentType))
    }
}

fn parse_body(req: &SimRequest) -> Result<Map<String, Value>, DutyError> {
    match req.json() {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(DutyError::with_message(
            Code::InvalidParameter,
            "The request body must be a JSON object.",
        )),
    }
}

/// A non-negative integer that fits u64; strings, floats, negatives and huge numbers are refused.
fn opt_u64(body: &Map<String, Value>, field: &str) -> Result<Option<u64>, DutyError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| invalid(field)),
    }
}

fn opt_str<'a>(body: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, DutyError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(field)),
    }
}

fn opt_bool(body: &Map<String, Value>, field: &str) -> Result<Option<bool>, DutyError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(field)),
    }
}

fn opt_u64_array(body: &Map<String, Value>, field: &str) -> Result<Option<Vec<u64>>, DutyError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_u64().ok_or_else(|| invalid(field)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid(field)),
    }
}

fn opt_str_array(body: &Map<String, Value>, field: &str) -> Result<Option<Vec<String>>, DutyError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| invalid(field)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid(field)),
    }
}

/// Removes repeats, keeping the first occurrence and the order.
fn dedup(ids: Vec<u64>) -> Vec<u64> {
    let mut seen = HashSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

/// A request id of 32 hex digits.
fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Vendor for Flashcat {
    fn kind(&self) -> &'static str {
        "flashcat"
    }

    fn handle(&mut self, req: &SimRequest) -> SimResponse {
        let request_id = new_request_id();
        let outcome = self.dispatch(req);
        let (status, body) = match outcome {
            Ok(data) => {
                let mut body = json!({ "request_id": request_id, "data": data });
                if self.switches.ok_error_on_success {
                    body["error"] = json!({"code": "OK", "message": ""});
                }
                (200, body)
            }
            Err(err) => {
                let mut body = json!({
                    "request_id": request_id,
                    "error": {"code": err.code.as_str(), "message": err.message},
                });
                if let Some(data) = err.data {
                    body["data"] = data;
                }
                let status = if self.switches.errors_in_200 {
                    200
                } else {
                    err.code.status()
                };
                (status, body)
            }
        };
        SimResponse::json(status, body).with_header(HEADER_REQUEST_ID, &request_id)
    }

    fn set_switch(&mut self, name: &str, on: bool) -> bool {
        let slot = match name {
            "errors_in_200" => &mut self.switches.errors_in_200,
            "ok_error_on_success" => &mut self.switches.ok_error_on_success,
            "rate_limit" => &mut self.switches.rate_limit,
            "read_only_key" => &mut self.switches.read_only_key,
            "teams_referenced" => &mut self.switches.teams_referenced,
            _ => return false,
        };
        *slot = on;
        if name == "rate_limit" {
            self.recent.clear();
        }
        true
    }

    /// `ErrorResponse`: `{"request_id","error":{"code","message"}}`, the code the spec's
    /// `ErrorCode` table gives `status`, and `Flashcat-Request-Id`. With `errors_in_200` on,
    /// the answer is HTTP 200, like every other error of this simulator.
    fn error_body(&self, status: u16, message: &str) -> SimResponse {
        let request_id = new_request_id();
        let body = json!({
            "request_id": request_id,
            "error": {"code": code_for_status(status), "message": message},
        });
        let status = if self.switches.errors_in_200 {
            200
        } else {
            status
        };
        SimResponse::json(status, body).with_header(HEADER_REQUEST_ID, &request_id)
    }
}

/// The spec's `ErrorCode` for an HTTP status (its table read backwards), for injected errors;
/// a status the table does not name gets the generic code of its class, and an injected error
/// inside a 2xx is `InternalError` (the vendor failed; the status says nothing).
fn code_for_status(status: u16) -> &'static str {
    match status {
        ..=399 => "InternalError",
        401 => "Unauthorized",
        402 => "BalanceNotEnough",
        403 => "AccessDenied",
        404 => "RouteNotFound",
        405 => "MethodNotAllowed",
        409 => "UndonedOrderExist",
        413 => "EntityTooLarge",
        423 => "RequestLocked",
        428 => "RequestVerifyRequired",
        429 => "RequestTooFrequently",
        503 => "ServiceUnavailable",
        500..=599 => "InternalError",
        _ => "BadRequest",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue};

    const KEY: &str = "K";

    fn headers(content_type: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(ct) = content_type {
            h.insert("content-type", HeaderValue::from_static(ct));
        }
        h
    }

    fn raw(
        sim: &mut Flashcat,
        method: Method,
        path_and_query: &str,
        content_type: Option<&'static str>,
        body: &str,
    ) -> SimResponse {
        let req = SimRequest::new(
            method,
            path_and_query,
            headers(content_type),
            Bytes::from(body.to_string()),
        );
        sim.handle(&req)
    }

    /// POSTs `body` to `route` with the right key; returns status and parsed body.
    fn call(sim: &mut Flashcat, route: &str, body: Value) -> (u16, Value) {
        let resp = raw(
            sim,
            Method::POST,
            &format!("{route}?app_key={KEY}"),
            Some("application/json"),
            &body.to_string(),
        );
        (resp.status.as_u16(), resp.json_body())
    }

    fn assert_error(got: (u16, Value), status: u16, code: &str) -> Value {
        let (s, body) = got;
        assert_eq!(s, status, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body.get("data").is_none() || code == "ReferenceExist",
            "{body}"
        );
        assert!(body["request_id"].as_str().is_some_and(|r| !r.is_empty()));
        body
    }

    fn ok(got: (u16, Value)) -> Value {
        let (s, body) = got;
        assert_eq!(s, 200, "{body}");
        assert!(body.get("error").is_none(), "{body}");
        body["data"].clone()
    }

    fn create(sim: &mut Flashcat, name: &str) -> u64 {
        let data = ok(call(sim, "/team/upsert", json!({"team_name": name})));
        data["team_id"].as_u64().expect("team_id")
    }

    fn pid(i: usize) -> u64 {
        flashcat_person_id(i)
    }

    #[test]
    fn kind_and_unknown_switch() {
        let mut sim = Flashcat::new(KEY);
        assert_eq!(sim.kind(), "flashcat");
        assert!(!sim.set_switch("no_such_switch", true));
        assert!(sim.set_switch("errors_in_200", false));
        assert!(sim.set_switch("ok_error_on_success", false));
    }

    #[test]
    fn unknown_route_is_404_before_anything_else() {
        let mut sim = Flashcat::new(KEY);
        for path in ["/team/nope", "/team/list/", "/", "/teams/list?app_key=K"] {
            let resp = raw(&mut sim, Method::GET, path, None, "");
            assert_eq!(resp.status.as_u16(), 404, "{path}");
            assert_eq!(resp.json_body()["error"]["code"], "RouteNotFound");
        }
    }

    #[test]
    fn non_post_is_405_before_auth() {
        let mut sim = Flashcat::new(KEY);
        for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
            let resp = raw(&mut sim, method, "/team/list", None, "");
            assert_eq!(resp.status.as_u16(), 405);
            assert_eq!(resp.json_body()["error"]["code"], "MethodNotAllowed");
        }
    }

    #[test]
    fn app_key_query_parameter_is_the_only_auth() {
        let mut sim = Flashcat::new(KEY);
        for path in [
            "/team/list",
            "/team/list?app_key=",
            "/team/list?app_key=wrong",
        ] {
            let resp = raw(&mut sim, Method::POST, path, Some("application/json"), "{}");
            assert_eq!(resp.status.as_u16(), 401, "{path}");
            let body = resp.json_body();
            assert_eq!(body["error"]["code"], "Unauthorized");
            assert_eq!(body["error"]["message"], "You are unauthorized.");
        }
        // A header carrying the key does not count.
        let mut h = headers(Some("application/json"));
        h.insert("authorization", HeaderValue::from_static("Bearer K"));
        h.insert("app_key", HeaderValue::from_static("K"));
        let req = SimRequest::new(Method::POST, "/team/list", h, Bytes::from_static(b"{}"));
        assert_eq!(sim.handle(&req).status.as_u16(), 401);
    }

    #[test]
    fn content_type_must_be_json() {
        let mut sim = Flashcat::new(KEY);
        let path = "/team/list?app_key=K";
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let resp = raw(&mut sim, Method::POST, path, ct, "{}");
            assert_eq!(resp.status.as_u16(), 400);
            assert_eq!(resp.json_body()["error"]["code"], "InvalidContentType");
        }
        for ct in ["application/json; charset=utf-8", "Application/JSON"] {
            let resp = raw(&mut sim, Method::POST, path, Some(ct), "{}");
            assert_eq!(resp.status.as_u16(), 200, "{ct}");
        }
    }

    #[test]
    fn body_must_be_a_json_object() {
        let mut sim = Flashcat::new(KEY);
        for body in ["", "[]", "null", "42", "\"x\"", "{not json", "{\"p\":1"] {
            let resp = raw(
                &mut sim,
                Method::POST,
                "/team/list?app_key=K",
                Some("application/json"),
                body,
            );
            assert_eq!(resp.status.as_u16(), 400, "{body:?}");
            assert_eq!(resp.json_body()["error"]["code"], "InvalidParameter");
        }
    }

    #[test]
    fn success_envelope_and_request_id_header() {
        let mut sim = Flashcat::new(KEY);
        let resp = raw(
            &mut sim,
            Method::POST,
            "/team/list?app_key=K",
            Some("application/json"),
            "{}",
        );
        assert_eq!(resp.status.as_u16(), 200);
        let body = resp.json_body();
        let id = body["request_id"].as_str().expect("request_id").to_string();
        assert!(!id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit()));
        let header = resp
            .headers
            .iter()
            .find(|(k, _)| k.as_str() == "flashcat-request-id")
            .map(|(_, v)| v.to_str().unwrap_or_default().to_string());
        assert_eq!(header.as_deref(), Some(id.as_str()));
        assert!(body.get("error").is_none());
        assert_eq!(body["data"]["items"], json!([]));
        // Errors carry the same pair.
        let resp = raw(&mut sim, Method::POST, "/team/list", None, "{}");
        let id = resp.json_body()["request_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(resp
            .headers
            .iter()
            .any(|(k, v)| k == "flashcat-request-id" && v == id.as_str()));
    }

    #[test]
    fn upsert_creates_and_info_finds_by_id_name_and_ref_id() {
        let mut sim = Flashcat::new(KEY);
        let data = ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_name": "Backend SRE", "description": "pager people",
                   "person_ids": [pid(2), pid(1)], "ref_id": "hr-42"}),
        ));
        assert_eq!(
            data,
            json!({"team_id": FIRST_TEAM_ID, "team_name": "Backend SRE"})
        );

        for key in [
            json!({"team_id": FIRST_TEAM_ID}),
            json!({"team_name": "Backend SRE"}),
            json!({"ref_id": "hr-42"}),
            json!({"team_id": 0, "team_name": "", "ref_id": "hr-42"}),
        ] {
            let item = ok(call(&mut sim, "/team/info", key));
            assert_eq!(item["team_id"], FIRST_TEAM_ID);
            assert_eq!(item["account_id"], ACCOUNT_ID);
            assert_eq!(item["team_name"], "Backend SRE");
            assert_eq!(item["description"], "pager people");
            assert_eq!(item["status"], "enabled");
            assert_eq!(item["person_ids"], json!([pid(2), pid(1)]));
            assert_eq!(item["ref_id"], "hr-42");
            assert_eq!(item["creator_id"], pid(0));
            assert_eq!(item["creator_name"], "Ada Admin");
            assert_eq!(item["updated_by"], pid(0));
            assert_eq!(item["updated_by_name"], "Ada Admin");
            assert_eq!(item["created_at"], item["updated_at"]);
            let keys: Vec<&str> = item
                .as_object()
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            assert_eq!(keys.len(), 13, "{keys:?}");
        }
        // Ids count up.
        assert_eq!(create(&mut sim, "Second"), FIRST_TEAM_ID + 1);
    }

    #[test]
    fn info_errors() {
        let mut sim = Flashcat::new(KEY);
        create(&mut sim, "A");
        let body = assert_error(
            call(&mut sim, "/team/info", json!({})),
            400,
            "InvalidParameter",
        );
        assert!(body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("team_id"));
        let body = assert_error(
            call(&mut sim, "/team/info", json!({"team_id": 999})),
            400,
            "ResourceNotFound",
        );
        assert_eq!(
            body["error"]["message"],
            "The resource you request is not found"
        );
        assert_error(
            call(&mut sim, "/team/info", json!({"team_name": "a"})),
            400,
            "ResourceNotFound",
        );
        let body = assert_error(
            call(&mut sim, "/team/info", json!({"ref_id": "ghost"})),
            400,
            "ResourceNotFound",
        );
        assert_eq!(body["error"]["message"], "no team found by ref_id ghost");
        for bad in [
            json!({"team_id": "4211000000001"}),
            json!({"team_id": -1}),
            json!({"team_id": 1.5}),
            json!({"team_id": 1e30}),
            json!({"team_id": true}),
            json!({"team_name": 7}),
            json!({"ref_id": ["x"]}),
        ] {
            assert_error(call(&mut sim, "/team/info", bad), 400, "InvalidParameter");
        }
        // A number beyond u64 in raw JSON text.
        let resp = raw(
            &mut sim,
            Method::POST,
            "/team/info?app_key=K",
            Some("application/json"),
            r#"{"team_id": 184467440737095516150}"#,
        );
        assert_eq!(resp.json_body()["error"]["code"], "InvalidParameter");
    }

    #[test]
    fn team_name_length_is_counted_in_chars() {
        let mut sim = Flashcat::new(KEY);
        for name in [
            "a".repeat(39),
            "é".repeat(39),
            "🚀".repeat(39),
            "x".to_string(),
            " ".to_string(),
        ] {
            let data = ok(call(&mut sim, "/team/upsert", json!({"team_name": name})));
            assert_eq!(data["team_name"], name.as_str());
        }
        for name in [
            "b".repeat(40),
            "ü".repeat(40),
            "🚀".repeat(40),
            String::new(),
        ] {
            let body = assert_error(
                call(&mut sim, "/team/upsert", json!({"team_name": name})),
                400,
                "InvalidParameter",
            );
            assert!(body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("team_name"));
        }
        // Not trimmed: "  x" is a different name from "x".
        ok(call(&mut sim, "/team/upsert", json!({"team_name": "  x"})));
    }

    #[test]
    fn upsert_field_validation() {
        let mut sim = Flashcat::new(KEY);
        ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_name": "d", "description": "é".repeat(500)}),
        ));
        for bad in [
            json!({}),
            json!({"team_name": null}),
            json!({"team_name": ["x"]}),
            json!({"team_name": "e", "description": "x".repeat(501)}),
            json!({"team_name": "e", "description": 5}),
            json!({"team_name": "e", "team_id": "1"}),
            json!({"team_name": "e", "team_id": -3}),
            json!({"team_name": "e", "person_ids": [pid(1).to_string()]}),
            json!({"team_name": "e", "person_ids": [-1]}),
            json!({"team_name": "e", "person_ids": [1.0]}),
            json!({"team_name": "e", "person_ids": pid(1)}),
            json!({"team_name": "e", "person_ids": [12345]}),
            json!({"team_name": "e", "emails": "ada@example.com"}),
            json!({"team_name": "e", "emails": [1]}),
            json!({"team_name": "e", "reset_if_name_exist": "yes"}),
            json!({"team_name": "e", "ref_id": 9}),
            json!({"team_name": "e", "ref_id": "r".repeat(129)}),
            json!({"team_name": "e", "countryCode": 86}),
        ] {
            assert_error(call(&mut sim, "/team/upsert", bad), 400, "InvalidParameter");
        }
        // Nothing was created by the refused calls.
        assert_eq!(ok(call(&mut sim, "/team/list", json!({})))["total"], 1);
    }

    #[test]
    fn members_are_replaced_deduplicated_and_merged() {
        let mut sim = Flashcat::new(KEY);
        let id = create(&mut sim, "Ops");
        ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_id": id, "team_name": "Ops",
                   "person_ids": [pid(3), pid(1), pid(3)],
                   "emails": ["CAROL@example.com", "bob@example.com"],
                   "phones": [full_phone(5)]}),
        ));
        let item = ok(call(&mut sim, "/team/info", json!({"team_id": id})));
        assert_eq!(item["person_ids"], json!([pid(3), pid(1), pid(2), pid(5)]));
        // The next upsert replaces the whole list.
        ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_id": id, "team_name": "Ops", "person_ids": [pid(4)]}),
        ));
        let item = ok(call(&mut sim, "/team/info", json!({"team_id": id})));
        assert_eq!(item["person_ids"], json!([pid(4)]));
        // Unknown email or phone would be an invitation.
        for bad in [
            json!({"emails": ["stranger@example.com"]}),
            json!({"phones": ["+15550100"]}),
        ] {
            let mut body = bad;
            body["team_id"] = json!(id);
            body["team_name"] = json!("Ops");
            let err = assert_error(
                call(&mut sim, "/team/upsert", body),
                400,
                "InvalidParameter",
            );
            assert_eq!(err["error"]["message"], NO_INVITATIONS);
        }
        // A refused upsert leaves the team as it was.
        let item = ok(call(&mut sim, "/team/info", json!({"team_id": id})));
        assert_eq!(item["person_ids"], json!([pid(4)]));
    }

    #[test]
    fn update_is_a_full_replace_and_moves_updated_at() {
        let mut sim = Flashcat::new(KEY);
        ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_name": "Old", "description": "d", "ref_id": "r1", "person_ids": [pid(1)]}),
        ));
        let before = ok(call(&mut sim, "/team/info", json!({"team_name": "Old"})));
        let id = before["team_id"].as_u64().unwrap_or_default();
        let data = ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_id": id, "team_name": "New"}),
        ));
        assert_eq!(data, json!({"team_id": id, "team_name": "New"}));
        let after = ok(call(&mut sim, "/team/info", json!({"team_id": id})));
        assert_eq!(after["description"], "");
        assert_eq!(after["ref_id"], "");
        assert_eq!(after["person_ids"], json!([]));
        assert_eq!(after["created_at"], before["created_at"]);
        assert!(after["updated_at"].as_i64() > before["updated_at"].as_i64());
        // The old name and ref_id are free again.
        assert_error(
            call(&mut sim, "/team/info", json!({"team_name": "Old"})),
            400,
            "ResourceNotFound",
        );
        assert_error(
            call(&mut sim, "/team/info", json!({"ref_id": "r1"})),
            400,
            "ResourceNotFound",
        );
        // Update of a missing id.
        let body = assert_error(
            call(
                &mut sim,
                "/team/upsert",
                json!({"team_id": 77, "team_name": "X"}),
            ),
            400,
            "ResourceNotFound",
        );
        assert_eq!(
            body["error"]["message"],
            "The resource you request is not found"
        );
    }

    #[test]
    fn duplicate_names_and_reset_if_name_exist() {
        let mut sim = Flashcat::new(KEY);
        let a = create(&mut sim, "Alpha");
        let b = create(&mut sim, "Beta");
        let body = assert_error(
            call(&mut sim, "/team/upsert", json!({"team_name": "Alpha"})),
            400,
            "InvalidParameter",
        );
        assert_eq!(body["error"]["message"], DUPLICATE_NAME);
        // Rename to a taken name, even with the flag (it applies to creates only).
        let body = assert_error(
            call(
                &mut sim,
                "/team/upsert",
                json!({"team_id": b, "team_name": "Alpha", "reset_if_name_exist": true}),
            ),
            400,
            "InvalidParameter",
        );
        assert_eq!(body["error"]["message"], DUPLICATE_NAME);
        // Keeping one's own name, and names differing in case, are fine.
        ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_id": a, "team_name": "Alpha"}),
        ));
        ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_name": "alpha"}),
        ));
        // With the flag a create updates the existing team and resets its members.
        ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_id": a, "team_name": "Alpha", "person_ids": [pid(1), pid(2)]}),
        ));
        let data = ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_name": "Alpha", "reset_if_name_exist": true, "person_ids": [pid(3)]}),
        ));
        assert_eq!(data, json!({"team_id": a, "team_name": "Alpha"}));
        let item = ok(call(&mut sim, "/team/info", json!({"team_id": a})));
        assert_eq!(item["person_ids"], json!([pid(3)]));
        assert_eq!(ok(call(&mut sim, "/team/list", json!({})))["total"], 3);
        // The flag on a free name simply creates.
        let data = ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_name": "Gamma", "reset_if_name_exist": true}),
        ));
        assert_eq!(data["team_id"], b + 2);
    }

    #[test]
    fn ref_id_is_unique() {
        let mut sim = Flashcat::new(KEY);
        ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_name": "A", "ref_id": "hr-1"}),
        ));
        let body = assert_error(
            call(
                &mut sim,
                "/team/upsert",
                json!({"team_name": "B", "ref_id": "hr-1"}),
            ),
            400,
            "InvalidParameter",
        );
        assert_eq!(body["error"]["message"], DUPLICATE_REF_ID);
        // Re-sending its own ref_id on update is fine.
        ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_id": FIRST_TEAM_ID, "team_name": "A", "ref_id": "hr-1"}),
        ));
    }

    #[test]
    fn infos_batch() {
        let mut sim = Flashcat::new(KEY);
        let a = create(&mut sim, "A");
        let b = create(&mut sim, "B");
        let data = ok(call(
            &mut sim,
            "/team/infos",
            json!({"team_ids": [b, 1, a, b]}),
        ));
        assert_eq!(
            data,
            json!({"items": [
                {"team_id": b, "team_name": "B", "person_ids": []},
                {"team_id": a, "team_name": "A", "person_ids": []},
            ]})
        );
        assert_eq!(
            ok(call(&mut sim, "/team/infos", json!({"team_ids": []}))),
            json!({"items": []})
        );
        let hundred: Vec<u64> = (1..=100).collect();
        ok(call(&mut sim, "/team/infos", json!({"team_ids": hundred})));
        let too_many: Vec<u64> = (1..=101).collect();
        for bad in [
            json!({}),
            json!({"team_ids": too_many}),
            json!({"team_ids": [a.to_string()]}),
            json!({"team_ids": a}),
        ] {
            assert_error(call(&mut sim, "/team/infos", bad), 400, "InvalidParameter");
        }
    }

    #[test]
    fn list_pages_sorts_and_filters() {
        let mut sim = Flashcat::new(KEY);
        for name in ["delta", "Alpha", "charlie", "Bravo", "echo"] {
            create(&mut sim, name);
        }
        ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_id": FIRST_TEAM_ID + 2, "team_name": "charlie", "person_ids": [pid(1)]}),
        ));
        let names = |data: &Value| -> Vec<String> {
            data["items"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|t| t["team_name"].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        // Defaults: p 1, limit 20, newest first.
        let data = ok(call(&mut sim, "/team/list", json!({})));
        assert_eq!(
            (
                data["p"].clone(),
                data["limit"].clone(),
                data["total"].clone()
            ),
            (json!(1), json!(20), json!(5))
        );
        assert_eq!(data["has_next_page"], false);
        assert_eq!(names(&data), ["echo", "Bravo", "charlie", "Alpha", "delta"]);
        assert_eq!(data["items"][0].as_object().map(|m| m.len()), Some(13));

        let data = ok(call(
            &mut sim,
            "/team/list",
            json!({"p": 1, "limit": 2, "orderby": "team_name", "asc": true}),
        ));
        assert_eq!(names(&data), ["Alpha", "Bravo"]);
        assert_eq!(
            (data["total"].clone(), data["has_next_page"].clone()),
            (json!(5), json!(true))
        );
        let data = ok(call(
            &mut sim,
            "/team/list",
            json!({"p": 3, "limit": 2, "orderby": "team_name", "asc": true}),
        ));
        assert_eq!(names(&data), ["echo"]);
        assert_eq!(data["has_next_page"], false);
        let data = ok(call(
            &mut sim,
            "/team/list",
            json!({"p": 2, "limit": 2, "orderby": "team_name", "asc": true}),
        ));
        assert_eq!(data["has_next_page"], true);
        let data = ok(call(&mut sim, "/team/list", json!({"p": 9, "limit": 2})));
        assert_eq!(
            (
                names(&data).len(),
                data["total"].clone(),
                data["has_next_page"].clone()
            ),
            (0, json!(5), json!(false))
        );
        // Exactly filled last page has no next page.
        let data = ok(call(&mut sim, "/team/list", json!({"p": 1, "limit": 5})));
        assert_eq!(data["has_next_page"], false);

        let data = ok(call(
            &mut sim,
            "/team/list",
            json!({"orderby": "updated_at", "limit": 1}),
        ));
        assert_eq!(names(&data), ["charlie"]);
        let data = ok(call(
            &mut sim,
            "/team/list",
            json!({"orderby": "created_at", "asc": true, "limit": 1}),
        ));
        assert_eq!(names(&data), ["delta"]);
        let data = ok(call(
            &mut sim,
            "/team/list",
            json!({"query": "A", "orderby": "team_name", "asc": true}),
        ));
        assert_eq!(names(&data), ["Alpha", "Bravo", "charlie", "delta"]);
        let data = ok(call(&mut sim, "/team/list", json!({"query": "CHAR"})));
        assert_eq!(names(&data), ["charlie"]);
        let data = ok(call(&mut sim, "/team/list", json!({"person_id": pid(1)})));
        assert_eq!(names(&data), ["charlie"]);
        let data = ok(call(&mut sim, "/team/list", json!({"person_id": 0})));
        assert_eq!(data["total"], 5);

        for bad in [
            json!({"p": 0}),
            json!({"p": -1}),
            json!({"p": "1"}),
            json!({"limit": 0}),
            json!({"limit": 101}),
            json!({"limit": 2.5}),
            json!({"p": 101, "limit": 100}),
            json!({"p": 10001, "limit": 1}),
            json!({"p": u64::MAX, "limit": 100}),
            json!({"orderby": "name"}),
            json!({"orderby": 1}),
            json!({"asc": "true"}),
            json!({"query": 5}),
            json!({"person_id": "x"}),
        ] {
            assert_error(call(&mut sim, "/team/list", bad), 400, "InvalidParameter");
        }
        // The edge of the window is allowed.
        ok(call(
            &mut sim,
            "/team/list",
            json!({"p": 100, "limit": 100}),
        ));
        ok(call(
            &mut sim,
            "/team/list",
            json!({"p": 10000, "limit": 1}),
        ));
    }

    #[test]
    fn list_total_is_capped_at_1000_but_has_next_page_is_exact() {
        let mut sim = Flashcat::new(KEY);
        for i in 0..1005 {
            create(&mut sim, &format!("team-{i:04}"));
        }
        let data = ok(call(&mut sim, "/team/list", json!({"p": 10, "limit": 100})));
        assert_eq!(data["total"], 1000);
        assert_eq!(data["has_next_page"], true);
        let data = ok(call(&mut sim, "/team/list", json!({"p": 11, "limit": 100})));
        assert_eq!(data["items"].as_array().map(Vec::len), Some(5));
        assert_eq!(data["has_next_page"], false);
        // Exact below the cap.
        let data = ok(call(&mut sim, "/team/list", json!({"query": "team-00"})));
        assert_eq!(data["total"], 100);
    }

    #[test]
    fn delete_by_each_key() {
        let mut sim = Flashcat::new(KEY);
        let a = create(&mut sim, "A");
        create(&mut sim, "B");
        ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_name": "C", "ref_id": "hr-c"}),
        ));
        assert_eq!(
            ok(call(&mut sim, "/team/delete", json!({"team_id": a}))),
            json!({})
        );
        assert_eq!(
            ok(call(&mut sim, "/team/delete", json!({"team_name": "B"}))),
            json!({})
        );
        assert_eq!(
            ok(call(&mut sim, "/team/delete", json!({"ref_id": "hr-c"}))),
            json!({})
        );
        assert_eq!(ok(call(&mut sim, "/team/list", json!({})))["total"], 0);
        assert_error(
            call(&mut sim, "/team/delete", json!({"team_id": a})),
            400,
            "ResourceNotFound",
        );
        assert_error(
            call(&mut sim, "/team/delete", json!({"team_name": "B"})),
            400,
            "ResourceNotFound",
        );
        let body = assert_error(
            call(&mut sim, "/team/delete", json!({"ref_id": "hr-c"})),
            400,
            "ResourceNotFound",
        );
        assert_eq!(body["error"]["message"], "no team found by ref_id hr-c");
        assert_error(
            call(&mut sim, "/team/delete", json!({})),
            400,
            "InvalidParameter",
        );
        assert_error(
            call(&mut sim, "/team/delete", json!({"team_id": "1"})),
            400,
            "InvalidParameter",
        );
        // Names are free again, ids are not reused.
        assert_eq!(create(&mut sim, "A"), FIRST_TEAM_ID + 3);
    }

    #[test]
    fn member_list_items_paging_and_filters() {
        let mut sim = Flashcat::new(KEY);
        let data = ok(call(&mut sim, "/member/list", json!({"asc": true})));
        assert_eq!(data["total"], PEOPLE.len());
        assert_eq!(data["has_next_page"], false);
        let first = &data["items"][0];
        assert_eq!(first["member_id"], pid(0));
        assert_eq!(first["account_id"], ACCOUNT_ID);
        assert_eq!(first["member_name"], "Ada Admin");
        assert_eq!(first["email"], "ada@example.com");
        assert_eq!(first["status"], "enabled");
        assert_eq!(first["account_role_ids"], json!([2, 6]));
        assert_eq!(first["is_external"], false);
        let phone = first["phone"].as_str().unwrap_or_default();
        assert!(
            phone.starts_with("+86") && phone.contains("****"),
            "{phone}"
        );
        for field in ["country_code", "locale", "time_zone", "avatar", "ref_id"] {
            assert!(first[field].is_string(), "{field}");
        }
        for field in ["phone_verified", "email_verified"] {
            assert!(first[field].is_boolean(), "{field}");
        }
        assert!(first["created_at"].as_i64() < first["updated_at"].as_i64());

        // Default order: newest first.
        let data = ok(call(&mut sim, "/member/list", json!({"limit": 2})));
        assert_eq!(data["items"][0]["member_id"], pid(PEOPLE.len() - 1));
        assert_eq!(data["has_next_page"], true);
        let data = ok(call(
            &mut sim,
            "/member/list",
            json!({"limit": 2, "p": 3, "orderby": "updated_at"}),
        ));
        assert_eq!(data["items"].as_array().map(Vec::len), Some(2));
        assert_eq!(data["has_next_page"], false);

        let data = ok(call(&mut sim, "/member/list", json!({"query": "CAROL@"})));
        assert_eq!(data["items"][0]["member_id"], pid(2));
        assert_eq!(data["total"], 1);
        let data = ok(call(&mut sim, "/member/list", json!({"query": "ekström"})));
        assert_eq!(data["items"][0]["member_id"], pid(4));
        let data = ok(call(&mut sim, "/member/list", json!({"role_id": 2})));
        assert_eq!(data["total"], 1);
        let data = ok(call(&mut sim, "/member/list", json!({"role_id": 999})));
        assert_eq!(
            (data["total"].clone(), data["items"].clone()),
            (json!(0), json!([]))
        );

        for bad in [
            json!({"orderby": "team_name"}),
            json!({"limit": 101}),
            json!({"p": 0}),
            json!({"role_id": "2"}),
            json!({"query": null, "asc": 1}),
        ] {
            assert_error(call(&mut sim, "/member/list", bad), 400, "InvalidParameter");
        }
    }

    #[test]
    fn person_infos_items() {
        let mut sim = Flashcat::new(KEY);
        let data = ok(call(
            &mut sim,
            "/person/infos",
            json!({"person_ids": [pid(1), 42, pid(0), pid(1)]}),
        ));
        let items = data["items"].as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["person_id"], pid(1));
        assert_eq!(items[0]["person_name"], "Bob Builder");
        assert_eq!(items[0]["email"], "bob@example.com");
        assert_eq!(items[0]["as"], "member");
        assert_eq!(items[0]["status"], "enabled");
        assert_eq!(items[0]["account_id"], ACCOUNT_ID);
        assert_eq!(items[1]["as"], "account");
        for field in ["avatar", "locale", "time_zone", "phone"] {
            assert!(items[1][field].is_string(), "{field}");
        }
        for bad in [
            json!({}),
            json!({"person_ids": "1"}),
            json!({"person_ids": [-5]}),
        ] {
            assert_error(
                call(&mut sim, "/person/infos", bad),
                400,
                "InvalidParameter",
            );
        }
    }

    #[test]
    fn errors_in_200_switch_keeps_the_body() {
        let mut sim = Flashcat::new(KEY);
        assert!(sim.set_switch("errors_in_200", true));
        let (status, body) = call(&mut sim, "/team/info", json!({"team_id": 5}));
        assert_eq!(status, 200);
        assert_eq!(body["error"]["code"], "ResourceNotFound");
        assert_eq!(
            body["error"]["message"],
            "The resource you request is not found"
        );
        assert!(body.get("data").is_none());
        let resp = raw(&mut sim, Method::GET, "/nope", None, "");
        assert_eq!(resp.status.as_u16(), 200);
        assert_eq!(resp.json_body()["error"]["code"], "RouteNotFound");
        let resp = raw(&mut sim, Method::POST, "/team/list", None, "");
        assert_eq!(resp.status.as_u16(), 200);
        assert_eq!(resp.json_body()["error"]["code"], "Unauthorized");
        // Successes are untouched.
        assert!(call(&mut sim, "/team/list", json!({}))
            .1
            .get("error")
            .is_none());
        assert!(sim.set_switch("errors_in_200", false));
        assert_eq!(call(&mut sim, "/team/info", json!({"team_id": 5})).0, 400);
    }

    #[test]
    fn ok_error_on_success_switch() {
        let mut sim = Flashcat::new(KEY);
        assert!(sim.set_switch("ok_error_on_success", true));
        let (status, body) = call(&mut sim, "/team/upsert", json!({"team_name": "A"}));
        assert_eq!(status, 200);
        assert_eq!(body["error"], json!({"code": "OK", "message": ""}));
        assert_eq!(body["data"]["team_name"], "A");
        // Real errors keep their own code.
        let (status, body) = call(&mut sim, "/team/upsert", json!({"team_name": "A"}));
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (400, json!("InvalidParameter"))
        );
    }

    #[test]
    fn read_only_key_gets_access_denied_on_writes() {
        let mut sim = Flashcat::new(KEY);
        let a = create(&mut sim, "A");
        assert!(sim.set_switch("read_only_key", true));
        let body = assert_error(
            call(&mut sim, "/team/upsert", json!({"team_name": "B"})),
            403,
            "AccessDenied",
        );
        assert_eq!(body["error"]["message"], "Access Denied.");
        assert_error(
            call(&mut sim, "/team/delete", json!({"team_id": a})),
            403,
            "AccessDenied",
        );
        ok(call(&mut sim, "/team/info", json!({"team_id": a})));
        ok(call(&mut sim, "/member/list", json!({})));
    }

    #[test]
    fn referenced_team_cannot_be_deleted() {
        let mut sim = Flashcat::new(KEY);
        let a = create(&mut sim, "A");
        assert!(sim.set_switch("teams_referenced", true));
        let body = assert_error(
            call(&mut sim, "/team/delete", json!({"team_id": a})),
            400,
            "ReferenceExist",
        );
        assert_eq!(body["data"]["refs"][0]["kind"], "schedule");
        ok(call(&mut sim, "/team/info", json!({"team_id": a})));
        // A missing team is still not found.
        assert_error(
            call(&mut sim, "/team/delete", json!({"team_id": 3})),
            400,
            "ResourceNotFound",
        );
        assert!(sim.set_switch("teams_referenced", false));
        ok(call(&mut sim, "/team/delete", json!({"team_id": a})));
    }

    #[test]
    fn rate_limit_switch_enforces_50_per_second() {
        let mut sim = Flashcat::new(KEY);
        assert!(sim.set_switch("rate_limit", true));
        for _ in 0..PER_SECOND {
            ok(call(&mut sim, "/team/list", json!({})));
        }
        let body = assert_error(
            call(&mut sim, "/team/list", json!({})),
            429,
            "RequestTooFrequently",
        );
        assert_eq!(body["error"]["message"], "Request too frequently.");
        assert!(sim.set_switch("rate_limit", false));
        ok(call(&mut sim, "/team/list", json!({})));
    }

    #[test]
    fn too_many_teams_is_internal_error() {
        let mut sim = Flashcat::new(KEY);
        sim.max_teams = 2;
        create(&mut sim, "A");
        create(&mut sim, "B");
        let body = assert_error(
            call(&mut sim, "/team/upsert", json!({"team_name": "C"})),
            500,
            "InternalError",
        );
        assert_eq!(
            body["error"]["message"],
            Code::InternalError.default_message()
        );
        // Updates still work at the bound; a delete frees a slot.
        ok(call(
            &mut sim,
            "/team/upsert",
            json!({"team_id": FIRST_TEAM_ID, "team_name": "A2"}),
        ));
        ok(call(&mut sim, "/team/delete", json!({"team_name": "B"})));
        create(&mut sim, "C");
    }

    #[test]
    fn odd_input_never_panics() {
        let mut sim = Flashcat::new(KEY);
        let routes = [
            "/team/list",
            "/team/info",
            "/team/infos",
            "/team/upsert",
            "/team/delete",
            "/member/list",
            "/person/infos",
        ];
        let bodies = [
            json!({"team_name": "\u{0}\u{202e}\u{fffd}", "team_id": u64::MAX, "p": u64::MAX, "limit": u64::MAX}),
            json!({"team_ids": [u64::MAX, 0], "person_ids": [u64::MAX], "query": "\u{1F600}İ", "role_id": u64::MAX}),
            json!({"team_name": {"nested": [1, 2]}, "emails": [null], "phones": [[]]}),
            json!({"orderby": "", "asc": null, "p": null, "limit": null, "ref_id": ""}),
            json!({"team_id": -0.0, "person_id": 1e308}),
        ];
        for route in routes {
            for body in &bodies {
                let (status, resp) = call(&mut sim, route, body.clone());
                assert!(
                    status == 200 || status == 400,
                    "{route} {body} -> {status} {resp}"
                );
            }
            let resp = raw(
                &mut sim,
                Method::POST,
                &format!("{route}?app_key=K"),
                Some("application/json"),
                "\u{feff}{}",
            );
            assert_eq!(resp.status.as_u16(), 400);
            let resp = SimRequest::new(
                Method::POST,
                &format!("{route}?app_key=K"),
                headers(Some("application/json")),
                Bytes::from_static(&[0xff, 0xfe, b'{']),
            );
            assert_eq!(sim.handle(&resp).status.as_u16(), 400);
        }
    }
}
