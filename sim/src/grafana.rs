//! The Grafana HTTP Team API simulator (`kind = "grafana"`).
//!
//! This file owns the in-memory Grafana org 1: its teams, their memberships, and the read-only
//! user lookups a mapping needs to turn an email or login into a Grafana user id. The users are
//! exactly the people of [`super::people`] (ids from [`grafana_user_id`]); nobody else exists.
//!
//! Sources, in order of precedence:
//! - `shared/VENDORS.md`, "# Second look", "## 1. Grafana": what the vendor's *code* does
//!   (`pkg/services/team/teamapi/team.go`, `team_members.go`, `pkg/api/response/response.go`,
//!   `pkg/services/team/sortopts/sortopts.go`). Where code and docs differ, the code wins, for
//!   example a rename to a taken name answers 400 (docs: 409) and a name search without match
//!   answers 200 with an empty list (docs: 404).
//! - `shared/VENDORS.md`, "## 1. Grafana HTTP Team API": endpoints, messages, pagination.
//! - The seed `shared/seeds/002_fc43eb0fce11ef58.txt` (the public team API page).
//!
//! Error bodies follow `response.Error`: `{"message": ...}`, plus `"traceID": ""` (tracing off)
//! on "Team not found", "Team name taken" and the 5xx answers, where the handler passes a non-nil
//! error; the other errors are the bare message, as VENDORS.md records them.
//! Request bodies are read the way Go's `encoding/json` would fill the handler's struct:
//! unknown fields are ignored, keys match case-insensitively, `null` leaves the zero value, and a
//! value of the wrong type is a bind error (400 `bad request data`).

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use http::Method;
use serde_json::{json, Map, Value};

use super::people::{grafana_user_id, Person, PEOPLE};
use super::{SimRequest, SimResponse, Vendor};

/// The only org; every team and user belongs to it.
const ORG_ID: i64 = 1;
/// Most teams held at once; creating more answers 500 like a failing store would.
const MAX_TEAMS: usize = 100_000;
/// Grafana's `team.name` and `team.email` columns are `VARCHAR(190)`; on MySQL and Postgres a
/// longer value makes the insert fail, which the handler reports as a 500.
const MAX_FIELD_CHARS: usize = 190;
/// Default and fallback page size of both searches (`perpage<=0 → 1000`).
const DEFAULT_PER_PAGE: i64 = 1000;
/// Team member permission values (`kinds/team/team_kind.cue`): 0 Member, 4 Admin.
const PERMISSION_MEMBER: i64 = 0;
const PERMISSION_ADMIN: i64 = 4;
/// Fixed timestamps keep answers deterministic. Grafana sets `last_seen_at` of a user who never
/// logged in to ten years before creation, hence the "10 years" age.
const CREATED_AT: &str = "2024-01-01T00:00:00Z";
const LAST_SEEN_AT: &str = "2014-01-01T00:00:00Z";
const LAST_SEEN_AGE: &str = "10 years";

/// One team of org 1.
#[derive(Debug, Clone)]
struct Team {
    id: i64,
    uid: String,
    name: String,
    /// `LOWER(team.name)`, the key of the name sort and of the `name` filter.
    name_lower: String,
    email: String,
    /// Member person index (into [`PEOPLE`]) → permission (0 or 4).
    members: BTreeMap<usize, i64>,
}

/// The Grafana simulator: org 1 with its teams, accepting one credential.
pub struct Grafana {
    credential: String,
    teams: BTreeMap<i64, Team>,
    /// Team uid → id, so a uid in the path resolves without a scan.
    by_uid: HashMap<String, i64>,
    /// Exact team name → id, for the unique-name check.
    by_name: HashMap<String, i64>,
    /// The next team id. Ids are never reused after a delete (the `team.id` column is an
    /// autoincrement key).
    next_id: i64,
    /// Counter behind the generated uids.
    uid_counter: u64,
    max_teams: usize,
}

impl Grafana {
    /// A simulator that accepts `credential` as a bearer token or as the password of `admin`.
    pub fn new(credential: &str) -> Self {
        Grafana {
            credential: credential.to_string(),
            teams: BTreeMap::new(),
            by_uid: HashMap::new(),
            by_name: HashMap::new(),
            next_id: 1,
            uid_counter: 0,
            max_teams: MAX_TEAMS,
        }
    }

