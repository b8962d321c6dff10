//! The edge of the proxy: backend selection, request ids, metrics, backends description,
//! unsupported operations, HTTP/2 (h2c).

mod support;

use http::{Method, Request};
use http_body_util::Full;
use serde_json::json;
use support::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_backend_is_invalid_request_listing_the_configured_ones() {
    let h = start(&["grafana"]).await;
    let a = h.get("nope", "/v1/teams").await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.code(), "invalid_request");
    assert_eq!(a.body["backends"], json!(["grafana"]));
    assert!(a.body["detail"].as_str().unwrap().contains("grafana"));
    assert_eq!(h.sim("grafana").request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_or_made() {
    let h = start(&["grafana"]).await;
    let request = Request::builder()
        .uri(format!("{}/v1/teams/999", h.base))
        .header("x-request-id", "abc-123")
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
    let a = h.send(request).await;
    assert_eq!(a.headers["x-request-id"], "abc-123");
    assert_eq!(a.body["request_id"], "abc-123");
    let a = h.get("grafana", "/v1/teams/999").await;
    let made = a.headers["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(made.len(), 32, "{made}");
    assert_eq!(a.body["request_id"], made.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_each_upstream_call() {
    let h = start(&["grafana"]).await;
    let sim = h.sim("grafana");
    sim.clear_log();
    h.create_team("grafana", "Counted").await; // POST + follow-up GET
    h.get("grafana", "/v1/teams/abc").await; // refused before any call
    let calls = sim.request_count() as u64;
    assert_eq!(calls, 2);
    assert_eq!(h.metrics.upstream_count("grafana", "create_team"), 2);
    assert_eq!(h.metrics.upstream_count("grafana", "get_team"), 0);
    let a = h.get("grafana", "/metrics").await;
    assert_eq!(a.status, 200);
    for line in [
        "teamgate_requests_total{backend=\"grafana\",operation=\"create_team\",status=\"201\"} 1",
        "teamgate_requests_total{backend=\"grafana\",operation=\"get_team\",status=\"404\"} 1",
        "teamgate_upstream_requests_total{backend=\"grafana\",operation=\"create_team\",outcome=\"ok\"} 2",
        "teamgate_request_duration_seconds_count{backend=\"grafana\",operation=\"create_team\"} 1",
        // No log writer in this process: nothing dropped, but the counter is there to scrape.
        "teamgate_log_lines_dropped_total 0",
    ] {
        assert!(a.text.contains(line), "missing {line} in\n{}", a.text);
    }
    assert!(!a.text.contains(support::CREDENTIAL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_are_described_from_their_mappings() {
    let h = start(&["grafana"]).await;
    let a = h.get("grafana", "/v1/backends").await;
    assert_eq!(a.status, 200, "{}", a.text);
    let g = &a.body["backends"][0];
    assert_eq!(g["name"], "grafana");
    assert_eq!(g["vendor"], "grafana");
    assert_eq!(g["default"], true);
    assert!(g["operations"]
        .as_array()
        .unwrap()
        .contains(&json!("create_team")));
    assert_eq!(
        g["team_fields"],
        json!([
            "id",
            "name",
            "email",
            "member_count",
            "created_at",
            "updated_at"
        ])
    );
    assert_eq!(g["member_roles"], json!(["admin", "member"]));
    assert_eq!(g["limits"]["name_max"], 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods() {
    let h = start(&["grafana"]).await;
    let a = h.get("grafana", "/v2/teams").await;
    assert_eq!((a.status.as_u16(), a.code()), (404, "not_found"));
    let a = h
        .call("grafana", Method::PUT, "/v1/teams/1", Some(json!({})))
        .await;
    assert_eq!((a.status.as_u16(), a.code()), (400, "invalid_request"));
    assert_eq!(a.headers["content-type"], "application/problem+json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_is_served() {
    let h = start(&["grafana"]).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<bytes::Bytes>>();
    let response = client
        .request(
            Request::builder()
                .uri(format!("{}/v1/users?limit=1", h.base))
                .body(Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await
        .expect("h2c answer");
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_timeout_is_upstream_timeout_with_its_id() {
    let h = support::start_configured(
        &[("grafana", "grafana", "mappings/grafana.toml", "")],
        "[server]\nrequest_timeout_ms = 200",
    )
    .await;
    h.sim("grafana")
        .set_fault(Some(teamgate_sim::Fault::Latency(
            std::time::Duration::from_millis(1500),
        )));
    let a = h.get("grafana", "/v1/teams").await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (504, "upstream_timeout"),
        "{}",
        a.text
    );
    let id = a.headers["x-request-id"].to_str().unwrap();
    assert_eq!(a.body["request_id"], id);
    assert!(!id.is_empty());
}

/// The caller's W3C trace context reaches the vendor: same trace id, a new span id, the
/// `tracestate` untouched. Without one, each request still sends a valid `traceparent`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_reaches_the_vendor_with_the_callers_trace_id() {
    let h = support::start(&["grafana"]).await;
    let sim = h.sim("grafana");
    sim.clear_log();
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let a = h
        .get_with(
            "grafana",
            "/v1/teams?limit=5",
            &[("traceparent", parent), ("tracestate", "vendor=abc")],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let header = |entry: &teamgate_sim::LoggedRequest, name: &str| {
        entry
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let log = sim.requests();
    assert!(!log.is_empty());
    for entry in &log {
        let sent = header(entry, "traceparent").expect("traceparent sent");
        let parts: Vec<&str> = sent.split('-').collect();
        assert_eq!(parts.len(), 4, "{sent}");
        assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "{sent}");
        assert_ne!(parts[2], "00f067aa0ba902b7", "a span of its own: {sent}");
        assert_eq!(parts[3], "01");
        assert_eq!(header(entry, "tracestate").as_deref(), Some("vendor=abc"));
    }
    sim.clear_log();
    let a = h.get_with("grafana", "/v1/teams?limit=6", &[]).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let sent = header(&sim.requests()[0], "traceparent").expect("a new root is sent");
    assert!(
        teamgate::call::TraceContext::parse(&sent, None).is_some(),
        "{sent}"
    );
}

/// `[[callers]]`: API keys stored as SHA-256, each given backends and read/write. No key or an
/// unknown one is 401, a key without the backend or the access is 403; probes stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_callers_need_their_key_and_keep_to_their_grants() {
    let hex = |key: &str| {
        teamgate::callers::sha256(key)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let top = format!(
        "[[callers]]\nname = \"dashboard\"\nkey_sha256 = \"{}\"\nbackends = [\"grafana\"]\naccess = [\"read\"]\n\n[[callers]]\nname = \"provisioner\"\nkey_sha256 = \"{}\"\n",
        hex("dashboard-key-0123456789"),
        hex("provisioner-key-9876543210")
    );
    let h = support::start_configured(
        &[
            ("grafana", "grafana", "mappings/grafana.toml", ""),
            ("flashcat", "flashcat", "mappings/flashcat.toml", ""),
        ],
        &top,
    )
    .await;
    let bearer = |key: &str| format!("Bearer {key}");
    let none = h.get_with("grafana", "/v1/teams", &[]).await;
    assert_eq!(
        (none.status.as_u16(), none.code()),
        (401, "unauthenticated")
    );
    let wrong = h
        .get_with(
            "grafana",
            "/v1/teams",
            &[("authorization", &bearer("guess"))],
        )
        .await;
    assert_eq!(wrong.status, 401);
    let read = h
        .get_with(
            "grafana",
            "/v1/teams",
            &[("authorization", &bearer("dashboard-key-0123456789"))],
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.text);
    let elsewhere = h
        .get_with(
            "flashcat",
            "/v1/teams",
            &[("authorization", &bearer("dashboard-key-0123456789"))],
        )
        .await;
    assert_eq!(
        (elsewhere.status.as_u16(), elsewhere.code()),
        (403, "forbidden")
    );
    let write = h
        .send(
            http::Request::post(format!("{}/v1/teams", h.base))
                .header("teamgate-backend", "grafana")
                .header("content-type", "application/json")
                .header("authorization", bearer("dashboard-key-0123456789"))
                .body(http_body_util::Full::new(bytes::Bytes::from(
                    r#"{"name":"Nope"}"#,
                )))
                .unwrap(),
        )
        .await;
    assert_eq!((write.status.as_u16(), write.code()), (403, "forbidden"));
    let provisioned = h
        .send(
            http::Request::post(format!("{}/v1/teams", h.base))
                .header("teamgate-backend", "flashcat")
                .header("content-type", "application/json")
                .header("authorization", bearer("provisioner-key-9876543210"))
                .body(http_body_util::Full::new(bytes::Bytes::from(
                    r#"{"name":"Allowed"}"#,
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(provisioned.status, 201, "{}", provisioned.text);
    assert_eq!(h.get_with("grafana", "/healthz", &[]).await.status, 200);
    assert_eq!(h.get_with("grafana", "/metrics", &[]).await.status, 200);
    assert_eq!(
        h.sim("grafana")
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        0,
        "a refused caller reaches no vendor"
    );
}

/// A vendor answer past `max_answer_bytes` is refused (502), not buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_answer_past_its_cap_is_refused() {
    let h = support::start_configured(
        &[(
            "grafana",
            "grafana",
            "mappings/grafana.toml",
            "max_answer_bytes = 2048\ncache_ttl_ms = 1",
        )],
        "",
    )
    .await;
    for i in 0..30 {
        h.create_team("grafana", &format!("A team with a long enough name {i:02}"))
            .await;
    }
    let a = h.get("grafana", "/v1/teams?limit=100").await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (502, "upstream_error"),
        "{}",
        a.text
    );
    assert!(a.text.contains("larger than allowed"), "{}", a.text);
    assert_eq!(h.get("grafana", "/v1/teams?limit=2").await.status, 200);
}

/// A body naming a member twice is refused, not read as its last value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_with_a_duplicate_member_is_refused() {
    let h = support::start(&["grafana"]).await;
    let a = h
        .send(
            http::Request::post(format!("{}/v1/teams", h.base))
                .header("teamgate-backend", "grafana")
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(
                    r#"{"name":"Harmless","name":"Other"}"#,
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (400, "invalid_request"),
        "{}",
        a.text
    );
    assert!(a.text.contains("appears twice"), "{}", a.text);
    assert_eq!(h.sim("grafana").request_count(), 0);
}
