//! Squadcast (now SolarWinds Incident Response) public API v3 simulator: OAuth access tokens,
//! teams, team members and the read side of users.
//!
//! This file owns the in-memory state of one simulated Squadcast organization and every answer
//! the simulator gives. It follows, in order of authority:
//!
//! - seed `001_8d4f29d58e987a4c.txt` (the Postman "Update Team" example: the team object, the
//!   four default team roles and their abilities, `"name":"abc","slug":"abc3"`);
//! - the vendor's OpenAPI spec (`solarwinds/squadcast-sdk-go : .speakeasy/out.openapi.yaml`,
//!   copied to `shared/specs/squadcast/`): paths, `V3.Teams.*` and `V3.Users.User` schemas,
//!   `Common.V3.ErrorMeta`, 201 on create, 204 on delete;
//! - the official Terraform provider (`SquadcastHub/terraform-provider-squadcast`): the
//!   `/v3/oauth/access-token` exchange, `GET /v3/teams/by-name`, `PATCH /v3/teams/{id}/meta`,
//!   `GET /v3/teams/{id}/members/{userId}`, `GET /v3/users?email=` answering ONE user object,
//!   `meta.status` as a JSON number, `default_user` on the team;
//! - the Postman mirror of "Create Team": the creator is added automatically holding the
//!   "Manage Team" and "Admin" role ids.
//!
//! Inferences (the documents are silent; each is marked `[I]` where it is made):
//! every exact `error_message` text; 400 for a path id that is not a 24-hex ObjectId; the slug
//! rule and its numeric de-duplication suffix; `member_ids` being optional on create (the
//! Terraform provider never sends it); the roles given to `member_ids` users on create; the
//! derivation of the OBAC `role` from RBAC `role_ids`; case-insensitive name uniqueness; the
//! 255-character name limit and 10,000-character description limit; 429 in the `meta` shape
//! (the spec lists no 429); no "team must keep an owner" rule.
//!
//! Not simulated (they answer 404 `route not found`): team roles (`/v3/teams/{id}/roles*`),
//! bulk member add (`/v3/teams/{id}/members/bulk`), and every user write.
//!
//! Test hooks: [`Squadcast::advance_clock`] moves the logical clock forward (tokens expire
//! without sleeping), and the switches `rate_limited`, `expire_tokens`, `reject_refresh` and
//! `revoke_tokens` (see [`Vendor::set_switch`] below).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::people::{squadcast_user_id, PEOPLE};
use super::{SimRequest, SimResponse, Vendor};

/// Access-token lifetime. The Terraform provider refreshes on `expires_at`; one hour is the
/// common OAuth default [I: the docs give no number].
const TOKEN_TTL_SECS: u64 = 3600;
/// Live access tokens kept; the oldest is dropped beyond this so a benchmark cannot grow the
/// table without bound.
const MAX_LIVE_TOKENS: usize = 1000;
/// Teams kept; creating more answers 500 (a simulator limit, not a vendor one).
const MAX_TEAMS: usize = 100_000;
/// [I] The spec gives no limit on the team name.
const MAX_NAME_CHARS: usize = 255;
/// [I] The spec gives no limit on the description; bounded to bound memory.
const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// Prefix of every ObjectId this simulator mints. People ids (`620b2b18f163b1e165f1....`)
/// come from `people.rs` and never collide with it.
const ID_PREFIX: &str = "6a1f0c00";

/// Handlers answer `Ok` or `Err`, both already a finished response, so validation can use `?`.
type Answer = Result<SimResponse, SimResponse>;

/// One person of `people.rs`, as a Squadcast user.
#[derive(Debug, Clone)]
struct User {
    id: String,
    first_name: String,
    last_name: String,
    display_name: String,
    email: String,
    /// Organization role: `account_owner` for person 0, `user` for the others.
    role: &'static str,
    role_id: String,
}

/// A team role (`V3.Teams.TeamRole`). Every team gets its own copy of the four default roles.
#[derive(Debug, Clone)]
struct Role {
    id: String,
    name: &'static str,
    slug: &'static str,
    default: bool,
}

/// A team member (`V3.Teams.TeamMember`); `user_id` is the key.
#[derive(Debug, Clone, PartialEq)]
struct Member {
    user_id: String,
    /// OBAC role: `owner` or `member`.
    role: String,
    /// RBAC role ids, each one of the team's `roles[].id`.
    role_ids: Vec<String>,
}

#[derive(Debug, Clone)]
struct Team {
    id: String,
    name: String,
    description: String,
    slug: String,
    created_at: String,
    updated_at: String,
    created_by: String,
    members: Vec<Member>,
    roles: Vec<Role>,
    default_user_id: String,
}

/// The four default roles, in the seed's order: (name, slug, default).
const DEFAULT_ROLES: [(&str, &str, bool); 4] = [
    ("Manage Team", "manage-team", true),
    ("Admin", "admin", false),
    ("User", "user", false),
    ("Observer", "observer", false),
];

/// The simulated organization.
pub struct Squadcast {
    /// The long-lived refresh token (`X-Refresh-Token`), the only credential accepted.
    refresh_token: String,
    /// Seconds added to the wall clock by [`Squadcast::advance_clock`]. The clock stays close
    /// to real time so a client comparing `expires_at` with its own clock sees sane values.
    clock_offset_secs: u64,
    /// Live access tokens → `expires_at` (unix seconds).
    tokens: HashMap<String, u64>,
    /// Tokens in issue order, to drop the oldest first.
    token_order: VecDeque<String>,
    /// Next ObjectId counter.
    next_id: u64,
    org_id: String,
    users: Vec<User>,
    /// Teams by id; ids grow with the counter, so iteration is creation order.
    teams: BTreeMap<String, Team>,
    /// Lower-cased name → team id, for O(1) uniqueness checks and `by-name`.
    names: HashMap<String, String>,
    /// Slugs in use.
    slugs: HashSet<String>,
    /// Slug base → next suffix to try, so de-duplication does not rescan from 1.
    slug_hint: HashMap<String, u64>,
    rate_limited: bool,
    expire_tokens: bool,
    reject_refresh: bool,
}

const ORG_NAME: &str = "Teamgate Sim";
const ORG_SLUG: &str = "teamgate-sim";

impl Squadcast {
    /// A fresh organization holding every person of `people.rs` and no teams; `credential` is
    /// the refresh token.
    pub fn new(credential: &str) -> Self {
        let mut sim = Squadcast {
            refresh_token: credential.to_string(),
            clock_offset_secs: 0,
            tokens: HashMap::new(),
            token_order: VecDeque::new(),
            next_id: 1,
            org_id: String::new(),
            users: Vec::new(),
            teams: BTreeMap::new(),
            names: HashMap::new(),
            slugs: HashSet::new(),
            slug_hint: HashMap::new(),
            rate_limited: false,
            expire_tokens: false,
            reject_refresh: false,
        };
        sim.org_id = sim.mint_id();
        let owner_role_id = sim.mint_id();
        let user_role_id = sim.mint_id();
        sim.users = PEOPLE
            .iter()
            .enumerate()
            .map(|(index, person)| {
                // people.rs has full names only; Squadcast wants first/last [I: split at the
                // first space, so "Frank Ó Fiach" is "Frank" + "Ó Fiach"].
                let (first, last) = person.name.split_once(' ').unwrap_or((person.name, ""));
                let owner = index == 0;
                User {
                    id: squadcast_user_id(index),
                    first_name: first.to_string(),
                    last_name: last.to_string(),
                    display_name: person.name.to_string(),
                    email: person.email.to_string(),
                    role: if owner { "account_owner" } else { "user" },
                    role_id: if owner {
                        owner_role_id.clone()
                    } else {
                        user_role_id.clone()
                    },
                }
            })
            .collect();
        sim
    }

    /// Moves the logical clock forward, so tokens expire without sleeping.
    pub fn advance_clock(&mut self, secs: u64) {
        self.clock_offset_secs = self.clock_offset_secs.saturating_add(secs);
    }

    fn now_millis(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        wall.saturating_add(self.clock_offset_secs.saturating_mul(1000))
    }

    fn now_secs(&self) -> u64 {
        self.now_millis() / 1000
    }

    /// A deterministic 24-hex ObjectId.
    fn mint_id(&mut self) -> String {
        let id = format!("{ID_PREFIX}{:016x}", self.next_id);
        self.next_id += 1;
        id
    }

    fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    // ----- auth -------------------------------------------------------------------------------

    /// Mints an access token, first dropping expired ones and, beyond the cap, the oldest.
    fn issue_token(&mut self) -> (String, u64, u64) {
        let now = self.now_secs();
        while let Some(front) = self.token_order.front() {
            let expired = self.tokens.get(front).is_none_or(|&exp| exp <= now);
            if !expired && self.tokens.len() < MAX_LIVE_TOKENS {
                break;
            }
            if let Some(old) = self.token_order.pop_front() {
                self.tokens.remove(&old);
            }
        }
        let token = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let expires_at = now.saturating_add(TOKEN_TTL_SECS);
        self.tokens.insert(token.clone(), expires_at);
        self.token_order.push_back(token.clone());
        (token, now, expires_at)
    }

