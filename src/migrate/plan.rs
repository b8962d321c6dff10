//! What a migration would do: the [`Plan`] from one backend's snapshot to another's.
//!
//! A plan holds actions (teams to create or update, members to add, re-role or remove, teams
//! to delete) and notes: what it cannot carry and why (a person the target does not know, a
//! field or a role the target cannot hold, a name over the target's limit or one that clashes
//! case-insensitively). Only fields both backends hold are compared and carried. A plan made
//! from the state a finished migration left is empty: that is what makes `--apply` idempotent
//! and a failed run resumable.
//!
//! Policy: without `--prune` nothing in the target is removed (members and teams the source
//! does not have are kept, and noted); a source team whose name clashes case-insensitively
//! with another source team is never created (several vendors refuse such names, and the
//! canonical `?name=` would find both), only carried onto an exact-name match.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::{pair, Holds, Pairing, Snapshot, TeamState};

/// Everything a migration would do, and what it cannot carry.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub from: String,
    pub to: String,
    pub prune: bool,
    /// Teams with something to do, parents before their children.
    pub teams: Vec<TeamPlan>,
    /// With `--prune`: target teams no source team pairs with.
    pub delete: Vec<TeamRef>,
    pub notes: Vec<Note>,
}

/// One team's actions.
#[derive(Debug, Clone, Serialize)]
pub struct TeamPlan {
    /// The source team's name (the name it gets in the target).
    pub name: String,
    /// The target team; `None`: it is created.
    pub target_id: Option<String>,
    /// Fields to set (all carried fields for a new team; changed ones otherwise). A field set
    /// to `null` is cleared.
    pub set: BTreeMap<String, Value>,
    /// The parent to set, by name (resolved to the target's id when applied).
    pub parent: Option<String>,
    pub add: Vec<MemberChange>,
    pub change_role: Vec<MemberChange>,
    pub remove: Vec<MemberChange>,
}

impl TeamPlan {
    pub fn creates(&self) -> bool {
        self.target_id.is_none()
    }

    pub fn updates(&self) -> bool {
        !self.creates() && (!self.set.is_empty() || self.parent.is_some())
    }

    fn is_empty(&self) -> bool {
        !self.creates()
            && !self.updates()
            && self.add.is_empty()
            && self.change_role.is_empty()
            && self.remove.is_empty()
    }
}

/// A member to add, re-role or remove in the target.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MemberChange {
    pub email: String,
    /// The person's user id in the target.
    pub user_id: String,
    /// The role to give (`None`: the target has no roles; it adds plain members).
    pub role: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamRef {
    pub id: String,
    pub name: String,
}

/// Something the plan cannot carry, or chose not to touch.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// A source member whose email the target does not know: not added.
    PersonNotFound { team: String, email: String },
    /// A source member without an email cannot be matched: not carried.
    MemberWithoutEmail { team: String, user_id: String },
    /// A target member without an email cannot be compared: left alone.
    UnidentifiedMember { team: String, user_id: String },
    /// The source team has this field; the target cannot hold it.
    FieldNotHeld { team: String, field: String },
    /// The source member has this role; the target has no roles (or cannot change one).
    RoleNotHeld {
        team: String,
        email: String,
        role: String,
    },
    /// The team's name is over the target's limit: the team is not carried.
    NameTooLong {
        team: String,
        length: usize,
        max: usize,
    },
    /// The name is not unambiguous (case-insensitively) among these: the team is not carried.
    NameClash { team: String, with: Vec<String> },
    /// The description is over the target's limit: not carried.
    DescriptionTooLong {
        team: String,
        length: usize,
        max: usize,
    },
    /// The parent team is neither in the target nor carried: the team keeps the target's
    /// default parent.
    ParentNotFound { team: String, parent: String },
    /// Target members the source team does not have, kept (`--prune` removes them).
    MembersKept { team: String, emails: Vec<String> },
    /// Target teams no source team pairs with, kept (`--prune` deletes them).
    TeamKept { team: String },
    /// The target has no member lists: members are not carried.
    MembersNotHeld { team: String },
    /// The target cannot do this (remove a member, delete a team) for `--prune`.
    CannotPrune { team: String, what: String },
}

impl Note {
    /// Notes that leave a source team, member or field behind (rather than a target thing
    /// kept as it was).
    pub fn is_skip(&self) -> bool {
        !matches!(
            self,
            Note::MembersKept { .. } | Note::TeamKept { .. } | Note::UnidentifiedMember { .. }
        )
    }
}

impl Plan {
    /// Whether there is nothing to do (notes aside).
    pub fn is_empty(&self) -> bool {
        self.teams.is_empty() && self.delete.is_empty()
    }

