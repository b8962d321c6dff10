//! `GET /openapi.json`: the served document is `teamgate::openapi::document()`, an OpenAPI 3.1
//! document that names every canonical error code as a problem type; and the checker that
//! `tests/support` runs on every answer of the test suites really refuses answers the document
//! does not describe.
//!
//! With `TEAMGATE_OPENAPI_OUT` set, `the_served_document_is_the_library_one` also writes the
//! document there, for the third-party validator `.ci/run` runs on it.

mod support;

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use support::{openapi, start};
use teamgate::error::ErrorCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_the_library_one_and_never_cached() {
    let h = start(&["grafana"]).await;
    for _ in 0..2 {
        let a = h.get("grafana", "/openapi.json").await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.headers["content-type"], "application/json");
        assert!(
            a.headers.get("cache-status").is_none(),
            "the document is not a cached read: {:?}",
            a.headers
        );
        assert!(a.headers.get("etag").is_none());
        let parsed: Value = serde_json::from_str(&a.text).expect("the document is JSON");
        assert_eq!(&parsed, teamgate::openapi::document());
    }
    if let Some(out) = std::env::var_os("TEAMGATE_OPENAPI_OUT") {
        let out = support::repo_root().join(out);
        let text = serde_json::to_string_pretty(teamgate::openapi::document()).unwrap();
        std::fs::write(&out, text + "\n")
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
    }
}

