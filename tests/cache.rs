//! The read cache through the whole proxy, against the simulators: hits that make no
//! upstream call, read-your-writes on every backend, per-credential partitions, 304s, bypass,
//! single flight and stale-if-error. (Time-dependent behaviour is in the stage tests, on
//! tokio's paused clock: `src/cache/tests.rs`.)

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::{start, start_configured};
use teamgate_sim::Fault;

fn cache_status(a: &support::Answer) -> &str {
    a.headers
        .get("cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hit_after_a_miss_makes_no_upstream_call() {
    let h = start(&["grafana"]).await;
    let id = h.create_team("grafana", "Cached").await;
    let sim = h.sim("grafana");
    let path = format!("/v1/teams/{id}");
    let first = h.get("grafana", &path).await;
    // The create's follow-up read does not fill the cache: this is a miss.
    assert_eq!(cache_status(&first), "teamgate; fwd=miss");
    sim.clear_log();
    let second = h.get("grafana", &path).await;
    assert_eq!(second.status, 200);
    assert_eq!(cache_status(&second), "teamgate; hit");
    assert_eq!(second.body, first.body);
    assert_eq!(sim.request_count(), 0, "a hit makes no upstream call");
    assert!(second.headers.contains_key("age"));
    assert_eq!(second.headers["etag"], first.headers["etag"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_none_match_answers_304_without_an_upstream_call() {
    let h = start(&["flashcat"]).await;
    let id = h.create_team("flashcat", "Tagged").await;
    let path = format!("/v1/teams/{id}");
    let first = h.get("flashcat", &path).await;
    let tag = first.headers["etag"].to_str().unwrap().to_string();
    h.sim("flashcat").clear_log();
    let again = h
        .get_with("flashcat", &path, &[("if-none-match", &tag)])
        .await;
    assert_eq!(again.status, 304);
    assert!(again.text.is_empty());
    assert_eq!(again.headers["etag"].to_str().unwrap(), tag);
    assert_eq!(h.sim("flashcat").request_count(), 0);
    let other = h
        .get_with("flashcat", &path, &[("if-none-match", "\"nope\"")])
        .await;
    assert_eq!(other.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cache_bypasses_and_refreshes() {
    let h = start(&["jsonapi"]).await;
    h.get("jsonapi", "/v1/teams").await;
    h.sim("jsonapi").clear_log();
    for directive in ["no-cache", "max-age=0"] {
        let a = h
            .get_with("jsonapi", "/v1/teams", &[("cache-control", directive)])
            .await;
        assert_eq!(a.status, 200);
        assert_eq!(cache_status(&a), "teamgate; fwd=bypass");
    }
    assert_eq!(h.sim("jsonapi").request_count(), 2);
    assert_eq!(
        cache_status(&h.get("jsonapi", "/v1/teams").await),
        "teamgate; hit"
    );
}

/// Every write kind, on every backend: the next read sees it (read-your-writes), and reads
/// the write did not touch stay cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_invalidate_what_they_make_stale_on_every_backend() {
    let backends = ["grafana", "flashcat", "jsonapi", "opsgenie", "squadcast"];
    let h = start(&backends).await;
    for b in backends {
        let a = h.create_team(b, "Alpha").await;
        let other = h.create_team(b, "Other").await;
        let bob = h.user_id(b, "bob@example.com").await;
        let team = format!("/v1/teams/{a}");
        let members = format!("{team}/members");
        // Warm the reads.
        for path in [
            &team,
            &members,
            &"/v1/teams".to_string(),
            &format!("/v1/teams/{other}"),
        ] {
            h.get(b, path).await;
            assert_eq!(
                cache_status(&h.get(b, path).await),
                "teamgate; hit",
                "{b} {path}"
            );
        }
        // A team change.
        let renamed = h.patch(b, &team, json!({ "name": "Alpha 2" })).await;
        assert_eq!(renamed.status, 200, "{b}: {}", renamed.text);
        let read = h.get(b, &team).await;
        assert_eq!(read.body["name"], "Alpha 2", "{b}: read-your-writes");
        let list = h.get(b, "/v1/teams").await;
        assert!(list.text.contains("Alpha 2"), "{b}: lists see the rename");
        assert_eq!(
            cache_status(&h.get(b, &format!("/v1/teams/{other}")).await),
            "teamgate; hit",
            "{b}: another team stays cached"
        );
        // A member change.
        h.get(b, &members).await;
        let added = h.post(b, &members, json!({ "user_id": bob })).await;
        assert_eq!(added.status, 201, "{b}: {}", added.text);
        let listed = h.get(b, &members).await;
        assert!(
            listed.body["members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["user_id"] == bob.as_str()),
            "{b}: {}",
            listed.text
        );
        let removed = h.delete(b, &format!("{members}/{bob}")).await;
        assert_eq!(removed.status, 204, "{b}: {}", removed.text);
        let listed = h.get(b, &members).await;
        assert!(
            !listed.body["members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["user_id"] == bob.as_str()),
            "{b}: {}",
            listed.text
        );
        // A create shows in the lists; a delete makes the team 404.
        h.create_team(b, "Fresh").await;
        assert!(h.get(b, "/v1/teams").await.text.contains("Fresh"), "{b}");
        h.get(b, &team).await;
        assert_eq!(h.delete(b, &team).await.status, 204);
        assert_eq!(
            h.get(b, &team).await.status,
            404,
            "{b}: a deleted team is not served from the cache"
        );
        // Users are not touched by team writes.
        h.get(b, "/v1/users").await;
        h.create_team(b, "Another").await;
        assert_eq!(
            cache_status(&h.get(b, "/v1/users").await),
            "teamgate; hit",
            "{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_credentials_never_share_an_entry() {
    let h = start_configured(
        &[(
            "grafana",
            "grafana",
            "mappings/grafana.toml",
            "forward_credential = true",
        )],
        "",
    )
    .await;
    let good = support::CREDENTIAL;
    let first = h
        .get_with(
            "grafana",
            "/v1/teams",
            &[("teamgate-upstream-credential", good)],
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let hit = h
        .get_with(
            "grafana",
            "/v1/teams",
            &[("teamgate-upstream-credential", good)],
        )
        .await;
    assert_eq!(cache_status(&hit), "teamgate; hit");
    // Another caller's key reaches the vendor, which refuses it: the caller's 401.
    let other = h
        .get_with(
            "grafana",
            "/v1/teams",
            &[("teamgate-upstream-credential", "someone-else")],
        )
        .await;
    assert_eq!(
        (other.status.as_u16(), other.code()),
        (401, "unauthenticated"),
        "{}",
        other.text
    );
    assert!(!other.text.contains(good));
    let none = h.get("grafana", "/v1/teams").await;
    assert_eq!(
        (none.status.as_u16(), none.code()),
        (401, "unauthenticated"),
        "{}",
        none.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_on_one_key_make_one_upstream_call() {
    let h = Arc::new(start(&["opsgenie"]).await);
    let id = h.create_team("opsgenie", "Hot").await;
    let sim = h.sim("opsgenie");
    sim.set_fault(Some(Fault::Latency(Duration::from_millis(300))));
    sim.clear_log();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let h = h.clone();
        let path = format!("/v1/teams/{id}");
        tasks.push(tokio::spawn(async move {
            h.get("opsgenie", &path).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    sim.set_fault(None);
    assert_eq!(
        sim.request_count(),
        1,
        "one upstream call for 100 concurrent misses"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_entry_stands_in_while_the_vendor_fails() {
    let h = start_configured(
        &[(
            "squadcast",
            "squadcast",
            "mappings/squadcast.toml",
            "cache_ttl_ms = 1\nstale_if_error_ms = 600000",
        )],
        "",
    )
    .await;
    let id = h.create_team("squadcast", "Steady").await;
    let path = format!("/v1/teams/{id}");
    let good = h.get("squadcast", &path).await;
    assert_eq!(good.status, 200);
    tokio::time::sleep(Duration::from_millis(20)).await; // past the 1 ms TTL
    h.sim("squadcast").set_fault(Some(Fault::Status(503)));
    let stale = h.get("squadcast", &path).await;
    assert_eq!(stale.status, 200, "{}", stale.text);
    assert_eq!(cache_status(&stale), "teamgate; hit; stale");
    assert_eq!(stale.body, good.body);
    // Once the vendor answers again, the entry is refreshed.
    h.sim("squadcast").set_fault(None);
    let fresh = h.get("squadcast", &path).await;
    assert_eq!(cache_status(&fresh), "teamgate; fwd=miss");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_metrics_are_exposed() {
    let h = start(&["grafana"]).await;
    h.get("grafana", "/v1/users").await;
    h.get("grafana", "/v1/users").await;
    let m = h.get("grafana", "/metrics").await;
    for line in [
        "teamgate_cache_requests_total{backend=\"grafana\",operation=\"list_users\",result=\"miss\"} 1",
        "teamgate_cache_requests_total{backend=\"grafana\",operation=\"list_users\",result=\"hit\"} 1",
        "teamgate_cache_bytes",
    ] {
        assert!(m.text.contains(line), "missing {line}:\n{}", m.text);
    }
}