    /// `Authorization: Bearer <credential>` or `Basic base64("admin:<credential>")`.
    /// An empty credential never matches, so `Bearer ` alone is not a way in.
    fn authorized(&self, req: &SimRequest) -> bool {
        if self.credential.is_empty() {
            return false;
        }
        let Some(header) = req.header("authorization") else {
            return false;
        };
        if let Some(token) = header.strip_prefix("Bearer ") {
            return token == self.credential;
        }
        let Some(encoded) = header.strip_prefix("Basic ") else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return false;
        };
        matches!(text.split_once(':'), Some(("admin", password)) if password == self.credential)
    }

    /// The team id a path segment names: an integer as is (existing or not), or the id of a
    /// known uid. `None` means neither: `MiddlewareTeamUIDResolver` answers 404 `Not found`
    /// before any handler runs, so `teamId is invalid` is unreachable.
    fn resolve_team(&self, raw: &str) -> Option<i64> {
        match raw.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => self.by_uid.get(raw).copied(),
        }
    }

    fn next_uid(&mut self) -> String {
        self.uid_counter = self.uid_counter.wrapping_add(1);
        short_uid(self.uid_counter, 0x7465_616d)
    }

    /// Grafana's unique-name check is `name = ?`, which on its default SQLite store is an
    /// exact, case-sensitive compare; `except` is the team being renamed.
    fn name_taken(&self, name: &str, except: Option<i64>) -> bool {
        matches!(self.by_name.get(name), Some(id) if Some(*id) != except)
    }

    // ----- teams -------------------------------------------------------------------------

    /// `GET /api/teams/search`: filter, sort, then page; totals count every match.
    fn search_teams(&self, req: &SimRequest) -> SimResponse {
        let sort = match parse_sort(req.query_param("sort").unwrap_or("")) {
            Ok(sort) => sort,
            // errutil error without a public message: the k8s reason becomes the message.
            Err(()) => {
                return SimResponse::json(
                    400,
                    json!({"statusCode": 400, "messageId": "unknown sorting option", "message": "BadRequest"}),
                )
            }
        };
        let (page, per_page) = paging(req, "page", "perpage");
        let query = req.query_param("query").unwrap_or("").to_lowercase();
        let name = req.query_param("name").unwrap_or("").to_lowercase();
        // `teamId` may repeat; values that are not integers are ignored.
        let ids: Vec<i64> = req
            .query
            .iter()
            .filter(|(k, _)| k == "teamId")
            .filter_map(|(_, v)| v.parse::<i64>().ok())
            .collect();
        let mut matches: Vec<&Team> = self
            .teams
            .values()
            .filter(|t| query.is_empty() || t.name_lower.contains(&query))
            .filter(|t| name.is_empty() || t.name_lower == name)
            .filter(|t| ids.is_empty() || ids.contains(&t.id))
            .collect();
        matches.sort_by(|a, b| compare_teams(a, b, &sort));
        let total = matches.len();
        let teams: Vec<Value> = page_slice(&matches, page, per_page)
            .iter()
            .map(|t| team_dto(t))
            .collect();
        SimResponse::json(
            200,
            json!({"totalCount": total, "teams": teams, "page": page, "perPage": per_page}),
        )
    }

    /// `GET /api/teams/:id`: the TeamDTO, with `memberCount` and without `created`/`updated`
    /// (the docs' example with them is stale).
    fn get_team(&self, raw_id: &str) -> SimResponse {
        let Some(id) = self.resolve_team(raw_id) else {
            return not_found_route();
        };
        match self.teams.get(&id) {
            Some(team) => SimResponse::json(200, team_dto(team)),
            None => team_not_found(),
        }
    }

    /// `POST /api/teams`: `{name, email?, orgId?}`. The team always lands in the caller's org
    /// (1); `orgId` is only type-checked, as the struct field would be.
    fn create_team(&mut self, req: &SimRequest) -> SimResponse {
        let Some(body) = body_object(req) else {
            return bad_request_data();
        };
        let (Ok(Some(name)), Ok(email), Ok(_org)) = (
            go_string(&body, "name"),
            go_string(&body, "email"),
            go_int(&body, "orgId"),
        ) else {
            return bad_request_data();
        };
        if name.is_empty() {
            return bad_request_data();
        }
        let email = email.unwrap_or_default();
        if self.name_taken(&name, None) {
            return traced(409, "Team name taken");
        }
        if self.teams.len() >= self.max_teams || too_long(&name) || too_long(&email) {
            return traced(500, "Failed to create Team");
        }
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        let uid = self.next_uid();
        self.by_uid.insert(uid.clone(), id);
        self.by_name.insert(name.clone(), id);
        self.teams.insert(
            id,
            Team {
                id,
                uid: uid.clone(),
                name_lower: name.to_lowercase(),
                name,
                email,
                members: BTreeMap::new(),
            },
        );
        SimResponse::json(
            200,
            json!({"message": "Team created", "teamId": id, "uid": uid}),
        )
    }

    /// `PUT /api/teams/:id`: a full replace of name and email (a missing email becomes "").
    fn update_team(&mut self, req: &SimRequest, raw_id: &str) -> SimResponse {
        let Some(id) = self.resolve_team(raw_id) else {
            return not_found_route();
        };
        // The handler binds the body before it looks the team up.
        let Some(body) = body_object(req) else {
            return bad_request_data();
        };
        let (Ok(Some(name)), Ok(email)) = (go_string(&body, "name"), go_string(&body, "email"))
        else {
            return bad_request_data();
        };
        if name.is_empty() {
            return bad_request_data();
        }
        let email = email.unwrap_or_default();
        if !self.teams.contains_key(&id) {
            return team_not_found();
        }
        // The code answers 400 here although the docs say 409 (VENDORS.md, second look).
        if self.name_taken(&name, Some(id)) {
            return traced(400, "Team name taken");
        }
        if too_long(&name) || too_long(&email) {
            return traced(500, "Failed to update Team");
        }
        let Some(team) = self.teams.get_mut(&id) else {
            return team_not_found();
        };
        self.by_name.remove(&team.name);
        self.by_name.insert(name.clone(), id);
        team.name_lower = name.to_lowercase();
        team.name = name;
        team.email = email;
        message(200, "Team updated")
    }

    /// `DELETE /api/teams/:id`: removes the team and, with it, its memberships.
    fn delete_team(&mut self, raw_id: &str) -> SimResponse {
        let Some(id) = self.resolve_team(raw_id) else {
            return not_found_route();
        };
        // `validateTeam` runs first, so a missing team is "Team not found", not the docs'
        // "Failed to delete Team. ID not found".
        let Some(team) = self.teams.remove(&id) else {
            return team_not_found();
        };
        self.by_uid.remove(&team.uid);
        self.by_name.remove(&team.name);
        message(200, "Team deleted")
    }

    // ----- members -----------------------------------------------------------------------

    /// `GET /api/teams/:id/members`: a bare array ordered by login, then email. The handler
    /// has no existence check, so a missing (integer) team is an empty list.
    fn list_members(&self, raw_id: &str) -> SimResponse {
        let Some(id) = self.resolve_team(raw_id) else {
            return not_found_route();
        };
        let Some(team) = self.teams.get(&id) else {
            return SimResponse::json(200, json!([]));
        };
        let mut members: Vec<(usize, i64)> = team.members.iter().map(|(i, p)| (*i, *p)).collect();
        members.sort_by(|(a, _), (b, _)| {
            (PEOPLE[*a].login, PEOPLE[*a].email).cmp(&(PEOPLE[*b].login, PEOPLE[*b].email))
        });
        let items: Vec<Value> = members
            .into_iter()
            .map(|(index, permission)| member_dto(team, index, permission))
            .collect();
        SimResponse::json(200, Value::Array(items))
    }

    /// `POST /api/teams/:id/members`: `{"userId": int, "permission"?: int}`.
    fn add_member(&mut self, req: &SimRequest, raw_id: &str) -> SimResponse {
        let Some(id) = self.resolve_team(raw_id) else {
            return not_found_route();
        };
        let Some(body) = body_object(req) else {
            return bad_request_data();
        };
        // A missing userId is Go's zero value 0, which is nobody: "User not found" below.
        let (Ok(user_id), Ok(permission)) = (go_int(&body, "userId"), go_int(&body, "permission"))
        else {
            return bad_request_data();
        };
        let Some(team) = self.teams.get_mut(&id) else {
            return team_not_found();
        };
        let Some(index) = person_index(user_id.unwrap_or(0)) else {
            return message(404, "User not found");
        };
        if team.members.contains_key(&index) {
            return message(400, "User is already added to this team");
        }
        team.members
            .insert(index, normalize_permission(permission.unwrap_or(0)));
        message(200, "Member added to Team")
    }

    /// `PUT /api/teams/:id/members`: `{"members":[email], "admins":[email]}` replaces every
    /// membership. All emails are resolved before anything changes, so an unknown one leaves
    /// the team as it was. An email in both lists ends up an admin.
    fn set_members(&mut self, req: &SimRequest, raw_id: &str) -> SimResponse {
        let Some(id) = self.resolve_team(raw_id) else {
            return not_found_route();
        };
        let Some(body) = body_object(req) else {
            return bad_request_data();
        };
        let (Ok(members), Ok(admins)) = (go_strings(&body, "members"), go_strings(&body, "admins"))
        else {
            return bad_request_data();
        };
        let Some(team) = self.teams.get_mut(&id) else {
            return team_not_found();
        };
        let mut wanted = BTreeMap::new();
        for (emails, permission) in [(members, PERMISSION_MEMBER), (admins, PERMISSION_ADMIN)] {
            for email in emails {
                // The store's error text is returned as is, hence the lower case.
                let Some(index) = person_by_email(&email) else {
                    return message(404, "user not found");
                };
                wanted.insert(index, permission);
            }
        }
        team.members = wanted;
        message(200, "Team memberships have been updated")
    }

    /// `PUT /api/teams/:id/members/:userId`: `{"permission": int}`.
    fn update_member(&mut self, req: &SimRequest, raw_id: &str, raw_user: &str) -> SimResponse {
        let Some(id) = self.resolve_team(raw_id) else {
            return not_found_route();
        };
        let Ok(user_id) = raw_user.parse::<i64>() else {
            return message(400, "userId is invalid");
        };
        let Some(body) = body_object(req) else {
            return bad_request_data();
        };
        let Ok(permission) = go_int(&body, "permission") else {
            return bad_request_data();
        };
        let Some(team) = self.teams.get_mut(&id) else {
            return team_not_found();
        };
        let member = person_index(user_id).and_then(|index| team.members.get_mut(&index));
        let Some(slot) = member else {
            // This handler's text ends with a dot; the remove handler's does not.
            return message(404, "Team member not found.");
        };
        *slot = normalize_permission(permission.unwrap_or(0));
        message(200, "Team member updated")
    }

    /// `DELETE /api/teams/:id/members/:userId`.
    fn remove_member(&mut self, raw_id: &str, raw_user: &str) -> SimResponse {
        let Some(id) = self.resolve_team(raw_id) else {
            return not_found_route();
        };
        let Ok(user_id) = raw_user.parse::<i64>() else {
            return message(400, "userId is invalid");
        };
        let Some(team) = self.teams.get_mut(&id) else {
            return team_not_found();
        };
        let removed = person_index(user_id).and_then(|index| team.members.remove(&index));
        match removed {
            Some(_) => message(200, "Team Member removed"),
            None => message(404, "Team member not found"),
        }
    }

    // ----- users -------------------------------------------------------------------------

    /// `GET /api/org/users/search?query=&page=&perpage=`.
    fn search_org_users(&self, req: &SimRequest) -> SimResponse {
        let (page, per_page) = paging(req, "page", "perpage");
        let found = people_matching(req.query_param("query").unwrap_or(""));
        let total = found.len();
        let users: Vec<Value> = page_slice(&found, page, per_page)
            .iter()
            .map(|i| org_user_dto(*i))
            .collect();
        SimResponse::json(
            200,
            json!({"totalCount": total, "orgUsers": users, "page": page, "perPage": per_page}),
        )
    }

    /// `GET /api/org/users?query=&limit=`: a bare array; `limit<=0` means no limit.
    fn list_org_users(&self, req: &SimRequest) -> SimResponse {
        let limit = go_query_int(req.query_param("limit"));
        let mut found = people_matching(req.query_param("query").unwrap_or(""));
        if limit > 0 {
            found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        }
        let users: Vec<Value> = found.into_iter().map(org_user_dto).collect();
        SimResponse::json(200, Value::Array(users))
    }

    /// `GET /api/users/lookup?loginOrEmail=`: case-insensitive, as with Grafana's default
    /// `case_insensitive_login`.
    fn lookup_user(&self, req: &SimRequest) -> SimResponse {
        let wanted = req.query_param("loginOrEmail").unwrap_or("").to_lowercase();
        let found = PEOPLE
            .iter()
            .position(|p| p.login.to_lowercase() == wanted || p.email.to_lowercase() == wanted);
        match found {
            Some(index) => SimResponse::json(200, user_profile_dto(index)),
            None => message(404, "user not found"),
        }
    }
}

