//! The canonical Team API v1 (DESIGN §1): operations, requests and their validation.
//!
//! A [`CanonicalRequest`] is what the router hands to a backend: the operation, its path
//! parameters, its query and its validated body. Everything here is vendor-agnostic; a
//! backend's own stricter limits are checked by the mapping engine before any upstream call.

pub mod cursor;
pub mod route;
pub mod strict_json;
pub mod validate;

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{Map, Value};

/// The canonical operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    ListTeams,
    GetTeam,
    CreateTeam,
    UpdateTeam,
    DeleteTeam,
    ListMembers,
    AddMember,
    RemoveMember,
    UpdateMember,
    ListUsers,
}

impl Operation {
    pub const ALL: [Operation; 10] = [
        Operation::ListTeams,
        Operation::GetTeam,
        Operation::CreateTeam,
        Operation::UpdateTeam,
        Operation::DeleteTeam,
        Operation::ListMembers,
        Operation::AddMember,
        Operation::RemoveMember,
        Operation::UpdateMember,
        Operation::ListUsers,
    ];

    /// The name used in mapping files, metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Operation::ListTeams => "list_teams",
            Operation::GetTeam => "get_team",
            Operation::CreateTeam => "create_team",
            Operation::UpdateTeam => "update_team",
            Operation::DeleteTeam => "delete_team",
            Operation::ListMembers => "list_members",
            Operation::AddMember => "add_member",
            Operation::RemoveMember => "remove_member",
            Operation::UpdateMember => "update_member",
            Operation::ListUsers => "list_users",
        }
    }

    pub fn parse(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Whether the operation changes vendor state.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Operation::CreateTeam
                | Operation::UpdateTeam
                | Operation::DeleteTeam
                | Operation::AddMember
                | Operation::RemoveMember
                | Operation::UpdateMember
        )
    }

    /// Whether the operation answers a paged list.
    pub fn is_list(self) -> bool {
        matches!(self, Operation::ListTeams | Operation::ListUsers)
    }
}

/// The requested window of a paged list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// How many items the caller wants.
    pub limit: usize,
    /// How many items come before this page.
    pub offset: usize,
}

/// A routed, validated canonical request.
#[derive(Debug, Clone, PartialEq)]
pub struct CanonicalRequest {
    pub op: Operation,
    /// `{id}` of `/v1/teams/{id}...`.
    pub team_id: Option<String>,
    /// `{user}` of `/v1/teams/{id}/members/{user}`.
    pub user_id: Option<String>,
    /// Filters (`name`, `q`, `email`), already validated.
    pub query: BTreeMap<String, String>,
    /// The validated body (canonical fields only).
    pub input: Map<String, Value>,
    pub page: Option<PageRequest>,
    /// `?include=vendor`: answer each resource with its `vendor` leftovers (the fields the
    /// vendor returned that have no canonical home). Off by default: nobody pays for them
    /// unless asked.
    pub include_vendor: bool,
}

impl CanonicalRequest {
    pub fn new(op: Operation) -> Self {
        CanonicalRequest {
            op,
            team_id: None,
            user_id: None,
            query: BTreeMap::new(),
            input: Map::new(),
            page: None,
            include_vendor: false,
        }
    }
}

/// A canonical success. The body is the canonical JSON already encoded: it is encoded once,
/// when the answer is made, and then cached and sent as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct CanonicalResponse {
    pub status: u16,
    pub body: Option<Bytes>,
    /// For 201: the canonical URL of the created resource.
    pub location: Option<String>,
    /// Only part of the resource is known (a create whose follow-up read failed): the answer
    /// says so in `Teamgate-Partial`.
    pub partial: bool,
}

impl CanonicalResponse {
    pub fn ok(body: Value) -> Self {
        CanonicalResponse::with_status(200, body)
    }

    pub fn with_status(status: u16, body: Value) -> Self {
        CanonicalResponse {
            status,
            // Straight into bytes: `to_string` goes through `fmt::Write`, a call per token.
            body: Some(Bytes::from(
                serde_json::to_vec(&body).expect("a JSON value always serialises"),
            )),
            location: None,
            partial: false,
        }
    }

    /// The body as JSON (for callers inside teamgate that read an answer, and tests).
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(self.body.as_ref()?).ok()
    }

    pub fn no_content() -> Self {
        CanonicalResponse {
            status: 204,
            body: None,
            location: None,
            partial: false,
        }
    }
}
