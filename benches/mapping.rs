//! Criterion benches for the mapping engine, with no network: a canned in-memory transport
//! answers every vendor call, so the figures are teamgate's own translation cost.
//!
//! Run: `cargo bench --bench mapping`.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Map};
use teamgate::call::Secret;
use teamgate::canonical::{CanonicalRequest, Operation, PageRequest};
use teamgate::mapping::engine::Backend;
use teamgate::mapping::expr::Expr;
use teamgate::mapping::Mapping;
use teamgate::metrics::Metrics;
use teamgate::upstream::{Upstream, UpstreamRequest, UpstreamResponse};

/// The binary's allocator, so that the figures are what the binary pays.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Answers every request with the same body.
fn canned(body: Bytes) -> Upstream {
    Upstream::new(tower::service_fn(move |_request: UpstreamRequest| {
        let body = body.clone();
        async move {
            Ok(UpstreamResponse {
                status: 200,
                headers: Default::default(),
                body,
            })
        }
    }))
}

fn grafana_team(id: u64) -> serde_json::Value {
    json!({"id": id, "uid": format!("u{id}"), "orgId": 1, "name": format!("Team {id}"), "email": "t@example.com",
           "externalUID": "", "isProvisioned": false, "avatarUrl": "/avatar/0", "memberCount": 3, "permission": 0, "accessControl": null})
}

fn backend(answer: serde_json::Value) -> Backend {
    let mapping = Arc::new(
        Mapping::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mappings/grafana.toml"
        )))
        .expect("mapping"),
    );
    Backend::new(
        "bench".into(),
        mapping,
        "http://vendor.invalid",
        Secret::new("token".into()),
        Map::new(),
        canned(Bytes::from(answer.to_string())),
        Arc::new(Metrics::new()),
    )
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings/grafana.toml"
    ));
    let source = std::fs::read_to_string(path).unwrap();
    c.bench_function("compile grafana mapping", |b| {
        b.iter(|| Mapping::parse(path, &source).unwrap())
    });

    let expr = Expr::parse("$.steps.team.body.data.person_ids | ints").unwrap();
    let ctx = json!({"steps": {"team": {"body": {"data": {"person_ids": [1, 2, 3, 4, 5]}}}}});
    c.bench_function("expression eval (path + pipe)", |b| {
        b.iter(|| expr.eval(&ctx).unwrap())
    });

    let get = backend(grafana_team(7));
    let mut request = CanonicalRequest::new(Operation::GetTeam);
    request.team_id = Some("7".into());
    c.bench_function("get_team through the engine", |b| {
        b.iter(|| runtime.block_on(get.execute(&request)).unwrap())
    });

    let teams: Vec<_> = (1..=50).map(grafana_team).collect();
    let list = backend(json!({"totalCount": 500, "page": 1, "perPage": 50, "teams": teams}));
    let mut request = CanonicalRequest::new(Operation::ListTeams);
    request.page = Some(PageRequest {
        limit: 50,
        offset: 0,
    });
    c.bench_function("list_teams of 50 through the engine", |b| {
        b.iter(|| runtime.block_on(list.execute(&request)).unwrap())
    });

    // How the cost grows with the number of teams in one vendor answer (all of them are
    // read: a vendor page is taken whole), for the "linear in the list" check.
    let mut group = c.benchmark_group("list_teams through the engine, teams in the answer");
    for n in [50u64, 200, 1000] {
        let teams: Vec<_> = (1..=n).map(grafana_team).collect();
        let list = backend(json!({"totalCount": n, "page": 1, "perPage": n, "teams": teams}));
        group.throughput(criterion::Throughput::Elements(n));
        group.bench_with_input(
            criterion::BenchmarkId::from_parameter(n),
            &list,
            |b, list| b.iter(|| runtime.block_on(list.execute(&request)).unwrap()),
        );
    }
    group.finish();
}

criterion_group!(mapping, benches);
criterion_main!(mapping);
