//! The conformance suite: the same canonical scenarios and assertions against every backend.
//!
//! Each scenario starts its own simulator and proxy on loopback ports, so scenarios run in
//! parallel without sharing state. Backend differences are read from the proxy itself
//! (`/v1/backends`), never hard-coded per vendor.

mod support;

use http::Method;
use serde_json::{json, Value};
use support::{start, Harness};

/// Pages through `/v1/teams` with `limit` and returns every team name, asserting that pages
/// hold at most `limit` teams and that the walk ends (bounded).
async fn all_team_names(h: &Harness, backend: &str, limit: usize) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut path = format!("/v1/teams?limit={limit}");
    for pages in 1..=50 {
        let a = h.get(backend, &path).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let teams = a.body["teams"].as_array().expect("teams");
        assert!(teams.len() <= limit, "page larger than limit: {}", a.text);
        names.extend(
            teams
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string()),
        );
        match a.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/teams?cursor={c}"),
            None => return (names, pages),
        }
    }
    panic!("paging did not end within 50 pages");
}

async fn lifecycle(backend: &str) {
    let h = start(&[backend]).await;
    let sim = h.sim(backend);
    let info = h.describe(backend).await;
    let holds = |field: &str| {
        info["team_fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == field)
    };

    // create → get
    let created = h
        .post(backend, "/v1/teams", json!({ "name": "  Platform  " }))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"]
        .as_str()
        .expect("ids are strings")
        .to_string();
    assert_eq!(created.body["name"], "Platform", "names are trimmed");
    assert_eq!(created.body["backend"], backend);
    assert_eq!(
        created.body.get("vendor"),
        None,
        "leftovers only on request"
    );
    let location = created.headers["location"].to_str().unwrap();
    assert_eq!(location, format!("/v1/teams/{}", urlencode(&id)));
    let got = h.get(backend, location).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.body["id"], id.as_str());
    assert_eq!(got.body["name"], "Platform");
    assert_eq!(got.body.get("vendor"), None);
    // The vendor's leftovers, one query parameter away; the two forms are cached apart.
    let with_vendor = h.get(backend, &format!("{location}?include=vendor")).await;
    assert_eq!(with_vendor.status, 200, "{}", with_vendor.text);
    assert!(
        with_vendor.body["vendor"].is_object(),
        "{}",
        with_vendor.text
    );
    assert_eq!(with_vendor.body["name"], "Platform");
    assert_eq!(h.get(backend, location).await.body.get("vendor"), None);
    let listed = h.get(backend, "/v1/teams?include=vendor&limit=3").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    for team in listed.body["teams"].as_array().unwrap() {
        assert!(team["vendor"].is_object(), "{team}");
    }

    // list, through at least two pages
    for name in ["Alpha", "Bravo", "Charlie"] {
        h.create_team(backend, name).await;
    }
    let (names, pages) = all_team_names(&h, backend, 2).await;
    assert!(pages >= 2, "{pages} page(s)");
    for name in ["Platform", "Alpha", "Bravo", "Charlie"] {
        assert_eq!(
            names.iter().filter(|n| *n == name).count(),
            1,
            "{name} once in {names:?}"
        );
    }
    let filtered = h.get(backend, "/v1/teams?name=alpha").await;
    assert_eq!(filtered.status, 200);
    let teams = filtered.body["teams"].as_array().unwrap();
    assert_eq!(teams.len(), 1, "{}", filtered.text);
    assert_eq!(teams[0]["name"], "Alpha");

    // PATCH name, then description where the backend holds one
    let renamed = h
        .patch(
            backend,
            &format!("/v1/teams/{}", urlencode(&id)),
            json!({ "name": "Platform Core" }),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.body["name"], "Platform Core");
    sim.clear_log();
    let described = h
        .patch(
            backend,
            &format!("/v1/teams/{}", urlencode(&id)),
            json!({ "description": "Runs the platform" }),
        )
        .await;
    if holds("description") {
        assert_eq!(described.status, 200, "{}", described.text);
        assert_eq!(described.body["description"], "Runs the platform");
        assert_eq!(
            described.body["name"], "Platform Core",
            "a patch keeps the other fields"
        );
    } else {
        assert_eq!(described.status, 400, "{}", described.text);
        assert_eq!(described.code(), "invalid_request");
        assert!(described.body["detail"]
            .as_str()
            .unwrap()
            .contains("description"));
        assert_eq!(sim.request_count(), 0, "refused before any upstream call");
    }

    // members: by id, by email, again, list, remove, remove again. Some vendors put the
    // team's creator in it by themselves, so the assertions are about what changed.
    let members_path = format!("/v1/teams/{}/members", urlencode(&id));
    let before = h.get(backend, &members_path).await;
    assert_eq!(before.status, 200, "{}", before.text);
    let initial = before.body["members"].as_array().unwrap().len();
    let bob = h.user_id(backend, "bob@example.com").await;
    let carol = h.user_id(backend, "carol@example.com").await;
    let added = h
        .post(backend, &members_path, json!({ "user_id": bob }))
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    assert_eq!(added.body["user_id"], bob.as_str());
    let by_email = h
        .post(
            backend,
            &members_path,
            json!({ "email": "carol@example.com" }),
        )
        .await;
    assert_eq!(by_email.status, 201, "{}", by_email.text);
    assert_eq!(by_email.body["user_id"], carol.as_str());
    let again = h
        .post(backend, &members_path, json!({ "user_id": bob }))
        .await;
    assert_eq!(again.status, 200, "adding a member twice: {}", again.text);
    assert_eq!(again.body["user_id"], bob.as_str());
    let listed = h.get(backend, &members_path).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let ids: Vec<&str> = listed.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), initial + 2, "{ids:?}");
    assert!(
        ids.contains(&bob.as_str()) && ids.contains(&carol.as_str()),
        "{ids:?}"
    );
    let member_path = format!("{members_path}/{}", urlencode(&bob));
    let removed = h.delete(backend, &member_path).await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    let removed_again = h.delete(backend, &member_path).await;
    assert_eq!(removed_again.status, 404, "{}", removed_again.text);
    assert_eq!(removed_again.code(), "not_found");
    let listed = h.get(backend, &members_path).await;
    assert_eq!(
        listed.body["members"].as_array().unwrap().len(),
        initial + 1,
        "{}",
        listed.text
    );

    // delete → get 404
    let deleted = h
        .delete(backend, &format!("/v1/teams/{}", urlencode(&id)))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let gone = h
        .get(backend, &format!("/v1/teams/{}", urlencode(&id)))
        .await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    assert_eq!(gone.code(), "not_found");
    assert_eq!(gone.headers["content-type"], "application/problem+json");
    let (names, _) = all_team_names(&h, backend, 100).await;
    assert!(
        !names.contains(&"Platform Core".to_string()),
        "a deleted team is not listed: {names:?}"
    );
}