#[test]
fn the_document_is_openapi_3_1_with_every_error_code_as_a_problem_type() {
    let doc = teamgate::openapi::document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let schemas = &doc["components"]["schemas"];
    let responses = &doc["components"]["responses"];
    let codes = &schemas["Problem"]["properties"]["code"]["enum"];
    for code in ErrorCode::ALL {
        let name = code.as_str();
        assert!(
            codes.as_array().unwrap().contains(&json!(name)),
            "{name} in the code enum"
        );
        let fixed = &schemas[format!("Problem_{name}")]["allOf"][1]["properties"];
        assert_eq!(fixed["type"]["const"], format!("/problems/{name}"));
        assert_eq!(fixed["code"]["const"], name);
        assert_eq!(fixed["status"]["const"], code.status());
        assert_eq!(fixed["title"]["const"], code.title());
        let response = &responses[format!("Problem{}", code.status())];
        assert!(
            response["content"]["application/problem+json"]["schema"]
                .to_string()
                .contains(&format!("\"#/components/schemas/Problem_{name}\"")),
            "{name} is a problem of its status"
        );
    }
    // Every canonical operation lists every problem status (a mapping's error table may turn
    // any vendor error into any code).
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap();
            if teamgate::canonical::Operation::parse(id).is_none() {
                continue;
            }
            for code in ErrorCode::ALL {
                let listed = &op["responses"][code.status().to_string()];
                assert!(listed.is_object(), "{id} lists {}", code.status());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_and_cached_reads_fit_the_document() {
    // Each answer is checked by the harness; these are the routes the conformance suite
    // does not visit.
    let h = start(&["grafana"]).await;
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/backends",
        "/nowhere",
    ] {
        let a = h.get("grafana", path).await;
        assert!(a.status == 200 || path == "/nowhere", "{path}: {}", a.text);
    }
    let a = h.call("grafana", Method::PUT, "/v1/teams", None).await;
    assert_eq!(a.status, 400, "{}", a.text);
    let id = h.create_team("grafana", "Cached").await;
    let path = format!("/v1/teams/{id}");
    h.get("grafana", &path).await;
    let hit = h.get("grafana", &path).await;
    assert_eq!(hit.headers["cache-status"], "teamgate; hit");
    let tag = hit.headers["etag"].to_str().unwrap().to_string();
    let not_modified = h
        .get_with("grafana", &path, &[("if-none-match", &tag)])
        .await;
    assert_eq!(not_modified.status, 304);
    let bypass = h
        .get_with("grafana", &path, &[("cache-control", "no-cache")])
        .await;
    assert_eq!(bypass.headers["cache-status"], "teamgate; fwd=bypass");
}

/// The checker refuses what the document does not say: it is what makes every suite a check
/// of the document.
#[test]
fn the_checker_refuses_answers_the_document_does_not_describe() {
    let json_headers = |content_type: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static(content_type));
        headers.insert("x-request-id", HeaderValue::from_static("r1"));
        headers
    };
    let team = json!({
        "id": "1", "name": "A", "description": null, "email": null, "parent_id": null,
        "member_count": 0, "created_at": null, "updated_at": null,
        "backend": "grafana",
    });
    let fits = |method: Method, path: &str, status: u16, headers: &HeaderMap, body: &Value| {
        let bytes = match body {
            Value::Null => Vec::new(),
            other => other.to_string().into_bytes(),
        };
        let status = StatusCode::from_u16(status).unwrap();
        let (path, headers) = (path.to_string(), headers.clone());
        std::panic::catch_unwind(move || {
            openapi::check(&method, &path, status, &headers, &bytes);
        })
        .is_ok()
    };
    let ok = json_headers("application/json");
    assert!(fits(Method::GET, "/v1/teams/1", 200, &ok, &team));
    let mut with_vendor = team.clone();
    with_vendor["vendor"] = json!({ "uid": "a1" });
    assert!(fits(Method::GET, "/v1/teams/1", 200, &ok, &with_vendor));
    with_vendor["vendor"] = json!("a1");
    assert!(!fits(Method::GET, "/v1/teams/1", 200, &ok, &with_vendor));

    let mut integer_id = team.clone();
    integer_id["id"] = json!(1);
    assert!(!fits(Method::GET, "/v1/teams/1", 200, &ok, &integer_id));
    let mut unknown_field = team.clone();
    unknown_field["colour"] = json!("red");
    assert!(!fits(Method::GET, "/v1/teams/1", 200, &ok, &unknown_field));
    let mut missing = team.clone();
    missing.as_object_mut().unwrap().remove("created_at");
    assert!(!fits(Method::GET, "/v1/teams/1", 200, &ok, &missing));
    assert!(
        !fits(Method::GET, "/v1/teams/1", 418, &ok, &team),
        "undocumented status"
    );
    assert!(
        !fits(Method::GET, "/v1/teams/1", 201, &ok, &team),
        "201 is not get_team's"
    );
    assert!(
        !fits(Method::POST, "/v1/teams", 201, &ok, &team),
        "201 without Location"
    );
    let mut no_id = ok.clone();
    no_id.remove("x-request-id");
    assert!(!fits(Method::GET, "/v1/teams/1", 200, &no_id, &team));
    assert!(
        !fits(Method::DELETE, "/v1/teams/1", 204, &ok, &team),
        "a body on 204"
    );

    let problem = |code: &str, status: u16| {
        json!({
            "type": format!("/problems/{code}"), "title": ErrorCode::parse(code).unwrap().title(),
            "status": status, "code": code, "detail": "d", "backend": null, "upstream": null,
            "request_id": "r1",
        })
    };
    let problem_headers = json_headers("application/problem+json");
    let conflict = problem("conflict", 409);
    assert!(fits(
        Method::POST,
        "/v1/teams",
        409,
        &problem_headers,
        &conflict
    ));
    assert!(
        !fits(Method::POST, "/v1/teams", 409, &ok, &conflict),
        "problem as application/json"
    );
    assert!(
        !fits(
            Method::POST,
            "/v1/teams",
            409,
            &problem_headers,
            &problem("not_found", 409)
        ),
        "a code under another status"
    );
    let rate_limited = problem("rate_limited", 429);
    assert!(
        !fits(
            Method::GET,
            "/v1/teams",
            429,
            &problem_headers,
            &rate_limited
        ),
        "429 without Retry-After"
    );
    let mut with_retry = problem_headers.clone();
    with_retry.insert("retry-after", HeaderValue::from_static("7"));
    assert!(fits(
        Method::GET,
        "/v1/teams",
        429,
        &with_retry,
        &rate_limited
    ));
    assert!(fits(
        Method::GET,
        "/nowhere",
        404,
        &problem_headers,
        &problem("not_found", 404)
    ));
    assert!(
        !fits(Method::GET, "/nowhere", 200, &ok, &team),
        "a 200 outside the API"
    );
}
