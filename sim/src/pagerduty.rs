//! PagerDuty REST API v2 simulator: an in-memory, stateful stand-in for `api.pagerduty.com`'s
//! team, team-membership and (read-only) user routes.
//!
//! This file owns the PagerDuty wire behaviour teamgate's conformance tests trust:
//!
//! - `GET /teams` (`query`, `limit`, `offset`, `total`), `POST /teams`, `GET|PUT|DELETE
//!   /teams/{id}`;
//! - `GET /teams/{id}/members` (`limit`, `offset`, `total`, `include[]=users`),
//!   `PUT|DELETE /teams/{id}/users/{user_id}`;
//! - `GET /users` (`query`, `team_ids[]`, `limit`, `offset`, `total`) and `GET /users/{id}`,
//!   over the shared [`PEOPLE`] in order (ids from [`pagerduty_user_id`], index 0 the account
//!   owner with the `owner` role, the others `user`), plus synthetic extra users on demand (see
//!   [`PagerDuty::add_extra_users`] and the `extra_users` switch).
//!
//! Sources, in order of weight [S]: PagerDuty's official OpenAPI document
//! (`PagerDuty/api-schema`, `reference/REST/openapiv3.json` @ `91a06fb3`, 2026-08-14; the
//! extract this crate keeps is `sim/specs/pagerduty/teams-users.openapi.json`), the official Go
//! client (`PagerDuty/go-pagerduty` @ `d34fb98c`: `team.go`, `client.go`, `enablement_test.go`)
//! and the official Terraform provider (`PagerDuty/terraform-provider-pagerduty` @ `95cf9d8b`:
//! `resource_pagerduty_team*.go`, `website/docs/r/team*.markdown`).
//!
//! Documented and reproduced:
//!
//! - auth `Authorization: Token token=<key>` (spec `securitySchemes.api_key`); the `Accept:
//!   application/vnd.pagerduty+json;version=2` header is accepted and not required (the spec
//!   marks it required, but v2 is the only REST version left and clients that omit it are
//!   answered; the project's spec check flags a mapping that omits it);
//! - the error shape `{"error":{"message","code","errors"?}}` (spec `components.responses`
//!   `Conflict` schema, shared by 400/401/402/403/404/429); `errors` is present only when there
//!   are details, like the spec's own 404 example `{"message":"Not Found","code":2100}`;
//! - codes: 2001 `Invalid Input Provided` (spec `BadRequest` example, go-pagerduty
//!   `enablement_test.go`), 2100 `Not Found` (spec example, go-pagerduty `APIError.NotFound`),
//!   2020 `Rate Limit Exceeded` (the 429 body go-pagerduty-style clients mock); 2006
//!   `Authentication failed`, 2010 `Access Denied`, 2012 (account expired, 402) and 2000
//!   `Internal Error` are the titles of PagerDuty's "Errors" developer page, which is not in
//!   this project's stored sources: taken from it as remembered, marked [I] below;
//! - offset pagination: `limit` default 25 and upper bound 100 (go-pagerduty `ListTeamOptions`:
//!   "defaults this value to 25 if omitted, and sets an upper bound of 100"); a larger `limit`
//!   is clamped and the answer's `limit` echoes the one used; `total` is `null` unless
//!   `total=true` (spec `offset_total`); `more` says whether records follow;
//! - the team object (`id`, `type`, `summary`, `self`, `html_url`, `name`, `description`,
//!   `default_role`; spec `Team` and its examples), `name` at most 100 and `description` at
//!   most 1024 characters, `default_role` one of `manager` (the default) and `none`; a team
//!   carries no member count;
//! - `parent`: **the spec's `Team` schema has no `parent` property**; go-pagerduty
//!   (`Team.Parent *APIObject`) and the Terraform provider (`parent`, "available to accounts
//!   with the Team Hierarchy feature") send and read it as a team reference. The simulator
//!   follows the clients: `parent` is `{"id","type":"team_reference",...}` or `null`;
//! - member roles `observer`, `responder`, `manager` (spec `updateTeamUser` body enum); any
//!   other role, `read_only_user` included, is a 400 (spec: "Attempting to add a user with the
//!   `read_only_user` role will return a 400 error"); without a role a new member gets the team
//!   role matching their account role, `manager` for `owner`/`admin`/`user` (Terraform
//!   `team_membership` docs: "User role of `user` is a Team role of `manager`");
//! - `PUT /teams/{id}/users/{user_id}` and `DELETE` answer 204 with no body, `DELETE
//!   /teams/{id}` 204, `POST /teams` 201 (spec);
//! - a team with subteams cannot be deleted (spec `deleteTeam`: "Succeeds only if the team has
//!   no associated Escalation Policies, Services, Schedules and Subteams").
//!
//! Inferences, where the documents are silent [I] (each marked again where it is implemented):
//!
//! - the `errors` texts (Rails-style full messages: `Name has already been taken`, `Name can't
//!   be blank`, ...); a taken name is 400/2001 with `errors: ["Name has already been taken"]`
//!   and names compare case-insensitively;
//! - an unknown `parent` id, a parent cycle and deleting a team with subteams are 400/2001;
//! - an unknown user in `PUT|DELETE /teams/{id}/users/{user_id}` is 404/2100; removing a user
//!   who is not a member answers 204 (idempotent); re-adding a member without a role keeps the
//!   role;
//! - `PUT /teams/{id}` is a partial update: fields absent from `team` are kept, `null`
//!   clears `description` and `parent`; the body must be wrapped in `team` on create and update;
//! - a write body that is present must be JSON with `Content-Type: application/json` (400/2001
//!   otherwise); `limit=0` or a non-integer `limit`/`offset` is 400/2001;
//! - teams list in name order (case-insensitive, then id), users in account order, members in
//!   the order they were added; `query` is a case-insensitive substring match (on the team
//!   name; on the user name or email);
//! - an unknown path is 404/2100 `Not Found`; a known path with another method is 405 with
//!   `Allow` and code 2001; every answer checks the key first, unknown paths included;
//! - the user object's constant fields (`time_zone` `Etc/UTC`, colours, avatar URL);
//!   `self`/`html_url` on `https://api.pagerduty.com` and `https://subdomain.pagerduty.com`
//!   (the spec examples' hosts).
//!
//! Out of scope: user writes (`POST /users`, `PUT|DELETE /users/{id}` answer 405), escalation
//! policies, audit records, notification subscriptions, `include[]` values other than
//! `users` on the member list (ignored), cursor pagination and the 10,000-record offset cap.
//! The simulator never panics on request data and holds at most [`MAX_TEAMS`] teams and
//! [`MAX_EXTRA_USERS`] synthetic users.

use std::collections::{BTreeMap, HashMap};

use http::Method;
use serde_json::{json, Map, Value};

use super::people::{pagerduty_id, pagerduty_user_id, PEOPLE};
use super::{SimRequest, SimResponse, Vendor};

/// Most teams the simulator keeps; a create beyond it answers 500 so a runaway test or bench
/// cannot grow memory without bound.
pub const MAX_TEAMS: usize = 100_000;
/// Most synthetic extra users the simulator makes (see [`PagerDuty::add_extra_users`]).
pub const MAX_EXTRA_USERS: usize = 10_000;
/// How many synthetic users the `extra_users` switch makes sure exist: enough for a team of
/// 250 members (three pages at the maximum `limit` of 100).
pub const EXTRA_USERS_SWITCH: usize = 300;
/// `name` limit [S: spec `Team.name.maxLength`].
const MAX_NAME_CHARS: usize = 100;
/// `description` limit [S: spec `Team.description.maxLength`].
const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Page size when `limit` is absent [S: go-pagerduty `ListTeamOptions.Limit`].
const DEFAULT_LIMIT: usize = 25;
/// Largest page; a larger `limit` is clamped [S: go-pagerduty, "an upper bound of 100"].
const MAX_LIMIT: usize = 100;
/// Hosts of `self` and `html_url` [S: spec examples].
const API_BASE: &str = "https://api.pagerduty.com";
const WEB_BASE: &str = "https://subdomain.pagerduty.com";
/// Salt of the team id sequence ([`pagerduty_id`]); users use another one.
const TEAM_ID_SALT: u64 = 987_654_321;
/// The avatar of every simulated user [S: spec `User` example].
const AVATAR_URL: &str = "https://pd-static-assets.pagerduty.com/users/blank-avatar.png";
/// Schedule colours handed out in turn [I].
const COLORS: &[&str] = &["green", "red", "purple", "blue", "orange", "teal"];

/// PagerDuty error codes with their messages (the `error.message` of each).
/// 2001 and 2100 [S: spec examples], 2020 [S: client mocks], the others [I: the "Errors" page].
const INTERNAL_ERROR: (u32, &str) = (2000, "Internal Error");
const INVALID_INPUT: (u32, &str) = (2001, "Invalid Input Provided");
const AUTHENTICATION_FAILED: (u32, &str) = (2006, "Authentication failed");
const ACCESS_DENIED: (u32, &str) = (2010, "Access Denied");
const ACCOUNT_EXPIRED: (u32, &str) = (2012, "Your account is expired and cannot use the API");
const RATE_LIMIT_EXCEEDED: (u32, &str) = (2020, "Rate Limit Exceeded");
const NOT_FOUND: (u32, &str) = (2100, "Not Found");

