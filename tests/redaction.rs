//! Vendor errors that echo the request — common behind proxies and WAFs — never carry the
//! credential to the caller: on every backend, a vendor answering 500 with the request line
//! and headers quoted in every error field it might use gives a problem with the configured
//! or forwarded credential, the access token and the `app_key` masked.

mod support;

use std::sync::Arc;

use http_body_util::BodyExt;
use serde_json::{json, Value};
use teamgate::call::Secret;
use teamgate::canonical::{CanonicalRequest, Operation, PageRequest};
use teamgate::mapping::engine::Backend;
use teamgate::mapping::Mapping;
use teamgate::upstream::{Upstream, UpstreamRequest, UpstreamResponse};

const CONFIGURED: &str = "S3CRET-configured-credential";
const FORWARDED: &str = "F0RWARDED-tenant-credential";
const ACCESS_TOKEN: &str = "T0KEN-access-abcdef";

/// A vendor whose every answer is a 500 quoting the request (the token exchange aside).
fn echoing_vendor() -> Upstream {
    Upstream::new(tower::service_fn(|request: UpstreamRequest| async move {
        if request.url.contains("/oauth/access-token") {
            let body = json!({ "data": { "access_token": ACCESS_TOKEN, "expires_in": 3600 } });
            return Ok(UpstreamResponse {
                status: 200,
                headers: Default::default(),
                body: body.to_string().into(),
            });
        }
        let mut echo = format!("{} {} HTTP/1.1\r\n", request.method, request.url);
        for (name, value) in &request.headers {
            echo.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or("")));
        }
        let body = json!({
            "message": echo,
            "error": { "code": echo, "message": echo },
            "errors": [{ "status": "500", "title": echo, "detail": echo, "source": { "pointer": echo } }],
            "meta": { "status": 500, "error_message": echo },
        });
        Ok(UpstreamResponse {
            status: 500,
            headers: Default::default(),
            body: body.to_string().into(),
        })
    }))
}

fn backend(mapping: &str) -> Backend {
    let mapping = Mapping::load(&support::repo_root().join("mappings").join(mapping)).unwrap();
    Backend::new(
        "b".into(),
        Arc::new(mapping),
        "http://vendor.invalid",
        Secret::new(CONFIGURED.into()),
        Default::default(),
        echoing_vendor(),
        Arc::new(teamgate::metrics::Metrics::new()),
    )
}

/// The problem as the caller would receive it.
async fn problem_text(error: &teamgate::error::Error) -> String {
    let response = teamgate::server::problem::problem_response(error, "rid");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    body.to_string()
}

#[tokio::test]
async fn no_credential_reaches_the_caller_when_a_vendor_echoes_the_request() {
    let mut list = CanonicalRequest::new(Operation::ListTeams);
    list.page = Some(PageRequest {
        limit: 10,
        offset: 0,
    });
    for mapping in [
        "grafana.toml",
        "flashcat.toml",
        "jsonapi.toml",
        "opsgenie.toml",
        "squadcast.toml",
    ] {
        let backend = backend(mapping);
        let configured = backend.execute(&list).await.unwrap_err();
        let forwarded = backend
            .execute_as(&list, Secret::new(FORWARDED.into()))
            .await
            .unwrap_err();
        for (who, error) in [("configured", configured), ("forwarded", forwarded)] {
            assert_eq!(error.status(), 502, "{mapping} ({who}): {error:?}");
            let text = problem_text(&error).await;
            let upstream = error
                .upstream
                .as_ref()
                .expect("the vendor's words are kept");
            assert!(
                upstream.message.is_some(),
                "{mapping}: the vendor's message is still there, masked: {text}"
            );
            for secret in [CONFIGURED, FORWARDED, ACCESS_TOKEN] {
                assert!(
                    !text.contains(secret),
                    "{mapping} ({who}): {secret} in {text}"
                );
            }
            assert!(
                text.contains("***"),
                "{mapping} ({who}): masked, not dropped: {text}"
            );
        }
    }
}
