//! The awkward parts of each vendor, through the whole proxy: errors inside HTTP 200,
//! success bodies that carry an error object, read-modify-write of member lists, soft delete.

mod support;

use serde_json::json;
use support::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flashcat_errors_inside_http_200_are_errors() {
    let h = start(&["flashcat"]).await;
    let sim = h.sim("flashcat");
    let id = h.create_team("flashcat", "Taken").await;
    assert!(sim.set_switch("errors_in_200", true));
    // ResourceNotFound inside a 200 is not_found, not a success.
    let a = h.get("flashcat", "/v1/teams/4211999999999").await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (404, "not_found"),
        "{}",
        a.text
    );
    assert_eq!(a.body["upstream"]["status"], 200);
    assert_eq!(a.body["upstream"]["code"], "ResourceNotFound");
    // A duplicate name inside a 200 is name_taken.
    let a = h
        .post("flashcat", "/v1/teams", json!({ "name": "Taken" }))
        .await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (409, "name_taken"),
        "{}",
        a.text
    );
    // Successes still work with the switch on.
    let a = h.get("flashcat", &format!("/v1/teams/{id}")).await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flashcat_ok_error_object_on_success_is_a_success() {
    let h = start(&["flashcat"]).await;
    assert!(h.sim("flashcat").set_switch("ok_error_on_success", true));
    let id = h.create_team("flashcat", "Fine").await;
    let a = h.get("flashcat", &format!("/v1/teams/{id}")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["name"], "Fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flashcat_member_changes_rewrite_the_whole_list_and_keep_the_rest() {
    let h = start(&["flashcat"]).await;
    let sim = h.sim("flashcat");
    let created = h
        .post(
            "flashcat",
            "/v1/teams",
            json!({ "name": "Keep", "description": "kept" }),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let bob = h.user_id("flashcat", "bob@example.com").await;
    let dan = h.user_id("flashcat", "dan@example.com").await;
    h.post(
        "flashcat",
        &format!("/v1/teams/{id}/members"),
        json!({ "user_id": bob }),
    )
    .await;
    sim.clear_log();
    let a = h
        .post(
            "flashcat",
            &format!("/v1/teams/{id}/members"),
            json!({ "user_id": dan }),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let upserts: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/team/upsert")
        .collect();
    assert_eq!(upserts.len(), 1);
    let body = upserts[0].json();
    assert_eq!(
        body["person_ids"],
        json!([bob.parse::<u64>().unwrap(), dan.parse::<u64>().unwrap()])
    );
    assert_eq!(body["team_name"], "Keep");
    assert_eq!(
        body["description"], "kept",
        "read-modify-write keeps the description"
    );
    assert!(upserts[0].query.as_deref().unwrap().starts_with("app_key="));
    // Adding again writes nothing.
    sim.clear_log();
    let a = h
        .post(
            "flashcat",
            &format!("/v1/teams/{id}/members"),
            json!({ "email": "dan@example.com" }),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(
        sim.requests().iter().all(|r| r.path != "/team/upsert"),
        "no write when already a member"
    );
    // A PATCH keeps the members.
    let a = h
        .patch(
            "flashcat",
            &format!("/v1/teams/{id}"),
            json!({ "description": null }),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["description"], "");
    assert_eq!(a.body["member_count"], 2, "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_member_adds_on_one_team_lose_nothing() {
    let h = std::sync::Arc::new(start(&["flashcat"]).await);
    let id = h.create_team("flashcat", "Busy").await;
    let emails = [
        "ada@example.com",
        "bob@example.com",
        "carol@example.com",
        "dan@example.com",
        "eve@example.com",
        "frank@example.com",
    ];
    let mut tasks = Vec::new();
    for email in emails {
        let h = h.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            h.post(
                "flashcat",
                &format!("/v1/teams/{id}/members"),
                json!({ "email": email }),
            )
            .await
            .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    let a = h.get("flashcat", &format!("/v1/teams/{id}/members")).await;
    assert_eq!(
        a.body["members"].as_array().unwrap().len(),
        emails.len(),
        "{}",
        a.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flashcat_credentials_stay_out_of_answers() {
    let h = start(&["flashcat"]).await;
    h.sim("flashcat")
        .set_fault(Some(teamgate_sim::Fault::Status(500)));
    let a = h.get("flashcat", "/v1/teams").await;
    assert_eq!(a.status, 502);
    assert!(!a.text.contains(support::CREDENTIAL), "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonapi_teams_go_under_the_default_team_unless_a_parent_is_given() {
    let h = start(&["jsonapi"]).await;
    let root = teamgate_sim::jsonapi::DEFAULT_TEAM_ID;
    let a = h
        .post("jsonapi", "/v1/teams", json!({ "name": "Child" }))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["parent_id"], root);
    let child = a.body["id"].as_str().unwrap().to_string();
    let a = h
        .post(
            "jsonapi",
            "/v1/teams",
            json!({ "name": "Grandchild", "parent_id": child }),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["parent_id"], child.as_str());
    // The request always carries the JSON:API content type, even on a GET.
    let log = h.sim("jsonapi").requests();
    assert!(
        log.iter()
            .all(|r| r.header("content-type") == Some("application/vnd.api+json")),
        "{log:?}"
    );
    // An unknown parent is the caller's mistake.
    let a = h
        .post(
            "jsonapi",
            "/v1/teams",
            json!({ "name": "Orphan", "parent_id": "00000000-0000-4000-8000-000000000000" }),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (400, "invalid_request"),
        "{}",
        a.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonapi_soft_deleted_teams_are_gone_for_canonical_callers() {
    let h = start(&["jsonapi"]).await;
    let id = h.create_team("jsonapi", "Soft").await;
    let a = h.delete("jsonapi", &format!("/v1/teams/{id}")).await;
    assert_eq!(a.status, 204, "{}", a.text);
    // The vendor still has it, discarded.
    let sim = h.sim("jsonapi");
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {}", support::CREDENTIAL).parse().unwrap(),
    );
    headers.insert("content-type", "application/vnd.api+json".parse().unwrap());
    let raw = sim.direct(&teamgate_sim::SimRequest::new(
        http::Method::GET,
        &format!("/api/v1/teams/{id}"),
        headers,
        bytes::Bytes::new(),
    ));
    assert_eq!(raw.status, 200);
    assert!(raw.json_body()["data"]["attributes"]["discarded_at"].is_string());
    for path in [format!("/v1/teams/{id}"), format!("/v1/teams/{id}/members")] {
        let a = h.get("jsonapi", &path).await;
        assert_eq!(
            (a.status.as_u16(), a.code()),
            (404, "not_found"),
            "{path}: {}",
            a.text
        );
    }
    let a = h.get("jsonapi", "/v1/teams?name=soft").await;
    assert_eq!(a.body["teams"], json!([]), "{}", a.text);
    // Its name is free again.
    h.create_team("jsonapi", "Soft").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_roles_map_to_each_vendor() {
    let h = support::start_backends(&[
        ("grafana", "grafana", "mappings/grafana.toml"),
        ("jsonapi", "jsonapi", "mappings/jsonapi.toml"),
        ("opsgenie", "opsgenie", "mappings/opsgenie.toml"),
        ("squadcast", "squadcast", "mappings/squadcast.toml"),
        (
            "squadcast-rbac",
            "squadcast",
            "mappings/squadcast-rbac.toml",
        ),
        ("flashcat", "flashcat", "mappings/flashcat.toml"),
    ])
    .await;
    // Flashcat has no per-team roles: admin is refused, naming the backend, never dropped.
    let id = h.create_team("flashcat", "Roles").await;
    let bob = h.user_id("flashcat", "bob@example.com").await;
    let a = h
        .post(
            "flashcat",
            &format!("/v1/teams/{id}/members"),
            json!({ "user_id": bob, "role": "admin" }),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (400, "invalid_request"),
        "{}",
        a.text
    );
    assert!(a.body["detail"].as_str().unwrap().contains("flashcat"));
    let a = h
        .call(
            "flashcat",
            http::Method::PATCH,
            &format!("/v1/teams/{id}/members/{bob}"),
            Some(json!({ "role": "member" })),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (501, "unsupported_operation"),
        "{}",
        a.text
    );
    for backend in [
        "grafana",
        "jsonapi",
        "opsgenie",
        "squadcast",
        "squadcast-rbac",
    ] {
        let id = h.create_team(backend, "Roles").await;
        let bob = h.user_id(backend, "bob@example.com").await;
        let a = h
            .post(
                backend,
                &format!("/v1/teams/{id}/members"),
                json!({ "user_id": bob, "role": "admin" }),
            )
            .await;
        assert_eq!(a.status, 201, "{backend}: {}", a.text);
        assert_eq!(a.body["role"], "admin", "{backend}: {}", a.text);
        let a = h
            .patch(
                backend,
                &format!("/v1/teams/{id}/members/{bob}"),
                json!({ "role": "member" }),
            )
            .await;
        assert_eq!(a.status, 200, "{backend}: {}", a.text);
        assert_eq!(a.body["role"], "member", "{backend}: {}", a.text);
    }
    let sent: Vec<_> = h
        .sim("grafana")
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/members"))
        .collect();
    assert_eq!(sent[0].json()["permission"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_with_members_replaces_the_list_where_the_vendor_holds_it() {
    let h = start(&["flashcat", "grafana"]).await;
    let bob = h.user_id("flashcat", "bob@example.com").await;
    let eve = h.user_id("flashcat", "eve@example.com").await;
    let created = h
        .post(
            "flashcat",
            "/v1/teams",
            json!({ "name": "Listed", "members": [{ "user_id": bob }] }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.body["members"],
        json!([{ "user_id": bob, "email": "bob@example.com", "username": null, "role": "member" }]),
        "the member's email comes from the people lookup"
    );
    let id = created.body["id"].as_str().unwrap();
    let a = h
        .patch(
            "flashcat",
            &format!("/v1/teams/{id}"),
            json!({ "members": [{ "user_id": eve }] }),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let ids: Vec<&str> = a.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![eve.as_str()]);
    // A role the vendor cannot hold is refused, never dropped.
    let a = h
        .patch(
            "flashcat",
            &format!("/v1/teams/{id}"),
            json!({ "members": [{ "user_id": eve, "role": "admin" }] }),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (400, "invalid_request"),
        "{}",
        a.text
    );
    // A backend without inline members refuses the field.
    let g = h.create_team("grafana", "NoList").await;
    let a = h
        .patch(
            "grafana",
            &format!("/v1/teams/{g}"),
            json!({ "members": [] }),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (400, "invalid_request"),
        "{}",
        a.text
    );
    assert!(a.body["detail"].as_str().unwrap().contains("members"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opsgenie_throttling_becomes_rate_limited_with_retry_after() {
    let h = start(&["opsgenie"]).await;
    assert!(h.sim("opsgenie").set_switch("rate_limited", true));
    let a = h.get("opsgenie", "/v1/teams").await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (429, "rate_limited"),
        "{}",
        a.text
    );
    // Opsgenie documents no Retry-After; its throttle period stands in for it.
    assert_eq!(a.headers["retry-after"], "60");
    assert_eq!(a.body["upstream"]["status"], 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opsgenie_member_routes_use_team_identifier_type() {
    let h = start(&["opsgenie"]).await;
    let id = h.create_team("opsgenie", "Routes").await;
    let bob = h.user_id("opsgenie", "bob@example.com").await;
    h.sim("opsgenie").clear_log();
    h.post(
        "opsgenie",
        &format!("/v1/teams/{id}/members"),
        json!({ "user_id": bob }),
    )
    .await;
    h.delete("opsgenie", &format!("/v1/teams/{id}/members/{bob}"))
        .await;
    h.get("opsgenie", &format!("/v1/teams/{id}")).await;
    for r in h.sim("opsgenie").requests() {
        let query = r.query.clone().unwrap_or_default();
        if r.path.contains("/members") {
            assert_eq!(query, "teamIdentifierType=id", "{} {}", r.method, r.path);
        } else if r.path.starts_with("/v2/teams/") {
            assert_eq!(query, "identifierType=id", "{} {}", r.method, r.path);
        }
        assert_eq!(
            r.header("authorization"),
            Some(format!("GenieKey {}", support::CREDENTIAL).as_str())
        );
    }
}

/// PagerDuty answers a team's members 100 at a time: a team of 250 is read whole (list,
/// member count, the checked add that reads the list first) and never cut at a page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_a_team_of_250_is_read_whole() {
    let h = start(&["pagerduty"]).await;
    let sim = h.sim("pagerduty");
    assert!(sim.set_switch("extra_users", true));
    let id = h.create_team("pagerduty", "Everyone").await;
    let members = format!("/v1/teams/{id}/members");
    for k in 1..=250 {
        let a = h
            .post(
                "pagerduty",
                &members,
                json!({ "email": format!("user{k}@example.com") }),
            )
            .await;
        assert_eq!(a.status, 201, "user{k}: {}", a.text);
    }
    // Someone already there, past the first page: the checked add sees them and writes nothing.
    sim.clear_log();
    let again = h
        .post(
            "pagerduty",
            &members,
            json!({ "email": "user240@example.com" }),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert!(
        !sim.requests().iter().any(|r| r.method == "PUT"),
        "an add of a present member wrote"
    );

    let listed = h.get("pagerduty", &members).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let listed = listed.body["members"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 250);
    let emails: std::collections::BTreeSet<&str> = listed
        .iter()
        .map(|m| m["email"].as_str().expect("every member has an email"))
        .collect();
    assert_eq!(emails.len(), 250, "no member twice, none missing");
    let pages = sim
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/members"))
        .count();
    assert!(pages >= 3, "250 members in pages of 100: {pages} calls");

    let team = h.get("pagerduty", &format!("/v1/teams/{id}")).await;
    assert_eq!(team.body["member_count"], 250, "{}", team.text);

    let user = listed[0]["user_id"].as_str().unwrap();
    let gone = h.delete("pagerduty", &format!("{members}/{user}")).await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    let listed = h.get("pagerduty", &members).await;
    assert_eq!(listed.body["members"].as_array().unwrap().len(), 249);
}

/// PagerDuty's PUT keeps what it is not sent: a parent is cleared by sending `parent: null`,
/// so a PATCH of `"parent_id": null` is not answered 200 with the old parent still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_a_parent_is_set_and_cleared() {
    let h = start(&["pagerduty"]).await;
    let root = h.create_team("pagerduty", "Root").await;
    let child = h
        .post(
            "pagerduty",
            "/v1/teams",
            json!({ "name": "Child", "parent_id": root }),
        )
        .await;
    assert_eq!(child.status, 201, "{}", child.text);
    assert_eq!(child.body["parent_id"], root.as_str());
    let id = child.body["id"].as_str().unwrap();
    let path = format!("/v1/teams/{id}");
    let renamed = h
        .patch("pagerduty", &path, json!({ "name": "Child 2" }))
        .await;
    assert_eq!(renamed.body["parent_id"], root.as_str(), "{}", renamed.text);
    let cleared = h
        .patch("pagerduty", &path, json!({ "parent_id": null }))
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    assert_eq!(cleared.body["parent_id"], serde_json::Value::Null);
    assert_eq!(cleared.body["name"], "Child 2");
    let read = h.get("pagerduty", &path).await;
    assert_eq!(
        read.body["parent_id"],
        serde_json::Value::Null,
        "{}",
        read.text
    );
}

/// JSON:API teams all have a parent but the default one: a patch clearing the parent is sent
/// on (`nullable`) and refused by the vendor, never dropped with a 200 and the old parent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonapi_clearing_a_parent_is_refused_not_dropped() {
    let h = start(&["jsonapi"]).await;
    let id = h.create_team("jsonapi", "Child").await;
    let path = format!("/v1/teams/{id}");
    let before = h.get("jsonapi", &path).await;
    let parent = before.body["parent_id"].clone();
    assert!(parent.is_string(), "{}", before.text);
    let cleared = h
        .patch("jsonapi", &path, json!({ "parent_id": null }))
        .await;
    assert_eq!(
        (cleared.status.as_u16(), cleared.code()),
        (400, "invalid_request"),
        "{}",
        cleared.text
    );
    assert!(
        cleared.text.contains("parent"),
        "the vendor's reason is kept: {}",
        cleared.text
    );
    let after = h.get("jsonapi", &path).await;
    assert_eq!(after.body["parent_id"], parent);
    // A rename leaves the parent alone.
    let renamed = h
        .patch("jsonapi", &path, json!({ "name": "Child 2" }))
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.body["parent_id"], parent);
}