    /// `GET /v3/oauth/access-token`: exchanges the refresh token for a Bearer access token.
    /// Issuing does not revoke older tokens that are still live.
    fn access_token(&mut self, req: &SimRequest) -> SimResponse {
        let presented = req.header("x-refresh-token");
        if self.reject_refresh || presented != Some(self.refresh_token.as_str()) {
            // [I] the exact text is undocumented.
            return error(401, "invalid refresh token");
        }
        let (token, issued_at, expires_at) = self.issue_token();
        data(
            200,
            json!({
                "access_token": token,
                "expires_at": expires_at,
                "issued_at": issued_at,
                "refresh_token": self.refresh_token,
                "type": "Bearer",
            }),
        )
    }

    /// True when the request carries a live access token. While `expire_tokens` is on, every
    /// token counts as expired, including ones issued meanwhile.
    fn authorized(&self, req: &SimRequest) -> bool {
        if self.expire_tokens {
            return false;
        }
        let now = self.now_secs();
        req.bearer()
            .and_then(|token| self.tokens.get(token.trim()))
            .is_some_and(|&exp| exp > now)
    }

    // ----- routing ----------------------------------------------------------------------------

    fn dispatch(&mut self, route: Route<'_>, req: &SimRequest) -> Answer {
        let method = req.method.as_str();
        match (route, method) {
            (Route::Teams, "GET") => Ok(self.list_teams()),
            (Route::Teams, _) => self.create_team(req),
            (Route::TeamByName, _) => self.team_by_name(req),
            (Route::Team(id), "GET") => self.get_team(id),
            (Route::Team(id), "PUT") => self.update_team(id, req),
            (Route::Team(id), _) => self.delete_team(id),
            (Route::TeamMeta(id), _) => self.update_team_meta(id, req),
            (Route::Members(id), "GET") => self.list_members(id),
            (Route::Members(id), _) => self.add_member(id, req),
            (Route::Member(id, uid), "GET") => self.get_member(id, uid),
            (Route::Member(id, uid), "PATCH") => self.update_member(id, uid, req),
            (Route::Member(id, uid), _) => self.remove_member(id, uid),
            (Route::Users, _) => self.list_users(req),
            (Route::User(uid), _) => self.get_user(uid),
            // Answered before authentication; unreachable here, but answer it consistently.
            (Route::AccessToken, _) => Ok(self.access_token(req)),
        }
    }

    // ----- teams ------------------------------------------------------------------------------

    fn team_json(&self, team: &Team) -> Value {
        json!({
            "id": team.id,
            "created_at": team.created_at,
            "updated_at": team.updated_at,
            "created_by": team.created_by,
            "organization_id": self.org_id,
            "name": team.name,
            "description": team.description,
            "slug": team.slug,
            "members": team.members.iter().map(member_json).collect::<Vec<_>>(),
            "roles": team.roles.iter().map(role_json).collect::<Vec<_>>(),
            "default": false,
            "organization": {"id": self.org_id, "name": ORG_NAME, "slug": ORG_SLUG},
            "default_user": {"id": team.default_user_id},
        })
    }

    /// `GET /v3/teams`: every team, creation order, no pagination (the spec has no params).
    fn list_teams(&self) -> SimResponse {
        let all: Vec<Value> = self.teams.values().map(|t| self.team_json(t)).collect();
        data(200, Value::Array(all))
    }

    /// Validates a path team id and finds the team: 400 when it is not an ObjectId, 404 when
    /// no such team. Returns the normalized (lower-case) id.
    fn existing_team_id(&self, raw: &str) -> Result<String, SimResponse> {
        // [I] a Mongo-backed API rejects a malformed ObjectId before looking it up.
        let id = object_id(raw).ok_or_else(|| error(400, "invalid team id"))?;
        if self.teams.contains_key(&id) {
            Ok(id)
        } else {
            // [I] the exact text is undocumented.
            Err(error(404, "team not found"))
        }
    }

    fn team(&self, raw: &str) -> Result<&Team, SimResponse> {
        let id = self.existing_team_id(raw)?;
        self.teams
            .get(&id)
            .ok_or_else(|| error(404, "team not found"))
    }

    fn team_mut(&mut self, raw: &str) -> Result<&mut Team, SimResponse> {
        let id = self.existing_team_id(raw)?;
        self.teams
            .get_mut(&id)
            .ok_or_else(|| error(404, "team not found"))
    }

    /// `GET /v3/teams/{teamId}`.
    fn get_team(&self, raw: &str) -> Answer {
        let team = self.team(raw)?;
        Ok(data(200, self.team_json(team)))
    }

