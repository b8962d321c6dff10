//! People: the details (email, username) of members whose vendor objects carry only a user
//! id, filled in by the mapping's `[people]` lookup.
//!
//! One lookup per answer, whatever the number of members (in chunks of `batch_max` ids when
//! the mapping declares one), joined to the members on the user id. A member the lookup does
//! not know is never dropped: it keeps its `user_id` with `email: null`, and the answer is
//! marked partial. A lookup that fails fails a read like any other step (the read cache's
//! stale-if-error may stand in); after a write the vendor has already acted, so there the
//! answer is marked partial instead. Member changes never need the lookup: they work on ids.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::Backend;
use crate::canonical::{CanonicalResponse, Operation};
use crate::error::Error;

/// The fields a person object gives a member.
const PERSON_FIELDS: &[&str] = &["user_id", "email", "username"];

impl Backend {
    /// Whether answers with members need the people lookup on this backend.
    pub(super) fn looks_people_up(&self) -> bool {
        self.mapping.people.is_some()
    }

    /// Fills in the details `members` (canonical member objects) lack, with one lookup (per
    /// chunk). Returns whether some member is still without an email.
    pub(super) async fn fill_people(
        &self,
        members: Vec<&mut Value>,
        caller: Operation,
    ) -> Result<bool, Error> {
        let Some(lookup) = &self.mapping.people else {
            return Ok(false);
        };
        let missing: Vec<&mut Value> = members
            .into_iter()
            .filter(|m| m["email"].is_null())
            .collect();
        if missing.is_empty() {
            return Ok(false);
        }
        let mut ids: Vec<String> = missing
            .iter()
            .filter_map(|m| m["user_id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        ids.dedup();
        let mut found: HashMap<String, Value> = HashMap::new();
        for chunk in ids.chunks(lookup.batch_max.max(1)) {
            let mut ctx = json!({
                "member_ids": chunk,
                "options": self.options,
                "steps": {},
            });
            self.run_steps(&lookup.plan, &mut ctx, caller).await?;
            for item in self.take_items(&lookup.plan, &mut ctx) {
                let person = lookup.fields.read(item, PERSON_FIELDS, None, false);
                if let Some(id) = person["user_id"].as_str() {
                    found.entry(id.to_string()).or_insert(person);
                }
            }
        }
        let mut partial = false;
        for member in missing {
            if let Some(person) = member["user_id"].as_str().and_then(|id| found.get(id)) {
                for key in ["email", "username"] {
                    if member[key].is_null() {
                        member[key] = person[key].clone();
                    }
                }
            }
            partial |= member["email"].is_null();
        }
        Ok(partial)
    }

    /// The members of one team object (its inline `members`), filled in.
    pub(super) async fn fill_team_people(
        &self,
        team: &mut Value,
        caller: Operation,
    ) -> Result<bool, Error> {
        let members = team
            .get_mut("members")
            .and_then(Value::as_array_mut)
            .map(|m| m.iter_mut().collect())
            .unwrap_or_default();
        self.fill_people(members, caller).await
    }

    /// A list of teams, encoded: the inline members of every team on the page filled in
    /// with one lookup. Only backends with a people lookup pay for the decoding.
    pub(super) async fn fill_listed_people(
        &self,
        mut response: CanonicalResponse,
        caller: Operation,
    ) -> Result<CanonicalResponse, Error> {
        let Some(mut body) = response.json() else {
            return Ok(response);
        };
        let members: Vec<&mut Value> = body["teams"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .filter_map(|t| t.get_mut("members").and_then(Value::as_array_mut))
            .flatten()
            .collect();
        if members.iter().all(|m| !m["email"].is_null()) {
            return Ok(response);
        }
        let partial = self.fill_people(members, caller).await?;
        let mut filled = CanonicalResponse::ok(body);
        filled.partial = response.partial || partial;
        response = filled;
        Ok(response)
    }
}