impl Vendor for Grafana {
    fn kind(&self) -> &'static str {
        "grafana"
    }

    fn handle(&mut self, req: &SimRequest) -> SimResponse {
        if !self.authorized(req) {
            return message(401, "Unauthorized");
        }
        let segs = req.segs();
        let m = &req.method;
        match segs.as_slice() {
            ["api", "teams"] if m == Method::POST => self.create_team(req),
            ["api", "teams"] => method_not_allowed(),
            // Other methods fall through: on the vendor's router `search` is then a team id.
            ["api", "teams", "search"] if m == Method::GET => self.search_teams(req),
            ["api", "teams", id] => match *m {
                Method::GET => self.get_team(id),
                Method::PUT => self.update_team(req, id),
                Method::DELETE => self.delete_team(id),
                _ => method_not_allowed(),
            },
            ["api", "teams", id, "members"] => match *m {
                Method::GET => self.list_members(id),
                Method::POST => self.add_member(req, id),
                Method::PUT => self.set_members(req, id),
                _ => method_not_allowed(),
            },
            ["api", "teams", id, "members", user] => match *m {
                Method::PUT => self.update_member(req, id, user),
                Method::DELETE => self.remove_member(id, user),
                _ => method_not_allowed(),
            },
            ["api", "org", "users"] if m == Method::GET => self.list_org_users(req),
            ["api", "org", "users", "search"] if m == Method::GET => self.search_org_users(req),
            ["api", "users", "lookup"] if m == Method::GET => self.lookup_user(req),
            ["api", "org", "users"]
            | ["api", "org", "users", "search"]
            | ["api", "users", "lookup"] => method_not_allowed(),
            _ => not_found_route(),
        }
    }

    /// `response.Error`: `{"message"}`, plus the empty `traceID` on a 5xx (the handler passes
    /// the store's error there).
    fn error_body(&self, status: u16, text: &str) -> SimResponse {
        if status >= 500 {
            traced(status, text)
        } else {
            message(status, text)
        }
    }
}

// ----- answers -------------------------------------------------------------------------------

/// `{"message": text}`: `response.Error` with a nil error, or `response.Success`.
fn message(status: u16, text: &str) -> SimResponse {
    SimResponse::json(status, json!({ "message": text }))
}

/// `{"message": text, "traceID": ""}`: `response.Error` with a non-nil error adds the trace id,
/// empty when tracing is off.
fn traced(status: u16, text: &str) -> SimResponse {
    SimResponse::json(status, json!({ "message": text, "traceID": "" }))
}

fn team_not_found() -> SimResponse {
    traced(404, "Team not found")
}

fn bad_request_data() -> SimResponse {
    message(400, "bad request data")
}

fn not_found_route() -> SimResponse {
    message(404, "Not found")
}

fn method_not_allowed() -> SimResponse {
    message(405, "Method not allowed")
}

// ----- DTOs ----------------------------------------------------------------------------------

/// `TeamDTO` (`pkg/services/team/model.go`); `accessControl` is a nil map without
/// `?accesscontrol=true`, hence `null`.
fn team_dto(team: &Team) -> Value {
    let avatar_key = if team.email.is_empty() {
        &team.name
    } else {
        &team.email
    };
    json!({
        "id": team.id,
        "uid": team.uid,
        "orgId": ORG_ID,
        "name": team.name,
        "email": team.email,
        "externalUID": "",
        "isProvisioned": false,
        "avatarUrl": avatar_url(avatar_key),
        "memberCount": team.members.len(),
        "permission": 0,
        "accessControl": null,
    })
}

/// `TeamMemberDTO`; `labels` is `[]` because no member is synced from an external group.
fn member_dto(team: &Team, index: usize, permission: i64) -> Value {
    let person = &PEOPLE[index];
    json!({
        "orgId": ORG_ID,
        "teamId": team.id,
        "teamUID": team.uid,
        "userId": grafana_user_id(index),
        "userUID": user_uid(index),
        "auth_module": "",
        "email": person.email,
        "name": person.name,
        "login": person.login,
        "avatarUrl": avatar_url(person.email),
        "labels": [],
        "permission": permission,
    })
}

/// One item of `/api/org/users` and `/api/org/users/search`.
fn org_user_dto(index: usize) -> Value {
    let person = &PEOPLE[index];
    json!({
        "orgId": ORG_ID,
        "userId": grafana_user_id(index),
        "email": person.email,
        "name": person.name,
        "login": person.login,
        "avatarUrl": avatar_url(person.email),
        "role": if index == 0 { "Admin" } else { "Viewer" },
        "lastSeenAt": LAST_SEEN_AT,
        "lastSeenAtAge": LAST_SEEN_AGE,
    })
}

/// `UserProfileDTO` as the lookup handler fills it: it never sets `avatarUrl`, so that is "".
/// The account owner (index 0) is the server admin.
fn user_profile_dto(index: usize) -> Value {
    let person = &PEOPLE[index];
    json!({
        "id": grafana_user_id(index),
        "email": person.email,
        "name": person.name,
        "login": person.login,
        "theme": "",
        "orgId": ORG_ID,
        "isGrafanaAdmin": index == 0,
        "isDisabled": false,
        "isExternal": false,
        "authLabels": [],
        "updatedAt": CREATED_AT,
        "createdAt": CREATED_AT,
        "avatarUrl": "",
    })
}

