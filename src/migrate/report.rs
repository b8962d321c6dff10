//! How `migrate` and `diff` report: text for people (the plan, then a summary table), JSON
//! for machines (`--output json`), and the exit statuses.
//!
//! Exit statuses: `migrate` 0 when the plan was made (dry run) or every action was applied
//! and nothing was left behind, 1 when an action failed (run it again to resume), 3 when
//! every action was applied but the plan left things behind (see its notes: people the target
//! does not know, fields or roles it cannot hold, names it refuses); `diff` 0 when the two
//! backends agree, 1 when they differ, as `diff(1)`; both 2 for a configuration or read error.

use std::fmt::Write;

use serde::Serialize;
use serde_json::{json, Value};

use super::apply::Applied;
use super::diff::Diff;
use super::plan::{Note, Plan};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_ERROR: u8 = 2;
pub const EXIT_LEFT_BEHIND: u8 = 3;

/// A migration's plan and, with `--apply`, what was done.
#[derive(Debug, Clone, Serialize)]
pub struct MigrateReport {
    pub plan: Plan,
    pub applied: Option<Applied>,
}

impl MigrateReport {
    pub fn exit_code(&self) -> u8 {
        match &self.applied {
            None => EXIT_OK,
            Some(a) if !a.failures.is_empty() => EXIT_FAILED,
            Some(_) if self.plan.notes.iter().any(Note::is_skip) => EXIT_LEFT_BEHIND,
            Some(_) => EXIT_OK,
        }
    }

    pub fn status(&self) -> &'static str {
        match (&self.applied, self.exit_code()) {
            (None, _) => "planned",
            (Some(_), EXIT_FAILED) => "failed",
            (Some(_), EXIT_LEFT_BEHIND) => "applied_with_notes",
            (Some(_), _) => "applied",
        }
    }

    /// Rows of the summary: (what, planned, applied, failed).
    pub fn summary(&self) -> Vec<(&'static str, usize, Option<usize>, usize)> {
        let plan = &self.plan;
        let count = |f: &dyn Fn(&super::plan::TeamPlan) -> usize| -> usize {
            plan.teams.iter().map(f).sum()
        };
        let failed = |prefix: &str| -> usize {
            self.applied
                .as_ref()
                .map(|a| {
                    a.failures
                        .iter()
                        .filter(|f| f.action.starts_with(prefix))
                        .count()
                })
                .unwrap_or(0)
        };
        let done = |f: fn(&Applied) -> usize| self.applied.as_ref().map(f);
        vec![
            (
                "teams to create",
                count(&|t| usize::from(t.creates())),
                done(|a| a.teams_created),
                failed("create_team") + failed("parent"),
            ),
            (
                "teams to update",
                count(&|t| usize::from(t.updates())),
                done(|a| a.teams_updated),
                failed("update_team"),
            ),
            (
                "members to add",
                count(&|t| t.add.len()),
                done(|a| a.members_added),
                failed("add_member"),
            ),
            (
                "roles to change",
                count(&|t| t.change_role.len()),
                done(|a| a.roles_changed),
                failed("update_member"),
            ),
            (
                "members to remove",
                count(&|t| t.remove.len()),
                done(|a| a.members_removed),
                failed("remove_member"),
            ),
            (
                "teams to delete",
                plan.delete.len(),
                done(|a| a.teams_deleted),
                failed("delete_team"),
            ),
        ]
    }

    /// Notes counted by kind, in a fixed order.
    pub fn note_counts(&self) -> Vec<(&'static str, usize)> {
        NOTE_LABELS
            .iter()
            .map(|label| {
                let n = self.plan.notes.iter().filter(|n| label_of(n) == *label);
                (*label, n.count())
            })
            .collect()
    }

    pub fn to_json(&self) -> Value {
        let summary: Vec<Value> = self
            .summary()
            .into_iter()
            .map(|(what, planned, applied, failed)| {
                json!({ "what": what, "planned": planned, "applied": applied, "failed": failed })
            })
            .collect();
        let notes: serde_json::Map<String, Value> = self
            .note_counts()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(what, n)| (what.to_string(), json!(n)))
            .collect();
        json!({
            "command": "migrate",
            "from": self.plan.from,
            "to": self.plan.to,
            "status": self.status(),
            "exit": self.exit_code(),
            "plan": self.plan,
            "result": self.applied,
            "summary": summary,
            "note_counts": notes,
        })
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let plan = &self.plan;
        let _ = writeln!(
            out,
            "migrate {} -> {}{}{}",
            plan.from,
            plan.to,
            if self.applied.is_some() {
                ""
            } else {
                " (dry run: --apply carries it out)"
            },
            if plan.prune { ", --prune" } else { "" }
        );
        if plan.is_empty() {
            let _ = writeln!(out, "nothing to do");
        }
        for team in &plan.teams {
            let fields: Vec<String> = team
                .set
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .chain(team.parent.iter().map(|p| format!("parent={p:?}")))
                .collect();
            let verb = if team.creates() { "+ create" } else { "~ team" };
            let _ = writeln!(out, "{verb} {:?} {}", team.name, fields.join(" "));
            for m in &team.add {
                let role = m
                    .role
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                let _ = writeln!(out, "    + member {}{role}", m.email);
            }
            for m in &team.change_role {
                let _ = writeln!(
                    out,
                    "    ~ role of {} -> {}",
                    m.email,
                    m.role.as_deref().unwrap_or("member")
                );
            }
            for m in &team.remove {
                let _ = writeln!(out, "    - member {}", m.email);
            }
        }
        for team in &plan.delete {
            let _ = writeln!(out, "- delete {:?}", team.name);
        }
        for note in &plan.notes {
            let _ = writeln!(out, "! {}", describe(note));
        }
        if let Some(applied) = &self.applied {
            for f in &applied.failures {
                let _ = writeln!(
                    out,
                    "x {:?}: {} failed: {} ({}) {}",
                    f.team, f.action, f.code, f.status, f.detail
                );
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<40} {:>8} {:>8} {:>8}",
            "", "planned", "applied", "failed"
        );
        for (what, planned, applied, failed) in self.summary() {
            let applied = applied.map_or("-".to_string(), |n| n.to_string());
            let _ = writeln!(out, "{what:<40} {planned:>8} {applied:>8} {failed:>8}");
        }
        for (what, n) in self.note_counts() {
            if n > 0 {
                let _ = writeln!(out, "{what:<40} {n:>8}");
            }
        }
        let _ = writeln!(out, "status: {}", self.status());
        out
    }
}