/// Members carry their email on every backend, whether the vendor's team answer holds
/// people's details or only their ids (then the mapping's people lookup fills them in).
async fn member_emails(backend: &str) {
    let h = start(&[backend]).await;
    let info = h.describe(backend).await;
    let inline = info["team_fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "members");
    let id = h.create_team(backend, "Emails").await;
    let members_path = format!("/v1/teams/{}/members", urlencode(&id));
    let bob = h.user_id(backend, "bob@example.com").await;
    let added = h
        .post(backend, &members_path, json!({ "user_id": bob }))
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    assert_eq!(added.body["email"], "bob@example.com", "{}", added.text);
    let by_email = h
        .post(
            backend,
            &members_path,
            json!({ "email": "Carol@Example.com" }),
        )
        .await;
    assert_eq!(by_email.status, 201, "{}", by_email.text);
    assert_eq!(
        by_email.body["email"], "carol@example.com",
        "{}",
        by_email.text
    );
    assert!(by_email.headers.get("teamgate-partial").is_none());

    // Every member of every answer that lists them has an email (a vendor may have put the
    // team's creator in by itself: that is someone it knows too).
    let check = |what: &str, members: &Value| {
        let members = members
            .as_array()
            .unwrap_or_else(|| panic!("{what}: {members}"));
        let emails: Vec<&str> = members
            .iter()
            .map(|m| {
                m["email"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{what}: a member without email: {m}"))
            })
            .collect();
        for email in ["bob@example.com", "carol@example.com"] {
            assert!(emails.contains(&email), "{what}: {email} in {emails:?}");
        }
    };
    let listed = h.get(backend, &members_path).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(listed.headers.get("teamgate-partial").is_none());
    check("list_members", &listed.body["members"]);
    if inline {
        let team = h
            .get(backend, &format!("/v1/teams/{}", urlencode(&id)))
            .await;
        assert_eq!(team.status, 200, "{}", team.text);
        check("get_team", &team.body["members"]);
        let page = h.get(backend, "/v1/teams?name=emails").await;
        assert_eq!(page.status, 200, "{}", page.text);
        check("list_teams", &page.body["teams"][0]["members"]);
    }
}

async fn taken_name(backend: &str) {
    let h = start(&[backend]).await;
    h.create_team(backend, "Unique").await;
    let again = h
        .post(backend, "/v1/teams", json!({ "name": "Unique" }))
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.code(), "name_taken");
    assert_eq!(again.body["backend"], backend);
    assert!(
        again.body["upstream"]["status"].is_u64(),
        "the vendor's answer is kept: {}",
        again.text
    );
    // A rename onto a taken name is name_taken as well.
    let other = h.create_team(backend, "Other").await;
    let rename = h
        .patch(
            backend,
            &format!("/v1/teams/{}", urlencode(&other)),
            json!({ "name": "Unique" }),
        )
        .await;
    assert_eq!(rename.status, 409, "{}", rename.text);
    assert_eq!(rename.code(), "name_taken");
}

async fn invalid_names(backend: &str) {
    let h = start(&[backend]).await;
    let info = h.describe(backend).await;
    let name_max = info["limits"]["name_max"].as_u64().unwrap() as usize;
    let sim = h.sim(backend);
    sim.clear_log();
    let mut bad = vec![
        json!(""),
        json!("   "),
        json!("x".repeat(101)),
        json!(42),
        json!(null),
    ];
    if name_max < 100 {
        bad.push(json!("y".repeat(name_max + 1)));
        bad.push(json!("ü".repeat(name_max + 1)));
    }
    for name in bad {
        let a = h.post(backend, "/v1/teams", json!({ "name": name })).await;
        assert_eq!(a.status, 400, "name {name}: {}", a.text);
        assert_eq!(a.code(), "invalid_request");
    }
    assert_eq!(
        sim.request_count(),
        0,
        "no upstream call for an invalid name"
    );
    // The limit itself is accepted.
    let ok = h
        .post(
            backend,
            "/v1/teams",
            json!({ "name": "ü".repeat(name_max) }),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
}

/// Bad input of other kinds: wrong content type, malformed JSON, unknown fields, huge body.
async fn bad_input(backend: &str) {
    let h = start(&[backend]).await;
    let sim = h.sim(backend);
    sim.clear_log();
    let request = |ct: &str, body: &str| {
        http::Request::builder()
            .method(Method::POST)
            .uri(format!("{}/v1/teams", h.base))
            .header("teamgate-backend", backend)
            .header("content-type", ct)
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )))
            .unwrap()
    };
    let a = h.send(request("text/plain", "{\"name\":\"a\"}")).await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (415, "unsupported_media_type"),
        "{}",
        a.text
    );
    let a = h.send(request("application/json", "{\"name\":")).await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (400, "invalid_request"),
        "{}",
        a.text
    );
    let a = h
        .send(request(
            "application/json",
            "{\"name\":\"a\",\"colour\":\"red\"}",
        ))
        .await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (400, "invalid_request"),
        "{}",
        a.text
    );
    let huge = format!("{{\"name\":\"{}\"}}", "a".repeat(2 << 20));
    let a = h.send(request("application/json", &huge)).await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (413, "payload_too_large"),
        "{}",
        a.text
    );
    let a = h
        .post(backend, "/v1/teams/1/members", json!({ "role": "admin" }))
        .await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (400, "invalid_request"),
        "{}",
        a.text
    );
    assert_eq!(sim.request_count(), 0, "no upstream call for bad input");
}

