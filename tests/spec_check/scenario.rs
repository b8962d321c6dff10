//! The traffic the spec check judges: one walk through every canonical operation a backend's
//! mapping declares, through the real proxy, so the simulator logs what the mapping sends.
//!
//! The walk does not assert like the conformance suite does; it records what went wrong and
//! keeps going, so a half-working backend still gets the requests it did send checked. What
//! it does insist on is coverage: every declared operation must have sent at least one request.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::support::{Answer, Harness};

/// Pages walked at most when listing; the scenario holds four teams, so two pages of two.
const MAX_PAGES: usize = 10;

/// What a walk produced besides the simulator's log.
#[derive(Default)]
pub struct Walk {
    /// Canonical calls that did not answer as expected (the walk went on).
    pub problems: Vec<String>,
    /// Declared operations that sent no upstream request, so nothing of theirs was checked.
    pub uncovered: Vec<String>,
}

/// Walks `backend` through every declared operation.
pub async fn walk(h: &Harness, backend: &str) -> Walk {
    let info = h.describe(backend).await;
    let declared: Vec<String> = strings(&info["operations"]);
    let mut run = Run {
        h,
        backend,
        declared,
        sent: BTreeMap::new(),
        problems: Vec::new(),
        holds_members: strings(&info["team_fields"]).iter().any(|f| f == "members"),
    };
    run.teams(&info).await;
    let uncovered = run
        .declared
        .iter()
        .filter(|op| run.sent.get(op.as_str()).copied().unwrap_or(0) == 0)
        .cloned()
        .collect();
    Walk {
        problems: run.problems,
        uncovered,
    }
}

struct Run<'a> {
    h: &'a Harness,
    backend: &'a str,
    declared: Vec<String>,
    /// Upstream requests each canonical operation caused.
    sent: BTreeMap<&'static str, usize>,
    problems: Vec<String>,
    /// Whether the backend holds a team's member list (so a PATCH may replace it).
    holds_members: bool,
}

