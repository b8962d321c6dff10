//! The answers outside the canonical operations: `/healthz` (alive), `/readyz` (ready for
//! traffic), `/metrics`, `/openapi.json` and `GET /v1/backends` (what each backend is and can do, read from
//! its mapping). None of them is cached.

use http::{Response, StatusCode};
use serde_json::{json, Value};

use super::respond::{self, Body};
use crate::health::Health;
use crate::mapping::registry::Backends;
use crate::metrics::Metrics;

pub fn health() -> Response<Body> {
    respond::json(200, &json!({ "status": "ok" }))
}

/// 200 while the process takes traffic, 503 once it drains; names the configuration in
/// service and each backend with the digest of its mapping.
pub fn ready(health: &Health, backends: &Backends) -> Response<Body> {
    let draining = health.is_draining();
    let snapshot = backends.snapshot();
    let described: serde_json::Map<String, Value> = snapshot
        .iter()
        .map(|(name, served)| {
            let state = if draining { "draining" } else { "ready" };
            let about = json!({ "state": state, "mapping_digest": served.mapping_digest });
            (name.clone(), about)
        })
        .collect();
    let (status, word) = if draining {
        (503, "draining")
    } else {
        (200, "ready")
    };
    respond::json(
        status,
        &json!({
            "status": word,
            "config_hash": health.config_hash().as_str(),
            "backends": described,
        }),
    )
}

/// `GET /openapi.json`: the canonical API described (see [`crate::openapi`]).
pub fn openapi() -> Response<Body> {
    respond::json(200, crate::openapi::document())
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