/// Ids that try to change the upstream path or query never do (asserted on the simulator's
/// log): each request the vendor receives has the shape of the same request with a plain id.
async fn hostile_ids(backend: &str) {
    let h = start(&[backend]).await;
    let sim = h.sim(backend);
    let shapes = |log: Vec<teamgate_sim::LoggedRequest>| -> Vec<(String, usize, Vec<String>)> {
        log.into_iter()
            .map(|r| {
                let segments = r.path.split('/').count();
                let mut keys: Vec<String> = r
                    .query
                    .unwrap_or_default()
                    .split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| p.split('=').next().unwrap().to_string())
                    .collect();
                keys.sort();
                (r.method, segments, keys)
            })
            .collect()
    };
    let operations = |id: &str| {
        let id = urlencode(id);
        vec![
            (Method::GET, format!("/v1/teams/{id}"), None),
            (
                Method::PATCH,
                format!("/v1/teams/{id}"),
                Some(json!({ "name": "Renamed" })),
            ),
            (Method::DELETE, format!("/v1/teams/{id}"), None),
            (Method::GET, format!("/v1/teams/{id}/members"), None),
            (Method::DELETE, format!("/v1/teams/{id}/members/{id}"), None),
        ]
    };
    let mut benign = Vec::new();
    for (method, path, body) in operations("123456789") {
        sim.clear_log();
        let a = h.call(backend, method, &path, body).await;
        assert!(a.status.is_client_error(), "{path}: {}", a.text);
        benign.push(shapes(sim.requests()));
    }
    for hostile in [
        "../x",
        "1?a=b",
        "%2F..",
        "ü",
        "..",
        "a/../../b",
        "1#frag",
        "x y",
    ] {
        for ((method, path, body), allowed) in operations(hostile).into_iter().zip(&benign) {
            sim.clear_log();
            let a = h.call(backend, method.clone(), &path, body).await;
            assert!(a.status.is_client_error(), "{method} {path}: {}", a.text);
            let log = sim.requests();
            for r in &log {
                for segment in r.path.split('/') {
                    let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
                    assert!(
                        decoded != ".." && decoded != ".",
                        "dot segment reached the vendor: {}",
                        r.path
                    );
                }
                assert!(
                    !r.query.clone().unwrap_or_default().contains("a=b"),
                    "query changed: {:?}",
                    r.query
                );
                assert!(!r.path.contains('#'), "{}", r.path);
            }
            for shape in shapes(log) {
                assert!(allowed.contains(&shape), "{method} {path}: upstream request {shape:?} has another shape than {allowed:?}");
            }
        }
    }
}