    /// How many actions the plan holds (each becomes at most one canonical write).
    pub fn actions(&self) -> usize {
        self.delete.len()
            + self
                .teams
                .iter()
                .map(|t| {
                    usize::from(t.creates() || t.updates())
                        + t.add.len()
                        + t.change_role.len()
                        + t.remove.len()
                })
                .sum::<usize>()
    }
}

/// The plan from `source` to `target`. `people` is every person the target knows (email →
/// its user id); `target_ids` names every target team, also those `--teams` leaves out
/// (parents are found there).
pub fn plan(
    source: &Snapshot,
    source_holds: &Holds,
    target: &Snapshot,
    target_ids: &HashMap<String, String>,
    target_holds: &Holds,
    people: &HashMap<String, String>,
    prune: bool,
) -> Plan {
    let mut notes = Vec::new();
    let mut teams = Vec::new();
    let pairing = pair(&source.teams, &target.teams);
    let both = |field: &str| source_holds.has(field) && target_holds.has(field);
    let carried: HashSet<&str> = source
        .teams
        .iter()
        .zip(&pairing)
        .filter(|(t, p)| carries(t, p, target_holds))
        .map(|(t, _)| t.name.as_str())
        .collect();

    for (team, pairing) in source.teams.iter().zip(&pairing) {
        let current = match pairing {
            Pairing::Clash(with) => {
                notes.push(Note::NameClash {
                    team: team.name.clone(),
                    with: with.clone(),
                });
                continue;
            }
            Pairing::Matched(i) => Some(&target.teams[*i]),
            Pairing::Unmatched => {
                let length = team.name.chars().count();
                if length > target_holds.name_max {
                    notes.push(Note::NameTooLong {
                        team: team.name.clone(),
                        length,
                        max: target_holds.name_max,
                    });
                    continue;
                }
                None
            }
        };
        let mut step = TeamPlan {
            name: team.name.clone(),
            target_id: current.map(|c| c.id.clone()),
            set: BTreeMap::new(),
            parent: None,
            add: Vec::new(),
            change_role: Vec::new(),
            remove: Vec::new(),
        };
        // The name: a case-insensitive match takes the source's spelling.
        if current.is_none_or(|c| c.name != team.name) {
            step.set
                .insert("name".into(), Value::String(team.name.clone()));
        }
        for field in ["description", "email"] {
            let wanted = team.field(field);
            if !target_holds.has(field) {
                if wanted.is_some() {
                    notes.push(Note::FieldNotHeld {
                        team: team.name.clone(),
                        field: field.into(),
                    });
                }
                continue;
            }
            if !both(field) {
                continue;
            }
            if field == "description" {
                if let Some(d) = wanted {
                    let length = d.chars().count();
                    if length > target_holds.description_max {
                        notes.push(Note::DescriptionTooLong {
                            team: team.name.clone(),
                            length,
                            max: target_holds.description_max,
                        });
                        continue;
                    }
                }
            }
            let have = current.and_then(|c| c.field(field));
            if wanted != have && (current.is_some() || wanted.is_some()) {
                step.set.insert(
                    field.into(),
                    wanted.map_or(Value::Null, |v| Value::String(v.into())),
                );
            }
        }
        if let Some(parent) = &team.parent {
            if !target_holds.has("parent_id") {
                notes.push(Note::FieldNotHeld {
                    team: team.name.clone(),
                    field: "parent_id".into(),
                });
            } else if both("parent_id") && current.and_then(|c| c.parent.as_ref()) != Some(parent) {
                if target_ids.contains_key(parent.as_str()) || carried.contains(parent.as_str()) {
                    step.parent = Some(parent.clone());
                } else {
                    notes.push(Note::ParentNotFound {
                        team: team.name.clone(),
                        parent: parent.clone(),
                    });
                }
            }
        }
        if source_holds.members && target_holds.members {
            members(
                team,
                current,
                source_holds,
                target_holds,
                people,
                prune,
                &mut step,
                &mut notes,
            );
        } else if source_holds.members && !team.members.is_empty() {
            notes.push(Note::MembersNotHeld {
                team: team.name.clone(),
            });
        }
        if !step.is_empty() {
            teams.push(step);
        }
    }

    // Target teams no source team pairs with (nor folds to: a clashing source team's match
    // is not pruned).
    let paired: HashSet<usize> = pairing
        .iter()
        .filter_map(|p| match p {
            Pairing::Matched(i) => Some(*i),
            _ => None,
        })
        .collect();
    let folded_source: HashSet<String> =
        source.teams.iter().map(|t| t.name.to_lowercase()).collect();
    let mut delete = Vec::new();
    for (i, team) in target.teams.iter().enumerate() {
        if paired.contains(&i) || folded_source.contains(&team.name.to_lowercase()) {
            continue;
        }
        match (prune, target_holds.delete_team) {
            (true, true) => delete.push(TeamRef {
                id: team.id.clone(),
                name: team.name.clone(),
            }),
            (true, false) => notes.push(Note::CannotPrune {
                team: team.name.clone(),
                what: "delete_team".into(),
            }),
            (false, _) => notes.push(Note::TeamKept {
                team: team.name.clone(),
            }),
        }
    }
    order_parents_first(&mut teams);
    Plan {
        from: source.backend.clone(),
        to: target.backend.clone(),
        prune,
        teams,
        delete,
        notes,
    }
}