/// The error code PagerDuty gives an answer of `status` (for injected faults and generic
/// answers): 400 and other 4xx → 2001, 401 → 2006, 402 → 2012, 403 → 2010, 404 → 2100,
/// 429 → 2020, 5xx → 2000 [I: mapping of the "Errors" page's table].
pub fn code_for_status(status: u16) -> u32 {
    match status {
        401 => AUTHENTICATION_FAILED.0,
        402 => ACCOUNT_EXPIRED.0,
        403 => ACCESS_DENIED.0,
        404 => NOT_FOUND.0,
        429 => RATE_LIMIT_EXCEEDED.0,
        500..=599 => INTERNAL_ERROR.0,
        _ => INVALID_INPUT.0,
    }
}

/// A team role [S: spec `updateTeamUser` body enum].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Observer,
    Responder,
    Manager,
}

impl Role {
    fn parse(text: &str) -> Option<Role> {
        // Exact lower case as documented; other spellings are refused so a mapping that sends
        // `Manager` is caught by the tests [I].
        match text {
            "observer" => Some(Role::Observer),
            "responder" => Some(Role::Responder),
            "manager" => Some(Role::Manager),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Role::Observer => "observer",
            Role::Responder => "responder",
            Role::Manager => "manager",
        }
    }
}

/// A user of the account.
#[derive(Debug, Clone)]
struct User {
    id: String,
    name: String,
    email: String,
    /// Account role [S: spec `User.role` enum]: `owner` for the account owner, else `user`.
    role: &'static str,
    color: &'static str,
    /// A synthetic extra user (not one of [`PEOPLE`]).
    synthetic: bool,
}

#[derive(Debug, Clone)]
struct Member {
    user_id: String,
    role: Role,
}

#[derive(Debug, Clone)]
struct Team {
    id: String,
    name: String,
    description: Option<String>,
    /// The parent team's id (Team Hierarchy).
    parent: Option<String>,
    /// `manager` or `none` [S: spec `Team.default_role`].
    default_role: &'static str,
    /// In the order they were added [I].
    members: Vec<Member>,
}

/// An error answer in PagerDuty's shape; handlers return `Result<SimResponse, PdError>`.
#[derive(Debug)]
struct PdError {
    status: u16,
    code: u32,
    message: String,
    errors: Vec<String>,
    allow: Option<&'static str>,
}

impl PdError {
    fn new(status: u16, (code, message): (u32, &str)) -> PdError {
        PdError {
            status,
            code,
            message: message.to_string(),
            errors: Vec::new(),
            allow: None,
        }
    }

    /// 400 / 2001 `Invalid Input Provided` with one detail in `errors`.
    fn invalid(detail: impl Into<String>) -> PdError {
        PdError::new(400, INVALID_INPUT).with_errors(vec![detail.into()])
    }

    /// 404 / 2100 `Not Found`, without details (as the spec's example).
    fn not_found() -> PdError {
        PdError::new(404, NOT_FOUND)
    }

    fn method_not_allowed(allow: &'static str) -> PdError {
        // [I] status and text; PagerDuty's documents list no 405.
        let mut error = PdError::new(405, (INVALID_INPUT.0, "Method Not Allowed"));
        error.allow = Some(allow);
        error
    }

    fn with_errors(mut self, errors: Vec<String>) -> PdError {
        self.errors = errors;
        self
    }

    fn into_response(self) -> SimResponse {
        let response = error_response(self.status, self.code, &self.message, &self.errors);
        match self.allow {
            Some(allow) => response.with_header("allow", allow),
            None => response,
        }
    }
}

/// `{"error":{"message","code","errors"?}}` [S: spec `components.responses.Conflict`].
fn error_response(status: u16, code: u32, message: &str, errors: &[String]) -> SimResponse {
    let mut error = Map::new();
    error.insert("message".into(), json!(message));
    error.insert("code".into(), json!(code));
    if !errors.is_empty() {
        error.insert("errors".into(), json!(errors));
    }
    SimResponse::json(status, json!({ "error": error }))
}

type Answer = Result<SimResponse, PdError>;

/// The PagerDuty simulator. Teams live in creation order (`seq`) with an index by id.
pub struct PagerDuty {
    credential: String,
    /// Account users in order: [`PEOPLE`] first, then synthetic ones.
    users: Vec<User>,
    /// Synthetic users made so far (numbering continues after removals).
    extra_made: usize,
    teams: BTreeMap<u64, Team>,
    by_id: HashMap<String, u64>,
    next_seq: u64,
    /// [`MAX_TEAMS`], lowered by unit tests to test the bound cheaply.
    team_limit: usize,
    /// The `rate_limited` switch: every request answers 429.
    rate_limited: bool,
}

impl PagerDuty {
    pub fn new(credential: &str) -> Self {
        let users = PEOPLE
            .iter()
            .enumerate()
            .map(|(index, person)| User {
                id: pagerduty_user_id(index),
                name: person.name.to_string(),
                email: person.email.to_string(),
                role: if index == 0 { "owner" } else { "user" },
                color: COLORS[index % COLORS.len()],
                synthetic: false,
            })
            .collect();
        PagerDuty {
            credential: credential.to_string(),
            users,
            extra_made: 0,
            teams: BTreeMap::new(),
            by_id: HashMap::new(),
            next_seq: 0,
            team_limit: MAX_TEAMS,
            rate_limited: false,
        }
    }

    /// A simulator whose account also has `n` synthetic users (see [`Self::add_extra_users`]).
    pub fn with_extra_users(credential: &str, n: usize) -> Self {
        let mut sim = PagerDuty::new(credential);
        sim.add_extra_users(n);
        sim
    }

    /// A test hook: `n` more users join the account, so that a team can hold more members than
    /// one page (a real account has hundreds of users; [`PEOPLE`] has six). The `k`th synthetic
    /// user ever made (1-based) is `User k` with email `user{k}@example.com`, role `user`, and
    /// id `pagerduty_user_id(PEOPLE.len() + k - 1)`; they are listed after [`PEOPLE`] by
    /// `GET /users` and are added to teams through the normal API. At most
    /// [`MAX_EXTRA_USERS`] are ever made; returns how many were added.
    ///
    /// Over HTTP (or through `SimHandle::set_switch`) the `extra_users` switch does the same:
    /// on makes sure [`EXTRA_USERS_SWITCH`] synthetic users exist, off removes them all.
    pub fn add_extra_users(&mut self, n: usize) -> usize {
        let n = n.min(MAX_EXTRA_USERS - self.extra_made);
        for _ in 0..n {
            self.extra_made += 1;
            let k = self.extra_made;
            let index = PEOPLE.len() + k - 1;
            self.users.push(User {
                id: pagerduty_user_id(index),
                name: format!("User {k}"),
                email: format!("user{k}@example.com"),
                role: "user",
                color: COLORS[index % COLORS.len()],
                synthetic: true,
            });
        }
        n
    }

    /// The ids of the synthetic users in the account, in order (for tests that fill a team).
    pub fn extra_user_ids(&self) -> Vec<String> {
        self.users
            .iter()
            .filter(|u| u.synthetic)
            .map(|u| u.id.clone())
            .collect()
    }

    /// Routes an authenticated request. Query and body checks happen before entity look-ups,
    /// so a 400 wins over a 404 [I: the docs do not order them].
    fn route(&mut self, req: &SimRequest) -> Answer {
        let segs = req.segs();
        let method = &req.method;
        match segs.as_slice() {
            ["teams"] => match *method {
                Method::GET => self.list_teams(req),
                Method::POST => self.create_team(req),
                _ => Err(PdError::method_not_allowed("GET, POST")),
            },
            ["teams", team] if !team.is_empty() => match *method {
                Method::GET => self.get_team(team),
                Method::PUT => self.update_team(req, team),
                Method::DELETE => self.delete_team(team),
                _ => Err(PdError::method_not_allowed("GET, PUT, DELETE")),
            },
            ["teams", team, "members"] if !team.is_empty() => match *method {
                Method::GET => self.list_members(req, team),
                _ => Err(PdError::method_not_allowed("GET")),
            },
            ["teams", team, "users", user] if !team.is_empty() && !user.is_empty() => match *method
            {
                Method::PUT => self.put_member(req, team, user),
                Method::DELETE => self.remove_member(team, user),
                _ => Err(PdError::method_not_allowed("PUT, DELETE")),
            },
            // User writes exist on the real API but are out of scope: 405 rather than 404,
            // since the path itself is known.
            ["users"] => match *method {
                Method::GET => self.list_users(req),
                _ => Err(PdError::method_not_allowed("GET")),
            },
            ["users", user] if !user.is_empty() => match *method {
                Method::GET => self.get_user(user),
                _ => Err(PdError::method_not_allowed("GET")),
            },
            _ => Err(PdError::not_found()),
        }
    }

    // ---- teams -------------------------------------------------------------------------

    /// `GET /teams[?query=&limit=&offset=&total=]` → `{"teams":[...],"limit","offset","more",
    /// "total"}`, in name order [I].
    fn list_teams(&self, req: &SimRequest) -> Answer {
        let page = Paging::from_request(req)?;
        let query = req.query_param("query").unwrap_or("").to_lowercase();
        let mut teams: Vec<&Team> = self
            .teams
            .values()
            .filter(|t| query.is_empty() || t.name.to_lowercase().contains(&query))
            .collect();
        teams.sort_by(|a, b| {
            a.name
                .to_lowercase()
                .cmp(&b.name.to_lowercase())
                .then_with(|| a.id.cmp(&b.id))
        });
        let items = teams.into_iter().map(|t| self.team_json(t));
        Ok(SimResponse::json(200, page.answer("teams", items)))
    }