async fn vendor_garbage(backend: &str) {
    let h = start(&[backend]).await;
    let sim = h.sim(backend);
    sim.set_fault(Some(teamgate_sim::Fault::MalformedJson));
    let a = h.get(backend, "/v1/teams").await;
    assert_eq!(a.status, 502, "{}", a.text);
    assert_eq!(a.code(), "upstream_error");
    let a = h
        .post(backend, "/v1/teams", json!({ "name": "Garbage" }))
        .await;
    assert_eq!(a.status, 502, "{}", a.text);
    sim.set_fault(Some(teamgate_sim::Fault::Status(503)));
    let a = h.get(backend, "/v1/teams").await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (503, "upstream_unavailable"),
        "{}",
        a.text
    );
    sim.set_fault(Some(teamgate_sim::Fault::RateLimited {
        retry_after_secs: 7,
    }));
    let a = h.get(backend, "/v1/teams").await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (429, "rate_limited"),
        "{}",
        a.text
    );
    sim.set_fault(None);
    let a = h.get(backend, "/v1/teams").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(!a.text.contains(support::CREDENTIAL));
}

async fn missing_resources(backend: &str) {
    let h = start(&[backend]).await;
    let id = h.create_team(backend, "Holder").await;
    let bob = h.user_id(backend, "bob@example.com").await;
    // A user who is not a member; a team that does not exist; an email nobody has.
    let a = h
        .delete(
            backend,
            &format!("/v1/teams/{}/members/{}", urlencode(&id), urlencode(&bob)),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (404, "not_found"),
        "{}",
        a.text
    );
    h.delete(backend, &format!("/v1/teams/{}", urlencode(&id)))
        .await;
    for path in [
        format!("/v1/teams/{}", urlencode(&id)),
        format!("/v1/teams/{}/members", urlencode(&id)),
    ] {
        let a = h.get(backend, &path).await;
        assert_eq!(
            (a.status.as_u16(), a.code()),
            (404, "not_found"),
            "{path}: {}",
            a.text
        );
    }
    let a = h
        .delete(backend, &format!("/v1/teams/{}", urlencode(&id)))
        .await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (404, "not_found"),
        "{}",
        a.text
    );
    let a = h
        .post(
            backend,
            &format!("/v1/teams/{}/members", urlencode(&id)),
            json!({ "user_id": bob }),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (404, "not_found"),
        "{}",
        a.text
    );
    let live = h.create_team(backend, "Live").await;
    let a = h
        .post(
            backend,
            &format!("/v1/teams/{}/members", urlencode(&live)),
            json!({ "email": "nobody@example.com" }),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (400, "invalid_request"),
        "{}",
        a.text
    );
}

