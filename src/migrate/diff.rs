//! The canonical difference between two backends' teams and memberships (`teamgate diff`).
//!
//! Teams pair by name as a migration pairs them (exact, then case-insensitive when that is
//! unambiguous); a pair whose names differ in case differs in `name`. Only the fields both
//! backends hold are compared (the parent by its name), members by email, and roles only
//! where both backends have roles. A member without an email cannot be compared, so it is a
//! difference: two backends agree only when that can be shown.

use serde::Serialize;
use serde_json::Value;

use super::{pair, Holds, Pairing, Snapshot, TeamState};

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub a: String,
    pub b: String,
    /// What was compared.
    pub fields: Vec<&'static str>,
    pub members: bool,
    pub roles: bool,
    pub only_in_a: Vec<String>,
    pub only_in_b: Vec<String>,
    /// Teams whose name pairs with several (case-insensitively).
    pub ambiguous: Vec<String>,
    /// Paired teams that differ.
    pub teams: Vec<TeamDiff>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.only_in_a.is_empty()
            && self.only_in_b.is_empty()
            && self.ambiguous.is_empty()
            && self.teams.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamDiff {
    /// The team's name in `a`.
    pub name: String,
    pub fields: Vec<FieldDiff>,
    /// Emails.
    pub members_only_in_a: Vec<String>,
    pub members_only_in_b: Vec<String>,
    pub roles: Vec<RoleDiff>,
    /// User ids of members without an email, on either side.
    pub unidentified: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldDiff {
    pub field: String,
    pub a: Value,
    pub b: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleDiff {
    pub email: String,
    pub a: String,
    pub b: String,
}

/// The difference from `a` to `b`.
pub fn diff(a: &Snapshot, a_holds: &Holds, b: &Snapshot, b_holds: &Holds) -> Diff {
    let fields: Vec<&'static str> = a_holds
        .fields
        .iter()
        .copied()
        .filter(|f| b_holds.has(f))
        .collect();
    let members = a_holds.members && b_holds.members;
    let roles = members && a_holds.roles && b_holds.roles;
    let pairing = pair(&a.teams, &b.teams);
    let mut out = Diff {
        a: a.backend.clone(),
        b: b.backend.clone(),
        fields: fields.clone(),
        members,
        roles,
        only_in_a: Vec::new(),
        only_in_b: Vec::new(),
        ambiguous: Vec::new(),
        teams: Vec::new(),
    };
    let mut paired = vec![false; b.teams.len()];
    for (team, pairing) in a.teams.iter().zip(&pairing) {
        match pairing {
            Pairing::Unmatched => out.only_in_a.push(team.name.clone()),
            Pairing::Clash(_) => out.ambiguous.push(team.name.clone()),
            Pairing::Matched(i) => {
                paired[*i] = true;
                let d = team_diff(team, &b.teams[*i], &fields, members, roles);
                if !(d.fields.is_empty()
                    && d.members_only_in_a.is_empty()
                    && d.members_only_in_b.is_empty()
                    && d.roles.is_empty()
                    && d.unidentified.is_empty())
                {
                    out.teams.push(d);
                }
            }
        }
    }
    for (team, paired) in b.teams.iter().zip(paired) {
        if !paired {
            out.only_in_b.push(team.name.clone());
        }
    }
    out
}

fn team_diff(
    a: &TeamState,
    b: &TeamState,
    fields: &[&str],
    members: bool,
    roles: bool,
) -> TeamDiff {
    let mut d = TeamDiff {
        name: a.name.clone(),
        fields: Vec::new(),
        members_only_in_a: Vec::new(),
        members_only_in_b: Vec::new(),
        roles: Vec::new(),
        unidentified: Vec::new(),
    };
    let value = |v: Option<&str>| v.map_or(Value::Null, |s| Value::String(s.into()));
    if a.name != b.name {
        d.fields.push(FieldDiff {
            field: "name".into(),
            a: Value::String(a.name.clone()),
            b: Value::String(b.name.clone()),
        });
    }
    for field in fields {
        if a.field(field) != b.field(field) {
            d.fields.push(FieldDiff {
                field: (*field).into(),
                a: value(a.field(field)),
                b: value(b.field(field)),
            });
        }
    }
    if !members {
        return d;
    }
    let (in_a, in_b) = (a.by_email(), b.by_email());
    for (email, member) in &in_a {
        match in_b.get(email) {
            None => d.members_only_in_a.push((*email).into()),
            Some(other) if roles && other.role != member.role => d.roles.push(RoleDiff {
                email: (*email).into(),
                a: member.role.clone(),
                b: other.role.clone(),
            }),
            Some(_) => {}
        }
    }
    for email in in_b.keys() {
        if !in_a.contains_key(email) {
            d.members_only_in_b.push((*email).into());
        }
    }
    d.unidentified = a
        .members
        .iter()
        .chain(&b.members)
        .filter(|m| m.email.is_none())
        .map(|m| m.user_id.clone())
        .collect();
    d
}