    /// `POST /teams` with `{"team":{...}}` → 201 `{"team":{...}}`.
    fn create_team(&mut self, req: &SimRequest) -> Answer {
        let body = team_body(req)?;
        let fields = TeamFields::parse(&body)?;
        let Some(name) = fields.name.clone() else {
            return Err(PdError::invalid("Name can't be blank"));
        };
        self.check_name_free(&name, None)?;
        let parent = match &fields.parent {
            Some(Some(parent)) => Some(self.check_parent(parent, None)?),
            _ => None,
        };
        if self.teams.len() >= self.team_limit {
            // Not a PagerDuty behaviour: the simulator's own bound.
            return Err(PdError::new(500, INTERNAL_ERROR)
                .with_errors(vec!["Simulator team limit reached".into()]));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let team = Team {
            id: pagerduty_id(TEAM_ID_SALT, seq),
            name,
            description: fields.description.flatten(),
            parent,
            default_role: fields.default_role.unwrap_or("manager"),
            members: Vec::new(),
        };
        let answer = json!({ "team": self.team_json(&team) });
        self.by_id.insert(team.id.clone(), seq);
        self.teams.insert(seq, team);
        Ok(SimResponse::json(201, answer))
    }

    /// `GET /teams/{id}` → `{"team":{...}}`; `include[]=privileges` is ignored.
    fn get_team(&self, team_id: &str) -> Answer {
        let team = self.team(team_id)?;
        Ok(SimResponse::json(
            200,
            json!({ "team": self.team_json(team) }),
        ))
    }

    /// `PUT /teams/{id}` with `{"team":{...}}` → 200 `{"team":{...}}`. Partial: absent fields
    /// are kept, `null` clears `description` and `parent` [I].
    fn update_team(&mut self, req: &SimRequest, team_id: &str) -> Answer {
        let body = team_body(req)?;
        let fields = TeamFields::parse(&body)?;
        let seq = self.seq_of(team_id)?;
        if let Some(name) = &fields.name {
            self.check_name_free(name, Some(seq))?;
        }
        let parent = match &fields.parent {
            None => None,
            Some(None) => Some(None),
            Some(Some(parent)) => Some(Some(self.check_parent(parent, Some(team_id))?)),
        };
        let Some(team) = self.teams.get_mut(&seq) else {
            return Err(PdError::not_found());
        };
        if let Some(name) = fields.name {
            team.name = name;
        }
        if let Some(description) = fields.description {
            team.description = description;
        }
        if let Some(parent) = parent {
            team.parent = parent;
        }
        if let Some(default_role) = fields.default_role {
            team.default_role = default_role;
        }
        let team = self.teams.get(&seq).ok_or_else(PdError::not_found)?;
        Ok(SimResponse::json(
            200,
            json!({ "team": self.team_json(team) }),
        ))
    }

    /// `DELETE /teams/{id}` → 204; refused while the team has subteams [S: spec `deleteTeam`;
    /// the 400 is inferred]. `reassignment_team` is accepted and ignored (no incidents here).
    fn delete_team(&mut self, team_id: &str) -> Answer {
        let seq = self.seq_of(team_id)?;
        if self
            .teams
            .values()
            .any(|t| t.parent.as_deref() == Some(team_id))
        {
            return Err(PdError::invalid(
                "Team cannot be deleted while it has subteams",
            ));
        }
        if let Some(team) = self.teams.remove(&seq) {
            self.by_id.remove(&team.id);
        }
        Ok(SimResponse::empty(204))
    }

    // ---- members -----------------------------------------------------------------------

    /// `GET /teams/{id}/members[?limit=&offset=&total=&include[]=users]` →
    /// `{"members":[{"user":{...},"role"}],"limit","offset","more","total"}`. With
    /// `include[]=users` each `user` is the full user object instead of a `user_reference`.
    fn list_members(&self, req: &SimRequest, team_id: &str) -> Answer {
        let page = Paging::from_request(req)?;
        let expand = req
            .query
            .iter()
            .any(|(k, v)| k == "include[]" && v == "users");
        let team = self.team(team_id)?;
        let items = team.members.iter().map(|member| {
            let user = match self.user(&member.user_id) {
                Some(user) if expand => self.user_json(user),
                Some(user) => user_reference(user),
                // Unreachable: leaving the account removes a user from every team.
                None => json!({"id": member.user_id, "type": "user_reference"}),
            };
            json!({"user": user, "role": member.role.as_str()})
        });
        Ok(SimResponse::json(200, page.answer("members", items)))
    }

    /// `PUT /teams/{id}/users/{user_id}` with an optional `{"role"}` → 204. Adds the user, or
    /// changes the role of a member; without a role a new member gets `manager` (the team role
    /// of account role `user`) [S: Terraform docs] and a member keeps theirs [I].
    fn put_member(&mut self, req: &SimRequest, team_id: &str, user_id: &str) -> Answer {
        let role = member_role(req)?;
        let seq = self.seq_of(team_id)?;
        if self.user(user_id).is_none() {
            // [I] status: the docs list 404 for this route without saying for what.
            return Err(PdError::not_found());
        }
        let Some(team) = self.teams.get_mut(&seq) else {
            return Err(PdError::not_found());
        };
        match team.members.iter_mut().find(|m| m.user_id == user_id) {
            Some(member) => {
                if let Some(role) = role {
                    member.role = role;
                }
            }
            None => team.members.push(Member {
                user_id: user_id.to_string(),
                role: role.unwrap_or(Role::Manager),
            }),
        }
        Ok(SimResponse::empty(204))
    }

    /// `DELETE /teams/{id}/users/{user_id}` → 204, also for a user who is not a member [I].
    fn remove_member(&mut self, team_id: &str, user_id: &str) -> Answer {
        let seq = self.seq_of(team_id)?;
        if self.user(user_id).is_none() {
            return Err(PdError::not_found());
        }
        if let Some(team) = self.teams.get_mut(&seq) {
            team.members.retain(|m| m.user_id != user_id);
        }
        Ok(SimResponse::empty(204))
    }

    // ---- users -------------------------------------------------------------------------

    /// `GET /users[?query=&team_ids[]=&limit=&offset=&total=]` → `{"users":[...],...}` in account
    /// order; `query` matches the name or the email [I: case-insensitive substring].
    fn list_users(&self, req: &SimRequest) -> Answer {
        let page = Paging::from_request(req)?;
        let query = req.query_param("query").unwrap_or("").to_lowercase();
        let team_ids: Vec<&str> = req
            .query
            .iter()
            .filter(|(k, _)| k == "team_ids[]")
            .map(|(_, v)| v.as_str())
            .collect();
        let users = self
            .users
            .iter()
            .filter(|u| {
                query.is_empty()
                    || u.name.to_lowercase().contains(&query)
                    || u.email.to_lowercase().contains(&query)
            })
            .filter(|u| {
                team_ids.is_empty()
                    || team_ids.iter().any(|id| {
                        self.team(id)
                            .is_ok_and(|t| t.members.iter().any(|m| m.user_id == u.id))
                    })
            })
            .map(|u| self.user_json(u));
        Ok(SimResponse::json(200, page.answer("users", users)))
    }

    /// `GET /users/{id}` → `{"user":{...}}`.
    fn get_user(&self, user_id: &str) -> Answer {
        let user = self.user(user_id).ok_or_else(PdError::not_found)?;
        Ok(SimResponse::json(
            200,
            json!({ "user": self.user_json(user) }),
        ))
    }

    // ---- state helpers -----------------------------------------------------------------

    fn seq_of(&self, team_id: &str) -> Result<u64, PdError> {
        self.by_id
            .get(team_id)
            .copied()
            .ok_or_else(PdError::not_found)
    }

    fn team(&self, team_id: &str) -> Result<&Team, PdError> {
        let seq = self.seq_of(team_id)?;
        self.teams.get(&seq).ok_or_else(PdError::not_found)
    }

    fn user(&self, user_id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == user_id)
    }

    /// 400 when another team (not `own`) has this name, compared case-insensitively [I].
    fn check_name_free(&self, name: &str, own: Option<u64>) -> Result<(), PdError> {
        let lower = name.to_lowercase();
        let taken = self
            .teams
            .iter()
            .any(|(seq, t)| Some(*seq) != own && t.name.to_lowercase() == lower);
        if taken {
            // [I] text: Rails' uniqueness message as a full message.
            return Err(PdError::invalid("Name has already been taken"));
        }
        Ok(())
    }

    /// The parent id, when it names an existing team that would not make a cycle [I: 400s].
    fn check_parent(&self, parent: &str, own: Option<&str>) -> Result<String, PdError> {
        if self.team(parent).is_err() {
            return Err(PdError::invalid("Parent team not found"));
        }
        if let Some(own) = own {
            // Walk up from the new parent: meeting the team itself would close a cycle.
            let mut cursor = Some(parent.to_string());
            let mut steps = 0;
            while let Some(id) = cursor {
                if id == own || steps > self.teams.len() {
                    return Err(PdError::invalid(
                        "Parent team cannot be the team itself or one of its subteams",
                    ));
                }
                cursor = self.team(&id).ok().and_then(|t| t.parent.clone());
                steps += 1;
            }
        }
        Ok(parent.to_string())
    }

    // ---- JSON --------------------------------------------------------------------------

