//! Writes that are safe to retry (`Idempotency-Key`): a repeated create answers the first
//! result without a second vendor write; the key reused for another request is a conflict;
//! and a create whose first attempt timed out after the vendor made the team answers that
//! team on retry, instead of making a second one.

mod support;

use std::time::Duration;

use http::{Method, Request};
use serde_json::{json, Value};

fn create(
    h: &support::Harness,
    backend: &str,
    key: &str,
    body: Value,
) -> Request<http_body_util::Full<bytes::Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri(format!("{}/v1/teams", h.base))
        .header("teamgate-backend", backend)
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_create_answers_the_first_result_without_a_second_write() {
    let h = support::start(&["grafana"]).await;
    let sim = h.sim("grafana");
    let first = h
        .send(create(&h, "grafana", "key-1", json!({"name": "Once"})))
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let vendor_calls = sim.request_count();
    for _ in 0..3 {
        let again = h
            .send(create(&h, "grafana", "key-1", json!({"name": "Once"})))
            .await;
        assert_eq!(again.status, 201, "{}", again.text);
        assert_eq!(again.body["id"], first.body["id"]);
    }
    assert_eq!(sim.request_count(), vendor_calls, "no second vendor write");
    let other = h
        .send(create(&h, "grafana", "key-1", json!({"name": "Other"})))
        .await;
    assert_eq!(
        (other.status.as_u16(), other.code()),
        (409, "conflict"),
        "{}",
        other.text
    );
    let bad = h
        .send(create(&h, "grafana", "", json!({"name": "Empty key"})))
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
}

/// The vendor commits a create but its answer never reaches teamgate in time: the first
/// attempt answers 504 (outcome unknown). The simulator drops a request whose client went
/// away, so the late commit is played by writing the team to the simulator directly, as
/// the vendor would have done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_timed_out_after_the_vendor_made_it_is_not_made_twice() {
    let h = support::start_configured(
        &[("grafana", "grafana", "mappings/grafana.toml", "")],
        "[server]\nrequest_timeout_ms = 300",
    )
    .await;
    let sim = h.sim("grafana");
    sim.set_fault(Some(teamgate_sim::Fault::Latency(Duration::from_millis(
        700,
    ))));
    let body = json!({ "name": "Made Once" });
    let first = h.send(create(&h, "grafana", "key-u", body.clone())).await;
    assert_eq!(first.status, 504, "{}", first.text);
    sim.set_fault(None);
    let mut headers = http::HeaderMap::new();
    let bearer = format!("Bearer {}", support::CREDENTIAL);
    headers.insert("authorization", bearer.parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    let committed = sim.direct(&teamgate_sim::SimRequest::new(
        Method::POST,
        "/api/teams",
        headers,
        bytes::Bytes::from(body.to_string()),
    ));
    assert_eq!(committed.status, 200, "the vendor's late commit");
    for attempt in 0..3 {
        let retry = h.send(create(&h, "grafana", "key-u", body.clone())).await;
        assert_eq!(retry.status, 201, "retry {attempt}: {}", retry.text);
        assert_eq!(retry.body["name"], "Made Once");
        assert!(retry.headers.contains_key("location"));
    }
    // Without the key, the same retry meets the vendor's uniqueness rule instead.
    let unkeyed = h.post("grafana", "/v1/teams", body).await;
    assert_eq!(unkeyed.code(), "name_taken", "{}", unkeyed.text);
    let listed = h.get("grafana", "/v1/teams?name=Made%20Once").await;
    let teams = listed.body["teams"].as_array().unwrap();
    assert_eq!(teams.len(), 1, "one team: {}", listed.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_make_one_write() {
    let h = support::start(&["grafana"]).await;
    let sim = h.sim("grafana");
    sim.set_fault(Some(teamgate_sim::Fault::Latency(Duration::from_millis(
        200,
    ))));
    sim.clear_log();
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let request = create(&h, "grafana", "key-c", json!({"name": "Together"}));
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        tasks.push(tokio::spawn(async move {
            let response = client.request(request).await.unwrap();
            response.status().as_u16()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 201);
    }
    let posts = sim.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1, "one vendor write for five concurrent requests");
}