/// Whether a source team is carried at all (not skipped for its name).
fn carries(team: &TeamState, pairing: &Pairing, target_holds: &Holds) -> bool {
    match pairing {
        Pairing::Clash(_) => false,
        Pairing::Matched(_) => true,
        Pairing::Unmatched => team.name.chars().count() <= target_holds.name_max,
    }
}

#[allow(clippy::too_many_arguments)]
fn members(
    team: &TeamState,
    current: Option<&TeamState>,
    source_holds: &Holds,
    target_holds: &Holds,
    people: &HashMap<String, String>,
    prune: bool,
    step: &mut TeamPlan,
    notes: &mut Vec<Note>,
) {
    let name = || team.name.clone();
    let have = current.map(TeamState::by_email).unwrap_or_default();
    let mut wanted: HashSet<&str> = HashSet::new();
    for member in &team.members {
        let Some(email) = member.email.as_deref() else {
            notes.push(Note::MemberWithoutEmail {
                team: name(),
                user_id: member.user_id.clone(),
            });
            continue;
        };
        wanted.insert(email);
        // The role the source says, where both sides have roles.
        let role = (source_holds.roles && target_holds.roles).then(|| member.role.clone());
        if member.role != "member" && !target_holds.roles {
            notes.push(Note::RoleNotHeld {
                team: name(),
                email: email.into(),
                role: member.role.clone(),
            });
        }
        match have.get(email) {
            Some(present) => {
                if let Some(role) = &role {
                    if *role != present.role {
                        if target_holds.update_member {
                            step.change_role.push(MemberChange {
                                email: email.into(),
                                user_id: present.user_id.clone(),
                                role: Some(role.clone()),
                            });
                        } else {
                            notes.push(Note::RoleNotHeld {
                                team: name(),
                                email: email.into(),
                                role: role.clone(),
                            });
                        }
                    }
                }
            }
            None => match people.get(email) {
                Some(user_id) => step.add.push(MemberChange {
                    email: email.into(),
                    user_id: user_id.clone(),
                    role: role.filter(|_| target_holds.roles),
                }),
                None => notes.push(Note::PersonNotFound {
                    team: name(),
                    email: email.into(),
                }),
            },
        }
    }
    let Some(current) = current else {
        return;
    };
    let mut kept = Vec::new();
    for member in &current.members {
        let Some(email) = member.email.as_deref() else {
            notes.push(Note::UnidentifiedMember {
                team: name(),
                user_id: member.user_id.clone(),
            });
            continue;
        };
        if wanted.contains(email) {
            continue;
        }
        if prune && target_holds.remove_member {
            step.remove.push(MemberChange {
                email: email.into(),
                user_id: member.user_id.clone(),
                role: None,
            });
        } else if prune {
            notes.push(Note::CannotPrune {
                team: name(),
                what: format!("remove_member {email}"),
            });
        } else {
            kept.push(email.to_string());
        }
    }
    if !kept.is_empty() {
        notes.push(Note::MembersKept {
            team: name(),
            emails: kept,
        });
    }
}

/// Teams whose parent is created in the same plan come after it.
fn order_parents_first(teams: &mut [TeamPlan]) {
    let created: HashSet<String> = teams
        .iter()
        .filter(|t| t.creates())
        .map(|t| t.name.clone())
        .collect();
    let parents: HashMap<String, String> = teams
        .iter()
        .filter_map(|t| Some((t.name.clone(), t.parent.clone()?)))
        .filter(|(_, p)| created.contains(p))
        .collect();
    let depth = |name: &str| {
        let mut depth = 0usize;
        let mut at = name;
        // Bounded by the number of teams: a cycle cannot loop for ever.
        while let Some(parent) = parents.get(at) {
            depth += 1;
            if depth > parents.len() {
                break;
            }
            at = parent;
        }
        depth
    };
    let depths: HashMap<String, usize> = teams
        .iter()
        .map(|t| (t.name.clone(), depth(&t.name)))
        .collect();
    teams.sort_by_key(|t| depths[&t.name]);
}