    /// `GET /v3/teams/by-name?name=` (Terraform provider; not in the spec). Names are unique
    /// case-insensitively here, so the lookup is case-insensitive too [I].
    fn team_by_name(&self, req: &SimRequest) -> Answer {
        let name = req
            .query_param("name")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| error(400, "name is required"))?;
        let team = self
            .names
            .get(&name.to_lowercase())
            .and_then(|id| self.teams.get(id))
            .ok_or_else(|| error(404, "team not found"))?;
        Ok(data(200, self.team_json(team)))
    }

    /// 409 when `name` is taken by a team other than `except`.
    fn check_name_free(&self, name: &str, except: Option<&str>) -> Result<(), SimResponse> {
        match self.names.get(&name.to_lowercase()) {
            Some(owner) if Some(owner.as_str()) != except => {
                Err(error(409, &format!("team with name {name} already exists")))
            }
            _ => Ok(()),
        }
    }

    /// A free slug for `name`: the base, else the base with the smallest free numeric suffix
    /// from 1 (`abc`, `abc1`, `abc2`, ...) [I: seed 001 shows `"name":"abc","slug":"abc3"`].
    fn free_slug(&mut self, name: &str) -> String {
        let base = slug_base(name);
        if !self.slugs.contains(&base) {
            return base;
        }
        let hint = self.slug_hint.entry(base.clone()).or_insert(1);
        loop {
            let candidate = format!("{base}{hint}");
            *hint += 1;
            if !self.slugs.contains(&candidate) {
                return candidate;
            }
        }
    }

    /// `POST /v3/teams` → 201. The creator (person 0, the account owner whose refresh token
    /// this is) becomes owner with "Manage Team" + "Admin" (Postman "Create Team" example).
    fn create_team(&mut self, req: &SimRequest) -> Answer {
        let body = body_object(req)?;
        let name = team_name(&body, true)?.ok_or_else(|| error(400, "name is required"))?;
        let description = team_description(&body)?.unwrap_or_default();
        // [I] the spec marks `member_ids` required, but the Terraform provider never sends it
        // and the API accepts that, so it is optional here.
        let member_ids = str_array(&body, "member_ids")?.unwrap_or_default();
        for uid in &member_ids {
            if self.user(uid).is_none() {
                return Err(error(400, "user not found"));
            }
        }
        self.check_name_free(&name, None)?;
        if self.teams.len() >= MAX_TEAMS {
            return Err(error(500, "team limit of the simulator reached"));
        }

        let id = self.mint_id();
        let roles: Vec<Role> = DEFAULT_ROLES
            .iter()
            .map(|&(name, slug, default)| Role {
                id: self.mint_id(),
                name,
                slug,
                default,
            })
            .collect();
        let creator = squadcast_user_id(0);
        let mut members = vec![Member {
            user_id: creator.clone(),
            role: "owner".to_string(),
            role_ids: vec![roles[0].id.clone(), roles[1].id.clone()],
        }];
        for uid in member_ids {
            if members.iter().any(|m| m.user_id == uid) {
                continue;
            }
            // [I] undocumented which roles `member_ids` users get; the seed's plain member
            // holds the "User" role, so they get that.
            members.push(Member {
                user_id: uid,
                role: "member".to_string(),
                role_ids: vec![roles[2].id.clone()],
            });
        }
        let slug = self.free_slug(&name);
        let now = rfc3339_millis(self.now_millis());
        let team = Team {
            id: id.clone(),
            name: name.clone(),
            description,
            slug: slug.clone(),
            created_at: now.clone(),
            updated_at: now,
            created_by: creator.clone(),
            members,
            roles,
            default_user_id: creator,
        };
        self.names.insert(name.to_lowercase(), id.clone());
        self.slugs.insert(slug);
        let body = self.team_json(&team);
        self.teams.insert(id, team);
        Ok(data(201, body))
    }

    /// Renames team `id` (already validated as free) and re-derives its slug [I: the slug
    /// follows the name].
    fn rename(&mut self, id: &str, new_name: &str) {
        let Some((old_name, old_slug)) =
            self.teams.get(id).map(|t| (t.name.clone(), t.slug.clone()))
        else {
            return;
        };
        if old_name == new_name {
            return;
        }
        self.names.remove(&old_name.to_lowercase());
        self.slugs.remove(&old_slug);
        let slug = self.free_slug(new_name);
        self.slugs.insert(slug.clone());
        self.names.insert(new_name.to_lowercase(), id.to_string());
        if let Some(team) = self.teams.get_mut(id) {
            team.name = new_name.to_string();
            team.slug = slug;
        }
    }

    /// `PUT /v3/teams/{teamId}`: name and description optional, `members` required and
    /// REPLACING the member list. Everything is validated before anything changes.
    /// [I] No rule that a team must keep an owner: the documents state none.
    fn update_team(&mut self, raw: &str, req: &SimRequest) -> Answer {
        let id = self.existing_team_id(raw)?;
        let body = body_object(req)?;
        let name = team_name(&body, false)?;
        let description = team_description(&body)?;
        let entries = match body.get("members") {
            None | Some(Value::Null) => return Err(error(400, "members is required")),
            Some(Value::Array(entries)) => entries,
            Some(_) => return Err(error(400, "members must be an array")),
        };
        let team = self.team(&id)?;
        let mut members: Vec<Member> = Vec::with_capacity(entries.len());
        for entry in entries {
            let obj = entry
                .as_object()
                .ok_or_else(|| error(400, "each member must be an object"))?;
            let input = MemberInput::parse(obj, None)?;
            let member = resolve_member(&self.users, &team.roles, input)?;
            if members.iter().any(|m| m.user_id == member.user_id) {
                return Err(error(400, "duplicate user_id in members"));
            }
            members.push(member);
        }
        if let Some(name) = &name {
            self.check_name_free(name, Some(&id))?;
        }

        if let Some(name) = &name {
            self.rename(&id, name);
        }
        let now = rfc3339_millis(self.now_millis());
        let team = self.team_mut(&id)?;
        if let Some(description) = description {
            team.description = description;
        }
        team.members = members;
        team.updated_at = now;
        let team = self.team(&id)?;
        Ok(data(200, self.team_json(team)))
    }

    /// `PATCH /v3/teams/{teamId}/meta` (Terraform provider; not in the spec): name,
    /// description and `default_user.id`, all optional; members untouched.
    fn update_team_meta(&mut self, raw: &str, req: &SimRequest) -> Answer {
        let id = self.existing_team_id(raw)?;
        let body = body_object(req)?;
        let name = team_name(&body, false)?;
        let description = team_description(&body)?;
        let default_user = match body.get("default_user") {
            None | Some(Value::Null) => None,
            Some(Value::Object(obj)) => match obj.get("id") {
                Some(Value::String(uid)) if self.user(uid).is_some() => Some(uid.clone()),
                Some(Value::String(_)) => return Err(error(400, "user not found")),
                _ => return Err(error(400, "default_user.id must be a string")),
            },
            Some(_) => return Err(error(400, "default_user must be an object")),
        };
        if let Some(name) = &name {
            self.check_name_free(name, Some(&id))?;
            self.rename(&id, name);
        }
        let now = rfc3339_millis(self.now_millis());
        let team = self.team_mut(&id)?;
        if let Some(description) = description {
            team.description = description;
        }
        if let Some(uid) = default_user {
            team.default_user_id = uid;
        }
        team.updated_at = now;
        let team = self.team(&id)?;
        Ok(data(200, self.team_json(team)))
    }

    /// `DELETE /v3/teams/{teamId}` → 204, no body.
    fn delete_team(&mut self, raw: &str) -> Answer {
        let id = self.existing_team_id(raw)?;
        if let Some(team) = self.teams.remove(&id) {
            self.names.remove(&team.name.to_lowercase());
            self.slugs.remove(&team.slug);
        }
        Ok(SimResponse::empty(204))
    }

    // ----- members ----------------------------------------------------------------------------

    /// `GET /v3/teams/{teamId}/members`.
    fn list_members(&self, raw: &str) -> Answer {
        let team = self.team(raw)?;
        let all: Vec<Value> = team.members.iter().map(member_json).collect();
        Ok(data(200, Value::Array(all)))
    }

    /// `GET /v3/teams/{teamId}/members/{userId}` (Terraform provider; not in the spec). The
    /// provider's `?owner_id=` is accepted and ignored.
    fn get_member(&self, raw: &str, raw_uid: &str) -> Answer {
        let team = self.team(raw)?;
        let uid = member_id(raw_uid)?;
        let member = team
            .members
            .iter()
            .find(|m| m.user_id == uid)
            .ok_or_else(|| error(404, "member not found"))?;
        Ok(data(200, member_json(member)))
    }

    /// `POST /v3/teams/{teamId}/members` → 201 with the member.
    fn add_member(&mut self, raw: &str, req: &SimRequest) -> Answer {
        let id = self.existing_team_id(raw)?;
        let body = body_object(req)?;
        let input = MemberInput::parse(&body, None)?;
        let team = self.team(&id)?;
        let member = resolve_member(&self.users, &team.roles, input)?;
        if team.members.iter().any(|m| m.user_id == member.user_id) {
            // [I] the exact text is undocumented.
            return Err(error(409, "user is already a member of the team"));
        }
        let now = rfc3339_millis(self.now_millis());
        let team = self.team_mut(&id)?;
        team.members.push(member.clone());
        team.updated_at = now;
        Ok(data(201, member_json(&member)))
    }

    /// `PATCH /v3/teams/{teamId}/members/{memberId}`: `role_ids` and/or `role`; a field left
    /// out keeps its value, except that `role` follows new `role_ids` when not given [I].
    fn update_member(&mut self, raw: &str, raw_uid: &str, req: &SimRequest) -> Answer {
        let id = self.existing_team_id(raw)?;
        let uid = member_id(raw_uid)?;
        let body = body_object(req)?;
        let team = self.team(&id)?;
        let current = team
            .members
            .iter()
            .find(|m| m.user_id == uid)
            .ok_or_else(|| error(404, "member not found"))?;
        let mut input = MemberInput::parse(&body, Some(&uid))?;
        if input.role_ids.is_none() {
            input.role_ids = Some(current.role_ids.clone());
            if input.role.is_none() {
                input.role = Some(current.role.clone());
            }
        }
        let updated = resolve_member(&self.users, &team.roles, input)?;
        let now = rfc3339_millis(self.now_millis());
        let team = self.team_mut(&id)?;
        if let Some(member) = team.members.iter_mut().find(|m| m.user_id == uid) {
            *member = updated.clone();
        }
        team.updated_at = now;
        Ok(data(200, member_json(&updated)))
    }

    /// `DELETE /v3/teams/{teamId}/members/{memberId}` → 204. The provider's
    /// `?assignDependenciesToDefaultUser=true` is accepted; nothing here owns dependencies.
    fn remove_member(&mut self, raw: &str, raw_uid: &str) -> Answer {
        let id = self.existing_team_id(raw)?;
        let uid = member_id(raw_uid)?;
        let now = rfc3339_millis(self.now_millis());
        let team = self.team_mut(&id)?;
        let before = team.members.len();
        team.members.retain(|m| m.user_id != uid);
        if team.members.len() == before {
            return Err(error(404, "member not found"));
        }
        team.updated_at = now;
        Ok(SimResponse::empty(204))
    }

    // ----- users ------------------------------------------------------------------------------

    /// `GET /v3/users` → `{"data":[User]}` (spec); with `?email=` → `{"data":User}`, ONE object,
    /// as the Terraform provider decodes it, or 404.
    fn list_users(&self, req: &SimRequest) -> Answer {
        match req.query_param("email") {
            Some(email) => {
                let email = email.trim().to_lowercase();
                let user = self
                    .users
                    .iter()
                    .find(|u| u.email.to_lowercase() == email)
                    .ok_or_else(|| error(404, "user not found"))?;
                Ok(data(200, user_json(user)))
            }
            None => Ok(data(
                200,
                Value::Array(self.users.iter().map(user_json).collect()),
            )),
        }
    }

    /// `GET /v3/users/{userID}` (spec).
    fn get_user(&self, raw: &str) -> Answer {
        let id = object_id(raw).ok_or_else(|| error(400, "invalid user id"))?;
        let user = self.user(&id).ok_or_else(|| error(404, "user not found"))?;
        Ok(data(200, user_json(user)))
    }
}

impl Vendor for Squadcast {
    fn kind(&self) -> &'static str {
        "squadcast"
    }

    fn handle(&mut self, req: &SimRequest) -> SimResponse {
        if self.rate_limited {
            // [I] 429 is not in the spec; the `meta` shape keeps clients' error parsing working.
            return error(429, "rate limit exceeded");
        }
        let segs = req.segs();
        let Some((route, allowed)) = match_route(&segs) else {
            return error(404, "route not found");
        };
        if !allowed.contains(&req.method.as_str()) {
            return error(405, "method not allowed").with_header("allow", &allowed.join(", "));
        }
        if matches!(route, Route::AccessToken) {
            return self.access_token(req);
        }
        if !self.authorized(req) {
            return error(401, "Unauthorized");
        }
        self.dispatch(route, req).unwrap_or_else(|e| e)
    }

    /// The user leaves the organization: no longer listed or found; team members keep the id.
    fn remove_person(&mut self, email: &str) -> bool {
        let before = self.users.len();
        self.users.retain(|u| !u.email.eq_ignore_ascii_case(email));
        self.users.len() < before
    }

    /// - `rate_limited`: every request answers 429.
    /// - `expire_tokens`: while on, every access token (also ones issued meanwhile) is
    ///   rejected as expired; refresh still answers 200.
    /// - `reject_refresh`: the refresh endpoint answers 401.
    /// - `revoke_tokens` (one-shot, turning it on acts, off does nothing): forgets every token
    ///   issued so far; tokens issued afterwards work. Lets a test over HTTP exercise
    ///   "expired → refresh → retry succeeds", which `expire_tokens` cannot.
    fn set_switch(&mut self, name: &str, on: bool) -> bool {
        match name {
            "rate_limited" => self.rate_limited = on,
            "expire_tokens" => self.expire_tokens = on,
            "reject_refresh" => self.reject_refresh = on,
            "revoke_tokens" => {
                if on {
                    self.tokens.clear();
                    self.token_order.clear();
                }
            }
            _ => return false,
        }
        true
    }

    /// `Common.V3.ErrorMeta`: `{"meta":{"status","error_message"}}`.
    fn error_body(&self, status: u16, message: &str) -> SimResponse {
        error(status, message)
    }
}