async fn users(backend: &str) {
    let h = start(&[backend]).await;
    let a = h.get(backend, "/v1/users?limit=2").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["users"].as_array().unwrap().len(), 2);
    assert!(a.body["next_cursor"].is_string(), "{}", a.text);
    let mut emails = Vec::new();
    let mut path = "/v1/users?limit=2".to_string();
    for _ in 0..10 {
        let a = h.get(backend, &path).await;
        emails.extend(
            a.body["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["email"].as_str().unwrap().to_string()),
        );
        match a.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/users?cursor={c}"),
            None => break,
        }
    }
    for email in ["ada@example.com", "bob@example.com", "frank@example.com"] {
        assert!(emails.contains(&email.to_string()), "{email} in {emails:?}");
    }
    let one = h.get(backend, "/v1/users?email=Eve@Example.com").await;
    let users: &Vec<Value> = one.body["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{}", one.text);
    assert_eq!(users[0]["email"], "eve@example.com");
    assert!(users[0]["id"].is_string());
}

/// Percent-encodes a path segment as teamgate does (RFC 3986 unreserved characters stay).
fn urlencode(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

macro_rules! conformance {
    ($($backend:ident),*) => {$(
        mod $backend {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn lifecycle() { super::lifecycle(stringify!($backend)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn taken_name() { super::taken_name(stringify!($backend)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn member_emails() { super::member_emails(stringify!($backend)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn invalid_names() { super::invalid_names(stringify!($backend)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bad_input() { super::bad_input(stringify!($backend)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn hostile_ids() { super::hostile_ids(stringify!($backend)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn vendor_garbage() { super::vendor_garbage(stringify!($backend)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn missing_resources() { super::missing_resources(stringify!($backend)).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn users() { super::users(stringify!($backend)).await }
        }
    )*};
}

conformance!(grafana, flashcat, jsonapi, opsgenie, squadcast, pagerduty);