// ----- people --------------------------------------------------------------------------------

/// The person with Grafana user id `user_id`, if any (id 1, the built-in admin, is nobody here).
fn person_index(user_id: i64) -> Option<usize> {
    (0..PEOPLE.len()).find(|i| grafana_user_id(*i) == user_id)
}

fn person_by_email(email: &str) -> Option<usize> {
    let wanted = email.to_lowercase();
    PEOPLE.iter().position(|p| p.email.to_lowercase() == wanted)
}

/// Indexes of the people whose login, email or name contains `query` (any case), ordered by
/// login then email.
fn people_matching(query: &str) -> Vec<usize> {
    let query = query.to_lowercase();
    let hit = |p: &Person| {
        [p.login, p.email, p.name]
            .iter()
            .any(|field| field.to_lowercase().contains(&query))
    };
    let mut found: Vec<usize> = (0..PEOPLE.len()).filter(|i| hit(&PEOPLE[*i])).collect();
    found.sort_by_key(|i| (PEOPLE[*i].login, PEOPLE[*i].email));
    found
}

/// Team permissions other than Admin are stored as Member: the handler maps the number to a
/// role name and only "Admin" survives as such.
fn normalize_permission(permission: i64) -> i64 {
    if permission == PERMISSION_ADMIN {
        PERMISSION_ADMIN
    } else {
        PERMISSION_MEMBER
    }
}

// ----- search helpers ------------------------------------------------------------------------

/// One `sort` option of `sortopts.go`: `(index, name)` orders the options among themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    Name,
    Email,
    MemberCount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SortOption {
    key: SortKey,
    descending: bool,
}

/// Parses the comma list of `sort`. Like `ParseSortQueryParam`, options are reordered by
/// their index (name, email, memberCount), then by option name (`-asc` before `-desc`);
/// an empty list means the default, name ascending.
fn parse_sort(param: &str) -> Result<Vec<SortOption>, ()> {
    if param.is_empty() {
        return Ok(Vec::new());
    }
    let mut options = Vec::new();
    for part in param.split(',') {
        let (key, descending) = match part {
            "name-asc" => (SortKey::Name, false),
            "name-desc" => (SortKey::Name, true),
            "email-asc" => (SortKey::Email, false),
            "email-desc" => (SortKey::Email, true),
            "memberCount-asc" => (SortKey::MemberCount, false),
            "memberCount-desc" => (SortKey::MemberCount, true),
            _ => return Err(()),
        };
        options.push(SortOption { key, descending });
    }
    let rank = |o: &SortOption| {
        let index = match o.key {
            SortKey::Name => 0,
            SortKey::Email => 1,
            SortKey::MemberCount => 2,
        };
        (index, o.descending)
    };
    options.sort_by_key(rank);
    Ok(options)
}

/// Orders two teams by the sort options; `LOWER(name)` sorts names, email sorts as is. Ties
/// fall back to name, then id, so the order is total and stable across calls.
fn compare_teams(a: &Team, b: &Team, options: &[SortOption]) -> std::cmp::Ordering {
    let default = [SortOption {
        key: SortKey::Name,
        descending: false,
    }];
    let options = if options.is_empty() {
        &default[..]
    } else {
        options
    };
    options
        .iter()
        .map(|o| {
            let ord = match o.key {
                SortKey::Name => a.name_lower.cmp(&b.name_lower),
                SortKey::Email => a.email.cmp(&b.email),
                SortKey::MemberCount => a.members.len().cmp(&b.members.len()),
            };
            if o.descending {
                ord.reverse()
            } else {
                ord
            }
        })
        .fold(std::cmp::Ordering::Equal, std::cmp::Ordering::then)
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| a.id.cmp(&b.id))
}

/// Go's `c.QueryInt`: `strconv.Atoi` of the first value, 0 when absent or not a 64-bit integer.
fn go_query_int(value: Option<&str>) -> i64 {
    value.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0)
}

/// `(page, perPage)` after the handler's clamps: `perpage<=0 → 1000`, `page<1 → 1`.
fn paging(req: &SimRequest, page_name: &str, per_page_name: &str) -> (i64, i64) {
    let mut per_page = go_query_int(req.query_param(per_page_name));
    if per_page <= 0 {
        per_page = DEFAULT_PER_PAGE;
    }
    let page = go_query_int(req.query_param(page_name)).max(1);
    (page, per_page)
}

/// The `LIMIT per_page OFFSET (page-1)*per_page` window of `items`; empty past the end.
fn page_slice<T>(items: &[T], page: i64, per_page: i64) -> &[T] {
    let offset = (page - 1).saturating_mul(per_page);
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    if start >= items.len() {
        return &[];
    }
    let len = usize::try_from(per_page).unwrap_or(usize::MAX);
    let end = start.saturating_add(len).min(items.len());
    &items[start..end]
}

// ----- request bodies ------------------------------------------------------------------------

/// The body as a JSON object. `null` decodes into the zero struct, as in Go; an empty body,
/// invalid JSON or another JSON type is a bind error.
fn body_object(req: &SimRequest) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(&req.body).ok()? {
        Value::Object(map) => Some(map),
        Value::Null => Some(Map::new()),
        _ => None,
    }
}

/// The value Go would decode into field `key`: keys match case-insensitively and the last
/// matching key wins.
fn go_field<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    body.iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// A string field: `Ok(None)` when absent or null, `Err` for another type.
fn go_string(body: &Map<String, Value>, key: &str) -> Result<Option<String>, ()> {
    match go_field(body, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    }
}

/// An int64 field: `Err` for a fraction, an exponent, an overflow or another type.
fn go_int(body: &Map<String, Value>, key: &str) -> Result<Option<i64>, ()> {
    match go_field(body, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(()),
        Some(_) => Err(()),
    }
}

/// A `[]string` field: absent or null is empty.
fn go_strings(body: &Map<String, Value>, key: &str) -> Result<Vec<String>, ()> {
    match go_field(body, key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or(()))
            .collect(),
        Some(_) => Err(()),
    }
}

fn too_long(value: &str) -> bool {
    value.chars().count() > MAX_FIELD_CHARS
}

// ----- ids and hashes ------------------------------------------------------------------------

/// A 14-character lowercase alphanumeric uid: a letter, then 13 base-36 digits of a bijective
/// mix of `n`. Distinct `n` give distinct uids, and the leading letter means a uid never
/// parses as an integer id.
fn short_uid(n: u64, salt: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut x = splitmix64(n ^ salt);
    let mut tail = [b'0'; 13];
    for slot in tail.iter_mut().rev() {
        *slot = DIGITS[(x % 36) as usize];
        x /= 36;
    }
    let mut uid = String::with_capacity(14);
    uid.push(char::from(b'a' + (n % 26) as u8));
    uid.extend(tail.iter().map(|b| char::from(*b)));
    uid
}

