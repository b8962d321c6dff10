//! The answers outside the canonical operations: `/healthz`, `/metrics` and
//! `GET /v1/backends` (what each backend is and can do, read from its mapping).

use http::{Response, StatusCode};
use serde_json::{json, Value};

use super::respond::{self, Body};
use crate::mapping::registry::Backends;
use crate::metrics::Metrics;

pub fn health() -> Response<Body> {
    respond::json(200, &json!({ "status": "ok" }))
}

pub fn metrics(metrics: &Metrics) -> Response<Body> {
    respond::text(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        metrics.render(),
    )
}

pub fn backends(backends: &Backends) -> Response<Body> {
    respond::json(200, &describe(backends))
}

fn describe(backends: &Backends) -> Value {
    let snapshot = backends.snapshot();
    let described: Vec<Value> = snapshot
        .values()
        .map(|served| {
            let b = &served.backend;
            let m = &b.mapping;
            let roles: Vec<&str> = ["admin", "member"]
                .into_iter()
                .filter(|r| m.member.vendor_role(r).is_some())
                .collect();
            json!({
                "name": b.name,
                "vendor": m.vendor,
                "default": b.name == backends.default_name(),
                "operations": m.operations.keys().map(|op| op.name()).collect::<Vec<_>>(),
                "team_fields": m.team_fields(),
                "member_roles": roles,
                "forward_credential": served.forward_credential,
                "cache": {
                    "ttl_ms": served.policy.ttl.as_millis() as u64,
                    "stale_if_error_ms": served.policy.stale_if_error.as_millis() as u64,
                },
                "limits": {
                    "name_max": m.limits.name_max,
                    "description_max": m.limits.description_max,
                    "page_size_max": m.limits.page_size_max,
                },
            })
        })
        .collect();
    json!({ "backends": described })
}
