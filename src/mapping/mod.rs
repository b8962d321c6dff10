//! Mapping files: all knowledge of a vendor API, compiled once into a [`Mapping`] (DESIGN §3).
//!
//! Loading is two phases:
//!
//! ```text
//! mappings/x.toml ──serde──▶ file::MappingFile ──compile──▶ Mapping (plans, compiled JSONPath)
//!                     │                           │
//!                     └── syntax / type errors ───┴── semantic errors ──▶ Vec<CheckError>
//! ```
//!
//! Every problem is collected with its file and line before loading fails, so
//! `teamgate check` reports them all at once. [`engine`] executes the compiled plans.

pub mod breaker;
mod compile;
pub mod engine;
pub mod errors;
pub mod expr;
pub mod fields;
mod file;
mod file_errors;
pub mod guard;
pub mod registry;
pub mod service;
pub mod template;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use http::{HeaderName, Method};
use regex::Regex;

use crate::canonical::Operation;
use errors::{ErrorFormat, ErrorRule};
use expr::Expr;
use fields::FieldMap;
use template::{TextTemplate, ValueTemplate};

/// One problem in a mapping or config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no single line (a missing section).
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

/// A compiled mapping.
#[derive(Debug)]
pub struct Mapping {
    pub file: PathBuf,
    pub vendor: String,
    pub about: Option<String>,
    pub auth: Auth,
    pub request: RequestOptions,
    pub limits: Limits,
    pub error_format: ErrorFormat,
    pub error_rules: Vec<ErrorRule>,
    pub team: FieldMap,
    pub team_hidden_if: Option<Expr>,
    pub member: FieldMap,
    pub user: FieldMap,
    /// How to fill in people's details that the vendor's members lack (`[people]`).
    pub people: Option<PeopleLookup>,
    pub operations: BTreeMap<Operation, OperationPlan>,
}

impl Mapping {
    /// Reads and compiles a mapping file, or every problem in it.
    pub fn load(path: &Path) -> Result<Mapping, Vec<CheckError>> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            vec![CheckError {
                file: path.to_path_buf(),
                line: 0,
                reason: format!("cannot read the mapping file: {e}"),
            }]
        })?;
        Mapping::parse(path, &source)
    }

    /// Compiles mapping text; `path` names it in errors.
    pub fn parse(path: &Path, source: &str) -> Result<Mapping, Vec<CheckError>> {
        compile::compile(path, source)
    }

    pub fn plan(&self, op: Operation) -> Option<&OperationPlan> {
        self.operations.get(&op)
    }

    /// The canonical team fields this backend holds: those of `[team]`, and those `get_team`
    /// or `list_teams` reads from its other steps (`fields`), in canonical order.
    pub fn team_fields(&self) -> Vec<&'static str> {
        let from_steps = |name: &str| {
            [Operation::GetTeam, Operation::ListTeams]
                .iter()
                .filter_map(|op| self.plan(*op))
                .any(|p| p.fields.has(name))
        };
        engine::TEAM_FIELDS
            .iter()
            .copied()
            .filter(|name| self.team.has(name) || from_steps(name))
            .collect()
    }
}

/// A people lookup (`[people]`): steps run once per answer with `$.member_ids` (the ids of
/// the members whose details are missing), whose items are read with `fields` (`user_id`,
/// `email`, `username`) and joined to the members on the user id.
#[derive(Debug)]
pub struct PeopleLookup {
    /// The steps, the items and the error rules, as a `list_users`-like plan.
    pub plan: OperationPlan,
    pub fields: FieldMap,
    /// At most this many ids per lookup.
    pub batch_max: usize,
}

/// How requests authenticate. Templates may use `{credential}` and `{token}`.
#[derive(Debug, Default)]
pub struct Auth {
    pub headers: Vec<(HeaderName, TextTemplate)>,
    pub query: Vec<(String, TextTemplate)>,
    pub token: Option<TokenPlan>,
}

/// How to get an access token with the credential (two-step auth).
#[derive(Debug)]
pub struct TokenPlan {
    pub method: Method,
    pub path: TextTemplate,
    pub headers: Vec<(HeaderName, TextTemplate)>,
    pub query: Vec<(String, TextTemplate)>,
    pub body: Option<ValueTemplate>,
    pub token: Expr,
    pub expires_at: Option<Expr>,
    pub issued_at: Option<Expr>,
    pub expires_in: Option<Expr>,
    pub refresh_before_secs: u64,
}

#[derive(Debug)]
pub struct RequestOptions {
    pub content_type: String,
    /// Send `Content-Type` on every request, not only those with a body.
    pub content_type_always: bool,
    pub accept: String,
}

#[derive(Debug)]
pub struct Limits {
    pub name_max: usize,
    pub description_max: usize,
    pub page_size_max: usize,
    pub team_id_pattern: Option<Regex>,
    /// The vendor's documented request limits (enforced with `[fleet]`).
    pub budget: crate::fleet::config::BudgetLimits,
}

/// How a list operation pages.
#[derive(Debug)]
pub enum Paging {
    /// The vendor pages; the step uses `$.page.number` / `$.page.size`.
    Pages {
        total: Option<Box<Expr>>,
        has_more: Option<Box<Expr>>,
    },
    /// The vendor answers everything; teamgate cuts the page.
    All,
}

/// What an operation does, compiled.
#[derive(Debug)]
pub struct OperationPlan {
    pub op: Operation,
    pub read: Option<Operation>,
    pub style: MemberStyle,
    pub resolve_user: Option<Operation>,
    pub steps: Vec<Step>,
    pub then: Option<Operation>,
    pub id: Option<Expr>,
    pub team: Option<Expr>,
    pub items: Option<Expr>,
    pub paging: Paging,
    /// Team fields read from this operation's context (its steps' answers), over those of
    /// the team object.
    pub fields: FieldMap,
    pub errors: Vec<ErrorRule>,
}

/// How a member change meets the vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStyle {
    /// The steps do it (the vendor has member endpoints that say what happened).
    Direct,
    /// Read the member list first: adding someone already there, or removing or updating
    /// someone who is not, is answered without a write (for vendors whose add is silent
    /// about it).
    Checked,
    /// The vendor only replaces the whole list: read it, change the set, write it back
    /// (`$.member_ids`).
    MemberSet,
}

/// One HTTP call of an operation.
#[derive(Debug)]
pub struct Step {
    pub name: String,
    pub method: Method,
    pub path: TextTemplate,
    pub query: Vec<(String, TextTemplate)>,
    pub headers: Vec<(HeaderName, TextTemplate)>,
    pub body: Option<ValueTemplate>,
    pub when: Option<Expr>,
    pub unless: Option<Expr>,
    pub require: Vec<Expr>,
    pub visible_team: Option<Expr>,
    /// Sent page after page until the inner list is whole.
    pub pages: Option<StepPages>,
}

/// An inner list read whole (`pages` on a step): the step is sent with `$.page.number`,
/// `$.page.size` and `$.page.offset` for each page, and its answer in the context holds the
/// items of every page at `items`.
#[derive(Debug)]
pub struct StepPages {
    pub size: usize,
    /// The member names of the plain path to the items' array (`steps`, the step, `body` ...).
    pub items: Vec<String>,
    pub has_more: Option<Expr>,
    pub total: Option<Expr>,
    /// More items than this is an error, never a silent cut.
    pub max_items: usize,
}
