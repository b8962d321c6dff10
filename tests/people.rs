//! Members' details filled in by a mapping's `[people]` lookup: one lookup per answer,
//! however many members and teams it holds, and a member the lookup does not know is kept
//! with `email: null` in an answer marked partial.

mod support;

use serde_json::json;
use support::start;

/// Backends whose mappings declare a people lookup, with the vendor path it calls.
const LOOKUPS: [(&str, &str); 3] = [
    ("flashcat", "/person/infos"),
    ("squadcast", "/v3/users"),
    ("jsonapi", "/api/v1/users"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lookup_per_answer() {
    for (backend, path) in LOOKUPS {
        let h = start(&[backend]).await;
        let mut ids = Vec::new();
        for name in ["Alpha", "Bravo", "Charlie"] {
            let id = h.create_team(backend, name).await;
            for email in ["bob@example.com", "carol@example.com", "eve@example.com"] {
                let a = h
                    .post(
                        backend,
                        &format!("/v1/teams/{id}/members"),
                        json!({ "email": email }),
                    )
                    .await;
                assert_eq!(a.status, 201, "{backend}: {}", a.text);
            }
            ids.push(id);
        }
        let lookups = |h: &support::Harness| {
            h.sim(backend)
                .requests()
                .iter()
                .filter(|r| r.path == path)
                .count()
        };
        h.sim(backend).clear_log();
        let no_cache = [("cache-control", "no-cache")];
        let a = h
            .get_with(backend, &format!("/v1/teams/{}/members", ids[0]), &no_cache)
            .await;
        assert_eq!(a.status, 200, "{backend}: {}", a.text);
        assert!(
            a.body["members"].as_array().unwrap().len() >= 3,
            "{}",
            a.text
        );
        assert_eq!(lookups(&h), 1, "{backend}: list_members");
        h.sim(backend).clear_log();
        let a = h.get_with(backend, "/v1/teams?limit=10", &no_cache).await;
        assert_eq!(a.status, 200, "{backend}: {}", a.text);
        let expected = usize::from(a.body["teams"][0].get("members").is_some());
        assert_eq!(lookups(&h), expected, "{backend}: list_teams: {}", a.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_the_lookup_does_not_know_is_kept_and_the_answer_is_partial() {
    let h = start(&["squadcast"]).await;
    let id = h.create_team("squadcast", "Leavers").await;
    let bob = h.user_id("squadcast", "bob@example.com").await;
    for email in ["bob@example.com", "carol@example.com"] {
        h.post(
            "squadcast",
            &format!("/v1/teams/{id}/members"),
            json!({ "email": email }),
        )
        .await;
    }
    assert!(h.sim("squadcast").remove_person("bob@example.com"));
    let a = h
        .get_with(
            "squadcast",
            &format!("/v1/teams/{id}/members"),
            &[("cache-control", "no-cache")],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(
        a.headers.get("teamgate-partial").is_some(),
        "{:?}",
        a.headers
    );
    let members = a.body["members"].as_array().unwrap();
    let bob_there = members
        .iter()
        .find(|m| m["user_id"] == bob.as_str())
        .unwrap();
    assert_eq!(bob_there["email"], json!(null), "{}", a.text);
    let carol = members.iter().find(|m| m["email"] == "carol@example.com");
    assert!(carol.is_some(), "{}", a.text);
    // Changes still work on ids.
    let removed = h
        .delete("squadcast", &format!("/v1/teams/{id}/members/{bob}"))
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
}