// ----- routes -------------------------------------------------------------------------------

/// A known path, ids still raw (validated by the handlers).
#[derive(Debug, Clone, Copy)]
enum Route<'a> {
    AccessToken,
    Teams,
    TeamByName,
    Team(&'a str),
    TeamMeta(&'a str),
    Members(&'a str),
    Member(&'a str, &'a str),
    Users,
    User(&'a str),
}

/// The route of a path and the methods it allows; `None` is 404.
fn match_route<'a>(segs: &[&'a str]) -> Option<(Route<'a>, &'static [&'static str])> {
    let found: (Route<'a>, &'static [&'static str]) = match segs {
        // The Terraform provider uses the API host; the docs name `auth.squadcast.com
        // /oauth/access-token`. Both paths are served so either base URL works.
        ["v3", "oauth", "access-token"] | ["oauth", "access-token"] => {
            (Route::AccessToken, &["GET"])
        }
        ["v3", "teams"] => (Route::Teams, &["GET", "POST"]),
        // Matched before `{teamId}`: "by-name" is a fixed segment, not an id.
        ["v3", "teams", "by-name"] => (Route::TeamByName, &["GET"]),
        ["v3", "teams", id] => (Route::Team(id), &["GET", "PUT", "DELETE"]),
        ["v3", "teams", id, "meta"] => (Route::TeamMeta(id), &["PATCH"]),
        ["v3", "teams", id, "members"] => (Route::Members(id), &["GET", "POST"]),
        // Bulk add is not simulated: 404 rather than treating "bulk" as a member id.
        ["v3", "teams", _, "members", "bulk"] => return None,
        ["v3", "teams", id, "members", uid] => {
            (Route::Member(id, uid), &["GET", "PATCH", "DELETE"])
        }
        ["v3", "users"] => (Route::Users, &["GET"]),
        ["v3", "users", uid] => (Route::User(uid), &["GET"]),
        _ => return None,
    };
    Some(found)
}

// ----- request parsing ----------------------------------------------------------------------

/// The request body as a JSON object. The provider sends `application/json;charset=UTF-8`;
/// any other content type, an empty body, bad JSON or a non-object → 400.
fn body_object(req: &SimRequest) -> Result<Map<String, Value>, SimResponse> {
    let json_type = req
        .header("content-type")
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        // [I] the spec lists no 415; 400 is in every operation's list.
        return Err(error(400, "Content-Type must be application/json"));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(error(400, "invalid request body")),
    }
}

/// An optional string field; JSON `null` counts as absent.
fn opt_str(body: &Map<String, Value>, key: &str) -> Result<Option<String>, SimResponse> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(error(400, &format!("{key} must be a string"))),
    }
}