/// The summary's label of each kind of note, in the summary's order.
const NOTE_LABELS: [&str; 13] = [
    "people not found in the target",
    "members without email",
    "fields the target cannot hold",
    "roles the target cannot hold",
    "names over the target's limit",
    "names that clash case-insensitively",
    "descriptions over the target's limit",
    "parents not found",
    "teams whose members the target cannot hold",
    "prunes the target cannot do",
    "target teams with members kept (--prune)",
    "target teams kept (--prune)",
    "target members without email",
];

fn label_of(note: &Note) -> &'static str {
    NOTE_LABELS[match note {
        Note::PersonNotFound { .. } => 0,
        Note::MemberWithoutEmail { .. } => 1,
        Note::FieldNotHeld { .. } => 2,
        Note::RoleNotHeld { .. } => 3,
        Note::NameTooLong { .. } => 4,
        Note::NameClash { .. } => 5,
        Note::DescriptionTooLong { .. } => 6,
        Note::ParentNotFound { .. } => 7,
        Note::MembersNotHeld { .. } => 8,
        Note::CannotPrune { .. } => 9,
        Note::MembersKept { .. } => 10,
        Note::TeamKept { .. } => 11,
        Note::UnidentifiedMember { .. } => 12,
    }]
}

fn describe(note: &Note) -> String {
    match note {
        Note::PersonNotFound { team, email } => {
            format!("{team:?}: {email} is not a person the target knows; not added")
        }
        Note::MemberWithoutEmail { team, user_id } => {
            format!("{team:?}: member {user_id} has no email in the source; not carried")
        }
        Note::UnidentifiedMember { team, user_id } => {
            format!("{team:?}: target member {user_id} has no email; left alone")
        }
        Note::FieldNotHeld { team, field } => {
            format!("{team:?}: the target cannot hold `{field}`; not carried")
        }
        Note::RoleNotHeld { team, email, role } => {
            format!("{team:?}: the target cannot give {email} the role {role}; a plain member")
        }
        Note::NameTooLong { team, length, max } => format!(
            "{team:?}: the name has {length} characters, the target allows {max}; team not carried"
        ),
        Note::NameClash { team, with } => format!(
            "{team:?}: the name clashes case-insensitively with {with:?}; team not carried"
        ),
        Note::DescriptionTooLong { team, length, max } => format!(
            "{team:?}: the description has {length} characters, the target allows {max}; not carried"
        ),
        Note::ParentNotFound { team, parent } => {
            format!("{team:?}: the parent {parent:?} is not in the target; not set")
        }
        Note::MembersKept { team, emails } => format!(
            "{team:?}: target members not in the source, kept (--prune removes them): {}",
            emails.join(", ")
        ),
        Note::TeamKept { team } => {
            format!("{team:?}: a target team not in the source, kept (--prune deletes it)")
        }
        Note::MembersNotHeld { team } => {
            format!("{team:?}: the target has no member lists; members not carried")
        }
        Note::CannotPrune { team, what } => {
            format!("{team:?}: --prune needs {what}, which the target cannot do")
        }
    }
}

impl Diff {
    pub fn exit_code(&self) -> u8 {
        if self.is_empty() {
            EXIT_OK
        } else {
            EXIT_FAILED
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "command": "diff",
            "equal": self.is_empty(),
            "exit": self.exit_code(),
            "diff": self,
        })
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "diff {} {} (fields: name{}{}{})",
            self.a,
            self.b,
            self.fields
                .iter()
                .map(|f| format!(", {f}"))
                .collect::<String>(),
            if self.members { ", members" } else { "" },
            if self.roles { ", roles" } else { "" },
        );
        for name in &self.only_in_a {
            let _ = writeln!(out, "< team {name:?} only in {}", self.a);
        }
        for name in &self.only_in_b {
            let _ = writeln!(out, "> team {name:?} only in {}", self.b);
        }
        for name in &self.ambiguous {
            let _ = writeln!(
                out,
                "? team {name:?} pairs with several teams (case-insensitively)"
            );
        }
        for team in &self.teams {
            let _ = writeln!(out, "~ team {:?}", team.name);
            for f in &team.fields {
                let _ = writeln!(out, "    {}: {} | {}", f.field, f.a, f.b);
            }
            for email in &team.members_only_in_a {
                let _ = writeln!(out, "    < member {email}");
            }
            for email in &team.members_only_in_b {
                let _ = writeln!(out, "    > member {email}");
            }
            for r in &team.roles {
                let _ = writeln!(out, "    role of {}: {} | {}", r.email, r.a, r.b);
            }
            for id in &team.unidentified {
                let _ = writeln!(out, "    ? member {id} has no email");
            }
        }
        let _ = writeln!(
            out,
            "{}",
            if self.is_empty() {
                "equal"
            } else {
                "different"
            }
        );
        out
    }
}