impl Run<'_> {
    fn declares(&self, op: &str) -> bool {
        self.declared.iter().any(|d| d == op)
    }

    /// Makes one canonical call for operation `op`, counts the upstream requests it caused
    /// and records a problem if the status is not one of `ok`.
    async fn call(
        &mut self,
        op: &'static str,
        method: http::Method,
        path: &str,
        body: Option<Value>,
        ok: &[u16],
    ) -> Option<Answer> {
        if !self.declares(op) {
            return None;
        }
        let sim = self.h.sim(self.backend);
        let before = sim.request_count();
        let answer = self.h.call(self.backend, method.clone(), path, body).await;
        *self.sent.entry(op).or_default() += sim.request_count().saturating_sub(before);
        if !ok.contains(&answer.status.as_u16()) {
            self.problems.push(format!(
                "{op}: {method} {path} answered {} (wanted {ok:?}): {}",
                answer.status, answer.text
            ));
            return None;
        }
        Some(answer)
    }

    async fn teams(&mut self, info: &Value) {
        let holds_description = strings(&info["team_fields"])
            .iter()
            .any(|f| f == "description");
        let mut body = json!({ "name": "Spec Platform" });
        if holds_description {
            body["description"] = json!("Runs the platform");
        }
        let created = self
            .call(
                "create_team",
                http::Method::POST,
                "/v1/teams",
                Some(body),
                &[201],
            )
            .await;
        let Some(id) = created.as_ref().and_then(|a| a.body["id"].as_str()) else {
            self.problems
                .push("create_team gave no team id: nothing else can run".to_string());
            return;
        };
        let team = format!("/v1/teams/{}", segment(id));
        for name in ["Spec Alpha", "Spec Bravo", "Spec Charlie"] {
            let body = json!({ "name": name });
            self.call(
                "create_team",
                http::Method::POST,
                "/v1/teams",
                Some(body),
                &[201],
            )
            .await;
        }
        self.list_teams().await;
        self.call("get_team", http::Method::GET, &team, None, &[200])
            .await;
        self.update(&team, holds_description).await;
        self.members(&team).await;
        self.call("delete_team", http::Method::DELETE, &team, None, &[204])
            .await;
        // The error path sends requests too: a read of the deleted team.
        self.call("get_team", http::Method::GET, &team, None, &[404])
            .await;
    }

    /// Every page of `/v1/teams` two at a time, then a name filter.
    async fn list_teams(&mut self) {
        let mut path = "/v1/teams?limit=2".to_string();
        for _ in 0..MAX_PAGES {
            let Some(page) = self
                .call("list_teams", http::Method::GET, &path, None, &[200])
                .await
            else {
                return;
            };
            match page.body["next_cursor"].as_str() {
                Some(cursor) => path = format!("/v1/teams?cursor={}", segment(cursor)),
                None => break,
            }
        }
        self.call(
            "list_teams",
            http::Method::GET,
            "/v1/teams?name=Spec%20Alpha",
            None,
            &[200],
        )
        .await;
    }

    async fn update(&mut self, team: &str, holds_description: bool) {
        let renamed = json!({ "name": "Spec Platform Core" });
        self.call(
            "update_team",
            http::Method::PATCH,
            team,
            Some(renamed),
            &[200],
        )
        .await;
        if holds_description {
            let described = json!({ "description": "Runs the core platform" });
            self.call(
                "update_team",
                http::Method::PATCH,
                team,
                Some(described),
                &[200],
            )
            .await;
        }
    }

    /// Add by id, by email and again; list; remove twice (the second is a 404).
    async fn members(&mut self, team: &str) {
        let members = format!("{team}/members");
        let Some(bob) = self.user_id("bob@example.com").await else {
            return;
        };
        let by_id = json!({ "user_id": bob });
        self.call(
            "add_member",
            http::Method::POST,
            &members,
            Some(by_id.clone()),
            &[201],
        )
        .await;
        let by_email = json!({ "email": "carol@example.com" });
        self.call(
            "add_member",
            http::Method::POST,
            &members,
            Some(by_email),
            &[201],
        )
        .await;
        self.call(
            "add_member",
            http::Method::POST,
            &members,
            Some(by_id),
            &[200],
        )
        .await;
        self.call("list_members", http::Method::GET, &members, None, &[200])
            .await;
        let member = format!("{members}/{}", segment(&bob));
        if self.declares("update_member") {
            for role in ["admin", "member"] {
                let body = json!({ "role": role });
                self.call(
                    "update_member",
                    http::Method::PATCH,
                    &member,
                    Some(body),
                    &[200],
                )
                .await;
            }
        }
        if self.holds_members {
            // The whole list at once: the vendors that replace members on update get it.
            let body = json!({ "members": [{ "user_id": bob, "role": "member" }] });
            self.call("update_team", http::Method::PATCH, team, Some(body), &[200])
                .await;
            let body = json!({ "user_id": bob });
            self.call(
                "add_member",
                http::Method::POST,
                &members,
                Some(body),
                &[200],
            )
            .await;
        }
        self.call("remove_member", http::Method::DELETE, &member, None, &[204])
            .await;
        self.call("remove_member", http::Method::DELETE, &member, None, &[404])
            .await;
    }

    /// The backend's id of a person, found through `list_users` by email.
    async fn user_id(&mut self, email: &str) -> Option<String> {
        let path = format!("/v1/users?email={}", segment(email));
        let answer = self
            .call("list_users", http::Method::GET, &path, None, &[200])
            .await?;
        let id = answer.body["users"][0]["id"].as_str().map(str::to_string);
        if id.is_none() {
            self.problems.push(format!(
                "list_users found no id for {email}: {}",
                answer.text
            ));
        }
        id
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Percent-encodes one path segment or query value.
fn segment(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}