    /// The team object [S: spec `Team` examples; `parent` from go-pagerduty/Terraform].
    fn team_json(&self, team: &Team) -> Value {
        let parent = team
            .parent
            .as_deref()
            .map(|id| match self.team(id) {
                Ok(parent) => team_reference(parent),
                Err(_) => json!({"id": id, "type": "team_reference"}),
            })
            .unwrap_or(Value::Null);
        json!({
            "id": team.id,
            "type": "team",
            "summary": team.name,
            "self": format!("{API_BASE}/teams/{}", team.id),
            "html_url": format!("{WEB_BASE}/teams/{}", team.id),
            "name": team.name,
            "description": team.description,
            "parent": parent,
            "default_role": team.default_role,
        })
    }

    /// The user object [S: spec `User` and its example; constant fields inferred].
    fn user_json(&self, user: &User) -> Value {
        let teams: Vec<Value> = self
            .teams
            .values()
            .filter(|t| t.members.iter().any(|m| m.user_id == user.id))
            .map(team_reference)
            .collect();
        json!({
            "id": user.id,
            "type": "user",
            "summary": user.name,
            "self": format!("{API_BASE}/users/{}", user.id),
            "html_url": format!("{WEB_BASE}/users/{}", user.id),
            "name": user.name,
            "email": user.email,
            "time_zone": "Etc/UTC",
            "color": user.color,
            "role": user.role,
            "avatar_url": AVATAR_URL,
            "description": null,
            "invitation_sent": false,
            "job_title": null,
            "created_via_sso": false,
            "contact_methods": [],
            "notification_rules": [],
            "teams": teams,
        })
    }

    /// Checks `Authorization: Token token=<key>` [S: spec `securitySchemes.api_key`].
    fn authenticated(&self, req: &SimRequest) -> bool {
        req.header("authorization")
            .and_then(|value| value.strip_prefix("Token token="))
            .is_some_and(|key| !key.is_empty() && key == self.credential)
    }
}

impl Vendor for PagerDuty {
    fn kind(&self) -> &'static str {
        "pagerduty"
    }

    fn handle(&mut self, req: &SimRequest) -> SimResponse {
        if self.rate_limited {
            // Body of the clients' 429 mocks; the `ratelimit-*` headers as PagerDuty's rate
            // limit page describes them, values inferred.
            return PdError::new(429, RATE_LIMIT_EXCEEDED)
                .into_response()
                .with_header("ratelimit-limit", "960")
                .with_header("ratelimit-remaining", "0")
                .with_header("ratelimit-reset", "60");
        }
        if !self.authenticated(req) {
            // 401 [S: spec `Unauthorized`]; code 2006 and its text [I: the "Errors" page].
            return PdError::new(401, AUTHENTICATION_FAILED).into_response();
        }
        self.route(req).unwrap_or_else(PdError::into_response)
    }

    /// - `rate_limited`: every request answers 429 / 2020.
    /// - `extra_users`: on makes sure [`EXTRA_USERS_SWITCH`] synthetic users exist (see
    ///   [`PagerDuty::add_extra_users`]); off removes every synthetic user from the account
    ///   and from every team.
    fn set_switch(&mut self, name: &str, on: bool) -> bool {
        match name {
            "rate_limited" => self.rate_limited = on,
            "extra_users" => {
                if on {
                    let present = self.users.iter().filter(|u| u.synthetic).count();
                    self.add_extra_users(EXTRA_USERS_SWITCH.saturating_sub(present));
                } else {
                    let gone: Vec<String> = self.extra_user_ids();
                    self.users.retain(|u| !u.synthetic);
                    for team in self.teams.values_mut() {
                        team.members.retain(|m| !gone.contains(&m.user_id));
                    }
                }
            }
            _ => return false,
        }
        true
    }

    /// The user leaves the account: no longer listed or found, and removed from every team
    /// (PagerDuty deletes a user's team memberships with the user).
    fn remove_person(&mut self, email: &str) -> bool {
        let Some(position) = self
            .users
            .iter()
            .position(|u| u.email.eq_ignore_ascii_case(email))
        else {
            return false;
        };
        let user = self.users.remove(position);
        for team in self.teams.values_mut() {
            team.members.retain(|m| m.user_id != user.id);
        }
        true
    }

    /// `{"error":{"message","code"}}` with the code PagerDuty gives `status`
    /// ([`code_for_status`]).
    fn error_body(&self, status: u16, message: &str) -> SimResponse {
        error_response(status, code_for_status(status), message, &[])
    }
}

// ---- request parsing ---------------------------------------------------------------------

/// Offset pagination of a list request [S: spec `offset_*` parameters, go-pagerduty].
#[derive(Debug, Clone, Copy)]
struct Paging {
    limit: usize,
    offset: usize,
    total: bool,
}

impl Paging {
    fn from_request(req: &SimRequest) -> Result<Paging, PdError> {
        let number = |name: &str| -> Result<Option<usize>, PdError> {
            match req.query_param(name) {
                None | Some("") => Ok(None),
                Some(text) => text.parse::<usize>().map(Some).map_err(|_| {
                    // [I] text.
                    PdError::invalid(format!("{name} must be a non-negative integer"))
                }),
            }
        };
        let limit = match number("limit")? {
            None => DEFAULT_LIMIT,
            Some(0) => return Err(PdError::invalid("limit must be greater than 0")),
            Some(limit) => limit.min(MAX_LIMIT),
        };
        let offset = number("offset")?.unwrap_or(0);
        // `total` is a boolean defaulting to false [S: spec `offset_total`].
        let total = req.query_param("total") == Some("true");
        Ok(Paging {
            limit,
            offset,
            total,
        })
    }

    /// The list answer: `{key: page, "limit", "offset", "more", "total"}`.
    fn answer(self, key: &str, items: impl Iterator<Item = Value>) -> Value {
        let all: Vec<Value> = items.collect();
        let count = all.len();
        let page: Vec<Value> = all.into_iter().skip(self.offset).take(self.limit).collect();
        let more = self.offset.saturating_add(page.len()) < count;
        let mut body = Map::new();
        body.insert(key.to_string(), Value::Array(page));
        body.insert("limit".into(), json!(self.limit));
        body.insert("offset".into(), json!(self.offset));
        body.insert("more".into(), json!(more));
        body.insert(
            "total".into(),
            if self.total {
                json!(count)
            } else {
                Value::Null
            },
        );
        Value::Object(body)
    }
}

/// The body of a write as a JSON object: 400 when it is present but not JSON, or not sent as
/// `application/json` [I: PagerDuty documents `Content-Type: application/json` as required].
/// `None` when there is no body.
fn json_body(req: &SimRequest) -> Result<Option<Map<String, Value>>, PdError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let is_json = req.header("content-type").is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
    });
    if !is_json {
        return Err(PdError::invalid("Content-Type must be application/json"));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(PdError::invalid("The request body must be a JSON object")),
        Err(_) => Err(PdError::invalid("The request body is not valid JSON")),
    }
}

/// The `team` object of a create or update body [S: spec: `team` is required].
fn team_body(req: &SimRequest) -> Result<Map<String, Value>, PdError> {
    let body = json_body(req)?.ok_or_else(|| PdError::invalid("Team is required"))?;
    match body.get("team") {
        Some(Value::Object(team)) => Ok(team.clone()),
        // [I] texts.
        None | Some(Value::Null) => Err(PdError::invalid("Team is required")),
        Some(_) => Err(PdError::invalid("Team must be an object")),
    }
}

/// The writable fields of a team body, each `None` when absent; `description` and `parent`
/// are `Some(None)` when `null`.
#[derive(Debug, Default)]
struct TeamFields {
    name: Option<String>,
    description: Option<Option<String>>,
    parent: Option<Option<String>>,
    default_role: Option<&'static str>,
}

impl TeamFields {
    /// Checks every field and reports all problems at once in `errors` [I: texts].
    fn parse(team: &Map<String, Value>) -> Result<TeamFields, PdError> {
        let mut errors = Vec::new();
        let mut fields = TeamFields::default();
        match team.get("type") {
            // `type` is required by the schema; PagerDuty's own clients always send it, the
            // simulator accepts its absence [I] but not another type.
            None | Some(Value::Null) => {}
            Some(Value::String(t)) if t == "team" => {}
            Some(_) => errors.push("Type must be team".to_string()),
        }
        match team.get("name") {
            None => {}
            Some(Value::String(name)) if name.trim().is_empty() => {
                errors.push("Name can't be blank".into())
            }
            Some(Value::String(name)) if name.chars().count() > MAX_NAME_CHARS => errors.push(
                format!("Name is too long (maximum is {MAX_NAME_CHARS} characters)"),
            ),
            Some(Value::String(name)) => fields.name = Some(name.clone()),
            Some(Value::Null) => errors.push("Name can't be blank".into()),
            Some(_) => errors.push("Name must be a string".into()),
        }
        match team.get("description") {
            None => {}
            Some(Value::Null) => fields.description = Some(None),
            Some(Value::String(text)) if text.chars().count() > MAX_DESCRIPTION_CHARS => errors
                .push(format!(
                    "Description is too long (maximum is {MAX_DESCRIPTION_CHARS} characters)"
                )),
            Some(Value::String(text)) => fields.description = Some(Some(text.clone())),
            Some(_) => errors.push("Description must be a string".into()),
        }
        match team.get("default_role") {
            None | Some(Value::Null) => {}
            Some(Value::String(role)) if role == "manager" => fields.default_role = Some("manager"),
            Some(Value::String(role)) if role == "none" => fields.default_role = Some("none"),
            Some(_) => errors.push("Default role must be one of manager, none".into()),
        }
        match team.get("parent") {
            None => {}
            Some(Value::Null) => fields.parent = Some(None),
            Some(Value::Object(parent)) => {
                let type_ok = match parent.get("type") {
                    None | Some(Value::Null) => true,
                    Some(Value::String(t)) => t == "team_reference" || t == "team",
                    Some(_) => false,
                };
                match parent.get("id") {
                    Some(Value::String(id)) if type_ok && !id.is_empty() => {
                        fields.parent = Some(Some(id.clone()))
                    }
                    _ => errors.push("Parent must be a team reference".into()),
                }
            }
            Some(_) => errors.push("Parent must be a team reference".into()),
        }
        if errors.is_empty() {
            Ok(fields)
        } else {
            Err(PdError::new(400, INVALID_INPUT).with_errors(errors))
        }
    }
}