fn user_uid(index: usize) -> String {
    short_uid(index as u64, 0x7573_6572)
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `/avatar/<32 hex>` keyed, like Grafana's gravatar hash, on the trimmed lower-case text.
/// The hash is two FNV-1a passes rather than MD5: stable and well spread, not byte-identical.
fn avatar_url(text: &str) -> String {
    let key = text.trim().to_lowercase();
    let fnv = |offset: u64| {
        key.bytes().fold(offset, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
        })
    };
    let high = splitmix64(fnv(0xCBF2_9CE4_8422_2325));
    let low = splitmix64(fnv(0x6C62_272E_07BB_0142));
    format!("/avatar/{high:016x}{low:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue};

    const CRED: &str = "s3cret";

    fn headers_with(auth: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = auth {
            headers.insert(
                "authorization",
                HeaderValue::from_str(value).expect("header"),
            );
        }
        headers
    }

    fn send(g: &mut Grafana, method: Method, path: &str, body: &str) -> (u16, Value) {
        let auth = format!("Bearer {CRED}");
        send_as(g, Some(&auth), method, path, body)
    }

    fn send_as(
        g: &mut Grafana,
        auth: Option<&str>,
        method: Method,
        path: &str,
        body: &str,
    ) -> (u16, Value) {
        let req = SimRequest::new(
            method,
            path,
            headers_with(auth),
            Bytes::from(body.to_string()),
        );
        let resp = g.handle(&req);
        let ct = resp
            .headers
            .iter()
            .find(|(k, _)| k == http::header::CONTENT_TYPE)
            .map(|(_, v)| v.to_str().unwrap_or("").to_string());
        assert_eq!(ct.as_deref(), Some("application/json"), "{path}");
        (resp.status.as_u16(), resp.json_body())
    }

    fn get(g: &mut Grafana, path: &str) -> (u16, Value) {
        send(g, Method::GET, path, "")
    }

    fn create(g: &mut Grafana, name: &str, email: &str) -> i64 {
        let body = json!({"name": name, "email": email}).to_string();
        let (status, v) = send(g, Method::POST, "/api/teams", &body);
        assert_eq!(status, 200, "{v}");
        v["teamId"].as_i64().expect("teamId")
    }

    fn add(g: &mut Grafana, team: i64, user: i64) -> (u16, Value) {
        let path = format!("/api/teams/{team}/members");
        send(
            g,
            Method::POST,
            &path,
            &json!({ "userId": user }).to_string(),
        )
    }

    fn names(v: &Value) -> Vec<String> {
        v["teams"]
            .as_array()
            .expect("teams")
            .iter()
            .map(|t| t["name"].as_str().unwrap_or("").to_string())
            .collect()
    }

    fn team_not_found_body() -> Value {
        json!({"message": "Team not found", "traceID": ""})
    }

    #[test]
    fn kind_is_grafana() {
        assert_eq!(Grafana::new(CRED).kind(), "grafana");
    }

    #[test]
    fn auth_is_checked_first_on_every_route() {
        let mut g = Grafana::new(CRED);
        let unauthorized = json!({"message": "Unauthorized"});
        let basic_ok = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("admin:{CRED}"))
        );
        let basic_bad_user = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("root:{CRED}"))
        );
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Bearer "),
            Some(basic_bad_user.as_str()),
            Some("Basic !!!not-base64"),
            Some(CRED),
        ] {
            for path in ["/api/teams/search", "/api/nope", "/api/teams/1"] {
                let got = send_as(&mut g, auth, Method::GET, path, "");
                assert_eq!(got, (401, unauthorized.clone()), "{auth:?} {path}");
            }
        }
        let (status, _) = send_as(
            &mut g,
            Some(&basic_ok),
            Method::GET,
            "/api/teams/search",
            "",
        );
        assert_eq!(status, 200);
        // An empty credential never lets anyone in.
        let mut open = Grafana::new("");
        let got = send_as(
            &mut open,
            Some("Bearer "),
            Method::GET,
            "/api/teams/search",
            "",
        );
        assert_eq!(got.0, 401);
    }

    #[test]
    fn create_and_get_team() {
        let mut g = Grafana::new(CRED);
        let (status, v) = send(
            &mut g,
            Method::POST,
            "/api/teams",
            r#"{"name":"Ops","email":"ops@example.com","orgId":1}"#,
        );
        assert_eq!(status, 200);
        assert_eq!(v["message"], "Team created");
        assert_eq!(v["teamId"], 1);
        let uid = v["uid"].as_str().expect("uid").to_string();
        assert_eq!(uid.len(), 14);
        assert!(uid
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_eq!(v.as_object().map(Map::len), Some(3));

        let (status, team) = get(&mut g, "/api/teams/1");
        assert_eq!(status, 200);
        let keys: Vec<&str> = team
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "uid",
                "orgId",
                "name",
                "email",
                "externalUID",
                "isProvisioned",
                "avatarUrl",
                "memberCount",
                "permission",
                "accessControl"
            ]
        );
        assert_eq!(team["id"], 1);
        assert_eq!(team["uid"], uid.as_str());
        assert_eq!(team["orgId"], 1);
        assert_eq!(team["name"], "Ops");
        assert_eq!(team["email"], "ops@example.com");
        assert_eq!(team["externalUID"], "");
        assert_eq!(team["isProvisioned"], false);
        assert_eq!(team["memberCount"], 0);
        assert_eq!(team["permission"], 0);
        assert_eq!(team["accessControl"], Value::Null);
        let avatar = team["avatarUrl"].as_str().expect("avatar");
        let hex = avatar.strip_prefix("/avatar/").expect("prefix");
        assert_eq!(hex.len(), 32);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));

        // By uid too.
        let (status, by_uid) = get(&mut g, &format!("/api/teams/{uid}"));
        assert_eq!((status, by_uid), (200, team));

        // Ids count up; a second team gets a different uid.
        let (_, second) = send(&mut g, Method::POST, "/api/teams", r#"{"name":"Dev"}"#);
        assert_eq!(second["teamId"], 2);
        assert_ne!(second["uid"], uid.as_str());
        let (_, dev) = get(&mut g, "/api/teams/2");
        assert_eq!(dev["email"], "");
    }

    #[test]
    fn create_errors() {
        let mut g = Grafana::new(CRED);
        create(&mut g, "Ops", "");
        let taken = send(&mut g, Method::POST, "/api/teams", r#"{"name":"Ops"}"#);
        assert_eq!(
            taken,
            (409, json!({"message": "Team name taken", "traceID": ""}))
        );
        let bad = (400, json!({"message": "bad request data"}));
        for body in [
            "",
            "{",
            "[]",
            "\"Ops\"",
            "{}",
            r#"{"name":""}"#,
            r#"{"name":null}"#,
            r#"{"name":5}"#,
            r#"{"name":"x","email":3}"#,
            r#"{"name":"x","orgId":"1"}"#,
            r#"{"name":"x","orgId":1.5}"#,
            r#"{"email":"a@b.c"}"#,
        ] {
            assert_eq!(
                send(&mut g, Method::POST, "/api/teams", body),
                bad,
                "{body}"
            );
        }
        // Go matches keys case-insensitively; the exact-name check is case-sensitive.
        let (status, _) = send(&mut g, Method::POST, "/api/teams", r#"{"NAME":"ops"}"#);
        assert_eq!(status, 200);
        // Odd unicode is just a name.
        create(&mut g, "Ünïcødé ☃ \u{202e}../x", "");
        // Longer than the column: the store fails.
        let long = json!({ "name": "x".repeat(191) }).to_string();
        let got = send(&mut g, Method::POST, "/api/teams", &long);
        assert_eq!(
            got,
            (
                500,
                json!({"message": "Failed to create Team", "traceID": ""})
            )
        );
    }

    #[test]
    fn create_is_bounded() {
        let mut g = Grafana::new(CRED);
        g.max_teams = 2;
        create(&mut g, "a", "");
        create(&mut g, "b", "");
        let got = send(&mut g, Method::POST, "/api/teams", r#"{"name":"c"}"#);
        assert_eq!(
            got,
            (
                500,
                json!({"message": "Failed to create Team", "traceID": ""})
            )
        );
        send(&mut g, Method::DELETE, "/api/teams/1", "");
        let (status, v) = send(&mut g, Method::POST, "/api/teams", r#"{"name":"c"}"#);
        assert_eq!(status, 200);
        // Ids are not reused.
        assert_eq!(v["teamId"], 3);
    }

    #[test]
    fn get_errors() {
        let mut g = Grafana::new(CRED);
        create(&mut g, "Ops", "");
        assert_eq!(get(&mut g, "/api/teams/999"), (404, team_not_found_body()));
        assert_eq!(get(&mut g, "/api/teams/-1"), (404, team_not_found_body()));
        let not_found = (404, json!({"message": "Not found"}));
        for path in [
            "/api/teams/abc",
            "/api/teams/..%2Fx",
            "/api/teams/99999999999999999999999",
            "/api/teams/%E2%98%83",
            "/api/teams/",
            "/api/teams/1.0",
        ] {
            assert_eq!(get(&mut g, path), not_found, "{path}");
        }
    }

    #[test]
    fn search_filters_and_defaults() {
        let mut g = Grafana::new(CRED);
        create(&mut g, "beta", "z@example.com");
        create(&mut g, "Alpha Team", "b@example.com");
        create(&mut g, "gamma", "a@example.com");

        let (status, v) = get(&mut g, "/api/teams/search");
        assert_eq!(status, 200);
        assert_eq!(v["totalCount"], 3);
        assert_eq!(v["page"], 1);
        assert_eq!(v["perPage"], 1000);
        assert_eq!(names(&v), ["Alpha Team", "beta", "gamma"]);
        assert_eq!(v["teams"][0], get(&mut g, "/api/teams/2").1);

        let (_, v) = get(&mut g, "/api/teams/search?query=ALPHA%20t");
        assert_eq!(names(&v), ["Alpha Team"]);
        assert_eq!(v["totalCount"], 1);
        let (_, v) = get(&mut g, "/api/teams/search?query=a");
        assert_eq!(v["totalCount"], 3);
        let (_, v) = get(&mut g, "/api/teams/search?name=BETA");
        assert_eq!(names(&v), ["beta"]);
        // `name` is exact: a substring does not match, and no match is 200 with nothing.
        let got = get(&mut g, "/api/teams/search?name=bet");
        assert_eq!(
            got,
            (
                200,
                json!({"totalCount": 0, "teams": [], "page": 1, "perPage": 1000})
            )
        );
        let (_, v) = get(&mut g, "/api/teams/search?teamId=1&teamId=3&teamId=x");
        assert_eq!(names(&v), ["beta", "gamma"]);
    }

    #[test]
    fn search_paging() {
        let mut g = Grafana::new(CRED);
        for name in ["a", "b", "c", "d", "e"] {
            create(&mut g, name, "");
        }
        let (_, v) = get(&mut g, "/api/teams/search?perpage=2&page=2");
        assert_eq!(names(&v), ["c", "d"]);
        assert_eq!(
            (
                v["totalCount"].clone(),
                v["page"].clone(),
                v["perPage"].clone()
            ),
            (json!(5), json!(2), json!(2))
        );
        let (_, v) = get(&mut g, "/api/teams/search?perpage=2&page=3");
        assert_eq!(names(&v), ["e"]);
        // Past the end: empty page, total still counts every match.
        let (status, v) = get(&mut g, "/api/teams/search?perpage=2&page=9");
        assert_eq!(status, 200);
        assert_eq!(v["teams"], json!([]));
        assert_eq!(v["totalCount"], 5);
        // Clamps: perpage<=0 or junk → 1000, page<1 or junk → 1; huge values do not overflow.
        for (query, page, per_page) in [
            ("perpage=0&page=0", 1, 1000),
            ("perpage=-3&page=-7", 1, 1000),
            ("perpage=abc&page=x", 1, 1000),
            ("perpage=99999999999999999999", 1, 1000),
        ] {
            let (status, v) = get(&mut g, &format!("/api/teams/search?{query}"));
            assert_eq!(status, 200);
            assert_eq!(
                (v["page"].as_i64(), v["perPage"].as_i64()),
                (Some(page), Some(per_page))
            );
            assert_eq!(v["teams"].as_array().map(Vec::len), Some(5));
        }
        let (status, v) = get(
            &mut g,
            "/api/teams/search?perpage=9223372036854775807&page=9223372036854775807",
        );
        assert_eq!(status, 200);
        assert_eq!(v["teams"], json!([]));
        assert_eq!(v["totalCount"], 5);
    }

    #[test]
    fn search_sorting() {
        let mut g = Grafana::new(CRED);
        create(&mut g, "alpha", "c@example.com");
        let b = create(&mut g, "Bravo", "a@example.com");
        let c = create(&mut g, "charlie", "b@example.com");
        add(&mut g, c, 2);
        add(&mut g, c, 3);
        add(&mut g, b, 2);
        let order = |g: &mut Grafana, sort: &str| {
            names(&get(g, &format!("/api/teams/search?sort={sort}")).1)
        };
        assert_eq!(order(&mut g, "name-asc"), ["alpha", "Bravo", "charlie"]);
        assert_eq!(order(&mut g, "name-desc"), ["charlie", "Bravo", "alpha"]);
        assert_eq!(order(&mut g, "email-asc"), ["Bravo", "charlie", "alpha"]);
        assert_eq!(order(&mut g, "email-desc"), ["alpha", "charlie", "Bravo"]);
        assert_eq!(
            order(&mut g, "memberCount-asc"),
            ["alpha", "Bravo", "charlie"]
        );
        assert_eq!(
            order(&mut g, "memberCount-desc"),
            ["charlie", "Bravo", "alpha"]
        );
        // Options are applied in index order (name before memberCount), whatever the list order.
        assert_eq!(
            order(&mut g, "memberCount-desc,name-desc"),
            ["charlie", "Bravo", "alpha"]
        );
        let (_, v) = get(&mut g, "/api/teams/search?sort=memberCount-desc");
        assert_eq!(v["teams"][0]["memberCount"], 2);

        let bad = (
            400,
            json!({"statusCode": 400, "messageId": "unknown sorting option", "message": "BadRequest"}),
        );
        for sort in ["bogus", "name-asc,", "NAME-ASC", "name-asc,foo"] {
            assert_eq!(
                get(&mut g, &format!("/api/teams/search?sort={sort}")),
                bad,
                "{sort}"
            );
        }
    }

    #[test]
    fn update_team() {
        let mut g = Grafana::new(CRED);
        let id = create(&mut g, "Ops", "ops@example.com");
        create(&mut g, "Dev", "");
        let path = format!("/api/teams/{id}");
        let ok = (200, json!({"message": "Team updated"}));
        assert_eq!(send(&mut g, Method::PUT, &path, r#"{"name":"Ops2"}"#), ok);
        let (_, team) = get(&mut g, &path);
        assert_eq!(team["name"], "Ops2");
        // A full replace: the missing email became "".
        assert_eq!(team["email"], "");
        // Keeping one's own name is fine.
        let body = r#"{"name":"Ops2","email":"x@example.com"}"#;
        assert_eq!(send(&mut g, Method::PUT, &path, body), ok);
        // By uid.
        let uid = team["uid"].as_str().expect("uid").to_string();
        let by_uid = format!("/api/teams/{uid}");
        assert_eq!(send(&mut g, Method::PUT, &by_uid, r#"{"name":"Ops3"}"#), ok);
        // The old name is free again.
        create(&mut g, "Ops2", "");

        // Taken by another team: 400 in code (docs: 409).
        assert_eq!(
            send(&mut g, Method::PUT, &path, r#"{"name":"Dev"}"#),
            (400, json!({"message": "Team name taken", "traceID": ""}))
        );
        let bad = (400, json!({"message": "bad request data"}));
        for body in [
            "",
            "nope",
            r#"{"email":"a@b.c"}"#,
            r#"{"name":""}"#,
            r#"{"name":1}"#,
        ] {
            assert_eq!(send(&mut g, Method::PUT, &path, body), bad, "{body}");
        }
        assert_eq!(
            send(&mut g, Method::PUT, "/api/teams/77", r#"{"name":"x"}"#),
            (404, team_not_found_body())
        );
        assert_eq!(
            send(&mut g, Method::PUT, "/api/teams/nope", r#"{"name":"x"}"#),
            (404, json!({"message": "Not found"}))
        );
        // PUT to `search` is a team id on the vendor's router.
        assert_eq!(
            send(&mut g, Method::PUT, "/api/teams/search", r#"{"name":"x"}"#),
            (404, json!({"message": "Not found"}))
        );
    }

    #[test]
    fn delete_team_and_its_memberships() {
        let mut g = Grafana::new(CRED);
        let id = create(&mut g, "Ops", "");
        add(&mut g, id, 2);
        let path = format!("/api/teams/{id}");
        assert_eq!(
            send(&mut g, Method::DELETE, &path, ""),
            (200, json!({"message": "Team deleted"}))
        );
        assert_eq!(get(&mut g, &path), (404, team_not_found_body()));
        assert_eq!(get(&mut g, &format!("{path}/members")), (200, json!([])));
        assert_eq!(
            send(&mut g, Method::DELETE, &path, ""),
            (404, team_not_found_body())
        );
        // The name is free again, and the new team starts with no members.
        let again = create(&mut g, "Ops", "");
        assert_eq!(
            get(&mut g, &format!("/api/teams/{again}")).1["memberCount"],
            0
        );
    }

    #[test]
    fn members_list_add_update_remove() {
        let mut g = Grafana::new(CRED);
        let id = create(&mut g, "Ops", "");
        let members = format!("/api/teams/{id}/members");
        assert_eq!(get(&mut g, &members), (200, json!([])));

        let added = (200, json!({"message": "Member added to Team"}));
        // Carol (id 4), then Bob (id 3) with admin permission.
        assert_eq!(add(&mut g, id, 4), added);
        let body = r#"{"userId":3,"permission":4}"#;
        assert_eq!(send(&mut g, Method::POST, &members, body), added);

        let (status, list) = get(&mut g, &members);
        assert_eq!(status, 200);
        let (_, team) = get(&mut g, &format!("/api/teams/{id}"));
        assert_eq!(team["memberCount"], 2);
        let bob = &list[0];
        let keys: Vec<&str> = bob
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "orgId",
                "teamId",
                "teamUID",
                "userId",
                "userUID",
                "auth_module",
                "email",
                "name",
                "login",
                "avatarUrl",
                "labels",
                "permission"
            ]
        );
        // Ordered by login.
        assert_eq!(bob["login"], "bob");
        assert_eq!(bob["userId"], 3);
        assert_eq!(bob["orgId"], 1);
        assert_eq!(bob["teamId"], id);
        assert_eq!(bob["teamUID"], team["uid"]);
        assert_eq!(bob["email"], "bob@example.com");
        assert_eq!(bob["name"], "Bob Builder");
        assert_eq!(bob["auth_module"], "");
        assert_eq!(bob["labels"], json!([]));
        assert_eq!(bob["permission"], 4);
        assert_eq!(bob["userUID"].as_str().map(str::len), Some(14));
        assert_eq!(list[1]["login"], "carol");
        assert_eq!(list[1]["permission"], 0);

        // Update Carol to admin, by team uid.
        let uid = team["uid"].as_str().expect("uid");
        let carol = format!("/api/teams/{uid}/members/4");
        assert_eq!(
            send(&mut g, Method::PUT, &carol, r#"{"permission":4}"#),
            (200, json!({"message": "Team member updated"}))
        );
        assert_eq!(get(&mut g, &members).1[1]["permission"], 4);
        // Any other permission is stored as Member.
        send(&mut g, Method::PUT, &carol, r#"{"permission":2}"#);
        assert_eq!(get(&mut g, &members).1[1]["permission"], 0);

        assert_eq!(
            send(&mut g, Method::DELETE, &format!("{members}/3"), ""),
            (200, json!({"message": "Team Member removed"}))
        );
        let (_, list) = get(&mut g, &members);
        assert_eq!(list.as_array().map(Vec::len), Some(1));
        assert_eq!(list[0]["login"], "carol");
    }

    #[test]
    fn add_member_errors() {
        let mut g = Grafana::new(CRED);
        let id = create(&mut g, "Ops", "");
        let members = format!("/api/teams/{id}/members");
        add(&mut g, id, 2);
        assert_eq!(
            add(&mut g, id, 2),
            (
                400,
                json!({"message": "User is already added to this team"})
            )
        );
        let user_not_found = (404, json!({"message": "User not found"}));
        // Id 1 is Grafana's built-in admin, who is nobody here; a missing userId is 0.
        for body in [
            r#"{"userId":1}"#,
            r#"{"userId":999}"#,
            r#"{"userId":-5}"#,
            "{}",
            "null",
        ] {
            assert_eq!(
                send(&mut g, Method::POST, &members, body),
                user_not_found,
                "{body}"
            );
        }
        let bad = (400, json!({"message": "bad request data"}));
        for body in [
            "",
            "{",
            "[1]",
            r#"{"userId":"3"}"#,
            r#"{"userId":3.5}"#,
            r#"{"userId":1e2}"#,
            r#"{"userId":99999999999999999999999}"#,
            r#"{"userId":3,"permission":"admin"}"#,
        ] {
            assert_eq!(send(&mut g, Method::POST, &members, body), bad, "{body}");
        }
        assert_eq!(add(&mut g, 42, 3), (404, team_not_found_body()));
        assert_eq!(
            send(
                &mut g,
                Method::POST,
                "/api/teams/zzz/members",
                r#"{"userId":3}"#
            ),
            (404, json!({"message": "Not found"}))
        );
    }

    #[test]
    fn members_of_missing_team() {
        let mut g = Grafana::new(CRED);
        // No existence check in the handler: an unknown integer id lists nothing.
        assert_eq!(get(&mut g, "/api/teams/5/members"), (200, json!([])));
        assert_eq!(
            get(&mut g, "/api/teams/nouid/members"),
            (404, json!({"message": "Not found"}))
        );
    }

    #[test]
    fn update_member_errors() {
        let mut g = Grafana::new(CRED);
        let id = create(&mut g, "Ops", "");
        add(&mut g, id, 2);
        let not_member = (404, json!({"message": "Team member not found."}));
        let path = format!("/api/teams/{id}/members/3");
        assert_eq!(
            send(&mut g, Method::PUT, &path, r#"{"permission":4}"#),
            not_member
        );
        let path = format!("/api/teams/{id}/members/12345");
        assert_eq!(
            send(&mut g, Method::PUT, &path, r#"{"permission":4}"#),
            not_member
        );
        let path = format!("/api/teams/{id}/members/bob");
        assert_eq!(
            send(&mut g, Method::PUT, &path, r#"{"permission":4}"#),
            (400, json!({"message": "userId is invalid"}))
        );
        let path = format!("/api/teams/{id}/members/2");
        assert_eq!(
            send(&mut g, Method::PUT, &path, r#"{"permission":"4"}"#),
            (400, json!({"message": "bad request data"}))
        );
        assert_eq!(
            send(
                &mut g,
                Method::PUT,
                "/api/teams/9/members/2",
                r#"{"permission":4}"#
            ),
            (404, team_not_found_body())
        );
    }

    #[test]
    fn remove_member_errors() {
        let mut g = Grafana::new(CRED);
        let id = create(&mut g, "Ops", "");
        assert_eq!(
            send(
                &mut g,
                Method::DELETE,
                &format!("/api/teams/{id}/members/3"),
                ""
            ),
            (404, json!({"message": "Team member not found"}))
        );
        assert_eq!(
            send(&mut g, Method::DELETE, "/api/teams/9/members/3", ""),
            (404, team_not_found_body())
        );
        for user in ["x", "..%2Fx", "3.0", "99999999999999999999999"] {
            assert_eq!(
                send(
                    &mut g,
                    Method::DELETE,
                    &format!("/api/teams/{id}/members/{user}"),
                    ""
                ),
                (400, json!({"message": "userId is invalid"})),
                "{user}"
            );
        }
    }

    #[test]
    fn bulk_set_members() {
        let mut g = Grafana::new(CRED);
        let id = create(&mut g, "Ops", "");
        add(&mut g, id, 2);
        let members = format!("/api/teams/{id}/members");
        let body =
            r#"{"members":["bob@example.com","DAN@example.com"],"admins":["eve@example.com"]}"#;
        assert_eq!(
            send(&mut g, Method::PUT, &members, body),
            (
                200,
                json!({"message": "Team memberships have been updated"})
            )
        );
        let (_, list) = get(&mut g, &members);
        let got: Vec<(String, i64)> = list
            .as_array()
            .expect("array")
            .iter()
            .map(|m| {
                (
                    m["login"].as_str().unwrap_or("").to_string(),
                    m["permission"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("bob".to_string(), 0),
                ("dan".to_string(), 0),
                ("eve".to_string(), 4)
            ]
        );
        // An unknown email changes nothing.
        let body = r#"{"members":["nobody@example.com"]}"#;
        assert_eq!(
            send(&mut g, Method::PUT, &members, body),
            (404, json!({"message": "user not found"}))
        );
        assert_eq!(get(&mut g, &members).1.as_array().map(Vec::len), Some(3));
        assert_eq!(
            send(&mut g, Method::PUT, &members, r#"{"members":[1]}"#),
            (400, json!({"message": "bad request data"}))
        );
        assert_eq!(
            send(&mut g, Method::PUT, "/api/teams/9/members", "{}"),
            (404, team_not_found_body())
        );
    }

    #[test]
    fn org_users_search_and_list() {
        let mut g = Grafana::new(CRED);
        let (status, v) = get(&mut g, "/api/org/users/search");
        assert_eq!(status, 200);
        assert_eq!(v["totalCount"], PEOPLE.len());
        assert_eq!(v["page"], 1);
        assert_eq!(v["perPage"], 1000);
        let ada = &v["orgUsers"][0];
        assert_eq!(
            ada,
            &json!({
                "orgId": 1,
                "userId": 2,
                "email": "ada@example.com",
                "name": "Ada Admin",
                "login": "ada",
                "avatarUrl": avatar_url("ada@example.com"),
                "role": "Admin",
                "lastSeenAt": LAST_SEEN_AT,
                "lastSeenAtAge": LAST_SEEN_AGE,
            })
        );
        assert_eq!(v["orgUsers"][1]["role"], "Viewer");

        // query matches login, email or name, any case.
        let (_, v) = get(&mut g, "/api/org/users/search?query=BUILDER");
        assert_eq!(v["totalCount"], 1);
        assert_eq!(v["orgUsers"][0]["userId"], 3);
        let (_, v) = get(&mut g, "/api/org/users/search?query=ekstr%C3%B6m");
        assert_eq!(v["orgUsers"][0]["login"], "eve");
        let (_, v) = get(&mut g, "/api/org/users/search?perpage=2&page=2");
        assert_eq!(v["totalCount"], PEOPLE.len());
        assert_eq!(v["orgUsers"][0]["login"], "carol");
        let (_, v) = get(&mut g, "/api/org/users/search?query=zzz");
        assert_eq!(v["orgUsers"], json!([]));
        assert_eq!(v["totalCount"], 0);

        let (status, list) = get(&mut g, "/api/org/users");
        assert_eq!(status, 200);
        assert_eq!(list.as_array().map(Vec::len), Some(PEOPLE.len()));
        assert_eq!(list[0]["email"], "ada@example.com");
        let (_, list) = get(&mut g, "/api/org/users?limit=2");
        assert_eq!(list.as_array().map(Vec::len), Some(2));
        let (_, list) = get(&mut g, "/api/org/users?query=frank&limit=0");
        assert_eq!(list.as_array().map(Vec::len), Some(1));
        assert_eq!(list[0]["userId"], 7);
    }

    #[test]
    fn user_lookup() {
        let mut g = Grafana::new(CRED);
        let (status, v) = get(&mut g, "/api/users/lookup?loginOrEmail=BOB%40example.com");
        assert_eq!(status, 200);
        assert_eq!(
            v,
            json!({
                "id": 3,
                "email": "bob@example.com",
                "name": "Bob Builder",
                "login": "bob",
                "theme": "",
                "orgId": 1,
                "isGrafanaAdmin": false,
                "isDisabled": false,
                "isExternal": false,
                "authLabels": [],
                "updatedAt": CREATED_AT,
                "createdAt": CREATED_AT,
                "avatarUrl": "",
            })
        );
        let (_, v) = get(&mut g, "/api/users/lookup?loginOrEmail=ada");
        assert_eq!(v["id"], 2);
        assert_eq!(v["isGrafanaAdmin"], true);
        let missing = (404, json!({"message": "user not found"}));
        assert_eq!(get(&mut g, "/api/users/lookup?loginOrEmail=admin"), missing);
        assert_eq!(get(&mut g, "/api/users/lookup"), missing);
    }

    #[test]
    fn unknown_paths_and_methods() {
        let mut g = Grafana::new(CRED);
        let not_found = (404, json!({"message": "Not found"}));
        for path in [
            "/",
            "/api",
            "/api/teamz",
            "/api/teams/1/members/2/x",
            "/api/users",
            "/api/teams/1/preferences",
        ] {
            assert_eq!(get(&mut g, path), not_found, "{path}");
        }
        let not_allowed = (405, json!({"message": "Method not allowed"}));
        for (method, path) in [
            (Method::GET, "/api/teams"),
            (Method::POST, "/api/teams/search"),
            (Method::POST, "/api/teams/1"),
            (Method::PATCH, "/api/teams/1"),
            (Method::DELETE, "/api/teams/1/members"),
            (Method::GET, "/api/teams/1/members/2"),
            (Method::POST, "/api/org/users"),
            (Method::DELETE, "/api/org/users/search"),
            (Method::PUT, "/api/users/lookup"),
        ] {
            assert_eq!(
                send(&mut g, method.clone(), path, ""),
                not_allowed,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn uids_are_unique_and_never_numeric() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..5000u64 {
            let uid = short_uid(n, 0x7465_616d);
            assert_eq!(uid.len(), 14);
            assert!(uid.parse::<i64>().is_err());
            assert!(seen.insert(uid));
        }
    }
}