/// An optional array of strings; JSON `null` counts as absent.
fn str_array(body: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, SimResponse> {
    let items = match body.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(error(400, &format!("{key} must be an array of strings"))),
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            _ => Err(error(400, &format!("{key} must be an array of strings"))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The `name` field, trimmed [I]; empty and over-long names → 400.
fn team_name(body: &Map<String, Value>, creating: bool) -> Result<Option<String>, SimResponse> {
    let Some(name) = opt_str(body, "name")? else {
        return Ok(None);
    };
    let name = name.trim().to_string();
    if name.is_empty() {
        let text = if creating {
            "name is required"
        } else {
            "name cannot be empty"
        };
        return Err(error(400, text));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(error(
            400,
            &format!("name must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(Some(name))
}

fn team_description(body: &Map<String, Value>) -> Result<Option<String>, SimResponse> {
    let description = opt_str(body, "description")?;
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS)
    {
        return Err(error(
            400,
            &format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(description)
}

/// A member as a request states it (add, update, or one entry of a PUT `members` list).
struct MemberInput {
    user_id: String,
    role_ids: Option<Vec<String>>,
    role: Option<String>,
}

impl MemberInput {
    /// `fixed_user` is the path's member id (PATCH), where the body has no `user_id`.
    fn parse(obj: &Map<String, Value>, fixed_user: Option<&str>) -> Result<Self, SimResponse> {
        let user_id = match fixed_user {
            Some(uid) => uid.to_string(),
            None => opt_str(obj, "user_id")?
                .filter(|u| !u.is_empty())
                .ok_or_else(|| error(400, "user_id is required"))?,
        };
        let role_ids = str_array(obj, "role_ids")?;
        let role = opt_str(obj, "role")?;
        // The spec requires `role_ids` (RBAC); an OBAC client sends `role` instead, so one of
        // the two must be there. PATCH may send neither.
        if fixed_user.is_none() && role_ids.is_none() && role.is_none() {
            return Err(error(400, "role_ids is required"));
        }
        Ok(MemberInput {
            user_id,
            role_ids,
            role,
        })
    }
}

/// Checks a member input against the org's users and the team's roles and builds the member.
/// Without `role`, the OBAC role follows the RBAC roles: "owner" when the member holds the
/// team's default ("Manage Team") role, else "member" [I].
fn resolve_member(
    users: &[User],
    roles: &[Role],
    input: MemberInput,
) -> Result<Member, SimResponse> {
    if !users.iter().any(|u| u.id == input.user_id) {
        return Err(error(400, "user not found"));
    }
    let mut role_ids: Vec<String> = Vec::new();
    for rid in input.role_ids.unwrap_or_default() {
        if !roles.iter().any(|r| r.id == rid) {
            return Err(error(400, "role not found"));
        }
        if !role_ids.contains(&rid) {
            role_ids.push(rid);
        }
    }
    let role = match input.role.as_deref() {
        Some(r @ ("owner" | "member")) => r.to_string(),
        Some(_) => return Err(error(400, "role must be owner or member")),
        None => {
            let manages = roles.iter().any(|r| r.default && role_ids.contains(&r.id));
            if manages { "owner" } else { "member" }.to_string()
        }
    };
    Ok(Member {
        user_id: input.user_id,
        role,
        role_ids,
    })
}

/// A path member id: 400 when not an ObjectId [I], normalized to lower case.
fn member_id(raw: &str) -> Result<String, SimResponse> {
    object_id(raw).ok_or_else(|| error(400, "invalid member id"))
}

/// `raw` as a lower-case 24-hex ObjectId, if it is one.
fn object_id(raw: &str) -> Option<String> {
    (raw.len() == 24 && raw.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| raw.to_ascii_lowercase())
}

// ----- answers ------------------------------------------------------------------------------

/// `{"meta":{"status":<int>,"error_message":...}}`: `status` is a JSON number because the
/// Terraform provider decodes it into an `int` (`Common.V3.ErrorMeta` allows either).
fn error(status: u16, message: &str) -> SimResponse {
    SimResponse::json(
        status,
        json!({"meta": {"status": status, "error_message": message}}),
    )
}

/// The success envelope `{"data": ...}`.
fn data(status: u16, value: Value) -> SimResponse {
    SimResponse::json(status, json!({ "data": value }))
}

fn member_json(member: &Member) -> Value {
    json!({
        "user_id": member.user_id,
        "role": member.role,
        "role_ids": member.role_ids,
        "abilities": {},
    })
}

fn role_json(role: &Role) -> Value {
    json!({
        "id": role.id,
        "name": role.name,
        "slug": role.slug,
        "default": role.default,
        "abilities": role_abilities(role.slug),
    })
}

/// The default roles' abilities, exactly as in seed 001.
fn role_abilities(slug: &str) -> Value {
    const ENTITIES: [(&str, &str); 6] = [
        ("escalation_policies", "escalation-policies"),
        ("postmortems", "postmortems"),
        ("schedules", "schedules"),
        ("services", "services"),
        ("squads", "squads"),
        ("status_pages", "status-pages"),
    ];
    let verbs: &[&str] = match slug {
        "manage-team" => {
            return json!({"teams": {"delete-teams": true, "read-teams": true, "update-teams": true}})
        }
        "admin" => &["create", "delete", "read", "update"],
        "user" => &["read", "update"],
        "observer" => &["read"],
        _ => &[],
    };
    let mut out = Map::new();
    for (key, noun) in ENTITIES {
        let mut abilities = Map::new();
        for verb in verbs {
            abilities.insert(format!("{verb}-{noun}"), Value::Bool(true));
        }
        out.insert(key.to_string(), Value::Object(abilities));
    }
    Value::Object(out)
}

/// `V3.Users.User`, with the spec's required fields filled with neutral values.
fn user_json(user: &User) -> Value {
    json!({
        "id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "username_for_display": user.display_name,
        "email": user.email,
        "contact": {"dial_code": "", "phone_number": ""},
        "secondary_emails": [],
        "email_verified": true,
        "time_zone": "UTC",
        "title": "",
        "bio": "",
        "notification_rules": [],
        "user_image": false,
        "role_id": user.role_id,
        "role": user.role,
    })
}

/// The slug of a name [I: the rule is undocumented]. Seed 001 turns "Manage Team" into
/// `manage-team` and the org name "Modhilal_Squadcast" into `modhilalsquadcast`, so: lower
/// case; runs of whitespace and `-` become one `-`; other punctuation is dropped; letters and
/// digits of any script stay. A name with no letter or digit gets `team`.
fn slug_base(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() {
            slug.extend(c.to_lowercase());
        } else if (c.is_whitespace() || c == '-') && !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    if slug.is_empty() {
        slug.push_str("team");
    }
    slug
}

/// `2022-02-15T04:24:56.613Z`, the seed's timestamp shape.
fn rfc3339_millis(unix_millis: u64) -> String {
    let secs = i64::try_from(unix_millis / 1000).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            unix_millis % 1000
        ),
        // Only reachable after advancing the clock by centuries.
        Err(_) => "9999-12-31T23:59:59.999Z".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method};

    const REFRESH: &str = "refresh-secret";

    fn sim() -> Squadcast {
        Squadcast::new(REFRESH)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("header value"));
        }
        map
    }

    fn refresh(sim: &mut Squadcast, token: Option<&str>) -> SimResponse {
        let h = match token {
            Some(t) => headers(&[("x-refresh-token", t)]),
            None => HeaderMap::new(),
        };
        sim.handle(&SimRequest::new(
            Method::GET,
            "/v3/oauth/access-token",
            h,
            Bytes::new(),
        ))
    }

    fn token(sim: &mut Squadcast) -> String {
        let res = refresh(sim, Some(REFRESH));
        assert_eq!(res.status, 200);
        res.json_body()["data"]["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// A request with a live token and, when `body` is given, a JSON body.
    fn call(sim: &mut Squadcast, method: Method, path: &str, body: Option<Value>) -> SimResponse {
        let tok = token(sim);
        call_with(sim, &tok, method, path, body)
    }

    fn call_with(
        sim: &mut Squadcast,
        tok: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> SimResponse {
        let auth = format!("Bearer {tok}");
        let mut h = headers(&[("authorization", &auth)]);
        let bytes = match body {
            Some(b) => {
                h.insert(
                    "content-type",
                    HeaderValue::from_static("application/json;charset=UTF-8"),
                );
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        sim.handle(&SimRequest::new(method, path, h, bytes))
    }

    fn raw(sim: &mut Squadcast, method: Method, path: &str, ct: &str, body: &str) -> SimResponse {
        let tok = token(sim);
        let auth = format!("Bearer {tok}");
        let h = headers(&[("authorization", &auth), ("content-type", ct)]);
        sim.handle(&SimRequest::new(
            method,
            path,
            h,
            Bytes::from(body.to_string()),
        ))
    }

    fn assert_error(res: &SimResponse, status: u16, message: &str) {
        assert_eq!(res.status, status, "body: {:?}", res.body);
        assert_eq!(
            res.json_body(),
            json!({"meta": {"status": status, "error_message": message}})
        );
        let ct = res
            .headers
            .iter()
            .find(|(k, _)| k == http::header::CONTENT_TYPE)
            .map(|(_, v)| v.to_str().unwrap_or(""));
        assert_eq!(ct, Some("application/json"));
    }

    fn create(sim: &mut Squadcast, name: &str) -> Value {
        let res = call(sim, Method::POST, "/v3/teams", Some(json!({"name": name})));
        assert_eq!(res.status, 201, "{:?}", res.body);
        res.json_body()["data"].clone()
    }

    fn uid(i: usize) -> String {
        squadcast_user_id(i)
    }

    fn role_id(team: &Value, name: &str) -> String {
        team["roles"]
            .as_array()
            .and_then(|roles| roles.iter().find(|r| r["name"] == name))
            .and_then(|r| r["id"].as_str())
            .expect("role")
            .to_string()
    }

    fn is_object_id(v: &Value) -> bool {
        v.as_str().and_then(object_id).is_some()
    }

    // ----- auth ---------------------------------------------------------------------------

    #[test]
    fn kind_is_squadcast() {
        assert_eq!(sim().kind(), "squadcast");
    }

    #[test]
    fn refresh_returns_a_bearer_token() {
        let mut s = sim();
        let res = refresh(&mut s, Some(REFRESH));
        assert_eq!(res.status, 200);
        let d = &res.json_body()["data"];
        let tok = d["access_token"].as_str().expect("token");
        assert!(tok.len() >= 32 && tok.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(d["refresh_token"], REFRESH);
        assert_eq!(d["type"], "Bearer");
        let issued = d["issued_at"].as_u64().expect("issued_at");
        let expires = d["expires_at"].as_u64().expect("expires_at");
        assert_eq!(expires - issued, TOKEN_TTL_SECS);
        // The token works.
        let res = call_with(&mut s, tok, Method::GET, "/v3/teams", None);
        assert_eq!(res.status, 200);
        assert_eq!(res.json_body(), json!({"data": []}));
    }

    #[test]
    fn refresh_alias_without_v3_works() {
        let mut s = sim();
        let h = headers(&[("x-refresh-token", REFRESH)]);
        let res = s.handle(&SimRequest::new(
            Method::GET,
            "/oauth/access-token",
            h,
            Bytes::new(),
        ));
        assert_eq!(res.status, 200);
    }

    #[test]
    fn wrong_or_missing_refresh_token_is_401() {
        let mut s = sim();
        assert_error(&refresh(&mut s, Some("nope")), 401, "invalid refresh token");
        assert_error(&refresh(&mut s, None), 401, "invalid refresh token");
    }

    #[test]
    fn reject_refresh_switch() {
        let mut s = sim();
        assert!(s.set_switch("reject_refresh", true));
        assert_error(
            &refresh(&mut s, Some(REFRESH)),
            401,
            "invalid refresh token",
        );
        assert!(s.set_switch("reject_refresh", false));
        assert_eq!(refresh(&mut s, Some(REFRESH)).status, 200);
    }

    #[test]
    fn refresh_endpoint_is_get_only() {
        let mut s = sim();
        let h = headers(&[("x-refresh-token", REFRESH)]);
        let res = s.handle(&SimRequest::new(
            Method::POST,
            "/v3/oauth/access-token",
            h,
            Bytes::new(),
        ));
        assert_error(&res, 405, "method not allowed");
    }

    #[test]
    fn missing_unknown_or_malformed_bearer_is_401() {
        let mut s = sim();
        let res = s.handle(&SimRequest::new(
            Method::GET,
            "/v3/teams",
            HeaderMap::new(),
            Bytes::new(),
        ));
        assert_error(&res, 401, "Unauthorized");
        let res = call_with(&mut s, "deadbeef", Method::GET, "/v3/teams", None);
        assert_error(&res, 401, "Unauthorized");
        // The refresh token itself is not an access token.
        let res = call_with(&mut s, REFRESH, Method::GET, "/v3/teams", None);
        assert_error(&res, 401, "Unauthorized");
        let h = headers(&[("authorization", "Token abc")]);
        let res = s.handle(&SimRequest::new(Method::GET, "/v3/users", h, Bytes::new()));
        assert_error(&res, 401, "Unauthorized");
    }

    #[test]
    fn tokens_expire_with_the_logical_clock() {
        let mut s = sim();
        let tok = token(&mut s);
        s.advance_clock(TOKEN_TTL_SECS - 60);
        assert_eq!(
            call_with(&mut s, &tok, Method::GET, "/v3/teams", None).status,
            200
        );
        s.advance_clock(61);
        let res = call_with(&mut s, &tok, Method::GET, "/v3/teams", None);
        assert_error(&res, 401, "Unauthorized");
        // Refreshing gives a new, live token.
        let fresh = token(&mut s);
        assert_ne!(fresh, tok);
        assert_eq!(
            call_with(&mut s, &fresh, Method::GET, "/v3/teams", None).status,
            200
        );
    }

    #[test]
    fn expire_tokens_switch_rejects_every_token_until_off() {
        let mut s = sim();
        let tok = token(&mut s);
        assert!(s.set_switch("expire_tokens", true));
        let res = call_with(&mut s, &tok, Method::GET, "/v3/teams", None);
        assert_error(&res, 401, "Unauthorized");
        // Refresh still answers, but its token is rejected too while the switch is on.
        let fresh = token(&mut s);
        let res = call_with(&mut s, &fresh, Method::GET, "/v3/teams", None);
        assert_error(&res, 401, "Unauthorized");
        assert!(s.set_switch("expire_tokens", false));
        assert_eq!(
            call_with(&mut s, &tok, Method::GET, "/v3/teams", None).status,
            200
        );
    }

    #[test]
    fn revoke_tokens_switch_forgets_issued_tokens_only() {
        let mut s = sim();
        let tok = token(&mut s);
        assert!(s.set_switch("revoke_tokens", true));
        let res = call_with(&mut s, &tok, Method::GET, "/v3/teams", None);
        assert_error(&res, 401, "Unauthorized");
        let fresh = token(&mut s);
        assert_eq!(
            call_with(&mut s, &fresh, Method::GET, "/v3/teams", None).status,
            200
        );
    }

    #[test]
    fn several_tokens_stay_live_and_the_table_is_bounded() {
        let mut s = sim();
        let first = token(&mut s);
        let second = token(&mut s);
        assert_eq!(
            call_with(&mut s, &first, Method::GET, "/v3/teams", None).status,
            200
        );
        assert_eq!(
            call_with(&mut s, &second, Method::GET, "/v3/teams", None).status,
            200
        );
        for _ in 0..MAX_LIVE_TOKENS {
            token(&mut s);
        }
        assert!(s.tokens.len() <= MAX_LIVE_TOKENS);
        assert_eq!(s.tokens.len(), s.token_order.len());
        // The oldest were dropped.
        let res = call_with(&mut s, &first, Method::GET, "/v3/teams", None);
        assert_error(&res, 401, "Unauthorized");
    }

    #[test]
    fn unknown_switch_is_false() {
        assert!(!sim().set_switch("no_such_switch", true));
    }

    #[test]
    fn rate_limited_switch_answers_429_everywhere() {
        let mut s = sim();
        let tok = token(&mut s);
        assert!(s.set_switch("rate_limited", true));
        assert_error(&refresh(&mut s, Some(REFRESH)), 429, "rate limit exceeded");
        let res = call_with(&mut s, &tok, Method::GET, "/v3/teams", None);
        assert_error(&res, 429, "rate limit exceeded");
        assert!(s.set_switch("rate_limited", false));
        assert_eq!(
            call_with(&mut s, &tok, Method::GET, "/v3/teams", None).status,
            200
        );
    }

    // ----- routing ------------------------------------------------------------------------

    #[test]
    fn unknown_routes_are_404_and_wrong_methods_405() {
        let mut s = sim();
        for path in [
            "/",
            "/v2/teams",
            "/v3/teamz",
            "/v3/teams/x/y/z/w/v",
            "/v3/teams/620b2b18f163b1e165f10001/roles",
            "/v3/teams/620b2b18f163b1e165f10001/members/bulk",
        ] {
            let res = call(&mut s, Method::GET, path, None);
            assert_error(&res, 404, "route not found");
        }
        let res = call(&mut s, Method::DELETE, "/v3/teams", None);
        assert_error(&res, 405, "method not allowed");
        assert!(res
            .headers
            .iter()
            .any(|(k, v)| k == "allow" && v == "GET, POST"));
        let res = call(&mut s, Method::POST, "/v3/users", Some(json!({})));
        assert_error(&res, 405, "method not allowed");
        let res = call(&mut s, Method::PATCH, "/v3/teams/by-name", Some(json!({})));
        assert_error(&res, 405, "method not allowed");
    }

    #[test]
    fn odd_ids_never_panic() {
        let mut s = sim();
        for path in [
            "/v3/teams/..",
            "/v3/teams/..%2Fx",
            "/v3/teams/%F0%9F%92%A5",
            "/v3/teams/%00",
            "/v3/teams/6a1f0c00000000000000000g",
            "/v3/teams/6a1f0c00000000000000000",
            "/v3/teams/%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9",
        ] {
            assert_error(
                &call(&mut s, Method::GET, path, None),
                400,
                "invalid team id",
            );
            assert_error(
                &call(&mut s, Method::DELETE, path, None),
                400,
                "invalid team id",
            );
            let members = format!("{path}/members");
            assert_error(
                &call(&mut s, Method::GET, &members, None),
                400,
                "invalid team id",
            );
        }
        let team = create(&mut s, "t");
        let path = format!(
            "/v3/teams/{}/members/..%2Fx",
            team["id"].as_str().unwrap_or("")
        );
        assert_error(
            &call(&mut s, Method::GET, &path, None),
            400,
            "invalid member id",
        );
    }

    // ----- bodies -------------------------------------------------------------------------

    #[test]
    fn bad_bodies_are_400() {
        let mut s = sim();
        let res = raw(
            &mut s,
            Method::POST,
            "/v3/teams",
            "application/json",
            "{nope",
        );
        assert_error(&res, 400, "invalid request body");
        let res = raw(&mut s, Method::POST, "/v3/teams", "application/json", "");
        assert_error(&res, 400, "invalid request body");
        let res = raw(&mut s, Method::POST, "/v3/teams", "application/json", "[1]");
        assert_error(&res, 400, "invalid request body");
        let res = raw(
            &mut s,
            Method::POST,
            "/v3/teams",
            "application/json",
            "\"x\"",
        );
        assert_error(&res, 400, "invalid request body");
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let res = raw(&mut s, Method::POST, "/v3/teams", "application/json", &deep);
        assert_error(&res, 400, "invalid request body");
        let res = raw(
            &mut s,
            Method::POST,
            "/v3/teams",
            "text/plain",
            "{\"name\":\"a\"}",
        );
        assert_error(&res, 400, "Content-Type must be application/json");
        let res = raw(
            &mut s,
            Method::POST,
            "/v3/teams",
            "Application/JSON; charset=utf-8",
            "{\"name\":\"ok\"}",
        );
        assert_eq!(res.status, 201);
    }

    #[test]
    fn wrong_json_types_are_400() {
        let mut s = sim();
        let cases = [
            (json!({"name": 5}), "name must be a string"),
            (json!({"name": ["a"]}), "name must be a string"),
            (
                json!({"name": "a", "description": {}}),
                "description must be a string",
            ),
            (
                json!({"name": "a", "member_ids": "x"}),
                "member_ids must be an array of strings",
            ),
            (
                json!({"name": "a", "member_ids": [1]}),
                "member_ids must be an array of strings",
            ),
        ];
        for (body, message) in cases {
            let res = call(&mut s, Method::POST, "/v3/teams", Some(body));
            assert_error(&res, 400, message);
        }
        assert!(s.teams.is_empty());
    }

    // ----- teams --------------------------------------------------------------------------

    #[test]
    fn create_team_returns_201_with_the_full_team() {
        let mut s = sim();
        let res = call(
            &mut s,
            Method::POST,
            "/v3/teams",
            Some(
                json!({"name": "  Payments Core ", "description": "money", "member_ids": [uid(1), uid(0)]}),
            ),
        );
        assert_eq!(res.status, 201);
        let t = &res.json_body()["data"];
        assert!(is_object_id(&t["id"]));
        assert_eq!(t["name"], "Payments Core");
        assert_eq!(t["description"], "money");
        assert_eq!(t["slug"], "payments-core");
        assert_eq!(t["default"], false);
        assert_eq!(t["created_by"], uid(0));
        assert_eq!(t["default_user"], json!({"id": uid(0)}));
        assert_eq!(t["organization_id"], t["organization"]["id"]);
        assert!(is_object_id(&t["organization_id"]));
        assert_eq!(t["organization"]["name"], ORG_NAME);
        let created = t["created_at"].as_str().expect("created_at");
        assert!(created.ends_with('Z') && created.len() == 24, "{created}");
        assert!(time::OffsetDateTime::parse(
            created,
            &time::format_description::well_known::Rfc3339
        )
        .is_ok());
        assert_eq!(t["created_at"], t["updated_at"]);

        let roles = t["roles"].as_array().expect("roles");
        let names: Vec<&str> = roles.iter().filter_map(|r| r["name"].as_str()).collect();
        assert_eq!(names, ["Manage Team", "Admin", "User", "Observer"]);
        assert_eq!(roles[0]["default"], true);
        assert_eq!(roles[0]["slug"], "manage-team");
        assert!(roles[1..].iter().all(|r| r["default"] == false));
        assert!(roles.iter().all(|r| is_object_id(&r["id"])));
        assert_eq!(roles[0]["abilities"]["teams"]["update-teams"], json!(true));
        assert_eq!(
            roles[3]["abilities"]["schedules"],
            json!({"read-schedules": true})
        );

        let members = t["members"].as_array().expect("members");
        assert_eq!(members.len(), 2, "creator is not duplicated");
        assert_eq!(
            members[0],
            json!({"user_id": uid(0), "role": "owner", "role_ids": [roles[0]["id"], roles[1]["id"]], "abilities": {}})
        );
        assert_eq!(
            members[1],
            json!({"user_id": uid(1), "role": "member", "role_ids": [roles[2]["id"]], "abilities": {}})
        );
    }

    #[test]
    fn each_team_gets_its_own_roles() {
        let mut s = sim();
        let a = create(&mut s, "a");
        let b = create(&mut s, "b");
        assert_ne!(a["id"], b["id"]);
        assert_ne!(role_id(&a, "Admin"), role_id(&b, "Admin"));
    }

    #[test]
    fn create_validation() {
        let mut s = sim();
        let cases = [
            (json!({}), 400, "name is required"),
            (json!({"name": null}), 400, "name is required"),
            (json!({"name": "   "}), 400, "name is required"),
            (
                json!({"name": "x".repeat(256)}),
                400,
                "name must be at most 255 characters",
            ),
            (
                json!({"name": "ok", "description": "d".repeat(10_001)}),
                400,
                "description must be at most 10000 characters",
            ),
            (
                json!({"name": "ok", "member_ids": ["6a1f0c00ffffffffffffffff"]}),
                400,
                "user not found",
            ),
        ];
        for (body, status, message) in cases {
            assert_error(
                &call(&mut s, Method::POST, "/v3/teams", Some(body)),
                status,
                message,
            );
        }
        // 255 characters of any script are fine.
        create(&mut s, &"é".repeat(255));
    }

    #[test]
    fn duplicate_name_is_409_case_insensitive() {
        let mut s = sim();
        create(&mut s, "Ops");
        let res = call(
            &mut s,
            Method::POST,
            "/v3/teams",
            Some(json!({"name": "ops"})),
        );
        assert_error(&res, 409, "team with name ops already exists");
        assert_eq!(s.teams.len(), 1);
    }

    #[test]
    fn slugs_are_derived_and_deduplicated() {
        let mut s = sim();
        assert_eq!(create(&mut s, "abc")["slug"], "abc");
        assert_eq!(create(&mut s, "ABC!")["slug"], "abc1");
        assert_eq!(create(&mut s, "a.b.c")["slug"], "abc2");
        assert_eq!(create(&mut s, "Abc?")["slug"], "abc3");
        assert_eq!(create(&mut s, "SRE -- on  call")["slug"], "sre-on-call");
        assert_eq!(create(&mut s, "Ekström Team")["slug"], "ekström-team");
        assert_eq!(create(&mut s, "!!!")["slug"], "team");
        assert_eq!(create(&mut s, "???")["slug"], "team1");
        // A freed slug is reused by the next team of that name.
        let id = s.names.get("abc").cloned().expect("abc");
        let res = call(&mut s, Method::DELETE, &format!("/v3/teams/{id}"), None);
        assert_eq!(res.status, 204);
        assert_eq!(create(&mut s, "abc")["slug"], "abc");
    }

    #[test]
    fn team_limit_is_enforced() {
        let mut s = sim();
        create(&mut s, "first");
        let template = s.teams.values().next().cloned().expect("team");
        for i in 0..MAX_TEAMS {
            let mut t = template.clone();
            t.id = format!("{i:024x}");
            s.teams.insert(t.id.clone(), t);
        }
        let res = call(
            &mut s,
            Method::POST,
            "/v3/teams",
            Some(json!({"name": "one more"})),
        );
        assert_error(&res, 500, "team limit of the simulator reached");
    }

    #[test]
    fn list_get_and_by_name() {
        let mut s = sim();
        let a = create(&mut s, "Alpha");
        let b = create(&mut s, "Beta");
        let res = call(&mut s, Method::GET, "/v3/teams", None);
        assert_eq!(res.status, 200);
        assert_eq!(res.json_body(), json!({"data": [a, b]}));

        let id = a["id"].as_str().expect("id");
        let res = call(&mut s, Method::GET, &format!("/v3/teams/{id}"), None);
        assert_eq!(res.status, 200);
        assert_eq!(res.json_body(), json!({"data": a}));
        // Upper-case hex is the same ObjectId.
        let upper = id.to_ascii_uppercase();
        let res = call(&mut s, Method::GET, &format!("/v3/teams/{upper}"), None);
        assert_eq!(res.status, 200);

        let missing = "6a1f0c00ffffffffffffffff";
        let res = call(&mut s, Method::GET, &format!("/v3/teams/{missing}"), None);
        assert_error(&res, 404, "team not found");

        let res = call(&mut s, Method::GET, "/v3/teams/by-name?name=beta", None);
        assert_eq!(res.json_body(), json!({"data": b}));
        let res = call(&mut s, Method::GET, "/v3/teams/by-name?name=Gamma", None);
        assert_error(&res, 404, "team not found");
        let res = call(&mut s, Method::GET, "/v3/teams/by-name", None);
        assert_error(&res, 400, "name is required");
    }

    #[test]
    fn put_replaces_the_member_list() {
        let mut s = sim();
        let team = create(&mut s, "abc");
        let id = team["id"].as_str().expect("id").to_string();
        let manage = role_id(&team, "Manage Team");
        let user_role = role_id(&team, "User");
        let observer = role_id(&team, "Observer");
        let body = json!({
            "name": "abc renamed",
            "description": "new",
            "members": [
                {"user_id": uid(2), "role_ids": [manage.clone()]},
                {"user_id": uid(3), "role_ids": [user_role.clone(), observer.clone(), user_role.clone()]},
                {"user_id": uid(4), "role_ids": [], "role": "owner"},
                {"user_id": uid(5), "role": "member"},
            ],
        });
        let res = call(&mut s, Method::PUT, &format!("/v3/teams/{id}"), Some(body));
        assert_eq!(res.status, 200, "{:?}", res.body);
        let t = &res.json_body()["data"];
        assert_eq!(t["name"], "abc renamed");
        assert_eq!(t["slug"], "abc-renamed");
        assert_eq!(t["description"], "new");
        assert_eq!(t["created_at"], team["created_at"]);
        assert_eq!(
            t["members"],
            json!([
                {"user_id": uid(2), "role": "owner", "role_ids": [manage], "abilities": {}},
                {"user_id": uid(3), "role": "member", "role_ids": [user_role, observer], "abilities": {}},
                {"user_id": uid(4), "role": "owner", "role_ids": [], "abilities": {}},
                {"user_id": uid(5), "role": "member", "role_ids": [], "abilities": {}},
            ])
        );
        // The creator is gone: the list was replaced, not merged.
        let res = call(
            &mut s,
            Method::GET,
            &format!("/v3/teams/{id}/members/{}", uid(0)),
            None,
        );
        assert_error(&res, 404, "member not found");
        // The old name is free again, the new one is taken.
        create(&mut s, "abc");
        // An empty list is allowed (no "keep an owner" rule).
        let res = call(
            &mut s,
            Method::PUT,
            &format!("/v3/teams/{id}"),
            Some(json!({"members": []})),
        );
        assert_eq!(res.status, 200);
        assert_eq!(res.json_body()["data"]["members"], json!([]));
        assert_eq!(res.json_body()["data"]["name"], "abc renamed");
    }

    #[test]
    fn put_validation_changes_nothing() {
        let mut s = sim();
        let team = create(&mut s, "Team A");
        create(&mut s, "Team B");
        let id = team["id"].as_str().expect("id").to_string();
        let path = format!("/v3/teams/{id}");
        let other_team = create(&mut s, "Team C");
        let foreign_role = role_id(&other_team, "Admin");
        let ok_member = json!({"user_id": uid(1), "role_ids": []});
        let cases = [
            (json!({"name": "x"}), 400, "members is required"),
            (json!({"members": null}), 400, "members is required"),
            (json!({"members": {}}), 400, "members must be an array"),
            (
                json!({"members": [1]}),
                400,
                "each member must be an object",
            ),
            (
                json!({"members": [{"role_ids": []}]}),
                400,
                "user_id is required",
            ),
            (
                json!({"members": [{"user_id": uid(1)}]}),
                400,
                "role_ids is required",
            ),
            (
                json!({"members": [{"user_id": "6a1f0c00ffffffffffffffff", "role_ids": []}]}),
                400,
                "user not found",
            ),
            (
                json!({"members": [{"user_id": uid(1), "role_ids": [foreign_role]}]}),
                400,
                "role not found",
            ),
            (
                json!({"members": [{"user_id": uid(1), "role_ids": [], "role": "boss"}]}),
                400,
                "role must be owner or member",
            ),
            (
                json!({"members": [ok_member.clone(), ok_member.clone()]}),
                400,
                "duplicate user_id in members",
            ),
            (
                json!({"name": "", "members": [ok_member.clone()]}),
                400,
                "name cannot be empty",
            ),
            (
                json!({"name": "team b", "members": [ok_member.clone()]}),
                409,
                "team with name team b already exists",
            ),
        ];
        for (body, status, message) in cases {
            assert_error(
                &call(&mut s, Method::PUT, &path, Some(body)),
                status,
                message,
            );
        }
        let res = call(&mut s, Method::GET, &path, None);
        assert_eq!(res.json_body()["data"], team);
        // Renaming to its own name in another case is allowed.
        let res = call(
            &mut s,
            Method::PUT,
            &path,
            Some(json!({"name": "TEAM A", "members": [ok_member]})),
        );
        assert_eq!(res.status, 200);
        assert_eq!(res.json_body()["data"]["name"], "TEAM A");
        let missing = "/v3/teams/6a1f0c00ffffffffffffffff";
        let res = call(&mut s, Method::PUT, missing, Some(json!({"members": []})));
        assert_error(&res, 404, "team not found");
    }

    #[test]
    fn patch_meta_updates_name_and_description_only() {
        let mut s = sim();
        let team = create(&mut s, "meta");
        create(&mut s, "taken");
        let id = team["id"].as_str().expect("id");
        let path = format!("/v3/teams/{id}/meta");
        let res = call(
            &mut s,
            Method::PATCH,
            &path,
            Some(json!({"description": "only this"})),
        );
        assert_eq!(res.status, 200);
        let t = &res.json_body()["data"];
        assert_eq!(t["name"], "meta");
        assert_eq!(t["description"], "only this");
        assert_eq!(t["members"], team["members"]);

        let res = call(
            &mut s,
            Method::PATCH,
            &path,
            Some(json!({"name": "meta two", "default_user": {"id": uid(2)}})),
        );
        assert_eq!(res.status, 200);
        let t = &res.json_body()["data"];
        assert_eq!(t["name"], "meta two");
        assert_eq!(t["slug"], "meta-two");
        assert_eq!(t["description"], "only this");
        assert_eq!(t["default_user"], json!({"id": uid(2)}));

        let res = call(&mut s, Method::PATCH, &path, Some(json!({"name": "Taken"})));
        assert_error(&res, 409, "team with name Taken already exists");
        let res = call(
            &mut s,
            Method::PATCH,
            &path,
            Some(json!({"default_user": {"id": "6a1f0c00ffffffffffffffff"}})),
        );
        assert_error(&res, 400, "user not found");
        let res = call(
            &mut s,
            Method::PATCH,
            &path,
            Some(json!({"default_user": 3})),
        );
        assert_error(&res, 400, "default_user must be an object");
        let res = call(
            &mut s,
            Method::PATCH,
            "/v3/teams/6a1f0c00ffffffffffffffff/meta",
            Some(json!({})),
        );
        assert_error(&res, 404, "team not found");
        let res = call(&mut s, Method::PUT, &path, Some(json!({})));
        assert_error(&res, 405, "method not allowed");
    }

    #[test]
    fn delete_team_is_204_then_404() {
        let mut s = sim();
        let team = create(&mut s, "gone");
        let path = format!("/v3/teams/{}", team["id"].as_str().expect("id"));
        let res = call(&mut s, Method::DELETE, &path, None);
        assert_eq!(res.status, 204);
        assert!(res.body.is_empty());
        assert_error(
            &call(&mut s, Method::DELETE, &path, None),
            404,
            "team not found",
        );
        assert_error(
            &call(&mut s, Method::GET, &path, None),
            404,
            "team not found",
        );
        // The name is free again.
        create(&mut s, "gone");
    }

    // ----- members ------------------------------------------------------------------------

    #[test]
    fn member_lifecycle() {
        let mut s = sim();
        let team = create(&mut s, "members");
        let id = team["id"].as_str().expect("id").to_string();
        let base = format!("/v3/teams/{id}/members");
        let admin = role_id(&team, "Admin");
        let manage = role_id(&team, "Manage Team");
        let observer = role_id(&team, "Observer");

        let res = call(&mut s, Method::GET, &base, None);
        assert_eq!(res.status, 200);
        assert_eq!(res.json_body()["data"], team["members"]);

        let res = call(
            &mut s,
            Method::POST,
            &base,
            Some(json!({"user_id": uid(1), "role_ids": [admin.clone()]})),
        );
        assert_eq!(res.status, 201);
        let expected = json!({"user_id": uid(1), "role": "member", "role_ids": [admin.clone()], "abilities": {}});
        assert_eq!(res.json_body(), json!({"data": expected}));

        let one = format!("{base}/{}?owner_id={id}", uid(1));
        let res = call(&mut s, Method::GET, &one, None);
        assert_eq!(res.json_body(), json!({"data": expected}));
        let res = call(&mut s, Method::GET, &base, None);
        assert_eq!(res.json_body()["data"].as_array().map(Vec::len), Some(2));

        // PATCH role_ids: role follows unless given.
        let res = call(
            &mut s,
            Method::PATCH,
            &one,
            Some(json!({"role_ids": [manage.clone()]})),
        );
        assert_eq!(res.status, 200);
        assert_eq!(res.json_body()["data"]["role"], "owner");
        assert_eq!(res.json_body()["data"]["role_ids"], json!([manage]));
        // PATCH role only keeps role_ids.
        let res = call(&mut s, Method::PATCH, &one, Some(json!({"role": "member"})));
        assert_eq!(res.json_body()["data"]["role"], "member");
        assert_eq!(res.json_body()["data"]["role_ids"], json!([manage]));
        // PATCH with both.
        let res = call(
            &mut s,
            Method::PATCH,
            &one,
            Some(json!({"role_ids": [observer.clone()], "role": "owner"})),
        );
        assert_eq!(
            res.json_body()["data"],
            json!({"user_id": uid(1), "role": "owner", "role_ids": [observer], "abilities": {}})
        );
        // The team shows the change.
        let res = call(&mut s, Method::GET, &format!("/v3/teams/{id}"), None);
        assert_eq!(res.json_body()["data"]["members"][1]["role"], "owner");

        let del = format!("{base}/{}?assignDependenciesToDefaultUser=true", uid(1));
        let res = call(&mut s, Method::DELETE, &del, None);
        assert_eq!(res.status, 204);
        assert!(res.body.is_empty());
        assert_error(
            &call(&mut s, Method::DELETE, &del, None),
            404,
            "member not found",
        );
        assert_error(
            &call(&mut s, Method::GET, &one, None),
            404,
            "member not found",
        );
        let res = call(&mut s, Method::PATCH, &one, Some(json!({"role": "owner"})));
        assert_error(&res, 404, "member not found");
    }

    #[test]
    fn add_member_errors() {
        let mut s = sim();
        let team = create(&mut s, "errs");
        let base = format!("/v3/teams/{}/members", team["id"].as_str().expect("id"));
        let cases = [
            (
                json!({"user_id": uid(0), "role_ids": []}),
                409,
                "user is already a member of the team",
            ),
            (
                json!({"user_id": "6a1f0c00ffffffffffffffff", "role_ids": []}),
                400,
                "user not found",
            ),
            (
                json!({"user_id": "../x", "role_ids": []}),
                400,
                "user not found",
            ),
            (json!({"role_ids": []}), 400, "user_id is required"),
            (
                json!({"user_id": 7, "role_ids": []}),
                400,
                "user_id must be a string",
            ),
            (json!({"user_id": uid(1)}), 400, "role_ids is required"),
            (
                json!({"user_id": uid(1), "role_ids": ["nope"]}),
                400,
                "role not found",
            ),
            (
                json!({"user_id": uid(1), "role_ids": [true]}),
                400,
                "role_ids must be an array of strings",
            ),
            (
                json!({"user_id": uid(1), "role": 1}),
                400,
                "role must be a string",
            ),
        ];
        for (body, status, message) in cases {
            assert_error(
                &call(&mut s, Method::POST, &base, Some(body)),
                status,
                message,
            );
        }
        // OBAC: role without role_ids is accepted.
        let res = call(
            &mut s,
            Method::POST,
            &base,
            Some(json!({"user_id": uid(1), "role": "owner"})),
        );
        assert_eq!(res.status, 201);
        assert_eq!(res.json_body()["data"]["role_ids"], json!([]));
        let missing = "/v3/teams/6a1f0c00ffffffffffffffff/members";
        let res = call(
            &mut s,
            Method::POST,
            missing,
            Some(json!({"user_id": uid(1), "role_ids": []})),
        );
        assert_error(&res, 404, "team not found");
        assert_error(
            &call(&mut s, Method::GET, missing, None),
            404,
            "team not found",
        );
    }

    // ----- users --------------------------------------------------------------------------

    #[test]
    fn list_users_and_by_email() {
        let mut s = sim();
        let res = call(&mut s, Method::GET, "/v3/users", None);
        assert_eq!(res.status, 200);
        let users = res.json_body()["data"].as_array().cloned().expect("users");
        assert_eq!(users.len(), PEOPLE.len());
        assert_eq!(users[0]["id"], uid(0));
        assert_eq!(users[0]["first_name"], "Ada");
        assert_eq!(users[0]["last_name"], "Admin");
        assert_eq!(users[0]["username_for_display"], "Ada Admin");
        assert_eq!(users[0]["email"], "ada@example.com");
        assert_eq!(users[0]["role"], "account_owner");
        assert_eq!(users[0]["email_verified"], true);
        assert_eq!(users[0]["time_zone"], "UTC");
        assert_eq!(users[0]["title"], "");
        assert_eq!(users[0]["bio"], "");
        assert!(is_object_id(&users[0]["role_id"]));
        assert_eq!(users[1]["role"], "user");
        assert_ne!(users[0]["role_id"], users[1]["role_id"]);
        assert_eq!(users[5]["first_name"], "Frank");
        assert_eq!(users[5]["last_name"], "Ó Fiach");

        let res = call(
            &mut s,
            Method::GET,
            "/v3/users?email=Carol%40Example.com",
            None,
        );
        assert_eq!(res.status, 200);
        assert_eq!(res.json_body(), json!({"data": users[2]}));
        let res = call(
            &mut s,
            Method::GET,
            "/v3/users?email=nobody%40example.com",
            None,
        );
        assert_error(&res, 404, "user not found");
        let res = call(&mut s, Method::GET, "/v3/users?email=", None);
        assert_error(&res, 404, "user not found");

        let res = call(&mut s, Method::GET, &format!("/v3/users/{}", uid(3)), None);
        assert_eq!(res.json_body(), json!({"data": users[3]}));
        let res = call(
            &mut s,
            Method::GET,
            "/v3/users/6a1f0c00ffffffffffffffff",
            None,
        );
        assert_error(&res, 404, "user not found");
        let res = call(&mut s, Method::GET, "/v3/users/x", None);
        assert_error(&res, 400, "invalid user id");
    }

    // ----- helpers ------------------------------------------------------------------------

    #[test]
    fn helpers() {
        assert_eq!(
            rfc3339_millis(1_644_899_096_613),
            "2022-02-15T04:24:56.613Z"
        );
        assert_eq!(rfc3339_millis(u64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(slug_base("Manage Team"), "manage-team");
        assert_eq!(slug_base("Modhilal_Squadcast"), "modhilalsquadcast");
        assert_eq!(slug_base(" -a- "), "a");
        assert!(object_id("620B2B18F163B1E165F19F0F").is_some());
        assert!(object_id("620b2b18f163b1e165f19f0").is_none());
        assert!(object_id("ééééééééééééééééééééééé").is_none());
        let mut s = sim();
        s.advance_clock(u64::MAX);
        s.advance_clock(5);
        // Tokens minted at the end of time still answer without panicking.
        let res = refresh(&mut s, Some(REFRESH));
        assert_eq!(res.status, 200);
    }
}