/// The optional `role` of a membership body [S: spec enum]; `null` or no body = absent.
fn member_role(req: &SimRequest) -> Result<Option<Role>, PdError> {
    let Some(body) = json_body(req)? else {
        return Ok(None);
    };
    match body.get("role") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Role::parse(text).map(Some).ok_or_else(|| {
            // [S] a 400 for a role outside the enum; [I] the text.
            PdError::invalid(format!(
                "Role {text:?} is not valid; must be one of observer, responder, manager"
            ))
        }),
        Some(_) => Err(PdError::invalid("Role must be a string")),
    }
}

fn team_reference(team: &Team) -> Value {
    json!({
        "id": team.id,
        "type": "team_reference",
        "summary": team.name,
        "self": format!("{API_BASE}/teams/{}", team.id),
        "html_url": format!("{WEB_BASE}/teams/{}", team.id),
    })
}

fn user_reference(user: &User) -> Value {
    json!({
        "id": user.id,
        "type": "user_reference",
        "summary": user.name,
        "self": format!("{API_BASE}/users/{}", user.id),
        "html_url": format!("{WEB_BASE}/users/{}", user.id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderName, HeaderValue};

    const KEY: &str = "test-pd-key";
    const ACCEPT: &str = "application/vnd.pagerduty+json;version=2";

    fn sim() -> PagerDuty {
        PagerDuty::new(KEY)
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

    /// An authenticated request as PagerDuty's clients send it, with a JSON body (or none when
    /// `body` is empty).
    fn call(sim: &mut PagerDuty, method: Method, path: &str, body: &str) -> SimResponse {
        let auth = format!("Token token={KEY}");
        let mut pairs = vec![("authorization", auth.as_str()), ("accept", ACCEPT)];
        if !body.is_empty() {
            pairs.push(("content-type", "application/json"));
        }
        raw(sim, method, path, headers(&pairs), body)
    }

    fn raw(
        sim: &mut PagerDuty,
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

    fn get(sim: &mut PagerDuty, path: &str) -> (u16, Value) {
        let resp = call(sim, Method::GET, path, "");
        (resp.status.as_u16(), resp.json_body())
    }

    fn create(sim: &mut PagerDuty, team: Value) -> String {
        let resp = call(
            sim,
            Method::POST,
            "/teams",
            &json!({ "team": team }).to_string(),
        );
        assert_eq!(resp.status, 201, "{}", resp.json_body());
        resp.json_body()["team"]["id"]
            .as_str()
            .expect("team id")
            .to_string()
    }

    fn create_named(sim: &mut PagerDuty, name: &str) -> String {
        create(sim, json!({"type": "team", "name": name}))
    }

    fn put_member(sim: &mut PagerDuty, team: &str, user: &str, body: &str) -> SimResponse {
        call(
            sim,
            Method::PUT,
            &format!("/teams/{team}/users/{user}"),
            body,
        )
    }

    fn uid(index: usize) -> String {
        pagerduty_user_id(index)
    }

    /// Asserts PagerDuty's error shape, code and message (and `errors` when given).
    fn assert_error(resp: &SimResponse, status: u16, code: u32, message: &str) {
        let body = resp.json_body();
        assert_eq!(resp.status, status, "{body}");
        assert_eq!(body["error"]["code"], json!(code), "{body}");
        assert_eq!(body["error"]["message"], json!(message), "{body}");
        assert_eq!(body.as_object().map(Map::len), Some(1), "{body}");
        assert_eq!(
            header(resp, "content-type").as_deref(),
            Some("application/json")
        );
    }

    fn assert_invalid(resp: &SimResponse, detail: &str) {
        assert_error(resp, 400, 2001, "Invalid Input Provided");
        let errors = resp.json_body()["error"]["errors"].clone();
        assert!(
            errors
                .as_array()
                .is_some_and(|e| e.iter().any(|x| x.as_str() == Some(detail))),
            "{detail:?} not in {errors}"
        );
    }

    fn assert_not_found(resp: &SimResponse) {
        assert_error(resp, 404, 2100, "Not Found");
        assert_eq!(resp.json_body()["error"].get("errors"), None);
    }

    fn ids(list: &Value, key: &str) -> Vec<String> {
        list[key]
            .as_array()
            .expect("a list")
            .iter()
            .map(|item| {
                let id = if item.get("user").is_some() {
                    &item["user"]["id"]
                } else {
                    &item["id"]
                };
                id.as_str().expect("id").to_string()
            })
            .collect()
    }

    #[test]
    fn kind_is_pagerduty() {
        assert_eq!(sim().kind(), "pagerduty");
    }

    #[test]
    fn auth_requires_token_header_on_every_route() {
        let mut sim = sim();
        let team = create_named(&mut sim, "Ops");
        let paths = [
            (Method::GET, "/teams".to_string()),
            (Method::POST, "/teams".to_string()),
            (Method::GET, format!("/teams/{team}")),
            (Method::PUT, format!("/teams/{team}")),
            (Method::DELETE, format!("/teams/{team}")),
            (Method::GET, format!("/teams/{team}/members")),
            (Method::PUT, format!("/teams/{team}/users/{}", uid(1))),
            (Method::DELETE, format!("/teams/{team}/users/{}", uid(1))),
            (Method::GET, "/users".to_string()),
            (Method::GET, format!("/users/{}", uid(0))),
            (Method::GET, "/nowhere".to_string()),
        ];
        let bearer = format!("Bearer {KEY}");
        let bare = format!("Token {KEY}");
        let wrong: [&[(&'static str, &str)]; 5] = [
            &[],
            &[("authorization", "Token token=wrong")],
            &[("authorization", &bearer)],
            &[("authorization", &bare)],
            &[("authorization", "Token token=")],
        ];
        for (method, path) in &paths {
            for pairs in wrong {
                let resp = raw(&mut sim, method.clone(), path, headers(pairs), "");
                assert_error(&resp, 401, 2006, "Authentication failed");
            }
        }
        // The team is untouched by all of that.
        assert_eq!(get(&mut sim, &format!("/teams/{team}")).0, 200);
    }

    #[test]
    fn accept_header_is_optional() {
        let mut sim = sim();
        let auth = format!("Token token={KEY}");
        let resp = raw(
            &mut sim,
            Method::GET,
            "/users",
            headers(&[("authorization", &auth)]),
            "",
        );
        assert_eq!(resp.status, 200);
    }

    #[test]
    fn create_team_answers_201_with_the_team_object() {
        let mut sim = sim();
        let resp = call(
            &mut sim,
            Method::POST,
            "/teams",
            r#"{"team":{"type":"team","name":"Engineering","description":"All engineering"}}"#,
        );
        assert_eq!(resp.status, 201);
        let team = &resp.json_body()["team"];
        let id = team["id"].as_str().expect("id");
        assert_eq!(id.len(), 7);
        assert!(id.starts_with('P'));
        assert_eq!(
            *team,
            json!({
                "id": id,
                "type": "team",
                "summary": "Engineering",
                "self": format!("https://api.pagerduty.com/teams/{id}"),
                "html_url": format!("https://subdomain.pagerduty.com/teams/{id}"),
                "name": "Engineering",
                "description": "All engineering",
                "parent": null,
                "default_role": "manager",
            })
        );
        assert_eq!(team.get("member_count"), None, "no member count");
        // Without description or type; with default_role none.
        let other = create(&mut sim, json!({"name": "Quiet", "default_role": "none"}));
        let (status, body) = get(&mut sim, &format!("/teams/{other}"));
        assert_eq!(status, 200);
        assert_eq!(body["team"]["description"], Value::Null);
        assert_eq!(body["team"]["default_role"], "none");
        assert_ne!(other, id, "ids are distinct");
    }

    #[test]
    fn duplicate_team_name_is_400_2001_case_insensitive() {
        let mut sim = sim();
        create_named(&mut sim, "Platform");
        for name in ["Platform", "platform", "PLATFORM"] {
            let body = json!({"team": {"type": "team", "name": name}}).to_string();
            let resp = call(&mut sim, Method::POST, "/teams", &body);
            assert_invalid(&resp, "Name has already been taken");
        }
        let (_, list) = get(&mut sim, "/teams?total=true");
        assert_eq!(list["total"], 1);
    }

    #[test]
    fn create_validation_errors() {
        let mut sim = sim();
        let long = "x".repeat(101);
        let cases = [
            (json!({"team": {"type": "team"}}), "Name can't be blank"),
            (json!({"team": {"name": "  "}}), "Name can't be blank"),
            (json!({"team": {"name": null}}), "Name can't be blank"),
            (json!({"team": {"name": 7}}), "Name must be a string"),
            (
                json!({"team": {"name": long}}),
                "Name is too long (maximum is 100 characters)",
            ),
            (
                json!({"team": {"name": "A", "description": "d".repeat(1025)}}),
                "Description is too long (maximum is 1024 characters)",
            ),
            (
                json!({"team": {"name": "A", "description": 3}}),
                "Description must be a string",
            ),
            (
                json!({"team": {"name": "A", "type": "team_reference"}}),
                "Type must be team",
            ),
            (
                json!({"team": {"name": "A", "default_role": "observer"}}),
                "Default role must be one of manager, none",
            ),
            (
                json!({"team": {"name": "A", "parent": "PABCDEF"}}),
                "Parent must be a team reference",
            ),
            (
                json!({"team": {"name": "A", "parent": {"type": "team_reference"}}}),
                "Parent must be a team reference",
            ),
            (
                json!({"team": {"name": "A", "parent": {"id": "PNOPE00", "type": "team_reference"}}}),
                "Parent team not found",
            ),
            (json!({"name": "A"}), "Team is required"),
            (json!({"team": "A"}), "Team must be an object"),
            (json!([1]), "The request body must be a JSON object"),
        ];
        for (body, detail) in cases {
            let resp = call(&mut sim, Method::POST, "/teams", &body.to_string());
            assert_invalid(&resp, detail);
        }
        // Characters, not bytes: 100 multi-byte characters are fine.
        create(&mut sim, json!({"name": "é".repeat(100)}));
        // Every problem is reported at once.
        let resp = call(
            &mut sim,
            Method::POST,
            "/teams",
            r#"{"team":{"name":"","description":1}}"#,
        );
        assert_eq!(
            resp.json_body()["error"]["errors"].as_array().map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn write_bodies_must_be_json() {
        let mut sim = sim();
        let auth = format!("Token token={KEY}");
        let resp = raw(
            &mut sim,
            Method::POST,
            "/teams",
            headers(&[("authorization", &auth), ("content-type", "text/plain")]),
            r#"{"team":{"name":"A"}}"#,
        );
        assert_invalid(&resp, "Content-Type must be application/json");
        let resp = call(&mut sim, Method::POST, "/teams", "{not json");
        assert_invalid(&resp, "The request body is not valid JSON");
        let resp = call(&mut sim, Method::POST, "/teams", "");
        assert_invalid(&resp, "Team is required");
        // `application/json; charset=utf-8` is JSON.
        let resp = raw(
            &mut sim,
            Method::POST,
            "/teams",
            headers(&[
                ("authorization", &auth),
                ("content-type", "application/json; charset=utf-8"),
            ]),
            r#"{"team":{"name":"A"}}"#,
        );
        assert_eq!(resp.status, 201);
    }

    #[test]
    fn get_team_and_unknown_ids() {
        let mut sim = sim();
        let id = create_named(&mut sim, "Ops");
        let (status, body) = get(&mut sim, &format!("/teams/{id}?include[]=privileges"));
        assert_eq!(status, 200);
        assert_eq!(body["team"]["name"], "Ops");
        for path in ["/teams/PNOPE00", "/teams/ops", "/teams/PNOPE00/members"] {
            assert_not_found(&call(&mut sim, Method::GET, path, ""));
        }
        // Percent-decoded segment: an encoded id still finds the team.
        let (status, _) = get(&mut sim, &format!("/teams/{}", id.replace('P', "%50")));
        assert_eq!(status, 200);
    }

    #[test]
    fn put_team_is_a_partial_update() {
        let mut sim = sim();
        let id = create(
            &mut sim,
            json!({"type": "team", "name": "Ops", "description": "Runs things"}),
        );
        let path = format!("/teams/{id}");
        let resp = call(
            &mut sim,
            Method::PUT,
            &path,
            r#"{"team":{"type":"team","name":"Operations"}}"#,
        );
        assert_eq!(resp.status, 200, "{}", resp.json_body());
        let team = &resp.json_body()["team"];
        assert_eq!(team["name"], "Operations");
        assert_eq!(team["summary"], "Operations");
        assert_eq!(team["description"], "Runs things", "kept");
        let resp = call(
            &mut sim,
            Method::PUT,
            &path,
            r#"{"team":{"description":"New","default_role":"none"}}"#,
        );
        assert_eq!(resp.json_body()["team"]["name"], "Operations", "kept");
        assert_eq!(resp.json_body()["team"]["description"], "New");
        assert_eq!(resp.json_body()["team"]["default_role"], "none");
        let resp = call(
            &mut sim,
            Method::PUT,
            &path,
            r#"{"team":{"description":null}}"#,
        );
        assert_eq!(resp.json_body()["team"]["description"], Value::Null);
        // Renaming to its own name in another case is not "taken".
        let resp = call(
            &mut sim,
            Method::PUT,
            &path,
            r#"{"team":{"name":"OPERATIONS"}}"#,
        );
        assert_eq!(resp.status, 200);
        let (_, body) = get(&mut sim, &path);
        assert_eq!(body["team"]["name"], "OPERATIONS");
    }

    #[test]
    fn put_team_errors() {
        let mut sim = sim();
        let id = create_named(&mut sim, "Ops");
        create_named(&mut sim, "Dev");
        let path = format!("/teams/{id}");
        let resp = call(&mut sim, Method::PUT, &path, r#"{"team":{"name":"dev"}}"#);
        assert_invalid(&resp, "Name has already been taken");
        let resp = call(&mut sim, Method::PUT, &path, r#"{"team":{"name":""}}"#);
        assert_invalid(&resp, "Name can't be blank");
        let resp = call(&mut sim, Method::PUT, &path, r#"{"name":"X"}"#);
        assert_invalid(&resp, "Team is required");
        let resp = call(
            &mut sim,
            Method::PUT,
            "/teams/PNOPE00",
            r#"{"team":{"name":"X"}}"#,
        );
        assert_not_found(&resp);
        // Body problems win over the unknown id.
        let resp = call(
            &mut sim,
            Method::PUT,
            "/teams/PNOPE00",
            r#"{"team":{"name":""}}"#,
        );
        assert_eq!(resp.status, 400);
        let (_, body) = get(&mut sim, &path);
        assert_eq!(body["team"]["name"], "Ops", "unchanged");
    }

    #[test]
    fn parents_are_team_references() {
        let mut sim = sim();
        let root = create_named(&mut sim, "Root");
        let child = create(
            &mut sim,
            json!({"type": "team", "name": "Child", "parent": {"id": root, "type": "team_reference"}}),
        );
        let (_, body) = get(&mut sim, &format!("/teams/{child}"));
        assert_eq!(
            body["team"]["parent"],
            json!({
                "id": root,
                "type": "team_reference",
                "summary": "Root",
                "self": format!("https://api.pagerduty.com/teams/{root}"),
                "html_url": format!("https://subdomain.pagerduty.com/teams/{root}"),
            })
        );
        // A cycle, or the team as its own parent, is refused.
        let cycle = json!({"team": {"parent": {"id": child, "type": "team_reference"}}});
        let resp = call(
            &mut sim,
            Method::PUT,
            &format!("/teams/{root}"),
            &cycle.to_string(),
        );
        assert_invalid(
            &resp,
            "Parent team cannot be the team itself or one of its subteams",
        );
        let own = json!({"team": {"parent": {"id": root}}});
        let resp = call(
            &mut sim,
            Method::PUT,
            &format!("/teams/{root}"),
            &own.to_string(),
        );
        assert_eq!(resp.status, 400);
        // A parent cannot be deleted while it has subteams; clearing the parent allows it.
        let resp = call(&mut sim, Method::DELETE, &format!("/teams/{root}"), "");
        assert_invalid(&resp, "Team cannot be deleted while it has subteams");
        let resp = call(
            &mut sim,
            Method::PUT,
            &format!("/teams/{child}"),
            r#"{"team":{"parent":null}}"#,
        );
        assert_eq!(resp.json_body()["team"]["parent"], Value::Null);
        let resp = call(&mut sim, Method::DELETE, &format!("/teams/{root}"), "");
        assert_eq!(resp.status, 204);
    }

    #[test]
    fn delete_team_answers_204_then_404() {
        let mut sim = sim();
        let id = create_named(&mut sim, "Gone");
        put_member(&mut sim, &id, &uid(1), "");
        let path = format!("/teams/{id}");
        let resp = call(
            &mut sim,
            Method::DELETE,
            &format!("{path}?reassignment_team=PX"),
            "",
        );
        assert_eq!(resp.status, 204);
        assert!(resp.body.is_empty());
        assert_not_found(&call(&mut sim, Method::GET, &path, ""));
        assert_not_found(&call(&mut sim, Method::DELETE, &path, ""));
        // The name is free again.
        create_named(&mut sim, "Gone");
        let (_, user) = get(&mut sim, &format!("/users/{}", uid(1)));
        assert_eq!(user["user"]["teams"], json!([]));
    }

    #[test]
    fn list_teams_pages_filters_and_counts() {
        let mut sim = sim();
        for name in ["delta", "Alpha", "charlie", "Bravo", "echo"] {
            create_named(&mut sim, name);
        }
        let (status, body) = get(&mut sim, "/teams");
        assert_eq!(status, 200);
        let names: Vec<&str> = body["teams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Alpha", "Bravo", "charlie", "delta", "echo"]);
        assert_eq!(body["limit"], 25);
        assert_eq!(body["offset"], 0);
        assert_eq!(body["more"], false);
        assert_eq!(body["total"], Value::Null);

        let (_, body) = get(&mut sim, "/teams?limit=2&offset=1&total=true");
        let names: Vec<&str> = body["teams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Bravo", "charlie"]);
        assert_eq!(body["limit"], 2);
        assert_eq!(body["offset"], 1);
        assert_eq!(body["more"], true);
        assert_eq!(body["total"], 5);
        let (_, body) = get(&mut sim, "/teams?limit=2&offset=4");
        assert_eq!(body["teams"].as_array().unwrap().len(), 1);
        assert_eq!(body["more"], false);
        let (_, body) = get(&mut sim, "/teams?offset=50");
        assert_eq!(body["teams"], json!([]));
        assert_eq!(body["more"], false);

        // `query`: case-insensitive substring of the name.
        let (_, body) = get(&mut sim, "/teams?query=HA&total=true");
        assert_eq!(body["total"], 2, "Alpha, charlie");
        let (_, body) = get(&mut sim, "/teams?query=zzz");
        assert_eq!(body["teams"], json!([]));
        // `total` other than `true` is null.
        let (_, body) = get(&mut sim, "/teams?total=false");
        assert_eq!(body["total"], Value::Null);
    }

    #[test]
    fn limit_is_clamped_to_100_and_validated() {
        let mut sim = sim();
        let (_, body) = get(&mut sim, "/users?limit=1000");
        assert_eq!(body["limit"], 100);
        for (query, detail) in [
            ("limit=0", "limit must be greater than 0"),
            ("limit=ten", "limit must be a non-negative integer"),
            ("limit=-1", "limit must be a non-negative integer"),
            ("offset=x", "offset must be a non-negative integer"),
        ] {
            for path in ["/teams", "/users"] {
                let resp = call(&mut sim, Method::GET, &format!("{path}?{query}"), "");
                assert_invalid(&resp, detail);
            }
        }
        let team = create_named(&mut sim, "T");
        let resp = call(
            &mut sim,
            Method::GET,
            &format!("/teams/{team}/members?limit=0"),
            "",
        );
        assert_eq!(resp.status, 400);
    }

    #[test]
    fn members_add_update_list_and_remove() {
        let mut sim = sim();
        let team = create_named(&mut sim, "Ops");
        let members = format!("/teams/{team}/members");
        let (status, body) = get(&mut sim, &members);
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"members": [], "limit": 25, "offset": 0, "more": false, "total": null})
        );

        // No body: the default team role for account role `user` is `manager`.
        let resp = put_member(&mut sim, &team, &uid(2), "");
        assert_eq!(resp.status, 204);
        assert!(resp.body.is_empty());
        let resp = put_member(&mut sim, &team, &uid(1), r#"{"role":"observer"}"#);
        assert_eq!(resp.status, 204);
        let resp = put_member(&mut sim, &team, &uid(3), r#"{"role":"responder"}"#);
        assert_eq!(resp.status, 204);
        let (_, body) = get(&mut sim, &members);
        assert_eq!(
            body["members"][0],
            json!({
                "user": {
                    "id": uid(2),
                    "type": "user_reference",
                    "summary": "Carol Chen",
                    "self": format!("https://api.pagerduty.com/users/{}", uid(2)),
                    "html_url": format!("https://subdomain.pagerduty.com/users/{}", uid(2)),
                },
                "role": "manager",
            })
        );
        assert_eq!(
            ids(&body, "members"),
            [uid(2), uid(1), uid(3)],
            "added order"
        );
        let roles: Vec<&str> = body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["manager", "observer", "responder"]);

        // Update: PUT again with a role changes it; without a role keeps it.
        assert_eq!(
            put_member(&mut sim, &team, &uid(1), r#"{"role":"manager"}"#).status,
            204
        );
        assert_eq!(put_member(&mut sim, &team, &uid(1), "{}").status, 204);
        assert_eq!(
            put_member(&mut sim, &team, &uid(1), r#"{"role":null}"#).status,
            204
        );
        let (_, body) = get(&mut sim, &members);
        assert_eq!(body["members"][1]["role"], "manager");
        assert_eq!(body["members"].as_array().unwrap().len(), 3, "no duplicate");

        // Remove, and remove again (not a member any more): 204 both times.
        let path = format!("/teams/{team}/users/{}", uid(2));
        let resp = call(&mut sim, Method::DELETE, &path, "");
        assert_eq!(resp.status, 204);
        assert!(resp.body.is_empty());
        assert_eq!(call(&mut sim, Method::DELETE, &path, "").status, 204);
        let (_, body) = get(&mut sim, &format!("{members}?total=true"));
        assert_eq!(ids(&body, "members"), [uid(1), uid(3)]);
        assert_eq!(body["total"], 2);
    }

    #[test]
    fn members_include_users_expands_each_user() {
        let mut sim = sim();
        let team = create_named(&mut sim, "Ops");
        put_member(&mut sim, &team, &uid(0), r#"{"role":"manager"}"#);
        put_member(&mut sim, &team, &uid(4), r#"{"role":"responder"}"#);
        for query in [
            "include[]=users",
            "include%5B%5D=users",
            "include[]=users&limit=5",
        ] {
            let (_, body) = get(&mut sim, &format!("/teams/{team}/members?{query}"));
            let first = &body["members"][0];
            assert_eq!(first["role"], "manager");
            assert_eq!(first["user"]["type"], "user", "{query}");
            assert_eq!(first["user"]["email"], "ada@example.com");
            assert_eq!(first["user"]["name"], "Ada Admin");
            assert_eq!(first["user"]["role"], "owner");
            assert_eq!(body["members"][1]["user"]["email"], "eve@example.com");
            assert_eq!(body["members"][1]["user"]["name"], "Eve Ekström");
        }
        // Another include value is ignored.
        let (_, body) = get(&mut sim, &format!("/teams/{team}/members?include[]=teams"));
        assert_eq!(body["members"][0]["user"]["type"], "user_reference");
    }

    #[test]
    fn member_errors() {
        let mut sim = sim();
        let team = create_named(&mut sim, "Ops");
        for role in ["read_only_user", "Manager", "admin", ""] {
            let body = json!({ "role": role }).to_string();
            let resp = put_member(&mut sim, &team, &uid(1), &body);
            assert_eq!(resp.status, 400, "{role}");
            assert_eq!(resp.json_body()["error"]["code"], 2001);
        }
        assert_invalid(
            &put_member(&mut sim, &team, &uid(1), r#"{"role":1}"#),
            "Role must be a string",
        );
        assert_invalid(
            &put_member(&mut sim, &team, &uid(1), "nope"),
            "The request body is not valid JSON",
        );
        assert_not_found(&put_member(&mut sim, &team, "PNOUSER", ""));
        assert_not_found(&put_member(&mut sim, "PNOTEAM", &uid(1), ""));
        let del = |sim: &mut PagerDuty, t: &str, u: &str| {
            call(sim, Method::DELETE, &format!("/teams/{t}/users/{u}"), "")
        };
        assert_not_found(&del(&mut sim, &team, "PNOUSER"));
        assert_not_found(&del(&mut sim, "PNOTEAM", &uid(1)));
        let (_, body) = get(&mut sim, &format!("/teams/{team}/members"));
        assert_eq!(body["members"], json!([]), "nothing was added");
    }

    #[test]
    fn a_team_of_250_members_pages_in_three() {
        let mut sim = PagerDuty::with_extra_users(KEY, 250);
        let extra = sim.extra_user_ids();
        assert_eq!(extra.len(), 250);
        let team = create_named(&mut sim, "Big");
        for user in &extra {
            assert_eq!(put_member(&mut sim, &team, user, "").status, 204);
        }
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let (_, body) = get(
                &mut sim,
                &format!(
                    "/teams/{team}/members?limit=100&offset={offset}&total=true&include[]=users"
                ),
            );
            assert_eq!(body["total"], 250);
            let page = ids(&body, "members");
            offset += page.len();
            seen.extend(page);
            if body["more"] == false {
                break;
            }
        }
        assert_eq!(seen, extra);
        let (_, body) = get(
            &mut sim,
            &format!("/teams/{team}/members?offset=200&limit=100&include[]=users"),
        );
        assert_eq!(body["members"].as_array().unwrap().len(), 50);
        assert_eq!(body["members"][0]["user"]["email"], "user201@example.com");
        assert_eq!(body["members"][0]["user"]["name"], "User 201");
    }

    #[test]
    fn extra_users_have_documented_ids_and_the_switch_adds_and_removes_them() {
        let mut sim = sim();
        assert_eq!(sim.add_extra_users(2), 2);
        assert_eq!(sim.extra_user_ids(), [uid(6), uid(7)]);
        let (_, body) = get(&mut sim, "/users?query=user2@example.com");
        assert_eq!(ids(&body, "users"), [uid(7)]);

        assert!(sim.set_switch("extra_users", true));
        assert_eq!(sim.extra_user_ids().len(), EXTRA_USERS_SWITCH);
        assert!(sim.set_switch("extra_users", true), "idempotent");
        assert_eq!(sim.extra_user_ids().len(), EXTRA_USERS_SWITCH);
        let (_, body) = get(&mut sim, "/users?total=true");
        assert_eq!(body["total"], PEOPLE.len() + EXTRA_USERS_SWITCH);

        let team = create_named(&mut sim, "T");
        put_member(&mut sim, &team, &uid(10), "");
        put_member(&mut sim, &team, &uid(1), "");
        assert!(sim.set_switch("extra_users", false));
        assert!(sim.extra_user_ids().is_empty());
        let (_, body) = get(&mut sim, &format!("/teams/{team}/members"));
        assert_eq!(ids(&body, "members"), [uid(1)]);
        assert_not_found(&call(
            &mut sim,
            Method::GET,
            &format!("/users/{}", uid(10)),
            "",
        ));
        // Numbering continues: new synthetic users never reuse an id.
        sim.add_extra_users(1);
        assert_eq!(sim.extra_user_ids(), [uid(6 + EXTRA_USERS_SWITCH)]);
        assert!(!sim.set_switch("no_such_switch", true));
        // The bound.
        let mut big = PagerDuty::new(KEY);
        assert_eq!(big.add_extra_users(MAX_EXTRA_USERS + 5), MAX_EXTRA_USERS);
        assert_eq!(big.add_extra_users(1), 0);
    }

    #[test]
    fn list_users_in_account_order_with_query_and_paging() {
        let mut sim = sim();
        let (status, body) = get(&mut sim, "/users");
        assert_eq!(status, 200);
        let expected: Vec<String> = (0..PEOPLE.len()).map(uid).collect();
        assert_eq!(ids(&body, "users"), expected);
        assert_eq!(body["limit"], 25);
        assert_eq!(body["more"], false);
        assert_eq!(body["total"], Value::Null);
        let first = &body["users"][0];
        assert_eq!(first["type"], "user");
        assert_eq!(first["name"], "Ada Admin");
        assert_eq!(first["summary"], "Ada Admin");
        assert_eq!(first["email"], "ada@example.com");
        assert_eq!(first["role"], "owner");
        assert_eq!(body["users"][1]["role"], "user");
        assert_eq!(
            first["self"],
            format!("https://api.pagerduty.com/users/{}", uid(0))
        );

        let (_, body) = get(&mut sim, "/users?query=CAROL");
        assert_eq!(ids(&body, "users"), [uid(2)], "by name");
        let (_, body) = get(&mut sim, "/users?query=frank%40example.com");
        assert_eq!(ids(&body, "users"), [uid(5)], "by email");
        let (_, body) = get(&mut sim, "/users?query=Ekstr%C3%B6m");
        assert_eq!(ids(&body, "users"), [uid(4)]);
        let (_, body) = get(&mut sim, "/users?limit=4&offset=4&total=true");
        assert_eq!(ids(&body, "users"), [uid(4), uid(5)]);
        assert_eq!(body["more"], false);
        assert_eq!(body["total"], 6);
        let (_, body) = get(&mut sim, "/users?limit=2");
        assert_eq!(body["more"], true);

        // `team_ids[]` and the user's `teams`.
        let a = create_named(&mut sim, "A");
        let b = create_named(&mut sim, "B");
        put_member(&mut sim, &a, &uid(1), "");
        put_member(&mut sim, &b, &uid(3), "");
        let (_, body) = get(&mut sim, &format!("/users?team_ids[]={a}&team_ids[]={b}"));
        assert_eq!(ids(&body, "users"), [uid(1), uid(3)]);
        let (_, body) = get(&mut sim, &format!("/users/{}", uid(1)));
        assert_eq!(body["user"]["teams"][0]["id"], json!(a));
        assert_eq!(body["user"]["teams"][0]["type"], "team_reference");
    }

    #[test]
    fn get_user_by_id() {
        let mut sim = sim();
        let (status, body) = get(&mut sim, &format!("/users/{}", uid(3)));
        assert_eq!(status, 200);
        assert_eq!(body["user"]["email"], "dan@example.com");
        assert_eq!(body["user"]["id"], json!(uid(3)));
        for id in ["PNOUSER", "dan@example.com", "me"] {
            assert_not_found(&call(&mut sim, Method::GET, &format!("/users/{id}"), ""));
        }
    }

    #[test]
    fn remove_person_leaves_the_account_and_every_team() {
        let mut sim = sim();
        let team = create_named(&mut sim, "T");
        put_member(&mut sim, &team, &uid(1), "");
        put_member(&mut sim, &team, &uid(2), "");
        assert!(sim.remove_person("BOB@example.com"));
        assert!(!sim.remove_person("bob@example.com"), "already gone");
        assert!(!sim.remove_person("nobody@example.com"));
        let (_, body) = get(&mut sim, &format!("/teams/{team}/members"));
        assert_eq!(ids(&body, "members"), [uid(2)]);
        assert_not_found(&call(
            &mut sim,
            Method::GET,
            &format!("/users/{}", uid(1)),
            "",
        ));
        let (_, body) = get(&mut sim, "/users?total=true");
        assert_eq!(body["total"], 5);
        assert_not_found(&put_member(&mut sim, &team, &uid(1), ""));
    }

    #[test]
    fn rate_limited_switch_answers_429_everywhere() {
        let mut sim = sim();
        assert!(sim.set_switch("rate_limited", true));
        for path in ["/teams", "/users", "/nowhere"] {
            let resp = call(&mut sim, Method::GET, path, "");
            assert_error(&resp, 429, 2020, "Rate Limit Exceeded");
            assert_eq!(header(&resp, "ratelimit-remaining").as_deref(), Some("0"));
        }
        let resp = raw(&mut sim, Method::GET, "/teams", HeaderMap::new(), "");
        assert_eq!(resp.status, 429, "before auth");
        assert!(sim.set_switch("rate_limited", false));
        assert_eq!(get(&mut sim, "/teams").0, 200);
    }

    #[test]
    fn error_body_uses_pagerduty_shape_and_codes() {
        let sim = sim();
        for (status, code) in [
            (400, 2001),
            (401, 2006),
            (402, 2012),
            (403, 2010),
            (404, 2100),
            (409, 2001),
            (429, 2020),
            (500, 2000),
            (503, 2000),
        ] {
            let resp = sim.error_body(status, "boom");
            assert_error(&resp, status, code, "boom");
        }
    }

    #[test]
    fn unknown_routes_and_wrong_methods() {
        let mut sim = sim();
        let team = create_named(&mut sim, "T");
        for path in [
            "/",
            "/teams/",
            "/team",
            "/teams/x/members/y",
            "/teams/x/users",
            "/v2/teams",
            "/users/x/contact_methods",
            "/_sim/fault",
        ] {
            assert_not_found(&call(&mut sim, Method::GET, path, ""));
        }
        for (method, path, allow) in [
            (Method::DELETE, "/teams".to_string(), "GET, POST"),
            (Method::PATCH, format!("/teams/{team}"), "GET, PUT, DELETE"),
            (Method::POST, format!("/teams/{team}"), "GET, PUT, DELETE"),
            (Method::POST, format!("/teams/{team}/members"), "GET"),
            (
                Method::GET,
                format!("/teams/{team}/users/{}", uid(1)),
                "PUT, DELETE",
            ),
            (Method::POST, "/users".to_string(), "GET"),
            (Method::PUT, format!("/users/{}", uid(1)), "GET"),
        ] {
            let resp = call(&mut sim, method, &path, "");
            assert_error(&resp, 405, 2001, "Method Not Allowed");
            assert_eq!(header(&resp, "allow").as_deref(), Some(allow));
        }
    }

    #[test]
    fn team_count_is_bounded() {
        let mut sim = sim();
        sim.team_limit = 2;
        create_named(&mut sim, "A");
        create_named(&mut sim, "B");
        let resp = call(&mut sim, Method::POST, "/teams", r#"{"team":{"name":"C"}}"#);
        assert_eq!(resp.status, 500);
        assert_eq!(resp.json_body()["error"]["code"], 2000);
    }

    #[test]
    fn team_ids_are_pagerduty_shaped_and_distinct() {
        let mut sim = sim();
        let mut seen = std::collections::HashSet::new();
        for n in 0..300 {
            let id = create_named(&mut sim, &format!("Team {n}"));
            assert_eq!(id.len(), 7);
            assert!(id.starts_with('P'));
            assert!(id
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn odd_input_never_panics() {
        let mut sim = sim();
        let team = create_named(&mut sim, "T");
        let bodies = [
            "",
            "null",
            "[]",
            "\"x\"",
            "{}",
            r#"{"team":null}"#,
            r#"{"team":{"name":{"a":1},"parent":[1],"default_role":5}}"#,
            r#"{"role":["manager"]}"#,
            "\u{0}\u{1}",
            "{\"team\":{\"name\":\"\u{1F600}\"}}",
        ];
        let paths = [
            "/teams".to_string(),
            format!("/teams/{team}"),
            format!("/teams/{team}/users/{}", uid(1)),
            format!("/teams/{team}/members?limit=99999999999999999999999&offset=-0"),
            "/users?limit=%FF&query=%00".to_string(),
            "/teams/%2F/users/%2F".to_string(),
        ];
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            for path in &paths {
                for body in bodies {
                    let resp = call(&mut sim, method.clone(), path, body);
                    assert!(resp.status.as_u16() >= 200, "{method} {path}");
                    if !resp.body.is_empty() {
                        assert!(resp.json_body().is_object(), "{method} {path} {body}");
                    }
                }
            }
        }
    }
}
